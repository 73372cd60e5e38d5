//! The WebAssembly features PyMode modules use: what `zig cc -target wasm32-wasi` emits by
//! default (its `lime1` CPU: bulk-memory-opt, call-indirect-overlong, extended-const,
//! multivalue, mutable-globals, nontrapping-fptoint, sign-ext), plus floats. The linker
//! validates its output against exactly this set, so a side module never needs more than a
//! host configured for zig's output provides.

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
