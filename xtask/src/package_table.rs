//! `cargo xtask package-table`: the measurements behind the table in `docs/packages.md`, for
//! every package in the table that has been built (`cargo xtask build-ext all`) and tested
//! (`cargo xtask test [--full]`): version, extension modules, build time, side-module size,
//! the time `import NAME` takes inside the wasm CPython, and the suite's last results.

use crate::ext::build_bin;
use anyhow::{Context, Result, bail};
use pymode_testdata::ext_dir;
use pymode_testdata::packages::{PACKAGES, prepare_root, wasm_command};
use std::fs;

/// Prints the table as Markdown.
pub fn run() -> Result<()> {
    let runner = build_bin("pymode-loader", "pymode-run")?;
    let root = ext_dir("package-table-root");
    prepare_root(&root)?;
    println!("| package | version | extension modules | build | side modules | import in wasm | fast subset | full suite |");
    println!("|---|---|---|---|---|---|---|---|");
    for pkg in PACKAGES {
        let modules = pkg.side_modules();
        if modules.is_empty() {
            println!("| {} | {} | not built | | | | | |", pkg.name, pkg.version);
            continue;
        }
        let bytes: u64 = modules.iter().map(|m| fs::metadata(pkg.site().join(m)).map(|md| md.len()).unwrap_or(0)).sum();
        let build = fs::read_to_string(ext_dir(pkg.name).join("build-seconds")).unwrap_or_default();
        // The median of five fresh interpreters: the first import of a side module includes
        // the loader's work (read, validate, compile or fetch from the module cache, place).
        let mut times = Vec::new();
        for _ in 0..5 {
            let script = format!("import time\nt = time.perf_counter()\nimport {}\nprint((time.perf_counter() - t) * 1000)", pkg.import_name);
            let out = wasm_command(&runner, pkg, &root, &["-c".to_owned(), script]).output().context("run pymode-run")?;
            if !out.status.success() {
                bail!("import {} failed in wasm: {}", pkg.import_name, String::from_utf8_lossy(&out.stderr));
            }
            let ms: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().context("import time")?;
            times.push(ms);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let results = |scope: &str| {
            fs::read_to_string(ext_dir(pkg.name).join(format!("results-{scope}.txt")))
                .ok()
                .and_then(|t| t.split_once(": ").map(|(_, r)| r.trim().to_owned()))
                .unwrap_or_else(|| "not run".to_owned())
        };
        let names: Vec<String> = modules.iter().map(|m| m.display().to_string().replace(".cpython-313-wasm32-wasi.so", "").replace('/', ".")).collect();
        println!(
            "| {} | {} | {} | {} s | {:.0} KiB | {:.1} ms | {} | {} |",
            pkg.name,
            pkg.version,
            names.join(", "),
            build.trim(),
            bytes as f64 / 1024.0,
            times[2],
            results("fast"),
            results("full")
        );
    }
    Ok(())
}
