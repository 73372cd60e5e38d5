//! `fd_readdir` without listing a directory again for every buffer. wasmtime-wasi 48 answers
//! each call by reading the whole directory, `stat`ing every entry (for `d_ino`) and
//! skipping to the cookie; wasi-libc reads 4 KiB of entries per call, so a directory whose
//! entries fill k buffers costs k + 1 listings and (k + 1) · n `stat`s. The CPython stdlib
//! directory (192 entries) took four listings at every start. Here a call with cookie 0
//! (`opendir`, `rewinddir`) fetches the whole listing once, in wasmtime-wasi's own format,
//! and the calls that continue it are answered from that copy: the guest gets the same
//! bytes, one `stat` per entry. POSIX leaves unspecified whether entries added or removed
//! after `opendir` show up, so answering from the first listing is allowed.
//!
//! One listing is kept (per store): the one being read. A call for another descriptor or a
//! cookie the copy does not hold goes to wasmtime-wasi as before; so does a directory whose
//! listing exceeds [`MAX_LISTING`] bytes.

use wasmtime_wasi::p1::{WasiP1Ctx, wasi_snapshot_preview1 as p1};

use super::errno;
use super::guest::Guest;

/// The most bytes of one listing kept (about 100,000 entries of 20-byte names).
const MAX_LISTING: usize = 4 << 20;
/// The size of a `dirent` before its name: `d_next` u64, `d_ino` u64, `d_namlen` u32,
/// `d_type` u8, padding.
const DIRENT_HEADER: usize = 24;

/// The listing of the directory being read.
#[derive(Debug)]
pub(super) struct Listing {
    fd: i32,
    /// The `dirent`s wasmtime-wasi wrote for cookie 0 into a buffer that held them all.
    bytes: Vec<u8>,
}

enum Fetched {
    Listing(Vec<u8>),
    Errno(i32),
    TooBig,
}

/// `fd_readdir(fd, buf, buf_len, cookie, out)` on a real descriptor.
pub(super) fn fd_readdir(
    g: &mut Guest<'_>,
    wasi: &mut WasiP1Ctx,
    kept: &mut Option<Listing>,
    fd: i32,
    (buf, buf_len, cookie, out): (i32, i32, i64, i32),
) -> wasmtime::Result<i32> {
    if cookie == 0 {
        *kept = None;
        match fetch(wasi, fd)? {
            Fetched::Listing(bytes) => *kept = Some(Listing { fd, bytes }),
            Fetched::Errno(e) => return Ok(e),
            Fetched::TooBig => {}
        }
    }
    let (Some(listing), Ok(skip), Ok(cap)) = (kept.as_ref().filter(|l| l.fd == fd), usize::try_from(cookie), usize::try_from(buf_len))
    else {
        return super::in_tokio(p1::fd_readdir(wasi, &mut wiggle::GuestMemory::Unshared(g.0), fd, buf, buf_len, cookie, out));
    };
    let rest = &listing.bytes[offset_of_entry(&listing.bytes, skip)..];
    // What wasmtime-wasi writes: the entries from the cookie on as one stream, cut at the
    // buffer's end (a cut entry is asked for again by its cookie).
    let n = rest.len().min(cap);
    if let Err(e) = g.put(buf, &rest[..n]).and_then(|()| g.put_u32(out, n as u32)) {
        return Ok(e);
    }
    if n < cap {
        // Read to the end: the next call (if any) starts over with cookie 0.
        *kept = None;
    }
    Ok(errno::SUCCESS)
}

/// Forgets the listing of a descriptor being closed.
pub(super) fn forget(kept: &mut Option<Listing>, fd: i32) {
    if kept.as_ref().is_some_and(|l| l.fd == fd) {
        *kept = None;
    }
}

/// The whole listing from wasmtime-wasi, into host memory, growing the buffer until it holds
/// every entry.
fn fetch(wasi: &mut WasiP1Ctx, fd: i32) -> wasmtime::Result<Fetched> {
    const AT: usize = 8;
    let mut cap = 64 << 10;
    loop {
        // Its result count at 0, the entries from AT on.
        let mut scratch = vec![0u8; AT + cap];
        let len = i32::try_from(cap).unwrap_or(i32::MAX);
        let e = super::in_tokio(p1::fd_readdir(wasi, &mut wiggle::GuestMemory::Unshared(&mut scratch), fd, AT as i32, len, 0, 0))?;
        if e != errno::SUCCESS {
            return Ok(Fetched::Errno(e));
        }
        let written = u32::from_le_bytes([scratch[0], scratch[1], scratch[2], scratch[3]]) as usize;
        if written < cap {
            scratch.truncate(AT + written);
            scratch.drain(..AT);
            return Ok(Fetched::Listing(scratch));
        }
        if cap >= MAX_LISTING {
            return Ok(Fetched::TooBig);
        }
        cap *= 4;
    }
}

/// The byte offset of entry `index` (0 is `.`), or the end.
fn offset_of_entry(bytes: &[u8], index: usize) -> usize {
    let mut at = 0;
    for _ in 0..index {
        let Some(namlen) = bytes.get(at + 16..at + 20) else { return bytes.len() };
        let namlen = u32::from_le_bytes([namlen[0], namlen[1], namlen[2], namlen[3]]) as usize;
        at = at.saturating_add(DIRENT_HEADER).saturating_add(namlen).min(bytes.len());
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirent(next: u64, name: &str) -> Vec<u8> {
        let mut v = next.to_le_bytes().to_vec();
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(name.as_bytes());
        v
    }

    #[test]
    fn entries_are_found_by_index_and_past_the_end_is_the_end() {
        let bytes: Vec<u8> = [dirent(1, "."), dirent(2, ".."), dirent(3, "abc")].concat();
        assert_eq!(offset_of_entry(&bytes, 0), 0);
        assert_eq!(offset_of_entry(&bytes, 1), 25);
        assert_eq!(offset_of_entry(&bytes, 2), 51);
        assert_eq!(offset_of_entry(&bytes, 3), bytes.len());
        assert_eq!(offset_of_entry(&bytes, 99), bytes.len());
        // A cut-off header ends the walk instead of reading past the bytes.
        assert_eq!(offset_of_entry(&bytes[..60], 3), 60);
    }
}
