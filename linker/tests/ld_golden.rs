//! Golden tests of `pymode-readobj` on `pymode-ld`'s own outputs: every fixture, PIC and
//! non-PIC (its code rewritten), both bindings. A change in what the linker emits shows up as
//! a reviewable text diff.
//! `BLESS=1 cargo test -p pymode-linker --test ld_golden` rewrites the golden files.

use pymode_abi::object::Object;
use pymode_linker::readobj::describe;
use pymode_linker::{Binding, Options, options::InputSpec};
use pymode_testdata::{Mode, fixture_names, fixture_object};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/pymode-ld")
}

#[test]
fn pymode_ld_outputs_match_golden() {
    let bless = pymode_testdata::golden::bless();
    let mut mismatches = Vec::new();
    for mode in Mode::all() {
        for name in fixture_names() {
            for (binding, suffix) in [(Binding::Local, "so"), (Binding::Interposable, "no-bsymbolic.so")] {
                let opts = Options { inputs: vec![InputSpec::File(fixture_object(&name, mode))], binding, ..Options::default() };
                let bytes = pymode_linker::link_to_bytes(&opts).unwrap_or_else(|e| panic!("{mode}/{name}: {e}"));
                let display = format!("{mode}/{name}.{suffix}");
                let text = describe(&Object::parse(&display, &bytes).unwrap());
                let path = golden_dir().join(format!("{display}.txt"));
                if bless {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, &text).unwrap();
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(expected) if expected == text => {}
                    Ok(_) => mismatches.push(format!("{display}: differs from {}", path.display())),
                    Err(_) => mismatches.push(format!("{display}: no golden file {} (run with BLESS=1)", path.display())),
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "golden mismatches (review, then BLESS=1):\n{}", mismatches.join("\n"));
}
