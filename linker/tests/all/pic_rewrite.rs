//! The PIC rewrite's limits and switch: what it does not rewrite is a typed error that names
//! the object, the function, the relocation, its symbol and its offset; `--pic-rewrite=off`
//! restores wasm-ld's error. (That rewritten fixtures behave like their PIC builds is
//! checked in behaviour.rs and in the loader's fixture tests.)

use crate::common::*;
use pymode_linker::PicRewrite;
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![simd_access_at_an_absolute_address_is_a_named_error, command_line_switch,]
}

/// A SIMD load from a global's absolute address is not rewritten: the error says where.
fn simd_access_at_an_absolute_address_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let source = "typedef int v4 __attribute__((vector_size(16)));\nv4 g;\nv4 get_g(void) { return g; }\n";
    let object = compile(dir.path(), "simd", source, &["-O2", "-msimd128"]);
    let err = link_err(&options(&[&object]));
    let expected = format!(
        "{}: cannot rewrite function `get_g` to position-independent code: relocation R_WASM_MEMORY_ADDR_LEB against `g` at body offset 0x",
        object.display()
    );
    assert!(err.starts_with(&expected), "{err}");
    assert!(err.ends_with("not a scalar load or store (SIMD and atomic accesses are not rewritten)"), "{err}");
    let mut opts = options(&[&object]);
    opts.pic_rewrite = PicRewrite::Off;
    assert_eq!(
        link_err(&opts),
        format!("{}: relocation R_WASM_MEMORY_ADDR_LEB cannot be used against symbol `g`; recompile with -fPIC", object.display())
    );
}

/// The switch on the command line: the same object links by default and with
/// `--pic-rewrite=on`, and is refused with `--pic-rewrite off`.
fn command_line_switch() {
    let dir = tempfile::tempdir().unwrap();
    let object = compile(dir.path(), "addr", "int x = 3;\nint *addr_of_x(void) { return &x; }\n", &["-O2"]);
    let out = dir.path().join("x.so");
    for on in [&[][..], &["--pic-rewrite=on"][..]] {
        let run = run_ld(on.iter().map(|s| s.as_ref()).chain([object.as_os_str(), "-o".as_ref(), out.as_os_str()]));
        assert!(run.status.success(), "{on:?}: {}", String::from_utf8_lossy(&run.stderr));
    }
    let run = run_ld(["--pic-rewrite".as_ref(), "off".as_ref(), object.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(!run.status.success());
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        format!(
            "pymode-ld: error: {}: relocation R_WASM_MEMORY_ADDR_SLEB cannot be used against symbol `x`; recompile with -fPIC\n",
            object.display()
        )
    );
}
