//! `cargo xtask lint`: the checks CI runs before the test suites: `cargo fmt --check` (the
//! style in `rustfmt.toml`) and clippy with every warning an error (the lints in the
//! workspace `Cargo.toml`), over every crate and target, the fuzz crate included.

use crate::{cargo, run_status};
use anyhow::Result;

/// `cargo fmt --all --check`.
pub fn fmt_check() -> Result<()> {
    run_status(cargo().args(["fmt", "--all", "--check"]))
}

/// `cargo clippy --workspace --all-targets -- -D warnings`.
pub fn clippy() -> Result<()> {
    run_status(cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]))
}
