//! The names that side modules, the main module and the loader agree on
//! (tool-conventions DynamicLinking.md, plus what wasm-ld emits).

/// Module name of ordinary imports (functions, memory, table, bases).
pub const ENV: &str = "env";
/// Import module whose mutable i32 globals hold data addresses, filled by the loader.
pub const GOT_MEM: &str = "GOT.mem";
/// Import module whose mutable i32 globals hold table indices of functions.
pub const GOT_FUNC: &str = "GOT.func";

/// The shared linear memory a side module imports.
pub const MEMORY: &str = "memory";
/// The memory import of a relocatable (non-PIC) object.
pub const LINEAR_MEMORY: &str = "__linear_memory";
/// The shared indirect function table.
pub const INDIRECT_FUNCTION_TABLE: &str = "__indirect_function_table";
/// The shadow-stack pointer global, owned by the main module.
pub const STACK_POINTER: &str = "__stack_pointer";
/// Immutable i32: where the loader placed the side module's data.
pub const MEMORY_BASE: &str = "__memory_base";
/// Immutable i32: the first table slot reserved for the side module.
pub const TABLE_BASE: &str = "__table_base";
/// Thread-local storage base (threads builds).
pub const TLS_BASE: &str = "__tls_base";
/// The handle that destructors registered with `__cxa_atexit` are keyed by.
pub const DSO_HANDLE: &str = "__dso_handle";

/// Export that applies data relocations; the loader calls it first after instantiation.
pub const APPLY_DATA_RELOCS: &str = "__wasm_apply_data_relocs";
/// Export that runs the module's constructors; called after [`APPLY_DATA_RELOCS`].
pub const CALL_CTORS: &str = "__wasm_call_ctors";
/// Export that applies global relocations when a module was built without extended-const.
pub const APPLY_GLOBAL_RELOCS: &str = "__wasm_apply_global_relocs";

/// Name of the dynamic-linking custom section.
pub const DYLINK_0: &str = "dylink.0";
/// Name of the static-linking custom section of relocatable objects.
pub const LINKING: &str = "linking";
/// Name of the custom section that lists the wasm features an object or module uses.
pub const TARGET_FEATURES: &str = "target_features";
/// Prefix of relocation sections (`reloc.CODE`, `reloc.DATA`, `reloc..debug_info`).
pub const RELOC_PREFIX: &str = "reloc.";

/// The priority at which C constructors without an explicit priority run.
pub const DEFAULT_INIT_PRIORITY: u32 = 65535;
