//! `pymode wheel`: an unmodified sdist built into a wasm32-wasi wheel.
//!
//! The package's own PEP 517 backend runs on the native CPython 3.13, in an isolated build
//! environment with the sdist's own `[build-system] requires` ([`crate::buildenv`]), under a
//! cross configuration set up by the build driver (`build/python/pymode_build_ext.py`): the
//! wasm CPython's sysconfig data, zig cc / zig c++ for wasm32-wasi with `-fPIC` as `CC` /
//! `CXX`, and `pymode-ld -shared` for every `-shared` link. A recipe ([`crate::recipe`]) adds
//! only what the build cannot find out by itself.

use crate::cache::{bin_dir, work_dir};
use crate::cpython::CPython;
use crate::error::{Error, IoContext, Result};
use crate::process::logged;
use crate::recipe::{Recipe, normalize_name};
use crate::spec::Spec;
use crate::toolchain::{Toolchain, apply_zig_env};
use crate::{buildenv, cxx, sdist, staticlib, zig_tools};
use serde::Deserialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The build driver, compiled in and written to the cache when needed.
pub const DRIVER: &str = include_str!("../python/pymode_build_ext.py");

/// The `sitecustomize.py` of a cross build's Python processes: `sysconfig.get_paths()` names
/// the wasm CPython's include directory, as `get_config_var` already names its values.
const CROSS_SITE: &str = include_str!("../python/pymode_cross_site.py");

/// The exit code with which the driver says the backend wants more build requirements.
const MORE_REQUIREMENTS: i32 = 3;

/// What a wheel build needs: the toolchain, the wasm CPython (its headers and sysconfig) with
/// its native build Python, and a `pymode-ld`.
#[derive(Debug, Clone)]
pub struct Builder {
    /// The pinned toolchain.
    pub toolchain: Toolchain,
    /// The wasm CPython and its native build Python.
    pub cpython: CPython,
    /// The `pymode-ld` the driver links side modules with.
    pub linker: PathBuf,
}

/// A built wheel.
#[derive(Debug, Clone)]
pub struct Built {
    /// The wheel file.
    pub wheel: PathBuf,
    /// Its extension modules, as paths inside the wheel.
    pub extensions: Vec<String>,
    /// The build's wall time (the backend's run, not the environment's making).
    pub seconds: f64,
    /// The build's log.
    pub log: PathBuf,
}

#[derive(Deserialize)]
struct DriverResult {
    wheel: PathBuf,
    extensions: Vec<String>,
    seconds: f64,
}

/// A scratch directory for one build under the cache's `work/`, removed when dropped unless
/// [`Scratch::keep`] was called (a failed build keeps its log).
pub struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    /// A new, empty scratch directory whose name starts with `label`.
    pub fn new(label: &str) -> Result<Scratch> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = work_dir().join(format!("{}-{}-{nanos}", normalize_name(label), std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).at("create directory", &path)?;
        Ok(Scratch { path, keep: false })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps it on disk (its log is named in an error).
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Copies `file` into `dir` under its own name through a temporary name, so `dir` never holds
/// half a file; returns the new path.
pub fn publish(file: &Path, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).at("create directory", dir)?;
    let name = file.file_name().ok_or_else(|| Error::input(file.display().to_string(), "no file name"))?;
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{}.part", name.to_string_lossy()));
    let copied = fs::copy(file, &tmp).at("copy", &tmp).and_then(|_| fs::rename(&tmp, &dest).at("rename into place", &dest));
    if copied.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    copied.map(|()| dest)
}

impl Builder {
    /// Builds `spec` into a wheel in `out_dir`. `recipe`: the one given with `--recipe`, else
    /// the built-in one for the package's name, if any. On failure `out_dir` is left as it was.
    pub fn wheel(&self, spec: &Spec, recipe: Option<&Recipe>, out_dir: &Path) -> Result<Built> {
        let label = match spec {
            Spec::Index { name, .. } => name.clone(),
            Spec::Sdist(p) | Spec::SourceDir(p) => p.file_name().map_or_else(|| "source".to_owned(), |n| n.to_string_lossy().into_owned()),
        };
        let mut scratch = Scratch::new(&label)?;
        let result = self.wheel_in(spec, recipe, scratch.path(), out_dir);
        if result.is_err() {
            scratch.keep();
        }
        result
    }

    fn wheel_in(&self, spec: &Spec, recipe: Option<&Recipe>, scratch: &Path, out_dir: &Path) -> Result<Built> {
        let tree = match spec {
            Spec::Index { name, version } => {
                let file = sdist::download(&self.cpython.native_python, name, version.as_deref())?;
                sdist::unpack(&file, &scratch.join("src"), &self.cpython.native_python)?
            }
            Spec::Sdist(file) => sdist::unpack(file, &scratch.join("src"), &self.cpython.native_python)?,
            // The backend writes into its tree (build/, *.egg-info): build a copy.
            Spec::SourceDir(dir) => {
                let copy = scratch.join("src").join(dir.file_name().unwrap_or_else(|| "source".as_ref()));
                fs::create_dir_all(scratch.join("src")).at("create directory", scratch)?;
                crate::process::capture(Command::new("cp").arg("-a").arg(dir).arg(&copy), &format!("copying {}", dir.display()))?;
                copy
            }
        };
        let name = package_name(spec, &tree)?;
        let builtin;
        let recipe = match recipe {
            Some(r) => Some(r),
            None => {
                builtin = Recipe::builtin(&name)?;
                builtin.as_ref()
            }
        };
        let built = self.wheel_from_tree(&tree, &name, recipe, scratch, None)?;
        let wheel = publish(&built.wheel, out_dir)?;
        Ok(Built { wheel, ..built })
    }

    /// Builds the source tree `tree` of package `name` with scratch files in `work`; the wheel
    /// stays in `work/wheels`. With `site`, the wheel is also unpacked there.
    pub fn wheel_from_tree(&self, tree: &Path, name: &str, recipe: Option<&Recipe>, work: &Path, site: Option<&Path>) -> Result<Built> {
        let system = sdist::build_system(tree)?;
        if let Some(tool) = cmake_backend(&system) {
            return Err(Error::input(
                name,
                format!(
                    "its build backend ({}) drives {tool}, which `pymode wheel` does not support yet (docs/backends.md, \"CMake\")",
                    system.backend
                ),
            ));
        }
        if system.backend.split([':', '.']).next() == Some("mesonpy") {
            // The cross file names the host's pkg-config, limited to the wasm prefix.
            crate::debian::ensure_host_program("pkg-config", "pkgconf")?;
        }
        let mut requires = system.requires.clone();
        if let Some(r) = recipe {
            requires.extend(r.build_requires.iter().cloned());
        }
        let bin = bin_dir();
        zig_tools::write(&bin, &self.toolchain.zig, zig_tools::PLAIN_CC)?;
        let driver = bin.join("pymode_build_ext.py");
        if fs::read_to_string(&driver).ok().as_deref() != Some(DRIVER) {
            fs::write(&driver, DRIVER).at("write", &driver)?;
        }
        let cross = work.join("cross");
        fs::create_dir_all(&cross).at("create directory", &cross)?;
        let sysconfigdata = self.cpython.sysconfigdata()?;
        let sysconfig_name = sysconfigdata.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let sysconfig_copy = cross.join(sysconfigdata.file_name().unwrap_or_default());
        fs::copy(&sysconfigdata, &sysconfig_copy).at("copy", &sysconfig_copy)?;
        let site_customize = cross.join("sitecustomize.py");
        fs::write(&site_customize, CROSS_SITE).at("write", &site_customize)?;
        let recipe_file = match recipe {
            Some(r) => {
                let path = work.join("recipe.toml");
                fs::write(&path, &r.text).at("write", &path)?;
                Some(path)
            }
            None => None,
        };
        let mut statics = Vec::new();
        for lib in recipe.map_or(&[][..], |r| &r.static_libs[..]) {
            statics.push(format!("{lib}={}", staticlib::build(lib, &self.toolchain)?.display()));
        }
        // The C++ runtime, built (once, cached) only for a tree with C++ sources.
        let cxx_runtime = if cxx::has_cxx_sources(tree) { Some(cxx::build(&self.toolchain)?) } else { None };
        let wheels = work.join("wheels");
        let _ = fs::remove_dir_all(&wheels);
        let result_file = work.join("result.json");
        let requires_file = work.join("more-requires.txt");
        let log = work.join("build.log");
        // Once with the sdist's own requirements; again if its backend asks for more
        // (`get_requires_for_build_wheel`, PEP 517).
        for attempt in 0..2 {
            let python = buildenv::ensure(&self.cpython.native_python, &requires)?;
            let _ = fs::remove_file(&requires_file);
            let mut cmd = Command::new(&python);
            cmd.arg(&driver)
                .arg("wheel")
                .arg("--source")
                .arg(tree)
                .arg("--wheel-dir")
                .arg(&wheels)
                .arg("--include")
                .arg(self.cpython.include_dir())
                .arg("--cc")
                .arg(bin.join("zcc"))
                .arg("--cxx")
                .arg(bin.join("zcxx"))
                .arg("--ar")
                .arg(bin.join("zar"))
                .arg("--pymode-ld")
                .arg(&self.linker)
                .arg("--result")
                .arg(&result_file)
                .arg("--requires-out")
                .arg(&requires_file);
            if let Some(site) = site {
                cmd.arg("--site").arg(site);
            }
            if let Some(path) = &recipe_file {
                cmd.arg("--recipe").arg(path);
            }
            for s in &statics {
                cmd.arg("--static").arg(s);
            }
            if let Some(runtime) = &cxx_runtime {
                cmd.arg("--cxx-runtime").arg(runtime);
            }
            // The environment's scripts (meson, cython, ...) first on PATH, as an activated
            // environment has them: backends run their tools by name.
            let env_bin = python.parent().map(Path::to_path_buf).unwrap_or_default();
            let path = std::env::var_os("PATH").unwrap_or_default();
            let path = std::env::join_paths(std::iter::once(env_bin).chain(std::env::split_paths(&path))).unwrap_or(path);
            cmd.env("PATH", path);
            cmd.env("_PYTHON_SYSCONFIGDATA_NAME", &sysconfig_name)
                .env("_PYTHON_HOST_PLATFORM", "wasi-wasm32")
                .env("PYTHONPATH", &cross)
                .env("PYMODE_TARGET_INCLUDE", self.cpython.include_dir())
                .env_remove("PYTHONHOME");
            apply_zig_env(&mut cmd);
            let what = format!("the build backend of {name} ({})", system.backend);
            match logged(&mut cmd, &what, &log) {
                Ok(()) => break,
                Err(Error::Command { status, .. })
                    if attempt == 0 && requires_file.is_file() && status == format!("exit status: {MORE_REQUIREMENTS}") =>
                {
                    let more = fs::read_to_string(&requires_file).at("read", &requires_file)?;
                    requires.extend(more.lines().map(str::to_owned).filter(|l| !l.trim().is_empty()));
                }
                Err(e) => return Err(e),
            }
        }
        let text = fs::read_to_string(&result_file).at("read the build's result", &result_file)?;
        let result: DriverResult = serde_json::from_str(&text)
            .map_err(|e| Error::product(format!("the build of {name}"), format!("{}: {e}", result_file.display())))?;
        if !result.wheel.is_file() {
            return Err(Error::product(format!("the build of {name}"), format!("{} is missing", result.wheel.display())));
        }
        Ok(Built { wheel: result.wheel, extensions: result.extensions, seconds: result.seconds, log })
    }
}

/// The package's name: the SPEC's, else the tree's static `[project] name`, else the sdist's
/// or directory's name without its version.
/// The CMake-based PEP 517 backends, and what they drive. There is no CMake toolchain file for
/// wasm32-wasi yet: building one of these would configure for the host and fail late, or
/// worse, so it is refused before any build environment is made.
fn cmake_backend(system: &sdist::BuildSystem) -> Option<&'static str> {
    const CMAKE_BACKENDS: &[&str] = &["scikit_build_core", "skbuild", "py_build_cmake", "cmake_build_extension"];
    let module = system.backend.split([':', '.']).next().unwrap_or_default();
    CMAKE_BACKENDS.contains(&module).then_some("CMake")
}

fn package_name(spec: &Spec, tree: &Path) -> Result<String> {
    if let Spec::Index { name, .. } = spec {
        return Ok(name.clone());
    }
    if let Some(name) = sdist::build_system(tree)?.name {
        return Ok(name);
    }
    let dir_name = tree.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(dir_name.rsplit_once('-').map_or(dir_name.clone(), |(n, _)| n.to_owned()))
}
