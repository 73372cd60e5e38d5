//! Bounds-checked little-endian access to the guest's linear memory; every bad pointer is
//! `EFAULT`, never a panic.

use super::errno;

/// The guest's memory.
pub(super) struct Guest<'a>(pub(super) &'a mut [u8]);

/// `base + offset` as a guest pointer, or `EFAULT` when it does not fit.
pub(super) fn offset(base: i32, offset: usize) -> Result<i32, i32> {
    i32::try_from(offset).ok().and_then(|o| base.checked_add(o)).ok_or(errno::FAULT)
}

impl Guest<'_> {
    fn range(&self, ptr: i32, len: usize) -> Result<std::ops::Range<usize>, i32> {
        let start = u32::try_from(ptr).map_err(|_| errno::FAULT)? as usize;
        let end = start.checked_add(len).filter(|&e| e <= self.0.len()).ok_or(errno::FAULT)?;
        Ok(start..end)
    }

    pub(super) fn bytes(&self, ptr: i32, len: usize) -> Result<&[u8], i32> {
        let r = self.range(ptr, len)?;
        Ok(&self.0[r])
    }

    pub(super) fn put(&mut self, ptr: i32, bytes: &[u8]) -> Result<(), i32> {
        let r = self.range(ptr, bytes.len())?;
        self.0[r].copy_from_slice(bytes);
        Ok(())
    }

    fn u32_at(&self, ptr: i32) -> Result<u32, i32> {
        let b = self.bytes(ptr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn put_u32(&mut self, ptr: i32, v: u32) -> Result<(), i32> {
        self.put(ptr, &v.to_le_bytes())
    }

    /// The `(pointer, length)` buffers of an iovec array.
    pub(super) fn iovecs(&self, iovs: i32, count: i32) -> Result<Vec<(i32, usize)>, i32> {
        let count = usize::try_from(count).map_err(|_| errno::INVAL)?;
        (0..count)
            .map(|i| {
                let at = offset(iovs, i * 8)?;
                Ok((self.u32_at(at)? as i32, self.u32_at(offset(at, 4)?)? as usize))
            })
            .collect()
    }

    /// Copies `data` into the buffers in order; returns the bytes written.
    pub(super) fn scatter(&mut self, bufs: &[(i32, usize)], data: &[u8]) -> Result<usize, i32> {
        let mut done = 0;
        for &(ptr, len) in bufs {
            let n = len.min(data.len() - done);
            self.put(ptr, &data[done..done + n])?;
            done += n;
        }
        Ok(done)
    }

    /// The bytes of the buffers, in order.
    pub(super) fn gather(&self, bufs: &[(i32, usize)]) -> Result<Vec<u8>, i32> {
        let mut out = Vec::new();
        for &(ptr, len) in bufs {
            out.extend_from_slice(self.bytes(ptr, len)?);
        }
        Ok(out)
    }
}
