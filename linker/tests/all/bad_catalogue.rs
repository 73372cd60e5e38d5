//! The linker half of the bad-input catalogue (`testdata/bad/`, see its README): every object
//! under `testdata/bad/objects` and archive under `testdata/bad/archives` is linked by
//! pymode-ld (`pymode_linker::link`) and gives the error in its `.expected` file, with no
//! output file left behind. Objects are also read by `pymode_abi::Object::parse`, which must
//! not panic. `BLESS=1` rewrites the case files (from the generators below) and the expected
//! texts. Each case is a trial (`bad_catalogue::objects::empty`).

use std::path::{Path, PathBuf};

use crate::common::options;
use pymode_abi::RelocKind;
use pymode_abi::object::Object;
use pymode_testdata::golden;
use pymode_testdata::trials::{Trial, case};
use wasm_encoder::{
    CodeSection, ConstExpr, CustomSection, DataSection, EntityType, Function, FunctionSection, ImportSection, MemoryType, Module,
    TypeSection,
};

/// One trial per case: `bad_catalogue::objects::<name>` and `bad_catalogue::archives::<name>`.
pub(crate) fn trials() -> Vec<Trial> {
    let mut trials = pymode_testdata::tests![the_generators_baseline_object_links];
    for (name, generated) in object_cases() {
        trials.push(case(module_path!(), format!("objects::{name}"), move || object_case_gives_its_error(name, &generated)));
    }
    for (name, generated) in archive_cases() {
        trials.push(case(module_path!(), format!("archives::{name}"), move || archive_case_gives_its_error(name, &generated)));
    }
    trials
}

fn bad_dir() -> PathBuf {
    std::fs::canonicalize(golden::bad_dir()).unwrap()
}

fn check_expected(kind: &str, name: &str, actual: &str) {
    golden::check_text(&bad_dir().join(kind).join(format!("{name}.expected")), &format!("{actual}\n"));
}

/// The committed case file (written from `generated` with BLESS); it must equal its generator.
fn case_file(kind: &str, file: &str, generated: &[u8]) -> PathBuf {
    let path = bad_dir().join(kind).join(file);
    golden::check_bytes(&path, generated);
    path
}

// ---- the object generator -----------------------------------------------------------------

fn leb(out: &mut Vec<u8>, v: u32) {
    pymode_abi::write_uleb(out, v);
}

fn name(out: &mut Vec<u8>, s: &str) {
    leb(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

/// What a case changes in the small object below.
#[derive(Clone, Copy)]
struct Knobs {
    linking_version: u32,
    func_symbol_target: u32,
    func_type: u32,
    reloc_type: u8,
    reloc_offset: u32,
    reloc_symbol: u32,
    reloc_section: u32,
    data_symbol_size: u32,
    segment_count: u32,
    /// Raw subsections appended to the linking section: `(id, contents)`.
    extra_linking: Option<(u8, &'static [u8])>,
    symbol_count: u32,
}

const OK: Knobs = Knobs {
    linking_version: 2,
    func_symbol_target: 0,
    func_type: 0,
    reloc_type: RelocKind::FunctionIndexLeb.as_u8(),
    // entry count, body size, local-decl count, call opcode
    reloc_offset: 4,
    reloc_symbol: 0,
    reloc_section: 4,
    data_symbol_size: 4,
    segment_count: 1,
    extra_linking: None,
    symbol_count: 2,
};

/// A relocatable object that pymode-ld links as is: `f` calls itself through a 5-byte padded
/// LEB (R_WASM_FUNCTION_INDEX_LEB, no addend); `d` is 4 bytes of data. Sections: type 0, import 1,
/// function 2, datacount 3, code 4, data 5, linking 6, reloc.CODE 7.
fn object(k: Knobs) -> Vec<u8> {
    let mut m = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    m.section(&types);
    let mut imports = ImportSection::new();
    let mem = MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None };
    imports.import("env", "__linear_memory", EntityType::Memory(mem));
    m.section(&imports);
    let mut funcs = FunctionSection::new();
    funcs.function(k.func_type);
    m.section(&funcs);
    m.section(&wasm_encoder::DataCountSection { count: 1 });
    let mut code = CodeSection::new();
    let mut f = Function::new([]);
    f.raw([0x10, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b]);
    code.function(&f);
    m.section(&code);
    let mut data = DataSection::new();
    data.active(0, &ConstExpr::i32_const(0), [1, 2, 3, 4]);
    m.section(&data);

    let mut linking = Vec::new();
    leb(&mut linking, k.linking_version);
    let mut symtab = Vec::new();
    leb(&mut symtab, k.symbol_count);
    symtab.push(0); // SYMTAB_FUNCTION
    leb(&mut symtab, 0);
    leb(&mut symtab, k.func_symbol_target);
    name(&mut symtab, "f");
    symtab.push(1); // SYMTAB_DATA
    leb(&mut symtab, 0);
    name(&mut symtab, "d");
    leb(&mut symtab, 0);
    leb(&mut symtab, 0);
    leb(&mut symtab, k.data_symbol_size);
    linking.push(8); // WASM_SYMBOL_TABLE
    leb(&mut linking, symtab.len() as u32);
    linking.extend(symtab);
    let mut segs = Vec::new();
    leb(&mut segs, k.segment_count);
    name(&mut segs, ".data.d");
    leb(&mut segs, 2);
    leb(&mut segs, 0);
    linking.push(5); // WASM_SEGMENT_INFO
    leb(&mut linking, segs.len() as u32);
    linking.extend(segs);
    if let Some((id, contents)) = k.extra_linking {
        linking.push(id);
        leb(&mut linking, contents.len() as u32);
        linking.extend_from_slice(contents);
    }
    m.section(&CustomSection { name: "linking".into(), data: linking.into() });

    let mut reloc = Vec::new();
    leb(&mut reloc, k.reloc_section);
    leb(&mut reloc, 1);
    reloc.push(k.reloc_type);
    leb(&mut reloc, k.reloc_offset);
    leb(&mut reloc, k.reloc_symbol);
    m.section(&CustomSection { name: "reloc.CODE".into(), data: reloc.into() });
    m.finish()
}

/// Replaces the LEB entry count of `reloc.CODE` with an over-long one.
fn bad_reloc_count_leb() -> Vec<u8> {
    let mut bytes = object(OK);
    let at = bytes.windows(10).rposition(|w| w == b"reloc.CODE").unwrap();
    let count_at = at + 10 + 1; // after the name and the target section index
    let tail = bytes.split_off(count_at + 1);
    bytes.truncate(count_at);
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    bytes.extend(tail);
    bytes[at - 2] += 5; // the custom section's size (one byte)
    bytes
}

/// The object with the size of its last section (`reloc.CODE`) raised past the end of the
/// file.
fn section_size_past_end() -> Vec<u8> {
    let mut bytes = object(OK);
    let at = bytes.windows(10).rposition(|w| w == b"reloc.CODE").unwrap();
    bytes[at - 2] = 0x7f; // the size byte (one byte), before the name's length
    bytes
}

/// The object with the size of its code section raised so that it swallows the sections
/// after it.
fn section_size_overlaps_next() -> Vec<u8> {
    let mut bytes = object(OK);
    // Section ids and sizes from the start: find the code section (id 10).
    let mut at = 8;
    while bytes[at] != 10 {
        at += 2 + usize::from(bytes[at + 1]); // every section here is < 128 bytes
    }
    bytes[at + 1] = 0x7f;
    bytes
}

fn object_cases() -> Vec<(&'static str, Vec<u8>)> {
    let ok = object(OK);
    let plain = {
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], []);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        m.section(&funcs);
        let mut code = CodeSection::new();
        code.function(&Function::new([]));
        m.section(&code);
        m.finish()
    };
    let mut cases = vec![
        ("empty", Vec::new()),
        ("truncated-header", ok[..3].to_vec()),
        ("truncated", ok[..ok.len() - 20].to_vec()),
        ("wrong-magic", [b"\x7fELF".as_slice(), &ok[4..]].concat()),
        ("wrong-version", [&ok[..4], &[2, 0, 0, 0][..], &ok[8..]].concat()),
        ("section-size-past-end", section_size_past_end()),
        ("section-size-overlaps-next", section_size_overlaps_next()),
        ("bad-leb-reloc-count", bad_reloc_count_leb()),
        ("symbol-index-out-of-range", object(Knobs { reloc_symbol: 7, ..OK })),
        ("reloc-offset-past-section", object(Knobs { reloc_offset: 200, ..OK })),
        ("unknown-reloc-type", object(Knobs { reloc_type: 99, ..OK })),
        ("reloc-target-not-earlier-section", object(Knobs { reloc_section: 9, ..OK })),
        ("linking-version-1", object(Knobs { linking_version: 1, ..OK })),
        ("symbol-target-out-of-range", object(Knobs { func_symbol_target: 5, ..OK })),
        ("function-type-out-of-range", object(Knobs { func_type: 3, ..OK })),
        ("data-symbol-past-segment", object(Knobs { data_symbol_size: 1000, ..OK })),
        ("no-linking-section", plain),
        ("symbol-count-past-table", object(Knobs { symbol_count: 3, ..OK })),
        ("segment-info-count-past-segments", object(Knobs { segment_count: 2, ..OK })),
        // WASM_INIT_FUNCS: priority 0, symbol 1, which is the data symbol `d`.
        ("init-func-is-data-symbol", object(Knobs { extra_linking: Some((6, &[1, 0, 1])), ..OK })),
        ("init-func-symbol-out-of-range", object(Knobs { extra_linking: Some((6, &[1, 0, 9])), ..OK })),
        // WASM_COMDAT_INFO: one comdat "c" holding data segment 5 (there is one segment).
        ("comdat-segment-out-of-range", object(Knobs { extra_linking: Some((7, &[1, 1, b'c', 0, 1, 0, 5])), ..OK })),
        ("unknown-linking-subsection", object(Knobs { extra_linking: Some((42, &[1, 2, 3])), ..OK })),
        ("two-linking-sections", {
            let ok = object(OK);
            let at = ok.windows(7).position(|w| w == b"linking").unwrap();
            let start = at - 3; // id, one-byte size, name length
            let len = 2 + usize::from(ok[start + 1]);
            [&ok[..start + len], &ok[start..start + len], &ok[start + len..]].concat()
        }),
    ];
    cases.sort_by_key(|c| c.0);
    cases
}

/// A Unix `ar` archive (no symbol index) with these members, as given.
fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!("{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", format!("{name}/"), 0, 0, 0, 644, data.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

fn archive_cases() -> Vec<(&'static str, Vec<u8>)> {
    let ok = object(OK);
    let mut cases = vec![
        ("bad-member-header", b"!<arch>\nthis is not an archive member header, just text\n".to_vec()),
        ("truncated-member", {
            let a = archive(&[("x.o", &ok)]);
            a[..a.len() - 10].to_vec()
        }),
        ("member-size-not-a-number", {
            let mut a = archive(&[("x.o", &ok)]);
            a[8 + 48..8 + 58].copy_from_slice(b"12z4567890");
            a
        }),
        ("member-size-huge", {
            let mut a = archive(&[("x.o", &ok)]);
            a[8 + 48..8 + 58].copy_from_slice(b"9999999999");
            a
        }),
        ("member-not-wasm", archive(&[("readme.txt", b"not a wasm object\n")])),
        ("member-truncated-object", archive(&[("y.o", &ok[..ok.len() / 2])])),
        ("member-bad-reloc", archive(&[("good.o", &ok), ("bad.o", &object(Knobs { reloc_type: 99, ..OK }))])),
        ("truncated-magic", b"!<arc".to_vec()),
        // Not bad: an archive without members adds nothing, and the link succeeds (as
        // wasm-ld's does) with an empty side module.
        ("empty-archive", b"!<arch>\n".to_vec()),
    ];
    cases.sort_by_key(|c| c.0);
    cases
}

// ---- the runner ---------------------------------------------------------------------------

/// Links `input` with pymode-ld into a temporary directory: the error (paths normalized), and
/// the check that no output (or temporary file) is left.
fn link_outcome(input: &Path) -> String {
    let out_dir = tempfile::tempdir().unwrap();
    let mut opts = options(&[input]);
    opts.output = Some(out_dir.path().join("out.so"));
    let result = std::panic::catch_unwind(|| pymode_linker::link(&opts));
    let result = result.unwrap_or_else(|_| panic!("{}: pymode-ld panicked", input.display()));
    let left: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().collect();
    match result {
        Ok(()) => {
            let bytes = std::fs::read(out_dir.path().join("out.so")).unwrap();
            pymode_linker::emit::validate(&bytes).unwrap();
            format!("ok: linked ({} bytes)", bytes.len())
        }
        Err(e) => {
            assert!(left.is_empty(), "{}: a failed link left {left:?}", input.display());
            format!("error: {}", e.to_string().replace(&bad_dir().display().to_string(), "$ROOT"))
        }
    }
}

fn the_generators_baseline_object_links() {
    // Each case breaks one thing in this object.
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.o");
    std::fs::write(&ok, object(OK)).unwrap();
    assert!(link_outcome(&ok).starts_with("ok: "), "{}", link_outcome(&ok));
}

fn object_case_gives_its_error(name: &str, generated: &[u8]) {
    let path = case_file("objects", &format!("{name}.o"), generated);
    // The reader alone: an error (or a module), never a panic.
    let bytes = std::fs::read(&path).unwrap();
    let parsed = std::panic::catch_unwind(|| Object::parse("x.o", &bytes).map(|_| ()).map_err(|e| e.to_string()));
    assert!(parsed.is_ok(), "{name}: Object::parse panicked");
    check_expected("objects", name, &link_outcome(&path));
}

fn archive_case_gives_its_error(name: &str, generated: &[u8]) {
    let path = case_file("archives", &format!("{name}.a"), generated);
    check_expected("archives", name, &link_outcome(&path));
}
