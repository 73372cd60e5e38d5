//! The loader's state: the main module's pieces, the loaded libraries and the symbol maps.

use std::collections::HashMap;
use std::path::PathBuf;

use rustc_hash::FxHashMap;

use wasmtime::{Func, Global, Instance, Memory, Table, TypedFunc};

use crate::cache::ModuleCache;
use crate::config::LoaderConfig;
use crate::memory::Block;
use crate::resolve::Root;
use crate::table::Slots;

/// The maps on the `dl_sym` path (symbol names, handles, funcref identities) use FxHash:
/// SipHash's collision resistance would only protect a library from its own export names.
pub(crate) type FastMap<K, V> = FxHashMap<K, V>;

/// A library handle as the guest sees it (`>= 0`).
pub type Handle = i32;

/// A resolved symbol.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Symbol {
    /// A function; its address is its canonical table slot.
    Func(Func),
    /// A data symbol at this absolute address.
    Data(u32),
}

/// Who defines a symbol: the main module or a loaded library. Decides who owns a new table
/// slot made for a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    Main,
    Lib(Handle),
}

/// What attach found in the main module.
pub(crate) struct MainModule {
    pub(crate) memory: Memory,
    pub(crate) table: Table,
    pub(crate) stack_pointer: Global,
    pub(crate) malloc: TypedFunc<i32, i32>,
    pub(crate) free: TypedFunc<i32, ()>,
    pub(crate) symbols: FastMap<String, Symbol>,
    /// Every export, for `env.*` imports that are not functions (e.g. `__tls_base`).
    pub(crate) instance: Instance,
}

impl std::fmt::Debug for MainModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainModule").field("symbols", &self.symbols.len()).finish_non_exhaustive()
    }
}

/// One loaded library.
#[derive(Debug)]
pub(crate) struct Library {
    pub(crate) path: PathBuf,
    pub(crate) refcount: u32,
    pub(crate) global: bool,
    pub(crate) nodelete: bool,
    pub(crate) block: Block,
    /// `(table_base, table_size)` of the module's own range.
    pub(crate) table_range: (u32, u32),
    /// Single slots made later for this library's functions (GOT.func, dl_sym).
    pub(crate) extra_slots: Vec<u32>,
    pub(crate) symbols: FastMap<String, Symbol>,
    /// Handles this library holds a reference on: its NEEDED libraries and the global
    /// libraries it binds to, which therefore stay loaded while it is.
    pub(crate) deps: Vec<Handle>,
    /// Handlers it registered with `__cxa_atexit` / `atexit`, run when it is unloaded.
    pub(crate) dtors: Option<std::sync::Arc<crate::dtors::Destructors>>,
    /// Its direct-call imports left for later under `RTLD_LAZY`.
    pub(crate) lazy: Vec<std::sync::Arc<crate::lazy::LazyBinding>>,
    #[allow(dead_code)] // kept alive for embedders that inspect it in a debugger
    pub(crate) instance: Instance,
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
    pub(crate) libs: FastMap<Handle, Library>,
    pub(crate) by_path: HashMap<PathBuf, Handle>,
    /// RTLD_GLOBAL libraries in load order.
    pub(crate) globals: Vec<Handle>,
    pub(crate) next_handle: Handle,
    pub(crate) last_error: Option<String>,
    pub(crate) cache: ModuleCache,
    /// Loaded libraries' destructor lists, shared with the exit-time runner.
    pub(crate) dtor_registry: crate::dtors::Registry,
    /// The table slot of the exit-time runner, once made.
    pub(crate) dtor_runner_slot: Option<u32>,
    pub(crate) next_dtor_id: u32,
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
}
