//! Phase 6: copy code and data, patching relocation sites in place.
//!
//! Function bodies are copied byte for byte; every code relocation site is a padded 5-byte
//! LEB, so the new value is written over it with [`PatchWidth::write`](pymode_abi::PatchWidth::write)
//! and nothing moves. Data segments are copied into their output segments; pointer-sized
//! sites get the address relative to `__memory_base` (or 0 for an imported symbol), which
//! `__wasm_apply_data_relocs` overwrites at load time with the absolute value.

use crate::error::{LinkError, Result};
use crate::input::Inputs;
use crate::layout::Layout;
use crate::resolve::{FileId, Resolution};
use crate::scan::{Place, Scan, Site};
use pymode_abi::object::{Object, SymbolKind};
use pymode_abi::reloc::{RelocKind, RelocTarget};
use std::collections::HashMap;

/// Copies and patches every kept function body, in output order, straight into the code
/// section's encoding: each body prefixed with its size, all in one buffer per chunk of
/// functions (no per-function allocation; the chunks are patched in parallel).
///
/// # Errors
/// A value that does not fit its site, or a symbol without an index (reported, not
/// panicked on).
pub fn patch_functions(inputs: &Inputs<'_>, res: &Resolution<'_>, scan: &Scan, layout: &Layout<'_>) -> Result<Vec<u8>> {
    // Sites per output function, so each body is visited once.
    let mut by_function: Vec<Vec<&Site>> = vec![Vec::new(); layout.defined_funcs.len()];
    let first_defined = layout.func_imports.len();
    for (file, sites) in scan.sites.iter().enumerate() {
        for site in sites {
            if let Place::Code { function, .. } = site.place {
                let output = layout.file_funcs.get(file).and_then(|f| *f.get(function)?);
                if let Some(slot) = output.and_then(|o| by_function.get_mut((o as usize).checked_sub(first_defined)?)) {
                    slot.push(site);
                }
            }
        }
    }
    let work: Vec<(usize, &(FileId, usize))> = layout.defined_funcs.iter().enumerate().collect();
    let chunks = crate::parallel::map_chunks(&work, 256, |part| -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for &(position, &(file, function)) in part {
            let obj = &inputs.objects[file.as_usize()]; // ok: layout only lists loaded objects
            let range = obj.functions[function].body.clone(); // ok: layout only lists real functions
            let body = obj.bytes.get(range).ok_or_else(|| bug(obj, "function body outside the file"))?;
            let size = u32::try_from(body.len()).map_err(|_| LinkError::TooLarge("function body"))?;
            pymode_abi::write_uleb(&mut out, size);
            let start = out.len();
            out.extend_from_slice(body);
            for site in &by_function[position] { // ok: one entry per defined function
                let Place::Code { offset, .. } = site.place else { continue };
                let value = code_value(inputs, res, layout, file, obj, site)?;
                write(&mut out[start..], offset, obj, res, site, value)?;
            }
        }
        Ok(out)
    });
    let mut code = Vec::new();
    for chunk in chunks {
        code.extend_from_slice(&chunk?);
    }
    Ok(code)
}

/// Builds the bytes of every non-bss output segment (bss ones get an empty vector).
///
/// # Errors
/// As [`patch_functions`].
pub fn patch_segments(inputs: &Inputs<'_>, res: &Resolution<'_>, scan: &Scan, layout: &Layout<'_>) -> Result<Vec<Vec<u8>>> {
    let mut place: HashMap<(usize, usize), (usize, usize)> = HashMap::new();
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(layout.segments.len());
    for (s, segment) in layout.segments.iter().enumerate() {
        if segment.bss {
            out.push(Vec::new());
            continue;
        }
        let mut bytes = vec![0u8; segment.size as usize];
        for piece in &segment.pieces {
            let data = inputs.objects[piece.file.as_usize()].data[piece.segment].data; // ok: layout's own indices
            let at = piece.offset as usize;
            bytes[at..at + data.len()].copy_from_slice(data); // ok: layout sized the segment to fit
            place.insert((piece.file.as_usize(), piece.segment), (s, at));
        }
        out.push(bytes);
    }
    for (file, sites) in scan.sites.iter().enumerate() {
        let obj = &inputs.objects[file]; // ok: one site list per object
        for site in sites {
            let Place::Data { segment, offset } = site.place else { continue };
            let Some(&(s, at)) = place.get(&(file, segment.as_usize())) else {
                return Err(bug(obj, "relocation in a bss segment"));
            };
            let site_address = layout.segments[s].start as i64 + (at + offset) as i64; // ok: s from the loop above
            let value = data_value(inputs, res, layout, site, site_address)?;
            write(&mut out[s], at + offset, obj, res, site, value)?;
        }
    }
    Ok(out)
}

fn bug(obj: &Object<'_>, what: &str) -> LinkError {
    LinkError::Unsupported { file: obj.name.clone(), what: what.to_owned() }
}

fn write(bytes: &mut [u8], offset: usize, obj: &Object<'_>, res: &Resolution<'_>, site: &Site, value: i64) -> Result<()> {
    let width = site.reloc.kind.width();
    let symbol = || site.symbol.map_or_else(|| format!("type {}", site.reloc.index), |id| res.get(id).name.to_owned());
    let slot = bytes.get_mut(offset..offset + width.bytes()).ok_or_else(|| bug(obj, "relocation site outside its function"))?;
    width.write(slot, value).map_err(|_| LinkError::RelocationOverflow {
        file: obj.name.clone(),
        kind: site.reloc.kind.name(),
        symbol: symbol(),
        value,
    })
}

fn missing(obj: &Object<'_>, res: &Resolution<'_>, site: &Site) -> LinkError {
    let name = site.symbol.map_or_else(|| format!("type {}", site.reloc.index), |id| res.get(id).name.to_owned());
    LinkError::UndefinedSymbol { file: obj.name.clone(), name }
}

/// The value a code site gets.
fn code_value(inputs: &Inputs<'_>, res: &Resolution<'_>, layout: &Layout<'_>, file: FileId, obj: &Object<'_>, site: &Site) -> Result<i64> {
    let kind = site.reloc.kind;
    if kind == RelocKind::TypeIndexLeb {
        let mapped = layout.type_map.get(file.as_usize()).and_then(|m| m.get(site.reloc.index as usize));
        return mapped.map(|&t| i64::from(t)).ok_or_else(|| missing(obj, res, site));
    }
    let id = site.symbol.ok_or_else(|| missing(obj, res, site))?;
    let value = match kind.target() {
        RelocTarget::FunctionIndex => layout.function_index(inputs, res, id).map(i64::from),
        RelocTarget::GlobalIndex if res.get(id).kind == SymbolKind::Global => layout.symbol_global.get(&id).map(|&g| i64::from(g)),
        RelocTarget::GlobalIndex => layout.got_global.get(&id).map(|&g| i64::from(g)),
        RelocTarget::MemoryAddress => layout.data_address(inputs, res, id).map(|a| i64::from(a) + site.reloc.addend),
        RelocTarget::TableSlot => layout.table_slot(id).map(i64::from),
        RelocTarget::TableNumber => Some(0),
        _ => None,
    };
    value.ok_or_else(|| missing(obj, res, site))
}

/// The link-time value of a data site (relative to `__memory_base`; imported symbols get 0
/// until `__wasm_apply_data_relocs` runs).
fn data_value(inputs: &Inputs<'_>, res: &Resolution<'_>, layout: &Layout<'_>, site: &Site, site_address: i64) -> Result<i64> {
    let Some(id) = site.symbol else { return Ok(0) };
    let addend = site.reloc.addend;
    Ok(match site.reloc.kind {
        RelocKind::TableIndexI32 => layout.table_slot(id).map_or(0, i64::from),
        RelocKind::MemoryAddrI32 => layout.data_address(inputs, res, id).map_or(0, |a| i64::from(a) + addend),
        RelocKind::MemoryAddrLocrelI32 => match layout.data_address(inputs, res, id) {
            Some(a) => i64::from(a) + addend - site_address,
            None => return Err(LinkError::UndefinedSymbol { file: String::new(), name: res.get(id).name.to_owned() }),
        },
        _ => 0,
    })
}
