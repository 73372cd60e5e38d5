//! Step 3: give the library its place in the main module. Canonical table slots for the
//! functions its `GOT.func` entries name (owned by their providers), the budgets for all
//! loaded libraries together, then its data block (from the main module's allocator, aligned,
//! zeroed) and its own table range. [`release`] is the inverse, for an unload or a rollback.

use pymode_abi::dylink::MemInfo;
use wasmtime::{Func, StoreContextMut, Table};

use crate::config::LoaderConfig;
use crate::error::{BoxError, OpenErrorKind};
use crate::imports::Plan;
use crate::memory;
use crate::registry::{Registry, Storage};
use crate::state::MainModule;
use crate::symbol::{Provider, Symbol, SymbolAddress, TableSlot};
use crate::table::Slots;

/// The canonical slot of `f`; a new slot is owned by the library that defines it
/// (`provider`) and freed with it.
pub(crate) fn canonical_slot<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    table: &Table,
    slots: &mut Slots,
    registry: &mut Registry,
    f: &Func,
    provider: Provider,
) -> Result<TableSlot, BoxError> {
    let (slot, new) = slots.slot_for(&mut *store, table, f)?;
    if new && let Provider::Lib(h) = provider {
        registry.add_extra_slot(h, slot);
    }
    Ok(slot)
}

/// Turns every [`Plan::GotExternal`] into a [`Plan::Got`] with its address. A function's
/// new slot belongs to its provider, not to this library, so it stays if this load fails.
pub(crate) fn got_addresses<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    table: &Table,
    slots: &mut Slots,
    registry: &mut Registry,
    plans: &mut [Plan],
) -> Result<(), OpenErrorKind> {
    for plan in plans {
        let Plan::GotExternal { found } = plan else { continue };
        let address = match found {
            Some((Symbol::Func(f), provider)) => {
                SymbolAddress::Func(canonical_slot(store, table, slots, registry, f, *provider).map_err(OpenErrorKind::Store)?)
            }
            Some((Symbol::Data(a), _)) => SymbolAddress::Data(*a),
            None => SymbolAddress::Undefined,
        };
        *plan = Plan::Got(address);
    }
    Ok(())
}

/// Refuses a library whose memory or table would take the loaded libraries together past
/// the configured budgets.
pub(crate) fn check_budgets(registry: &Registry, config: &LoaderConfig, mi: &MemInfo) -> Result<(), OpenErrorKind> {
    let (memory_in_use, table_in_use) = registry.storage_in_use();
    let checks = [
        ("memory of all libraries (bytes)", u64::from(mi.memory_size), memory_in_use, config.max_total_memory),
        ("table slots of all libraries", u64::from(mi.table_size), table_in_use, config.max_total_table),
    ];
    for (what, requested, in_use, limit) in checks {
        if in_use + requested > limit {
            return Err(OpenErrorKind::OverBudget { what, requested, in_use, limit });
        }
    }
    Ok(())
}

/// The library's data block and table range, both or neither.
pub(crate) fn allocate<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    main: &MainModule,
    slots: &mut Slots,
    mi: &MemInfo,
) -> Result<Storage, OpenErrorKind> {
    let align = mi.memory_align().unwrap_or(1);
    let block = memory::alloc_zeroed(&mut *store, &main.memory, &main.malloc, mi.memory_size, align)?;
    match slots.alloc(&mut *store, &main.table, mi.table_size, mi.table_align().unwrap_or(1)) {
        Ok(table_base) => Ok(Storage { block, table_base, table_size: mi.table_size, extra_slots: Vec::new() }),
        Err(source) => {
            free_block(store, main, block);
            Err(OpenErrorKind::TableGrow { slots: mi.table_size.into(), source })
        }
    }
}

/// Returns a library's storage: its table range and single slots are nulled and put on the
/// free list, its block goes back to the main module's `free`.
pub(crate) fn release<T: 'static>(store: &mut StoreContextMut<'_, T>, main: &MainModule, slots: &mut Slots, storage: Storage) {
    slots.release(&mut *store, &main.table, storage.table_base, storage.table_size);
    for TableSlot(s) in storage.extra_slots {
        slots.release(&mut *store, &main.table, s, 1);
    }
    free_block(store, main, storage.block);
}

fn free_block<T: 'static>(store: &mut StoreContextMut<'_, T>, main: &MainModule, block: memory::Block) {
    if let Err(e) = memory::free(&mut *store, &main.free, block) {
        tracing::warn!(error = %e, raw = block.raw, "free() of a side module's memory trapped");
    }
}
