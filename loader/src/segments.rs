//! Checks that a side module's active data and element segments stay inside the memory and
//! table ranges its `dylink.0` asks for. Instantiation writes them at `__memory_base + k` and
//! `__table_base + k`; one that reached past its range would overwrite other guest memory or
//! table slots before any constructor runs, and a load that then fails could not undo it.
//!
//! Runs on a module wasmtime has already validated, so only the placement is checked here.

use wasmparser::{ConstExpr, DataKind, ElementItems, ElementKind, Operator, Parser, Payload, TypeRef};

use crate::error::OpenErrorKind;
use pymode_abi::names;

/// Where one segment wants to go, relative to the library's base.
enum Placement {
    /// `global.get base` or `global.get base; i32.const k; i32.add` (extended-const).
    Relative(u64),
    /// Anything else: an absolute address, another global.
    Other,
}

/// The offset expression's placement relative to global `base` (`None`: no such import).
fn placement(expr: &ConstExpr<'_>, base: Option<u32>) -> Placement {
    let mut ops = expr.get_operators_reader();
    let mut read = || ops.read().ok();
    match (read(), read(), read(), read()) {
        (Some(Operator::GlobalGet { global_index }), Some(Operator::End), _, _) if Some(global_index) == base => Placement::Relative(0),
        (Some(Operator::GlobalGet { global_index }), Some(Operator::I32Const { value }), Some(Operator::I32Add), Some(Operator::End))
            if Some(global_index) == base =>
        {
            // A negative addend reaches below the base: as far out of range as can be.
            u64::try_from(value).map_or(Placement::Other, Placement::Relative)
        }
        _ => Placement::Other,
    }
}

/// Refuses an active segment placed outside `[base, base + size)`.
///
/// # Errors
/// [`OpenErrorKind::SegmentOutOfRange`] naming the segment, its file offset and the range.
pub(crate) fn check(bytes: &[u8], memory_size: u32, table_size: u32) -> Result<(), OpenErrorKind> {
    let malformed = |e: wasmparser::BinaryReaderError| OpenErrorKind::Invalid(e.into());
    let (mut memory_base, mut table_base) = (None, None);
    let mut globals = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(malformed)?;
                    if let TypeRef::Global(_) = import.ty {
                        if import.module == names::ENV && import.name == names::MEMORY_BASE {
                            memory_base = Some(globals);
                        } else if import.module == names::ENV && import.name == names::TABLE_BASE {
                            table_base = Some(globals);
                        }
                        globals += 1;
                    }
                }
            }
            Payload::DataSection(reader) => {
                for (index, data) in reader.into_iter().enumerate() {
                    let data = data.map_err(malformed)?;
                    if let DataKind::Active { offset_expr, .. } = data.kind {
                        let len = data.data.len() as u64;
                        in_range("data", index, data.range.start, placement(&offset_expr, memory_base), len, memory_size)?;
                    }
                }
            }
            Payload::ElementSection(reader) => {
                for (index, elem) in reader.into_iter().enumerate() {
                    let elem = elem.map_err(malformed)?;
                    if let ElementKind::Active { offset_expr, .. } = elem.kind {
                        let len = match &elem.items {
                            ElementItems::Functions(f) => f.count(),
                            ElementItems::Expressions(_, e) => e.count(),
                        };
                        in_range("element", index, elem.range.start, placement(&offset_expr, table_base), len.into(), table_size)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn in_range(kind: &'static str, index: usize, file_offset: usize, at: Placement, len: u64, size: u32) -> Result<(), OpenErrorKind> {
    let base = if kind == "data" { names::MEMORY_BASE } else { names::TABLE_BASE };
    let fits = match at {
        Placement::Relative(k) => k + len <= u64::from(size),
        // An empty segment writes nothing, wherever it points.
        Placement::Other => len == 0,
    };
    if fits {
        return Ok(());
    }
    let unit = if kind == "data" { "bytes" } else { "table slots" };
    let detail = match at {
        Placement::Relative(k) => format!("covers `{base}` + [{k}, {}), past the {size} {unit} dylink.0 gives the library", k + len),
        Placement::Other => format!("is not placed relative to `{base}`, as a side module's must be"),
    };
    Err(OpenErrorKind::SegmentOutOfRange { kind, index, file_offset, detail })
}
