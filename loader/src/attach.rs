//! Attaching the loader to a main-module instance: find and check what side modules need
//! (memory, a growable table, the stack pointer, an allocator) and index the main module's
//! exports as symbols.

use pymode_abi::names;
use wasmtime::{AsContextMut, Extern, Instance, Mutability, StoreContextMut, TypedFunc, Val, ValType};

use crate::cache::ModuleCache;
use crate::config::LoaderConfig;
use crate::dtors::AtExit;
use crate::error::AttachError;
use crate::paths::canonical_roots;
use crate::registry::Registry;
use crate::state::{Loader, MainModule};
use crate::symbol::{Symbol, SymbolMap};
use crate::table::Slots;

const HINT_MEMORY: &str = "link the main module with -Wl,--export-memory (wasm-ld exports `memory` by default unless --import-memory)";
const HINT_TABLE: &str = "link the main module with -Wl,--export-table -Wl,--growable-table";
const HINT_SP: &str = "link the main module with -Wl,--export=__stack_pointer (or -Wl,--export-dynamic with a PIE main)";
const HINT_ALLOC: &str = "link the main module with -Wl,--export=malloc -Wl,--export=free, or configure other allocator names";

impl Loader {
    /// Attaches a loader to `main`, an instance in `store`.
    ///
    /// Checks that `main` exports `memory` (32-bit), `__indirect_function_table` (funcref,
    /// growable), `__stack_pointer` (mutable i32) and the configured allocator
    /// (`malloc: (i32) -> i32`, `free: (i32) -> ()`), scans the table once so that functions
    /// already in it keep their slots, and canonicalizes the library roots.
    ///
    /// # Errors
    /// [`AttachError`] naming the missing or wrong export and how to link the main module;
    /// [`AttachError::FuelNotEnabled`] if `config.init_fuel` is set on an engine without fuel.
    pub fn attach<T: 'static>(
        mut store: impl AsContextMut<Data = T>,
        main: &Instance,
        config: LoaderConfig,
    ) -> Result<Loader, AttachError> {
        let mut store = store.as_context_mut();
        let missing = |name: &str, what, hint| AttachError::MissingExport { name: name.to_owned(), what, hint };
        let wrong = |name: &str, what, hint| AttachError::WrongExport { name: name.to_owned(), what, hint };

        let memory = match main.get_export(&mut store, names::MEMORY) {
            Some(Extern::Memory(m)) => m,
            Some(_) => return Err(wrong(names::MEMORY, "a memory", HINT_MEMORY)),
            None => return Err(missing(names::MEMORY, "a memory", HINT_MEMORY)),
        };
        if memory.ty(&store).is_64() || memory.ty(&store).is_shared() {
            return Err(wrong(names::MEMORY, "an unshared 32-bit memory", HINT_MEMORY));
        }

        let table = match main.get_export(&mut store, names::INDIRECT_FUNCTION_TABLE) {
            Some(Extern::Table(t)) => t,
            Some(_) => return Err(wrong(names::INDIRECT_FUNCTION_TABLE, "a table", HINT_TABLE)),
            None => return Err(missing(names::INDIRECT_FUNCTION_TABLE, "a funcref table", HINT_TABLE)),
        };
        let tty = table.ty(&store);
        if tty.is_64() || !tty.element().matches(&wasmtime::RefType::FUNCREF) {
            return Err(wrong(names::INDIRECT_FUNCTION_TABLE, "a 32-bit funcref table", HINT_TABLE));
        }
        let size = table.size(&store);
        if let Some(max) = tty.maximum()
            && max <= size
        {
            return Err(AttachError::TableNotGrowable { size, max });
        }

        let stack_pointer = match main.get_export(&mut store, names::STACK_POINTER) {
            Some(Extern::Global(g)) => g,
            Some(_) => return Err(wrong(names::STACK_POINTER, "a global", HINT_SP)),
            None => return Err(missing(names::STACK_POINTER, "a mutable i32 global", HINT_SP)),
        };
        let gty = stack_pointer.ty(&store);
        if gty.mutability() != Mutability::Var || !matches!(gty.content(), ValType::I32) {
            return Err(wrong(names::STACK_POINTER, "a mutable i32 global", HINT_SP));
        }

        let (malloc, free) = allocator(&mut store, main, &config)?;
        let symbols = main_symbols(&mut store, main);

        if config.init_fuel.is_some() && store.get_fuel().is_err() {
            return Err(AttachError::FuelNotEnabled);
        }
        let roots = canonical_roots(&config.roots)?;
        let mut slots = Slots::default();
        let len = u32::try_from(size).map_err(|e| AttachError::Table(Box::new(e)))?;
        slots.scan(&mut store, &table, 0, len);
        tracing::debug!(table_size = size, symbols = symbols.len(), "pymode loader attached");
        let main_cxa_atexit = match symbols.get("__cxa_atexit") {
            Some(Symbol::Func(f)) => Some(*f),
            _ => None,
        };
        let at_exit = AtExit::new(&store, table, main_cxa_atexit);
        Ok(Loader {
            config,
            roots,
            main: MainModule { memory, table, stack_pointer, malloc, free, symbols, instance: *main },
            slots,
            registry: Registry::default(),
            at_exit,
            cache: ModuleCache::default(),
            last_error: None,
            ffi: crate::ffi::Ffi::new(memory, table, stack_pointer),
        })
    }

    /// Replaces the compiled-module cache (e.g. with one backed by a directory, or a clone of
    /// one that the other stores of the same engine share).
    pub fn set_cache(&mut self, cache: ModuleCache) {
        self.cache = cache;
    }

    /// The guest path of the loaded library whose code was running innermost when `error`
    /// trapped (from its wasm backtrace), if any: what a host names in a trap's message, since
    /// the main module's own frames (`abort`, the allocator) rarely say which extension
    /// failed. `None` for an error without a backtrace or with only main-module frames.
    pub fn library_of_trap(&self, store: impl wasmtime::AsContext, error: &wasmtime::Error) -> Option<&str> {
        let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>()?;
        let store = store.as_context();
        backtrace.frames().iter().find_map(|frame| self.registry.running(&store, frame.module())).map(|lib| lib.guest_path.as_str())
    }

    /// Counters: loaded libraries, free table slots, cached modules.
    pub fn stats(&self) -> crate::LoaderStats {
        crate::LoaderStats {
            libraries: self.registry.len(),
            free_table_slots: self.slots.free_slots(),
            cached_modules: self.cache.len(),
            ffi_closures: self.ffi.core().closures(),
        }
    }
}

/// The main module's `malloc` and `free`.
type Allocator = (TypedFunc<i32, i32>, TypedFunc<i32, ()>);

/// The configured `malloc` and `free` exports, type-checked.
fn allocator<T: 'static>(store: &mut StoreContextMut<'_, T>, main: &Instance, config: &LoaderConfig) -> Result<Allocator, AttachError> {
    let missing = |name: &str, what| AttachError::MissingExport { name: name.to_owned(), what, hint: HINT_ALLOC };
    let wrong = |name: &str, what| AttachError::WrongExport { name: name.to_owned(), what, hint: HINT_ALLOC };
    let malloc = match main.get_func(&mut *store, &config.malloc) {
        Some(f) => f.typed::<i32, i32>(&*store).map_err(|_| wrong(&config.malloc, "a function (i32) -> i32"))?,
        None => return Err(missing(&config.malloc, "the allocator's malloc (i32) -> i32")),
    };
    let free = match main.get_func(&mut *store, &config.free) {
        Some(f) => f.typed::<i32, ()>(&*store).map_err(|_| wrong(&config.free, "a function (i32) -> ()"))?,
        None => return Err(missing(&config.free, "the allocator's free (i32) -> ()")),
    };
    Ok((malloc, free))
}

/// The main module's exports as symbols: functions, and immutable i32 globals as (absolute)
/// data addresses.
fn main_symbols<T: 'static>(store: &mut StoreContextMut<'_, T>, main: &Instance) -> SymbolMap {
    let mut symbols = SymbolMap::default();
    let exports: Vec<(String, Extern)> = main.exports(&mut *store).map(|e| (e.name().to_owned(), e.into_extern())).collect();
    for (name, ext) in exports {
        match ext {
            Extern::Func(f) => {
                symbols.insert(name, Symbol::Func(f));
            }
            Extern::Global(g) if g.ty(&*store).mutability() == Mutability::Const => {
                if let Val::I32(v) = g.get(&mut *store) {
                    symbols.insert(name, Symbol::Data(v as u32));
                }
            }
            _ => {}
        }
    }
    symbols
}
