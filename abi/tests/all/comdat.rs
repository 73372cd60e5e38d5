//! Comdat groups, as C++ inline functions and templates produce them, read from a real
//! zig-compiled object.

use pymode_abi::object::{ComdatMember, Object, SymbolTarget};
use pymode_testdata::trials::Trial;
use std::path::PathBuf;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![cxx_inline_functions_land_in_comdats,]
}

fn cxx_inline_functions_land_in_comdats() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let source = dir.join("comdat.cpp");
    let object = dir.join("comdat.o");
    std::fs::write(
        &source,
        "template <int N> int scaled(int x) { return x * N; }\n\
         inline int shared_helper(int x) { return x + 1; }\n\
         extern \"C\" int use_them(int x) { return scaled<3>(x) + shared_helper(x); }\n",
    )
    .expect("write source");
    let mut cmd = pymode_testdata::zig_command();
    let status = cmd
        .args(["c++", "-target", pymode_testdata::WASI_TARGET, "-O0", "-fno-sanitize=undefined", "-g0", "-fvisibility=default", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .status()
        .expect("run zig c++ (provision it with `cargo xtask toolchain`)");
    assert!(status.success());
    let bytes = std::fs::read(&object).expect("read object");
    let obj = Object::parse("comdat.o", &bytes).expect("parses");

    let names: Vec<&str> = obj.comdats.iter().map(|c| c.name).collect();
    assert!(names.iter().any(|n| n.contains("scaled")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("shared_helper")), "{names:?}");
    for comdat in &obj.comdats {
        // Each group holds the function of the same name.
        let [ComdatMember::Function(f)] = comdat.members[..] else { panic!("{comdat:?}") };
        let symbol =
            obj.symbols.iter().find(|s| s.target == SymbolTarget::Function(f)).unwrap_or_else(|| panic!("no symbol for comdat member {f}"));
        assert_eq!(symbol.name, comdat.name);
        assert!(symbol.is_weak(), "{} should be weak (linkonce_odr)", symbol.name);
    }
}
