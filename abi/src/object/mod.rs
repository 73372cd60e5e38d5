//! A reader for wasm32 relocatable objects and linked modules.
//!
//! [`Object::parse`] reads every section into a typed model that borrows the file's bytes:
//! the core sections through wasmparser, and the `linking`, `reloc.*` and `target_features`
//! custom sections through the small readers in [`linking`], [`relocs`] and
//! [`target_features`]. After reading, the private `validate` module checks every cross
//! reference (symbol targets, relocation indices, patch sites), so that a consumer can index
//! the model without bounds surprises.

mod index;
pub mod linking;
pub mod relocs;
pub mod target_features;
mod validate;

pub use index::*;
pub use linking::{Comdat, ComdatMember, DataRef, InitFunc, SegmentInfo, Symbol, SymbolKind, SymbolTarget};
pub use relocs::{RelocSection, Relocation};
pub use target_features::{FeaturePolicy, TargetFeature};

use crate::dylink::Dylink0;
use crate::error::{Error, ErrorKind, Result};
use crate::names;
use std::ops::Range;
use wasmparser::{
    ConstExpr, DataKind, ElementItems, ElementKind, ExternalKind, FuncType, GlobalType, MemoryType, Parser, Payload, TableType, TypeRef,
};

/// One section of the file, in file order.
#[derive(Debug, Clone)]
pub struct Section<'a> {
    /// The section id (0 for custom sections).
    pub id: u8,
    /// The custom section's name, or the standard name (`type`, `code`, `data`, ...).
    pub name: &'a str,
    /// The contents' byte range in the file: what relocation offsets are relative to. For a
    /// custom section that is the data after its name.
    pub contents: Range<usize>,
    /// Where the section starts (its id byte).
    pub start: usize,
}

/// An import.
#[derive(Debug, Clone)]
pub struct Import<'a> {
    /// Import module.
    pub module: &'a str,
    /// Import field.
    pub field: &'a str,
    /// What is imported.
    pub ty: TypeRef,
}

/// An export.
#[derive(Debug, Clone)]
pub struct Export<'a> {
    /// Export name.
    pub name: &'a str,
    /// Kind of the exported entity.
    pub kind: ExternalKind,
    /// Its index in the kind's index space.
    pub index: u32,
}

/// A defined global.
#[derive(Debug, Clone)]
pub struct Global {
    /// Its type.
    pub ty: GlobalType,
    /// The initialiser expression's bytes in the file (ending with `end`).
    pub init: Range<usize>,
}

/// A defined function's body.
#[derive(Debug, Clone)]
pub struct FunctionBody {
    /// Its type.
    pub ty: TypeIndex,
    /// The body's bytes in the file (locals and code, without the size prefix).
    pub body: Range<usize>,
}

/// How an element segment initialises a table.
#[derive(Debug, Clone)]
pub struct ElementSegment {
    /// The table for an active segment, `None` for passive or declared ones.
    pub table: Option<TableIndex>,
    /// The offset expression's bytes in the file, for an active segment.
    pub offset: Option<Range<usize>>,
    /// The functions, when the segment lists function indices.
    pub functions: Vec<FuncIndex>,
}

/// A data segment, with its `linking` segment info when the file has one.
#[derive(Debug, Clone)]
pub struct DataSegment<'a> {
    /// The segment's bytes.
    pub data: &'a [u8],
    /// Where those bytes start in the file.
    pub data_offset: usize,
    /// The whole segment's entry in the data section (header and bytes).
    pub range: Range<usize>,
    /// The active offset expression's bytes in the file, or `None` for a passive segment.
    pub offset_expr: Option<Range<usize>>,
    /// Name, alignment and flags from the `linking` section.
    pub info: Option<SegmentInfo<'a>>,
}

/// A wasm module read into a typed model: a relocatable object, or a linked (side or main)
/// module.
#[derive(Debug, Clone)]
pub struct Object<'a> {
    /// The display name used in errors: `foo.o`, `libx.a(bar.o)`.
    pub name: String,
    /// The file's bytes.
    pub bytes: &'a [u8],
    /// Every section, in file order; a [`SectionIndex`] indexes this.
    pub sections: Vec<Section<'a>>,
    /// Function types.
    pub types: Vec<FuncType>,
    /// Imports, in order.
    pub imports: Vec<Import<'a>>,
    /// Imported functions' type indices (the first entries of the function index space).
    pub imported_funcs: Vec<TypeIndex>,
    /// Imported globals' types.
    pub imported_globals: Vec<GlobalType>,
    /// Imported tables' types.
    pub imported_tables: Vec<TableType>,
    /// Imported memories' types.
    pub imported_memories: Vec<MemoryType>,
    /// Number of imported tags.
    pub imported_tags: u32,
    /// Defined functions' bodies (type from the function section, range from the code
    /// section).
    pub functions: Vec<FunctionBody>,
    /// Defined tables.
    pub tables: Vec<TableType>,
    /// Defined memories.
    pub memories: Vec<MemoryType>,
    /// Defined globals.
    pub globals: Vec<Global>,
    /// Number of defined tags.
    pub tags: u32,
    /// Exports.
    pub exports: Vec<Export<'a>>,
    /// The start function.
    pub start: Option<FuncIndex>,
    /// Element segments.
    pub elements: Vec<ElementSegment>,
    /// Data segments.
    pub data: Vec<DataSegment<'a>>,
    /// The `linking` section's version, if there is one.
    pub linking_version: Option<u32>,
    /// The symbol table.
    pub symbols: Vec<Symbol<'a>>,
    /// Init functions (constructors), in file order.
    pub init_funcs: Vec<InitFunc>,
    /// Comdat groups.
    pub comdats: Vec<Comdat<'a>>,
    /// `reloc.*` sections.
    pub relocations: Vec<RelocSection>,
    /// The `dylink.0` section of a side module.
    pub dylink0: Option<Dylink0>,
    /// The `target_features` section: the features the object was compiled with, or `None`
    /// when it has no such section.
    pub target_features: Option<Vec<TargetFeature<'a>>>,
}

/// The standard name of a core section id.
pub fn section_name(id: u8) -> &'static str {
    match id {
        1 => "type",
        2 => "import",
        3 => "function",
        4 => "table",
        5 => "memory",
        6 => "global",
        7 => "export",
        8 => "start",
        9 => "elem",
        10 => "code",
        11 => "data",
        12 => "datacount",
        13 => "tag",
        _ => "unknown",
    }
}

impl<'a> Object<'a> {
    /// Reads `bytes` as a wasm module named `name` (used in errors).
    ///
    /// # Errors
    /// Not wasm, a malformed section (truncated, bad LEB), an unsupported `linking` version,
    /// an unknown relocation type, or a cross reference out of range: each with the file, the
    /// section and the byte offset.
    pub fn parse(name: &str, bytes: &'a [u8]) -> Result<Object<'a>> {
        let mut obj = Object {
            name: name.to_owned(),
            bytes,
            sections: Vec::new(),
            types: Vec::new(),
            imports: Vec::new(),
            imported_funcs: Vec::new(),
            imported_globals: Vec::new(),
            imported_tables: Vec::new(),
            imported_memories: Vec::new(),
            imported_tags: 0,
            functions: Vec::new(),
            tables: Vec::new(),
            memories: Vec::new(),
            globals: Vec::new(),
            tags: 0,
            exports: Vec::new(),
            start: None,
            elements: Vec::new(),
            data: Vec::new(),
            linking_version: None,
            symbols: Vec::new(),
            init_funcs: Vec::new(),
            comdats: Vec::new(),
            relocations: Vec::new(),
            dylink0: None,
            target_features: None,
        };
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" || bytes[4..8] != [1, 0, 0, 0] {
            return Err(Error::new(name, None, 0, ErrorKind::NotWasm));
        }
        let mut pending_relocs = Vec::new();
        let mut linking = None;
        let mut body_index = 0usize;
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| {
                // An error past the last section read is in the header of the next one (a
                // size past the end of the file, a truncated section): name no section
                // rather than the previous one.
                let section = obj.sections.last().filter(|s| e.offset() < s.contents.end).map(|s| s.name);
                Error::from_parser(name, section, &e)
            })?;
            if let Some((id, range)) = payload.as_section() {
                let (section_name, contents, start) = match &payload {
                    Payload::CustomSection(c) => (c.name(), c.data_offset()..c.range().end, section_start(bytes, c.range().start)),
                    _ => (self::section_name(id), range.clone(), section_start(bytes, range.start)),
                };
                obj.sections.push(Section { id, name: section_name, contents, start });
            }
            let section = obj.sections.last().map(|s| s.name);
            let err = |e: wasmparser::BinaryReaderError| Error::from_parser(name, section, &e);
            match payload {
                Payload::TypeSection(reader) => {
                    for ty in reader.into_iter_err_on_gc_types() {
                        obj.types.push(ty.map_err(err)?);
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(err)?;
                        match import.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => obj.imported_funcs.push(TypeIndex(t)),
                            TypeRef::Global(g) => obj.imported_globals.push(g),
                            TypeRef::Table(t) => obj.imported_tables.push(t),
                            TypeRef::Memory(m) => obj.imported_memories.push(m),
                            TypeRef::Tag(_) => obj.imported_tags += 1,
                        }
                        obj.imports.push(Import { module: import.module, field: import.name, ty: import.ty });
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        obj.functions.push(FunctionBody { ty: TypeIndex(ty.map_err(err)?), body: 0..0 });
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        obj.tables.push(table.map_err(err)?.ty);
                    }
                }
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        obj.memories.push(memory.map_err(err)?);
                    }
                }
                Payload::TagSection(reader) => obj.tags = reader.count(),
                Payload::GlobalSection(reader) => {
                    for global in reader {
                        let global = global.map_err(err)?;
                        obj.globals.push(Global { ty: global.ty, init: expr_range(&global.init_expr) });
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(err)?;
                        obj.exports.push(Export { name: export.name, kind: export.kind, index: export.index });
                    }
                }
                Payload::StartSection { func, .. } => obj.start = Some(FuncIndex(func)),
                Payload::ElementSection(reader) => {
                    for element in reader {
                        let element = element.map_err(err)?;
                        let (table, offset) = match &element.kind {
                            ElementKind::Active { table_index, offset_expr } => {
                                (Some(TableIndex(table_index.unwrap_or(0))), Some(expr_range(offset_expr)))
                            }
                            ElementKind::Passive | ElementKind::Declared => (None, None),
                        };
                        let mut functions = Vec::new();
                        if let ElementItems::Functions(items) = element.items {
                            for f in items {
                                functions.push(FuncIndex(f.map_err(err)?));
                            }
                        }
                        obj.elements.push(ElementSegment { table, offset, functions });
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let range = body.range();
                    match obj.functions.get_mut(body_index) {
                        Some(f) => f.body = range,
                        None => {
                            return Err(Error::new(
                                name,
                                Some("code"),
                                range.start,
                                ErrorKind::Malformed("more function bodies than the function section declares".into()),
                            ));
                        }
                    }
                    body_index += 1;
                }
                Payload::DataSection(reader) => {
                    for data in reader {
                        let data = data.map_err(err)?;
                        let offset_expr = match &data.kind {
                            DataKind::Active { offset_expr, .. } => Some(expr_range(offset_expr)),
                            DataKind::Passive => None,
                        };
                        let data_offset = data.range.end - data.data.len();
                        obj.data.push(DataSegment { data: data.data, data_offset, range: data.range, offset_expr, info: None });
                    }
                }
                Payload::CustomSection(custom) => {
                    let section_index = SectionIndex(u32::try_from(obj.sections.len() - 1).unwrap_or(u32::MAX));
                    if custom.name() == names::LINKING {
                        if linking.is_some() {
                            let at = section_start(bytes, custom.range().start);
                            return Err(Error::new(name, Some(names::LINKING), at, ErrorKind::DuplicateLinking));
                        }
                        linking = Some(linking::read(name, custom.data(), custom.data_offset())?);
                    } else if custom.name().starts_with(names::RELOC_PREFIX) {
                        pending_relocs.push(relocs::read(name, custom.name(), custom.data(), custom.data_offset(), section_index)?);
                    } else if custom.name() == names::DYLINK_0 {
                        let at = section_start(bytes, custom.range().start);
                        if obj.dylink0.is_some() {
                            return Err(Error::new(name, Some(names::DYLINK_0), at, ErrorKind::DuplicateDylink0));
                        }
                        if obj.sections.len() != 1 {
                            return Err(Error::new(name, Some(names::DYLINK_0), at, ErrorKind::Dylink0NotFirst));
                        }
                        obj.dylink0 = Some(Dylink0::decode_contents(name, custom.data(), custom.data_offset())?);
                    } else if custom.name() == names::TARGET_FEATURES {
                        if obj.target_features.is_some() {
                            let at = section_start(bytes, custom.range().start);
                            return Err(Error::new(
                                name,
                                Some(names::TARGET_FEATURES),
                                at,
                                ErrorKind::Malformed("a second target_features section".into()),
                            ));
                        }
                        obj.target_features = Some(target_features::read(name, custom.data(), custom.data_offset())?);
                    }
                }
                _ => {}
            }
        }
        if body_index != obj.functions.len() {
            let at = obj.sections.iter().find(|s| s.id == 10).map_or(bytes.len(), |s| s.start);
            return Err(Error::new(
                name,
                Some("code"),
                at,
                ErrorKind::Malformed(format!(
                    "function section declares {} functions but the code section has {body_index} bodies",
                    obj.functions.len()
                )),
            ));
        }
        if let Some(linking) = linking {
            linking.install(&mut obj)?;
        }
        obj.relocations = pending_relocs;
        validate::check(&obj)?;
        Ok(obj)
    }

    /// Number of functions, imported and defined.
    pub fn func_count(&self) -> usize {
        self.imported_funcs.len() + self.functions.len()
    }

    /// Number of globals, imported and defined.
    pub fn global_count(&self) -> usize {
        self.imported_globals.len() + self.globals.len()
    }

    /// Number of tables, imported and defined.
    pub fn table_count(&self) -> usize {
        self.imported_tables.len() + self.tables.len()
    }

    /// Number of tags, imported and defined.
    pub fn tag_count(&self) -> usize {
        self.imported_tags as usize + self.tags as usize
    }

    /// Whether the function index names an imported function.
    pub fn is_imported_func(&self, f: FuncIndex) -> bool {
        f.as_usize() < self.imported_funcs.len()
    }

    /// The type of a function, imported or defined.
    pub fn func_type(&self, f: FuncIndex) -> Option<&FuncType> {
        let ty = match f.as_usize().checked_sub(self.imported_funcs.len()) {
            None => *self.imported_funcs.get(f.as_usize())?,
            Some(defined) => self.functions.get(defined)?.ty,
        };
        self.types.get(ty.as_usize())
    }

    /// The `n`th import of a kind (functions, globals, tables, tags), as the symbol table
    /// refers to imports by their index in that kind's space.
    pub fn nth_import(&self, kind: ExternalKind, n: u32) -> Option<&Import<'a>> {
        self.imports.iter().filter(|i| import_kind(&i.ty) == kind).nth(n as usize)
    }

    /// Whether this is a relocatable object (it has a `linking` section).
    pub fn is_relocatable(&self) -> bool {
        self.linking_version.is_some()
    }

    /// The section a [`SectionIndex`] names.
    pub fn section(&self, index: SectionIndex) -> Option<&Section<'a>> {
        self.sections.get(index.as_usize())
    }

    /// A section's contents.
    pub fn contents(&self, section: &Section<'_>) -> &'a [u8] {
        // Ranges come from the parser and lie inside `bytes`.
        self.bytes.get(section.contents.clone()).unwrap_or(&[])
    }
}

/// The kind of an import.
pub fn import_kind(ty: &TypeRef) -> ExternalKind {
    match ty {
        TypeRef::Func(_) | TypeRef::FuncExact(_) => ExternalKind::Func,
        TypeRef::Table(_) => ExternalKind::Table,
        TypeRef::Memory(_) => ExternalKind::Memory,
        TypeRef::Global(_) => ExternalKind::Global,
        TypeRef::Tag(_) => ExternalKind::Tag,
    }
}

fn expr_range(expr: &ConstExpr<'_>) -> Range<usize> {
    expr.get_binary_reader().range()
}

/// The section's first byte, found by walking back from its contents over the size LEB and
/// the id byte. wasmparser reports contents ranges; the header is at most 6 bytes before.
pub(crate) fn section_start(bytes: &[u8], contents_start: usize) -> usize {
    // The size LEB ends right before the contents (for a custom section, before the name,
    // which `range().start` already points at). Bytes of a LEB but the last have the high bit.
    let mut at = contents_start.saturating_sub(1);
    while at > 0 && bytes.get(at - 1).is_some_and(|b| b & 0x80 != 0) {
        at -= 1;
    }
    at.saturating_sub(1)
}
