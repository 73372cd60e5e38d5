//! `cargo xtask demo`. A placeholder until the end-to-end CPython demo lands: it provisions,
//! builds the fixtures and shows what `pymode-readobj` makes of one object.

use crate::{cargo, fixtures, run_status, step, toolchain};
use anyhow::Result;
use pymode_testdata::{Mode, fixture_object};

/// Runs the demo.
pub fn run() -> Result<()> {
    let tc = step("toolchain", toolchain::run)?;
    step("fixtures", || fixtures::run(&tc))?;
    let obj = fixture_object("method_table", Mode::PicO2);
    step("pymode-readobj", || {
        let mut cmd = cargo();
        cmd.args([
            "run",
            "-q",
            "-p",
            "pymode-linker",
            "--bin",
            "pymode-readobj",
            "--",
        ])
        .arg(&obj);
        run_status(&mut cmd)
    })?;
    println!(
        "demo: the end-to-end CPython demo (import a zig-built extension into python.wasm) is not \
         built yet; it lands with the end-to-end issue. Today this shows the fixture toolchain \
         and the object reader."
    );
    Ok(())
}
