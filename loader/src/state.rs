//! The loader's state: the main module's pieces and the owners of everything else (the
//! registry of loaded libraries, the table slots, the destructors, the module cache).

use wasmtime::{Global, Instance, Memory, Table, TypedFunc};

use crate::cache::ModuleCache;
use crate::config::LoaderConfig;
use crate::dtors::AtExit;
use crate::paths::Root;
use crate::registry::Registry;
use crate::symbol::SymbolMap;
use crate::table::Slots;

/// What attach found in the main module.
pub(crate) struct MainModule {
    pub(crate) memory: Memory,
    pub(crate) table: Table,
    pub(crate) stack_pointer: Global,
    pub(crate) malloc: TypedFunc<i32, i32>,
    pub(crate) free: TypedFunc<i32, ()>,
    pub(crate) symbols: SymbolMap,
    /// Every export, for `env.*` imports that are not functions (e.g. `__tls_base`).
    pub(crate) instance: Instance,
}

impl std::fmt::Debug for MainModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainModule").field("symbols", &self.symbols.len()).finish_non_exhaustive()
    }
}

/// The dynamic linker attached to one main-module instance. Create it with
/// [`Loader::attach`](crate::Loader::attach); store it in the `Store`'s data (see
/// [`HasLoader`](crate::HasLoader)) so that the host imports can reach it.
#[derive(Debug)]
pub struct Loader {
    pub(crate) config: LoaderConfig,
    pub(crate) roots: Vec<Root>,
    pub(crate) main: MainModule,
    pub(crate) slots: Slots,
    pub(crate) registry: Registry,
    /// Loaded libraries' destructors and the exit-time runner.
    pub(crate) at_exit: AtExit,
    pub(crate) cache: ModuleCache,
    /// What `dl_error` returns next.
    pub(crate) last_error: Option<String>,
    /// The `pymode.ffi_*` imports' state and host functions.
    pub(crate) ffi: crate::ffi::Ffi,
}

/// Counters for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderStats {
    /// Libraries currently loaded.
    pub libraries: usize,
    /// Table slots on the free list.
    pub free_table_slots: u64,
    /// Compiled modules held by the in-memory cache.
    pub cached_modules: usize,
    /// Table slots reserved for FFI closures (`ffi_closure_alloc` not yet freed).
    pub ffi_closures: usize,
}
