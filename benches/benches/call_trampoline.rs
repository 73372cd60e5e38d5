//! The cost of the call trampoline (`pymode_call_trampoline` in the `abi/c` dlfcn shim, what
//! the wasm CPython's C-call macros go through) against a plain indirect call of the same
//! function, measured in the same run.
//!
//! A C main module built with zig (the shim linked in, as in python.wasm) `dlopen`s a side
//! module with `int add1(int)`, then times 10 million calls of it through its function
//! pointer and 10 million through the trampoline (which looks up the cached arity and calls
//! it with one argument), interleaved, seven rounds, the fastest round of each. It runs in
//! this process on wasmtime with WASI preview 1 and the loader, as `pymode-run` would.
//! Prints ns per call and the ratio trampoline / direct.

use pymode_linker::{Options, options::InputSpec};
use pymode_testdata::{COMMON_CFLAGS, c_main_module, run_ok, zig_cc};

const MAIN_C: &str = r#"#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "pymode_dlfcn.h"

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void) {
    void *lib = dlopen("/lib/one.so", RTLD_NOW);
    int (*add1)(int) = (int (*)(int))dlsym(lib, "add1");
    if (!add1) { printf("dlopen/dlsym failed: %s\n", dlerror()); return 1; }
    const int n = 10000000;
    double direct = 1e30, trampoline = 1e30;
    int acc = 0;
    for (int round = 0; round < 7; round++) {
        double t0 = now_ns();
        for (int i = 0; i < n; i++) acc = add1(acc);
        double t1 = now_ns();
        for (int i = 0; i < n; i++) acc = (int)(intptr_t)pymode_call_trampoline((void *)add1, (void *)(intptr_t)acc, 0, 0);
        double t2 = now_ns();
        if (t1 - t0 < direct) direct = t1 - t0;
        if (t2 - t1 < trampoline) trampoline = t2 - t1;
    }
    printf("call_trampoline/direct      %.2f ns per call\n", direct / n);
    printf("call_trampoline/trampoline  %.2f ns per call\n", trampoline / n);
    printf("call_trampoline/ratio       %.2f (trampoline / direct)\n", trampoline / direct);
    return acc == 14 * n ? 0 : 2;
}
"#;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).expect("lib dir");
    let side_c = dir.path().join("one.c");
    std::fs::write(&side_c, "int add1(int a) { return a + 1; }\n").expect("write one.c");
    let side_o = dir.path().join("one.o");
    run_ok(zig_cc().args(COMMON_CFLAGS).args(["-fPIC", "-O2"]).arg(&side_c).arg("-o").arg(&side_o));
    let opts = Options { inputs: vec![InputSpec::File(side_o)], output: Some(lib.join("one.so")), ..Options::default() };
    pymode_linker::link(&opts).expect("pymode-ld one.so");
    let main_c = dir.path().join("main.c");
    std::fs::write(&main_c, MAIN_C).expect("write main.c");
    let main_wasm = dir.path().join("main.wasm");
    run_ok(&mut c_main_module(&main_c, &main_wasm, &[]));

    pymode_benches::run_with_loader(&main_wasm, &lib);
}
