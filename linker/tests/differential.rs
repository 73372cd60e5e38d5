//! Differential tests: every PIC fixture (`pic-O0`, `pic-O2`) linked by `pymode-ld` and by
//! the reference `wasm-ld --shared --experimental-pic --unresolved-symbols=import-dynamic`,
//! compared on a normalized summary. See `common/differential.rs` for what is compared and
//! for the differences that are intended (local binding).
//!
//! Needs the toolchain and fixtures (`cargo xtask fixtures`); fails loudly without them.

mod common;

use common::differential::compare_with_wasm_ld;
use pymode_testdata::{Mode, fixture_names, fixture_object};

#[test]
fn every_pic_fixture_matches_wasm_ld() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for mode in [Mode::PicO0, Mode::PicO2] {
        for name in fixture_names() {
            let object = fixture_object(&name, mode);
            compare_with_wasm_ld(&format!("{mode}/{name}"), &object, &dir.path().join(format!("{name}-{mode}.so")));
            checked += 1;
        }
    }
    assert!(checked >= 24, "expected every fixture in two modes, checked {checked}");
}
