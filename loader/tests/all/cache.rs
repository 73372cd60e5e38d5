//! The compiled-module cache: same bytes → same compiled module in memory; on disk an entry
//! per (content, engine), written atomically, corrupt entries ignored and rewritten.

use crate::common::*;
use pymode_loader::ModuleCache;
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        same_bytes_under_two_paths_compile_once,
        disk_cache_round_trip_and_corruption,
        an_unwritable_cache_dir_only_costs_compilation,
    ]
}

fn module_bytes() -> Vec<u8> {
    side(&dylink(16, 2, 0), &side_wat(r#"(func (export "f") (result i32) i32.const 9)"#))
}

fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
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

    let mut cold = ModuleCache::new(Some(dir.path().to_path_buf()));
    cold.get_or_compile(&engine, &bytes).unwrap();
    let files = entries(dir.path());
    assert_eq!(files.len(), 1, "one entry, no temporary left behind: {files:?}");
    let good = std::fs::read(&files[0]).unwrap();

    // A fresh cache loads the entry; the module works.
    let mut warm = ModuleCache::new(Some(dir.path().to_path_buf()));
    let m = warm.get_or_compile(&engine, &bytes).unwrap();
    assert!(m.get_export("f").is_some());

    // A corrupt entry is ignored, the module compiled again, and the entry rewritten.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&files[0], &bad).unwrap();
    let mut again = ModuleCache::new(Some(dir.path().to_path_buf()));
    let m = again.get_or_compile(&engine, &bytes).unwrap();
    assert!(m.get_export("f").is_some());
    assert_eq!(std::fs::read(&files[0]).unwrap().len(), good.len());
    assert_ne!(std::fs::read(&files[0]).unwrap(), bad);

    // A truncated entry too.
    std::fs::write(&files[0], &good[..10]).unwrap();
    ModuleCache::new(Some(dir.path().to_path_buf())).get_or_compile(&engine, &bytes).unwrap();

    // Invalid bytes are an error, not a cache entry.
    assert!(ModuleCache::new(Some(dir.path().to_path_buf())).get_or_compile(&engine, b"\0asm\x01\0\0\0\xff").is_err());
    assert_eq!(entries(dir.path()).len(), 1);
}

fn an_unwritable_cache_dir_only_costs_compilation() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let mut cache = ModuleCache::new(Some(file.join("sub")));
    cache.get_or_compile(&engine(), &module_bytes()).unwrap();
    assert_eq!(cache.len(), 1);
}
