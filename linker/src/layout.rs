//! Phase 4: lay out memory, the table and the index spaces.
//!
//! Memory: input segments are merged by kind into output segments (`.rodata`, `.data`,
//! others, `.bss` last, as lld orders them), each input segment at its own alignment. Every
//! address is relative to `__memory_base`. MEM_INFO gets the total size and the largest
//! alignment.
//!
//! Table: one slot per function whose address the module computes itself, at
//! `__table_base + slot`.
//!
//! Index spaces: imported functions, then the objects' kept functions in input order, then
//! the synthesized `__wasm_call_ctors` and `__wasm_apply_data_relocs`. Globals: imports
//! (`env` globals, then `GOT.*`), then internal GOT globals, then the globals that export
//! data addresses.

use crate::error::{LinkError, Result};
use crate::input::Inputs;
use crate::options::{Binding, Options};
use crate::resolve::{Definition, FileId, ImportType, Resolution, SymId, Synthetic};
use crate::scan::{FxIndexSet, Scan, binds_externally};
use pymode_abi::MemInfo;
use pymode_abi::names;
use pymode_abi::object::{FuncIndex, SymbolKind, SymbolTarget};
use rustc_hash::FxHashMap;
use wasmparser::{FuncType, GlobalType, ValType};

/// An insertion-ordered map with FxHash (the order is the output order).
type FxIndexMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;

/// One input segment's place in an output segment.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    /// The object.
    pub file: FileId,
    /// Its segment.
    pub segment: usize,
    /// Offset inside the output segment.
    pub offset: u32,
}

/// A data segment of the output.
#[derive(Debug, Clone)]
pub struct OutputSegment {
    /// `.rodata`, `.data`, `.bss`, ...
    pub name: String,
    /// Offset from `__memory_base`.
    pub start: u32,
    /// Bytes.
    pub size: u32,
    /// Zero-initialised: not written to the data section (the loader hands out zeroed
    /// memory, DESIGN §5.6).
    pub bss: bool,
    /// What goes in it.
    pub pieces: Vec<Piece>,
}

/// An imported function.
#[derive(Debug, Clone)]
pub struct FuncImport<'a> {
    /// Module.
    pub module: &'a str,
    /// Field.
    pub field: &'a str,
    /// Output type index.
    pub ty: u32,
    /// The symbol.
    pub symbol: SymId,
}

/// An imported global.
#[derive(Debug, Clone)]
pub struct GlobalImport<'a> {
    /// Module (`env`, `GOT.mem`, `GOT.func`).
    pub module: &'a str,
    /// Field.
    pub field: &'a str,
    /// Its type.
    pub ty: GlobalType,
    /// The symbol it stands for, if any (the bases have none).
    pub symbol: Option<SymId>,
}

/// A global the module defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefinedGlobal {
    /// An internal GOT entry: the symbol's address computed from the bases.
    Got(SymId),
    /// The exported address of a data symbol (relative to `__memory_base`).
    DataExport(SymId),
}

/// An export.
#[derive(Debug, Clone)]
pub struct Export<'a> {
    /// Name.
    pub name: &'a str,
    /// Function or global.
    pub kind: wasmparser::ExternalKind,
    /// Output index.
    pub index: u32,
}

/// The output's shape: every index and address decided.
#[derive(Debug, Default)]
pub struct Layout<'a> {
    /// Output data segments.
    pub segments: Vec<OutputSegment>,
    /// Per object, per input segment: address relative to `__memory_base` (`None` if
    /// discarded).
    pub segment_address: Vec<Vec<Option<u32>>>,
    /// MEM_INFO.
    pub mem_info: MemInfo,
    /// Table slots relative to `__table_base`, in slot order.
    pub table_slots: FxIndexSet<SymId>,
    /// Whether the table is imported.
    pub imports_table: bool,
    /// Function types.
    pub types: FxIndexSet<FuncType>,
    /// Per object, its type index to output type index.
    pub type_map: Vec<Vec<u32>>,
    /// Imported functions (indices `0..`).
    pub func_imports: Vec<FuncImport<'a>>,
    /// Defined functions from objects, in output order.
    pub defined_funcs: Vec<(FileId, usize)>,
    /// Per object, per defined function: output function index (`None` if discarded).
    pub file_funcs: Vec<Vec<Option<u32>>>,
    /// Index of `__wasm_call_ctors`.
    pub call_ctors: u32,
    /// Index of `__wasm_apply_data_relocs`, when there are data relocations.
    pub apply_data_relocs: Option<u32>,
    /// Imported globals.
    pub global_imports: Vec<GlobalImport<'a>>,
    /// Globals the module defines, after the imports.
    pub defined_globals: Vec<DefinedGlobal>,
    /// `__memory_base`'s global index, when imported.
    pub memory_base: Option<u32>,
    /// `__table_base`'s global index, when imported.
    pub table_base: Option<u32>,
    /// Global-kind symbols (imports) to their index.
    pub symbol_global: FxHashMap<SymId, u32>,
    /// GOT entries to their global index.
    pub got_global: FxHashMap<SymId, u32>,
    /// Imported-function symbols to their index.
    pub symbol_func_import: FxHashMap<SymId, u32>,
    /// Exports, in order.
    pub exports: Vec<Export<'a>>,
}

const I32_CONST_GLOBAL: GlobalType = GlobalType { content_type: ValType::I32, mutable: false, shared: false };
const I32_MUT_GLOBAL: GlobalType = GlobalType { content_type: ValType::I32, mutable: true, shared: false };

fn u32_of(n: usize, what: &'static str) -> Result<u32> {
    u32::try_from(n).map_err(|_| LinkError::TooLarge(what))
}

/// Decides every address and index.
///
/// # Errors
/// TLS segments (not supported yet), sizes beyond 32 bits, or `--export` of a symbol that
/// is not defined.
pub fn layout<'a>(inputs: &Inputs<'a>, res: &Resolution<'a>, scan: &Scan, opts: &Options) -> Result<Layout<'a>> {
    let mut out = Layout::default();
    lay_out_memory(&mut out, inputs, res)?;
    out.table_slots = scan.table_slots.clone();
    out.imports_table = scan.uses_table || !out.table_slots.is_empty();
    out.mem_info.table_size = u32_of(out.table_slots.len(), "table")?;
    assign_types(&mut out, inputs)?;
    assign_functions(&mut out, inputs, res, scan)?;
    assign_globals(&mut out, inputs, res, scan, opts.binding)?;
    assign_exports(&mut out, inputs, res, opts)?;
    Ok(out)
}

/// The output segment an input segment goes to, as lld names them.
fn output_segment_name(name: &str) -> &str {
    for prefix in [".rodata", ".data", ".bss", ".text"] {
        if name.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')) {
            return prefix;
        }
    }
    name
}

/// `.rodata` first, `.data` next, unknown names after, `.bss` last (it needs no bytes).
fn segment_rank(name: &str) -> u8 {
    match name {
        ".rodata" => 0,
        ".data" => 1,
        ".bss" => 3,
        _ => 2,
    }
}

fn lay_out_memory(out: &mut Layout<'_>, inputs: &Inputs<'_>, res: &Resolution<'_>) -> Result<()> {
    // Group pieces by output segment, in order of first appearance, then sort by rank.
    // Output name → (largest alignment, members as (file, segment, alignment)).
    type Members = Vec<(FileId, usize, u32)>;
    let mut groups: FxIndexMap<&str, (u32, Members)> = FxIndexMap::default();
    for (i, obj) in inputs.objects.iter().enumerate() {
        let file = FileId(i as u32); // ok: resolve() checked the count
        let discarded = res.discarded.get(i).filter(|d| !d.is_empty());
        for (s, seg) in obj.data.iter().enumerate() {
            if discarded.is_some_and(|d| d.segments.contains(&pymode_abi::object::SegmentIndex(s as u32))) {
                continue;
            }
            let (name, align_log2) = match &seg.info {
                Some(info) => {
                    if info.is_tls() {
                        return Err(LinkError::Unsupported { file: obj.name.clone(), what: format!("thread-local segment {}", info.name) });
                    }
                    (output_segment_name(info.name), info.align_log2)
                }
                None => (".data", 0),
            };
            if align_log2 >= 32 {
                return Err(LinkError::Unsupported { file: obj.name.clone(), what: format!("segment alignment 2^{align_log2}") });
            }
            let group = groups.entry(name).or_insert((0, Vec::new()));
            group.0 = group.0.max(align_log2);
            group.1.push((file, s, align_log2));
        }
    }
    groups.sort_by(|a, _, b, _| segment_rank(a).cmp(&segment_rank(b)));
    out.segment_address = inputs.objects.iter().map(|o| vec![None; o.data.len()]).collect();
    let mut cursor: u64 = 0;
    let mut max_align = 0;
    for (name, (align_log2, members)) in groups {
        max_align = max_align.max(align_log2);
        cursor = align_up(cursor, align_log2);
        let start = cursor;
        let mut pieces = Vec::with_capacity(members.len());
        for (file, segment, piece_align) in members {
            cursor = align_up(cursor, piece_align);
            let len = inputs.objects[file.as_usize()].data[segment].data.len() as u64; // ok: indices from the loop above
            let offset = u32::try_from(cursor - start).map_err(|_| LinkError::TooLarge("memory"))?;
            out.segment_address[file.as_usize()][segment] = Some(u32::try_from(cursor).map_err(|_| LinkError::TooLarge("memory"))?);
            pieces.push(Piece { file, segment, offset });
            cursor += len;
        }
        let size = u32::try_from(cursor - start).map_err(|_| LinkError::TooLarge("memory"))?;
        let start = u32::try_from(start).map_err(|_| LinkError::TooLarge("memory"))?;
        out.segments.push(OutputSegment { bss: name == ".bss", name: name.to_owned(), start, size, pieces });
    }
    out.mem_info.memory_size = u32::try_from(cursor).map_err(|_| LinkError::TooLarge("memory"))?;
    out.mem_info.memory_align_log2 = max_align;
    Ok(())
}

fn align_up(value: u64, align_log2: u32) -> u64 {
    let align = 1u64 << align_log2;
    value.div_ceil(align) * align
}

fn assign_types(out: &mut Layout<'_>, inputs: &Inputs<'_>) -> Result<()> {
    for obj in &inputs.objects {
        if obj.types.iter().any(|t| !t.params().iter().chain(t.results()).all(|&v| encodable(v))) {
            return Err(typed_references(&obj.name));
        }
        let map = obj.types.iter().map(|t| out.types.insert_full(t.clone()).0 as u32).collect();
        out.type_map.push(map);
    }
    Ok(())
}

/// Whether emit can write the value type: numbers, vectors, `funcref` and `externref`.
fn encodable(ty: ValType) -> bool {
    match ty {
        ValType::Ref(r) => r == wasmparser::RefType::FUNCREF || r == wasmparser::RefType::EXTERNREF,
        _ => true,
    }
}

fn typed_references(file: &str) -> LinkError {
    LinkError::Unsupported { file: file.to_owned(), what: "typed function references".into() }
}

fn type_index(out: &mut Layout<'_>, ty: &FuncType) -> u32 {
    out.types.insert_full(ty.clone()).0 as u32
}

fn assign_functions<'a>(out: &mut Layout<'a>, inputs: &Inputs<'a>, res: &Resolution<'a>, scan: &Scan) -> Result<()> {
    for &id in &scan.func_imports {
        let sym = res.get(id);
        let (module, field, ty) = match (&sym.import, sym.definition) {
            (Some((module, field, ImportType::Function(ty))), _) => (*module, *field, ty.clone()),
            // An interposable weak definition is called through an import of its own name.
            (None, Definition::Object { file, symbol }) => {
                let obj = inputs.objects.get(file.as_usize());
                let ty = obj.and_then(|o| match o.symbols.get(symbol.as_usize())?.target {
                    SymbolTarget::Function(f) => o.func_type(f).cloned(),
                    _ => None,
                });
                match ty {
                    Some(ty) => (names::ENV, sym.name, ty),
                    None => return Err(LinkError::UndefinedSymbol { file: file_name(inputs, sym.first_file), name: sym.name.to_owned() }),
                }
            }
            // An undefined function always carries its import; a defined-then-discarded one
            // resolved to the kept copy and is not here.
            _ => return Err(LinkError::UndefinedSymbol { file: file_name(inputs, sym.first_file), name: sym.name.to_owned() }),
        };
        let ty = type_index(out, &ty);
        out.symbol_func_import.insert(id, u32_of(out.func_imports.len(), "functions")?);
        out.func_imports.push(FuncImport { module, field, ty, symbol: id });
    }
    let mut next = out.func_imports.len();
    for (i, obj) in inputs.objects.iter().enumerate() {
        let imported = obj.imported_funcs.len();
        let mut map = Vec::with_capacity(obj.functions.len());
        let discarded = res.discarded.get(i).filter(|d| !d.is_empty());
        for f in 0..obj.functions.len() {
            let index = FuncIndex(u32_of(imported + f, "functions")?);
            if discarded.is_some_and(|d| d.functions.contains(&index)) {
                map.push(None);
            } else {
                map.push(Some(u32_of(next, "functions")?));
                out.defined_funcs.push((FileId(i as u32), f)); // ok: resolve() checked the count
                next += 1;
            }
        }
        out.file_funcs.push(map);
    }
    out.call_ctors = u32_of(next, "functions")?;
    if scan.has_data_relocs {
        out.apply_data_relocs = Some(u32_of(next + 1, "functions")?);
    }
    type_index(out, &FuncType::new([], []));
    Ok(())
}

fn file_name(inputs: &Inputs<'_>, file: FileId) -> String {
    inputs.objects.get(file.as_usize()).map_or_else(String::new, |o| o.name.clone())
}

fn assign_globals<'a>(out: &mut Layout<'a>, inputs: &Inputs<'a>, res: &Resolution<'a>, scan: &Scan, binding: Binding) -> Result<()> {
    let mut env_globals: FxIndexMap<(&'a str, &'a str), (GlobalType, Vec<SymId>)> = FxIndexMap::default();
    for &id in &scan.global_imports {
        let sym = res.get(id);
        let Some((module, field, ImportType::Global(ty))) = &sym.import else {
            // scan only lists undefined (or side-module) globals, and those carry their import.
            return Err(LinkError::internal("layout", format!("global `{}` has no import", sym.name)));
        };
        if !encodable(ty.content_type) {
            return Err(typed_references(&file_name(inputs, sym.first_file)));
        }
        // Debug-info objects import the bases as mutable; they are constants of the loader.
        let ty = if *module == names::ENV && (*field == names::MEMORY_BASE || *field == names::TABLE_BASE) { I32_CONST_GLOBAL } else { *ty };
        env_globals.entry((*module, *field)).or_insert((ty, Vec::new())).1.push(id);
    }
    let got_internal: Vec<SymId> = scan.got.iter().copied().filter(|&id| !binds_externally(res.get(id), binding)).collect();
    // Like wasm-ld, always import both bases: the loader provides them anyway, and synthesized
    // code may need either.
    env_globals.entry((names::ENV, names::MEMORY_BASE)).or_insert((I32_CONST_GLOBAL, Vec::new()));
    env_globals.entry((names::ENV, names::TABLE_BASE)).or_insert((I32_CONST_GLOBAL, Vec::new()));
    for ((module, field), (ty, symbols)) in env_globals {
        let index = u32_of(out.global_imports.len(), "globals")?;
        if module == names::ENV && field == names::MEMORY_BASE {
            out.memory_base = Some(index);
        }
        if module == names::ENV && field == names::TABLE_BASE {
            out.table_base = Some(index);
        }
        for &id in &symbols {
            out.symbol_global.insert(id, index);
        }
        out.global_imports.push(GlobalImport { module, field, ty, symbol: symbols.first().copied() });
    }
    for &id in &scan.got {
        let sym = res.get(id);
        if binds_externally(sym, binding) {
            let module = if sym.kind == SymbolKind::Function { names::GOT_FUNC } else { names::GOT_MEM };
            out.got_global.insert(id, u32_of(out.global_imports.len(), "globals")?);
            out.global_imports.push(GlobalImport { module, field: sym.name, ty: I32_MUT_GLOBAL, symbol: Some(id) });
        }
    }
    for id in got_internal {
        out.got_global.insert(id, u32_of(out.global_imports.len() + out.defined_globals.len(), "globals")?);
        out.defined_globals.push(DefinedGlobal::Got(id));
    }
    Ok(())
}

/// Every default-visibility definition, and each `--export`, after the synthesized functions.
fn assign_exports<'a>(out: &mut Layout<'a>, inputs: &Inputs<'a>, res: &Resolution<'a>, opts: &Options) -> Result<()> {
    let forced: std::collections::HashSet<&str> = opts.exports.iter().chain(&opts.exports_if_defined).map(String::as_str).collect();
    for name in &opts.exports {
        let defined = res.by_name.get(name.as_str()).is_some_and(|&id| res.get(id).is_defined_here());
        if !defined && name != names::CALL_CTORS && name != names::APPLY_DATA_RELOCS {
            return Err(LinkError::UndefinedSymbol { file: "--export".into(), name: name.clone() });
        }
    }
    for (i, sym) in res.symbols.iter().enumerate() {
        let Definition::Object { file, symbol } = sym.definition else {
            if sym.definition == Definition::Synthetic(Synthetic::DsoHandle) && forced.contains(sym.name) {
                let id = SymId(i as u32); // ok: SymIds fit u32
                push_data_export(out, sym.name, id)?;
            }
            continue;
        };
        if sym.local || (sym.hidden && !forced.contains(sym.name)) {
            continue;
        }
        let id = SymId(i as u32); // ok: SymIds fit u32
        let Some(obj_sym) = inputs.objects.get(file.as_usize()).and_then(|o| o.symbols.get(symbol.as_usize())) else { continue };
        match (sym.kind, obj_sym.target) {
            (SymbolKind::Function, SymbolTarget::Function(f)) => {
                let obj = &inputs.objects[file.as_usize()]; // ok: checked just above
                let defined = f.as_usize().checked_sub(obj.imported_funcs.len());
                if let Some(index) = defined.and_then(|d| out.file_funcs.get(file.as_usize())?.get(d).copied().flatten()) {
                    out.exports.push(Export { name: sym.name, kind: wasmparser::ExternalKind::Func, index });
                }
            }
            (SymbolKind::Data, SymbolTarget::Data(Some(_))) => push_data_export(out, sym.name, id)?,
            _ => {}
        }
    }
    out.exports.push(Export { name: names::CALL_CTORS, kind: wasmparser::ExternalKind::Func, index: out.call_ctors });
    if let Some(index) = out.apply_data_relocs {
        out.exports.push(Export { name: names::APPLY_DATA_RELOCS, kind: wasmparser::ExternalKind::Func, index });
    }
    Ok(())
}

fn push_data_export<'a>(out: &mut Layout<'a>, name: &'a str, id: SymId) -> Result<()> {
    let index = u32_of(out.global_imports.len() + out.defined_globals.len(), "globals")?;
    out.defined_globals.push(DefinedGlobal::DataExport(id));
    out.exports.push(Export { name, kind: wasmparser::ExternalKind::Global, index });
    Ok(())
}

impl Layout<'_> {
    /// A defined data symbol's address relative to `__memory_base`.
    pub fn data_address(&self, inputs: &Inputs<'_>, res: &Resolution<'_>, id: SymId) -> Option<u32> {
        match res.get(id).definition {
            Definition::Synthetic(Synthetic::DsoHandle) => Some(0),
            Definition::Object { file, symbol } => {
                let obj = inputs.objects.get(file.as_usize())?;
                let SymbolTarget::Data(Some(data)) = obj.symbols.get(symbol.as_usize())?.target else { return None };
                let segment = (*self.segment_address.get(file.as_usize())?.get(data.segment.as_usize())?)?;
                segment.checked_add(data.offset)
            }
            _ => None,
        }
    }

    /// The output function index a function symbol is called by: its import, or its
    /// definition.
    pub fn function_index(&self, inputs: &Inputs<'_>, res: &Resolution<'_>, id: SymId) -> Option<u32> {
        if let Some(&index) = self.symbol_func_import.get(&id) {
            return Some(index);
        }
        self.defined_function_index(inputs, res, id)
    }

    /// The output index of a function symbol's definition in this module.
    pub fn defined_function_index(&self, inputs: &Inputs<'_>, res: &Resolution<'_>, id: SymId) -> Option<u32> {
        let Definition::Object { file, symbol } = res.get(id).definition else { return None };
        let obj = inputs.objects.get(file.as_usize())?;
        let SymbolTarget::Function(f) = obj.symbols.get(symbol.as_usize())?.target else { return None };
        let defined = f.as_usize().checked_sub(obj.imported_funcs.len())?;
        *self.file_funcs.get(file.as_usize())?.get(defined)?
    }

    /// A function's slot relative to `__table_base`.
    pub fn table_slot(&self, id: SymId) -> Option<u32> {
        self.table_slots.get_index_of(&id).and_then(|i| u32::try_from(i).ok())
    }
}
