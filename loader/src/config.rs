//! What the embedder configures: library roots, search path, allocator names, limits.

use std::path::PathBuf;

/// A directory libraries may be loaded from, optionally mapped to a guest path prefix (the
/// WASI preopen it is visible as), so that a guest path like `/lib/x.so` finds
/// `HOST/x.so`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibRoot {
    /// The directory on the host.
    pub host: PathBuf,
    /// The guest path it is mounted at (e.g. `/lib`), if any.
    pub guest: Option<String>,
}

impl LibRoot {
    /// A root with no guest mapping: requests are host paths or relative names.
    pub fn host(dir: impl Into<PathBuf>) -> Self {
        LibRoot { host: dir.into(), guest: None }
    }

    /// A root the guest sees at `guest` (a WASI preopen).
    pub fn mapped(dir: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        LibRoot { host: dir.into(), guest: Some(guest.into()) }
    }
}

/// Loader configuration. [`LoaderConfig::default`] allows nothing to be loaded until a root
/// is added.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Directories libraries may come from. A resolved path (after `..` and symlinks) must be
    /// inside one of them.
    pub roots: Vec<LibRoot>,
    /// Directories searched for a NEEDED library after its RUNTIME_PATH (host paths, also
    /// confined to the roots).
    pub search_path: Vec<PathBuf>,
    /// Name of the main module's `malloc(size) -> ptr` export.
    pub malloc: String,
    /// Name of the main module's `free(ptr)` export.
    pub free: String,
    /// Import modules a side module may use besides `env`, `GOT.mem` and `GOT.func`; their
    /// functions are resolved against the main module's exports by field name.
    pub extra_import_modules: Vec<String>,
    /// Largest `dylink.0` memory size one library may claim, in bytes.
    pub max_memory_size: u32,
    /// Largest `dylink.0` table size one library may claim, in slots.
    pub max_table_size: u32,
    /// Largest library file read, in bytes.
    pub max_file_size: u64,
    /// Budget for the `dylink.0` memory of all loaded libraries together, in bytes. A
    /// `dl_open` that would take the sum past it fails with
    /// [`OpenErrorKind::OverBudget`](crate::OpenErrorKind::OverBudget).
    pub max_total_memory: u64,
    /// Budget for the table slots held by all loaded libraries together (their own ranges
    /// and the single slots made for their functions).
    pub max_total_table: u64,
    /// Fuel for one library's start function, `__wasm_apply_data_relocs` and
    /// `__wasm_call_ctors` together. A constructor that runs out fails the `dl_open` with
    /// [`OpenErrorKind::InitOutOfFuel`](crate::OpenErrorKind::InitOutOfFuel) instead of
    /// hanging the host. Needs an engine built with `Config::consume_fuel(true)`
    /// ([`Loader::attach`](crate::Loader::attach) checks); the store's own fuel is set aside
    /// while the library initializes and given back less what the library used. `None`
    /// (the default) runs initializers unmetered.
    pub init_fuel: Option<u64>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            roots: Vec::new(),
            search_path: Vec::new(),
            malloc: "malloc".to_owned(),
            free: "free".to_owned(),
            extra_import_modules: Vec::new(),
            max_memory_size: 256 << 20,
            max_table_size: 1 << 20,
            max_file_size: 512 << 20,
            max_total_memory: 1 << 30,
            max_total_table: 1 << 22,
            init_fuel: None,
        }
    }
}

impl LoaderConfig {
    /// A configuration with the given host roots and default everything else.
    pub fn with_roots(roots: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        LoaderConfig { roots: roots.into_iter().map(LibRoot::host).collect(), ..Default::default() }
    }
}
