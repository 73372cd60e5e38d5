//! Differential tests: every PIC fixture linked by `pymode-ld` and by the reference
//! `wasm-ld --shared --experimental-pic --unresolved-symbols=import-dynamic`, compared on a
//! normalized summary (dylink.0 MEM_INFO and NEEDED, the set of imports and of exports with
//! their kinds).
//!
//! - With `--no-bsymbolic` (wasm-ld's binding), the summaries must be equal.
//! - With our default local binding, the differences are exactly the intended ones: no
//!   `GOT.mem`/`GOT.func` import for a symbol the module defines (an internal GOT global
//!   instead), no `env` import of the module's own weak functions, and one more table slot
//!   for each own function whose address went through `GOT.func`.
//!
//! Needs the toolchain and fixtures (`cargo xtask fixtures`); fails loudly without them.

use pymode_abi::object::{Object, import_kind};
use pymode_abi::{MemInfo, names};
use pymode_linker::{Binding, Options, options::InputSpec};
use pymode_testdata::{Mode, fixture_names, fixture_object, wasm_ld};
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Summary {
    mem_info: MemInfo,
    needed: Vec<String>,
    imports: BTreeSet<(String, String, String)>,
    exports: BTreeSet<(String, String)>,
}

fn summarize(name: &str, bytes: &[u8]) -> Summary {
    let module = Object::parse(name, bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dylink = module.dylink0.clone().unwrap_or_else(|| panic!("{name}: no dylink.0"));
    Summary {
        mem_info: dylink.mem_info,
        needed: dylink.needed,
        imports: module
            .imports
            .iter()
            .map(|i| (i.module.to_owned(), i.field.to_owned(), format!("{:?}", import_kind(&i.ty))))
            .collect(),
        exports: module.exports.iter().map(|e| (e.name.to_owned(), format!("{:?}", e.kind))).collect(),
    }
}

fn reference_link(object: &Path, out: &Path) -> Vec<u8> {
    let output = wasm_ld()
        .args(["--shared", "--experimental-pic", "--unresolved-symbols=import-dynamic"])
        .arg(object)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run zig wasm-ld");
    assert!(output.status.success(), "wasm-ld failed on {}: {}", object.display(), String::from_utf8_lossy(&output.stderr));
    std::fs::read(out).expect("read wasm-ld output")
}

fn our_link(object: &Path, binding: Binding) -> Vec<u8> {
    let opts = Options { inputs: vec![InputSpec::File(object.to_owned())], binding, ..Options::default() };
    let bytes = pymode_linker::link_to_bytes(&opts).unwrap_or_else(|e| panic!("pymode-ld failed on {}: {e}", object.display()));
    pymode_linker::emit::validate(&bytes).expect("output validates");
    bytes
}

fn pic_modes() -> [Mode; 2] {
    [Mode::PicO0, Mode::PicO2]
}

#[test]
fn interposable_binding_matches_wasm_ld() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for mode in pic_modes() {
        for name in fixture_names() {
            let object = fixture_object(&name, mode);
            let theirs = summarize("wasm-ld", &reference_link(&object, &dir.path().join(format!("{name}-{mode}.so"))));
            let ours = summarize("pymode-ld", &our_link(&object, Binding::Interposable));
            assert_eq!(ours, theirs, "{mode}/{name}: pymode-ld --no-bsymbolic differs from wasm-ld");
            checked += 1;
        }
    }
    assert!(checked >= 20, "expected every fixture in two modes, checked {checked}");
}

#[test]
fn local_binding_differs_from_wasm_ld_only_as_intended() {
    let dir = tempfile::tempdir().unwrap();
    for mode in pic_modes() {
        for name in fixture_names() {
            let object = fixture_object(&name, mode);
            let theirs = summarize("wasm-ld", &reference_link(&object, &dir.path().join(format!("{name}-{mode}.so"))));
            let ours = summarize("pymode-ld", &our_link(&object, Binding::Local));
            let defined: BTreeSet<&str> = theirs.exports.iter().map(|(n, _)| n.as_str()).collect();
            // Intended difference 1: the module's own symbols are not imported.
            let own = |(module, field, _): &&(String, String, String)| {
                defined.contains(field.as_str()) && [names::GOT_MEM, names::GOT_FUNC, names::ENV].contains(&module.as_str())
            };
            let expected_imports: BTreeSet<_> = theirs.imports.iter().filter(|i| !own(i)).cloned().collect();
            assert_eq!(ours.imports, expected_imports, "{mode}/{name}: imports");
            assert_eq!(ours.exports, theirs.exports, "{mode}/{name}: exports");
            assert_eq!(ours.needed, theirs.needed, "{mode}/{name}: NEEDED");
            assert_eq!(ours.mem_info.memory_size, theirs.mem_info.memory_size, "{mode}/{name}: memory size");
            assert_eq!(ours.mem_info.memory_align_log2, theirs.mem_info.memory_align_log2, "{mode}/{name}: memory alignment");
            // Intended difference 2: own functions whose address wasm-ld left to GOT.func get
            // a slot in our table range instead.
            let own_got_funcs = theirs.imports.iter().filter(|i| own(i) && i.0 == names::GOT_FUNC).count() as u32;
            assert_eq!(ours.mem_info.table_size, theirs.mem_info.table_size + own_got_funcs, "{mode}/{name}: table size");
        }
    }
}
