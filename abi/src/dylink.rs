//! The `dylink.0` custom section: an owned model, our encoder, and a decoder on wasmparser's
//! reader (tool-conventions DynamicLinking.md).

use crate::error::{Error, ErrorKind, Result};
use crate::names::DYLINK_0;
pub use wasmparser::SymbolFlags;
use wasmparser::{BinaryReader, Dylink0Subsection, Parser, Payload};

const MEM_INFO: u8 = 1;
const NEEDED: u8 = 2;
const EXPORT_INFO: u8 = 3;
const IMPORT_INFO: u8 = 4;
const RUNTIME_PATH: u8 = 5;

/// Subsection 1: how much memory and how many table slots the module needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// Bytes of linear memory for the module's data (and bss).
    pub memory_size: u32,
    /// Alignment of that memory, as a power of two.
    pub memory_align_log2: u32,
    /// Table slots the module needs at `__table_base`.
    pub table_size: u32,
    /// Alignment of the table slots, as a power of two.
    pub table_align_log2: u32,
}

/// Subsection 3: flags of one export (e.g. `TLS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInfo {
    /// Export name.
    pub name: String,
    /// `WASM_SYM_*` flags.
    pub flags: SymbolFlags,
}

/// Subsection 4: flags of one import (e.g. `BINDING_WEAK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInfo {
    /// Import module (`env`, `GOT.mem`, `GOT.func`).
    pub module: String,
    /// Import field.
    pub field: String,
    /// `WASM_SYM_*` flags.
    pub flags: SymbolFlags,
}

/// A decoded `dylink.0` section.
///
/// Decoding then encoding gives back the same model; unknown subsections are kept, in order
/// after the known ones, so that a tool rewriting a module does not drop what it does not
/// understand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dylink0 {
    /// MEM_INFO; all zero when the subsection is absent.
    pub mem_info: MemInfo,
    /// NEEDED: libraries to load first, by name.
    pub needed: Vec<String>,
    /// EXPORT_INFO.
    pub export_info: Vec<ExportInfo>,
    /// IMPORT_INFO.
    pub import_info: Vec<ImportInfo>,
    /// RUNTIME_PATH: directories to search for NEEDED, `$ORIGIN` allowed.
    pub runtime_path: Vec<String>,
    /// Subsections with ids this model does not know: `(id, contents)`.
    pub unknown: Vec<(u8, Vec<u8>)>,
}

impl MemInfo {
    /// The memory alignment in bytes, or `None` if the exponent is 32 or more.
    pub fn memory_align(&self) -> Option<u32> {
        1u32.checked_shl(self.memory_align_log2)
    }

    /// The table alignment in slots, or `None` if the exponent is 32 or more.
    pub fn table_align(&self) -> Option<u32> {
        1u32.checked_shl(self.table_align_log2)
    }
}

impl Dylink0 {
    /// Encodes the section's contents (what follows the custom section's name).
    pub fn encode_contents(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut sub = Vec::new();
        let m = &self.mem_info;
        for v in [m.memory_size, m.memory_align_log2, m.table_size, m.table_align_log2] {
            write_u32(&mut sub, v);
        }
        write_subsection(&mut out, MEM_INFO, &mut sub);
        if !self.needed.is_empty() {
            write_strings(&mut sub, &self.needed);
            write_subsection(&mut out, NEEDED, &mut sub);
        }
        if !self.export_info.is_empty() {
            write_u32(&mut sub, len_u32(self.export_info.len()));
            for e in &self.export_info {
                write_str(&mut sub, &e.name);
                write_u32(&mut sub, e.flags.bits());
            }
            write_subsection(&mut out, EXPORT_INFO, &mut sub);
        }
        if !self.import_info.is_empty() {
            write_u32(&mut sub, len_u32(self.import_info.len()));
            for i in &self.import_info {
                write_str(&mut sub, &i.module);
                write_str(&mut sub, &i.field);
                write_u32(&mut sub, i.flags.bits());
            }
            write_subsection(&mut out, IMPORT_INFO, &mut sub);
        }
        if !self.runtime_path.is_empty() {
            write_strings(&mut sub, &self.runtime_path);
            write_subsection(&mut out, RUNTIME_PATH, &mut sub);
        }
        for (id, contents) in &self.unknown {
            sub.extend_from_slice(contents);
            write_subsection(&mut out, *id, &mut sub);
        }
        out
    }

    /// Encodes the whole custom section: id 0, size, name `dylink.0`, contents. This is what
    /// goes first in a side module.
    pub fn encode_section(&self) -> Vec<u8> {
        let contents = self.encode_contents();
        let mut payload = Vec::with_capacity(contents.len() + 10);
        write_str(&mut payload, DYLINK_0);
        payload.extend_from_slice(&contents);
        let mut out = vec![0u8];
        write_u32(&mut out, len_u32(payload.len()));
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes the section's contents. `offset` is where they start in the file, so that
    /// errors point at the right byte.
    ///
    /// # Errors
    /// A malformed subsection, a subsection that appears twice, or an alignment of 2^32 or
    /// more.
    pub fn decode_contents(file: &str, contents: &[u8], offset: usize) -> Result<Dylink0> {
        let err = |e: &wasmparser::BinaryReaderError| Error::from_parser(file, Some(DYLINK_0), e);
        let mut reader = wasmparser::Dylink0SectionReader::new(BinaryReader::new(contents, offset));
        let mut model = Dylink0::default();
        let mut seen = [false; 6];
        loop {
            let sub_offset = reader.original_position();
            let Some(sub) = reader.next() else { break };
            let sub = sub.map_err(|e| err(&e))?;
            let id = match &sub {
                Dylink0Subsection::MemInfo(_) => MEM_INFO,
                Dylink0Subsection::Needed(_) => NEEDED,
                Dylink0Subsection::ExportInfo(_) => EXPORT_INFO,
                Dylink0Subsection::ImportInfo(_) => IMPORT_INFO,
                Dylink0Subsection::RuntimePath(_) => RUNTIME_PATH,
                Dylink0Subsection::Unknown { ty, .. } => *ty,
            };
            if let Some(flag) = seen.get_mut(usize::from(id)) {
                if *flag {
                    return Err(Error::new(file, Some(DYLINK_0), sub_offset, ErrorKind::DuplicateDylink0Subsection(id)));
                }
                *flag = true;
            }
            match sub {
                Dylink0Subsection::MemInfo(m) => {
                    model.mem_info = MemInfo {
                        memory_size: m.memory_size,
                        memory_align_log2: m.memory_alignment,
                        table_size: m.table_size,
                        table_align_log2: m.table_alignment,
                    };
                    for (what, exponent) in [("memory", m.memory_alignment), ("table", m.table_alignment)] {
                        if exponent >= 32 {
                            return Err(Error::new(file, Some(DYLINK_0), sub_offset, ErrorKind::AlignmentOutOfRange { what, exponent }));
                        }
                    }
                }
                Dylink0Subsection::Needed(names) => model.needed = names.into_iter().map(str::to_owned).collect(),
                Dylink0Subsection::ExportInfo(infos) => {
                    model.export_info = infos.into_iter().map(|i| ExportInfo { name: i.name.to_owned(), flags: i.flags }).collect();
                }
                Dylink0Subsection::ImportInfo(infos) => {
                    model.import_info = infos
                        .into_iter()
                        .map(|i| ImportInfo { module: i.module.to_owned(), field: i.field.to_owned(), flags: i.flags })
                        .collect();
                }
                Dylink0Subsection::RuntimePath(paths) => {
                    model.runtime_path = paths.into_iter().map(str::to_owned).collect();
                }
                Dylink0Subsection::Unknown { ty, data, .. } => model.unknown.push((ty, data.to_vec())),
            }
        }
        Ok(model)
    }

    /// Finds and decodes the `dylink.0` section of a whole module.
    ///
    /// Returns `Ok(None)` for a module without one (a main module, or a plain module).
    ///
    /// # Errors
    /// Bad magic, a malformed section header, a `dylink.0` that is not the first section or
    /// appears twice, or a malformed `dylink.0`.
    pub fn from_module(file: &str, bytes: &[u8]) -> Result<Option<Dylink0>> {
        let mut found = None;
        let mut first = true;
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| {
                if e.offset() < 8 { Error::new(file, None, e.offset(), ErrorKind::NotWasm) } else { Error::from_parser(file, None, &e) }
            })?;
            match payload {
                Payload::Version { .. } => continue,
                Payload::CustomSection(c) if c.name() == DYLINK_0 => {
                    let at = crate::object::section_start(bytes, c.range().start);
                    if found.is_some() {
                        return Err(Error::new(file, Some(DYLINK_0), at, ErrorKind::DuplicateDylink0));
                    }
                    if !first {
                        return Err(Error::new(file, Some(DYLINK_0), at, ErrorKind::Dylink0NotFirst));
                    }
                    found = Some(Dylink0::decode_contents(file, c.data(), c.data_offset())?);
                }
                _ => {}
            }
            first = false;
        }
        Ok(found)
    }
}

fn len_u32(len: usize) -> u32 {
    // A section model with 2^32 entries cannot be built in a 32-bit address space either; the
    // saturation only keeps this total.
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Appends `value` as an unsigned LEB128 in its shortest form (section sizes, counts and
/// names; relocation sites use the padded form of [`crate::PatchWidth::write`]).
pub fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_u32(out, len_u32(s.len()));
    out.extend_from_slice(s.as_bytes());
}

fn write_strings(out: &mut Vec<u8>, strings: &[String]) {
    write_u32(out, len_u32(strings.len()));
    for s in strings {
        write_str(out, s);
    }
}

/// Moves `contents` into `out` as subsection `id`, leaving `contents` empty for reuse.
fn write_subsection(out: &mut Vec<u8>, id: u8, contents: &mut Vec<u8>) {
    out.push(id);
    write_u32(out, len_u32(contents.len()));
    out.append(contents);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.$/]{0,12}"
    }

    fn flags() -> impl Strategy<Value = SymbolFlags> {
        any::<u32>().prop_map(SymbolFlags::from_bits_retain)
    }

    fn model() -> impl Strategy<Value = Dylink0> {
        (
            (any::<u32>(), 0u32..32, any::<u32>(), 0u32..32),
            prop::collection::vec(name(), 0..4),
            prop::collection::vec((name(), flags()), 0..4),
            prop::collection::vec((name(), name(), flags()), 0..4),
            prop::collection::vec(name(), 0..3),
            prop::collection::vec((6u8..=127, prop::collection::vec(any::<u8>(), 0..8)), 0..2),
        )
            .prop_map(|((ms, ma, ts, ta), needed, exports, imports, rpath, unknown)| Dylink0 {
                mem_info: MemInfo { memory_size: ms, memory_align_log2: ma, table_size: ts, table_align_log2: ta },
                needed,
                export_info: exports.into_iter().map(|(name, flags)| ExportInfo { name, flags }).collect(),
                import_info: imports.into_iter().map(|(module, field, flags)| ImportInfo { module, field, flags }).collect(),
                runtime_path: rpath,
                unknown: {
                    // Ids must be distinct for the model to round-trip (subsection ids are 7-bit).
                    let mut u: Vec<(u8, Vec<u8>)> = unknown;
                    u.sort_by_key(|(id, _)| *id);
                    u.dedup_by_key(|(id, _)| *id);
                    u
                },
            })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(model in model()) {
            let contents = model.encode_contents();
            let back = Dylink0::decode_contents("t.so", &contents, 0).expect("our own encoding decodes");
            prop_assert_eq!(&back, &model);

            // The whole section, placed first in a module, is found again by from_module and
            // accepted by wasmparser's validator.
            let mut module = b"\0asm\x01\0\0\0".to_vec();
            module.extend_from_slice(&model.encode_section());
            let found = Dylink0::from_module("t.so", &module).expect("parses").expect("present");
            prop_assert_eq!(&found, &model);
            prop_assert!(wasmparser::Validator::new().validate_all(&module).is_ok());
        }

        #[test]
        fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = Dylink0::decode_contents("t.so", &bytes, 0);
        }
    }

    #[test]
    fn wasm_encoder_sees_our_section_as_a_custom_section() {
        let model = Dylink0 {
            mem_info: MemInfo { memory_size: 168, memory_align_log2: 4, table_size: 1, table_align_log2: 0 },
            needed: vec!["libz.so".into()],
            ..Default::default()
        };
        let mut module = wasm_encoder::Module::new();
        module.section(&wasm_encoder::CustomSection { name: DYLINK_0.into(), data: model.encode_contents().into() });
        let bytes = module.finish();
        assert_eq!(&bytes[8..], &model.encode_section()[..]);
        assert_eq!(Dylink0::from_module("m.so", &bytes).expect("ok"), Some(model));
    }

    #[test]
    fn not_first_and_duplicate_are_errors() {
        let section = Dylink0::default().encode_section();
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend_from_slice(&[1, 1, 0]); // empty type section
        module.extend_from_slice(&section);
        let err = Dylink0::from_module("x.so", &module).expect_err("not first");
        assert_eq!(err.kind, ErrorKind::Dylink0NotFirst);
        assert_eq!(err.location.offset, 11);

        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend_from_slice(&section);
        module.extend_from_slice(&section);
        let err = Dylink0::from_module("x.so", &module).expect_err("duplicate");
        assert_eq!(err.kind, ErrorKind::DuplicateDylink0);
    }

    #[test]
    fn garbage_is_not_wasm() {
        let err = Dylink0::from_module("junk.so", b"\x7fELF\x02\x01\x01\0").expect_err("not wasm");
        assert_eq!(err.kind, ErrorKind::NotWasm);
        assert_eq!(err.to_string(), "junk.so at byte 0x0: not a WebAssembly module (bad magic or version)");
    }
}
