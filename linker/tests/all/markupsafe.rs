//! markupsafe's `_speedups.c` (built by `cargo xtask build-ext markupsafe` against the wasm
//! CPython 3.13 headers), compiled here at -O0 and -O2 with `-fPIC`, linked by `pymode-ld`
//! and by wasm-ld, compared as the fixtures are (`common/differential.rs`).
//!
//! Needs `cargo xtask cpython` and `cargo xtask build-ext markupsafe` (both run by
//! `cargo xtask test`); fails loudly without them.

use crate::common::differential::compare_with_wasm_ld;
use pymode_testdata::trials::Trial;
use pymode_testdata::{COMMON_CFLAGS, MARKUPSAFE_VERSION, cpython_prefix, ext_dir, zig_cc};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![markupsafe_speedups_matches_wasm_ld,]
}

fn markupsafe_speedups_matches_wasm_ld() {
    let source = ext_dir("markupsafe").join("src").join(format!("markupsafe-{MARKUPSAFE_VERSION}")).join("src/markupsafe/_speedups.c");
    assert!(source.is_file(), "{} is missing: run `cargo xtask build-ext markupsafe` (or `cargo xtask test`) first", source.display());
    let include = cpython_prefix().join("include").join("python3.13");
    let dir = tempfile::tempdir().unwrap();
    for opt in ["-O0", "-O2"] {
        let object = dir.path().join(format!("_speedups{opt}.o"));
        let out = zig_cc()
            .args(COMMON_CFLAGS)
            .args(["-fPIC", opt, "-fno-sanitize=undefined", "-I"])
            .arg(&include)
            .arg(&source)
            .arg("-o")
            .arg(&object)
            .output()
            .expect("run zig cc");
        assert!(out.status.success(), "zig cc _speedups.c {opt}: {}", String::from_utf8_lossy(&out.stderr));
        compare_with_wasm_ld(&format!("markupsafe _speedups {opt}"), &object, &dir.path().join(format!("_speedups{opt}.so")));
    }
}
