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
/// (a [`staticlib::KNOWN`] name and the archive's file name) and its extra flags.
#[derive(Debug, Clone, Copy)]
pub struct StdlibModule {
    /// The extension module's name (`_lzma`).
    pub name: &'static str,
    /// Its sources, relative to the CPython tree's `Modules/`.
    pub sources: &'static [&'static str],
    /// The static library it links.
    pub library: &'static str,
    /// The archive in that library's `out/lib`.
    pub archive: &'static str,
    /// Flags beyond CPython's own for a stdlib module (what configure would have found).
    pub flags: &'static [&'static str],
}

/// The modules [`build`] makes.
pub const MODULES: &[StdlibModule] = &[
    // liblzma is static: without this lzma.h declares its API dllimport-style on some targets
    // and, more to the point, says so to the reader.
    StdlibModule { name: "_lzma", sources: &["_lzmamodule.c"], library: "xz", archive: "liblzma.a", flags: &["-DLZMA_API_STATIC"] },
    StdlibModule { name: "_bz2", sources: &["_bz2module.c"], library: "bzip2", archive: "libbz2.a", flags: &[] },
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
        library: "sqlite3",
        archive: "libsqlite3.a",
        // configure's check for sqlite3_serialize (SQLite 3.46 has it); loadable extensions
        // stay off, as SQLite is built without them.
        flags: &["-DPY_SQLITE_HAVE_SERIALIZE=1"],
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
        let lib = staticlib::build(module.library, tc)?;
        let lib_stamp = staticlib::stamp_path(module.library);
        let lib_key = fs::read_to_string(&lib_stamp).at("read the build stamp of", &lib_stamp)?;
        let includes = [
            source.join("Include/internal"),
            source.join("Include/internal/mimalloc"),
            build_tree.clone(),
            source.join("Include"),
            source.join("Modules").join(module.sources[0]).parent().map(Path::to_path_buf).unwrap_or_default(),
            lib.join("include"),
        ];
        let mut key = Key::new();
        for part in [cpython_key.trim(), lib_key.trim(), EXPECTED_ZIG_VERSION, module.name]
            .into_iter()
            .chain(CPYTHON_MODULE_FLAGS.iter().copied())
            .chain(module.flags.iter().copied())
        {
            key.update(part).update([0]);
        }
        for file in module.sources {
            let path = source.join("Modules").join(file);
            key.update(file).update(fs::read(&path).at("read", &path)?);
        }
        let key = key.finish();
        let product = module_path(prefix, module.name);
        let stamp_file = cpython_dir().join("stdlib").join(format!("{}.stamp", module.name));
        if stamp::is_current(&stamp_file, &key, std::slice::from_ref(&product)) {
            built.push(product);
            continue;
        }
        let objects_dir = cpython_dir().join("stdlib").join(module.name);
        fs::create_dir_all(&objects_dir).at("create directory", &objects_dir)?;
        let mut objects = Vec::new();
        for file in module.sources {
            let src = source.join("Modules").join(file);
            let object = objects_dir.join(file.replace('/', "_")).with_extension("o");
            let mut cc = tc.zig_cc();
            cc.arg("-c").args(CPYTHON_MODULE_FLAGS).args(module.flags);
            for dir in &includes {
                cc.arg("-I").arg(dir);
            }
            cc.arg(&src).arg("-o").arg(&object);
            capture(&mut cc, &format!("compiling {}", src.display()))?;
            objects.push(object);
        }
        link(&objects, &lib.join("lib").join(module.archive), &product)?;
        stamp::write(&stamp_file, &key)?;
        let size = fs::metadata(&product).at("stat", &product)?.len();
        println!("  {} ({size} bytes)", product.display());
        built.push(product);
    }
    Ok(built)
}

/// pymode-ld, in process: `-shared OBJECTS ARCHIVE -o OUT`.
fn link(objects: &[PathBuf], archive: &Path, out: &Path) -> Result<()> {
    let mut args: Vec<String> = vec!["-shared".to_owned()];
    args.extend(objects.iter().map(|o| o.display().to_string()));
    args.push(archive.display().to_string());
    args.extend(["-o".to_owned(), out.display().to_string()]);
    let what = format!("linking {}", out.display());
    let (opts, _warnings) = pymode_linker::Options::parse(&args).map_err(|e| Error::product(&what, e.to_string()))?;
    pymode_linker::link(&opts).map_err(|e| Error::product(&what, e.to_string()))
}
