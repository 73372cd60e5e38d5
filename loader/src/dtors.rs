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

use wasmtime::{AsContext, AsContextMut, Caller, Func, FuncType, Ref, StoreContextMut, Table, Val, ValType};

use crate::error::describe;
use crate::symbol::{FastMap, TableSlot};
use crate::table::Slots;

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
type Shared = Arc<ExitState>;

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

/// The loader's side of destructors: the state shared with the exit-time runner, the
/// runner's table slot once made, and what it needs from the main module.
#[derive(Debug)]
pub(crate) struct AtExit {
    shared: Shared,
    /// The table slot of the exit-time runner, once made.
    runner_slot: Option<TableSlot>,
    next_id: u32,
    /// The main module's table, where handlers and the runner live.
    table: Table,
    /// The main module's `__cxa_atexit`, when it exports one of the C signature.
    main_cxa_atexit: Option<Func>,
}

impl AtExit {
    /// `main_cxa_atexit` is the main module's export of that name, if any; one of another
    /// signature is ignored (then libraries still loaded at exit run no handlers).
    pub(crate) fn new(store: impl AsContext, table: Table, main_cxa_atexit: Option<Func>) -> Self {
        let main_cxa_atexit = main_cxa_atexit.filter(|f| interposed("__cxa_atexit", &f.ty(&store)));
        AtExit { shared: Shared::default(), runner_slot: None, next_id: 0, table, main_cxa_atexit }
    }

    /// A new, empty handler list for a library being loaded.
    pub(crate) fn new_list(&mut self) -> Arc<Destructors> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Arc::new(Destructors { id, handlers: Mutex::new(Vec::new()) })
    }

    /// The `env.__cxa_atexit` or `env.atexit` (by `name`) a library being loaded imports,
    /// bound to its handler list `dtors` (from [`AtExit::new_list`]).
    pub(crate) fn registration_stub<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        slots: &mut Slots,
        name: &str,
        dtors: &Arc<Destructors>,
    ) -> Result<Func, wasmtime::Error> {
        let dtors = Arc::clone(dtors);
        let at_exit = self.exit_runner(store, slots)?;
        let registry = Arc::clone(&self.shared);
        let register = move |caller: &mut Caller<'_, T>, handler: Handler| -> wasmtime::Result<i32> {
            dtors.handlers().push(handler);
            if let Some((main_cxa_atexit, TableSlot(runner_slot))) = at_exit
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
    fn exit_runner<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        slots: &mut Slots,
    ) -> Result<Option<(Func, TableSlot)>, wasmtime::Error> {
        let Some(main_cxa_atexit) = self.main_cxa_atexit else { return Ok(None) };
        if let Some(slot) = self.runner_slot {
            return Ok(Some((main_cxa_atexit, slot)));
        }
        let registry = Arc::clone(&self.shared);
        let table = self.table;
        let runner = Func::wrap(&mut *store, move |mut caller: Caller<'_, T>, _arg: i32| {
            let mut remaining: Vec<Arc<Destructors>> = lock(&registry).drain().map(|(_, list)| list).collect();
            remaining.sort_unstable_by_key(|list| std::cmp::Reverse(list.id));
            for list in remaining {
                run_handlers(&mut caller, &table, &list, "at exit");
            }
        });
        let (slot, _) = slots.slot_for(&mut *store, &table, &runner).map_err(|e| wasmtime::Error::msg(e.to_string()))?;
        self.runner_slot = Some(slot);
        Ok(Some((main_cxa_atexit, slot)))
    }

    /// Makes `list` known to the exit-time runner once its library is loaded.
    pub(crate) fn register(&self, list: &Arc<Destructors>) {
        lock(&self.shared).insert(list.id, Arc::clone(list));
    }

    /// Runs an unloading library's handlers (none when its load failed: it is not
    /// registered) and forgets them. Returns a message per handler that failed.
    pub(crate) fn run(&self, store: impl AsContextMut, list: &Arc<Destructors>, library: &str) -> Vec<String> {
        let registered = lock(&self.shared).remove(&list.id);
        match registered {
            Some(list) => run_handlers(store, &self.table, &list, library),
            None => Vec::new(),
        }
    }
}
