//! `pymode-readobj` as a command (output on a real object, and exit 1 with a one-line error
//! naming the file for anything that is not wasm) and as a library on the fixtures: every
//! relocation under its R_WASM name, the PIC objects' GOT imports and relative relocations,
//! and `dylink.0` in side modules. Its golden files are checked in golden.rs.

use pymode_abi::RelocKind;
use pymode_abi::object::Object;
use pymode_linker::readobj::{describe, relocation_kinds};
use pymode_testdata::trials::Trial;
use pymode_testdata::{Mode, fixture_names, fixture_object, fixture_side_module};
use std::process::Command;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        not_wasm_is_a_one_line_error_and_exit_1,
        prints_a_fixture_object,
        every_fixture_object_lists_relocations_by_their_r_wasm_names,
        pic_objects_use_got_imports_and_relative_relocations,
        side_modules_show_dylink0,
    ]
}

fn readobj() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pymode-readobj"))
}

fn not_wasm_is_a_one_line_error_and_exit_1() {
    let dir = std::env::temp_dir().join(format!("readobj-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let junk = dir.join("notes.txt");
    std::fs::write(&junk, "this is not a wasm module\n").expect("write");
    let out = readobj().arg(&junk).output().expect("run pymode-readobj");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("pymode-readobj: error: "), "{stderr}");
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert!(stderr.contains("not a WebAssembly module"), "{stderr}");
    assert!(out.stdout.is_empty());

    let missing = dir.join("missing.o");
    let out = readobj().arg(&missing).output().expect("run pymode-readobj");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.o"));
}

fn prints_a_fixture_object() {
    let object = pymode_testdata::fixture_object("method_table", pymode_testdata::Mode::PicO2);
    let out = readobj().arg(&object).output().expect("run pymode-readobj");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind: relocatable object (linking v2)"), "{text}");
    assert!(text.contains("R_WASM_TABLE_INDEX_I32"), "{text}");
    assert!(text.contains("R_WASM_MEMORY_ADDR_REL_SLEB"), "{text}");
}

fn parse_fixture(name: &str, mode: Mode) -> (Vec<u8>, String) {
    let path = fixture_object(name, mode);
    (std::fs::read(&path).expect("read fixture"), format!("{}/{name}.o", mode.dir_name()))
}

fn imports_of(obj: &Object<'_>) -> Vec<String> {
    obj.imports.iter().map(|i| format!("{}.{}", i.module, i.field)).collect()
}

fn every_fixture_object_lists_relocations_by_their_r_wasm_names() {
    for name in fixture_names() {
        for mode in Mode::all() {
            let (bytes, display) = parse_fixture(&name, mode);
            let obj = Object::parse(&display, &bytes).expect("fixture parses");
            assert!(obj.is_relocatable(), "{display}: no linking section");
            assert!(!obj.relocations.is_empty() || obj.functions.len() <= 1, "{display}: no relocations");
            let text = describe(&obj);
            for section in &obj.relocations {
                for entry in &section.entries {
                    assert!(text.contains(entry.kind.name()), "{display}: {} missing from readobj output", entry.kind);
                }
            }
        }
    }
}

fn pic_objects_use_got_imports_and_relative_relocations() {
    // extern_data takes the address of extern data: GOT.mem under PIC, absolute without.
    let (bytes, display) = parse_fixture("extern_data", Mode::PicO2);
    let obj = Object::parse(&display, &bytes).expect("parses");
    assert!(imports_of(&obj).iter().any(|i| i == "GOT.mem.host_counter"), "{:?}", imports_of(&obj));
    let (bytes, display) = parse_fixture("extern_data", Mode::NopicO2);
    let obj = Object::parse(&display, &bytes).expect("parses");
    assert!(!imports_of(&obj).iter().any(|i| i.starts_with("GOT.")), "{:?}", imports_of(&obj));

    // Across the PIC set: GOT.func imports, and both REL_SLEB kinds.
    let mut all_imports = Vec::new();
    let mut all_kinds = Vec::new();
    for name in fixture_names() {
        for mode in [Mode::PicO0, Mode::PicO2] {
            let (bytes, display) = parse_fixture(&name, mode);
            let obj = Object::parse(&display, &bytes).expect("parses");
            all_imports.extend(imports_of(&obj));
            all_kinds.extend(relocation_kinds(&obj));
            assert!(!relocation_kinds(&obj).contains(&RelocKind::MemoryAddrSleb), "{display}: PIC code with an absolute MEMORY_ADDR_SLEB");
        }
    }
    assert!(all_imports.iter().any(|i| i.starts_with("GOT.func.")), "no GOT.func import in the PIC fixtures");
    assert!(all_imports.iter().any(|i| i.starts_with("GOT.mem.")), "no GOT.mem import in the PIC fixtures");
    assert!(all_kinds.contains(&RelocKind::MemoryAddrRelSleb));
    assert!(all_kinds.contains(&RelocKind::TableIndexRelSleb));

    // Non-PIC code addresses data and the table absolutely.
    let (bytes, display) = parse_fixture("static_fn_escape", Mode::NopicO2);
    let obj = Object::parse(&display, &bytes).expect("parses");
    assert!(relocation_kinds(&obj).contains(&RelocKind::TableIndexSleb), "{display}: {:?}", relocation_kinds(&obj));
}

fn side_modules_show_dylink0() {
    let path = fixture_side_module("bss", Mode::PicO2);
    let text = crate::golden::describe_file(&path, "pic-O2/bss.wasm-ld.so");
    assert!(text.contains("kind: side module (dylink.0)"), "{text}");
    assert!(text.contains("mem_info: memory "), "{text}");
    assert!(text.contains("env.__memory_base"), "{text}");
}
