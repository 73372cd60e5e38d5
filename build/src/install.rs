//! `pymode install`: requirements and their dependencies, resolved for CPython 3.13 by pip on
//! the native CPython 3.13, into a site directory for the wasm CPython. Pure-Python wheels are
//! installed as they are; a package that has extensions (only platform wheels or an sdist on
//! the index) is built from its sdist with `pymode wheel`, and the built wheel is cached.

use crate::cache::wheels_dir;
use crate::cpython::CPython;
use crate::error::{Error, IoContext, Result};
use crate::process::capture;
use crate::recipe::{Recipe, normalize_name};
use crate::spec::Spec;
use crate::stamp::Key;
use crate::wheel::{Builder, DRIVER, Scratch};
use serde::Deserialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Deserialize)]
struct Report {
    install: Vec<ReportItem>,
}

#[derive(Deserialize)]
struct ReportItem {
    metadata: Metadata,
    download_info: DownloadInfo,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    version: String,
}

#[derive(Deserialize)]
struct DownloadInfo {
    url: String,
}

/// What resolution decided for one distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A pure-Python wheel from the index, installed as it is.
    Pure {
        /// The distribution name.
        name: String,
        /// Its version.
        version: String,
    },
    /// Built from its sdist (or the local path given) with `pymode wheel`.
    Build {
        /// The distribution name.
        name: String,
        /// Its version.
        version: String,
        /// A local sdist or source tree the user named, if that is where it comes from.
        local: Option<PathBuf>,
    },
}

/// Whether a wheel file name is tagged for any platform and ABI (`py3-none-any`).
fn is_pure_wheel(file_name: &str) -> bool {
    file_name.strip_suffix(".whl").is_some_and(|stem| stem.ends_with("-none-any"))
}

/// Resolves `specs` with pip's resolver on the native CPython 3.13.
pub fn resolve(native_python: &Path, specs: &[Spec], scratch: &Path) -> Result<Vec<Plan>> {
    let report_path = scratch.join("resolution.json");
    let mut pip = Command::new(native_python);
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--dry-run", "--ignore-installed", "--report"])
        .arg(&report_path);
    pip.args(specs.iter().map(Spec::pip_argument));
    let names: Vec<String> = specs.iter().map(Spec::pip_argument).collect();
    capture(&mut pip, &format!("resolving {} for CPython 3.13 (pip)", names.join(" ")))?;
    let text = fs::read_to_string(&report_path).at("read pip's report", &report_path)?;
    let report: Report =
        serde_json::from_str(&text).map_err(|e| Error::product("resolving with pip", format!("{}: {e}", report_path.display())))?;
    Ok(report
        .install
        .into_iter()
        .map(|item| {
            let url = item.download_info.url;
            let (name, version) = (item.metadata.name, item.metadata.version);
            let file_name = url.rsplit('/').next().unwrap_or_default();
            if let Some(path) = url.strip_prefix("file://") {
                Plan::Build { name, version, local: Some(PathBuf::from(path)) }
            } else if is_pure_wheel(file_name) {
                Plan::Pure { name, version }
            } else {
                Plan::Build { name, version, local: None }
            }
        })
        .collect())
}

/// The cache key of a built wheel: what it was built with.
fn wheel_cache_dir(name: &str, version: &str, recipe: Option<&Recipe>, cpython: &CPython) -> PathBuf {
    let mut key = Key::new();
    key.update(DRIVER).update([0]);
    key.update(recipe.map_or("", |r| r.text.as_str())).update([0]);
    key.update(fs::read_to_string(crate::cache::cpython_dir().join("wasi.stamp")).unwrap_or_default()).update([0]);
    key.update(cpython.prefix.display().to_string());
    let key = key.finish();
    wheels_dir().join(format!("{}-{version}", normalize_name(name))).join(&key[..16])
}

/// The one `.whl` in `dir`, if any.
fn cached_wheel(dir: &Path) -> Option<PathBuf> {
    fs::read_dir(dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).find(|p| p.extension().is_some_and(|e| e == "whl"))
}

/// Installs `specs` and their dependencies into `target`. Everything goes into a scratch
/// directory first and moves into `target` only when all of it is there, so a failure leaves
/// `target` as it was. Returns what was installed.
pub fn install(builder: &Builder, specs: &[Spec], target: &Path) -> Result<Vec<Plan>> {
    let scratch = Scratch::new("install")?;
    let plans = resolve(&builder.cpython.native_python, specs, scratch.path())?;
    let mut wheels = Vec::new();
    let mut pure = Vec::new();
    for plan in &plans {
        match plan {
            Plan::Pure { name, version } => pure.push(format!("{name}=={version}")),
            Plan::Build { name, version, local } => {
                let recipe = Recipe::builtin(name)?;
                let cache = wheel_cache_dir(name, version, recipe.as_ref(), &builder.cpython);
                if let Some(wheel) = cached_wheel(&cache) {
                    println!("  {name} {version}: {} (cached)", wheel.display());
                    wheels.push(wheel);
                    continue;
                }
                let spec = match local {
                    Some(path) if path.is_dir() => Spec::SourceDir(path.clone()),
                    Some(path) => Spec::Sdist(path.clone()),
                    None => Spec::Index { name: name.clone(), version: Some(version.clone()) },
                };
                let built = builder
                    .wheel(&spec, recipe.as_ref(), &cache)
                    .map_err(|e| Error::product(format!("building {name} {version} for wasm32-wasi"), e.to_string()))?;
                println!("  {name} {version}: built {} ({} extension modules)", built.wheel.display(), built.extensions.len());
                wheels.push(built.wheel);
            }
        }
    }
    let staged = scratch.path().join("site");
    let mut pip = Command::new(&builder.cpython.native_python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--python-version",
        "3.13",
        "--implementation",
        "cp",
    ])
    .args(["--abi", "cp313", "--abi", "abi3", "--abi", "none", "--platform", crate::pins::WHEEL_PLATFORM, "--target"])
    .arg(&staged)
    .args(&pure)
    .args(&wheels);
    capture(&mut pip, &format!("installing into {}", target.display()))?;
    fix_target_records(&staged)?;
    move_into(&staged, target)?;
    Ok(plans)
}

/// Makes the `RECORD` of every distribution `pip install --target DIR` put in `site` name
/// only files inside it. pip installs into a scratch prefix and moves the site directory and
/// `bin` into `DIR`, but leaves the console scripts recorded as `../../bin/NAME` (the old
/// prefix's layout). Under WASI such a path leaves the mount: `Path.exists()` on it raises
/// `PermissionError` instead of answering false, and `importlib.metadata`'s `files` (pytest's
/// plugin loading) ends with it. `../../bin/NAME` becomes `bin/NAME`, where pip moved the
/// script; any other entry outside `site` is dropped.
///
/// # Errors
///
/// Reading or rewriting a `RECORD` fails.
pub fn fix_target_records(site: &Path) -> Result<()> {
    for entry in fs::read_dir(site).at("read directory", site)? {
        let dir = entry.at("read directory", site)?.path();
        let record = dir.join("RECORD");
        if dir.extension().is_none_or(|e| e != "dist-info") || !record.is_file() {
            continue;
        }
        let text = fs::read_to_string(&record).at("read", &record)?;
        let fixed = records_inside_site(&text);
        if fixed != text {
            fs::write(&record, fixed).at("write", &record)?;
        }
    }
    Ok(())
}

/// `RECORD` text with `../../bin/` entries moved to `bin/` and other `../` entries dropped.
fn records_inside_site(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some(script) = line.strip_prefix("../../bin/") {
            out.push_str("bin/");
            out.push_str(script);
        } else if line.starts_with("../") {
            continue;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Moves every entry of `from` into `to` (replacing what is there by the same name).
fn move_into(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).at("create directory", to)?;
    for entry in fs::read_dir(from).at("read directory", from)? {
        let entry = entry.at("read directory", from)?;
        let dest = to.join(entry.file_name());
        if dest.is_dir() && !dest.is_symlink() {
            fs::remove_dir_all(&dest).at("replace", &dest)?;
        } else if dest.exists() {
            fs::remove_file(&dest).at("replace", &dest)?;
        }
        if fs::rename(entry.path(), &dest).is_err() {
            // Another file system: copy, then the scratch copy goes with the scratch dir.
            capture(Command::new("cp").arg("-a").arg(entry.path()).arg(&dest), &format!("copying into {}", to.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_name_only_files_inside_the_site() {
        let text =
            "../../bin/hypothesis,sha256=abc,252\nhypothesis/__init__.py,sha256=def,10\n../../share/x,,\nhypothesis-1.dist-info/RECORD,,\n";
        assert_eq!(
            records_inside_site(text),
            "bin/hypothesis,sha256=abc,252\nhypothesis/__init__.py,sha256=def,10\nhypothesis-1.dist-info/RECORD,,\n"
        );
        let site = tempfile::tempdir().unwrap();
        let info = site.path().join("hypothesis-1.dist-info");
        fs::create_dir(&info).unwrap();
        fs::write(info.join("RECORD"), text).unwrap();
        fix_target_records(site.path()).unwrap();
        assert!(fs::read_to_string(info.join("RECORD")).unwrap().starts_with("bin/hypothesis,"));
    }

    #[test]
    fn pure_wheels_are_told_by_their_tags() {
        assert!(is_pure_wheel("idna-3.10-py3-none-any.whl"));
        assert!(is_pure_wheel("six-1.16.0-py2.py3-none-any.whl"));
        assert!(!is_pure_wheel("lz4-4.4.5-cp313-cp313-manylinux_2_17_x86_64.whl"));
        assert!(!is_pure_wheel("lz4-4.4.5.tar.gz"));
    }
}
