//! Memory: input segments merged by name into output segments, in lld's order.

use super::{Layout, OutputSegment, Piece};
use crate::error::{LinkError, Result};
use crate::ids::FileId;
use crate::input::Inputs;
use crate::resolve::Resolution;
use pymode_abi::object::SegmentIndex;

/// An insertion-ordered map with FxHash (the order is the output order).
type FxIndexMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;

/// The output segment an input segment goes to, as lld names them.
fn output_segment_name(name: &str) -> &str {
    for prefix in [".rodata", ".data", ".bss", ".text"] {
        if name.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')) {
            return prefix;
        }
    }
    name
}

/// `.rodata` first, `.data` next, unknown names after, `.bss` last (it needs no bytes).
fn segment_rank(name: &str) -> u8 {
    match name {
        ".rodata" => 0,
        ".data" => 1,
        ".bss" => 3,
        _ => 2,
    }
}

/// Places every kept input segment in an output segment and sizes MEM_INFO's memory.
pub(super) fn lay_out(out: &mut Layout<'_>, inputs: &Inputs<'_>, res: &Resolution<'_>) -> Result<()> {
    // Group pieces by output segment, in order of first appearance, then sort by rank.
    // Output name → (largest alignment, members as (file, segment, alignment)).
    type Members = Vec<(FileId, SegmentIndex, u32)>;
    let mut groups: FxIndexMap<&str, (u32, Members)> = FxIndexMap::default();
    for (file, obj) in inputs.enumerate_files() {
        let discarded = res.discarded.get(file.as_usize()).filter(|d| !d.is_empty());
        for (s, seg) in obj.data.iter().enumerate() {
            let s = SegmentIndex(s as u32); // ok: the data section's count is a u32
            if discarded.is_some_and(|d| d.segments.contains(&s)) {
                continue;
            }
            let (name, align_log2) = match &seg.info {
                Some(info) => {
                    if info.is_tls() {
                        return Err(LinkError::Unsupported { file: obj.name.clone(), what: format!("thread-local segment {}", info.name) });
                    }
                    (output_segment_name(info.name), info.align_log2)
                }
                None => (".data", 0),
            };
            if align_log2 >= 32 {
                return Err(LinkError::Unsupported { file: obj.name.clone(), what: format!("segment alignment 2^{align_log2}") });
            }
            let group = groups.entry(name).or_insert((0, Vec::new()));
            group.0 = group.0.max(align_log2);
            group.1.push((file, s, align_log2));
        }
    }
    groups.sort_by(|a, _, b, _| segment_rank(a).cmp(&segment_rank(b)));
    out.segment_address = inputs.objects.iter().map(|o| vec![None; o.data.len()]).collect();
    let mut cursor: u64 = 0;
    let mut max_align = 0;
    for (name, (align_log2, members)) in groups {
        max_align = max_align.max(align_log2);
        cursor = align_up(cursor, align_log2);
        let start = cursor;
        let mut pieces = Vec::with_capacity(members.len());
        for (file, segment, piece_align) in members {
            cursor = align_up(cursor, piece_align);
            let len = inputs.objects[file.as_usize()].data[segment.as_usize()].data.len() as u64; // ok: indices from the loop above
            let offset = u32::try_from(cursor - start).map_err(|_| LinkError::TooLarge("memory"))?;
            out.segment_address[file.as_usize()][segment.as_usize()] =
                Some(u32::try_from(cursor).map_err(|_| LinkError::TooLarge("memory"))?);
            pieces.push(Piece { file, segment, offset });
            cursor += len;
        }
        let size = u32::try_from(cursor - start).map_err(|_| LinkError::TooLarge("memory"))?;
        let start = u32::try_from(start).map_err(|_| LinkError::TooLarge("memory"))?;
        out.segments.push(OutputSegment { bss: name == ".bss", name: name.to_owned(), start, size, pieces });
    }
    out.mem_info.memory_size = u32::try_from(cursor).map_err(|_| LinkError::TooLarge("memory"))?;
    out.mem_info.memory_align_log2 = max_align;
    Ok(())
}

fn align_up(value: u64, align_log2: u32) -> u64 {
    let align = 1u64 << align_log2;
    value.div_ceil(align) * align
}
