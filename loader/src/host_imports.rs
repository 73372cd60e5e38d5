//! The `pymode.*` host imports (DESIGN §2) on a `wasmtime::Linker`. They find the loader in
//! the store's data through [`HasLoader`], read guest strings with bounds checks, and turn
//! every failure into the ABI's error result: a bad pointer never traps or panics the host.

use pymode_abi::host::{self, rtld};
use wasmtime::{Caller, Linker};

use crate::error::{BoxError, boxed};
use crate::memory::{read_guest, write_guest};
use crate::state::Loader;
use crate::symbol::Handle;

/// Gives the host imports access to the loader inside the store's data.
///
/// The slot is `None` before [`Loader::attach`] and, briefly, while a host import runs (the
/// loader is taken out so it can call into the guest); a `dl_open` made from a side
/// module's constructor during another `dl_open` therefore fails with `-1`.
pub trait HasLoader {
    /// The loader slot.
    fn loader_slot(&mut self) -> &mut Option<Loader>;
}

/// Store data for a host that gives the guest WASI preview 1 and the loader, and nothing else:
/// what `pymode-run` uses. A host with state of its own implements [`HasLoader`] on its own
/// type instead (`examples/embed.rs` shows how).
pub struct WasiHost {
    /// WASI preview-1 state, for `wasmtime_wasi::p1::add_to_linker_sync`.
    pub wasi: wasmtime_wasi::p1::WasiP1Ctx,
    /// The loader slot: `None` until [`Loader::attach`]'s result is put here.
    pub loader: Option<Loader>,
}

impl HasLoader for WasiHost {
    fn loader_slot(&mut self) -> &mut Option<Loader> {
        &mut self.loader
    }
}

/// Runs `f` with the loader taken out of the store's data and puts it back afterwards.
fn with_loader<T: HasLoader + 'static, R>(caller: &mut Caller<'_, T>, fail: R, f: impl FnOnce(&mut Loader, &mut Caller<'_, T>) -> R) -> R {
    let Some(mut loader) = caller.data_mut().loader_slot().take() else { return fail };
    let r = f(&mut loader, caller);
    *caller.data_mut().loader_slot() = Some(loader);
    r
}

fn guest_str<T: HasLoader + 'static>(loader: &mut Loader, caller: &mut Caller<'_, T>, ptr: i32, len: i32, what: &str) -> Option<String> {
    let memory = loader.main.memory;
    let text = read_guest(&*caller, &memory, ptr, len).and_then(|b| String::from_utf8(b).ok());
    if text.is_none() {
        loader.last_error = Some(format!("{what}: invalid string (pointer {ptr:#x}, length {len}: out of bounds or not UTF-8)"));
    }
    text
}

fn open<T: HasLoader + 'static>(caller: &mut Caller<'_, T>, ptr: i32, len: i32, flags: i32) -> i32 {
    with_loader(caller, host::OPEN_FAILED, |loader, caller| {
        let Some(path) = guest_str(loader, caller, ptr, len, "dl_open") else { return host::OPEN_FAILED };
        loader.dl_open(&mut *caller, &path, flags).map_or(host::OPEN_FAILED, Handle::raw)
    })
}

/// `fn_arity`: the parameter count of the function in the main table at `index`, when its
/// parameters are all `i32` and it returns one `i32` (or nothing: then the count carries
/// [`host::FN_ARITY_NO_RESULT`]); `-1` for anything else.
fn fn_arity<T: HasLoader + 'static>(caller: &mut Caller<'_, T>, index: i32) -> i32 {
    let Some(table) = caller.data_mut().loader_slot().as_ref().map(|l| l.main.table) else { return -1 };
    let Ok(index) = u64::try_from(index) else { return -1 };
    let Some(wasmtime::Ref::Func(Some(func))) = table.get(&mut *caller, index) else { return -1 };
    let ty = func.ty(&*caller);
    let all_i32 = ty.params().all(|p| matches!(p, wasmtime::ValType::I32));
    let result_flag = match ty.results().collect::<Vec<_>>().as_slice() {
        [wasmtime::ValType::I32] => 0,
        [] => host::FN_ARITY_NO_RESULT,
        _ => return -1,
    };
    match i32::try_from(ty.params().len()) {
        Ok(count) if all_i32 && count < host::FN_ARITY_NO_RESULT => count | result_flag,
        _ => -1,
    }
}

/// Defines `pymode.dl_open`, `dl_open_flags`, `dl_sym`, `dl_close`, `dl_error` and `fn_arity`,
/// and the FFI imports (`ffi_call`, `ffi_closure_alloc`, `ffi_closure_make`,
/// `ffi_closure_free`, `ffi_error`: `pymode_abi::host::FFI`), in `linker`, for a store whose
/// data implements [`HasLoader`].
///
/// # Errors
/// The linker refused a definition (e.g. one is already defined and shadowing is off).
pub fn add_to_linker<T: HasLoader + 'static>(linker: &mut Linker<T>) -> Result<(), BoxError> {
    linker
        .func_wrap(host::MODULE, host::DL_OPEN.name, |mut caller: Caller<'_, T>, ptr: i32, len: i32| -> i32 {
            // CPython's default: RTLD_NOW | RTLD_LOCAL.
            open(&mut caller, ptr, len, rtld::NOW | rtld::LOCAL)
        })
        .map_err(boxed)?;
    linker
        .func_wrap(host::MODULE, host::DL_OPEN_FLAGS.name, |mut caller: Caller<'_, T>, ptr: i32, len: i32, flags: i32| -> i32 {
            open(&mut caller, ptr, len, flags)
        })
        .map_err(boxed)?;
    linker
        .func_wrap(host::MODULE, host::DL_SYM.name, |mut caller: Caller<'_, T>, handle: i32, ptr: i32, len: i32| -> i32 {
            with_loader(&mut caller, 0, |loader, caller| {
                let Some(name) = guest_str(loader, caller, ptr, len, "dl_sym") else { return 0 };
                loader.dl_sym(&mut *caller, handle, &name).map(|v| v as i32).unwrap_or(0)
            })
        })
        .map_err(boxed)?;
    linker
        .func_wrap(host::MODULE, host::DL_CLOSE.name, |mut caller: Caller<'_, T>, handle: i32| {
            with_loader(&mut caller, (), |loader, caller| {
                // dl_close has no result in the ABI; the error is kept for dl_error.
                let _ = loader.dl_close(&mut *caller, handle);
            })
        })
        .map_err(boxed)?;
    linker
        .func_wrap(host::MODULE, host::DL_ERROR.name, |mut caller: Caller<'_, T>, buf: i32, buf_len: i32| -> i32 {
            with_loader(&mut caller, 0, |loader, caller| {
                let Some(msg) = loader.last_error.take() else { return 0 };
                let n = msg.len().min(usize::try_from(buf_len).unwrap_or(0));
                let memory = loader.main.memory;
                if write_guest(&mut *caller, &memory, buf, &msg.as_bytes()[..n]) {
                    n as i32 // ok: n <= buf_len, an i32
                } else {
                    // Keep the message for a retry with a valid buffer.
                    loader.last_error = Some(msg);
                    0
                }
            })
        })
        .map_err(boxed)?;
    linker
        .func_wrap(host::MODULE, host::FN_ARITY.name, |mut caller: Caller<'_, T>, index: i32| -> i32 { fn_arity(&mut caller, index) })
        .map_err(boxed)?;
    crate::ffi::add_to_linker(linker).map_err(boxed)?;
    Ok(())
}
