//! Side-module data memory: allocated through the main module's own allocator (so the guest
//! heap stays consistent), aligned by over-allocating, and zeroed (`.bss`, DESIGN §5.6).

use wasmtime::{AsContextMut, Memory, TypedFunc};

use crate::error::OpenErrorKind;

/// One allocation: `raw` is what `malloc` returned and what `free` gets back; `base` is the
/// aligned address given to the module as `__memory_base`; `size` is what the module asked
/// for (the memory budget counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) raw: u32,
    pub(crate) base: u32,
    pub(crate) size: u32,
}

/// Allocates `size` zeroed bytes aligned to `align` (a power of two). A zero size needs no
/// memory: the block is all zeros and nothing is freed later.
pub(crate) fn alloc_zeroed<T: 'static>(
    mut store: impl AsContextMut<Data = T>,
    memory: &Memory,
    malloc: &TypedFunc<i32, i32>,
    size: u32,
    align: u32,
) -> Result<Block, OpenErrorKind> {
    if size == 0 {
        return Ok(Block { raw: 0, base: 0, size: 0 });
    }
    let fail = |detail: Option<String>| OpenErrorKind::Allocation { size: u64::from(size), align: u64::from(align), detail };
    let align = align.max(1);
    // The main module's allocator may align less than the module needs (a custom one, or
    // 8 on some libcs): over-allocate and align up, keeping `raw` for free.
    let slack = align - 1;
    let request = size.checked_add(slack).filter(|r| *r <= i32::MAX as u32).ok_or_else(|| fail(Some("size overflow".into())))?;
    let raw = malloc.call(&mut store, request as i32).map_err(|e| fail(Some(crate::error::describe(&e))))? as u32;
    if raw == 0 {
        return Err(fail(None));
    }
    let base = (u64::from(raw) + u64::from(align) - 1) & !(u64::from(align) - 1);
    let end = base + u64::from(size);
    let data = memory.data_mut(store.as_context_mut());
    let Some(bytes) = usize::try_from(base).ok().zip(usize::try_from(end).ok()).and_then(|(b, e)| data.get_mut(b..e)) else {
        return Err(fail(Some(format!("the allocator returned {raw:#x}, outside memory"))));
    };
    bytes.fill(0);
    Ok(Block { raw, base: base as u32, size }) // ok: base < end <= memory size <= 4 GiB
}

/// Returns a block to the main module's allocator.
pub(crate) fn free<T: 'static>(store: impl AsContextMut<Data = T>, free: &TypedFunc<i32, ()>, block: Block) -> Result<(), wasmtime::Error> {
    if block.raw == 0 {
        return Ok(());
    }
    free.call(store, block.raw as i32)
}

/// Reads `len` bytes at `ptr` from guest memory; `None` if any of it is out of bounds.
pub(crate) fn read_guest<T: 'static>(store: impl wasmtime::AsContext<Data = T>, memory: &Memory, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let start = usize::try_from(ptr as u32).ok()?;
    let len = usize::try_from(len).ok()?;
    let end = start.checked_add(len)?;
    memory.data(&store).get(start..end).map(<[u8]>::to_vec)
}

/// Writes `bytes` at `ptr`; `false` if out of bounds.
pub(crate) fn write_guest<T: 'static>(mut store: impl AsContextMut<Data = T>, memory: &Memory, ptr: i32, bytes: &[u8]) -> bool {
    let Ok(start) = usize::try_from(ptr as u32) else { return false };
    let Some(end) = start.checked_add(bytes.len()) else { return false };
    match memory.data_mut(store.as_context_mut()).get_mut(start..end) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}
