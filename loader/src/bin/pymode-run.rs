//! `pymode-run`: run a WASI preview-1 main module (e.g. `python.wasm`) with the PyMode
//! loader attached, so that it can `dl_open` side modules.
//!
//! ```text
//! pymode-run [--dir HOST[::GUEST]]... [--env K=V]... [--lib-root DIR]... [--cache DIR]
//!            [-W max-wasm-stack=N,max-memory-size=N,max-table-elements=N]
//!            MODULE.wasm [-- ARGS...]
//! ```
//!
//! The flags are `wasmtime run`'s where they mean the same: `--dir HOST::GUEST`, `--env`, and
//! `-W` for the stack and memory limits (also spelled `--max-wasm-stack` and so on).
//! `PYMODE_LOG` sets a `tracing` filter for the host's log on stderr, e.g.
//! `PYMODE_LOG=pymode_loader=debug` shows every load with its steps and timings.
//!
//! Every `--dir` is preopened for the guest and is also a library root mapped at its guest
//! path; `--lib-root` adds a root the guest reaches by host path or relative name. The exit
//! code is the guest's (`proc_exit`), 0 when `_start` returns, 134 after a trap, 2 for a usage
//! error, 1 for any other host error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pymode_loader::run::{RunOptions, run};

const USAGE: &str =
    "usage: pymode-run [--dir HOST[::GUEST]]... [--env K=V]... [--lib-root DIR]... [--cache DIR] [-W OPT=N,...] MODULE.wasm [-- ARGS...]";

/// Runs a WASI preview-1 main module with the PyMode loader attached.
#[derive(Debug, Parser)]
#[command(name = "pymode-run", override_usage = &USAGE[7..], after_help = "The exit code is the guest's, 134 after a trap, 2 for a usage error, 1 for another host error.")]
struct Cli {
    /// Map a host directory into the guest (at GUEST, default the same path); side modules
    /// under it can be loaded.
    #[arg(long = "dir", value_name = "HOST[::GUEST]", value_parser = parse_dir)]
    dirs: Vec<(PathBuf, String)>,
    /// Set an environment variable for the guest.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    envs: Vec<(String, String)>,
    /// A directory side modules may be loaded from by host path or relative name.
    #[arg(long = "lib-root", value_name = "DIR")]
    lib_roots: Vec<PathBuf>,
    /// Cache compiled modules in DIR.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// wasmtime-style options: max-wasm-stack=BYTES, max-memory-size=BYTES, max-table-elements=N (comma-separated).
    #[arg(short = 'W', value_name = "OPT=N[,OPT=N]...")]
    wasm: Vec<String>,
    /// The most bytes of host stack wasm code may use (default 8 MiB: CPython's C recursion limit for WASI needs it).
    #[arg(long, value_name = "BYTES")]
    max_wasm_stack: Option<usize>,
    /// The most bytes a linear memory may grow to.
    #[arg(long, value_name = "BYTES")]
    max_memory_size: Option<usize>,
    /// The most elements a table may grow to.
    #[arg(long, value_name = "N")]
    max_table_elements: Option<usize>,
    /// The main module.
    #[arg(value_name = "MODULE.wasm")]
    module: PathBuf,
    /// Arguments for the guest (after `--`, or after the module).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    args: Vec<String>,
}

fn parse_dir(v: &str) -> Result<(PathBuf, String), String> {
    Ok(match v.split_once("::") {
        Some((h, g)) => (PathBuf::from(h), g.to_owned()),
        None => (PathBuf::from(v), v.to_owned()),
    })
}

fn parse_env(v: &str) -> Result<(String, String), String> {
    let (k, val) = v.split_once('=').ok_or_else(|| format!("--env {v}: expected K=V"))?;
    Ok((k.to_owned(), val.to_owned()))
}

fn options(cli: Cli) -> Result<RunOptions, String> {
    let mut opts = RunOptions {
        module: cli.module,
        args: cli.args,
        dirs: cli.dirs,
        envs: cli.envs,
        lib_roots: cli.lib_roots,
        cache: cli.cache,
        max_wasm_stack: cli.max_wasm_stack,
        max_memory_size: cli.max_memory_size,
        max_table_elements: cli.max_table_elements,
    };
    for item in cli.wasm.iter().flat_map(|w| w.split(',')) {
        let (key, value) = item.split_once('=').ok_or_else(|| format!("-W {item}: expected OPT=N"))?;
        let n: usize = value.parse().map_err(|_| format!("-W {item}: {value} is not a number"))?;
        match key {
            "max-wasm-stack" => opts.max_wasm_stack = Some(n),
            "max-memory-size" => opts.max_memory_size = Some(n),
            "max-table-elements" => opts.max_table_elements = Some(n),
            _ => return Err(format!("-W {item}: unknown option (known: max-wasm-stack, max-memory-size, max-table-elements)")),
        }
    }
    Ok(opts)
}

fn parse(argv: Vec<String>) -> Result<RunOptions, clap::Error> {
    let cli = Cli::try_parse_from(std::iter::once("pymode-run".to_owned()).chain(argv))?;
    options(cli).map_err(|msg| clap::Error::raw(clap::error::ErrorKind::ValueValidation, msg))
}

fn main() -> ExitCode {
    if let Some(filter) = std::env::var_os("PYMODE_LOG") {
        let filter = tracing_subscriber::EnvFilter::new(filter.to_string_lossy());
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(argv) {
        Ok(o) => o,
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!("pymode-run: {}\n{USAGE}", first.strip_prefix("error: ").unwrap_or(first));
            return ExitCode::from(2);
        }
    };
    match run(&opts, "pymode-run") {
        Ok(exit) => ExitCode::from(exit.code()),
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
        let a = parse(v(&[
            "--dir",
            "/h::/g",
            "--dir",
            "/x",
            "--env",
            "A=b=c",
            "--lib-root",
            "/l",
            "--cache",
            "/c",
            "m.wasm",
            "--",
            "-c",
            "--dir",
        ]))
        .unwrap();
        assert_eq!(a.dirs, vec![(PathBuf::from("/h"), "/g".to_owned()), (PathBuf::from("/x"), "/x".to_owned())]);
        assert_eq!(a.envs, vec![("A".to_owned(), "b=c".to_owned())]);
        assert_eq!(a.lib_roots, vec![PathBuf::from("/l")]);
        assert_eq!(a.cache, Some(PathBuf::from("/c")));
        assert_eq!(a.module, PathBuf::from("m.wasm"));
        assert_eq!(a.args, v(&["-c", "--dir"]));
    }

    #[test]
    fn arguments_after_the_module_go_to_the_guest() {
        let a = parse(v(&["m.wasm", "x", "-y"])).unwrap();
        assert_eq!(a.args, v(&["x", "-y"]));
    }

    #[test]
    fn wasmtime_style_limits() {
        let a = parse(v(&["-W", "max-wasm-stack=1048576,max-memory-size=65536", "--max-table-elements", "10", "m.wasm"])).unwrap();
        assert_eq!((a.max_wasm_stack, a.max_memory_size, a.max_table_elements), (Some(1 << 20), Some(65536), Some(10)));
        assert!(parse(v(&["-W", "bogus=1", "m.wasm"])).is_err());
        assert!(parse(v(&["-W", "max-wasm-stack=x", "m.wasm"])).is_err());
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(parse(v(&[])).is_err());
        assert!(parse(v(&["--dir"])).is_err());
        assert!(parse(v(&["--env", "noequals", "m.wasm"])).is_err());
        assert!(parse(v(&["--bogus", "m.wasm"])).is_err());
    }
}
