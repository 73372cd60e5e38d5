//! Phase 3: scan relocations.
//!
//! Each relocation of a kept function or data segment is located (which function body or
//! segment, at which offset) and classified: which symbols need a GOT global, which
//! functions need a table slot, which undefined functions and globals must be imported.
//! Relocations that a side module cannot honour (absolute addresses from non-PIC code) are
//! refused here with lld's message. Debug sections are dropped, so their relocations are not
//! looked at.

use crate::error::{LinkError, Result};
use crate::ids::{DefinedFunc, FileId};
use crate::input::Inputs;
use crate::options::{Binding, PicRewrite};
use crate::resolve::{Definition, Resolution, ResolvedSymbol, SymId};
use pymode_abi::object::{FuncIndex, Object, Relocation, SegmentIndex, SymbolIndex, SymbolKind};
use pymode_abi::reloc::{RelocBase, RelocKind, RelocTarget};

/// An insertion-ordered set with FxHash: the order is the output order, and SipHash's
/// collision resistance buys a linker nothing.
pub type FxIndexSet<T> = indexmap::IndexSet<T, rustc_hash::FxBuildHasher>;

/// Where a relocation site is, in terms of what the linker copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Inside a defined function's body (locals and code, without the size prefix).
    Code {
        /// The function, among the object's defined functions.
        function: DefinedFunc,
        /// Offset of the site from the body's start.
        offset: usize,
    },
    /// Inside a data segment's bytes.
    Data {
        /// The segment.
        segment: SegmentIndex,
        /// Offset of the site from the segment's start.
        offset: usize,
    },
}

impl Place {
    /// The input section the site is in, for messages: `code` or `data`.
    pub fn section_name(&self) -> &'static str {
        match self {
            Place::Code { .. } => "code",
            Place::Data { .. } => "data",
        }
    }
}

/// A located relocation.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    /// Where it patches.
    pub place: Place,
    /// The entry.
    pub reloc: Relocation,
    /// The resolved symbol, for every kind but `TYPE_INDEX_LEB`.
    pub symbol: Option<SymId>,
}

/// What the relocations need.
#[derive(Debug, Default)]
pub struct Scan {
    /// Located relocations of kept code and data, per object.
    pub sites: Vec<Vec<Site>>,
    /// Symbols read through a GOT global, in first-use order.
    pub got: FxIndexSet<SymId>,
    /// Functions that need a slot in the module's table range, in first-use order.
    pub table_slots: FxIndexSet<SymId>,
    /// Undefined functions that are called (become `env` imports).
    pub func_imports: FxIndexSet<SymId>,
    /// Undefined globals that are used (`__stack_pointer`, `__memory_base`, ...).
    pub global_imports: FxIndexSet<SymId>,
    /// Some code uses the indirect function table.
    pub uses_table: bool,
    /// Some data holds an address: `__wasm_apply_data_relocs` is needed.
    pub has_data_relocs: bool,
    /// Some code relocation assumes absolute placement: [`crate::rewrite`] has work to do.
    pub has_absolute_code: bool,
}

/// Whether references to a symbol must go through the loader (an import) rather than be
/// computed inside the module.
pub fn binds_externally(sym: &ResolvedSymbol<'_>, binding: Binding) -> bool {
    !sym.is_defined_here() || (binding == Binding::Interposable && !sym.hidden && !sym.local)
}

/// Scans every kept relocation.
///
/// # Errors
/// Non-PIC relocations (with `--pic-rewrite=off`, or 64-bit ones), relocations this linker
/// does not support, or a relocation that needs a symbol defined in this module when it is
/// not.
pub fn scan(inputs: &Inputs<'_>, res: &Resolution<'_>, binding: Binding, pic_rewrite: PicRewrite) -> Result<Scan> {
    let mut scan = Scan::default();
    // Locating is per object and independent: in parallel. Classifying stays in link order,
    // which decides the order of GOT entries, table slots and imports.
    let files: Vec<(FileId, &Object<'_>)> = inputs.enumerate_files().collect();
    let located = crate::parallel::map(&files, 4, |&(file, obj)| locate(obj, file, res));
    for (&(file, obj), sites) in files.iter().zip(located) {
        let sites = sites?;
        // An object that names the table (call_indirect, or NO_STRIP) keeps it imported.
        scan.uses_table |=
            obj.symbols.iter().any(|s| s.kind() == SymbolKind::Table && s.name == pymode_abi::names::INDIRECT_FUNCTION_TABLE);
        for site in &sites {
            classify(&mut scan, obj, res, binding, pic_rewrite, site)?;
        }
        scan.sites.push(sites);
        for init in &obj.init_funcs {
            if let Some(id) = res.of(file, init.symbol)
                && !res.get(id).is_defined_here()
            {
                return Err(LinkError::UndefinedSymbol { file: obj.name.clone(), name: res.get(id).name.to_owned() });
            }
        }
    }
    Ok(scan)
}

/// Finds the function body or data segment of every relocation in `reloc.CODE` and
/// `reloc.DATA`, skipping what comdat resolution discarded.
fn locate(obj: &Object<'_>, file: FileId, res: &Resolution<'_>) -> Result<Vec<Site>> {
    let mut sites = Vec::with_capacity(obj.relocations.iter().map(|r| r.entries.len()).sum());
    let discarded = res.discarded.get(file.as_usize()).filter(|d| !d.is_empty());
    for section in &obj.relocations {
        let Some(target) = obj.section(section.target) else { continue };
        let base = target.contents.start;
        match target.id {
            10 => {
                // Bodies lie in file order inside the code section: binary search by start.
                let starts: Vec<usize> = obj.functions.iter().map(|f| f.body.start).collect();
                // Entries usually come in offset order, several per body: try the last body
                // found before searching.
                let mut last = 0;
                for reloc in &section.entries {
                    let at = base + reloc.offset as usize;
                    let same = starts.get(last).is_some_and(|&s| s <= at) && starts.get(last + 1).is_none_or(|&next| next > at);
                    let found = if same { Some(last) } else { starts.partition_point(|&s| s <= at).checked_sub(1) };
                    let function = match found {
                        Some(f) if obj.functions.get(f).is_some_and(|b| b.body.end >= at + reloc.kind.width().bytes()) => f,
                        _ => return Err(outside(obj, reloc, "a function body")),
                    };
                    last = function;
                    let offset = at - starts[function]; // ok: partition_point found it
                    // ok: the function section's count is a u32.
                    let (index, function) = (FuncIndex((obj.imported_funcs.len() + function) as u32), DefinedFunc(function as u32));
                    if discarded.is_some_and(|d| d.functions.contains(&index)) {
                        continue;
                    }
                    sites.push(Site { place: Place::Code { function, offset }, reloc: *reloc, symbol: symbol_of(res, file, reloc) });
                }
            }
            11 => {
                // Segments lie in file order too: binary search by where their bytes start.
                let starts: Vec<usize> = obj.data.iter().map(|d| d.data_offset).collect();
                let mut last = 0;
                for reloc in &section.entries {
                    let at = base + reloc.offset as usize;
                    let width = reloc.kind.width().bytes();
                    let same = starts.get(last).is_some_and(|&s| s <= at) && starts.get(last + 1).is_none_or(|&next| next > at);
                    let found = if same { Some(last) } else { starts.partition_point(|&s| s <= at).checked_sub(1) };
                    let Some(segment) = found.filter(|&d| obj.data.get(d).is_some_and(|d| at + width <= d.data_offset + d.data.len()))
                    else {
                        return Err(outside(obj, reloc, "a data segment"));
                    };
                    last = segment;
                    let segment = SegmentIndex(segment as u32); // ok: fewer segments than bytes
                    if discarded.is_some_and(|d| d.segments.contains(&segment)) {
                        continue;
                    }
                    let offset = at - obj.data[segment.as_usize()].data_offset; // ok: found above
                    sites.push(Site { place: Place::Data { segment, offset }, reloc: *reloc, symbol: symbol_of(res, file, reloc) });
                }
            }
            // Debug and other custom sections are not copied.
            _ => {}
        }
    }
    Ok(sites)
}

fn symbol_of(res: &Resolution<'_>, file: FileId, reloc: &Relocation) -> Option<SymId> {
    if reloc.kind.index_is_symbol() { res.of(file, SymbolIndex(reloc.index)) } else { None }
}

fn outside(obj: &Object<'_>, reloc: &Relocation, what: &str) -> LinkError {
    LinkError::Unsupported {
        file: obj.name.clone(),
        what: format!("relocation {} at offset 0x{:x} outside {what}", reloc.kind, reloc.offset),
    }
}

/// Records what one relocation needs, or refuses it.
fn classify(scan: &mut Scan, obj: &Object<'_>, res: &Resolution<'_>, binding: Binding, pic_rewrite: PicRewrite, site: &Site) -> Result<()> {
    let kind = site.reloc.kind;
    let in_data = matches!(site.place, Place::Data { .. });
    let Some(id) = site.symbol else {
        // TYPE_INDEX_LEB: nothing to decide.
        return Ok(());
    };
    let sym = res.get(id);
    let unsupported = || LinkError::UnsupportedRelocation {
        file: obj.name.clone(),
        kind: kind.name(),
        section: site.place.section_name(),
        offset: site.reloc.offset,
        symbol: sym.name.to_owned(),
    };
    let must_be_here = || {
        if sym.is_defined_here() { Ok(()) } else { Err(LinkError::UndefinedSymbol { file: obj.name.clone(), name: sym.name.to_owned() }) }
    };
    if is_absolute_address(kind) {
        // The rewrite handles the wasm32 kinds in code; wasm64 and data sites stay refused.
        let rewritable = matches!(kind, RelocKind::TableIndexSleb | RelocKind::MemoryAddrSleb | RelocKind::MemoryAddrLeb);
        if pic_rewrite == PicRewrite::Off || in_data || !rewritable {
            return Err(LinkError::NotPic { file: obj.name.clone(), kind: kind.name(), symbol: sym.name.to_owned() });
        }
        scan.has_absolute_code = true;
        // The rewritten code reads what it cannot compute from the bases from a GOT global,
        // exactly as PIC code would.
        match (kind, sym.kind) {
            (RelocKind::TableIndexSleb, SymbolKind::Function) => {
                if binds_externally(sym, binding) {
                    scan.got.insert(id);
                } else {
                    scan.table_slots.insert(id);
                }
            }
            (RelocKind::MemoryAddrSleb | RelocKind::MemoryAddrLeb, SymbolKind::Data) => {
                if binds_externally(sym, binding) {
                    scan.got.insert(id);
                }
            }
            _ => return Err(unsupported()),
        }
        return Ok(());
    }
    match (kind.target(), in_data) {
        (RelocTarget::FunctionIndex, false) => {
            // wasm-ld calls an interposable weak definition through its import, so that a
            // strong definition loaded earlier wins.
            let interposable_weak = binding == Binding::Interposable && sym.weak && !sym.hidden && !sym.local;
            if !sym.is_defined_here() || interposable_weak {
                scan.func_imports.insert(id);
            }
        }
        (RelocTarget::TableSlot, false) if kind.base() == RelocBase::TableBase => {
            must_be_here()?;
            scan.table_slots.insert(id);
        }
        (RelocTarget::TableSlot, true) if kind == RelocKind::TableIndexI32 => {
            scan.has_data_relocs = true;
            if binds_externally(sym, binding) {
                scan.got.insert(id);
            } else {
                scan.table_slots.insert(id);
            }
        }
        (RelocTarget::MemoryAddress, false) if kind == RelocKind::MemoryAddrRelSleb => must_be_here()?,
        (RelocTarget::MemoryAddress, true) if kind == RelocKind::MemoryAddrI32 => {
            scan.has_data_relocs = true;
            if binds_externally(sym, binding) {
                scan.got.insert(id);
            }
        }
        (RelocTarget::MemoryAddress, true) if kind == RelocKind::MemoryAddrLocrelI32 => must_be_here()?,
        (RelocTarget::GlobalIndex, false) if kind == RelocKind::GlobalIndexLeb => match sym.kind {
            SymbolKind::Global => {
                if sym.definition == Definition::Undefined || matches!(sym.definition, Definition::Shared(_)) {
                    scan.global_imports.insert(id);
                } else {
                    return Err(LinkError::Unsupported {
                        file: obj.name.clone(),
                        what: format!("defining the wasm global `{}`", sym.name),
                    });
                }
            }
            SymbolKind::Function | SymbolKind::Data => {
                scan.got.insert(id);
                if sym.kind == SymbolKind::Function && !binds_externally(sym, binding) {
                    scan.table_slots.insert(id);
                }
            }
            _ => return Err(unsupported()),
        },
        (RelocTarget::TableNumber, false) => {
            if sym.kind != SymbolKind::Table || sym.name != pymode_abi::names::INDIRECT_FUNCTION_TABLE {
                return Err(unsupported());
            }
            scan.uses_table = true;
        }
        _ => return Err(unsupported()),
    }
    Ok(())
}

/// Relocations that would need the module's absolute address at link time, which a side
/// module does not know (lld refuses the same set under `--shared`; we rewrite the code).
pub fn is_absolute_address(kind: RelocKind) -> bool {
    matches!(
        kind,
        RelocKind::TableIndexSleb
            | RelocKind::TableIndexSleb64
            | RelocKind::MemoryAddrSleb
            | RelocKind::MemoryAddrLeb
            | RelocKind::MemoryAddrSleb64
            | RelocKind::MemoryAddrLeb64
    )
}
