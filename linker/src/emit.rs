//! Phase 7: write the module.
//!
//! `dylink.0` goes first (the loader reads it before anything else), then the standard
//! sections built with wasm-encoder, then a `name` section unless `--strip-all`. The result
//! is validated with wasmparser, with the features zig's objects use, before a single byte is
//! written; the file is written to a temporary name in the same directory and renamed, so an
//! error never leaves a half-written output.

use crate::error::{LinkError, Result};
use crate::input::Inputs;
use crate::layout::Layout;
use crate::options::Options;
use crate::resolve::Resolution;
use crate::synth::Synthesized;
use pymode_abi::names;
use std::io::Write;
use std::path::Path;
use wasm_encoder::{
    ConstExpr, DataSection, ElementSection, Elements, Encode, EntityType, ExportKind, ExportSection, FunctionSection, GlobalSection,
    GlobalType, ImportSection, MemoryType, Module, NameMap, NameSection, RawSection, RefType, SectionId, TableType, TypeSection,
    ValType,
};
use wasmparser::WasmFeatures;

/// The features zig 0.17 targets by default (DESIGN §4), which our output may use.
pub fn features() -> WasmFeatures {
    pymode_abi::features::wasm_features()
}

const PAGE: u64 = 65536;

fn val_type(ty: wasmparser::ValType) -> Result<ValType> {
    Ok(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(r) if r == wasmparser::RefType::FUNCREF => ValType::FUNCREF,
        wasmparser::ValType::Ref(r) if r == wasmparser::RefType::EXTERNREF => ValType::EXTERNREF,
        wasmparser::ValType::Ref(_) => {
            return Err(LinkError::Unsupported { file: "input".into(), what: "typed function references".into() });
        }
    })
}

fn global_type(ty: wasmparser::GlobalType) -> Result<GlobalType> {
    Ok(GlobalType { val_type: val_type(ty.content_type)?, mutable: ty.mutable, shared: ty.shared })
}

/// Encodes the module: `dylink.0` first, then everything else. `code_entries` are the
/// patched function bodies, already encoded (see [`crate::patch::patch_functions`]).
///
/// # Errors
/// A type we cannot re-encode.
pub fn encode(
    inputs: &Inputs<'_>,
    res: &Resolution<'_>,
    layout: &Layout<'_>,
    synth: &Synthesized,
    code_entries: &[u8],
    segments: &[Vec<u8>],
    opts: &Options,
) -> Result<Vec<u8>> {
    let mut module = Module::new();

    let mut types = TypeSection::new();
    for ty in &layout.types {
        let params = ty.params().iter().map(|&t| val_type(t)).collect::<Result<Vec<_>>>()?;
        let results = ty.results().iter().map(|&t| val_type(t)).collect::<Result<Vec<_>>>()?;
        types.ty().function(params, results);
    }
    module.section(&types);

    let mut imports = ImportSection::new();
    let pages = u64::from(layout.mem_info.memory_size).div_ceil(PAGE);
    imports.import(names::ENV, names::MEMORY, MemoryType { minimum: pages, maximum: None, memory64: false, shared: false, page_size_log2: None });
    if layout.imports_table {
        let table = TableType { element_type: RefType::FUNCREF, table64: false, minimum: u64::from(layout.mem_info.table_size), maximum: None, shared: false };
        imports.import(names::ENV, names::INDIRECT_FUNCTION_TABLE, table);
    }
    for global in &layout.global_imports {
        imports.import(global.module, global.field, EntityType::Global(global_type(global.ty)?));
    }
    for func in &layout.func_imports {
        imports.import(func.module, func.field, EntityType::Function(func.ty));
    }
    module.section(&imports);

    let empty_type = layout.types.get_index_of(&wasmparser::FuncType::new([], [])).unwrap_or(0) as u32;
    let mut functions = FunctionSection::new();
    for &(file, f) in &layout.defined_funcs {
        let obj = &inputs.objects[file.as_usize()]; // ok: layout's own indices
        let ty = obj.functions[f].ty; // ok: layout's own indices
        // The function section's type index is input data: it may be out of range.
        let mapped = layout.type_map[file.as_usize()].get(ty.as_usize()).copied(); // ok: one map per object
        let mapped = mapped.ok_or_else(|| LinkError::Unsupported { file: obj.name.clone(), what: format!("function type index {ty} out of range") })?;
        functions.function(mapped);
    }
    functions.function(empty_type);
    if layout.apply_data_relocs.is_some() {
        functions.function(empty_type);
    }
    module.section(&functions);

    if !synth.global_inits.is_empty() {
        let mut globals = GlobalSection::new();
        for init in &synth.global_inits {
            globals.global(GlobalType { val_type: ValType::I32, mutable: false, shared: false }, init);
        }
        module.section(&globals);
    }

    let mut exports = ExportSection::new();
    for export in &layout.exports {
        let kind = if export.kind == wasmparser::ExternalKind::Global { ExportKind::Global } else { ExportKind::Func };
        exports.export(export.name, kind, export.index);
    }
    module.section(&exports);

    if !layout.table_slots.is_empty() {
        let slots = layout
            .table_slots
            .iter()
            .map(|&id| layout.defined_function_index(inputs, res, id))
            .collect::<Option<Vec<u32>>>()
            .ok_or(LinkError::InvalidOutput("a table slot without a defined function".into()))?;
        let table_base = layout.table_base.ok_or(LinkError::InvalidOutput("no __table_base".into()))?;
        let mut elements = ElementSection::new();
        elements.active(None, &ConstExpr::global_get(table_base), Elements::Functions(slots.into()));
        module.section(&elements);
    }

    // The patched bodies are already encoded; append the synthesized ones and the count.
    let count = layout.defined_funcs.len() + 1 + usize::from(synth.apply_data_relocs.is_some());
    let count = u32::try_from(count).map_err(|_| LinkError::TooLarge("functions"))?;
    let mut code = Vec::with_capacity(code_entries.len() + 64);
    count.encode(&mut code);
    code.extend_from_slice(code_entries);
    synth.call_ctors.encode(&mut code);
    if let Some(f) = &synth.apply_data_relocs {
        f.encode(&mut code);
    }
    module.section(&RawSection { id: SectionId::Code as u8, data: &code });

    let memory_base = layout.memory_base.ok_or(LinkError::InvalidOutput("no __memory_base".into()))?;
    let mut data = DataSection::new();
    for (segment, bytes) in layout.segments.iter().zip(segments) {
        if segment.bss {
            continue;
        }
        let offset = if segment.start == 0 {
            ConstExpr::global_get(memory_base)
        } else {
            ConstExpr::global_get(memory_base).with_i32_const(segment.start as i32).with_i32_add()
        };
        data.active(0, &offset, bytes.iter().copied());
    }
    if !data.is_empty() {
        module.section(&data);
    }

    if !opts.strip_all {
        module.section(&name_section(inputs, layout));
    }

    let bytes = module.finish();
    // Splice dylink.0 in right after the 8-byte header: it must be the first section.
    let dylink = synth.dylink0.encode_section();
    let mut out = Vec::with_capacity(bytes.len() + dylink.len());
    out.extend_from_slice(&bytes[..8]); // ok: Module::finish always writes the header
    out.extend_from_slice(&dylink);
    out.extend_from_slice(&bytes[8..]);
    Ok(out)
}

fn name_section(inputs: &Inputs<'_>, layout: &Layout<'_>) -> NameSection {
    let mut names = NameMap::new();
    for (i, import) in layout.func_imports.iter().enumerate() {
        names.append(i as u32, import.field);
    }
    // The symbol that names each defined function: the first symbol of the object pointing at
    // it (local or global), which is what lld uses too.
    let base = layout.func_imports.len() as u32;
    let mut function_names: Vec<Option<&str>> = vec![None; layout.defined_funcs.len()];
    for (i, obj) in inputs.objects.iter().enumerate() {
        for sym in &obj.symbols {
            if sym.is_undefined() {
                continue;
            }
            if let pymode_abi::object::SymbolTarget::Function(f) = sym.target {
                let defined = f.as_usize().checked_sub(obj.imported_funcs.len());
                let out = defined.and_then(|d| *layout.file_funcs.get(i)?.get(d)?);
                if let Some(slot) = out.and_then(|o| function_names.get_mut((o - base) as usize)) {
                    slot.get_or_insert(sym.name);
                }
            }
        }
    }
    for (i, name) in function_names.iter().enumerate() {
        if let Some(name) = name {
            names.append(base + i as u32, name);
        }
    }
    names.append(layout.call_ctors, names::CALL_CTORS);
    if let Some(index) = layout.apply_data_relocs {
        names.append(index, names::APPLY_DATA_RELOCS);
    }
    let mut section = NameSection::new();
    section.functions(&names);
    section
}

/// Validates the module with the features zig's objects use.
///
/// # Errors
/// [`LinkError::InvalidOutput`] with wasmparser's message: a linker bug.
pub fn validate(bytes: &[u8]) -> Result<()> {
    let invalid = |e: wasmparser::BinaryReaderError| {
        LinkError::InvalidOutput(format!("{} (at byte 0x{:x}); an input may hold malformed code", e.message(), e.offset()))
    };
    // The module structure in one pass; function bodies, most of the work, in parallel.
    let mut validator = wasmparser::Validator::new_with_features(features());
    let mut bodies = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        if let wasmparser::ValidPayload::Func(to_validate, body) = validator.payload(&payload).map_err(invalid)? {
            bodies.push(std::sync::Mutex::new(Some((to_validate, body))));
        }
    }
    let results = crate::parallel::map(&bodies, 256, |slot| {
        // Each slot is taken exactly once, by the one worker whose chunk holds it.
        let taken = slot.lock().ok().and_then(|mut s| s.take());
        match taken {
            Some((to_validate, body)) => to_validate.into_validator(Default::default()).validate(&body),
            None => Ok(()),
        }
    });
    results.into_iter().collect::<Result<(), _>>().map_err(invalid)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
///
/// # Errors
/// The directory is not writable, or the rename fails.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |source| LinkError::Write { path: path.to_owned(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    // The temporary file is created 0600; give the output the mode lld gives its outputs.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o755)).map_err(err)?;
    }
    tmp.write_all(bytes).map_err(err)?;
    // No fsync: like other linkers, protect against our own errors (rename only after a
    // complete write), not against power loss; an fsync per link costs more than the link.
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
