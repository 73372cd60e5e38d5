//! `pymode`: build C-extension packages for PyMode's wasm32-wasi CPython and run it.
//!
//! ```text
//! pymode toolchain                      provision zig and wasm-tools
//! pymode python                         provision, build or reuse the wasm CPython; print where
//! pymode wheel SPEC... [-o DIR] [--recipe FILE]
//! pymode install SPEC... --target DIR
//! pymode run [--site DIR]... [--dir HOST[::GUEST]]... [--env K=V]... -- PYTHON-ARGS
//! ```
//!
//! Errors are one line on stderr (`pymode: error: ...`) and exit code 1; usage errors exit 2.
//! Run as `pymode-ld` (the name of a link to it, which `pymode wheel` makes), it is the linker,
//! so an installed `pymode` needs nothing else from a checkout.

use clap::{Args, Parser, Subcommand};
use pymode_build::cache::{bin_dir, cache_dir, module_cache_dir};
use pymode_build::cpython::{self, CPython};
use pymode_build::error::{Error, Result};
use pymode_build::recipe::Recipe;
use pymode_build::spec::Spec;
use pymode_build::toolchain::{self, Toolchain};
use pymode_build::wheel::Builder;
use pymode_loader::run::{RunOptions, run};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Builds C-extension sdists into wasm32-wasi wheels for PyMode's CPython, installs packages
/// into site directories for it, and runs it with the loader. Everything it provisions lives
/// in $PYMODE_CACHE (default ~/.cache/pymode).
#[derive(Debug, Parser)]
#[command(name = "pymode", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Provision and verify the pinned toolchain (zig, wasm-tools) and print where it is.
    Toolchain,
    /// Provision the toolchain, build the wasm CPython or reuse the cached one, print where it is.
    Python,
    /// Build wasm32-wasi wheels from sdists.
    Wheel(WheelArgs),
    /// Install packages and their dependencies into a site directory for the wasm CPython.
    Install(InstallArgs),
    /// Run the wasm CPython with the loader, like `python`.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct WheelArgs {
    /// NAME, NAME==VERSION (an sdist from the package index, resolved for CPython 3.13), an sdist file, or a source directory.
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<String>,
    /// Where to put the wheels.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR", default_value = "wheelhouse")]
    out_dir: PathBuf,
    /// A recipe (TOML) to use instead of the built-in one for the package's name.
    #[arg(long, value_name = "FILE")]
    recipe: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct InstallArgs {
    /// NAME, NAME==VERSION, an sdist file, or a source directory.
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<String>,
    /// The site directory to install into (made if missing).
    #[arg(long, value_name = "DIR")]
    target: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A site directory (from `pymode install`): put on sys.path and mounted so its extension modules load.
    #[arg(long = "site", value_name = "DIR")]
    sites: Vec<PathBuf>,
    /// Map a host directory into the guest (at GUEST, default the same path).
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Set an environment variable for the guest.
    #[arg(long = "env", value_name = "K=V")]
    envs: Vec<String>,
    /// The Python arguments (after `--`): a script, `-c CODE`, `-m MODULE`, ...
    #[arg(last = true, value_name = "PYTHON-ARGS")]
    args: Vec<String>,
}

fn toolchain() -> Result<Toolchain> {
    match Toolchain::load() {
        Ok(tc) => Ok(tc),
        Err(_) => toolchain::provision(),
    }
}

/// `bin/pymode-ld` in the cache: a link to this executable, which acts as the linker when
/// started by that name.
fn linker() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|source| Error::Io { action: "find", path: "the pymode executable".into(), source })?;
    let dir = bin_dir();
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io { action: "create directory", path: dir.clone(), source })?;
    let link = dir.join("pymode-ld");
    if std::fs::read_link(&link).ok().as_deref() != Some(exe.as_path()) {
        let tmp = dir.join(format!(".pymode-ld-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&exe, &tmp).map_err(|source| Error::Io { action: "link", path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &link).map_err(|source| Error::Io { action: "rename into place", path: link.clone(), source })?;
    }
    Ok(link)
}

fn builder() -> Result<Builder> {
    let tc = toolchain()?;
    let cpython = cpython::build(&tc)?;
    Ok(Builder { toolchain: tc, cpython, linker: linker()? })
}

fn specs(args: &[String]) -> Result<Vec<Spec>> {
    args.iter().map(|s| Spec::parse(s)).collect()
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|source| Error::Io { action: "resolve", path: path.to_path_buf(), source })
}

fn wheel(args: WheelArgs) -> Result<()> {
    let specs = specs(&args.specs)?;
    let recipe = args.recipe.as_deref().map(Recipe::from_file).transpose()?;
    let out_dir = absolute(&args.out_dir)?;
    let builder = builder()?;
    for spec in &specs {
        let built = builder.wheel(spec, recipe.as_ref(), &out_dir)?;
        println!("wheel {} ({:.1} s)", built.wheel.display(), built.seconds);
        if built.extensions.is_empty() {
            println!("  no extension modules: a pure-Python wheel");
        }
        for ext in &built.extensions {
            println!("  extension {ext}");
        }
    }
    Ok(())
}

fn install(args: InstallArgs) -> Result<()> {
    let specs = specs(&args.specs)?;
    let target = absolute(&args.target)?;
    let builder = builder()?;
    let plans = pymode_build::install::install(&builder, &specs, &target)?;
    for plan in &plans {
        match plan {
            pymode_build::install::Plan::Pure { name, version } => println!("installed {name} {version} (pure Python)"),
            pymode_build::install::Plan::Build { name, version, .. } => println!("installed {name} {version} (built for wasm32-wasi)"),
        }
    }
    println!("site: {}", target.display());
    Ok(())
}

fn run_python(args: RunArgs) -> Result<u8> {
    let py = CPython::existing().ok_or_else(|| {
        Error::input(cache_dir().join("cpython").display().to_string(), "the wasm CPython is not built: run `pymode python` first")
    })?;
    let mut opts = RunOptions { module: py.python_wasm.clone(), args: args.args, cache: Some(module_cache_dir()), ..RunOptions::default() };
    let prefix = py.prefix.display().to_string();
    opts.dirs.push((py.prefix.clone(), prefix));
    // The current directory at its own path, so `pymode run -- script.py` and absolute paths
    // under it work; `.` for relative paths.
    let cwd = std::env::current_dir().map_err(|source| Error::Io { action: "find", path: ".".into(), source })?;
    opts.dirs.push((cwd.clone(), cwd.display().to_string()));
    opts.dirs.push((cwd.clone(), ".".to_owned()));
    let mut path = Vec::new();
    for site in &args.sites {
        let site = absolute(site)?;
        if !site.is_dir() {
            return Err(Error::input(site.display().to_string(), "--site: not a directory"));
        }
        let guest = site.display().to_string();
        path.push(guest.clone());
        opts.dirs.push((site, guest));
    }
    for dir in &args.dirs {
        let (host, guest) = dir.split_once("::").map_or((dir.as_str(), dir.as_str()), |(h, g)| (h, g));
        opts.dirs.push((PathBuf::from(host), guest.to_owned()));
    }
    let mut user_path = None;
    for env in &args.envs {
        let (k, v) = env.split_once('=').ok_or_else(|| Error::input(format!("--env {env}"), "expected K=V"))?;
        if k == "PYTHONPATH" {
            user_path = Some(v.to_owned());
        } else {
            opts.envs.push((k.to_owned(), v.to_owned()));
        }
    }
    path.extend(user_path);
    if !path.is_empty() {
        opts.envs.push(("PYTHONPATH".to_owned(), path.join(":")));
    }
    opts.envs.push(("PWD".to_owned(), cwd.display().to_string()));
    match run(&opts, "pymode") {
        Ok(exit) => Ok(exit.code()),
        Err(msg) => Err(Error::product("pymode run", msg)),
    }
}

/// `pymode-ld ARGS`: the linker's command line, as the `pymode-ld` binary has it.
fn linker_main() -> ExitCode {
    pymode_linker::cli::main(std::env::args().skip(1))
}

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if Path::new(&argv0).file_name().is_some_and(|n| n == "pymode-ld") {
        return linker_main();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Toolchain => toolchain().map(|tc| {
            toolchain::print_paths(&tc);
            0
        }),
        Command::Python => toolchain().and_then(|tc| cpython::build(&tc)).map(|py| {
            println!("  prefix          {}", py.prefix.display());
            println!("  main module     {}", py.python_wasm.display());
            println!("  headers         {}", py.include_dir().display());
            println!("  build Python    {}", py.native_python.display());
            for module in pymode_build::stdlib::MODULES {
                println!("  stdlib module   {}", pymode_build::stdlib::module_path(&py.prefix, module.name).display());
            }
            0
        }),
        Command::Wheel(args) => wheel(args).map(|()| 0),
        Command::Install(args) => install(args).map(|()| 0),
        Command::Run(args) => run_python(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pymode: error: {e}");
            ExitCode::FAILURE
        }
    }
}
