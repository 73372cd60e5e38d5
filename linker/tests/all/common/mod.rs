//! Helpers shared by the linker's integration tests: compile small C snippets with the
//! provisioned zig, run `pymode-ld` as a library or as the binary.

pub mod differential;

use pymode_abi::object::Object;
use pymode_linker::{Options, options::InputSpec};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Compiles `source` as `dir/name.c` with zig (`-fPIC -O2` unless `flags` says otherwise)
/// and returns the object's path.
pub fn compile(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, source).unwrap();
    let flags: Vec<&str> = if flags.is_empty() { vec!["-fPIC", "-O2"] } else { flags.to_vec() };
    let output =
        pymode_testdata::zig_cc().args(pymode_testdata::COMMON_CFLAGS).args(&flags).arg(&c).arg("-o").arg(&o).output().expect("run zig cc");
    assert!(output.status.success(), "zig cc {name}.c failed: {}", String::from_utf8_lossy(&output.stderr));
    o
}

/// Options linking these files with our defaults.
pub fn options(files: &[&Path]) -> Options {
    Options { inputs: files.iter().map(|f| InputSpec::File(f.to_path_buf())).collect(), ..Options::default() }
}

/// Links with the library API; panics with the error on failure.
pub fn link_ok(opts: &Options) -> Vec<u8> {
    pymode_linker::link_to_bytes(opts).unwrap_or_else(|e| panic!("link failed: {e}"))
}

/// Links with the library API and returns the error's text.
pub fn link_err(opts: &Options) -> String {
    match pymode_linker::link_to_bytes(opts) {
        Ok(_) => panic!("link unexpectedly succeeded"),
        Err(e) => e.to_string(),
    }
}

/// Runs the `pymode-ld` binary.
pub fn run_ld<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    std::process::Command::new(env!("CARGO_BIN_EXE_pymode-ld")).args(args).output().expect("run pymode-ld")
}

/// The export names of a module.
pub fn export_names(bytes: &[u8]) -> Vec<String> {
    let module = Object::parse("out", bytes).unwrap();
    module.exports.iter().map(|e| e.name.to_owned()).collect()
}

/// The `(module, field)` of every import.
pub fn import_names(bytes: &[u8]) -> Vec<(String, String)> {
    let module = Object::parse("out", bytes).unwrap();
    module.imports.iter().map(|i| (i.module.to_owned(), i.field.to_owned())).collect()
}

/// Writes a Unix `ar` archive without a symbol index holding `members`.
pub fn write_plain_archive(path: &Path, members: &[(&str, &[u8])]) {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!("{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", format!("{name}/"), 0, 0, 0, 644, data.len());
        assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    std::fs::write(path, out).unwrap();
}
