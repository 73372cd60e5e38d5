//! Relocation kinds: the raw `R_WASM_*` type byte mapped once to what it means.
//!
//! Every consumer (the reader's bounds checks, the linker's scan and patch phases, the
//! readobj printer) asks this table instead of matching on raw numbers, so the meaning of a
//! relocation type is written down in exactly one place (Linking.md, "Relocation sections").

use std::fmt;

/// How many bytes a relocation rewrites, and in which encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchWidth {
    /// A 5-byte padded unsigned LEB128 (`varuint32`).
    Uleb5,
    /// A 5-byte padded signed LEB128 (`varint32`).
    Sleb5,
    /// A 10-byte padded unsigned LEB128 (`varuint64`).
    Uleb10,
    /// A 10-byte padded signed LEB128 (`varint64`).
    Sleb10,
    /// A little-endian `uint32`.
    I32,
    /// A little-endian `uint64`.
    I64,
}

impl PatchWidth {
    /// Bytes rewritten at the site.
    pub const fn bytes(self) -> usize {
        match self {
            PatchWidth::Uleb5 | PatchWidth::Sleb5 => 5,
            PatchWidth::Uleb10 | PatchWidth::Sleb10 => 10,
            PatchWidth::I32 => 4,
            PatchWidth::I64 => 8,
        }
    }
}

/// What the relocation's `index` field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelocTarget {
    /// A function symbol; the value is its function index.
    FunctionIndex,
    /// A function symbol; the value is its slot in the indirect function table.
    TableSlot,
    /// A data symbol; the value is its address (plus addend).
    MemoryAddress,
    /// A type index (not a symbol).
    TypeIndex,
    /// A global symbol; the value is its global index.
    GlobalIndex,
    /// A function symbol; the value is its body's offset in the code section (debug info).
    FunctionOffset,
    /// A section symbol; the value is an offset into that section (debug info).
    SectionOffset,
    /// A tag (exception) symbol; the value is its tag index.
    TagIndex,
    /// A table symbol; the value is its table number.
    TableNumber,
}

/// What the computed value is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelocBase {
    /// An absolute value: the link decides it.
    Absolute,
    /// Relative to `__memory_base` (the `*_REL_*` memory kinds, PIC code).
    MemoryBase,
    /// Relative to `__table_base` (`TABLE_INDEX_REL_*`, PIC code).
    TableBase,
    /// Relative to `__tls_base` (`MEMORY_ADDR_TLS_*`).
    TlsBase,
    /// Relative to the address of the relocation site itself (`MEMORY_ADDR_LOCREL_I32`).
    Site,
}

/// One relocation type, as Linking.md defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // the variant names spell the R_WASM_ names
pub enum RelocKind {
    FunctionIndexLeb = 0,
    TableIndexSleb = 1,
    TableIndexI32 = 2,
    MemoryAddrLeb = 3,
    MemoryAddrSleb = 4,
    MemoryAddrI32 = 5,
    TypeIndexLeb = 6,
    GlobalIndexLeb = 7,
    FunctionOffsetI32 = 8,
    SectionOffsetI32 = 9,
    TagIndexLeb = 10,
    MemoryAddrRelSleb = 11,
    TableIndexRelSleb = 12,
    GlobalIndexI32 = 13,
    MemoryAddrLeb64 = 14,
    MemoryAddrSleb64 = 15,
    MemoryAddrI64 = 16,
    MemoryAddrRelSleb64 = 17,
    TableIndexSleb64 = 18,
    TableIndexI64 = 19,
    TableNumberLeb = 20,
    MemoryAddrTlsSleb = 21,
    FunctionOffsetI64 = 22,
    MemoryAddrLocrelI32 = 23,
    TableIndexRelSleb64 = 24,
    MemoryAddrTlsSleb64 = 25,
    FunctionIndexI32 = 26,
}

/// Everything a consumer needs to know about a [`RelocKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelocInfo {
    /// The `R_WASM_*` name, as wasm-objdump and lld print it.
    pub name: &'static str,
    /// Bytes and encoding of the patch site.
    pub width: PatchWidth,
    /// What `index` names.
    pub target: RelocTarget,
    /// What the value is relative to.
    pub base: RelocBase,
    /// Whether the entry carries an addend.
    pub has_addend: bool,
}

const fn info(name: &'static str, width: PatchWidth, target: RelocTarget, base: RelocBase, has_addend: bool) -> RelocInfo {
    RelocInfo { name, width, target, base, has_addend }
}

use PatchWidth::*;
use RelocBase::*;
use RelocTarget::*;

/// Indexed by the raw type byte.
const TABLE: [RelocInfo; 27] = [
    info("R_WASM_FUNCTION_INDEX_LEB", Uleb5, FunctionIndex, Absolute, false),
    info("R_WASM_TABLE_INDEX_SLEB", Sleb5, TableSlot, Absolute, false),
    info("R_WASM_TABLE_INDEX_I32", I32, TableSlot, Absolute, false),
    info("R_WASM_MEMORY_ADDR_LEB", Uleb5, MemoryAddress, Absolute, true),
    info("R_WASM_MEMORY_ADDR_SLEB", Sleb5, MemoryAddress, Absolute, true),
    info("R_WASM_MEMORY_ADDR_I32", I32, MemoryAddress, Absolute, true),
    info("R_WASM_TYPE_INDEX_LEB", Uleb5, TypeIndex, Absolute, false),
    info("R_WASM_GLOBAL_INDEX_LEB", Uleb5, GlobalIndex, Absolute, false),
    info("R_WASM_FUNCTION_OFFSET_I32", I32, FunctionOffset, Absolute, true),
    info("R_WASM_SECTION_OFFSET_I32", I32, SectionOffset, Absolute, true),
    info("R_WASM_TAG_INDEX_LEB", Uleb5, TagIndex, Absolute, false),
    info("R_WASM_MEMORY_ADDR_REL_SLEB", Sleb5, MemoryAddress, MemoryBase, true),
    info("R_WASM_TABLE_INDEX_REL_SLEB", Sleb5, TableSlot, TableBase, false),
    info("R_WASM_GLOBAL_INDEX_I32", I32, GlobalIndex, Absolute, false),
    info("R_WASM_MEMORY_ADDR_LEB64", Uleb10, MemoryAddress, Absolute, true),
    info("R_WASM_MEMORY_ADDR_SLEB64", Sleb10, MemoryAddress, Absolute, true),
    info("R_WASM_MEMORY_ADDR_I64", I64, MemoryAddress, Absolute, true),
    info("R_WASM_MEMORY_ADDR_REL_SLEB64", Sleb10, MemoryAddress, MemoryBase, true),
    info("R_WASM_TABLE_INDEX_SLEB64", Sleb10, TableSlot, Absolute, false),
    info("R_WASM_TABLE_INDEX_I64", I64, TableSlot, Absolute, false),
    info("R_WASM_TABLE_NUMBER_LEB", Uleb5, TableNumber, Absolute, false),
    info("R_WASM_MEMORY_ADDR_TLS_SLEB", Sleb5, MemoryAddress, TlsBase, true),
    info("R_WASM_FUNCTION_OFFSET_I64", I64, FunctionOffset, Absolute, true),
    info("R_WASM_MEMORY_ADDR_LOCREL_I32", I32, MemoryAddress, Site, true),
    info("R_WASM_TABLE_INDEX_REL_SLEB64", Sleb10, TableSlot, TableBase, false),
    info("R_WASM_MEMORY_ADDR_TLS_SLEB64", Sleb10, MemoryAddress, TlsBase, true),
    info("R_WASM_FUNCTION_INDEX_I32", I32, FunctionIndex, Absolute, false),
];

impl RelocKind {
    /// Every kind, in type-byte order.
    pub const ALL: [RelocKind; 27] = {
        use RelocKind::*;
        [
            FunctionIndexLeb,
            TableIndexSleb,
            TableIndexI32,
            MemoryAddrLeb,
            MemoryAddrSleb,
            MemoryAddrI32,
            TypeIndexLeb,
            GlobalIndexLeb,
            FunctionOffsetI32,
            SectionOffsetI32,
            TagIndexLeb,
            MemoryAddrRelSleb,
            TableIndexRelSleb,
            GlobalIndexI32,
            MemoryAddrLeb64,
            MemoryAddrSleb64,
            MemoryAddrI64,
            MemoryAddrRelSleb64,
            TableIndexSleb64,
            TableIndexI64,
            TableNumberLeb,
            MemoryAddrTlsSleb,
            FunctionOffsetI64,
            MemoryAddrLocrelI32,
            TableIndexRelSleb64,
            MemoryAddrTlsSleb64,
            FunctionIndexI32,
        ]
    };

    /// The kind for a raw type byte, or `None` for a byte Linking.md does not define.
    pub fn from_u8(raw: u8) -> Option<RelocKind> {
        Self::ALL.get(usize::from(raw)).copied()
    }

    /// The raw type byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The full description.
    pub const fn info(self) -> &'static RelocInfo {
        &TABLE[self as usize]
    }

    /// The `R_WASM_*` name.
    pub const fn name(self) -> &'static str {
        self.info().name
    }

    /// Bytes and encoding of the site.
    pub const fn width(self) -> PatchWidth {
        self.info().width
    }

    /// What `index` names.
    pub const fn target(self) -> RelocTarget {
        self.info().target
    }

    /// What the value is relative to.
    pub const fn base(self) -> RelocBase {
        self.info().base
    }

    /// Whether the entry carries an addend.
    pub const fn has_addend(self) -> bool {
        self.info().has_addend
    }

    /// Whether the addend is 64 bits wide in the entry encoding.
    pub const fn has_addend64(self) -> bool {
        self.has_addend() && matches!(self.width(), Uleb10 | Sleb10 | I64)
    }

    /// Whether `index` is a symbol index (every kind but `TYPE_INDEX_LEB`).
    pub const fn index_is_symbol(self) -> bool {
        !matches!(self.target(), TypeIndex)
    }
}

impl fmt::Display for RelocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value does not fit the site it is patched into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("value {value} does not fit a {width:?} relocation site")]
pub struct PatchOverflow {
    /// The value.
    pub value: i64,
    /// The site.
    pub width: PatchWidth,
}

impl PatchWidth {
    /// Writes `value` into `site` (exactly [`PatchWidth::bytes`] long) in this encoding,
    /// padded LEBs keeping their full width so that nothing around the site moves.
    ///
    /// # Errors
    /// [`PatchOverflow`] when the value does not fit (a negative value in an unsigned site,
    /// or more than 32 bits in a 32-bit one).
    ///
    /// # Panics
    /// If `site.len()` differs from [`PatchWidth::bytes`]: the caller sliced it wrong.
    pub fn write(self, site: &mut [u8], value: i64) -> Result<(), PatchOverflow> {
        assert_eq!(site.len(), self.bytes(), "patch site sliced to the wrong width");
        let overflow = PatchOverflow { value, width: self };
        match self {
            Uleb5 => {
                let v = u32::try_from(value).map_err(|_| overflow)?;
                write_padded_leb(site, u64::from(v));
            }
            Sleb5 => {
                // Signed 32-bit sites also accept u32 values (addresses above 2 GiB), which
                // wasm reads back as the same bit pattern.
                let v = i32::try_from(value).or_else(|_| u32::try_from(value).map(|u| u as i32)).map_err(|_| overflow)?;
                write_padded_leb(site, i64::from(v) as u64);
            }
            Uleb10 => write_padded_leb(site, u64::try_from(value).map_err(|_| overflow)?),
            Sleb10 => write_padded_leb(site, value as u64),
            I32 => {
                let v = u32::try_from(value).or_else(|_| i32::try_from(value).map(|s| s as u32)).map_err(|_| overflow)?;
                site.copy_from_slice(&v.to_le_bytes());
            }
            I64 => site.copy_from_slice(&value.to_le_bytes()),
        }
        Ok(())
    }
}

/// Fills `site` with a LEB128 of its full length: 7 bits a byte, every byte but the last with
/// the continuation bit. Sign extension falls out of taking the low bits of the two's
/// complement value, which is why one routine serves signed and unsigned sites.
fn write_padded_leb(site: &mut [u8], value: u64) {
    let last = site.len() - 1;
    for (i, byte) in site.iter_mut().enumerate() {
        let bits = ((value >> (7 * i)) & 0x7f) as u8;
        *byte = if i == last { bits } else { bits | 0x80 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_type_byte() {
        for (raw, kind) in RelocKind::ALL.iter().enumerate() {
            assert_eq!(kind.as_u8() as usize, raw);
            assert_eq!(RelocKind::from_u8(raw as u8), Some(*kind));
            assert!(kind.name().starts_with("R_WASM_"));
        }
        assert_eq!(RelocKind::from_u8(27), None);
        assert_eq!(RelocKind::MemoryAddrRelSleb.name(), "R_WASM_MEMORY_ADDR_REL_SLEB");
        assert_eq!(RelocKind::TableIndexRelSleb.base(), RelocBase::TableBase);
        assert!(!RelocKind::TypeIndexLeb.index_is_symbol());
    }

    #[test]
    fn widths_agree_with_wasmparser() {
        for kind in RelocKind::ALL {
            let theirs = wasmparser::RelocationType::try_from(kind.as_u8()).expect("known type");
            assert_eq!(theirs.extent(), kind.width().bytes(), "{kind}");
            let their_addend = !matches!(theirs.addend_kind(), wasmparser::RelocAddendKind::None);
            assert_eq!(their_addend, kind.has_addend(), "{kind}");
        }
    }

    fn read_leb(bytes: &[u8], signed: bool) -> i64 {
        let mut reader = wasmparser::BinaryReader::new(bytes, 0);
        if signed { i64::from(reader.read_var_i32().expect("valid sleb")) } else { i64::from(reader.read_var_u32().expect("valid uleb")) }
    }

    #[test]
    fn padded_lebs_round_trip() {
        for value in [0i64, 1, 63, 64, 127, 128, 0x7fff_ffff, -1, -64, -65, i32::MIN as i64] {
            let mut site = [0u8; 5];
            Sleb5.write(&mut site, value).expect("fits");
            assert_eq!(read_leb(&site, true), value);
            if value >= 0 {
                Uleb5.write(&mut site, value).expect("fits");
                assert_eq!(read_leb(&site, false), value);
            }
        }
        let mut site = [0u8; 5];
        Uleb5.write(&mut site, u32::MAX as i64).expect("fits");
        assert_eq!(read_leb(&site, false), u32::MAX as i64);
        assert!(Uleb5.write(&mut site, -1).is_err());
        assert!(Uleb5.write(&mut site, 1 << 32).is_err());
        let mut four = [0u8; 4];
        I32.write(&mut four, 0x1234_5678).expect("fits");
        assert_eq!(four, [0x78, 0x56, 0x34, 0x12]);
    }
}
