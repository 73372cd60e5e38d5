//! # pymode-linker
//!
//! `pymode-ld` links wasm32 relocatable objects and archives built by `zig cc` into
//! `dylink.0` side modules that share the main module's memory and table.
//! `pymode-readobj` describes objects and side modules as stable text.

pub mod readobj;
