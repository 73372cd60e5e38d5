//! Behaviour: every PIC fixture linked by `pymode-ld` (both bindings) and by wasm-ld runs
//! under a minimal in-test loader (wasmtime), and `<fixture>_check()` returns the value the
//! fixture's comment promises, with the same host calls in the same order.
//!
//! The in-test loader does only what the side-module conventions require (DESIGN §1, §3):
//! memory at an aligned `__memory_base`, table slots at `__table_base`, host functions for
//! `env` imports, `GOT.*` globals filled after instantiation (from the module's own exports
//! for its own symbols, from host data and host functions otherwise, 0 for weak undefined),
//! then `__wasm_apply_data_relocs` and `__wasm_call_ctors`. It is a test harness, not the
//! loader.

use pymode_abi::object::Object;
use pymode_linker::{Binding, Options, options::InputSpec};
use pymode_testdata::trials::{Trial, case};
use pymode_testdata::{Mode, fixture_names, fixture_object, wasm_ld};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use wasmtime::{
    Config, Engine, Extern, ExternType, Func, Global, GlobalType, Instance, Memory, MemoryType, Module, Mutability, Ref, RefType, Store,
    Table, TableType, Val, ValType,
};

pub(crate) fn trials() -> Vec<Trial> {
    let mut trials = pymode_testdata::tests![
        every_fixture_runs_in_both_bindings_and_all_modes,
        all_fixtures_in_one_module_behave_the_same_as_with_wasm_ld,
        pic_and_non_pic_objects_mix_in_one_module,
    ];
    for name in fixture_names() {
        for mode in [Mode::PicO0, Mode::PicO2] {
            let name = name.clone();
            trials.push(case(module_path!(), format!("wasm-ld::{mode}/{name}"), move || {
                fixture_behaves_the_same_as_with_wasm_ld(&name, mode)
            }));
        }
        for mode in [Mode::NopicO0, Mode::NopicO2] {
            let name = name.clone();
            trials.push(case(module_path!(), format!("pic-rewrite::{mode}/{name}"), move || {
                non_pic_fixture_behaves_like_its_pic_build(&name, mode)
            }));
        }
    }
    trials
}

/// Each case trial runs one fixture in one mode, both bindings; together: every fixture in
/// every mode.
fn every_fixture_runs_in_both_bindings_and_all_modes() {
    let cases = trials().iter().filter(|t| t.name().contains("::wasm-ld::") || t.name().contains("::pic-rewrite::")).count();
    assert_eq!(cases, 4 * fixture_names().len());
}

/// Where the harness puts host data: `host_counter` then `host_array[4]`.
const HOST_DATA: u32 = 256;
const TABLE_BASE: u32 = 8;

fn expected(name: &str) -> Option<i32> {
    Some(match name {
        "aligned" | "bss" | "data_pointer" | "longlong" => 1,
        "ctor" | "extern_calls" => 17,
        "extern_data" => 11,
        "method_table" => 15,
        "static_fn_escape" => 1001,
        "variadic" => 10,
        "weak" => 42,
        // dtor_check's value depends on atexit handlers the harness does not run.
        _ => return None,
    })
}

type Log = Arc<Mutex<Vec<String>>>;

/// The module's data range, so that logged pointers into it show what they point at (the
/// two linkers may order merged strings differently).
#[derive(Clone, Copy)]
struct Data {
    memory: Memory,
    range: (u32, u32),
}

fn host_func(store: &mut Store<()>, name: &str, ty: wasmtime::FuncType, log: Log, data: Data) -> Func {
    let name = name.to_owned();
    Func::new(store, ty, move |caller, params, results| {
        let bytes = data.memory.data(&caller);
        // Only string arguments are shown as text; other pointers (`__dso_handle`) are
        // identities, and what they point at depends on the layout.
        let takes_strings = name.contains("log") || name.contains("printf");
        let show = |p: &Val| match p.i32() {
            Some(v) if takes_strings && (v as u32) >= data.range.0 && (v as u32) < data.range.1 => {
                let text: Vec<u8> = bytes[v as usize..].iter().take(64).take_while(|&&b| b != 0).copied().collect();
                format!("&{:?}", String::from_utf8_lossy(&text))
            }
            _ => format!("{p:?}"),
        };
        let args: Vec<String> = params.iter().map(show).collect();
        log.lock().unwrap().push(format!("{name}({})", args.join(", ")));
        let int = |i: usize| params.get(i).and_then(Val::i32).unwrap_or(0);
        for r in results.iter_mut() {
            *r = match r {
                Val::I64(_) => Val::I64(params.first().and_then(Val::i64).unwrap_or(0) * 3),
                Val::F64(_) => Val::F64((params.first().and_then(Val::f64).unwrap_or(0.0) * 3.0).to_bits()),
                _ => Val::I32(match name.as_str() {
                    "host_add" => int(0) + int(1),
                    "host_mul" => int(0) * int(1),
                    _ => 0,
                }),
            };
        }
        Ok(())
    })
}

/// Loads a side module, runs its relocations and constructors, calls `<name>_check`.
fn run(engine: &Engine, name: &str, bytes: &[u8]) -> (i32, Vec<String>) {
    let mut results = run_checks(engine, name, bytes, &[name]);
    results.pop().expect("one check")
}

/// Loads the module once and calls `<check>_check` for each check in turn, returning each
/// result with the host calls made during that check (constructors' calls go to the first).
fn run_checks(engine: &Engine, name: &str, bytes: &[u8], checks: &[&str]) -> Vec<(i32, Vec<String>)> {
    let dylink = Object::parse(name, bytes).unwrap().dylink0.expect("dylink.0");
    let mem = dylink.mem_info;
    let align = 1u32 << mem.memory_align_log2;
    let memory_base = 4096u32.div_ceil(align) * align;
    let pages = u64::from(memory_base + mem.memory_size).div_ceil(65536) + 2;
    let stack_top = (pages * 65536 - 16) as i32;

    let module = Module::new(engine, bytes).unwrap();
    let mut store = Store::new(engine, ());
    let log: Log = Arc::default();
    let memory = Memory::new(&mut store, MemoryType::new(pages as u32, None)).unwrap();
    let data = Data { memory, range: (memory_base, memory_base + mem.memory_size) };
    let table = Table::new(&mut store, TableType::new(RefType::FUNCREF, 64 + mem.table_size, None), Ref::Func(None)).unwrap();
    let mut next_host_slot = 1u32; // below TABLE_BASE
    let mut next_extra_slot = TABLE_BASE + mem.table_size;
    let mut got_fixups: Vec<(Global, String, bool)> = Vec::new();
    let mut imports = Vec::new();
    let mut self_imports: Vec<(Arc<Mutex<Option<Func>>>, String)> = Vec::new();
    for import in module.imports() {
        let ext: Extern = match (import.module(), import.name(), import.ty()) {
            ("env", "memory", _) => memory.into(),
            ("env", "__indirect_function_table", _) => table.into(),
            ("env", base @ ("__memory_base" | "__table_base" | "__stack_pointer"), ExternType::Global(g)) => {
                let value = match base {
                    "__memory_base" => memory_base as i32,
                    "__table_base" => TABLE_BASE as i32,
                    _ => stack_top,
                };
                Global::new(&mut store, g, Val::I32(value)).unwrap().into()
            }
            // An interposable function the module defines itself (wasm-ld imports its own weak
            // definitions): bind the import to the module's export once it exists.
            ("env", field, ExternType::Func(ty)) if module.get_export(field).is_some() => {
                let cell: Arc<Mutex<Option<Func>>> = Arc::default();
                self_imports.push((cell.clone(), field.to_owned()));
                Func::new(&mut store, ty, move |mut caller, params, results| {
                    let own = cell.lock().unwrap().expect("bound after instantiation");
                    own.call(&mut caller, params, results)
                })
                .into()
            }
            ("env", field, ExternType::Func(ty)) => host_func(&mut store, field, ty, log.clone(), data).into(),
            (got @ ("GOT.mem" | "GOT.func"), field, _) => {
                let global = Global::new(&mut store, GlobalType::new(ValType::I32, Mutability::Var), Val::I32(0)).unwrap();
                got_fixups.push((global, field.to_owned(), got == "GOT.func"));
                global.into()
            }
            (m, f, ty) => panic!("{name}: unexpected import {m}.{f}: {ty:?}"),
        };
        imports.push(ext);
    }
    let instance = Instance::new(&mut store, &module, &imports).unwrap();
    for (cell, field) in self_imports {
        *cell.lock().unwrap() = instance.get_func(&mut store, &field);
    }
    for (global, field, is_func) in got_fixups {
        let value = if is_func {
            if let Some(own) = instance.get_func(&mut store, &field) {
                // The module's own function: a slot of its own, as a loader would give it.
                let slot = next_extra_slot;
                next_extra_slot += 1;
                table.set(&mut store, u64::from(slot), Ref::Func(Some(own))).unwrap();
                slot as i32
            } else if field == "maybe_missing" {
                0
            } else {
                let ty = wasmtime::FuncType::new(engine, [ValType::I32, ValType::I32], [ValType::I32]);
                let host = host_func(&mut store, &field, ty, log.clone(), data);
                let slot = next_host_slot;
                next_host_slot += 1;
                table.set(&mut store, u64::from(slot), Ref::Func(Some(host))).unwrap();
                slot as i32
            }
        } else if let Some(own) = instance.get_global(&mut store, &field) {
            memory_base as i32 + own.get(&mut store).i32().unwrap()
        } else {
            match field.as_str() {
                "host_counter" => HOST_DATA as i32,
                "host_array" => HOST_DATA as i32 + 4,
                "__stack_chk_guard" => HOST_DATA as i32 + 32,
                other => panic!("{name}: no host data {other}"),
            }
        };
        global.set(&mut store, Val::I32(value)).unwrap();
    }
    for init in ["__wasm_apply_data_relocs", "__wasm_call_ctors"] {
        if let Some(f) = instance.get_func(&mut store, init) {
            f.typed::<(), ()>(&store).unwrap().call(&mut store, ()).unwrap();
        }
    }
    let mut results = Vec::new();
    for check in checks {
        let func = instance.get_typed_func::<(), i32>(&mut store, &format!("{check}_check")).unwrap();
        let result = func.call(&mut store, ()).unwrap_or_else(|e| panic!("{name}: {check}_check trapped: {e:?}"));
        let calls = std::mem::take(&mut *log.lock().unwrap());
        results.push((result, calls));
    }
    results
}

fn reference(object: &Path, out: &Path) -> Vec<u8> {
    let status = wasm_ld()
        .args(["--shared", "--experimental-pic", "--unresolved-symbols=import-dynamic"])
        .arg(object)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

fn ours(object: &Path, binding: Binding) -> Vec<u8> {
    let opts = Options { inputs: vec![InputSpec::File(object.to_owned())], binding, ..Options::default() };
    pymode_linker::link_to_bytes(&opts).unwrap()
}

/// The wasmtime engine every trial here shares (compiling is per module; the engine is not).
fn engine() -> Engine {
    static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
        let mut config = Config::new();
        config.wasm_extended_const(true).wasm_multi_value(true).wasm_bulk_memory(true);
        Engine::new(&config).unwrap()
    });
    ENGINE.clone()
}

/// One PIC fixture linked by wasm-ld and by pymode-ld in both bindings: the same result and
/// host calls, and the promised value.
fn fixture_behaves_the_same_as_with_wasm_ld(name: &str, mode: Mode) {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    let object = fixture_object(name, mode);
    let theirs = run(&engine, name, &reference(&object, &dir.path().join(format!("{name}-{mode}.so"))));
    if let Some(value) = expected(name) {
        assert_eq!(theirs.0, value, "{mode}/{name}: the harness disagrees with the fixture under wasm-ld");
    }
    for binding in [Binding::Local, Binding::Interposable] {
        let result = run(&engine, name, &ours(&object, binding));
        assert_eq!(result, theirs, "{mode}/{name} ({binding:?}): result and host calls differ from wasm-ld's");
        ran += 1;
    }
    assert_eq!(ran, 2);
}

/// Every fixture in one module (cross-object symbols, many segments, several constructors):
/// each check returns its promised value, and the same as in wasm-ld's link of the same set.
fn all_fixtures_in_one_module_behave_the_same_as_with_wasm_ld() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let names = fixture_names();
    let checks: Vec<&str> = names.iter().map(String::as_str).filter(|n| expected(n).is_some()).collect();
    for mode in [Mode::PicO0, Mode::PicO2] {
        let objects: Vec<_> = names.iter().map(|n| fixture_object(n, mode)).collect();
        let out = dir.path().join(format!("all-{mode}.so"));
        let status = wasm_ld()
            .args(["--shared", "--experimental-pic", "--unresolved-symbols=import-dynamic"])
            .args(&objects)
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let theirs = run_checks(&engine, "all", &std::fs::read(&out).unwrap(), &checks);
        for binding in [Binding::Local, Binding::Interposable] {
            let opts = Options { inputs: objects.iter().map(|o| InputSpec::File(o.clone())).collect(), binding, ..Options::default() };
            let ours = run_checks(&engine, "all", &pymode_linker::link_to_bytes(&opts).unwrap(), &checks);
            for ((check, (value, calls)), (their_value, their_calls)) in checks.iter().zip(&ours).zip(&theirs) {
                assert_eq!(Some(*value), expected(check), "{mode} ({binding:?}): {check}_check");
                assert_eq!(value, their_value, "{mode} ({binding:?}): {check}_check differs from wasm-ld");
                assert_eq!(calls, their_calls, "{mode} ({binding:?}): {check}_check host calls differ from wasm-ld");
            }
        }
    }
}

/// The PIC build of the same C at the same optimisation level.
fn pic_of(mode: Mode) -> Mode {
    match mode {
        Mode::NopicO0 => Mode::PicO0,
        Mode::NopicO2 => Mode::PicO2,
        other => other,
    }
}

/// A fixture compiled without `-fPIC` and linked by `pymode-ld` (its code rewritten into
/// position-independent form) returns the same value with the same host calls as its PIC
/// build linked by `pymode-ld`, in both bindings.
fn non_pic_fixture_behaves_like_its_pic_build(name: &str, mode: Mode) {
    let engine = engine();
    let mut ran = 0;
    for binding in [Binding::Local, Binding::Interposable] {
        let pic = run(&engine, name, &ours(&fixture_object(name, pic_of(mode)), binding));
        let rewritten = run(&engine, name, &ours(&fixture_object(name, mode), binding));
        if let Some(value) = expected(name) {
            assert_eq!(rewritten.0, value, "{mode}/{name} ({binding:?})");
        }
        assert_eq!(rewritten, pic, "{mode}/{name} ({binding:?}): result and host calls differ from the PIC build's");
        ran += 1;
    }
    assert_eq!(ran, 2);
}

/// PIC and non-PIC objects in one link (every other fixture non-PIC, and the other way
/// round): each check returns its promised value, with the same host calls as the all-PIC
/// link.
fn pic_and_non_pic_objects_mix_in_one_module() {
    let engine = engine();
    let names = fixture_names();
    let checks: Vec<&str> = names.iter().map(String::as_str).filter(|n| expected(n).is_some()).collect();
    for mode in [Mode::NopicO0, Mode::NopicO2] {
        for binding in [Binding::Local, Binding::Interposable] {
            let link = |objects: Vec<std::path::PathBuf>| {
                let opts = Options { inputs: objects.into_iter().map(InputSpec::File).collect(), binding, ..Options::default() };
                pymode_linker::link_to_bytes(&opts).unwrap_or_else(|e| panic!("{mode} ({binding:?}): {e}"))
            };
            let all_pic = run_checks(&engine, "all", &link(names.iter().map(|n| fixture_object(n, pic_of(mode))).collect()), &checks);
            for parity in [0, 1] {
                let objects =
                    names.iter().enumerate().map(|(i, n)| fixture_object(n, if i % 2 == parity { mode } else { pic_of(mode) })).collect();
                let mixed = run_checks(&engine, "all", &link(objects), &checks);
                for ((check, (value, calls)), (_, pic_calls)) in checks.iter().zip(&mixed).zip(&all_pic) {
                    assert_eq!(Some(*value), expected(check), "{mode} ({binding:?}, parity {parity}): {check}_check");
                    assert_eq!(
                        calls, pic_calls,
                        "{mode} ({binding:?}, parity {parity}): {check}_check host calls differ from the all-PIC link"
                    );
                }
            }
        }
    }
}
