//! Destructors at `dl_close`: last registered first, and a trapping one is reported while the
//! rest still run.

use crate::common::*;
use crate::libs::*;
use pymode_testdata::trials::Trial;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![
        dl_close_runs_the_library_destructors_last_registered_first,
        a_trapping_destructor_is_reported_and_the_rest_still_run,
    ]
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
