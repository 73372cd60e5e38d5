//! The compiled-module cache: same bytes → same compiled module in memory; on disk an entry
//! per (content, engine), written atomically, corrupt entries ignored and rewritten; a file
//! looked up by path is read and hashed only when its stamp (identity, size, times) changed.

use crate::common::*;
use pymode_loader::{CacheError, CacheStats, ModuleCache};
use pymode_testdata::trials::Trial;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        same_bytes_under_two_paths_compile_once,
        disk_cache_round_trip_and_corruption,
        an_unwritable_cache_dir_only_costs_compilation,
        a_stamped_file_is_not_read_again,
        a_rewritten_file_is_hashed_again_even_with_its_old_mtime,
        a_file_changed_just_now_is_not_stamped,
        a_corrupt_stamp_is_ignored_and_rewritten,
        a_stamp_without_its_entry_recompiles_from_the_file,
        a_missing_file_is_an_error_naming_it,
        an_entry_wasmtime_refuses_is_rebuilt,
        stores_of_one_engine_share_compiled_modules,
        threads_share_one_cache,
    ]
}

fn module_bytes() -> Vec<u8> {
    module_exporting("f")
}

/// A side module exporting one function by `name`: same-length names give same-size files.
fn module_exporting(name: &str) -> Vec<u8> {
    side(&dylink(16, 2, 0), &side_wat(&format!(r#"(func (export "{name}") (result i32) i32.const 9)"#)))
}

/// The compiled-module entries (not the stamp records' directory).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    v.sort();
    v
}

fn stamps(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("stamps")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => vec![],
    }
}

/// A cache on `dir` that trusts stamps however recent the file's change (the files here
/// were all written just now).
fn stamping(dir: &Path) -> ModuleCache {
    ModuleCache::new(Some(dir.to_path_buf())).with_racy_window(Duration::ZERO)
}

fn stats(compiled: u64, disk_hits: u64, files_hashed: u64, rejected_entries: u64) -> CacheStats {
    CacheStats { memory_hits: 0, disk_hits, compiled, rejected_entries, files_hashed }
}

fn same_bytes_under_two_paths_compile_once() {
    let mut env = env();
    env.write("one.so", &module_bytes());
    env.write("two.so", &module_bytes());
    let a = env.open("one.so", 2).unwrap();
    let b = env.open("two.so", 2).unwrap();
    assert_ne!(a, b, "different files are different libraries");
    assert_eq!(env.loader().stats().cached_modules, 1);
    assert_eq!(env.call_sym(b, "f"), 9);
}

fn disk_cache_round_trip_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let bytes = module_bytes();

    let cold = ModuleCache::new(Some(dir.path().to_path_buf()));
    cold.get_or_compile(&engine, &bytes).unwrap();
    let files = entries(dir.path());
    assert_eq!(files.len(), 1, "one entry, no temporary left behind: {files:?}");
    let good = std::fs::read(&files[0]).unwrap();

    // A fresh cache loads the entry; the module works.
    let warm = ModuleCache::new(Some(dir.path().to_path_buf()));
    let m = warm.get_or_compile(&engine, &bytes).unwrap();
    assert!(m.get_export("f").is_some());
    assert_eq!(warm.stats(), stats(0, 1, 0, 0));

    // A corrupt entry is ignored, the module compiled again, and the entry rewritten.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&files[0], &bad).unwrap();
    let again = ModuleCache::new(Some(dir.path().to_path_buf()));
    let m = again.get_or_compile(&engine, &bytes).unwrap();
    assert!(m.get_export("f").is_some());
    assert_eq!(std::fs::read(&files[0]).unwrap().len(), good.len());
    assert_ne!(std::fs::read(&files[0]).unwrap(), bad);

    assert_eq!(again.stats(), stats(1, 0, 0, 1));

    // A truncated entry too, at any length: inside the trailer, inside the artifact.
    for len in [10, good.len() - 1, good.len() - 24, good.len() / 2] {
        std::fs::write(&files[0], &good[..len]).unwrap();
        let cache = ModuleCache::new(Some(dir.path().to_path_buf()));
        cache.get_or_compile(&engine, &bytes).unwrap();
        assert_eq!(cache.stats(), stats(1, 0, 0, 1), "truncated to {len}");
        assert_eq!(std::fs::read(&files[0]).unwrap(), good);
    }

    // Invalid bytes are an error, not a cache entry.
    assert!(ModuleCache::new(Some(dir.path().to_path_buf())).get_or_compile(&engine, b"\0asm\x01\0\0\0\xff").is_err());
    assert_eq!(entries(dir.path()).len(), 1);
}

fn an_unwritable_cache_dir_only_costs_compilation() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let cache = ModuleCache::new(Some(file.join("sub")));
    cache.get_or_compile(&engine(), &module_bytes()).unwrap();
    assert_eq!(cache.len(), 1);
}

fn a_stamped_file_is_not_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, file) = (tmp.path().join("cache"), tmp.path().join("m.wasm"));
    std::fs::write(&file, module_bytes()).unwrap();
    let engine = engine();

    let cold = stamping(&dir);
    cold.get_or_compile_file(&engine, &file).unwrap();
    assert_eq!(cold.stats(), stats(1, 0, 1, 0));
    assert_eq!((entries(&dir).len(), stamps(&dir).len()), (1, 1));

    // The same cache again: from memory, the file not read.
    cold.get_or_compile_file(&engine, &file).unwrap();
    assert_eq!((cold.stats().memory_hits, cold.stats().files_hashed), (1, 1));

    // A fresh cache: the stamp names the entry; the file is not read, nothing compiled.
    let warm = stamping(&dir);
    let m = warm.get_or_compile_file(&engine, &file).unwrap();
    assert!(m.get_export("f").is_some());
    assert_eq!(warm.stats(), stats(0, 1, 0, 0));

    // Another spelling of the same path is the same file.
    let other = tmp.path().join(".").join("m.wasm");
    let again = stamping(&dir);
    again.get_or_compile_file(&engine, &other).unwrap();
    assert_eq!(again.stats(), stats(0, 1, 0, 0));
}

fn a_rewritten_file_is_hashed_again_even_with_its_old_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, file) = (tmp.path().join("cache"), tmp.path().join("m.wasm"));
    std::fs::write(&file, module_exporting("f")).unwrap();
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let engine = engine();
    stamping(&dir).get_or_compile_file(&engine, &file).unwrap();

    // Same size, same inode, same modification time; only the status-change time differs.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&file, module_exporting("g")).unwrap();
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);

    let cache = stamping(&dir);
    let m = cache.get_or_compile_file(&engine, &file).unwrap();
    assert!(m.get_export("g").is_some() && m.get_export("f").is_none(), "the new content was compiled");
    assert_eq!(cache.stats(), stats(1, 0, 1, 0));
    // The stamp now vouches for the new content.
    let warm = stamping(&dir);
    assert!(warm.get_or_compile_file(&engine, &file).unwrap().get_export("g").is_some());
    assert_eq!(warm.stats(), stats(0, 1, 0, 0));
}

fn a_file_changed_just_now_is_not_stamped() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, file) = (tmp.path().join("cache"), tmp.path().join("m.wasm"));
    std::fs::write(&file, module_bytes()).unwrap();
    let engine = engine();
    // The default window: the file changed well within it.
    ModuleCache::new(Some(dir.clone())).get_or_compile_file(&engine, &file).unwrap();
    assert!(stamps(&dir).is_empty(), "{:?}", stamps(&dir));
    let again = ModuleCache::new(Some(dir.clone()));
    again.get_or_compile_file(&engine, &file).unwrap();
    assert_eq!(again.stats(), stats(0, 1, 1, 0), "hashed again, found on disk by content");
}

fn a_corrupt_stamp_is_ignored_and_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, file) = (tmp.path().join("cache"), tmp.path().join("m.wasm"));
    std::fs::write(&file, module_bytes()).unwrap();
    let engine = engine();
    stamping(&dir).get_or_compile_file(&engine, &file).unwrap();
    let stamp = stamps(&dir).pop().unwrap();
    let good = std::fs::read(&stamp).unwrap();
    for bad in [good[..good.len() - 1].to_vec(), { flip(&good, 70) }, { flip(&good, good.len() - 1) }, Vec::new()] {
        std::fs::write(&stamp, &bad).unwrap();
        let cache = stamping(&dir);
        assert!(cache.get_or_compile_file(&engine, &file).unwrap().get_export("f").is_some());
        assert_eq!(cache.stats(), stats(0, 1, 1, 0), "the file was hashed, the entry found by content");
        assert_eq!(std::fs::read(&stamp).unwrap(), good, "the stamp was rewritten");
    }
}

fn a_stamp_without_its_entry_recompiles_from_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, file) = (tmp.path().join("cache"), tmp.path().join("m.wasm"));
    std::fs::write(&file, module_bytes()).unwrap();
    let engine = engine();
    stamping(&dir).get_or_compile_file(&engine, &file).unwrap();
    for e in entries(&dir) {
        std::fs::remove_file(e).unwrap();
    }
    let cache = stamping(&dir);
    assert!(cache.get_or_compile_file(&engine, &file).unwrap().get_export("f").is_some());
    assert_eq!(cache.stats(), stats(1, 0, 0, 0));
    assert_eq!(entries(&dir).len(), 1);
}

fn a_missing_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.wasm");
    let err = stamping(&tmp.path().join("cache")).get_or_compile_file(&engine(), &missing).unwrap_err();
    assert!(matches!(err, CacheError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.wasm"), "{err}");
    // Invalid content is a compile error naming the file, and leaves no entry.
    let bad = tmp.path().join("bad.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0\xff").unwrap();
    let err = stamping(&tmp.path().join("cache")).get_or_compile_file(&engine(), &bad).unwrap_err();
    assert!(matches!(err, CacheError::Compile { .. }) && err.to_string().contains("bad.wasm"), "{err}");
    let dir = tmp.path().join("cache");
    assert!(!dir.exists() || entries(&dir).is_empty());
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 0xff;
    v
}

/// An entry whose trailer is intact (its CRC recomputed over garbage, as a writer with
/// access to the directory could) is still refused by wasmtime's own checks and rebuilt:
/// the layers do not depend on each other.
fn an_entry_wasmtime_refuses_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let bytes = module_bytes();
    ModuleCache::new(Some(dir.path().to_path_buf())).get_or_compile(&engine, &bytes).unwrap();
    let entry = entries(dir.path()).pop().unwrap();
    let good = std::fs::read(&entry).unwrap();
    let payload_len = good.len() - 24;
    assert_eq!(&good[payload_len..payload_len + 8], b"PYMCWSM\x02", "the trailer follows the artifact");
    assert_eq!(&good[..4], b"\x7fELF", "the artifact is wasmtime's ELF image, mappable as it is");

    let mut forged: Vec<u8> = (0..payload_len).map(|i| (i * 7 + 3) as u8).collect();
    forged.extend_from_slice(&good[payload_len..payload_len + 16]);
    let crc = crc32fast::hash(&forged[..payload_len]);
    forged.extend_from_slice(&crc.to_le_bytes());
    forged.extend_from_slice(&[0; 4]);
    std::fs::write(&entry, &forged).unwrap();
    let cache = ModuleCache::new(Some(dir.path().to_path_buf()));
    assert!(cache.get_or_compile(&engine, &bytes).unwrap().get_export("f").is_some());
    assert_eq!(cache.stats(), stats(1, 0, 0, 1));
    assert_eq!(std::fs::read(&entry).unwrap(), good);
}

/// Many instances in one host: each store's loader gets a clone of one cache, and a module
/// is compiled once for all of them. Another engine gets modules of its own.
fn stores_of_one_engine_share_compiled_modules() {
    let engine = engine();
    let cache = ModuleCache::new(None);
    let mut envs: Vec<_> = (0..3).map(|_| env_on(&engine, &default_main_wat(), |_| {})).collect();
    for env in &mut envs {
        env.loader().set_cache(cache.clone());
        env.write("m.so", &module_bytes());
        let h = env.open("m.so", 2).unwrap();
        assert_eq!(env.call_sym(h, "f"), 9);
    }
    assert_eq!(cache.stats(), CacheStats { memory_hits: 2, ..stats(1, 0, 0, 0) });
    assert_eq!(cache.len(), 1);

    let other = self::engine();
    let mut env = env_on(&other, &default_main_wat(), |_| {});
    env.loader().set_cache(cache.clone());
    env.write("m.so", &module_bytes());
    let h = env.open("m.so", 2).unwrap();
    assert_eq!(env.call_sym(h, "f"), 9, "a module of its own engine, not the first engine's");
    assert_eq!(cache.stats().compiled, 2);
}

fn threads_share_one_cache() {
    let engine = engine();
    let cache = ModuleCache::new(None);
    let bytes = module_bytes();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let m = cache.get_or_compile(&engine, &bytes).unwrap();
                assert!(m.get_export("f").is_some());
            });
        }
    });
    assert_eq!(cache.stats(), CacheStats { memory_hits: 3, ..stats(1, 0, 0, 0) });
}
