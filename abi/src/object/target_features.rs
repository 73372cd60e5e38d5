//! The `target_features` custom section (tool-conventions Linking.md): the wasm features an
//! object was compiled with, each with a policy prefix.

use crate::error::{Error, ErrorKind, Result};
use crate::names::TARGET_FEATURES;
use wasmparser::BinaryReader;

/// What an object says about one feature: the prefix byte of its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeaturePolicy {
    /// `+`: the object may use the feature; the linked output then uses it.
    Used,
    /// `-`: the object must not be linked with any object that uses the feature.
    Disallowed,
    /// `=`: every object linked with this one must use the feature (LLVM no longer writes
    /// this prefix, but older objects carry it).
    Required,
}

impl FeaturePolicy {
    /// The prefix byte as written in the section.
    pub fn prefix(self) -> u8 {
        match self {
            FeaturePolicy::Used => b'+',
            FeaturePolicy::Disallowed => b'-',
            FeaturePolicy::Required => b'=',
        }
    }
}

/// One entry of a `target_features` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetFeature<'a> {
    /// Used, disallowed or required.
    pub policy: FeaturePolicy,
    /// The feature's LLVM name: `simd128`, `reference-types`, `bulk-memory`, ...
    pub name: &'a str,
}

/// Reads a `target_features` section's contents (after its name), which start at file offset
/// `offset`; `file` names the file in errors.
///
/// # Errors
/// A malformed entry: a bad LEB or string, a prefix other than `+`, `-` or `=`, trailing bytes.
pub fn read<'a>(file: &str, contents: &'a [u8], offset: usize) -> Result<Vec<TargetFeature<'a>>> {
    let err = |e: wasmparser::BinaryReaderError| Error::from_parser(file, Some(TARGET_FEATURES), &e);
    let mut reader = BinaryReader::new(contents, offset);
    let count = reader.read_var_u32().map_err(err)?;
    // An entry is at least two bytes (prefix and an empty name's length).
    let mut features = Vec::with_capacity((count as usize).min(contents.len() / 2));
    for _ in 0..count {
        let entry_offset = reader.original_position();
        let policy = match reader.read_u8().map_err(err)? {
            b'+' => FeaturePolicy::Used,
            b'-' => FeaturePolicy::Disallowed,
            b'=' => FeaturePolicy::Required,
            other => {
                return Err(Error::new(
                    file,
                    Some(TARGET_FEATURES),
                    entry_offset,
                    ErrorKind::Malformed(format!("feature prefix 0x{other:02x} is not `+`, `-` or `=`")),
                ));
            }
        };
        let name = reader.read_string().map_err(err)?;
        features.push(TargetFeature { policy, name });
    }
    if !reader.eof() {
        return Err(Error::new(
            file,
            Some(TARGET_FEATURES),
            reader.original_position(),
            ErrorKind::Malformed("trailing bytes after the last feature".into()),
        ));
    }
    Ok(features)
}
