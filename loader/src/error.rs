//! Typed errors. Every load error names the library (as requested and, once known, its
//! canonical path) and the cause; wasmtime's own error type does not implement
//! `std::error::Error`, so it is carried boxed.

use std::path::PathBuf;

/// A boxed error from wasmtime (or any other source) kept as the cause of one of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Converts wasmtime's error into a boxed `std::error::Error` whose message is the whole
/// cause chain on one line (e.g. "wasm trap: wasm `unreachable` instruction executed"),
/// without the multi-line wasm backtrace context that wasmtime puts on top.
pub(crate) fn boxed(e: wasmtime::Error) -> BoxError {
    describe(&e).into()
}

/// The cause chain of a wasmtime error, one line.
pub(crate) fn describe(e: &wasmtime::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|c| c.to_string())
        .filter(|m| !m.starts_with("error while executing at wasm backtrace"))
        .map(|m| m.lines().next().unwrap_or_default().to_owned())
        .collect();
    if parts.is_empty() { e.to_string() } else { parts.join(": ") }
}

/// Why [`crate::Loader::attach`] refused a main module.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// A required export is absent.
    #[error("main module does not export `{name}` ({what}); {hint}")]
    MissingExport {
        /// The export name looked for.
        name: String,
        /// What it should be (e.g. "a memory").
        what: &'static str,
        /// How to link the main module so that it has it.
        hint: &'static str,
    },
    /// A required export exists but has the wrong kind or type.
    #[error("main module export `{name}` is not {what}; {hint}")]
    WrongExport {
        /// The export name.
        name: String,
        /// What it should be.
        what: &'static str,
        /// How to fix the link.
        hint: &'static str,
    },
    /// The table's maximum equals its size, so side modules cannot get slots.
    #[error(
        "main module table `__indirect_function_table` cannot grow (size {size}, maximum {max}); \
         link the main module with -Wl,--growable-table"
    )]
    TableNotGrowable {
        /// Current size.
        size: u64,
        /// Declared maximum.
        max: u64,
    },
    /// A configured library root cannot be canonicalized.
    #[error("library root {path}: {source}")]
    BadRoot {
        /// The root as configured.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading the main module's table failed.
    #[error("reading the main module's table: {0}")]
    Table(#[source] BoxError),
    /// [`LoaderConfig::init_fuel`](crate::LoaderConfig::init_fuel) is set but the engine
    /// does not meter fuel.
    #[error("init_fuel is set but the engine does not consume fuel; build it with Config::consume_fuel(true)")]
    FuelNotEnabled,
}

/// A failed `dl_open`: which library, and why.
///
/// Its `Display` is the host's view (the canonical host path); what the guest gets from
/// `dl_error` is [`OpenError::guest_message`], which names every library by the guest's
/// spelling of its path. Causes name paths as the guest spells them in both.
#[derive(Debug, thiserror::Error)]
#[error("{library}: {kind}")]
pub struct OpenError {
    /// The library as requested, or its canonical host path once resolved.
    pub library: String,
    /// The library as requested, or once resolved its path as the guest sees it (under the
    /// guest prefix of its root; for a root without one, the host path).
    pub guest_library: String,
    /// The cause.
    pub kind: OpenErrorKind,
}

impl OpenError {
    /// An error about a library not resolved yet: both names are what was requested.
    pub(crate) fn new(library: impl AsRef<str>, kind: OpenErrorKind) -> Self {
        let library = shown_path(library.as_ref());
        OpenError { guest_library: library.clone(), library, kind }
    }

    /// An error about a resolved library, named on the host and for the guest.
    pub(crate) fn resolved(host: &str, guest: &str, kind: OpenErrorKind) -> Self {
        OpenError { library: shown_path(host), guest_library: shown_path(guest), kind }
    }

    /// The message as the guest sees it (`dl_error`): like `Display`, with every library
    /// (this one and the NEEDED ones in the cause) named by its guest path.
    pub fn guest_message(&self) -> String {
        match &self.kind {
            OpenErrorKind::Needed(inner) => format!("{}: needed library failed: {}", self.guest_library, inner.guest_message()),
            kind => format!("{}: {kind}", self.guest_library),
        }
    }
}

/// A path as error messages show it: a guest may pass an empty or a megabyte-long one, and
/// the message (kept for `dl_error`) should stay readable and small.
pub(crate) fn shown_path(path: &str) -> String {
    const KEEP: usize = 120;
    if path.is_empty() {
        return "(empty path)".to_owned();
    }
    if path.len() <= 3 * KEEP {
        return path.to_owned();
    }
    let head_end = (0..=KEEP).rev().find(|&i| path.is_char_boundary(i)).unwrap_or(0);
    let tail_start = (path.len() - KEEP..path.len()).find(|&i| path.is_char_boundary(i)).unwrap_or(path.len());
    format!("{}...({} bytes in all)...{}", &path[..head_end], path.len(), &path[tail_start..])
}

/// The cause of an [`OpenError`].
#[derive(Debug, thiserror::Error)]
pub enum OpenErrorKind {
    /// The path resolves outside every configured library root (`..`, a symlink or an
    /// absolute path).
    #[error("path is outside the library roots ({roots})")]
    OutsideRoots {
        /// The roots, for the message.
        roots: String,
    },
    /// No file was found at the path or in any searched directory.
    #[error("not found (searched: {searched})")]
    NotFound {
        /// Where it was looked for.
        searched: String,
    },
    /// `RTLD_NOLOAD` and the library is not loaded.
    #[error("not loaded (RTLD_NOLOAD)")]
    NotLoaded,
    /// Reading the file failed.
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    /// wasmtime rejected the module (validation or compilation).
    #[error("invalid module: {0}")]
    Invalid(#[source] BoxError),
    /// The module has no `dylink.0` section.
    #[error("not a side module: no `dylink.0` section (link it with `wasm-ld --shared --experimental-pic` or pymode-ld -shared)")]
    NoDylink,
    /// The `dylink.0` section is malformed.
    #[error("bad dylink.0 section: {0}")]
    Dylink(#[from] pymode_abi::Error),
    /// The library claims more memory or table than the configured limit.
    #[error("{what} of {requested} exceeds the limit of {limit}")]
    TooLarge {
        /// "memory size" or "table size".
        what: &'static str,
        /// What the library asks for.
        requested: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Loading the library would take the loaded libraries together past a configured budget
    /// ([`LoaderConfig::max_total_memory`](crate::LoaderConfig::max_total_memory),
    /// [`LoaderConfig::max_total_table`](crate::LoaderConfig::max_total_table)).
    #[error("{what}: the library needs {requested}, {in_use} are in use, the budget is {limit}")]
    OverBudget {
        /// "memory of all libraries (bytes)" or "table slots of all libraries".
        what: &'static str,
        /// What this library asks for.
        requested: u64,
        /// What the loaded libraries hold now.
        in_use: u64,
        /// The configured budget.
        limit: u64,
    },
    /// The module defines a memory or a table of its own instead of importing the main
    /// module's: it would hold host memory outside every budget, and data the main module
    /// cannot see.
    #[error("defines its own {what}; a side module must import the main module's `env.{import}`")]
    OwnStorage {
        /// "memory" or "table".
        what: &'static str,
        /// The import it should use instead.
        import: &'static str,
    },
    /// An active data or element segment is placed outside the memory or table range the
    /// library's `dylink.0` asks for.
    #[error("{kind} segment {index} (at byte offset {file_offset:#x}) {detail}")]
    SegmentOutOfRange {
        /// "data" or "element".
        kind: &'static str,
        /// The segment's index in its section.
        index: usize,
        /// Where the segment starts in the file.
        file_offset: usize,
        /// Where it is placed and the library's range.
        detail: String,
    },
    /// Imports from modules other than `env`, `GOT.mem`, `GOT.func` (and configured ones).
    #[error("forbidden imports: {}", .0.join(", "))]
    ForbiddenImports(Vec<String>),
    /// Required symbols that no loaded module defines; all of them, in import order.
    #[error("unresolved symbols: {}", join(.0, ", "))]
    MissingSymbols(Vec<MissingSymbol>),
    /// Symbols found with the wrong kind or signature; all of them, in import order.
    #[error("symbols with the wrong type: {}", join(.0, "; "))]
    TypeMismatch(Vec<SymbolTypeMismatch>),
    /// The main module's allocator returned null or an unusable block.
    #[error("allocating {size} bytes (alignment {align}) through the main module's allocator failed{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Allocation {
        /// Bytes requested.
        size: u64,
        /// Alignment requested.
        align: u64,
        /// A trap or other detail, if any.
        detail: Option<String>,
    },
    /// The table could not grow.
    #[error("growing the table by {slots} slots failed: {source}")]
    TableGrow {
        /// Slots requested.
        slots: u64,
        /// wasmtime's error.
        source: BoxError,
    },
    /// Instantiation failed (link error or a trap in the start function).
    #[error("instantiation failed: {0}")]
    Instantiate(#[source] BoxError),
    /// `__wasm_apply_data_relocs` or `__wasm_call_ctors` trapped.
    #[error("`{function}` failed: {source}")]
    Init {
        /// The init function's name.
        function: &'static str,
        /// The trap.
        source: BoxError,
    },
    /// The start function, `__wasm_apply_data_relocs` or `__wasm_call_ctors` used up
    /// [`LoaderConfig::init_fuel`](crate::LoaderConfig::init_fuel).
    #[error("`{function}` ran out of fuel (the budget for initializing one library is {fuel})")]
    InitOutOfFuel {
        /// The function that was running: an init function's name, or "start".
        function: &'static str,
        /// The configured budget.
        fuel: u64,
    },
    /// A NEEDED library failed to load.
    #[error("needed library failed: {0}")]
    Needed(#[source] Box<OpenError>),
    /// A host-side operation on the store failed (e.g. writing a global).
    #[error("{0}")]
    Store(#[source] BoxError),
    /// The path is not valid UTF-8 or is empty.
    #[error("invalid path")]
    BadPath,
}

fn join<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(sep)
}

/// An import no loaded module defines, shaped like wasmtime's `UnknownImportError`.
/// Displayed as `module.name` (e.g. `GOT.mem.nope_data`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{module}.{name}")]
pub struct MissingSymbol {
    /// The import's module (`env`, `GOT.mem`, `GOT.func` or an extra module).
    pub module: String,
    /// The symbol's name.
    pub name: String,
    /// The type the library imports it with.
    pub ty: wasmtime::ExternType,
}

/// Compares with the `module.name` spelling, so that a list of them reads like the message.
impl PartialEq<&str> for MissingSymbol {
    fn eq(&self, other: &&str) -> bool {
        other.strip_prefix(self.module.as_str()).and_then(|rest| rest.strip_prefix('.')) == Some(self.name.as_str())
    }
}

/// An import whose definition has the wrong kind or signature.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{module}.{name}: {kind}")]
pub struct SymbolTypeMismatch {
    /// The import's module.
    pub module: String,
    /// The symbol's name.
    pub name: String,
    /// What is wrong.
    pub kind: TypeMismatchKind,
}

/// What is wrong with a [`SymbolTypeMismatch`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum TypeMismatchKind {
    /// A function defined with another signature.
    #[error("imported as {imported}, defined as {defined}")]
    Signature {
        /// The type the library imports.
        imported: wasmtime::FuncType,
        /// The type of the definition found.
        defined: wasmtime::FuncType,
    },
    /// An `env` function import that names a data symbol.
    #[error("imported as a function, defined as data")]
    DataAsFunction,
    /// A `GOT.mem` entry that names a function.
    #[error("a function used as data")]
    FunctionAsData,
    /// A `GOT.func` entry that names a data symbol.
    #[error("data used as a function")]
    DataAsFunctionAddress,
    /// A GOT import that is not a mutable i32 global.
    #[error("a GOT entry must be a mutable i32 global")]
    GotNotMutableI32,
    /// The library's own export for a `GOT.mem` entry is not an i32 global.
    #[error("export is not an i32 global")]
    OwnExportNotI32Global,
    /// The library's own export for a GOT entry is of the wrong kind.
    #[error("the module's own export has the wrong kind")]
    OwnExportWrongKind,
}

/// A failed `dl_sym` or `dl_close`.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The handle is not one `dl_open` returned, or it was closed.
    #[error("invalid handle {0}")]
    BadHandle(crate::Handle),
    /// The symbol is not defined by the handle (or its dependencies).
    #[error("symbol `{name}` not found in {library}")]
    NotFound {
        /// The symbol.
        name: String,
        /// The library (or "the global scope").
        library: String,
    },
    /// A store operation (table slot, free) failed.
    #[error("{library}: {source}")]
    Store {
        /// The library involved.
        library: String,
        /// The cause.
        source: BoxError,
    },
}
