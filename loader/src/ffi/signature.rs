//! Lowered signatures: the type codes the guest spells them in, whether a callee's wasm type
//! takes a call of one, values to and from the 8-byte slots the guest passes them in, and
//! how types read in messages.

use pymode_abi::host::ffi as code;
use wasmtime::{FuncType, Val, ValType};

use super::FfiError;

/// A callee's parameter and result types.
pub(super) type CalleeType = (Box<[ValType]>, Box<[ValType]>);

/// Whether a callee of these types can take a call of this lowered signature; if so, how
/// many parameters it takes and how many results it gives. Allowed besides an exact match,
/// as native C calls allow them and ctypes relies on them: extra trailing arguments (a
/// cdecl callee ignores them) and a result the call declares void (ignored).
pub(super) fn accepts(
    callee_params: &[ValType],
    callee_results: &[ValType],
    params: &[ValType],
    result: Option<&ValType>,
) -> Option<(usize, usize)> {
    let params_match = callee_params.len() <= params.len() && callee_params.iter().zip(params).all(|(a, b)| same_type(a, b));
    let results_match = match (callee_results, result) {
        ([], None) | ([_], None) => true,
        ([r], Some(want)) => same_type(r, want),
        _ => false,
    };
    (params_match && results_match).then_some((callee_params.len(), callee_results.len()))
}

/// One wasm type as the signature strings spell it.
pub(super) fn val_type(byte: u8, index: usize) -> Result<ValType, FfiError> {
    match byte {
        code::I32 => Ok(ValType::I32),
        code::I64 => Ok(ValType::I64),
        code::F32 => Ok(ValType::F32),
        code::F64 => Ok(ValType::F64),
        _ => Err(FfiError::BadTypeCode { code: byte, index }),
    }
}

/// `(i32, f64) -> i32`, for messages.
pub(super) fn show_type<'a>(params: impl Iterator<Item = &'a ValType>, result: Option<&ValType>) -> String {
    let params: Vec<String> = params.map(ToString::to_string).collect();
    match result {
        Some(r) => format!("({}) -> {r}", params.join(", ")),
        None => format!("({}) -> ()", params.join(", ")),
    }
}

pub(super) fn show_func_type(ty: &FuncType) -> String {
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    if results.len() <= 1 {
        return show_type(params.iter(), results.first());
    }
    let list = |types: &[ValType]| types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    format!("({}) -> ({})", list(&params), list(&results))
}

/// Number types compare exactly (no subtyping among them).
pub(super) fn same_type(a: &ValType, b: &ValType) -> bool {
    a.matches(b) && b.matches(a)
}

/// A value from the first bytes of an 8-byte slot, little-endian.
pub(super) fn from_slot(ty: &ValType, slot: &[u8; 8]) -> Val {
    let u64v = u64::from_le_bytes(*slot);
    match ty {
        ValType::I64 => Val::I64(u64v as i64),
        ValType::F32 => Val::F32(u64v as u32),
        ValType::F64 => Val::F64(u64v),
        // Only number types are ever parsed; i32 is the rest.
        _ => Val::I32(u64v as u32 as i32),
    }
}

/// A value's bytes as stored in a slot (4 for 32-bit types, 8 for 64-bit ones).
pub(super) fn to_bytes(v: &Val) -> Option<Vec<u8>> {
    match v {
        Val::I32(x) => Some(x.to_le_bytes().to_vec()),
        Val::I64(x) => Some(x.to_le_bytes().to_vec()),
        Val::F32(x) => Some(x.to_le_bytes().to_vec()),
        Val::F64(x) => Some(x.to_le_bytes().to_vec()),
        _ => None,
    }
}
