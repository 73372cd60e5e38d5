//! `cargo xtask demo`: the main job. Builds the wasm CPython main module (cached), builds
//! markupsafe's C speedups with zig and `pymode-ld`, and imports markupsafe inside wasm
//! CPython under `pymode-run`, showing that the C module is the one in use.

use crate::{ext, run_status, step, toolchain};
use anyhow::Result;
use pymode_build::cpython;
use pymode_testdata::{cache_dir, ext_dir};
use std::fs;
use std::process::Command;

const SCRIPT: &str = r#"import time
t0 = time.perf_counter()
import markupsafe
t1 = time.perf_counter()
import markupsafe._speedups as speedups
print("markupsafe._speedups:", speedups.__file__)
print("C speedups in use:", markupsafe._escape_inner is speedups._escape_inner)
print("escape:", markupsafe.escape('<a href="x">Tom & Jerry\'s</a>'))
print("format:", markupsafe.Markup("<b>%s</b>") % "<script>")
print(f"import markupsafe took {(t1 - t0) * 1000:.1f} ms inside wasm")
"#;

/// Runs the demo.
pub fn run() -> Result<()> {
    let tc = step("toolchain", toolchain)?;
    let py = step("cpython", || Ok(cpython::build(&tc)?))?;
    let site = step("build-ext markupsafe", || ext::run("markupsafe", &tc, &py))?;
    let runner = step("build pymode-run", || ext::build_bin("pymode-loader", "pymode-run"))?;
    let script = ext_dir("markupsafe").join("demo.py");
    fs::write(&script, SCRIPT)?;
    step("import markupsafe in wasm CPython", || {
        let mut cmd = Command::new(&runner);
        cmd.arg("--dir")
            .arg(&py.prefix)
            .arg("--dir")
            .arg(format!("{}::/site", site.display()))
            .arg("--dir")
            .arg(format!("{}::/demo", ext_dir("markupsafe").display()))
            .args(["--env", "PYTHONPATH=/site", "--cache"])
            .arg(cache_dir().join("module-cache"))
            .arg(&py.python_wasm)
            .args(["--", "/demo/demo.py"]);
        run_status(&mut cmd)
    })
}
