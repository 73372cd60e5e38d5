//! Project automation: `cargo xtask <command>`.
//!
//! The developer tasks: `fixtures` (compile `testdata/c/*.c` in every mode), `build-ext`
//! (a package of the test catalogue, where the tests look for it), `test`, `package-table`,
//! `demo`. Provisioning and builds (`toolchain`, `cpython`, `staticlib`) are `pymode-build`'s
//! library, called from here; the user-facing tool is `pymode` (`build/`).

mod demo;
mod ext;
mod fixtures;
mod lint;
mod package_table;
mod test;

use anyhow::{Context, Result, bail};
use pymode_build::cpython;
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  toolchain            provision zig and wasm-tools into the pymode cache
                       ($PYMODE_CACHE, default ~/.cache/pymode)
  fixtures             compile testdata/c/*.c in all four modes into target/fixtures
  lint                 cargo fmt --check and clippy -D warnings over the workspace
  test [--full] [ARGS] lint, toolchain + fixtures, then `cargo test --workspace ARGS`
                       (the fuzz smoke tests included); --full sets PYMODE_FULL=1 and
                       also builds and runs the 20-package table's rows
  cpython              build CPython 3.13 for wasm32-wasi as a dynamic-linking main
                       module (cached in $PYMODE_CACHE/cpython)
  build-ext NAME       build an extension package from its sdist for the wasm CPython
                       (its own setup.py under zig cc + pymode-ld): a wheel in
                       target/ext/NAME/wheels, installed into target/ext/NAME/site;
                       NAME is one of testdata/src/packages.rs, or `all`
  staticlib libyaml    build libyaml (Debian source) with -fPIC for pyyaml's _yaml
  staticlib zlib       build zlib (Debian source, its own configure/make) without -fPIC
                       for wasm32-wasi with zig into $PYMODE_CACHE/staticlib/zlib/out
  package-table [NAME...]
                       measure the built packages for docs/packages.md (build time,
                       side-module size, import time in wasm, the full suite natively
                       next to the last full run in wasm); all of them, or those named
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
        "toolchain" => toolchain().map(|tc| pymode_build::toolchain::print_paths(&tc)),
        "fixtures" => {
            let tc = toolchain()?;
            fixtures::run(&tc).map(|_| ())
        }
        "cpython" => {
            let tc = toolchain()?;
            let built = cpython::build(&tc)?;
            println!("  prefix          {}", built.prefix.display());
            println!("  main module     {}", built.python_wasm.display());
            println!("  build Python    {}", built.native_python.display());
            Ok(())
        }
        "build-ext" => {
            let Some(name) = rest.first() else { bail!("usage: cargo xtask build-ext NAME") };
            let tc = toolchain()?;
            let py = cpython::build(&tc)?;
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
            let tc = toolchain()?;
            pymode_build::staticlib::build(name, &tc).map(|_| ()).map_err(Into::into)
        }
        "lint" => {
            lint::fmt_check()?;
            lint::clippy()
        }
        "test" => test::run(rest),
        "package-table" => package_table::run(rest),
        "demo" => demo::run(),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

/// The pinned toolchain, provisioned if needed.
pub(crate) fn toolchain() -> Result<pymode_build::toolchain::Toolchain> {
    Ok(pymode_build::toolchain::provision()?)
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
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

pub(crate) use pymode_build::stamp::is_current as stamp_is_current;

/// Runs a command, captures its output, and returns stdout; stderr goes into the error.
pub(crate) fn run_capture(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed with {}:\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
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
