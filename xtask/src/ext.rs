//! `cargo xtask build-ext NAME`: a package of the test catalogue (`pymode_testdata::packages`)
//! built where the tests look for it.
//!
//! The build itself is `pymode wheel`'s ([`pymode_build::wheel::Builder`]): the package's own
//! PEP 517 backend with its own build requirements, on the native CPython 3.13 under the cross
//! configuration, plus a built-in recipe where one exists. This adds what the tests need: the
//! sdist unpacked at `target/ext/NAME/src/NAME-VERSION` (the suites run from it), the wheel in
//! `target/ext/NAME/wheels`, the installed package in `target/ext/NAME/site`, pytest and the
//! suite's pure-Python requirements for the wasm CPython.
//!
//! markupsafe is also linked twice more, for cross-checks: by the reference wasm-ld
//! (`site-wasm-ld`) and from objects compiled without `-fPIC` (`site-nopic`).

use crate::{cargo, run_status, stamp_is_current};
use anyhow::{Context, Result, bail};
use pymode_build::cpython::CPython;
use pymode_build::pins::EXT_SUFFIX;
use pymode_build::recipe::Recipe;
use pymode_build::wheel::Builder;
use pymode_testdata::packages::{BuildFailure, PACKAGES, Package, package};
use pymode_testdata::{
    PYTEST_VERSION, Toolchain, apply_zig_env, cache_dir, ext_dir, venv_python, wasm_ld, wasm_test_deps_path, workspace_root,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the named package into `target/ext/<name>/site` and returns that directory.
pub fn run(name: &str, tc: &Toolchain, py: &CPython) -> Result<PathBuf> {
    let Some(pkg) = package(name) else {
        let known: Vec<&str> = PACKAGES.iter().map(|p| p.name).collect();
        bail!("build-ext: unknown package `{name}` (known: {})", known.join(", "));
    };
    let dir = ext_dir(name);
    let _ = fs::remove_dir_all(&dir);
    let src = dir.join("src");
    let sdist = pymode_build::sdist::download(&py.native_python, pkg.name, Some(pkg.version))?;
    let tree = pymode_build::sdist::unpack(&sdist, &src, &py.native_python)?;
    if tree != pkg.source() {
        fs::rename(&tree, pkg.source())?;
    }

    if let Some(tests) = pkg.tests_alone {
        fs::create_dir_all(pkg.suite_copy())?;
        run_status(Command::new("cp").arg("-r").arg(pkg.source().join(tests)).arg(pkg.suite_copy()))?;
    }

    let linker = build_pymode_ld()?;
    let builder = Builder { toolchain: tc.clone(), cpython: py.clone(), linker: linker.clone() };
    let recipe = Recipe::builtin(pkg.name)?;
    // `dir` is the build's scratch directory, so the wheel lands in `dir/wheels`
    // (= `pkg.wheel_dir()`) and the log in `dir/build.log`.
    let result = builder.wheel_from_tree(&pkg.source(), pkg.name, recipe.as_ref(), &dir, Some(&pkg.site()));
    if let Some(failure) = pkg.build_fails {
        return expected_build_failure(pkg, &failure, result.map(|_| ()), &dir.join("build.log"));
    }
    let built = result.with_context(|| format!("building {} {} for wasm32-wasi", pkg.name, pkg.version))?;
    fs::write(dir.join("build-seconds"), format!("{:.1}\n", built.seconds))?;
    println!("  wheel {}", built.wheel.display());
    for ext in &built.extensions {
        println!("  extension {ext}");
    }
    if pkg.side_modules().is_empty() {
        bail!("{}: the build installed no side module into {}", pkg.name, pkg.site().display());
    }
    if name == "markupsafe" {
        markupsafe_cross_checks(tc, py, &linker)?;
    }
    install_test_deps()?;
    install_test_requirements(pkg)?;
    println!("build-ext: {} {} in {:.1} s: {}", pkg.name, pkg.version, built.seconds, pkg.site().display());
    Ok(pkg.site())
}

/// A package that cannot be built (`build_fails`): its build must fail, with the expected
/// text in its error or log; anything else (it builds, or fails otherwise) is an error, so a
/// row whose cause changed is noticed.
fn expected_build_failure(pkg: &Package, failure: &BuildFailure, result: pymode_build::error::Result<()>, log: &Path) -> Result<PathBuf> {
    let Err(error) = result else {
        bail!("{} {} built, but the catalogue says it cannot ({}): update its row", pkg.name, pkg.version, failure.why);
    };
    let text = format!("{error}\n{}", fs::read_to_string(log).unwrap_or_default());
    if !text.contains(failure.error) {
        bail!("{} {} failed to build, but not with `{}`:\n{error}", pkg.name, pkg.version, failure.error);
    }
    println!("build-ext: {} {} does not build, as expected: `{}` ({})", pkg.name, pkg.version, failure.error, failure.why);
    fs::write(ext_dir(pkg.name).join("build-fails"), format!("{}\n", failure.error))?;
    Ok(pkg.site())
}

/// `$PYMODE_CACHE/<name>`: a venv of `native_python` with `requirements` installed from
/// wheels, made again only when the requirement list changes; returns its python.
pub(crate) fn native_venv(native_python: &Path, name: &str, requirements: &[String]) -> Result<PathBuf> {
    let venv = cache_dir().join(name);
    let python = venv.join("bin").join("python");
    let stamp = venv.join("pymode-requirements.txt");
    let wanted = requirements.join("\n");
    if stamp_is_current(&stamp, &wanted, std::slice::from_ref(&python)) {
        return Ok(python);
    }
    let _ = fs::remove_dir_all(&venv);
    run_status(Command::new(native_python).args(["-m", "venv"]).arg(&venv))?;
    run_status(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--only-binary", ":all:"])
            .args(requirements),
    )
    .with_context(|| format!("installing {} into {}", requirements.join(" "), venv.display()))?;
    fs::write(&stamp, wanted)?;
    Ok(python)
}

/// markupsafe's `_speedups.c` linked by the reference wasm-ld, and compiled without -fPIC
/// and linked by pymode-ld (what `pymode-ld`'s rewrite is tested on).
fn markupsafe_cross_checks(tc: &Toolchain, py: &CPython, linker: &Path) -> Result<()> {
    let dir = ext_dir("markupsafe");
    let pkg = package("markupsafe").context("markupsafe in PACKAGES")?;
    let package_dir = pkg.source().join("src").join("markupsafe");
    let include = py.include_dir();
    let object = dir.join("_speedups.o");
    compile(tc, &include, &package_dir.join("_speedups.c"), &object, true)?;
    // The same source without -fPIC (zig's default for wasm32-wasi, as third-party build
    // systems leave it): its absolute addresses are what `pymode-ld` rewrites.
    let nopic_object = dir.join("_speedups-nopic.o");
    compile(tc, &include, &package_dir.join("_speedups.c"), &nopic_object, false)?;
    for (site_dir, object, use_pymode_ld) in [(dir.join("site-wasm-ld"), &object, false), (dir.join("site-nopic"), &nopic_object, true)] {
        let target = site_dir.join("markupsafe");
        fs::create_dir_all(&target)?;
        let output = target.join(format!("_speedups{EXT_SUFFIX}"));
        let mut link = if use_pymode_ld {
            let mut c = Command::new(linker);
            c.args(["-shared", "--pic-rewrite=on"]);
            c
        } else {
            let mut c = wasm_ld();
            c.args(["--shared", "--experimental-pic", "--unresolved-symbols=import-dynamic"]);
            c
        };
        run_status(link.arg(object).arg("-o").arg(&output)).with_context(|| format!("linking {}", output.display()))?;
        copy_python_files(&package_dir, &target)?;
    }
    Ok(())
}

/// Compiles one C file of the package with zig, `-O2`, with or without `-fPIC`.
fn compile(tc: &Toolchain, include: &Path, source: &Path, object: &Path, pic: bool) -> Result<()> {
    let mut cc = Command::new(&tc.zig);
    apply_zig_env(&mut cc).args(["cc", "-target", "wasm32-wasi"]);
    if pic {
        cc.arg("-fPIC");
    }
    cc.args(["-O2", "-g0", "-c"]).arg("-I").arg(include).arg(source).arg("-o").arg(object);
    run_status(&mut cc).with_context(|| format!("compiling {} (pic: {pic})", source.display()))
}

fn copy_python_files(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "py" || e == "typed" || e == "pyi")
            && let Some(file) = path.file_name()
        {
            fs::copy(&path, to.join(file))?;
        }
    }
    Ok(())
}

/// pytest and its pure-Python dependencies as wheels for Python 3.13, unpacked into a
/// directory the wasm CPython puts on its path; installed once per pytest version.
fn install_test_deps() -> Result<()> {
    let dir = wasm_test_deps_path();
    if dir.join("pytest").join("__init__.py").is_file() {
        return Ok(());
    }
    let tmp = dir.with_extension("tmp");
    let _ = fs::remove_dir_all(&tmp);
    pip_install_pure(&tmp, &[&format!("pytest=={PYTEST_VERSION}")]).context("installing pytest for the wasm CPython")?;
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir)?;
    Ok(())
}

/// The package's own pure-Python test requirements for the wasm CPython, installed once per
/// package version.
fn install_test_requirements(pkg: &Package) -> Result<()> {
    if pkg.test_requirements.is_empty() {
        return Ok(());
    }
    let dir = pkg.test_deps();
    let stamp = dir.join("pymode-requirements.txt");
    let wanted = pkg.test_requirements.join("\n");
    if stamp_is_current(&stamp, &wanted, &[]) {
        return Ok(());
    }
    let _ = fs::remove_dir_all(&dir);
    pip_install_pure(&dir, pkg.test_requirements).with_context(|| format!("installing {}'s test requirements", pkg.name))?;
    fs::write(&stamp, wanted)?;
    Ok(())
}

/// `pip install --target dir` of pure-Python wheels for CPython 3.13 on any platform.
fn pip_install_pure(dir: &Path, requirements: &[&str]) -> Result<()> {
    let mut pip = Command::new(venv_python());
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "--only-binary",
        ":all:",
        "--python-version",
        "3.13",
        "--implementation",
        "py",
        "--platform",
        "any",
        "--target",
    ])
    .arg(dir)
    .args(requirements);
    run_status(&mut pip)?;
    Ok(pymode_build::install::fix_target_records(dir)?)
}

/// Builds `pymode-ld` and returns its path.
pub fn build_pymode_ld() -> Result<PathBuf> {
    build_bin("pymode-linker", "pymode-ld")
}

/// Builds a workspace binary (debug profile) and returns its path.
pub fn build_bin(package: &str, bin: &str) -> Result<PathBuf> {
    run_status(cargo().args(["build", "-q", "-p", package, "--bin", bin]))?;
    // Where cargo put it: `CARGO_TARGET_DIR` when set (cargo passes it on to us), else the
    // workspace's `target`.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let path = target.join("debug").join(bin);
    if !Path::new(&path).is_file() {
        bail!("cargo build did not produce {}", path.display());
    }
    Ok(path)
}
