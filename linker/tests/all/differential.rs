//! Differential tests: every PIC fixture (`pic-O0`, `pic-O2`) linked by `pymode-ld` and by
//! the reference `wasm-ld --shared --experimental-pic --unresolved-symbols=import-dynamic`,
//! compared on a normalized summary, one trial per fixture and mode
//! (`differential::pic-O2/aligned`). See `common/differential.rs` for what is compared and
//! for the differences that are intended (local binding).
//!
//! Needs the toolchain and fixtures (`cargo xtask fixtures`); fails loudly without them.

use crate::common::differential::compare_with_wasm_ld;
use pymode_testdata::trials::{Trial, case};
use pymode_testdata::{Mode, fixture_names, fixture_object};

/// The modes compared: wasm-ld links only PIC objects.
const MODES: [Mode; 2] = [Mode::PicO0, Mode::PicO2];

pub(crate) fn trials() -> Vec<Trial> {
    let mut trials = pymode_testdata::tests![every_pic_fixture_is_compared];
    for mode in MODES {
        for name in fixture_names() {
            trials.push(case(module_path!(), format!("{mode}/{name}"), move || pic_fixture_matches_wasm_ld(&name, mode)));
        }
    }
    trials
}

fn pic_fixture_matches_wasm_ld(name: &str, mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let object = fixture_object(name, mode);
    compare_with_wasm_ld(&format!("{mode}/{name}"), &object, &dir.path().join(format!("{name}-{mode}.so")));
}

fn every_pic_fixture_is_compared() {
    let checked = MODES.len() * fixture_names().len();
    assert!(checked >= 24, "expected every fixture in two modes, checked {checked}");
}
