//! The values that travel between the loader's steps: library handles, resolved symbols and
//! the addresses they get. A leaf module: every other one may use it, it uses none of them.

use rustc_hash::FxHashMap;
use wasmtime::Func;

/// The maps on the `dl_sym` path (symbol names, handles, funcref identities) use FxHash:
/// SipHash's collision resistance would only protect a library from its own export names.
pub(crate) type FastMap<K, V> = FxHashMap<K, V>;

/// A library handle as the guest sees it: what `dl_open` returns and `dl_sym` / `dl_close`
/// take. Open handles are `>= 0`; [`pymode_abi::host::DEFAULT_HANDLE`] (-1) names the global
/// scope in `dl_sym`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(i32);

impl Handle {
    /// The handle of the global scope (the main module and the RTLD_GLOBAL libraries).
    pub const DEFAULT: Handle = Handle(pymode_abi::host::DEFAULT_HANDLE);

    /// The value the guest sees (the `pymode.*` ABI's `i32`).
    pub fn raw(self) -> i32 {
        self.0
    }

    /// The handle after this one, wrapping from `i32::MAX` to 0 (never negative).
    pub(crate) fn next(self) -> Handle {
        Handle(if self.0 == i32::MAX { 0 } else { self.0 + 1 })
    }
}

impl From<i32> for Handle {
    fn from(raw: i32) -> Self {
        Handle(raw)
    }
}

impl From<Handle> for i32 {
    fn from(h: Handle) -> Self {
        h.0
    }
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An index into the main module's function table: what a function pointer is in wasm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TableSlot(pub(crate) u32);

/// A resolved symbol, before it has an address.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Symbol {
    /// A function; its address is its canonical table slot.
    Func(Func),
    /// A data symbol at this absolute address.
    Data(u32),
}

/// The address of a symbol as a module or the guest uses it: a GOT entry's value, or what
/// `dl_sym` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymbolAddress {
    /// A function's canonical table slot.
    Func(TableSlot),
    /// A data symbol's absolute address in the main memory.
    Data(u32),
    /// A weak undefined symbol: address 0, as in ELF.
    Undefined,
}

impl SymbolAddress {
    /// The `i32` the guest sees, as an unsigned number.
    pub(crate) fn raw(self) -> u32 {
        match self {
            SymbolAddress::Func(TableSlot(slot)) => slot,
            SymbolAddress::Data(addr) => addr,
            SymbolAddress::Undefined => 0,
        }
    }
}

/// Who defines a symbol: the main module or a loaded library. Decides who owns a new table
/// slot made for a function, and which library a binding holds a reference on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// The main module.
    Main,
    /// A loaded library.
    Lib(Handle),
}

/// A module's symbols by name.
pub(crate) type SymbolMap = FastMap<String, Symbol>;
