//! Phase 4b: rewrite non-PIC function bodies into position-independent form.
//!
//! Code compiled without `-fPIC` (zig's default, and what most third-party build systems
//! produce) puts absolute addresses into instructions: `i32.const addr` for the address of
//! data (`R_WASM_MEMORY_ADDR_SLEB`) or the table index of a function
//! (`R_WASM_TABLE_INDEX_SLEB`), and `i32.load offset=addr` for data reached at a constant
//! address (`R_WASM_MEMORY_ADDR_LEB`). A side module does not know its addresses at link
//! time, so wasm-ld refuses such objects. Here each body holding one of those sites is
//! parsed with wasmparser's `OperatorsReader` and written again, operator by operator:
//!
//! | site | symbol bound in this module | bound outside (through the GOT) |
//! |---|---|---|
//! | `i32.const addr` | `global.get __memory_base; i32.const off; i32.add` | `global.get GOT.mem.x` (`; i32.const a; i32.add` for an addend) |
//! | `i32.const slot` | `global.get __table_base; i32.const slot; i32.add` | `global.get GOT.func.f` |
//! | load `offset=addr` | `global.get __memory_base; i32.add; load offset=off` | `global.get GOT.mem.x; i32.add; load offset=a` |
//! | store `offset=addr` | `local.set $v; global.get __memory_base; i32.add; local.get $v; store offset=off` | the same with the GOT global |
//!
//! Every other operator is copied byte for byte, so the other relocation sites (function,
//! type and global indices, each a padded 5-byte LEB) keep their encoding: they move by the
//! bytes inserted before them and are handed to [`crate::patch`] at their new offsets. A
//! store's value is saved in a new local, one per value type, appended to the body's local
//! declarations. Branches name block depths, not byte offsets, so inserting code moves
//! nothing else. [`crate::scan`] has already asked for the GOT entries and table slots the
//! new code reads; data-section `MEMORY_ADDR_I32` / `TABLE_INDEX_I32` need no rewrite:
//! `__wasm_apply_data_relocs` stores them as it does for PIC objects.

use crate::error::{LinkError, Result};
use crate::ids::{DefinedFunc, InputFunc, OutGlobalIndex};
use crate::input::Inputs;
use crate::layout::Layout;
use crate::options::Binding;
use crate::resolve::Resolution;
use crate::scan::{Place, Scan, Site, binds_externally, is_absolute_address};
use pymode_abi::PatchWidth;
use pymode_abi::object::{FuncIndex, Object, SymbolTarget};
use pymode_abi::reloc::RelocKind;
use rustc_hash::FxHashMap;
use wasm_encoder::{Encode, Instruction, ValType};
use wasmparser::{BinaryReader, FunctionBody, MemArg, Operator};

/// A function body after the rewrite.
#[derive(Debug, Clone)]
pub struct Body {
    /// Locals and code, without the size prefix.
    pub bytes: Vec<u8>,
    /// The body's remaining relocation sites (none of them absolute), at their new offsets.
    pub sites: Vec<Site>,
}

/// The rewritten bodies, looked up by function.
#[derive(Debug, Default)]
pub struct Rewritten {
    bodies: FxHashMap<InputFunc, Body>,
}

impl Rewritten {
    /// The rewritten body of a function, if it was rewritten.
    pub fn body(&self, function: InputFunc) -> Option<&Body> {
        self.bodies.get(&function)
    }

    /// How many bodies were rewritten.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    /// Whether nothing was rewritten (every object was PIC).
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }
}

/// Rewrites every kept function body that holds an absolute-placement relocation.
///
/// # Errors
/// [`LinkError::PicRewrite`] for a site the rewrite cannot express (an instruction other
/// than the one the relocation type implies, a SIMD or atomic access), naming the object,
/// function, relocation and byte offset; a malformed body.
pub fn rewrite(inputs: &Inputs<'_>, res: &Resolution<'_>, scan: &Scan, layout: &Layout<'_>, binding: Binding) -> Result<Rewritten> {
    let mut out = Rewritten::default();
    if !scan.has_absolute_code {
        return Ok(out);
    }
    // The functions to rewrite, each with all its code sites in offset order.
    let mut work: Vec<(InputFunc, Vec<Site>)> = Vec::new();
    for ((file, _), sites) in inputs.enumerate_files().zip(&scan.sites) {
        let mut by_function: FxHashMap<DefinedFunc, Vec<Site>> = FxHashMap::default();
        for site in sites {
            if let Place::Code { function, .. } = site.place {
                by_function.entry(function).or_default().push(*site);
            }
        }
        let mut functions: Vec<(DefinedFunc, Vec<Site>)> =
            by_function.into_iter().filter(|(_, s)| s.iter().any(|s| is_absolute_address(s.reloc.kind))).collect();
        functions.sort_by_key(|(f, _)| *f);
        for (function, mut sites) in functions {
            sites.sort_by_key(code_offset);
            work.push((InputFunc { file, function }, sites));
        }
    }
    let ctx = Context { inputs, res, layout, binding };
    let bodies = crate::parallel::map(&work, 64, |(func, sites)| ctx.rewrite_body(*func, sites));
    for ((func, _), body) in work.iter().zip(bodies) {
        out.bodies.insert(*func, body?);
    }
    Ok(out)
}

fn code_offset(site: &Site) -> usize {
    match site.place {
        Place::Code { offset, .. } => offset,
        Place::Data { offset, .. } => offset,
    }
}

struct Context<'l, 'a> {
    inputs: &'l Inputs<'a>,
    res: &'l Resolution<'a>,
    layout: &'l Layout<'a>,
    binding: Binding,
}

/// The memory access an instruction makes: its immediate, and the type of the operand above
/// the address (a store's value), if any.
fn memory_access(op: &Operator<'_>) -> Option<(MemArg, Option<ValType>)> {
    use Operator as O;
    Some(match *op {
        O::I32Load { memarg }
        | O::I64Load { memarg }
        | O::F32Load { memarg }
        | O::F64Load { memarg }
        | O::I32Load8S { memarg }
        | O::I32Load8U { memarg }
        | O::I32Load16S { memarg }
        | O::I32Load16U { memarg }
        | O::I64Load8S { memarg }
        | O::I64Load8U { memarg }
        | O::I64Load16S { memarg }
        | O::I64Load16U { memarg }
        | O::I64Load32S { memarg }
        | O::I64Load32U { memarg } => (memarg, None),
        O::I32Store { memarg } | O::I32Store8 { memarg } | O::I32Store16 { memarg } => (memarg, Some(ValType::I32)),
        O::I64Store { memarg } | O::I64Store8 { memarg } | O::I64Store16 { memarg } | O::I64Store32 { memarg } => {
            (memarg, Some(ValType::I64))
        }
        O::F32Store { memarg } => (memarg, Some(ValType::F32)),
        O::F64Store { memarg } => (memarg, Some(ValType::F64)),
        _ => return None,
    })
}

/// The new locals a body gets, one per value type a store needs saved.
struct NewLocals {
    /// Index of the first new local (parameters plus declared locals).
    first: u32,
    types: Vec<ValType>,
}

impl NewLocals {
    /// The new local of type `ty`, or `None` when the index would pass `u32::MAX` (a
    /// malformed local count).
    fn index_for(&mut self, ty: ValType) -> Option<u32> {
        let position = self.types.iter().position(|&t| t == ty).unwrap_or_else(|| {
            self.types.push(ty);
            self.types.len() - 1
        });
        self.first.checked_add(position as u32) // ok: at most four new locals
    }
}

impl<'l, 'a> Context<'l, 'a> {
    fn rewrite_body(&self, func: InputFunc, sites: &[Site]) -> Result<Body> {
        let InputFunc { file, function } = func;
        let obj = &self.inputs.objects[file.as_usize()]; // ok: scan only locates sites in loaded objects
        let input = obj.functions.get(function.as_usize());
        let range = input.map(|f| f.body.clone()).ok_or_else(|| malformed(obj, function, "no such function"))?;
        let bytes = obj.bytes.get(range).ok_or_else(|| malformed(obj, function, "body outside the file"))?;
        let params = input.and_then(|f| obj.types.get(f.ty.as_usize())).map_or(0, |t| t.params().len() as u64);
        let body = FunctionBody::new(BinaryReader::new(bytes, 0));
        let bad =
            |e: wasmparser::BinaryReaderError| malformed(obj, function, &format!("{} at body offset 0x{:x}", e.message(), e.offset()));

        // The local declarations: kept as they are, the new ones appended as extra groups.
        let mut locals = body.get_locals_reader().map_err(bad)?;
        let groups = locals.get_count();
        let groups_start = locals.original_position();
        let mut declared = 0u64;
        for _ in 0..groups {
            let (count, _) = locals.read().map_err(bad)?;
            declared += u64::from(count);
        }
        let code_start = locals.original_position();
        let first = u32::try_from(params + declared).map_err(|_| malformed(obj, function, "too many locals"))?;
        let mut out = BodyRewrite {
            ctx: self,
            obj,
            function,
            new_locals: NewLocals { first, types: Vec::new() },
            code: Vec::with_capacity(bytes.len() + sites.len() * 8),
        };
        let mut kept = Vec::with_capacity(sites.len());
        let mut next = 0; // the first site not yet placed
        let mut ops = body.get_operators_reader().map_err(bad)?;
        while !ops.eof() {
            let start = ops.original_position();
            let op = ops.read().map_err(bad)?;
            let end = ops.original_position();
            let first_site = next;
            while sites.get(next).is_some_and(|s| code_offset(s) < end) {
                next += 1;
            }
            let here = &sites[first_site..next]; // ok: first_site <= next <= sites.len()
            // A site in the local declarations or between instructions belongs to none.
            if let Some(stray) = here.iter().find(|s| code_offset(s) < start) {
                return Err(out.refuse(stray, "the site is not inside an instruction"));
            }
            let original = &bytes[start..end]; // ok: the reader read these bytes
            let Some(absolute) = here.iter().find(|s| is_absolute_address(s.reloc.kind)) else {
                // Unchanged: copy it, and move its sites along.
                let shift = out.code.len() as isize - start as isize;
                out.code.extend_from_slice(original);
                for site in here {
                    kept.push(moved(site, shift)?);
                }
                continue;
            };
            if here.len() != 1 {
                return Err(out.refuse(absolute, "another relocation in the same instruction"));
            }
            let at = code_offset(absolute);
            if at < start || at + PatchWidth::Uleb5.bytes() > end {
                return Err(out.refuse(absolute, "the site is not an immediate of one instruction"));
            }
            out.rewrite_site(absolute, &op, original, at - start)?;
        }
        if next != sites.len() {
            return Err(malformed(obj, function, "a relocation site past the body's end"));
        }

        // The new body: the local groups (kept bytes, new groups encoded), then the code.
        let BodyRewrite { new_locals, code, .. } = out;
        let mut out = Vec::with_capacity(code_start + 8 + code.len());
        let new_groups = u32::try_from(new_locals.types.len()).ok().and_then(|n| n.checked_add(groups));
        new_groups.ok_or_else(|| malformed(obj, function, "too many local declarations"))?.encode(&mut out);
        out.extend_from_slice(&bytes[groups_start..code_start]); // ok: the locals reader read these bytes
        for ty in &new_locals.types {
            1u32.encode(&mut out);
            ty.encode(&mut out);
        }
        let shift = out.len() as isize;
        out.extend_from_slice(&code);
        let sites = kept.iter().map(|s| moved(s, shift)).collect::<Result<Vec<_>>>()?;
        Ok(Body { bytes: out, sites })
    }
}

/// One body being rewritten: its object and function (what a refusal names), the locals it
/// gains and the code written so far.
struct BodyRewrite<'c, 'l, 'a> {
    ctx: &'c Context<'l, 'a>,
    obj: &'l Object<'a>,
    function: DefinedFunc,
    new_locals: NewLocals,
    code: Vec<u8>,
}

impl BodyRewrite<'_, '_, '_> {
    /// Writes the position-independent form of one instruction holding an absolute site
    /// (`at` bytes into `original`, its encoding).
    fn rewrite_site(&mut self, site: &Site, op: &Operator<'_>, original: &[u8], at: usize) -> Result<()> {
        let (global, value) = self.base(site)?;
        let global = global.0;
        // The new instructions, appended to the body's code at the end (refusals borrow self).
        let mut new = Vec::with_capacity(original.len() + 12);
        let code = &mut new;
        match site.reloc.kind {
            RelocKind::MemoryAddrSleb | RelocKind::TableIndexSleb => {
                // `i32.const` is one opcode byte and the padded LEB.
                if !matches!(op, Operator::I32Const { .. }) || at != 1 || original.len() != 1 + PatchWidth::Sleb5.bytes() {
                    return Err(self.refuse(site, "not the immediate of an i32.const"));
                }
                let value = i32_value(value).ok_or_else(|| self.refuse(site, "the address does not fit 32 bits"))?;
                Instruction::GlobalGet(global).encode(code);
                if value != 0 {
                    Instruction::I32Const(value).encode(code);
                    Instruction::I32Add.encode(code);
                }
            }
            RelocKind::MemoryAddrLeb => {
                let Some((memarg, saved)) = memory_access(op) else {
                    return Err(self.refuse(site, "not a scalar load or store (SIMD and atomic accesses are not rewritten)"));
                };
                // Memory 0's memarg ends with the offset: the site must be those last bytes.
                if memarg.memory != 0 || at + PatchWidth::Uleb5.bytes() != original.len() {
                    return Err(self.refuse(site, "not the offset immediate of a memory access in memory 0"));
                }
                // The static part stays in the offset immediate when it can: an offset is
                // unsigned, so a negative one is added to the address instead.
                let (in_address, in_offset) = if u32::try_from(value).is_ok() { (0, value) } else { (value, 0) };
                let in_address = i32_value(in_address).ok_or_else(|| self.refuse(site, "the address does not fit 32 bits"))?;
                let saved = match saved {
                    Some(ty) => Some(self.new_locals.index_for(ty).ok_or_else(|| self.refuse(site, "too many locals"))?),
                    None => None,
                };
                if let Some(local) = saved {
                    Instruction::LocalSet(local).encode(code);
                }
                Instruction::GlobalGet(global).encode(code);
                if in_address != 0 {
                    Instruction::I32Const(in_address).encode(code);
                    Instruction::I32Add.encode(code);
                }
                Instruction::I32Add.encode(code);
                if let Some(local) = saved {
                    Instruction::LocalGet(local).encode(code);
                }
                // The instruction itself, its offset immediate (still a padded LEB) replaced.
                let from = code.len();
                code.extend_from_slice(original);
                let slot = code
                    .get_mut(from + at..from + at + PatchWidth::Uleb5.bytes())
                    .ok_or_else(|| self.refuse(site, "site outside the instruction"))?;
                PatchWidth::Uleb5.write(slot, in_offset).map_err(|_| self.refuse(site, "the offset does not fit 32 bits"))?;
            }
            _ => return Err(self.refuse(site, "64-bit relocations are not rewritten")),
        }
        self.code.extend_from_slice(&new);
        Ok(())
    }

    /// The global the rewritten code starts from (a base or a GOT entry), and what to add
    /// to it.
    fn base(&self, site: &Site) -> Result<(OutGlobalIndex, i64)> {
        let Context { res, layout, binding, .. } = *self.ctx;
        let id = site.symbol.ok_or_else(|| self.refuse(site, "no symbol"))?;
        let sym = res.get(id);
        let addend = site.reloc.addend;
        if binds_externally(sym, binding) {
            let global = layout.got(id).ok_or_else(|| self.refuse(site, "no GOT entry"))?;
            return Ok((global, addend));
        }
        let missing = |what| self.refuse(site, what);
        Ok(match site.reloc.kind {
            RelocKind::TableIndexSleb => (
                layout.table_base.ok_or_else(|| missing("no __table_base"))?,
                i64::from(layout.table_slot(id).ok_or_else(|| missing("no table slot"))?.0) + addend,
            ),
            _ => (
                layout.memory_base.ok_or_else(|| missing("no __memory_base"))?,
                i64::from(layout.address(id).ok_or_else(|| missing("no address"))?) + addend,
            ),
        })
    }

    fn refuse(&self, site: &Site, reason: &str) -> LinkError {
        let obj = self.obj;
        LinkError::PicRewrite {
            file: obj.name.clone(),
            function: function_name(obj, self.function),
            kind: site.reloc.kind.name(),
            symbol: site.symbol.map_or_else(String::new, |id| self.ctx.res.get(id).name.to_owned()),
            offset: code_offset(site),
            reason: reason.to_owned(),
        }
    }
}

/// A value as the i32 an instruction holds: addresses above 2 GiB are negative i32s.
fn i32_value(value: i64) -> Option<i32> {
    i32::try_from(value).ok().or_else(|| u32::try_from(value).ok().map(|u| u as i32))
}

fn moved(site: &Site, shift: isize) -> Result<Site> {
    let Place::Code { function, offset } = site.place else { return Ok(*site) };
    let offset = offset
        .checked_add_signed(shift)
        .ok_or_else(|| LinkError::internal("rewrite", "a relocation site moved before the body's start"))?;
    Ok(Site { place: Place::Code { function, offset }, ..*site })
}

/// The name of an object's defined function, for messages.
fn function_name(obj: &Object<'_>, function: DefinedFunc) -> String {
    let index = obj.imported_funcs.len() + function.as_usize();
    obj.symbols
        .iter()
        .find(|s| !s.is_undefined() && s.target == SymbolTarget::Function(FuncIndex(index as u32))) // ok: indices fit u32
        .map_or_else(|| format!("#{function}"), |s| s.name.to_owned())
}

fn malformed(obj: &Object<'_>, function: DefinedFunc, what: &str) -> LinkError {
    LinkError::Unsupported { file: obj.name.clone(), what: format!("function `{}`: {what}", function_name(obj, function)) }
}
