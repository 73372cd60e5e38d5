//! `cargo xtask fixtures`: compile `testdata/c/*.c` in every [`Mode`], link the PIC objects
//! with the reference linker, and archive a few objects.

use crate::run_capture;
use anyhow::{Context, Result, bail};
use pymode_testdata::{
    ARCHIVE_MEMBERS, COMMON_CFLAGS, EXPECTED_ZIG_VERSION, Mode, Toolchain, WASI_TARGET, WASM_LD_SIDE_MODULE_FLAGS, apply_zig_env,
    fixture_archive_path, fixture_names, fixture_object_path, fixture_side_module_path, fixture_source_path, fixtures_dir,
};
use std::fs::{self, File};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// What a fixtures run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Objects compiled this run.
    pub compiled: usize,
    /// Side modules linked with `zig wasm-ld` this run.
    pub linked: usize,
    /// (fixture, mode) pairs that needed nothing.
    pub up_to_date: usize,
    /// Whether the archive was rebuilt.
    pub archived: bool,
}

struct Job {
    name: String,
    mode: Mode,
    force: bool,
}

/// Builds whatever is missing or older than its source (or everything, if the flags changed).
pub fn run(tc: &Toolchain) -> Result<Summary> {
    let start = Instant::now();
    let root = fixtures_dir();
    for mode in Mode::all() {
        let d = root.join(mode.dir_name());
        fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    // Other checkouts' test runs share target/: do not build the same file twice at once.
    let lock = File::create(root.join(".lock"))?;
    lock.lock().context("cannot lock the fixtures directory")?;

    let stamp_path = root.join("flags.stamp");
    let stamp = flags_stamp();
    let force = fs::read_to_string(&stamp_path).map(|s| s != stamp).unwrap_or(true);

    let names = fixture_names();
    if names.is_empty() {
        bail!("no fixture sources in testdata/c");
    }
    let jobs: Vec<Job> = Mode::all().into_iter().flat_map(|mode| names.iter().map(move |n| Job { name: n.clone(), mode, force })).collect();
    let total = jobs.len();
    let queue = Mutex::new(jobs);
    let summary = Mutex::new(Summary::default());
    let errors = Mutex::new(Vec::<String>::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());

    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    // Pop in its own statement so the queue lock is not held during the build.
                    let job = queue.lock().map(|mut q| q.pop()).ok().flatten();
                    let Some(job) = job else { break };
                    match build_one(tc, &job) {
                        Ok((compiled, linked)) => {
                            if let Ok(mut sum) = summary.lock() {
                                sum.compiled += compiled as usize;
                                sum.linked += linked as usize;
                                sum.up_to_date += (!compiled && !linked) as usize;
                            }
                        }
                        Err(e) => {
                            if let Ok(mut errs) = errors.lock() {
                                errs.push(format!("{} [{}]: {e:#}", job.name, job.mode));
                            }
                        }
                    }
                }
            });
        }
    });

    let errors = errors.into_inner().unwrap_or_default();
    if !errors.is_empty() {
        bail!("{} of {total} fixture builds failed:\n{}", errors.len(), errors.join("\n"));
    }
    let mut summary = summary.into_inner().unwrap_or_default();
    summary.archived = archive(tc)?;
    if force {
        fs::write(&stamp_path, stamp)?;
    }
    println!(
        "fixtures: {} sources x {} modes in {}: {} compiled, {} linked with wasm-ld, {} up to date{} ({:.1} s)",
        names.len(),
        Mode::all().len(),
        root.display(),
        summary.compiled,
        summary.linked,
        summary.up_to_date,
        if summary.archived { ", archive rebuilt" } else { "" },
        start.elapsed().as_secs_f64()
    );
    Ok(summary)
}

/// Everything that changes the output besides the sources; a change rebuilds all fixtures.
fn flags_stamp() -> String {
    let mut s = format!("zig {EXPECTED_ZIG_VERSION}\ncc -target {WASI_TARGET} {}\n", COMMON_CFLAGS.join(" "));
    for mode in Mode::all() {
        s.push_str(&format!("{mode}: {}\n", mode.cflags().join(" ")));
    }
    s.push_str(&format!("wasm-ld {}\n", WASM_LD_SIDE_MODULE_FLAGS.join(" ")));
    s.push_str(&format!("ar {}\n", ARCHIVE_MEMBERS.join(" ")));
    s
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// True if `output` is missing or older than `input`.
fn stale(input: &Path, output: &Path) -> bool {
    match (mtime(input), mtime(output)) {
        (Some(i), Some(o)) => i > o,
        _ => true,
    }
}

fn zig(tc: &Toolchain) -> Command {
    let mut c = Command::new(&tc.zig);
    apply_zig_env(&mut c);
    c
}

/// Returns (compiled, linked).
fn build_one(tc: &Toolchain, job: &Job) -> Result<(bool, bool)> {
    let src = fixture_source_path(&job.name);
    let obj = fixture_object_path(&job.name, job.mode);
    let compile = job.force || stale(&src, &obj);
    if compile {
        let mut cc = zig(tc);
        cc.args(["cc", "-target", WASI_TARGET]).args(COMMON_CFLAGS).args(job.mode.cflags()).arg(&src).arg("-o").arg(&obj);
        run_capture(&mut cc)?;
    }
    let mut link = false;
    if job.mode.is_pic() {
        let so = fixture_side_module_path(&job.name, job.mode);
        link = compile || stale(&obj, &so);
        if link {
            let mut ld = zig(tc);
            ld.arg("wasm-ld").args(WASM_LD_SIDE_MODULE_FLAGS).arg(&obj).arg("-o").arg(&so);
            run_capture(&mut ld)?;
        }
    }
    Ok((compile, link))
}

/// Rebuilds the archive if a member is newer; returns whether it did.
fn archive(tc: &Toolchain) -> Result<bool> {
    let ar = fixture_archive_path();
    let members: Vec<_> = ARCHIVE_MEMBERS.iter().map(|n| fixture_object_path(n, Mode::PicO2)).collect();
    if !members.iter().any(|m| stale(m, &ar)) {
        return Ok(false);
    }
    // `ar r` would keep members that are no longer listed: start from nothing.
    let _ = fs::remove_file(&ar);
    let mut cmd = zig(tc);
    cmd.args(["ar", "rcs"]).arg(&ar).args(&members);
    run_capture(&mut cmd)?;
    Ok(true)
}
