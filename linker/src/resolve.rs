//! Phase 2: resolve symbols.
//!
//! Every object symbol is mapped to one [`SymId`]: local symbols get their own, global ones
//! share one per name. A strong definition beats a weak one, the first weak definition wins
//! among weak ones, two strong definitions are an error naming both files. Comdat groups:
//! the first object that has a group keeps it; later copies' functions and data segments are
//! discarded and their symbols act as references. A name left undefined is looked up in the
//! side modules given as inputs, then among the linker-defined names; whatever remains
//! becomes an import (decided by the scan phase, which knows how it is used).

use crate::error::{LinkError, Result};
use crate::input::Inputs;
use pymode_abi::names;
use pymode_abi::object::{ComdatMember, FuncIndex, Object, SegmentIndex, SymbolIndex, SymbolKind, SymbolTarget};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashMap;
use wasmparser::{FuncType, GlobalType, TableType};

pub use crate::ids::{FileId, SymId};

/// Symbols the linker itself defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synthetic {
    /// `__dso_handle`: the module's identity for `__cxa_atexit`, the start of its data.
    DsoHandle,
}

/// Where a resolved symbol is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Definition {
    /// In a loaded object.
    Object {
        /// The object.
        file: FileId,
        /// Its symbol table entry.
        symbol: SymbolIndex,
    },
    /// By a side module given as an input (index into [`Inputs::shared`]).
    Shared(usize),
    /// By the linker.
    Synthetic(Synthetic),
    /// Nowhere in this link: it is imported.
    Undefined,
}

/// What an undefined symbol's import looks like, taken from the first object that imports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportType {
    /// A function of this type.
    Function(FuncType),
    /// A global of this type.
    Global(GlobalType),
    /// A table of this type.
    Table(TableType),
    /// Data symbols have no import in the object; they are reached through `GOT.mem`.
    Data,
}

/// One resolved symbol.
#[derive(Debug, Clone)]
pub struct ResolvedSymbol<'a> {
    /// Its name.
    pub name: &'a str,
    /// Function, data, global, ...
    pub kind: SymbolKind,
    /// Where it is defined.
    pub definition: Definition,
    /// Defined weak, or (if undefined) referenced only weakly.
    pub weak: bool,
    /// Hidden in any object that mentions it: never exported or imported by name.
    pub hidden: bool,
    /// Local to its object.
    pub local: bool,
    /// For an undefined function, global or table: module, field and type of the import.
    pub import: Option<(&'a str, &'a str, ImportType)>,
    /// The first object that mentions it, for messages.
    pub first_file: FileId,
}

impl ResolvedSymbol<'_> {
    /// Defined in one of the objects (or by the linker): its address or index is known here.
    pub fn is_defined_here(&self) -> bool {
        matches!(self.definition, Definition::Object { .. } | Definition::Synthetic(_))
    }
}

/// What an object lost to an earlier copy of a comdat group.
#[derive(Debug, Clone, Default)]
pub struct Discarded {
    /// Functions not emitted.
    pub functions: FxHashSet<FuncIndex>,
    /// Data segments not emitted.
    pub segments: FxHashSet<SegmentIndex>,
}

impl Discarded {
    /// Whether the object lost nothing (the usual case: callers skip the lookups).
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty() && self.segments.is_empty()
    }
}

/// The result of resolution.
#[derive(Debug)]
pub struct Resolution<'a> {
    /// Every resolved symbol.
    pub symbols: Vec<ResolvedSymbol<'a>>,
    /// For each object, for each of its symbol table entries, the resolved symbol.
    pub file_symbols: Vec<Vec<SymId>>,
    /// For each object, what comdat resolution dropped.
    pub discarded: Vec<Discarded>,
    /// Global names to their symbol.
    pub by_name: FxHashMap<&'a str, SymId>,
}

impl<'a> Resolution<'a> {
    /// The resolved symbol behind an object's symbol table entry.
    pub fn of(&self, file: FileId, symbol: SymbolIndex) -> Option<SymId> {
        self.file_symbols.get(file.as_usize())?.get(symbol.as_usize()).copied()
    }

    /// Every resolved symbol with its id.
    pub fn enumerate(&self) -> impl Iterator<Item = (SymId, &ResolvedSymbol<'a>)> + '_ {
        // ok: push() refused more symbols than a SymId can number.
        self.symbols.iter().enumerate().map(|(i, sym)| (SymId(i as u32), sym))
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// A resolved symbol.
    pub fn get(&self, id: SymId) -> &ResolvedSymbol<'a> {
        // ok: SymIds are only made by `resolve`, as indices into this vector.
        &self.symbols[id.as_usize()]
    }
}

fn kind_name(kind: SymbolKind) -> &'static str {
    match kind {
        SymbolKind::Function => "function",
        SymbolKind::Data => "data",
        SymbolKind::Global => "global",
        SymbolKind::Section => "section",
        SymbolKind::Tag => "tag",
        SymbolKind::Table => "table",
    }
}

/// Resolves every symbol of every object.
///
/// # Errors
/// Duplicate strong definitions, or one name used for two kinds of symbol.
pub fn resolve<'a>(inputs: &Inputs<'a>) -> Result<Resolution<'a>> {
    let symbol_count: usize = inputs.objects.iter().map(|o| o.symbols.len()).sum();
    let mut res = Resolution {
        symbols: Vec::with_capacity(symbol_count),
        file_symbols: Vec::with_capacity(inputs.objects.len()),
        discarded: Vec::with_capacity(inputs.objects.len()),
        by_name: FxHashMap::with_capacity_and_hasher(symbol_count, Default::default()),
    };
    let mut comdat_owner: HashMap<&str, FileId> = HashMap::new();
    for (file, obj) in inputs.enumerate_files() {
        res.discarded.push(discard_comdats(obj, file, &mut comdat_owner));
        let mut ids = Vec::with_capacity(obj.symbols.len());
        for (index, sym) in obj.symbols.iter().enumerate() {
            let symbol = SymbolIndex(u32::try_from(index).map_err(|_| LinkError::TooLarge("symbol count"))?);
            // ok: `file` indexes the vector pushed just above.
            let defined_here = !sym.is_undefined() && !is_discarded(&res.discarded[file.as_usize()], sym.target);
            let definition = if defined_here { Definition::Object { file, symbol } } else { Definition::Undefined };
            let import = if sym.is_undefined() { import_of(obj, sym.target, sym.import) } else { None };
            let fresh = ResolvedSymbol {
                name: sym.name,
                kind: sym.kind(),
                definition,
                weak: sym.is_weak(),
                hidden: sym.is_hidden(),
                local: sym.is_local() || sym.kind() == SymbolKind::Section,
                import,
                first_file: file,
            };
            if fresh.local {
                ids.push(push(&mut res.symbols, fresh)?);
                continue;
            }
            let Some(&id) = res.by_name.get(sym.name) else {
                let id = push(&mut res.symbols, fresh)?;
                res.by_name.insert(sym.name, id);
                ids.push(id);
                continue;
            };
            ids.push(id);
            let existing = &mut res.symbols[id.as_usize()]; // ok: ids index `symbols`
            if existing.kind != fresh.kind {
                return Err(LinkError::SymbolKindMismatch {
                    name: sym.name.to_owned(),
                    first_kind: kind_name(existing.kind),
                    first: inputs.file_name(existing.first_file),
                    second_kind: kind_name(fresh.kind),
                    second: obj.name.clone(),
                });
            }
            existing.hidden |= fresh.hidden;
            merge(existing, fresh, inputs, obj)?;
        }
        res.file_symbols.push(ids);
    }
    bind_leftovers(&mut res, inputs);
    Ok(res)
}

fn push<'a>(symbols: &mut Vec<ResolvedSymbol<'a>>, symbol: ResolvedSymbol<'a>) -> Result<SymId> {
    let id = SymId(u32::try_from(symbols.len()).map_err(|_| LinkError::TooLarge("symbol count"))?);
    symbols.push(symbol);
    Ok(id)
}

/// Combines a second mention of a global name into the symbol.
fn merge<'a>(existing: &mut ResolvedSymbol<'a>, fresh: ResolvedSymbol<'a>, inputs: &Inputs<'a>, obj: &Object<'a>) -> Result<()> {
    match (existing.definition, fresh.definition) {
        (Definition::Object { file, .. }, Definition::Object { .. }) => {
            if !existing.weak && !fresh.weak {
                return Err(LinkError::DuplicateSymbol {
                    name: fresh.name.to_owned(),
                    first: inputs.file_name(file),
                    second: obj.name.clone(),
                });
            }
            // A strong definition replaces a weak one; among weak ones the first stays.
            if existing.weak && !fresh.weak {
                existing.definition = fresh.definition;
                existing.weak = false;
            }
        }
        (Definition::Object { .. }, _) => {}
        (_, Definition::Object { .. }) => {
            existing.definition = fresh.definition;
            existing.weak = fresh.weak;
        }
        _ => {
            // Both undefined: weak only while every reference is weak.
            existing.weak &= fresh.weak;
            if existing.import.is_none() {
                existing.import = fresh.import;
            }
        }
    }
    Ok(())
}

/// Names nothing defined: side-module inputs first, then the linker's own.
fn bind_leftovers(res: &mut Resolution<'_>, inputs: &Inputs<'_>) {
    let mut shared: HashMap<&str, usize> = HashMap::new();
    for (i, lib) in inputs.shared.iter().enumerate() {
        for (name, _) in &lib.exports {
            shared.entry(name).or_insert(i);
        }
    }
    for sym in res.symbols.iter_mut().filter(|s| !s.local && s.definition == Definition::Undefined) {
        if let Some(&lib) = shared.get(sym.name) {
            sym.definition = Definition::Shared(lib);
        } else if sym.name == names::DSO_HANDLE && sym.kind == SymbolKind::Data {
            sym.definition = Definition::Synthetic(Synthetic::DsoHandle);
            sym.hidden = true;
        }
    }
}

/// Records which comdat groups this object loses to earlier objects.
fn discard_comdats<'a>(obj: &Object<'a>, file: FileId, owner: &mut HashMap<&'a str, FileId>) -> Discarded {
    let mut discarded = Discarded::default();
    for comdat in &obj.comdats {
        if *owner.entry(comdat.name).or_insert(file) == file {
            continue;
        }
        for member in &comdat.members {
            match *member {
                ComdatMember::Function(f) => {
                    discarded.functions.insert(f);
                }
                ComdatMember::Data(s) => {
                    discarded.segments.insert(s);
                }
                // Globals, tags, tables and custom sections in comdats do not occur in C
                // objects; they are kept (custom sections are dropped anyway).
                _ => {}
            }
        }
    }
    discarded
}

fn is_discarded(discarded: &Discarded, target: SymbolTarget) -> bool {
    if discarded.is_empty() {
        return false;
    }
    match target {
        SymbolTarget::Function(f) => discarded.functions.contains(&f),
        SymbolTarget::Data(Some(d)) => discarded.segments.contains(&d.segment),
        _ => false,
    }
}

/// The import an undefined symbol carries in its object.
fn import_of<'a>(obj: &Object<'a>, target: SymbolTarget, import: Option<(&'a str, &'a str)>) -> Option<(&'a str, &'a str, ImportType)> {
    let (module, field) = import?;
    let ty = match target {
        SymbolTarget::Function(f) => ImportType::Function(obj.func_type(f)?.clone()),
        SymbolTarget::Global(g) => ImportType::Global(*obj.imported_globals.get(g.as_usize())?),
        SymbolTarget::Table(t) => ImportType::Table(*obj.imported_tables.get(t.as_usize())?),
        _ => return None,
    };
    Some((module, field, ty))
}
