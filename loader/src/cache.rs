//! Compiled-module cache (DESIGN §5.11): in memory by content hash, and optionally on disk
//! through `Module::serialize`, keyed by the content hash and the engine's compatibility
//! hash. A disk entry carries the SHA-256 of its payload; a corrupt or stale entry is
//! ignored and rebuilt. The cache directory must be trusted: deserializing runs native code
//! that wasmtime compiled.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::error::{BoxError, boxed};

/// Where compiled modules are kept.
#[derive(Debug, Default)]
pub struct ModuleCache {
    memory: HashMap<[u8; 32], Module>,
    dir: Option<PathBuf>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ModuleCache {
    /// An in-memory cache, plus an on-disk one in `dir` if given.
    pub fn new(dir: Option<PathBuf>) -> Self {
        ModuleCache { memory: HashMap::new(), dir }
    }

    /// Modules held in memory.
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    /// Whether the in-memory cache is empty.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }

    /// The compiled module for `bytes`: from memory, from disk, or compiled (and stored).
    ///
    /// # Errors
    /// wasmtime's validation or compilation error. Disk problems are not errors: the module
    /// is compiled instead.
    pub fn get_or_compile(&mut self, engine: &Engine, bytes: &[u8]) -> Result<Module, BoxError> {
        let key: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(m) = self.memory.get(&key) {
            return Ok(m.clone());
        }
        let file = self.dir.as_deref().map(|d| entry_path(d, engine, &key));
        let module = match file.as_deref().and_then(|f| load_entry(engine, f)) {
            Some(m) => m,
            None => {
                let m = Module::new(engine, bytes).map_err(boxed)?;
                if let Some(f) = &file {
                    // A failed write only costs a recompilation next time.
                    if let Err(e) = store_entry(&m, f) {
                        tracing::debug!(path = %f.display(), error = %e, "module cache write failed");
                    }
                }
                m
            }
        };
        self.memory.insert(key, module.clone());
        Ok(module)
    }
}

fn entry_path(dir: &Path, engine: &Engine, key: &[u8; 32]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    dir.join(format!("{}-{:016x}.cwasm", hex(key), h.finish()))
}

fn load_entry(engine: &Engine, path: &Path) -> Option<Module> {
    let data = std::fs::read(path).ok()?;
    let (digest, payload) = data.split_at_checked(32)?;
    if Sha256::digest(payload).as_slice() != digest {
        tracing::debug!(path = %path.display(), "ignoring corrupt module cache entry");
        return None;
    }
    // SAFETY: the payload is byte-for-byte what `Module::serialize` wrote into our cache
    // directory (checked by its digest), and wasmtime checks that it was compiled by a
    // compatible engine; the directory is trusted, as documented.
    #[allow(unsafe_code)]
    let module = unsafe { Module::deserialize(engine, payload) };
    match module {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "ignoring stale module cache entry");
            None
        }
    }
}

fn store_entry(module: &Module, path: &Path) -> Result<(), BoxError> {
    let payload = module.serialize().map_err(boxed)?;
    let dir = path.parent().ok_or("cache entry has no directory")?;
    std::fs::create_dir_all(dir)?;
    // Write to a unique temporary name, then rename: readers never see a partial entry.
    let tmp =
        dir.join(format!(".{}.{}.tmp", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&Sha256::digest(&payload))?;
    f.write_all(&payload)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(())
}
