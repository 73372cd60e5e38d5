//! Replays each target's seed corpus (`fuzz/seeds/<target>/`) through the target's body.

use pymode_testdata::trials::Trial;
use std::path::Path;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![parse_object_seeds, parse_dylink0_seeds, link_seeds, load_seeds,]
}

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("read seed");
        run(&data);
        // Every prefix too: truncation is the commonest corruption.
        for cut in (0..data.len()).step_by(7) {
            run(&data[..cut]);
        }
        count += 1;
    }
    assert!(count >= 3, "{target}: expected a seed corpus in {}, found {count} files", dir.display());
}

fn parse_object_seeds() {
    replay("parse_object", pymode_fuzz::parse_object);
}

fn parse_dylink0_seeds() {
    replay("parse_dylink0", pymode_fuzz::parse_dylink0);
}

fn link_seeds() {
    replay("link", pymode_fuzz::link);
}

fn load_seeds() {
    replay("load", pymode_fuzz::load);
}
