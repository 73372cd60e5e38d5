//! What the loader refuses to protect the host: paths outside the roots (and guest paths
//! through a root prefix), modules without `dylink.0`, forbidden imports, size limits and total
//! budgets, and fuel for constructors.

use crate::common::*;
use crate::libs::*;
use pymode_loader::{AttachError, Loader, LoaderConfig, OpenErrorKind};
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        paths_outside_the_roots_are_refused,
        guest_paths_map_through_a_root_prefix,
        module_without_dylink_is_refused,
        forbidden_imports_are_refused,
        limits_refuse_oversized_libraries,
        total_memory_budget_counts_every_loaded_library,
        total_table_budget_counts_ranges_and_single_slots,
        init_fuel_stops_a_constructor_that_never_returns,
        init_fuel_needs_an_engine_that_meters_fuel,
    ]
}

fn paths_outside_the_roots_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("lib");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(outer.path().join("outside.so"), lib_a()).unwrap();
    std::fs::write(root.join("inside.so"), lib_a()).unwrap();
    std::os::unix::fs::symlink(outer.path().join("outside.so"), root.join("link.so")).unwrap();
    let (mut store, instance) = instantiate(&default_main_wat());
    let mut loader = Loader::attach(&mut store, &instance, LoaderConfig::with_roots([&root])).unwrap();
    let outside_abs = outer.path().join("outside.so");
    for p in ["../outside.so", outside_abs.to_str().unwrap(), "link.so", "/etc/passwd"] {
        let e = loader.dl_open(&mut store, p, NOW).unwrap_err();
        assert!(matches!(e.kind, OpenErrorKind::OutsideRoots { .. }), "{p}: {e}");
        assert!(e.to_string().contains(p), "{e}");
    }
    let e = loader.dl_open(&mut store, "nothere.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::NotFound { .. }), "{e}");
    // Outside the roots, an existing file and a missing one get the same answer: the guest
    // cannot probe the host's files.
    let existing = loader.dl_open(&mut store, "../outside.so", NOW).unwrap_err();
    let missing = loader.dl_open(&mut store, "../missing.so", NOW).unwrap_err();
    assert!(matches!(missing.kind, OpenErrorKind::OutsideRoots { .. }), "{missing}");
    assert_eq!(existing.kind.to_string(), missing.kind.to_string());
    loader.dl_open(&mut store, "inside.so", NOW).unwrap();
    // `..` that stays inside the root is fine.
    loader.dl_open(&mut store, "../lib/inside.so", NOW).unwrap();
}

fn guest_paths_map_through_a_root_prefix() {
    let mut env = env_with(|c| c.roots[0].guest = Some("/site-packages/".into()));
    env.write("pkg/a.so", &lib_a());
    let h = env.open("/site-packages/pkg/a.so", NOW).unwrap();
    assert_eq!(env.call_sym(h, "side_fn"), 100);
    let e = env.open("/site-packagesX/pkg/a.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::NotFound { .. } | OpenErrorKind::OutsideRoots { .. }), "{e}");
}

fn module_without_dylink_is_refused() {
    let mut env = env();
    env.write("plain.so", &wat::parse_str("(module (func (export \"f\")))").unwrap());
    let e = env.open("plain.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::NoDylink), "{e}");
    assert!(e.to_string().contains("dylink.0"));
    env.write("junk.so", b"\0asm\x01\0\0\0\x99garbage");
    let e = env.open("junk.so", NOW).unwrap_err();
    assert!(e.to_string().contains("junk.so"), "{e}");
}

fn forbidden_imports_are_refused() {
    let mut env = env();
    env.write(
        "f.so",
        &side(&dylink(0, 0, 0), &side_wat(r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#)),
    );
    let e = env.open("f.so", NOW).unwrap_err();
    assert!(matches!(&e.kind, OpenErrorKind::ForbiddenImports(v) if v == &["wasi_snapshot_preview1.fd_write"]), "{e}");
}

fn limits_refuse_oversized_libraries() {
    let mut env = env_with(|c| c.max_memory_size = 1000);
    env.write("big.so", &side(&dylink(4096, 0, 0), &side_wat("")));
    let e = env.open("big.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::TooLarge { what: "memory size", .. }), "{e}");
}

/// A side module with `memory` bytes and `table` slots of its own, and nothing else.
fn lib_sized(memory: u32, table: u32) -> Vec<u8> {
    side(&dylink(memory, 0, table), &side_wat(""))
}

fn total_memory_budget_counts_every_loaded_library() {
    let mut env = env_with(|c| c.max_total_memory = 100);
    env.write("a.so", &lib_sized(64, 0));
    env.write("b.so", &lib_sized(64, 0));
    let a = env.open("a.so", NOW).unwrap();
    let live = env.live_blocks();
    let e = env.open("b.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::OverBudget { requested: 64, in_use: 64, limit: 100, .. }), "{e}");
    assert!(e.to_string().contains("b.so") && e.to_string().contains("budget is 100"), "{e}");
    assert_eq!((env.live_blocks(), env.loader().stats().libraries), (live, 1));
    // Closing the first gives its share back.
    env.close(a).unwrap();
    env.open("b.so", NOW).unwrap();
}

fn total_table_budget_counts_ranges_and_single_slots() {
    let mut env = env_with(|c| c.max_total_table = 3);
    env.write("a.so", &lib_sized(0, 2));
    env.write("b.so", &lib_sized(0, 2));
    env.write("c.so", &lib_sized(0, 1));
    env.open("a.so", NOW).unwrap();
    let table = env.table_size();
    let e = env.open("b.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::OverBudget { requested: 2, in_use: 2, limit: 3, .. }), "{e}");
    assert_eq!(env.table_size(), table, "the refused library took no slot");
    env.open("c.so", NOW).unwrap();
}

/// A side module whose constructor (or start function) never returns.
fn lib_looping(in_start: bool) -> Vec<u8> {
    let body =
        if in_start { r#"(func $spin (loop $l br $l)) (start $spin)"# } else { r#"(func (export "__wasm_call_ctors") (loop $l br $l))"# };
    side(&dylink(16, 0, 0), &side_wat(body))
}

fn init_fuel_stops_a_constructor_that_never_returns() {
    const BUDGET: u64 = 100_000;
    let mut env = env_fueled(|c| c.init_fuel = Some(BUDGET));
    env.write("spin.so", &lib_looping(false));
    env.write("spin-start.so", &lib_looping(true));
    env.write("a.so", &lib_a());
    let live = env.live_blocks();
    let fuel = env.store.get_fuel().unwrap();

    let e = env.open("spin.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::InitOutOfFuel { function: "__wasm_call_ctors", fuel: BUDGET }), "{e}");
    assert!(e.to_string().contains("ran out of fuel"), "{e}");
    // The store pays for what the constructor burnt, and gets the rest back.
    let after = env.store.get_fuel().unwrap();
    assert!(fuel - after >= BUDGET && fuel - after < BUDGET + 10_000, "{fuel} -> {after}");

    let e = env.open("spin-start.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::InitOutOfFuel { function: "start", .. }), "{e}");
    assert_eq!((env.live_blocks(), env.loader().stats().libraries), (live, 0));

    // A library whose constructors finish loads as before, and its initializers are metered.
    let before = env.store.get_fuel().unwrap();
    let a = env.open("a.so", NOW).unwrap();
    assert_eq!(env.call_sym(a, "side_fn"), 100);
    assert!(env.store.get_fuel().unwrap() < before);
}

fn init_fuel_needs_an_engine_that_meters_fuel() {
    let (mut store, instance) = instantiate(&default_main_wat());
    let config = LoaderConfig { init_fuel: Some(1000), ..Default::default() };
    let err = Loader::attach(&mut store, &instance, config).unwrap_err();
    assert!(matches!(err, AttachError::FuelNotEnabled), "{err}");
}
