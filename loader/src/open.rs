//! `dl_open`: the orchestration of the steps (`admit` → NEEDED libraries → `imports` →
//! `allocate` → `instantiate` → register) and the transaction around them (DESIGN §5.4): on
//! any failure every library loaded by this call is unloaded, every reference taken is
//! dropped, and guest memory and table slots are returned. [`Txn`] records what the call
//! changed and [`Loader::rollback`] is the one place that undoes it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pymode_abi::host::rtld;
use wasmtime::{AsContextMut, StoreContextMut};

use crate::admit::{self, Admitted, Step};
use crate::allocate;
use crate::error::{OpenError, OpenErrorKind};
use crate::imports::{self, ImportPlan};
use crate::instantiate::{self, Instantiated, Target};
use crate::paths::{guest_spelling, resolve_needed, resolve_request};
use crate::registry::{NewLibrary, Storage};
use crate::state::Loader;
use crate::symbol::Handle;

/// What one `dl_open` call changed, to undo on failure.
#[derive(Debug, Default)]
struct Txn {
    /// Libraries loaded by this call, in load order.
    new: Vec<Handle>,
    /// Already-loaded libraries whose refcount this call raised.
    bumped: Vec<Handle>,
    /// Already-loaded libraries this call made RTLD_GLOBAL.
    promoted: Vec<Handle>,
    /// Storage of a library that failed after allocation (never registered).
    orphaned: Vec<Storage>,
    /// Canonical paths being loaded, outermost first: a NEEDED edge back to one is a cycle.
    loading: Vec<PathBuf>,
}

/// A library being loaded and how messages name it.
struct Request<'a> {
    canonical: &'a Path,
    /// Its canonical host path, for the host's logs and [`OpenError::library`].
    host_name: String,
    /// Its path as the guest spells it, for what the guest sees.
    guest_name: String,
    flags: i32,
}

impl Loader {
    /// Loads the library at `path` (and its NEEDED libraries) with `RTLD_*` `flags`, or
    /// returns the handle of the already-loaded library with the same canonical path (its
    /// reference count raised).
    ///
    /// `path` is a guest path under a root's guest prefix, a host path inside a root, or a
    /// name relative to the roots. With `RTLD_LAZY` (and not `RTLD_NOW`), a function the
    /// library calls directly may still be undefined: the call binds to a definition from a
    /// library loaded later with `RTLD_GLOBAL`, and traps naming the symbol until then.
    /// Addresses (`GOT.mem`, `GOT.func`) must resolve at load time in either mode.
    ///
    /// # Errors
    /// [`OpenError`] naming the library and the cause; the message is also kept for
    /// [`Loader::take_error`]. Nothing the call did stays behind.
    pub fn dl_open<T: 'static>(&mut self, mut store: impl AsContextMut<Data = T>, path: &str, flags: i32) -> Result<Handle, OpenError> {
        let mut store = store.as_context_mut();
        let span = tracing::debug_span!("dl_open", path, flags);
        let _enter = span.enter();
        let start = Instant::now();
        let result = match resolve_request(&self.roots, path) {
            Err(kind) => Err(OpenError::new(path, kind)),
            Ok(canonical) => {
                let mut txn = Txn::default();
                let r = self.open_path(&mut store, &canonical, flags, &mut txn);
                if r.is_err() {
                    self.rollback(&mut store, txn);
                }
                r
            }
        };
        match &result {
            Ok(h) => {
                self.registry.bind_lazy(&mut store, &self.main.symbols);
                tracing::debug!(handle = h.raw(), elapsed_us = start.elapsed().as_micros() as u64, "loaded")
            }
            Err(e) => {
                tracing::debug!(error = %e, "dl_open failed");
                self.last_error = Some(e.guest_message());
            }
        }
        result
    }

    /// Undoes what `txn` recorded: references, promotions, then the storage of a library
    /// that failed and the libraries this call loaded, last first.
    fn rollback<T: 'static>(&mut self, store: &mut StoreContextMut<'_, T>, txn: Txn) {
        for h in txn.bumped.iter().rev() {
            // These libraries were loaded before this call: they keep the opener's reference.
            self.registry.release(*h);
        }
        for h in &txn.promoted {
            self.registry.demote(*h);
        }
        for storage in txn.orphaned {
            allocate::release(store, &self.main, &mut self.slots, storage);
        }
        for h in txn.new.iter().rev() {
            self.unload(store, *h);
        }
    }

    /// Removes a library and returns its storage. Does not touch its dependencies'
    /// reference counts.
    pub(crate) fn unload<T: 'static>(&mut self, store: &mut StoreContextMut<'_, T>, handle: Handle) {
        let Some(lib) = self.registry.remove(handle) else { return };
        allocate::release(store, &self.main, &mut self.slots, lib.storage);
        tracing::debug!(handle = handle.raw(), path = %lib.path.display(), "unloaded");
    }

    /// Loads one library (after its NEEDED ones), or takes a reference on it if it is
    /// already loaded.
    fn open_path<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        canonical: &Path,
        flags: i32,
        txn: &mut Txn,
    ) -> Result<Handle, OpenError> {
        let guest_name = guest_spelling(&self.roots, canonical);
        let req = Request { canonical, host_name: canonical.display().to_string(), guest_name, flags };
        let err = |kind| OpenError::resolved(&req.host_name, &req.guest_name, kind);
        if let Some(h) = self.reopen(canonical, flags, txn) {
            return Ok(h);
        }
        if flags & rtld::NOLOAD != 0 {
            return Err(err(OpenErrorKind::NotLoaded));
        }
        let span = tracing::debug_span!("load", library = %req.host_name);
        let _enter = span.enter();
        let mut step = Step::start();
        let admitted = admit::admit(&self.config, &mut self.cache, store.engine(), canonical, &req.guest_name, &mut step).map_err(err)?;
        // NEEDED first, so that their symbols resolve this module's imports.
        txn.loading.push(canonical.to_path_buf());
        let deps = self.open_needed(store, &req, &admitted, txn).map_err(err)?;
        txn.loading.pop();
        let mut step = Step::start();
        let lazy = flags & rtld::LAZY != 0 && flags & rtld::NOW == 0;
        let mut plan = imports::plan_imports(store, &self.main, &self.registry, &admitted, &deps, lazy).map_err(err)?;
        allocate::got_addresses(store, &self.main.table, &mut self.slots, &mut self.registry, &mut plan.plans).map_err(err)?;
        step.done("resolve");
        let mi = &admitted.dylink.mem_info;
        allocate::check_budgets(&self.registry, &self.config, mi).map_err(err)?;
        let mut storage = allocate::allocate(store, &self.main, &mut self.slots, mi).map_err(err)?;
        step.done("allocate");
        let target = Target {
            table: self.main.table,
            slots: &mut self.slots,
            at_exit: &mut self.at_exit,
            init_fuel: self.config.init_fuel,
            ffi: &mut self.ffi,
        };
        match instantiate::instantiate(store, target, &admitted, plan.plans, &mut storage, &req.guest_name) {
            Ok(instantiated) => {
                step.done("instantiate+init");
                let ImportPlan { providers, .. } = plan;
                Ok(self.register(&req, storage, instantiated, deps, &providers, txn))
            }
            Err(kind) => {
                txn.orphaned.push(storage);
                Err(err(kind))
            }
        }
    }

    /// An already-loaded library at `canonical`: one more reference, and `RTLD_NODELETE` /
    /// `RTLD_GLOBAL` applied to it.
    fn reopen(&mut self, canonical: &Path, flags: i32, txn: &mut Txn) -> Option<Handle> {
        let h = self.registry.find(canonical)?;
        if !self.registry.retain(h) {
            return None;
        }
        txn.bumped.push(h);
        if flags & rtld::NODELETE != 0 {
            self.registry.set_nodelete(h);
        }
        if flags & rtld::GLOBAL != 0 && self.registry.promote(h) {
            txn.promoted.push(h);
        }
        Some(h)
    }

    /// Loads (or references) every NEEDED library of `admitted`, each once; returns their
    /// handles, on each of which the library will hold one reference.
    fn open_needed<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        req: &Request<'_>,
        admitted: &Admitted,
        txn: &mut Txn,
    ) -> Result<Vec<Handle>, OpenErrorKind> {
        let dylink = &admitted.dylink;
        let mut deps = Vec::new();
        for name in &dylink.needed {
            let dep = resolve_needed(&self.roots, req.canonical, &dylink.runtime_path, &self.config.search_path, name)
                .map_err(|k| OpenErrorKind::Needed(Box::new(OpenError::new(name.clone(), k))))?;
            // A cycle: the dependent is being loaded further up; it cannot provide symbols
            // before it is instantiated, so the edge is dropped.
            if txn.loading.contains(&dep) {
                tracing::debug!(needed = name, "NEEDED cycle, edge ignored");
                continue;
            }
            // Dependencies inherit visibility and binding mode, as with glibc.
            let dep_flags = req.flags & (rtld::GLOBAL | rtld::LAZY | rtld::NOW);
            let h = self.open_path(store, &dep, dep_flags, txn).map_err(|e| OpenErrorKind::Needed(Box::new(e)))?;
            if !deps.contains(&h) {
                deps.push(h);
            } else {
                // The same library named twice: one reference is enough.
                self.registry.release(h);
                if let Some(pos) = txn.bumped.iter().rposition(|b| *b == h) {
                    txn.bumped.remove(pos);
                }
            }
        }
        Ok(deps)
    }

    /// The last step: the library takes its references on `providers` (the RTLD_GLOBAL
    /// libraries it bound to outside its NEEDED closure), its destructors become known to
    /// the exit-time runner, and it gets its handle.
    fn register(
        &mut self,
        req: &Request<'_>,
        storage: Storage,
        instantiated: Instantiated,
        mut deps: Vec<Handle>,
        providers: &[Handle],
        txn: &mut Txn,
    ) -> Handle {
        for &h in providers {
            if self.registry.retain(h) {
                txn.bumped.push(h);
                deps.push(h);
            }
        }
        let Instantiated { instance, symbols, lazy, dtors } = instantiated;
        if let Some(d) = &dtors {
            self.at_exit.register(d);
        }
        let handle = self.registry.insert(NewLibrary {
            path: req.canonical.to_path_buf(),
            guest_path: req.guest_name.clone(),
            storage,
            symbols,
            dtors,
            lazy,
            instance,
            deps,
            global: req.flags & rtld::GLOBAL != 0,
            nodelete: req.flags & rtld::NODELETE != 0,
        });
        txn.new.push(handle);
        handle
    }
}
