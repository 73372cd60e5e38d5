//! `pymode-run`: run a WASI preview-1 main module (e.g. `python.wasm`) with the PyMode
//! loader attached, so that it can `dl_open` side modules.
//!
//! ```text
//! pymode-run [--dir HOST[::GUEST]]... [--env K=V]... [--lib-root DIR]... [--cache DIR]
//!            MODULE.wasm [-- ARGS...]
//! ```
//!
//! `PYMODE_LOG` sets a `tracing` filter for the host's log on stderr, e.g.
//! `PYMODE_LOG=pymode_loader=debug` shows every load with its steps and timings.
//!
//! Every `--dir` is preopened for the guest and is also a library root mapped at its guest
//! path; `--lib-root` adds a root the guest reaches by host path or relative name. The exit
//! code is the guest's (`proc_exit`), 0 when `_start` returns, 134 after a trap, 2 for a usage
//! error, 1 for any other host error.

use std::path::PathBuf;
use std::process::ExitCode;

use pymode_loader::{LibRoot, Loader, LoaderConfig, ModuleCache, WasiHost, add_to_linker};
use wasmtime::{Config, Engine, Linker, Store};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

const USAGE: &str = "usage: pymode-run [--dir HOST[::GUEST]]... [--env K=V]... [--lib-root DIR]... [--cache DIR] MODULE.wasm [-- ARGS...]";

#[derive(Debug, Default)]
struct Args {
    dirs: Vec<(PathBuf, String)>,
    envs: Vec<(String, String)>,
    lib_roots: Vec<PathBuf>,
    cache: Option<PathBuf>,
    module: PathBuf,
    args: Vec<String>,
}

fn parse(argv: Vec<String>) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = argv.into_iter();
    let mut module = None;
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--dir" => {
                let v = value("--dir")?;
                let (host, guest) = match v.split_once("::") {
                    Some((h, g)) => (h.to_owned(), g.to_owned()),
                    None => (v.clone(), v.clone()),
                };
                out.dirs.push((PathBuf::from(host), guest));
            }
            "--env" => {
                let v = value("--env")?;
                let (k, val) = v.split_once('=').ok_or_else(|| format!("--env {v}: expected K=V"))?;
                out.envs.push((k.to_owned(), val.to_owned()));
            }
            "--lib-root" => out.lib_roots.push(PathBuf::from(value("--lib-root")?)),
            "--cache" => out.cache = Some(PathBuf::from(value("--cache")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "--" => {
                out.args.extend(it.by_ref());
            }
            s if s.starts_with("--") && module.is_none() => return Err(format!("unknown option {s}")),
            _ if module.is_none() => module = Some(PathBuf::from(a)),
            // Arguments after the module without `--` also go to the guest.
            _ => out.args.push(a),
        }
    }
    out.module = module.ok_or_else(|| "missing MODULE.wasm".to_owned())?;
    Ok(out)
}

fn run(args: Args) -> Result<ExitCode, String> {
    let mut config = Config::new();
    // The features zig/clang enable by default for wasm32-wasi (DESIGN §4).
    config
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_extended_const(true);
    let engine = Engine::new(&config).map_err(|e| format!("engine: {e}"))?;

    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio();
    let program = args.module.display().to_string();
    wasi.arg(&program);
    for a in &args.args {
        wasi.arg(a);
    }
    for (k, v) in &args.envs {
        wasi.env(k, v);
    }
    let mut roots = Vec::new();
    for (host, guest) in &args.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite).map_err(|e| format!("--dir {}: {e}", host.display()))?;
        roots.push(LibRoot::mapped(host, guest.clone()));
    }
    roots.extend(args.lib_roots.iter().map(LibRoot::host));

    let mut store = Store::new(&engine, WasiHost { wasi: wasi.build_p1(), loader: None });
    let mut linker: Linker<WasiHost> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut WasiHost| &mut h.wasi).map_err(|e| format!("linker: {e}"))?;
    add_to_linker(&mut linker).map_err(|e| format!("linker: {e}"))?;

    let bytes = std::fs::read(&args.module).map_err(|e| format!("{program}: {e}"))?;
    let mut cache = ModuleCache::new(args.cache.clone());
    let module = cache.get_or_compile(&engine, &bytes).map_err(|e| format!("{program}: {e}"))?;
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
        Err(e) => tracing_note(&format!("{program}: loader not attached: {e}")),
    }

    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").map_err(|e| format!("{program}: _start: {e}"))?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                // Exit codes are 0..=255 on the host; WASI passes an i32.
                return Ok(ExitCode::from((exit.0 & 0xff) as u8));
            }
            eprintln!("pymode-run: {program}: {e:?}");
            if matches!(e.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::BadSignature)) {
                // DESIGN §5.10: the usual cause in C extensions, which native ABIs tolerate.
                eprintln!(
                    "pymode-run: hint: a function was called through a pointer of a different type \
                     (e.g. a METH_NOARGS function declared with one parameter, or a cast callback); \
                     wasm checks the signature of every indirect call"
                );
            }
            Ok(ExitCode::from(134))
        }
    }
}

fn tracing_note(msg: &str) {
    if std::env::var_os("PYMODE_RUN_VERBOSE").is_some() {
        eprintln!("pymode-run: {msg}");
    }
}

fn main() -> ExitCode {
    if let Some(filter) = std::env::var_os("PYMODE_LOG") {
        let filter = tracing_subscriber::EnvFilter::new(filter.to_string_lossy());
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(argv) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("pymode-run: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("pymode-run: {msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_the_documented_form() {
        let a = parse(v(&["--dir", "/h::/g", "--dir", "/x", "--env", "A=b=c", "--lib-root", "/l", "--cache", "/c", "m.wasm", "--", "-c", "--dir"]))
            .unwrap();
        assert_eq!(a.dirs, vec![(PathBuf::from("/h"), "/g".to_owned()), (PathBuf::from("/x"), "/x".to_owned())]);
        assert_eq!(a.envs, vec![("A".to_owned(), "b=c".to_owned())]);
        assert_eq!(a.lib_roots, vec![PathBuf::from("/l")]);
        assert_eq!(a.cache, Some(PathBuf::from("/c")));
        assert_eq!(a.module, PathBuf::from("m.wasm"));
        assert_eq!(a.args, v(&["-c", "--dir"]));
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(parse(v(&[])).is_err());
        assert!(parse(v(&["--dir"])).is_err());
        assert!(parse(v(&["--env", "noequals", "m.wasm"])).is_err());
        assert!(parse(v(&["--bogus", "m.wasm"])).is_err());
    }
}
