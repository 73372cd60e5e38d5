//! The `load` target: side-module bytes opened with `pymode-loader` inside a live main module,
//! which is checked afterwards for damage and leaks.
//!
//! The main module ([`MAIN_WAT`]) is compiled once per thread; every input gets a fresh
//! `Store` and instance (cheap with an `InstancePre`), so state never carries from one input
//! to the next and wasmtime's per-store instance limit never matters. Fuel bounds every call
//! into wasm, so a side module whose start function or constructors loop forever makes a
//! failed `dl_open`, not a hang.
//!
//! What is checked depends on whether the side module may legitimately touch main-module
//! state. Side modules share the main module's memory and table, and their code may write
//! anywhere, so a module that runs code while loading (a start function,
//! `__wasm_apply_data_relocs`, `__wasm_call_ctors`) or whose active segments reach outside its
//! own `__memory_base` / `__table_base` range only gets the weak checks (no panic, no library
//! left open, the main module still callable). Every other module must leave the main module
//! exactly as it was: same [`Snapshot`] after a failed open and after open + close.

use std::path::PathBuf;

use pymode_abi::Dylink0;
use pymode_abi::host::rtld;
use pymode_abi::names;
use pymode_loader::{HasLoader, LibRoot, Loader, LoaderConfig, add_to_linker};
use wasmtime::{Config, Engine, Instance, InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder};

/// The test main module: memory, a growable table whose first slots hold every exported
/// function (so that `GOT.func` of a main function never needs a new slot), the stack
/// pointer, and a small allocator that gives trailing free blocks back, so `heap_top` and
/// `live_blocks` return to their old values once everything allocated since is freed.
///
/// Layout: static data at 1024 (64 bytes), the stack from 4096 down, the heap from 8192.
/// `setup` allocates a 256-byte canary block filled with a pattern; `self_check` hashes the
/// static data and the canary and adds what three table slots return.
pub const MAIN_WAT: &str = r#"
(module
  (type $v_i (func (result i32)))
  (memory (export "memory") 1)
  (table (export "__indirect_function_table") 16 funcref)
  (global $sp (export "__stack_pointer") (mut i32) (i32.const 4096))
  (global (export "main_data") i32 (i32.const 1024))
  (global $heap_start i32 (i32.const 8192))
  (global $top (mut i32) (i32.const 8192))
  (global $last (mut i32) (i32.const 0))
  (global $live (mut i32) (i32.const 0))
  (global $canary (mut i32) (i32.const 0))
  (data (i32.const 1024) "pymode fuzz main module: static data that self_check hashes.....")
  (elem (i32.const 1) $k1 $k2 $k3 $malloc $free $heap_top $live_blocks $self_check $setup $stack_pointer)

  (func $k1 (export "main_fn") (result i32) i32.const 0x1111)
  (func $k2 (export "main_fn2") (result i32) i32.const 0x2200)
  (func $k3 (export "main_fn3") (result i32) i32.const 0x330000)
  (func $heap_top (export "heap_top") (result i32) global.get $top)
  (func $live_blocks (export "live_blocks") (result i32) global.get $live)
  (func $stack_pointer (export "stack_pointer") (result i32) global.get $sp)

  ;; Block header, 16 bytes before the pointer: size, in-use flag, previous header (0: none).
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $h i32)
    local.get $n i32.const 0x40000000 i32.gt_u if i32.const 0 return end
    local.get $n i32.const 15 i32.add i32.const -16 i32.and local.set $n
    ;; first fit among the free blocks, no splitting
    global.get $heap_start local.set $h
    block $bump
      loop $scan
        local.get $h global.get $top i32.ge_u br_if $bump
        local.get $h i32.load offset=4 i32.eqz
        if
          local.get $h i32.load local.get $n i32.ge_u
          if
            local.get $h i32.const 1 i32.store offset=4
            global.get $live i32.const 1 i32.add global.set $live
            local.get $h i32.const 16 i32.add return
          end
        end
        local.get $h i32.load local.get $h i32.add i32.const 16 i32.add local.set $h
        br $scan
      end
    end
    global.get $top local.set $h
    block $ok
      loop $grow
        local.get $h i32.const 16 i32.add local.get $n i32.add
        memory.size i32.const 16 i32.shl i32.le_u br_if $ok
        i32.const 1 memory.grow i32.const -1 i32.eq if i32.const 0 return end
        br $grow
      end
    end
    local.get $h local.get $n i32.store
    local.get $h i32.const 1 i32.store offset=4
    local.get $h global.get $last i32.store offset=8
    local.get $h global.set $last
    local.get $h i32.const 16 i32.add local.get $n i32.add global.set $top
    global.get $live i32.const 1 i32.add global.set $live
    local.get $h i32.const 16 i32.add)

  (func $free (export "free") (param $p i32)
    local.get $p i32.eqz if return end
    local.get $p i32.const 16 i32.sub i32.const 0 i32.store offset=4
    global.get $live i32.const 1 i32.sub global.set $live
    ;; trailing free blocks go back to the bump area
    block $done
      loop $trim
        global.get $last i32.eqz br_if $done
        global.get $last i32.load offset=4 br_if $done
        global.get $last global.set $top
        global.get $last i32.load offset=8 global.set $last
        br $trim
      end
    end)

  (func $setup (export "setup")
    (local $i i32)
    i32.const 256 call $malloc global.set $canary
    block $done
      loop $fill
        local.get $i i32.const 256 i32.ge_u br_if $done
        global.get $canary local.get $i i32.add
        local.get $i i32.const 7 i32.mul i32.const 3 i32.add
        i32.store8
        local.get $i i32.const 1 i32.add local.set $i
        br $fill
      end
    end)

  ;; Hashes [start, start+len) into $h.
  (func $hash (param $h i32) (param $start i32) (param $len i32) (result i32)
    (local $i i32)
    block $done
      loop $next
        local.get $i local.get $len i32.ge_u br_if $done
        local.get $h i32.const 5 i32.rotl
        local.get $start local.get $i i32.add i32.load8_u
        i32.xor i32.const 0x01000193 i32.mul local.set $h
        local.get $i i32.const 1 i32.add local.set $i
        br $next
      end
    end
    local.get $h)

  (func $self_check (export "self_check") (result i32)
    i32.const 0x811c9dc5 i32.const 1024 i32.const 64 call $hash
    global.get $canary i32.const 256 call $hash
    i32.const 1 call_indirect (type $v_i) i32.add
    i32.const 2 call_indirect (type $v_i) i32.add
    i32.const 3 call_indirect (type $v_i) i32.add)
)
"#;

/// Fuel for everything one input runs in the store (the allocator, initializers). Large
/// enough for real fixtures' constructors, small enough that a loop ends in milliseconds.
const STORE_FUEL: u64 = 20_000_000;
/// Fuel for one library's start function, data relocations and constructors.
const INIT_FUEL: u64 = 5_000_000;
/// Limits that keep one input cheap: the loader refuses bigger `dylink.0` claims, the store
/// refuses to grow memory or the table past these.
const MAX_LIB_MEMORY: u32 = 16 << 20;
const MAX_LIB_TABLE: u32 = 1 << 16;
const STORE_MEMORY: usize = 64 << 20;
const STORE_TABLE: usize = 1 << 18;

/// The name the input is written under, inside the loader's only root.
const FILE_NAME: &str = "input.so";

/// `dl_open` flags, chosen by the input's length so the bytes themselves stay a module.
const FLAGS: [i32; 4] = [rtld::NOW | rtld::LOCAL, rtld::LAZY | rtld::GLOBAL, rtld::NOW | rtld::GLOBAL, rtld::LAZY | rtld::LOCAL];

/// Names looked up besides the module's own exports.
const FIXED_NAMES: [&str; 4] = ["main_fn", "main_data", "PyInit__speedups", "no such symbol"];

struct Host {
    loader: Option<Loader>,
    limits: StoreLimits,
}

impl HasLoader for Host {
    fn loader_slot(&mut self) -> &mut Option<Loader> {
        &mut self.loader
    }
}

/// Per thread: the engine, the pre-linked main module and the scratch root.
struct Harness {
    engine: Engine,
    pre: InstancePre<Host>,
    root: crate::tempfile_dir::Dir,
    path: PathBuf,
}

impl Harness {
    fn new() -> Harness {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).expect("engine with fuel");
        let module = Module::new(&engine, MAIN_WAT).expect("the fuzz main module compiles");
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).expect("pymode imports");
        let pre = linker.instantiate_pre(&module).expect("the fuzz main module links");
        let (root, path) = crate::tempfile_dir::Dir::new(FILE_NAME);
        Harness { engine, pre, root, path }
    }
}

/// What must be the same before and after a load that cannot have touched the main module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// `self_check()`: hash of static data and the canary block plus three table calls.
    pub self_check: i32,
    /// The allocator's bump pointer.
    pub heap_top: i32,
    /// Blocks allocated and not freed.
    pub live_blocks: i32,
    /// Table slots in use: size less the loader's free list. A failed load may grow the table
    /// and put the new slots on the free list (tables cannot shrink), so the size alone may
    /// change; the slots in use may not.
    pub table_in_use: u64,
    /// `__stack_pointer`.
    pub stack_pointer: i32,
}

fn call(store: &mut Store<Host>, instance: &Instance, name: &str) -> i32 {
    let f = instance.get_typed_func::<(), i32>(&mut *store, name).expect("main export");
    f.call(&mut *store, ()).unwrap_or_else(|e| panic!("main module's {name}() trapped: {e:?}"))
}

fn try_call(store: &mut Store<Host>, instance: &Instance, name: &str) -> Option<i32> {
    let f = instance.get_typed_func::<(), i32>(&mut *store, name).ok()?;
    f.call(&mut *store, ()).ok()
}

fn snapshot(store: &mut Store<Host>, instance: &Instance, loader: &Loader) -> Snapshot {
    let table = instance.get_table(&mut *store, names::INDIRECT_FUNCTION_TABLE).expect("main table");
    let size = table.size(&*store);
    Snapshot {
        self_check: call(store, instance, "self_check"),
        heap_top: call(store, instance, "heap_top"),
        live_blocks: call(store, instance, "live_blocks"),
        table_in_use: size - loader.stats().free_table_slots,
        stack_pointer: call(store, instance, "stack_pointer"),
    }
}

/// What a quick look at the input says about it.
#[derive(Debug, Default)]
pub struct Scan {
    /// Export names, for `dl_sym`.
    pub exports: Vec<String>,
    /// The module may write main-module state while loading: it has a start function or an
    /// initializer the loader calls, an active segment outside its own range, or it did not
    /// parse (then nothing is assumed).
    pub may_touch_main: bool,
}

impl Scan {
    /// Looks at `data` with wasmparser without validating it.
    pub fn of(data: &[u8]) -> Scan {
        let mut scan = Scan::default();
        if scan.walk(data).is_err() {
            scan.may_touch_main = true;
        }
        scan
    }

    fn walk(&mut self, data: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
        use wasmparser::{DataKind, ElementItems, ElementKind, Operator, Parser, Payload, TypeRef};
        let mem_info = Dylink0::from_module(FILE_NAME, data)?.map(|d| d.mem_info).unwrap_or_default();
        // Imported globals by index: which ones are the bases.
        let mut globals: Vec<Option<&str>> = Vec::new();
        // The offset a segment starts at relative to `base`, if its expression is
        // `global.get base` or `global.get base; i32.const k; i32.add`.
        let relative = |globals: &[Option<&str>], expr: &wasmparser::ConstExpr, base: &str| -> Option<u64> {
            let ops: Vec<Operator> = expr.get_operators_reader().into_iter().collect::<Result<_, _>>().ok()?;
            let is_base = |g: &u32| globals.get(*g as usize).copied().flatten() == Some(base);
            match ops.as_slice() {
                [Operator::GlobalGet { global_index }, Operator::End] if is_base(global_index) => Some(0),
                [Operator::GlobalGet { global_index }, Operator::I32Const { value }, Operator::I32Add, Operator::End]
                    if is_base(global_index) && *value >= 0 =>
                {
                    Some(*value as u64)
                }
                _ => None,
            }
        };
        for payload in Parser::new(0).parse_all(data) {
            match payload? {
                Payload::StartSection { .. } => self.may_touch_main = true,
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import?;
                        if let TypeRef::Global(_) = import.ty {
                            let base = (import.module == names::ENV
                                && (import.name == names::MEMORY_BASE || import.name == names::TABLE_BASE))
                                .then_some(import.name);
                            globals.push(base);
                        }
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let name = export?.name;
                        if [names::APPLY_DATA_RELOCS, names::APPLY_GLOBAL_RELOCS, names::CALL_CTORS].contains(&name) {
                            self.may_touch_main = true;
                        }
                        self.exports.push(name.to_owned());
                    }
                }
                Payload::DataSection(reader) => {
                    for segment in reader {
                        let segment = segment?;
                        if let DataKind::Active { offset_expr, .. } = segment.kind {
                            let inside = relative(&globals, &offset_expr, names::MEMORY_BASE)
                                .is_some_and(|k| k + segment.data.len() as u64 <= u64::from(mem_info.memory_size));
                            self.may_touch_main |= !inside;
                        }
                    }
                }
                Payload::ElementSection(reader) => {
                    for element in reader {
                        let element = element?;
                        if let ElementKind::Active { offset_expr, .. } = element.kind {
                            let count = match &element.items {
                                ElementItems::Functions(f) => f.count(),
                                ElementItems::Expressions(_, e) => e.count(),
                            };
                            let inside = relative(&globals, &offset_expr, names::TABLE_BASE)
                                .is_some_and(|k| k + u64::from(count) <= u64::from(mem_info.table_size));
                            self.may_touch_main |= !inside;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Opens `data` as a side module in a fresh instance of [`MAIN_WAT`]; on success looks up a
/// few symbols, opens it again (same handle) and closes it twice. Then checks that no library
/// is left open and, unless [`Scan::may_touch_main`], that the main module's [`Snapshot`] is
/// unchanged. A panic anywhere is a bug.
pub fn load(data: &[u8]) {
    let _ = try_open(data);
}

/// [`load`], returning how the first `dl_open` went (the error message if it failed), for
/// tests that check the seeds reach past `dl_open`.
pub fn try_open(data: &[u8]) -> Result<(), String> {
    HARNESS.with(|h| run(h, data, false))
}

/// [`load`] with the strict checks whatever the module looks like: for tests that show the
/// checks notice a module writing into the main module.
pub fn load_checking_all(data: &[u8]) -> Result<(), String> {
    HARNESS.with(|h| run(h, data, true))
}

thread_local! {
    static HARNESS: Harness = Harness::new();
}

fn run(h: &Harness, data: &[u8], check_all: bool) -> Result<(), String> {
    std::fs::write(&h.path, data).expect("write the scratch library");
    let limits = StoreLimitsBuilder::new().memory_size(STORE_MEMORY).table_elements(STORE_TABLE).build();
    let mut store = Store::new(&h.engine, Host { loader: None, limits });
    store.limiter(|host| &mut host.limits);
    store.set_fuel(STORE_FUEL).expect("fuel is enabled");
    let instance = h.pre.instantiate(&mut store).expect("the fuzz main module instantiates");
    instance.get_typed_func::<(), ()>(&mut store, "setup").expect("setup export").call(&mut store, ()).expect("setup runs");
    let config = LoaderConfig {
        roots: vec![LibRoot::host(h.root.path())],
        max_memory_size: MAX_LIB_MEMORY,
        max_table_size: MAX_LIB_TABLE,
        init_fuel: Some(INIT_FUEL),
        ..LoaderConfig::default()
    };
    let mut loader = Loader::attach(&mut store, &instance, config).expect("the loader attaches");
    let before = snapshot(&mut store, &instance, &loader);
    let scan = Scan::of(data);
    let flags = FLAGS[data.len() % FLAGS.len()];

    // The loader stays out of the store while we drive it, as in an embedder's host call;
    // a side module's constructor calling `dl_open` then sees no loader and fails cleanly.
    let opened = loader.dl_open(&mut store, FILE_NAME, flags);
    let result = opened.as_ref().map(|_| ()).map_err(ToString::to_string);
    // An error was formatted above (it goes to dl_error): nothing else to do with it.
    if let Ok(handle) = opened {
        let again = loader.dl_open(&mut store, FILE_NAME, flags).expect("opening a loaded library again");
        assert_eq!(again, handle, "a second dl_open of the same library returns its handle");
        for name in scan.exports.iter().map(String::as_str).take(8).chain(FIXED_NAMES) {
            let _ = loader.dl_sym(&mut store, handle, name);
        }
        assert_eq!(loader.stats().libraries, 1);
        loader.dl_close(&mut store, handle).expect("first dl_close");
        assert!(loader.is_open(handle), "one reference is left after the first dl_close");
        loader.dl_close(&mut store, handle).expect("second dl_close");
        assert!(!loader.is_open(handle));
        assert!(loader.dl_sym(&mut store, handle, "main_fn").is_err(), "dl_sym on a closed handle fails");
    }
    assert_eq!(loader.stats().libraries, 0, "no library is left loaded");

    // Initializers may have used up the store's fuel; the check needs its own.
    store.set_fuel(STORE_FUEL).expect("fuel is enabled");
    if scan.may_touch_main && !check_all {
        // Its code may have written anywhere: the main module must still run, nothing more.
        let _ = try_call(&mut store, &instance, "self_check");
        return result;
    }
    let after = snapshot(&mut store, &instance, &loader);
    let when = if result.is_err() { "after a failed dl_open" } else { "after dl_open + dl_close" };
    assert_eq!(after, before, "main module state changed {when} of a module that runs no code");
    result
}
