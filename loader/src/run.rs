//! Running a WASI preview-1 main module (e.g. `python.wasm`) with the loader attached: what
//! `pymode-run` and `pymode run` share.
//!
//! Every mapped directory is preopened for the guest and is also a library root at its guest
//! path, so side modules under it can be `dl_open`ed; [`RunOptions::lib_roots`] adds roots the
//! guest reaches by host path or relative name.

use crate::{HasLoader, HasSocketPairs, LibRoot, Loader, LoaderConfig, ModuleCache, SocketPairs, add_socketpair_to_linker, add_to_linker};
use std::path::PathBuf;
use wasmtime::{Config, Engine, Linker, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// What to run and with what.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The main module.
    pub module: PathBuf,
    /// The guest's arguments after its program name.
    pub args: Vec<String>,
    /// Host directories mapped into the guest, as (host, guest path).
    pub dirs: Vec<(PathBuf, String)>,
    /// Environment variables for the guest.
    pub envs: Vec<(String, String)>,
    /// Extra library roots, reached by host path.
    pub lib_roots: Vec<PathBuf>,
    /// Where compiled modules are cached on disk.
    pub cache: Option<PathBuf>,
    /// The most bytes wasm code may use of the host stack (wasmtime's `max-wasm-stack`);
    /// `None` is [`DEFAULT_MAX_WASM_STACK`].
    pub max_wasm_stack: Option<usize>,
    /// The most bytes any one linear memory may grow to.
    pub max_memory_size: Option<usize>,
    /// The most elements any one table may grow to.
    pub max_table_elements: Option<usize>,
}

/// How a run ended, when it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The guest exited with this code (`proc_exit`, or 0 when `_start` returned).
    Code(u8),
    /// The guest trapped; the message was printed on stderr.
    Trap,
}

/// Store data for [`run`]: WASI, the loader slot, the virtual socket pairs and the resource
/// limits.
struct RunHost {
    wasi: wasmtime_wasi::p1::WasiP1Ctx,
    loader: Option<Loader>,
    sockets: SocketPairs,
    limits: StoreLimits,
}

impl HasSocketPairs for RunHost {
    fn wasi_and_sockets(&mut self) -> (&mut wasmtime_wasi::p1::WasiP1Ctx, &mut SocketPairs) {
        (&mut self.wasi, &mut self.sockets)
    }
}

impl HasLoader for RunHost {
    fn loader_slot(&mut self) -> &mut Option<Loader> {
        &mut self.loader
    }
}

/// The exit code [`Exit::Trap`] maps to (as a signal-killed process would: 128 + SIGABRT).
pub const TRAP_EXIT_CODE: u8 = 134;

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Code(c) => c,
            Exit::Trap => TRAP_EXIT_CODE,
        }
    }
}

/// The wasm stack limit [`run`] uses unless [`RunOptions::max_wasm_stack`] says otherwise:
/// 8 MiB, as CPython's own WASI build runs with. CPython 3.13 on WASI stops C recursion at
/// depth 5000 (`Py_C_RECURSION_LIMIT`) with a `RecursionError`; the deepest such recursions
/// measured (the C json encoder and decoder, `repr` through a Python `__repr__`) need about
/// 1.5 MiB of wasm stack at that depth, so 8 MiB leaves a margin of five. The linear-memory
/// stack is CPython's configure default for WASI, also 8 MiB (`-z stack-size=8388608`, laid
/// out first so an overflow traps instead of overwriting data).
pub const DEFAULT_MAX_WASM_STACK: usize = 8 << 20;

/// Host stack above the wasm stack limit on the thread [`run`] uses: wasmtime's own frames,
/// host calls (WASI, `dl_open` compiling a side module) and the entry into wasm.
pub const HOST_STACK_MARGIN: usize = 8 << 20;

/// Sets `config` up for a wasm stack of `max_wasm_stack` bytes: the limit itself, and the
/// async stack size wasmtime requires to be at least as large. The thread that calls into
/// the store needs [`host_thread_stack`] bytes of stack; a thread's default (often 2 or 8
/// MiB) is too small, and running out of it ends the host process instead of trapping.
pub fn configure_stack(config: &mut Config, max_wasm_stack: usize) {
    config.max_wasm_stack(max_wasm_stack);
    config.async_stack_size(max_wasm_stack + HOST_STACK_MARGIN);
}

/// The host thread stack size to run a store configured by [`configure_stack`] on.
pub fn host_thread_stack(max_wasm_stack: usize) -> usize {
    max_wasm_stack + HOST_STACK_MARGIN
}

/// The most bytes one WASI call may copy between the guest and the host: the guest's memory
/// limit, or all of a 32-bit memory (4 GiB) without one.
pub fn hostcall_fuel(max_memory_size: Option<usize>) -> usize {
    max_memory_size.unwrap_or_else(|| usize::try_from(1u64 << 32).unwrap_or(usize::MAX))
}

/// Runs the module; `Err` is a one-line host error (`program: what`). `name` prefixes the
/// trap messages on stderr (`pymode-run`, `pymode`). It runs on a thread of its own, with
/// the stack the wasm stack limit needs ([`host_thread_stack`]).
pub fn run(opts: &RunOptions, name: &str) -> Result<Exit, String> {
    let stack = host_thread_stack(opts.max_wasm_stack.unwrap_or(DEFAULT_MAX_WASM_STACK));
    std::thread::scope(|scope| {
        let runner = std::thread::Builder::new()
            .name("wasm".to_owned())
            .stack_size(stack)
            .spawn_scoped(scope, || run_on_this_thread(opts, name))
            .map_err(|e| format!("starting a thread with a {stack}-byte stack: {e}"))?;
        runner.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn run_on_this_thread(opts: &RunOptions, name: &str) -> Result<Exit, String> {
    let engine = engine(opts)?;
    let program = opts.module.display().to_string();
    let (wasi, roots) = wasi_and_roots(opts, &program)?;

    let mut limits = StoreLimitsBuilder::new();
    if let Some(bytes) = opts.max_memory_size {
        limits = limits.memory_size(bytes);
    }
    if let Some(elements) = opts.max_table_elements {
        limits = limits.table_elements(elements);
    }
    let mut store = Store::new(&engine, RunHost { wasi, loader: None, sockets: SocketPairs::default(), limits: limits.build() });
    store.limiter(|h| &mut h.limits);
    // wasmtime's default allowance for one WASI call's copy (128 MiB) makes a single larger
    // read fail with ENOMEM (`open(path).read()` of a 200 MB file; mmap's copy of a large
    // map), where native CPython reads it. The guest's buffer lies in its own memory, so its
    // size bounds the copy as it already bounds the guest.
    store.set_hostcall_fuel(hostcall_fuel(opts.max_memory_size));
    let mut linker: Linker<RunHost> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut RunHost| &mut h.wasi).map_err(|e| format!("linker: {e}"))?;
    add_to_linker(&mut linker).map_err(|e| format!("linker: {e}"))?;
    add_socketpair_to_linker(&mut linker).map_err(|e| format!("linker: {e}"))?;

    let cache = ModuleCache::new(opts.cache.clone());
    // By file: a stamp in the cache spares reading and hashing the module at every start.
    let module = cache.get_or_compile_file(&engine, &opts.module).map_err(|e| e.to_string())?;
    let uses_loader = module.imports().any(|i| i.module() == pymode_abi::host::MODULE);
    let instance = linker.instantiate(&mut store, &module).map_err(|e| format!("{program}: {e:?}"))?;

    let config = LoaderConfig { roots, ..LoaderConfig::default() };
    match Loader::attach(&mut store, &instance, config) {
        Ok(mut loader) => {
            loader.set_cache(cache);
            store.data_mut().loader = Some(loader);
        }
        // A module that never calls dl_open does not need what the loader checks for.
        Err(e) if uses_loader => return Err(format!("{program}: {e}")),
        Err(e) => {
            if std::env::var_os("PYMODE_RUN_VERBOSE").is_some() {
                eprintln!("{name}: {program}: loader not attached: {e}");
            }
        }
    }

    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").map_err(|e| format!("{program}: _start: {e}"))?;
    let outcome = start.call(&mut store, ());
    let library = match (&outcome, &store.data().loader) {
        (Err(e), Some(loader)) => loader.library_of_trap(&store, e).map(str::to_owned),
        _ => None,
    };
    Ok(exit_of(outcome, name, &program, library.as_deref()))
}

/// The engine: zig's default wasm features and the stack limit asked for (or the default).
fn engine(opts: &RunOptions) -> Result<Engine, String> {
    let mut config = Config::new();
    // The features zig/clang enable by default for wasm32-wasi (DESIGN §4).
    config.wasm_bulk_memory(true).wasm_multi_value(true).wasm_extended_const(true);
    configure_stack(&mut config, opts.max_wasm_stack.unwrap_or(DEFAULT_MAX_WASM_STACK));
    Engine::new(&config).map_err(|e| format!("engine: {e}"))
}

/// The guest's WASI context (arguments, environment, preopened directories) and the library
/// roots: every preopened directory is also a root mapped at its guest path.
fn wasi_and_roots(opts: &RunOptions, program: &str) -> Result<(wasmtime_wasi::p1::WasiP1Ctx, Vec<LibRoot>), String> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio();
    // File operations run on this thread instead of being handed to a blocking-pool thread
    // and waited for: the guest waits for them either way, and a start-up makes about a
    // thousand of them (loader.md, "Start-up").
    wasi.allow_blocking_current_thread(true);
    wasi.arg(program);
    for a in &opts.args {
        wasi.arg(a);
    }
    for (k, v) in &opts.envs {
        wasi.env(k, v);
    }
    let mut roots = Vec::new();
    for (host, guest) in &opts.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite).map_err(|e| format!("--dir {}: {e}", host.display()))?;
        roots.push(LibRoot::mapped(host, guest.clone()));
    }
    roots.extend(opts.lib_roots.iter().map(LibRoot::host));
    Ok((wasi.build_p1(), roots))
}

/// What `_start`'s outcome means for the process: the guest's exit code, or a trap, named
/// on stderr (first one line: the cause, and the side module whose code trapped, `library`)
/// with a hint for the usual cause in C extensions.
fn exit_of(outcome: wasmtime::Result<()>, name: &str, program: &str, library: Option<&str>) -> Exit {
    let e = match outcome {
        Ok(()) => return Exit::Code(0),
        Err(e) => e,
    };
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        // Exit codes are 0..=255 on the host; WASI passes an i32.
        return Exit::Code((exit.0 & 0xff) as u8);
    }
    // One line first (what a user reads), then wasmtime's full report with the backtrace.
    let cause = crate::error::describe(&e);
    match library {
        Some(library) => eprintln!("{name}: {program}: trap in {library}: {cause}"),
        None => eprintln!("{name}: {program}: {cause}"),
    }
    eprintln!("{name}: {e:?}");
    if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::BadSignature)) {
        // DESIGN §5.10: the usual cause in C extensions, which native ABIs tolerate.
        eprintln!(
            "{name}: hint: a function was called through a pointer of a different type \
             (e.g. a METH_NOARGS function declared with one parameter, or a cast callback); \
             wasm checks the signature of every indirect call"
        );
    }
    Exit::Trap
}
