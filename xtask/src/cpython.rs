//! `cargo xtask cpython`: CPython 3.13 for wasm32-wasi, built with zig cc as a
//! dynamic-linking main module, cached in `$PYMODE_CACHE/cpython` and rebuilt only when its
//! inputs change.
//!
//! The steps: the source from Debian's `python3.13` source package (with a `deb-src` entry
//! derived from the machine's own apt sources), a native build of the same version as the
//! build Python, then the cross build. The main module exports every default-visibility
//! symbol (the C API), its memory, a growable table, `__stack_pointer`, and every symbol of
//! the libc and compiler-rt it links, because zig's libc is hidden-visibility and an
//! extension may call any of it. That list is read from the archives zig links, not written
//! by hand.

use crate::{run_status, stamp_is_current, step};
use anyhow::{Context, Result, bail};
use pymode_abi::object::{Object, SymbolKind};
use pymode_testdata::{Toolchain, apply_zig_env, cache_dir, workspace_root};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the products are.
pub struct CPython {
    /// The wasm32-wasi install prefix (`bin/python3.13.wasm`, `include/python3.13`, `lib/python3.13`).
    pub prefix: PathBuf,
    /// The main module.
    pub python_wasm: PathBuf,
    /// The native build Python of the same version.
    pub native_python: PathBuf,
}

const SOURCE_PACKAGE: &str = "python3.13";
const APT_SOURCES_ENTRY: &str = "/etc/apt/sources.list.d/pymode-cpython-src.sources";

fn root() -> PathBuf {
    cache_dir().join("cpython")
}

/// Builds what is missing or stale and returns the paths.
pub fn run(tc: &Toolchain) -> Result<CPython> {
    let root = root();
    fs::create_dir_all(&root)?;
    let source = step("cpython: source", source_tree)?;
    let native_python = step("cpython: native build Python", || native(&source))?;
    let prefix = root.join("wasi");
    step("cpython: wasm32-wasi main module", || cross(tc, &source, &native_python, &prefix))?;
    let python_wasm = prefix.join("bin").join("python3.13.wasm");
    if !python_wasm.is_file() {
        bail!("the cross build finished but {} is missing", python_wasm.display());
    }
    println!("cpython: {}", python_wasm.display());
    Ok(CPython { prefix, python_wasm, native_python })
}

/// The unpacked upstream source tree (`Python-3.13.x`) from Debian's source package.
fn source_tree() -> Result<PathBuf> {
    let dir = root().join("src");
    if let Some(tree) = find_tree(&dir)? {
        println!("  using {}", tree.display());
        return Ok(tree);
    }
    let orig = debian_source(SOURCE_PACKAGE, &dir)?;
    run_status(Command::new("tar").arg("xf").arg(&orig).current_dir(&dir))?;
    find_tree(&dir)?.context("the source tarball did not unpack to Python-3.13.*")
}

/// The upstream `.orig.tar.*` tarball of the Debian source package `spec` (`name` or
/// `name=version`) in `dir`: the one already there (an earlier download), or else downloaded
/// with `apt-get source`, after adding a `deb-src` entry derived from the machine's own apt
/// sources if there is none.
pub(crate) fn debian_source(spec: &str, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    if let Some(orig) = find_orig(dir)? {
        return Ok(orig);
    }
    if !Path::new(APT_SOURCES_ENTRY).is_file() {
        let uris = debian_uris()?;
        // Debian's trixie carries python3.13 and zlib 1.3.1; the machine's own mirror serves them.
        let entry = format!(
            "Types: deb-src\nURIs: {uris}\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
        fs::write(APT_SOURCES_ENTRY, entry).with_context(|| format!("cannot write {APT_SOURCES_ENTRY} (run as root)"))?;
    }
    run_status(Command::new("apt-get").args(["update", "-qq"]))?;
    run_status(Command::new("apt-get").args(["source", "--download-only", spec]).current_dir(dir))?;
    find_orig(dir)?.with_context(|| format!("apt-get source {spec} did not download an .orig.tar.* tarball"))
}

/// The `.orig.tar.*` tarball (not its `.asc` signature) in `dir`, if any.
fn find_orig(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".orig.tar.") && !n.ends_with(".asc"))))
}

fn find_tree(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    Ok(fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("configure").is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("Python-3.13"))))
}

/// The URIs of the machine's Debian archive, from its deb822 sources file or sources.list.
fn debian_uris() -> Result<String> {
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list.d/debian.sources") {
        // The first stanza is the main archive; later ones are security and updates.
        if let Some(uris) = text.lines().find_map(|l| l.strip_prefix("URIs:")) {
            return Ok(uris.trim().to_owned());
        }
    }
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        for line in text.lines() {
            let mut words = line.split_whitespace().filter(|w| !w.starts_with('['));
            if words.next() == Some("deb")
                && let Some(uri) = words.next()
            {
                return Ok(uri.to_owned());
            }
        }
    }
    bail!("cannot find the Debian archive in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list")
}

fn native(source: &Path) -> Result<PathBuf> {
    let prefix = root().join("native");
    let python = prefix.join("bin").join("python3.13");
    if python.is_file() {
        println!("  using {}", python.display());
        return Ok(python);
    }
    let build = root().join("native-build");
    fs::create_dir_all(&build)?;
    run_logged(Command::new(source.join("configure")).arg(format!("--prefix={}", prefix.display())).current_dir(&build), &build.join("configure.log"))?;
    run_logged(Command::new("make").arg("-j2").current_dir(&build), &build.join("make.log"))?;
    run_logged(Command::new("make").arg("install").current_dir(&build), &build.join("install.log"))?;
    Ok(python)
}

/// Runs a long build step with its output in a log file; on failure, the log's tail goes into
/// the error.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let file = fs::File::create(log)?;
    let program = Path::new(cmd.get_program()).file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let status = cmd.stdout(file.try_clone()?).stderr(file).status().with_context(|| format!("cannot start {program}"))?;
    if !status.success() {
        // The command line can be tens of kilobytes (the export list): name the program and
        // show the log's tail instead.
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("{program} failed with {status}; last lines of {}:\n{}", log.display(), tail.join("\n"));
    }
    Ok(())
}

/// Edits to the CPython source before the cross build, as (file, text, replacement), for
/// the call trampoline (`testdata/cpython/pycore_emscripten_trampoline.h`):
/// - `pycore_object.h` defines the C-call macros a second time, after including the
///   trampoline header, for every platform but Emscripten; on wasm32-wasi the trampoline's
///   definitions must stand;
/// - `type_call` calls `tp_init` directly; extensions declare it without `kwds` (zstandard's
///   `BufferWithSegmentsCollection`), so it goes through the trampoline too.
const SOURCE_EDITS: &[(&str, &str, &str)] = &[
    (
        "Include/internal/pycore_object.h",
        "#if !(defined(__EMSCRIPTEN__) && defined(PY_CALL_TRAMPOLINE))\n#define _PyCFunction_TrampolineCall",
        "#if !(defined(__EMSCRIPTEN__) && defined(PY_CALL_TRAMPOLINE)) && !defined(__wasi__)\n#define _PyCFunction_TrampolineCall",
    ),
    ("Objects/typeobject.c", "int res = type->tp_init(obj, args, kwds);", "int res = pymode_initproc_call(type->tp_init, obj, args, kwds);"),
];

/// Applies [`SOURCE_EDITS`] (idempotently: an edited file is left alone).
fn edit_source(source: &Path) -> Result<()> {
    for (file, from, to) in SOURCE_EDITS {
        let path = source.join(file);
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if text.contains(to) {
            continue;
        }
        if !text.contains(from) {
            bail!("{}: the text to edit is not there (a different CPython release?)", path.display());
        }
        fs::write(&path, text.replacen(from, to, 1))?;
    }
    Ok(())
}

/// The repository files the cross build reads; their contents are part of the cache key.
fn cross_inputs() -> [(&'static str, PathBuf); 5] {
    let ws = workspace_root();
    [
        ("pycore_emscripten_trampoline.h", ws.join("testdata/cpython/pycore_emscripten_trampoline.h")),
        ("config.site-pymode", ws.join("testdata/cpython/config.site-pymode")),
        ("pymode_wasi_fixes.c", ws.join("testdata/cpython/pymode_wasi_fixes.c")),
        ("pymode_dlfcn.c", ws.join("abi/c/pymode_dlfcn.c")),
        ("pymode_dlfcn.h", ws.join("abi/c/pymode_dlfcn.h")),
    ]
}

/// Cross-builds CPython into `prefix` unless the stamp says a build with the same inputs is
/// there. The key covers what goes into the build (the input files, configure's arguments and
/// environment, the wrapper scripts, the export list) and nothing that varies with where the
/// repository is checked out, so a fresh clone reuses the cache.
fn cross(tc: &Toolchain, source: &Path, native_python: &Path, prefix: &Path) -> Result<()> {
    let root = root();
    let tools = root.join("bin");
    let inputs = root.join("inputs");
    let zcc = tools.join("zcc");
    let wrappers = wrapper_scripts(tc);

    let exports = libc_exports(tc, &root.join("probe"))?;
    println!("  exporting {} libc and compiler-rt symbols", exports.len());
    let mut ldflags = vec!["-Wl,--export-dynamic".to_owned(), "-Wl,--export-table".to_owned(), "-Wl,--growable-table".to_owned()];
    ldflags.extend(exports.iter().map(|s| format!("-Wl,--export={s}")));
    let libs = [inputs.join("pymode_dlfcn.o"), inputs.join("pymode_wasi_fixes.o")];
    // zlib for the `zlib` module (and binascii's crc32): the same static build the loader
    // tests link (`cargo xtask staticlib zlib`). Without it configure leaves `zlib` out, and
    // gzip, zipfile's compression and everything importing them fail.
    let zlib = crate::staticlib::run("zlib", tc)?;
    let zlib_key = fs::read_to_string(zlib.parent().context("zlib output directory")?.join("out.stamp")).context("zlib's build stamp")?;

    let args = vec![
        "--host=wasm32-unknown-wasi".to_owned(),
        "--build=x86_64-pc-linux-gnu".to_owned(),
        "--disable-test-modules".to_owned(),
        format!("--with-build-python={}", native_python.display()),
        format!("--prefix={}", prefix.display()),
    ];
    let env = vec![
        (
            "CONFIG_SITE",
            format!("{} {}", source.join("Tools/wasm/config.site-wasm32-wasi").display(), inputs.join("config.site-pymode").display()),
        ),
        ("CC", zcc.display().to_string()),
        ("CPP", format!("{} -E", zcc.display())),
        ("AR", tools.join("zar").display().to_string()),
        ("RANLIB", tools.join("zranlib").display().to_string()),
        ("PKG_CONFIG_PATH", String::new()),
        ("PKG_CONFIG_LIBDIR", "/nonexistent".to_owned()),
        ("CFLAGS", "-fno-sanitize=undefined".to_owned()),
        // configure's PKG_CHECK_MODULES takes these as given (pkg-config is disabled above).
        ("ZLIB_CFLAGS", format!("-I{}", zlib.display())),
        ("ZLIB_LIBS", format!("-L{} -lz", zlib.display())),
        ("LDFLAGS", ldflags.join(" ")),
        ("LIBS", libs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(" ")),
    ];

    let mut key = Sha256::new();
    for (_, input) in cross_inputs() {
        key.update(fs::read(&input).with_context(|| format!("cannot read {}", input.display()))?);
    }
    for (name, text) in &wrappers {
        key.update(name.as_bytes());
        key.update(text.as_bytes());
    }
    for (file, from, to) in SOURCE_EDITS {
        for part in [file, from, to] {
            key.update(part.as_bytes());
        }
    }
    key.update(zlib_key.trim().as_bytes());
    for arg in &args {
        key.update(arg.as_bytes());
    }
    for (name, value) in &env {
        key.update(name.as_bytes());
        key.update(value.as_bytes());
    }
    let key = format!("{:x}", key.finalize());
    let stamp = root.join("wasi.stamp");
    if stamp_is_current(&stamp, &key, &[prefix.join("bin/python3.13.wasm")]) {
        return Ok(());
    }

    fs::create_dir_all(&tools)?;
    for (name, text) in &wrappers {
        let path = tools.join(name);
        fs::write(&path, text)?;
        run_status(Command::new("chmod").arg("+x").arg(&path))?;
    }
    fs::create_dir_all(&inputs)?;
    for (name, path) in cross_inputs() {
        fs::copy(&path, inputs.join(name))?;
    }
    for (source_file, object) in [("pymode_dlfcn.c", &libs[0]), ("pymode_wasi_fixes.c", &libs[1])] {
        run_status(Command::new(&zcc).args(["-O2", "-g0", "-c", "-I"]).arg(&inputs).arg(inputs.join(source_file)).arg("-o").arg(object))?;
    }

    // CPython's C-call macros, routed through PyMode's call trampoline on wasm32-wasi (the
    // header says why); the native build Python was built before and is not affected.
    fs::copy(inputs.join("pycore_emscripten_trampoline.h"), source.join("Include/internal/pycore_emscripten_trampoline.h"))?;
    edit_source(source)?;

    let build = root.join("wasi-build");
    if build.exists() {
        fs::remove_dir_all(&build)?;
    }
    fs::create_dir_all(&build)?;
    let mut configure = Command::new(source.join("configure"));
    configure.current_dir(&build).args(&args).envs(env.iter().map(|(k, v)| (k, v)));
    apply_zig_env(&mut configure);
    run_logged(&mut configure, &build.join("configure.log"))?;
    let mut make = Command::new("make");
    make.arg("-j2").arg("all").current_dir(&build);
    apply_zig_env(&mut make);
    run_logged(&mut make, &build.join("make.log"))?;
    let mut install = Command::new("make");
    install.arg("install").current_dir(&build);
    apply_zig_env(&mut install);
    run_logged(&mut install, &build.join("install.log"))?;
    fs::write(&stamp, key)?;
    Ok(())
}

/// `zcc`, `zar`, `zranlib`, as (name, script): configure wants each tool as one word.
fn wrapper_scripts(tc: &Toolchain) -> [(&'static str, String); 3] {
    let zig = tc.zig.display();
    // zig refuses -Wl,--stack-first (it passes --stack-first itself), and adds
    // -Werror=date-time in optimised builds, which Modules/getbuildinfo.c trips over.
    let zcc = format!(
        "#!/bin/sh\nfor a in \"$@\"; do\n  shift\n  [ \"$a\" = -Wl,--stack-first ] && continue\n  set -- \"$@\" \"$a\"\ndone\nexec \"{zig}\" cc -target wasm32-wasi -Wno-error=date-time \"$@\"\n"
    );
    [
        ("zcc", zcc),
        ("zar", format!("#!/bin/sh\nexec \"{zig}\" ar \"$@\"\n")),
        ("zranlib", format!("#!/bin/sh\nexec \"{zig}\" ranlib \"$@\"\n")),
    ]
}

/// Every function and data symbol that the libc and compiler-rt archives zig links for
/// wasm32-wasi define, found by linking a probe program and reading the archives named on
/// its wasm-ld command line.
fn libc_exports(tc: &Toolchain, probe: &Path) -> Result<Vec<String>> {
    fs::create_dir_all(probe)?;
    let src = probe.join("probe.c");
    fs::write(&src, "int main(void) { return 0; }\n")?;
    let mut cc = Command::new(&tc.zig);
    apply_zig_env(&mut cc)
        .args(["cc", "-target", "wasm32-wasi", "-v", "-o"])
        .arg(probe.join("probe.wasm"))
        .arg(&src);
    let out = cc.output().context("cannot run zig cc")?;
    if !out.status.success() {
        bail!("probe link failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let log = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let archives: Vec<PathBuf> = log
        .lines()
        .filter(|l| l.contains("wasm-ld"))
        .flat_map(|l| l.split_whitespace())
        .filter(|w| w.ends_with(".a"))
        .map(PathBuf::from)
        // The UBSan runtime is linked only into Debug builds (the probe is one); CPython is
        // built optimised and without it, so its handlers are not there to export.
        .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libubsan")))
        .collect();
    if archives.is_empty() {
        bail!("could not find the archives zig links on its wasm-ld command line:\n{log}");
    }
    let mut names = BTreeSet::new();
    for archive in &archives {
        let data = fs::read(archive).with_context(|| format!("cannot read {}", archive.display()))?;
        let file = object::read::archive::ArchiveFile::parse(&*data).with_context(|| format!("{} is not an archive", archive.display()))?;
        for member in file.members() {
            let member = member?;
            let bytes = member.data(&*data)?;
            let member_name = String::from_utf8_lossy(member.name()).into_owned();
            let obj = match Object::parse(&format!("{}({member_name})", archive.display()), bytes) {
                Ok(obj) => obj,
                // Archives may carry non-wasm members (none today); they export nothing.
                Err(_) => continue,
            };
            for sym in &obj.symbols {
                let wanted = matches!(sym.kind(), SymbolKind::Function | SymbolKind::Data)
                    && !sym.is_undefined()
                    && !sym.is_local()
                    && is_c_identifier(sym.name)
                    && !is_startup_symbol(sym.name);
                if wanted {
                    names.insert(sym.name.to_owned());
                }
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// zig's own libc parts also define symbols with dotted, namespaced names; C cannot call
/// those.
fn is_c_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Symbols that belong to a program's start-up, not to what an extension calls.
fn is_startup_symbol(name: &str) -> bool {
    matches!(name, "_start" | "_initialize" | "main" | "__main_void" | "__main_argc_argv" | "__wasm_call_ctors")
        || name.starts_with("__imported_wasi_")
}
