//! `dl_open`: resolve, read, validate, load NEEDED libraries, resolve every import before
//! touching guest state, allocate memory and table slots, instantiate, fill the module's own
//! GOT entries, run `__wasm_apply_data_relocs` and `__wasm_call_ctors`. Loading is a
//! transaction (DESIGN §5.4): on any failure every library loaded by this call is unloaded,
//! every reference taken is dropped, and guest memory and table slots are returned.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use pymode_abi::host::rtld;
use pymode_abi::{Dylink0, SymbolFlags, names};
use wasmtime::{
    AsContextMut, Extern, ExternType, Func, FuncType, Global, GlobalType, Instance, Module, Mutability, StoreContextMut, Val,
    ValType,
};

use crate::error::{OpenError, OpenErrorKind, boxed};
use crate::dtors::Destructors;
use crate::lazy::LazyBinding;
use crate::memory::{self, Block};
use crate::resolve::{resolve_needed, resolve_request};
use crate::state::{FastMap, Handle, Library, Loader, Provider, Symbol};

/// What one `dl_open` call changed, to undo on failure.
#[derive(Debug, Default)]
struct Txn {
    /// Libraries loaded by this call, in load order.
    new: Vec<Handle>,
    /// Already-loaded libraries whose refcount this call raised.
    bumped: Vec<Handle>,
    /// Already-loaded libraries this call made RTLD_GLOBAL.
    promoted: Vec<Handle>,
}

/// Times the steps of one load for the `load` span's debug events.
struct Step(Instant);

impl Step {
    fn start() -> Self {
        Step(Instant::now())
    }

    /// Logs the time since the last step and starts the next one.
    fn done(&mut self, step: &'static str) {
        tracing::debug!(step, elapsed_us = self.0.elapsed().as_micros() as u64);
        self.0 = Instant::now();
    }
}

/// How one import of the module being loaded is satisfied.
enum Plan {
    Ready(Extern),
    MemoryBase,
    TableBase,
    /// A GOT entry the module itself defines: filled from its exports after instantiation.
    GotSelf { func: bool, name: String },
    /// A GOT entry defined elsewhere (or weak and undefined: `None` → 0).
    GotExternal { found: Option<(Symbol, Provider)> },
    /// A weak undefined function: a stub that traps naming it.
    WeakStub { ty: FuncType, name: String },
    /// `env.__cxa_atexit` or `env.atexit`: the loader's own, keeping the handlers with the
    /// library so that `dl_close` runs them.
    AtExit { name: String },
    /// An undefined function of a library opened with `RTLD_LAZY`: a stub bound later.
    Lazy { ty: FuncType, name: String },
    /// A function the module imports and also exports (wasm-ld does this for interposable
    /// definitions, e.g. weak ones): a stub that forwards to the module's own export once it
    /// exists, since a module cannot import from itself.
    SelfForward { ty: FuncType, name: String },
}

/// `Some(budget)` if `e` is the out-of-fuel trap and an init budget is configured.
fn out_of_fuel(e: &wasmtime::Error, budget: Option<u64>) -> Option<u64> {
    budget.filter(|_| e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel))
}

/// Names that are the loader's business, not symbols other modules may bind to.
fn is_internal_export(name: &str) -> bool {
    matches!(name, names::APPLY_DATA_RELOCS | names::CALL_CTORS | names::APPLY_GLOBAL_RELOCS)
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
                let mut stack = Vec::new();
                let r = self.open_path(&mut store, &canonical, flags, &mut txn, &mut stack);
                if r.is_err() {
                    self.rollback(&mut store, txn);
                }
                r
            }
        };
        match &result {
            Ok(h) => {
                self.bind_lazy(&mut store);
                tracing::debug!(handle = h, elapsed_us = start.elapsed().as_micros() as u64, "loaded")
            }
            Err(e) => {
                tracing::debug!(error = %e, "dl_open failed");
                self.last_error = Some(e.to_string());
            }
        }
        result
    }

    fn rollback<T: 'static>(&mut self, store: &mut StoreContextMut<'_, T>, txn: Txn) {
        for h in txn.bumped.iter().rev() {
            if let Some(lib) = self.libs.get_mut(h) {
                lib.refcount = lib.refcount.saturating_sub(1);
            }
        }
        for h in &txn.promoted {
            if let Some(lib) = self.libs.get_mut(h) {
                lib.global = false;
            }
            self.globals.retain(|g| g != h);
        }
        for h in txn.new.iter().rev() {
            self.unload(store, *h);
        }
    }

    fn open_path<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        canonical: &Path,
        flags: i32,
        txn: &mut Txn,
        stack: &mut Vec<PathBuf>,
    ) -> Result<Handle, OpenError> {
        let lib_name = canonical.display().to_string();
        let err = |kind| OpenError::new(lib_name.clone(), kind);
        if let Some(&h) = self.by_path.get(canonical)
            && let Some(lib) = self.libs.get_mut(&h)
        {
            lib.refcount = lib.refcount.saturating_add(1);
            txn.bumped.push(h);
            if flags & rtld::NODELETE != 0 {
                lib.nodelete = true;
            }
            if flags & rtld::GLOBAL != 0 && !lib.global {
                lib.global = true;
                self.globals.push(h);
                txn.promoted.push(h);
            }
            return Ok(h);
        }
        if flags & rtld::NOLOAD != 0 {
            return Err(err(OpenErrorKind::NotLoaded));
        }

        let span = tracing::debug_span!("load", library = %lib_name);
        let _enter = span.enter();
        let mut step = Step::start();
        let size = std::fs::metadata(canonical).map_err(|e| err(e.into()))?.len();
        if size > self.config.max_file_size {
            return Err(err(OpenErrorKind::TooLarge { what: "file size", requested: size, limit: self.config.max_file_size }));
        }
        let bytes = std::fs::read(canonical).map_err(|e| err(e.into()))?;
        let dylink = Dylink0::from_module(&lib_name, &bytes).map_err(|e| err(e.into()))?.ok_or_else(|| err(OpenErrorKind::NoDylink))?;
        let mi = dylink.mem_info;
        if mi.memory_size > self.config.max_memory_size {
            return Err(err(OpenErrorKind::TooLarge {
                what: "memory size",
                requested: mi.memory_size.into(),
                limit: self.config.max_memory_size.into(),
            }));
        }
        if mi.table_size > self.config.max_table_size {
            return Err(err(OpenErrorKind::TooLarge {
                what: "table size",
                requested: mi.table_size.into(),
                limit: self.config.max_table_size.into(),
            }));
        }
        step.done("read");
        let module = self.cache.get_or_compile(store.engine(), &bytes).map_err(|e| err(OpenErrorKind::Invalid(e)))?;
        step.done("compile");
        let own = module.resources_required();
        if own.num_memories > 0 {
            return Err(err(OpenErrorKind::OwnStorage { what: "memory", import: names::MEMORY }));
        }
        if own.num_tables > 0 {
            return Err(err(OpenErrorKind::OwnStorage { what: "table", import: names::INDIRECT_FUNCTION_TABLE }));
        }
        crate::segments::check(&bytes, mi.memory_size, mi.table_size).map_err(err)?;

        let forbidden: Vec<String> = module
            .imports()
            .filter(|i| {
                let m = i.module();
                !(m == names::ENV || m == names::GOT_MEM || m == names::GOT_FUNC || self.config.extra_import_modules.iter().any(|x| x == m))
            })
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect();
        if !forbidden.is_empty() {
            return Err(err(OpenErrorKind::ForbiddenImports(forbidden)));
        }

        // NEEDED first, so that their symbols resolve this module's imports.
        stack.push(canonical.to_path_buf());
        let mut deps = Vec::new();
        for name in &dylink.needed {
            let dep = resolve_needed(&self.roots, canonical, &dylink.runtime_path, &self.config.search_path, name)
                .map_err(|k| err(OpenErrorKind::Needed(Box::new(OpenError::new(name.clone(), k)))))?;
            // A cycle: the dependent is being loaded further up; it cannot provide symbols
            // before it is instantiated, so the edge is dropped.
            if stack.contains(&dep) {
                tracing::debug!(needed = name, "NEEDED cycle, edge ignored");
                continue;
            }
            // Dependencies inherit visibility and binding mode, as with glibc.
            let dep_flags = flags & (rtld::GLOBAL | rtld::LAZY | rtld::NOW);
            let h = self.open_path(store, &dep, dep_flags, txn, stack).map_err(|e| err(OpenErrorKind::Needed(Box::new(e))))?;
            if !deps.contains(&h) {
                deps.push(h);
            } else if let Some(lib) = self.libs.get_mut(&h) {
                // The same library named twice: one reference is enough.
                lib.refcount = lib.refcount.saturating_sub(1);
                if let Some(pos) = txn.bumped.iter().rposition(|b| *b == h) {
                    txn.bumped.remove(pos);
                }
            }
        }
        stack.pop();
        step = Step::start();

        let lazy = flags & rtld::LAZY != 0 && flags & rtld::NOW == 0;
        let mut providers = Vec::new();
        let plans = self.plan_imports(store, &module, &dylink, &deps, lazy, &mut providers).map_err(err)?;

        // Canonical slots for GOT.func entries defined elsewhere. They belong to the
        // provider, not to this library, so they stay if this load fails.
        let mut got_values = Vec::with_capacity(plans.len());
        for plan in &plans {
            let v = match plan {
                Plan::GotExternal { found: Some((Symbol::Func(f), prov)) } => Some(self.func_slot(store, f, *prov).map_err(err)?),
                Plan::GotExternal { found: Some((Symbol::Data(a), _)) } => Some(*a),
                Plan::GotExternal { found: None } => Some(0),
                _ => None,
            };
            got_values.push(v);
        }

        step.done("resolve");
        self.check_budgets(mi.memory_size, mi.table_size).map_err(err)?;
        let align = mi.memory_align().unwrap_or(1);
        let block = memory::alloc_zeroed(&mut *store, &self.main.memory, &self.main.malloc, mi.memory_size, align).map_err(err)?;
        let table = self.main.table;
        let table_base = match self.slots.alloc(&mut *store, &table, mi.table_size, mi.table_align().unwrap_or(1)) {
            Ok(b) => b,
            Err(source) => {
                self.free_block(store, block);
                return Err(err(OpenErrorKind::TableGrow { slots: mi.table_size.into(), source }));
            }
        };
        step.done("allocate");
        let mut own_extra = Vec::new();
        let mut lazy_bindings = Vec::new();
        let mut dtors = None;
        // A failure to set the fuel aside rolls back like a failed instantiation.
        let instantiated = self.begin_init_fuel(store).and_then(|fuel| {
            let instantiated = self.instantiate(
                store,
                &module,
                plans,
                got_values,
                block,
                table_base,
                mi.table_size,
                &lib_name,
                &mut own_extra,
                &mut lazy_bindings,
                &mut dtors,
            );
            self.end_init_fuel(store, fuel);
            instantiated
        });
        match instantiated {
            Ok((instance, symbols)) => {
                step.done("instantiate+init");
                for &h in &providers {
                    if let Some(lib) = self.libs.get_mut(&h) {
                        lib.refcount = lib.refcount.saturating_add(1);
                        txn.bumped.push(h);
                        deps.push(h);
                    }
                }
                if let Some(d) = &dtors {
                    self.register_destructors(d);
                }
                let handle = self.fresh_handle();
                let global = flags & rtld::GLOBAL != 0;
                self.libs.insert(
                    handle,
                    Library {
                        path: canonical.to_path_buf(),
                        refcount: 1,
                        global,
                        nodelete: flags & rtld::NODELETE != 0,
                        block,
                        table_range: (table_base, mi.table_size),
                        extra_slots: own_extra,
                        symbols,
                        deps,
                        dtors,
                        lazy: lazy_bindings,
                        instance,
                    },
                );
                self.by_path.insert(canonical.to_path_buf(), handle);
                if global {
                    self.globals.push(handle);
                }
                txn.new.push(handle);
                Ok(handle)
            }
            Err(kind) => {
                self.slots.release(&mut *store, &table, table_base, mi.table_size);
                for s in own_extra {
                    self.slots.release(&mut *store, &table, s, 1);
                }
                self.free_block(store, block);
                Err(err(kind))
            }
        }
    }

    /// The next unused handle; handles wrap around after `i32::MAX` loads, skipping open ones.
    fn fresh_handle(&mut self) -> Handle {
        loop {
            let h = self.next_handle;
            self.next_handle = if h == Handle::MAX { 0 } else { h + 1 };
            if !self.libs.contains_key(&h) {
                return h;
            }
        }
    }

    /// Decides how every import is satisfied, before anything is allocated, so that a
    /// library with unresolved symbols leaves no trace at all. Reports all missing symbols.
    fn plan_imports<T: 'static>(
        &self,
        store: &mut StoreContextMut<'_, T>,
        module: &Module,
        dylink: &Dylink0,
        deps: &[Handle],
        lazy: bool,
        providers: &mut Vec<Handle>,
    ) -> Result<Vec<Plan>, OpenErrorKind> {
        // Weakness belongs to the symbol: wasm-ld marks `env.f` weak in IMPORT_INFO but not
        // the `GOT.func.f` entry for the same symbol.
        let weak: HashSet<&str> = dylink
            .import_info
            .iter()
            .filter(|i| i.flags.contains(SymbolFlags::BINDING_WEAK))
            .map(|i| i.field.as_str())
            .collect();
        let own: HashSet<&str> = module.exports().map(|e| e.name()).collect();
        let scope = self.dep_closure(deps);
        // Libraries outside the dependency closure that this one binds to (RTLD_GLOBAL
        // ones): it holds a reference on them, so they cannot be unloaded under it.
        let mut bind_to = |provider: Provider| {
            if let Provider::Lib(h) = provider
                && !scope.contains(&h)
                && !providers.contains(&h)
            {
                providers.push(h);
            }
        };
        let mut plans = Vec::new();
        let mut missing = Vec::new();
        let mut mismatched = Vec::new();
        for imp in module.imports() {
            let (m, name) = (imp.module(), imp.name());
            let is_weak = weak.contains(name);
            let label = format!("{m}.{name}");
            let plan = if m == names::ENV {
                match (name, imp.ty()) {
                    (names::MEMORY, ExternType::Memory(_)) => Plan::Ready(self.main.memory.into()),
                    (names::INDIRECT_FUNCTION_TABLE, ExternType::Table(_)) => Plan::Ready(self.main.table.into()),
                    (names::STACK_POINTER, ExternType::Global(_)) => Plan::Ready(self.main.stack_pointer.into()),
                    (names::MEMORY_BASE, ExternType::Global(_)) => Plan::MemoryBase,
                    (names::TABLE_BASE, ExternType::Global(_)) => Plan::TableBase,
                    // The module's own definition wins (DESIGN §5.8), as for GOT entries.
                    (_, ExternType::Func(fty)) if matches!(module.get_export(name), Some(ExternType::Func(_))) => {
                        Plan::SelfForward { ty: fty, name: name.to_owned() }
                    }
                    (_, ExternType::Func(fty)) if crate::dtors::interposed(name, &fty) => Plan::AtExit { name: name.to_owned() },
                    (_, ExternType::Func(fty)) => match self.lookup(name, &scope) {
                        Some((Symbol::Func(f), provider)) => {
                            if f.ty(&*store).matches(&fty) {
                                bind_to(provider);
                                Plan::Ready(f.into())
                            } else {
                                mismatched.push(format!("{label}: imported as {fty}, defined as {}", f.ty(&*store)));
                                continue;
                            }
                        }
                        Some((Symbol::Data(_), _)) => {
                            mismatched.push(format!("{label}: imported as a function, defined as data"));
                            continue;
                        }
                        None if is_weak => Plan::WeakStub { ty: fty, name: name.to_owned() },
                        None if lazy => Plan::Lazy { ty: fty, name: name.to_owned() },
                        None => {
                            missing.push(label);
                            continue;
                        }
                    },
                    // Other env globals (e.g. `__tls_base`) can only come from the main module.
                    (_, ExternType::Global(_)) => match self.main.instance.get_global(&mut *store, name) {
                        Some(g) => Plan::Ready(g.into()),
                        None => {
                            missing.push(label);
                            continue;
                        }
                    },
                    _ => {
                        missing.push(label);
                        continue;
                    }
                }
            } else if m == names::GOT_MEM || m == names::GOT_FUNC {
                let func = m == names::GOT_FUNC;
                match imp.ty() {
                    ExternType::Global(g) if g.mutability() == Mutability::Var && matches!(g.content(), ValType::I32) => {}
                    _ => {
                        mismatched.push(format!("{label}: a GOT entry must be a mutable i32 global"));
                        continue;
                    }
                }
                // The module's own definition wins (DESIGN §5.8: no interposition).
                if own.contains(name) {
                    Plan::GotSelf { func, name: name.to_owned() }
                } else {
                    match self.lookup(name, &scope) {
                        Some((Symbol::Func(_), _)) if !func => {
                            mismatched.push(format!("{label}: a function used as data"));
                            continue;
                        }
                        Some((Symbol::Data(_), _)) if func => {
                            mismatched.push(format!("{label}: data used as a function"));
                            continue;
                        }
                        Some(found) => {
                            bind_to(found.1);
                            Plan::GotExternal { found: Some(found) }
                        }
                        None if is_weak => Plan::GotExternal { found: None },
                        None => {
                            missing.push(label);
                            continue;
                        }
                    }
                }
            } else {
                // An allowed extra module: its functions come from the main module.
                match (self.main.symbols.get(name), imp.ty()) {
                    (Some(Symbol::Func(f)), ExternType::Func(fty)) if f.ty(&*store).matches(&fty) => Plan::Ready((*f).into()),
                    _ => {
                        missing.push(label);
                        continue;
                    }
                }
            };
            plans.push(plan);
        }
        if !missing.is_empty() {
            return Err(OpenErrorKind::MissingSymbols(missing));
        }
        if !mismatched.is_empty() {
            return Err(OpenErrorKind::TypeMismatch(mismatched));
        }
        Ok(plans)
    }

    #[allow(clippy::too_many_arguments)]
    fn instantiate<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        module: &Module,
        plans: Vec<Plan>,
        got_values: Vec<Option<u32>>,
        block: Block,
        table_base: u32,
        table_size: u32,
        lib_name: &str,
        own_extra: &mut Vec<u32>,
        lazy_bindings: &mut Vec<Arc<LazyBinding>>,
        dtors: &mut Option<Arc<Destructors>>,
    ) -> Result<(Instance, FastMap<String, Symbol>), OpenErrorKind> {
        let store_err = |e: wasmtime::Error| OpenErrorKind::Store(boxed(e));
        let const_i32 = GlobalType::new(ValType::I32, Mutability::Const);
        let var_i32 = GlobalType::new(ValType::I32, Mutability::Var);
        let mut externs = Vec::with_capacity(plans.len());
        let mut self_got = Vec::new();
        let mut forwards = Vec::new();
        for (plan, value) in plans.into_iter().zip(got_values) {
            let ext: Extern = match plan {
                Plan::Ready(e) => e,
                Plan::MemoryBase => Global::new(&mut *store, const_i32.clone(), Val::I32(block.base as i32)).map_err(store_err)?.into(),
                Plan::TableBase => Global::new(&mut *store, const_i32.clone(), Val::I32(table_base as i32)).map_err(store_err)?.into(),
                Plan::GotExternal { .. } => {
                    Global::new(&mut *store, var_i32.clone(), Val::I32(value.unwrap_or(0) as i32)).map_err(store_err)?.into()
                }
                Plan::GotSelf { func, name } => {
                    let g = Global::new(&mut *store, var_i32.clone(), Val::I32(0)).map_err(store_err)?;
                    self_got.push((g, func, name));
                    g.into()
                }
                Plan::WeakStub { ty, name } => {
                    let msg = format!("called weak undefined symbol `{name}` (imported by {lib_name})");
                    Func::new(&mut *store, ty, move |_, _, _| Err(wasmtime::Error::msg(msg.clone()))).into()
                }
                Plan::AtExit { name } => self.registration_stub(store, &name, dtors).map_err(store_err)?.into(),
                Plan::Lazy { ty, name } => {
                    let binding = Arc::new(LazyBinding::new(name, ty));
                    let stub = binding.stub(&mut *store, lib_name);
                    lazy_bindings.push(binding);
                    stub.into()
                }
                Plan::SelfForward { ty, name } => {
                    let target: Arc<OnceLock<Func>> = Arc::default();
                    let cell = Arc::clone(&target);
                    let msg = format!("`{name}` of {lib_name} called before the module was instantiated");
                    forwards.push((target, name));
                    Func::new(&mut *store, ty, move |mut caller, params, results| match cell.get() {
                        Some(f) => f.call(&mut caller, params, results),
                        None => Err(wasmtime::Error::msg(msg.clone())),
                    })
                    .into()
                }
            };
            externs.push(ext);
        }
        let fuel = self.config.init_fuel;
        let instance = Instance::new(&mut *store, module, &externs).map_err(|e| match out_of_fuel(&e, fuel) {
            Some(fuel) => OpenErrorKind::InitOutOfFuel { function: "start", fuel },
            None => OpenErrorKind::Instantiate(boxed(e)),
        })?;
        for (target, name) in forwards {
            if let Some(f) = instance.get_func(&mut *store, &name) {
                // A fresh cell, set once: cannot already hold a value.
                let _ = target.set(f);
            }
        }
        let table = self.main.table;
        // The elem segments put the module's address-taken functions in its own range:
        // those slots are their canonical ones (DESIGN §5.1).
        self.slots.record_range(&mut *store, &table, table_base, table_size);

        for (g, func, name) in self_got {
            let value = match instance.get_export(&mut *store, &name) {
                Some(Extern::Func(f)) if func => {
                    let (slot, new) = self.slots.slot_for(&mut *store, &table, &f).map_err(OpenErrorKind::Store)?;
                    if new {
                        own_extra.push(slot);
                    }
                    slot
                }
                Some(Extern::Global(eg)) if !func => match eg.get(&mut *store) {
                    // Exported data addresses are relative to __memory_base.
                    Val::I32(v) => (v as u32).wrapping_add(block.base),
                    _ => return Err(OpenErrorKind::TypeMismatch(vec![format!("GOT.mem.{name}: export is not an i32 global")])),
                },
                _ => {
                    let m = if func { names::GOT_FUNC } else { names::GOT_MEM };
                    return Err(OpenErrorKind::TypeMismatch(vec![format!("{m}.{name}: the module's own export has the wrong kind")]));
                }
            };
            g.set(&mut *store, Val::I32(value as i32)).map_err(store_err)?;
        }

        for function in [names::APPLY_DATA_RELOCS, names::CALL_CTORS] {
            if let Some(f) = instance.get_func(&mut *store, function) {
                let typed = f.typed::<(), ()>(&*store).map_err(|e| OpenErrorKind::Init { function, source: boxed(e) })?;
                typed.call(&mut *store, ()).map_err(|e| match out_of_fuel(&e, fuel) {
                    Some(fuel) => OpenErrorKind::InitOutOfFuel { function, fuel },
                    None => OpenErrorKind::Init { function, source: boxed(e) },
                })?;
            }
        }

        let mut symbols = FastMap::default();
        let exports: Vec<(String, Extern)> =
            instance.exports(&mut *store).map(|e| (e.name().to_owned(), e.into_extern())).collect();
        for (name, ext) in exports {
            if is_internal_export(&name) {
                continue;
            }
            match ext {
                Extern::Func(f) => {
                    symbols.insert(name, Symbol::Func(f));
                }
                Extern::Global(g) if g.ty(&*store).mutability() == Mutability::Const => {
                    if let Val::I32(v) = g.get(&mut *store) {
                        symbols.insert(name, Symbol::Data((v as u32).wrapping_add(block.base)));
                    }
                }
                _ => {}
            }
        }
        Ok((instance, symbols))
    }

    /// Refuses a library whose memory or table would take the loaded libraries together past
    /// the configured budgets.
    fn check_budgets(&self, memory: u32, table: u32) -> Result<(), OpenErrorKind> {
        let (memory_in_use, table_in_use) = self.libs.values().fold((0u64, 0u64), |(m, t), lib| {
            (m + u64::from(lib.block.size), t + u64::from(lib.table_range.1) + lib.extra_slots.len() as u64)
        });
        let checks = [
            ("memory of all libraries (bytes)", u64::from(memory), memory_in_use, self.config.max_total_memory),
            ("table slots of all libraries", u64::from(table), table_in_use, self.config.max_total_table),
        ];
        for (what, requested, in_use, limit) in checks {
            if in_use + requested > limit {
                return Err(OpenErrorKind::OverBudget { what, requested, in_use, limit });
            }
        }
        Ok(())
    }

    /// With an init fuel budget: sets the store's fuel aside and gives the library the
    /// budget. Returns `(saved, budget)` for [`Loader::end_init_fuel`].
    fn begin_init_fuel<T: 'static>(&self, store: &mut StoreContextMut<'_, T>) -> Result<Option<(u64, u64)>, OpenErrorKind> {
        let Some(budget) = self.config.init_fuel else { return Ok(None) };
        let saved = store.get_fuel().map_err(|e| OpenErrorKind::Store(boxed(e)))?;
        store.set_fuel(budget).map_err(|e| OpenErrorKind::Store(boxed(e)))?;
        Ok(Some((saved, budget)))
    }

    /// Gives the store its fuel back, less what the library's initializers used, so that a
    /// host metering the guest still pays for them.
    fn end_init_fuel<T: 'static>(&self, store: &mut StoreContextMut<'_, T>, fuel: Option<(u64, u64)>) {
        let Some((saved, budget)) = fuel else { return };
        let used = budget.saturating_sub(store.get_fuel().unwrap_or(0));
        if let Err(e) = store.set_fuel(saved.saturating_sub(used)) {
            tracing::warn!(error = %crate::error::describe(&e), "restoring the store's fuel failed");
        }
    }

    /// The canonical slot of `f`; a new slot is owned by the library that defines `f`.
    pub(crate) fn func_slot<T: 'static>(
        &mut self,
        store: &mut StoreContextMut<'_, T>,
        f: &Func,
        provider: Provider,
    ) -> Result<u32, OpenErrorKind> {
        let table = self.main.table;
        let (slot, new) = self.slots.slot_for(&mut *store, &table, f).map_err(OpenErrorKind::Store)?;
        if new
            && let Provider::Lib(h) = provider
            && let Some(lib) = self.libs.get_mut(&h)
        {
            lib.extra_slots.push(slot);
        }
        Ok(slot)
    }

    /// Global lookup for a library being loaded: the main module, then RTLD_GLOBAL
    /// libraries in load order, then the library's own dependencies.
    pub(crate) fn lookup(&self, name: &str, scope: &[Handle]) -> Option<(Symbol, Provider)> {
        if let Some(s) = self.main.symbols.get(name) {
            return Some((*s, Provider::Main));
        }
        for h in self.globals.iter().chain(scope) {
            if let Some(s) = self.libs.get(h).and_then(|l| l.symbols.get(name)) {
                return Some((*s, Provider::Lib(*h)));
            }
        }
        None
    }

    /// `roots` and everything they need, breadth first, without repeats.
    pub(crate) fn dep_closure(&self, roots: &[Handle]) -> Vec<Handle> {
        let mut out: Vec<Handle> = Vec::new();
        let mut seen = HashSet::new();
        let mut queue: std::collections::VecDeque<Handle> = roots.iter().copied().collect();
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

    pub(crate) fn free_block<T: 'static>(&mut self, store: &mut StoreContextMut<'_, T>, block: Block) {
        if let Err(e) = memory::free(&mut *store, &self.main.free, block) {
            tracing::warn!(error = %e, raw = block.raw, "free() of a side module's memory trapped");
        }
    }

    /// Removes a library and returns its memory and table slots. Does not touch its
    /// dependencies' reference counts.
    pub(crate) fn unload<T: 'static>(&mut self, store: &mut StoreContextMut<'_, T>, handle: Handle) {
        let Some(lib) = self.libs.remove(&handle) else { return };
        self.by_path.remove(&lib.path);
        self.globals.retain(|g| *g != handle);
        let table = self.main.table;
        self.slots.release(&mut *store, &table, lib.table_range.0, lib.table_range.1);
        for s in &lib.extra_slots {
            self.slots.release(&mut *store, &table, *s, 1);
        }
        self.free_block(store, lib.block);
        tracing::debug!(handle, path = %lib.path.display(), "unloaded");
    }
}
