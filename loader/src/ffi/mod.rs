//! libffi over the host (issue 16): the `pymode.ffi_*` imports that let guest C call a
//! function of any signature through its table slot, and turn a guest function into a C
//! function pointer of any signature (a closure).
//!
//! libffi has no wasm32-wasi port: wasm code cannot build a call frame for a signature it
//! learns at run time, and cannot make new code. The host can do both: wasmtime calls a
//! [`Func`] with a slice of values after checking its type, and makes a host function of any
//! [`FuncType`]. So the guest's libffi layer (`abi/c/pymode_ffi.c`) lowers a C signature to
//! wasm types by the wasm32 C ABI and hands the values over in slots; the host checks the
//! callee's type, calls it, and writes the result back. A closure is a host function of the
//! lowered type placed in a table slot; called, it spills its arguments to the guest's
//! shadow stack and calls the guest's generic dispatcher, which runs the C callback.
//!
//! Nothing here holds the loader while the guest runs: a callback may `dlopen`, call through
//! ctypes again, or make closures. The small state (closure slots, the last error) sits
//! behind a lock taken only between guest calls.
//!
//! Bad guest arguments (pointers out of bounds, unknown type codes, a slot without a
//! function, a signature that does not match) are errors returned to the guest with a
//! message for `ffi_error`, never a panic or a trap.

use std::sync::{Arc, Mutex, MutexGuard};

use pymode_abi::host::{self, ffi as code};
use wasmtime::{AsContextMut, Caller, Func, FuncType, Global, Memory, Ref, Table, Val, ValType};

use crate::symbol::FastMap;
use signature::{CalleeType, val_type};

mod call;
mod closure;
mod signature;

/// Why an FFI call failed; the guest reads the message through `ffi_error`.
#[derive(Debug, thiserror::Error)]
pub enum FfiError {
    /// A guest pointer and length reach outside guest memory.
    #[error("{what}: {len} bytes at {ptr:#x} are outside guest memory")]
    OutOfBounds {
        /// What was read or written.
        what: &'static str,
        /// The guest address.
        ptr: u32,
        /// The byte count.
        len: u64,
    },
    /// A parameter count that is negative or too large.
    #[error("{count} parameters (at most {max})")]
    BadParamCount {
        /// The count given.
        count: i64,
        /// The limit.
        max: u32,
    },
    /// A byte of a signature string that is no wasm value type.
    #[error("unknown wasm type code {code:#04x} at position {index} of the signature")]
    BadTypeCode {
        /// The byte.
        code: u8,
        /// Its position.
        index: usize,
    },
    /// The table slot is out of range or empty.
    #[error("table index {index} holds no function")]
    NoFunction {
        /// The index given.
        index: i64,
    },
    /// The callee's wasm type is not the one the C signature lowers to.
    #[error("the function at table index {index} has wasm type {actual}, but the call's C signature lowers to {expected}")]
    Mismatch {
        /// The callee's slot.
        index: u32,
        /// Its wasm type.
        actual: String,
        /// The lowered signature.
        expected: String,
    },
    /// The callee trapped.
    #[error("the function at table index {index} trapped: {trap}")]
    Trapped {
        /// The callee's slot.
        index: u32,
        /// The trap, on one line.
        trap: String,
    },
    /// The slot given to `ffi_closure_make` / `ffi_closure_free` was not reserved by
    /// `ffi_closure_alloc`.
    #[error("table index {slot} is not a closure slot")]
    NotAClosure {
        /// The slot given.
        slot: i64,
    },
    /// The closure dispatcher has the wrong type.
    #[error("the closure trampoline at table index {index} has wasm type {actual}, not (i32, i32, i32) -> ()")]
    BadTrampoline {
        /// Its slot.
        index: u32,
        /// Its type.
        actual: String,
    },
    /// Too many closures at once.
    #[error("{max} closures are allocated already")]
    TooManyClosures {
        /// The limit.
        max: u32,
    },
    /// wasmtime refused an operation on the table or the store (e.g. the table cannot grow).
    #[error("{what}: {detail}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// wasmtime's message.
        detail: String,
    },
}

impl FfiError {
    /// The result code the guest gets for this error.
    fn code(&self) -> i32 {
        match self {
            FfiError::Mismatch { .. } => code::MISMATCH,
            FfiError::Trapped { .. } => code::TRAPPED,
            _ => code::ERROR,
        }
    }
}

/// A failed call: an error for the guest, or one that must end the guest's run (its `exit`,
/// fuel or epoch interruption), passed on as it came.
enum Failure {
    Guest(FfiError),
    Propagate(wasmtime::Error),
}

impl From<FfiError> for Failure {
    fn from(e: FfiError) -> Self {
        Failure::Guest(e)
    }
}

/// The state shared by the FFI host functions: which slots are closures, the free ones, and
/// the last error.
#[derive(Debug, Default)]
struct State {
    /// Closure slots, reserved (`false`) or holding a closure (`true`).
    closures: FastMap<u32, bool>,
    /// Slots the pool grew the table by and that no closure holds.
    free: Vec<u32>,
    last_error: Option<String>,
    /// Callees' parameter and result types by funcref identity (`Func::to_raw`, which the
    /// loader's canonical slots use too): `Func::ty` looks the type up in the engine's
    /// registry on every call. An identity is never reused while the store lives.
    types: FastMap<usize, CalleeType>,
}

/// What the FFI host functions act on: the main module's memory, table and stack pointer,
/// and the shared [`State`]. Cheap to clone; every host function holds one.
#[derive(Clone)]
pub(crate) struct Core {
    memory: Memory,
    table: Table,
    stack_pointer: Global,
    state: Arc<Mutex<State>>,
}

/// The loader's FFI: the [`Core`] and the host functions made from it for side modules
/// that import `pymode.ffi_*` (made once per store, on first use).
pub(crate) struct Ffi {
    core: Core,
    funcs: Vec<(&'static str, Func)>,
}

impl std::fmt::Debug for Ffi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ffi").field("funcs", &self.funcs.len()).finish_non_exhaustive()
    }
}

impl Ffi {
    /// The FFI of a main module with this memory, table and stack pointer.
    pub(crate) fn new(memory: Memory, table: Table, stack_pointer: Global) -> Self {
        Ffi { core: Core { memory, table, stack_pointer, state: Arc::default() }, funcs: Vec::new() }
    }

    /// A handle on the shared state, for host functions defined in a linker.
    pub(crate) fn core(&self) -> Core {
        self.core.clone()
    }

    /// The host function for the FFI import `name` (one of [`host::FFI`]), made on first
    /// use; `None` for any other name.
    pub(crate) fn func<T: 'static>(&mut self, mut store: impl AsContextMut<Data = T>, name: &str) -> Option<Func> {
        if let Some((_, f)) = self.funcs.iter().find(|(n, _)| *n == name) {
            return Some(*f);
        }
        let import = host::FFI.iter().find(|h| h.name == name)?;
        let core = self.core.clone();
        let store = store.as_context_mut();
        let f = match import.name {
            "ffi_call" => {
                Func::wrap(store, move |mut c: Caller<'_, T>, f: i32, s: i32, n: i32, a: i32, r: i32| core.call(&mut c, f, s, n, a, r))
            }
            "ffi_closure_alloc" => Func::wrap(store, move |mut c: Caller<'_, T>| core.closure_alloc(&mut c)),
            "ffi_closure_make" => Func::wrap(store, move |mut c: Caller<'_, T>, slot: i32, tramp: i32, data: i32, s: i32, n: i32| {
                core.closure_make(&mut c, slot, tramp, data, s, n)
            }),
            "ffi_closure_free" => Func::wrap(store, move |mut c: Caller<'_, T>, slot: i32| core.closure_free(&mut c, slot)),
            "ffi_error" => Func::wrap(store, move |mut c: Caller<'_, T>, buf: i32, len: i32| core.error(&mut c, buf, len)),
            _ => return None,
        };
        self.funcs.push((import.name, f));
        Some(f)
    }
}

/// Whether an import's type is the ABI's for that FFI function (all of them take and return
/// `i32`s only).
pub(crate) fn import_matches(import: &host::HostImport, ty: &FuncType) -> bool {
    ty.params().len() == import.params.len()
        && ty.results().len() == import.results.len()
        && ty.params().chain(ty.results()).all(|t| matches!(t, ValType::I32))
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the state inconsistent (plain inserts).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, what: &str, e: &FfiError) -> i32 {
        self.lock().last_error = Some(format!("{what}: {e}"));
        e.code()
    }

    fn read<T: 'static>(&self, caller: &Caller<'_, T>, what: &'static str, ptr: i32, len: u64) -> Result<Vec<u8>, FfiError> {
        let start = ptr as u32;
        let bad = || FfiError::OutOfBounds { what, ptr: start, len };
        let s = usize::try_from(start).map_err(|_| bad())?;
        let n = usize::try_from(len).map_err(|_| bad())?;
        let e = s.checked_add(n).ok_or_else(bad)?;
        self.memory.data(caller).get(s..e).map(<[u8]>::to_vec).ok_or_else(bad)
    }

    fn write<T: 'static>(&self, caller: &mut Caller<'_, T>, what: &'static str, ptr: u32, bytes: &[u8]) -> Result<(), FfiError> {
        let bad = || FfiError::OutOfBounds { what, ptr, len: bytes.len() as u64 };
        let s = usize::try_from(ptr).map_err(|_| bad())?;
        let e = s.checked_add(bytes.len()).ok_or_else(bad)?;
        self.memory.data_mut(caller).get_mut(s..e).ok_or_else(bad)?.copy_from_slice(bytes);
        Ok(())
    }

    /// A signature string of `nparams` parameters and one result code.
    fn signature<T: 'static>(&self, caller: &Caller<'_, T>, sig: i32, nparams: i32) -> Result<(Vec<ValType>, Option<ValType>), FfiError> {
        let n = u32::try_from(nparams)
            .ok()
            .filter(|n| *n <= code::MAX_PARAMS)
            .ok_or(FfiError::BadParamCount { count: i64::from(nparams), max: code::MAX_PARAMS })?;
        let bytes = self.read(caller, "signature", sig, u64::from(n) + 1)?;
        let (result, params) = bytes.split_last().ok_or(FfiError::OutOfBounds { what: "signature", ptr: sig as u32, len: 1 })?;
        let params = params.iter().enumerate().map(|(i, b)| val_type(*b, i)).collect::<Result<Vec<_>, _>>()?;
        let result = match *result {
            code::VOID => None,
            b => Some(val_type(b, params.len())?),
        };
        Ok((params, result))
    }

    fn func_at<T: 'static>(&self, caller: &mut Caller<'_, T>, index: i32) -> Result<Func, FfiError> {
        let none = FfiError::NoFunction { index: i64::from(index) };
        let i = u64::try_from(index).map_err(|_| FfiError::NoFunction { index: i64::from(index) })?;
        match self.table.get(&mut *caller, i) {
            Some(Ref::Func(Some(f))) => Ok(f),
            _ => Err(none),
        }
    }

    fn stack_pointer<T: 'static>(&self, caller: &mut Caller<'_, T>) -> u32 {
        match self.stack_pointer.get(&mut *caller) {
            Val::I32(v) => v as u32,
            // Attach checked it is a mutable i32.
            _ => 0,
        }
    }

    fn set_stack_pointer<T: 'static>(&self, caller: &mut Caller<'_, T>, sp: u32) -> wasmtime::Result<()> {
        self.stack_pointer.set(&mut *caller, Val::I32(sp as i32))
    }

    /// `ffi_error`: as `dl_error`.
    fn error<T: 'static>(&self, caller: &mut Caller<'_, T>, buf: i32, buf_len: i32) -> i32 {
        let Some(msg) = self.lock().last_error.take() else { return 0 };
        let n = msg.len().min(usize::try_from(buf_len).unwrap_or(0));
        match self.write(caller, "ffi_error", buf as u32, &msg.as_bytes()[..n]) {
            Ok(()) => n as i32, // ok: n <= buf_len, an i32
            Err(_) => {
                // Kept for a retry with a valid buffer.
                self.lock().last_error = Some(msg);
                0
            }
        }
    }

    /// Closure slots reserved or live, for tests and statistics.
    pub(crate) fn closures(&self) -> usize {
        self.lock().closures.len()
    }
}

/// Defines the [`host::FFI`] imports in `linker` for a main module that imports them
/// itself; they find the loader's FFI state through [`HasLoader`](crate::HasLoader) and
/// return [`code::ERROR`] before a loader is attached.
pub(crate) fn add_to_linker<T: crate::HasLoader + 'static>(linker: &mut wasmtime::Linker<T>) -> wasmtime::Result<()> {
    fn ffi_core<T: crate::HasLoader>(c: &mut Caller<'_, T>) -> Option<Core> {
        c.data_mut().loader_slot().as_ref().map(|l| l.ffi.core())
    }
    linker.func_wrap(host::MODULE, host::FFI_CALL.name, |mut c: Caller<'_, T>, f: i32, s: i32, n: i32, a: i32, r: i32| {
        match ffi_core(&mut c) {
            Some(core) => core.call(&mut c, f, s, n, a, r),
            None => Ok(code::ERROR),
        }
    })?;
    linker.func_wrap(host::MODULE, host::FFI_CLOSURE_ALLOC.name, |mut c: Caller<'_, T>| {
        ffi_core(&mut c).map_or(code::ERROR, |core| core.closure_alloc(&mut c))
    })?;
    linker.func_wrap(
        host::MODULE,
        host::FFI_CLOSURE_MAKE.name,
        |mut c: Caller<'_, T>, slot: i32, tramp: i32, data: i32, s: i32, n: i32| {
            ffi_core(&mut c).map_or(code::ERROR, |core| core.closure_make(&mut c, slot, tramp, data, s, n))
        },
    )?;
    linker.func_wrap(host::MODULE, host::FFI_CLOSURE_FREE.name, |mut c: Caller<'_, T>, slot: i32| {
        ffi_core(&mut c).map_or(code::ERROR, |core| core.closure_free(&mut c, slot))
    })?;
    linker.func_wrap(host::MODULE, host::FFI_ERROR.name, |mut c: Caller<'_, T>, buf: i32, len: i32| {
        ffi_core(&mut c).map_or(0, |core| core.error(&mut c, buf, len))
    })?;
    Ok(())
}
