//! `ffi_call`: a guest function of any signature called through its table slot.

use pymode_abi::host::ffi as code;
use wasmtime::{Caller, Val};

use super::signature::{CalleeType, accepts, from_slot, show_func_type, show_type, to_bytes};
use super::{Core, Failure, FfiError};
use crate::error::describe;

/// Whether an error from guest code must end the run rather than become an FFI error: the
/// guest's `exit` (`proc_exit` unwinds as an error) and the host's fuel and epoch limits.
fn must_propagate(e: &wasmtime::Error) -> bool {
    if e.downcast_ref::<wasmtime_wasi::I32Exit>().is_some() {
        return true;
    }
    matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::OutOfFuel | wasmtime::Trap::Interrupt))
}

impl Core {
    /// `ffi_call`.
    pub(super) fn call<T: 'static>(
        &self,
        caller: &mut Caller<'_, T>,
        func: i32,
        sig: i32,
        nparams: i32,
        args: i32,
        ret: i32,
    ) -> wasmtime::Result<i32> {
        match self.try_call(caller, func, sig, nparams, args, ret) {
            Ok(()) => Ok(code::OK),
            Err(Failure::Guest(e)) => Ok(self.fail("ffi_call", &e)),
            Err(Failure::Propagate(e)) => Err(e),
        }
    }

    fn try_call<T: 'static>(
        &self,
        caller: &mut Caller<'_, T>,
        func: i32,
        sig: i32,
        nparams: i32,
        args: i32,
        ret: i32,
    ) -> Result<(), Failure> {
        let (params, result) = self.signature(caller, sig, nparams)?;
        let slots = self.read(caller, "arguments", args, params.len() as u64 * u64::from(code::SLOT_BYTES))?;
        let f = self.func_at(caller, func)?;
        let index = func as u32;
        let key = f.to_raw(&mut *caller) as usize;
        let cached = self.lock().types.get(&key).map(|(p, r)| accepts(p, r, &params, result.as_ref()));
        let accepted = match cached {
            Some(accepted) => accepted,
            None => {
                let ty = f.ty(&*caller);
                let (p, r): CalleeType = (ty.params().collect(), ty.results().collect());
                let accepted = accepts(&p, &r, &params, result.as_ref());
                self.lock().types.insert(key, (p, r));
                accepted
            }
        };
        // The callee is called with the parameters it has; a result the call did not ask for
        // is dropped.
        let Some((takes, gives)) = accepted else {
            let actual = show_func_type(&f.ty(&*caller));
            return Err(FfiError::Mismatch { index, actual, expected: show_type(params.iter(), result.as_ref()) }.into());
        };
        let values: Vec<Val> =
            params.iter().zip(slots.chunks_exact(8)).take(takes).map(|(t, s)| from_slot(t, s.try_into().unwrap_or(&[0; 8]))).collect();
        let mut results = vec![Val::I32(0); gives];
        let sp = self.stack_pointer(caller);
        if let Err(e) = f.call(&mut *caller, &values, &mut results) {
            if must_propagate(&e) {
                return Err(Failure::Propagate(e));
            }
            // The callee's frames are gone; its stack-pointer updates with them.
            self.set_stack_pointer(caller, sp).map_err(Failure::Propagate)?;
            return Err(FfiError::Trapped { index, trap: describe(&e) }.into());
        }
        if let Some(bytes) = results.first().filter(|_| result.is_some()).and_then(to_bytes) {
            self.write(caller, "result", ret as u32, &bytes)?;
        }
        Ok(())
    }
}
