//! The host-import ABI: what a guest imports from module `pymode` to load side modules
//! (DESIGN §2). The guest side is `abi/c/pymode_dlfcn.h` and `abi/c/pymode_dlfcn.c`; the
//! host side is `pymode-loader`. Both are checked against these constants in tests.

use wasmparser::ValType;

/// The import module name.
pub const MODULE: &str = "pymode";

/// One host import: its name and core-wasm signature (all `i32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostImport {
    /// Field name under [`MODULE`].
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [ValType],
    /// Result types.
    pub results: &'static [ValType],
}

const I: ValType = ValType::I32;

/// `dl_open(path: i32, path_len: i32) -> i32`: a handle `>= 0`, or `-1` on error. Behaves as
/// `RTLD_NOW | RTLD_LOCAL`, CPython's default.
pub const DL_OPEN: HostImport = HostImport { name: "dl_open", params: &[I, I], results: &[I] };
/// `dl_open_flags(path: i32, path_len: i32, flags: i32) -> i32`: as [`DL_OPEN`] with `RTLD_*`
/// flags.
pub const DL_OPEN_FLAGS: HostImport = HostImport { name: "dl_open_flags", params: &[I, I, I], results: &[I] };
/// `dl_sym(handle: i32, name: i32, name_len: i32) -> i32`: a function's canonical table
/// index, a data symbol's address, or `0` when not found. `handle` may be
/// [`DEFAULT_HANDLE`].
pub const DL_SYM: HostImport = HostImport { name: "dl_sym", params: &[I, I, I], results: &[I] };
/// `dl_close(handle: i32)`: releases one reference to the handle.
pub const DL_CLOSE: HostImport = HostImport { name: "dl_close", params: &[I], results: &[] };
/// `dl_error(buf: i32, buf_len: i32) -> i32`: copies the last error message (not
/// NUL-terminated, truncated to `buf_len`) and returns the bytes written, `0` if there is
/// none. Reading the error clears it, as `dlerror` does.
pub const DL_ERROR: HostImport = HostImport { name: "dl_error", params: &[I, I], results: &[I] };

/// `fn_arity(table_index: i32) -> i32`: how many parameters the function in the main
/// module's table at `table_index` takes, when every parameter is `i32` and it returns one
/// `i32`; that count plus [`FN_ARITY_NO_RESULT`] when it returns nothing; `-1` otherwise (out
/// of range, empty slot, other types).
///
/// For the guest's call trampoline (`pymode_call_trampoline` in `abi/c/pymode_dlfcn.c`): C extensions
/// often store a function in a slot of another type (a getter declared without its
/// `closure` parameter, a `METH_NOARGS` method without its unused argument). Native ABIs
/// ignore the extra argument; wasm's `call_indirect` traps. Knowing the arity, the guest
/// calls the function with the arguments it takes, as Emscripten's trampoline does. The
/// result flag covers the other common cast: a `tp_clear` declared `void` in an `inquiry`
/// slot (kiwisolver), whose result the collector ignores anyway.
pub const FN_ARITY: HostImport = HostImport { name: "fn_arity", params: &[I], results: &[I] };

/// Added to [`FN_ARITY`]'s count for a function that returns nothing (`abi/c/pymode_dlfcn.c`
/// knows the same value).
pub const FN_ARITY_NO_RESULT: i32 = 0x100;

/// The dynamic-loading imports (what `abi/c/pymode_dlfcn.h` declares), in the order the
/// loader defines them; the FFI ones are [`FFI`].
pub const ALL: [HostImport; 6] = [DL_OPEN, DL_OPEN_FLAGS, DL_SYM, DL_CLOSE, DL_ERROR, FN_ARITY];

/// `ffi_call(func: i32, sig: i32, nparams: i32, args: i32, ret: i32) -> i32`: calls the
/// function in the main table at index `func` (a C function pointer) with `nparams` wasm
/// values and stores its result (libffi's `ffi_call` over the host, issue 16).
///
/// `sig` points to `nparams + 1` bytes: the wasm type of each parameter, then of the result
/// (the [`ffi`] codes: the wasm binary encoding's `0x7f` i32, `0x7e` i64, `0x7d` f32, `0x7c`
/// f64, and `0x40` for no result). `args` points to `nparams` slots of
/// [`ffi::SLOT_BYTES`] bytes, one value each, little-endian from the slot's first byte; the
/// result goes to the slot at `ret` the same way. The guest has already lowered the C
/// signature by the wasm32 C ABI (structs by pointer or as their one scalar, a struct result
/// through a pointer first parameter, variadic arguments in a buffer passed last). The host
/// checks the callee's wasm type against `sig` before calling. Two differences are allowed,
/// as native C calls allow them: the callee may take fewer parameters than `sig` gives (the
/// first ones, of the same types; the rest are dropped), and may return a value where `sig`
/// says none (it is dropped).
///
/// Returns [`ffi::OK`]; [`ffi::MISMATCH`] when the function's type differs (nothing is
/// called); [`ffi::TRAPPED`] when the callee trapped (the guest's stack pointer is restored);
/// [`ffi::ERROR`] for bad arguments (pointers out of bounds, unknown codes, an empty slot).
/// The message is read with [`FFI_ERROR`]. The guest's `exit` and the host's fuel or epoch
/// interruptions inside the callee are not caught: they end the call as they would anywhere.
pub const FFI_CALL: HostImport = HostImport { name: "ffi_call", params: &[I, I, I, I, I], results: &[I] };
/// `ffi_closure_alloc() -> i32`: reserves an empty table slot for a closure (libffi's
/// `ffi_closure_alloc` gives the code address before the signature is known); `-1` if the
/// table cannot grow or [`ffi::MAX_CLOSURES`] are reserved.
pub const FFI_CLOSURE_ALLOC: HostImport = HostImport { name: "ffi_closure_alloc", params: &[], results: &[I] };
/// `ffi_closure_make(slot: i32, trampoline: i32, data: i32, sig: i32, nparams: i32) -> i32`:
/// puts a host function of the wasm type `sig` (as for [`FFI_CALL`]) into the reserved
/// `slot`. Called, it writes its arguments to slots on the guest's shadow stack and calls
/// the guest function at table index `trampoline`, of type `(i32, i32, i32) -> ()`, as
/// `trampoline(data, args, ret)`; then it returns the value the guest left at `ret` (a
/// [`ffi::RET_BYTES`]-byte area, zeroed before the call). `0`, or [`ffi::ERROR`].
pub const FFI_CLOSURE_MAKE: HostImport = HostImport { name: "ffi_closure_make", params: &[I, I, I, I, I], results: &[I] };
/// `ffi_closure_free(slot: i32) -> i32`: empties a slot reserved by [`FFI_CLOSURE_ALLOC`]
/// and makes it reusable; `0`, or [`ffi::ERROR`] if the slot is not a closure's.
pub const FFI_CLOSURE_FREE: HostImport = HostImport { name: "ffi_closure_free", params: &[I], results: &[I] };
/// `ffi_error(buf: i32, buf_len: i32) -> i32`: as [`DL_ERROR`], for the last failed `ffi_*`
/// call.
pub const FFI_ERROR: HostImport = HostImport { name: "ffi_error", params: &[I, I], results: &[I] };

/// The FFI imports. A side module may import these from [`MODULE`] (the loader provides
/// them; they act only on guest memory and the guest's table), a main module too.
pub const FFI: [HostImport; 5] = [FFI_CALL, FFI_CLOSURE_ALLOC, FFI_CLOSURE_MAKE, FFI_CLOSURE_FREE, FFI_ERROR];

/// Codes and limits of the FFI imports ([`FFI_CALL`] and the closures).
pub mod ffi {
    /// A wasm `i32` in a signature string.
    pub const I32: u8 = 0x7f;
    /// A wasm `i64`.
    pub const I64: u8 = 0x7e;
    /// A wasm `f32`.
    pub const F32: u8 = 0x7d;
    /// A wasm `f64`.
    pub const F64: u8 = 0x7c;
    /// No result.
    pub const VOID: u8 = 0x40;
    /// Bytes of one argument slot.
    pub const SLOT_BYTES: u32 = 8;
    /// Bytes of a closure's result area.
    pub const RET_BYTES: u32 = 16;
    /// Most wasm parameters in one signature (wasmtime's limit for a function type).
    pub const MAX_PARAMS: u32 = 1000;
    /// Most closure slots reserved at once.
    pub const MAX_CLOSURES: u32 = 1 << 16;
    /// Success.
    pub const OK: i32 = 0;
    /// Bad arguments (message in `ffi_error`).
    pub const ERROR: i32 = -1;
    /// The callee's wasm type is not the signature's; nothing was called.
    pub const MISMATCH: i32 = -2;
    /// The callee trapped.
    pub const TRAPPED: i32 = -3;
}

/// The `dl_sym` handle that means "search every global library" (`RTLD_DEFAULT`, which is a
/// null pointer in C and cannot be a valid handle since handles are `>= 0`).
pub const DEFAULT_HANDLE: i32 = -1;

/// `dl_open` / `dl_open_flags` result on failure.
pub const OPEN_FAILED: i32 = -1;

/// `RTLD_*` flags, with the values of wasi-libc's `<dlfcn.h>` (checked by a test that
/// compiles the header with zig).
pub mod rtld {
    /// Resolve symbols on first call.
    pub const LAZY: i32 = 1;
    /// Resolve every symbol at load time.
    pub const NOW: i32 = 2;
    /// Only return a handle if the library is already loaded.
    pub const NOLOAD: i32 = 4;
    /// Never unload the library.
    pub const NODELETE: i32 = 4096;
    /// Make the library's symbols available to later loads.
    pub const GLOBAL: i32 = 256;
    /// Keep the library's symbols to itself (the default).
    pub const LOCAL: i32 = 8;
}

/// Virtual descriptors: connected socket pairs (`socket.socketpair()` in the wasm CPython,
/// asyncio's self-pipe) and aliases of real descriptors (the `dup` WASI lacks, for `mmap`).
/// WASI preview 1 can do neither, so the host wraps its WASI functions and answers for
/// descriptors of its own. A guest accepts (`sock_accept`) from [`socketpair::FACTORY_FD`]
/// and gets the first descriptor of a new connected pair (the second is the next number);
/// `sock_accept(fd, socketpair::DUP_FLAG)` on a real descriptor gives a new descriptor for
/// the same open file, which stays open until every one of them is closed.
/// Host side: `pymode_loader::add_socketpair_to_linker`; guest side:
/// `build/stdlib/pymode_socket_shim.c`, `build/stdlib/pymode_mmap_shim.c`.
pub mod socketpair {
    /// The reserved descriptor to accept a new pair from.
    pub const FACTORY_FD: u32 = VIRTUAL_FD_BASE - 1;
    /// The first virtual descriptor; pair `k` is `VIRTUAL_FD_BASE + 2k` and the next one.
    /// Far above what wasmtime-wasi hands out (it numbers its own from 3 up).
    pub const VIRTUAL_FD_BASE: u32 = 0x4000_0000;
    /// The first alias made by [`DUP_FLAG`]; socket pairs stay below it.
    pub const ALIAS_FD_BASE: u32 = 0x6000_0000;
    /// The `sock_accept` flags that ask for an alias of a descriptor: `dsync | rsync | sync`,
    /// which no socket accept asks for. Valid fdflags, so that a host without the aliases
    /// answers (wasmtime-wasi: `ENOTSOCK`) instead of trapping on an unknown flag.
    pub const DUP_FLAG: u16 = 0x02 | 0x08 | 0x10;
    /// Bytes one end holds unread before its peer's `send` returns `EAGAIN`.
    pub const MAX_BUFFERED: usize = 256 * 1024;
}
