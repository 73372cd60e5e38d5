//! Link time of `pymode-ld` against the reference `wasm-ld`, process against process, on the
//! same real inputs in the same run (issue 17).
//!
//! Inputs:
//!
//! - every package of the package table (`pymode_testdata::packages`) whose build left its
//!   objects: each `pymode-ld: ARGS` line of `target/ext/NAME/build.log` (the compiler
//!   driver prints the link line before it runs it, in the package's source tree, or for a
//!   meson build such as numpy's in the `Build dir:` its log names) is one link, run again
//!   from that directory with the same arguments (the linker's own `pymode-ld: warning:`
//!   lines are not link lines);
//! - `cpython`: CPython's own core, the members of the wasm CPython's `libpython3.13.a`, each
//!   compiled again by its own compile line from the build's `make.log` with `-fPIC -g0`
//!   added (once, cached under `target/bench-corpus/`), into one side module.
//!
//! `pymode-ld` runs as the release binary (built first unless `PYMODE_LD` names one, or
//! several as `LABEL=PATH,LABEL=PATH` to compare builds in the same run); `wasm-ld` as `zig
//! wasm-ld` with the reference flags (`pymode_testdata::WASM_LD_SIDE_MODULE_FLAGS`) plus
//! `--strip-debug`, because `pymode-ld` never writes debug sections. Each link's commands run
//! round after round in an order rotated by one each round; the figures are the medians of
//! each command's wall time and CPU time (user + system of the process and its children,
//! from `getrusage`), and their ratios pymode-ld / wasm-ld. `LINK_ROUNDS` sets the rounds
//! (default 11), `LINK_ONLY` keeps the inputs whose name contains it, `PYMODE_EXT_DIR` reads
//! the package builds from another checkout's `target/ext`.
//!
//! `cargo bench -p pymode-benches --bench link`. Needs the toolchain, the packages
//! (`cargo xtask build-ext NAME`, or `cargo xtask test`) and the wasm CPython's source and
//! configured build (`cargo xtask cpython`).

use pymode_benches::{children_cpu, load_average, median, ms, release_binary};
use pymode_testdata::packages::PACKAGES;
use pymode_testdata::{WASM_LD_SIDE_MODULE_FLAGS, cpython_dir, wasm_ld, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One link: its arguments (inputs and flags, without `-o`) and the directory they are
/// relative to.
struct Link {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    /// Objects and archives it reads, for the size column.
    input_bytes: u64,
    inputs: usize,
}

/// One command of a link, with its measurements.
struct Case {
    label: String,
    cmd: Command,
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

fn main() {
    let rounds: usize = std::env::var("LINK_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(11).max(1);
    let only = std::env::var("LINK_ONLY").ok();
    let linkers = linkers();
    for (label, path) in &linkers {
        println!("link: {label} = {}", path.display());
    }
    let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let mut links = package_links();
    // Compiled only when it is measured: the first run compiles for minutes.
    if wanted("cpython") {
        links.push(cpython_link());
    }
    links.retain(|l| wanted(&l.name));
    let out_dir = tempfile::tempdir().expect("tempdir");
    println!("link: {rounds} rounds; load average before: {}", load_average());
    let mut rows = Vec::new();
    for link in &links {
        let mut cases: Vec<Case> =
            linkers.iter().map(|(label, path)| Case::new(label, ours(path, link, &out_dir.path().join(format!("{label}.so"))))).collect();
        cases.push(Case::new("wasm-ld", theirs(link, &out_dir.path().join("wasm-ld.so"))));
        // Untimed once: the page cache, and a check that both accept the inputs.
        if let Some(failed) = cases.iter_mut().find_map(|c| run(&mut c.cmd).err().map(|e| format!("{}: {e}", c.label))) {
            println!("link/{}: skipped, {failed}", link.name);
            continue;
        }
        let n = cases.len();
        for round in 0..rounds {
            for i in 0..n {
                let case = &mut cases[(round + i) % n];
                let (wall, cpu) = run(&mut case.cmd).unwrap_or_else(|e| panic!("link/{}: {}: {e}", link.name, case.label));
                case.wall.push(wall);
                case.cpu.push(cpu);
            }
        }
        let medians: Vec<(Duration, Duration)> = cases.iter_mut().map(|c| (median(&mut c.wall), median(&mut c.cpu))).collect();
        let (ref_wall, ref_cpu) = medians[n - 1];
        println!(
            "link/{}: {} inputs, {:.2} MB; wasm-ld wall {:.1} ms, cpu {:.1} ms",
            link.name,
            link.inputs,
            link.input_bytes as f64 / 1e6,
            ms(ref_wall),
            ms(ref_cpu)
        );
        for (case, &(wall, cpu)) in cases.iter().zip(&medians).take(n - 1) {
            let (wall_ratio, cpu_ratio) = (ms(wall) / ms(ref_wall), ms(cpu) / ms(ref_cpu));
            println!(
                "link/{}: {:<8} wall {:>8.1} ms  cpu {:>8.1} ms   ratio / wasm-ld: wall {wall_ratio:.2}  cpu {cpu_ratio:.2}",
                link.name,
                case.label,
                ms(wall),
                ms(cpu)
            );
            rows.push((link.name.clone(), case.label.clone(), link.inputs, link.input_bytes, wall, cpu, ref_wall, ref_cpu));
        }
    }
    println!("link: load average after: {}", load_average());
    println!();
    println!("| input | objects | MB | linker | wall ms (ours / wasm-ld) | CPU ms (ours / wasm-ld) | wall ratio | CPU ratio |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, label, inputs, bytes, wall, cpu, ref_wall, ref_cpu) in &rows {
        println!(
            "| {name} | {inputs} | {:.2} | {label} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} | {:.2} |",
            *bytes as f64 / 1e6,
            ms(*wall),
            ms(*ref_wall),
            ms(*cpu),
            ms(*ref_cpu),
            ms(*wall) / ms(*ref_wall),
            ms(*cpu) / ms(*ref_cpu)
        );
    }
    for (label, _) in &linkers {
        let mut wall: Vec<f64> = Vec::new();
        let mut cpu: Vec<f64> = Vec::new();
        for (name, row_label, _, _, w, c, rw, rc) in &rows {
            if row_label == label && name != "cpython" {
                wall.push(ms(*w) / ms(*rw));
                cpu.push(ms(*c) / ms(*rc));
            }
        }
        if !wall.is_empty() {
            println!(
                "link: {label}: median over {} package links: wall ratio {:.2}, CPU ratio {:.2}",
                wall.len(),
                median_f64(&mut wall),
                median_f64(&mut cpu)
            );
        }
    }
}

impl Case {
    fn new(label: &str, cmd: Command) -> Self {
        Case { label: label.to_owned(), cmd, wall: Vec::new(), cpu: Vec::new() }
    }
}

/// The pymode-ld builds to measure: `PYMODE_LD` (a path, or `LABEL=PATH` items separated by
/// commas), else the workspace's release binary, built (or found up to date) by cargo first.
fn linkers() -> Vec<(String, PathBuf)> {
    if let Some(list) = std::env::var_os("PYMODE_LD") {
        return list
            .to_string_lossy()
            .split(',')
            .map(|item| match item.split_once('=') {
                Some((label, path)) => (label.to_owned(), PathBuf::from(path)),
                None => ("pymode-ld".to_owned(), PathBuf::from(item)),
            })
            .collect();
    }
    vec![("pymode-ld".to_owned(), release_binary("pymode-linker", "pymode-ld"))]
}

fn ours(linker: &Path, link: &Link, out: &Path) -> Command {
    let mut cmd = Command::new(linker);
    cmd.current_dir(&link.dir).args(&link.args).arg("-o").arg(out);
    cmd
}

fn theirs(link: &Link, out: &Path) -> Command {
    let mut cmd = wasm_ld();
    cmd.current_dir(&link.dir).args(WASM_LD_SIDE_MODULE_FLAGS).arg("--strip-debug");
    // pymode-ld's own spellings, and the flags the reference flags already give.
    let ours_only = |a: &str| a.starts_with("--pic-rewrite") || matches!(a, "-shared" | "--shared" | "--experimental-pic" | "--no-entry");
    cmd.args(link.args.iter().filter(|a| !ours_only(a.as_str()))).arg("-o").arg(out);
    cmd
}

/// Runs the command to completion; its wall time and the CPU time it used, or why it failed.
fn run(cmd: &mut Command) -> Result<(Duration, Duration), String> {
    let before = children_cpu();
    let start = Instant::now();
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output().map_err(|e| e.to_string())?;
    let wall = start.elapsed();
    let cpu = children_cpu().saturating_sub(before);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{}: {}", out.status, stderr.lines().take(3).collect::<Vec<_>>().join(" / ")));
    }
    Ok((wall, cpu))
}

/// The package builds' link lines, from each `build.log`.
fn package_links() -> Vec<Link> {
    let ext = std::env::var_os("PYMODE_EXT_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target").join("ext"));
    let mut links = Vec::new();
    for pkg in PACKAGES {
        let log = ext.join(pkg.name).join("build.log");
        let Ok(text) = std::fs::read_to_string(&log) else {
            println!("link/{}: skipped, no {}", pkg.name, log.display());
            continue;
        };
        // A meson build (numpy) links in its build directory, which its log names; the others
        // in the package's source tree.
        let dir = text
            .lines()
            .find_map(|l| l.strip_prefix("Build dir: "))
            .map(|d| PathBuf::from(d.trim()))
            .filter(|d| d.is_dir())
            .unwrap_or_else(|| ext.join(pkg.name).join("src").join(format!("{}-{}", pkg.name, pkg.version)));
        // The link lines, not the linker's own diagnostics (`pymode-ld: warning: ...`).
        let lines: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("pymode-ld: "))
            .filter(|l| !l.starts_with("warning:") && !l.starts_with("error:"))
            .collect();
        for (i, line) in lines.iter().enumerate() {
            let name = if lines.len() == 1 { pkg.name.to_owned() } else { format!("{}#{}", pkg.name, i + 1) };
            let args = drop_output(split_shell_words(line));
            let files: Vec<PathBuf> =
                args.iter().filter(|a| !a.starts_with('-') && !a.starts_with('@')).map(|a| dir.join(a)).filter(|p| p.is_file()).collect();
            let input_bytes = files.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
            links.push(Link { name, dir: dir.clone(), args, input_bytes, inputs: files.len() });
        }
    }
    links
}

/// The arguments without `-o FILE` (the benchmark writes elsewhere).
fn drop_output(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "-o" {
            it.next();
        } else if !(arg.starts_with("-o") && arg.len() > 2) {
            out.push(arg);
        }
    }
    out
}

/// Splits a line as a POSIX shell would (what Python's `shlex.join` wrote): single quotes,
/// double quotes with backslash escapes, and backslashes outside quotes.
fn split_shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        _ => w.push(q),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            _ => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// CPython's core (the members of `libpython3.13.a`) compiled again with `-fPIC` (once, two
/// compiles at a time): each member's own compile line from the wasm CPython's `make.log`, run
/// in its build directory, with `-fPIC -g0` added and the object written under
/// `target/bench-corpus/`. One link of them all.
fn cpython_link() -> Link {
    let build = cpython_dir().join("wasi-build");
    let log = std::fs::read_to_string(build.join("make.log")).expect("read the wasm CPython's make.log: run `cargo xtask cpython`");
    let members: Vec<String> = log
        .lines()
        .find_map(|l| l.split_once(" rcs libpython3.13.a ").map(|(_, rest)| split_shell_words(rest)))
        .expect("make.log archives libpython3.13.a");
    let dir = workspace_root().join("target").join("bench-corpus").join("cpython-pic");
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    let object_of = |member: &str| dir.join(member.replace('/', "_"));
    // Each member's compile line: the one that writes it (`-o MEMBER`), continuation lines
    // joined.
    let logical = log.replace("\\\n", " ");
    let mut by_output = std::collections::HashMap::new();
    for line in logical.lines() {
        let words = split_shell_words(line);
        if !words.iter().any(|w| w == "-c") {
            continue;
        }
        if let Some(o) = words.iter().position(|w| w == "-o").filter(|&o| o + 1 < words.len()) {
            by_output.entry(words[o + 1].clone()).or_insert((o, words));
        }
    }
    let mut compiles = Vec::new();
    for member in &members {
        let Some((o, words)) = by_output.get(member) else {
            println!("link/cpython: left out {member}: make.log has no compile line for it");
            continue;
        };
        let mut words = words.clone();
        words[o + 1] = object_of(member.as_str()).display().to_string();
        words.extend(["-fPIC".to_owned(), "-g0".to_owned()]);
        compiles.push((member, words));
    }
    let todo: Vec<&(&String, Vec<String>)> = compiles.iter().filter(|(m, _)| !object_of(m.as_str()).is_file()).collect();
    if !todo.is_empty() {
        println!("link/cpython: compiling {} of {} objects with -fPIC into {}", todo.len(), members.len(), dir.display());
    }
    std::thread::scope(|scope| {
        for half in todo.chunks(todo.len().div_ceil(2).max(1)) {
            let build = &build;
            scope.spawn(move || {
                for (member, words) in half {
                    let mut cmd = Command::new(&words[0]);
                    pymode_testdata::apply_zig_env(&mut cmd);
                    let out = cmd.args(&words[1..]).current_dir(build).output().expect("run the compiler");
                    assert!(out.status.success(), "compiling {member}: {}", String::from_utf8_lossy(&out.stderr));
                }
            });
        }
    });
    let objects: Vec<PathBuf> = compiles.iter().map(|(m, _)| object_of(m.as_str())).collect();
    let input_bytes = objects.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    Link {
        name: "cpython".to_owned(),
        inputs: objects.len(),
        input_bytes,
        args: objects.iter().map(|o| o.display().to_string()).collect(),
        dir,
    }
}

fn median_f64(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
