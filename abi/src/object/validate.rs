//! Cross-reference checks that need the whole file: function types, and every relocation's
//! target section, index and patch site.

use super::Object;
use crate::error::{Error, ErrorKind, Result};

pub(super) fn check(obj: &Object<'_>) -> Result<()> {
    let defined = obj.functions.iter().map(|f| (f.ty, section_start(obj, 3)));
    let imported = obj.imported_funcs.iter().map(|t| (*t, section_start(obj, 2)));
    for (function, (ty, at)) in imported.chain(defined).enumerate() {
        if ty.as_usize() >= obj.types.len() {
            let section = if function < obj.imported_funcs.len() { "import" } else { "function" };
            let function = u32::try_from(function).unwrap_or(u32::MAX);
            return Err(Error::new(
                &obj.name,
                Some(section),
                at,
                ErrorKind::FunctionTypeOutOfRange { function, index: ty.0, count: obj.types.len() },
            ));
        }
    }
    for section in &obj.relocations {
        let bad = |offset: usize, kind: ErrorKind| Error::new(&obj.name, Some(&section.name), offset, kind);
        let header = obj.section(section.section).map_or(0, |s| s.contents.start);
        // Relocations apply to an earlier section (LLVM writes them after the code, data and
        // debug sections they patch).
        let target = match obj.section(section.target) {
            Some(t) if section.target < section.section => t,
            _ => return Err(bad(header, ErrorKind::RelocationTargetSection(section.target.0))),
        };
        let len = target.contents.len();
        for r in &section.entries {
            let width = r.kind.width().bytes();
            if u64::from(r.offset) + width as u64 > len as u64 {
                return Err(bad(
                    r.entry_offset,
                    ErrorKind::RelocationOffsetOutOfRange { kind: r.kind.name(), site: u64::from(r.offset), width, len },
                ));
            }
            let (what, count) = if r.kind.index_is_symbol() { ("symbol", obj.symbols.len()) } else { ("type", obj.types.len()) };
            if r.index as usize >= count {
                return Err(bad(r.entry_offset, ErrorKind::RelocationIndexOutOfRange { kind: r.kind.name(), what, index: r.index, count }));
            }
        }
    }
    Ok(())
}

fn section_start(obj: &Object<'_>, id: u8) -> usize {
    obj.sections.iter().find(|s| s.id == id).map_or(0, |s| s.start)
}
