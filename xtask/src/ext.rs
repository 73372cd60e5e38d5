//! `cargo xtask build-ext NAME`: an unmodified setuptools sdist built for the wasm CPython.
//!
//! The package's own build backend runs on the native CPython 3.13 (in a build venv with
//! pinned build requirements) under a cross configuration: the wasm CPython's sysconfig data,
//! zig cc / zig c++ for wasm32-wasi with `-fPIC` as `CC` / `CXX`, and `pymode-ld -shared` for
//! every `-shared` link (`xtask/python/pymode_build_ext.py` sets this up). Every `Extension` the package declares
//! is compiled and linked that way; a recipe in `testdata/recipes/` adds only what the build
//! cannot find out by itself. The products: a wheel tagged for wasm32-wasi in
//! `target/ext/NAME/wheels` and the installed package in `target/ext/NAME/site`.
//!
//! markupsafe is also linked twice more, for cross-checks: by the reference wasm-ld
//! (`site-wasm-ld`) and from objects compiled without `-fPIC` (`site-nopic`).

use crate::{cargo, cpython::CPython, run_capture, run_status, stamp_is_current, staticlib};
use anyhow::{Context, Result, bail};
use pymode_testdata::packages::{BUILD_REQUIREMENTS, PACKAGES, Package, package};
use pymode_testdata::{PYTEST_VERSION, Toolchain, apply_zig_env, cache_dir, ext_dir, venv_python, wasm_ld, wasm_test_deps_path, workspace_root};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The suffix CPython 3.13 on wasm32-wasi looks for (`_imp.extension_suffixes()`).
pub const EXT_SUFFIX: &str = ".cpython-313-wasm32-wasi.so";

/// Builds the named package into `target/ext/<name>/site` and returns that directory.
pub fn run(name: &str, tc: &Toolchain, py: &CPython) -> Result<PathBuf> {
    let Some(pkg) = package(name) else {
        let known: Vec<&str> = PACKAGES.iter().map(|p| p.name).collect();
        bail!("build-ext: unknown package `{name}` (known: {})", known.join(", "));
    };
    let dir = ext_dir(name);
    let _ = fs::remove_dir_all(&dir);
    let src = dir.join("src");
    fs::create_dir_all(&src)?;
    let sdist = download_sdist(pkg.name, pkg.version)?;
    run_status(Command::new("tar").arg("xzf").arg(&sdist).arg("-C").arg(&src))?;
    let tree = unpacked_tree(&src)?;
    if tree != pkg.source() {
        fs::rename(&tree, pkg.source())?;
    }

    if let Some(tests) = pkg.tests_alone {
        fs::create_dir_all(pkg.suite_copy())?;
        run_status(Command::new("cp").arg("-r").arg(pkg.source().join(tests)).arg(pkg.suite_copy()))?;
    }

    let linker = build_pymode_ld()?;
    let python = build_venv(py)?;
    let tools = cache_dir().join("bin");
    staticlib::write_tool_wrappers(tc, &tools)?;
    let cross = dir.join("cross");
    fs::create_dir_all(&cross)?;
    let sysconfigdata = sysconfigdata(py)?;
    let sysconfig_name = sysconfigdata.file_stem().and_then(|s| s.to_str()).context("sysconfigdata file name")?.to_owned();
    fs::copy(&sysconfigdata, cross.join(sysconfigdata.file_name().context("sysconfigdata file name")?))?;

    let mut build = Command::new(&python);
    build
        .arg(workspace_root().join("xtask").join("python").join("pymode_build_ext.py"))
        .arg("wheel")
        .arg("--source")
        .arg(pkg.source())
        .arg("--wheel-dir")
        .arg(pkg.wheel_dir())
        .arg("--site")
        .arg(pkg.site())
        .arg("--include")
        .arg(py.prefix.join("include").join("python3.13"))
        .arg("--cc")
        .arg(tools.join("zcc"))
        .arg("--cxx")
        .arg(tools.join("zcxx"))
        .arg("--ar")
        .arg(tools.join("zar"))
        .arg("--pymode-ld")
        .arg(&linker);
    if let Some(recipe) = pkg.recipe() {
        build.arg("--recipe").arg(recipe);
    }
    for lib in pkg.static_libs {
        let out = staticlib::run(lib, tc)?;
        build.arg("--static").arg(format!("{lib}={}", out.display()));
    }
    build
        .env("_PYTHON_SYSCONFIGDATA_NAME", &sysconfig_name)
        .env("_PYTHON_HOST_PLATFORM", "wasi-wasm32")
        .env("PYTHONPATH", &cross)
        .env_remove("PYTHONHOME");
    apply_zig_env(&mut build);
    let start = Instant::now();
    let log = run_capture(&mut build).with_context(|| format!("building {} {} for wasm32-wasi", pkg.name, pkg.version))?;
    let seconds = start.elapsed().as_secs_f64();
    fs::write(dir.join("build.log"), &log)?;
    fs::write(dir.join("build-seconds"), format!("{seconds:.1}\n"))?;
    for line in log.lines().filter(|l| l.starts_with("wheel ") || l.starts_with("extension ")) {
        println!("  {line}");
    }
    if pkg.side_modules().is_empty() {
        bail!("{}: the build installed no side module into {}", pkg.name, pkg.site().display());
    }
    if name == "markupsafe" {
        markupsafe_cross_checks(tc, py, &linker)?;
    }
    install_test_deps()?;
    install_test_requirements(pkg)?;
    println!("build-ext: {} {} in {seconds:.1} s: {}", pkg.name, pkg.version, pkg.site().display());
    Ok(pkg.site())
}

/// The one directory an sdist unpacks to.
fn unpacked_tree(src: &Path) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(src)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    match dirs.len() {
        1 => Ok(dirs.remove(0)),
        n => bail!("{}: the sdist unpacked to {n} directories, not one", src.display()),
    }
}

/// The wasm CPython's `_sysconfigdata_*.py`.
fn sysconfigdata(py: &CPython) -> Result<PathBuf> {
    let lib = py.prefix.join("lib").join("python3.13");
    fs::read_dir(&lib)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("_sysconfigdata_") && n.ends_with(".py")))
        .with_context(|| format!("no _sysconfigdata_*.py in {}", lib.display()))
}

/// The build venv: the native CPython 3.13 with [`BUILD_REQUIREMENTS`]; returns its python.
fn build_venv(py: &CPython) -> Result<PathBuf> {
    let requirements: Vec<String> = BUILD_REQUIREMENTS.iter().map(|r| r.to_string()).collect();
    native_venv(&py.native_python, "build-venv", &requirements).context("the build venv")
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
    let include = py.prefix.join("include").join("python3.13");
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
    run_status(&mut pip)
}

/// The sdist, downloaded once into `$PYMODE_CACHE/downloads` with pip.
fn download_sdist(name: &str, version: &str) -> Result<PathBuf> {
    let downloads = cache_dir().join("downloads");
    fs::create_dir_all(&downloads)?;
    // sdist names are normalized (PEP 625) but older uploads keep their own spelling.
    let normalize = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
    let wanted = normalize(&format!("{name}-{version}"));
    let find = || -> Result<Option<PathBuf>> {
        Ok(fs::read_dir(&downloads)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".tar.gz")).is_some_and(|stem| normalize(stem) == wanted)))
    };
    if let Some(file) = find()? {
        return Ok(file);
    }
    let mut pip = Command::new(venv_python());
    // `--no-binary NAME`, not `:all:`: pip prepares the sdist's metadata in an isolated env,
    // and `:all:` would build its build requirements (Cython) from source for that too.
    pip.args(["-m", "pip", "download", "--disable-pip-version-check", "--no-binary", name, "--no-deps", "-d"])
        .arg(&downloads)
        .arg(format!("{name}=={version}"));
    run_status(&mut pip)?;
    find()?.with_context(|| format!("pip download did not produce an sdist of {name} {version} in {}", downloads.display()))
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
