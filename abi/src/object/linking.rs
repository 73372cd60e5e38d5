//! The `linking` custom section (Linking.md, version 2): symbol table, segment info, init
//! functions and comdats.

use super::{FuncIndex, GlobalIndex, Object, SectionIndex, SegmentIndex, SymbolIndex, TableIndex, TagIndex};
use crate::dylink::SymbolFlags;
use crate::error::{Error, ErrorKind, Result};
use crate::names::LINKING;
use wasmparser::{BinaryReader, ComdatSymbolKind, ExternalKind, Linking, LinkingSectionReader, SegmentFlags, SymbolInfo};

/// What kind of entity a symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    /// A function.
    Function,
    /// A range of a data segment.
    Data,
    /// A global.
    Global,
    /// A section (debug info).
    Section,
    /// An exception tag.
    Tag,
    /// A table.
    Table,
}

/// Where a defined data symbol lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRef {
    /// The segment.
    pub segment: SegmentIndex,
    /// Offset within the segment.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// What a symbol refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolTarget {
    /// A function, imported (undefined symbol) or defined.
    Function(FuncIndex),
    /// A data range, or `None` for an undefined data symbol.
    Data(Option<DataRef>),
    /// A global.
    Global(GlobalIndex),
    /// A section.
    Section(SectionIndex),
    /// A tag.
    Tag(TagIndex),
    /// A table.
    Table(TableIndex),
}

/// One symbol table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// The symbol's name: its own, or for an undefined symbol without an explicit name, the
    /// import's field name. A section symbol takes the section's name.
    pub name: &'a str,
    /// `WASM_SYM_*` flags.
    pub flags: SymbolFlags,
    /// What it refers to.
    pub target: SymbolTarget,
    /// For an undefined function, global, table or tag: the import module and field.
    pub import: Option<(&'a str, &'a str)>,
}

impl Symbol<'_> {
    /// The kind of entity.
    pub fn kind(&self) -> SymbolKind {
        match self.target {
            SymbolTarget::Function(_) => SymbolKind::Function,
            SymbolTarget::Data(_) => SymbolKind::Data,
            SymbolTarget::Global(_) => SymbolKind::Global,
            SymbolTarget::Section(_) => SymbolKind::Section,
            SymbolTarget::Tag(_) => SymbolKind::Tag,
            SymbolTarget::Table(_) => SymbolKind::Table,
        }
    }

    /// Not defined in this object.
    pub fn is_undefined(&self) -> bool {
        self.flags.contains(SymbolFlags::UNDEFINED)
    }

    /// Weak binding.
    pub fn is_weak(&self) -> bool {
        self.flags.contains(SymbolFlags::BINDING_WEAK)
    }

    /// Local binding: invisible outside the object.
    pub fn is_local(&self) -> bool {
        self.flags.contains(SymbolFlags::BINDING_LOCAL)
    }

    /// Hidden visibility: not exported from a linked module.
    pub fn is_hidden(&self) -> bool {
        self.flags.contains(SymbolFlags::VISIBILITY_HIDDEN)
    }

    /// Thread-local.
    pub fn is_tls(&self) -> bool {
        self.flags.contains(SymbolFlags::TLS)
    }
}

/// A data segment's entry in the segment info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo<'a> {
    /// The segment's name (`.rodata.str`, `.bss.counter`, `.tdata.x`).
    pub name: &'a str,
    /// Alignment as a power of two.
    pub align_log2: u32,
    /// `WASM_SEG_FLAG_*`: strings, TLS, retain.
    pub flags: u32,
}

impl SegmentInfo<'_> {
    /// Holds only NUL-terminated strings (mergeable).
    pub fn is_strings(&self) -> bool {
        self.flags & SegmentFlags::STRINGS.bits() != 0
    }

    /// Thread-local data.
    pub fn is_tls(&self) -> bool {
        self.flags & SegmentFlags::TLS.bits() != 0
    }
}

/// An init function (constructor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitFunc {
    /// Lower runs first.
    pub priority: u32,
    /// The function symbol.
    pub symbol: SymbolIndex,
}

/// A member of a comdat group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComdatMember {
    /// A data segment.
    Data(SegmentIndex),
    /// A function.
    Function(FuncIndex),
    /// A global.
    Global(GlobalIndex),
    /// A tag.
    Tag(TagIndex),
    /// A table.
    Table(TableIndex),
    /// A custom section.
    Section(SectionIndex),
}

/// A comdat group: the linker keeps the first group of a name and drops later ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comdat<'a> {
    /// The group's name.
    pub name: &'a str,
    /// Its flags (none are defined yet).
    pub flags: u32,
    /// Its members.
    pub members: Vec<ComdatMember>,
}

/// The section as read, before names are resolved against the imports.
pub(super) struct LinkingSection<'a> {
    version: u32,
    /// Symbols with the name they carry in the table (`None` for unnamed undefined ones),
    /// and the byte offset of each entry.
    symbols: Vec<(Option<&'a str>, SymbolFlags, SymbolTarget, usize)>,
    segments: Option<(Vec<SegmentInfo<'a>>, usize)>,
    init_funcs: Vec<(InitFunc, usize)>,
    comdats: Vec<(Comdat<'a>, usize)>,
}

/// Reads the contents of a `linking` section that start at `offset` in the file.
pub(super) fn read<'a>(file: &str, contents: &'a [u8], offset: usize) -> Result<LinkingSection<'a>> {
    let err = |e: wasmparser::BinaryReaderError| {
        if e.message().starts_with("unsupported linking section version") {
            let mut r = BinaryReader::new(contents, offset);
            let version = r.read_var_u32().unwrap_or(0);
            Error::new(file, Some(LINKING), offset, ErrorKind::LinkingVersion(version))
        } else {
            Error::from_parser(file, Some(LINKING), &e)
        }
    };
    let reader = LinkingSectionReader::new(BinaryReader::new(contents, offset)).map_err(err)?;
    let mut out =
        LinkingSection { version: reader.version(), symbols: Vec::new(), segments: None, init_funcs: Vec::new(), comdats: Vec::new() };
    let mut subsections = reader.subsections();
    loop {
        let at = subsections.original_position();
        let Some(sub) = subsections.next() else { break };
        match sub.map_err(err)? {
            Linking::SymbolTable(map) => {
                for entry in map.into_iter_with_offsets() {
                    let (entry_offset, info) = entry.map_err(err)?;
                    out.symbols.push(symbol(info, entry_offset));
                }
            }
            Linking::SegmentInfo(map) => {
                let mut segments = Vec::new();
                for seg in map {
                    let seg = seg.map_err(err)?;
                    segments.push(SegmentInfo { name: seg.name, align_log2: seg.alignment, flags: seg.flags.bits() });
                }
                out.segments = Some((segments, at));
            }
            Linking::InitFuncs(map) => {
                for init in map.into_iter_with_offsets() {
                    let (init_offset, init) = init.map_err(err)?;
                    out.init_funcs.push((InitFunc { priority: init.priority, symbol: SymbolIndex(init.symbol_index) }, init_offset));
                }
            }
            Linking::ComdatInfo(map) => {
                for comdat in map.into_iter_with_offsets() {
                    let (comdat_offset, comdat) = comdat.map_err(err)?;
                    let mut members = Vec::new();
                    for member in comdat.symbols {
                        let member = member.map_err(err)?;
                        members.push(match member.kind {
                            ComdatSymbolKind::Data => ComdatMember::Data(SegmentIndex(member.index)),
                            ComdatSymbolKind::Func => ComdatMember::Function(FuncIndex(member.index)),
                            ComdatSymbolKind::Global => ComdatMember::Global(GlobalIndex(member.index)),
                            ComdatSymbolKind::Event => ComdatMember::Tag(TagIndex(member.index)),
                            ComdatSymbolKind::Table => ComdatMember::Table(TableIndex(member.index)),
                            ComdatSymbolKind::Section => ComdatMember::Section(SectionIndex(member.index)),
                        });
                    }
                    out.comdats.push((Comdat { name: comdat.name, flags: comdat.flags, members }, comdat_offset));
                }
            }
            // Unknown subsections are allowed by the format and carry nothing we use.
            Linking::Unknown { .. } => {}
        }
    }
    Ok(out)
}

fn symbol(info: SymbolInfo<'_>, offset: usize) -> (Option<&str>, SymbolFlags, SymbolTarget, usize) {
    match info {
        SymbolInfo::Func { flags, index, name } => (name, flags, SymbolTarget::Function(FuncIndex(index)), offset),
        SymbolInfo::Data { flags, name, symbol } => (
            Some(name),
            flags,
            SymbolTarget::Data(symbol.map(|d| DataRef { segment: SegmentIndex(d.index), offset: d.offset, size: d.size })),
            offset,
        ),
        SymbolInfo::Global { flags, index, name } => (name, flags, SymbolTarget::Global(GlobalIndex(index)), offset),
        SymbolInfo::Section { flags, section } => (None, flags, SymbolTarget::Section(SectionIndex(section)), offset),
        SymbolInfo::Event { flags, index, name } => (name, flags, SymbolTarget::Tag(TagIndex(index)), offset),
        SymbolInfo::Table { flags, index, name } => (name, flags, SymbolTarget::Table(TableIndex(index)), offset),
    }
}

impl<'a> LinkingSection<'a> {
    /// Moves the section into the object, resolving import names, checking every index
    /// against the module's sections.
    pub(super) fn install(self, obj: &mut Object<'a>) -> Result<()> {
        let file = obj.name.clone();
        let bad = |offset: usize, kind: ErrorKind| Error::new(&file, Some(LINKING), offset, kind);
        obj.linking_version = Some(self.version);
        for (i, (name, flags, target, offset)) in self.symbols.into_iter().enumerate() {
            let symbol_index = u32::try_from(i).unwrap_or(u32::MAX);
            let out_of_range = |what: &'static str, index: u32, count: usize| {
                bad(offset, ErrorKind::SymbolTargetOutOfRange { symbol: symbol_index, what, index, count })
            };
            let (kind, index, count, what) = match target {
                SymbolTarget::Function(f) => (ExternalKind::Func, f.0, obj.func_count(), "function"),
                SymbolTarget::Global(g) => (ExternalKind::Global, g.0, obj.global_count(), "global"),
                SymbolTarget::Table(t) => (ExternalKind::Table, t.0, obj.table_count(), "table"),
                SymbolTarget::Tag(t) => (ExternalKind::Tag, t.0, obj.tag_count(), "tag"),
                SymbolTarget::Section(s) => {
                    let section = obj.sections.get(s.as_usize()).ok_or_else(|| out_of_range("section", s.0, obj.sections.len()))?;
                    obj.symbols.push(Symbol { name: section.name, flags, target, import: None });
                    continue;
                }
                SymbolTarget::Data(data) => {
                    if let Some(d) = data {
                        let segment =
                            obj.data.get(d.segment.as_usize()).ok_or_else(|| out_of_range("data segment", d.segment.0, obj.data.len()))?;
                        let end = u64::from(d.offset) + u64::from(d.size);
                        if end > segment.data.len() as u64 {
                            return Err(bad(
                                offset,
                                ErrorKind::DataSymbolOutOfSegment {
                                    name: name.unwrap_or_default().to_owned(),
                                    offset: d.offset,
                                    size: d.size,
                                    segment_len: segment.data.len(),
                                },
                            ));
                        }
                    }
                    obj.symbols.push(Symbol { name: name.unwrap_or_default(), flags, target, import: None });
                    continue;
                }
            };
            if index as usize >= count {
                return Err(out_of_range(what, index, count));
            }
            let import = if flags.contains(SymbolFlags::UNDEFINED) {
                let import = obj.nth_import(kind, index).ok_or_else(|| {
                    bad(
                        offset,
                        ErrorKind::BadLinkingReference(format!(
                            "undefined symbol {symbol_index} names {what} {index}, which is not imported"
                        )),
                    )
                })?;
                Some((import.module, import.field))
            } else {
                None
            };
            let name = match (name, import) {
                (Some(name), _) => name,
                (None, Some((_, field))) => field,
                (None, None) => {
                    return Err(bad(offset, ErrorKind::BadLinkingReference(format!("defined symbol {symbol_index} has no name"))));
                }
            };
            obj.symbols.push(Symbol { name, flags, target, import });
        }
        if let Some((segments, offset)) = self.segments {
            if segments.len() != obj.data.len() {
                return Err(bad(offset, ErrorKind::SegmentCountMismatch { info: segments.len(), data: obj.data.len() }));
            }
            for (segment, info) in obj.data.iter_mut().zip(segments) {
                segment.info = Some(info);
            }
        }
        for (init, offset) in self.init_funcs {
            match obj.symbols.get(init.symbol.as_usize()) {
                Some(s) if s.kind() == SymbolKind::Function => obj.init_funcs.push(init),
                Some(_) => {
                    return Err(bad(
                        offset,
                        ErrorKind::BadLinkingReference(format!("init function symbol {} is not a function", init.symbol)),
                    ));
                }
                None => {
                    return Err(bad(
                        offset,
                        ErrorKind::BadLinkingReference(format!("init function symbol {} does not exist", init.symbol)),
                    ));
                }
            }
        }
        for (comdat, offset) in self.comdats {
            for member in &comdat.members {
                let (what, index, count) = match *member {
                    ComdatMember::Data(s) => ("data segment", s.0, obj.data.len()),
                    ComdatMember::Function(f) => ("function", f.0, obj.func_count()),
                    ComdatMember::Global(g) => ("global", g.0, obj.global_count()),
                    ComdatMember::Tag(t) => ("tag", t.0, obj.tag_count()),
                    ComdatMember::Table(t) => ("table", t.0, obj.table_count()),
                    ComdatMember::Section(s) => ("section", s.0, obj.sections.len()),
                };
                if index as usize >= count {
                    let msg = format!("comdat {} member {what} {index} does not exist (there are {count})", comdat.name);
                    return Err(bad(offset, ErrorKind::BadLinkingReference(msg)));
                }
            }
            obj.comdats.push(comdat);
        }
        Ok(())
    }
}
