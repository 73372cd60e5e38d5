//! `pymode-readobj` as a command: output on a real object, and exit 1 with a one-line error
//! naming the file for anything that is not wasm.

use std::process::Command;

fn readobj() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pymode-readobj"))
}

#[test]
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

#[test]
fn prints_a_fixture_object() {
    let object = pymode_testdata::fixture_object("method_table", pymode_testdata::Mode::PicO2);
    let out = readobj().arg(&object).output().expect("run pymode-readobj");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind: relocatable object (linking v2)"), "{text}");
    assert!(text.contains("R_WASM_TABLE_INDEX_I32"), "{text}");
    assert!(text.contains("R_WASM_MEMORY_ADDR_REL_SLEB"), "{text}");
}
