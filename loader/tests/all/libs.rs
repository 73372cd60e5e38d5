//! The side modules several topics load: `lib_a` (own data, a table slot, GOT entries for its
//! own and main symbols, a constructor), `lib_b`, `lib_missing`, `lib_trapping_ctor`, `lib_dep`
//! and `lib_user` (NEEDED).

use crate::common::*;
use pymode_abi::host::rtld;

pub(crate) const NOW: i32 = rtld::NOW;

/// A side module with its own data (64 bytes at 2^4), one table slot holding `side_fn`,
/// GOT entries for its own and the main module's symbols, and a constructor that writes 7
/// at `__memory_base + 16`.
pub(crate) fn lib_a() -> Vec<u8> {
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
pub(crate) fn lib_b() -> Vec<u8> {
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

pub(crate) fn lib_missing() -> Vec<u8> {
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

/// Its constructor traps: the failure comes after memory and table were taken.
pub(crate) fn lib_trapping_ctor() -> Vec<u8> {
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

pub(crate) fn lib_dep() -> Vec<u8> {
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

pub(crate) fn lib_user(needed: &[&str], runtime_path: &[&str]) -> Vec<u8> {
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
