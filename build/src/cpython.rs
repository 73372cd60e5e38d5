//! CPython 3.13 for wasm32-wasi, built with zig cc as a dynamic-linking main module, cached in
//! `$PYMODE_CACHE/cpython` and rebuilt only when its inputs change.
//!
//! The steps: the source from Debian's `python3.13` source package, a native build of the same
//! version as the build Python (it also runs every package build and pip for CPython 3.13),
//! then the cross build. The main module exports every default-visibility symbol (the C API),
//! its memory, a growable table, `__stack_pointer`, and every symbol of the libc and
//! compiler-rt it links, because zig's libc is hidden-visibility and an extension may call any
//! of it. That list is read from the archives zig links, not written by hand.
//!
//! The build's inputs from this repository (`build/cpython/`, the guest dlfcn shim in
//! `abi/c`) are compiled into the library, so an installed `pymode` builds the same CPython;
//! the cache key hashes their contents.

use crate::cache::{cpython_dir, cpython_prefix_path, native_python_path};
use crate::error::{Error, IoContext, Result};
use crate::pins::CPYTHON_SOURCE_PACKAGE;
use crate::process::{capture, logged};
use crate::stamp::{self, Key};
use crate::toolchain::{Toolchain, apply_zig_env};
use crate::{debian, staticlib, zig_tools};
use pymode_abi::object::{Object, SymbolKind};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the products are.
#[derive(Debug, Clone)]
pub struct CPython {
    /// The wasm32-wasi install prefix (`bin/python3.13.wasm`, `include/python3.13`, `lib/python3.13`).
    pub prefix: PathBuf,
    /// The main module.
    pub python_wasm: PathBuf,
    /// The native build Python of the same version.
    pub native_python: PathBuf,
}

impl CPython {
    /// The wasm CPython's headers.
    pub fn include_dir(&self) -> PathBuf {
        self.prefix.join("include").join("python3.13")
    }

    /// The products of an earlier build, if they are all there (no build, no check of the
    /// key).
    pub fn existing() -> Option<CPython> {
        let prefix = cpython_prefix_path();
        let python_wasm = prefix.join("bin").join("python3.13.wasm");
        let native_python = native_python_path();
        (python_wasm.is_file() && native_python.is_file()).then_some(CPython { prefix, python_wasm, native_python })
    }

    /// The wasm CPython's `_sysconfigdata_*.py` (what a cross build's `sysconfig` reads).
    pub fn sysconfigdata(&self) -> Result<PathBuf> {
        let lib = self.prefix.join("lib").join("python3.13");
        fs::read_dir(&lib)
            .at("read directory", &lib)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("_sysconfigdata_") && n.ends_with(".py")))
            .ok_or_else(|| Error::product("the wasm CPython", format!("no _sysconfigdata_*.py in {}", lib.display())))
    }
}

/// Runs a step, printing its name first and its wall time after.
pub(crate) fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("==> {name}");
    let start = std::time::Instant::now();
    let r = f();
    let secs = start.elapsed().as_secs_f64();
    match &r {
        Ok(_) => println!("<== {name}: ok in {secs:.1} s"),
        Err(_) => println!("<== {name}: FAILED after {secs:.1} s"),
    }
    r
}

/// Builds what is missing or stale and returns the paths.
pub fn build(tc: &Toolchain) -> Result<CPython> {
    let root = cpython_dir();
    fs::create_dir_all(&root).at("create directory", &root)?;
    let source = step("cpython: source", source_tree)?;
    let native_python = step("cpython: native build Python", || native(&source))?;
    let prefix = cpython_prefix_path();
    step("cpython: wasm32-wasi main module", || cross(tc, &source, &native_python, &prefix))?;
    let python_wasm = prefix.join("bin").join("python3.13.wasm");
    if !python_wasm.is_file() {
        return Err(Error::product("the CPython cross build", format!("{} is missing", python_wasm.display())));
    }
    println!("cpython: {}", python_wasm.display());
    // After the main module and stamped apart from it: these never rebuild python.wasm.
    step("cpython: optional stdlib side modules", || crate::stdlib::build(tc, &source, &prefix))?;
    Ok(CPython { prefix, python_wasm, native_python })
}

/// The unpacked upstream source tree (`Python-3.13.x`) from Debian's source package.
fn source_tree() -> Result<PathBuf> {
    let dir = cpython_dir().join("src");
    if let Some(tree) = find_tree(&dir)? {
        println!("  using {}", tree.display());
        return Ok(tree);
    }
    let orig = debian::source(CPYTHON_SOURCE_PACKAGE, &dir)?;
    capture(Command::new("tar").arg("xf").arg(&orig).current_dir(&dir), &format!("unpacking {}", orig.display()))?;
    find_tree(&dir)?.ok_or_else(|| Error::product(format!("unpacking {}", orig.display()), "no Python-3.13.* directory"))
}

fn find_tree(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    Ok(fs::read_dir(dir)
        .at("read directory", dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("configure").is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("Python-3.13"))))
}

fn native(source: &Path) -> Result<PathBuf> {
    let python = native_python_path();
    if python.is_file() {
        println!("  using {}", python.display());
        return Ok(python);
    }
    let prefix = cpython_dir().join("native");
    let build = cpython_dir().join("native-build");
    fs::create_dir_all(&build).at("create directory", &build)?;
    logged(
        Command::new(source.join("configure")).arg(format!("--prefix={}", prefix.display())).current_dir(&build),
        "the native CPython's configure",
        &build.join("configure.log"),
    )?;
    logged(Command::new("make").arg("-j2").current_dir(&build), "the native CPython's make", &build.join("make.log"))?;
    logged(Command::new("make").arg("install").current_dir(&build), "the native CPython's make install", &build.join("install.log"))?;
    Ok(python)
}

/// Edits to the CPython source before the cross build, as (file, text, replacement), for
/// the call trampoline (`build/cpython/pycore_emscripten_trampoline.h`):
/// - `pycore_object.h` defines the C-call macros a second time, after including the
///   trampoline header, for every platform but Emscripten; on wasm32-wasi the trampoline's
///   definitions must stand;
/// - `type_call` calls `tp_init` directly; extensions declare it without `kwds` (zstandard's
///   `BufferWithSegmentsCollection`), so it goes through the trampoline too;
/// - the collector calls `tp_clear` directly; extensions declare it `void` (kiwisolver's
///   `Variable_clear`), which `call_indirect` refuses as an `inquiry`, so it goes through the
///   trampoline, which knows a function that returns nothing.
const SOURCE_EDITS: &[(&str, &str, &str)] = &[
    (
        "Include/internal/pycore_object.h",
        "#if !(defined(__EMSCRIPTEN__) && defined(PY_CALL_TRAMPOLINE))\n#define _PyCFunction_TrampolineCall",
        "#if !(defined(__EMSCRIPTEN__) && defined(PY_CALL_TRAMPOLINE)) && !defined(__wasi__)\n#define _PyCFunction_TrampolineCall",
    ),
    (
        "Objects/typeobject.c",
        "int res = type->tp_init(obj, args, kwds);",
        "int res = pymode_initproc_call(type->tp_init, obj, args, kwds);",
    ),
    ("Python/gc.c", "(void) clear(op);", "(void) pymode_inquiry_call(clear, op);"),
    // HAVE_DUP's path calls dup(), which wasi-libc's unistd.h does not declare;
    // pymode_wasi_fixes.c defines it.
    ("Python/fileutils.c", "_Py_dup(int fd)\n{\n", "_Py_dup(int fd)\n{\n    extern int dup(int);\n"),
];

/// Applies [`SOURCE_EDITS`] (idempotently: an edited file is left alone).
fn edit_source(source: &Path) -> Result<()> {
    for (file, from, to) in SOURCE_EDITS {
        let path = source.join(file);
        let text = fs::read_to_string(&path).at("read", &path)?;
        if text.contains(to) {
            continue;
        }
        if !text.contains(from) {
            return Err(Error::input(path.display().to_string(), "the text to edit is not there (a different CPython release?)"));
        }
        fs::write(&path, text.replacen(from, to, 1)).at("write", &path)?;
    }
    Ok(())
}

/// The files the cross build reads, as (name, contents); their contents are part of the
/// cache key, in this order.
pub const CROSS_INPUTS: [(&str, &[u8]); 5] = [
    ("pycore_emscripten_trampoline.h", include_bytes!("../cpython/pycore_emscripten_trampoline.h")),
    ("config.site-pymode", include_bytes!("../cpython/config.site-pymode")),
    ("pymode_wasi_fixes.c", include_bytes!("../cpython/pymode_wasi_fixes.c")),
    ("pymode_dlfcn.c", include_bytes!("../../abi/c/pymode_dlfcn.c")),
    ("pymode_dlfcn.h", include_bytes!("../../abi/c/pymode_dlfcn.h")),
];

/// Cross-builds CPython into `prefix` unless the stamp says a build with the same inputs is
/// there. The key covers what goes into the build (the input files, configure's arguments and
/// environment, the wrapper scripts, the export list) and nothing that varies with where the
/// repository is checked out, so a fresh clone or an installed `pymode` reuses the cache.
fn cross(tc: &Toolchain, source: &Path, native_python: &Path, prefix: &Path) -> Result<()> {
    let root = cpython_dir();
    let tools = root.join("bin");
    let inputs = root.join("inputs");
    let zcc = tools.join("zcc");
    let wrappers = zig_tools::scripts(&tc.zig, zig_tools::CPYTHON_CC);

    let exports = libc_exports(tc, &root.join("probe"))?;
    println!("  exporting {} libc and compiler-rt symbols", exports.len());
    let mut ldflags = vec!["-Wl,--export-dynamic".to_owned(), "-Wl,--export-table".to_owned(), "-Wl,--growable-table".to_owned()];
    ldflags.extend(exports.iter().map(|s| format!("-Wl,--export={s}")));
    let libs = [inputs.join("pymode_dlfcn.o"), inputs.join("pymode_wasi_fixes.o")];
    // zlib for the `zlib` module (and binascii's crc32): the same static build the loader
    // tests link. Without it configure leaves `zlib` out, and gzip, zipfile's compression and
    // everything importing them fail.
    let zlib = staticlib::build("zlib", tc)?;
    let zlib_stamp = staticlib::stamp_path("zlib");
    let zlib_key = fs::read_to_string(&zlib_stamp).at("read zlib's build stamp", &zlib_stamp)?;

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

    let mut key = Key::new();
    for (_, contents) in CROSS_INPUTS {
        key.update(contents);
    }
    for (name, text) in &wrappers {
        key.update(name).update(text);
    }
    for (file, from, to) in SOURCE_EDITS {
        for part in [file, from, to] {
            key.update(part);
        }
    }
    key.update(zlib_key.trim());
    // dup() in pymode_wasi_fixes.c asks the host for an alias with this flag.
    let dup_flag = format!("-DPYMODE_DUP_FLAG={}", pymode_abi::host::socketpair::DUP_FLAG);
    key.update(&dup_flag);
    for arg in &args {
        key.update(arg);
    }
    for (name, value) in &env {
        key.update(name).update(value);
    }
    let key = key.finish();
    let stamp_path = root.join("wasi.stamp");
    if stamp::is_current(&stamp_path, &key, &[prefix.join("bin/python3.13.wasm")]) {
        return Ok(());
    }

    fs::create_dir_all(&tools).at("create directory", &tools)?;
    zig_tools::write(&tools, &tc.zig, zig_tools::CPYTHON_CC)?;
    fs::create_dir_all(&inputs).at("create directory", &inputs)?;
    for (name, contents) in CROSS_INPUTS {
        let path = inputs.join(name);
        fs::write(&path, contents).at("write", &path)?;
    }
    for (source_file, object) in [("pymode_dlfcn.c", &libs[0]), ("pymode_wasi_fixes.c", &libs[1])] {
        capture(
            Command::new(&zcc)
                .args(["-O2", "-g0", "-c", "-I"])
                .arg(&inputs)
                .arg(&dup_flag)
                .arg(inputs.join(source_file))
                .arg("-o")
                .arg(object),
            &format!("compiling {source_file}"),
        )?;
    }

    // CPython's C-call macros, routed through PyMode's call trampoline on wasm32-wasi (the
    // header says why); the native build Python was built before and is not affected.
    let header = source.join("Include/internal/pycore_emscripten_trampoline.h");
    fs::copy(inputs.join("pycore_emscripten_trampoline.h"), &header).at("copy the trampoline header to", &header)?;
    edit_source(source)?;

    let build = root.join("wasi-build");
    if build.exists() {
        fs::remove_dir_all(&build).at("remove", &build)?;
    }
    fs::create_dir_all(&build).at("create directory", &build)?;
    let mut configure = Command::new(source.join("configure"));
    configure.current_dir(&build).args(&args).envs(env.iter().map(|(k, v)| (k, v)));
    apply_zig_env(&mut configure);
    logged(&mut configure, "the wasm CPython's configure", &build.join("configure.log"))?;
    let mut make = Command::new("make");
    make.arg("-j2").arg("all").current_dir(&build);
    apply_zig_env(&mut make);
    logged(&mut make, "the wasm CPython's make", &build.join("make.log"))?;
    let mut install = Command::new("make");
    install.arg("install").current_dir(&build);
    apply_zig_env(&mut install);
    logged(&mut install, "the wasm CPython's make install", &build.join("install.log"))?;
    stamp::write(&stamp_path, &key)
}

/// Every function and data symbol that the libc and compiler-rt archives zig links for
/// wasm32-wasi define, found by linking a probe program and reading the archives named on
/// its wasm-ld command line.
fn libc_exports(tc: &Toolchain, probe: &Path) -> Result<Vec<String>> {
    fs::create_dir_all(probe).at("create directory", probe)?;
    let src = probe.join("probe.c");
    fs::write(&src, "int main(void) { return 0; }\n").at("write", &src)?;
    let mut cc = tc.zig_command();
    cc.args(["cc", "-target", "wasm32-wasi", "-v", "-o"]).arg(probe.join("probe.wasm")).arg(&src);
    let out = cc.output().map_err(|source| Error::Spawn { what: "the libc probe link".into(), program: "zig".into(), source })?;
    if !out.status.success() {
        return Err(Error::Command {
            what: "the libc probe link".into(),
            status: out.status.to_string(),
            reason: crate::process::reason_line(&String::from_utf8_lossy(&out.stderr)),
            log: None,
        });
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
        return Err(Error::product("the libc probe link", "no archives on zig's wasm-ld command line"));
    }
    let mut names = BTreeSet::new();
    for archive in &archives {
        let data = fs::read(archive).at("read", archive)?;
        let bad = |e: object::Error| Error::input(archive.display().to_string(), format!("not an archive: {e}"));
        let file = object::read::archive::ArchiveFile::parse(&*data).map_err(bad)?;
        for member in file.members() {
            let member = member.map_err(bad)?;
            let bytes = member.data(&*data).map_err(bad)?;
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
