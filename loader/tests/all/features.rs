//! Side modules whose code uses wasm features beyond zig's defaults: a C function built with
//! `-msimd128` (`testdata/features/simd.c`, in the fixtures' four modes: with and without
//! `-fPIC`, -O0 and -O2) and one built with `-mreference-types`, linked by pymode-ld, load
//! and compute the right result; on an engine without SIMD the load fails cleanly and leaves
//! the heap and the table as they were.
#![allow(clippy::result_large_err)]

use crate::common::*;
use pymode_abi::host::rtld;
use pymode_linker::Options;
use pymode_linker::options::InputSpec;
use pymode_testdata::trials::Trial;
use pymode_testdata::{COMMON_CFLAGS, Mode, SIMD_SOURCE, run_ok, zig_cc};
use std::path::Path;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        simd_side_modules_load_and_compute,
        reference_types_side_module_loads_and_computes,
        an_engine_without_simd_refuses_the_module_and_stays_intact,
    ]
}

/// `reftypes_check()` calls through a function pointer (a `call_indirect` whose table
/// index is a relocation when reference types are on): 42.
const REFTYPES_SOURCE: &str = r#"
static int twice(int x) { return 2 * x; }
int (*volatile op)(int) = twice;
int reftypes_check(void) { return op(21); }
"#;

/// Compiles `source` with `flags` and links it alone with pymode-ld.
fn side_module(dir: &Path, name: &str, source: &str, flags: &[&str]) -> Vec<u8> {
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, source).unwrap();
    run_ok(zig_cc().args(COMMON_CFLAGS).args(flags).arg(&c).arg("-o").arg(&o));
    let opts = Options { inputs: vec![InputSpec::File(o)], ..Options::default() };
    pymode_linker::link_to_bytes(&opts).unwrap_or_else(|e| panic!("pymode-ld {name}: {e}"))
}

fn simd_side_modules_load_and_compute() {
    let tmp = tempfile::tempdir().unwrap();
    for mode in [Mode::PicO2, Mode::PicO0, Mode::NopicO2, Mode::NopicO0] {
        let flags: Vec<&str> = mode.cflags().iter().copied().chain(["-msimd128"]).collect();
        let bytes = side_module(tmp.path(), "simd", SIMD_SOURCE, &flags);
        let mut env = env();
        env.write("simd.so", &bytes);
        let handle = env.open("simd.so", rtld::NOW).unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        assert_eq!(env.call_sym(handle, "simd_check"), 136, "{flags:?}");
        env.close(handle).unwrap();
    }
}

fn reference_types_side_module_loads_and_computes() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = side_module(tmp.path(), "reftypes", REFTYPES_SOURCE, &["-fPIC", "-O2", "-mreference-types"]);
    let mut env = env();
    env.write("reftypes.so", &bytes);
    let handle = env.open("reftypes.so", rtld::NOW).unwrap();
    assert_eq!(env.call_sym(handle, "reftypes_check"), 42);
}

fn an_engine_without_simd_refuses_the_module_and_stays_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = side_module(tmp.path(), "simd", SIMD_SOURCE, &["-fPIC", "-O2", "-msimd128"]);
    let mut config = wasmtime::Config::new();
    config.wasm_simd(false).wasm_relaxed_simd(false);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let mut env = env_on(&engine, &default_main_wat(), |_| {});
    env.write("simd.so", &bytes);
    let (heap, table) = (env.heap_top(), env.table_size());
    let err = env.open("simd.so", rtld::NOW).expect_err("SIMD module loaded on an engine without SIMD").to_string();
    assert!(err.contains("simd.so") && err.contains("SIMD"), "{err}");
    assert_eq!((env.heap_top(), env.table_size()), (heap, table));
    // A module without SIMD still loads on that engine.
    let plain = side_module(tmp.path(), "reftypes", REFTYPES_SOURCE, &["-fPIC", "-O2"]);
    env.write("plain.so", &plain);
    let handle = env.open("plain.so", rtld::NOW).unwrap();
    assert_eq!(env.call_sym(handle, "reftypes_check"), 42);
}
