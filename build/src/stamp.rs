//! Build keys and stamps. A cached product is current when its stamp file holds the key of
//! the inputs it was built from and every product file exists. Keys hash contents (input
//! files, scripts, arguments, pinned versions), never the checkout's path, so a fresh clone
//! or an installed `pymode` reuses what another one built.

use crate::error::{IoContext, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// A build key being computed: feed it the inputs in a fixed order, then [`Key::finish`].
#[derive(Default)]
pub struct Key(Sha256);

impl Key {
    /// An empty key.
    pub fn new() -> Key {
        Key::default()
    }

    /// Adds bytes as they are (no separator: callers that need one add it).
    pub fn update(&mut self, bytes: impl AsRef<[u8]>) -> &mut Key {
        self.0.update(bytes.as_ref());
        self
    }

    /// The key as lowercase hex.
    pub fn finish(self) -> String {
        format!("{:x}", self.0.finalize())
    }
}

/// Whether a cached build is current: `stamp` holds `key` and every product exists. Says so
/// if it is; otherwise removes the stale stamp, so that a build cut short leaves none.
pub fn is_current(stamp: &Path, key: &str, products: &[PathBuf]) -> bool {
    if fs::read_to_string(stamp).is_ok_and(|s| s.trim() == key) && products.iter().all(|p| p.is_file()) {
        println!("  up to date ({})", stamp.display());
        return true;
    }
    let _ = fs::remove_file(stamp);
    false
}

/// Writes `key` into `stamp` through a temporary file, so a reader never sees half a key.
pub fn write(stamp: &Path, key: &str) -> Result<()> {
    let tmp = stamp.with_extension("stamp-tmp");
    fs::write(&tmp, key).at("write", &tmp)?;
    fs::rename(&tmp, stamp).at("rename into place", stamp)
}
