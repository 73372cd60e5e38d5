//! The `pymode.*` host imports as the guest calls them: the ABI, no attached loader, and
//! `fn_arity`.

use crate::common::*;
use crate::libs::*;
use pymode_abi::host::{DEFAULT_HANDLE, rtld};
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        host_imports_follow_the_abi,
        host_imports_without_an_attached_loader_fail_cleanly,
        fn_arity_counts_the_i32_parameters_of_the_function_in_a_table_slot,
    ]
}

/// Writes `s` into guest memory at `addr` (below the heap).
fn put(env: &mut Env, addr: u32, s: &[u8]) {
    let mem = env.instance.get_memory(&mut env.store, "memory").unwrap();
    mem.write(&mut env.store, addr as usize, s).unwrap();
}

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

fn host_imports_without_an_attached_loader_fail_cleanly() {
    let (mut store, instance) = instantiate(&default_main_wat());
    let f = instance.get_typed_func::<(i32, i32), i32>(&mut store, "g_dl_open").unwrap();
    assert_eq!(f.call(&mut store, (0, 4)).unwrap(), -1);
    let f = instance.get_typed_func::<(i32, i32), i32>(&mut store, "g_dl_error").unwrap();
    assert_eq!(f.call(&mut store, (0, 4)).unwrap(), 0);
}

/// `pymode.fn_arity` (the guest's call trampoline asks it how many arguments a function
/// stored in a slot of another type takes): the parameter count for functions whose
/// parameters and one result are `i32`, that count plus `FN_ARITY_NO_RESULT` for one that
/// returns nothing, `-1` for any other type, an empty slot, or an index outside the table;
/// and a side module's functions once loaded.
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
    let main =
        format!(r#"(module (import "pymode" "fn_arity" (func $fn_arity (param i32) (result i32))) {MAIN_BODY} {table} {ALLOCATOR})"#);
    let mut env = env_main(&main, |_| {});
    let arity = env.instance.get_typed_func::<i32, i32>(&mut env.store, "g_fn_arity").unwrap();
    let ask = |env: &mut Env, index: i32| arity.call(&mut env.store, index).unwrap();
    // Slot 1 holds main_fn, () -> i32; 0 and 9 are empty; 10 and -1 are outside the table.
    let got: Vec<i32> = [1, 3, 4, 5, 6, 7, 8, 0, 9, 10, -1].iter().map(|&i| ask(&mut env, i)).collect();
    let no_result = pymode_abi::host::FN_ARITY_NO_RESULT;
    assert_eq!(got, [0, 1, 2, 3, -1, 1 | no_result, -1, -1, -1, -1, -1]);

    std::fs::write(env.dir.path().join("liba.so"), lib_a()).unwrap();
    let handle = env.with(|l, s| l.dl_open(s, "liba.so", NOW)).unwrap();
    let side_fn = env.with(|l, s| l.dl_sym(s, handle, "side_fn")).unwrap() as i32;
    assert_eq!(ask(&mut env, side_fn), 0, "side_fn is () -> i32");
}
