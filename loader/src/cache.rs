//! Compiled-module cache (DESIGN §5.11): in memory by content hash, and optionally on disk
//! through `Module::serialize`, keyed by the content hash and the engine's compatibility
//! hash.
//!
//! Two costs are kept off the warm start (loader.md, "Start-up"):
//!
//! - **Hashing the input.** [`ModuleCache::get_or_compile_file`] (the main module) keys a
//!   file by the SHA-256 of its content, but remembers that hash in a small *stamp record*
//!   beside the entries, together with the file's identity and change times (device,
//!   inode, size, modification and status-change time). While those are unchanged the file
//!   is not read at all. A file changed within [`RACY_WINDOW`] of being looked at is not
//!   stamped (its times could still equal those of a later write), so it is hashed again.
//! - **Copying the compiled code.** An entry is wasmtime's artifact followed by a 24-byte
//!   trailer (magic, length, CRC-32 of the artifact), and is mapped by
//!   `Module::deserialize_open_file` instead of being read into memory and copied.
//!
//! An entry whose trailer is missing, whose length disagrees with the file or whose
//! CRC-32 does not match is ignored and rebuilt, as is one that wasmtime refuses (another
//! wasmtime version or configuration). The CRC is over every byte of the artifact: it finds
//! truncation, a torn or interrupted copy and any burst of flipped bits up to 32 long. It
//! is not a defence against someone who can write to the directory: they could write a
//! matching CRC (or SHA-256) too. The cache directory must be trusted: deserializing runs
//! native code that wasmtime compiled.
//!
//! A [`ModuleCache`] is a handle; its clones share the modules in memory, so a host running
//! many instances on one engine compiles or deserializes each module once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::error::{BoxError, boxed};

/// A file modified less than this long before it is stamped is not stamped: file times
/// have a granularity (the kernel's clock tick), and a second write inside the same tick
/// with the same size would leave the stamp unchanged. Git's index uses the same rule.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Bumped when the layout of an entry or a stamp record changes; part of every name, so an
/// older layout is never even opened.
const FORMAT: u32 = 2;

/// The trailer after wasmtime's artifact in an entry.
const ENTRY_MAGIC: &[u8; 8] = b"PYMCWSM\x02";
const TRAILER_LEN: u64 = 24;

/// A stamp record: magic, the file's stamp, its SHA-256, a CRC-32 of what precedes it.
const STAMP_MAGIC: &[u8; 8] = b"PYMSTMP\x02";
const STAMP_LEN: usize = 8 + 7 * 8 + 32 + 4;

/// Where compiled modules are kept. A handle: clones share one cache, so the stores of one
/// engine (one per instance, in a host that runs many) compile each module once
/// ([`Loader::set_cache`](crate::Loader::set_cache) with a clone for each). Compiled modules
/// belong to the engine that compiled them: keep one cache per engine. A lookup from another
/// engine is not an error, but it compiles (or deserializes) for itself and takes the
/// module's place in memory.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    memory: HashMap<[u8; 32], Module>,
    /// Content hashes of the files this cache has seen, by canonical path, with the stamp
    /// each was computed for.
    files: HashMap<PathBuf, (Stamp, [u8; 32])>,
    dir: Option<PathBuf>,
    racy_window: Duration,
    stats: CacheStats,
}

impl Default for ModuleCache {
    fn default() -> Self {
        ModuleCache::new(None)
    }
}

/// What a [`ModuleCache`] did, for tests and diagnostics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Modules found in memory.
    pub memory_hits: u64,
    /// Modules deserialized from a disk entry.
    pub disk_hits: u64,
    /// Modules compiled.
    pub compiled: u64,
    /// Disk entries found but ignored (corrupt, truncated, another format or engine).
    pub rejected_entries: u64,
    /// Files whose content [`ModuleCache::get_or_compile_file`] read and hashed because no
    /// stamp vouched for it.
    pub files_hashed: u64,
}

/// Why [`ModuleCache::get_or_compile_file`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The module file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// wasmtime refused the module (validation or compilation).
    #[error("{}: {source}", path.display())]
    Compile {
        /// The file as given.
        path: PathBuf,
        /// wasmtime's error.
        source: BoxError,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ModuleCache {
    /// An in-memory cache, plus an on-disk one in `dir` if given.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let inner = Inner { memory: HashMap::new(), files: HashMap::new(), dir, racy_window: RACY_WINDOW, stats: CacheStats::default() };
        ModuleCache { inner: Arc::new(Mutex::new(inner)) }
    }

    /// Sets how recent a change to a file may be for its stamp not to be trusted (default
    /// [`RACY_WINDOW`]); a longer one for file systems with coarse times, zero for tests.
    pub fn with_racy_window(self, window: Duration) -> Self {
        self.lock().racy_window = window;
        self
    }

    /// The cache's state. A panic while it was held (none is expected: nothing in it
    /// panics on input) leaves nothing half-done that matters: every map holds whole values.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Modules held in memory.
    pub fn len(&self) -> usize {
        self.lock().memory.len()
    }

    /// Whether the in-memory cache is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().memory.is_empty()
    }

    /// What this cache (and every clone of it) has done so far.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }

    /// The compiled module for `bytes`: from memory, from disk, or compiled (and stored).
    /// Hashes `bytes` (SHA-256) to find it. Holds the cache while it compiles, so that two
    /// stores asking for the same module compile it once.
    ///
    /// # Errors
    /// wasmtime's validation or compilation error. Disk problems are not errors: the module
    /// is compiled instead.
    pub fn get_or_compile(&self, engine: &Engine, bytes: &[u8]) -> Result<Module, BoxError> {
        self.lock().get_or_compile(engine, bytes)
    }

    /// The compiled module for the file at `path`, as [`get_or_compile`](Self::get_or_compile)
    /// for its content, without reading the file when a stamp record in the cache directory
    /// (or an earlier call on this cache) vouches for its content hash: the file's device,
    /// inode, size, modification and status-change time are what they were when it was
    /// hashed. Status-change time cannot be set by a program, so rewriting a file and
    /// restoring its modification time still changes the stamp.
    ///
    /// # Errors
    /// [`CacheError::Read`] if the file cannot be opened or read, [`CacheError::Compile`]
    /// for wasmtime's validation or compilation error. Disk problems of the cache are not
    /// errors.
    pub fn get_or_compile_file(&self, engine: &Engine, path: &Path) -> Result<Module, CacheError> {
        self.lock().get_or_compile_file(engine, path)
    }
}

impl Inner {
    fn get_or_compile(&mut self, engine: &Engine, bytes: &[u8]) -> Result<Module, BoxError> {
        let key: [u8; 32] = Sha256::digest(bytes).into();
        self.lookup_or(engine, key, || Ok((Cow::Borrowed(bytes), true)), |_| {}).map_err(|e| match e {
            Lookup::Read(e) => e.into(),
            Lookup::Compile(e) => e,
        })
    }

    fn get_or_compile_file(&mut self, engine: &Engine, path: &Path) -> Result<Module, CacheError> {
        let read_err = |source| CacheError::Read { path: path.to_path_buf(), source };
        let canonical = std::fs::canonicalize(path).map_err(read_err)?;
        let mut file = File::open(&canonical).map_err(read_err)?;
        // The stamp of the open file, so that the hash below is of the same inode.
        let stamp = Stamp::of(&file.metadata().map_err(read_err)?);
        let known = stamp.and_then(|s| {
            if let Some((seen, key)) = self.files.get(&canonical)
                && *seen == s
            {
                return Some(*key);
            }
            self.dir.as_deref().and_then(|d| read_stamp(&stamp_path(d, &canonical), s))
        });
        let (key, mut bytes) = match known {
            Some(key) => (key, None),
            None => {
                let bytes = read_all(&mut file).map_err(read_err)?;
                self.stats.files_hashed += 1;
                (Sha256::digest(&bytes).into(), Some(bytes))
            }
        };
        let mut compiled_key = None;
        let module = self.lookup_or(
            engine,
            key,
            || match bytes.take() {
                Some(b) => Ok((Cow::Owned(b), true)),
                // A stamp vouched for the hash but the module has to be compiled: read it
                // now, and hash what was read.
                None => read_all(&mut file).map(|b| (Cow::Owned(b), false)),
            },
            |k| compiled_key = Some(k),
        );
        let module = module.map_err(|e| match e {
            Lookup::Read(source) => CacheError::Read { path: path.to_path_buf(), source },
            Lookup::Compile(source) => CacheError::Compile { path: path.to_path_buf(), source },
        })?;
        // What was compiled is the truth about the content, should it differ from a stamp.
        let key = compiled_key.unwrap_or(key);
        if let Some(s) = stamp {
            self.files.insert(canonical.clone(), (s, key));
            if known != Some(key)
                && s.settled(self.racy_window)
                && let Some(d) = &self.dir
                && let Err(e) = write_stamp(&stamp_path(d, &canonical), s, &key)
            {
                tracing::debug!(path = %canonical.display(), error = %e, "module cache stamp write failed");
            }
        }
        Ok(module)
    }

    /// The module for content hash `key` from memory or disk; else compiles the bytes
    /// `source` returns and stores the module under their hash (which `source` may vouch is
    /// `key`, else it is computed) and reports that hash to `compiled`.
    fn lookup_or<'b>(
        &mut self,
        engine: &Engine,
        key: [u8; 32],
        source: impl FnOnce() -> std::io::Result<(Cow<'b, [u8]>, bool)>,
        compiled: impl FnOnce([u8; 32]),
    ) -> Result<Module, Lookup> {
        if let Some(m) = self.memory.get(&key)
            && Engine::same(m.engine(), engine)
        {
            self.stats.memory_hits += 1;
            return Ok(m.clone());
        }
        let file = self.dir.as_deref().map(|d| entry_path(d, engine, &key));
        if let Some(f) = file.as_deref() {
            match load_entry(engine, f) {
                Loaded::Module(m) => {
                    self.stats.disk_hits += 1;
                    self.memory.insert(key, m.clone());
                    return Ok(m);
                }
                Loaded::Rejected => self.stats.rejected_entries += 1,
                Loaded::Absent => {}
            }
        }
        let (bytes, is_key) = source().map_err(Lookup::Read)?;
        let real: [u8; 32] = if is_key { key } else { Sha256::digest(&bytes).into() };
        let module = Module::new(engine, &bytes).map_err(|e| Lookup::Compile(boxed(e)))?;
        self.stats.compiled += 1;
        compiled(real);
        let file = if real == key { file } else { self.dir.as_deref().map(|d| entry_path(d, engine, &real)) };
        if let Some(f) = &file {
            // A failed write only costs a recompilation next time.
            if let Err(e) = store_entry(&module, f) {
                tracing::debug!(path = %f.display(), error = %e, "module cache write failed");
            }
        }
        self.memory.insert(real, module.clone());
        Ok(module)
    }
}

enum Lookup {
    Read(std::io::Error),
    Compile(BoxError),
}

fn read_all(file: &mut File) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What identifies a file's content without reading it (see
/// [`ModuleCache::get_or_compile_file`]); times are (seconds, nanoseconds) since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// No status-change time elsewhere: every file is hashed.
    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Option<Stamp> {
        None
    }

    /// Whether both times lie more than `window` in the past.
    fn settled(&self, window: Duration) -> bool {
        let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
            return false;
        };
        let ns = |(s, n): (i64, i64)| i128::from(s) * 1_000_000_000 + i128::from(n);
        let limit = now.as_nanos() as i128 - window.as_nanos() as i128;
        ns(self.mtime) < limit && ns(self.ctime) < limit
    }

    fn encode(&self) -> [u8; 56] {
        let mut out = [0u8; 56];
        let fields = [self.dev, self.ino, self.size, self.mtime.0 as u64, self.mtime.1 as u64, self.ctime.0 as u64, self.ctime.1 as u64];
        for (chunk, v) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }
}

fn engine_tag(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    FORMAT.hash(&mut h);
    h.finish()
}

fn entry_path(dir: &Path, engine: &Engine, key: &[u8; 32]) -> PathBuf {
    dir.join(format!("{}-{:016x}.cwasm", hex(key), engine_tag(engine)))
}

/// The stamp record of the file at `canonical`: named by the SHA-256 of its path, in
/// `stamps/`, so that it never looks like an entry.
fn stamp_path(dir: &Path, canonical: &Path) -> PathBuf {
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    dir.join("stamps").join(format!("{}-{FORMAT}.stamp", hex(&digest)))
}

/// The content hash a valid record for `stamp` holds; `None` for a missing, corrupt or
/// out-of-date record.
fn read_stamp(path: &Path, stamp: Stamp) -> Option<[u8; 32]> {
    let data = std::fs::read(path).ok()?;
    if data.len() != STAMP_LEN || data[..8] != STAMP_MAGIC[..] {
        return None;
    }
    let (body, crc) = data.split_at(STAMP_LEN - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        tracing::debug!(path = %path.display(), "ignoring corrupt module cache stamp");
        return None;
    }
    if body[8..64] != stamp.encode()[..] {
        return None;
    }
    body[64..96].try_into().ok()
}

fn write_stamp(path: &Path, stamp: Stamp, key: &[u8; 32]) -> Result<(), BoxError> {
    let mut body = Vec::with_capacity(STAMP_LEN);
    body.extend_from_slice(STAMP_MAGIC);
    body.extend_from_slice(&stamp.encode());
    body.extend_from_slice(key);
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    // A torn record fails its CRC and only costs one hash of the file.
    write_atomically(path, &[&body], false)
}

enum Loaded {
    Module(Module),
    Absent,
    Rejected,
}

fn load_entry(engine: &Engine, path: &Path) -> Loaded {
    let Ok(mut file) = File::open(path) else { return Loaded::Absent };
    match check_entry(&mut file) {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(path = %path.display(), "ignoring corrupt module cache entry");
            return Loaded::Rejected;
        }
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "ignoring unreadable module cache entry");
            return Loaded::Rejected;
        }
    }
    // SAFETY: the file holds what `Module::serialize` wrote into our cache directory, checked
    // byte for byte against the CRC-32 in its trailer just now; entries are only ever
    // replaced by renaming a new file over them, never written in place, so the open file
    // (and the mapping of it) cannot change under the module; wasmtime checks that it was
    // compiled by a compatible engine; the directory is trusted, as documented. The trailer
    // lies after the ELF image wasmtime reads through its section table and is not part of it.
    #[allow(unsafe_code)]
    let module = unsafe { Module::deserialize_open_file(engine, file) };
    match module {
        Ok(m) => Loaded::Module(m),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "ignoring stale module cache entry");
            Loaded::Rejected
        }
    }
}

/// Whether the entry's trailer is ours and matches the artifact before it.
fn check_entry(file: &mut File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    let Some(payload_len) = len.checked_sub(TRAILER_LEN) else { return Ok(false) };
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(payload_len))?;
    file.read_exact(&mut trailer)?;
    let (magic, rest) = trailer.split_at(8);
    let (stored_len, rest) = rest.split_at(8);
    let (stored_crc, _) = rest.split_at(4);
    if magic != ENTRY_MAGIC || stored_len != payload_len.to_le_bytes() {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(0))?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 18];
    let mut left = payload_len;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Ok(false);
        }
        crc.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(crc.finalize().to_le_bytes() == stored_crc)
}

fn store_entry(module: &Module, path: &Path) -> Result<(), BoxError> {
    let payload = module.serialize().map_err(boxed)?;
    let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
    trailer.extend_from_slice(ENTRY_MAGIC);
    trailer.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    trailer.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    trailer.extend_from_slice(&[0; 4]);
    write_atomically(path, &[&payload, &trailer], true)
}

/// Writes to a unique temporary name, then renames: readers never see a partial file, and
/// a file is never changed in place (a mapped entry must not change under its module).
fn write_atomically(path: &Path, parts: &[&[u8]], sync: bool) -> Result<(), BoxError> {
    let dir = path.parent().ok_or("cache file has no directory")?;
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per process and per call: two stores of one process may write the same entry.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let result = (|| -> Result<(), BoxError> {
        let mut f = File::create(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        if sync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
