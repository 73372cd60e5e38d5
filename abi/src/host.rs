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
/// module's table at `table_index` takes, when every parameter and its one result are `i32`;
/// `-1` otherwise (out of range, empty slot, other types).
///
/// For the guest's call trampoline (`pymode_call_trampoline` in `abi/c/pymode_dlfcn.c`): C extensions
/// often store a function in a slot of another type (a getter declared without its
/// `closure` parameter, a `METH_NOARGS` method without its unused argument). Native ABIs
/// ignore the extra argument; wasm's `call_indirect` traps. Knowing the arity, the guest
/// calls the function with the arguments it takes, as Emscripten's trampoline does.
pub const FN_ARITY: HostImport = HostImport { name: "fn_arity", params: &[I], results: &[I] };

/// Every host import, in the order the loader defines them.
pub const ALL: [HostImport; 6] = [DL_OPEN, DL_OPEN_FLAGS, DL_SYM, DL_CLOSE, DL_ERROR, FN_ARITY];

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
