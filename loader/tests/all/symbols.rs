//! Symbol resolution on hand-written WAT side modules: one canonical table slot per function,
//! GOT entries, weak and missing symbols, a side module's own symbols, signatures, and handles
//! (two spellings, close, `RTLD_NOLOAD`).

use crate::common::*;
use crate::libs::*;
use pymode_abi::host::{DEFAULT_HANDLE, rtld};
use pymode_loader::{HandleError, OpenErrorKind};
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        canonical_slot_per_function_across_main_and_side_modules,
        own_got_entries_filled_and_data_relative_to_memory_base,
        weak_undefined_is_zero_and_a_direct_call_traps_naming_it,
        missing_symbols_are_all_listed_and_nothing_is_allocated,
        side_module_binds_its_own_symbols,
        wrong_signature_is_a_type_error,
        close_forgets_symbols_and_nulls_slots,
        same_library_by_two_spellings_is_one_handle,
        noload_of_an_unloaded_library_fails,
    ]
}

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

fn wrong_signature_is_a_type_error() {
    let mut env = env();
    env.write("s.so", &side(&dylink(0, 0, 0), &side_wat(r#"(import "env" "main_fn" (func (param i32) (result i32)))"#)));
    let e = env.open("s.so", NOW).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::TypeMismatch(_)), "{e}");
    assert!(e.to_string().contains("env.main_fn"), "{e}");
}

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

fn noload_of_an_unloaded_library_fails() {
    let mut env = env();
    env.write("a.so", &lib_a());
    let e = env.open("a.so", rtld::NOLOAD).unwrap_err();
    assert!(matches!(e.kind, OpenErrorKind::NotLoaded), "{e}");
}
