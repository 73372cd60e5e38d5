//! `cargo xtask test`: provision, build the fixtures, the wasm CPython and markupsafe, run
//! every test suite.

use crate::{cargo, ext, fixtures, lint, run_status, step, toolchain};
use anyhow::Result;
use pymode_build::{cpython, staticlib};
use std::time::Instant;

/// `args`: `--full` (sets `PYMODE_FULL=1` for the tests), the rest goes to `cargo test`.
pub fn run(args: &[String]) -> Result<()> {
    let start = Instant::now();
    let full = args.iter().any(|a| a == "--full");
    let extra: Vec<&String> = args.iter().filter(|a| *a != "--full").collect();

    // Style and lints first: they fail in seconds or minutes, the suites take longer.
    step("cargo fmt --check", lint::fmt_check)?;
    step("cargo clippy", lint::clippy)?;
    let tc = step("toolchain", toolchain)?;
    step("fixtures", || fixtures::run(&tc))?;
    // The end-to-end tests need the wasm CPython (built once, then cached) and an extension.
    let py = step("cpython", || Ok(cpython::build(&tc)?))?;
    // loader/tests/all/packages.rs runs each package's own suite over what this builds; the
    // rows of the 20-package table (`full_only`) only with --full, which runs their suites.
    for pkg in pymode_testdata::packages::PACKAGES.iter().filter(|p| full || !p.full_only) {
        step(&format!("build-ext {}", pkg.name), || ext::run(pkg.name, &tc, &py))?;
    }
    // loader/tests/all/staticlib.rs links this non-PIC zlib into a side module.
    step("staticlib zlib", || Ok(staticlib::build("zlib", &tc)?))?;
    // The workspace includes `fuzz/`, so this also replays the fuzz seeds (its smoke tests)
    // against the same wasmtime build as every other test.
    step("cargo test --workspace", || {
        let mut cmd = cargo();
        cmd.args(["test", "--workspace"]).args(&extra);
        if full {
            cmd.env("PYMODE_FULL", "1");
        }
        run_status(&mut cmd)
    })?;
    println!("xtask test: all passed in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
