//! The differential comparison against wasm-ld, shared by the fixture and markupsafe tests.
//!
//! Both linkers' outputs are reduced to a [`Summary`]: dylink.0 MEM_INFO and NEEDED, the set
//! of imports, the set of exports with their kinds, and the `target_features` entries.
//! - `pymode-ld --no-bsymbolic` (wasm-ld's binding) must give the same summary.
//! - `pymode-ld` with local binding differs exactly as intended: no `GOT.mem`/`GOT.func`
//!   import of a symbol the module defines (an internal GOT global instead), no `env` import
//!   of its own weak functions, and one more table slot for each own function whose address
//!   went through `GOT.func`. Everything else is equal.

use pymode_abi::object::{Object, import_kind};
use pymode_abi::{MemInfo, names};
use pymode_linker::{Binding, Options, options::InputSpec};
use pymode_testdata::wasm_ld;
use std::collections::BTreeSet;
use std::path::Path;

/// What the comparison looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub mem_info: MemInfo,
    pub needed: Vec<String>,
    pub imports: BTreeSet<(String, String, String)>,
    pub exports: BTreeSet<(String, String)>,
    pub target_features: BTreeSet<String>,
}

pub fn summarize(name: &str, bytes: &[u8]) -> Summary {
    let module = Object::parse(name, bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dylink = module.dylink0.clone().unwrap_or_else(|| panic!("{name}: no dylink.0"));
    Summary {
        mem_info: dylink.mem_info,
        needed: dylink.needed,
        imports: module.imports.iter().map(|i| (i.module.to_owned(), i.field.to_owned(), format!("{:?}", import_kind(&i.ty)))).collect(),
        exports: module.exports.iter().map(|e| (e.name.to_owned(), format!("{:?}", e.kind))).collect(),
        target_features: module.target_features.iter().flatten().map(|f| format!("{}{}", char::from(f.policy.prefix()), f.name)).collect(),
    }
}

/// `wasm-ld --shared --experimental-pic --unresolved-symbols=import-dynamic OBJECT -o OUT`.
pub fn reference_link(object: &Path, out: &Path) -> Vec<u8> {
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

pub fn our_link(object: &Path, binding: Binding) -> Vec<u8> {
    let opts = Options { inputs: vec![InputSpec::File(object.to_owned())], binding, ..Options::default() };
    let bytes = pymode_linker::link_to_bytes(&opts).unwrap_or_else(|e| panic!("pymode-ld failed on {}: {e}", object.display()));
    pymode_linker::emit::validate(&bytes).expect("output validates");
    bytes
}

/// Links `object` with wasm-ld (into `scratch`) and with both our bindings, and checks the
/// summaries as the module comment says. `label` names the case in failures.
pub fn compare_with_wasm_ld(label: &str, object: &Path, scratch: &Path) {
    let theirs = summarize("wasm-ld", &reference_link(object, scratch));

    let interposable = summarize("pymode-ld --no-bsymbolic", &our_link(object, Binding::Interposable));
    assert_eq!(interposable, theirs, "{label}: pymode-ld --no-bsymbolic differs from wasm-ld");

    let ours = summarize("pymode-ld", &our_link(object, Binding::Local));
    let defined: BTreeSet<&str> = theirs.exports.iter().map(|(n, _)| n.as_str()).collect();
    let own = |(module, field, _): &&(String, String, String)| {
        defined.contains(field.as_str()) && [names::GOT_MEM, names::GOT_FUNC, names::ENV].contains(&module.as_str())
    };
    let expected_imports: BTreeSet<_> = theirs.imports.iter().filter(|i| !own(i)).cloned().collect();
    assert_eq!(ours.imports, expected_imports, "{label}: imports (local binding drops only own-symbol imports)");
    assert_eq!(ours.exports, theirs.exports, "{label}: exports");
    assert_eq!(ours.needed, theirs.needed, "{label}: NEEDED");
    assert_eq!(ours.target_features, theirs.target_features, "{label}: target_features");
    assert_eq!(ours.mem_info.memory_size, theirs.mem_info.memory_size, "{label}: memory size");
    assert_eq!(ours.mem_info.memory_align_log2, theirs.mem_info.memory_align_log2, "{label}: memory alignment");
    assert_eq!(ours.mem_info.table_align_log2, theirs.mem_info.table_align_log2, "{label}: table alignment");
    let own_got_funcs = theirs.imports.iter().filter(|i| own(i) && i.0 == names::GOT_FUNC).count() as u32;
    assert_eq!(ours.mem_info.table_size, theirs.mem_info.table_size + own_got_funcs, "{label}: table size (one slot per own GOT.func)");
}
