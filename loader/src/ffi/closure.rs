//! Closures: a host function of a lowered C signature in a table slot from the closure pool;
//! called, it hands its arguments to the guest's generic dispatcher.

use pymode_abi::host::ffi as code;
use wasmtime::{Caller, Func, FuncType, Ref, TypedFunc, Val, ValType};

use super::signature::{from_slot, show_func_type, to_bytes};
use super::{Core, FfiError};
use crate::error::describe;

/// Table slots the closure pool grows by at a time.
const GROW_CHUNK: u32 = 16;

impl Core {
    /// `ffi_closure_alloc`: a reserved, empty slot.
    pub(super) fn closure_alloc<T: 'static>(&self, caller: &mut Caller<'_, T>) -> i32 {
        match self.try_closure_alloc(caller) {
            Ok(slot) => slot as i32,
            Err(e) => self.fail("ffi_closure_alloc", &e),
        }
    }

    fn try_closure_alloc<T: 'static>(&self, caller: &mut Caller<'_, T>) -> Result<u32, FfiError> {
        let mut state = self.lock();
        if state.closures.len() >= code::MAX_CLOSURES as usize {
            return Err(FfiError::TooManyClosures { max: code::MAX_CLOSURES });
        }
        let slot = match state.free.pop() {
            Some(slot) => slot,
            None => {
                // Grown slots past what the loader's own free list knows are ours alone; the
                // loader allocates its ranges from the table's current size onwards.
                let store_err = |e: wasmtime::Error| FfiError::Store { what: "growing the table", detail: describe(&e) };
                let old = self.table.grow(&mut *caller, u64::from(GROW_CHUNK), Ref::Func(None)).map_err(store_err)?;
                let old = u32::try_from(old)
                    .ok()
                    .filter(|o| o.checked_add(GROW_CHUNK).is_some())
                    .ok_or(FfiError::Store { what: "growing the table", detail: "past 2^32 slots".into() })?;
                // Lowest first out of the stack.
                state.free.extend((old + 1..old + GROW_CHUNK).rev());
                old
            }
        };
        state.closures.insert(slot, false);
        Ok(slot)
    }

    /// `ffi_closure_make`.
    pub(super) fn closure_make<T: 'static>(
        &self,
        caller: &mut Caller<'_, T>,
        slot: i32,
        trampoline: i32,
        data: i32,
        sig: i32,
        nparams: i32,
    ) -> i32 {
        match self.try_closure_make(caller, slot, trampoline, data, sig, nparams) {
            Ok(()) => code::OK,
            Err(e) => self.fail("ffi_closure_make", &e),
        }
    }

    fn try_closure_make<T: 'static>(
        &self,
        caller: &mut Caller<'_, T>,
        slot: i32,
        trampoline: i32,
        data: i32,
        sig: i32,
        nparams: i32,
    ) -> Result<(), FfiError> {
        let not_closure = FfiError::NotAClosure { slot: i64::from(slot) };
        let slot = u32::try_from(slot).map_err(|_| FfiError::NotAClosure { slot: i64::from(slot) })?;
        if !self.lock().closures.contains_key(&slot) {
            return Err(not_closure);
        }
        let (params, result) = self.signature(caller, sig, nparams)?;
        let tramp = self.func_at(caller, trampoline)?;
        let dispatch: TypedFunc<(i32, i32, i32), ()> = tramp
            .typed(&*caller)
            .map_err(|_| FfiError::BadTrampoline { index: trampoline as u32, actual: show_func_type(&tramp.ty(&*caller)) })?;
        let ty = FuncType::new(caller.engine(), params.iter().cloned(), result.clone());
        let core = self.clone();
        let closure = Func::new(&mut *caller, ty, move |mut caller: Caller<'_, T>, args: &[Val], results: &mut [Val]| {
            core.run_closure(&mut caller, &dispatch, data, args, result.as_ref(), results)
        });
        self.table
            .set(&mut *caller, u64::from(slot), Ref::Func(Some(closure)))
            .map_err(|e| FfiError::Store { what: "setting the closure's slot", detail: describe(&e) })?;
        self.lock().closures.insert(slot, true);
        Ok(())
    }

    /// A closure's body: its arguments to slots below the guest's stack pointer, a zeroed
    /// result area after them, the dispatcher called, the result read back.
    fn run_closure<T: 'static>(
        &self,
        caller: &mut Caller<'_, T>,
        dispatch: &TypedFunc<(i32, i32, i32), ()>,
        data: i32,
        args: &[Val],
        result: Option<&ValType>,
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let args_bytes = args.len() as u32 * code::SLOT_BYTES; // ok: at most MAX_PARAMS slots
        let frame = args_bytes + code::RET_BYTES;
        let sp = self.stack_pointer(caller);
        let base =
            sp.checked_sub(frame).map(|b| b & !15).ok_or_else(|| wasmtime::Error::msg("ffi closure: the guest's stack is exhausted"))?;
        let mut bytes = vec![0u8; frame as usize];
        for (slot, v) in bytes.chunks_exact_mut(8).zip(args) {
            if let Some(b) = to_bytes(v) {
                slot[..b.len()].copy_from_slice(&b);
            }
        }
        self.write(caller, "closure arguments", base, &bytes).map_err(wasmtime::Error::msg)?;
        self.set_stack_pointer(caller, base)?;
        let ret = base + args_bytes;
        let outcome = dispatch.call(&mut *caller, (data, base as i32, ret as i32));
        self.set_stack_pointer(caller, sp)?;
        outcome?;
        if let (Some(t), Some(out)) = (result, results.first_mut()) {
            let raw = self.read(caller, "closure result", ret as i32, 8).map_err(wasmtime::Error::msg)?;
            let mut slot = [0u8; 8];
            slot.copy_from_slice(&raw);
            *out = from_slot(t, &slot);
        }
        Ok(())
    }

    /// `ffi_closure_free`.
    pub(super) fn closure_free<T: 'static>(&self, caller: &mut Caller<'_, T>, slot: i32) -> i32 {
        let Some(s) = u32::try_from(slot).ok().filter(|s| self.lock().closures.contains_key(s)) else {
            return self.fail("ffi_closure_free", &FfiError::NotAClosure { slot: i64::from(slot) });
        };
        // Nulled so that a stale pointer traps instead of calling the freed closure.
        if let Err(e) = self.table.set(&mut *caller, u64::from(s), Ref::Func(None)) {
            return self.fail("ffi_closure_free", &FfiError::Store { what: "clearing the closure's slot", detail: describe(&e) });
        }
        let mut state = self.lock();
        state.closures.remove(&s);
        state.free.push(s);
        code::OK
    }
}
