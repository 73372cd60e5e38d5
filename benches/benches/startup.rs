//! Start-up of the wasm CPython under `pymode-run` against the native CPython 3.13 it was
//! built with, process against process (DESIGN §6).
//!
//! Four commands (more with several runners), each a fresh process, run in alternating
//! order round after round:
//!
//! - `pymode-run --dir PREFIX --cache CACHE python3.13.wasm -- -S -c pass` and the same
//!   with `-c pass` (the module cache warm: one untimed run first);
//! - `python3.13 -S -c pass` and `python3.13 -c pass`, the native build Python
//!   (`$PYMODE_CACHE/cpython/native`).
//!
//! It prints the median wall time and the median CPU time (user + system, from the
//! children's resource usage) of each, and the ratios wasm / native. A round runs them all
//! in an order rotated by one each round, so that a slow stretch of a busy machine does not
//! fall on one command only. `STARTUP_ROUNDS` sets the rounds (default 21); `PYMODE_RUN`
//! names the runner to measure (default: the workspace's release `pymode-run`, built first),
//! or several as `LABEL=PATH,LABEL=PATH` to compare builds of it in the same alternating
//! run; `STARTUP_CACHE` the module cache (default `$PYMODE_CACHE/module-cache`, the tests').
//! Needs `cargo xtask cpython`.

use pymode_benches::{children_cpu, load_average, median, ms, release_binary};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Case {
    name: String,
    cmd: Command,
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Case {
    fn new(name: String, cmd: Command) -> Self {
        Case { name, cmd, wall: vec![], cpu: vec![] }
    }
}

fn main() {
    let rounds: usize = std::env::var("STARTUP_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(21);
    let runners = runners();
    let prefix = pymode_testdata::cpython_prefix();
    let wasm = pymode_testdata::python_wasm();
    let native = pymode_testdata::cpython_dir().join("native").join("bin").join("python3.13");
    assert!(native.is_file(), "{} is missing: run `cargo xtask cpython`", native.display());
    let cache = std::env::var_os("STARTUP_CACHE").map(PathBuf::from).unwrap_or_else(|| pymode_testdata::cache_dir().join("module-cache"));

    let mut cases = Vec::new();
    for args in [&["-S", "-c", "pass"][..], &["-c", "pass"][..]] {
        let mut c = Command::new(&native);
        c.args(args);
        cases.push(Case::new(format!("native {}", args.join(" ")), c));
        for (label, runner) in &runners {
            let mut c = Command::new(runner);
            c.arg("--dir").arg(&prefix).arg("--cache").arg(&cache).arg(&wasm).arg("--").args(args);
            cases.push(Case::new(format!("{label} {}", args.join(" ")), c));
        }
    }

    for (label, runner) in &runners {
        println!("startup: {label} = {}", runner.display());
    }
    println!("startup: {} (module cache {})", wasm.display(), cache.display());
    println!("startup: native = {}", native.display());
    println!("startup: load average before: {}", load_average());
    // Warm-up, untimed: fills the module cache and the page cache.
    for case in &mut cases {
        run(&mut case.cmd, &case.name);
    }
    let n = cases.len();
    for round in 0..rounds {
        for i in 0..n {
            let case = &mut cases[(round + i) % n];
            let (wall, cpu) = run(&mut case.cmd, &case.name);
            case.wall.push(wall);
            case.cpu.push(cpu);
        }
    }
    println!("startup: load average after: {}", load_average());
    println!("startup: {rounds} rounds, medians:");
    let mut medians = Vec::new();
    for case in &mut cases {
        let (wall, cpu) = (median(&mut case.wall), median(&mut case.cpu));
        println!("startup/{:<24} wall {:>8.1} ms   cpu {:>8.1} ms", case.name, ms(wall), ms(cpu));
        medians.push((wall, cpu));
    }
    // Each half of `cases` is one command line: native first, then the runners.
    let half = n / 2;
    for (base, args) in [(0, "-S -c pass"), (half, "-c pass")] {
        for (k, (label, _)) in runners.iter().enumerate() {
            let (w, c) = medians[base + 1 + k];
            let (nw, nc) = medians[base];
            println!(
                "startup/ratio {:<22} wall {:>6.2}   cpu {:>6.2}   (wasm / native)",
                format!("{label} {args}"),
                ms(w) / ms(nw),
                ms(c) / ms(nc)
            );
        }
    }
}

/// The runners to measure: `PYMODE_RUN` (one path, or `LABEL=PATH` items separated by
/// commas, to compare builds in one alternating run), else the workspace's release
/// `pymode-run`, built (or found up to date) by cargo first.
fn runners() -> Vec<(String, PathBuf)> {
    if let Some(list) = std::env::var_os("PYMODE_RUN") {
        let list = list.to_string_lossy().into_owned();
        return list
            .split(',')
            .map(|item| match item.split_once('=') {
                Some((label, path)) => (label.to_owned(), PathBuf::from(path)),
                None => ("wasm".to_owned(), PathBuf::from(item)),
            })
            .collect();
    }
    vec![("wasm".to_owned(), release_binary("pymode-loader", "pymode-run"))]
}

/// Runs the command to completion; its wall time and the CPU time it used.
fn run(cmd: &mut Command, name: &str) -> (Duration, Duration) {
    let before = children_cpu();
    let start = Instant::now();
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output().expect("spawn");
    let wall = start.elapsed();
    let cpu = children_cpu().saturating_sub(before);
    assert!(out.status.success(), "{name}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    (wall, cpu)
}
