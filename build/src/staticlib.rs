//! Static libraries for wasm32-wasi from Debian's sources, for packages that link them and for
//! the CPython build:
//! - `zlib`: built by its own `./configure --static` and `make libz.a` with zig cc, without
//!   `-fPIC` (issue 6: the loader test links it into a side module with pymode-ld's non-PIC
//!   rewrite; the wasm CPython links it statically);
//! - `libyaml`: its C files compiled with `-fPIC` and archived, for pyyaml's `_yaml`;
//! - `xz`, `bzip2`, `sqlite3`: liblzma, libbz2 and SQLite with `-fPIC`, for the standard
//!   library's `_lzma`, `_bz2` and `_sqlite3` side modules ([`crate::stdlib`]); their builds
//!   are in [`optional`].
//!
//! The products land in `$PYMODE_CACHE/staticlib/NAME/out`, rebuilt only when the inputs
//! change.

use crate::cache::staticlib_dir;
use crate::error::{Error, IoContext, Result};
use crate::pins::EXPECTED_ZIG_VERSION;
use crate::process::capture;
use crate::stamp::{self, Key};
use crate::toolchain::{Toolchain, apply_zig_env};
use crate::{debian, zig_tools};
use pymode_abi::RelocKind;
use pymode_abi::object::Object;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod optional;

/// The libraries [`build`] knows.
pub const KNOWN: &[&str] = &["zlib", "libyaml", "xz", "bzip2", "sqlite3"];

/// Pinned to trixie's release version: the mirror does not always serve the newest
/// point-release upload's `.dsc`, and a pin keeps the cache key meaningful.
const ZLIB_SOURCE: &str = "zlib=1:1.3.dfsg+really1.3.1-1";
/// The top directory of the upstream tarball.
const ZLIB_TREE: &str = "zlib-1.3.1";

/// Where a library's products are (not checked for existence).
pub fn out_dir(name: &str) -> PathBuf {
    staticlib_dir(name).join("out")
}

/// A library's build stamp (its content is the build key).
pub fn stamp_path(name: &str) -> PathBuf {
    staticlib_dir(name).join("out.stamp")
}

/// Builds the named library if missing or stale; returns its output directory.
pub fn build(name: &str, tc: &Toolchain) -> Result<PathBuf> {
    match name {
        "zlib" => zlib(tc),
        "libyaml" => libyaml(tc),
        "xz" => optional::xz(tc),
        "bzip2" => optional::bzip2(tc),
        "sqlite3" => optional::sqlite3(tc),
        other => Err(Error::input(other, format!("unknown static library (known: {})", KNOWN.join(", ")))),
    }
}

pub(crate) fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).at("remove", dir)?;
    }
    fs::create_dir_all(dir).at("create directory", dir)
}

fn zlib(tc: &Toolchain) -> Result<PathBuf> {
    let root = staticlib_dir("zlib");
    let out = out_dir("zlib");
    let tools = root.join("bin");
    let wrappers = zig_tools::scripts(&tc.zig, zig_tools::PLAIN_CC);
    // zlib's configure compiles and links its probes but never runs them, so a cross
    // compiler works once CHOST names a non-native host. No -fPIC anywhere: that is the point.
    let env = [
        ("CHOST", "wasm32-wasi".to_owned()),
        ("CC", tools.join("zcc").display().to_string()),
        ("AR", tools.join("zar").display().to_string()),
        ("RANLIB", tools.join("zranlib").display().to_string()),
        ("CFLAGS", "-O2 -g0".to_owned()),
    ];
    let args = ["--static"];

    let mut key = Key::new();
    for part in [ZLIB_SOURCE, EXPECTED_ZIG_VERSION].into_iter().chain(args) {
        key.update(part).update([0]);
    }
    for (name, text) in &wrappers {
        key.update(name).update(text);
    }
    for (name, value) in &env {
        key.update(name).update(value);
    }
    let key = key.finish();
    let stamp_file = stamp_path("zlib");
    let products = ["libz.a", "zlib.h", "zconf.h"];
    if stamp::is_current(&stamp_file, &key, &products.map(|p| out.join(p))) {
        return Ok(out);
    }

    let orig = debian::source(ZLIB_SOURCE, &root.join("src"))?;
    // zlib builds in its source tree: unpack a fresh one for every build.
    let build = root.join("build");
    fresh_dir(&build)?;
    capture(Command::new("tar").arg("xf").arg(&orig).current_dir(&build), &format!("unpacking {}", orig.display()))?;
    let tree = build.join(ZLIB_TREE);
    if !tree.join("configure").is_file() {
        return Err(Error::product(format!("unpacking {}", orig.display()), format!("no {ZLIB_TREE}/configure")));
    }

    zig_tools::write(&tools, &tc.zig, zig_tools::PLAIN_CC)?;
    let mut configure = Command::new("./configure");
    configure.args(args).current_dir(&tree).envs(env.iter().map(|(k, v)| (k, v)));
    apply_zig_env(&mut configure);
    capture(&mut configure, "zlib's configure")?;
    let mut make = Command::new("make");
    make.args(["-j2", "libz.a"]).current_dir(&tree).envs(env.iter().map(|(k, v)| (k, v)));
    apply_zig_env(&mut make);
    capture(&mut make, "zlib's make libz.a")?;

    let archive_path = tree.join("libz.a");
    let archive = fs::read(&archive_path).at("read", &archive_path)?;
    check_non_pic(&archive)?;
    fs::create_dir_all(&out).at("create directory", &out)?;
    for p in products {
        fs::copy(tree.join(p), out.join(p)).at("copy", &tree.join(p))?;
    }
    stamp::write(&stamp_file, &key)?;
    println!("  {}", out.join("libz.a").display());
    Ok(out)
}

/// Pinned to trixie's release, like zlib.
const LIBYAML_SOURCE: &str = "libyaml=0.2.5-2";
/// The top directory of the upstream tarball, and the version its sources are compiled as.
const LIBYAML_TREE: &str = "libyaml-0.2.5";
const LIBYAML_VERSION: (u32, u32, u32) = (0, 2, 5);

/// libyaml for pyyaml's `_yaml` extension: its eight C files compiled with `-fPIC` (it goes
/// into a side module, like any static library a package links) and archived with zig ar.
/// Its own build (autotools or CMake) only adds the version defines this passes directly;
/// `YAML_DECLARE_STATIC` is what its CMake build sets for a static library.
/// Products: `out/include/yaml.h`, `out/lib/libyaml.a`.
fn libyaml(tc: &Toolchain) -> Result<PathBuf> {
    let root = staticlib_dir("libyaml");
    let out = out_dir("libyaml");
    let (major, minor, patch) = LIBYAML_VERSION;
    let flags = vec![
        "-O2".to_owned(),
        "-g0".to_owned(),
        "-fPIC".to_owned(),
        "-DYAML_DECLARE_STATIC".to_owned(),
        format!("-DYAML_VERSION_MAJOR={major}"),
        format!("-DYAML_VERSION_MINOR={minor}"),
        format!("-DYAML_VERSION_PATCH={patch}"),
        format!("-DYAML_VERSION_STRING=\"{major}.{minor}.{patch}\""),
    ];
    let mut key = Key::new();
    for part in [LIBYAML_SOURCE, EXPECTED_ZIG_VERSION].iter().map(|s| s.to_string()).chain(flags.iter().cloned()) {
        key.update(part).update([0]);
    }
    let key = key.finish();
    let stamp_file = stamp_path("libyaml");
    let products = [out.join("include").join("yaml.h"), out.join("lib").join("libyaml.a")];
    if stamp::is_current(&stamp_file, &key, &products) {
        return Ok(out);
    }
    let orig = debian::source(LIBYAML_SOURCE, &root.join("src"))?;
    let build = root.join("build");
    fresh_dir(&build)?;
    capture(Command::new("tar").arg("xf").arg(&orig).current_dir(&build), &format!("unpacking {}", orig.display()))?;
    let tree = build.join(LIBYAML_TREE);
    let src_dir = tree.join("src");
    let mut sources: Vec<PathBuf> = fs::read_dir(&src_dir)
        .at("read directory", &src_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        return Err(Error::product(format!("unpacking {}", orig.display()), format!("no C sources in {}", src_dir.display())));
    }
    let mut objects = Vec::new();
    for source in &sources {
        let Some(file_name) = source.file_name() else { continue };
        let object = build.join(file_name).with_extension("o");
        let mut cc = tc.zig_cc();
        cc.arg("-c").args(&flags).arg("-I").arg(tree.join("include")).arg(source).arg("-o").arg(&object);
        capture(&mut cc, &format!("compiling {}", source.display()))?;
        objects.push(object);
    }
    fs::create_dir_all(out.join("include")).at("create directory", &out)?;
    fs::create_dir_all(out.join("lib")).at("create directory", &out)?;
    let archive = out.join("lib").join("libyaml.a");
    let _ = fs::remove_file(&archive);
    let mut ar = tc.zig_command();
    ar.args(["ar", "rcs"]).arg(&archive).args(&objects);
    capture(&mut ar, "archiving libyaml.a")?;
    let header = tree.join("include").join("yaml.h");
    fs::copy(&header, out.join("include").join("yaml.h")).at("copy", &header)?;
    stamp::write(&stamp_file, &key)?;
    println!("  {} ({} objects)", archive.display(), objects.len());
    Ok(out)
}

/// The archive must hold objects compiled without -fPIC (absolute addresses, which pymode-ld
/// has to rewrite) and none with the PIC forms, or the loader test would not test the rewrite.
fn check_non_pic(archive: &[u8]) -> Result<()> {
    let bad = |e: object::Error| Error::input("libz.a", format!("not an archive: {e}"));
    let ar = object::read::archive::ArchiveFile::parse(archive).map_err(bad)?;
    let (mut objects, mut absolute) = (0, 0);
    for member in ar.members() {
        let member = member.map_err(bad)?;
        let name = String::from_utf8_lossy(member.name()).into_owned();
        if !name.ends_with(".o") {
            continue;
        }
        let bytes = member.data(archive).map_err(bad)?;
        let obj = Object::parse(&name, bytes).map_err(|e| Error::input(format!("libz.a({name})"), e.to_string()))?;
        objects += 1;
        for entry in obj.relocations.iter().flat_map(|r| &r.entries) {
            match entry.kind {
                RelocKind::MemoryAddrSleb | RelocKind::MemoryAddrLeb => absolute += 1,
                RelocKind::MemoryAddrRelSleb | RelocKind::TableIndexRelSleb => {
                    return Err(Error::product("zlib's build", format!("{name} in libz.a uses a PIC relocation ({:?})", entry.kind)));
                }
                _ => {}
            }
        }
    }
    if objects == 0 || absolute == 0 {
        return Err(Error::product(
            "zlib's build",
            format!("libz.a: {objects} objects, {absolute} MEMORY_ADDR_SLEB/LEB relocations: not a non-PIC build"),
        ));
    }
    println!("  libz.a: {objects} objects, {absolute} MEMORY_ADDR_SLEB/LEB relocations (non-PIC)");
    Ok(())
}
