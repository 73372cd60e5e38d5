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
//! Limits, documented rather than hidden: wasmtime cannot free an instance before its store
//! is dropped, so a closed library's compiled code and instance stay in the store (its guest
//! memory and table slots are reused).

// Load errors carry the library name and a cause; they are on the cold path, so their size
// (128 bytes) does not matter more than their readability.
#![allow(clippy::result_large_err)]
#![warn(missing_docs)]

mod attach;
pub mod cache;
pub mod config;
mod dtors;
pub mod error;
mod host_imports;
mod lazy;
mod memory;
mod open;
mod resolve;
pub mod run;
mod segments;
mod state;
mod sym;
mod table;

pub use cache::ModuleCache;
pub use config::{LibRoot, LoaderConfig};
pub use error::{AttachError, BoxError, HandleError, OpenError, OpenErrorKind};
pub use host_imports::{HasLoader, WasiHost, add_to_linker};
pub use state::{Handle, Loader, LoaderStats};
