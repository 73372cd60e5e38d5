//! The `link` target's structured mutator (`pymode_fuzz::mutate`): it finds the fields it is
//! meant to aim at in real fixture objects, and thousands of its mutations of each `link`
//! seed go through `pymode_fuzz::link`, which panics on a linker panic or on an output that
//! does not validate.

use pymode_testdata::trials::Trial;
use std::path::Path;

use pymode_fuzz::mutate::{FieldKind, fields, mutate};

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![finds_relocation_and_symbol_fields, structured_mutations_link_or_fail_cleanly, mutation_is_deterministic,]
}

fn link_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join("link");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("link seeds")
        .map(|e| {
            let path = e.expect("dir entry").path();
            (path.file_name().expect("file name").to_string_lossy().into_owned(), std::fs::read(&path).expect("read seed"))
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 3, "expected link seeds in {}", dir.display());
    seeds
}

fn finds_relocation_and_symbol_fields() {
    for (name, data) in link_seeds() {
        let found = fields(&data);
        let count = |want: fn(FieldKind) -> bool| found.iter().filter(|f| want(f.kind)).count();
        assert!(count(|k| k == FieldKind::RelocType) > 0, "{name}: no relocation found");
        assert!(count(|k| matches!(k, FieldKind::RelocOffset { target_len } if target_len > 0)) > 0, "{name}");
        assert!(count(|k| k == FieldKind::SymbolFlags) > 0, "{name}: no symbol found");
        assert!(count(|k| k == FieldKind::SectionSize) > 3, "{name}: too few sections");
        for f in &found {
            assert!(f.pos + f.len <= data.len(), "{name}: {f:?} past the end");
        }
    }
}

/// Mutations per seed; `PYMODE_FULL=1` (`cargo xtask test --full`) runs more.
fn rounds() -> u64 {
    if std::env::var_os("PYMODE_FULL").is_some() { 10_000 } else { 500 }
}

fn structured_mutations_link_or_fail_cleanly() {
    let mut changed = 0u64;
    let mut total = 0u64;
    for (i, (_, seed)) in link_seeds().into_iter().enumerate() {
        for round in 0..rounds() {
            let mut data = seed.clone();
            assert!(mutate(&mut data, (i as u64) << 32 | round));
            assert_eq!(data.len(), seed.len(), "the mutator keeps the length");
            changed += u64::from(data != seed);
            total += 1;
            pymode_fuzz::link(&data);
        }
    }
    // Some mutations write the old value back (a flag toggled twice); most must not.
    assert!(changed * 10 > total * 8, "only {changed} of {total} mutations changed the input");
}

fn mutation_is_deterministic() {
    let (_, seed) = link_seeds().remove(0);
    let (mut a, mut b) = (seed.clone(), seed.clone());
    mutate(&mut a, 12345);
    mutate(&mut b, 12345);
    assert_eq!(a, b);
}
