//! # pymode-loader: `dl_open` / `dl_sym` for `dylink.0` side modules
//!
//! A [`Loader`] attaches to a running main-module instance (CPython's `python.wasm`) and
//! loads side modules into it: their data goes into memory allocated by the main module's
//! own `malloc`, their functions into the main module's table, with one canonical table slot
//! per function across every module (DESIGN §5). [`add_to_linker`] gives the guest the
//! `pymode.*` imports of DESIGN §2.
//!
//! ```no_run
//! use pymode_loader::{HasLoader, Loader, LoaderConfig, add_to_linker};
//! use wasmtime::{Engine, Linker, Module, Store};
//!
//! struct Host { loader: Option<Loader> }
//! impl HasLoader for Host {
//!     fn loader_slot(&mut self) -> &mut Option<Loader> { &mut self.loader }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let engine = Engine::default();
//! let mut store = Store::new(&engine, Host { loader: None });
//! let mut linker = Linker::new(&engine);
//! add_to_linker(&mut linker)?;
//! let main = Module::from_file(&engine, "python.wasm").map_err(|e| e.into_boxed_dyn_error())?;
//! let instance = linker.instantiate(&mut store, &main).map_err(|e| e.into_boxed_dyn_error())?;
//! let loader = Loader::attach(&mut store, &instance, LoaderConfig::with_roots(["lib"]))?;
//! store.data_mut().loader = Some(loader);
//! # Ok(()) }
//! ```
//!
//! [`Loader::dl_open`] runs the pipeline, one module per step, in this order: `paths`
//! (the request or a NEEDED name → a canonical host path inside a root, and how the guest
//! spells it) → `admit` (file size, `dylink.0`, the compiled module from [`cache`], no memory
//! or table of its own, `segments` inside their ranges, the import policy → an admitted
//! module) → the NEEDED libraries, through the same pipeline → `imports` (a `Plan` for every
//! import, decided before anything is allocated; every missing symbol reported at once) →
//! `allocate` (canonical slots for GOT.func entries, the budgets, a zeroed block from the
//! main module's `malloc` via `memory`, a table range from `table`) → `instantiate` (externs
//! from the plan, with `lazy` and `dtors` stubs; the module's own GOT entries;
//! `__wasm_apply_data_relocs` and `__wasm_call_ctors` inside the fuel bracket; exports) →
//! register (`registry`, the one owner of loaded libraries and their references). `open`
//! orchestrates and keeps the transaction: on a failure it alone undoes what the call did.
//! `sym` is `dl_sym` and `dl_close`; `attach` and `host_imports` are the way in; `symbol`
//! holds the values that travel between the steps, `state` the [`Loader`] itself.
//!
//! Limits, documented rather than hidden: wasmtime cannot free an instance before its store
//! is dropped, so a closed library's compiled code and instance stay in the store (its guest
//! memory and table slots are reused).

// Load errors carry the library name and a cause; they are on the cold path, so their size
// (128 bytes) does not matter more than their readability.
#![allow(clippy::result_large_err)]
#![warn(missing_docs)]

// In the order a library goes through them.
mod admit;
mod allocate;
mod attach;
pub mod cache;
pub mod config;
mod dtors;
pub mod error;
mod ffi;
mod host_imports;
mod imports;
mod instantiate;
mod lazy;
mod memory;
mod open;
mod paths;
mod registry;
mod segments;
mod socketpair;
mod state;
mod sym;
mod symbol;
mod table;
// Not a step: running a WASI main module with a loader attached (pymode-run, `pymode run`).
pub mod run;

pub use cache::{CacheError, CacheStats, ModuleCache};
pub use config::{LibRoot, LoaderConfig};
pub use error::{AttachError, BoxError, HandleError, MissingSymbol, OpenError, OpenErrorKind, SymbolTypeMismatch, TypeMismatchKind};
pub use ffi::FfiError;
pub use host_imports::{HasLoader, WasiHost, add_to_linker};
pub use socketpair::{HasSocketPairs, SocketPairs, add_socketpair_to_linker};
pub use state::{Loader, LoaderStats};
pub use symbol::Handle;
