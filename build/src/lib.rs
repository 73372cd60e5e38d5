//! `pymode-build`: everything needed to build C-extension packages for PyMode's wasm32-wasi
//! CPython, as a library and as the `pymode` command.
//!
//! In the order a build uses them:
//! - [`pins`] and [`cache`]: the pinned versions and where everything lives
//!   (`$PYMODE_CACHE`);
//! - [`toolchain`]: zig and wasm-tools in a venv, verified; [`zig_tools`]: the one generator of
//!   the zig tool wrappers;
//! - [`debian`]: sources from Debian's source packages; [`staticlib`]: zlib and libyaml for
//!   wasm32-wasi; [`cpython`]: the native build Python and the wasm CPython main module;
//!   [`stdlib`]: its optional standard-library modules (`_lzma`, `_bz2`, `_sqlite3`) as side
//!   modules;
//! - [`spec`], [`sdist`], [`buildenv`], [`recipe`], [`wheel`]: a SPEC resolved to an sdist,
//!   its own build requirements in an isolated environment, its backend run under the cross
//!   configuration, a wheel; [`install`]: requirements resolved and installed into a site;
//! - [`cxx`]: libc++ and libc++abi for C++ side modules;
//! - [`stamp`]: build keys (content hashes) and stamps; [`process`]: external programs whose
//!   failures are one line; [`error`]: the error type.
//!
//! The inputs a build needs at run time (the Python build driver, the CPython build's files,
//! the recipes) are compiled in, so an installed `pymode` works outside a checkout.

#![warn(missing_docs)]

pub mod buildenv;
pub mod cache;
pub mod cpython;
pub mod cxx;
pub mod debian;
pub mod error;
pub mod install;
pub mod pins;
pub mod process;
pub mod recipe;
pub mod sdist;
pub mod spec;
pub mod stamp;
pub mod staticlib;
pub mod stdlib;
pub mod toolchain;
pub mod wheel;
pub mod zig_tools;

pub use error::{Error, Result};
