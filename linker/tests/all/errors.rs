//! Error paths: each gives lld's wording, names the file (and archive member) and the symbol,
//! and never leaves an output file behind.

use crate::common::*;
use pymode_abi::dylink::SymbolFlags;
use pymode_abi::object::Object;
use pymode_linker::PicRewrite;
use pymode_testdata::trials::Trial;
use pymode_testdata::{Mode, fixture_object};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        duplicate_strong_definitions_name_both_files,
        strong_definition_beats_weak_and_first_weak_wins,
        non_pic_object_is_refused_like_lld,
        every_non_pic_fixture_with_addresses_is_refused_without_the_rewrite,
        corrupt_archive_is_an_error_not_a_panic,
        undefined_weak_is_imported_and_marked_weak,
        unknown_flag_is_an_error,
        failed_link_leaves_no_output_and_keeps_an_old_one,
        #[cfg(unix)]
        output_is_readable_by_everyone,
        export_of_undefined_symbol_is_an_error,
        missing_library_and_file_are_errors,
        undefined_hidden_symbol_names_the_archive_member,
    ]
}

fn duplicate_strong_definitions_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = compile(dir.path(), "a", "int dup(void) { return 1; }\n", &[]);
    let b = compile(dir.path(), "b", "int dup(void) { return 2; }\n", &[]);
    let err = link_err(&options(&[&a, &b]));
    assert!(err.starts_with("duplicate symbol: dup"), "{err}");
    assert!(err.contains(&format!(">>> defined in {}", a.display())), "{err}");
    assert!(err.contains(&format!(">>> defined in {}", b.display())), "{err}");
}

fn strong_definition_beats_weak_and_first_weak_wins() {
    let dir = tempfile::tempdir().unwrap();
    let weak =
        compile(dir.path(), "weak", "__attribute__((weak)) int pick(void) { return 1; }\nint use_pick(void) { return pick(); }\n", &[]);
    let weak2 = compile(dir.path(), "weak2", "__attribute__((weak)) int pick(void) { return 3; }\n", &[]);
    let strong = compile(dir.path(), "strong", "int pick(void) { return 2; }\n", &[]);
    // Two weak definitions and a strong one: the strong one is kept, wherever it comes.
    assert_eq!(pick_constant(&link_ok(&options(&[&weak, &weak2, &strong]))), 2);
    // Two weak ones: the first is kept.
    assert_eq!(pick_constant(&link_ok(&options(&[&weak, &weak2]))), 1);
    assert_eq!(pick_constant(&link_ok(&options(&[&weak2, &weak]))), 3);
}

/// The constant that the exported `pick` (`return N;`) returns: its body is
/// `locals; i32.const N; end`.
fn pick_constant(bytes: &[u8]) -> u8 {
    let module = Object::parse("out", bytes).unwrap();
    let export = module.exports.iter().find(|e| e.name == "pick").expect("pick exported");
    let body = &module.functions[export.index as usize - module.imported_funcs.len()].body;
    match &bytes[body.clone()] {
        [0, 0x41, n, 0x0b] => *n,
        other => panic!("unexpected body of pick: {other:02x?}"),
    }
}

/// With `--pic-rewrite=off`, a non-PIC object gets wasm-ld's error (by default it is
/// rewritten: pic_rewrite.rs).
fn non_pic_object_is_refused_like_lld() {
    let object = fixture_object("method_table", Mode::NopicO2);
    let mut opts = options(&[&object]);
    opts.pic_rewrite = PicRewrite::Off;
    let err = link_err(&opts);
    assert!(err.starts_with(&format!("{}: relocation R_WASM_", object.display())), "{err}");
    assert!(err.contains("cannot be used against symbol `"), "{err}");
    assert!(err.ends_with("`; recompile with -fPIC"), "{err}");
    // wasm-ld refuses the same object.
    let dir = tempfile::tempdir().unwrap();
    let theirs = pymode_testdata::wasm_ld()
        .args(["--shared", "--experimental-pic", "--unresolved-symbols=import-dynamic"])
        .arg(&object)
        .arg("-o")
        .arg(dir.path().join("x.so"))
        .output()
        .unwrap();
    assert!(!theirs.status.success());
    assert!(String::from_utf8_lossy(&theirs.stderr).contains("recompile with -fPIC"));
}

fn every_non_pic_fixture_with_addresses_is_refused_without_the_rewrite() {
    let mut refused = 0;
    for mode in [Mode::NopicO0, Mode::NopicO2] {
        for name in pymode_testdata::fixture_names() {
            let object = fixture_object(&name, mode);
            let mut opts = options(&[&object]);
            opts.pic_rewrite = PicRewrite::Off;
            // Either refused with the -fPIC message, or (no address taken anywhere) linked
            // into a module that validates.
            match pymode_linker::link_to_bytes(&opts) {
                Ok(bytes) => pymode_linker::emit::validate(&bytes).unwrap(),
                Err(e) => {
                    assert!(e.to_string().ends_with("recompile with -fPIC"), "{mode}/{name}: {e}");
                    refused += 1;
                }
            }
        }
    }
    assert!(refused > 0, "some non-PIC fixture uses an absolute address");
}

fn corrupt_archive_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("libgarbage.a");
    std::fs::write(&garbage, b"!<arch>\nthis is not an archive header at all").unwrap();
    let err = link_err(&options(&[&garbage]));
    assert!(err.contains("libgarbage.a: malformed archive"), "{err}");

    // A well-formed archive whose member is a truncated object: the reader's error names
    // the member as `libx.a(y.o)`.
    let good = std::fs::read(fixture_object("extern_calls", Mode::PicO2)).unwrap();
    let truncated = dir.path().join("libx.a");
    write_plain_archive(&truncated, &[("y.o", &good[..good.len() / 2])]);
    let err = link_err(&options(&[&truncated]));
    assert!(err.contains("libx.a(y.o)"), "{err}");
}

fn undefined_weak_is_imported_and_marked_weak() {
    let object = fixture_object("weak", Mode::PicO2);
    let bytes = link_ok(&options(&[&object]));
    let module = Object::parse("weak.so", &bytes).unwrap();
    let dylink = module.dylink0.unwrap();
    let weak_undefined = SymbolFlags::BINDING_WEAK | SymbolFlags::UNDEFINED;
    for module_name in ["env", "GOT.func"] {
        assert!(
            dylink.import_info.iter().any(|i| i.module == module_name && i.field == "maybe_missing" && i.flags == weak_undefined),
            "{module_name}.maybe_missing not weak in {:?}",
            dylink.import_info
        );
    }
    // The weak *defined* function is not in IMPORT_INFO and binds locally.
    assert!(!dylink.import_info.iter().any(|i| i.field == "weak_value"));
    assert!(!import_names(&bytes).iter().any(|(_, f)| f == "weak_value"));
}

fn unknown_flag_is_an_error() {
    let out = run_ld(["--frobnicate", "x.o", "-o", "x.so"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "pymode-ld: error: unknown argument: --frobnicate\n");
}

fn failed_link_leaves_no_output_and_keeps_an_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let object = fixture_object("method_table", Mode::NopicO2);
    let out = dir.path().join("out.so");
    let off = "--pic-rewrite=off".as_ref();
    let run = run_ld([off, object.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("recompile with -fPIC"));
    assert!(!out.exists(), "no output on error");
    std::fs::write(&out, b"old").unwrap();
    let run = run_ld([off, object.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(!run.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    // No temporary files left in the directory either.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[cfg(unix)]
fn output_is_readable_by_everyone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.so");
    let object = fixture_object("extern_calls", Mode::PicO2);
    let run = run_ld([object.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(run.status.success());
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o755);
}

fn export_of_undefined_symbol_is_an_error() {
    let object = fixture_object("extern_calls", Mode::PicO2);
    let mut opts = options(&[&object]);
    opts.exports.push("no_such_symbol".into());
    assert_eq!(link_err(&opts), "--export: undefined symbol: no_such_symbol");
}

fn missing_library_and_file_are_errors() {
    let out = run_ld(["-lnope", "-o", "/nonexistent/x.so"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "pymode-ld: error: unable to find library -lnope\n");
    let out = run_ld(["/nonexistent/a.o", "-o", "/nonexistent/x.so"]);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("pymode-ld: error: cannot open /nonexistent/a.o:"));
}

fn undefined_hidden_symbol_names_the_archive_member() {
    let dir = tempfile::tempdir().unwrap();
    // Hidden data must be defined in this module: code reaches it relative to __memory_base.
    let y = compile(
        dir.path(),
        "y",
        "extern int hidden_x __attribute__((visibility(\"hidden\")));\nint get_hidden(void) { return hidden_x; }\n",
        &[],
    );
    let archive = dir.path().join("libx.a");
    write_plain_archive(&archive, &[("y.o", &std::fs::read(&y).unwrap())]);
    let main = compile(dir.path(), "main", "int get_hidden(void);\nint main_check(void) { return get_hidden(); }\n", &[]);
    let err = link_err(&options(&[&main, &archive]));
    assert_eq!(err, format!("{}(y.o): undefined symbol: hidden_x", archive.display()));
    let out = run_ld([main.as_os_str(), archive.as_os_str(), "-o".as_ref(), dir.path().join("x.so").as_os_str()]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("pymode-ld: error: {err}\n"));
}
