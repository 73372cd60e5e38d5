//! `RTLD_LOCAL` / `RTLD_GLOBAL` scope and `RTLD_LAZY` binding of direct calls.

use crate::common::*;
use crate::libs::*;
use pymode_abi::host::{DEFAULT_HANDLE, rtld};
use pymode_loader::OpenErrorKind;
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        rtld_local_hides_and_rtld_global_shares,
        rtld_lazy_binds_direct_calls_to_libraries_loaded_later,
        a_library_bound_to_a_global_one_keeps_it_loaded,
        rtld_lazy_still_needs_addresses_and_matching_types,
        rtld_lazy_call_from_a_constructor_fails_the_load_without_a_trace,
    ]
}

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
    side(&dylink(0, 0, 0), &side_wat(&format!(r#"(func (export "later") (param i32) (result i32) local.get 0 i32.const {add} i32.add)"#)))
}

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

fn rtld_lazy_still_needs_addresses_and_matching_types() {
    let mut env = env();
    // A GOT entry is an address: it must resolve at load time even under RTLD_LAZY.
    env.write("m.so", &lib_missing());
    let e = env.open("m.so", rtld::LAZY).unwrap_err();
    assert!(matches!(&e.kind, OpenErrorKind::MissingSymbols(l) if l == &["GOT.mem.nope_data", "GOT.func.nope_fn"]), "{e}");

    // A definition of another type does not bind.
    env.write("caller.so", &lib_lazy_caller());
    env.write("wrong.so", &side(&dylink(0, 0, 0), &side_wat(r#"(func (export "later") (param i64) (result i32) i32.const 0)"#)));
    let c = env.open("caller.so", rtld::LAZY).unwrap();
    env.open("wrong.so", NOW | rtld::GLOBAL).unwrap();
    assert!(env.try_call_sym(c, "call_later").unwrap_err().contains("lazy symbol `later`"));
}

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
