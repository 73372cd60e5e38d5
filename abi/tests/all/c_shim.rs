//! The guest side of the host-import ABI (`abi/c/`) agrees with the Rust constants: compiled
//! with zig, the shim imports exactly the `pymode` functions of `pymode_abi::host` with their
//! signatures, defines dlopen/dlsym/dlerror/dlclose, and wasi-libc's RTLD_* values match.

use pymode_abi::host;
use pymode_abi::object::{Object, SymbolTarget};
use pymode_testdata::trials::Trial;
use std::path::{Path, PathBuf};
use wasmparser::TypeRef;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        shim_imports_match_the_host_abi,
        header_declares_every_host_import,
        rtld_values_match_wasi_libc,
        ffi_layer_imports_exactly_the_ffi_functions,
    ]
}

fn compile(source: &Path, extra: &[&str], out_name: &str) -> Vec<u8> {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = out_dir.join(out_name);
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
    let status = pymode_testdata::zig_cc()
        .args(["-O2", "-g0", "-c"])
        .arg("-I")
        .arg(&include)
        .args(extra)
        .arg(source)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run zig cc (provision it with `cargo xtask toolchain`)");
    assert!(status.success(), "zig cc failed on {}", source.display());
    std::fs::read(&out).expect("read object")
}

fn shim_imports_match_the_host_abi() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/pymode_dlfcn.c");
    let bytes = compile(&source, &[], "pymode_dlfcn.o");
    let obj = Object::parse("pymode_dlfcn.o", &bytes).expect("parses");
    let mut seen = Vec::new();
    for import in obj.imports.iter().filter(|i| i.module == host::MODULE) {
        let TypeRef::Func(ty) = import.ty else { panic!("{} is not a function", import.field) };
        let expected = host::ALL.iter().find(|h| h.name == import.field).unwrap_or_else(|| panic!("unknown import {}", import.field));
        let ty = &obj.types[ty as usize];
        assert_eq!(ty.params(), expected.params, "{} params", import.field);
        assert_eq!(ty.results(), expected.results, "{} results", import.field);
        seen.push(import.field);
    }
    // dlopen goes through dl_open_flags; the flag-less dl_open is for guests that predate it.
    // fn_arity is the call trampoline's.
    seen.sort();
    assert_eq!(seen, ["dl_close", "dl_error", "dl_open_flags", "dl_sym", "fn_arity"]);
    for name in ["dlopen", "dlsym", "dlerror", "dlclose"] {
        let s = obj.symbols.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} not defined"));
        assert!(!s.is_undefined() && matches!(s.target, SymbolTarget::Function(_)), "{name}");
    }
}

/// `pymode_ffi.c` (libffi over the host) imports each of `host::FFI` with its signature, and
/// nothing else from `pymode`; it defines libffi's entry points.
fn ffi_layer_imports_exactly_the_ffi_functions() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/pymode_ffi.c");
    let bytes = compile(&source, &["-fPIC"], "pymode_ffi.o");
    let obj = Object::parse("pymode_ffi.o", &bytes).expect("parses");
    let mut seen = Vec::new();
    for import in obj.imports.iter().filter(|i| i.module == host::MODULE) {
        let TypeRef::Func(ty) = import.ty else { panic!("{} is not a function", import.field) };
        let expected = host::FFI.iter().find(|h| h.name == import.field).unwrap_or_else(|| panic!("unknown import {}", import.field));
        let ty = &obj.types[ty as usize];
        assert_eq!(ty.params(), expected.params, "{} params", import.field);
        assert_eq!(ty.results(), expected.results, "{} results", import.field);
        seen.push(import.field);
    }
    seen.sort();
    let mut expected: Vec<&str> = host::FFI.iter().map(|h| h.name).collect();
    expected.sort();
    assert_eq!(seen, expected);
    for name in
        ["ffi_prep_cif", "ffi_prep_cif_var", "ffi_call", "ffi_closure_alloc", "ffi_closure_free", "ffi_prep_closure_loc", "ffi_type_sint32"]
    {
        let s = obj.symbols.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} not defined"));
        assert!(!s.is_undefined(), "{name}");
    }
}

fn header_declares_every_host_import() {
    // A translation unit that calls all six through the header.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let source = dir.join("all_imports.c");
    std::fs::write(
        &source,
        "#include \"pymode_dlfcn.h\"\n\
         int32_t use_all(char *p) { pymode_dl_close(0); return pymode_dl_open(p, 1) + pymode_dl_open_flags(p, 1, 2)\n\
           + pymode_dl_sym(PYMODE_DEFAULT_HANDLE, p, 1) + pymode_dl_error(p, 4) + pymode_fn_arity(1); }\n",
    )
    .expect("write");
    let bytes = compile(&source, &[], "all_imports.o");
    let obj = Object::parse("all_imports.o", &bytes).expect("parses");
    let mut fields: Vec<&str> = obj.imports.iter().filter(|i| i.module == host::MODULE).map(|i| i.field).collect();
    fields.sort();
    let mut expected: Vec<&str> = host::ALL.iter().map(|h| h.name).collect();
    expected.sort();
    assert_eq!(fields, expected);
}

fn rtld_values_match_wasi_libc() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let source = dir.join("rtld.c");
    std::fs::write(
        &source,
        "#include <dlfcn.h>\nconst int rtld_values[6] = { RTLD_LAZY, RTLD_NOW, RTLD_NOLOAD, RTLD_NODELETE, RTLD_GLOBAL, RTLD_LOCAL };\n",
    )
    .expect("write");
    let bytes = compile(&source, &["-fvisibility=default"], "rtld.o");
    let obj = Object::parse("rtld.o", &bytes).expect("parses");
    let sym = obj.symbols.iter().find(|s| s.name == "rtld_values").expect("symbol");
    let SymbolTarget::Data(Some(d)) = sym.target else { panic!("not defined data") };
    let seg = &obj.data[d.segment.as_usize()].data[d.offset as usize..][..24];
    let values: Vec<i32> = seg.chunks(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    use host::rtld::*;
    assert_eq!(values, [LAZY, NOW, NOLOAD, NODELETE, GLOBAL, LOCAL]);
}
