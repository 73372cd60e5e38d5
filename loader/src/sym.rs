//! `dl_sym`, `dl_close` and the error slot.

use wasmtime::{AsContextMut, StoreContextMut};

use crate::allocate;
use crate::error::HandleError;
use crate::registry::Released;
use crate::state::Loader;
use crate::symbol::{Handle, Symbol, SymbolAddress};

impl Loader {
    /// The address of `name`: a function's canonical table slot (made on first use, the
    /// same one the GOT and every other `dl_sym` get) or a data symbol's absolute address.
    /// `handle` searches that library and its dependencies; [`Handle::DEFAULT`]
    /// (`pymode_abi::host::DEFAULT_HANDLE`) searches
    /// the main module and the RTLD_GLOBAL libraries. Lookups are hash-map lookups.
    ///
    /// # Errors
    /// [`HandleError::BadHandle`], [`HandleError::NotFound`], or a table error when a new
    /// slot could not be made. The message is also kept for [`Loader::take_error`].
    pub fn dl_sym<T: 'static>(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        handle: impl Into<Handle>,
        name: &str,
    ) -> Result<u32, HandleError> {
        let mut store = store.as_context_mut();
        let result = self.sym_inner(&mut store, handle.into(), name).map(SymbolAddress::raw);
        if let Err(e) = &result {
            self.last_error = Some(e.to_string());
        }
        result
    }

    fn sym_inner<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        handle: Handle,
        name: &str,
    ) -> Result<SymbolAddress, HandleError> {
        let found = if handle == Handle::DEFAULT {
            self.registry.lookup(&self.main.symbols, name, &[])
        } else {
            self.registry.lookup_in(handle, name).ok_or(HandleError::BadHandle(handle))?
        };
        match found {
            None => Err(HandleError::NotFound { name: name.to_owned(), library: self.describe_handle(handle) }),
            Some((Symbol::Data(addr), _)) => Ok(SymbolAddress::Data(addr)),
            Some((Symbol::Func(f), provider)) => {
                match allocate::canonical_slot(store, &self.main.table, &mut self.slots, &mut self.registry, &f, provider) {
                    Ok(slot) => Ok(SymbolAddress::Func(slot)),
                    Err(source) => Err(HandleError::Store { library: self.describe_handle(handle), source }),
                }
            }
        }
    }

    /// A library's path for messages, or "the global scope" for [`Handle::DEFAULT`].
    fn describe_handle(&self, handle: Handle) -> String {
        match self.registry.get(handle) {
            Some(lib) => lib.guest_path.clone(),
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
    pub fn dl_close<T: 'static>(&mut self, mut store: impl AsContextMut<Data = T>, handle: impl Into<Handle>) -> Result<(), HandleError> {
        let mut store = store.as_context_mut();
        let handle = handle.into();
        let mut pending = vec![handle];
        let mut first = true;
        while let Some(h) = pending.pop() {
            match self.registry.release(h) {
                Released::NotOpen if first => {
                    let e = HandleError::BadHandle(h);
                    self.last_error = Some(e.to_string());
                    return Err(e);
                }
                Released::NotOpen | Released::Kept => {}
                Released::Last => pending.extend(self.close_library(&mut store, h)),
            }
            first = false;
        }
        // Another library may define what the closed one provided to lazy imports.
        self.registry.bind_lazy(&mut store, &self.main.symbols);
        Ok(())
    }

    /// Runs the destructors of a library whose last reference is gone, unloads it and
    /// returns the libraries it held references on.
    fn close_library<T: 'static>(&mut self, store: &mut StoreContextMut<'_, T>, handle: Handle) -> Vec<Handle> {
        let Some(lib) = self.registry.get(handle) else { return Vec::new() };
        let deps = lib.deps().to_vec();
        if let Some(dtors) = lib.dtors.clone() {
            let library = lib.guest_path.clone();
            let failures = self.at_exit.run(&mut *store, &dtors, &library);
            if !failures.is_empty() {
                // The library is unloaded anyway; dl_error tells what went wrong.
                self.last_error = Some(format!("{library}: {}", failures.join("; ")));
            }
        }
        self.unload(store, handle);
        deps
    }

    /// Takes the last error message (clearing it, as `dlerror` does).
    pub fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }

    /// Whether `handle` is an open library.
    pub fn is_open(&self, handle: impl Into<Handle>) -> bool {
        self.registry.get(handle.into()).is_some()
    }

    /// The canonical path of an open library.
    pub fn library_path(&self, handle: impl Into<Handle>) -> Option<&std::path::Path> {
        self.registry.get(handle.into()).map(|l| l.path.as_path())
    }

    /// The `__memory_base` and `__table_base` of an open library.
    pub fn library_bases(&self, handle: impl Into<Handle>) -> Option<(u32, u32)> {
        self.registry.get(handle.into()).map(|l| (l.storage.block.base, l.storage.table_base))
    }
}
