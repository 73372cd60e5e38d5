//! The cost of linking non-PIC objects by rewriting their code (issue 6), each figure a ratio
//! against the PIC build of the same C measured in the same run.
//!
//! - `pic_rewrite/runtime`: `testdata/bench/hot_loop.c` (a loop over globals and calls through
//!   a table of function pointers) compiled `-O2` with `-fPIC` and without, both linked by
//!   `pymode-ld`, both `dl_open`ed (RTLD_LOCAL) into one WAT main module by one loader;
//!   `hot_loop(10000)` is called through the main module's table. Ratio: rewritten / PIC.
//! - `pic_rewrite/link`: the fixture objects (`nopic-O2`, rewrite on) in one side module
//!   against the same fixtures' `pic-O2` objects; and markupsafe's `_speedups` without and
//!   with `-fPIC`. Ratio: non-PIC / PIC.
//!
//! A plain timing loop per figure after the criterion groups prints the ratios on stderr, the
//! two sides interleaved. Needs the toolchain and fixtures (`cargo xtask fixtures`) and the
//! built markupsafe (`cargo xtask build-ext markupsafe`).

use criterion::{Criterion, criterion_group, criterion_main};
use pymode_abi::host::rtld;
use pymode_benches::{ALLOCATOR, MAIN};
use pymode_linker::{Options, PicRewrite, options::InputSpec};
use pymode_loader::{Loader, LoaderConfig};
use pymode_testdata::{COMMON_CFLAGS, Mode, fixture_names, fixture_object, workspace_root, zig_cc};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::{Engine, Instance, Memory, Module, Store, Table, TypedFunc};

/// Iterations of the hot loop per call: long enough that the call itself is noise.
const N: i32 = 10_000;

/// Compiles `hot_loop.c` (zig caches repeated compiles) and returns the object.
fn compile_hot_loop(pic: bool) -> PathBuf {
    let source = workspace_root().join("testdata/bench/hot_loop.c");
    let dir = workspace_root().join("target/bench-corpus/hot_loop");
    std::fs::create_dir_all(&dir).expect("create hot_loop dir");
    let object = dir.join(if pic { "pic.o" } else { "nopic.o" });
    let mut cc = zig_cc();
    cc.args(COMMON_CFLAGS).arg("-O2");
    if pic {
        cc.arg("-fPIC");
    }
    let out = cc.arg(&source).arg("-o").arg(&object).output().expect("run zig cc");
    assert!(out.status.success(), "zig cc hot_loop.c (pic: {pic}): {}", String::from_utf8_lossy(&out.stderr));
    object
}

fn link(objects: &[PathBuf], out: &Path) {
    let opts = Options {
        inputs: objects.iter().map(|o| InputSpec::File(o.clone())).collect(),
        output: Some(out.to_owned()),
        pic_rewrite: PicRewrite::On,
        ..Options::default()
    };
    pymode_linker::link(&opts).expect("pymode-ld");
}

/// One library's entry points, called the way the guest would: through the shared table.
struct Lib {
    reset: TypedFunc<(), ()>,
    hot: TypedFunc<i32, i32>,
    counter: u32,
}

struct Host {
    store: Store<()>,
    memory: Memory,
    pic: Lib,
    nopic: Lib,
    _loader: Loader,
}

fn host(engine: &Engine, root: &Path) -> Host {
    let mut store = Store::new(engine, ());
    // hot_loop.c imports no functions: the main module needs no stubs.
    let module = Module::new(engine, format!("(module {MAIN} {ALLOCATOR})")).expect("main module");
    let main = Instance::new(&mut store, &module, &[]).expect("instantiate main");
    let mut loader = Loader::attach(&mut store, &main, LoaderConfig::with_roots([root])).expect("attach");
    let table: Table = main.get_table(&mut store, "__indirect_function_table").expect("table");
    let memory = main.get_memory(&mut store, "memory").expect("memory");
    let mut open = |store: &mut Store<()>, file: &str| {
        // RTLD_LOCAL: each library's GOT entries bind to its own `table`, `counter` and `ops`.
        let h = loader.dl_open(&mut *store, file, rtld::NOW | rtld::LOCAL).expect("dl_open");
        let mut func = |store: &mut Store<()>, name: &str| {
            let slot = loader.dl_sym(&mut *store, h, name).expect("dl_sym");
            let r = table.get(&mut *store, u64::from(slot)).expect("table slot");
            *r.unwrap_func().expect("a function in the slot")
        };
        let reset = func(store, "hot_reset").typed(&*store).expect("hot_reset type");
        let hot = func(store, "hot_loop").typed(&*store).expect("hot_loop type");
        let counter = loader.dl_sym(&mut *store, h, "counter").expect("dl_sym counter");
        Lib { reset, hot, counter }
    };
    let pic = open(&mut store, "pic.so");
    let nopic = open(&mut store, "nopic.so");
    Host { store, memory, pic, nopic, _loader: loader }
}

impl Host {
    fn call(&mut self, pic: bool) -> i32 {
        let lib = if pic { &self.pic } else { &self.nopic };
        lib.hot.call(&mut self.store, black_box(N)).expect("hot_loop")
    }

    fn counter(&self, pic: bool) -> i32 {
        let at = if pic { self.pic.counter } else { self.nopic.counter } as usize;
        let bytes = &self.memory.data(&self.store)[at..at + 4];
        i32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    }

    /// The two builds compute the same thing, each on its own globals.
    fn check(&mut self) {
        self.pic.reset.call(&mut self.store, ()).expect("hot_reset");
        self.nopic.reset.call(&mut self.store, ()).expect("hot_reset");
        let a = self.call(true);
        assert_eq!((self.counter(true), self.counter(false)), (N, 0), "the PIC build's loop touched the other library's counter");
        let b = self.call(false);
        assert_eq!(a, b, "hot_loop: PIC and rewritten non-PIC builds disagree");
        assert_eq!((self.counter(true), self.counter(false)), (N, N));
    }
}

/// Mean time per call of `a` and of `b`, `rounds` rounds of `n` calls each, interleaved.
fn interleaved(rounds: u32, n: u32, mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        a();
        b();
    }
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            a();
        }
        ta += t.elapsed();
        let t = Instant::now();
        for _ in 0..n {
            b();
        }
        tb += t.elapsed();
    }
    (ta / (rounds * n), tb / (rounds * n))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let engine = Engine::default();
    let root = tempfile::tempdir().expect("tempdir");
    let (pic_o, nopic_o) = (compile_hot_loop(true), compile_hot_loop(false));
    link(std::slice::from_ref(&pic_o), &root.path().join("pic.so"));
    link(std::slice::from_ref(&nopic_o), &root.path().join("nopic.so"));
    let mut h = host(&engine, root.path());
    h.check();

    let mut group = c.benchmark_group("pic_rewrite/runtime");
    group.sample_size(30).measurement_time(Duration::from_secs(5));
    group.bench_function("hot_loop, -fPIC", |b| b.iter(|| h.call(true)));
    group.bench_function("hot_loop, non-PIC rewritten", |b| b.iter(|| h.call(false)));
    group.finish();

    let fixtures = |mode| -> Vec<PathBuf> { fixture_names().iter().map(|n| fixture_object(n, mode)).collect() };
    let (fix_pic, fix_nopic) = (fixtures(Mode::PicO2), fixtures(Mode::NopicO2));
    let ext = pymode_testdata::ext_dir("markupsafe");
    let (ms_pic, ms_nopic) = (vec![ext.join("_speedups.o")], vec![ext.join("_speedups-nopic.o")]);
    for o in ms_pic.iter().chain(&ms_nopic) {
        assert!(o.is_file(), "{} is missing: run `cargo xtask build-ext markupsafe`", o.display());
    }
    let out = root.path().join("linked.so");
    let mut group = c.benchmark_group("pic_rewrite/link");
    group.sample_size(30).measurement_time(Duration::from_secs(5));
    for (name, pic, nopic) in [("fixtures", &fix_pic, &fix_nopic), ("markupsafe", &ms_pic, &ms_nopic)] {
        group.bench_function(format!("{name}, -fPIC"), |b| b.iter(|| link(pic, &out)));
        group.bench_function(format!("{name}, non-PIC rewritten"), |b| b.iter(|| link(nopic, &out)));
    }
    group.finish();

    let (pic, nopic) = {
        let h = std::cell::RefCell::new(&mut h);
        interleaved(
            20,
            200,
            || {
                black_box(h.borrow_mut().call(true));
            },
            || {
                black_box(h.borrow_mut().call(false));
            },
        )
    };
    eprintln!("\npic_rewrite summary: mean per call, the two sides interleaved in the same run");
    eprintln!("  hot_loop({N})  -fPIC {pic:>10.1?}   non-PIC rewritten {nopic:>10.1?}   ratio rewritten/PIC {:.3}", ratio(nopic, pic));
    for (name, a, b) in [("fixtures", &fix_pic, &fix_nopic), ("markupsafe", &ms_pic, &ms_nopic)] {
        let (tp, tn) = interleaved(10, 50, || link(a, &out), || link(b, &out));
        eprintln!("  link {name:<10}   -fPIC {tp:>10.1?}   non-PIC rewritten {tn:>10.1?}   ratio non-PIC/PIC {:.3}", ratio(tn, tp));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
