//! Shared test harness: the WAT main module of `pymode_testdata::wat` (with its allocator)
//! instantiated and attached, and helpers that build side modules from WAT plus a `dylink.0`
//! section.

use std::path::{Path, PathBuf};

use pymode_abi::dylink::{ImportInfo, MemInfo};
use pymode_abi::{Dylink0, SymbolFlags};
use pymode_loader::{HasLoader, Loader, LoaderConfig, add_to_linker};
use wasmtime::{Engine, Instance, Linker, Module, Store};

pub use pymode_testdata::wat::{ALLOCATOR, MAIN_BODY, default_main_wat, main_wat, side_wat};

pub struct Host {
    pub loader: Option<Loader>,
    /// wasmtime's per-store limits. A closed library's instance stays in the store, and the
    /// default allows 10,000 instances; the open/close cycle test needs more.
    pub limits: wasmtime::StoreLimits,
}

/// Instances a test store may hold.
pub const INSTANCE_LIMIT: usize = 20_000;
/// The fuel a store on a fuel-metering engine starts with.
pub const STORE_FUEL: u64 = 1_000_000_000_000;

impl HasLoader for Host {
    fn loader_slot(&mut self) -> &mut Option<Loader> {
        &mut self.loader
    }
}

pub struct Env {
    pub store: Store<Host>,
    pub instance: Instance,
    pub dir: tempfile::TempDir,
}

pub fn engine() -> Engine {
    Engine::default()
}

/// Instantiates `main_wat` with the host imports, without attaching.
pub fn instantiate(main_wat: &str) -> (Store<Host>, Instance) {
    instantiate_on(&engine(), main_wat)
}

/// [`instantiate`] on a given engine (one that meters fuel starts with all the fuel there is).
pub fn instantiate_on(engine: &Engine, main_wat: &str) -> (Store<Host>, Instance) {
    let engine = engine.clone();
    let limits = wasmtime::StoreLimitsBuilder::new().instances(INSTANCE_LIMIT).build();
    let mut store = Store::new(&engine, Host { loader: None, limits });
    store.limiter(|h| &mut h.limits);
    // Fails (and there is nothing to set) on an engine without fuel.
    let _ = store.set_fuel(STORE_FUEL);
    let mut linker = Linker::new(&engine);
    add_to_linker(&mut linker).unwrap();
    let module = Module::new(&engine, main_wat).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    (store, instance)
}

/// The default main module, attached, with a temporary directory as the only root.
pub fn env() -> Env {
    env_with(|_| {})
}

pub fn env_with(tweak: impl FnOnce(&mut LoaderConfig)) -> Env {
    env_main(&default_main_wat(), tweak)
}

/// The default main module on an engine that meters fuel, attached.
pub fn env_fueled(tweak: impl FnOnce(&mut LoaderConfig)) -> Env {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    env_on(&engine, &default_main_wat(), tweak)
}

/// `main_wat` instantiated and attached, with a temporary directory as the only root.
pub fn env_main(main_wat: &str, tweak: impl FnOnce(&mut LoaderConfig)) -> Env {
    env_on(&engine(), main_wat, tweak)
}

/// [`env_main`] on a given engine.
pub fn env_on(engine: &Engine, main_wat: &str, tweak: impl FnOnce(&mut LoaderConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, instance) = instantiate_on(engine, main_wat);
    let mut config = LoaderConfig::with_roots([dir.path()]);
    tweak(&mut config);
    let loader = Loader::attach(&mut store, &instance, config).unwrap();
    store.data_mut().loader = Some(loader);
    Env { store, instance, dir }
}

impl Env {
    pub fn loader(&mut self) -> &mut Loader {
        self.store.data_mut().loader.as_mut().unwrap()
    }

    /// Runs `f` with the loader and the store side by side.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut Loader, &mut Store<Host>) -> R) -> R {
        let mut loader = self.store.data_mut().loader.take().unwrap();
        let r = f(&mut loader, &mut self.store);
        self.store.data_mut().loader = Some(loader);
        r
    }

    pub fn open(&mut self, path: &str, flags: i32) -> Result<i32, pymode_loader::OpenError> {
        self.with(|l, s| l.dl_open(s, path, flags)).map(pymode_loader::Handle::raw)
    }

    pub fn sym(&mut self, handle: i32, name: &str) -> Result<u32, pymode_loader::HandleError> {
        self.with(|l, s| l.dl_sym(s, handle, name))
    }

    pub fn close(&mut self, handle: i32) -> Result<(), pymode_loader::HandleError> {
        self.with(|l, s| l.dl_close(s, handle))
    }

    /// Calls an export of the main module.
    pub fn call_main<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(&mut self, name: &str, params: P) -> R {
        let f = self.instance.get_typed_func::<P, R>(&mut self.store, name).unwrap();
        f.call(&mut self.store, params).unwrap()
    }

    /// Calls an export of a loaded side module by going through dl_sym and the table.
    pub fn call_sym(&mut self, handle: i32, name: &str) -> i32 {
        let slot = self.sym(handle, name).unwrap();
        self.call_main::<i32, i32>("call_ptr", slot as i32)
    }

    pub fn try_call_sym(&mut self, handle: i32, name: &str) -> Result<i32, String> {
        let slot = self.sym(handle, name).unwrap();
        let f = self.instance.get_typed_func::<i32, i32>(&mut self.store, "call_ptr").unwrap();
        f.call(&mut self.store, slot as i32).map_err(|e| format!("{e:?}"))
    }

    /// The function a `dl_sym` slot holds, read back from the table.
    pub fn func(&mut self, handle: i32, name: &str) -> wasmtime::Func {
        let slot = self.sym(handle, name).unwrap();
        let t = self.instance.get_table(&mut self.store, "__indirect_function_table").unwrap();
        match t.get(&mut self.store, u64::from(slot)) {
            Some(wasmtime::Ref::Func(Some(f))) => f,
            other => panic!("slot {slot} of {name} holds {other:?}"),
        }
    }

    pub fn table_size(&mut self) -> u64 {
        let t = self.instance.get_table(&mut self.store, "__indirect_function_table").unwrap();
        t.size(&self.store)
    }

    pub fn heap_top(&mut self) -> i32 {
        self.call_main::<(), i32>("heap_top", ())
    }

    pub fn live_blocks(&mut self) -> i32 {
        self.call_main::<(), i32>("live_blocks", ())
    }

    pub fn load32(&mut self, addr: u32) -> i32 {
        self.call_main::<i32, i32>("load32", addr as i32)
    }

    /// Writes a side module into the root directory (or a subdirectory).
    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// A side module: `wat` assembled, with `dylink` as its first section.
pub fn side(dylink: &Dylink0, wat: &str) -> Vec<u8> {
    let body = wat::parse_str(wat).unwrap();
    let mut out = body[..8].to_vec();
    out.extend(dylink.encode_section());
    out.extend_from_slice(&body[8..]);
    out
}

pub fn dylink(memory_size: u32, memory_align_log2: u32, table_size: u32) -> Dylink0 {
    Dylink0 { mem_info: MemInfo { memory_size, memory_align_log2, table_size, table_align_log2: 0 }, ..Default::default() }
}

pub fn weak(module: &str, field: &str) -> ImportInfo {
    ImportInfo { module: module.into(), field: field.into(), flags: SymbolFlags::BINDING_WEAK }
}

pub fn assert_path_in(p: &Path, dir: &Path) {
    assert!(p.starts_with(std::fs::canonicalize(dir).unwrap()), "{} not in {}", p.display(), dir.display());
}
