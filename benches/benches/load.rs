//! `dl_open`, the module cache and `dl_sym` of `pymode-loader`, each against a reference
//! measured in the same run.
//!
//! - `load/cold`: `dl_open` + `dl_close` of a side module with an empty cache (read, hash,
//!   compile, resolve, allocate, instantiate, relocate, constructors, unload) against bare
//!   `Module::new` + `Instance::new` of the same bytes with the same imports.
//! - `load/cached`: `dl_open` + `dl_close` with the module in the in-memory cache, and with it
//!   only in the disk cache (a fresh `ModuleCache` on a populated directory each time), against
//!   the cold open.
//! - `load/dl_sym`: `dl_sym` of a library's function (its canonical slot exists) and of the
//!   main module's data symbol through `DEFAULT_HANDLE`, against a `HashMap<String, u32>` lookup of the same name.
//!
//! The criterion groups use the `method_table` fixture (a PyMethodDef-like table: data
//! relocations, function pointers, strings) linked by wasm-ld at `pic-O2`, 1.3 KB. The summary
//! after them, a plain timing loop per figure with its reference interleaved in the same run,
//! covers that fixture and markupsafe's real `_speedups` side module as linked by `pymode-ld`
//! (the "markupsafe-sized module"). The main module is a WAT module with the loader
//! tests' first-fit allocator and, for each function the side module imports, a stub of the
//! same type (the reference instantiation gets the same ones). Needs the fixtures (`cargo
//! xtask fixtures`) and the built markupsafe (`cargo xtask build-ext markupsafe`).

use criterion::{Criterion, criterion_group, criterion_main};
use pymode_abi::host::{DEFAULT_HANDLE, rtld};
use pymode_benches::{ALLOCATOR, MAIN};
use pymode_loader::{Loader, LoaderConfig, ModuleCache};
use pymode_testdata::{Mode, fixture_side_module};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::{Engine, Extern, Global, GlobalType, Instance, Module, Mutability, Store, Val, ValType};

/// The side module's file name inside each library root.
const LIB: &str = "side.so";

/// The main module for `side`: [`MAIN`], the allocator, and an exported stub (it traps) for
/// every function `side` imports from `env`, with the imported type, so that both the loader
/// and the reference instantiation resolve every import.
fn main_module_wat(engine: &Engine, side: &[u8]) -> String {
    let module = Module::new(engine, side).expect("side module compiles");
    let mut stubs = String::new();
    for imp in module.imports() {
        // The allocator is real; everything else the side module calls is a stub.
        if let ("env", wasmtime::ExternType::Func(ty)) = (imp.module(), imp.ty())
            && !matches!(imp.name(), "malloc" | "free")
        {
            let params: String = ty.params().map(|p| format!(" {p}")).collect();
            let results: String = ty.results().map(|r| format!(" {r}")).collect();
            stubs.push_str(&format!("  (func (export \"{}\") (param{params}) (result{results}) unreachable)\n", imp.name()));
        }
    }
    format!("(module {MAIN} {ALLOCATOR}\n{stubs})")
}

/// A main-module instance with the loader attached; the library root is `dir`.
struct Env {
    store: Store<()>,
    main: Instance,
    loader: Loader,
}

fn env(engine: &Engine, dir: &Path) -> Env {
    let mut store = Store::new(engine, ());
    let wat = std::fs::read_to_string(dir.join("main.wat")).expect("main.wat");
    let module = Module::new(engine, wat).expect("main module");
    let main = Instance::new(&mut store, &module, &[]).expect("instantiate main");
    let loader = Loader::attach(&mut store, &main, LoaderConfig::with_roots([dir])).expect("attach");
    Env { store, main, loader }
}

/// A library root holding `side.so` and the matching `main.wat`.
fn root_for(engine: &Engine, bytes: &[u8]) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join(LIB), bytes).expect("write side module");
    std::fs::write(root.path().join("main.wat"), main_module_wat(engine, bytes)).expect("write main.wat");
    root
}

impl Env {
    fn open_close(&mut self) {
        let h = self.loader.dl_open(&mut self.store, LIB, rtld::NOW).expect("dl_open");
        self.loader.dl_close(&mut self.store, h).expect("dl_close");
    }

    fn cold(&mut self) {
        self.loader.set_cache(ModuleCache::new(None));
        self.open_close();
    }

    fn disk(&mut self, cache_dir: &Path) {
        self.loader.set_cache(ModuleCache::new(Some(cache_dir.to_owned())));
        self.open_close();
    }

    /// The reference: `Module::new` + `Instance::new` with the side module's imports taken
    /// from the main module (memory, table, stack pointer, functions) or made as globals
    /// (`__memory_base`, `__table_base`, `GOT.*`). No allocation, relocation or constructors.
    fn bare(&mut self, bytes: &[u8]) {
        let engine = self.store.engine().clone();
        let module = Module::new(&engine, bytes).expect("Module::new");
        let mut imports: Vec<Extern> = Vec::new();
        for imp in module.imports() {
            let ext = match (imp.module(), imp.name()) {
                ("env", "__memory_base") => const_i32(&mut self.store, 4096),
                ("env", "__table_base") => const_i32(&mut self.store, 0),
                ("env", name) => self.main.get_export(&mut self.store, name).unwrap_or_else(|| panic!("main has no {name}")),
                (m, _) if m.starts_with("GOT.") => {
                    let ty = GlobalType::new(ValType::I32, Mutability::Var);
                    Global::new(&mut self.store, ty, Val::I32(0)).expect("global").into()
                }
                (m, n) => panic!("unexpected import {m}.{n}"),
            };
            imports.push(ext);
        }
        black_box(Instance::new(&mut self.store, &module, &imports).expect("Instance::new"));
    }
}

fn const_i32(store: &mut Store<()>, v: i32) -> Extern {
    let ty = GlobalType::new(ValType::I32, Mutability::Const);
    Global::new(store, ty, Val::I32(v)).expect("global").into()
}

/// Mean time per call of `f` over `n` calls, after `n / 10` warm-up calls.
fn mean(n: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

/// Mean time per call of `f` over `total` calls, in fresh environments of `per_env` calls
/// each (a closed library's instance stays in its store until the store is dropped, so one
/// store for the whole run only grows). `setup` runs untimed in each environment.
fn mean_fresh(engine: &Engine, dir: &Path, total: u32, per_env: u32, setup: impl Fn(&mut Env), mut f: impl FnMut(&mut Env)) -> Duration {
    let mut e = env(engine, dir);
    setup(&mut e);
    for _ in 0..per_env / 10 {
        f(&mut e);
    }
    let mut spent = Duration::ZERO;
    for _ in 0..total / per_env {
        let mut e = env(engine, dir);
        setup(&mut e);
        let t = Instant::now();
        for _ in 0..per_env {
            f(&mut e);
        }
        spent += t.elapsed();
    }
    spent / (total / per_env * per_env)
}

fn load(c: &mut Criterion) {
    let engine = Engine::default();
    let bytes = std::fs::read(fixture_side_module("method_table", Mode::PicO2)).expect("fixture");
    let root = root_for(&engine, &bytes);
    let cache_dir: PathBuf = root.path().join("cache");
    eprintln!("load: side module method_table.so, {} bytes", bytes.len());

    // Populate the disk cache once.
    env(&engine, root.path()).disk(&cache_dir);

    let mut group = c.benchmark_group("load/cold");
    group.sample_size(30).measurement_time(Duration::from_secs(5));
    group.bench_function("dl_open+dl_close", |b| {
        let mut e = env(&engine, root.path());
        b.iter(|| e.cold())
    });
    group.bench_function("Module::new+Instance::new", |b| {
        let mut e = env(&engine, root.path());
        b.iter(|| e.bare(&bytes))
    });
    group.finish();

    let mut group = c.benchmark_group("load/cached");
    group.sample_size(30).measurement_time(Duration::from_secs(3));
    group.bench_function("memory", |b| {
        let mut e = env(&engine, root.path());
        e.open_close();
        b.iter(|| e.open_close())
    });
    group.bench_function("disk", |b| {
        let mut e = env(&engine, root.path());
        b.iter(|| e.disk(&cache_dir))
    });
    group.finish();

    let mut group = c.benchmark_group("load/dl_sym");
    group.measurement_time(Duration::from_secs(2));
    let mut e = env(&engine, root.path());
    let h = e.loader.dl_open(&mut e.store, LIB, rtld::NOW).expect("dl_open");
    let names: HashMap<String, u32> = [("method_table_check", 7), ("m_negate", 8)].map(|(k, v)| (k.to_owned(), v)).into();
    group.bench_function("function", |b| b.iter(|| e.loader.dl_sym(&mut e.store, h, black_box("method_table_check")).expect("dl_sym")));
    group.bench_function("data, default handle", |b| {
        b.iter(|| e.loader.dl_sym(&mut e.store, DEFAULT_HANDLE, black_box("main_data")).expect("dl_sym"))
    });
    group.bench_function("HashMap<String,u32>::get", |b| b.iter(|| names.get(black_box("method_table_check")).copied()));
    group.finish();

    drop(e);

    summary(&engine, "method_table.so (fixture, wasm-ld)", &bytes, true);
    let markupsafe = markupsafe_speedups();
    let speedups = std::fs::read(&markupsafe).expect("read markupsafe's _speedups");
    summary(&engine, "markupsafe _speedups (pymode-ld)", &speedups, false);
}

/// markupsafe's `_speedups` side module as `cargo xtask build-ext markupsafe` installed it.
fn markupsafe_speedups() -> PathBuf {
    let dir = pymode_testdata::ext_site("markupsafe").join("markupsafe");
    std::fs::read_dir(&dir)
        .expect("markupsafe package directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("_speedups") && n.ends_with(".so")))
        .unwrap_or_else(|| panic!("no _speedups*.so in {}; run `cargo xtask build-ext markupsafe`", dir.display()))
}

/// A plain timing loop per figure, references interleaved in the same run, on stderr.
fn summary(engine: &Engine, label: &str, bytes: &[u8], with_sym: bool) {
    let root = root_for(engine, bytes);
    let (dir, cache_dir, none) = (root.path(), root.path().join("cache"), |_: &mut Env| {});
    env(engine, dir).disk(&cache_dir);
    let cold = mean_fresh(engine, dir, 400, 200, none, Env::cold);
    let bare = mean_fresh(engine, dir, 400, 200, none, |e| e.bare(bytes));
    let memory = mean_fresh(engine, dir, 4000, 2000, Env::open_close, Env::open_close);
    let disk = mean_fresh(engine, dir, 1000, 500, none, |e| e.disk(&cache_dir));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    eprintln!("\nload summary: {label}, {} bytes; mean per call", bytes.len());
    eprintln!(
        "  cold dl_open+dl_close   {:>10.1?}   bare Module::new+Instance::new {:>10.1?}   ratio {:.3} (target <= 1.05)",
        cold,
        bare,
        ratio(cold, bare)
    );
    eprintln!("  dl_open, memory cache   {:>10.1?}   {:.4} of cold (target <= 50 us)", memory, ratio(memory, cold));
    eprintln!("  dl_open, disk cache     {:>10.1?}   {:.4} of cold (target <= 1 ms)", disk, ratio(disk, cold));
    if !with_sym {
        return;
    }
    let mut e = env(engine, dir);
    let h = e.loader.dl_open(&mut e.store, LIB, rtld::NOW).expect("dl_open");
    let names: HashMap<String, u32> = [("method_table_check", 7), ("m_negate", 8)].map(|(k, v)| (k.to_owned(), v)).into();
    let sym_fn = mean(1_000_000, || {
        black_box(e.loader.dl_sym(&mut e.store, h, black_box("method_table_check")).ok());
    });
    let sym_data = mean(1_000_000, || {
        black_box(e.loader.dl_sym(&mut e.store, DEFAULT_HANDLE, black_box("main_data")).ok());
    });
    let map = mean(1_000_000, || {
        black_box(names.get(black_box("method_table_check")));
    });
    eprintln!(
        "  dl_sym function         {:>10.1?}   {:.1}x a HashMap<String,u32> get of {:.1?} (target <= 100 ns)",
        sym_fn,
        ratio(sym_fn, map),
        map
    );
    eprintln!("  dl_sym data (default)   {:>10.1?}   {:.1}x the HashMap get", sym_data, ratio(sym_data, map));
}

criterion_group!(benches, load);
criterion_main!(benches);
