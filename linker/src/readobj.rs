//! `pymode-readobj`: a stable text description of a relocatable object or a side module.
//!
//! The format is what the golden tests compare, so it lists everything the linker and the
//! loader care about (imports, exports, symbols, segments, init functions, comdats,
//! relocations, `dylink.0`, `target_features`) in file order, one item a line, and nothing
//! that varies between runs.

use pymode_abi::object::{ComdatMember, Object, SymbolTarget};
use pymode_abi::{RelocKind, SymbolFlags};
use std::fmt::Write as _;
use wasmparser::{ExternalKind, FuncType, TypeRef, ValType};

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
    out
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
