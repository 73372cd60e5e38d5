//! What `pymode wheel` and `pymode install` are asked to build: a SPEC on the command line.

use crate::error::{Error, IoContext, Result};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One SPEC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `NAME` or `NAME==VERSION`: an sdist from the package index, resolved for CPython 3.13.
    Index {
        /// The distribution name as given.
        name: String,
        /// The version, if pinned.
        version: Option<String>,
    },
    /// An sdist archive on disk.
    Sdist(PathBuf),
    /// An unpacked source tree (with a `pyproject.toml` or a `setup.py`).
    SourceDir(PathBuf),
}

/// The archive formats an sdist comes in, told by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `.tar.gz` (PEP 625's only format, and most older uploads).
    TarGz,
    /// `.zip` (some older uploads).
    Zip,
}

/// The archive kind of `path`, or an error saying it is not an sdist archive.
pub fn archive_kind(path: &Path) -> Result<ArchiveKind> {
    let mut magic = [0u8; 4];
    let mut file = fs::File::open(path).at("open", path)?;
    let n = file.read(&mut magic).at("read", path)?;
    match &magic[..n] {
        [0x1f, 0x8b, ..] => Ok(ArchiveKind::TarGz),
        [b'P', b'K', 3, 4] => Ok(ArchiveKind::Zip),
        _ => Err(Error::input(path.display().to_string(), "not an sdist archive (neither gzip-compressed tar nor zip)")),
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_version(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_'))
}

impl Spec {
    /// Parses a SPEC: an existing path is an sdist or a source directory; anything else must
    /// be `NAME` or `NAME==VERSION`.
    pub fn parse(spec: &str) -> Result<Spec> {
        let path = Path::new(spec);
        if path.is_dir() {
            if !path.join("pyproject.toml").is_file() && !path.join("setup.py").is_file() {
                return Err(Error::input(spec, "a directory with neither pyproject.toml nor setup.py is not a source tree"));
            }
            return Ok(Spec::SourceDir(path.to_path_buf()));
        }
        if path.is_file() {
            archive_kind(path)?;
            return Ok(Spec::Sdist(path.to_path_buf()));
        }
        if spec.contains('/') || spec.ends_with(".tar.gz") || spec.ends_with(".zip") {
            return Err(Error::input(spec, "no such file or directory"));
        }
        let (name, version) = match spec.split_once("==") {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (spec.trim(), None),
        };
        if !is_name(name) || version.is_some_and(|v| !is_version(v)) {
            return Err(Error::input(spec, "not a package: expected NAME, NAME==VERSION, an sdist file or a source directory"));
        }
        Ok(Spec::Index { name: name.to_owned(), version: version.map(str::to_owned) })
    }

    /// The requirement or path as pip takes it.
    pub fn pip_argument(&self) -> String {
        match self {
            Spec::Index { name, version: Some(v) } => format!("{name}=={v}"),
            Spec::Index { name, version: None } => name.clone(),
            Spec::Sdist(p) | Spec::SourceDir(p) => p.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_pins() {
        assert_eq!(Spec::parse("lz4").unwrap(), Spec::Index { name: "lz4".into(), version: None });
        assert_eq!(
            Spec::parse("ruamel.yaml.clib==0.2.15").unwrap(),
            Spec::Index { name: "ruamel.yaml.clib".into(), version: Some("0.2.15".into()) }
        );
    }

    #[test]
    fn refuses_what_names_no_package() {
        for bad in ["", "==1.0", "lz4>=1", "a b", "-x", "./missing.tar.gz", "dir/"] {
            let err = Spec::parse(bad).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn a_file_that_is_no_archive_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x-1.0.tar.gz");
        fs::write(&file, "not gzip").unwrap();
        let err = Spec::parse(file.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("not an sdist archive"), "{err}");
    }
}
