//! Phase 7: write the module.
//!
//! `dylink.0` goes first (the loader reads it before anything else), then the standard
//! sections built with wasm-encoder, then a `name` section unless `--strip-all`, then
//! `target_features` (see [`crate::features`]). The result is validated with wasmparser, with
//! zig's default features plus those it declares, before a single byte is written; the file
//! is written to a temporary name in the same directory and renamed, so an error never leaves
//! a half-written output.

use crate::error::{LinkError, Result};
use crate::input::Inputs;
use crate::layout::{ExportTarget, Layout};
use crate::options::Options;
use crate::patch;
use crate::resolve::Resolution;
use crate::rewrite::Rewritten;
use crate::scan::Scan;
use crate::synth::Synthesized;
use pymode_abi::names;
use pymode_abi::object::FeaturePolicy;
use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use wasm_encoder::{
    ConstExpr, CustomSection, ElementSection, Elements, Encode, EntityType, ExportKind, ExportSection, FunctionSection, GlobalSection,
    GlobalType, ImportSection, MemoryType, NameMap, NameSection, RefType, Section, SectionId, TableType, TypeSection, ValType,
};
use wasmparser::WasmFeatures;

/// What a linked module may use: the features zig 0.17 targets by default (DESIGN §4), plus
/// those its `target_features` section lists as used.
///
/// # Errors
/// [`LinkError::InvalidOutput`] when the module's sections or its `target_features` section
/// are malformed.
pub fn declared_features(bytes: &[u8]) -> Result<WasmFeatures> {
    let invalid = |e: wasmparser::BinaryReaderError| LinkError::InvalidOutput(format!("{} (at byte 0x{:x})", e.message(), e.offset()));
    let mut features = pymode_abi::features::wasm_features();
    let mut parser = wasmparser::Parser::new(0);
    let mut at = 0;
    // Section by section, stepping over the code section whole: only the headers are read.
    loop {
        let rest = bytes.get(at..).ok_or_else(|| LinkError::InvalidOutput("the code section runs past the end".into()))?;
        let (consumed, payload) = match parser.parse(rest, true).map_err(invalid)? {
            wasmparser::Chunk::Parsed { consumed, payload } => (consumed, payload),
            wasmparser::Chunk::NeedMoreData(_) => return Err(LinkError::InvalidOutput("truncated module".into())),
        };
        at += consumed;
        match payload {
            wasmparser::Payload::CodeSectionStart { size, .. } => {
                parser.skip_section();
                at += size as usize;
            }
            wasmparser::Payload::CustomSection(custom) if custom.name() == names::TARGET_FEATURES => {
                let declared = pymode_abi::object::target_features::read("output", custom.data(), custom.data_offset())
                    .map_err(|e| LinkError::InvalidOutput(e.to_string()))?;
                for feature in declared.iter().filter(|f| f.policy != FeaturePolicy::Disallowed) {
                    features |= pymode_abi::features::by_llvm_name(feature.name).unwrap_or(WasmFeatures::empty());
                }
            }
            wasmparser::Payload::End(_) => return Ok(features),
            _ => {}
        }
    }
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
            // layout refused them, naming the object.
            return Err(LinkError::internal("emit", "a typed function reference in a type"));
        }
    })
}

fn global_type(ty: wasmparser::GlobalType) -> Result<GlobalType> {
    Ok(GlobalType { val_type: val_type(ty.content_type)?, mutable: ty.mutable, shared: ty.shared })
}

/// Everything the phases decided, which encoding writes out.
#[derive(Clone, Copy)]
pub struct Linked<'l, 'a> {
    /// The objects and side modules.
    pub inputs: &'l Inputs<'a>,
    /// The resolved symbols.
    pub res: &'l Resolution<'a>,
    /// The located relocations.
    pub scan: &'l Scan,
    /// Every index and address.
    pub layout: &'l Layout<'a>,
    /// The bodies the PIC rewrite replaced.
    pub rewritten: &'l Rewritten,
    /// The synthesized globals, functions and `dylink.0`.
    pub synth: &'l Synthesized,
    /// The output's `target_features`.
    pub features: &'l [String],
    /// The options.
    pub opts: &'l Options,
}

/// An encoded module, and which of its function bodies validation must check.
#[derive(Debug)]
pub struct Encoded {
    /// The module.
    pub bytes: Vec<u8>,
    /// Per code-section entry, in order: whether [`validate_changed`] checks its body. A
    /// copied body proven valid whenever its input is ([`crate::unchanged`]) is not checked;
    /// rewritten and synthesized bodies always are.
    pub check_body: Vec<bool>,
}

/// Encodes the module into one buffer: the header, `dylink.0`, then the standard sections,
/// with the objects' function bodies and data patched straight into their place (see
/// [`crate::patch`]; bodies the PIC rewrite replaced come from [`Linked::rewritten`]), so the
/// bulk of the output is copied once.
///
/// # Errors
/// A type we cannot re-encode, or a patching error.
pub fn encode(linked: &Linked<'_, '_>) -> Result<Encoded> {
    let Linked { layout, synth, .. } = *linked;
    let entry_sizes = patch::code_entry_sizes(linked)?;
    let code_bytes: usize = entry_sizes.iter().sum();
    let data_bytes: usize = layout.segments.iter().filter(|s| !s.bss).map(|s| s.size as usize).sum();
    let mut synthesized = Vec::new();
    synth.call_ctors.encode(&mut synthesized);
    if let Some(f) = &synth.apply_data_relocs {
        f.encode(&mut synthesized);
    }
    // The rest (types, imports, exports, names) is small next to code and data; a generous
    // guess saves regrowing the large buffer.
    let names_guess = layout.defined_funcs.len() * 24;
    let mut out = Vec::with_capacity(code_bytes + data_bytes + synthesized.len() + names_guess + 64 * 1024);
    out.extend_from_slice(b"\0asm");
    out.extend_from_slice(&1u32.to_le_bytes());
    // dylink.0 must be the first section.
    out.extend_from_slice(&synth.dylink0.encode_section());
    emit_types(layout)?.append_to(&mut out);
    emit_imports(layout)?.append_to(&mut out);
    emit_functions(layout).append_to(&mut out);
    if !synth.global_inits.is_empty() {
        emit_globals(synth).append_to(&mut out);
    }
    emit_exports(layout).append_to(&mut out);
    if !layout.table_slots.is_empty() {
        emit_elements(linked)?.append_to(&mut out);
    }
    let mut check_body = emit_code(linked, &entry_sizes, &synthesized, &mut out)?;
    // __wasm_call_ctors, and __wasm_apply_data_relocs when there is one.
    check_body.push(true);
    if synth.apply_data_relocs.is_some() {
        check_body.push(true);
    }
    emit_data(linked, data_bytes, &mut out)?;
    if !linked.opts.strip_all {
        name_section(linked.inputs, layout).append_to(&mut out);
    }
    if !linked.features.is_empty() {
        target_features_section(linked.features).append_to(&mut out);
    }
    Ok(Encoded { bytes: out, check_body })
}

fn emit_types(layout: &Layout<'_>) -> Result<TypeSection> {
    let mut types = TypeSection::new();
    for ty in &layout.types {
        let params = ty.params().iter().map(|&t| val_type(t)).collect::<Result<Vec<_>>>()?;
        let results = ty.results().iter().map(|&t| val_type(t)).collect::<Result<Vec<_>>>()?;
        types.ty().function(params, results);
    }
    Ok(types)
}

fn emit_imports(layout: &Layout<'_>) -> Result<ImportSection> {
    let mut imports = ImportSection::new();
    let pages = u64::from(layout.mem_info.memory_size).div_ceil(PAGE);
    imports.import(
        names::ENV,
        names::MEMORY,
        MemoryType { minimum: pages, maximum: None, memory64: false, shared: false, page_size_log2: None },
    );
    if layout.imports_table {
        let table = TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: u64::from(layout.mem_info.table_size),
            maximum: None,
            shared: false,
        };
        imports.import(names::ENV, names::INDIRECT_FUNCTION_TABLE, table);
    }
    for global in &layout.global_imports {
        imports.import(global.module, global.field, EntityType::Global(global_type(global.ty)?));
    }
    for func in &layout.func_imports {
        imports.import(func.module, func.field, EntityType::Function(func.ty.0));
    }
    Ok(imports)
}

fn emit_functions(layout: &Layout<'_>) -> FunctionSection {
    let mut functions = FunctionSection::new();
    for ty in &layout.defined_func_types {
        functions.function(ty.0);
    }
    functions.function(layout.empty_type.0);
    if layout.apply_data_relocs.is_some() {
        functions.function(layout.empty_type.0);
    }
    functions
}

fn emit_globals(synth: &Synthesized) -> GlobalSection {
    let mut globals = GlobalSection::new();
    for init in &synth.global_inits {
        globals.global(GlobalType { val_type: ValType::I32, mutable: false, shared: false }, init);
    }
    globals
}

fn emit_exports(layout: &Layout<'_>) -> ExportSection {
    let mut exports = ExportSection::new();
    for export in &layout.exports {
        match export.target {
            ExportTarget::Func(f) => exports.export(export.name, ExportKind::Func, f.0),
            ExportTarget::Global(g) => exports.export(export.name, ExportKind::Global, g.0),
        };
    }
    exports
}

/// The module's table range: each slot's function, at `__table_base`.
fn emit_elements(linked: &Linked<'_, '_>) -> Result<ElementSection> {
    let layout = linked.layout;
    let slots = layout
        .table_slots
        .iter()
        .map(|&id| layout.definition(id).map(|f| f.0))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| LinkError::internal("emit", "a table slot without a defined function"))?;
    let table_base = layout.table_base.ok_or_else(|| LinkError::internal("emit", "no __table_base import"))?;
    let mut elements = ElementSection::new();
    elements.active(None, &ConstExpr::global_get(table_base.0), Elements::Functions(slots.into()));
    Ok(elements)
}

/// Code: the count, the objects' bodies patched in place, then the synthesized ones. Returns
/// which of the objects' bodies validation must check ([`patch::patch_functions`]).
fn emit_code(linked: &Linked<'_, '_>, entry_sizes: &[usize], synthesized: &[u8], out: &mut Vec<u8>) -> Result<Vec<bool>> {
    let layout = linked.layout;
    let code_bytes: usize = entry_sizes.iter().sum();
    let count = layout.defined_funcs.len() + 1 + usize::from(layout.apply_data_relocs.is_some());
    let count = u32::try_from(count).map_err(|_| LinkError::TooLarge("functions"))?;
    let mut head = Vec::with_capacity(5);
    count.encode(&mut head);
    let size = head.len() + code_bytes + synthesized.len();
    out.push(SectionId::Code as u8);
    u32::try_from(size).map_err(|_| LinkError::TooLarge("code section"))?.encode(out);
    out.extend_from_slice(&head);
    let start = out.len();
    out.resize(start + code_bytes, 0);
    let check_body = patch::patch_functions(linked, entry_sizes, &mut out[start..])?;
    out.extend_from_slice(synthesized);
    Ok(check_body)
}

/// Data: each non-bss output segment at `__memory_base + start`, its bytes written and
/// patched in place.
fn emit_data(linked: &Linked<'_, '_>, data_bytes: usize, out: &mut Vec<u8>) -> Result<()> {
    let layout = linked.layout;
    let memory_base = layout.memory_base.ok_or_else(|| LinkError::internal("emit", "no __memory_base import"))?;
    let mut headers = Vec::new();
    for segment in layout.segments.iter().filter(|s| !s.bss) {
        let offset = if segment.start == 0 {
            ConstExpr::global_get(memory_base.0)
        } else {
            ConstExpr::global_get(memory_base.0).with_i32_const(segment.start as i32).with_i32_add()
        };
        let mut header = vec![0x00]; // active, memory 0
        offset.encode(&mut header);
        segment.size.encode(&mut header);
        headers.push(header);
    }
    if headers.is_empty() {
        return Ok(());
    }
    let mut head = Vec::with_capacity(5);
    u32::try_from(headers.len()).map_err(|_| LinkError::TooLarge("data segments"))?.encode(&mut head);
    let size = head.len() + headers.iter().map(Vec::len).sum::<usize>() + data_bytes;
    out.push(SectionId::Data as u8);
    u32::try_from(size).map_err(|_| LinkError::TooLarge("data section"))?.encode(out);
    out.extend_from_slice(&head);
    let section_start = out.len();
    let mut at = vec![None; layout.segments.len()];
    let mut headers = headers.into_iter();
    for (s, segment) in layout.segments.iter().enumerate() {
        if segment.bss {
            continue;
        }
        out.extend_from_slice(&headers.next().unwrap_or_default());
        at[s] = Some(out.len() - section_start);
        out.resize(out.len() + segment.size as usize, 0);
    }
    patch::patch_segments(linked, &at, &mut out[section_start..])
}

/// `target_features` with every feature marked used (`+`), as wasm-ld writes it.
fn target_features_section(used: &[String]) -> CustomSection<'static> {
    let mut data = Vec::new();
    (used.len() as u32).encode(&mut data);
    for name in used {
        data.push(FeaturePolicy::Used.prefix());
        name.as_str().encode(&mut data);
    }
    CustomSection { name: Cow::Borrowed(names::TARGET_FEATURES), data: Cow::Owned(data) }
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
    for (file, obj) in inputs.enumerate_files() {
        for sym in &obj.symbols {
            if sym.is_undefined() {
                continue;
            }
            if let pymode_abi::object::SymbolTarget::Function(f) = sym.target {
                let defined = f.as_usize().checked_sub(obj.imported_funcs.len());
                let out = defined.and_then(|d| *layout.file_funcs.get(file.as_usize())?.get(d)?);
                if let Some(slot) = out.and_then(|o| function_names.get_mut((o.0 - base) as usize)) {
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
    names.append(layout.call_ctors.0, names::CALL_CTORS);
    if let Some(index) = layout.apply_data_relocs {
        names.append(index.0, names::APPLY_DATA_RELOCS);
    }
    let mut section = NameSection::new();
    section.functions(&names);
    section
}

/// Validates the whole module, every function body included, with the features it may use
/// ([`declared_features`]).
///
/// # Errors
/// [`LinkError::InvalidOutput`] with wasmparser's message: a linker bug, malformed code in an
/// input, or code that needs a feature `--features=` left out.
pub fn validate(bytes: &[u8]) -> Result<()> {
    validate_bodies(bytes, |_| true)
}

/// Validates what the link made: the module's structure, and the function bodies that
/// `check_body` marks (rewritten, synthesized, and copied ones not proven unchanged, see
/// [`Encoded::check_body`]); an entry past its end is checked. A copied body that is not
/// checked is valid whenever its input body is.
///
/// # Errors
/// As [`validate`].
pub fn validate_changed(bytes: &[u8], check_body: &[bool]) -> Result<()> {
    validate_bodies(bytes, |entry| check_body.get(entry).copied().unwrap_or(true))
}

/// Validates an input object as a module, with the features the linked `output` declares.
/// [`validate_changed`] leaves copied bodies to their input: when [`validate`] refuses an
/// output that linked, this tells garbage in (the input is invalid too) from a linker bug.
///
/// # Errors
/// [`LinkError::InvalidOutput`] for the object, with wasmparser's message.
pub fn validate_input(object: &[u8], output: &[u8]) -> Result<()> {
    let mut validator = wasmparser::Validator::new_with_features(declared_features(output)?);
    validator
        .validate_all(object)
        .map(|_| ())
        .map_err(|e| LinkError::InvalidOutput(format!("input: {} (at byte 0x{:x})", e.message(), e.offset())))
}

/// Validates the structure, and the bodies of the code-section entries `check` selects.
fn validate_bodies(bytes: &[u8], check: impl Fn(usize) -> bool) -> Result<()> {
    let invalid = |e: wasmparser::BinaryReaderError| {
        LinkError::InvalidOutput(format!("{} (at byte 0x{:x}); an input may hold malformed code", e.message(), e.offset()))
    };
    // The module structure in one pass; function bodies, most of the work, in parallel.
    let mut validator = wasmparser::Validator::new_with_features(declared_features(bytes)?);
    let mut bodies = Vec::new();
    let mut entry = 0;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        if let wasmparser::ValidPayload::Func(to_validate, body) = validator.payload(&payload).map_err(invalid)? {
            if check(entry) {
                bodies.push((to_validate, body));
            }
            entry += 1;
        }
    }
    // Pieces of about equal bytes, each handed whole to the thread that takes it.
    let weights: Vec<usize> = bodies.iter().map(|(_, body)| body.range().len()).collect();
    let ranges = crate::parallel::balanced_ranges(&weights, crate::parallel::pieces(), 64 * 1024);
    let mut chunks = Vec::with_capacity(ranges.len());
    for range in ranges.iter().rev() {
        chunks.push(bodies.split_off(range.start));
    }
    chunks.reverse();
    let results = crate::parallel::run(chunks, |chunk| {
        // One set of validator stacks per thread, reused for every body: allocating them
        // afresh per function cost more than many small bodies take to validate.
        let mut allocations = wasmparser::FuncValidatorAllocations::default();
        for (to_validate, body) in chunk {
            let mut func = to_validate.into_validator(allocations);
            func.validate(&body)?;
            allocations = func.into_allocations();
        }
        Ok(())
    });
    results.into_iter().collect::<Result<(), _>>().map_err(invalid)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
///
/// # Errors
/// The directory is not writable, or the rename fails.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temporary(path, bytes)?;
    persist(path, tmp)
}

/// Validates the module (as [`validate_changed`]) while writing it to a temporary file next
/// to `path`, and renames that file to `path` only when both succeeded: writing and
/// validating are independent, and validation's first pass leaves a core idle. On any
/// error the temporary file is removed and an existing output is kept.
///
/// # Errors
/// As [`validate`] (reported first), then as [`write_atomically`].
pub fn validate_and_write(path: &Path, encoded: &Encoded) -> Result<()> {
    let bytes = &encoded.bytes[..];
    let (valid, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_temporary(path, bytes));
        let valid = validate_changed(bytes, &encoded.check_body);
        // A panic in the writer is a bug; re-raise it here.
        (valid, writer.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    valid?;
    persist(path, written?)
}

fn write_temporary(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
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
    Ok(tmp)
}

fn persist(path: &Path, tmp: tempfile::NamedTempFile) -> Result<()> {
    // No fsync: like other linkers, protect against our own errors (rename only after a
    // complete write), not against power loss; an fsync per link costs more than the link.
    tmp.persist(path).map_err(|e| LinkError::Write { path: path.to_owned(), source: e.error })?;
    Ok(())
}
