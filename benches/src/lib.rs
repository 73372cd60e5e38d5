//! Benchmarks live under `benches/benches/`; this crate carries their dependencies and the
//! WAT main module the loader benchmarks share, built from the loader tests' text
//! (`pymode_testdata::wat`).

use std::fmt;

/// The loader tests' allocator ([`pymode_testdata::wat::ALLOCATOR`]): a 16-byte header per
/// block, `free` pushes onto a list, `malloc` takes the smallest free block that fits, else
/// bumps.
pub use pymode_testdata::wat::ALLOCATOR;

/// What the loader needs of a main module, plus a data symbol: the shared exports
/// ([`pymode_testdata::wat::MAIN_EXPORTS`]) and a growable 64-slot table. It imports nothing,
/// so a benchmark instantiates it without a linker. Displays as WAT text, for `format!`.
pub const MAIN: MainWat = MainWat;

/// The type of [`MAIN`].
#[derive(Debug, Clone, Copy)]
pub struct MainWat;

impl fmt::Display for MainWat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}  (table (export \"__indirect_function_table\") 64 funcref)", pymode_testdata::wat::MAIN_EXPORTS)
    }
}
