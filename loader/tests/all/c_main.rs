//! A C main module (`tests/c/main_dl.c`, wasi-libc's dlmalloc, the abi/c dlfcn shim) built
//! with zig, run by `pymode-run`, loading the wasm-ld-linked fixtures and a C side module
//! (`tests/c/side_cmp.c`) from a preopened `/lib`. The guest checks behaviour and prints
//! one `ok NAME` line per check; the exit code is its failure count. Needs the toolchain and
//! the fixtures (`cargo xtask fixtures`): fails loudly without them.

use pymode_testdata::trials::Trial;
use std::path::{Path, PathBuf};
use std::process::Command;

use pymode_linker::Options;
use pymode_linker::options::InputSpec;
use pymode_testdata::{
    COMMON_CFLAGS, Mode, WASM_LD_SIDE_MODULE_FLAGS, c_main_module, fixture_names, fixture_side_module, run_ok, wasm_ld, zig_cc,
};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        c_main_loads_fixtures_pic_o2,
        c_main_loads_fixtures_pic_o0,
        the_call_trampoline_asks_again_after_dlclose_reuses_a_slot,
    ]
}

const RUN: &str = env!("CARGO_BIN_EXE_pymode-run");

fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c")
}

/// The main module: exports its table (growable), allocator, stack pointer, qsort and
/// __cxa_atexit, and every function it defines (--export-dynamic).
fn build_main(out: &Path) {
    run_ok(&mut c_main_module(
        &c_dir().join("main_dl.c"),
        out,
        // qsort for the comparator test; -O0 objects use the stack protector (zig links it
        // from compiler-rt).
        &["qsort", "__cxa_atexit", "__stack_chk_guard", "__stack_chk_fail"],
    ));
}

fn build_side(src: &Path, mode: Mode, dir: &Path, out: &Path) {
    let obj = dir.join("side.o");
    run_ok(zig_cc().args(COMMON_CFLAGS).args(mode.cflags()).arg(src).arg("-o").arg(&obj));
    run_ok(wasm_ld().args(WASM_LD_SIDE_MODULE_FLAGS).arg(&obj).arg("-o").arg(out));
}

/// `chain/c1.so` → `chain/deps/libc2.so` → `chain/deps/libc3.so`, linked by pymode-ld with
/// the dependency as an input (a NEEDED entry) and `$ORIGIN` RUNTIME_PATHs.
fn build_chain(mode: Mode, tmp: &Path, lib: &Path) {
    let deps = lib.join("chain/deps");
    std::fs::create_dir_all(&deps).unwrap();
    let link = |src: &str, name: &str, needed: Option<PathBuf>, rpath: &str, out: PathBuf| {
        let c = tmp.join(format!("{name}.c"));
        std::fs::write(&c, src).unwrap();
        let obj = tmp.join(format!("{name}.o"));
        run_ok(zig_cc().args(COMMON_CFLAGS).args(mode.cflags()).arg(&c).arg("-o").arg(&obj));
        let mut inputs = vec![InputSpec::File(obj)];
        inputs.extend(needed.map(InputSpec::File));
        let opts = Options { inputs, rpath: vec![rpath.to_owned()], output: Some(out), ..Options::default() };
        pymode_linker::link(&opts).unwrap_or_else(|e| panic!("pymode-ld {name}: {e}"));
    };
    link("int c3(void) { return 3; }", "c3", None, "$ORIGIN", deps.join("libc3.so"));
    link(
        "extern int c3(void); int c2(void) { return c3() * 10 + 2; }",
        "c2",
        Some(deps.join("libc3.so")),
        "$ORIGIN",
        deps.join("libc2.so"),
    );
    link(
        "extern int c2(void); int c1(void) { return c2() * 10 + 1; }",
        "c1",
        Some(deps.join("libc2.so")),
        "$ORIGIN/deps",
        lib.join("chain/c1.so"),
    );
}

fn run_checks(mode: Mode) {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    let main = tmp.path().join("main.wasm");
    build_main(&main);
    build_side(&c_dir().join("side_cmp.c"), mode, tmp.path(), &lib.join("side_cmp.so"));
    for name in fixture_names() {
        std::fs::copy(fixture_side_module(&name, mode), lib.join(format!("{name}.so"))).unwrap();
    }
    std::fs::copy(lib.join("static_fn_escape.so"), lib.join("static_fn_escape_copy.so")).unwrap();
    std::fs::copy(lib.join("dtor.so"), lib.join("dtor_closed.so")).unwrap();
    build_chain(mode, tmp.path(), &lib);

    let out = Command::new(RUN).arg("--dir").arg(format!("{}::/lib", lib.display())).arg(&main).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{mode}:\n{stdout}\n{stderr}");
    for check in [
        "bss_zeroed",
        "extern_calls",
        "fnptr_identity_main_and_two_sides",
        "fnptr_identity_dlsym_default",
        "fnptr_call",
        "cmp_identity",
        "qsort_main_with_side_cmp",
        "qsort_from_side",
        "ctor_ran_in_order",
        "ctor_once_same_handle",
        "data_pointer",
        "data_symbol_address",
        "extern_data",
        "rtld_local_hidden",
        "method_table",
        "rtld_global_visible",
        "static_fn_escape",
        "weak_undefined_is_null",
        "variadic",
        "i64_f64_across",
        "needed_chain_of_three",
        "needed_searched_through_handle",
        "needed_not_global",
        "aligned_1024",
        "missing_library_fails",
        "dlerror_names_library",
        "escape_refused",
        "open_close_heap_flat",
        "dtor_registered",
        "dtor_ran_at_dlclose",
    ] {
        assert!(stdout.lines().any(|l| l == format!("ok {check}")), "{mode}: no `ok {check}` in:\n{stdout}");
    }
    assert!(stdout.contains("5 five\n"), "the side module's variadic call reached the main's printf");
    // dlclose ran the closed copy's destructor then and there ...
    assert!(stdout.contains("dlclose dtor_closed.so\nunregister 9\nok dtor_ran_at_dlclose\n"), "{stdout}");
    // ... and wasi-libc's exit runs the loader's runner for the library still open, which
    // runs its destructor; the closed one's does not run twice.
    assert!(stdout.trim_end().ends_with("failures 0\nunregister 9"), "{stdout}");
}

fn c_main_loads_fixtures_pic_o2() {
    run_checks(Mode::PicO2);
}

fn c_main_loads_fixtures_pic_o0() {
    run_checks(Mode::PicO0);
}

/// `pymode_call_trampoline` (the shim's, which CPython's C-call macros use) caches each
/// function's arity by table index. A closed library's slots are reused; the cache must not
/// answer for the new function with the old one's arity, or the call would trap. A function
/// that returns nothing keeps that flag through the cache.
fn the_call_trampoline_asks_again_after_dlclose_reuses_a_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    let side = |name: &str, src: &str| {
        let c = tmp.path().join(format!("{name}.c"));
        std::fs::write(&c, src).unwrap();
        let obj = tmp.path().join(format!("{name}.o"));
        run_ok(zig_cc().args(COMMON_CFLAGS).args(["-fPIC", "-O2"]).arg(&c).arg("-o").arg(&obj));
        let opts = Options { inputs: vec![InputSpec::File(obj)], output: Some(lib.join(format!("{name}.so"))), ..Options::default() };
        pymode_linker::link(&opts).unwrap_or_else(|e| panic!("pymode-ld {name}: {e}"));
    };
    side("one", "int one(int a) { return a + 1; }");
    side("two", "int two(int a, int b) { return a * b; }");
    side("zap", "int zapped; void zap(int a) { zapped += a; } int zapped_total(void) { return zapped; }");
    let main_c = tmp.path().join("main.c");
    std::fs::write(
        &main_c,
        r#"#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include "pymode_dlfcn.h"
#define ARG(x) ((void *)(intptr_t)(x))
int main(void) {
    void *a = dlopen("/lib/one.so", RTLD_NOW);
    void *one = dlsym(a, "one");
    /* Called with three arguments through the trampoline: it takes one. */
    int r1 = (int)(intptr_t)pymode_call_trampoline(one, ARG(41), ARG(2), ARG(3));
    dlclose(a);
    void *b = dlopen("/lib/two.so", RTLD_NOW);
    void *two = dlsym(b, "two");
    int r2 = (int)(intptr_t)pymode_call_trampoline(two, ARG(6), ARG(7), ARG(8));
    /* A function that returns nothing (a tp_clear declared void), twice: the second call
       takes its arity from the cache, which must keep the no-result flag. */
    void *c = dlopen("/lib/zap.so", RTLD_NOW);
    void *zap = dlsym(c, "zap");
    int (*total)(void) = (int (*)(void))dlsym(c, "zapped_total");
    pymode_call_trampoline(zap, ARG(5), ARG(0), ARG(0));
    pymode_call_trampoline(zap, ARG(5), ARG(0), ARG(0));
    printf("one %d two %d same_slot %d zapped %d\n", r1, r2, one == two, total());
    return 0;
}
"#,
    )
    .unwrap();
    let main = tmp.path().join("main.wasm");
    run_ok(&mut c_main_module(&main_c, &main, &[]));
    let out = Command::new(RUN).arg("--dir").arg(format!("{}::/lib", lib.display())).arg(&main).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // same_slot 1: `two` took the slot `one` had, which is what the test is about.
    assert_eq!(stdout.trim(), "one 42 two 42 same_slot 1 zapped 10", "{stderr}");
}
