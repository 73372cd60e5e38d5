//! The package set: each package in `pymode_testdata::packages::PACKAGES`, built from its
//! unmodified sdist by `cargo xtask build-ext NAME` (its side modules linked by `pymode-ld`),
//! passes its own test suite inside the wasm CPython under `pymode-run`.
//!
//! `cargo xtask test` runs each package's fast subset; with `PYMODE_FULL=1`
//! (`cargo xtask test --full`) the full suites, and the rows of the 20-package table
//! (`full_only`), which are otherwise listed as ignored (kind `full`). A package that does not
//! build (`build_fails`) has no trial: `cargo xtask build-ext` checks its failure. Each run first checks that the compiled
//! extension is the code in use, then that the suite imported every extension module it must
//! from our side modules, and that nothing failed. Tests deselected in wasm are listed, with
//! their WASI reason, in the package table. The summary is written next to the build
//! (`target/ext/NAME/results-{fast,full}.txt`) for `docs/packages.md`.

use pymode_testdata::packages::{PACKAGES, Scope, Summary, package, prepare_root, reported_extensions, wasm_command, wasm_pytest_args};
use pymode_testdata::trials::{Trial, case};
use std::path::{Path, PathBuf};

/// One trial per package that builds: `packages::<name>_own_suite`; a `full_only` row's is
/// ignored unless `PYMODE_FULL=1`.
pub(crate) fn trials() -> Vec<Trial> {
    let full = full();
    PACKAGES
        .iter()
        .filter(|pkg| pkg.build_fails.is_none())
        .map(|pkg| {
            let trial = case(module_path!(), format!("{}_own_suite", pkg.name), move || own_suite_passes(pkg.name));
            if pkg.full_only { trial.with_kind("full").with_ignored_flag(!full) } else { trial }
        })
        .collect()
}

fn full() -> bool {
    std::env::var_os("PYMODE_FULL").is_some_and(|v| v == "1")
}

fn own_suite_passes(name: &str) {
    let pkg = package(name).unwrap_or_else(|| panic!("{name} is not in PACKAGES"));
    let scope = if full() { Scope::Full } else { Scope::Fast };
    let runner = Path::new(env!("CARGO_BIN_EXE_pymode-run"));
    assert!(
        pkg.source().is_dir() && !pkg.side_modules().is_empty(),
        "{name} is not built in {}: run `cargo xtask build-ext {name}` (or `cargo xtask test`) first",
        pkg.site().display()
    );
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("packages-root-{name}"));
    prepare_root(&root).expect("prepare the guest root");

    let check = wasm_command(runner, pkg, &root, &["-c".to_owned(), pkg.c_check.to_owned()]).output().expect("run pymode-run");
    let (stdout, stderr) = (String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success(), "{name}: the compiled extension is not in use ({:?}):\n{stdout}\n{stderr}", check.status);
    assert!(stdout.contains("/site"), "{name}: the check did not print a module file under /site:\n{stdout}");

    let scope_name = if scope == Scope::Full { "full" } else { "fast" };
    if pkg.suite.is_empty() {
        // The sdist ships no tests (the row says so): the check above is all there is.
        let record = format!("{name} {} {scope_name}: no suite in the sdist\n", pkg.version);
        std::fs::write(pymode_testdata::ext_dir(name).join(format!("results-{scope_name}.txt")), &record).expect("write the results");
        print!("{record}");
        return;
    }
    let out = wasm_command(runner, pkg, &root, &wasm_pytest_args(pkg, scope)).output().expect("run pymode-run");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let summary = Summary::parse(&stdout).unwrap_or_else(|| panic!("{name}: no pytest summary ({:?}):\n{stdout}\n{stderr}", out.status));
    let record = format!("{name} {} {scope_name}: {summary}\n", pkg.version);
    std::fs::write(pymode_testdata::ext_dir(name).join(format!("results-{scope_name}.txt")), &record).expect("write the results");
    print!("{record}");
    let tail: String = stdout.lines().rev().take(80).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(summary.failed == 0 && summary.errors == 0 && summary.passed > 0, "{name}: {record}{tail}\n{stderr}");
    assert!(out.status.success(), "{name}: pytest exited {:?}:\n{tail}\n{stderr}", out.status);

    let loaded = reported_extensions(&stdout);
    for module in pkg.extensions {
        let file = loaded.iter().find(|(m, _)| m == module).map(|(_, f)| f.as_str());
        assert!(
            file.is_some_and(|f| f.starts_with("/site") && f.ends_with(".cpython-313-wasm32-wasi.so")),
            "{name}: the suite did not use our {module} (loaded: {loaded:?})"
        );
    }
}
