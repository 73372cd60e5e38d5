//! The WebAssembly features PyMode modules use: what `zig cc -target wasm32-wasi` emits by
//! default (its `lime1` CPU: bulk-memory-opt, call-indirect-overlong, extended-const,
//! multivalue, mutable-globals, nontrapping-fptoint, sign-ext), plus floats; and the names of
//! the features an object can add (`-msimd128`, ...). The linker validates its output against
//! this set plus what its objects' `target_features` sections declare, so a side module needs
//! more than a host configured for zig's output provides only when its objects asked for it.

use wasmparser::WasmFeatures;

/// The feature set of zig's wasm32-wasi objects and of every module `pymode-ld` writes.
pub fn wasm_features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY_OPT
        | WasmFeatures::CALL_INDIRECT_OVERLONG
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::FLOATS
}

/// The validator features that an object's `target_features` entry `name` (LLVM's feature
/// name, as `-m<name>` enables it) allows in the code, or `None` for a name PyMode does not
/// know. `memory64` is known but never allowed: side modules share a 32-bit memory.
pub fn by_llvm_name(name: &str) -> Option<WasmFeatures> {
    Some(match name {
        "mutable-globals" => WasmFeatures::MUTABLE_GLOBAL,
        "nontrapping-fptoint" => WasmFeatures::SATURATING_FLOAT_TO_INT,
        "sign-ext" => WasmFeatures::SIGN_EXTENSION,
        "multivalue" => WasmFeatures::MULTI_VALUE,
        "bulk-memory-opt" => WasmFeatures::BULK_MEMORY_OPT,
        "call-indirect-overlong" => WasmFeatures::CALL_INDIRECT_OVERLONG,
        "extended-const" => WasmFeatures::EXTENDED_CONST,
        "bulk-memory" => WasmFeatures::BULK_MEMORY,
        "reference-types" => WasmFeatures::REFERENCE_TYPES,
        "simd128" => WasmFeatures::SIMD,
        "relaxed-simd" => WasmFeatures::SIMD | WasmFeatures::RELAXED_SIMD,
        "atomics" => WasmFeatures::THREADS,
        "tail-call" => WasmFeatures::TAIL_CALL,
        "multimemory" => WasmFeatures::MULTI_MEMORY,
        "wide-arithmetic" => WasmFeatures::WIDE_ARITHMETIC,
        // LLVM still emits the legacy (phase 1) instructions unless told otherwise.
        "exception-handling" => WasmFeatures::EXCEPTIONS | WasmFeatures::LEGACY_EXCEPTIONS,
        "gc" => WasmFeatures::GC | WasmFeatures::FUNCTION_REFERENCES | WasmFeatures::REFERENCE_TYPES,
        "memory64" => WasmFeatures::empty(),
        _ => return None,
    })
}
