//! # pymode-abi: the contract between `pymode-ld`, the loader and the guest
//!
//! - [`object`]: a reader for wasm32 relocatable objects (`linking`, `reloc.*`, symbols,
//!   segments) that also reads linked modules (imports, exports, `dylink.0`).
//! - [`reloc`]: the relocation kinds, raw type byte to meaning, and the padded-LEB patcher.
//! - [`dylink`]: the `dylink.0` model with our encoder and a decoder.
//! - [`features`]: the wasm feature set of zig's output and of our side modules.
//! - [`names`]: the ABI names (`__memory_base`, `GOT.mem`, ...).
//! - [`host`]: the host-import ABI of module `pymode` (`dl_open`, `dl_sym`, ...); the guest
//!   side of it is the C header and dlfcn shim under `abi/c/`.
//!
//! Malformed input never panics: every reader returns an [`Error`] naming the file, the
//! section and the byte offset.

#![warn(missing_docs)]

pub mod dylink;
pub mod error;
pub mod features;
pub mod host;
pub mod names;
pub mod object;
pub mod reloc;

pub use dylink::{Dylink0, MemInfo, SymbolFlags, write_u32 as write_uleb};
pub use error::{Error, ErrorKind, Location, Result};
pub use reloc::{PatchWidth, RelocBase, RelocKind, RelocTarget};
