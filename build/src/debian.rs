//! Source code from Debian's source packages (`apt-get source`): the CPython release and the
//! C libraries (zlib, libyaml) are the ones Debian ships and patches, fetched through the
//! machine's own apt configuration.

use crate::error::{Error, IoContext, Result};
use crate::process::capture;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const APT_SOURCES_ENTRY: &str = "/etc/apt/sources.list.d/pymode-cpython-src.sources";

/// The upstream `.orig.tar.*` tarball of the Debian source package `spec` (`name` or
/// `name=version`) in `dir`: the one already there (an earlier download), or else downloaded
/// with `apt-get source`, after adding a `deb-src` entry derived from the machine's own apt
/// sources if there is none.
pub fn source(spec: &str, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).at("create directory", dir)?;
    if let Some(orig) = find_orig(dir)? {
        return Ok(orig);
    }
    if !Path::new(APT_SOURCES_ENTRY).is_file() {
        let uris = debian_uris()?;
        // Debian's trixie carries python3.13 and zlib 1.3.1; the machine's own mirror serves them.
        let entry = format!(
            "Types: deb-src\nURIs: {uris}\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
        fs::write(APT_SOURCES_ENTRY, entry).at("write (run as root)", Path::new(APT_SOURCES_ENTRY))?;
    }
    capture(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
    capture(Command::new("apt-get").args(["source", "--download-only", spec]).current_dir(dir), &format!("apt-get source {spec}"))?;
    find_orig(dir)?.ok_or_else(|| Error::product(format!("apt-get source {spec}"), format!("no .orig.tar.* tarball in {}", dir.display())))
}

/// The `.orig.tar.*` tarball (not its `.asc` signature) in `dir`, if any.
fn find_orig(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(fs::read_dir(dir)
        .at("read directory", dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".orig.tar.") && !n.ends_with(".asc"))))
}

/// The URIs of the machine's Debian archive, from its deb822 sources file or sources.list.
fn debian_uris() -> Result<String> {
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list.d/debian.sources") {
        // The first stanza is the main archive; later ones are security and updates.
        if let Some(uris) = text.lines().find_map(|l| l.strip_prefix("URIs:")) {
            return Ok(uris.trim().to_owned());
        }
    }
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        for line in text.lines() {
            let mut words = line.split_whitespace().filter(|w| !w.starts_with('['));
            if words.next() == Some("deb")
                && let Some(uri) = words.next()
            {
                return Ok(uri.to_owned());
            }
        }
    }
    Err(Error::input("/etc/apt/sources.list.d/debian.sources, /etc/apt/sources.list", "no Debian archive found"))
}

/// Makes sure the build machine has `program`, installing Debian's `package` with `apt-get`
/// when it is missing (idempotent: a machine that has it is left alone).
///
/// # Errors
///
/// When `apt-get install` fails, or the program is still not on `PATH` after it.
pub fn ensure_host_program(program: &str, package: &str) -> Result<()> {
    let found = |p: &str| std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()));
    if found(program) {
        return Ok(());
    }
    capture(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
    capture(
        Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends", package]).env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("apt-get install {package} (for {program})"),
    )?;
    if found(program) {
        Ok(())
    } else {
        Err(Error::product(format!("apt-get install {package}"), format!("{program} is still not on PATH")))
    }
}
