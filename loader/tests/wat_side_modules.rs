//! Loader behaviour on hand-written WAT side modules: one test per DESIGN §5 mistake that
//! applies to a loader, plus resolution, leak and host-import tests.
#![allow(clippy::result_large_err)]

mod common;

use common::*;
use pymode_abi::host::{DEFAULT_HANDLE, rtld};
use pymode_loader::{AttachError, HandleError, Loader, LoaderConfig, OpenErrorKind};

const NOW: i32 = rtld::NOW;

/// A side module with its own data (64 bytes at 2^4), one table slot holding `side_fn`,
/// GOT entries for its own and the main module's symbols, and a constructor that writes 7
/// at `__memory_base + 16`.
fn lib_a() -> Vec<u8> {
    side(
        &dylink(64, 4, 1),
        &side_wat(
            r#"
  (import "env" "main_fn" (func $main_fn (result i32)))
  (import "GOT.func" "main_fn" (global $got_main_fn (mut i32)))
  (import "GOT.func" "main_unslotted" (global $got_main_unslotted (mut i32)))
  (import "GOT.func" "side_fn" (global $got_side_fn (mut i32)))
  (import "GOT.func" "side_fn_unslotted" (global $got_side_fn_unslotted (mut i32)))
  (import "GOT.mem" "side_data" (global $got_side_data (mut i32)))
  (import "GOT.mem" "main_data" (global $got_main_data (mut i32)))
  (func $side_fn (export "side_fn") (result i32) i32.const 100)
  (func (export "side_fn_unslotted") (result i32) i32.const 101)
  (elem (global.get $tb) func $side_fn)
  (global (export "side_data") i32 (i32.const 16))
  (func (export "got_main_fn") (result i32) global.get $got_main_fn)
  (func (export "got_main_unslotted") (result i32) global.get $got_main_unslotted)
  (func (export "got_side_fn") (result i32) global.get $got_side_fn)
  (func (export "got_side_fn_unslotted") (result i32) global.get $got_side_fn_unslotted)
  (func (export "got_side_data") (result i32) global.get $got_side_data)
  (func (export "got_main_data") (result i32) global.get $got_main_data)
  (func (export "get_table_base") (result i32) global.get $tb)
  (func (export "get_memory_base") (result i32) global.get $mb)
  (func (export "call_main") (result i32) call $main_fn)
  (func (export "__wasm_call_ctors")
    global.get $mb i32.const 16 i32.add i32.const 7 i32.store)
"#,
        ),
    )
}

/// Another library that takes the address of main and of `lib_a`'s functions.
fn lib_b() -> Vec<u8> {
    side(
        &dylink(0, 0, 0),
        &side_wat(
            r#"
  (import "GOT.func" "main_unslotted" (global $g1 (mut i32)))
  (import "GOT.func" "side_fn" (global $g2 (mut i32)))
  (import "GOT.func" "main_fn" (global $g3 (mut i32)))
  (func (export "b_main_unslotted") (result i32) global.get $g1)
  (func (export "b_side_fn") (result i32) global.get $g2)
  (func (export "b_main_fn") (result i32) global.get $g3)
"#,
        ),
    )
}

#[test]
fn canonical_slot_per_function_across_main_and_side_modules() {
    let mut env = env();
    env.write("a.so", &lib_a());
    env.write("b.so", &lib_b());
    let a = env.open("a.so", NOW | rtld::GLOBAL).unwrap();

    // A main-module function already in the table keeps its slot everywhere.
    assert_eq!(env.call_sym(a, "got_main_fn"), 1);
    assert_eq!(env.sym(DEFAULT_HANDLE, "main_fn").unwrap(), 1);

    // A side-module function its elem segment placed at __table_base: that slot is canonical.
    let tb = env.call_sym(a, "get_table_base");
    assert_eq!(env.call_sym(a, "got_side_fn"), tb);
    assert_eq!(env.sym(a, "side_fn").unwrap() as i32, tb);

    // Functions not yet in the table get one slot, the same for GOT and every dl_sym.
    let mu = env.call_sym(a, "got_main_unslotted");
    assert!(mu > 2);
    assert_eq!(env.sym(DEFAULT_HANDLE, "main_unslotted").unwrap() as i32, mu);
    assert_eq!(env.sym(DEFAULT_HANDLE, "main_unslotted").unwrap() as i32, mu);
    let su = env.call_sym(a, "got_side_fn_unslotted");
    assert_eq!(env.sym(a, "side_fn_unslotted").unwrap() as i32, su);
    assert_ne!(su, mu);

    // A second side module sees the same slots.
    let b = env.open("b.so", NOW).unwrap();
    assert_eq!(env.call_sym(b, "b_main_unslotted"), mu);
    assert_eq!(env.call_sym(b, "b_side_fn"), tb);
    assert_eq!(env.call_sym(b, "b_main_fn"), 1);

    // And the slots call the right functions.
    assert_eq!(env.call_main::<i32, i32>("call_ptr", mu), 7);
    assert_eq!(env.call_main::<i32, i32>("call_ptr", tb), 100);
    assert_eq!(env.call_main::<i32, i32>("call_ptr", su), 101);
    assert_eq!(env.call_sym(a, "call_main"), 42);
}

#[test]
fn own_got_entries_filled_and_data_relative_to_memory_base() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let a = env.open("a.so", NOW).unwrap();
    let mb = env.call_sym(a, "get_memory_base") as u32;
    assert_ne!(mb, 0);
    assert_eq!(mb % 16, 0, "2^4 alignment");
    assert_eq!(env.call_sym(a, "got_side_data") as u32, mb + 16);
    assert_eq!(env.sym(a, "side_data").unwrap(), mb + 16);
    assert_eq!(env.call_sym(a, "got_main_data"), 1024);
    assert_eq!(env.sym(DEFAULT_HANDLE, "main_data").unwrap(), 1024);
    // The constructor ran after the memory was zeroed.
    assert_eq!(env.load32(mb + 16), 7);
    assert_eq!(env.loader().library_bases(a).unwrap().0, mb);
}

#[test]
fn weak_undefined_is_zero_and_a_direct_call_traps_naming_it() {
    let mut env = env();
    let mut d = dylink(0, 0, 0);
    d.import_info = vec![weak("env", "maybe_fn"), weak("GOT.mem", "maybe_data"), weak("GOT.func", "maybe_fn2")];
    env.write(
        "w.so",
        &side(
            &d,
            &side_wat(
                r#"
  (import "env" "maybe_fn" (func $maybe_fn (result i32)))
  (import "GOT.mem" "maybe_data" (global $gd (mut i32)))
  (import "GOT.func" "maybe_fn2" (global $gf (mut i32)))
  (func (export "data_addr") (result i32) global.get $gd)
  (func (export "fn_addr") (result i32) global.get $gf)
  (func (export "call_it") (result i32) call $maybe_fn)
"#,
            ),
        ),
    );
    let h = env.open("w.so", NOW).unwrap();
    assert_eq!(env.call_sym(h, "data_addr"), 0);
    assert_eq!(env.call_sym(h, "fn_addr"), 0);
    let err = env.try_call_sym(h, "call_it").unwrap_err();
    assert!(err.contains("weak undefined symbol `maybe_fn`"), "{err}");
    assert!(err.contains("w.so"), "{err}");
}

fn lib_missing() -> Vec<u8> {
    side(
        &dylink(32, 2, 1),
        &side_wat(
            r#"
  (import "env" "nope_one" (func (result i32)))
  (import "env" "main_fn" (func (result i32)))
  (import "env" "nope_two" (func (param i32)))
  (import "GOT.mem" "nope_data" (global (mut i32)))
  (import "GOT.func" "nope_fn" (global (mut i32)))
"#,
        ),
    )
}

#[test]
fn missing_symbols_are_all_listed_and_nothing_is_allocated() {
    let mut env = env();
    env.write("m.so", &lib_missing());
    let (heap, table, live) = (env.heap_top(), env.table_size(), env.live_blocks());
    let e1 = env.open("m.so", NOW).unwrap_err();
    match &e1.kind {
        OpenErrorKind::MissingSymbols(list) => {
            assert_eq!(list, &["env.nope_one", "env.nope_two", "GOT.mem.nope_data", "GOT.func.nope_fn"]);
        }
        other => panic!("{other:?}"),
    }
    let msg = e1.to_string();
    assert!(msg.contains("m.so") && msg.contains("env.nope_one") && msg.contains("GOT.func.nope_fn"), "{msg}");
    assert_eq!(env.loader().take_error().as_deref(), Some(msg.as_str()));
    // A second attempt fails the same way; nothing was registered.
    let e2 = env.open("m.so", NOW).unwrap_err();
    assert_eq!(e2.to_string(), msg);
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live));
    assert_eq!(env.loader().stats().libraries, 0);
}

/// Its constructor traps: the failure comes after memory and table were taken.
fn lib_trapping_ctor() -> Vec<u8> {
    side(
        &dylink(48, 3, 2),
        &side_wat(
            r#"
  (func $f (result i32) i32.const 5)
  (elem (global.get $tb) func $f $f)
  (func (export "f") (result i32) call $f)
  (func (export "__wasm_call_ctors") unreachable)
"#,
        ),
    )
}

#[test]
fn failed_load_is_a_transaction() {
    let mut env = env();
    env.write("t.so", &lib_trapping_ctor());
    env.write("a.so", &lib_a());
    let (heap0, live0) = (env.heap_top(), env.live_blocks());
    let e1 = env.open("t.so", NOW).unwrap_err();
    assert!(matches!(e1.kind, OpenErrorKind::Init { function: "__wasm_call_ctors", .. }), "{e1}");
    assert!(e1.to_string().contains("t.so") && e1.to_string().contains("unreachable"), "{e1}");
    // Memory went back to the allocator; the table slots to the free list (nulled).
    assert_eq!(env.live_blocks(), live0);
    let table1 = env.table_size();
    assert_eq!(env.loader().stats().free_table_slots, 2);
    let e2 = env.open("t.so", NOW).unwrap_err();
    assert_eq!(e2.to_string(), e1.to_string());
    assert_eq!(env.table_size(), table1);
    assert!(env.sym(DEFAULT_HANDLE, "f").is_err());
    // A later library reuses what the failed one released.
    let heap1 = env.heap_top();
    let a = env.open("a.so", NOW).unwrap();
    assert_eq!(env.table_size(), table1 + 1, "one new slot, for side_fn_unslotted or main_unslotted");
    assert!(env.heap_top() >= heap0 && heap1 >= heap0);
    assert_eq!(env.call_sym(a, "side_fn"), 100);
}

#[test]
fn thousand_failed_opens_leave_heap_and_table_where_they_started() {
    let mut env = env();
    env.write("t.so", &lib_trapping_ctor());
    env.write("m.so", &lib_missing());
    // The first trapping load grows the table once; afterwards everything is reused.
    env.open("t.so", NOW).unwrap_err();
    let (heap, table, live) = (env.heap_top(), env.table_size(), env.live_blocks());
    for _ in 0..500 {
        env.open("t.so", NOW).unwrap_err();
        env.open("m.so", NOW).unwrap_err();
    }
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live));
    assert_eq!(env.loader().stats().libraries, 0);
}

#[test]
fn open_close_cycles_keep_memory_and_table_flat() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let h = env.open("a.so", NOW).unwrap();
    env.sym(h, "side_fn_unslotted").unwrap();
    env.close(h).unwrap();
    let (heap, table, live) = (env.heap_top(), env.table_size(), env.live_blocks());
    for _ in 0..10_000 {
        let h = env.open("a.so", NOW).unwrap();
        assert_eq!(env.call_sym(h, "side_fn"), 100);
        env.close(h).unwrap();
    }
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live));
    assert_eq!(env.loader().stats().libraries, 0);
}

#[test]
fn the_store_instance_limit_is_a_clean_open_error() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let h = env.open("a.so", NOW).unwrap();
    env.close(h).unwrap();
    env.store.data_mut().limits = wasmtime::StoreLimitsBuilder::new().instances(5).build();
    // wasmtime reads the counts when the limiter is installed.
    env.store.limiter(|h| &mut h.limits);
    // Every open makes an instance that stays in the store; one of them hits the limit.
    let mut before = (env.heap_top(), env.table_size(), env.live_blocks());
    let mut error = None;
    for _ in 0..10 {
        match env.open("a.so", NOW) {
            Ok(h) => {
                env.close(h).unwrap();
                before = (env.heap_top(), env.table_size(), env.live_blocks());
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let e = error.expect("the instance limit was reached");
    let (heap, table, live) = before;
    assert!(matches!(e.kind, OpenErrorKind::Instantiate(_)), "{e}");
    assert!(e.to_string().contains("a.so") && e.to_string().contains("instance count too high"), "{e}");
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live));
    assert_eq!(env.loader().stats().libraries, 0);
}

#[test]
fn close_forgets_symbols_and_nulls_slots() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let h = env.open("a.so", NOW | rtld::GLOBAL).unwrap();
    let slot = env.sym(h, "side_fn").unwrap();
    env.close(h).unwrap();
    assert!(matches!(env.sym(h, "side_fn"), Err(HandleError::BadHandle(_))));
    assert!(env.sym(DEFAULT_HANDLE, "side_fn").is_err());
    let f = env.instance.get_typed_func::<i32, i32>(&mut env.store, "call_ptr").unwrap();
    assert!(f.call(&mut env.store, slot as i32).is_err(), "slot must be null after close");
    assert!(matches!(env.close(h), Err(HandleError::BadHandle(_))));
}

#[test]
fn same_library_by_two_spellings_is_one_handle() {
    let mut env = env();
    env.write("sub/a.so", &lib_a());
    let abs = env.dir.path().join("sub/a.so");
    let h1 = env.open("sub/a.so", NOW).unwrap();
    let h2 = env.open("sub/../sub/./a.so", NOW).unwrap();
    let h3 = env.open(abs.to_str().unwrap(), NOW).unwrap();
    assert_eq!((h1, h2), (h1, h1));
    assert_eq!(h3, h1);
    assert_eq!(env.loader().stats().libraries, 1);
    let dir = env.dir.path().to_path_buf();
    assert_path_in(env.loader().library_path(h1).unwrap(), &dir);
    // Refcounted: three closes unload it.
    env.close(h1).unwrap();
    env.close(h1).unwrap();
    assert!(env.loader().is_open(h1));
    env.close(h1).unwrap();
    assert!(!env.loader().is_open(h1));
}

#[test]
fn bss_is_zeroed_even_after_a_dirty_heap() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let p = env.call_main::<i32, i32>("malloc", 256);
    env.call_main::<(i32, i32, i32), ()>("fill", (p, 0xff, 256));
    env.call_main::<i32, ()>("free", p);
    let a = env.open("a.so", NOW).unwrap();
    let mb = env.call_sym(a, "get_memory_base");
    assert!(mb >= p && mb + 64 <= p + 256, "the test must reuse the dirty block ({mb:#x} vs {p:#x})");
    for off in (0..64).step_by(4) {
        let expect = if off == 16 { 7 } else { 0 };
        assert_eq!(env.load32((mb + off) as u32), expect, "offset {off}");
    }
}

#[test]
fn alignment_is_honoured() {
    let mut env = env();
    env.write("al.so", &side(&dylink(100, 10, 0), &side_wat(r#"(func (export "mb") (result i32) global.get $mb)"#)));
    let mut handles = Vec::new();
    for i in 0..10 {
        // Ten distinct files so that each gets its own memory.
        let bytes = std::fs::read(env.dir.path().join("al.so")).unwrap();
        env.write(&format!("al{i}.so"), &bytes);
        handles.push(env.open(&format!("al{i}.so"), NOW).unwrap());
        env.call_main::<i32, i32>("malloc", 24);
    }
    for h in handles {
        let mb = env.call_sym(h, "mb");
        assert_eq!(mb % 1024, 0, "{mb:#x}");
    }
}

#[test]
fn side_module_binds_its_own_symbols() {
    let mut env = env();
    env.write(
        "i.so",
        &side(
            &dylink(0, 0, 0),
            &side_wat(
                r#"
  (import "GOT.func" "foo" (global $got_foo (mut i32)))
  (func $foo (export "foo") (result i32) i32.const 2)
  (func (export "call_foo") (result i32) call $foo)
  (func (export "foo_addr") (result i32) global.get $got_foo)
"#,
            ),
        ),
    );
    let h = env.open("i.so", NOW | rtld::GLOBAL).unwrap();
    assert_eq!(env.call_sym(h, "call_foo"), 2);
    let addr = env.call_sym(h, "foo_addr");
    assert_eq!(env.call_main::<i32, i32>("call_ptr", addr), 2, "GOT.func.foo is the module's own foo");
    assert_eq!(env.sym(h, "foo").unwrap() as i32, addr);
    // The global scope still finds the main module's foo first.
    let main_foo = env.sym(DEFAULT_HANDLE, "foo").unwrap() as i32;
    assert_eq!(env.call_main::<i32, i32>("call_ptr", main_foo), 1);
}

#[test]
fn attach_refuses_a_table_that_cannot_grow() {
    let (mut store, instance) = instantiate(&main_wat(r#"(table (export "__indirect_function_table") 3 3 funcref)"#));
    let err = Loader::attach(&mut store, &instance, LoaderConfig::default()).unwrap_err();
    assert!(matches!(err, AttachError::TableNotGrowable { size: 3, max: 3 }), "{err}");
    assert!(err.to_string().contains("--growable-table"), "{err}");
    // A maximum above the size is fine.
    let (mut store, instance) = instantiate(&main_wat(r#"(table (export "__indirect_function_table") 3 100 funcref)"#));
    Loader::attach(&mut store, &instance, LoaderConfig::default()).unwrap();
}

#[test]
fn attach_names_missing_exports_and_how_to_link() {
    let (mut store, instance) = instantiate(&main_wat(r#"(table 3 funcref)"#));
    let err = Loader::attach(&mut store, &instance, LoaderConfig::default()).unwrap_err();
    assert!(err.to_string().contains("__indirect_function_table") && err.to_string().contains("--export-table"), "{err}");

    let (mut store, instance) = instantiate(&default_main_wat());
    let config = LoaderConfig { malloc: "my_malloc".into(), ..Default::default() };
    let err = Loader::attach(&mut store, &instance, config).unwrap_err();
    assert!(err.to_string().contains("my_malloc") && err.to_string().contains("--export=malloc"), "{err}");

    let no_sp = default_main_wat().replace(r#"(global (export "__stack_pointer")"#, r#"(global"#);
    let (mut store, instance) = instantiate(&no_sp);
    let err = Loader::attach(&mut store, &instance, LoaderConfig::default()).unwrap_err();
    assert!(err.to_string().contains("__stack_pointer"), "{err}");
}

#[test]
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

#[test]
fn guest_paths_map_through_a_root_prefix() {
    let mut env = env_with(|c| c.roots[0].guest = Some("/site-packages/".into()));
    env.write("pkg/a.so", &lib_a());
    let h = env.open("/site-packages/pkg/a.so", NOW).unwrap();
    assert_eq!(env.call_sym(h, "side_fn"), 100);
    let e = env.open("/site-packagesX/pkg/a.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::NotFound { .. } | OpenErrorKind::OutsideRoots { .. }), "{e}");
}

#[test]
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

#[test]
fn forbidden_imports_are_refused() {
    let mut env = env();
    env.write(
        "f.so",
        &side(&dylink(0, 0, 0), &side_wat(r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#)),
    );
    let e = env.open("f.so", NOW).unwrap_err();
    assert!(matches!(&e.kind, OpenErrorKind::ForbiddenImports(v) if v == &["wasi_snapshot_preview1.fd_write"]), "{e}");
}

#[test]
fn wrong_signature_is_a_type_error() {
    let mut env = env();
    env.write("s.so", &side(&dylink(0, 0, 0), &side_wat(r#"(import "env" "main_fn" (func (param i32) (result i32)))"#)));
    let e = env.open("s.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::TypeMismatch(_)), "{e}");
    assert!(e.to_string().contains("env.main_fn"), "{e}");
}

#[test]
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

#[test]
fn total_memory_budget_counts_every_loaded_library() {
    let mut env = env_with(|c| c.max_total_memory = 100);
    env.write("a.so", &lib_sized(64, 0));
    env.write("b.so", &lib_sized(64, 0));
    let a = env.open("a.so", NOW).unwrap();
    let live = env.live_blocks();
    let e = env.open("b.so", NOW).unwrap_err();
    assert!(
        matches!(e.kind, OpenErrorKind::OverBudget { requested: 64, in_use: 64, limit: 100, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("b.so") && e.to_string().contains("budget is 100"), "{e}");
    assert_eq!((env.live_blocks(), env.loader().stats().libraries), (live, 1));
    // Closing the first gives its share back.
    env.close(a).unwrap();
    env.open("b.so", NOW).unwrap();
}

#[test]
fn total_table_budget_counts_ranges_and_single_slots() {
    let mut env = env_with(|c| c.max_total_table = 3);
    env.write("a.so", &lib_sized(0, 2));
    env.write("b.so", &lib_sized(0, 2));
    env.write("c.so", &lib_sized(0, 1));
    env.open("a.so", NOW).unwrap();
    let table = env.table_size();
    let e = env.open("b.so", NOW).unwrap_err();
    assert!(
        matches!(e.kind, OpenErrorKind::OverBudget { requested: 2, in_use: 2, limit: 3, .. }),
        "{e}"
    );
    assert_eq!(env.table_size(), table, "the refused library took no slot");
    env.open("c.so", NOW).unwrap();
}

/// A side module whose constructor (or start function) never returns.
fn lib_looping(in_start: bool) -> Vec<u8> {
    let body = if in_start {
        r#"(func $spin (loop $l br $l)) (start $spin)"#
    } else {
        r#"(func (export "__wasm_call_ctors") (loop $l br $l))"#
    };
    side(&dylink(16, 0, 0), &side_wat(body))
}

#[test]
fn init_fuel_stops_a_constructor_that_never_returns() {
    const BUDGET: u64 = 100_000;
    let mut env = env_fueled(|c| c.init_fuel = Some(BUDGET));
    env.write("spin.so", &lib_looping(false));
    env.write("spin-start.so", &lib_looping(true));
    env.write("a.so", &lib_a());
    let live = env.live_blocks();
    let fuel = env.store.get_fuel().unwrap();

    let e = env.open("spin.so", NOW).unwrap_err();
    assert!(
        matches!(e.kind, OpenErrorKind::InitOutOfFuel { function: "__wasm_call_ctors", fuel: BUDGET }),
        "{e}"
    );
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

#[test]
fn init_fuel_needs_an_engine_that_meters_fuel() {
    let (mut store, instance) = instantiate(&default_main_wat());
    let config = LoaderConfig { init_fuel: Some(1000), ..Default::default() };
    let err = Loader::attach(&mut store, &instance, config).unwrap_err();
    assert!(matches!(err, AttachError::FuelNotEnabled), "{err}");
}

fn lib_dep() -> Vec<u8> {
    side(
        &dylink(16, 2, 0),
        &side_wat(
            r#"
  (global (export "dep_data") i32 (i32.const 4))
  (func (export "dep_fn") (result i32) i32.const 55)
  (func (export "__wasm_call_ctors") global.get $mb i32.const 4 i32.add i32.const 99 i32.store)
"#,
        ),
    )
}

fn lib_user(needed: &[&str], runtime_path: &[&str]) -> Vec<u8> {
    let mut d = dylink(0, 0, 0);
    d.needed = needed.iter().map(|s| s.to_string()).collect();
    d.runtime_path = runtime_path.iter().map(|s| s.to_string()).collect();
    side(
        &d,
        &side_wat(
            r#"
  (import "env" "dep_fn" (func $dep_fn (result i32)))
  (import "GOT.mem" "dep_data" (global $dd (mut i32)))
  (func (export "use_dep") (result i32) call $dep_fn)
  (func (export "dep_value") (result i32) global.get $dd i32.load)
"#,
        ),
    )
}

#[test]
fn needed_libraries_load_first_through_origin_runtime_path() {
    let mut env = env();
    env.write("pkg/deps/libdep.so", &lib_dep());
    env.write("pkg/user.so", &lib_user(&["libdep.so"], &["$ORIGIN/deps"]));
    let u = env.open("pkg/user.so", NOW).unwrap();
    assert_eq!(env.call_sym(u, "use_dep"), 55);
    assert_eq!(env.call_sym(u, "dep_value"), 99);
    // dl_sym on the handle searches its dependencies too, but a LOCAL dep is not global.
    assert!(env.sym(u, "dep_fn").is_ok());
    assert!(env.sym(DEFAULT_HANDLE, "dep_fn").is_err());
    assert_eq!(env.loader().stats().libraries, 2);
    // Closing the user releases the dependency.
    env.close(u).unwrap();
    assert_eq!(env.loader().stats().libraries, 0);
}

#[test]
fn needed_chain_of_three_and_a_failing_dependency_rolls_back() {
    let mut env = env();
    env.write("l/libdep.so", &lib_dep());
    // mid needs libdep and re-exports a function that calls it.
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["libdep.so".into()];
    d.runtime_path = vec!["$ORIGIN".into()];
    env.write(
        "l/libmid.so",
        &side(&d, &side_wat(r#"(import "env" "dep_fn" (func $d (result i32))) (func (export "mid_fn") (result i32) call $d i32.const 1 i32.add)"#)),
    );
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["libmid.so".into()];
    d.runtime_path = vec!["$ORIGIN/l".into()];
    env.write("top.so", &side(&d, &side_wat(r#"(import "env" "mid_fn" (func $m (result i32))) (func (export "top_fn") (result i32) call $m)"#)));
    let t = env.open("top.so", NOW).unwrap();
    assert_eq!(env.call_sym(t, "top_fn"), 56);
    assert_eq!(env.loader().stats().libraries, 3);
    env.close(t).unwrap();
    assert_eq!(env.loader().stats().libraries, 0);

    // A top library whose own symbols are missing: its freshly loaded deps are unloaded too.
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["libmid.so".into()];
    d.runtime_path = vec!["$ORIGIN/l".into()];
    env.write("bad.so", &side(&d, &side_wat(r#"(import "env" "absent" (func))"#)));
    let live = env.live_blocks();
    let e = env.open("bad.so", NOW).unwrap_err();
    assert!(e.to_string().contains("env.absent"), "{e}");
    assert_eq!(env.loader().stats().libraries, 0);
    assert_eq!(env.live_blocks(), live);

    // A dependency already loaded keeps its reference count right after a failure.
    let m = env.open("l/libmid.so", NOW).unwrap();
    env.open("bad.so", NOW).unwrap_err();
    assert_eq!(env.loader().stats().libraries, 2);
    env.close(m).unwrap();
    assert_eq!(env.loader().stats().libraries, 0);

    // A missing NEEDED names both libraries.
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["libnothere.so".into()];
    env.write("orphan.so", &side(&d, &side_wat("")));
    let e = env.open("orphan.so", NOW).unwrap_err();
    assert!(e.to_string().contains("orphan.so") && e.to_string().contains("libnothere.so"), "{e}");
}

#[test]
fn needed_cycles_terminate() {
    let mut env = env();
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["cy_b.so".into()];
    d.runtime_path = vec!["$ORIGIN".into()];
    env.write("cy_a.so", &side(&d, &side_wat(r#"(func (export "a") (result i32) i32.const 1)"#)));
    let mut d = dylink(0, 0, 0);
    d.needed = vec!["cy_a.so".into()];
    d.runtime_path = vec!["$ORIGIN".into()];
    env.write("cy_b.so", &side(&d, &side_wat(r#"(func (export "b") (result i32) i32.const 2)"#)));
    let a = env.open("cy_a.so", NOW).unwrap();
    assert_eq!(env.call_sym(a, "b"), 2);
    assert_eq!(env.loader().stats().libraries, 2);
}

#[test]
fn rtld_local_hides_and_rtld_global_shares() {
    let mut env = env();
    env.write("libdep.so", &lib_dep());
    env.write("user.so", &lib_user(&[], &[]));
    let d = env.open("libdep.so", NOW | rtld::LOCAL).unwrap();
    let e = env.open("user.so", NOW).unwrap_err();
    assert!(e.to_string().contains("env.dep_fn") && e.to_string().contains("GOT.mem.dep_data"), "{e}");
    // Promote to global by opening again with RTLD_GLOBAL.
    let d2 = env.open("libdep.so", NOW | rtld::GLOBAL).unwrap();
    assert_eq!(d, d2);
    let u = env.open("user.so", NOW).unwrap();
    assert_eq!(env.call_sym(u, "use_dep"), 55);
    assert!(env.sym(DEFAULT_HANDLE, "dep_fn").is_ok());
    assert!(matches!(env.open("nothing.so", rtld::NOLOAD).unwrap_err().kind, OpenErrorKind::NotFound { .. }));
    assert!(matches!(env.open("user.so", rtld::NOLOAD | NOW), Ok(h) if h == u));
}

/// Calls `later(i32) -> i32`, which no library defines yet.
fn lib_lazy_caller() -> Vec<u8> {
    side(
        &dylink(0, 0, 0),
        &side_wat(
            r#"
  (import "env" "later" (func $later (param i32) (result i32)))
  (func (export "call_later") (result i32) i32.const 20 call $later)
"#,
        ),
    )
}

/// Defines `later` as `x + add`.
fn lib_lazy_provider(add: i32) -> Vec<u8> {
    side(
        &dylink(0, 0, 0),
        &side_wat(&format!(r#"(func (export "later") (param i32) (result i32) local.get 0 i32.const {add} i32.add)"#)),
    )
}

#[test]
fn rtld_lazy_binds_direct_calls_to_libraries_loaded_later() {
    let mut env = env();
    env.write("caller.so", &lib_lazy_caller());
    env.write("p1.so", &lib_lazy_provider(1));
    env.write("p2.so", &lib_lazy_provider(2));

    // RTLD_NOW refuses it; RTLD_LAZY opens it and the call traps naming the symbol.
    let e = env.open("caller.so", NOW).unwrap_err();
    assert!(matches!(&e.kind, OpenErrorKind::MissingSymbols(l) if l == &["env.later"]), "{e}");
    let c = env.open("caller.so", rtld::LAZY).unwrap();
    let err = env.try_call_sym(c, "call_later").unwrap_err();
    assert!(err.contains("lazy symbol `later`") && err.contains("caller.so"), "{err}");

    // A local library does not bind it; a global one does, from then on.
    let p1 = env.open("p1.so", NOW | rtld::LOCAL).unwrap();
    assert!(env.try_call_sym(c, "call_later").is_err());
    let p1g = env.open("p1.so", NOW | rtld::GLOBAL).unwrap();
    assert_eq!(p1, p1g);
    assert_eq!(env.call_sym(c, "call_later"), 21);

    // The binding holds a reference: closing the provider leaves it loaded until the
    // caller goes too, as glibc does.
    env.close(p1).unwrap();
    env.close(p1g).unwrap();
    assert!(env.loader().is_open(p1));
    assert_eq!(env.call_sym(c, "call_later"), 21);
    env.close(c).unwrap();
    assert!(!env.loader().is_open(p1) && !env.loader().is_open(c));

    // A definition already visible binds at once (eagerly, with the same reference).
    let p2 = env.open("p2.so", NOW | rtld::GLOBAL).unwrap();
    let c2 = env.open("caller.so", rtld::LAZY).unwrap();
    assert_eq!(env.call_sym(c2, "call_later"), 22);
    env.close(p2).unwrap();
    assert!(env.loader().is_open(p2));
    env.close(c2).unwrap();
    assert_eq!(env.loader().stats().libraries, 0);
}

#[test]
fn a_library_bound_to_a_global_one_keeps_it_loaded() {
    let mut env = env();
    env.write("libdep.so", &lib_dep());
    env.write("user.so", &lib_user(&[], &[]));
    let d = env.open("libdep.so", NOW | rtld::GLOBAL).unwrap();
    let u = env.open("user.so", NOW).unwrap();
    // Without the reference, this close would free dep's memory under `user`.
    env.close(d).unwrap();
    assert!(env.loader().is_open(d));
    assert_eq!(env.call_sym(u, "use_dep"), 55);
    assert_eq!(env.call_sym(u, "dep_value"), 99, "dep's memory is still its own");
    let (heap, live) = (env.heap_top(), env.live_blocks());
    env.close(u).unwrap();
    assert!(!env.loader().is_open(d));
    assert!(env.live_blocks() < live && env.heap_top() <= heap);
}

#[test]
fn rtld_lazy_still_needs_addresses_and_matching_types() {
    let mut env = env();
    // A GOT entry is an address: it must resolve at load time even under RTLD_LAZY.
    env.write("m.so", &lib_missing());
    let e = env.open("m.so", rtld::LAZY).unwrap_err();
    assert!(matches!(&e.kind, OpenErrorKind::MissingSymbols(l) if l == &["GOT.mem.nope_data", "GOT.func.nope_fn"]), "{e}");

    // A definition of another type does not bind.
    env.write("caller.so", &lib_lazy_caller());
    env.write(
        "wrong.so",
        &side(&dylink(0, 0, 0), &side_wat(r#"(func (export "later") (param i64) (result i32) i32.const 0)"#)),
    );
    let c = env.open("caller.so", rtld::LAZY).unwrap();
    env.open("wrong.so", NOW | rtld::GLOBAL).unwrap();
    assert!(env.try_call_sym(c, "call_later").unwrap_err().contains("lazy symbol `later`"));
}

#[test]
fn rtld_lazy_call_from_a_constructor_fails_the_load_without_a_trace() {
    let mut env = env();
    env.write(
        "ctor.so",
        &side(
            &dylink(16, 2, 0),
            &side_wat(
                r#"
  (import "env" "later" (func $later (param i32) (result i32)))
  (func (export "__wasm_call_ctors") i32.const 1 call $later drop)
"#,
            ),
        ),
    );
    let live = env.live_blocks();
    let e = env.open("ctor.so", rtld::LAZY).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::Init { function: "__wasm_call_ctors", .. }), "{e}");
    assert!(e.to_string().contains("lazy symbol `later`"), "{e}");
    assert_eq!(env.live_blocks(), live);
    // The test allocator's bump pointer moved once; from here every attempt reuses it all.
    let (heap, table) = (env.heap_top(), env.table_size());
    for _ in 0..10 {
        assert_eq!(env.open("ctor.so", rtld::LAZY).unwrap_err().to_string(), e.to_string());
    }
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live));
    assert_eq!(env.loader().stats().libraries, 0);
}

/// Registers, from its constructor, `record(arg)` twice with `__cxa_atexit` (args 1 then 2)
/// and `last()` with `atexit`; each appends a digit to the i32 at 2048 (value*10 + digit), so
/// the order they ran in is readable. `bad` makes the second `__cxa_atexit` handler trap.
fn lib_dtors(bad: bool) -> Vec<u8> {
    let trap = if bad { "local.get 0 i32.const 2 i32.eq if unreachable end" } else { "" };
    side(
        &dylink(0, 0, 2),
        &side_wat(&format!(
            r#"
  (import "env" "__cxa_atexit" (func $cxa (param i32 i32 i32) (result i32)))
  (import "env" "atexit" (func $atexit (param i32) (result i32)))
  (func $record (param i32)
    {trap}
    i32.const 2048 i32.const 2048 i32.load i32.const 10 i32.mul local.get 0 i32.add i32.store)
  (func $last i32.const 3 call $record)
  (elem (global.get $tb) func $record $last)
  (func (export "__wasm_call_ctors")
    global.get $tb i32.const 1 i32.const 0 call $cxa drop
    global.get $tb i32.const 1 i32.add call $atexit drop
    global.get $tb i32.const 2 i32.const 0 call $cxa drop)
"#
        )),
    )
}

#[test]
fn dl_close_runs_the_library_destructors_last_registered_first() {
    let mut env = env();
    env.write("d.so", &lib_dtors(false));
    let h = env.open("d.so", NOW).unwrap();
    let h2 = env.open("d.so", NOW).unwrap();
    env.close(h2).unwrap();
    assert_eq!(env.load32(2048), 0, "not on the first of two closes");
    env.close(h).unwrap();
    assert_eq!(env.load32(2048), 231, "cxa(2), atexit, cxa(1): reverse order of registration");
    assert!(env.loader().take_error().is_none());

    // Reopened, it registers again and they run again at the next close.
    let h = env.open("d.so", NOW).unwrap();
    env.close(h).unwrap();
    assert_eq!(env.load32(2048), 231_231);
}

#[test]
fn a_trapping_destructor_is_reported_and_the_rest_still_run() {
    let mut env = env();
    env.write("bad.so", &lib_dtors(true));
    let h = env.open("bad.so", NOW).unwrap();
    env.close(h).unwrap();
    assert!(!env.loader().is_open(h));
    assert_eq!(env.load32(2048), 31, "the trapping handler stopped before writing; the others ran");
    let err = env.loader().take_error().expect("dl_error set");
    assert!(err.contains("bad.so") && err.contains("destructor") && err.contains("unreachable"), "{err}");
}

#[test]
fn noload_of_an_unloaded_library_fails() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let e = env.open("a.so", rtld::NOLOAD).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::NotLoaded), "{e}");
}

/// Writes `s` into guest memory at `addr` (below the heap).
fn put(env: &mut Env, addr: u32, s: &[u8]) {
    let mem = env.instance.get_memory(&mut env.store, "memory").unwrap();
    mem.write(&mut env.store, addr as usize, s).unwrap();
}

#[test]
fn host_imports_follow_the_abi() {
    let mut env = env();
    env.write("a.so", &lib_a());
    put(&mut env, 2048, b"a.so");
    put(&mut env, 2100, b"side_fn");
    let h = env.call_main::<(i32, i32), i32>("g_dl_open", (2048, 4));
    assert!(h >= 0);
    let slot = env.call_main::<(i32, i32, i32), i32>("g_dl_sym", (h, 2100, 7));
    assert_eq!(env.call_main::<i32, i32>("call_ptr", slot), 100);
    // Not found: 0 and an error message.
    let zero = env.call_main::<(i32, i32, i32), i32>("g_dl_sym", (h, 2100, 3));
    assert_eq!(zero, 0);
    let n = env.call_main::<(i32, i32), i32>("g_dl_error", (3000, 200));
    let mem = env.instance.get_memory(&mut env.store, "memory").unwrap();
    let msg = String::from_utf8(mem.data(&env.store)[3000..3000 + n as usize].to_vec()).unwrap();
    assert!(msg.contains("`sid`"), "{msg}");
    // Reading clears it.
    assert_eq!(env.call_main::<(i32, i32), i32>("g_dl_error", (3000, 200)), 0);

    // Out-of-bounds pointers are error results, never traps.
    assert_eq!(env.call_main::<(i32, i32), i32>("g_dl_open", (-10, 100)), -1);
    assert_eq!(env.call_main::<(i32, i32), i32>("g_dl_open", (2048, i32::MAX)), -1);
    assert_eq!(env.call_main::<(i32, i32), i32>("g_dl_open", (2048, -1)), -1);
    assert_eq!(env.call_main::<(i32, i32, i32), i32>("g_dl_sym", (h, 200_000, 5)), 0);
    let n = env.call_main::<(i32, i32), i32>("g_dl_error", (3000, 10));
    assert_eq!(n, 10, "truncated to the buffer");
    // An out-of-bounds error buffer returns 0 and keeps the message.
    env.call_main::<(i32, i32), i32>("g_dl_open", (-10, 100));
    assert_eq!(env.call_main::<(i32, i32), i32>("g_dl_error", (-100, 50)), 0);
    assert!(env.call_main::<(i32, i32), i32>("g_dl_error", (3000, 50)) > 0);

    // dl_open_flags with RTLD_GLOBAL, dl_close twice (second is a bad handle, no trap).
    put(&mut env, 2200, b"libdep.so");
    env.write("libdep.so", &lib_dep());
    let d = env.call_main::<(i32, i32, i32), i32>("g_dl_open_flags", (2200, 9, rtld::NOW | rtld::GLOBAL));
    assert!(d >= 0);
    put(&mut env, 2300, b"dep_fn");
    assert_ne!(env.call_main::<(i32, i32, i32), i32>("g_dl_sym", (DEFAULT_HANDLE, 2300, 6)), 0);
    env.call_main::<i32, ()>("g_dl_close", d);
    env.call_main::<i32, ()>("g_dl_close", d);
    assert!(env.call_main::<(i32, i32), i32>("g_dl_error", (3000, 200)) > 0);
    env.call_main::<i32, ()>("g_dl_close", h);
    assert_eq!(env.loader().stats().libraries, 0);
}

#[test]
fn host_imports_without_an_attached_loader_fail_cleanly() {
    let (mut store, instance) = instantiate(&default_main_wat());
    let f = instance.get_typed_func::<(i32, i32), i32>(&mut store, "g_dl_open").unwrap();
    assert_eq!(f.call(&mut store, (0, 4)).unwrap(), -1);
    let f = instance.get_typed_func::<(i32, i32), i32>(&mut store, "g_dl_error").unwrap();
    assert_eq!(f.call(&mut store, (0, 4)).unwrap(), 0);
}


#[test]
fn corrupted_side_modules_never_panic_and_leave_no_trace() {
    let mut env = env();
    let good = lib_a();
    let (heap, live) = (env.heap_top(), env.live_blocks());
    let mut loaded = 0;
    // Every byte of the dylink.0 section and the module header, and a sample of the rest,
    // overwritten with a few values.
    let positions: Vec<usize> = (0..good.len().min(80)).chain((80..good.len()).step_by(7)).collect();
    for (n, &pos) in positions.iter().enumerate() {
        for value in [0x00, 0x7f, 0x80, 0xff] {
            let mut bytes = good.clone();
            if bytes[pos] == value {
                continue;
            }
            bytes[pos] = value;
            let name = format!("c{n}_{value}.so");
            env.write(&name, &bytes);
            if let Ok(h) = env.open(&name, NOW) {
                loaded += 1;
                env.close(h).unwrap();
            }
        }
    }
    assert!(loaded > 0, "some corruptions (names, constants) still load");
    assert_eq!(env.loader().stats().libraries, 0);
    assert_eq!(env.live_blocks(), live);
    // Loaded-and-closed copies may have grown the heap once; failures never leave blocks.
    assert!(env.heap_top() >= heap);
}

#[test]
fn extreme_mem_info_is_refused_cleanly() {
    // The budgets off, so the allocator itself is what refuses.
    let mut env = env_with(|c| {
        c.max_memory_size = u32::MAX;
        c.max_total_memory = u64::MAX;
    });
    for (size, align) in [(u32::MAX, 0), (u32::MAX - 10, 4), (16, 31), (0x8000_0000, 0)] {
        env.write("x.so", &side(&dylink(size, align, 0), &side_wat("")));
        let e = env.open("x.so", NOW).unwrap_err();
        assert!(matches!(e.kind, OpenErrorKind::Allocation { .. }), "{size} 2^{align}: {e}");
    }
    let mut env = env_with(|c| {
        c.max_table_size = u32::MAX;
        c.max_total_table = u64::MAX;
    });
    env.write("t.so", &side(&dylink(0, 0, u32::MAX), &side_wat("")));
    let e = env.open("t.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::TableGrow { .. }), "{e}");
    assert_eq!(env.loader().stats().libraries, 0);
}

/// `pymode.fn_arity` (the guest's call trampoline asks it how many arguments a function
/// stored in a slot of another type takes): the parameter count for functions whose
/// parameters and one result are `i32`, `-1` for any other type, an empty slot, or an index
/// outside the table; and a side module's functions once loaded.
#[test]
fn fn_arity_counts_the_i32_parameters_of_the_function_in_a_table_slot() {
    let table = r#"
  (table (export "__indirect_function_table") 10 funcref)
  (elem (i32.const 3) $one $two $three $wide $no_result $two_results)
  (func $one (param i32) (result i32) i32.const 0)
  (func $two (param i32 i32) (result i32) i32.const 0)
  (func $three (param i32 i32 i32) (result i32) i32.const 0)
  (func $wide (param i64) (result i32) i32.const 0)
  (func $no_result (param i32))
  (func $two_results (param i32) (result i32 i32) i32.const 0 i32.const 0)
  (func (export "g_fn_arity") (param i32) (result i32) local.get 0 call $fn_arity)"#;
    let main = format!(r#"(module (import "pymode" "fn_arity" (func $fn_arity (param i32) (result i32))) {MAIN_BODY} {table} {ALLOCATOR})"#);
    let mut env = env_main(&main, |_| {});
    let arity = env.instance.get_typed_func::<i32, i32>(&mut env.store, "g_fn_arity").unwrap();
    let ask = |env: &mut Env, index: i32| arity.call(&mut env.store, index).unwrap();
    // Slot 1 holds main_fn, () -> i32; 0 and 9 are empty; 10 and -1 are outside the table.
    let got: Vec<i32> = [1, 3, 4, 5, 6, 7, 8, 0, 9, 10, -1].iter().map(|&i| ask(&mut env, i)).collect();
    assert_eq!(got, [0, 1, 2, 3, -1, -1, -1, -1, -1, -1, -1]);

    std::fs::write(env.dir.path().join("liba.so"), lib_a()).unwrap();
    let handle = env.with(|l, s| l.dl_open(s, "liba.so", NOW)).unwrap();
    let side_fn = env.with(|l, s| l.dl_sym(s, handle, "side_fn")).unwrap() as i32;
    assert_eq!(ask(&mut env, side_fn), 0, "side_fn is () -> i32");
}
