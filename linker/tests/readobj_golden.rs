//! Golden tests of `pymode-readobj` on every fixture object (four modes) and every wasm-ld
//! side module. `BLESS=1 cargo test -p pymode-linker --test readobj_golden` rewrites the
//! golden files; review the diff before committing it.

use pymode_abi::object::Object;
use pymode_abi::RelocKind;
use pymode_linker::readobj::{describe, relocation_kinds};
use pymode_testdata::{fixture_names, fixture_object, fixture_side_module, Mode};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/readobj")
}

/// Describes the file under a stable display name (`pic-O2/foo.o`), so goldens do not depend
/// on where the workspace is checked out.
fn describe_file(path: &Path, display: &str) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = Object::parse(display, &bytes).unwrap_or_else(|e| panic!("{e}"));
    describe(&obj)
}

fn check_golden(display: &str, actual: &str, mismatches: &mut Vec<String>) {
    let path = golden_dir().join(format!("{display}.txt"));
    if pymode_testdata::golden::bless() {
        std::fs::create_dir_all(path.parent().expect("golden files live in a directory")).expect("create golden dir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => {
            let first = expected.lines().zip(actual.lines()).position(|(a, b)| a != b);
            mismatches.push(format!("{display}: differs from {} (first differing line {first:?})", path.display()));
        }
        Err(_) => mismatches.push(format!("{display}: no golden file {} (run with BLESS=1)", path.display())),
    }
}

#[test]
fn readobj_matches_golden_for_every_fixture() {
    let names = fixture_names();
    assert!(names.len() >= 12, "expected the full fixture set, found {names:?}");
    let mut mismatches = Vec::new();
    for name in &names {
        for mode in Mode::all() {
            let display = format!("{}/{name}.o", mode.dir_name());
            let text = describe_file(&fixture_object(name, mode), &display);
            check_golden(&display, &text, &mut mismatches);
            if mode.is_pic() {
                let display = format!("{}/{name}.wasm-ld.so", mode.dir_name());
                let text = describe_file(&fixture_side_module(name, mode), &display);
                check_golden(&display, &text, &mut mismatches);
            }
        }
    }
    assert!(mismatches.is_empty(), "golden mismatches:\n{}", mismatches.join("\n"));
}

fn parse_fixture(name: &str, mode: Mode) -> (Vec<u8>, String) {
    let path = fixture_object(name, mode);
    (std::fs::read(&path).expect("read fixture"), format!("{}/{name}.o", mode.dir_name()))
}

fn imports_of(obj: &Object<'_>) -> Vec<String> {
    obj.imports.iter().map(|i| format!("{}.{}", i.module, i.field)).collect()
}

#[test]
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

#[test]
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
            assert!(
                !relocation_kinds(&obj).contains(&RelocKind::MemoryAddrSleb),
                "{display}: PIC code with an absolute MEMORY_ADDR_SLEB"
            );
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

#[test]
fn side_modules_show_dylink0() {
    let path = fixture_side_module("bss", Mode::PicO2);
    let text = describe_file(&path, "pic-O2/bss.wasm-ld.so");
    assert!(text.contains("kind: side module (dylink.0)"), "{text}");
    assert!(text.contains("mem_info: memory "), "{text}");
    assert!(text.contains("env.__memory_base"), "{text}");
}
