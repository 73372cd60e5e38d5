//! `pymode-readobj`: a stable text description of a relocatable object or a side module.
//!
//! The format is what the golden tests compare, so it lists everything the linker and the
//! loader care about (imports, exports, symbols, segments, init functions, comdats,
//! relocations, `dylink.0`, `target_features`) in file order, one item a line, and nothing
//! that varies between runs.
//!
//! For a linked module it also prints what a linker synthesizes rather than copies, so the
//! goldens pin it as lld's tests pin theirs with disassembly: each defined global's
//! initialiser (the internal GOT entries and data exports), and at the end the bodies of the
//! functions exported under the conventional synthesized names (`__wasm_call_ctors`,
//! `__wasm_apply_data_relocs`, `__wasm_apply_global_relocs`, ...) and of the start function,
//! one instruction a line.

use pymode_abi::names;
use pymode_abi::object::{ComdatMember, Object, SymbolTarget};
use pymode_abi::{RelocKind, SymbolFlags};
use std::fmt::Write as _;
use wasmparser::{BinaryReader, ExternalKind, FuncType, MemArg, Operator, OperatorsReader, TypeRef, ValType};

/// Describes `obj` as stable text.
pub fn describe(obj: &Object<'_>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the macro's Result is ignored throughout.
    let w = &mut out;
    let _ = writeln!(w, "file: {}", obj.name);
    let kind = match (obj.linking_version, &obj.dylink0) {
        (Some(v), _) => format!("relocatable object (linking v{v})"),
        (None, Some(_)) => "side module (dylink.0)".to_owned(),
        (None, None) => "module".to_owned(),
    };
    let _ = writeln!(w, "kind: {kind}");
    let _ = writeln!(w, "sections: {}", obj.sections.iter().map(|s| s.name).collect::<Vec<_>>().join(" "));
    if let Some(features) = &obj.target_features {
        let listed: Vec<String> = features.iter().map(|f| format!("{}{}", char::from(f.policy.prefix()), f.name)).collect();
        let _ = writeln!(w, "target_features: {}", listed.join(" "));
    }

    if let Some(d) = &obj.dylink0 {
        let m = &d.mem_info;
        let _ = writeln!(w, "dylink.0:");
        let _ = writeln!(
            w,
            "  mem_info: memory {} align 2^{} table {} align 2^{}",
            m.memory_size, m.memory_align_log2, m.table_size, m.table_align_log2
        );
        for n in &d.needed {
            let _ = writeln!(w, "  needed: {n}");
        }
        for e in &d.export_info {
            let _ = writeln!(w, "  export_info: {} [{}]", e.name, flags(e.flags));
        }
        for i in &d.import_info {
            let _ = writeln!(w, "  import_info: {}.{} [{}]", i.module, i.field, flags(i.flags));
        }
        for p in &d.runtime_path {
            let _ = writeln!(w, "  runtime_path: {p}");
        }
    }

    let _ = writeln!(w, "imports:");
    for i in &obj.imports {
        let _ = writeln!(w, "  {} {}.{}", import_desc(obj, &i.ty), i.module, i.field);
    }
    let _ = writeln!(w, "exports:");
    for e in &obj.exports {
        let _ = writeln!(w, "  {} {} ({})", kind_name(e.kind), e.name, e.index);
    }
    let _ = writeln!(w, "functions: {} imported, {} defined", obj.imported_funcs.len(), obj.functions.len());
    let _ = writeln!(w, "globals: {} imported, {} defined", obj.imported_globals.len(), obj.globals.len());
    if !obj.is_relocatable() {
        for (i, g) in obj.globals.iter().enumerate() {
            let ty = format!("{}{}", if g.ty.mutable { "mut " } else { "" }, val(g.ty.content_type));
            let init = obj.bytes.get(g.init.clone()).map_or_else(|| vec!["?".to_owned()], instructions);
            let init: Vec<&str> = init.iter().map(String::as_str).filter(|&op| op != "end").collect();
            let _ = writeln!(w, "  global {}: {ty} = {}", obj.imported_globals.len() + i, init.join("; "));
        }
    }
    for (i, e) in obj.elements.iter().enumerate() {
        let funcs: Vec<String> = e.functions.iter().map(|f| f.to_string()).collect();
        let _ = writeln!(w, "elem {i}: table {} funcs [{}]", e.table.map_or("-".into(), |t| t.to_string()), funcs.join(" "));
    }

    if !obj.symbols.is_empty() {
        let _ = writeln!(w, "symbols:");
    }
    for (i, s) in obj.symbols.iter().enumerate() {
        let target = match s.target {
            SymbolTarget::Function(f) => format!("F func {f}"),
            SymbolTarget::Data(Some(d)) => format!("D segment {} +{} size {}", d.segment, d.offset, d.size),
            SymbolTarget::Data(None) => "D".to_owned(),
            SymbolTarget::Global(g) => format!("G global {g}"),
            SymbolTarget::Section(s) => format!("S section {s}"),
            SymbolTarget::Tag(t) => format!("T tag {t}"),
            SymbolTarget::Table(t) => format!("T table {t}"),
        };
        let import = s.import.map(|(m, f)| format!(" from {m}.{f}")).unwrap_or_default();
        let _ = writeln!(w, "  {i}: {} {target} [{}]{import}", s.name, flags(s.flags));
    }
    if obj.data.iter().any(|d| d.info.is_some()) {
        let _ = writeln!(w, "segments:");
    }
    for (i, d) in obj.data.iter().enumerate() {
        if let Some(info) = &d.info {
            let mut extra = String::new();
            if info.is_strings() {
                extra.push_str(" strings");
            }
            if info.is_tls() {
                extra.push_str(" tls");
            }
            let _ = writeln!(w, "  {i}: {} align 2^{} size {}{extra}", info.name, info.align_log2, d.data.len());
        }
    }
    if obj.linking_version.is_none() && !obj.data.is_empty() {
        let _ = writeln!(w, "data: {} segments, {} bytes", obj.data.len(), obj.data.iter().map(|d| d.data.len()).sum::<usize>());
    }
    for init in &obj.init_funcs {
        let name = obj.symbols.get(init.symbol.as_usize()).map_or("?", |s| s.name);
        let _ = writeln!(w, "init: priority {} {name} (symbol {})", init.priority, init.symbol);
    }
    for c in &obj.comdats {
        let members: Vec<String> = c.members.iter().map(comdat_member).collect();
        let _ = writeln!(w, "comdat: {} [{}]", c.name, members.join(" "));
    }
    for r in &obj.relocations {
        let target = obj.section(r.target).map_or("?", |s| s.name);
        let _ = writeln!(w, "{} -> {target} ({} entries):", r.name, r.entries.len());
        for e in &r.entries {
            let what = if e.kind.index_is_symbol() {
                obj.symbols.get(e.index as usize).map_or("?".to_owned(), |s| s.name.to_owned())
            } else {
                format!("type {}", e.index)
            };
            let addend = if e.kind.has_addend() && e.addend != 0 { format!("{:+}", e.addend) } else { String::new() };
            let _ = writeln!(w, "  0x{:05x} {:<31} {what}{addend}", e.offset, e.kind.name());
        }
    }
    if !obj.is_relocatable() {
        synthesized_bodies(obj, w);
    }
    out
}

/// The names a linker gives the functions it writes itself (wasm-ld's and ours).
const SYNTHESIZED: [&str; 5] =
    [names::CALL_CTORS, names::APPLY_DATA_RELOCS, "__wasm_apply_global_relocs", "__wasm_apply_tls_relocs", "__wasm_init_memory"];

/// The body of every exported synthesized function, then the start function's, one
/// instruction a line.
fn synthesized_bodies(obj: &Object<'_>, w: &mut String) {
    let exported = obj.exports.iter().filter(|e| e.kind == ExternalKind::Func && SYNTHESIZED.contains(&e.name)).map(|e| (e.name, e.index));
    for (name, index) in exported.chain(obj.start.map(|f| ("start", f.0))) {
        let _ = writeln!(w, "code {name} (func {index}):");
        let body = (index as usize)
            .checked_sub(obj.imported_funcs.len())
            .and_then(|d| obj.functions.get(d))
            .and_then(|f| obj.bytes.get(f.body.clone()));
        let Some(body) = body else {
            let _ = writeln!(w, "  (imported)");
            continue;
        };
        let function = wasmparser::FunctionBody::new(BinaryReader::new(body, 0));
        let locals: Vec<String> = match function.get_locals_reader() {
            Ok(reader) => {
                reader.into_iter().map(|l| l.map_or_else(|e| format!("? ({})", e.message()), |(n, t)| format!("{n} {}", val(t)))).collect()
            }
            Err(e) => vec![format!("? ({})", e.message())],
        };
        if !locals.is_empty() {
            let _ = writeln!(w, "  locals: {}", locals.join(", "));
        }
        let code = match function.get_operators_reader() {
            Ok(reader) => read_operators(reader),
            Err(e) => vec![format!("malformed: {}", e.message())],
        };
        for op in code {
            let _ = writeln!(w, "  {op}");
        }
    }
}

/// A constant expression's instructions.
fn instructions(expr: &[u8]) -> Vec<String> {
    read_operators(OperatorsReader::new(BinaryReader::new(expr, 0)))
}

fn read_operators(mut reader: OperatorsReader<'_>) -> Vec<String> {
    let mut ops = Vec::new();
    while !reader.eof() {
        match reader.read() {
            Ok(op) => ops.push(operator(&op)),
            Err(e) => {
                ops.push(format!("malformed: {}", e.message()));
                break;
            }
        }
    }
    ops
}

/// One instruction in the text format's spelling, immediates as plain numbers; the few
/// a linker does not synthesize fall back to wasmparser's debug form.
fn operator(op: &Operator<'_>) -> String {
    use Operator as O;
    let memarg = |name: &str, m: &MemArg| format!("{name} offset={} align={}", m.offset, 1u64 << m.align);
    match op {
        O::End => "end".into(),
        O::Nop => "nop".into(),
        O::Drop => "drop".into(),
        O::Return => "return".into(),
        O::Call { function_index } => format!("call {function_index}"),
        O::I32Const { value } => format!("i32.const {value}"),
        O::I64Const { value } => format!("i64.const {value}"),
        O::GlobalGet { global_index } => format!("global.get {global_index}"),
        O::GlobalSet { global_index } => format!("global.set {global_index}"),
        O::LocalGet { local_index } => format!("local.get {local_index}"),
        O::LocalSet { local_index } => format!("local.set {local_index}"),
        O::I32Add => "i32.add".into(),
        O::I64Add => "i64.add".into(),
        O::I32Store { memarg: m } => memarg("i32.store", m),
        O::I64Store { memarg: m } => memarg("i64.store", m),
        O::I32Load { memarg: m } => memarg("i32.load", m),
        O::MemoryInit { data_index, mem } => format!("memory.init {data_index} {mem}"),
        O::DataDrop { data_index } => format!("data.drop {data_index}"),
        O::RefFunc { function_index } => format!("ref.func {function_index}"),
        other => format!("{other:?}"),
    }
}

/// The relocation kinds an object uses, sorted and deduplicated: a compact fingerprint that
/// tests assert on.
pub fn relocation_kinds(obj: &Object<'_>) -> Vec<RelocKind> {
    let mut kinds: Vec<RelocKind> = obj.relocations.iter().flat_map(|r| r.entries.iter().map(|e| e.kind)).collect();
    kinds.sort_by_key(|k| k.as_u8());
    kinds.dedup();
    kinds
}

fn flags(f: SymbolFlags) -> String {
    let mut parts = Vec::new();
    parts.push(if f.contains(SymbolFlags::BINDING_WEAK) {
        "weak"
    } else if f.contains(SymbolFlags::BINDING_LOCAL) {
        "local"
    } else {
        "global"
    });
    parts.push(if f.contains(SymbolFlags::VISIBILITY_HIDDEN) { "hidden" } else { "default" });
    for (flag, name) in [
        (SymbolFlags::UNDEFINED, "undefined"),
        (SymbolFlags::EXPORTED, "exported"),
        (SymbolFlags::EXPLICIT_NAME, "explicit_name"),
        (SymbolFlags::NO_STRIP, "no_strip"),
        (SymbolFlags::TLS, "tls"),
        (SymbolFlags::ABSOLUTE, "absolute"),
    ] {
        if f.contains(flag) {
            parts.push(name);
        }
    }
    let known = SymbolFlags::all().bits();
    let mut s = parts.join(" ");
    if f.bits() & !known != 0 {
        let _ = write!(s, " unknown=0x{:x}", f.bits() & !known);
    }
    s
}

fn import_desc(obj: &Object<'_>, ty: &TypeRef) -> String {
    match ty {
        TypeRef::Func(t) | TypeRef::FuncExact(t) => {
            format!("func {}", obj.types.get(*t as usize).map_or(format!("type {t}"), signature))
        }
        TypeRef::Global(g) => format!("global {}{}", if g.mutable { "mut " } else { "" }, val(g.content_type)),
        TypeRef::Memory(m) => format!("memory {}{}", m.initial, m.maximum.map(|x| format!("..{x}")).unwrap_or_default()),
        TypeRef::Table(t) => format!("table {}{}", t.initial, t.maximum.map(|x| format!("..{x}")).unwrap_or_default()),
        TypeRef::Tag(_) => "tag".to_owned(),
    }
}

fn signature(f: &FuncType) -> String {
    let list = |v: &[ValType]| v.iter().map(|t| val(*t)).collect::<Vec<_>>().join(", ");
    format!("({}) -> ({})", list(f.params()), list(f.results()))
}

fn val(v: ValType) -> String {
    match v {
        ValType::I32 => "i32".into(),
        ValType::I64 => "i64".into(),
        ValType::F32 => "f32".into(),
        ValType::F64 => "f64".into(),
        ValType::V128 => "v128".into(),
        ValType::Ref(r) => format!("{r:?}"),
    }
}

fn kind_name(k: ExternalKind) -> &'static str {
    match k {
        ExternalKind::Func | ExternalKind::FuncExact => "func",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

fn comdat_member(m: &ComdatMember) -> String {
    match m {
        ComdatMember::Data(s) => format!("data:{s}"),
        ComdatMember::Function(f) => format!("func:{f}"),
        ComdatMember::Global(g) => format!("global:{g}"),
        ComdatMember::Tag(t) => format!("tag:{t}"),
        ComdatMember::Table(t) => format!("table:{t}"),
        ComdatMember::Section(s) => format!("section:{s}"),
    }
}
