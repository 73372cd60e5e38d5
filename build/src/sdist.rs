//! sdists: downloaded for CPython 3.13 through the native CPython 3.13's pip (not the host's
//! Python, which may be older and see other releases), without building them, unpacked, and read for their own
//! build requirements (PEP 518).

use crate::cache::{bin_dir, downloads_dir};
use crate::error::{Error, IoContext, Result};
use crate::process::capture;
use crate::recipe::normalize_name;
use crate::spec::{ArchiveKind, archive_kind};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The requirements PEP 517 prescribes for a tree without `[build-system]` (a legacy
/// `setup.py`).
pub const LEGACY_REQUIRES: &[&str] = &["setuptools>=40.8.0", "wheel"];

fn sdist_stem(file_name: &str) -> Option<&str> {
    file_name.strip_suffix(".tar.gz").or_else(|| file_name.strip_suffix(".zip"))
}

/// The name and version an sdist's file name says (`NAME-VERSION.tar.gz`).
pub fn name_version_of(file: &Path) -> Option<(String, String)> {
    let stem = sdist_stem(file.file_name()?.to_str()?)?;
    let (name, version) = stem.rsplit_once('-')?;
    Some((name.to_owned(), version.to_owned()))
}

fn find_cached(name: &str, version: &str) -> Result<Option<PathBuf>> {
    let dir = downloads_dir();
    if !dir.is_dir() {
        return Ok(None);
    }
    let wanted = (normalize_name(name), version.to_owned());
    Ok(fs::read_dir(&dir)
        .at("read directory", &dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| name_version_of(p).is_some_and(|(n, v)| normalize_name(&n) == wanted.0 && v == wanted.1)))
}

/// The sdist fetcher run by the native CPython 3.13 (`build/python/pymode_fetch_sdist.py`).
pub const FETCHER: &str = include_str!("../python/pymode_fetch_sdist.py");

/// The sdist of `name` (at `version`, or the newest for CPython 3.13), from the download
/// cache or downloaded into it by pip's index code on `native_python`.
///
/// Not `pip download`: pip prepares an sdist's metadata before it saves the file, and for a
/// backend with no metadata hook (meson-python: numpy) that is a whole native build. The
/// fetcher asks pip's finder (its configuration, indexes, find-links, Requires-Python
/// filtering) for the best sdist and saves it unbuilt, checking the index's hash.
///
/// # Errors
///
/// When no sdist matches (the package may publish wheels only), or the download fails.
pub fn download(native_python: &Path, name: &str, version: Option<&str>) -> Result<PathBuf> {
    if let Some(v) = version
        && let Some(file) = find_cached(name, v)?
    {
        return Ok(file);
    }
    let downloads = downloads_dir();
    fs::create_dir_all(&downloads).at("create directory", &downloads)?;
    let tmp = downloads.join(format!(".download-{}-{}", normalize_name(name), std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).at("create directory", &tmp)?;
    let requirement = version.map_or_else(|| name.to_owned(), |v| format!("{name}=={v}"));
    let fetcher = bin_dir().join("pymode_fetch_sdist.py");
    let result = write_if_changed(&fetcher, FETCHER).and_then(|_| {
        let mut python = Command::new(native_python);
        python.arg(&fetcher).arg(name).arg(version.unwrap_or("-")).arg(&tmp);
        capture(&mut python, &format!("downloading an sdist of {requirement} for CPython 3.13"))
    });
    let found = result.and_then(|_| {
        fs::read_dir(&tmp)
            .at("read directory", &tmp)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().and_then(|n| n.to_str()).and_then(sdist_stem).is_some())
            .ok_or_else(|| Error::product(format!("downloading {requirement}"), "the fetcher saved no .tar.gz or .zip sdist"))
    });
    let moved = found.and_then(|file| {
        let file_name = file.file_name().map(|n| n.to_owned()).unwrap_or_default();
        let dest = downloads.join(file_name);
        fs::rename(&file, &dest).at("move into the download cache", &dest)?;
        Ok(dest)
    });
    let _ = fs::remove_dir_all(&tmp);
    moved
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).at("create directory", dir)?;
    }
    fs::write(path, text).at("write", path)
}

/// Unpacks an sdist into `dir` (which must be empty or missing) and returns the one
/// directory it holds.
pub fn unpack(archive: &Path, dir: &Path, python: &Path) -> Result<PathBuf> {
    let kind = archive_kind(archive)?;
    fs::create_dir_all(dir).at("create directory", dir)?;
    let what = format!("unpacking {}", archive.display());
    match kind {
        ArchiveKind::TarGz => capture(Command::new("tar").arg("xzf").arg(archive).arg("-C").arg(dir), &what)?,
        ArchiveKind::Zip => capture(Command::new(python).args(["-m", "zipfile", "-e"]).arg(archive).arg(dir), &what)?,
    };
    let mut dirs: Vec<PathBuf> =
        fs::read_dir(dir).at("read directory", dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    match dirs.len() {
        1 => Ok(dirs.remove(0)),
        n => Err(Error::input(archive.display().to_string(), format!("the sdist unpacked to {n} directories, not one"))),
    }
}

/// What a source tree's `pyproject.toml` says about its build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSystem {
    /// `[build-system] requires`, or [`LEGACY_REQUIRES`].
    pub requires: Vec<String>,
    /// `[build-system] build-backend`, or setuptools' legacy backend.
    pub backend: String,
    /// `[project] name`, if static.
    pub name: Option<String>,
}

/// Reads `tree/pyproject.toml` (PEP 518 and PEP 517's defaults when it or its table is
/// missing).
pub fn build_system(tree: &Path) -> Result<BuildSystem> {
    let legacy = || BuildSystem {
        requires: LEGACY_REQUIRES.iter().map(|s| s.to_string()).collect(),
        backend: "setuptools.build_meta:__legacy__".into(),
        name: None,
    };
    let path = tree.join("pyproject.toml");
    if !path.is_file() {
        if !tree.join("setup.py").is_file() {
            return Err(Error::input(tree.display().to_string(), "neither pyproject.toml nor setup.py: not a source tree"));
        }
        return Ok(legacy());
    }
    let text = fs::read_to_string(&path).at("read", &path)?;
    let doc: toml::Table =
        text.parse().map_err(|e: toml::de::Error| Error::input(path.display().to_string(), format!("not valid TOML: {}", e.message())))?;
    let name = doc.get("project").and_then(|p| p.get("name")).and_then(|n| n.as_str()).map(str::to_owned);
    let Some(system) = doc.get("build-system") else {
        return Ok(BuildSystem { name, ..legacy() });
    };
    let requires = match system.get("requires") {
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::input(path.display().to_string(), "[build-system] requires must be a list of strings"))
            })
            .collect::<Result<Vec<_>>>()?,
        // PEP 518: a [build-system] table without `requires` is an error.
        _ => return Err(Error::input(path.display().to_string(), "[build-system] has no `requires` list")),
    };
    let backend = system.get("build-backend").and_then(|b| b.as_str()).unwrap_or("setuptools.build_meta:__legacy__").to_owned();
    Ok(BuildSystem { requires, backend, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_build_requirements() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("setup.py"), "").unwrap();
        assert_eq!(build_system(dir.path()).unwrap().requires, LEGACY_REQUIRES);
        fs::write(dir.path().join("pyproject.toml"), "[project]\nname = 'x'\n[build-system]\nrequires = ['setuptools>=64', 'setuptools_scm>=8']\nbuild-backend = 'setuptools.build_meta'\n").unwrap();
        let bs = build_system(dir.path()).unwrap();
        assert_eq!(bs.requires, ["setuptools>=64", "setuptools_scm>=8"]);
        assert_eq!(bs.backend, "setuptools.build_meta");
        assert_eq!(bs.name.as_deref(), Some("x"));
        fs::write(dir.path().join("pyproject.toml"), "[build-system]\nbuild-backend = 'x'\n").unwrap();
        assert!(build_system(dir.path()).is_err());
    }

    #[test]
    fn sdist_names() {
        assert_eq!(name_version_of(Path::new("/d/ruamel.yaml.clib-0.2.15.tar.gz")), Some(("ruamel.yaml.clib".into(), "0.2.15".into())));
        assert_eq!(name_version_of(Path::new("x.whl")), None);
    }
}
