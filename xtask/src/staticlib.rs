//! `cargo xtask staticlib zlib`: a third-party static library built by its own build system
//! without `-fPIC` (issue 6), for the loader test that links it into a side module with
//! pymode-ld's non-PIC rewrite.
//!
//! zlib's source comes from Debian's `zlib` source package (the same `apt-get source` path as
//! CPython's); zlib's own `./configure --static` and `make libz.a` run with zig cc for
//! wasm32-wasi and `zig ar`. The products (`libz.a`, `zlib.h`, `zconf.h`) land in
//! `$PYMODE_CACHE/staticlib/zlib/out`, rebuilt only when the inputs change.

use crate::cpython::debian_source;
use crate::{run_capture, run_status};
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
        other => bail!("unknown static library `{other}` (known: zlib)"),
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
    if fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == key) && products.iter().all(|p| out.join(p).is_file()) {
        println!("  up to date ({})", stamp.display());
        return Ok(out);
    }
    let _ = fs::remove_file(&stamp);

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

    fs::create_dir_all(&tools)?;
    for (name, text) in &wrappers {
        let path = tools.join(name);
        fs::write(&path, text)?;
        run_status(Command::new("chmod").arg("+x").arg(&path))?;
    }
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

/// `zcc`, `zar`, `zranlib`, as (name, script): zlib's configure takes each tool as one word.
fn wrapper_scripts(tc: &Toolchain) -> [(&'static str, String); 3] {
    let zig = tc.zig.display();
    [
        ("zcc", format!("#!/bin/sh\nexec \"{zig}\" cc -target wasm32-wasi \"$@\"\n")),
        ("zar", format!("#!/bin/sh\nexec \"{zig}\" ar \"$@\"\n")),
        ("zranlib", format!("#!/bin/sh\nexec \"{zig}\" ranlib \"$@\"\n")),
    ]
}
