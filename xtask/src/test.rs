//! `cargo xtask test`: provision, build the fixtures, the wasm CPython and markupsafe, run
//! every test suite.

use crate::{cargo, cpython, ext, fixtures, run_status, staticlib, step, toolchain};
use anyhow::Result;
use pymode_testdata::workspace_root;
use std::time::Instant;

/// `args`: `--full` (sets `PYMODE_FULL=1` for the tests), the rest goes to `cargo test`.
pub fn run(args: &[String]) -> Result<()> {
    let start = Instant::now();
    let full = args.iter().any(|a| a == "--full");
    let extra: Vec<&String> = args.iter().filter(|a| *a != "--full").collect();

    let tc = step("toolchain", toolchain::run)?;
    step("fixtures", || fixtures::run(&tc))?;
    // The end-to-end tests need the wasm CPython (built once, then cached) and an extension.
    let py = step("cpython", || cpython::run(&tc))?;
    // loader/tests/packages.rs runs each package's own suite over what this builds.
    for pkg in pymode_testdata::packages::PACKAGES {
        step(&format!("build-ext {}", pkg.name), || ext::run(pkg.name, &tc, &py))?;
    }
    // loader/tests/staticlib.rs links this non-PIC zlib into a side module.
    step("staticlib zlib", || staticlib::run("zlib", &tc))?;
    step("cargo test --workspace", || {
        let mut cmd = cargo();
        cmd.args(["test", "--workspace"]).args(&extra);
        if full {
            cmd.env("PYMODE_FULL", "1");
        }
        run_status(&mut cmd)
    })?;
    let fuzz = workspace_root().join("fuzz").join("Cargo.toml");
    if fuzz.is_file() {
        step("cargo test (fuzz smoke tests)", || {
            let mut cmd = cargo();
            cmd.args(["test", "--manifest-path"]).arg(&fuzz);
            // The fuzz crate pins wasmtime exactly as the workspace does and its lock file
            // starts from the workspace's: in the workspace's target directory the wasmtime
            // just built for the tests above is reused instead of compiled a second time.
            if std::env::var_os("CARGO_TARGET_DIR").is_none() {
                cmd.env("CARGO_TARGET_DIR", workspace_root().join("target"));
            }
            if full {
                cmd.env("PYMODE_FULL", "1");
            }
            run_status(&mut cmd)
        })?;
    } else {
        println!("(no fuzz/Cargo.toml yet: no fuzz smoke tests to run)");
    }
    println!(
        "xtask test: all passed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
