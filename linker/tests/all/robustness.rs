//! Comdat groups (C++ inline functions) and untrusted input: corrupted objects give errors,
//! never panics.

use crate::common::*;
use pymode_testdata::trials::Trial;
use pymode_testdata::{Mode, fixture_object, zig_command};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        comdat_groups_keep_the_first_copy,
        corrupted_objects_never_panic,
        corrupted_non_pic_objects_never_panic,
        copied_bodies_are_proven_unchanged,
    ]
}

fn comdat_groups_keep_the_first_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    for (name, body) in [("a", "int a_use(int x) { return twice(x); }"), ("b", "int b_use(int x) { return twice(x) + 1; }")] {
        let src = dir.path().join(format!("{name}.cpp"));
        let obj = dir.path().join(format!("{name}.o"));
        std::fs::write(&src, format!("inline int twice(int x) {{ return 2 * x; }}\n{body}\n")).unwrap();
        let out = zig_command()
            .args(["c++", "-target", "wasm32-wasi", "-fPIC", "-O0", "-fno-sanitize=undefined", "-g0", "-fvisibility=default", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        objects.push(obj);
    }
    let bytes = link_ok(&options(&[&objects[0], &objects[1]]));
    let module = pymode_abi::object::Object::parse("ab.so", &bytes).unwrap();
    // a_use, one twice, b_use, __wasm_call_ctors.
    assert_eq!(module.functions.len(), 4);
    assert_eq!(export_names(&bytes).iter().filter(|n| n.as_str() == "_Z5twicei").count(), 1);
}

/// Every byte of a few fixtures, overwritten with values that break LEBs, counts and
/// indices: the link fails or succeeds, but never panics, and a success validates unless the
/// corrupted object itself does not (a copied body is left to its input, as wasm-ld leaves
/// it: `pymode_linker::unchanged`).
fn corrupted_objects_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.o");
    let opts = options(&[&path]);
    let mut links = 0;
    for name in ["method_table", "extern_data", "static_fn_escape", "ctor"] {
        links += sweep(&path, &opts, name, Mode::PicO2);
    }
    assert!(links > 1000, "only {links} links");
}

/// The same for non-PIC objects, whose code the linker parses and rewrites.
fn corrupted_non_pic_objects_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.o");
    let opts = options(&[&path]);
    let mut links = 0;
    for (name, mode) in [("method_table", Mode::NopicO2), ("extern_data", Mode::NopicO2), ("ctor", Mode::NopicO0)] {
        links += sweep(&path, &opts, name, mode);
    }
    assert!(links > 1000, "only {links} links");
}

/// Links every one-byte corruption of a fixture; returns how many links ran.
fn sweep(path: &std::path::Path, opts: &pymode_linker::Options, name: &str, mode: Mode) -> usize {
    let mut links = 0;
    let original = std::fs::read(fixture_object(name, mode)).unwrap();
    // The uncorrupted object is a valid module, so an invalid copy is the corruption's.
    std::fs::write(path, &original).unwrap();
    let linked = pymode_linker::link_to_bytes(opts).unwrap();
    pymode_linker::emit::validate_input(&original, &linked).unwrap();
    for at in 8..original.len() {
        for value in [0x00u8, 0xff] {
            if original[at] == value {
                continue;
            }
            let mut bytes = original.clone();
            bytes[at] = value;
            std::fs::write(path, &bytes).unwrap();
            let result = std::panic::catch_unwind(|| pymode_linker::link_to_bytes(opts));
            match result {
                Err(_) => panic!("{mode}/{name}: panic with byte 0x{at:x} set to 0x{value:02x}"),
                Ok(Ok(out)) => {
                    if let Err(e) = pymode_linker::emit::validate(&out) {
                        assert!(
                            pymode_linker::emit::validate_input(&bytes, &out).is_err(),
                            "{mode}/{name}: byte 0x{at:x} set to 0x{value:02x}: the object validates, the output does not: {e}"
                        );
                    }
                }
                Ok(Err(_)) => {}
            }
            links += 1;
        }
    }
    links
}

/// Every fixture in one module, in each mode: validation skips exactly the copied bodies
/// (`pymode_linker::unchanged` proves each of them), checks the rewritten and synthesized
/// ones, and the whole output validates in full.
fn copied_bodies_are_proven_unchanged() {
    for mode in [Mode::PicO0, Mode::PicO2, Mode::NopicO0, Mode::NopicO2] {
        let objects: Vec<std::path::PathBuf> = pymode_testdata::fixture_names().iter().map(|n| fixture_object(n, mode)).collect();
        let paths: Vec<&std::path::Path> = objects.iter().map(|p| p.as_path()).collect();
        let opts = options(&paths);
        let encoded = pymode_linker::build(&opts).unwrap();
        pymode_linker::emit::validate(&encoded.bytes).unwrap();
        let module = pymode_abi::object::Object::parse("all.so", &encoded.bytes).unwrap();
        assert_eq!(encoded.check_body.len(), module.functions.len(), "{mode}");
        let synthesized = if module.exports.iter().any(|e| e.name == "__wasm_apply_data_relocs") { 2 } else { 1 };
        let (objects_part, synth_part) = encoded.check_body.split_at(encoded.check_body.len() - synthesized);
        assert!(synth_part.iter().all(|&c| c), "{mode}: synthesized bodies are validated");
        let checked = objects_part.iter().filter(|&&c| c).count();
        match mode {
            Mode::PicO0 | Mode::PicO2 => assert_eq!(checked, 0, "{mode}: every copied body is proven"),
            // The rewritten bodies are checked, the copied rest proven.
            Mode::NopicO0 | Mode::NopicO2 => assert!(checked > 0 && checked < objects_part.len(), "{mode}: {checked} checked"),
        }
    }
}
