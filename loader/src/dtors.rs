//! Destructors of side modules. clang turns `__attribute__((destructor))` and C++ static
//! destructors into `__cxa_atexit(fn, arg, &__dso_handle)` calls from the constructors, and C
//! code may call `atexit(fn)`. Registered with the main module's libc, they would run at the
//! guest's `exit`, after a `dl_close` has nulled their table slots: a trap at exit.
//!
//! So the loader gives every side module its own `env.__cxa_atexit` and `env.atexit` (when it
//! imports them with the C signatures): the handlers are kept per library and run, last
//! registered first, when `dl_close` unloads it, as glibc does for a shared object. For the
//! libraries still loaded at exit, the first handler any library registers also registers
//! one runner with the main module's `__cxa_atexit` (when it exports one), once per loader:
//! at exit it runs the handlers of every library still loaded, the last loaded first. (One
//! registration per library would grow the main module's atexit list with every load, and
//! `dl_close` cannot take an entry back out.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::{AsContextMut, Caller, Func, FuncType, Ref, StoreContextMut, Table, Val, ValType};

use crate::error::describe;
use crate::state::{FastMap, Loader, Symbol};

/// One registered handler: a table slot and, for `__cxa_atexit`, its argument.
#[derive(Debug, Clone, Copy)]
enum Handler {
    /// `__cxa_atexit(fn, arg, dso)`: `fn(arg)`.
    Cxa { slot: u32, arg: i32 },
    /// `atexit(fn)`: `fn()`.
    Plain { slot: u32 },
}

/// The handlers one library registered.
#[derive(Debug)]
pub(crate) struct Destructors {
    /// Identifies the library to the exit-time runner; grows with each load, so the runner
    /// can run the last loaded first.
    id: u32,
    handlers: Mutex<Vec<Handler>>,
}

impl Destructors {
    fn handlers(&self) -> MutexGuard<'_, Vec<Handler>> {
        // A poisoned lock means a panic elsewhere while pushing; the list is still valid.
        self.handlers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the loader shares with the exit-time runner.
#[derive(Debug, Default)]
pub(crate) struct ExitState {
    /// Loaded libraries with handlers, by id.
    libraries: Mutex<FastMap<u32, Arc<Destructors>>>,
    /// Whether the runner is in the main module's atexit list.
    runner_registered: AtomicBool,
}

/// The loader's [`ExitState`], shared with the runner.
pub(crate) type Registry = Arc<ExitState>;

fn lock(registry: &ExitState) -> MutexGuard<'_, FastMap<u32, Arc<Destructors>>> {
    registry.libraries.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether an import is `__cxa_atexit` or `atexit` with the C signature. Checks the name
/// first: it runs for every `env` function a library imports.
pub(crate) fn interposed(name: &str, ty: &FuncType) -> bool {
    let params = match name {
        "__cxa_atexit" => 3,
        "atexit" => 1,
        _ => return false,
    };
    ty.params().len() == params
        && ty.params().all(|t| matches!(t, ValType::I32))
        && ty.results().len() == 1
        && ty.results().all(|t| matches!(t, ValType::I32))
}

/// Runs `list`'s handlers, last registered first, and empties it. A trap is logged and the
/// remaining handlers still run.
fn run_handlers(mut store: impl AsContextMut, table: &Table, list: &Destructors, library: &str) -> Vec<String> {
    let handlers = std::mem::take(&mut *list.handlers());
    let mut failures = Vec::new();
    for h in handlers.into_iter().rev() {
        let (slot, params) = match h {
            Handler::Cxa { slot, arg } => (slot, vec![Val::I32(arg)]),
            Handler::Plain { slot } => (slot, Vec::new()),
        };
        let result = match table.get(&mut store, slot.into()) {
            Some(Ref::Func(Some(f))) => f.call(&mut store, &params, &mut []).map_err(|e| describe(&e)),
            _ => Err(format!("table slot {slot} holds no function")),
        };
        if let Err(e) = result {
            tracing::warn!(library, slot, error = %e, "destructor failed");
            failures.push(format!("destructor at slot {slot}: {e}"));
        }
    }
    failures
}

impl Loader {
    /// The `env.__cxa_atexit` or `env.atexit` a library being loaded imports, bound to its
    /// new handler list (returned, to keep with the library).
    pub(crate) fn registration_stub<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        name: &str,
        list: &mut Option<Arc<Destructors>>,
    ) -> Result<Func, wasmtime::Error> {
        let dtors = match list {
            Some(d) => Arc::clone(d),
            None => {
                let id = self.next_dtor_id;
                self.next_dtor_id = self.next_dtor_id.wrapping_add(1);
                let d = Arc::new(Destructors { id, handlers: Mutex::new(Vec::new()) });
                *list = Some(Arc::clone(&d));
                d
            }
        };
        let at_exit = self.exit_runner(store)?;
        let registry = Arc::clone(&self.dtor_registry);
        let register = move |caller: &mut Caller<'_, T>, handler: Handler| -> wasmtime::Result<i32> {
            dtors.handlers().push(handler);
            if let Some((main_cxa_atexit, runner_slot)) = at_exit
                && !registry.runner_registered.swap(true, Ordering::Relaxed)
            {
                let mut rc = [Val::I32(0)];
                let args = [Val::I32(runner_slot as i32), Val::I32(0), Val::I32(0)];
                if let Err(e) = main_cxa_atexit.call(&mut *caller, &args, &mut rc) {
                    // Not registered after all: the next library's first handler tries again.
                    registry.runner_registered.store(false, Ordering::Relaxed);
                    return Err(e);
                }
            }
            Ok(0)
        };
        Ok(if name == "atexit" {
            Func::wrap(&mut *store, move |mut caller: Caller<'_, T>, slot: i32| register(&mut caller, Handler::Plain { slot: slot as u32 }))
        } else {
            Func::wrap(&mut *store, move |mut caller: Caller<'_, T>, slot: i32, arg: i32, _dso: i32| {
                register(&mut caller, Handler::Cxa { slot: slot as u32, arg })
            })
        })
    }

    /// The main module's `__cxa_atexit` and the table slot of the runner it is given, made
    /// the first time a library registers a handler; `None` when the main module has no
    /// `__cxa_atexit` of the C signature.
    fn exit_runner<T: 'static>(&mut self, store: &mut StoreContextMut<'_, T>) -> Result<Option<(Func, u32)>, wasmtime::Error> {
        let Some(Symbol::Func(main_cxa_atexit)) = self.main.symbols.get("__cxa_atexit").copied() else {
            return Ok(None);
        };
        if !interposed("__cxa_atexit", &main_cxa_atexit.ty(&*store)) {
            return Ok(None);
        }
        if let Some(slot) = self.dtor_runner_slot {
            return Ok(Some((main_cxa_atexit, slot)));
        }
        let registry = Arc::clone(&self.dtor_registry);
        let table = self.main.table;
        let runner = Func::wrap(&mut *store, move |mut caller: Caller<'_, T>, _arg: i32| {
            let mut remaining: Vec<Arc<Destructors>> = lock(&registry).drain().map(|(_, list)| list).collect();
            remaining.sort_unstable_by_key(|list| std::cmp::Reverse(list.id));
            for list in remaining {
                run_handlers(&mut caller, &table, &list, "at exit");
            }
        });
        let (slot, _) = self.slots.slot_for(&mut *store, &table, &runner).map_err(|e| wasmtime::Error::msg(e.to_string()))?;
        self.dtor_runner_slot = Some(slot);
        Ok(Some((main_cxa_atexit, slot)))
    }

    /// Makes `list` known to the exit-time runner once its library is loaded.
    pub(crate) fn register_destructors(&self, list: &Arc<Destructors>) {
        lock(&self.dtor_registry).insert(list.id, Arc::clone(list));
    }

    /// Runs an unloading library's handlers (none when its load failed: it is not in the
    /// registry) and forgets them. Returns a message per handler that failed.
    pub(crate) fn run_destructors<T: 'static>(&self, store: &mut StoreContextMut<'_, T>, list: &Arc<Destructors>, library: &str) -> Vec<String> {
        let registered = lock(&self.dtor_registry).remove(&list.id);
        match registered {
            Some(list) => run_handlers(&mut *store, &self.main.table, &list, library),
            None => Vec::new(),
        }
    }
}
