//! Table slots: one canonical slot per function across the main module and every side
//! module (DESIGN §5.1), ranges for side modules' own `__table_base` areas, and a free list
//! so that closed libraries' slots are reused instead of growing the table forever.

use wasmtime::{AsContextMut, Func, Ref, Table};

use crate::error::{BoxError, boxed};
use crate::symbol::{FastMap, TableSlot};

/// The identity of a function: wasmtime 48's `Func::to_raw` is the address of its
/// `VMFuncRef`, which is the same for a defined function whether it is reached through an
/// export or a table element of its own instance.
pub(crate) fn func_key(store: impl AsContextMut, f: &Func) -> usize {
    f.to_raw(store) as usize
}

#[derive(Debug, Default)]
pub(crate) struct Slots {
    /// funcref identity → canonical slot.
    canonical: FastMap<usize, u32>,
    /// slot → funcref identity, to forget the canonical entry when the slot is freed.
    by_slot: FastMap<u32, usize>,
    /// Free ranges `(start, len)`, sorted by start, never adjacent.
    free: Vec<(u32, u32)>,
}

impl Slots {
    /// Records every function already in the main module's table (scanned once at attach).
    pub(crate) fn scan(&mut self, mut store: impl AsContextMut, table: &Table, start: u32, len: u32) {
        let mut store = store.as_context_mut();
        for i in start..start.saturating_add(len) {
            if let Some(Ref::Func(Some(f))) = table.get(&mut store, u64::from(i)) {
                let key = func_key(&mut store, &f);
                // The first slot of a function is its canonical one.
                if let std::collections::hash_map::Entry::Vacant(e) = self.canonical.entry(key) {
                    e.insert(i);
                    self.by_slot.insert(i, key);
                }
            }
        }
    }

    /// The canonical slot of `f`, giving it a new one the first time. Returns the slot and
    /// whether it is new (then the caller records who owns it, so it is freed with them).
    pub(crate) fn slot_for(&mut self, mut store: impl AsContextMut, table: &Table, f: &Func) -> Result<(TableSlot, bool), BoxError> {
        let mut store = store.as_context_mut();
        let key = func_key(&mut store, f);
        if let Some(&slot) = self.canonical.get(&key) {
            return Ok((TableSlot(slot), false));
        }
        let slot = self.alloc(&mut store, table, 1, 1)?;
        if let Err(e) = table.set(&mut store, u64::from(slot), Ref::Func(Some(*f))) {
            self.release(&mut store, table, slot, 1);
            return Err(boxed(e));
        }
        self.canonical.insert(key, slot);
        self.by_slot.insert(slot, key);
        Ok((TableSlot(slot), true))
    }

    /// Allocates `len` consecutive null slots starting at a multiple of `align`: first fit
    /// from the free list, else by growing the table.
    pub(crate) fn alloc(&mut self, mut store: impl AsContextMut, table: &Table, len: u32, align: u32) -> Result<u32, BoxError> {
        let align = align.max(1);
        let mut store = store.as_context_mut();
        if len == 0 {
            return u32::try_from(table.size(&store)).map_err(|e| Box::new(e) as BoxError);
        }
        for idx in 0..self.free.len() {
            let (start, flen) = self.free[idx];
            let Some(aligned) = align_up(u64::from(start), u64::from(align)) else { continue };
            let pad = aligned - u64::from(start);
            if pad + u64::from(len) <= u64::from(flen) {
                let aligned = aligned as u32; // ok: aligned < start + flen <= u32::MAX
                self.free.remove(idx);
                if pad > 0 {
                    self.insert_free(start, pad as u32); // ok: pad < flen
                }
                let tail = flen - pad as u32 - len;
                if tail > 0 {
                    self.insert_free(aligned + len, tail);
                }
                return Ok(aligned);
            }
        }
        let size = table.size(&store);
        let aligned = align_up(size, u64::from(align)).ok_or("table index overflow")?;
        let pad = aligned - size;
        let grow = pad + u64::from(len);
        if aligned + u64::from(len) > u64::from(u32::MAX) {
            return Err("table would exceed 2^32 slots".into());
        }
        table.grow(&mut store, grow, Ref::Func(None)).map_err(boxed)?;
        if pad > 0 {
            self.insert_free(size as u32, pad as u32); // ok: checked against u32::MAX above
        }
        Ok(aligned as u32) // ok: checked against u32::MAX above
    }

    /// Records the canonical slots a side module's elem segments filled in its own range.
    pub(crate) fn record_range(&mut self, store: impl AsContextMut, table: &Table, start: u32, len: u32) {
        self.scan(store, table, start, len);
    }

    /// Nulls `len` slots from `start`, forgets the functions they held and returns them to
    /// the free list.
    pub(crate) fn release(&mut self, mut store: impl AsContextMut, table: &Table, start: u32, len: u32) {
        if len == 0 {
            return;
        }
        let mut store = store.as_context_mut();
        for i in start..start.saturating_add(len) {
            if let Some(key) = self.by_slot.remove(&i) {
                self.canonical.remove(&key);
            }
        }
        // Nulling keeps a stale function pointer from calling into an unloaded library;
        // the range was handed out by `alloc`, so it is in bounds.
        let _ = table.fill(&mut store, u64::from(start), Ref::Func(None), u64::from(len));
        self.insert_free(start, len);
    }

    fn insert_free(&mut self, start: u32, len: u32) {
        let pos = self.free.partition_point(|&(s, _)| s < start);
        self.free.insert(pos, (start, len));
        // Merge with the neighbours so that a large request can reuse several freed ranges.
        if pos + 1 < self.free.len() {
            let (s, l) = self.free[pos];
            let (ns, nl) = self.free[pos + 1];
            if s + l == ns {
                self.free[pos] = (s, l + nl);
                self.free.remove(pos + 1);
            }
        }
        if pos > 0 {
            let (ps, pl) = self.free[pos - 1];
            let (s, l) = self.free[pos];
            if ps + pl == s {
                self.free[pos - 1] = (ps, pl + l);
                self.free.remove(pos);
            }
        }
    }

    /// Total free slots (for tests and statistics).
    pub(crate) fn free_slots(&self) -> u64 {
        self.free.iter().map(|&(_, l)| u64::from(l)).sum()
    }
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    Some(v.checked_add(mask)? & !mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_list_merges_and_first_fits() {
        let mut s = Slots::default();
        s.insert_free(10, 2);
        s.insert_free(14, 2);
        s.insert_free(12, 2);
        assert_eq!(s.free, vec![(10, 6)]);
        s.insert_free(2, 1);
        assert_eq!(s.free, vec![(2, 1), (10, 6)]);
        assert_eq!(s.free_slots(), 7);
    }

    #[test]
    fn align_up_works() {
        assert_eq!(align_up(5, 4), Some(8));
        assert_eq!(align_up(8, 4), Some(8));
        assert_eq!(align_up(0, 1), Some(0));
        assert_eq!(align_up(u64::MAX, 2), None);
    }
}
