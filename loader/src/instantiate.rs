//! Step 4: instantiate and initialize. The externs come from the plan (new globals for
//! `__memory_base`, `__table_base` and GOT entries, stubs for weak, lazy and self-forwarded
//! functions, the loader's own `__cxa_atexit`); after instantiation the slots the elem
//! segments filled in the library's range become those functions' canonical slots, the
//! module's own GOT entries are filled from its exports, and `__wasm_apply_data_relocs` then
//! `__wasm_call_ctors` run. The start function and the init functions run inside the fuel
//! bracket of [`LoaderConfig::init_fuel`](crate::LoaderConfig::init_fuel).

use std::sync::{Arc, OnceLock};

use pymode_abi::names;
use wasmtime::{Extern, Func, FuncType, Global, GlobalType, Instance, Mutability, StoreContextMut, Table, Val, ValType};

use crate::admit::Admitted;
use crate::dtors::{AtExit, Destructors};
use crate::error::{OpenErrorKind, SymbolTypeMismatch, TypeMismatchKind, boxed, describe};
use crate::imports::Plan;
use crate::lazy::LazyBinding;
use crate::registry::Storage;
use crate::symbol::{Symbol, SymbolMap, TableSlot};
use crate::table::Slots;

/// What instantiation needs of the loader besides the library itself.
pub(crate) struct Target<'a> {
    /// The main module's table.
    pub(crate) table: Table,
    pub(crate) slots: &'a mut Slots,
    pub(crate) at_exit: &'a mut AtExit,
    /// The fuel budget for the start function and the init functions together.
    pub(crate) init_fuel: Option<u64>,
    /// The FFI host functions for `pymode.ffi_*` imports.
    pub(crate) ffi: &'a mut crate::ffi::Ffi,
}

/// An instantiated, initialized library, ready to register.
pub(crate) struct Instantiated {
    pub(crate) instance: Instance,
    /// Its exports as symbols, data addresses made absolute.
    pub(crate) symbols: SymbolMap,
    pub(crate) lazy: Vec<Arc<LazyBinding>>,
    pub(crate) dtors: Option<Arc<Destructors>>,
}

/// A GOT entry of the module's own, filled after instantiation.
struct SelfGot {
    global: Global,
    func: bool,
    name: String,
}

/// The externs for a module's imports, and what is finished after instantiation.
struct Externs {
    externs: Vec<Extern>,
    self_got: Vec<SelfGot>,
    /// Cells of self-forwarding stubs, set to the export of that name.
    forwards: Vec<(Arc<OnceLock<Func>>, String)>,
    lazy: Vec<Arc<LazyBinding>>,
    dtors: Option<Arc<Destructors>>,
}

/// `Some(budget)` if `e` is the out-of-fuel trap and an init budget is configured.
fn out_of_fuel(e: &wasmtime::Error, budget: Option<u64>) -> Option<u64> {
    budget.filter(|_| e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel))
}

/// Names that are the loader's business, not symbols other modules may bind to.
fn is_internal_export(name: &str) -> bool {
    matches!(name, names::APPLY_DATA_RELOCS | names::CALL_CTORS | names::APPLY_GLOBAL_RELOCS)
}

/// Instantiates `admitted` with `plans` in `storage` and initializes it. Table slots made
/// for its own functions (GOT.func entries) are added to `storage`, so that whoever returns
/// the storage returns them too. `library` names it in stub traps.
///
/// # Errors
/// Instantiation (link error, trap in the start function), a trap in an init function, fuel
/// running out, an own GOT entry whose export has the wrong kind, or a store failure.
pub(crate) fn instantiate<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    target: Target<'_>,
    admitted: &Admitted,
    plans: Vec<Plan>,
    storage: &mut Storage,
    library: &str,
) -> Result<Instantiated, OpenErrorKind> {
    // A failure to set the fuel aside fails the load like a failed instantiation.
    let fuel = begin_init_fuel(store, target.init_fuel)?;
    let result = instantiate_in_bracket(store, target, admitted, plans, storage, library);
    end_init_fuel(store, fuel);
    result
}

fn instantiate_in_bracket<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    target: Target<'_>,
    admitted: &Admitted,
    plans: Vec<Plan>,
    storage: &mut Storage,
    library: &str,
) -> Result<Instantiated, OpenErrorKind> {
    let Target { table, slots, at_exit, init_fuel, ffi } = target;
    let externs = make_externs(store, slots, at_exit, ffi, plans, storage, library)?;
    let instance = Instance::new(&mut *store, &admitted.module, &externs.externs).map_err(|e| match out_of_fuel(&e, init_fuel) {
        Some(fuel) => OpenErrorKind::InitOutOfFuel { function: "start", fuel },
        None => OpenErrorKind::Instantiate(boxed(e)),
    })?;
    for (target, name) in externs.forwards {
        if let Some(f) = instance.get_func(&mut *store, &name) {
            // A fresh cell, set once: cannot already hold a value.
            let _ = target.set(f);
        }
    }
    // The elem segments put the module's address-taken functions in its own range: those
    // slots are their canonical ones (DESIGN §5.1).
    slots.record_range(&mut *store, &table, storage.table_base, storage.table_size);
    for got in externs.self_got {
        fill_own_got(store, &table, slots, &instance, storage, got)?;
    }
    for function in [names::APPLY_DATA_RELOCS, names::CALL_CTORS] {
        if let Some(f) = instance.get_func(&mut *store, function) {
            let typed = f.typed::<(), ()>(&*store).map_err(|e| OpenErrorKind::Init { function, source: boxed(e) })?;
            typed.call(&mut *store, ()).map_err(|e| match out_of_fuel(&e, init_fuel) {
                Some(fuel) => OpenErrorKind::InitOutOfFuel { function, fuel },
                None => OpenErrorKind::Init { function, source: boxed(e) },
            })?;
        }
    }
    let symbols = exported_symbols(store, &instance, storage.block.base);
    Ok(Instantiated { instance, symbols, lazy: externs.lazy, dtors: externs.dtors })
}

/// One extern per plan, in import order.
fn make_externs<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    slots: &mut Slots,
    at_exit: &mut AtExit,
    ffi: &mut crate::ffi::Ffi,
    plans: Vec<Plan>,
    storage: &Storage,
    library: &str,
) -> Result<Externs, OpenErrorKind> {
    let store_err = |e: wasmtime::Error| OpenErrorKind::Store(boxed(e));
    let const_i32 = GlobalType::new(ValType::I32, Mutability::Const);
    let var_i32 = GlobalType::new(ValType::I32, Mutability::Var);
    let mut out =
        Externs { externs: Vec::with_capacity(plans.len()), self_got: Vec::new(), forwards: Vec::new(), lazy: Vec::new(), dtors: None };
    for plan in plans {
        let ext: Extern = match plan {
            Plan::Ready(e) => e,
            Plan::MemoryBase => Global::new(&mut *store, const_i32.clone(), Val::I32(storage.block.base as i32)).map_err(store_err)?.into(),
            Plan::TableBase => Global::new(&mut *store, const_i32.clone(), Val::I32(storage.table_base as i32)).map_err(store_err)?.into(),
            Plan::Got(address) => Global::new(&mut *store, var_i32.clone(), Val::I32(address.raw() as i32)).map_err(store_err)?.into(),
            // Allocation resolved them all; an unresolved one would read as weak.
            Plan::GotExternal { .. } => Global::new(&mut *store, var_i32.clone(), Val::I32(0)).map_err(store_err)?.into(),
            Plan::GotSelf { func, name } => {
                let global = Global::new(&mut *store, var_i32.clone(), Val::I32(0)).map_err(store_err)?;
                out.self_got.push(SelfGot { global, func, name });
                global.into()
            }
            Plan::WeakStub { ty, name } => weak_stub(store, ty, &name, library).into(),
            Plan::AtExit { name } => {
                let dtors = out.dtors.get_or_insert_with(|| at_exit.new_list());
                at_exit.registration_stub(store, slots, &name, dtors).map_err(store_err)?.into()
            }
            Plan::Ffi { name } => match ffi.func(&mut *store, name) {
                Some(f) => f.into(),
                // The planner only makes this plan for the names `func` knows.
                None => return Err(OpenErrorKind::Store(format!("no FFI host function `{name}`").into())),
            },
            Plan::Lazy { ty, name } => {
                let binding = Arc::new(LazyBinding::new(name, ty));
                let stub = binding.stub(&mut *store, library);
                out.lazy.push(binding);
                stub.into()
            }
            Plan::SelfForward { ty, name } => {
                let (stub, cell) = self_forward_stub(store, ty, &name, library);
                out.forwards.push((cell, name));
                stub.into()
            }
        };
        out.externs.push(ext);
    }
    Ok(out)
}

/// A stub for a weak undefined function: it traps naming the symbol.
fn weak_stub<T: 'static>(store: &mut StoreContextMut<'_, T>, ty: FuncType, name: &str, library: &str) -> Func {
    let msg = format!("called weak undefined symbol `{name}` (imported by {library})");
    Func::new(&mut *store, ty, move |_, _, _| Err(wasmtime::Error::msg(msg.clone())))
}

/// A stub that forwards to the module's own export `name` once the cell holds it.
fn self_forward_stub<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    ty: FuncType,
    name: &str,
    library: &str,
) -> (Func, Arc<OnceLock<Func>>) {
    let target: Arc<OnceLock<Func>> = Arc::default();
    let cell = Arc::clone(&target);
    let msg = format!("`{name}` of {library} called before the module was instantiated");
    let stub = Func::new(&mut *store, ty, move |mut caller, params, results| match cell.get() {
        Some(f) => f.call(&mut caller, params, results),
        None => Err(wasmtime::Error::msg(msg.clone())),
    });
    (stub, target)
}

/// Sets one of the module's own GOT entries from its export: a function's canonical slot
/// (a new one is added to `storage`), a data symbol's absolute address.
fn fill_own_got<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    table: &Table,
    slots: &mut Slots,
    instance: &Instance,
    storage: &mut Storage,
    got: SelfGot,
) -> Result<(), OpenErrorKind> {
    let SelfGot { global, func, name } = got;
    let module = if func { names::GOT_FUNC } else { names::GOT_MEM };
    let mismatch = |kind| OpenErrorKind::TypeMismatch(vec![SymbolTypeMismatch { module: module.to_owned(), name: name.clone(), kind }]);
    let value = match instance.get_export(&mut *store, &name) {
        Some(Extern::Func(f)) if func => {
            let (slot, new) = slots.slot_for(&mut *store, table, &f).map_err(OpenErrorKind::Store)?;
            if new {
                storage.extra_slots.push(slot);
            }
            let TableSlot(slot) = slot;
            slot
        }
        Some(Extern::Global(eg)) if !func => match eg.get(&mut *store) {
            // Exported data addresses are relative to __memory_base.
            Val::I32(v) => (v as u32).wrapping_add(storage.block.base),
            _ => return Err(mismatch(TypeMismatchKind::OwnExportNotI32Global)),
        },
        _ => return Err(mismatch(TypeMismatchKind::OwnExportWrongKind)),
    };
    global.set(&mut *store, Val::I32(value as i32)).map_err(|e| OpenErrorKind::Store(boxed(e)))
}

/// The module's exports as symbols: functions, and immutable i32 globals as data addresses
/// (relative to `memory_base` in the module, absolute here).
fn exported_symbols<T: 'static>(store: &mut StoreContextMut<'_, T>, instance: &Instance, memory_base: u32) -> SymbolMap {
    let mut symbols = SymbolMap::default();
    let exports: Vec<(String, Extern)> = instance.exports(&mut *store).map(|e| (e.name().to_owned(), e.into_extern())).collect();
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
                    symbols.insert(name, Symbol::Data((v as u32).wrapping_add(memory_base)));
                }
            }
            _ => {}
        }
    }
    symbols
}

/// With an init fuel budget: sets the store's fuel aside and gives the library the budget.
/// Returns `(saved, budget)` for [`end_init_fuel`].
fn begin_init_fuel<T: 'static>(store: &mut StoreContextMut<'_, T>, budget: Option<u64>) -> Result<Option<(u64, u64)>, OpenErrorKind> {
    let Some(budget) = budget else { return Ok(None) };
    let saved = store.get_fuel().map_err(|e| OpenErrorKind::Store(boxed(e)))?;
    store.set_fuel(budget).map_err(|e| OpenErrorKind::Store(boxed(e)))?;
    Ok(Some((saved, budget)))
}

/// Gives the store its fuel back, less what the library's initializers used, so that a host
/// metering the guest still pays for them.
fn end_init_fuel<T: 'static>(store: &mut StoreContextMut<'_, T>, fuel: Option<(u64, u64)>) {
    let Some((saved, budget)) = fuel else { return };
    let used = budget.saturating_sub(store.get_fuel().unwrap_or(0));
    if let Err(e) = store.set_fuel(saved.saturating_sub(used)) {
        tracing::warn!(error = %describe(&e), "restoring the store's fuel failed");
    }
}
