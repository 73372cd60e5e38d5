//! The cache layout: everything `pymode` provisions or builds lives under one directory,
//! `$PYMODE_CACHE` (default `~/.cache/pymode`), shared by every checkout and every user of
//! the installed tool.
//!
//! | path | what |
//! |---|---|
//! | `venv/` | the toolchain venv (zig, wasm-tools) |
//! | `zig-cache/` | zig's global and local caches |
//! | `toolchain.stamp` | the verified toolchain |
//! | `bin/` | the zig tool wrappers for package builds, the build driver, `pymode-ld` |
//! | `cpython/` | the CPython source, the native build Python (`native/`), the wasm CPython (`wasi/`) |
//! | `staticlib/NAME/` | static libraries for wasm32-wasi (`out/` holds the products) |
//! | `downloads/` | sdists |
//! | `build-envs/KEY/` | isolated build environments, one per build-requirement set |
//! | `wheels/` | wheels `pymode install` built, reused by name, version and build key |
//! | `module-cache/` | compiled wasm modules (`pymode run`) |

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;

/// The pymode cache root: `$PYMODE_CACHE` if set and non-empty, else `$HOME/.cache/pymode`.
pub fn cache_dir() -> PathBuf {
    cache_dir_from(env::var_os("PYMODE_CACHE"), env::var_os("HOME"))
}

/// [`cache_dir`] from the two variables' values (for tests).
pub fn cache_dir_from(pymode_cache: Option<OsString>, home: Option<OsString>) -> PathBuf {
    match pymode_cache {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // No HOME is unusual (some CI sandboxes); a relative fallback still keeps the cache
        // out of the way, and the path shows up in every message.
        _ => home.filter(|h| !h.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cache").join("pymode"),
    }
}

/// The Python venv holding the pinned pip packages: `<cache>/venv`.
pub fn venv_dir() -> PathBuf {
    cache_dir().join("venv")
}

/// The venv's interpreter: `<cache>/venv/bin/python`.
pub fn venv_python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

/// Zig's global and local cache directory: `<cache>/zig-cache`.
pub fn zig_cache_dir() -> PathBuf {
    cache_dir().join("zig-cache")
}

/// The stamp written once the toolchain is verified.
pub fn toolchain_stamp_path() -> PathBuf {
    cache_dir().join("toolchain.stamp")
}

/// The zig tool wrappers and the build driver for package builds: `<cache>/bin`.
pub fn bin_dir() -> PathBuf {
    cache_dir().join("bin")
}

/// The CPython source, builds and products: `<cache>/cpython`.
pub fn cpython_dir() -> PathBuf {
    cache_dir().join("cpython")
}

/// The wasm CPython's install prefix (not checked for existence).
pub fn cpython_prefix_path() -> PathBuf {
    cpython_dir().join("wasi")
}

/// The native CPython 3.13 that builds the wasm one and runs package builds (not checked).
pub fn native_python_path() -> PathBuf {
    cpython_dir().join("native").join("bin").join("python3.13")
}

/// A static library's directory: `<cache>/staticlib/NAME`.
pub fn staticlib_dir(name: &str) -> PathBuf {
    cache_dir().join("staticlib").join(name)
}

/// Downloaded sdists: `<cache>/downloads`.
pub fn downloads_dir() -> PathBuf {
    cache_dir().join("downloads")
}

/// Isolated build environments: `<cache>/build-envs`.
pub fn build_envs_dir() -> PathBuf {
    cache_dir().join("build-envs")
}

/// Built wheels `pymode install` reuses: `<cache>/wheels`.
pub fn wheels_dir() -> PathBuf {
    cache_dir().join("wheels")
}

/// Scratch space for builds, one directory per build: `<cache>/work`.
pub fn work_dir() -> PathBuf {
    cache_dir().join("work")
}

/// Compiled wasm modules: `<cache>/module-cache`.
pub fn module_cache_dir() -> PathBuf {
    cache_dir().join("module-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_prefers_pymode_cache() {
        assert_eq!(cache_dir_from(Some("/x".into()), Some("/home/u".into())), PathBuf::from("/x"));
        assert_eq!(cache_dir_from(Some("".into()), Some("/home/u".into())), PathBuf::from("/home/u/.cache/pymode"));
        assert_eq!(cache_dir_from(None, Some("/home/u".into())), PathBuf::from("/home/u/.cache/pymode"));
    }
}
