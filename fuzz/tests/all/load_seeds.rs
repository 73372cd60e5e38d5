//! The hand-written side modules among the `load` seeds (`fuzz/seeds/load/wat-*.seed`): WAT
//! plus a `dylink.0` section, built here so they can be regenerated. Each one loads into the
//! `load` target's main module; together they cover data at `__memory_base`, elem segments
//! at `__table_base`, `GOT.mem` / `GOT.func` imports of main and own symbols, weak imports,
//! NEEDED, initializers and an initializer that never returns.
//!
//! `BLESS=1 cargo test -p pymode-fuzz --test all -- load_seeds::` rewrites the files; without it the test fails when
//! a committed seed differs from what is built here.

use pymode_testdata::trials::Trial;
use std::path::Path;

use pymode_abi::dylink::{ImportInfo, MemInfo};
use pymode_abi::{Dylink0, SymbolFlags};
use pymode_testdata::wat::side_wat;

pub(crate) fn trials() -> Vec<Trial> {
    pymode_testdata::tests![wat_seeds_are_current_and_load, wat_seeds_open_as_expected, strict_checks_notice_writes_into_the_main_module,]
}

fn dylink(memory_size: u32, memory_align_log2: u32, table_size: u32) -> Dylink0 {
    Dylink0 { mem_info: MemInfo { memory_size, memory_align_log2, table_size, table_align_log2: 0 }, ..Default::default() }
}

/// `body` after the shared side-module imports ([`side_wat`]) assembled, with `dylink` as its
/// first section.
fn side(dylink: &Dylink0, body: &str) -> Vec<u8> {
    let module = wat::parse_str(side_wat(body)).expect("seed WAT assembles");
    let mut out = module[..8].to_vec();
    out.extend(dylink.encode_section());
    out.extend_from_slice(&module[8..]);
    out
}

/// `(name, bytes, runs code while loading)`.
fn seeds() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut weak = dylink(16, 2, 0);
    weak.import_info = vec![
        ImportInfo { module: "env".into(), field: "not_defined_anywhere".into(), flags: SymbolFlags::BINDING_WEAK },
        ImportInfo { module: "GOT.mem".into(), field: "no_such_data".into(), flags: SymbolFlags::BINDING_WEAK },
    ];
    let mut needed = dylink(8, 0, 0);
    needed.needed = vec!["input.so".into()];
    needed.runtime_path = vec!["$ORIGIN".into()];
    vec![
        (
            "wat-data-elem",
            side(
                &dylink(48, 3, 2),
                r#"
  (import "GOT.mem" "main_data" (global $main_data (mut i32)))
  (import "GOT.func" "main_fn" (global $main_fn (mut i32)))
  (import "env" "main_fn2" (func $main_fn2 (result i32)))
  (data (global.get $mb) "side module data at __memory_base")
  (data (offset (global.get $mb) (i32.const 40) (i32.add)) "\01\02\03\04\05\06\07\08")
  (elem (global.get $tb) func $f $g)
  (func $f (export "f") (result i32) call $main_fn2)
  (func $g (export "g") (result i32) global.get $main_data global.get $main_fn i32.add)
  (global (export "side_data") i32 (i32.const 40))
"#,
            ),
            false,
        ),
        (
            "wat-got-self",
            side(
                &dylink(16, 2, 0),
                r#"
  (import "GOT.mem" "own_data" (global $own_data (mut i32)))
  (import "GOT.func" "own_fn" (global $own_fn (mut i32)))
  (data (global.get $mb) "own data")
  (func $own_fn (export "own_fn") (result i32) global.get $own_data)
  (func (export "own_fn_ptr") (result i32) global.get $own_fn)
  (global (export "own_data") i32 (i32.const 4))
"#,
            ),
            false,
        ),
        (
            "wat-weak",
            side(
                &weak,
                r#"
  (import "env" "not_defined_anywhere" (func $missing (result i32)))
  (import "GOT.mem" "no_such_data" (global $none (mut i32)))
  (func (export "call_missing") (result i32) call $missing)
  (func (export "weak_address") (result i32) global.get $none)
"#,
            ),
            false,
        ),
        ("wat-needed-self", side(&needed, r#"(func (export "f") (result i32) i32.const 1) (data (global.get $mb) "needed")"#), false),
        ("wat-bss-aligned", side(&dylink(4096, 12, 4), r#"(func (export "nothing"))"#), false),
        (
            "wat-ctors",
            side(
                &dylink(16, 2, 1),
                r#"
  (import "env" "main_fn" (func $main_fn (result i32)))
  (import "env" "malloc" (func $malloc (param i32) (result i32)))
  (import "env" "free" (func $free (param i32)))
  (elem (global.get $tb) func $get)
  (func $get (export "get") (result i32) global.get $mb i32.load)
  (func (export "__wasm_apply_data_relocs")
    global.get $mb global.get $mb i32.const 8 i32.add i32.store offset=4)
  (func (export "__wasm_call_ctors")
    global.get $mb call $main_fn i32.store
    i32.const 100 call $malloc call $free)
"#,
            ),
            true,
        ),
        ("wat-ctor-loops", side(&dylink(0, 0, 0), r#"(func (export "__wasm_call_ctors") (loop $l br $l))"#), true),
        ("wat-start-traps", side(&dylink(4, 2, 0), r#"(func $s unreachable) (start $s) (func (export "f"))"#), true),
    ]
}

fn wat_seeds_are_current_and_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join("load");
    let bless = std::env::var_os("BLESS").is_some();
    for (name, bytes, runs_code) in seeds() {
        assert_eq!(pymode_fuzz::load::Scan::of(&bytes).may_touch_main, runs_code, "{name}: classification");
        let path = dir.join(format!("{name}.seed"));
        if bless {
            std::fs::write(&path, &bytes).expect("write seed");
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (BLESS=1 writes it)", path.display()));
            assert!(committed == bytes, "{name}: the committed seed differs; run BLESS=1 cargo test --test load_seeds");
        }
        pymode_fuzz::load(&bytes);
    }
}

/// The seeds that should load do, and the rest fail as intended: proof that the target
/// reaches past `dl_open` instead of failing every input early.
fn wat_seeds_open_as_expected() {
    for (name, bytes, _) in seeds() {
        let opened = pymode_fuzz::load::try_open(&bytes);
        let expect_ok = !matches!(name, "wat-ctor-loops" | "wat-start-traps");
        assert_eq!(opened.is_ok(), expect_ok, "{name}: {opened:?}");
        if name == "wat-ctor-loops" {
            let message = opened.expect_err("loops");
            assert!(message.contains("fuel"), "{name}: {message}");
        }
    }
}

/// The strict checks can fail: a module whose constructor writes the main module's static
/// data, or overwrites a main table slot, changes the snapshot. The target itself does not
/// hold modules that run code while loading to the strict checks (a side module may write
/// anywhere in shared memory), which `Scan` decides. (Segments placed outside the library's
/// own range no longer serve here: the loader refuses them before instantiating.)
fn strict_checks_notice_writes_into_the_main_module() {
    let cases = [
        (
            "a constructor writing main's static data",
            side(&dylink(4, 2, 0), r#"(func (export "__wasm_call_ctors") i32.const 1024 i32.const 88 i32.store8)"#),
        ),
        (
            "a constructor overwriting main's slot 1",
            side(
                &dylink(0, 0, 0),
                r#"(func $f (result i32) i32.const 0) (elem declare func $f)
                   (func (export "__wasm_call_ctors") i32.const 1 ref.func $f table.set 0)"#,
            ),
        ),
    ];
    for (what, bytes) in cases {
        assert!(pymode_fuzz::load::Scan::of(&bytes).may_touch_main, "{what}: classified as harmless");
        pymode_fuzz::load(&bytes);
        let caught = std::panic::catch_unwind(|| pymode_fuzz::load::load_checking_all(&bytes));
        let message = match caught {
            Err(payload) => payload.downcast_ref::<String>().cloned().unwrap_or_default(),
            Ok(r) => panic!("{what}: strict checks passed ({r:?})"),
        };
        assert!(message.contains("main module state changed"), "{what}: {message}");
    }
}
