//! The C++ runtime for C++ side modules (docs/cxx.md): libc++ and libc++abi for wasm32-wasi,
//! compiled once from the sources zig ships (`lib/libcxx`, `lib/libcxxabi`) with `-fPIC` and
//! the threads API on, plus PyMode's exception entry points (`build/cxx/pymode_cxa_throw.cpp`),
//! archived together as `$PYMODE_CACHE/cxx/out/lib/libc++.a` and linked into every C++ side
//! module (`-lc++` / `-lstdc++`).
//!
//! zig's own wasm32-wasi libc++ has no threads (`-D_LIBCPP_HAS_THREADS=0`), so `std::mutex`
//! does not exist. wasi-libc's single-threaded pthread stubs are in the main module (the wasm
//! CPython exports `pthread_mutex_lock` and the rest), so this libc++ is built, and C++ code
//! compiled against it, with [`THREADS_FLAGS`]: a mutex that never contends.

use crate::cache::cache_dir;
use crate::error::{Error, IoContext, Result};
use crate::pins::EXPECTED_ZIG_VERSION;
use crate::process::capture;
use crate::stamp::{self, Key};
use crate::toolchain::Toolchain;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;

/// PyMode's `__cxa_throw` and friends: end the program naming the exception's type.
pub const THROW_SHIM: &str = include_str!("../cxx/pymode_cxa_throw.cpp");

/// What every C++ compile for PyMode adds after zig's own flags: libc++ with its threads API
/// over wasi-libc's pthread stubs. The library and the code using it must agree.
pub const THREADS_FLAGS: &[&str] = &["-U_LIBCPP_HAS_THREADS", "-D_LIBCPP_HAS_THREADS=1"];

/// Flags for the library's own sources (libc++'s and libc++abi's build defines). Built
/// without exceptions: library code that would throw calls libc++'s verbose abort, which
/// names the exception.
const LIBRARY_FLAGS: &[&str] = &[
    "-O2",
    "-g0",
    "-fPIC",
    "-std=c++23",
    "-fno-exceptions",
    "-fvisibility=default",
    "-D_LIBCPP_BUILDING_LIBRARY",
    "-DLIBCXX_BUILDING_LIBCXXABI",
    "-D_LIBCXXABI_BUILDING_LIBRARY",
    "-D_LIBCPP_REMOVE_TRANSITIVE_INCLUDES",
    "-Wno-user-defined-literals",
];

/// libc++abi's files left out: the unwinding implementation (wasm32-wasi has no exception
/// handling; `cxa_noexception.cpp` and the shim stand in for it).
const ABI_EXCLUDED: &[&str] = &["cxa_exception.cpp", "cxa_personality.cpp"];

/// How many compiles run at once (the machine has 2 cores).
const JOBS: usize = 2;

/// Where the runtime's products are (not checked for existence).
pub fn out_dir() -> PathBuf {
    cache_dir().join("cxx").join("out")
}

/// The archive C++ side modules link.
pub fn archive_path() -> PathBuf {
    out_dir().join("lib").join("libc++.a")
}

fn stamp_path() -> PathBuf {
    cache_dir().join("cxx").join("out.stamp")
}

/// zig's library directory (`lib/` beside the zig binary, as the `ziglang` package lays it out).
fn zig_lib_dir(tc: &Toolchain) -> Result<PathBuf> {
    let lib = tc.zig.parent().map(|d| d.join("lib")).unwrap_or_default();
    if !lib.join("libcxx").join("src").is_dir() {
        return Err(Error::product("locating zig's libc++ sources", format!("{} has no libcxx/src", lib.display())));
    }
    Ok(lib)
}

/// The `.cpp` files directly in `dir`, sorted, minus `excluded`.
fn sources_in(dir: &Path, excluded: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .at("read directory", dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cpp"))
        .filter(|p| p.file_name().is_some_and(|n| !excluded.iter().any(|x| n == *x)))
        .collect();
    files.sort();
    Ok(files)
}

/// Every source compiled into the archive, as (source, object name).
fn all_sources(lib: &Path, shim: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for (dir, prefix, excluded) in [
        (lib.join("libcxx/src"), "cxx_", &[][..]),
        (lib.join("libcxx/src/ryu"), "cxx_ryu_", &[][..]),
        (lib.join("libcxxabi/src"), "abi_", ABI_EXCLUDED),
    ] {
        for source in sources_in(&dir, excluded)? {
            let stem = source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((source, format!("{prefix}{stem}.o")));
        }
    }
    out.push((shim.to_owned(), "pymode_cxa_throw.o".to_owned()));
    Ok(out)
}

/// Builds the runtime if missing or stale; returns the archive's path. Cold cost: about 45 s
/// on 2 cores (docs/cxx.md).
pub fn build(tc: &Toolchain) -> Result<PathBuf> {
    let lib = zig_lib_dir(tc)?;
    let root = cache_dir().join("cxx");
    let build = root.join("build");
    let mut key = Key::new();
    for part in [EXPECTED_ZIG_VERSION, THROW_SHIM].iter().chain(LIBRARY_FLAGS).chain(THREADS_FLAGS).chain(ABI_EXCLUDED) {
        key.update(part).update([0]);
    }
    let key = key.finish();
    let archive = archive_path();
    if stamp::is_current(&stamp_path(), &key, std::slice::from_ref(&archive)) {
        return Ok(archive);
    }
    if build.exists() {
        fs::remove_dir_all(&build).at("remove", &build)?;
    }
    fs::create_dir_all(&build).at("create directory", &build)?;
    let shim = build.join("pymode_cxa_throw.cpp");
    fs::write(&shim, THROW_SHIM).at("write", &shim)?;
    let includes = [lib.join("libcxx/src"), lib.join("libcxx/libc"), lib.join("libcxxabi/include")];
    let sources = all_sources(&lib, &shim)?;
    let mut objects = Vec::new();
    let mut running: Vec<(Child, PathBuf, PathBuf)> = Vec::new();
    for (source, object_name) in &sources {
        let object = build.join(object_name);
        let log = build.join(format!("{object_name}.log"));
        let log_file = fs::File::create(&log).at("create", &log)?;
        let mut cc = tc.zig_command();
        cc.args(["c++", "-target", crate::pins::WASI_TARGET, "-c"]).args(LIBRARY_FLAGS).args(THREADS_FLAGS);
        for dir in &includes {
            cc.arg("-I").arg(dir);
        }
        cc.arg(source).arg("-o").arg(&object).stdout(std::process::Stdio::null()).stderr(log_file);
        if running.len() >= JOBS {
            let (child, src, log) = running.remove(0);
            wait_compile(child, &src, &log)?;
        }
        let child = cc.spawn().at("run zig c++ for", source)?;
        running.push((child, source.clone(), log));
        objects.push(object);
    }
    for (child, src, log) in running {
        wait_compile(child, &src, &log)?;
    }
    fs::create_dir_all(out_dir().join("lib")).at("create directory", &out_dir())?;
    let _ = fs::remove_file(&archive);
    let mut ar = tc.zig_command();
    ar.args(["ar", "rcs"]).arg(&archive).args(&objects);
    capture(&mut ar, "archiving libc++.a")?;
    stamp::write(&stamp_path(), &key)?;
    println!("  {} ({} objects)", archive.display(), objects.len());
    Ok(archive)
}

/// Waits for one compile; a failure names the source and the first error line of its log.
fn wait_compile(mut child: Child, source: &Path, log: &Path) -> Result<()> {
    let status = child.wait().at("wait for zig c++ on", source)?;
    if status.success() {
        return Ok(());
    }
    let name = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = fs::read_to_string(log).unwrap_or_default();
    let first_error = text.lines().find(|l| l.contains("error:")).map_or_else(|| format!("zig c++ exited with {status}"), str::to_owned);
    Err(Error::product(format!("compiling libc++'s {name} (log: {})", log.display()), first_error))
}

/// Whether `tree` holds C++ sources (`.cpp`, `.cc`, `.cxx`, `.c++`), looked for at any depth.
pub fn has_cxx_sources(tree: &Path) -> bool {
    let mut stack = vec![tree.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "cpp" | "cc" | "cxx" | "c++")) {
                return true;
            }
        }
    }
    false
}
