//! Isolated build environments (PEP 518): a venv of the native CPython 3.13 per set of build
//! requirements, holding exactly the sdist's own `[build-system] requires` (plus what its
//! backend asks for and a recipe adds). Made once per set and reused by every build that
//! needs the same set.

use crate::cache::build_envs_dir;
use crate::error::{IoContext, Result};
use crate::process::capture;
use crate::stamp::{self, Key};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The requirement set, sorted and without duplicates: the cache key's input.
pub fn requirement_set(requirements: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = requirements.iter().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
    set.into_iter().collect()
}

/// The environment's directory for a requirement set.
pub fn env_dir(native_python: &Path, requirements: &[String]) -> PathBuf {
    let mut key = Key::new();
    key.update(native_python.display().to_string()).update([0]);
    for r in requirement_set(requirements) {
        key.update(r).update([0]);
    }
    let key = key.finish();
    build_envs_dir().join(&key[..16])
}

/// The python of the environment with `requirements`, made if missing.
pub fn ensure(native_python: &Path, requirements: &[String]) -> Result<PathBuf> {
    let set = requirement_set(requirements);
    let dir = env_dir(native_python, &set);
    let python = dir.join("bin").join("python");
    let stamp_file = dir.join("pymode-requirements.txt");
    let wanted = set.join("\n");
    let root = build_envs_dir();
    fs::create_dir_all(&root).at("create directory", &root)?;
    // Two builds needing the same set make it once.
    let lock_path = dir.with_extension("lock");
    let lock = File::create(&lock_path).at("create", &lock_path)?;
    lock.lock().at("lock", &lock_path)?;
    if stamp::is_current(&stamp_file, &wanted, std::slice::from_ref(&python)) {
        return Ok(python);
    }
    println!("  build environment {} for: {}", dir.display(), set.join(" "));
    let _ = fs::remove_dir_all(&dir);
    // Without its own pip: the native CPython's pip installs into it (`--python`), which saves
    // bootstrapping a pip per environment (a third of the cold cost); builds do not need one.
    let made = capture(
        Command::new(native_python).args(["-m", "venv", "--without-pip"]).arg(&dir),
        &format!("creating the build environment {}", dir.display()),
    )
    .and_then(|_| {
        if set.is_empty() {
            return Ok(String::new());
        }
        capture(
            Command::new(native_python)
                .args(["-m", "pip", "--python"])
                .arg(&python)
                .args(["install", "--disable-pip-version-check", "--quiet", "--prefer-binary"])
                .args(&set),
            &format!("installing the build requirements {}", set.join(" ")),
        )
    });
    if let Err(e) = made {
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    stamp::write(&stamp_file, &wanted)?;
    Ok(python)
}
