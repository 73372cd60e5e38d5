//! The C libraries behind the standard library's optional modules, from Debian's source
//! packages like zlib: liblzma (xz-utils), libbz2 (bzip2) and SQLite. All three are compiled
//! with `-fPIC` because they end up inside side modules (`_lzma`, `_bz2`, `_sqlite3`), never
//! in python.wasm. Products: `out/include/...` and `out/lib/libNAME.a`.

use super::{fresh_dir, out_dir, stamp_path};
use crate::cache::staticlib_dir;
use crate::error::{Error, IoContext, Result};
use crate::pins::{BZIP2_SOURCE, EXPECTED_ZIG_VERSION, SQLITE3_SOURCE, XZ_SOURCE};
use crate::process::{capture, logged};
use crate::stamp::{self, Key};
use crate::toolchain::{Toolchain, apply_zig_env};
use crate::{debian, zig_tools};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The top directories of the upstream tarballs.
const XZ_TREE: &str = "xz-5.8.1";
const BZIP2_TREE: &str = "bzip2-1.0.8";
const SQLITE3_TREE: &str = "sqlite3-3.46.1";

/// The flags every file of these libraries is compiled with.
const COMMON_FLAGS: &[&str] = &["-O2", "-g0", "-fPIC"];

/// libbz2's library sources (its Makefile's `OBJS`); the rest of the tree is the programs.
const BZIP2_SOURCES: &[&str] = &["blocksort", "huffman", "crctable", "randtable", "compress", "decompress", "bzlib"];

/// SQLite for wasm32-wasi: no threads (the wasm CPython has none), no loadable extensions (no
/// `dlopen` for them), no WAL and no memory-mapped I/O (both need shared `mmap`, which WASI
/// preview 1 lacks). Rollback-journal databases on files and `:memory:` work.
const SQLITE3_FLAGS: &[&str] = &["-DSQLITE_THREADSAFE=0", "-DSQLITE_OMIT_LOAD_EXTENSION", "-DSQLITE_OMIT_WAL", "-DSQLITE_MAX_MMAP_SIZE=0"];

/// xz's configure for liblzma only: no programs, scripts, docs or translations; no threads.
const XZ_CONFIGURE: &[&str] = &[
    "--host=wasm32-unknown-wasi",
    "--build=x86_64-pc-linux-gnu",
    "--disable-shared",
    "--enable-static",
    "--disable-threads",
    "--disable-xz",
    "--disable-xzdec",
    "--disable-lzmadec",
    "--disable-lzmainfo",
    "--disable-lzma-links",
    "--disable-scripts",
    "--disable-doc",
    "--disable-nls",
    "--disable-sandbox",
];

/// The key of a build from `parts` (each followed by a NUL, so no two lists collide).
fn key_of<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut key = Key::new();
    for part in parts {
        key.update(part).update([0]);
    }
    key.finish()
}

/// Downloads (or reuses) `source`'s tarball and unpacks a fresh copy; returns the tree.
fn unpack(name: &str, source: &str, tree_name: &str) -> Result<PathBuf> {
    let root = staticlib_dir(name);
    let orig = debian::source(source, &root.join("src"))?;
    let build = root.join("build");
    fresh_dir(&build)?;
    capture(Command::new("tar").arg("xf").arg(&orig).current_dir(&build), &format!("unpacking {}", orig.display()))?;
    let tree = build.join(tree_name);
    if !tree.is_dir() {
        return Err(Error::product(format!("unpacking {}", orig.display()), format!("no {tree_name} directory")));
    }
    Ok(tree)
}

/// Compiles `sources` with zig cc and archives them as `archive`.
fn compile_archive(tc: &Toolchain, sources: &[PathBuf], flags: &[&str], objects_dir: &Path, archive: &Path) -> Result<usize> {
    let mut objects = Vec::new();
    for source in sources {
        let Some(stem) = source.file_stem() else { continue };
        let object = objects_dir.join(stem).with_extension("o");
        let mut cc = tc.zig_cc();
        cc.arg("-c").args(COMMON_FLAGS).args(flags).arg(source).arg("-o").arg(&object);
        capture(&mut cc, &format!("compiling {}", source.display()))?;
        objects.push(object);
    }
    if let Some(dir) = archive.parent() {
        fs::create_dir_all(dir).at("create directory", dir)?;
    }
    let _ = fs::remove_file(archive);
    let mut ar = tc.zig_command();
    ar.args(["ar", "rcs"]).arg(archive).args(&objects);
    capture(&mut ar, &format!("archiving {}", archive.display()))?;
    Ok(objects.len())
}

/// Copies `files` (relative to `from`) into `to`, keeping their relative paths.
fn copy_into(from: &Path, files: &[&str], to: &Path) -> Result<()> {
    for file in files {
        let (src, dst) = (from.join(file), to.join(file));
        if let Some(dir) = dst.parent() {
            fs::create_dir_all(dir).at("create directory", dir)?;
        }
        fs::copy(&src, &dst).at("copy", &src)?;
    }
    Ok(())
}

/// libbz2: its seven library files, archived.
pub(super) fn bzip2(tc: &Toolchain) -> Result<PathBuf> {
    let out = out_dir("bzip2");
    let flags = ["-D_FILE_OFFSET_BITS=64"];
    let key = key_of(
        [BZIP2_SOURCE, EXPECTED_ZIG_VERSION]
            .into_iter()
            .chain(COMMON_FLAGS.iter().copied())
            .chain(flags)
            .chain(BZIP2_SOURCES.iter().copied()),
    );
    let products = [out.join("include/bzlib.h"), out.join("lib/libbz2.a")];
    if stamp::is_current(&stamp_path("bzip2"), &key, &products) {
        return Ok(out);
    }
    let tree = unpack("bzip2", BZIP2_SOURCE, BZIP2_TREE)?;
    let sources: Vec<PathBuf> = BZIP2_SOURCES.iter().map(|s| tree.join(format!("{s}.c"))).collect();
    let n = compile_archive(tc, &sources, &flags, &tree, &products[1])?;
    copy_into(&tree, &["bzlib.h"], &out.join("include"))?;
    stamp::write(&stamp_path("bzip2"), &key)?;
    println!("  {} ({n} objects)", products[1].display());
    Ok(out)
}

/// liblzma: xz's own configure and `make -C src/liblzma` under the zig wrappers (its
/// config.h has some hundred feature tests; configure answers them for wasm32-wasi).
pub(super) fn xz(tc: &Toolchain) -> Result<PathBuf> {
    let root = staticlib_dir("xz");
    let out = out_dir("xz");
    let tools = root.join("bin");
    let wrappers = zig_tools::scripts(&tc.zig, zig_tools::PLAIN_CC);
    let cflags = COMMON_FLAGS.join(" ");
    let mut parts = vec![XZ_SOURCE, EXPECTED_ZIG_VERSION, &cflags];
    parts.extend(XZ_CONFIGURE.iter().copied());
    parts.extend(wrappers.iter().flat_map(|(n, t)| [*n, t.as_str()]));
    let key = key_of(parts);
    let products = [out.join("include/lzma.h"), out.join("lib/liblzma.a")];
    if stamp::is_current(&stamp_path("xz"), &key, &products) {
        return Ok(out);
    }
    let tree = unpack("xz", XZ_SOURCE, XZ_TREE)?;
    zig_tools::write(&tools, &tc.zig, zig_tools::PLAIN_CC)?;
    let env = [
        ("CC", tools.join("zcc").display().to_string()),
        ("AR", tools.join("zar").display().to_string()),
        ("RANLIB", tools.join("zranlib").display().to_string()),
        ("CFLAGS", cflags.clone()),
    ];
    let mut configure = Command::new("./configure");
    configure.args(XZ_CONFIGURE).current_dir(&tree).envs(env.iter().map(|(k, v)| (k, v)));
    apply_zig_env(&mut configure);
    logged(&mut configure, "xz's configure", &tree.join("pymode-configure.log"))?;
    let mut make = Command::new("make");
    make.args(["-j2", "-C", "src/liblzma"]).current_dir(&tree);
    apply_zig_env(&mut make);
    logged(&mut make, "xz's make -C src/liblzma", &tree.join("pymode-make.log"))?;
    let api = tree.join("src/liblzma/api");
    let mut headers = vec!["lzma.h".to_owned()];
    let lzma_dir = api.join("lzma");
    for entry in fs::read_dir(&lzma_dir).at("read directory", &lzma_dir)? {
        let name = entry.at("read directory", &lzma_dir)?.file_name();
        headers.push(format!("lzma/{}", name.to_string_lossy()));
    }
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    copy_into(&api, &headers, &out.join("include"))?;
    copy_into(&tree.join("src/liblzma/.libs"), &["liblzma.a"], &out.join("lib"))?;
    stamp::write(&stamp_path("xz"), &key)?;
    println!("  {}", products[1].display());
    Ok(out)
}

/// SQLite: the amalgamation (`sqlite3.c`) made from the canonical sources Debian ships by
/// their own `configure` and `make sqlite3.c` on the build machine (it needs the host's cc
/// and tclsh), then compiled for wasm32-wasi with [`SQLITE3_FLAGS`].
pub(super) fn sqlite3(tc: &Toolchain) -> Result<PathBuf> {
    let out = out_dir("sqlite3");
    let parts = [SQLITE3_SOURCE, EXPECTED_ZIG_VERSION].into_iter().chain(COMMON_FLAGS.iter().copied()).chain(SQLITE3_FLAGS.iter().copied());
    let key = key_of(parts);
    let products = [out.join("include/sqlite3.h"), out.join("lib/libsqlite3.a")];
    if stamp::is_current(&stamp_path("sqlite3"), &key, &products) {
        return Ok(out);
    }
    crate::debian::ensure_host_program("tclsh", "tcl")?;
    let tree = unpack("sqlite3", SQLITE3_SOURCE, SQLITE3_TREE)?;
    let amalgamation = tree.join("amalgamation");
    fs::create_dir_all(&amalgamation).at("create directory", &amalgamation)?;
    let mut configure = Command::new(tree.join("configure"));
    configure.arg("--disable-tcl").current_dir(&amalgamation);
    logged(&mut configure, "SQLite's configure (host, for the amalgamation)", &amalgamation.join("pymode-configure.log"))?;
    let mut make = Command::new("make");
    make.arg("sqlite3.c").current_dir(&amalgamation);
    logged(&mut make, "SQLite's make sqlite3.c (needs tclsh)", &amalgamation.join("pymode-make.log"))?;
    let n = compile_archive(tc, &[amalgamation.join("sqlite3.c")], SQLITE3_FLAGS, &amalgamation, &products[1])?;
    copy_into(&amalgamation, &["sqlite3.h"], &out.join("include"))?;
    stamp::write(&stamp_path("sqlite3"), &key)?;
    println!("  {} ({n} object)", products[1].display());
    Ok(out)
}
