//! Phase 1: read the inputs.
//!
//! Files are read whole ([`read_files`]), then parsed into [`Object`]s that borrow those bytes
//! ([`load`]). Archive members are loaded lazily, like lld does: only a member that defines a
//! symbol some loaded object references (strongly) and nothing defines yet is pulled in, and
//! that repeats until nothing changes. Side modules given as inputs become `NEEDED` entries
//! and define the names they export.

use crate::error::{LinkError, Result};
use crate::ids::FileId;
use crate::options::{InputSpec, Options};
use object::read::archive::{ArchiveFile, ArchiveOffset};
use pymode_abi::object::{Object, SymbolKind};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use wasmparser::ExternalKind;

/// A file named on the command line, read into memory.
#[derive(Debug)]
pub struct InputFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A side module given as an input: it is loaded first at run time and defines symbols.
#[derive(Debug)]
pub struct SharedLibrary<'a> {
    /// The name recorded in `NEEDED`: the file name.
    pub needed_name: String,
    /// The display name for messages.
    pub display: String,
    /// What it exports, by kind.
    pub exports: Vec<(&'a str, SymbolKind)>,
}

/// Everything that takes part in the link.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// Relocatable objects, in link order: command-line objects, and archive members in the
    /// order they were pulled in.
    pub objects: Vec<Object<'a>>,
    /// Side modules given as inputs.
    pub shared: Vec<SharedLibrary<'a>>,
}

impl<'a> Inputs<'a> {
    /// The objects with their ids, in link order.
    pub fn enumerate_files(&self) -> impl Iterator<Item = (FileId, &Object<'a>)> + '_ {
        // ok: load() refused more objects than a FileId can number.
        self.objects.iter().enumerate().map(|(i, obj)| (FileId(i as u32), obj))
    }

    /// The object `file` names.
    pub fn object(&self, file: FileId) -> Option<&Object<'a>> {
        self.objects.get(file.as_usize())
    }

    /// The display name of `file`, for messages (empty for an id that names no object).
    pub fn file_name(&self, file: FileId) -> String {
        self.object(file).map_or_else(String::new, |o| o.name.clone())
    }
}

/// Reads every input file, resolving `-l` against the `-L` directories.
///
/// # Errors
/// A file that cannot be read, or a library that is not found.
pub fn read_files(opts: &Options) -> Result<Vec<InputFile>> {
    let mut files = Vec::with_capacity(opts.inputs.len());
    for spec in &opts.inputs {
        let path = match spec {
            InputSpec::File(path) => path.clone(),
            InputSpec::Library(name) => find_library(name, &opts.search_paths)?,
        };
        let bytes = std::fs::read(&path).map_err(|source| LinkError::Io { path: path.clone(), source })?;
        files.push(InputFile { path, bytes });
    }
    Ok(files)
}

/// `libNAME.so` before `libNAME.a` in each directory, as lld prefers shared libraries.
fn find_library(name: &str, dirs: &[PathBuf]) -> Result<PathBuf> {
    // `-l:file.a` names a file exactly.
    let candidates: Vec<String> = match name.strip_prefix(':') {
        Some(exact) => vec![exact.to_owned()],
        None => vec![format!("lib{name}.so"), format!("lib{name}.a")],
    };
    for dir in dirs {
        for candidate in &candidates {
            let path = dir.join(candidate);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    Err(LinkError::LibraryNotFound(name.to_owned()))
}

/// The magic of a Unix `ar` archive.
const AR_MAGIC: &[u8] = b"!<arch>\n";
const WASM_MAGIC: &[u8] = b"\0asm";

/// An archive whose members have not all been loaded.
struct LazyArchive<'a> {
    display: String,
    archive: ArchiveFile<'a>,
    bytes: &'a [u8],
    /// Defined global names → the member that defines them.
    index: HashMap<Vec<u8>, MemberKey<'a>>,
    /// Members already loaded, by where their data starts.
    loaded: HashSet<u64>,
}

/// How the archive index finds a member.
#[derive(Clone, Copy)]
enum MemberKey<'a> {
    /// From the archive's symbol table: the member header's offset.
    Offset(ArchiveOffset),
    /// Found by reading every member (no symbol table): its name, data and data offset.
    Read { name: &'a [u8], data: &'a [u8], start: u64 },
}

/// Parses the files: objects now, archive members as undefined symbols need them.
///
/// # Errors
/// A malformed object, archive or side module, or a file of another kind.
pub fn load(files: &[InputFile]) -> Result<Inputs<'_>> {
    let mut inputs = Inputs { objects: Vec::new(), shared: Vec::new() };
    let mut archives = Vec::new();
    // Parsing dominates reading: do the wasm files in parallel, then classify in order.
    let refs: Vec<&InputFile> = files.iter().collect();
    let parsed = crate::parallel::map(&refs, 2, |&file| {
        file.bytes.starts_with(WASM_MAGIC).then(|| Object::parse(&file.path.display().to_string(), &file.bytes))
    });
    for (file, parsed) in files.iter().zip(parsed) {
        let display = file.path.display().to_string();
        if file.bytes.starts_with(AR_MAGIC) {
            archives.push(open_archive(display, &file.bytes)?);
        } else if let Some(obj) = parsed {
            let obj = obj?;
            if obj.is_relocatable() {
                inputs.objects.push(obj);
            } else if obj.dylink0.is_some() {
                inputs.shared.push(shared_library(&file.path, display, &obj));
            } else {
                return Err(LinkError::NotLinkable { file: display });
            }
        } else {
            return Err(LinkError::UnknownFileType { file: display });
        }
    }
    pull_archive_members(&mut inputs, &mut archives)?;
    // Every later phase numbers the objects with a FileId.
    if u32::try_from(inputs.objects.len()).is_err() {
        return Err(LinkError::TooLarge("input count"));
    }
    Ok(inputs)
}

fn shared_library<'a>(path: &Path, display: String, obj: &Object<'a>) -> SharedLibrary<'a> {
    let needed_name = path.file_name().map_or_else(|| display.clone(), |n| n.to_string_lossy().into_owned());
    let exports = obj
        .exports
        .iter()
        .filter_map(|e| match e.kind {
            ExternalKind::Func | ExternalKind::FuncExact => Some((e.name, SymbolKind::Function)),
            // A side module exports data symbols as i32 globals holding offsets.
            ExternalKind::Global => Some((e.name, SymbolKind::Data)),
            _ => None,
        })
        .collect();
    SharedLibrary { needed_name, display, exports }
}

fn open_archive(display: String, bytes: &[u8]) -> Result<LazyArchive<'_>> {
    let bad = |e: object::read::Error| LinkError::BadArchive { file: display.clone(), message: e.to_string() };
    let archive = ArchiveFile::parse(bytes).map_err(bad)?;
    if archive.is_thin() {
        return Err(LinkError::Unsupported { file: display, what: "a thin archive".into() });
    }
    let mut index = HashMap::new();
    match archive.symbols().map_err(bad)? {
        Some(symbols) => {
            for symbol in symbols {
                let symbol = symbol.map_err(bad)?;
                // The first member that defines a name wins, as in lld.
                index.entry(symbol.name().to_vec()).or_insert(MemberKey::Offset(symbol.offset()));
            }
        }
        None => {
            // No symbol index (an archive made without `ranlib`): read every member's symbol
            // table instead.
            for member in archive.members() {
                let member = member.map_err(bad)?;
                let data = member.data(bytes).map_err(bad)?;
                let name = member_display(&display, member.name());
                let obj = Object::parse(&name, data)?;
                for sym in obj.symbols.iter().filter(|s| !s.is_undefined() && !s.is_local()) {
                    let key = MemberKey::Read { name: member.name(), data, start: member.file_range().0 };
                    index.entry(sym.name.as_bytes().to_vec()).or_insert(key);
                }
            }
        }
    }
    Ok(LazyArchive { display, archive, bytes, index, loaded: HashSet::new() })
}

fn member_display(archive: &str, member: &[u8]) -> String {
    format!("{archive}({})", String::from_utf8_lossy(member))
}

/// Loads archive members until every strongly referenced name that some member defines is
/// defined.
fn pull_archive_members<'a>(inputs: &mut Inputs<'a>, archives: &mut [LazyArchive<'a>]) -> Result<()> {
    if archives.is_empty() {
        return Ok(());
    }
    let mut defined: HashSet<&'a str> = inputs.shared.iter().flat_map(|l| l.exports.iter().map(|(n, _)| *n)).collect();
    let mut undefined: Vec<&'a str> = Vec::new();
    let mut scanned = 0;
    loop {
        for obj in &inputs.objects[scanned..] {
            for sym in obj.symbols.iter().filter(|s| !s.is_local()) {
                if !sym.is_undefined() {
                    defined.insert(sym.name);
                } else if !sym.is_weak() {
                    undefined.push(sym.name);
                }
            }
        }
        scanned = inputs.objects.len();
        let mut pulled = false;
        for name in std::mem::take(&mut undefined) {
            if defined.contains(name) {
                continue;
            }
            for archive in archives.iter_mut() {
                let Some(&key) = archive.index.get(name.as_bytes()) else { continue };
                let bad = |e: object::read::Error| LinkError::BadArchive { file: archive.display.clone(), message: e.to_string() };
                let (member_name, data, start) = match key {
                    MemberKey::Read { name, data, start } => (name, data, start),
                    MemberKey::Offset(offset) => {
                        let member = archive.archive.member(offset).map_err(bad)?;
                        (member.name(), member.data(archive.bytes).map_err(bad)?, member.file_range().0)
                    }
                };
                if archive.loaded.insert(start) {
                    let display = member_display(&archive.display, member_name);
                    let obj = Object::parse(&display, data)?;
                    if !obj.is_relocatable() {
                        return Err(LinkError::NotLinkable { file: display });
                    }
                    inputs.objects.push(obj);
                    pulled = true;
                }
                break;
            }
            // Counted as defined even if the member turned out not to define it: the member
            // is loaded and resolution will report what is really missing.
            defined.insert(name);
        }
        if !pulled {
            return Ok(());
        }
    }
}
