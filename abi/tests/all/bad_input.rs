//! Truncated, garbage and hand-corrupted objects: each gives a typed error with the file, the
//! section and the byte offset, never a panic.

use pymode_abi::object::{FeaturePolicy, Object};
use pymode_abi::{ErrorKind, RelocKind};
use pymode_testdata::trials::Trial;
use wasm_encoder::{
    CodeSection, ConstExpr, CustomSection, DataSection, EntityType, Function, FunctionSection, ImportSection, MemoryType, Module,
    TypeSection,
};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        the_uncorrupted_object_reads,
        every_truncation_is_an_error_not_a_panic,
        garbage_is_not_wasm,
        bad_leb_in_the_relocation_section,
        symbol_index_out_of_range,
        symbol_target_out_of_range,
        relocation_offset_past_the_section,
        unknown_relocation_type,
        relocation_target_must_be_an_earlier_section,
        unsupported_linking_version,
        every_single_byte_flip_is_handled,
        function_type_index_out_of_range,
        target_features_are_read_with_their_policies,
        malformed_target_features_name_the_section_and_offset,
    ]
}

fn leb(out: &mut Vec<u8>, v: u32) {
    pymode_abi::write_uleb(out, v);
}

fn string(out: &mut Vec<u8>, s: &str) {
    leb(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

/// The parts of a tiny relocatable object that the tests corrupt.
struct Parts {
    linking_version: u32,
    symbol_func_index: u32,
    reloc_type: u8,
    reloc_offset: u32,
    reloc_index: u32,
    reloc_target_section: u32,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            linking_version: 2,
            symbol_func_index: 0,
            reloc_type: RelocKind::MemoryAddrSleb.as_u8(),
            // count (1 byte) + body size (1) + local decl count (1) + i32.const opcode (1)
            reloc_offset: 4,
            reloc_index: 1,
            reloc_target_section: 4,
        }
    }
}

/// A relocatable object: one function `f` that does `i32.const &d; drop`, one data symbol
/// `d`, a `linking` section and a `reloc.CODE` section. Section indices (positions in the
/// file): type 0, import 1, function 2, datacount 3, code 4, data 5, linking 6, reloc.CODE 7.
fn object(p: &Parts) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types); // section 0
    let mut imports = ImportSection::new();
    imports.import(
        "env",
        "__linear_memory",
        EntityType::Memory(MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None }),
    );
    module.section(&imports); // 1
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    module.section(&funcs); // 2
    module.section(&wasm_encoder::DataCountSection { count: 1 }); // 3
    let mut code = CodeSection::new();
    let mut f = Function::new([]);
    // i32.const with a padded 5-byte LEB, as LLVM writes relocation sites.
    f.raw([0x41, 0x80, 0x80, 0x80, 0x80, 0x00, 0x1a, 0x0b]);
    code.function(&f);
    module.section(&code); // 4
    let mut data = DataSection::new();
    data.active(0, &ConstExpr::i32_const(0), [1, 2, 3, 4]);
    module.section(&data); // 5

    let mut linking = Vec::new();
    leb(&mut linking, p.linking_version);
    let mut symtab = Vec::new();
    leb(&mut symtab, 2);
    symtab.push(0); // function
    leb(&mut symtab, 0); // flags
    leb(&mut symtab, p.symbol_func_index);
    string(&mut symtab, "f");
    symtab.push(1); // data
    leb(&mut symtab, 0);
    string(&mut symtab, "d");
    leb(&mut symtab, 0); // segment
    leb(&mut symtab, 0); // offset
    leb(&mut symtab, 4); // size
    linking.push(8);
    leb(&mut linking, symtab.len() as u32);
    linking.extend_from_slice(&symtab);
    let mut seginfo = Vec::new();
    leb(&mut seginfo, 1);
    string(&mut seginfo, ".data.d");
    leb(&mut seginfo, 2);
    leb(&mut seginfo, 0);
    linking.push(5);
    leb(&mut linking, seginfo.len() as u32);
    linking.extend_from_slice(&seginfo);
    module.section(&CustomSection { name: "linking".into(), data: linking.into() }); // 6

    let mut reloc = Vec::new();
    leb(&mut reloc, p.reloc_target_section);
    leb(&mut reloc, 1);
    reloc.push(p.reloc_type);
    leb(&mut reloc, p.reloc_offset);
    leb(&mut reloc, p.reloc_index);
    reloc.push(0); // addend 0: the default kind, MEMORY_ADDR_SLEB, carries one
    module.section(&CustomSection { name: "reloc.CODE".into(), data: reloc.into() }); // 7
    module.finish()
}

fn the_uncorrupted_object_reads() {
    let bytes = object(&Parts::default());
    let obj = Object::parse("ok.o", &bytes).expect("valid object");
    assert_eq!(obj.symbols.len(), 2);
    assert_eq!(obj.symbols[0].name, "f");
    assert_eq!(obj.symbols[1].name, "d");
    assert_eq!(obj.relocations.len(), 1);
    let r = obj.relocations[0].entries[0];
    assert_eq!((r.kind, r.offset, r.index, r.addend), (RelocKind::MemoryAddrSleb, 4, 1, 0));
    let code = obj.section(obj.relocations[0].target).expect("target");
    assert_eq!(code.name, "code");
    // The site really is the padded LEB of the i32.const.
    let site = &obj.contents(code)[4..9];
    assert_eq!(site, [0x80, 0x80, 0x80, 0x80, 0x00]);
    assert!(wasmparser::Validator::new().validate_all(&bytes).is_ok());
}

fn every_truncation_is_an_error_not_a_panic() {
    let bytes = object(&Parts::default());
    let full = Object::parse("full.o", &bytes).expect("valid");
    // A cut right after the header or after a whole section leaves a shorter, well-formed
    // module; every other cut is inside a section and must fail.
    let boundaries: Vec<usize> = std::iter::once(8).chain(full.sections.iter().map(|s| s.contents.end)).collect();
    for len in 0..bytes.len() {
        let result = Object::parse("cut.o", &bytes[..len]);
        if boundaries.contains(&len) {
            continue;
        }
        let err = result.expect_err(&format!("truncated at {len} must fail"));
        assert_eq!(err.location.file, "cut.o");
        assert!(err.location.offset <= len, "offset {} past the {len} bytes given", err.location.offset);
        if len >= 8 {
            assert!(matches!(err.kind, ErrorKind::Malformed(_)), "at {len}: {err}");
        }
    }
}

fn garbage_is_not_wasm() {
    for junk in [&b""[..], b"\0asm", b"\x7fELF\x02\x01\x01\0\0\0\0\0", b"\0asm\x02\0\0\0", b"!<arch>\n"] {
        let err = Object::parse("junk.o", junk).expect_err("not wasm");
        assert_eq!(err.kind, ErrorKind::NotWasm, "{junk:?}");
        assert_eq!(err.location.offset, 0);
    }
}

fn bad_leb_in_the_relocation_section() {
    let mut bytes = object(&Parts::default());
    // Overwrite the reloc entry count (after "reloc.CODE" and the target index) with an
    // over-long LEB: six continuation bytes.
    let name_at = bytes.windows(10).rposition(|w| w == b"reloc.CODE").expect("reloc section");
    let count_at = name_at + 10 + 1;
    let tail = bytes.split_off(count_at);
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    bytes.extend_from_slice(&tail[1..]);
    // Fix the custom section's size byte for the five extra bytes.
    let size_at = name_at - 2;
    bytes[size_at] += 5;
    let err = Object::parse("leb.o", &bytes).expect_err("bad LEB");
    assert!(matches!(err.kind, ErrorKind::Malformed(_)), "{err}");
    assert_eq!(err.location.section.as_deref(), Some("reloc.CODE"));
    assert_eq!(err.location.offset, count_at + 4, "{err}");
}

fn symbol_index_out_of_range() {
    let bytes = object(&Parts { reloc_index: 7, ..Parts::default() });
    let err = Object::parse("sym.o", &bytes).expect_err("bad symbol index");
    assert_eq!(err.kind, ErrorKind::RelocationIndexOutOfRange { kind: "R_WASM_MEMORY_ADDR_SLEB", what: "symbol", index: 7, count: 2 });
    assert_eq!(err.location.section.as_deref(), Some("reloc.CODE"));
    let entry_at = bytes.len() - 4; // type, offset, index, addend: one byte each
    assert_eq!(err.location.offset, entry_at);
    assert_eq!(
        err.to_string(),
        format!(
            "sym.o: section reloc.CODE at byte 0x{entry_at:x}: relocation R_WASM_MEMORY_ADDR_SLEB refers to symbol index 7, but there are only 2"
        )
    );
}

fn symbol_target_out_of_range() {
    let bytes = object(&Parts { symbol_func_index: 5, ..Parts::default() });
    let err = Object::parse("target.o", &bytes).expect_err("bad function index");
    assert_eq!(err.kind, ErrorKind::SymbolTargetOutOfRange { symbol: 0, what: "function", index: 5, count: 1 });
    assert_eq!(err.location.section.as_deref(), Some("linking"));
    assert!(err.location.offset > 0);
}

fn relocation_offset_past_the_section() {
    let bytes = object(&Parts { reloc_offset: 200, ..Parts::default() });
    let err = Object::parse("off.o", &bytes).expect_err("site out of range");
    match err.kind {
        ErrorKind::RelocationOffsetOutOfRange { site: 200, width: 5, .. } => {}
        ref other => panic!("wrong kind: {other:?}"),
    }
    // The site that just fits is accepted; one byte further is not.
    let code_len = {
        let ok = object(&Parts::default());
        let obj = Object::parse("ok.o", &ok).expect("ok");
        let code = obj.section(obj.relocations[0].target).expect("code");
        code.contents.len() as u32
    };
    assert!(Object::parse("edge.o", &object(&Parts { reloc_offset: code_len - 5, ..Parts::default() })).is_ok());
    assert!(Object::parse("edge.o", &object(&Parts { reloc_offset: code_len - 4, ..Parts::default() })).is_err());
}

fn unknown_relocation_type() {
    let bytes = object(&Parts { reloc_type: 99, ..Parts::default() });
    let err = Object::parse("type.o", &bytes).expect_err("unknown type");
    assert_eq!(err.kind, ErrorKind::UnknownRelocationType(99));
    assert_eq!(err.location.offset, bytes.len() - 4);
    assert_eq!(err.location.section.as_deref(), Some("reloc.CODE"));
}

fn relocation_target_must_be_an_earlier_section() {
    let bytes = object(&Parts { reloc_target_section: 9, ..Parts::default() });
    let err = Object::parse("tgt.o", &bytes).expect_err("bad target");
    assert_eq!(err.kind, ErrorKind::RelocationTargetSection(9));
}

fn unsupported_linking_version() {
    let bytes = object(&Parts { linking_version: 1, ..Parts::default() });
    let err = Object::parse("v1.o", &bytes).expect_err("version 1");
    assert_eq!(err.kind, ErrorKind::LinkingVersion(1));
    assert_eq!(err.location.section.as_deref(), Some("linking"));
}

fn every_single_byte_flip_is_handled() {
    // Not a proof, but a cheap sweep: flipping any one byte gives Ok or a typed error.
    let bytes = object(&Parts::default());
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            if let Err(e) = Object::parse("flip.o", &b) {
                assert!(e.location.offset <= b.len(), "byte {i}: offset {} past the end", e.location.offset);
            }
        }
    }
}

fn function_type_index_out_of_range() {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut funcs = FunctionSection::new();
    funcs.function(3);
    module.section(&funcs);
    let mut code = CodeSection::new();
    code.function(&Function::new([]));
    module.section(&code);
    let bytes = module.finish();
    let err = Object::parse("ty.o", &bytes).expect_err("bad type index");
    assert_eq!(err.kind, ErrorKind::FunctionTypeOutOfRange { function: 0, index: 3, count: 1 });
    assert_eq!(err.location.section.as_deref(), Some("function"));
    let obj_start = 8 + 2 + 4; // header, then the type section: id, size, and its 4 bytes
    assert_eq!(err.location.offset, obj_start);
}

/// The test object with a `target_features` section holding `contents` appended.
fn with_target_features(contents: &[u8]) -> (Vec<u8>, usize) {
    let mut bytes = object(&Parts::default());
    let section = CustomSection { name: "target_features".into(), data: contents.to_vec().into() };
    let mut encoded = Vec::new();
    wasm_encoder::Section::append_to(&section, &mut encoded);
    // id, size (one byte here), name length, name: then the contents.
    let contents_at = bytes.len() + 1 + 1 + 1 + "target_features".len();
    bytes.extend_from_slice(&encoded);
    (bytes, contents_at)
}

fn target_features_are_read_with_their_policies() {
    let mut contents = vec![2, b'+'];
    string(&mut contents, "simd128");
    contents.push(b'-');
    string(&mut contents, "atomics");
    let (bytes, _) = with_target_features(&contents);
    let obj = Object::parse("features.o", &bytes).expect("valid object");
    let features: Vec<_> = obj.target_features.expect("section read").iter().map(|f| (f.policy, f.name)).collect();
    assert_eq!(features, [(FeaturePolicy::Used, "simd128"), (FeaturePolicy::Disallowed, "atomics")]);
    assert!(Object::parse("none.o", &object(&Parts::default())).unwrap().target_features.is_none());
}

fn malformed_target_features_name_the_section_and_offset() {
    let check = |label: &str, contents: &[u8], offset_in_contents: usize, message: &str| {
        let (bytes, contents_at) = with_target_features(contents);
        let err = Object::parse("features.o", &bytes).expect_err(label);
        assert_eq!(err.location.section.as_deref(), Some("target_features"), "{label}: {err}");
        assert_eq!(err.location.offset, contents_at + offset_in_contents, "{label}: {err}");
        assert!(err.to_string().contains(message), "{label}: {err}");
    };
    let mut bad_prefix = vec![2, b'+'];
    string(&mut bad_prefix, "simd128");
    bad_prefix.push(b'*');
    string(&mut bad_prefix, "atomics");
    check("bad prefix", &bad_prefix, 1 + 1 + 1 + 7, "feature prefix 0x2a is not `+`, `-` or `=`");
    let mut trailing = vec![1, b'+'];
    string(&mut trailing, "sign-ext");
    trailing.push(0);
    check("trailing byte", &trailing, trailing.len() - 1, "trailing bytes after the last feature");
    // The count promises two entries; the name of the second runs past the end.
    let mut truncated = vec![2, b'+'];
    string(&mut truncated, "sign-ext");
    truncated.extend_from_slice(&[b'+', 9, b'a']);
    check("truncated", &truncated, truncated.len() - 1, "");

    let (mut twice, _) = with_target_features(&[0]);
    let second_at = twice.len();
    let section = CustomSection { name: "target_features".into(), data: vec![0u8].into() };
    wasm_encoder::Section::append_to(&section, &mut twice);
    let err = Object::parse("twice.o", &twice).expect_err("two target_features sections");
    assert_eq!((err.location.section.as_deref(), err.location.offset), (Some("target_features"), second_at), "{err}");
}
