//! # pymode-linker
//!
//! `pymode-ld` links wasm32 relocatable objects and archives built by `zig cc` into
//! `dylink.0` side modules that share the main module's memory and table.
//! `pymode-readobj` describes objects and side modules as stable text.
//!
//! [`link`] runs the pipeline, one module per phase, in this order:
//! [`input`] (read objects, archive members on demand, side modules) → [`features`] (the
//! output's wasm features, from the objects' `target_features`) → [`resolve`] (symbols) →
//! [`scan`] (what relocations need: GOT entries, table slots, imports) → [`layout`] (memory,
//! table, index spaces) → [`rewrite`] (non-PIC function bodies into position-independent
//! form) → [`synth`] (GOT globals, data-relocation and constructor functions, `dylink.0`) →
//! [`emit`] (encode, with [`patch`] copying code and data straight into the output and
//! patching sites in place; validate; write atomically).

#![warn(missing_docs)]

pub mod cli;
pub mod emit;
pub mod error;
pub mod features;
pub mod ids;
pub mod input;
pub mod layout;
pub mod options;
mod parallel;
pub mod patch;
pub mod readobj;
pub mod resolve;
pub mod rewrite;
pub mod scan;
pub mod synth;
pub mod unchanged;

pub use error::{LinkError, Result};
pub use options::{Binding, FeatureCheck, Options, PicRewrite};

/// Links `opts.inputs` into a side module and returns its bytes, validated as [`link`]
/// validates them ([`emit::validate_changed`]).
///
/// # Errors
/// Any input, resolution, relocation or validation error, as a [`LinkError`].
pub fn link_to_bytes(opts: &Options) -> Result<Vec<u8>> {
    let encoded = build(opts)?;
    emit::validate_changed(&encoded.bytes, &encoded.check_body)?;
    Ok(encoded.bytes)
}

/// Every phase but validation: the module, and which bodies validation must check.
///
/// # Errors
/// Any input, resolution or relocation error, as a [`LinkError`].
pub fn build(opts: &Options) -> Result<emit::Encoded> {
    let files = input::read_files(opts)?;
    let inputs = input::load(&files)?;
    let features = features::compute(&inputs, opts)?;
    let resolution = resolve::resolve(&inputs)?;
    let scan = scan::scan(&inputs, &resolution, opts.binding, opts.pic_rewrite)?;
    let layout = layout::layout(&inputs, &resolution, &scan, opts)?;
    let rewritten = rewrite::rewrite(&inputs, &resolution, &scan, &layout, opts.binding)?;
    let synthesized = synth::synthesize(&inputs, &resolution, &scan, &layout, opts)?;
    emit::encode(&emit::Linked {
        inputs: &inputs,
        res: &resolution,
        scan: &scan,
        layout: &layout,
        rewritten: &rewritten,
        synth: &synthesized,
        features: &features,
        opts,
    })
}

/// Links and writes the output file named by `-o` (atomically: on error nothing is written).
///
/// # Errors
/// As [`link_to_bytes`], plus a missing `-o` or a write failure.
pub fn link(opts: &Options) -> Result<()> {
    let output = opts.output.as_ref().ok_or_else(|| LinkError::Usage("no output file: use -o FILE".into()))?;
    if opts.inputs.is_empty() {
        return Err(LinkError::Usage("no input files".into()));
    }
    let encoded = build(opts)?;
    emit::validate_and_write(output, &encoded)
}
