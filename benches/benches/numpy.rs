//! NumPy in the wasm CPython under `pymode run` against native NumPy on the native CPython
//! 3.13, process against process: the same NumPy version on both sides, measured in the same
//! run, in alternating order, medians over rounds.
//!
//! Three things are measured:
//!
//! - **`import numpy`**: four commands, each a fresh process, run round after round in an
//!   order rotated by one each round (as in `startup.rs`): `pymode run --site SITE -- -c pass`
//!   and `-c "import numpy"`, and the native `python -c pass` and `-c "import numpy"`. It
//!   prints the median wall time and CPU time (user + system, from the children's resource
//!   usage) of each, the import's share (the import process's median minus the `-c pass`
//!   one's) and the ratios wasm / native. One untimed run of each first fills the module cache
//!   and the page cache.
//! - **Kernels**: one Python script ([`KERNELS`]), the same on both sides, builds its inputs
//!   from `np.random.default_rng(0)`, calls the kernel named by its argument once untimed,
//!   then calls it in a loop timed with `time.perf_counter` until at least
//!   `NUMPY_BENCH_SECS` seconds (default 0.5) and 3 calls have passed, and prints NumPy's
//!   version, the seconds per call and the number of calls. Each kernel runs in its own
//!   process; a round runs every kernel once in wasm and once natively, the side that goes
//!   first alternating from round to round. It prints the median per-call time of each side
//!   and the ratio wasm / native. The kernels: `np.sort` of 10^6 float64 (a copy each call),
//!   `a @ b` at 256×256 float64, `np.sqrt(np.abs(np.sin(x) * np.cos(x) + 1.0))` on 10^6
//!   float64, `np.fft.fft` of 2^16 complex128, `np.linalg.solve` at 200×200 float64.
//! - **Side-module bytes**: the total size of the `*.so` files under `SITE/numpy` and the
//!   largest five (with the native NumPy's `*.so` total beside it, for reference).
//!
//! The wasm CPython has no threads; the native NumPy's OpenBLAS would use every core for
//! `@` and `solve`, so the native processes get `OPENBLAS_NUM_THREADS=1` unless
//! `NUMPY_NATIVE_BLAS_THREADS` says otherwise: the ratio is one core against one core.
//! Otherwise both sides run with their defaults: in particular the native FFT ran 1.5-2.5x
//! as fast by hand when glibc's `malloc` keeps its heap (`MALLOC_MMAP_THRESHOLD_` and
//! `MALLOC_TRIM_THRESHOLD_` raised), likely because by default it gives the FFT's 1 MB arrays
//! back to the kernel after each call (docs/packages.md, "Speed"); the native processes
//! inherit the environment, so those variables can be set for a run.
//!
//! Configuration:
//!
//! - `NUMPY_SITE` (required): a site directory with NumPy installed for the wasm CPython,
//!   made by `pymode install numpy==2.5.5 --target DIR`.
//! - `NUMPY_NATIVE_PYTHON` (required): a native Python with the same NumPy, e.g. a venv of
//!   `$PYMODE_CACHE/cpython/native/bin/python3.13` with `pip install numpy==2.5.5` in it
//!   (`DIR/bin/python`).
//! - `PYMODE`: the `pymode` to run the wasm side with (default: the workspace's release
//!   `pymode`, built first); it uses the wasm CPython in `$PYMODE_CACHE` and its module cache.
//! - `NUMPY_ROUNDS`: rounds of both the import and the kernel measurements (default 7).
//! - `NUMPY_BENCH_SECS`: the least time each kernel's timed loop runs (default 0.5).
//! - `NUMPY_NATIVE_BLAS_THREADS`: `OPENBLAS_NUM_THREADS` of the native side (default 1).
//!
//! Every process runs in a fresh temporary directory. A missing runner, site or Python, a
//! failing process, or a NumPy version that differs between the sides panics with what and
//! where: nothing is skipped.

use pymode_benches::{children_cpu, load_average, median, ms, release_binary};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The kernels' script, run as `python -c KERNELS NAME` on both sides. It prints one line:
/// NumPy's version, the seconds per call (`repr` of a float) and the number of timed calls.
const KERNELS: &str = r#"
import sys, time
import numpy as np

rng = np.random.default_rng(0)
name, min_secs = sys.argv[1], float(sys.argv[2])
if name == "sort":
    a = rng.random(10**6)
    f = lambda: np.sort(a)
elif name == "matmul":
    a = rng.random((256, 256))
    b = rng.random((256, 256))
    f = lambda: a @ b
elif name == "ufunc":
    x = rng.random(10**6)
    f = lambda: np.sqrt(np.abs(np.sin(x) * np.cos(x) + 1.0))
elif name == "fft":
    z = rng.random(2**16) + 1j * rng.random(2**16)
    f = lambda: np.fft.fft(z)
elif name == "solve":
    a = rng.random((200, 200))
    b = rng.random(200)
    f = lambda: np.linalg.solve(a, b)
else:
    raise SystemExit(f"unknown kernel {name!r}")
f()
n = 0
t0 = time.perf_counter()
while True:
    f()
    n += 1
    t = time.perf_counter() - t0
    if n >= 3 and t >= min_secs:
        break
print(np.__version__, repr(t / n), n)
"#;

/// The kernels: the script's name for each, and what it does (for the output).
const KERNEL_NAMES: [(&str, &str); 5] = [
    ("sort", "np.sort, 10^6 float64"),
    ("matmul", "a @ b, 256x256 float64"),
    ("ufunc", "sqrt(abs(sin*cos+1)), 10^6"),
    ("fft", "np.fft.fft, 2^16 complex"),
    ("solve", "linalg.solve, 200x200"),
];

struct Case {
    name: String,
    cmd: Command,
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

fn main() {
    let rounds: usize = env_parse("NUMPY_ROUNDS").unwrap_or(7);
    assert!(rounds > 0, "NUMPY_ROUNDS must be at least 1");
    let min_secs: f64 = env_parse("NUMPY_BENCH_SECS").unwrap_or(0.5);
    let blas_threads = std::env::var("NUMPY_NATIVE_BLAS_THREADS").unwrap_or_else(|_| "1".to_owned());
    let site = numpy_site();
    let native = native_python();
    let pymode = pymode();
    let tmp = tempfile::tempdir().expect("create a temporary directory");

    let wasm_cmd = |args: &[&str]| {
        let mut c = Command::new(&pymode);
        c.arg("run").arg("--site").arg(&site).arg("--").args(args).current_dir(tmp.path());
        c
    };
    let native_cmd = |args: &[&str]| {
        let mut c = Command::new(&native);
        c.args(args).env("OPENBLAS_NUM_THREADS", &blas_threads).current_dir(tmp.path());
        c
    };

    println!("numpy: wasm = {} run --site {}", pymode.display(), site.display());
    println!("numpy: native = {} (OPENBLAS_NUM_THREADS={blas_threads})", native.display());
    println!("numpy: load average before: {}", load_average());
    side_module_bytes(&site, &mut native_cmd(&["-c", "import numpy, os; print(os.path.dirname(numpy.__file__))"]));

    // import numpy: native pass, native import, wasm pass, wasm import.
    let mut cases: Vec<Case> = Vec::new();
    for (side, make) in [("native", &native_cmd as &dyn Fn(&[&str]) -> Command), ("wasm", &wasm_cmd)] {
        for code in ["pass", "import numpy"] {
            let name = format!("{side} -c \"{code}\"");
            cases.push(Case { name, cmd: make(&["-c", code]), wall: vec![], cpu: vec![] });
        }
    }
    for case in &mut cases {
        run(&mut case.cmd, &case.name);
    }
    let n = cases.len();
    for round in 0..rounds {
        for i in 0..n {
            let case = &mut cases[(round + i) % n];
            let (wall, cpu, _) = run(&mut case.cmd, &case.name);
            case.wall.push(wall);
            case.cpu.push(cpu);
        }
    }
    println!("numpy: import, {rounds} rounds, process medians:");
    let mut medians = Vec::new();
    for case in &mut cases {
        let (wall, cpu) = (median(&mut case.wall), median(&mut case.cpu));
        println!("numpy/{:<26} wall {:>8.1} ms   cpu {:>8.1} ms", case.name, ms(wall), ms(cpu));
        medians.push((ms(wall), ms(cpu)));
    }
    let share = |pass: (f64, f64), import: (f64, f64)| (import.0 - pass.0, import.1 - pass.1);
    let (native_share, wasm_share) = (share(medians[0], medians[1]), share(medians[2], medians[3]));
    println!("numpy/import share native        wall {:>8.1} ms   cpu {:>8.1} ms", native_share.0, native_share.1);
    println!("numpy/import share wasm          wall {:>8.1} ms   cpu {:>8.1} ms", wasm_share.0, wasm_share.1);
    println!(
        "numpy/ratio import process       wall {:>6.2}   cpu {:>6.2}   (wasm / native)",
        medians[3].0 / medians[1].0,
        medians[3].1 / medians[1].1
    );
    println!(
        "numpy/ratio import share         wall {:>6.2}   cpu {:>6.2}   (wasm / native)",
        wasm_share.0 / native_share.0,
        wasm_share.1 / native_share.1
    );

    // Kernels: per round, each kernel in wasm and natively, the first side alternating.
    let secs = min_secs.to_string();
    let mut times: Vec<[Vec<Duration>; 2]> = KERNEL_NAMES.iter().map(|_| [vec![], vec![]]).collect();
    let mut calls = vec![[0u64; 2]; KERNEL_NAMES.len()];
    let mut seen: Option<String> = None;
    for round in 0..rounds {
        for (k, (kernel, _)) in KERNEL_NAMES.iter().enumerate() {
            for j in 0..2 {
                let side = (round + j) % 2; // 0 wasm, 1 native
                let args = ["-c", KERNELS, kernel, &secs];
                let (mut cmd, label) = if side == 0 { (wasm_cmd(&args), "wasm") } else { (native_cmd(&args), "native") };
                let name = format!("{label} kernel {kernel}");
                let (_, _, stdout) = run(&mut cmd, &name);
                let (version, per_call, n) = parse_kernel(&stdout, &name);
                let first = seen.get_or_insert_with(|| version.clone());
                assert_eq!(&version, first, "{name}: NumPy {version}, but an earlier process had {first}");
                times[k][side].push(per_call);
                calls[k][side] += n;
            }
        }
    }
    println!("numpy: NumPy {} in every kernel process, wasm and native", seen.unwrap_or_default());
    println!("numpy: load average after: {}", load_average());
    println!("numpy: kernels, {rounds} rounds, median time per call (timed loops of >= {min_secs} s and >= 3 calls):");
    for (k, (kernel, what)) in KERNEL_NAMES.iter().enumerate() {
        let wasm = median(&mut times[k][0]);
        let native = median(&mut times[k][1]);
        println!(
            "numpy/kernel {:<7} {:<28} wasm {:>9.3} ms   native {:>9.3} ms   ratio {:>6.2}   (calls {} / {})",
            kernel,
            what,
            ms(wasm),
            ms(native),
            wasm.as_secs_f64() / native.as_secs_f64(),
            calls[k][0],
            calls[k][1]
        );
    }
}

/// The kernel script's line: NumPy's version, seconds per call, number of calls.
fn parse_kernel(stdout: &str, name: &str) -> (String, Duration, u64) {
    let line = stdout.lines().last().unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let bad = || panic!("{name}: expected `VERSION SECONDS CALLS` on the last line of its output, got:\n{stdout}");
    let [version, secs, n] = fields[..] else { bad() };
    let secs: f64 = secs.parse().unwrap_or_else(|_| bad());
    let n: u64 = n.parse().unwrap_or_else(|_| bad());
    (version.to_owned(), Duration::from_secs_f64(secs), n)
}

/// Prints the bytes of the `*.so` files under `site/numpy` (the side modules), the largest
/// five, and the native NumPy's `*.so` total (its directory printed by `native_dir`).
fn side_module_bytes(site: &Path, native_dir: &mut Command) {
    let mut wasm = Vec::new();
    so_files(&site.join("numpy"), &mut wasm);
    assert!(!wasm.is_empty(), "{}: no *.so files: is NumPy installed there for the wasm CPython?", site.join("numpy").display());
    wasm.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total: u64 = wasm.iter().map(|(_, n)| n).sum();
    println!("numpy: side modules: {} files, {} bytes ({:.1} MB)", wasm.len(), total, mb(total));
    for (path, n) in wasm.iter().take(5) {
        let rel = path.strip_prefix(site).unwrap_or(path);
        println!("numpy:   {:>10} bytes ({:>4.1} MB)  {}", n, mb(*n), rel.display());
    }
    let (_, _, out) = run(native_dir, "native: where is numpy");
    let dir = PathBuf::from(out.trim());
    let mut native = Vec::new();
    so_files(&dir, &mut native);
    let total: u64 = native.iter().map(|(_, n)| n).sum();
    println!("numpy: native, for reference: {} *.so files under {}, {} bytes ({:.1} MB)", native.len(), dir.display(), total, mb(total));
}

fn so_files(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = entry.path();
        let meta = entry.metadata().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if meta.is_dir() {
            so_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "so") {
            out.push((path, meta.len()));
        }
    }
}

/// `NUMPY_SITE`, checked to hold NumPy.
fn numpy_site() -> PathBuf {
    let site = std::env::var_os("NUMPY_SITE").map(PathBuf::from).unwrap_or_else(|| {
        panic!("NUMPY_SITE is not set: make a site with NumPy for the wasm CPython with `pymode install numpy==2.5.5 --target DIR` and set NUMPY_SITE=DIR")
    });
    let init = site.join("numpy").join("__init__.py");
    assert!(
        init.is_file(),
        "NUMPY_SITE={}: {} is missing: make the site with `pymode install numpy==2.5.5 --target DIR`",
        site.display(),
        init.display()
    );
    std::path::absolute(&site).unwrap_or(site)
}

/// `NUMPY_NATIVE_PYTHON`, checked to exist.
fn native_python() -> PathBuf {
    let how = "make a venv of `$PYMODE_CACHE/cpython/native/bin/python3.13` (`python3.13 -m venv DIR`), \
               run `DIR/bin/pip install numpy==2.5.5` and set NUMPY_NATIVE_PYTHON=DIR/bin/python";
    let python =
        std::env::var_os("NUMPY_NATIVE_PYTHON").map(PathBuf::from).unwrap_or_else(|| panic!("NUMPY_NATIVE_PYTHON is not set: {how}"));
    assert!(python.is_file(), "NUMPY_NATIVE_PYTHON={} does not exist: {how}", python.display());
    std::path::absolute(&python).unwrap_or(python)
}

/// `PYMODE`, else the workspace's release `pymode`, built (or found up to date) by cargo
/// first.
fn pymode() -> PathBuf {
    if let Some(path) = std::env::var_os("PYMODE") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "PYMODE={} does not exist", path.display());
        return std::path::absolute(&path).unwrap_or(path);
    }
    let path = release_binary("pymode-build", "pymode");
    assert!(path.is_file(), "{} is missing after cargo build", path.display());
    path
}

/// Runs the command to completion; its wall time, the CPU time it used and its stdout.
fn run(cmd: &mut Command, name: &str) -> (Duration, Duration, String) {
    let before = children_cpu();
    let start = Instant::now();
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("spawn");
    let wall = start.elapsed();
    let cpu = children_cpu().saturating_sub(before);
    assert!(
        out.status.success(),
        "{name}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (wall, cpu, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a number")))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
