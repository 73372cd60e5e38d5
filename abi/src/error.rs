//! The one error type of the contract crate.
//!
//! Every error says where it happened: the file (as `foo.o` or `libx.a(bar.o)`), the section
//! (when there is one) and the byte offset in the file. Malformed input gives one of these and
//! never panics.

use std::fmt;

/// Where in an input an error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The input's display name: `foo.o`, `libx.a(bar.o)`, `x.so`.
    pub file: String,
    /// The section, by its name (`code`, `linking`, `reloc.CODE`, `dylink.0`), if known.
    pub section: Option<String>,
    /// Byte offset from the start of the file.
    pub offset: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(section) = &self.section {
            write!(f, ": section {section}")?;
        }
        write!(f, " at byte 0x{:x}", self.offset)
    }
}

/// What went wrong. Paired with a [`Location`] in [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The bytes do not start with the wasm magic and version 1.
    #[error("not a WebAssembly module (bad magic or version)")]
    NotWasm,
    /// The binary is malformed: truncated, a bad LEB, an invalid opcode. The message is
    /// wasmparser's.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The `linking` section has a version other than 2.
    #[error("unsupported linking section version {0} (expected 2)")]
    LinkingVersion(u32),
    /// A relocation type byte that Linking.md does not define.
    #[error("unknown relocation type {0}")]
    UnknownRelocationType(u8),
    /// A relocation names a symbol (or type) index that does not exist.
    #[error("relocation {kind} refers to {what} index {index}, but there are only {count}")]
    RelocationIndexOutOfRange {
        /// The relocation's R_WASM name.
        kind: &'static str,
        /// `symbol` or `type`.
        what: &'static str,
        /// The index in the relocation entry.
        index: u32,
        /// How many there are.
        count: usize,
    },
    /// A relocation's patch site does not lie inside the section it relocates.
    #[error("relocation {kind} at offset 0x{site:x} (+{width} bytes) is past the end of the target section (0x{len:x} bytes)")]
    RelocationOffsetOutOfRange {
        /// The relocation's R_WASM name.
        kind: &'static str,
        /// Offset of the site within the target section's contents.
        site: u64,
        /// Bytes patched.
        width: usize,
        /// Length of the target section's contents.
        len: usize,
    },
    /// A `reloc.*` section names a section index that does not exist or comes after it.
    #[error("relocation section targets section index {0}, which does not precede it")]
    RelocationTargetSection(u32),
    /// A symbol refers to an entity (function, global, segment, ...) index that does not exist.
    #[error("symbol {symbol} refers to {what} index {index}, but there are only {count}")]
    SymbolTargetOutOfRange {
        /// The symbol's index in the symbol table.
        symbol: u32,
        /// `function`, `global`, `table`, `tag`, `data segment`, `section`.
        what: &'static str,
        /// The referenced index.
        index: u32,
        /// How many there are.
        count: usize,
    },
    /// A function (imported or defined) whose type index is not in the type section.
    #[error("function {function} has type index {index}, but there are only {count} types")]
    FunctionTypeOutOfRange {
        /// The function index.
        function: u32,
        /// Its type index.
        index: u32,
        /// How many types there are.
        count: usize,
    },
    /// A defined data symbol that reaches past the end of its segment.
    #[error("data symbol {name} (offset {offset}, size {size}) reaches past its segment of {segment_len} bytes")]
    DataSymbolOutOfSegment {
        /// The symbol's name.
        name: String,
        /// Offset in the segment.
        offset: u32,
        /// Size in bytes.
        size: u32,
        /// The segment's size.
        segment_len: usize,
    },
    /// Init functions, comdats or segment info name a symbol or segment that does not exist,
    /// or a symbol of the wrong kind.
    #[error("{0}")]
    BadLinkingReference(String),
    /// The `linking` segment info lists a different number of segments than the data section.
    #[error("segment info describes {info} segments, but the data section has {data}")]
    SegmentCountMismatch {
        /// Entries in the segment info.
        info: usize,
        /// Segments in the data section.
        data: usize,
    },
    /// `dylink.0` is present but is not the first section.
    #[error("dylink.0 must be the first section")]
    Dylink0NotFirst,
    /// More than one `dylink.0` section.
    #[error("more than one dylink.0 section")]
    DuplicateDylink0,
    /// More than one `linking` section (a second one would silently replace the first's
    /// symbol table).
    #[error("more than one linking section")]
    DuplicateLinking,
    /// A `dylink.0` subsection appears twice.
    #[error("dylink.0 subsection {0} appears twice")]
    DuplicateDylink0Subsection(u8),
    /// A memory or table alignment exponent too large to mean anything (2^32 or more).
    #[error("dylink.0 {what} alignment 2^{exponent} is out of range")]
    AlignmentOutOfRange {
        /// `memory` or `table`.
        what: &'static str,
        /// The exponent.
        exponent: u32,
    },
}

/// An error reading a wasm input, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct Error {
    /// Where.
    pub location: Location,
    /// What.
    pub kind: ErrorKind,
}

impl Error {
    /// An error of `kind` at `offset` in `file`, inside `section` if given.
    pub fn new(file: &str, section: Option<&str>, offset: usize, kind: ErrorKind) -> Self {
        Error { location: Location { file: file.to_owned(), section: section.map(str::to_owned), offset }, kind }
    }

    /// Converts a wasmparser error, keeping its offset.
    pub fn from_parser(file: &str, section: Option<&str>, err: &wasmparser::BinaryReaderError) -> Self {
        Self::new(file, section, err.offset(), ErrorKind::Malformed(err.message().to_owned()))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
