//! `cargo xtask staticlib zlib`: a third-party static library built by its own build system
//! without `-fPIC` (issue 6), for the loader test that links it into a side module with
//! pymode-ld's non-PIC rewrite.
//!
//! zlib's source comes from Debian's `zlib` source package (the same `apt-get source` path as
//! CPython's); zlib's own `./configure --static` and `make libz.a` run with zig cc for
//! wasm32-wasi and `zig ar`. The products (`libz.a`, `zlib.h`, `zconf.h`) land in
//! `$PYMODE_CACHE/staticlib/zlib/out`, rebuilt only when the inputs change.

use crate::cpython::debian_source;
use crate::{run_capture, run_status, stamp_is_current};
use anyhow::{Context, Result, bail};
use pymode_abi::RelocKind;
use pymode_abi::object::Object;
use pymode_testdata::{EXPECTED_ZIG_VERSION, Toolchain, apply_zig_env, cache_dir};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// Pinned to trixie's release version: the mirror does not always serve the newest
/// point-release upload's `.dsc`, and a pin keeps the cache key meaningful.
const ZLIB_SOURCE: &str = "zlib=1:1.3.dfsg+really1.3.1-1";
/// The top directory of the upstream tarball.
const ZLIB_TREE: &str = "zlib-1.3.1";

/// Where `cargo xtask staticlib zlib` leaves its products (the loader test reads them here).
pub fn out_dir(name: &str) -> PathBuf {
    cache_dir().join("staticlib").join(name).join("out")
}

/// Builds the named library if missing or stale; returns its output directory.
pub fn run(name: &str, tc: &Toolchain) -> Result<PathBuf> {
    match name {
        "zlib" => zlib(tc),
        "libyaml" => libyaml(tc),
        other => bail!("unknown static library `{other}` (known: zlib, libyaml)"),
    }
}

fn zlib(tc: &Toolchain) -> Result<PathBuf> {
    let root = cache_dir().join("staticlib").join("zlib");
    let out = out_dir("zlib");
    let tools = root.join("bin");
    let wrappers = wrapper_scripts(tc);
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

    let mut key = Sha256::new();
    for part in [ZLIB_SOURCE, EXPECTED_ZIG_VERSION].into_iter().chain(args) {
        key.update(part.as_bytes());
        key.update([0]);
    }
    for (name, text) in &wrappers {
        key.update(name.as_bytes());
        key.update(text.as_bytes());
    }
    for (name, value) in &env {
        key.update(name.as_bytes());
        key.update(value.as_bytes());
    }
    let key = format!("{:x}", key.finalize());
    let stamp = root.join("out.stamp");
    let products = ["libz.a", "zlib.h", "zconf.h"];
    if stamp_is_current(&stamp, &key, &products.map(|p| out.join(p))) {
        return Ok(out);
    }

    let src = root.join("src");
    let orig = debian_source(ZLIB_SOURCE, &src)?;
    // zlib builds in its source tree: unpack a fresh one for every build.
    let build = root.join("build");
    if build.exists() {
        fs::remove_dir_all(&build)?;
    }
    fs::create_dir_all(&build)?;
    run_status(Command::new("tar").arg("xf").arg(&orig).current_dir(&build))?;
    let tree = build.join(ZLIB_TREE);
    if !tree.join("configure").is_file() {
        bail!("{} did not unpack to {ZLIB_TREE}/configure", orig.display());
    }

    write_tool_wrappers(tc, &tools)?;
    let mut configure = Command::new("./configure");
    configure.args(args).current_dir(&tree).envs(env.iter().map(|(k, v)| (k, v)));
    apply_zig_env(&mut configure);
    run_capture(&mut configure).context("zlib's configure")?;
    let mut make = Command::new("make");
    make.args(["-j2", "libz.a"]).current_dir(&tree).envs(env.iter().map(|(k, v)| (k, v)));
    apply_zig_env(&mut make);
    run_capture(&mut make).context("zlib's make libz.a")?;

    let archive = fs::read(tree.join("libz.a"))?;
    check_non_pic(&archive)?;
    fs::create_dir_all(&out)?;
    for p in products {
        fs::copy(tree.join(p), out.join(p)).with_context(|| format!("copy {p}"))?;
    }
    fs::write(&stamp, key)?;
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
    let root = cache_dir().join("staticlib").join("libyaml");
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
    let mut key = Sha256::new();
    for part in [LIBYAML_SOURCE, EXPECTED_ZIG_VERSION].iter().map(|s| s.to_string()).chain(flags.iter().cloned()) {
        key.update(part.as_bytes());
        key.update([0]);
    }
    let key = format!("{:x}", key.finalize());
    let stamp = root.join("out.stamp");
    let products = [out.join("include").join("yaml.h"), out.join("lib").join("libyaml.a")];
    if stamp_is_current(&stamp, &key, &products) {
        return Ok(out);
    }
    let orig = debian_source(LIBYAML_SOURCE, &root.join("src"))?;
    let build = root.join("build");
    if build.exists() {
        fs::remove_dir_all(&build)?;
    }
    fs::create_dir_all(&build)?;
    run_status(Command::new("tar").arg("xf").arg(&orig).current_dir(&build))?;
    let tree = build.join(LIBYAML_TREE);
    let sources: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = fs::read_dir(tree.join("src"))
            .with_context(|| format!("{} did not unpack to {LIBYAML_TREE}/src", orig.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "c"))
            .collect();
        v.sort();
        v
    };
    if sources.is_empty() {
        bail!("no C sources in {}", tree.join("src").display());
    }
    let mut objects = Vec::new();
    for source in &sources {
        let object = build.join(source.file_name().context("source name")?).with_extension("o");
        let mut cc = Command::new(&tc.zig);
        apply_zig_env(&mut cc).args(["cc", "-target", "wasm32-wasi", "-c"]).args(&flags).arg("-I").arg(tree.join("include")).arg(source).arg("-o").arg(&object);
        run_capture(&mut cc).with_context(|| format!("compiling {}", source.display()))?;
        objects.push(object);
    }
    fs::create_dir_all(out.join("include"))?;
    fs::create_dir_all(out.join("lib"))?;
    let archive = out.join("lib").join("libyaml.a");
    let _ = fs::remove_file(&archive);
    let mut ar = Command::new(&tc.zig);
    apply_zig_env(&mut ar).args(["ar", "rcs"]).arg(&archive).args(&objects);
    run_capture(&mut ar).context("archiving libyaml.a")?;
    fs::copy(tree.join("include").join("yaml.h"), out.join("include").join("yaml.h"))?;
    fs::write(&stamp, key)?;
    println!("  {} ({} objects)", archive.display(), objects.len());
    Ok(out)
}

/// The archive must hold objects compiled without -fPIC (absolute addresses, which pymode-ld
/// has to rewrite) and none with the PIC forms, or the loader test would not test the rewrite.
fn check_non_pic(archive: &[u8]) -> Result<()> {
    let ar = object::read::archive::ArchiveFile::parse(archive).context("parse libz.a")?;
    let (mut objects, mut absolute) = (0, 0);
    for member in ar.members() {
        let member = member.context("libz.a member")?;
        let name = String::from_utf8_lossy(member.name()).into_owned();
        if !name.ends_with(".o") {
            continue;
        }
        let bytes = member.data(archive).context("libz.a member data")?;
        let obj = Object::parse(&name, bytes).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        objects += 1;
        for entry in obj.relocations.iter().flat_map(|r| &r.entries) {
            match entry.kind {
                RelocKind::MemoryAddrSleb | RelocKind::MemoryAddrLeb => absolute += 1,
                RelocKind::MemoryAddrRelSleb | RelocKind::TableIndexRelSleb => bail!("{name} in libz.a uses a PIC relocation ({:?})", entry.kind),
                _ => {}
            }
        }
    }
    if objects == 0 || absolute == 0 {
        bail!("libz.a: {objects} objects, {absolute} MEMORY_ADDR_SLEB/LEB relocations: not a non-PIC build");
    }
    println!("  libz.a: {objects} objects, {absolute} MEMORY_ADDR_SLEB/LEB relocations (non-PIC)");
    Ok(())
}

/// Writes the [`wrapper_scripts`], and `zcxx` (zig c++), into `dir` (build systems that take
/// each tool as one word).
pub(crate) fn write_tool_wrappers(tc: &Toolchain, dir: &std::path::Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    let zcxx = ("zcxx", format!("#!/bin/sh\nexec \"{}\" c++ -target wasm32-wasi \"$@\"\n", tc.zig.display()));
    for (name, text) in wrapper_scripts(tc).iter().chain(std::iter::once(&zcxx)) {
        let path = dir.join(name);
        if fs::read_to_string(&path).is_ok_and(|t| &t == text) {
            continue;
        }
        fs::write(&path, text)?;
        run_status(Command::new("chmod").arg("+x").arg(&path))?;
    }
    Ok(())
}

/// `zcc`, `zar`, `zranlib`, as (name, script): zlib's configure takes each tool as one word.
fn wrapper_scripts(tc: &Toolchain) -> [(&'static str, String); 3] {
    let zig = tc.zig.display();
    [
        ("zcc", format!("#!/bin/sh\nexec \"{zig}\" cc -target wasm32-wasi \"$@\"\n")),
        ("zar", format!("#!/bin/sh\nexec \"{zig}\" ar \"$@\"\n")),
        ("zranlib", format!("#!/bin/sh\nexec \"{zig}\" ranlib \"$@\"\n")),
    ]
}
