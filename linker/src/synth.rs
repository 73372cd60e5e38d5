//! Phase 5: synthesize what no object contains.
//!
//! - Internal GOT globals: the address of a symbol this module binds locally, computed from
//!   the bases with an extended-const initialiser (`global.get; i32.const; i32.add`).
//! - Data export globals: immutable i32s holding the offset from `__memory_base`.
//! - `__wasm_apply_data_relocs`: stores each pointer that lives in data (`MEMORY_ADDR_I32`,
//!   `TABLE_INDEX_I32`) once the bases are known. The loader calls it first.
//! - `__wasm_call_ctors`: the init functions in priority order (stable within a priority).
//! - `dylink.0`: MEM_INFO, NEEDED, IMPORT_INFO (weak undefined imports), RUNTIME_PATH.

use crate::error::{LinkError, Result};
use crate::ids::{OutGlobalIndex, SymId};
use crate::input::Inputs;
use crate::layout::{DefinedGlobal, Layout};
use crate::options::Options;
use crate::resolve::Resolution;
use crate::scan::{Place, Scan, binds_externally};
use pymode_abi::Dylink0;
use pymode_abi::dylink::{ImportInfo, SymbolFlags};
use pymode_abi::object::SymbolKind;
use pymode_abi::reloc::RelocKind;
use wasm_encoder::{ConstExpr, Function};

/// The synthesized parts of the output.
#[derive(Debug)]
pub struct Synthesized {
    /// Initialisers of [`Layout::defined_globals`], in order (all immutable i32).
    pub global_inits: Vec<ConstExpr>,
    /// `__wasm_call_ctors`.
    pub call_ctors: Function,
    /// `__wasm_apply_data_relocs`, when there are data relocations.
    pub apply_data_relocs: Option<Function>,
    /// The `dylink.0` section.
    pub dylink0: Dylink0,
}

/// Builds the synthesized globals, functions and `dylink.0`.
///
/// # Errors
/// An init function that takes parameters, or a symbol whose address is unknown (a linker
/// bug surfaced as an error rather than a panic).
pub fn synthesize(inputs: &Inputs<'_>, res: &Resolution<'_>, scan: &Scan, layout: &Layout<'_>, opts: &Options) -> Result<Synthesized> {
    let global_inits = layout.defined_globals.iter().map(|g| global_init(res, layout, *g)).collect::<Result<Vec<_>>>()?;
    let call_ctors = call_ctors(inputs, res, layout)?;
    let apply_data_relocs = if layout.apply_data_relocs.is_some() { Some(apply_data_relocs(res, scan, layout, opts)?) } else { None };
    let dylink0 = dylink0(inputs, res, layout, opts);
    Ok(Synthesized { global_inits, call_ctors, apply_data_relocs, dylink0 })
}

/// Layout decided no `what` for a symbol that synthesized code refers to: a linker bug.
fn unknown(res: &Resolution<'_>, id: SymId, what: &str) -> LinkError {
    LinkError::internal("synth", format!("no {what} for `{}`", res.get(id).name))
}

fn base_plus(base: OutGlobalIndex, offset: u32) -> ConstExpr {
    if offset == 0 { ConstExpr::global_get(base.0) } else { ConstExpr::global_get(base.0).with_i32_const(offset as i32).with_i32_add() }
}

fn global_init(res: &Resolution<'_>, layout: &Layout<'_>, global: DefinedGlobal) -> Result<ConstExpr> {
    let memory_base = layout.memory_base.ok_or_else(|| LinkError::internal("synth", "no __memory_base import"))?;
    let table_base = layout.table_base.ok_or_else(|| LinkError::internal("synth", "no __table_base import"))?;
    match global {
        DefinedGlobal::Got(id) if res.get(id).kind == SymbolKind::Function => {
            let slot = layout.table_slot(id).ok_or_else(|| unknown(res, id, "table slot"))?;
            Ok(base_plus(table_base, slot.0))
        }
        DefinedGlobal::Got(id) => {
            let address = layout.address(id).ok_or_else(|| unknown(res, id, "address"))?;
            Ok(base_plus(memory_base, address))
        }
        DefinedGlobal::DataExport(id) => {
            let address = layout.address(id).ok_or_else(|| unknown(res, id, "address"))?;
            Ok(ConstExpr::i32_const(address as i32))
        }
    }
}

fn call_ctors(inputs: &Inputs<'_>, res: &Resolution<'_>, layout: &Layout<'_>) -> Result<Function> {
    let mut inits = Vec::new();
    for (file, obj) in inputs.enumerate_files() {
        for init in &obj.init_funcs {
            let Some(id) = res.of(file, init.symbol) else { continue };
            inits.push((init.priority, id, obj));
        }
    }
    // Stable: equal priorities run in link order, as in lld.
    inits.sort_by_key(|(priority, _, _)| *priority);
    let mut f = Function::new([]);
    let mut sink = f.instructions();
    for (_, id, obj) in inits {
        let index = layout.definition(id).ok_or_else(|| unknown(res, id, "function index"))?;
        let ty = layout.type_of(index).and_then(|t| layout.types.get_index(t.as_usize()));
        let Some(ty) = ty else { return Err(unknown(res, id, "type")) };
        if !ty.params().is_empty() {
            return Err(LinkError::Unsupported {
                file: obj.name.clone(),
                what: format!("init function `{}` with parameters", res.get(id).name),
            });
        }
        sink.call(index.0);
        for _ in ty.results() {
            sink.drop();
        }
    }
    sink.end();
    Ok(f)
}

fn apply_data_relocs(res: &Resolution<'_>, scan: &Scan, layout: &Layout<'_>, opts: &Options) -> Result<Function> {
    let memory_base = layout.memory_base.ok_or_else(|| LinkError::internal("synth", "no __memory_base import"))?;
    let table_base = layout.table_base.ok_or_else(|| LinkError::internal("synth", "no __table_base import"))?;
    // One store per pointer in data, hundreds of thousands in a large link: the instructions
    // are written as bytes (a dozen per store) rather than one encoder call each.
    let count = scan.sites.iter().flatten().filter(|s| matches!(s.place, Place::Data { .. })).count();
    let mut code = Code(Vec::with_capacity(count * 20));
    for (i, sites) in scan.sites.iter().enumerate() {
        for site in sites {
            let Place::Data { segment, offset } = site.place else { continue };
            if !matches!(site.reloc.kind, RelocKind::MemoryAddrI32 | RelocKind::TableIndexI32) {
                continue;
            }
            let Some(id) = site.symbol else { continue };
            let segment_address = layout
                .segment_address
                .get(i)
                .and_then(|s| *s.get(segment.as_usize())?)
                .ok_or_else(|| unknown(res, id, "segment address"))?;
            let site_address = segment_address + offset as u32; // ok: inside the laid-out memory
            code.i32_const(site_address as i32).global_get(memory_base).i32_add();
            let addend = site.reloc.addend as i32;
            if binds_externally(res.get(id), opts.binding) {
                let got = layout.got(id).ok_or_else(|| unknown(res, id, "GOT entry"))?;
                code.global_get(got);
                if addend != 0 {
                    code.i32_const(addend).i32_add();
                }
            } else if site.reloc.kind == RelocKind::TableIndexI32 {
                let slot = layout.table_slot(id).ok_or_else(|| unknown(res, id, "table slot"))?;
                code.global_get(table_base).i32_const(slot.0 as i32).i32_add();
            } else {
                let address = layout.address(id).ok_or_else(|| unknown(res, id, "address"))?;
                code.global_get(memory_base).i32_const(address.wrapping_add(addend as u32) as i32).i32_add();
            }
            code.i32_store();
        }
    }
    code.0.push(0x0b); // end
    let mut f = Function::new([]);
    f.raw(code.0);
    Ok(f)
}

/// The few instructions `__wasm_apply_data_relocs` uses, encoded as wasm-encoder encodes
/// them (shortest LEBs).
struct Code(Vec<u8>);

impl Code {
    fn i32_const(&mut self, value: i32) -> &mut Self {
        self.0.push(0x41);
        let mut value = value;
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7; // arithmetic: the sign is kept
            let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
            self.0.push(if done { byte } else { byte | 0x80 });
            if done {
                return self;
            }
        }
    }

    fn global_get(&mut self, index: OutGlobalIndex) -> &mut Self {
        self.0.push(0x23);
        pymode_abi::write_uleb(&mut self.0, index.0);
        self
    }

    fn i32_add(&mut self) -> &mut Self {
        self.0.push(0x6a);
        self
    }

    /// `i32.store align=4 offset=0` in memory 0.
    fn i32_store(&mut self) -> &mut Self {
        self.0.extend_from_slice(&[0x36, 0x02, 0x00]);
        self
    }
}

fn dylink0(inputs: &Inputs<'_>, res: &Resolution<'_>, layout: &Layout<'_>, opts: &Options) -> Dylink0 {
    let mut needed: Vec<String> = Vec::new();
    for lib in &inputs.shared {
        if !needed.contains(&lib.needed_name) {
            needed.push(lib.needed_name.clone());
        }
    }
    let weak_undefined = SymbolFlags::BINDING_WEAK | SymbolFlags::UNDEFINED;
    let mut import_info = Vec::new();
    let func_symbols = layout.func_imports.iter().map(|i| (i.module, i.field, Some(i.symbol)));
    let global_symbols = layout.global_imports.iter().map(|g| (g.module, g.field, g.symbol));
    for (module, field, symbol) in func_symbols.chain(global_symbols) {
        let Some(id) = symbol else { continue };
        let sym = res.get(id);
        // Weak and defined nowhere: the loader binds it to 0 (or a trapping stub) instead of
        // failing. Unlike wasm-ld we list GOT imports too, so the loader need not guess.
        if sym.weak && !sym.is_defined_here() && !matches!(sym.definition, crate::resolve::Definition::Shared(_)) {
            import_info.push(ImportInfo { module: module.to_owned(), field: field.to_owned(), flags: weak_undefined });
        }
    }
    Dylink0 {
        mem_info: layout.mem_info,
        needed,
        export_info: Vec::new(),
        import_info,
        runtime_path: opts.rpath.clone(),
        unknown: Vec::new(),
    }
}
