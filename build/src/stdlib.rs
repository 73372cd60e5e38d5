//! The wasm CPython's optional standard-library modules as side modules: `_lzma`, `_bz2` and
//! `_sqlite3`, compiled from CPython's own `Modules/` against the cross build's tree (its
//! `pyconfig.h`, `Include/` and `Include/internal/`, as CPython's Makefile compiles a shared
//! stdlib module), linked by pymode-ld with their C library ([`crate::staticlib`]) into
//! `<prefix>/lib/python3.13/lib-dynload/<mod>.cpython-313-wasm32-wasi.so`, which is on the
//! wasm CPython's `sys.path`; the module loads on first import. python.wasm is not touched:
//! each module has its own stamp, so adding or changing one never rebuilds the main module.

use crate::cache::cpython_dir;
use crate::error::{Error, IoContext, Result};
use crate::pins::{EXPECTED_ZIG_VERSION, EXT_SUFFIX};
use crate::process::capture;
use crate::stamp::{self, Key};
use crate::staticlib;
use crate::toolchain::Toolchain;
use std::fs;
use std::path::{Path, PathBuf};

/// One optional module: its name, its C files under `Modules/`, the static library it links
/// (if any), its extra flags and a shim of ours (if any).
#[derive(Debug, Clone, Copy)]
pub struct StdlibModule {
    /// The extension module's name (`_lzma`).
    pub name: &'static str,
    /// Its sources, relative to the CPython tree's `Modules/`.
    pub sources: &'static [&'static str],
    /// The static library it links: a [`staticlib::KNOWN`] name and the archive in its
    /// `out/lib`.
    pub library: Option<(&'static str, &'static str)>,
    /// Flags beyond CPython's own for a stdlib module (what configure would have found).
    pub flags: &'static [&'static str],
    /// Libc calls WASI preview 1 lacks, defined by us (`build/stdlib/`).
    pub shim: Option<&'static Shim>,
    /// Edits to CPython's sources, applied to a copy before compiling.
    pub edits: &'static [SourceEdit],
}

/// One textual edit of a module source: `from` must occur exactly once in `file`.
#[derive(Debug)]
pub struct SourceEdit {
    /// The file, relative to `Modules/` (one of the module's sources).
    pub file: &'static str,
    /// The text replaced.
    pub from: &'static str,
    /// What replaces it.
    pub to: &'static str,
}

/// A C file of ours linked into a module, with a header force-included (`-include`) into
/// the module's own sources so that they see its declarations. Both are compiled into the
/// binary, so an installed `pymode` needs no checkout.
#[derive(Debug)]
pub struct Shim {
    /// The header's file name and text.
    pub header: (&'static str, &'static str),
    /// The C file's name and text.
    pub source: (&'static str, &'static str),
    /// `-D` flags for the module and the shim, from the host-import ABI.
    pub defines: fn() -> Vec<String>,
    /// Further headers of ours, written next to the shim and on the include path.
    pub headers: &'static [(&'static str, &'static str)],
    /// Further C files of ours, compiled like the shim.
    pub sources: &'static [(&'static str, &'static str)],
}

/// `_socket`'s shim: `socketpair()` over the host's virtual socket pairs, and errors for
/// what WASI preview 1 cannot do.
pub const SOCKET_SHIM: Shim = Shim {
    header: ("pymode_socket_shim.h", include_str!("../stdlib/pymode_socket_shim.h")),
    source: ("pymode_socket_shim.c", include_str!("../stdlib/pymode_socket_shim.c")),
    defines: || vec![format!("-DPYMODE_SOCKETPAIR_FD={}", pymode_abi::host::socketpair::FACTORY_FD)],
    headers: &[],
    sources: &[],
};

/// `mmap`'s shim: maps whose shared writable file maps are written back (wasi-libc's
/// emulation never writes back and has no `msync`), and a `_Py_dup` over the host's aliases.
pub const MMAP_SHIM: Shim = Shim {
    header: ("pymode_mmap_shim.h", include_str!("../stdlib/pymode_mmap_shim.h")),
    source: ("pymode_mmap_shim.c", include_str!("../stdlib/pymode_mmap_shim.c")),
    defines: || vec![format!("-DPYMODE_DUP_FLAG={}", pymode_abi::host::socketpair::DUP_FLAG)],
    headers: &[],
    sources: &[],
};

/// `_ctypes`'s shim: libffi over the host (`abi/c/ffi.h`, `abi/c/pymode_ffi.c`: the
/// `pymode.ffi_*` imports the loader gives side modules), `dlopen(NULL)` as the main program,
/// and the Python exception for an `ffi_call` that failed.
pub const CTYPES_SHIM: Shim = Shim {
    header: ("pymode_ctypes_shim.h", include_str!("../stdlib/pymode_ctypes_shim.h")),
    source: ("pymode_ctypes_shim.c", include_str!("../stdlib/pymode_ctypes_shim.c")),
    defines: Vec::new,
    headers: &[("ffi.h", include_str!("../../abi/c/ffi.h"))],
    sources: &[("pymode_ffi.c", include_str!("../../abi/c/pymode_ffi.c"))],
};

/// The one edit to `_ctypes`: after `ffi_call` in `_call_function_pointer`, a failed call
/// (signature mismatch, trap) becomes a Python exception, as a Windows SEH exception does
/// on that platform. libffi's `ffi_call` has no way to report it.
const CTYPES_EDITS: &[SourceEdit] = &[SourceEdit {
    file: "_ctypes/callproc.c",
    from: "    if ((flags & FUNCFLAG_PYTHONAPI) && PyErr_Occurred())\n        return -1;\n    return 0;\n}",
    to: "    if (pymode_ctypes_raise_ffi_error())\n        return -1;\n    if ((flags & FUNCFLAG_PYTHONAPI) && PyErr_Occurred())\n        return -1;\n    return 0;\n}",
}];

/// The modules [`build`] makes.
pub const MODULES: &[StdlibModule] = &[
    // liblzma is static: without this lzma.h declares its API dllimport-style on some targets
    // and, more to the point, says so to the reader.
    StdlibModule {
        name: "_lzma",
        sources: &["_lzmamodule.c"],
        library: Some(("xz", "liblzma.a")),
        flags: &["-DLZMA_API_STATIC"],
        shim: None,
        edits: &[],
    },
    StdlibModule { name: "_bz2", sources: &["_bz2module.c"], library: Some(("bzip2", "libbz2.a")), flags: &[], shim: None, edits: &[] },
    StdlibModule {
        name: "_sqlite3",
        sources: &[
            "_sqlite/blob.c",
            "_sqlite/connection.c",
            "_sqlite/cursor.c",
            "_sqlite/microprotocols.c",
            "_sqlite/module.c",
            "_sqlite/prepare_protocol.c",
            "_sqlite/row.c",
            "_sqlite/statement.c",
            "_sqlite/util.c",
        ],
        library: Some(("sqlite3", "libsqlite3.a")),
        // configure's check for sqlite3_serialize (SQLite 3.46 has it); loadable extensions
        // stay off, as SQLite is built without them.
        flags: &["-DPY_SQLITE_HAVE_SERIALIZE=1"],
        shim: None,
        edits: &[],
    },
    StdlibModule {
        name: "_socket",
        sources: &["socketmodule.c"],
        library: None,
        // configure found none of these on WASI; the shim defines them (the resolver and
        // socket-making ones as errors), so the methods exist and raise OSError instead of
        // being missing. getaddrinfo/getnameinfo from the shim also keep socketmodule.c from
        // compiling its own fallback, which needs SOCK_RAW.
        flags: &[
            "-DHAVE_SOCKETPAIR=1",
            "-DHAVE_GETADDRINFO=1",
            "-DHAVE_GETNAMEINFO=1",
            "-DHAVE_GAI_STRERROR=1",
            "-DHAVE_GETHOSTBYNAME=1",
            "-DHAVE_GETHOSTBYADDR=1",
            "-DHAVE_HSTRERROR=1",
            "-DHAVE_GETHOSTNAME=1",
            "-DHAVE_SETSOCKOPT=1",
            "-DHAVE_BIND=1",
            "-DHAVE_CONNECT=1",
            "-DHAVE_LISTEN=1",
            "-DHAVE_GETSOCKNAME=1",
            "-DHAVE_GETPEERNAME=1",
        ],
        shim: Some(&SOCKET_SHIM),
        edits: &[],
    },
    // wasi-libc's <sys/mman.h> is there only with _WASI_EMULATED_MMAN; the calls go to the
    // shim (its header renames them).
    StdlibModule {
        name: "mmap",
        sources: &["mmapmodule.c"],
        library: None,
        flags: &["-D_WASI_EMULATED_MMAN"],
        shim: Some(&MMAP_SHIM),
        edits: &[],
    },
    // ctypes over the host's FFI (issue 16). configure found no libffi, so the HAVE_FFI_*
    // answers a libffi 3.4 would give are flags here.
    StdlibModule {
        name: "_ctypes",
        sources: &["_ctypes/_ctypes.c", "_ctypes/callbacks.c", "_ctypes/callproc.c", "_ctypes/stgdict.c", "_ctypes/cfield.c"],
        library: None,
        // wasm function types have at most 1000 parameters (Emscripten's value too).
        flags: &["-DHAVE_FFI_PREP_CIF_VAR=1", "-DHAVE_FFI_PREP_CLOSURE_LOC=1", "-DHAVE_FFI_CLOSURE_ALLOC=1", "-DCTYPES_MAX_ARGCOUNT=1000"],
        shim: Some(&CTYPES_SHIM),
        edits: CTYPES_EDITS,
    },
];

/// CPython's `PY_STDMODULE_CFLAGS` for the wasm build (BASECFLAGS, OPT, CONFIGURE_CFLAGS and
/// CONFIGURE_CFLAGS_NODIST from its Makefile), with `-g0` for `-g` (no debug info in side
/// modules) and `-fPIC` (a side module). The modules define `Py_BUILD_CORE_MODULE` themselves.
const CPYTHON_MODULE_FLAGS: &[&str] = &[
    "-fno-strict-overflow",
    "-Wsign-compare",
    "-Wunreachable-code",
    "-DNDEBUG",
    "-g0",
    "-O3",
    "-Wall",
    "-fno-sanitize=undefined",
    "-std=c11",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-int-conversion",
    "-Wno-missing-field-initializers",
    "-Wstrict-prototypes",
    "-Werror=implicit-function-declaration",
    "-fvisibility=hidden",
    "-fPIC",
];

/// Where the modules go: `<prefix>/lib/python3.13/lib-dynload`.
pub fn lib_dynload(prefix: &Path) -> PathBuf {
    prefix.join("lib").join("python3.13").join("lib-dynload")
}

/// A module's side module in `prefix`.
pub fn module_path(prefix: &Path, name: &str) -> PathBuf {
    lib_dynload(prefix).join(format!("{name}{EXT_SUFFIX}"))
}

/// Builds every module of [`MODULES`] that is missing or stale into `prefix`'s lib-dynload,
/// from the CPython source tree `source` and its cross build's tree `<cache>/cpython/wasi-build`.
/// Returns the side modules' paths.
pub fn build(tc: &Toolchain, source: &Path, prefix: &Path) -> Result<Vec<PathBuf>> {
    let build_tree = cpython_dir().join("wasi-build");
    let pyconfig = build_tree.join("pyconfig.h");
    if !pyconfig.is_file() {
        return Err(Error::product("the CPython cross build", format!("{} is missing", pyconfig.display())));
    }
    // The main module's stamp stands for everything the headers and pyconfig.h came from.
    let cpython_stamp = cpython_dir().join("wasi.stamp");
    let cpython_key = fs::read_to_string(&cpython_stamp).at("read the CPython build stamp", &cpython_stamp)?;
    let out_dir = lib_dynload(prefix);
    fs::create_dir_all(&out_dir).at("create directory", &out_dir)?;
    let mut built = Vec::new();
    for module in MODULES {
        let product = build_module(tc, module, source, &build_tree, cpython_key.trim(), prefix)?;
        built.push(product);
    }
    Ok(built)
}

/// Builds one module unless its stamp is current; returns its side module's path.
fn build_module(
    tc: &Toolchain,
    module: &StdlibModule,
    source: &Path,
    build_tree: &Path,
    cpython_key: &str,
    prefix: &Path,
) -> Result<PathBuf> {
    let library = match module.library {
        Some((name, archive)) => {
            let lib = staticlib::build(name, tc)?;
            let lib_stamp = staticlib::stamp_path(name);
            let lib_key = fs::read_to_string(&lib_stamp).at("read the build stamp of", &lib_stamp)?;
            Some((lib, archive, lib_key))
        }
        None => None,
    };
    let objects_dir = cpython_dir().join("stdlib").join(module.name);
    let mut includes = vec![
        source.join("Include/internal"),
        source.join("Include/internal/mimalloc"),
        build_tree.to_path_buf(),
        source.join("Include"),
        source.join("Modules").join(module.sources[0]).parent().map(Path::to_path_buf).unwrap_or_default(),
    ];
    if let Some((lib, _, _)) = &library {
        includes.push(lib.join("include"));
    }
    if module.shim.is_some_and(|s| !s.headers.is_empty()) {
        includes.push(objects_dir.clone());
    }
    let mut flags: Vec<String> = module.flags.iter().map(|f| (*f).to_owned()).collect();
    if let Some(shim) = module.shim {
        flags.extend((shim.defines)());
    }
    let mut key = Key::new();
    let lib_key = library.as_ref().map_or("", |l| l.2.trim());
    for part in [cpython_key, lib_key, EXPECTED_ZIG_VERSION, module.name]
        .into_iter()
        .chain(CPYTHON_MODULE_FLAGS.iter().copied())
        .chain(flags.iter().map(String::as_str))
    {
        key.update(part).update([0]);
    }
    for file in module.sources {
        let path = source.join("Modules").join(file);
        key.update(file).update(fs::read(&path).at("read", &path)?);
    }
    if let Some(shim) = module.shim {
        for (name, text) in [shim.header, shim.source].iter().chain(shim.headers).chain(shim.sources) {
            key.update(name).update(text);
        }
    }
    for edit in module.edits {
        key.update(edit.file).update(edit.from).update(edit.to);
    }
    let key = key.finish();
    let product = module_path(prefix, module.name);
    let stamp_file = cpython_dir().join("stdlib").join(format!("{}.stamp", module.name));
    if stamp::is_current(&stamp_file, &key, std::slice::from_ref(&product)) {
        return Ok(product);
    }
    fs::create_dir_all(&objects_dir).at("create directory", &objects_dir)?;
    let compile = |src: &Path, object: &Path, extra: &[String]| -> Result<()> {
        let mut cc = tc.zig_cc();
        cc.arg("-c").args(CPYTHON_MODULE_FLAGS).args(&flags).args(extra);
        for dir in &includes {
            cc.arg("-I").arg(dir);
        }
        cc.arg(src).arg("-o").arg(object);
        capture(&mut cc, &format!("compiling {}", src.display())).map(drop)
    };
    let mut objects = Vec::new();
    let mut force_include = Vec::new();
    if let Some(shim) = module.shim {
        let header = objects_dir.join(shim.header.0);
        fs::write(&header, shim.header.1).at("write", &header)?;
        let shim_src = objects_dir.join(shim.source.0);
        fs::write(&shim_src, shim.source.1).at("write", &shim_src)?;
        for (name, text) in shim.headers {
            let path = objects_dir.join(name);
            fs::write(&path, text).at("write", &path)?;
        }
        for (name, text) in std::iter::once(&shim.source).chain(shim.sources) {
            let src = objects_dir.join(name);
            fs::write(&src, text).at("write", &src)?;
            let object = src.with_extension("o");
            compile(&src, &object, &[])?;
            objects.push(object);
        }
        force_include = vec!["-include".to_owned(), header.display().to_string()];
    }
    for file in module.sources {
        let mut src = source.join("Modules").join(file);
        let flat = file.replace('/', "_");
        if let Some(edited) = edited_source(module, file, &src, &objects_dir.join(&flat))? {
            src = edited;
        }
        let object = objects_dir.join(&flat).with_extension("o");
        compile(&src, &object, &force_include)?;
        objects.push(object);
    }
    let archive = library.as_ref().map(|(lib, archive, _)| lib.join("lib").join(archive));
    link(&objects, archive.as_deref(), &product)?;
    stamp::write(&stamp_file, &key)?;
    let size = fs::metadata(&product).at("stat", &product)?.len();
    println!("  {} ({size} bytes)", product.display());
    Ok(product)
}

/// Applies `module`'s edits of `file` (at `src`) to a copy at `copy`, returned; `None` when
/// the file has no edits. An edit whose text is not found exactly once fails the build: the
/// CPython source changed under it.
fn edited_source(module: &StdlibModule, file: &str, src: &Path, copy: &Path) -> Result<Option<PathBuf>> {
    let edits: Vec<&SourceEdit> = module.edits.iter().filter(|e| e.file == file).collect();
    if edits.is_empty() {
        return Ok(None);
    }
    let mut text = fs::read_to_string(src).at("read", src)?;
    for edit in edits {
        let found = text.matches(edit.from).count();
        if found != 1 {
            return Err(Error::product(
                format!("editing {}", src.display()),
                format!("the text to replace occurs {found} times, not once: {:?}", edit.from),
            ));
        }
        text = text.replacen(edit.from, edit.to, 1);
    }
    // Next to the original's name, so that messages and __FILE__ still say which file.
    fs::write(copy, text).at("write", copy)?;
    Ok(Some(copy.to_path_buf()))
}

/// pymode-ld, in process: `-shared OBJECTS [ARCHIVE] -o OUT`.
fn link(objects: &[PathBuf], archive: Option<&Path>, out: &Path) -> Result<()> {
    let mut args: Vec<String> = vec!["-shared".to_owned()];
    args.extend(objects.iter().map(|o| o.display().to_string()));
    args.extend(archive.map(|a| a.display().to_string()));
    args.extend(["-o".to_owned(), out.display().to_string()]);
    let what = format!("linking {}", out.display());
    let (opts, _warnings) = pymode_linker::Options::parse(&args).map_err(|e| Error::product(&what, e.to_string()))?;
    pymode_linker::link(&opts).map_err(|e| Error::product(&what, e.to_string()))
}
