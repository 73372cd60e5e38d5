//! `dl_sym`, `dl_close` and the error slot.

use pymode_abi::host::DEFAULT_HANDLE;
use wasmtime::AsContextMut;

use crate::error::HandleError;
use crate::state::{Handle, Loader, Provider, Symbol};

impl Loader {
    /// The address of `name`: a function's canonical table slot (made on first use, the
    /// same one the GOT and every other `dl_sym` get) or a data symbol's absolute address.
    /// `handle` searches that library and its dependencies; [`DEFAULT_HANDLE`] searches
    /// the main module and the RTLD_GLOBAL libraries. Lookups are hash-map lookups.
    ///
    /// # Errors
    /// [`HandleError::BadHandle`], [`HandleError::NotFound`], or a table error when a new
    /// slot could not be made. The message is also kept for [`Loader::take_error`].
    pub fn dl_sym<T: 'static>(&mut self, mut store: impl AsContextMut<Data = T>, handle: Handle, name: &str) -> Result<u32, HandleError> {
        let mut store = store.as_context_mut();
        let result = self.sym_inner(&mut store, handle, name);
        if let Err(e) = &result {
            self.last_error = Some(e.to_string());
        }
        result
    }

    fn sym_inner<T: 'static>(
        &mut self,
        store: &mut wasmtime::StoreContextMut<'_, T>,
        handle: Handle,
        name: &str,
    ) -> Result<u32, HandleError> {
        // The common case (the handle's own symbol) is two hash lookups and no allocation.
        let found = if handle == DEFAULT_HANDLE {
            self.lookup(name, &[])
        } else {
            let lib = self.libs.get(&handle).ok_or(HandleError::BadHandle(handle))?;
            match lib.symbols.get(name) {
                Some(s) => Some((*s, Provider::Lib(handle))),
                None if lib.deps.is_empty() => None,
                None => self
                    .dep_closure(&lib.deps)
                    .iter()
                    .find_map(|h| self.libs.get(h).and_then(|l| l.symbols.get(name)).map(|s| (*s, Provider::Lib(*h)))),
            }
        };
        match found {
            None => Err(HandleError::NotFound { name: name.to_owned(), library: self.describe_handle(handle) }),
            Some((Symbol::Data(addr), _)) => Ok(addr),
            Some((Symbol::Func(f), provider)) => match self.func_slot(store, &f, provider) {
                Ok(slot) => Ok(slot),
                Err(e) => Err(HandleError::Store { library: self.describe_handle(handle), source: Box::new(e) }),
            },
        }
    }

    /// A library's path for messages, or "the global scope" for [`DEFAULT_HANDLE`].
    fn describe_handle(&self, handle: Handle) -> String {
        match self.libs.get(&handle) {
            Some(lib) => lib.path.display().to_string(),
            None => "the global scope".to_owned(),
        }
    }

    /// Drops one reference to `handle`. On the last one the library is unloaded: its table
    /// slots are nulled and reused later, its memory goes back to the main module's
    /// allocator, its symbols are forgotten, and its dependencies lose the reference it
    /// held. A library opened with `RTLD_NODELETE` stays. Before it goes, the handlers it
    /// registered with `__cxa_atexit` or `atexit` run, last first; a trapping one is
    /// reported through [`Loader::take_error`] and the rest still run.
    ///
    /// # Errors
    /// [`HandleError::BadHandle`] if `handle` is not open.
    pub fn dl_close<T: 'static>(&mut self, mut store: impl AsContextMut<Data = T>, handle: Handle) -> Result<(), HandleError> {
        let mut store = store.as_context_mut();
        let mut pending = vec![handle];
        let mut first = true;
        while let Some(h) = pending.pop() {
            let Some(lib) = self.libs.get_mut(&h) else {
                if first {
                    let e = HandleError::BadHandle(h);
                    self.last_error = Some(e.to_string());
                    return Err(e);
                }
                continue;
            };
            first = false;
            lib.refcount = lib.refcount.saturating_sub(1);
            if lib.refcount > 0 || lib.nodelete {
                continue;
            }
            let deps = std::mem::take(&mut lib.deps);
            if let Some(dtors) = lib.dtors.take() {
                let library = lib.path.display().to_string();
                let failures = self.run_destructors(&mut store, &dtors, &library);
                if !failures.is_empty() {
                    // The library is unloaded anyway; dl_error tells what went wrong.
                    self.last_error = Some(format!("{library}: {}", failures.join("; ")));
                }
            }
            self.unload(&mut store, h);
            pending.extend(deps);
        }
        // Another library may define what the closed one provided to lazy imports.
        self.bind_lazy(&mut store);
        Ok(())
    }

    /// Takes the last error message (clearing it, as `dlerror` does).
    pub fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }

    /// Whether `handle` is an open library.
    pub fn is_open(&self, handle: Handle) -> bool {
        self.libs.contains_key(&handle)
    }

    /// The canonical path of an open library.
    pub fn library_path(&self, handle: Handle) -> Option<&std::path::Path> {
        self.libs.get(&handle).map(|l| l.path.as_path())
    }

    /// The `__memory_base` and `__table_base` of an open library.
    pub fn library_bases(&self, handle: Handle) -> Option<(u32, u32)> {
        self.libs.get(&handle).map(|l| (l.block.base, l.table_range.0))
    }
}
