//! Proof that a copied function body is valid in the output whenever it is valid in its
//! object, so that validating the output can skip it.
//!
//! A copied body differs from its input only at relocation sites, each a padded 5-byte LEB
//! overwritten in place ([`crate::patch`]). [`proven`] walks the input body's instructions
//! without type checking them (only their lengths and their index immediates) and checks
//! that:
//!
//! - every site is exactly an immediate of the kind its relocation names (a call's function
//!   index, `call_indirect`'s type and table, a `global.get`/`global.set` index, an
//!   `i32.const` value, a memory offset, a typed block's type), and the input's placeholder
//!   there is a 5-byte LEB too, so the output decodes into the same instructions;
//! - the new value names something of the same type as the placeholder did: a function of the
//!   same signature, the same type, a global of the same value type (and mutable when it is
//!   set), a `funcref` table;
//! - no immediate the link leaves alone names something whose index differs between the
//!   object and the output.
//!
//! Then the output body type-checks exactly as the input body does, in a module of the same
//! features. Anything the walk does not know (an instruction of a proposal it does not list,
//! `ref.func`, a data or element segment index, a second memory, an index immediate without a
//! relocation) fails the proof, and the body is validated in full. Whether the input body is
//! itself valid is not checked here, as wasm-ld does not check it: an invalid input body makes
//! an invalid output, which the runtime refuses when it compiles the module.

use crate::ids::{FileId, OutFuncIndex, OutTypeIndex};
use crate::layout::Layout;
use pymode_abi::object::{Object, TypeIndex};
use pymode_abi::reloc::RelocKind;
use wasmparser::{GlobalType, RefType};

/// A relocation site of a copied body as it was patched.
#[derive(Debug, Clone, Copy)]
pub struct PatchedSite {
    /// Offset of the site from the body's start.
    pub offset: usize,
    /// The relocation.
    pub kind: RelocKind,
    /// The value written there.
    pub value: i64,
}

/// Whether the output's copy of `body` (a defined function of `obj`, object `file`), with
/// `sites` patched (sorted by offset), is valid whenever `body` is valid in `obj`.
pub fn proven(layout: &Layout<'_>, file: FileId, obj: &Object<'_>, body: &[u8], sites: &[PatchedSite]) -> bool {
    let mut walk = Walk { bytes: body, at: 0, sites, next: 0, layout, file, obj };
    walk.body().is_some()
}

struct Walk<'w, 'l, 'a> {
    bytes: &'w [u8],
    at: usize,
    sites: &'w [PatchedSite],
    /// The first site not reached yet.
    next: usize,
    layout: &'w Layout<'l>,
    file: FileId,
    obj: &'w Object<'a>,
}

/// What follows an opcode, for the walk's dispatch table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Nothing: the numeric instructions, `end`, `drop`, ...
    Bare,
    /// One `u32` no relocation patches: a label or a local.
    Index,
    /// A memory access's alignment and offset.
    MemArg,
    /// `i32.const`.
    I32Const,
    /// Anything else: decided by [`Walk::other`].
    Other,
}

/// The shape of every one-byte opcode's immediates (prefixed and rare ones are `Other`,
/// unknown ones too, and [`Walk::other`] refuses them).
const SHAPES: [Shape; 256] = {
    let mut shapes = [Shape::Other; 256];
    let mut op = 0;
    while op < 256 {
        shapes[op] = match op {
            // unreachable, nop, else, end, return, drop, select, the numeric instructions
            // (with sign extension), ref.is_null.
            0x00 | 0x01 | 0x05 | 0x0b | 0x0f | 0x1a | 0x1b | 0x45..=0xc4 | 0xd1 => Shape::Bare,
            // br, br_if, local.get, local.set, local.tee.
            0x0c | 0x0d | 0x20..=0x22 => Shape::Index,
            0x28..=0x3e => Shape::MemArg,
            0x41 => Shape::I32Const,
            _ => Shape::Other,
        };
        op += 1;
    }
    shapes
};

/// `Some` when the proof's condition holds, so that `?` ends the walk when it does not.
fn require(condition: bool) -> Option<()> {
    condition.then_some(())
}

/// Value types a local, a block or a typed `select` may have without naming a type index.
fn plain_value_type(byte: u8) -> bool {
    matches!(byte, 0x7f | 0x7e | 0x7d | 0x7c | 0x7b | 0x70 | 0x6f)
}

impl Walk<'_, '_, '_> {
    /// `Some` when every instruction is known, every site is where it belongs, and the walk
    /// ends exactly at the body's end.
    fn body(&mut self) -> Option<()> {
        let groups = self.plain_u32()?;
        for _ in 0..groups {
            self.plain_u32()?;
            if !plain_value_type(self.byte()?) {
                return None;
            }
        }
        let bytes = self.bytes;
        // Where the next site starts; the common instructions need only compare with it.
        let mut next_site = self.sites.get(self.next).map_or(usize::MAX, |s| s.offset);
        while let Some(&op) = bytes.get(self.at) {
            self.at += 1;
            match SHAPES[op as usize] {
                Shape::Bare => {}
                Shape::Index => self.skip_leb(5)?,
                Shape::MemArg => {
                    // Bit 6 of the flags: a memory index follows (multi-memory).
                    let flags = *bytes.get(self.at)?;
                    require(flags & 0xc0 == 0)?;
                    self.at += 1;
                    if self.at == next_site {
                        self.patched_memarg_offset()?;
                        next_site = self.sites.get(self.next).map_or(usize::MAX, |s| s.offset);
                    } else {
                        self.skip_leb(5)?;
                    }
                }
                Shape::I32Const => {
                    if self.at == next_site {
                        self.patched_i32_const()?;
                        next_site = self.sites.get(self.next).map_or(usize::MAX, |s| s.offset);
                    } else {
                        self.skip_leb(5)?;
                    }
                }
                Shape::Other => {
                    self.other(op)?;
                    next_site = self.sites.get(self.next).map_or(usize::MAX, |s| s.offset);
                }
            }
            // A site inside what the instruction just read (its opcode included) is not its
            // immediate: the output would decode differently.
            if next_site < self.at {
                return None;
            }
        }
        (self.at == self.bytes.len() && self.next == self.sites.len()).then_some(())
    }

    /// Steps over a LEB of at most `max` bytes (the common one-byte case first).
    #[inline(always)]
    fn skip_leb(&mut self, max: usize) -> Option<()> {
        let first = *self.bytes.get(self.at)?;
        self.at += 1;
        if first & 0x80 == 0 {
            return Some(());
        }
        for _ in 1..max {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            if b & 0x80 == 0 {
                return Some(());
            }
        }
        None
    }

    /// The instructions the dispatch table leaves out: those with index immediates, the
    /// prefixed ones, and the unknown ones (refused).
    fn other(&mut self, op: u8) -> Option<()> {
        match op {
            0x02..=0x04 => self.block_type(),
            0x0e => {
                let targets = self.plain_u32()?;
                for _ in 0..targets {
                    self.plain_u32()?;
                }
                self.plain_u32().map(|_| ())
            }
            0x10 => self.function_index(),
            0x11 => {
                self.type_index()?;
                self.table_index()
            }
            0x1c => {
                let count = self.plain_u32()?;
                for _ in 0..count {
                    require(plain_value_type(self.byte()?))?;
                }
                Some(())
            }
            0x23 => self.global_index(false),
            0x24 => self.global_index(true),
            0x25 | 0x26 => self.table_index(),
            0x3f | 0x40 => self.memory_zero(),
            0x42 => self.plain_leb(10),
            0x43 => self.skip(4),
            0x44 => self.skip(8),
            0xd0 => {
                let heap = self.byte()?;
                require(heap == 0x70 || heap == 0x6f)
            }
            0xfc => match self.plain_u32()? {
                // The saturating truncations.
                0..=7 => Some(()),
                // memory.copy, memory.fill.
                10 => {
                    self.memory_zero()?;
                    self.memory_zero()
                }
                11 => self.memory_zero(),
                // table.copy, table.grow, table.size, table.fill.
                14 => {
                    self.table_index()?;
                    self.table_index()
                }
                15..=17 => self.table_index(),
                // memory.init, data.drop, table.init, elem.drop name segments, whose
                // indices the link changes.
                _ => None,
            },
            0xfd => self.simd(),
            // Tail calls, exceptions, ref.func, GC, atomics, and anything unknown.
            _ => None,
        }
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.at = self.at.checked_add(n).filter(|&end| end <= self.bytes.len())?;
        Some(())
    }

    /// The site at the current position, if one starts here (and is taken).
    fn site_here(&mut self) -> Option<PatchedSite> {
        let site = *self.sites.get(self.next).filter(|s| s.offset == self.at)?;
        self.next += 1;
        Some(site)
    }

    /// A LEB of at most `max` bytes; returns its value (low 64 bits) and length.
    fn leb(&mut self, max: usize) -> Option<(u64, usize)> {
        let start = self.at;
        let mut value = 0u64;
        for i in 0..max {
            let b = self.byte()?;
            if i < 10 {
                value |= u64::from(b & 0x7f) << (7 * i).min(63);
            }
            if b & 0x80 == 0 {
                return Some((value, self.at - start));
            }
        }
        None
    }

    /// A LEB immediate that no relocation patches.
    fn plain_leb(&mut self, max: usize) -> Option<()> {
        if self.sites.get(self.next).is_some_and(|s| s.offset == self.at) {
            return None;
        }
        self.leb(max).map(|_| ())
    }

    /// A `u32` immediate that no relocation patches (a count, a label, a local).
    fn plain_u32(&mut self) -> Option<u32> {
        if self.sites.get(self.next).is_some_and(|s| s.offset == self.at) {
            return None;
        }
        let (value, _) = self.leb(5)?;
        u32::try_from(value).ok()
    }

    /// A patched immediate: the placeholder must be a 5-byte LEB, as the output's is.
    fn placeholder(&mut self) -> Option<u32> {
        let (value, len) = self.leb(5)?;
        if len != 5 {
            return None;
        }
        u32::try_from(value).ok()
    }

    fn block_type(&mut self) -> Option<()> {
        let b = *self.bytes.get(self.at)?;
        if b == 0x40 || plain_value_type(b) {
            self.at += 1;
            return Some(());
        }
        // A type index: the same type only through a relocation.
        let site = self.site_here()?;
        require(site.kind == RelocKind::TypeIndexLeb)?;
        let placeholder = self.placeholder()?;
        self.same_type(placeholder, site.value)
    }

    fn type_index(&mut self) -> Option<()> {
        let site = self.site_here()?;
        require(site.kind == RelocKind::TypeIndexLeb)?;
        let placeholder = self.placeholder()?;
        self.same_type(placeholder, site.value)
    }

    fn same_type(&self, input: u32, output: i64) -> Option<()> {
        let mapped = self.layout.output_type(self.file, TypeIndex(input))?;
        require(i64::from(mapped.0) == output)
    }

    fn function_index(&mut self) -> Option<()> {
        let site = self.site_here()?;
        require(site.kind == RelocKind::FunctionIndexLeb)?;
        let placeholder = self.placeholder()?;
        let input = input_function_type(self.obj, placeholder).and_then(|t| self.layout.output_type(self.file, t))?;
        let output = output_function_type(self.layout, u32::try_from(site.value).ok()?)?;
        require(input == output)
    }

    fn table_index(&mut self) -> Option<()> {
        let input = match self.site_here() {
            Some(site) => {
                require(site.kind == RelocKind::TableNumberLeb && site.value == 0)?;
                self.placeholder()?
            }
            // An index the link leaves alone names the same table only if it is table 0.
            None => Some(self.plain_u32()?).filter(|&t| t == 0)?,
        };
        let imported = &self.obj.imported_tables;
        let ty = match imported.get(input as usize) {
            Some(t) => *t,
            None => *self.obj.tables.get((input as usize).checked_sub(imported.len())?)?,
        };
        // The output's only table is the imported funcref table, table 0.
        require(ty.element_type == RefType::FUNCREF && self.layout.imports_table)
    }

    fn global_index(&mut self, set: bool) -> Option<()> {
        let site = self.site_here()?;
        require(site.kind == RelocKind::GlobalIndexLeb)?;
        let placeholder = self.placeholder()?;
        let input = input_global_type(self.obj, placeholder)?;
        let output = output_global_type(self.layout, u32::try_from(site.value).ok()?)?;
        require(input.content_type == output.content_type && (!set || output.mutable))
    }

    /// A memory index that must be 0: the object's memory and the output's are both the one
    /// 32-bit memory.
    fn memory_zero(&mut self) -> Option<()> {
        require(self.plain_u32()? == 0)
    }

    /// A memory access in a SIMD instruction: its flags and offset, the offset perhaps
    /// patched.
    fn memarg(&mut self) -> Option<()> {
        let flags = self.plain_u32()?;
        // Bit 6: a memory index follows (multi-memory).
        require(flags & (1 << 6) == 0)?;
        if self.sites.get(self.next).is_some_and(|s| s.offset == self.at) { self.patched_memarg_offset() } else { self.leb(5).map(|_| ()) }
    }

    /// A memory offset a relocation patched (an address in non-PIC code).
    fn patched_memarg_offset(&mut self) -> Option<()> {
        let site = self.site_here()?;
        require(site.kind == RelocKind::MemoryAddrLeb)?;
        self.placeholder().map(|_| ())
    }

    /// An `i32.const` value a relocation patched: any i32 is an i32, and the patch checked
    /// that the value fits.
    fn patched_i32_const(&mut self) -> Option<()> {
        let site = self.site_here()?;
        let value_kind = matches!(
            site.kind,
            RelocKind::MemoryAddrSleb | RelocKind::MemoryAddrRelSleb | RelocKind::TableIndexSleb | RelocKind::TableIndexRelSleb
        );
        require(value_kind)?;
        let (_, len) = self.leb(5)?;
        require(len == 5)
    }

    /// The SIMD instructions: memory ones take a memarg (and a lane), `v128.const` and
    /// `i8x16.shuffle` 16 bytes, lane ones a lane byte, the rest nothing.
    fn simd(&mut self) -> Option<()> {
        match self.plain_u32()? {
            0..=11 | 92 | 93 => self.memarg(),
            12 | 13 => self.skip(16),
            21..=34 => self.skip(1),
            84..=91 => {
                self.memarg()?;
                self.skip(1)
            }
            // The rest of SIMD and relaxed SIMD have no immediates.
            14..=20 | 35..=83 | 94..=0x113 => Some(()),
            _ => None,
        }
    }
}

/// The type of function `index` of an object (imported or defined).
fn input_function_type(obj: &Object<'_>, index: u32) -> Option<TypeIndex> {
    let index = index as usize;
    match obj.imported_funcs.get(index) {
        Some(&ty) => Some(ty),
        None => Some(obj.functions.get(index.checked_sub(obj.imported_funcs.len())?)?.ty),
    }
}

/// The type of an output function (imported, an object's, or synthesized).
fn output_function_type(layout: &Layout<'_>, index: u32) -> Option<OutTypeIndex> {
    match layout.func_imports.get(index as usize) {
        Some(import) => Some(import.ty),
        None => layout.type_of(OutFuncIndex(index)),
    }
}

/// The type of global `index` of an object (imported or defined).
fn input_global_type(obj: &Object<'_>, index: u32) -> Option<GlobalType> {
    let index = index as usize;
    match obj.imported_globals.get(index) {
        Some(&ty) => Some(ty),
        None => Some(obj.globals.get(index.checked_sub(obj.imported_globals.len())?)?.ty),
    }
}

/// The type of an output global: an import's, or a defined one's (an immutable i32: GOT
/// entries and data exports).
fn output_global_type(layout: &Layout<'_>, index: u32) -> Option<GlobalType> {
    let index = index as usize;
    match layout.global_imports.get(index) {
        Some(import) => Some(import.ty),
        None => {
            layout.defined_globals.get(index - layout.global_imports.len())?;
            Some(GlobalType { content_type: wasmparser::ValType::I32, mutable: false, shared: false })
        }
    }
}
