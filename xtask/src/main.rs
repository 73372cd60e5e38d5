//! Project automation: `cargo xtask <command>`.
//!
//! Commands: `toolchain` (provision zig + wasm-tools into the pymode cache), `fixtures`
//! (compile `testdata/c/*.c` in every mode), `test` (both, then the test suites), `demo`.

mod cpython;
mod demo;
mod ext;
mod fixtures;
mod package_table;
mod staticlib;
mod test;
mod toolchain;

use anyhow::{Context, Result, bail};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  toolchain            provision zig and wasm-tools into the pymode cache
                       ($PYMODE_CACHE, default ~/.cache/pymode)
  fixtures             compile testdata/c/*.c in all four modes into target/fixtures
  test [--full] [ARGS] toolchain + fixtures, then `cargo test --workspace ARGS`
                       (the fuzz smoke tests included); --full sets PYMODE_FULL=1
  cpython              build CPython 3.13 for wasm32-wasi as a dynamic-linking main
                       module (cached in $PYMODE_CACHE/cpython)
  build-ext NAME       build an extension package from its sdist for the wasm CPython
                       (its own setup.py under zig cc + pymode-ld): a wheel in
                       target/ext/NAME/wheels, installed into target/ext/NAME/site;
                       NAME is one of testdata/src/packages.rs, or `all`
  staticlib libyaml    build libyaml (Debian source) with -fPIC for pyyaml's _yaml
  staticlib zlib       build zlib (Debian source, its own configure/make) without -fPIC
                       for wasm32-wasi with zig into $PYMODE_CACHE/staticlib/zlib/out
  package-table        measure the built packages for docs/packages.md (build time,
                       side-module size, import time in wasm, last test results)
  demo                 the main job: import markupsafe's C speedups in wasm CPython";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some(cmd) = args.first() else {
        println!("{USAGE}");
        return Ok(());
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "toolchain" => toolchain::run().map(|_| ()),
        "fixtures" => {
            let tc = toolchain::run()?;
            fixtures::run(&tc).map(|_| ())
        }
        "cpython" => {
            let tc = toolchain::run()?;
            let built = cpython::run(&tc)?;
            println!("  prefix          {}", built.prefix.display());
            println!("  main module     {}", built.python_wasm.display());
            println!("  build Python    {}", built.native_python.display());
            Ok(())
        }
        "build-ext" => {
            let Some(name) = rest.first() else { bail!("usage: cargo xtask build-ext NAME") };
            let tc = toolchain::run()?;
            let py = cpython::run(&tc)?;
            if name == "all" {
                for pkg in pymode_testdata::packages::PACKAGES {
                    ext::run(pkg.name, &tc, &py)?;
                }
                return Ok(());
            }
            ext::run(name, &tc, &py).map(|_| ())
        }
        "staticlib" => {
            let Some(name) = rest.first() else { bail!("usage: cargo xtask staticlib NAME") };
            let tc = toolchain::run()?;
            staticlib::run(name, &tc).map(|_| ())
        }
        "test" => test::run(rest),
        "package-table" => package_table::run(),
        "demo" => demo::run(),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

/// Runs a step, printing its name first and its wall time after.
pub(crate) fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("==> {name}");
    let start = Instant::now();
    let r = f();
    let secs = start.elapsed().as_secs_f64();
    match &r {
        Ok(_) => println!("<== {name}: ok in {secs:.1} s"),
        Err(_) => println!("<== {name}: FAILED after {secs:.1} s"),
    }
    r
}

/// Runs a command with inherited stdio and fails unless it exits successfully.
pub(crate) fn run_status(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Whether a cached build is current: `stamp` holds `key` and every product exists. Says so
/// if it is; otherwise removes the stale stamp, so that a build cut short leaves none.
pub(crate) fn stamp_is_current(stamp: &std::path::Path, key: &str, products: &[std::path::PathBuf]) -> bool {
    if std::fs::read_to_string(stamp).is_ok_and(|s| s.trim() == key) && products.iter().all(|p| p.is_file()) {
        println!("  up to date ({})", stamp.display());
        return true;
    }
    let _ = std::fs::remove_file(stamp);
    false
}

/// Runs a command, captures its output, and returns stdout; stderr goes into the error.
pub(crate) fn run_capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cargo that started us (so `+toolchain` overrides carry over), else `cargo`.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(pymode_testdata::workspace_root());
    cmd
}
