//! The one error type of the build library. Every variant prints as one line that says what
//! failed and where (a file, a command and its log, a package): the `pymode` binary prints
//! exactly that line.

use std::io;
use std::path::{Path, PathBuf};

/// A failure of a build step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, as a verb phrase ("read", "create directory").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An external program could not be started.
    #[error("cannot start {program} for {what}: {source}")]
    Spawn {
        /// What the program was run for.
        what: String,
        /// The program.
        program: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An external program ran and failed.
    #[error("{what} failed ({status}){}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(), log.as_deref().map(|l| format!(" (log: {})", l.display())).unwrap_or_default())]
    Command {
        /// What the program was run for, naming the package or library.
        what: String,
        /// How it ended (`exit status: 1`).
        status: String,
        /// The line of its output that says why, if one could be picked out.
        reason: Option<String>,
        /// Where its whole output is.
        log: Option<PathBuf>,
    },
    /// The toolchain is not provisioned or not the pinned one.
    #[error(transparent)]
    Toolchain(#[from] crate::toolchain::ToolchainError),
    /// An input (a SPEC, a recipe, an sdist, a pyproject) is not what it must be.
    #[error("{what}: {problem}")]
    Input {
        /// The input, as the user wrote it or as a path.
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A step finished but its product is not there or not right.
    #[error("{step}: {problem}")]
    Product {
        /// The step.
        step: String,
        /// What is missing or wrong.
        problem: String,
    },
}

/// The build library's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Input`].
    pub fn input(what: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Input { what: what.into(), problem: problem.into() }
    }

    /// An [`Error::Product`].
    pub fn product(step: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Product { step: step.into(), problem: problem.into() }
    }
}

/// Attaches the path and the action to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`Error::Io`].
    fn at(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io { action, path: path.to_path_buf(), source })
    }
}
