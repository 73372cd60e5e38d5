//! Path resolution: a requested path (guest or host spelling) or a NEEDED name becomes a
//! canonical host path inside one of the library roots. Two checks, both needed:
//! - lexically, before the file system is asked anything: a path whose `..` components
//!   leave every root is refused as outside, whether or not a file is there, so that a
//!   guest cannot probe which files exist outside the roots;
//! - after canonicalizing: a symlink inside a root that leads out of it is refused too.
//!
//! Messages name paths as the guest spells them ([`guest_spelling`]): a path inside a root
//! mapped at a guest prefix is shown under that prefix, never under the host directory it
//! is mapped to, so that `dl_error` (and Python's `ImportError`) does not reveal the host's
//! file system. A root without a guest prefix is one the guest reaches by host path, so its
//! paths are shown as they are.

use std::path::{Component, Path, PathBuf};

use crate::config::LibRoot;
use crate::error::{AttachError, OpenErrorKind, shown_path};

/// A root with its canonical host directory.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub(crate) canonical: PathBuf,
    /// The root as configured, made absolute but not canonical: host paths the embedder
    /// passes may spell it through a symlink.
    pub(crate) configured: PathBuf,
    pub(crate) guest: Option<String>,
}

pub(crate) fn canonical_roots(roots: &[LibRoot]) -> Result<Vec<Root>, AttachError> {
    roots
        .iter()
        .map(|r| {
            let canonical = std::fs::canonicalize(&r.host).map_err(|source| AttachError::BadRoot { path: r.host.clone(), source })?;
            let guest = r.guest.as_ref().map(|g| normalize_guest(g));
            let configured = lexical(&std::path::absolute(&r.host).unwrap_or_else(|_| canonical.clone()));
            Ok(Root { canonical, configured, guest })
        })
        .collect()
}

/// `/lib/` and `/lib` are the same prefix.
fn normalize_guest(g: &str) -> String {
    let t = g.trim_end_matches('/');
    if t.is_empty() { "/".to_owned() } else { t.to_owned() }
}

fn roots_list(roots: &[Root]) -> String {
    if roots.is_empty() {
        return "none configured".to_owned();
    }
    roots.iter().map(|r| r.guest.clone().unwrap_or_else(|| r.canonical.display().to_string())).collect::<Vec<_>>().join(", ")
}

/// `path` as the guest spells it: under the guest prefix of the mapped root it lies in (by
/// spelling: canonical or as configured, the longest match first), else as it is.
pub(crate) fn guest_spelling(roots: &[Root], path: &Path) -> String {
    let mapped = roots
        .iter()
        .filter_map(|r| {
            let guest = r.guest.as_deref()?;
            let rest = path.strip_prefix(&r.canonical).or_else(|_| path.strip_prefix(&r.configured)).ok()?;
            Some((guest, rest))
        })
        .min_by_key(|(_, rest)| rest.components().count());
    match mapped {
        Some((guest, rest)) if rest.as_os_str().is_empty() => guest.to_owned(),
        Some((guest, rest)) => format!("{}/{}", guest.trim_end_matches('/'), rest.display()),
        None => path.display().to_string(),
    }
}

/// `path` with `.` and `..` resolved by spelling alone (`a/b/../c` is `a/c`), as the
/// first, file-system-free confinement check sees it.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // `..` at the top of an absolute path stays at the top, as the kernel does.
                if !out.pop() && !out.has_root() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Checks that `candidate` is a file inside a root: first by spelling, then canonicalized.
fn confine(roots: &[Root], candidate: &Path) -> Result<PathBuf, OpenErrorKind> {
    let spelled = lexical(&std::path::absolute(candidate).map_err(OpenErrorKind::Io)?);
    if !roots.iter().any(|r| spelled.starts_with(&r.canonical) || spelled.starts_with(&r.configured)) {
        return Err(OpenErrorKind::OutsideRoots { roots: roots_list(roots) });
    }
    let canonical = std::fs::canonicalize(candidate).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => OpenErrorKind::NotFound { searched: shown_path(&guest_spelling(roots, candidate)) },
        _ => OpenErrorKind::Io(e),
    })?;
    if !roots.iter().any(|r| canonical.starts_with(&r.canonical)) {
        return Err(OpenErrorKind::OutsideRoots { roots: roots_list(roots) });
    }
    if !canonical.is_file() {
        return Err(OpenErrorKind::NotFound { searched: format!("{} (not a regular file)", guest_spelling(roots, &canonical)) });
    }
    Ok(canonical)
}

/// Resolves what the guest (or embedder) passed to `dl_open`.
///
/// An absolute path is first matched against the roots' guest prefixes (longest first) and
/// otherwise taken as a host path; a relative path is looked up in each root in order.
pub(crate) fn resolve_request(roots: &[Root], requested: &str) -> Result<PathBuf, OpenErrorKind> {
    if requested.is_empty() || requested.contains('\0') {
        return Err(OpenErrorKind::BadPath);
    }
    if roots.is_empty() {
        return Err(OpenErrorKind::OutsideRoots { roots: roots_list(roots) });
    }
    if requested.starts_with('/') {
        let mut mapped: Vec<(&Root, &str)> = roots
            .iter()
            .filter_map(|r| {
                let g = r.guest.as_deref()?;
                let rest = if g == "/" {
                    Some(requested)
                } else {
                    requested.strip_prefix(g).filter(|rest| rest.is_empty() || rest.starts_with('/'))
                }?;
                Some((r, rest))
            })
            .collect();
        // The longest guest prefix wins, as WASI preopens do.
        mapped.sort_by_key(|(r, _)| std::cmp::Reverse(r.guest.as_ref().map_or(0, String::len)));
        if let Some((root, rest)) = mapped.first() {
            return confine(roots, &root.canonical.join(rest.trim_start_matches('/')));
        }
        return confine(roots, Path::new(requested));
    }
    let mut searched = Vec::new();
    for root in roots {
        let candidate = root.canonical.join(requested);
        match confine(roots, &candidate) {
            Err(OpenErrorKind::NotFound { searched: s }) => searched.push(s),
            other => return other,
        }
    }
    Err(OpenErrorKind::NotFound { searched: searched.join(", ") })
}

/// Resolves a NEEDED entry of the library at `dependent` (canonical): RUNTIME_PATH entries
/// with `$ORIGIN` replaced, then the configured search path.
pub(crate) fn resolve_needed(
    roots: &[Root],
    dependent: &Path,
    runtime_path: &[String],
    search_path: &[PathBuf],
    name: &str,
) -> Result<PathBuf, OpenErrorKind> {
    if name.is_empty() || name.contains('\0') {
        return Err(OpenErrorKind::BadPath);
    }
    let origin = dependent.parent().unwrap_or(Path::new("/"));
    if Path::new(name).components().any(|c| matches!(c, Component::RootDir)) {
        return confine(roots, Path::new(name));
    }
    let origin_str = origin.to_string_lossy();
    let mut dirs: Vec<PathBuf> =
        runtime_path.iter().map(|p| PathBuf::from(p.replace("${ORIGIN}", &origin_str).replace("$ORIGIN", &origin_str))).collect();
    dirs.extend(search_path.iter().cloned());
    let mut searched = Vec::new();
    let mut outside = false;
    for dir in dirs {
        let candidate = dir.join(name);
        match confine(roots, &candidate) {
            Ok(p) => return Ok(p),
            Err(OpenErrorKind::NotFound { searched: s }) => searched.push(s),
            // A directory outside the roots is skipped, not fatal: a later one may hold it.
            Err(OpenErrorKind::OutsideRoots { .. }) => {
                outside = true;
                searched.push(format!("{} (outside the roots)", guest_spelling(roots, &candidate)));
            }
            Err(e) => return Err(e),
        }
    }
    if outside && searched.iter().all(|s| s.ends_with("(outside the roots)")) {
        return Err(OpenErrorKind::OutsideRoots { roots: roots_list(roots) });
    }
    if searched.is_empty() {
        searched.push("no RUNTIME_PATH and no search path".to_owned());
    }
    Err(OpenErrorKind::NotFound { searched: searched.join(", ") })
}
