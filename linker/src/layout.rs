//! Lay out memory, the table and the index spaces.
//!
//! Memory ([`memory`]): input segments are merged by kind into output segments (`.rodata`,
//! `.data`, others, `.bss` last, as lld orders them), each input segment at its own
//! alignment. Every address is relative to `__memory_base`. MEM_INFO gets the total size and
//! the largest alignment.
//!
//! Table: one slot per function whose address the module computes itself, at
//! `__table_base + slot`.
//!
//! Index spaces ([`indices`]): imported functions, then the objects' kept functions in input
//! order, then the synthesized `__wasm_call_ctors` and `__wasm_apply_data_relocs`. Globals:
//! imports (`env` globals, then `GOT.*`), then internal GOT globals, then the globals that
//! export data addresses.
//!
//! The result answers by symbol ([`Layout::address`], [`Layout::function`], ...): the
//! per-symbol tables are filled once here, so later phases need neither the inputs nor the
//! resolution to ask where a symbol went.

mod indices;
mod memory;

use crate::error::{LinkError, Result};
use crate::ids::{FileId, InputFunc, OutFuncIndex, OutGlobalIndex, OutTypeIndex, SymId, TableSlot};
use crate::input::Inputs;
use crate::options::Options;
use crate::resolve::{Definition, Resolution, Synthetic};
use crate::scan::{FxIndexSet, Scan};
use pymode_abi::MemInfo;
use pymode_abi::object::{SegmentIndex, SymbolTarget, TypeIndex};
use rustc_hash::FxHashMap;
use wasmparser::{FuncType, GlobalType};

/// One input segment's place in an output segment.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    /// The object.
    pub file: FileId,
    /// Its segment.
    pub segment: SegmentIndex,
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
    /// Its type.
    pub ty: OutTypeIndex,
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

/// What an export names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportTarget {
    /// A function.
    Func(OutFuncIndex),
    /// A global (a data symbol's address).
    Global(OutGlobalIndex),
}

/// An export.
#[derive(Debug, Clone)]
pub struct Export<'a> {
    /// Name.
    pub name: &'a str,
    /// What it exports.
    pub target: ExportTarget,
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
    /// Functions with a slot in the module's table range, in slot order.
    pub table_slots: FxIndexSet<SymId>,
    /// Whether the table is imported.
    pub imports_table: bool,
    /// Function types, in output order.
    pub types: FxIndexSet<FuncType>,
    /// Per object, its type index to the output's.
    pub type_map: Vec<Vec<OutTypeIndex>>,
    /// Imported functions (indices `0..`).
    pub func_imports: Vec<FuncImport<'a>>,
    /// Defined functions from objects, in output order (after the imports).
    pub defined_funcs: Vec<InputFunc>,
    /// The output type of each of [`Layout::defined_funcs`].
    pub defined_func_types: Vec<OutTypeIndex>,
    /// Per object, per defined function: output function index (`None` if discarded).
    pub file_funcs: Vec<Vec<Option<OutFuncIndex>>>,
    /// `__wasm_call_ctors`.
    pub call_ctors: OutFuncIndex,
    /// `__wasm_apply_data_relocs`, when there are data relocations.
    pub apply_data_relocs: Option<OutFuncIndex>,
    /// The type `() -> ()` of the synthesized functions.
    pub empty_type: OutTypeIndex,
    /// Imported globals.
    pub global_imports: Vec<GlobalImport<'a>>,
    /// Globals the module defines, after the imports.
    pub defined_globals: Vec<DefinedGlobal>,
    /// `__memory_base`, when imported.
    pub memory_base: Option<OutGlobalIndex>,
    /// `__table_base`, when imported.
    pub table_base: Option<OutGlobalIndex>,
    /// Global-kind symbols (imports) to their global.
    pub symbol_global: FxHashMap<SymId, OutGlobalIndex>,
    /// GOT entries to their global.
    pub got_global: FxHashMap<SymId, OutGlobalIndex>,
    /// Exports, in order.
    pub exports: Vec<Export<'a>>,
    /// Per symbol: its data address relative to `__memory_base`, if it has one here.
    addresses: Vec<Option<u32>>,
    /// Per symbol: the function a call to it uses (its import, else its definition).
    functions: Vec<Option<OutFuncIndex>>,
    /// Per symbol: its function's definition in this module.
    definitions: Vec<Option<OutFuncIndex>>,
}

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
    memory::lay_out(&mut out, inputs, res)?;
    out.table_slots = scan.table_slots.clone();
    out.imports_table = scan.uses_table || !out.table_slots.is_empty();
    out.mem_info.table_size = u32_of(out.table_slots.len(), "table")?;
    indices::assign_types(&mut out, inputs)?;
    indices::assign_functions(&mut out, inputs, res, scan)?;
    out.fill_symbol_tables(inputs, res);
    indices::assign_globals(&mut out, inputs, res, scan, opts.binding)?;
    indices::assign_exports(&mut out, res, opts)?;
    Ok(out)
}

impl Layout<'_> {
    /// A defined data symbol's address relative to `__memory_base`.
    pub fn address(&self, id: SymId) -> Option<u32> {
        *self.addresses.get(id.as_usize())?
    }

    /// The output function a call to a function symbol uses: its import, or its definition.
    pub fn function(&self, id: SymId) -> Option<OutFuncIndex> {
        *self.functions.get(id.as_usize())?
    }

    /// The output function that defines a function symbol in this module (what its table
    /// slot holds and what a constructor call names).
    pub fn definition(&self, id: SymId) -> Option<OutFuncIndex> {
        *self.definitions.get(id.as_usize())?
    }

    /// A function's slot relative to `__table_base`.
    pub fn table_slot(&self, id: SymId) -> Option<TableSlot> {
        self.table_slots.get_index_of(&id).and_then(|i| u32::try_from(i).ok()).map(TableSlot)
    }

    /// The global a GOT entry lives in (imported or internal).
    pub fn got(&self, id: SymId) -> Option<OutGlobalIndex> {
        self.got_global.get(&id).copied()
    }

    /// The imported global a global-kind symbol stands for.
    pub fn global(&self, id: SymId) -> Option<OutGlobalIndex> {
        self.symbol_global.get(&id).copied()
    }

    /// The output type of a function defined in this module (an object's or a synthesized
    /// one).
    pub fn type_of(&self, function: OutFuncIndex) -> Option<OutTypeIndex> {
        if function == self.call_ctors || Some(function) == self.apply_data_relocs {
            return Some(self.empty_type);
        }
        self.defined_func_types.get(function.as_usize().checked_sub(self.func_imports.len())?).copied()
    }

    /// An input type index of `file` in the output.
    pub fn output_type(&self, file: FileId, ty: TypeIndex) -> Option<OutTypeIndex> {
        self.type_map.get(file.as_usize())?.get(ty.as_usize()).copied()
    }

    /// The output index of an object's defined function (`None` if discarded).
    pub fn input_function(&self, function: InputFunc) -> Option<OutFuncIndex> {
        *self.file_funcs.get(function.file.as_usize())?.get(function.function.as_usize())?
    }

    /// Fills the per-symbol tables, once memory and functions are laid out.
    fn fill_symbol_tables(&mut self, inputs: &Inputs<'_>, res: &Resolution<'_>) {
        self.addresses = vec![None; res.len()];
        self.definitions = vec![None; res.len()];
        for (id, sym) in res.enumerate() {
            let (address, definition) = match sym.definition {
                Definition::Synthetic(Synthetic::DsoHandle) => (Some(0), None),
                Definition::Object { file, symbol } => {
                    let target = inputs.object(file).and_then(|o| Some((o, o.symbols.get(symbol.as_usize())?.target)));
                    match target {
                        Some((_, SymbolTarget::Data(Some(data)))) => {
                            let segment = self.segment_address.get(file.as_usize()).and_then(|s| *s.get(data.segment.as_usize())?);
                            (segment.and_then(|s| s.checked_add(data.offset)), None)
                        }
                        Some((obj, SymbolTarget::Function(f))) => {
                            let defined = f.as_usize().checked_sub(obj.imported_funcs.len());
                            (None, defined.and_then(|d| *self.file_funcs.get(file.as_usize())?.get(d)?))
                        }
                        _ => (None, None),
                    }
                }
                _ => (None, None),
            };
            // ok: both vectors have one entry per symbol.
            self.addresses[id.as_usize()] = address;
            self.definitions[id.as_usize()] = definition;
        }
        self.functions = self.definitions.clone();
        for (i, import) in self.func_imports.iter().enumerate() {
            // ok: imports are symbols of `res`, and their count fits u32 (assign_functions).
            self.functions[import.symbol.as_usize()] = Some(OutFuncIndex(i as u32));
        }
    }
}
