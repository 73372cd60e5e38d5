//! Soak test: many distinct C extension side modules (generated here, compiled by zig, linked
//! by pymode-ld) loaded into ONE wasm CPython instance and unloaded again, in three rounds,
//! with the guest's memory pages, table size and Python heap (tracemalloc) measured at four
//! points of each round. Round 0 warms up; rounds 1 and 2 must then measure the same at every
//! point: every page, table slot and heap block a module took is given back and reused, and a
//! per-load leak shows up as growth from round 1 to round 2.
//!
//! `PYMODE_FULL=1` (`cargo xtask test --full`) runs 100 modules; otherwise 5, so the code path
//! stays exercised in normal runs. Needs `cargo xtask toolchain` and `cargo xtask cpython`;
//! without them the test fails, it never skips.
//!
//! CPython never `dlclose`s an extension, so the modules are not imported: a driver extension
//! (`soakdrv`, itself a side module, imported normally) calls the main module's exported
//! `dlopen` / `dlsym` / `dlclose` (the `abi/c` shim over the `pymode.*` imports) and each
//! module's `PyInit_*` through the pointer `dlsym` returned. The driver also records the
//! measurements into C arrays, so that taking one allocates nothing that outlives it.
//! python.wasm runs in this process, so the loader's state is checked after the script too.

use pymode_testdata::trials::Trial;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pymode_loader::{LibRoot, Loader, LoaderConfig, ModuleCache, WasiHost, add_to_linker};
use wasmtime::{Config, Engine, Linker, Store};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        side_modules_load_and_unload_in_one_cpython_back_to_baseline,
        many_rounds_without_destructors_stay_flat,
        many_rounds_with_destructors_stay_flat,
    ]
}

const FULL_MODULES: usize = 100;
const GATED_MODULES: usize = 5;
const EXT_SUFFIX: &str = ".cpython-313-wasm32-wasi.so";

/// `PYMODE_FULL` set to anything but empty or `0`.
fn full() -> bool {
    std::env::var_os("PYMODE_FULL").is_some_and(|v| !v.is_empty() && v != "0")
}

// ---------------------------------------------------------------------------------------------
// The generated modules. Everything that differs between modules is derived from the id here,
// and `expected_checksum` recomputes in Rust what the C `checksum()` must return.

/// `.rodata` table length: distinct per module.
fn table_len(id: usize) -> usize {
    16 + id
}

fn table_value(id: usize, i: usize) -> u32 {
    ((id as u32 + 1).wrapping_mul(2_654_435_761)) ^ (i as u32).wrapping_mul(40_503) ^ 0x5a5a_0000
}

/// `.bss` buffer size: 33,000 bytes and up, so each module's memory block (data + bss) needs
/// more than half of a 64 KiB page and less than one. zig's wasm malloc serves such a request
/// with one whole 64 KiB "big page" of its own, so one leaked block per module would make
/// round 2 grow the memory by a page per module instead of reusing round 1's pages.
fn bss_len(id: usize) -> usize {
    33_000 + 200 * id
}

/// A second `.bss` array the constructor leaves alone: it must read as zeros even when the
/// block was someone else's filled buffer in round 1.
fn zeros_len(id: usize) -> usize {
    64 + id
}

fn mul_a(id: usize) -> u32 {
    2 * id as u32 + 3
}

fn xor_b(id: usize) -> u32 {
    0x9e37_79b9u32.wrapping_add(id as u32)
}

fn name(id: usize) -> String {
    format!("soak_{id:03}")
}

/// The C source of one generated module (`loader/tests/c/soak_module.c.in`).
const MODULE_TEMPLATE: &str = include_str!("../c/soak_module.c.in");

/// `dtor`: whether `fini` is a destructor (registered through `__cxa_atexit` by the
/// constructors clang generates, run at dlclose).
fn module_source(id: usize, dtor: bool) -> String {
    let n = name(id);
    let fini_attr = if dtor { "__attribute__((destructor))" } else { "__attribute__((unused))" };
    let mut table = String::new();
    for i in 0..table_len(id) {
        let _ = write!(table, "{}u,", table_value(id, i));
    }
    // `@name@` placeholders, so that the C braces need no escaping.
    MODULE_TEMPLATE
        .replace("@n@", &n)
        .replace("@id@", &id.to_string())
        .replace("@tlen@", &table_len(id).to_string())
        .replace("@table@", &table)
        .replace("@blen@", &bss_len(id).to_string())
        .replace("@zlen@", &zeros_len(id).to_string())
        .replace("@mul@", &mul_a(id).to_string())
        .replace("@xor@", &xor_b(id).to_string())
        .replace("@fini_attr@", fini_attr)
}

/// What `checksum()` returns on the first call after a fresh load.
fn expected_checksum(id: usize) -> u32 {
    let fnv = |h: u32, v: u32| (h ^ v).wrapping_mul(16_777_619);
    let idu = id as u32;
    let mut h = 2_166_136_261u32;
    for i in 0..table_len(id) {
        let x = table_value(id, i);
        let op = if i % 2 == 0 { x.wrapping_mul(mul_a(id)).wrapping_add(idu) } else { (x ^ xor_b(id)).wrapping_add(7 * idu) };
        h = fnv(h, op);
    }
    for i in (0..bss_len(id)).step_by(61) {
        h = fnv(h, u32::from((i as u32).wrapping_mul(idu + 1).wrapping_add(1) as u8));
    }
    for b in name(id).bytes() {
        h = fnv(h, u32::from(b));
    }
    h ^ (1000 + idu)
}

/// The driver extension: Python access to dlopen/dlsym/dlclose and to the measurements.
/// (`loader/tests/c/soakdrv.c`.)
const DRIVER_SOURCE: &str = include_str!("../c/soakdrv.c");

/// Runs inside wasm CPython: `argv[1]` module count, `argv[2]` their directory, `argv[3]` rounds,
/// `argv[4]` the rounds to measure (comma-separated, at most 7).
const SCRIPT: &str = include_str!("../c/soak_script.py");

// ---------------------------------------------------------------------------------------------
// Building.

fn include_dir() -> PathBuf {
    pymode_testdata::cpython_prefix().join("include").join("python3.13")
}

/// `zig cc` with markupsafe's flags (xtask/src/ext.rs) plus `extra`.
pub(crate) fn compile(source: &Path, object: &Path, extra: &[&str]) {
    let out = pymode_testdata::zig_cc()
        .args(["-fPIC", "-O2", "-g0", "-c"])
        .args(extra)
        .arg("-I")
        .arg(include_dir())
        .arg(source)
        .arg("-o")
        .arg(object)
        .output()
        .expect("run zig cc");
    assert!(out.status.success(), "zig cc {} failed:\n{}", source.display(), String::from_utf8_lossy(&out.stderr));
}

pub(crate) fn link(object: &Path, output: &Path) {
    let args = ["-shared".to_owned(), object.display().to_string(), "-o".to_owned(), output.display().to_string()];
    let (opts, warnings) = pymode_linker::Options::parse(args).expect("linker options");
    assert!(warnings.is_empty(), "{warnings:?}");
    pymode_linker::link(&opts).unwrap_or_else(|e| panic!("pymode-ld {}: {e}", object.display()));
}

/// Writes, compiles and links modules `0..n` into `dir/mods`, on every core.
fn build_modules(dir: &Path, n: usize, dtor: bool) {
    let mods = dir.join("mods");
    let objs = dir.join("obj");
    std::fs::create_dir_all(&mods).expect("mods dir");
    std::fs::create_dir_all(&objs).expect("obj dir");
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(n.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if id >= n {
                        break;
                    }
                    let source = objs.join(format!("{}.c", name(id)));
                    let object = objs.join(format!("{}.o", name(id)));
                    std::fs::write(&source, module_source(id, dtor)).expect("write source");
                    compile(&source, &object, &[]);
                    link(&object, &mods.join(format!("{}.so", name(id))));
                }
            });
        }
    });
}

fn build_driver(dir: &Path) {
    let source = dir.join("obj").join("soakdrv.c");
    let object = dir.join("obj").join("soakdrv.o");
    std::fs::create_dir_all(dir.join("obj")).expect("obj dir");
    std::fs::write(&source, DRIVER_SOURCE).expect("write driver");
    // table.size needs the reference-types feature, which zig's default wasm32 CPU lacks; the
    // object says so in its target_features and pymode-ld validates its output with it.
    compile(&source, &object, &["-mreference-types"]);
    link(&object, &dir.join(format!("soakdrv{EXT_SUFFIX}")));
}

// ---------------------------------------------------------------------------------------------
// Running: python.wasm in this process with the loader attached, as pymode-run does, so that
// the loader's own state can be inspected after the script.

struct Run {
    stdout: String,
    stderr: String,
    loader: Loader,
    table_size: u64,
    memory_pages: u64,
}

fn run_python(dir: &Path, n: usize, rounds: usize, measured: &[usize]) -> Run {
    let prefix = pymode_testdata::cpython_prefix();
    let python = pymode_testdata::python_wasm();
    let mut config = Config::new();
    config.wasm_bulk_memory(true).wasm_multi_value(true).wasm_extended_const(true);
    let engine = Engine::new(&config).expect("engine");

    let stdout = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 24);
    let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 24);
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone()).stderr(stderr.clone());
    wasi.args(&[
        python.display().to_string(),
        "-c".to_owned(),
        SCRIPT.to_owned(),
        n.to_string(),
        "/soak/mods".to_owned(),
        rounds.to_string(),
        measured.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
    ]);
    wasi.env("PYTHONPATH", "/soak");
    let guest_prefix = prefix.display().to_string();
    wasi.preopened_dir(&prefix, &guest_prefix, FsPerms::ReadOnly).expect("preopen prefix");
    wasi.preopened_dir(dir, "/soak", FsPerms::ReadOnly).expect("preopen soak dir");
    let roots = vec![LibRoot::mapped(&prefix, guest_prefix.clone()), LibRoot::mapped(dir, "/soak")];

    let mut store = Store::new(&engine, WasiHost { wasi: wasi.build_p1(), loader: None });
    let mut linker: Linker<WasiHost> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut WasiHost| &mut h.wasi).expect("wasi");
    add_to_linker(&mut linker).expect("pymode imports");
    let bytes = std::fs::read(&python).expect("read python.wasm");
    let cache = ModuleCache::new(Some(pymode_testdata::cache_dir().join("module-cache")));
    let module = cache.get_or_compile(&engine, &bytes).expect("compile python.wasm");
    let instance = linker.instantiate(&mut store, &module).expect("instantiate python.wasm");
    let mut loader = Loader::attach(&mut store, &instance, LoaderConfig { roots, ..LoaderConfig::default() }).expect("attach");
    loader.set_cache(cache);
    store.data_mut().loader = Some(loader);

    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").expect("_start");
    let result = start.call(&mut store, ());
    let text = |p: &wasmtime_wasi::p2::pipe::MemoryOutputPipe| String::from_utf8_lossy(&p.contents()).into_owned();
    let (out, err) = (text(&stdout), text(&stderr));
    match result {
        Ok(()) => {}
        Err(e) => {
            let code = e.downcast_ref::<I32Exit>().map(|x| x.0);
            assert_eq!(code, Some(0), "python.wasm failed: {e:?}\nstdout:\n{out}\nstderr:\n{err}");
        }
    }
    let table = instance.get_table(&mut store, "__indirect_function_table").expect("table");
    let memory = instance.get_memory(&mut store, "memory").expect("memory");
    let (table_size, memory_pages) = (table.size(&store), memory.size(&store));
    let loader = store.data_mut().loader.take().expect("loader back in its slot");
    Run { stdout: out, stderr: err, loader, table_size, memory_pages }
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    pages: i64,
    table: i64,
    traced: i64,
    dtors: i64,
}

fn parse_marks(stdout: &str) -> std::collections::BTreeMap<usize, Mark> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("mark "))
        .map(|l| {
            let v: Vec<i64> = l.split(' ').map(|x| x.parse().expect("mark field")).collect();
            assert_eq!(v.len(), 5, "{l}");
            (v[0] as usize, Mark { pages: v[1], table: v[2], traced: v[3], dtors: v[4] })
        })
        .collect()
}

/// Round 0 warms up (names interned, caches filled, the table grown, the heap's size classes
/// stocked); rounds 1 and 2 must then be identical at every point.
const ROUNDS: usize = 3;
/// The marks the script takes in each round, in order (slot `4 * round + 1 + k`).
const PHASES: [&str; 4] = ["all open", "all used", "objects dropped", "all closed"];

fn side_modules_load_and_unload_in_one_cpython_back_to_baseline() {
    let n = if full() { FULL_MODULES } else { GATED_MODULES };
    if !full() {
        println!("soak: PYMODE_FULL not set: {n} modules instead of {FULL_MODULES} (`cargo xtask test --full` runs all)");
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("soak dir");

    let t0 = Instant::now();
    build_driver(&dir);
    build_modules(&dir, n, true);
    let built = t0.elapsed();
    let t1 = Instant::now();
    let run = run_python(&dir, n, ROUNDS, &[0, 1, 2]);
    let ran = t1.elapsed();
    let Run { stdout, stderr, loader, table_size, memory_pages } = run;
    assert!(stdout.lines().any(|l| l == "done"), "the script did not finish\nstdout:\n{stdout}\nstderr:\n{stderr}");

    // Every module, every round: its own name and id, the checksum over its data, code,
    // constructor-filled .bss and zeroed .bss (fresh .data each time), its table via dlsym.
    let mut seen = 0;
    let mut max_handle = 0;
    for line in stdout.lines().filter_map(|l| l.strip_prefix("module ")) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 7, "{line}");
        let id: usize = f[1].parse().expect("id");
        assert_eq!(f[2], name(id), "{line}");
        assert_eq!(f[3].parse::<usize>().expect("ident"), id, "{line}");
        assert_eq!(f[4].parse::<u32>().expect("checksum"), expected_checksum(id), "checksum of {line}");
        assert_eq!(f[5].parse::<u32>().expect("table[0]"), table_value(id, 0), "{line}");
        max_handle = max_handle.max(f[6].parse::<i32>().expect("handle"));
        seen += 1;
    }
    assert_eq!(seen, ROUNDS * n, "module lines\n{stdout}\n{stderr}");

    let marks = parse_marks(&stdout);
    let get = |r: usize, k: usize| *marks.get(&(4 * r + 1 + k)).unwrap_or_else(|| panic!("mark {r}/{k} missing\n{stdout}"));
    let base = *marks.get(&0).expect("baseline mark");
    println!("soak: {n} modules, {ROUNDS} rounds; build {:.1} s, python run {:.1} s", built.as_secs_f64(), ran.as_secs_f64());
    println!(
        "soak: {:<26} pages {:>5}  table {:>6}  traced heap {:>8} B  destructor sum {:>6}",
        "baseline", base.pages, base.table, base.traced, base.dtors
    );
    for r in 0..ROUNDS {
        for (k, phase) in PHASES.iter().enumerate() {
            let m = get(r, k);
            println!(
                "soak: {:<26} pages {:>5}  table {:>6}  traced heap {:>8} B  destructor sum {:>6}",
                format!("round {r}, {phase}"),
                m.pages,
                m.table,
                m.traced,
                m.dtors
            );
        }
    }
    let stats = loader.stats();
    println!("soak: host after exit: table {table_size}, pages {memory_pages}, loader {stats:?}");

    // The modules really took memory and table slots while open: at least a page each (their
    // blocks are more than half a page, see bss_len).
    let open0 = get(0, 0);
    assert!(open0.pages >= base.pages + n as i64 && open0.table > base.table, "{base:?} {open0:?}");
    // Destructors ran at dlclose, once per module per round, and not before.
    let per_round: i64 = (1..=n as i64).sum();
    for r in 0..ROUNDS {
        let r64 = r as i64;
        assert_eq!(
            (get(r, 0).dtors, get(r, 2).dtors, get(r, 3).dtors),
            (r64 * per_round, r64 * per_round, (r64 + 1) * per_round),
            "round {r}"
        );
    }
    // Rounds 1 and 2 reuse the same pages, table slots and Python heap at every point.
    for (k, phase) in PHASES.iter().enumerate() {
        let (r1, r2) = (get(1, k), get(2, k));
        assert_eq!(r2.pages, r1.pages, "memory pages, {phase}: round 2 vs round 1");
        assert_eq!(r2.table, r1.table, "table size, {phase}: round 2 vs round 1");
        assert_eq!(r2.traced, r1.traced, "Python heap (tracemalloc), {phase}: round 2 vs round 1");
    }
    // Round 0 grew the table once; later rounds fit in it.
    assert_eq!(get(2, 3).table, get(0, 0).table, "table size after round 2 vs round 0 all open");
    // The guest's table measurement agrees with the host's (nothing loaded after the rounds).
    assert_eq!(table_size as i64, get(ROUNDS - 1, 3).table, "host vs guest table size");

    // Host side: no soak module is still loaded; what is loaded is the baseline (the driver
    // and any stdlib extension Python imported), and every slot the soak modules used is free.
    let mods_dir = std::fs::canonicalize(dir.join("mods")).expect("mods dir");
    let open: Vec<PathBuf> = (0..=max_handle + 64).filter_map(|h| loader.library_path(h).map(Path::to_path_buf)).collect();
    println!("soak: libraries open at exit: {open:?}");
    assert_eq!(open.len(), stats.libraries, "{open:?}");
    assert!(open.iter().all(|p| !p.starts_with(&mods_dir)), "soak modules still loaded: {open:?}");
    assert!(open.iter().any(|p| p.ends_with(format!("soakdrv{EXT_SUFFIX}"))), "{open:?}");
    // The table grew for the soak modules in round 0; all of that is free again but one slot:
    // the loader's exit-time destructor runner, made at the first destructor registration and
    // kept for the store's life (loader/src/dtors.rs).
    let grown = (open0.table - base.table) as u64;
    assert!(
        stats.free_table_slots + 1 >= grown,
        "free slots {} but the table grew by {grown} for the soak modules",
        stats.free_table_slots
    );
}

/// Rounds before the long runs measure: the heap allocator (zig's size-class free lists, no
/// coalescing) settles within them; without destructors memory grew once, by one page,
/// somewhere in rounds 2 to 10 (which round depends on the script's own allocations), then
/// stayed flat for 80 rounds.
const LONG_WARMUP: usize = 10;

/// 9,000 loads in one store (wasmtime's default limit is 10,000 instances): 90 rounds of the
/// 100 modules (`PYMODE_FULL`; otherwise 20 rounds of 5). After the warm-up nothing may grow.
/// `dtor`: whether the modules have a destructor.
fn many_rounds(dtor: bool) {
    let (n, rounds) = if full() { (FULL_MODULES, 90) } else { (GATED_MODULES, 20) };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-many-{n}-{}", if dtor { "dtor" } else { "plain" }));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("soak dir");
    build_driver(&dir);
    build_modules(&dir, n, dtor);
    let t = Instant::now();
    let Run { stdout, stderr, .. } = run_python(&dir, n, rounds, &[LONG_WARMUP, rounds - 1]);
    assert!(stdout.lines().any(|l| l == "done"), "the script did not finish\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let checked = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("module "))
        .inspect(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let id: usize = f[1].parse().expect("id");
            assert_eq!(f[4].parse::<u32>().expect("checksum"), expected_checksum(id), "checksum of {l}");
        })
        .count();
    assert_eq!(checked, rounds * n);
    let marks = parse_marks(&stdout);
    let (warm, last) = (marks[&4], marks[&8]);
    println!(
        "soak: {n} modules x {rounds} rounds, destructors {dtor}: {:.1} s; after round {LONG_WARMUP} {warm:?}; after round {} {last:?}",
        t.elapsed().as_secs_f64(),
        rounds - 1
    );
    if dtor {
        assert_eq!(last.dtors, rounds as i64 * (1..=n as i64).sum::<i64>(), "destructor sum");
    }
    assert_eq!(
        (last.pages, last.table, last.traced),
        (warm.pages, warm.table, warm.traced),
        "(pages, table, traced heap) after round {} vs after round {LONG_WARMUP}",
        rounds - 1
    );
}

fn many_rounds_without_destructors_stay_flat() {
    many_rounds(false);
}

/// The loader registers its exit-time runner with the main module's `__cxa_atexit` once, not
/// once per load: an entry per load could never be taken out by dl_close, and musl's list
/// grew by about 8 bytes of guest heap per load before that was fixed.
fn many_rounds_with_destructors_stay_flat() {
    many_rounds(true);
}
