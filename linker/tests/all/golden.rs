//! Golden tests of `pymode-readobj`'s text, one trial per fixture and mode:
//! - `golden::pymode-ld::<mode>/<fixture>`: `pymode-ld`'s own outputs, PIC and non-PIC (its
//!   code rewritten), both bindings, against `tests/golden/pymode-ld/<mode>/<fixture>.so.txt`
//!   and `.no-bsymbolic.so.txt`. A change in what the linker emits shows up as a reviewable
//!   text diff.
//! - `golden::readobj::<mode>/<fixture>`: every fixture object (four modes) and every wasm-ld
//!   side module (PIC modes), against `tests/golden/readobj/`.
//!
//! `BLESS=1 cargo test -p pymode-linker --test all -- golden::` rewrites the golden files;
//! review the diff before committing it.

use pymode_abi::object::Object;
use pymode_linker::readobj::describe;
use pymode_linker::{Binding, Options, options::InputSpec};
use pymode_testdata::trials::{Trial, case};
use pymode_testdata::{Mode, fixture_names, fixture_object, fixture_side_module, golden};
use std::path::{Path, PathBuf};

pub(crate) fn trials() -> Vec<Trial> {
    let mut trials = pymode_testdata::tests![readobj_covers_the_full_fixture_set];
    for mode in Mode::all() {
        for name in fixture_names() {
            let fixture = name.clone();
            trials.push(case(module_path!(), format!("pymode-ld::{mode}/{name}"), move || pymode_ld_output(&fixture, mode)));
            trials.push(case(module_path!(), format!("readobj::{mode}/{name}"), move || readobj_output(&name, mode)));
        }
    }
    trials
}

fn golden_dir(tool: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(tool)
}

/// Describes the file under a stable display name (`pic-O2/foo.o`), so goldens do not depend
/// on where the workspace is checked out.
pub(crate) fn describe_file(path: &Path, display: &str) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = Object::parse(display, &bytes).unwrap_or_else(|e| panic!("{e}"));
    describe(&obj)
}

/// The fixture linked by `pymode-ld` in both bindings matches its golden texts.
fn pymode_ld_output(name: &str, mode: Mode) {
    golden::collect(&golden_dir("pymode-ld"), |goldens| {
        for (binding, suffix) in [(Binding::Local, "so"), (Binding::Interposable, "no-bsymbolic.so")] {
            let opts = Options { inputs: vec![InputSpec::File(fixture_object(name, mode))], binding, ..Options::default() };
            let bytes = pymode_linker::link_to_bytes(&opts).unwrap_or_else(|e| panic!("{mode}/{name}: {e}"));
            let display = format!("{mode}/{name}.{suffix}");
            goldens.check(&display, &describe(&Object::parse(&display, &bytes).unwrap()));
        }
    });
}

/// The fixture object, and in PIC modes wasm-ld's side module of it, match their golden texts.
fn readobj_output(name: &str, mode: Mode) {
    golden::collect(&golden_dir("readobj"), |goldens| {
        let display = format!("{}/{name}.o", mode.dir_name());
        goldens.check(&display, &describe_file(&fixture_object(name, mode), &display));
        if mode.is_pic() {
            let display = format!("{}/{name}.wasm-ld.so", mode.dir_name());
            goldens.check(&display, &describe_file(&fixture_side_module(name, mode), &display));
        }
    });
}

fn readobj_covers_the_full_fixture_set() {
    let names = fixture_names();
    assert!(names.len() >= 12, "expected the full fixture set, found {names:?}");
}
