//! `cargo xtask build-ext markupsafe`: an extension package built for the wasm CPython, its C
//! sources compiled by zig against the wasm CPython's headers and linked by `pymode-ld`.
//!
//! Only markupsafe is known for now, with its one C file spelled out here. Building any
//! unmodified setuptools sdist through its own `setup.py` is later work (the package-set
//! issue).

use crate::{cargo, cpython::CPython, run_status};
use anyhow::{Context, Result, bail};
use pymode_testdata::{
    MARKUPSAFE_VERSION, PYTEST_VERSION, Toolchain, apply_zig_env, cache_dir, ext_dir, venv_python, wasm_ld, wasm_test_deps_path,
    workspace_root,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The suffix CPython 3.13 on wasm32-wasi looks for (`_imp.extension_suffixes()`).
pub const EXT_SUFFIX: &str = ".cpython-313-wasm32-wasi.so";

/// Builds the named package into `target/ext/<name>/site` and returns that directory.
pub fn run(name: &str, tc: &Toolchain, py: &CPython) -> Result<PathBuf> {
    if name != "markupsafe" {
        bail!("build-ext knows only `markupsafe` so far");
    }
    let sdist = download_sdist("markupsafe", MARKUPSAFE_VERSION)?;
    let dir = ext_dir(name);
    let src = dir.join("src");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&src)?;
    run_status(Command::new("tar").arg("xzf").arg(&sdist).arg("-C").arg(&src))?;
    let package = src.join(format!("markupsafe-{MARKUPSAFE_VERSION}")).join("src").join("markupsafe");

    let linker = build_pymode_ld()?;
    let include = py.prefix.join("include").join("python3.13");
    let object = dir.join("_speedups.o");
    compile(tc, &include, &package.join("_speedups.c"), &object, true)?;
    // The same source without -fPIC (zig's default for wasm32-wasi, as third-party build
    // systems leave it): its absolute addresses are what `pymode-ld` rewrites.
    let nopic_object = dir.join("_speedups-nopic.o");
    compile(tc, &include, &package.join("_speedups.c"), &nopic_object, false)?;

    // The package three times: linked by pymode-ld (what we ship), by the reference wasm-ld
    // (what the tests cross-check against), and from the non-PIC object by pymode-ld.
    let site = dir.join("site");
    let reference = dir.join("site-wasm-ld");
    let nopic = dir.join("site-nopic");
    for (site_dir, object, use_pymode_ld) in [(&site, &object, true), (&reference, &object, false), (&nopic, &nopic_object, true)] {
        let target = site_dir.join("markupsafe");
        fs::create_dir_all(&target)?;
        let output = target.join(format!("_speedups{EXT_SUFFIX}"));
        let mut link = if use_pymode_ld {
            let mut c = Command::new(&linker);
            c.args(["-shared", "--pic-rewrite=on"]);
            c
        } else {
            let mut c = wasm_ld();
            c.args(["--shared", "--experimental-pic", "--unresolved-symbols=import-dynamic"]);
            c
        };
        run_status(link.arg(object).arg("-o").arg(&output)).with_context(|| format!("linking {}", output.display()))?;
        copy_python_files(&package, &target)?;
    }
    install_test_deps()?;
    println!(
        "build-ext: {} (and {} linked by wasm-ld, {} built without -fPIC)",
        site.display(),
        reference.display(),
        nopic.display()
    );
    Ok(site)
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
    .arg(&tmp)
    .arg(format!("pytest=={PYTEST_VERSION}"));
    run_status(&mut pip).context("installing pytest for the wasm CPython")?;
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir)?;
    Ok(())
}

/// The sdist, downloaded once into `$PYMODE_CACHE/downloads` with pip.
fn download_sdist(name: &str, version: &str) -> Result<PathBuf> {
    let downloads = cache_dir().join("downloads");
    let file = downloads.join(format!("{name}-{version}.tar.gz"));
    if file.is_file() {
        return Ok(file);
    }
    fs::create_dir_all(&downloads)?;
    let mut pip = Command::new(venv_python());
    pip.args(["-m", "pip", "download", "--disable-pip-version-check", "--no-binary", ":all:", "--no-deps", "-d"])
        .arg(&downloads)
        .arg(format!("{name}=={version}"));
    run_status(&mut pip)?;
    if !file.is_file() {
        bail!("pip download did not produce {}", file.display());
    }
    Ok(file)
}

/// Builds `pymode-ld` and returns its path.
pub fn build_pymode_ld() -> Result<PathBuf> {
    build_bin("pymode-linker", "pymode-ld")
}

/// Builds a workspace binary (debug profile) and returns its path.
pub fn build_bin(package: &str, bin: &str) -> Result<PathBuf> {
    run_status(cargo().args(["build", "-q", "-p", package, "--bin", bin]))?;
    let path = workspace_root().join("target").join("debug").join(bin);
    if !Path::new(&path).is_file() {
        bail!("cargo build did not produce {}", path.display());
    }
    Ok(path)
}
