//! Benchmarks live under `benches/benches/`; this crate carries their dependencies and the
//! WAT main module the loader benchmarks share, built from the loader tests' text
//! (`pymode_testdata::wat`), and the runner of the benchmarks whose timing loop is a C main
//! module ([`run_with_loader`]).

use pymode_loader::{LibRoot, Loader, LoaderConfig, WasiHost, add_to_linker};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The loader tests' allocator ([`pymode_testdata::wat::ALLOCATOR`]): a 16-byte header per
/// block, `free` pushes onto a list, `malloc` takes the smallest free block that fits, else
/// bumps.
pub use pymode_testdata::wat::ALLOCATOR;

/// What the loader needs of a main module, plus a data symbol: the shared exports
/// ([`pymode_testdata::wat::MAIN_EXPORTS`]) and a growable 64-slot table. It imports nothing,
/// so a benchmark instantiates it without a linker. Displays as WAT text, for `format!`.
pub const MAIN: MainWat = MainWat;

/// The type of [`MAIN`].
#[derive(Debug, Clone, Copy)]
pub struct MainWat;

impl fmt::Display for MainWat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}  (table (export \"__indirect_function_table\") 64 funcref)", pymode_testdata::wat::MAIN_EXPORTS)
    }
}

/// Runs `main_wasm`, a WASI command whose `main` times something and prints it, with the
/// loader attached and `lib` mounted at `/lib` (where its side modules are). Panics unless it
/// exits 0: a benchmark has no one to report an error to.
pub fn run_with_loader(main_wasm: &Path, lib: &Path) {
    let mut config = Config::new();
    config.wasm_bulk_memory(true).wasm_multi_value(true).wasm_extended_const(true);
    let engine = Engine::new(&config).expect("engine");
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio().preopened_dir(lib, "/lib", FsPerms::ReadWrite).expect("preopen /lib");
    let mut store = Store::new(&engine, WasiHost { wasi: wasi.build_p1(), loader: None });
    let mut linker: Linker<WasiHost> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut WasiHost| &mut h.wasi).expect("wasi imports");
    add_to_linker(&mut linker).expect("pymode imports");
    let module = Module::from_file(&engine, main_wasm).expect("compile main.wasm");
    let instance = linker.instantiate(&mut store, &module).expect("instantiate main.wasm");
    let config = LoaderConfig { roots: vec![LibRoot::mapped(lib, "/lib")], ..LoaderConfig::default() };
    let loader = Loader::attach(&mut store, &instance, config).expect("attach the loader");
    store.data_mut().loader = Some(loader);
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").expect("_start");
    if let Err(e) = start.call(&mut store, ()) {
        // wasi-libc's exit(0) after main returns is an I32Exit(0) error.
        match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(wasmtime_wasi::I32Exit(0)) => {}
            _ => panic!("main.wasm: {e:?}"),
        }
    }
}

/// User + system time of all waited-for children of this process so far (the process-against-
/// process benchmarks take the difference around each child they run).
pub fn children_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` into the pointer it is given, which points
    // to one, and RUSAGE_CHILDREN is a valid `who`.
    #[allow(unsafe_code)]
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()), 0, "getrusage");
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The median of `v` (sorted in place; the upper one of an even count).
pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Builds `bin` of the workspace package `package` with `cargo build --release` and returns
/// its path (under `$CARGO_TARGET_DIR` when set): the process-against-process benchmarks
/// measure the release binaries.
pub fn release_binary(package: &str, bin: &str) -> std::path::PathBuf {
    let root = pymode_testdata::workspace_root();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", package, "--bin", bin])
        .current_dir(&root)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    target.join("release").join(bin)
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), printed beside the figures
/// because a busy machine moves them; empty where the file is missing.
pub fn load_average() -> String {
    std::fs::read_to_string(Path::new("/proc/loadavg"))
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
