//! `cargo xtask package-table`: the measurements behind the table in `docs/packages.md`, for
//! every package that has been built (`cargo xtask build-ext all`) and tested in wasm
//! (`cargo xtask test --full` writes `target/ext/NAME/results-full.txt`): version, extension
//! modules, build time, side-module size, the time `import NAME` takes inside the wasm
//! CPython, and the full suite's results in wasm next to the same suite on the native
//! CPython 3.13 (run here, in a venv with the package's own wheel of the same version).
//!
//! `cargo xtask package-table NAME...` measures only those packages.

use crate::ext::{build_bin, native_venv};
use anyhow::{Context, Result, bail};
use pymode_testdata::packages::{PACKAGES, Package, Scope, Summary, native_pytest_args, prepare_root, reported_extensions, wasm_command};
use pymode_testdata::{PYTEST_VERSION, cpython_dir, ext_dir};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Prints the table as Markdown: every package of the catalogue, or those in `names`.
pub fn run(names: &[String]) -> Result<()> {
    for name in names {
        if !PACKAGES.iter().any(|p| p.name == name) {
            bail!("package-table: unknown package `{name}`");
        }
    }
    let runner = build_bin("pymode-loader", "pymode-run")?;
    let root = ext_dir("package-table-root");
    prepare_root(&root)?;
    println!("| package | version | extension modules | build | side modules | import in wasm | native CPython 3.13 | wasm CPython |");
    println!("|---|---|---|---|---|---|---|---|");
    for pkg in PACKAGES.iter().filter(|p| names.is_empty() || names.iter().any(|n| n == p.name)) {
        if let Some(failure) = pkg.build_fails {
            println!("| {} | {} | does not build: `{}` | | | | | |", pkg.name, pkg.version, failure.error);
            continue;
        }
        let modules = pkg.side_modules();
        if modules.is_empty() {
            println!("| {} | {} | not built | | | | | |", pkg.name, pkg.version);
            continue;
        }
        let bytes: u64 = modules.iter().map(|m| fs::metadata(pkg.site().join(m)).map(|md| md.len()).unwrap_or(0)).sum();
        let build = fs::read_to_string(ext_dir(pkg.name).join("build-seconds")).unwrap_or_default();
        let import_ms = import_time(&runner, pkg, &root)?;
        let native = if pkg.suite.is_empty() { "no suite in the sdist".to_owned() } else { native_suite(&test_venv(pkg)?, pkg, &root)? };
        let wasm = fs::read_to_string(ext_dir(pkg.name).join("results-full.txt"))
            .ok()
            .and_then(|t| t.split_once(": ").map(|(_, r)| r.trim().to_owned()))
            .unwrap_or_else(|| "not run (`cargo xtask test --full`)".to_owned());
        let names: Vec<String> =
            modules.iter().map(|m| m.display().to_string().replace(".cpython-313-wasm32-wasi.so", "").replace('/', ".")).collect();
        println!(
            "| {} | {} | {} | {} s | {:.0} KiB | {import_ms:.1} ms | {native} | {wasm} |",
            pkg.name,
            pkg.version,
            names.join(", "),
            build.trim(),
            bytes as f64 / 1024.0,
        );
    }
    Ok(())
}

/// The median of five fresh interpreters: the first import of a side module includes the
/// loader's work (read, validate, compile or fetch from the module cache, place).
fn import_time(runner: &Path, pkg: &Package, root: &Path) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let script = format!("import time\nt = time.perf_counter()\nimport {}\nprint((time.perf_counter() - t) * 1000)", pkg.import_name);
        let out = wasm_command(runner, pkg, root, &["-c".to_owned(), script]).output().context("run pymode-run")?;
        if !out.status.success() {
            bail!("import {} failed in wasm: {}", pkg.import_name, String::from_utf8_lossy(&out.stderr));
        }
        times.push(String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().context("import time")?);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[2])
}

/// Runs the package's full suite on the native CPython; checks that it used the package's
/// compiled extension modules too.
fn native_suite(python: &Path, pkg: &Package, root: &Path) -> Result<String> {
    let work = ext_dir(pkg.name).join("native-run");
    fs::create_dir_all(&work)?;
    let mut cmd = Command::new(python);
    cmd.args(native_pytest_args(pkg, Scope::Full)).current_dir(&work).env("PYTHONPATH", root.join("plugins")).envs(pkg.env.iter().copied());
    let out = cmd.output().context("run the native suite")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = Summary::parse(&stdout)
        .with_context(|| format!("{}: no pytest summary natively:\n{stdout}\n{}", pkg.name, String::from_utf8_lossy(&out.stderr)))?;
    let loaded = reported_extensions(&stdout);
    for module in pkg.extensions {
        if !loaded.iter().any(|(m, f)| m == module && f.ends_with(".so")) {
            bail!("{}: the native suite did not import the compiled {module}", pkg.name);
        }
    }
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAILED ") || l.starts_with("ERROR ")).collect();
    if !failures.is_empty() {
        eprintln!("{} natively:\n{}", pkg.name, failures.join("\n"));
    }
    Ok(summary.to_string())
}

/// A venv of the native CPython 3.13 (the wasm build's build Python) with pytest, the
/// package's own wheel of the pinned version (and those of the packages it `needs`), and its
/// test requirements: one venv per package, as each has its own site in wasm.
fn test_venv(pkg: &Package) -> Result<PathBuf> {
    let mut requirements = vec![format!("pytest=={PYTEST_VERSION}")];
    for name in pkg.needs.iter().chain(std::iter::once(&pkg.name)) {
        let p = PACKAGES.iter().find(|p| p.name == *name).with_context(|| format!("{}: needs {name}, not in PACKAGES", pkg.name))?;
        requirements.push(format!("{}=={}", p.name, p.version));
    }
    requirements.extend(pkg.test_requirements.iter().map(|r| r.to_string()));
    let native = cpython_dir().join("native").join("bin").join("python3.13");
    native_venv(&native, &format!("native-test-venv/{}", pkg.name), &requirements)
        .with_context(|| format!("{}'s own wheel in a native venv", pkg.name))
}
