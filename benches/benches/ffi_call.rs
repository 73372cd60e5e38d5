//! The cost of a call through libffi over the host (`ffi_call` in `abi/c/pymode_ffi.c`, the
//! host's `pymode.ffi_call`: what every ctypes call of a C function pays) against a direct
//! indirect call of the same function, and of a call of an FFI closure (a host function in a
//! table slot that calls back into the guest's dispatcher) against a direct call of the C
//! function it wraps, measured in the same run.
//!
//! A C main module built with zig (the dlfcn shim and the FFI layer linked in; its
//! `pymode.ffi_*` imports are `add_to_linker`'s) `dlopen`s a side module with
//! `int add2(int, int)`, then times 200,000 calls of each kind, interleaved, seven rounds,
//! the fastest round of each. Prints ns per call and the ratios.

use pymode_linker::{Options, options::InputSpec};
use pymode_testdata::{COMMON_CFLAGS, c_main_module, run_ok, zig_cc};

const MAIN_C: &str = r#"#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "ffi.h"

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int add2_c(int a, int b) { return a + b; }
static void add2_closure(ffi_cif *cif, void *ret, void **args, void *user) {
    *(ffi_arg *)ret = (ffi_arg)(*(int *)args[0] + *(int *)args[1]);
}

int main(void) {
    void *lib = dlopen("/lib/two.so", RTLD_NOW);
    int (*add2)(int, int) = (int (*)(int, int))dlsym(lib, "add2");
    if (!add2) { printf("dlopen/dlsym failed: %s\n", dlerror()); return 1; }
    ffi_cif cif;
    ffi_type *ii[] = {&ffi_type_sint, &ffi_type_sint};
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, ii) != FFI_OK) return 2;
    void *code = NULL;
    ffi_closure *cl = ffi_closure_alloc(sizeof(ffi_closure), &code);
    if (cl == NULL || ffi_prep_closure_loc(cl, &cif, add2_closure, NULL, code) != FFI_OK) return 3;
    int (*volatile closure)(int, int) = (int (*)(int, int))code;
    int (*volatile direct_c)(int, int) = add2_c;
    const int n = 200000;
    double direct = 1e30, via_ffi = 1e30, c_direct = 1e30, via_closure = 1e30;
    int acc = 0, one = 1;
    for (int round = 0; round < 7; round++) {
        double t0 = now_ns();
        for (int i = 0; i < n; i++) acc = add2(acc, 1);
        double t1 = now_ns();
        for (int i = 0; i < n; i++) {
            ffi_arg r;
            void *args[] = {&acc, &one};
            ffi_call(&cif, (void (*)(void))add2, &r, args);
            acc = (int)r;
        }
        double t2 = now_ns();
        for (int i = 0; i < n; i++) acc = direct_c(acc, 1);
        double t3 = now_ns();
        for (int i = 0; i < n; i++) acc = closure(acc, 1);
        double t4 = now_ns();
        if (t1 - t0 < direct) direct = t1 - t0;
        if (t2 - t1 < via_ffi) via_ffi = t2 - t1;
        if (t3 - t2 < c_direct) c_direct = t3 - t2;
        if (t4 - t3 < via_closure) via_closure = t4 - t3;
    }
    printf("ffi_call/direct         %.2f ns per call\n", direct / n);
    printf("ffi_call/ffi_call       %.2f ns per call\n", via_ffi / n);
    printf("ffi_call/ratio          %.1f (ffi_call / direct)\n", via_ffi / direct);
    printf("ffi_closure/direct      %.2f ns per call\n", c_direct / n);
    printf("ffi_closure/closure     %.2f ns per call\n", via_closure / n);
    printf("ffi_closure/ratio       %.1f (closure / direct)\n", via_closure / c_direct);
    ffi_closure_free(cl);
    return acc == 4 * 7 * n ? 0 : 4;
}
"#;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).expect("lib dir");
    let side_c = dir.path().join("two.c");
    std::fs::write(&side_c, "int add2(int a, int b) { return a + b; }\n").expect("write two.c");
    let side_o = dir.path().join("two.o");
    run_ok(zig_cc().args(COMMON_CFLAGS).args(["-fPIC", "-O2"]).arg(&side_c).arg("-o").arg(&side_o));
    let opts = Options { inputs: vec![InputSpec::File(side_o)], output: Some(lib.join("two.so")), ..Options::default() };
    pymode_linker::link(&opts).expect("pymode-ld two.so");
    let main_c = dir.path().join("main.c");
    std::fs::write(&main_c, MAIN_C).expect("write main.c");
    let main_wasm = dir.path().join("main.wasm");
    let ffi_c = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../abi/c/pymode_ffi.c");
    run_ok(c_main_module(&main_c, &main_wasm, &[]).arg(ffi_c));

    pymode_benches::run_with_loader(&main_wasm, &lib);
}
