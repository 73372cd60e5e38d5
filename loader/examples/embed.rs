//! A complete embedding of the loader: a WASI preview-1 main module (e.g. `python.wasm`)
//! that can `dlopen` side modules from a host directory mounted at `/lib`.
//!
//! ```text
//! cargo run -p pymode-loader --example embed -- main.wasm ./lib [library-to-preload.so]
//! ```
//! docs/loader.md walks through it.

use std::path::PathBuf;

use pymode_abi::host::rtld;
use pymode_loader::{BoxError, HasLoader, LibRoot, Loader, LoaderConfig, ModuleCache, add_to_linker};
use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// The store's data: WASI state and the loader slot the `pymode.*` imports use.
struct Host {
    wasi: WasiP1Ctx,
    loader: Option<Loader>,
}

impl HasLoader for Host {
    fn loader_slot(&mut self) -> &mut Option<Loader> {
        &mut self.loader
    }
}

/// wasmtime's error type is not a `std::error::Error`; box it.
fn wt(e: wasmtime::Error) -> BoxError {
    e.into_boxed_dyn_error()
}

fn main() -> Result<(), BoxError> {
    // CPython's deep C recursion needs more wasm stack than wasmtime's default (a trap ends
    // the interpreter where native CPython raises RecursionError), and that stack is the
    // host thread's: run on a thread big enough for it.
    let stack = pymode_loader::run::host_thread_stack(pymode_loader::run::DEFAULT_MAX_WASM_STACK);
    std::thread::Builder::new().stack_size(stack).spawn(run)?.join().map_err(|_| "the wasm thread panicked")?
}

fn run() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (Some(main_wasm), Some(lib_dir)) = (args.next(), args.next()) else {
        return Err("usage: embed MAIN.wasm LIB_DIR [PRELOAD.so]".into());
    };
    let preload = args.next();
    let lib_dir = PathBuf::from(lib_dir);

    // 1. Engine, WASI, linker with WASI and the pymode.* imports.
    let mut config = Config::new();
    pymode_loader::run::configure_stack(&mut config, pymode_loader::run::DEFAULT_MAX_WASM_STACK);
    let engine = Engine::new(&config).map_err(wt)?;
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio().arg(&main_wasm);
    // File operations on this thread, not handed to a thread pool each (see "Start-up").
    wasi.allow_blocking_current_thread(true);
    wasi.preopened_dir(&lib_dir, "/lib", FsPerms::ReadOnly).map_err(wt)?;
    let mut store = Store::new(&engine, Host { wasi: wasi.build_p1(), loader: None });
    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut Host| &mut h.wasi).map_err(wt)?;
    add_to_linker(&mut linker)?;

    // 2. Instantiate the main module, then attach the loader to it. The guest's `/lib` is the
    //    host's LIB_DIR; nothing outside it can be loaded.
    let module = Module::from_file(&engine, &main_wasm).map_err(wt)?;
    let instance = linker.instantiate(&mut store, &module).map_err(wt)?;
    let config = LoaderConfig { roots: vec![LibRoot::mapped(&lib_dir, "/lib")], ..LoaderConfig::default() };
    let mut loader = Loader::attach(&mut store, &instance, config)?;
    // Optional: keep compiled side modules on disk between runs.
    loader.set_cache(ModuleCache::new(Some(std::env::temp_dir().join("pymode-embed-cache"))));

    // 3. The host can load libraries itself too, e.g. to preload one into the global scope.
    if let Some(lib) = preload {
        let handle = loader.dl_open(&mut store, &format!("/lib/{lib}"), rtld::NOW | rtld::GLOBAL)?;
        eprintln!("preloaded {lib} as handle {handle}");
    }
    store.data_mut().loader = Some(loader);

    // 4. Run. The guest's dlopen/dlsym go through the pymode.* imports.
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").map_err(wt)?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(()),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => std::process::exit(exit.0),
            None => Err(wt(e)),
        },
    }
}
