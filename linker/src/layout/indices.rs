//! Index spaces: types, functions (imports, the objects' kept functions, the synthesized
//! ones), globals (imports, internal GOT entries, data exports) and exports.

use super::{DefinedGlobal, Export, ExportTarget, FuncImport, GlobalImport, Layout, u32_of};
use crate::error::{LinkError, Result};
use crate::ids::{DefinedFunc, InputFunc, OutFuncIndex, OutGlobalIndex, OutTypeIndex, SymId};
use crate::input::Inputs;
use crate::options::{Binding, Options};
use crate::resolve::{Definition, ImportType, Resolution, Synthetic};
use crate::scan::{Scan, binds_externally};
use pymode_abi::names;
use pymode_abi::object::{FuncIndex, SymbolKind, SymbolTarget};
use wasmparser::{FuncType, GlobalType, ValType};

/// An insertion-ordered map with FxHash (the order is the output order).
type FxIndexMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;

const I32_CONST_GLOBAL: GlobalType = GlobalType { content_type: ValType::I32, mutable: false, shared: false };
const I32_MUT_GLOBAL: GlobalType = GlobalType { content_type: ValType::I32, mutable: true, shared: false };

/// Merges the objects' types into the output's type section.
pub(super) fn assign_types(out: &mut Layout<'_>, inputs: &Inputs<'_>) -> Result<()> {
    for obj in &inputs.objects {
        if obj.types.iter().any(|t| !t.params().iter().chain(t.results()).all(|&v| encodable(v))) {
            return Err(typed_references(&obj.name));
        }
        let map = obj.types.iter().map(|t| type_index(out, t)).collect();
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

fn type_index(out: &mut Layout<'_>, ty: &FuncType) -> OutTypeIndex {
    // ok: at most one type per type of the inputs, and each input holds fewer than 2^32.
    OutTypeIndex(out.types.insert_full(ty.clone()).0 as u32)
}

/// Numbers the imported functions, the objects' kept functions and the synthesized ones.
pub(super) fn assign_functions<'a>(out: &mut Layout<'a>, inputs: &Inputs<'a>, res: &Resolution<'a>, scan: &Scan) -> Result<()> {
    for &id in &scan.func_imports {
        let sym = res.get(id);
        let (module, field, ty) = match (&sym.import, sym.definition) {
            (Some((module, field, ImportType::Function(ty))), _) => (*module, *field, ty.clone()),
            // An interposable weak definition is called through an import of its own name.
            (None, Definition::Object { file, symbol }) => {
                let obj = inputs.object(file);
                let ty = obj.and_then(|o| match o.symbols.get(symbol.as_usize())?.target {
                    SymbolTarget::Function(f) => o.func_type(f).cloned(),
                    _ => None,
                });
                match ty {
                    Some(ty) => (names::ENV, sym.name, ty),
                    None => return Err(LinkError::UndefinedSymbol { file: inputs.file_name(sym.first_file), name: sym.name.to_owned() }),
                }
            }
            // An undefined function always carries its import; a defined-then-discarded one
            // resolved to the kept copy and is not here.
            _ => return Err(LinkError::UndefinedSymbol { file: inputs.file_name(sym.first_file), name: sym.name.to_owned() }),
        };
        let ty = type_index(out, &ty);
        u32_of(out.func_imports.len(), "functions")?;
        out.func_imports.push(FuncImport { module, field, ty, symbol: id });
    }
    let mut next = out.func_imports.len();
    for (file, obj) in inputs.enumerate_files() {
        let imported = obj.imported_funcs.len();
        let mut map = Vec::with_capacity(obj.functions.len());
        let discarded = res.discarded.get(file.as_usize()).filter(|d| !d.is_empty());
        for (f, body) in obj.functions.iter().enumerate() {
            let index = FuncIndex(u32_of(imported + f, "functions")?);
            if discarded.is_some_and(|d| d.functions.contains(&index)) {
                map.push(None);
                continue;
            }
            // The function section's type index is input data: it may be out of range.
            let ty = out.output_type(file, body.ty).ok_or_else(|| LinkError::Unsupported {
                file: obj.name.clone(),
                what: format!("function type index {} out of range", body.ty),
            })?;
            map.push(Some(OutFuncIndex(u32_of(next, "functions")?)));
            // ok: f < the function section's count, a u32.
            out.defined_funcs.push(InputFunc { file, function: DefinedFunc(f as u32) });
            out.defined_func_types.push(ty);
            next += 1;
        }
        out.file_funcs.push(map);
    }
    out.call_ctors = OutFuncIndex(u32_of(next, "functions")?);
    if scan.has_data_relocs {
        out.apply_data_relocs = Some(OutFuncIndex(u32_of(next + 1, "functions")?));
    }
    out.empty_type = type_index(out, &FuncType::new([], []));
    Ok(())
}

/// Numbers the imported globals (`env`, then `GOT.*`) and the internal GOT globals.
pub(super) fn assign_globals<'a>(
    out: &mut Layout<'a>,
    inputs: &Inputs<'a>,
    res: &Resolution<'a>,
    scan: &Scan,
    binding: Binding,
) -> Result<()> {
    let mut env_globals: FxIndexMap<(&'a str, &'a str), (GlobalType, Vec<SymId>)> = FxIndexMap::default();
    for &id in &scan.global_imports {
        let sym = res.get(id);
        let Some((module, field, ImportType::Global(ty))) = &sym.import else {
            // scan only lists undefined (or side-module) globals, and those carry their import.
            return Err(LinkError::internal("layout", format!("global `{}` has no import", sym.name)));
        };
        if !encodable(ty.content_type) {
            return Err(typed_references(&inputs.file_name(sym.first_file)));
        }
        // Debug-info objects import the bases as mutable; they are constants of the loader.
        let ty =
            if *module == names::ENV && (*field == names::MEMORY_BASE || *field == names::TABLE_BASE) { I32_CONST_GLOBAL } else { *ty };
        env_globals.entry((*module, *field)).or_insert((ty, Vec::new())).1.push(id);
    }
    let got_internal: Vec<SymId> = scan.got.iter().copied().filter(|&id| !binds_externally(res.get(id), binding)).collect();
    // Like wasm-ld, always import both bases: the loader provides them anyway, and synthesized
    // code may need either.
    env_globals.entry((names::ENV, names::MEMORY_BASE)).or_insert((I32_CONST_GLOBAL, Vec::new()));
    env_globals.entry((names::ENV, names::TABLE_BASE)).or_insert((I32_CONST_GLOBAL, Vec::new()));
    for ((module, field), (ty, symbols)) in env_globals {
        let index = OutGlobalIndex(u32_of(out.global_imports.len(), "globals")?);
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
            out.got_global.insert(id, OutGlobalIndex(u32_of(out.global_imports.len(), "globals")?));
            out.global_imports.push(GlobalImport { module, field: sym.name, ty: I32_MUT_GLOBAL, symbol: Some(id) });
        }
    }
    for id in got_internal {
        out.got_global.insert(id, OutGlobalIndex(u32_of(out.global_imports.len() + out.defined_globals.len(), "globals")?));
        out.defined_globals.push(DefinedGlobal::Got(id));
    }
    Ok(())
}

/// Every default-visibility definition, and each `--export`, after the synthesized functions.
pub(super) fn assign_exports<'a>(out: &mut Layout<'a>, res: &Resolution<'a>, opts: &Options) -> Result<()> {
    let forced: std::collections::HashSet<&str> = opts.exports.iter().chain(&opts.exports_if_defined).map(String::as_str).collect();
    for name in &opts.exports {
        let defined = res.by_name.get(name.as_str()).is_some_and(|&id| res.get(id).is_defined_here());
        if !defined && name != names::CALL_CTORS && name != names::APPLY_DATA_RELOCS {
            return Err(LinkError::UndefinedSymbol { file: "--export".into(), name: name.clone() });
        }
    }
    for (id, sym) in res.enumerate() {
        let exported = match sym.definition {
            Definition::Object { .. } => !sym.local && (!sym.hidden || forced.contains(sym.name)),
            Definition::Synthetic(Synthetic::DsoHandle) => forced.contains(sym.name),
            _ => false,
        };
        if !exported {
            continue;
        }
        match sym.kind {
            SymbolKind::Function => {
                if let Some(index) = out.definition(id) {
                    out.exports.push(Export { name: sym.name, target: ExportTarget::Func(index) });
                }
            }
            // A defined data symbol lies inside its kept segment (the reader checked), so it
            // has an address; `__dso_handle` has 0.
            SymbolKind::Data if out.address(id).is_some() => {
                push_data_export(out, sym.name, id)?;
            }
            _ => {}
        }
    }
    out.exports.push(Export { name: names::CALL_CTORS, target: ExportTarget::Func(out.call_ctors) });
    if let Some(index) = out.apply_data_relocs {
        out.exports.push(Export { name: names::APPLY_DATA_RELOCS, target: ExportTarget::Func(index) });
    }
    Ok(())
}

fn push_data_export<'a>(out: &mut Layout<'a>, name: &'a str, id: SymId) -> Result<()> {
    let index = OutGlobalIndex(u32_of(out.global_imports.len() + out.defined_globals.len(), "globals")?);
    out.defined_globals.push(DefinedGlobal::DataExport(id));
    out.exports.push(Export { name, target: ExportTarget::Global(index) });
    Ok(())
}
