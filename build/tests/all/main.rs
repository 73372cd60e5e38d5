//! The `pymode` command end to end: build-requirement isolation, `pymode install` with a
//! dependency, `pymode run`, and bad input (each a one-line error that leaves nothing
//! half-written in the output directory).
//!
//! These need the toolchain and the wasm CPython (`cargo xtask cpython`, or `pymode python`)
//! and the network to the package index; a missing toolchain or CPython fails the test with
//! the command to run, it never skips.

use pymode_build::cpython::CPython;
use pymode_build::toolchain::Toolchain;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const PYMODE: &str = env!("CARGO_BIN_EXE_pymode");

/// Fails unless what `pymode wheel` needs is there: a test must not start a 20-minute build.
fn require_cpython() {
    if let Err(e) = Toolchain::load() {
        panic!("{e}");
    }
    assert!(CPython::existing().is_some(), "the wasm CPython is not built: run `cargo xtask cpython` (or `pymode python`) first");
}

fn pymode(args: &[&str], cwd: &Path) -> Output {
    Command::new(PYMODE).args(args).current_dir(cwd).output().expect("run pymode")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The error is one line, `pymode: error: ...`, and mentions `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stdout: {}\nstderr: {err}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {err}");
    assert!(lines[0].starts_with("pymode: error: "), "{err}");
    assert!(lines[0].contains(needle), "{needle:?} not in {err}");
}

/// Nothing in `dir` (it may not exist).
fn assert_empty(dir: &Path) {
    let entries: Vec<_> = fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect()).unwrap_or_default();
    assert!(entries.is_empty(), "{} holds {entries:?}", dir.display());
}

/// lz4's version comes from setuptools_scm, which is in its own `[build-system] requires`
/// and in no other build set: without isolation it is missing (or the wheel says 0.0.0).
#[test]
fn setuptools_scm_package_gets_its_real_version() {
    require_cpython();
    let tmp = tempfile::tempdir().unwrap();
    let out = pymode(&["wheel", "lz4==4.4.5", "-o", "wheels"], tmp.path());
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let wheels: Vec<String> =
        fs::read_dir(tmp.path().join("wheels")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(wheels, ["lz4-4.4.5-cp313-cp313-wasi_wasm32.whl"], "{}", String::from_utf8_lossy(&out.stdout));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("extension lz4/block/_block.cpython-313-wasm32-wasi.so"), "{stdout}");
}

/// jinja2 is pure Python and depends on markupsafe, which has a C extension: the resolver
/// finds both for CPython 3.13, jinja2's wheel is installed as it is, markupsafe is built
/// from its sdist, and `pymode run` imports both from the site with the speedups loaded.
#[test]
fn install_resolves_a_dependency_and_run_imports_it() {
    require_cpython();
    let tmp = tempfile::tempdir().unwrap();
    let out = pymode(&["install", "jinja2==3.1.6", "--target", "site"], tmp.path());
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("installed Jinja2 3.1.6 (pure Python)") || stdout.contains("installed jinja2 3.1.6 (pure Python)"), "{stdout}");
    assert!(stdout.contains("(built for wasm32-wasi)"), "{stdout}");
    let site = tmp.path().join("site");
    assert!(site.join("jinja2").join("__init__.py").is_file());
    assert!(site.join("markupsafe").join("_speedups.cpython-313-wasm32-wasi.so").is_file());

    let script = "import jinja2, markupsafe, markupsafe._speedups as s\n\
                  print(jinja2.Template('{{ x }}', autoescape=True).render(x='<b>'))\n\
                  print(markupsafe._escape_inner is s._escape_inner)\n";
    fs::write(tmp.path().join("check.py"), script).unwrap();
    let out = pymode(&["run", "--site", "site", "--", "check.py"], tmp.path());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "&lt;b&gt;\nTrue\n", "{}", stderr(&out));
}

#[test]
fn a_spec_that_names_no_package_is_one_line() {
    require_cpython();
    let tmp = tempfile::tempdir().unwrap();
    let out = pymode(&["wheel", "pymode-no-such-package-4711", "-o", "wheels"], tmp.path());
    assert_one_line_error(&out, "pymode-no-such-package-4711");
    assert_empty(&tmp.path().join("wheels"));
    // Not a package name at all: refused before anything runs.
    let out = pymode(&["wheel", "lz4>=1", "-o", "wheels"], tmp.path());
    assert_one_line_error(&out, "lz4>=1");
    assert_empty(&tmp.path().join("wheels"));
}

/// numpy's backend (meson-python) has no metadata hook, so `pip download` would build all of
/// numpy natively before saving the sdist (and fail without a compiler set up for it); the
/// fetcher saves the newest sdist for CPython 3.13 unbuilt.
#[test]
fn a_meson_python_sdist_downloads_without_being_built() {
    require_cpython();
    let cpython = CPython::existing().expect("checked above");
    let sdist = pymode_build::sdist::download(&cpython.native_python, "numpy", None).unwrap_or_else(|e| panic!("{e}"));
    let name = sdist.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    assert!(name.starts_with("numpy-") && name.ends_with(".tar.gz"), "{}", sdist.display());
    let (_, version) = pymode_build::sdist::name_version_of(&sdist).expect("NAME-VERSION.tar.gz");
    assert!(version.split('.').next().and_then(|major| major.parse::<u32>().ok()).is_some_and(|major| major >= 2), "{version}");
    let head = fs::read(&sdist).unwrap();
    assert_eq!(&head[..2], &[0x1f, 0x8b], "{} is not gzip", sdist.display());
}

/// testdata/meson/meson_demo: a meson-python package built under the wasm32-wasi cross file.
/// Its meson.build makes a static library (a thin archive, `csrDT`), finds libm, runs
/// `cc.sizeof` / `cc.has_function` checks and links a C and a C++ extension with meson's
/// GNU-ld flags; both import and run in the wasm CPython.
#[test]
fn a_meson_python_package_builds_and_imports() {
    require_cpython();
    let cpython = CPython::existing().expect("checked above");
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/meson/meson_demo");
    let out = pymode(&["wheel", fixture.to_str().unwrap(), "-o", "wheels"], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("extension meson_demo/_cdemo.cpython-313-wasm32-wasi.so"), "{stdout}");
    assert!(stdout.contains("extension meson_demo/_cxxdemo.cpython-313-wasm32-wasi.so"), "{stdout}");
    let wheel = tmp.path().join("wheels/pymode_meson_demo-1.2.0-cp313-cp313-wasi_wasm32.whl");
    assert!(wheel.is_file(), "{stdout}");
    let unzip =
        Command::new(&cpython.native_python).args(["-m", "zipfile", "-e"]).arg(&wheel).arg(tmp.path().join("site")).output().unwrap();
    assert!(unzip.status.success(), "{}", stderr(&unzip));

    let script = "import meson_demo, meson_demo._cdemo as c, meson_demo._cxxdemo as x\n\
                  print(c.__file__.endswith('_cdemo.cpython-313-wasm32-wasi.so'), x.__file__.endswith('_cxxdemo.cpython-313-wasm32-wasi.so'))\n\
                  print(meson_demo.norm(3.0, 4.0, 12.0))\n\
                  print(sorted(meson_demo.config().items()))\n\
                  print(meson_demo.sorted_words('pear apple fig apple'))\n\
                  print(sorted(meson_demo.word_counts('pear apple fig apple').items()))\n";
    fs::write(tmp.path().join("check.py"), script).unwrap();
    let out = pymode(&["run", "--site", "site", "--", "check.py"], tmp.path());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "True True\n13.0\n[('have_hypot', 1), ('sizeof_long', 4), ('sizeof_long_double', 16)]\n\
         ['apple', 'apple', 'fig', 'pear']\n[('apple', 2), ('fig', 1), ('pear', 1)]\n",
        "{}",
        stderr(&out)
    );
}

/// A meson.build that stops with `error()`: meson's own message, on one line.
#[test]
fn a_meson_build_that_fails_is_one_line() {
    require_cpython();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("broken-meson-1.0");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("pyproject.toml"),
        "[project]\nname = \"broken-meson\"\nversion = \"1.0\"\n[build-system]\nrequires = [\"meson-python>=0.18\"]\nbuild-backend = \"mesonpy\"\n",
    )
    .unwrap();
    fs::write(src.join("meson.build"), "project('broken-meson', 'c')\nerror('this meson build fails on purpose')\n").unwrap();
    let out = pymode(&["wheel", "broken-meson-1.0", "-o", "wheels"], tmp.path());
    assert_one_line_error(&out, "this meson build fails on purpose");
    let err = stderr(&out);
    assert!(err.contains("the build backend of broken-meson (mesonpy)"), "{err}");
    assert_empty(&tmp.path().join("wheels"));
}

/// scikit-build-core drives CMake, for which there is no wasm32-wasi toolchain file yet: the
/// refusal names the package and the backend before any build environment is made.
#[test]
fn a_cmake_package_is_one_line() {
    require_cpython();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("cmake-user-1.0");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("pyproject.toml"),
        "[project]\nname = \"cmake-user\"\nversion = \"1.0\"\n[build-system]\nrequires = [\"scikit-build-core\"]\nbuild-backend = \"scikit_build_core.build\"\n",
    )
    .unwrap();
    fs::write(src.join("CMakeLists.txt"), "cmake_minimum_required(VERSION 3.15)\nproject(cmake_user C)\n").unwrap();
    let out = pymode(&["wheel", "cmake-user-1.0", "-o", "wheels"], tmp.path());
    assert_one_line_error(&out, "cmake-user: its build backend (scikit_build_core.build) drives CMake");
    assert_empty(&tmp.path().join("wheels"));
}

#[test]
fn an_sdist_that_is_not_an_archive_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("fake-1.0.tar.gz"), "this is not gzip\n").unwrap();
    let out = pymode(&["wheel", "fake-1.0.tar.gz", "-o", "wheels"], tmp.path());
    assert_one_line_error(&out, "not an sdist archive");
    assert_empty(&tmp.path().join("wheels"));
}

/// An in-tree backend that raises: no build requirements to install, so no network.
#[test]
fn a_backend_that_fails_is_one_line() {
    require_cpython();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("broken-1.0");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("pyproject.toml"), "[project]\nname = \"broken\"\nversion = \"1.0\"\n[build-system]\nrequires = []\nbuild-backend = \"broken_backend\"\nbackend-path = [\".\"]\n").unwrap();
    fs::write(src.join("broken_backend.py"), "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n    raise RuntimeError('this backend fails on purpose')\n").unwrap();
    fs::create_dir_all(tmp.path().join("wheels")).unwrap();
    let out = pymode(&["wheel", "broken-1.0", "-o", "wheels"], tmp.path());
    assert_one_line_error(&out, "this backend fails on purpose");
    let err = stderr(&out);
    assert!(err.contains("the build backend of broken"), "{err}");
    assert_empty(&tmp.path().join("wheels"));
}

/// An in-tree backend that, like maturin, ignores CC and LDSHARED and puts a host shared
/// object under the wasm suffix: refused with one line, nothing published.
#[test]
fn a_backend_that_builds_for_the_host_is_one_line() {
    require_cpython();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hostbuilt-1.0");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("pyproject.toml"), "[project]\nname = \"hostbuilt\"\nversion = \"1.0\"\n[build-system]\nrequires = []\nbuild-backend = \"host_backend\"\nbackend-path = [\".\"]\n").unwrap();
    fs::write(
        src.join("host_backend.py"),
        "import zipfile\n\
         def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n\
         \x20   name = 'hostbuilt-1.0-cp313-cp313-wasi_wasm32.whl'\n\
         \x20   with zipfile.ZipFile(wheel_directory + '/' + name, 'w') as zf:\n\
         \x20       zf.writestr('hostbuilt/_native.cpython-313-wasm32-wasi.so', b'\\x7fELF\\x02\\x01\\x01' + bytes(57))\n\
         \x20   return name\n",
    )
    .unwrap();
    let out = pymode(&["wheel", "hostbuilt-1.0", "-o", "wheels"], tmp.path());
    assert_one_line_error(&out, "hostbuilt/_native.cpython-313-wasm32-wasi.so is an ELF shared object, not a wasm32 side module");
    assert_empty(&tmp.path().join("wheels"));
}

#[test]
fn every_command_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in ["toolchain", "python", "wheel", "install", "run"] {
        let out = pymode(&[cmd, "--help"], tmp.path());
        assert!(out.status.success(), "{cmd}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: pymode"), "{cmd}");
    }
}
