//! Golden files shared by the test suites: `BLESS=1` rewrites them from what the test
//! produced; otherwise the test compares and fails with the path to review.

use std::path::{Path, PathBuf};

/// Whether this run rewrites golden files (`BLESS` set to anything but `0`).
pub fn bless() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| v != "0")
}

/// The bad-input catalogue, `testdata/bad` (see its README).
pub fn bad_dir() -> PathBuf {
    crate::workspace_root().join("testdata").join("bad")
}

/// Compares `actual` with the text at `path`, or writes it there when blessing.
///
/// # Panics
/// When they differ or the file is missing, naming the file and how to rewrite it.
pub fn check_text(path: &Path, actual: &str) {
    if bless() {
        write(path, actual.as_bytes());
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1)", path.display()));
    assert_eq!(actual, expected, "the outcome differs from {} (BLESS=1 rewrites it)", path.display());
}

/// The committed bytes at `path`, which must equal `generated` (what the test's generator
/// makes); when blessing, `generated` is written there first.
///
/// # Panics
/// When they differ or the file is missing.
pub fn check_bytes(path: &Path, generated: &[u8]) -> Vec<u8> {
    if bless() {
        write(path, generated);
    }
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1)", path.display()));
    assert!(bytes == generated, "{} differs from its generator (BLESS=1 rewrites it)", path.display());
    bytes
}

/// Golden text files under one directory, checked together by [`collect`]: every mismatch is
/// recorded, and all of them are reported at the end, so one run lists every file to review.
pub struct Goldens {
    dir: PathBuf,
    mismatches: Vec<String>,
}

impl Goldens {
    /// Compares `actual` with `<dir>/<display>.txt`, or writes it there when blessing;
    /// a difference or a missing file is recorded, with the first differing line.
    pub fn check(&mut self, display: &str, actual: &str) {
        let path = self.dir.join(format!("{display}.txt"));
        if bless() {
            write(&path, actual.as_bytes());
            return;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => {
                let first = expected.lines().zip(actual.lines()).position(|(a, b)| a != b);
                self.mismatches.push(format!("{display}: differs from {} (first differing line {first:?})", path.display()));
            }
            Err(_) => self.mismatches.push(format!("{display}: no golden file {} (run with BLESS=1)", path.display())),
        }
    }
}

/// Runs `checks` against the golden files under `dir`.
///
/// # Panics
/// After `checks`, when any file differed or was missing, listing them all.
pub fn collect(dir: &Path, checks: impl FnOnce(&mut Goldens)) {
    let mut goldens = Goldens { dir: dir.to_owned(), mismatches: Vec::new() };
    checks(&mut goldens);
    assert!(goldens.mismatches.is_empty(), "golden mismatches (review, then BLESS=1):\n{}", goldens.mismatches.join("\n"));
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
