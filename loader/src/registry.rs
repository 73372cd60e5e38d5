//! The loaded libraries: the one owner of who is loaded, under which canonical path, in which
//! order in the global scope, and with how many references. Reference counts change here
//! and nowhere else; the rest of the loader asks ([`Registry::retain`],
//! [`Registry::release`], [`Registry::add_dependency`]) and gets told what to do (e.g.
//! [`Released::Last`]: unload it).
//!
//! A reference is held by the guest for each `dl_open` that returned the handle, and by a
//! library on each library it depends on: its NEEDED libraries and the RTLD_GLOBAL libraries
//! it bound a symbol to (eagerly or through a lazy stub), as glibc does, so that a provider
//! is never unloaded under a library that can call it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::{AsContext, Instance};

use crate::dtors::Destructors;
use crate::lazy::{self, LazyBinding, Pending};
use crate::memory::Block;
use crate::symbol::{FastMap, Handle, Provider, Symbol, SymbolMap, TableSlot};

/// What a library holds of the main module's memory and table, returned when it goes.
#[derive(Debug)]
pub(crate) struct Storage {
    /// Its data, from the main module's allocator.
    pub(crate) block: Block,
    /// `__table_base`: the start of its own table range.
    pub(crate) table_base: u32,
    /// The length of its own table range (`dylink.0`'s table size).
    pub(crate) table_size: u32,
    /// Single slots made later for its functions (GOT.func entries, dl_sym).
    pub(crate) extra_slots: Vec<TableSlot>,
}

/// One loaded library.
#[derive(Debug)]
pub(crate) struct Library {
    /// Its canonical host path (the key of [`Registry::find`]).
    pub(crate) path: PathBuf,
    /// Its path as the guest spells it, for what the guest sees (`dl_error`, stub traps).
    pub(crate) guest_path: String,
    pub(crate) storage: Storage,
    pub(crate) symbols: SymbolMap,
    /// Handlers it registered with `__cxa_atexit` / `atexit`, run when it is unloaded.
    pub(crate) dtors: Option<Arc<Destructors>>,
    /// Its direct-call imports left for later under `RTLD_LAZY`.
    pub(crate) lazy: Vec<Arc<LazyBinding>>,
    /// Its instance: kept alive while it is loaded, and how a trap's frames are matched to it
    /// ([`Registry::running`]).
    instance: Instance,
    /// Libraries it holds a reference on (see the module docs).
    deps: Vec<Handle>,
    refcount: u32,
    global: bool,
    nodelete: bool,
}

/// A library that has been instantiated and initialized, ready for [`Registry::insert`].
#[derive(Debug)]
pub(crate) struct NewLibrary {
    pub(crate) path: PathBuf,
    pub(crate) guest_path: String,
    pub(crate) storage: Storage,
    pub(crate) symbols: SymbolMap,
    pub(crate) dtors: Option<Arc<Destructors>>,
    pub(crate) lazy: Vec<Arc<LazyBinding>>,
    pub(crate) instance: Instance,
    /// Libraries it holds a reference on, each already retained for it.
    pub(crate) deps: Vec<Handle>,
    /// RTLD_GLOBAL: its symbols join the global scope.
    pub(crate) global: bool,
    /// RTLD_NODELETE: never unloaded.
    pub(crate) nodelete: bool,
}

impl Library {
    /// Libraries it holds a reference on.
    pub(crate) fn deps(&self) -> &[Handle] {
        &self.deps
    }
}

/// What [`Registry::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// The handle is not open.
    NotOpen,
    /// References remain (or the library is RTLD_NODELETE): it stays loaded.
    Kept,
    /// That was the last reference: the caller unloads it ([`Registry::remove`]).
    Last,
}

/// The loaded libraries (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    libs: FastMap<Handle, Library>,
    by_path: HashMap<PathBuf, Handle>,
    /// RTLD_GLOBAL libraries in load (or promotion) order: the global scope after the main
    /// module.
    globals: Vec<Handle>,
    next_handle: Handle,
}

impl Registry {
    /// Libraries loaded.
    pub(crate) fn len(&self) -> usize {
        self.libs.len()
    }

    /// The library open under `handle`.
    pub(crate) fn get(&self, handle: Handle) -> Option<&Library> {
        self.libs.get(&handle)
    }

    /// The loaded library whose code `module` is, if any (for naming the library a trap
    /// happened in; a module shared by two paths names the first).
    pub(crate) fn running(&self, store: impl AsContext, module: &wasmtime::Module) -> Option<&Library> {
        let store = store.as_context();
        self.libs.values().find(|lib| wasmtime::Module::same(lib.instance.module(&store), module))
    }

    /// The handle of the library loaded from `canonical`, if any.
    pub(crate) fn find(&self, canonical: &Path) -> Option<Handle> {
        self.by_path.get(canonical).copied()
    }

    /// Takes one more reference on `handle`; `false` if it is not open.
    pub(crate) fn retain(&mut self, handle: Handle) -> bool {
        match self.libs.get_mut(&handle) {
            Some(lib) => {
                lib.refcount = lib.refcount.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// Drops one reference on `handle` and says whether the caller must now unload it.
    pub(crate) fn release(&mut self, handle: Handle) -> Released {
        let Some(lib) = self.libs.get_mut(&handle) else { return Released::NotOpen };
        lib.refcount = lib.refcount.saturating_sub(1);
        if lib.refcount > 0 || lib.nodelete { Released::Kept } else { Released::Last }
    }

    /// Marks `handle` RTLD_NODELETE: it stays loaded from now on.
    pub(crate) fn set_nodelete(&mut self, handle: Handle) {
        if let Some(lib) = self.libs.get_mut(&handle) {
            lib.nodelete = true;
        }
    }

    /// Makes `handle` RTLD_GLOBAL (last in the global scope). `true` if it was not already.
    pub(crate) fn promote(&mut self, handle: Handle) -> bool {
        match self.libs.get_mut(&handle) {
            Some(lib) if !lib.global => {
                lib.global = true;
                self.globals.push(handle);
                true
            }
            _ => false,
        }
    }

    /// Undoes [`Registry::promote`].
    pub(crate) fn demote(&mut self, handle: Handle) {
        if let Some(lib) = self.libs.get_mut(&handle) {
            lib.global = false;
        }
        self.globals.retain(|g| *g != handle);
    }

    /// Registers a new library with one reference (its opener's) under a fresh handle.
    pub(crate) fn insert(&mut self, new: NewLibrary) -> Handle {
        let handle = self.fresh_handle();
        if new.global {
            self.globals.push(handle);
        }
        self.by_path.insert(new.path.clone(), handle);
        let lib = Library {
            path: new.path,
            guest_path: new.guest_path,
            storage: new.storage,
            symbols: new.symbols,
            dtors: new.dtors,
            lazy: new.lazy,
            instance: new.instance,
            deps: new.deps,
            refcount: 1,
            global: new.global,
            nodelete: new.nodelete,
        };
        self.libs.insert(handle, lib);
        handle
    }

    /// The next unused handle; handles wrap around after `i32::MAX` loads, skipping open ones.
    fn fresh_handle(&mut self) -> Handle {
        loop {
            let h = self.next_handle;
            self.next_handle = h.next();
            if !self.libs.contains_key(&h) {
                return h;
            }
        }
    }

    /// Forgets a library (its path, its place in the global scope) and hands it back, so
    /// that the caller returns its storage. Does not touch its dependencies' references.
    pub(crate) fn remove(&mut self, handle: Handle) -> Option<Library> {
        let lib = self.libs.remove(&handle)?;
        self.by_path.remove(&lib.path);
        self.globals.retain(|g| *g != handle);
        Some(lib)
    }

    /// `importer` now holds a reference on `provider` (a binding made after it loaded).
    pub(crate) fn add_dependency(&mut self, importer: Handle, provider: Handle) {
        self.retain(provider);
        if let Some(lib) = self.libs.get_mut(&importer) {
            lib.deps.push(provider);
        }
    }

    /// Records a single table slot made for one of `handle`'s functions: it is freed with it.
    pub(crate) fn add_extra_slot(&mut self, handle: Handle, slot: TableSlot) {
        if let Some(lib) = self.libs.get_mut(&handle) {
            lib.storage.extra_slots.push(slot);
        }
    }

    /// `(bytes of memory, table slots)` the loaded libraries hold together.
    pub(crate) fn storage_in_use(&self) -> (u64, u64) {
        self.libs.values().fold((0, 0), |(m, t), lib| {
            let s = &lib.storage;
            (m + u64::from(s.block.size), t + u64::from(s.table_size) + s.extra_slots.len() as u64)
        })
    }

    /// Global lookup for a library being loaded: the main module's `main` symbols, then
    /// RTLD_GLOBAL libraries in load order, then `scope` (the library's own dependencies).
    pub(crate) fn lookup(&self, main: &SymbolMap, name: &str, scope: &[Handle]) -> Option<(Symbol, Provider)> {
        if let Some(s) = main.get(name) {
            return Some((*s, Provider::Main));
        }
        for h in self.globals.iter().chain(scope) {
            if let Some(s) = self.libs.get(h).and_then(|l| l.symbols.get(name)) {
                return Some((*s, Provider::Lib(*h)));
            }
        }
        None
    }

    /// `name` in `handle`'s own symbols, then in its dependencies breadth first.
    pub(crate) fn lookup_in(&self, handle: Handle, name: &str) -> Option<Option<(Symbol, Provider)>> {
        let lib = self.libs.get(&handle)?;
        // The common case (the handle's own symbol) is two hash lookups and no allocation.
        Some(match lib.symbols.get(name) {
            Some(s) => Some((*s, Provider::Lib(handle))),
            None if lib.deps.is_empty() => None,
            None => self
                .dep_closure(&lib.deps)
                .iter()
                .find_map(|h| self.libs.get(h).and_then(|l| l.symbols.get(name)).map(|s| (*s, Provider::Lib(*h)))),
        })
    }

    /// `roots` and everything they need, breadth first, without repeats.
    pub(crate) fn dep_closure(&self, roots: &[Handle]) -> Vec<Handle> {
        let mut out: Vec<Handle> = Vec::new();
        let mut seen = HashSet::new();
        let mut queue: VecDeque<Handle> = roots.iter().copied().collect();
        while let Some(h) = queue.pop_front() {
            if !seen.insert(h) {
                continue;
            }
            out.push(h);
            if let Some(lib) = self.libs.get(&h) {
                queue.extend(lib.deps.iter().copied());
            }
        }
        out
    }

    /// Binds every unbound lazy import that a visible library now defines (see
    /// [`lazy::bind_pending`]); the importer takes a reference on each new provider.
    pub(crate) fn bind_lazy(&mut self, store: impl AsContext, main: &SymbolMap) {
        let pending = self.libs.iter().filter(|(_, lib)| !lib.lazy.is_empty()).map(|(&importer, lib)| Pending {
            importer,
            library: &lib.path,
            bindings: &lib.lazy,
            scope: self.dep_closure(&lib.deps),
        });
        let new_refs = lazy::bind_pending(store, pending, |name, scope| self.lookup(main, name, scope));
        for (importer, provider) in new_refs {
            self.add_dependency(importer, provider);
        }
    }
}
