//! The C fixtures of `testdata/c/`, compiled with zig (`pic-O0`, `pic-O2`) and linked by
//! wasm-ld (`target/fixtures/<mode>/*.wasm-ld.so`) and by pymode-ld (both bindings), and
//! compiled without `-fPIC` (`nopic-O0`, `nopic-O2`) and linked by pymode-ld, which rewrites
//! their code into position-independent form (both bindings): every source goes through the
//! same checks. They are loaded into a WAT main module that provides the `host_*` functions
//! and data they import. These fail loudly when the fixtures have not been built
//! (`cargo xtask fixtures`).
#![allow(clippy::result_large_err)]

use crate::common::*;
use pymode_abi::host::{DEFAULT_HANDLE, rtld};
use pymode_linker::options::InputSpec;
use pymode_linker::{Binding, Options};
use pymode_testdata::trials::{Trial, case};
use pymode_testdata::{Mode, fixture_object, fixture_side_module};

/// Which linker made the side module.
#[derive(Debug, Clone, Copy)]
enum Ld {
    WasmLd,
    PymodeLd(Binding),
}

impl std::fmt::Display for Ld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ld::WasmLd => "wasm-ld",
            Ld::PymodeLd(Binding::Local) => "pymode-ld",
            Ld::PymodeLd(Binding::Interposable) => "pymode-ld-no-bsymbolic",
        })
    }
}

/// A fixture's build: the mode it was compiled in and the linker of its side module.
type Source = (Mode, Ld);

const SOURCES: [Source; 10] = [
    (Mode::PicO0, Ld::WasmLd),
    (Mode::PicO2, Ld::WasmLd),
    (Mode::PicO0, Ld::PymodeLd(Binding::Local)),
    (Mode::PicO2, Ld::PymodeLd(Binding::Local)),
    (Mode::PicO0, Ld::PymodeLd(Binding::Interposable)),
    (Mode::PicO2, Ld::PymodeLd(Binding::Interposable)),
    // wasm-ld refuses non-PIC objects; pymode-ld rewrites them.
    (Mode::NopicO0, Ld::PymodeLd(Binding::Local)),
    (Mode::NopicO2, Ld::PymodeLd(Binding::Local)),
    (Mode::NopicO0, Ld::PymodeLd(Binding::Interposable)),
    (Mode::NopicO2, Ld::PymodeLd(Binding::Interposable)),
];

/// A check's trial name and body.
type Check = (&'static str, fn(Source));

/// The checks each source goes through, one trial per check and source
/// (`fixtures::aligned_data_in_ten_copies::pic-O2/wasm-ld`).
const CHECKS: [Check; 13] = [
    ("aligned_data_in_ten_copies", aligned_data_in_ten_copies),
    ("bss_is_zero_after_a_dirty_heap", bss_is_zero_after_a_dirty_heap),
    ("constructors_run_once_in_priority_order", constructors_run_once_in_priority_order),
    ("destructor_registers_with_the_main_modules_atexit", destructor_registers_with_the_main_modules_atexit),
    ("data_pointer_relocated", data_pointer_relocated),
    ("extern_calls_and_function_pointer_identity_with_main", extern_calls_and_function_pointer_identity_with_main),
    ("extern_data_resolves_to_main_addresses", extern_data_resolves_to_main_addresses),
    ("i64_and_f64_across_the_boundary", i64_and_f64_across_the_boundary),
    ("method_table_after_relocation", method_table_after_relocation),
    ("static_function_pointer_escapes_with_one_slot", static_function_pointer_escapes_with_one_slot),
    ("variadic_calls_use_the_shared_stack", variadic_calls_use_the_shared_stack),
    ("weak_undefined_is_null_until_a_global_library_defines_it", weak_undefined_is_null_until_a_global_library_defines_it),
    ("every_fixture_opens_and_closes_flat", every_fixture_opens_and_closes_flat),
];

pub(crate) fn trials() -> Vec<Trial> {
    let mut trials = pymode_testdata::tests![every_source_check_is_a_trial];
    for (check, run) in CHECKS {
        for src in SOURCES {
            trials.push(case(module_path!(), format!("{check}::{}/{}", src.0, src.1), move || run(src)));
        }
    }
    trials
}

/// The side module for fixture `name`.
fn fixture_bytes(name: &str, (mode, ld): Source) -> Vec<u8> {
    match ld {
        Ld::WasmLd => std::fs::read(fixture_side_module(name, mode)).unwrap(),
        Ld::PymodeLd(binding) => {
            let opts = Options { inputs: vec![InputSpec::File(fixture_object(name, mode))], binding, ..Options::default() };
            pymode_linker::link_to_bytes(&opts).unwrap_or_else(|e| panic!("pymode-ld {name} {mode:?}: {e}"))
        }
    }
}

/// What the fixtures import from the main module. `host_register` keeps `reg * 10 + v`;
/// `__cxa_atexit` records one (fn, arg) pair that `run_atexit` calls; `host_printf` records
/// its first variadic int.
const HOST_FUNCS: &str = r#"
  (type $vi (func (param i32)))
  (global $log (mut i32) (i32.const 0))
  (global $reg (mut i32) (i32.const 0))
  (global $unreg (mut i32) (i32.const 0))
  (global $atexit_fn (mut i32) (i32.const 0))
  (global $atexit_arg (mut i32) (i32.const 0))
  (global $printf_arg (mut i32) (i32.const 0))
  (global $maybe_calls (mut i32) (i32.const 0))
  (global (export "host_counter") i32 (i32.const 1100))
  (global (export "host_array") i32 (i32.const 1200))
  (func (export "host_add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "host_mul") (param i32 i32) (result i32) local.get 0 local.get 1 i32.mul)
  (func (export "host_log") (param i32) global.get $log i32.const 1 i32.add global.set $log)
  (func (export "log_count") (result i32) global.get $log)
  (func (export "host_register") (param i32) global.get $reg i32.const 10 i32.mul local.get 0 i32.add global.set $reg)
  (func (export "registered") (result i32) global.get $reg)
  (func (export "host_unregister") (param i32) local.get 0 global.set $unreg)
  (func (export "unregistered") (result i32) global.get $unreg)
  (func (export "__cxa_atexit") (param i32 i32 i32) (result i32)
    local.get 0 global.set $atexit_fn local.get 1 global.set $atexit_arg i32.const 0)
  (func (export "run_atexit") global.get $atexit_arg global.get $atexit_fn call_indirect (type $vi))
  (func (export "host_ll") (param i64) (result i64) local.get 0 i64.const 2 i64.mul)
  (func (export "host_dbl") (param f64) (result f64) local.get 0 f64.const 0.5 f64.add)
  (func (export "host_printf") (param i32 i32) (result i32) local.get 1 i32.load global.set $printf_arg i32.const 0)
  (func (export "printf_arg") (result i32) global.get $printf_arg)
  ;; libc's stack protector, which -O0 objects use.
  (global (export "__stack_chk_guard") i32 (i32.const 1300))
  (func (export "__stack_chk_fail") unreachable)
"#;

fn fixture_env() -> Env {
    let main = format!(r#"(module {MAIN_BODY} (table (export "__indirect_function_table") 3 funcref) {ALLOCATOR} {HOST_FUNCS})"#);
    env_main(&main, |_| {})
}

/// Writes a fixture into the root (as `name.so`) and opens it.
fn open(env: &mut Env, name: &str, src: Source) -> i32 {
    env.write(&format!("{name}.so"), &fixture_bytes(name, src));
    env.open(&format!("{name}.so"), rtld::NOW).unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

fn call_i32(env: &mut Env, h: i32, name: &str) -> i32 {
    let f = env.func(h, name).typed::<(), i32>(&env.store).unwrap();
    f.call(&mut env.store, ()).unwrap()
}

fn aligned_data_in_ten_copies(src: Source) {
    let mut env = fixture_env();
    let bytes = fixture_bytes("aligned", src);
    for i in 0..10 {
        env.write(&format!("aligned{i}.so"), &bytes);
        let h = env.open(&format!("aligned{i}.so"), rtld::NOW).unwrap();
        assert_eq!(call_i32(&mut env, h, "aligned_check"), 1, "{src:?} copy {i}");
        assert_eq!(call_i32(&mut env, h, "aligned_addr") % 1024, 0);
        assert_eq!(env.sym(h, "aligned_buf").unwrap() as i32, call_i32(&mut env, h, "aligned_addr"));
        // Unbalance the heap so that the next copy starts elsewhere.
        env.call_main::<i32, i32>("malloc", 40);
    }
}

fn bss_is_zero_after_a_dirty_heap(src: Source) {
    let mut env = fixture_env();
    let p = env.call_main::<i32, i32>("malloc", 700_000);
    env.call_main::<(i32, i32, i32), ()>("fill", (p, 0x5a, 700_000));
    env.call_main::<i32, ()>("free", p);
    let h = open(&mut env, "bss", src);
    assert!(env.loader().library_bases(h).unwrap().0 >= p as u32, "reuses the dirty block");
    assert_eq!(call_i32(&mut env, h, "bss_check"), 1, "{src:?}");
    let fill = env.func(h, "bss_fill").typed::<i32, ()>(&env.store).unwrap();
    fill.call(&mut env.store, 1).unwrap();
    assert_eq!(call_i32(&mut env, h, "bss_sum"), 65536 + 100_000);
}

fn constructors_run_once_in_priority_order(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "ctor", src);
    assert_eq!(env.call_main::<(), i32>("registered", ()), 17, "{src:?}");
    assert_eq!(call_i32(&mut env, h, "ctor_check"), 17);
    assert_eq!(open(&mut env, "ctor", src), h);
    assert_eq!(env.call_main::<(), i32>("registered", ()), 17, "a second open runs nothing");
}

fn destructor_registers_with_the_main_modules_atexit(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "dtor", src);
    assert_eq!(call_i32(&mut env, h, "dtor_check"), 9);
    env.call_main::<(), ()>("run_atexit", ());
    assert_eq!(env.call_main::<(), i32>("unregistered", ()), 9, "{src:?}");
}

fn data_pointer_relocated(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "data_pointer", src);
    assert_eq!(call_i32(&mut env, h, "data_pointer_check"), 1, "{src:?}");
    let (mb, _) = env.loader().library_bases(h).unwrap();
    let greeting = env.sym(h, "greeting").unwrap();
    assert!(greeting >= mb, "data symbols are absolute");
    let s = env.load32(greeting) as u32;
    assert_eq!(call_i32(&mut env, h, "get_greeting") as u32, s);
    assert_eq!(env.load32(s) & 0xff, i32::from(b'h'));
}

fn extern_calls_and_function_pointer_identity_with_main(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "extern_calls", src);
    assert_eq!(call_i32(&mut env, h, "extern_calls_check"), 17, "{src:?}");
    assert_eq!(env.call_main::<(), i32>("log_count", ()), 1);
    let p = call_i32(&mut env, h, "extern_calls_get_add");
    assert_eq!(p as u32, env.sym(DEFAULT_HANDLE, "host_add").unwrap());
}

fn extern_data_resolves_to_main_addresses(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "extern_data", src);
    assert_eq!(call_i32(&mut env, h, "extern_data_check"), 11, "{src:?}");
    assert_eq!(env.load32(1100), 11);
    let counter_ptr = env.sym(h, "counter_ptr").unwrap();
    assert_eq!(env.load32(counter_ptr), 1100);
}

fn i64_and_f64_across_the_boundary(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "longlong", src);
    assert_eq!(call_i32(&mut env, h, "longlong_check"), 1, "{src:?}");
    let f = env.func(h, "longlong_via_host").typed::<i64, i64>(&env.store).unwrap();
    assert_eq!(f.call(&mut env.store, 1 << 40).unwrap(), (1 << 41) + 1);
    let f = env.func(h, "double_via_host").typed::<f64, f64>(&env.store).unwrap();
    assert_eq!(f.call(&mut env.store, 1.0).unwrap(), 3.0);
}

fn method_table_after_relocation(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "method_table", src);
    assert_eq!(call_i32(&mut env, h, "method_table_check"), 15, "{src:?}");
    // The table's ml_meth for negate (entry 2, offset 4 of a 16-byte struct) is the
    // canonical slot dl_sym returns.
    let table = call_i32(&mut env, h, "method_table_get") as u32;
    let negate = env.load32(table + 2 * 16 + 4) as u32;
    assert_eq!(negate, env.sym(h, "m_negate").unwrap());
}

fn static_function_pointer_escapes_with_one_slot(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "static_fn_escape", src);
    assert_eq!(call_i32(&mut env, h, "static_fn_escape_check"), 1001, "{src:?}");
}

fn variadic_calls_use_the_shared_stack(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "variadic", src);
    assert_eq!(call_i32(&mut env, h, "variadic_check"), 10, "{src:?}");
    assert_eq!(env.call_main::<(), i32>("printf_arg", ()), 5);
}

fn weak_undefined_is_null_until_a_global_library_defines_it(src: Source) {
    let mut env = fixture_env();
    let h = open(&mut env, "weak", src);
    assert_eq!(call_i32(&mut env, h, "weak_check"), 42, "{src:?}");
    assert_eq!(call_i32(&mut env, h, "has_maybe"), 0);
    env.close(h).unwrap();

    // A global library that defines maybe_missing: now it resolves and is called.
    env.write(
        "provider.so",
        &side(
            &dylink(0, 0, 0),
            &side_wat(r#"(global $n (mut i32) (i32.const 0)) (func (export "maybe_missing") global.get $n i32.const 1 i32.add global.set $n) (func (export "maybe_calls") (result i32) global.get $n)"#),
        ),
    );
    let p = env.open("provider.so", rtld::NOW | rtld::GLOBAL).unwrap();
    let h = open(&mut env, "weak", src);
    assert_eq!(call_i32(&mut env, h, "weak_check"), 142, "{src:?}");
    assert_eq!(call_i32(&mut env, p, "maybe_calls"), 1);
}

fn every_fixture_opens_and_closes_flat(src: Source) {
    let names = [
        "aligned",
        "bss",
        "ctor",
        "data_pointer",
        "dtor",
        "extern_calls",
        "extern_data",
        "longlong",
        "method_table",
        "static_fn_escape",
        "variadic",
        "weak",
    ];
    let mut env = fixture_env();
    let cycle = |env: &mut Env| {
        let hs: Vec<i32> = names.iter().map(|n| open(env, n, src)).collect();
        for h in hs {
            env.close(h).unwrap();
        }
    };
    cycle(&mut env);
    let (heap, table, live) = (env.heap_top(), env.table_size(), env.live_blocks());
    for _ in 0..20 {
        cycle(&mut env);
    }
    assert_eq!((env.heap_top(), env.table_size(), env.live_blocks()), (heap, table, live), "{src:?}");
}

/// Every `fn name(src: Source)` in this file is in [`CHECKS`]: nothing else would notice one
/// that is not (the registration check sees only plain tests).
fn every_source_check_is_a_trial() {
    let source = include_str!("fixtures.rs");
    for line in source.lines() {
        if let Some(name) = line.strip_prefix("fn ").and_then(|l| l.strip_suffix("(src: Source) {")) {
            assert!(CHECKS.iter().any(|(n, _)| *n == name), "fixtures.rs: fn {name}(src: Source) is not in CHECKS");
        }
    }
}
