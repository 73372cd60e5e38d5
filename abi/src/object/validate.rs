//! Cross-reference checks that need the whole file: every relocation's target section, index
//! and patch site.

use super::Object;
use crate::error::{Error, ErrorKind, Result};

pub(super) fn check(obj: &Object<'_>) -> Result<()> {
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
                return Err(bad(
                    r.entry_offset,
                    ErrorKind::RelocationIndexOutOfRange { kind: r.kind.name(), what, index: r.index, count },
                ));
            }
        }
    }
    Ok(())
}
