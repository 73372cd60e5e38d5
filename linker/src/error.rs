//! The linker's one error type. `Display` gives lld's wording without the `pymode-ld: error: `
//! prefix, which the CLI adds, so that messages read like wasm-ld's:
//! `libx.a(y.o): undefined symbol: foo`.

use std::path::PathBuf;

/// Everything that can stop a link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A file named on the command line (or found by `-l`) could not be read.
    #[error("cannot open {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `-lNAME` found neither `libNAME.a` nor `libNAME.so` in any `-L` directory.
    #[error("unable to find library -l{0}")]
    LibraryNotFound(String),
    /// An input is not wasm, or is malformed (the reader's message names file, section, byte).
    #[error("{0}")]
    Read(#[from] pymode_abi::Error),
    /// An input is not an object, an archive or a side module.
    #[error("{file}: unknown file type")]
    UnknownFileType {
        /// The input's display name.
        file: String,
    },
    /// An archive that `object` cannot read.
    #[error("{file}: malformed archive: {message}")]
    BadArchive {
        /// The archive.
        file: String,
        /// The archive reader's message.
        message: String,
    },
    /// A `.wasm`/`.so` given as an input that is a linked module without `dylink.0`.
    #[error("{file}: not a relocatable object or a side module (no linking or dylink.0 section)")]
    NotLinkable {
        /// The input's display name.
        file: String,
    },
    /// Two strong definitions of one symbol.
    #[error("duplicate symbol: {name}\n>>> defined in {first}\n>>> defined in {second}")]
    DuplicateSymbol {
        /// The symbol.
        name: String,
        /// Where it was defined first.
        first: String,
        /// Where it was defined again.
        second: String,
    },
    /// One name used as two kinds of symbol (a function and data).
    #[error("symbol type mismatch: {name}\n>>> defined as {first_kind} in {first}\n>>> defined as {second_kind} in {second}")]
    SymbolKindMismatch {
        /// The symbol.
        name: String,
        /// Its first kind.
        first_kind: &'static str,
        /// Where that was.
        first: String,
        /// The conflicting kind.
        second_kind: &'static str,
        /// Where that was.
        second: String,
    },
    /// A symbol that must be defined in this module is not.
    #[error("{file}: undefined symbol: {name}")]
    UndefinedSymbol {
        /// The file that needs it (or `--export` for a forced export).
        file: String,
        /// The symbol.
        name: String,
    },
    /// A non-PIC relocation, which would need an absolute address at link time.
    #[error("{file}: relocation {kind} cannot be used against symbol `{symbol}`; recompile with -fPIC")]
    NotPic {
        /// The object.
        file: String,
        /// The `R_WASM_*` name.
        kind: &'static str,
        /// The symbol the relocation names.
        symbol: String,
    },
    /// A relocation in a non-PIC function body that the PIC rewrite cannot express (see
    /// [`crate::rewrite`]): named precisely so that the object can be rebuilt with `-fPIC`.
    #[error(
        "{file}: cannot rewrite function `{function}` to position-independent code: relocation {kind} against `{symbol}` at body offset 0x{offset:x}: {reason}"
    )]
    PicRewrite {
        /// The object.
        file: String,
        /// The function's symbol name (or `#N`, its index among the object's functions).
        function: String,
        /// The `R_WASM_*` name.
        kind: &'static str,
        /// The symbol the relocation names.
        symbol: String,
        /// Offset of the site from the body's start (after the size prefix).
        offset: usize,
        /// Why.
        reason: String,
    },
    /// A relocation kind we do not handle at this place.
    #[error("{file}: unsupported relocation {kind} in {section} at offset 0x{offset:x} against symbol `{symbol}`")]
    UnsupportedRelocation {
        /// The object.
        file: String,
        /// The `R_WASM_*` name.
        kind: &'static str,
        /// The section it patches (`code` or `data`).
        section: &'static str,
        /// The site's offset in that section's contents, as the `reloc.*` entry (and
        /// `pymode-readobj`) gives it.
        offset: u32,
        /// The symbol.
        symbol: String,
    },
    /// A relocation's value does not fit its site.
    #[error("{file}: relocation {kind} in {section} at offset 0x{offset:x} against `{symbol}` is out of range: {value}")]
    RelocationOverflow {
        /// The object.
        file: String,
        /// The `R_WASM_*` name.
        kind: &'static str,
        /// The section it patches (`code` or `data`).
        section: &'static str,
        /// The site's offset in that section's contents, as the `reloc.*` entry (and
        /// `pymode-readobj`) gives it.
        offset: u32,
        /// The symbol.
        symbol: String,
        /// The value that did not fit.
        value: i64,
    },
    /// The objects' `target_features` sections disagree (see [`crate::features`]).
    #[error("{0}")]
    FeatureConflict(String),
    /// Input that is valid wasm but uses something this linker does not support yet.
    #[error("{file}: {what} is not supported yet")]
    Unsupported {
        /// The object.
        file: String,
        /// What.
        what: String,
    },
    /// Memory or table layout exceeded 32 bits.
    #[error("{0}: too large for wasm32")]
    TooLarge(&'static str),
    /// A broken invariant between the linker's phases (an index or address one phase should
    /// have decided for the next): a linker bug, reported rather than panicked on. No input
    /// file is to blame, so none is named.
    #[error("internal error in {phase}: {what}")]
    Internal {
        /// The phase that found it (`layout`, `rewrite`, `synth`, `patch`, `emit`).
        phase: &'static str,
        /// What was missing or inconsistent.
        what: String,
    },
    /// Our own output failed validation: a linker bug, reported rather than written.
    #[error("internal error: output does not validate: {0}")]
    InvalidOutput(String),
    /// A command-line problem.
    #[error("{0}")]
    Usage(String),
    /// The output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl LinkError {
    /// A [`LinkError::Internal`] found by `phase`.
    pub(crate) fn internal(phase: &'static str, what: impl Into<String>) -> Self {
        LinkError::Internal { phase, what: what.into() }
    }
}

/// `Result` with [`LinkError`].
pub type Result<T, E = LinkError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::LinkError;

    #[test]
    fn relocation_errors_name_the_site_offset() {
        let overflow = LinkError::RelocationOverflow {
            file: "a.o".into(),
            kind: "R_WASM_MEMORY_ADDR_LOCREL_I32",
            section: "data",
            offset: 0x1c,
            symbol: "x".into(),
            value: -2147483748,
        };
        assert_eq!(
            overflow.to_string(),
            "a.o: relocation R_WASM_MEMORY_ADDR_LOCREL_I32 in data at offset 0x1c against `x` is out of range: -2147483748"
        );
        let unsupported = LinkError::UnsupportedRelocation {
            file: "a.o".into(),
            kind: "R_WASM_TABLE_NUMBER_LEB",
            section: "code",
            offset: 0x7,
            symbol: "t".into(),
        };
        assert_eq!(unsupported.to_string(), "a.o: unsupported relocation R_WASM_TABLE_NUMBER_LEB in code at offset 0x7 against symbol `t`");
    }

    #[test]
    fn internal_errors_name_the_phase_and_no_file() {
        assert_eq!(LinkError::internal("synth", "no table slot for `f`").to_string(), "internal error in synth: no table slot for `f`");
    }
}
