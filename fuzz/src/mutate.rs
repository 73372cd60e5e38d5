//! Structured mutation of wasm relocatable objects, for the `link` target.
//!
//! libFuzzer's byte mutations mostly break an object's framing, so the linker's reader
//! rejects the result early. This mutator finds the fields that matter to the linker
//! (relocation types, offsets, indices and addends, symbol flags and indices, counts, section
//! and subsection sizes) with a small walker of its own, and rewrites one or a few of them
//! in place, keeping every LEB's byte length so that the rest of the object stays framed.
//! The walker is deliberately independent of `pymode-abi`'s reader: it must find fields in
//! objects that reader would reject.

use pymode_abi::RelocKind;

/// What a [`Field`] is, which decides the values tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A relocation's type byte (a plain byte, not a LEB).
    RelocType,
    /// A relocation's offset; `target_len` is the length of its target section's contents.
    RelocOffset {
        /// Length of the section the relocation applies to.
        target_len: u32,
    },
    /// A relocation's symbol (or type) index.
    RelocIndex,
    /// A relocation's addend (signed LEB).
    RelocAddend,
    /// A symbol's flags.
    SymbolFlags,
    /// A symbol's function/global/table/segment/section index, or a data symbol's offset or
    /// size.
    SymbolIndex,
    /// An entry count (relocations, symbols) or a reloc section's target section index.
    Count,
    /// A section's or a `linking` subsection's size.
    SectionSize,
}

/// One mutable field: `len` bytes at `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// What the field means.
    pub kind: FieldKind,
    /// Byte offset in the object.
    pub pos: usize,
    /// Byte length (1 for the type byte, the LEB's length otherwise).
    pub len: usize,
}

/// Symbol flag bits (Linking.md) the mutator toggles.
const FLAG_BITS: [u64; 10] = [0x1, 0x2, 0x4, 0x10, 0x20, 0x40, 0x80, 0x100, 0x200, 0x8];
const FLAG_UNDEFINED: u64 = 0x10;
const FLAG_EXPLICIT_NAME: u64 = 0x40;
const SYMTAB: u8 = 8;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// An unsigned LEB (up to 64 bits): its value and where it was.
    fn uleb(&mut self) -> Option<(u64, usize, usize)> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Some((value, start, self.pos - start));
            }
        }
        None
    }

    /// A LEB recorded as a field of `kind`.
    fn field(&mut self, out: &mut Vec<Field>, kind: FieldKind) -> Option<u64> {
        let (value, pos, len) = self.uleb()?;
        out.push(Field { kind, pos, len });
        Some(value)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
        (end <= self.data.len()).then(|| self.pos = end)
    }

    fn name(&mut self) -> Option<&'a [u8]> {
        let (n, _, _) = self.uleb()?;
        let start = self.pos;
        self.skip(n)?;
        Some(&self.data[start..self.pos])
    }
}

/// The mutable fields of `data`, a wasm object, in file order. Stops quietly where the
/// object stops making sense; what was found before stays.
pub fn fields(data: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    let _ = walk(data, &mut out);
    out
}

fn walk(data: &[u8], out: &mut Vec<Field>) -> Option<()> {
    if data.get(..4)? != b"\0asm" {
        return None;
    }
    // Contents lengths by section index, for relocation offsets: reloc sections come after
    // the sections they apply to.
    let mut section_lens: Vec<u32> = Vec::new();
    let mut r = Reader { data, pos: 8 };
    while r.pos < data.len() {
        let id = r.byte()?;
        let size = r.field(out, FieldKind::SectionSize)?;
        let start = r.pos;
        let end = start.checked_add(usize::try_from(size).ok()?)?.min(data.len());
        section_lens.push(u32::try_from(end - start).unwrap_or(u32::MAX));
        if id == 0 {
            let mut s = Reader { data: &data[..end], pos: start };
            let name = s.name()?;
            if name == b"linking" {
                let _ = linking(&mut s, out);
            } else if name.starts_with(b"reloc.") {
                let _ = reloc(&mut s, out, &section_lens);
            }
        }
        r.pos = end;
    }
    Some(())
}

fn linking(r: &mut Reader, out: &mut Vec<Field>) -> Option<()> {
    r.uleb()?; // version
    while r.pos < r.data.len() {
        let kind = r.byte()?;
        let size = r.field(out, FieldKind::SectionSize)?;
        let start = r.pos;
        let end = start.checked_add(usize::try_from(size).ok()?)?.min(r.data.len());
        if kind == SYMTAB {
            let mut s = Reader { data: &r.data[..end], pos: start };
            let _ = symbols(&mut s, out);
        }
        r.pos = end;
    }
    Some(())
}

fn symbols(r: &mut Reader, out: &mut Vec<Field>) -> Option<()> {
    let count = r.field(out, FieldKind::Count)?;
    for _ in 0..count {
        let kind = r.byte()?;
        let flags = r.field(out, FieldKind::SymbolFlags)?;
        let defined = flags & FLAG_UNDEFINED == 0;
        match kind {
            // function, global, tag, table: index, then a name if defined or explicitly named
            0 | 2 | 4 | 5 => {
                r.field(out, FieldKind::SymbolIndex)?;
                if defined || flags & FLAG_EXPLICIT_NAME != 0 {
                    r.name()?;
                }
            }
            // data: name, then segment, offset and size if defined
            1 => {
                r.name()?;
                if defined {
                    for _ in 0..3 {
                        r.field(out, FieldKind::SymbolIndex)?;
                    }
                }
            }
            // section
            3 => {
                r.field(out, FieldKind::SymbolIndex)?;
            }
            _ => return None,
        }
    }
    Some(())
}

fn reloc(r: &mut Reader, out: &mut Vec<Field>, section_lens: &[u32]) -> Option<()> {
    let target = r.field(out, FieldKind::Count)?;
    let target_len = usize::try_from(target).ok().and_then(|t| section_lens.get(t)).copied().unwrap_or(0);
    let count = r.field(out, FieldKind::Count)?;
    for _ in 0..count {
        let pos = r.pos;
        let ty = r.byte()?;
        out.push(Field { kind: FieldKind::RelocType, pos, len: 1 });
        r.field(out, FieldKind::RelocOffset { target_len })?;
        r.field(out, FieldKind::RelocIndex)?;
        if RelocKind::from_u8(ty).is_some_and(RelocKind::has_addend) {
            r.field(out, FieldKind::RelocAddend)?;
        }
    }
    Some(())
}

/// A small deterministic generator (SplitMix64): the same seed gives the same mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Reads the LEB of `field` (unsigned or signed).
fn read_leb(bytes: &[u8], signed: bool) -> i128 {
    let mut value = 0i128;
    let mut shift = 0;
    for &b in bytes {
        value |= i128::from(b & 0x7f) << shift;
        shift += 7;
    }
    if signed && shift > 0 && shift < 127 && value & (1 << (shift - 1)) != 0 {
        value -= 1 << shift;
    }
    value
}

/// Writes `value` as a LEB of exactly `out.len()` bytes; `false` (and nothing written) when
/// it does not fit.
fn write_leb(out: &mut [u8], value: i128, signed: bool) -> bool {
    if out.is_empty() {
        return false;
    }
    let bits = 7 * out.len() as u32;
    let fits = if signed {
        let half = 1i128 << (bits - 1);
        (-half..half).contains(&value)
    } else {
        (0..1i128 << bits).contains(&value)
    };
    if !fits {
        return false;
    }
    let last = out.len() - 1;
    for (i, b) in out.iter_mut().enumerate() {
        let chunk = ((value >> (7 * i)) & 0x7f) as u8;
        *b = if i < last { chunk | 0x80 } else { chunk };
    }
    true
}

/// A new value for a field that holds `old`.
fn choose(rng: &mut Rng, kind: FieldKind, old: i128, max: i128) -> i128 {
    let near = [old - 1, old + 1, 0, max, old.wrapping_mul(2), old - 4, old + 4];
    match kind {
        FieldKind::RelocType => {
            if rng.below(8) == 0 {
                rng.below(256).into()
            } else {
                rng.pick(&RelocKind::ALL).as_u8().into()
            }
        }
        FieldKind::RelocOffset { target_len } => {
            let len = i128::from(target_len);
            rng.pick(&[old - 1, old + 1, 0, len, len - 1, len - 4, len + 1, max, old + 5, old - 5])
        }
        FieldKind::RelocAddend => rng.pick(&[0, -old, old + 1, old - 1, i32::MAX.into(), i32::MIN.into(), old + 4096, -1, i64::MIN.into()]),
        FieldKind::SymbolFlags => old ^ i128::from(rng.pick(&FLAG_BITS)),
        FieldKind::SectionSize => rng.pick(&[old - 1, old + 1, old - 1, old + 1, 0, max]),
        FieldKind::RelocIndex | FieldKind::SymbolIndex | FieldKind::Count => {
            if rng.below(6) == 0 {
                rng.below(64).into()
            } else {
                rng.pick(&near)
            }
        }
    }
}

/// Rewrites one to four of `data`'s [`fields`] in place (the length never changes), chosen
/// and valued by `seed`. Returns `false`, leaving `data` alone, when there is no field.
pub fn mutate(data: &mut [u8], seed: u64) -> bool {
    let found = fields(data);
    if found.is_empty() {
        return false;
    }
    let mut rng = Rng::new(seed);
    let rounds = if rng.below(3) == 0 { 2 + rng.below(3) } else { 1 };
    for _ in 0..rounds {
        let field = rng.pick(&found);
        let Some(bytes) = data.get_mut(field.pos..field.pos + field.len) else { continue };
        if field.kind == FieldKind::RelocType {
            bytes[0] = choose(&mut rng, field.kind, bytes[0].into(), 255) as u8; // ok: < 256
            continue;
        }
        let signed = field.kind == FieldKind::RelocAddend;
        let old = read_leb(bytes, signed);
        let max = (1i128 << (7 * field.len as u32).min(32)) - 1;
        // A few tries: a value may not fit the field's width.
        for _ in 0..4 {
            if write_leb(bytes, choose(&mut rng, field.kind, old, max), signed) {
                break;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb_roundtrip_keeps_width() {
        let mut b = [0u8; 5];
        assert!(write_leb(&mut b, 300, false));
        assert_eq!(b, [0xac, 0x82, 0x80, 0x80, 0x00]);
        assert_eq!(read_leb(&b, false), 300);
        assert!(write_leb(&mut b, -2, true));
        assert_eq!(read_leb(&b, true), -2);
        let mut one = [0u8; 1];
        assert!(!write_leb(&mut one, 128, false));
        assert!(write_leb(&mut one, 127, false));
        assert!(!write_leb(&mut one, 64, true));
        assert!(write_leb(&mut one, -64, true));
        assert_eq!(read_leb(&one, true), -64);
    }
}
