//! `reloc.*` custom sections. Read by hand on wasmparser's `BinaryReader`, rather than with
//! its `RelocSectionReader`, so that an unknown relocation type is a typed error that points
//! at its byte.

use super::SectionIndex;
use crate::error::{Error, ErrorKind, Result};
use crate::reloc::RelocKind;
use wasmparser::BinaryReader;

/// One relocation entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    /// The relocation type.
    pub kind: RelocKind,
    /// The patch site, relative to the start of the target section's contents.
    pub offset: u32,
    /// A symbol index, or a type index for `R_WASM_TYPE_INDEX_LEB`.
    pub index: u32,
    /// The addend (0 for kinds without one).
    pub addend: i64,
    /// Where the entry itself is in the file, for errors.
    pub entry_offset: usize,
}

/// A `reloc.*` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelocSection {
    /// The section's own name (`reloc.CODE`).
    pub name: String,
    /// This section's position in the file.
    pub section: SectionIndex,
    /// The section whose contents the entries patch.
    pub target: SectionIndex,
    /// The entries, in file order.
    pub entries: Vec<Relocation>,
}

/// Reads the contents of the `reloc.*` section `name`, which start at `offset` in the file.
pub(super) fn read(file: &str, name: &str, contents: &[u8], offset: usize, section: SectionIndex) -> Result<RelocSection> {
    let err = |e: wasmparser::BinaryReaderError| Error::from_parser(file, Some(name), &e);
    let mut reader = BinaryReader::new(contents, offset);
    let target = SectionIndex(reader.read_var_u32().map_err(err)?);
    let count = reader.read_var_u32().map_err(err)?;
    // Each entry is at least three bytes, so a count larger than that cannot be honest; the
    // cap keeps a lying count from reserving gigabytes.
    let mut entries = Vec::with_capacity((count as usize).min(contents.len() / 3));
    for _ in 0..count {
        let entry_offset = reader.original_position();
        let raw = reader.read_u8().map_err(err)?;
        let kind =
            RelocKind::from_u8(raw).ok_or_else(|| Error::new(file, Some(name), entry_offset, ErrorKind::UnknownRelocationType(raw)))?;
        let site = reader.read_var_u32().map_err(err)?;
        let index = reader.read_var_u32().map_err(err)?;
        let addend = if kind.has_addend64() {
            reader.read_var_i64().map_err(err)?
        } else if kind.has_addend() {
            i64::from(reader.read_var_i32().map_err(err)?)
        } else {
            0
        };
        entries.push(Relocation { kind, offset: site, index, addend, entry_offset });
    }
    if !reader.eof() {
        return Err(Error::new(
            file,
            Some(name),
            reader.original_position(),
            ErrorKind::Malformed("trailing bytes after the last relocation".into()),
        ));
    }
    Ok(RelocSection { name: name.to_owned(), section, target, entries })
}
