//! Phase 6: copy code and data, patching relocation sites in place.
//!
//! Function bodies are copied byte for byte; every code relocation site is a padded 5-byte
//! LEB, so the new value is written over it with [`PatchWidth::write`](pymode_abi::PatchWidth::write)
//! and nothing moves. Data segments are copied into their output segments; pointer-sized
//! sites get the address relative to `__memory_base` (or 0 for an imported symbol), which
//! `__wasm_apply_data_relocs` overwrites at load time with the absolute value.

use crate::emit::Linked;
use crate::error::{LinkError, Result};
use crate::ids::{DefinedFunc, FileId, InputFunc};
use crate::input::Inputs;
use crate::layout::Layout;
use crate::resolve::Resolution;
use crate::scan::{Place, Scan, Site};
use crate::unchanged::{self, PatchedSite};
use pymode_abi::object::TypeIndex;
use pymode_abi::object::{Object, SymbolKind};
use pymode_abi::reloc::{RelocKind, RelocTarget};

/// The bytes of the code section's entries for the objects' functions: each body with its
/// size prefix, in output order. [`patch_functions`] fills exactly this many.
///
/// # Errors
/// A body beyond 4 GiB.
pub fn code_entry_sizes(linked: &Linked<'_, '_>) -> Result<Vec<usize>> {
    linked
        .layout
        .defined_funcs
        .iter()
        .map(|&func| {
            let obj = &linked.inputs.objects[func.file.as_usize()]; // ok: layout only lists loaded objects
            let len = match linked.rewritten.body(func) {
                Some(body) => body.bytes.len(),
                None => obj.functions[func.function.as_usize()].body.len(), // ok: layout only lists real functions
            };
            let size = u32::try_from(len).map_err(|_| LinkError::TooLarge("function body"))?;
            Ok(uleb_len(size) + len)
        })
        .collect()
}

/// Bytes of `value` as a shortest unsigned LEB128.
fn uleb_len(value: u32) -> usize {
    (32 - value.leading_zeros() as usize).max(1).div_ceil(7)
}

/// Copies and patches every kept function body, in output order, straight into `out` (the
/// code section's entries, sized by [`code_entry_sizes`]): each body prefixed with its
/// size. A body the PIC rewrite replaced is taken, with its sites, from `rewritten`. Threads
/// take contiguous runs of functions of about equal bytes and write disjoint parts of `out`,
/// so every body is copied once.
///
/// Returns, per function in output order, whether validation must check its body: a
/// rewritten body always, a copied one unless [`unchanged::proven`] shows it valid whenever
/// its input is.
///
/// # Errors
/// A value that does not fit its site, or a symbol without an index (reported, not
/// panicked on).
pub fn patch_functions(linked: &Linked<'_, '_>, sizes: &[usize], out: &mut [u8]) -> Result<Vec<bool>> {
    let Linked { inputs, res, scan, layout, rewritten, .. } = *linked;
    let by_function = code_sites_by_function(inputs, scan);
    let mut work = Vec::new();
    let mut rest = out;
    for range in crate::parallel::balanced_ranges(sizes, crate::parallel::pieces(), 128 * 1024) {
        let bytes: usize = sizes[range.clone()].iter().sum(); // ok: ranges cover `sizes`
        let rest_len = rest.len();
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(bytes.min(rest_len));
        rest = tail;
        work.push((range, part));
    }
    let results = crate::parallel::run(work, |(range, part)| -> Result<Vec<bool>> {
        let mut at = 0;
        let mut leb = Vec::with_capacity(5);
        let mut patched: Vec<PatchedSite> = Vec::new();
        let mut to_validate = Vec::with_capacity(range.len());
        for &func in &layout.defined_funcs[range] {
            let InputFunc { file, function } = func;
            let obj = &inputs.objects[file.as_usize()]; // ok: layout only lists loaded objects
            let new = rewritten.body(func);
            let body = match new {
                Some(new) => &new.bytes[..],
                None => obj
                    .bytes
                    .get(obj.functions[function.as_usize()].body.clone())
                    .ok_or_else(|| bug(&format!("{}: function body outside the file", obj.name)))?,
            };
            let size = u32::try_from(body.len()).map_err(|_| LinkError::TooLarge("function body"))?;
            leb.clear();
            pymode_abi::write_uleb(&mut leb, size);
            let end = at + leb.len() + body.len();
            let entry = part.get_mut(at..end).ok_or_else(|| bug("code entry sizes changed"))?;
            let (prefix, copy) = entry.split_at_mut(leb.len());
            prefix.copy_from_slice(&leb);
            copy.copy_from_slice(body);
            patched.clear();
            let mut patch = |site: &Site, copy: &mut [u8]| -> Result<()> {
                let Place::Code { offset, .. } = site.place else { return Ok(()) };
                let value = code_value(res, layout, file, obj, site)?;
                patched.push(PatchedSite { offset, kind: site.reloc.kind, value });
                write(copy, offset, obj, res, site, value)
            };
            match new {
                Some(new) => {
                    new.sites.iter().try_for_each(|site| patch(site, copy))?;
                    to_validate.push(true);
                }
                None => {
                    by_function.sites(scan, file, function).try_for_each(|site| patch(site, copy))?;
                    if !patched.is_sorted_by_key(|s| s.offset) {
                        patched.sort_by_key(|s| s.offset);
                    }
                    to_validate.push(!unchanged::proven(layout, file, obj, body, &patched));
                }
            }
            at = end;
        }
        Ok(to_validate)
    });
    let mut to_validate = Vec::with_capacity(layout.defined_funcs.len());
    for part in results {
        to_validate.extend(part?);
    }
    Ok(to_validate)
}

/// Each object's code sites grouped by function (a counting sort of their positions in
/// [`Scan::sites`]), so a body finds its sites without a search or a list of its own.
struct CodeSites {
    /// Per object: for function `f`, `order[first[f]..first[f + 1]]`.
    first: Vec<Vec<u32>>,
    /// Per object: positions in that object's site list.
    order: Vec<Vec<u32>>,
}

impl CodeSites {
    fn sites<'s>(&'s self, scan: &'s Scan, file: FileId, function: DefinedFunc) -> impl Iterator<Item = &'s Site> + 's {
        let (file, function) = (file.as_usize(), function.as_usize()); // ok below: one entry per object
        let range = match (self.first[file].get(function), self.first[file].get(function + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        };
        self.order[file][range].iter().map(move |&i| &scan.sites[file][i as usize]) // ok: positions of that list
    }
}

fn code_sites_by_function(inputs: &Inputs<'_>, scan: &Scan) -> CodeSites {
    let mut first = Vec::with_capacity(scan.sites.len());
    let mut order = Vec::with_capacity(scan.sites.len());
    for (file, sites) in scan.sites.iter().enumerate() {
        let functions = inputs.objects.get(file).map_or(0, |o| o.functions.len());
        let mut start = vec![0u32; functions + 1];
        for site in sites {
            if let Place::Code { function, .. } = site.place {
                start[function.as_usize() + 1] += 1; // ok: scan located the site in one of these functions
            }
        }
        let mut sum = 0;
        for count in &mut start {
            sum += *count;
            *count = sum;
        }
        let mut fill = start.clone();
        let mut positions = vec![0u32; start[functions] as usize];
        for (i, site) in sites.iter().enumerate() {
            if let Place::Code { function, .. } = site.place {
                let function = function.as_usize();
                positions[fill[function] as usize] = i as u32; // ok: counted above
                fill[function] += 1;
            }
        }
        first.push(start);
        order.push(positions);
    }
    CodeSites { first, order }
}

/// Writes every non-bss output segment's bytes into `out`, segment `s` at `at[s]` (bss ones
/// have no bytes), and patches its pointer-sized sites.
///
/// # Errors
/// As [`patch_functions`].
pub fn patch_segments(linked: &Linked<'_, '_>, at: &[Option<usize>], out: &mut [u8]) -> Result<()> {
    let Linked { inputs, res, scan, layout, .. } = *linked;
    // Per object, per input segment: (output segment, offset in `out`).
    let mut place: Vec<Vec<Option<(usize, usize)>>> = inputs.objects.iter().map(|o| vec![None; o.data.len()]).collect();
    for (s, segment) in layout.segments.iter().enumerate() {
        let Some(Some(base)) = at.get(s) else { continue };
        for piece in &segment.pieces {
            let data = inputs.objects[piece.file.as_usize()].data[piece.segment.as_usize()].data; // ok: layout's own indices
            let from = base + piece.offset as usize;
            out[from..from + data.len()].copy_from_slice(data); // ok: layout sized the segment to fit
            place[piece.file.as_usize()][piece.segment.as_usize()] = Some((s, from)); // ok: layout's own indices
        }
    }
    for (file, sites) in scan.sites.iter().enumerate() {
        let obj = &inputs.objects[file]; // ok: one site list per object
        for site in sites {
            let Place::Data { segment, offset } = site.place else { continue };
            let Some(&Some((s, from))) = place[file].get(segment.as_usize()) else {
                // Input can do this: a segment named `.bss.*` that holds a pointer.
                return Err(LinkError::Unsupported {
                    file: obj.name.clone(),
                    what: format!("relocation {} at offset 0x{:x} in a bss segment", site.reloc.kind, site.reloc.offset),
                });
            };
            let base = at[s].unwrap_or(0); // ok: `place` only holds segments with bytes
            let site_address = layout.segments[s].start as i64 + (from - base + offset) as i64; // ok: s from the loop above
            let value = data_value(res, layout, obj, site, site_address)?;
            write(out, from + offset, obj, res, site, value)?;
        }
    }
    Ok(())
}

/// A broken invariant of the layout or the scan, found while patching.
fn bug(what: &str) -> LinkError {
    LinkError::internal("patch", what)
}

fn write(bytes: &mut [u8], offset: usize, obj: &Object<'_>, res: &Resolution<'_>, site: &Site, value: i64) -> Result<()> {
    let width = site.reloc.kind.width();
    let symbol = || site.symbol.map_or_else(|| format!("type {}", site.reloc.index), |id| res.get(id).name.to_owned());
    let slot = bytes.get_mut(offset..offset + width.bytes()).ok_or_else(|| {
        bug(&format!("{}: relocation site at offset 0x{:x} outside its function or segment", obj.name, site.reloc.offset))
    })?;
    width.write(slot, value).map_err(|_| LinkError::RelocationOverflow {
        file: obj.name.clone(),
        kind: site.reloc.kind.name(),
        section: site.place.section_name(),
        offset: site.reloc.offset,
        symbol: symbol(),
        value,
    })
}

fn missing(obj: &Object<'_>, res: &Resolution<'_>, site: &Site) -> LinkError {
    let name = site.symbol.map_or_else(|| format!("type {}", site.reloc.index), |id| res.get(id).name.to_owned());
    LinkError::UndefinedSymbol { file: obj.name.clone(), name }
}

/// The value a code site gets.
fn code_value(res: &Resolution<'_>, layout: &Layout<'_>, file: FileId, obj: &Object<'_>, site: &Site) -> Result<i64> {
    let kind = site.reloc.kind;
    if kind == RelocKind::TypeIndexLeb {
        let mapped = layout.output_type(file, TypeIndex(site.reloc.index));
        return mapped.map(|t| i64::from(t.0)).ok_or_else(|| missing(obj, res, site));
    }
    let id = site.symbol.ok_or_else(|| missing(obj, res, site))?;
    let value = match kind.target() {
        RelocTarget::FunctionIndex => layout.function(id).map(|f| i64::from(f.0)),
        RelocTarget::GlobalIndex if res.get(id).kind == SymbolKind::Global => layout.global(id).map(|g| i64::from(g.0)),
        RelocTarget::GlobalIndex => layout.got(id).map(|g| i64::from(g.0)),
        RelocTarget::MemoryAddress => layout.address(id).map(|a| i64::from(a) + site.reloc.addend),
        RelocTarget::TableSlot => layout.table_slot(id).map(|s| i64::from(s.0)),
        RelocTarget::TableNumber => Some(0),
        _ => None,
    };
    value.ok_or_else(|| missing(obj, res, site))
}

/// The link-time value of a data site (relative to `__memory_base`; imported symbols get 0
/// until `__wasm_apply_data_relocs` runs).
fn data_value(res: &Resolution<'_>, layout: &Layout<'_>, obj: &Object<'_>, site: &Site, site_address: i64) -> Result<i64> {
    let Some(id) = site.symbol else { return Ok(0) };
    let addend = site.reloc.addend;
    Ok(match site.reloc.kind {
        RelocKind::TableIndexI32 => layout.table_slot(id).map_or(0, |s| i64::from(s.0)),
        RelocKind::MemoryAddrI32 => layout.address(id).map_or(0, |a| i64::from(a) + addend),
        RelocKind::MemoryAddrLocrelI32 => match layout.address(id) {
            Some(a) => i64::from(a) + addend - site_address,
            // Input can do this too: a LOCREL against a symbol with no address (a function).
            None => return Err(missing(obj, res, site)),
        },
        _ => 0,
    })
}
