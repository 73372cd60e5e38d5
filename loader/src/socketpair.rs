//! Connected pairs of virtual stream sockets for a WASI preview-1 guest: what the wasm
//! CPython's `socket.socketpair()` returns, and so what asyncio's event loop wakes itself up
//! with (its self-pipe).
//!
//! WASI preview 1 cannot create sockets, and wasmtime-wasi keeps its descriptor table to
//! itself, so the pair lives here: [`add_socketpair_to_linker`] wraps the WASI functions a
//! socket is used through (`sock_accept`, `sock_recv`, `sock_send`, `sock_shutdown`,
//! `fd_read`, `fd_write`, `fd_close`, `fd_fdstat_get`, `fd_fdstat_set_flags`,
//! `fd_filestat_get`, `poll_oneoff`). A call on a virtual descriptor (from
//! [`host::socketpair::VIRTUAL_FD_BASE`] up) is answered from [`SocketPairs`]; every other
//! call goes to wasmtime-wasi unchanged. A guest makes a pair by accepting from the reserved
//! descriptor [`host::socketpair::FACTORY_FD`]: the new descriptor and the next one are the
//! two ends (the `_socket` side module's `socketpair()` does this). Everything is in one
//! thread, so a call that would wait for the peer forever (a blocking `recv` on an empty
//! socket, a `poll` on nothing else) fails with `EDEADLK` instead.

use std::collections::{BTreeMap, VecDeque};

use pymode_abi::host::socketpair::{FACTORY_FD, MAX_BUFFERED, VIRTUAL_FD_BASE};
use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::{WasiP1Ctx, wasi_snapshot_preview1 as p1};

use crate::error::{BoxError, boxed};

/// The WASI errno values this module answers with.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const AGAIN: i32 = 6;
    pub const BADF: i32 = 8;
    pub const DEADLK: i32 = 16;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const MFILE: i32 = 33;
    pub const NOTSUP: i32 = 58;
    pub const PIPE: i32 = 64;
}

const FILETYPE_SOCKET_STREAM: u8 = 6;
const FDFLAGS_NONBLOCK: u16 = 4;
const RIFLAGS_PEEK: i32 = 1;
const SDFLAGS_RD: i32 = 1;
const SDFLAGS_WR: i32 = 2;
const EVENTRWFLAGS_HANGUP: u16 = 1;
/// fd_read, fd_fdstat_set_flags, fd_write, fd_filestat_get, poll_fd_readwrite, sock_shutdown.
const SOCKET_RIGHTS: u64 = (1 << 1) | (1 << 3) | (1 << 6) | (1 << 21) | (1 << 27) | (1 << 28);
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;

/// One end of a pair: the bytes its peer sent that it has not read yet, and its state.
#[derive(Debug, Default)]
struct End {
    incoming: VecDeque<u8>,
    nonblocking: bool,
    /// `shutdown(SHUT_RD)`: reads see end of file.
    read_shut: bool,
    /// `shutdown(SHUT_WR)`: writes fail with `EPIPE`, the peer reads end of file.
    write_shut: bool,
}

/// The guest's virtual socket pairs, kept in the store's data next to the WASI context.
#[derive(Debug, Default)]
pub struct SocketPairs {
    ends: BTreeMap<u32, End>,
    /// Pairs made so far: pair `k` is `VIRTUAL_FD_BASE + 2k` and the next descriptor.
    made: u32,
}

/// Gives the wrappers the WASI context and the socket pairs inside the store's data.
pub trait HasSocketPairs {
    /// The WASI preview-1 context (the one `wasmtime_wasi::p1::add_to_linker_sync` was
    /// given) and the socket pairs.
    fn wasi_and_sockets(&mut self) -> (&mut WasiP1Ctx, &mut SocketPairs);
}

/// The other end of `fd`'s pair.
fn peer(fd: u32) -> u32 {
    VIRTUAL_FD_BASE + ((fd - VIRTUAL_FD_BASE) ^ 1)
}

fn is_virtual(fd: i32) -> bool {
    u32::try_from(fd).is_ok_and(|fd| fd >= VIRTUAL_FD_BASE)
}

/// Whether a read would return now, and how many bytes it would get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Ready { bytes: u64, hangup: bool },
    Waiting,
}

impl SocketPairs {
    /// Makes a pair; returns its first descriptor (the second is the next one).
    fn make_pair(&mut self, nonblocking: bool) -> Result<u32, i32> {
        let first =
            self.made.checked_mul(2).and_then(|n| VIRTUAL_FD_BASE.checked_add(n)).filter(|&fd| fd < u32::MAX - 1).ok_or(errno::MFILE)?;
        self.made += 1;
        for fd in [first, first + 1] {
            self.ends.insert(fd, End { nonblocking, ..End::default() });
        }
        Ok(first)
    }

    fn end(&mut self, fd: i32) -> Result<&mut End, i32> {
        u32::try_from(fd).ok().and_then(|fd| self.ends.get_mut(&fd)).ok_or(errno::BADF)
    }

    /// Whether the peer of `fd` is gone or has shut its writing side.
    fn peer_done_writing(&self, fd: u32) -> bool {
        self.ends.get(&peer(fd)).is_none_or(|p| p.write_shut)
    }

    /// Takes (or, with `peek`, copies) up to `max` bytes sent to `fd`.
    fn recv(&mut self, fd: i32, max: usize, peek: bool) -> Result<Vec<u8>, i32> {
        let eof = u32::try_from(fd).is_ok_and(|fd| self.peer_done_writing(fd));
        let end = self.end(fd)?;
        if end.incoming.is_empty() {
            return if eof || end.read_shut || max == 0 {
                Ok(Vec::new())
            } else if end.nonblocking {
                Err(errno::AGAIN)
            } else {
                Err(errno::DEADLK)
            };
        }
        let n = max.min(end.incoming.len());
        Ok(if peek { end.incoming.iter().take(n).copied().collect() } else { end.incoming.drain(..n).collect() })
    }

    /// Queues as much of `bytes` for the peer as fits; returns how much.
    fn send(&mut self, fd: i32, bytes: &[u8]) -> Result<usize, i32> {
        let end = self.end(fd)?;
        if end.write_shut {
            return Err(errno::PIPE);
        }
        let nonblocking = end.nonblocking;
        let Ok(fd) = u32::try_from(fd) else { return Err(errno::BADF) };
        let Some(other) = self.ends.get_mut(&peer(fd)) else { return Err(errno::PIPE) };
        let room = MAX_BUFFERED.saturating_sub(other.incoming.len());
        if room == 0 && !bytes.is_empty() {
            return Err(if nonblocking { errno::AGAIN } else { errno::DEADLK });
        }
        let n = room.min(bytes.len());
        other.incoming.extend(&bytes[..n]);
        Ok(n)
    }

    fn read_readiness(&self, fd: u32) -> Readiness {
        let Some(end) = self.ends.get(&fd) else { return Readiness::Ready { bytes: 0, hangup: true } };
        let hangup = self.peer_done_writing(fd);
        if !end.incoming.is_empty() || hangup || end.read_shut {
            Readiness::Ready { bytes: end.incoming.len() as u64, hangup }
        } else {
            Readiness::Waiting
        }
    }

    fn write_readiness(&self, fd: u32) -> Readiness {
        match self.ends.get(&peer(fd)) {
            None => Readiness::Ready { bytes: 0, hangup: true },
            Some(p) if p.incoming.len() < MAX_BUFFERED => {
                Readiness::Ready { bytes: (MAX_BUFFERED - p.incoming.len()) as u64, hangup: false }
            }
            Some(_) => Readiness::Waiting,
        }
    }
}

/// Bounds-checked little-endian access to the guest's memory.
struct Guest<'a>(&'a mut [u8]);

impl Guest<'_> {
    fn range(&self, ptr: i32, len: usize) -> Result<std::ops::Range<usize>, i32> {
        let start = u32::try_from(ptr).map_err(|_| errno::FAULT)? as usize;
        let end = start.checked_add(len).filter(|&e| e <= self.0.len()).ok_or(errno::FAULT)?;
        Ok(start..end)
    }
    fn bytes(&self, ptr: i32, len: usize) -> Result<&[u8], i32> {
        let r = self.range(ptr, len)?;
        Ok(&self.0[r])
    }
    fn put(&mut self, ptr: i32, bytes: &[u8]) -> Result<(), i32> {
        let r = self.range(ptr, bytes.len())?;
        self.0[r].copy_from_slice(bytes);
        Ok(())
    }
    fn u32_at(&self, ptr: i32) -> Result<u32, i32> {
        let b = self.bytes(ptr, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// The `(pointer, length)` buffers of an iovec array.
    fn iovecs(&self, iovs: i32, count: i32) -> Result<Vec<(i32, usize)>, i32> {
        let count = u32::try_from(count).map_err(|_| errno::INVAL)?;
        (0..count)
            .map(|i| {
                let at = iovs.checked_add(i32::try_from(i * 8).map_err(|_| errno::FAULT)?).ok_or(errno::FAULT)?;
                Ok((self.u32_at(at)? as i32, self.u32_at(at + 4)? as usize))
            })
            .collect()
    }
    /// Copies `data` into the buffers in order; returns the bytes written.
    fn scatter(&mut self, bufs: &[(i32, usize)], data: &[u8]) -> Result<usize, i32> {
        let mut done = 0;
        for &(ptr, len) in bufs {
            let n = len.min(data.len() - done);
            self.put(ptr, &data[done..done + n])?;
            done += n;
        }
        Ok(done)
    }
    fn gather(&self, bufs: &[(i32, usize)]) -> Result<Vec<u8>, i32> {
        let mut out = Vec::new();
        for &(ptr, len) in bufs {
            out.extend_from_slice(self.bytes(ptr, len)?);
        }
        Ok(out)
    }
    fn put_u32(&mut self, ptr: i32, v: u32) -> Result<(), i32> {
        self.put(ptr, &v.to_le_bytes())
    }
}

fn status(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(errno::SUCCESS)
}

/// Runs `virt` on the guest's memory and the socket pairs when `fd` is virtual, `real` (a
/// wasmtime-wasi function) otherwise.
fn dispatch<T: HasSocketPairs + 'static>(
    caller: &mut Caller<'_, T>,
    fd: i32,
    virt: impl FnOnce(&mut Guest<'_>, &mut SocketPairs) -> Result<(), i32>,
    real: impl FnOnce(&mut WasiP1Ctx, &mut wiggle::GuestMemory<'_>) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(wasmtime::Error::msg("the guest calling WASI exports no memory"));
    };
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    let (wasi, sockets) = host.wasi_and_sockets();
    if is_virtual(fd) || fd == FACTORY_FD as i32 {
        Ok(status(virt(&mut Guest(data), sockets)))
    } else {
        real(wasi, &mut wiggle::GuestMemory::Unshared(data))
    }
}

fn fdstat(g: &mut Guest<'_>, s: &mut SocketPairs, fd: i32, out: i32) -> Result<(), i32> {
    let end = s.end(fd)?;
    let mut stat = [0u8; 24];
    stat[0] = FILETYPE_SOCKET_STREAM;
    let flags = if end.nonblocking { FDFLAGS_NONBLOCK } else { 0 };
    stat[2..4].copy_from_slice(&flags.to_le_bytes());
    stat[8..16].copy_from_slice(&SOCKET_RIGHTS.to_le_bytes());
    stat[16..24].copy_from_slice(&SOCKET_RIGHTS.to_le_bytes());
    g.put(out, &stat)
}

fn filestat(g: &mut Guest<'_>, s: &mut SocketPairs, fd: i32, out: i32) -> Result<(), i32> {
    s.end(fd)?;
    let mut stat = [0u8; 64];
    stat[8..16].copy_from_slice(&u64::from(fd as u32).to_le_bytes());
    stat[16] = FILETYPE_SOCKET_STREAM;
    stat[24..32].copy_from_slice(&1u64.to_le_bytes());
    g.put(out, &stat)
}

fn recv_into(g: &mut Guest<'_>, s: &mut SocketPairs, fd: i32, iovs: i32, n: i32, peek: bool) -> Result<u32, i32> {
    let bufs = g.iovecs(iovs, n)?;
    let max = bufs.iter().map(|b| b.1).sum();
    let data = s.recv(fd, max, peek)?;
    Ok(g.scatter(&bufs, &data)? as u32)
}

fn send_from(g: &mut Guest<'_>, s: &mut SocketPairs, fd: i32, iovs: i32, n: i32) -> Result<u32, i32> {
    let bufs = g.iovecs(iovs, n)?;
    let data = g.gather(&bufs)?;
    Ok(s.send(fd, &data)? as u32)
}

fn accept(g: &mut Guest<'_>, s: &mut SocketPairs, fd: i32, flags: i32, out: i32) -> Result<(), i32> {
    if fd != FACTORY_FD as i32 {
        // A virtual socket is connected, not listening.
        return Err(if s.end(fd).is_ok() { errno::INVAL } else { errno::BADF });
    }
    let nonblocking = flags & i32::from(FDFLAGS_NONBLOCK) != 0;
    let first = s.make_pair(nonblocking)?;
    g.put_u32(out, first)
}

fn shutdown(s: &mut SocketPairs, fd: i32, how: i32) -> Result<(), i32> {
    if how & !(SDFLAGS_RD | SDFLAGS_WR) != 0 || how == 0 {
        return Err(errno::INVAL);
    }
    let end = s.end(fd)?;
    end.read_shut |= how & SDFLAGS_RD != 0;
    end.write_shut |= how & SDFLAGS_WR != 0;
    Ok(())
}

fn close(s: &mut SocketPairs, fd: i32) -> Result<(), i32> {
    if fd == FACTORY_FD as i32 {
        return Err(errno::NOTSUP);
    }
    s.end(fd)?;
    s.ends.remove(&(fd as u32));
    Ok(())
}

/// One subscription of a `poll_oneoff` call.
struct Subscription {
    userdata: [u8; 8],
    /// 1 for fd_read, 2 for fd_write, 0 for a clock.
    tag: u8,
    fd: u32,
}

fn subscription(g: &Guest<'_>, at: i32) -> Result<Subscription, i32> {
    let b = g.bytes(at, SUBSCRIPTION_SIZE)?;
    let mut userdata = [0u8; 8];
    userdata.copy_from_slice(&b[..8]);
    Ok(Subscription { userdata, tag: b[8], fd: u32::from_le_bytes([b[16], b[17], b[18], b[19]]) })
}

/// `poll_oneoff` with virtual descriptors among the subscriptions: the ready virtual ones
/// are answered at once; when none is ready, the rest (moved to the front of the guest's
/// subscription array, which wasi-libc does not read back) go to wasmtime-wasi, since
/// nothing can make a virtual socket ready while this thread waits.
fn poll<T: HasSocketPairs + 'static>(
    caller: &mut Caller<'_, T>,
    subs: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(wasmtime::Error::msg("the guest calling WASI exports no memory"));
    };
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    let (wasi, sockets) = host.wasi_and_sockets();
    let mut g = Guest(data);
    let plan = (|| {
        let count = u32::try_from(count).map_err(|_| errno::INVAL)?;
        let mut ready = Vec::new();
        let mut rest = Vec::new();
        let mut any_virtual = false;
        for i in 0..count {
            let at = subs.checked_add(i32::try_from(i as usize * SUBSCRIPTION_SIZE).map_err(|_| errno::FAULT)?).ok_or(errno::FAULT)?;
            let sub = subscription(&g, at)?;
            if (sub.tag == 1 || sub.tag == 2) && sub.fd >= VIRTUAL_FD_BASE {
                any_virtual = true;
                let readiness = if sub.tag == 1 { sockets.read_readiness(sub.fd) } else { sockets.write_readiness(sub.fd) };
                let missing = !sockets.ends.contains_key(&sub.fd);
                if let Readiness::Ready { bytes, hangup } = readiness {
                    let mut ev = [0u8; EVENT_SIZE];
                    ev[..8].copy_from_slice(&sub.userdata);
                    let error = if missing { errno::BADF as u16 } else { 0 };
                    ev[8..10].copy_from_slice(&error.to_le_bytes());
                    ev[10] = sub.tag;
                    ev[16..24].copy_from_slice(&bytes.to_le_bytes());
                    let flags = if hangup { EVENTRWFLAGS_HANGUP } else { 0 };
                    ev[24..26].copy_from_slice(&flags.to_le_bytes());
                    ready.push(ev);
                }
            } else {
                rest.push(g.bytes(at, SUBSCRIPTION_SIZE)?.to_vec());
            }
        }
        Ok((any_virtual, ready, rest))
    })();
    let (any_virtual, ready, rest) = match plan {
        Ok(p) => p,
        Err(e) => return Ok(e),
    };
    if !any_virtual {
        return in_tokio(p1::poll_oneoff(wasi, &mut wiggle::GuestMemory::Unshared(g.0), subs, events, count, nevents));
    }
    if !ready.is_empty() {
        let written = (|| {
            for (i, ev) in ready.iter().enumerate() {
                g.put(events + (i * EVENT_SIZE) as i32, ev)?;
            }
            g.put_u32(nevents, ready.len() as u32)
        })();
        return Ok(status(written));
    }
    if rest.is_empty() {
        return Ok(errno::DEADLK);
    }
    for (i, sub) in rest.iter().enumerate() {
        if let Err(e) = g.put(subs + (i * SUBSCRIPTION_SIZE) as i32, sub) {
            return Ok(e);
        }
    }
    in_tokio(p1::poll_oneoff(wasi, &mut wiggle::GuestMemory::Unshared(g.0), subs, events, rest.len() as i32, nevents))
}

fn in_tokio<R>(f: impl std::future::Future<Output = R>) -> R {
    wasmtime_wasi::runtime::in_tokio(f)
}

/// Wraps the WASI preview-1 functions in `linker` (already defined there by
/// `wasmtime_wasi::p1::add_to_linker_sync`) so that descriptors of [`SocketPairs`] work with
/// them, and `sock_accept` on [`FACTORY_FD`] makes a pair. Call it after
/// `add_to_linker_sync`; it turns on shadowing in `linker` for its own definitions.
///
/// # Errors
/// The linker refused a definition.
pub fn add_socketpair_to_linker<T: HasSocketPairs + Send + 'static>(linker: &mut Linker<T>) -> Result<(), BoxError> {
    const M: &str = "wasi_snapshot_preview1";
    linker.allow_shadowing(true);
    linker
        .func_wrap(M, "sock_accept", |mut c: Caller<'_, T>, fd: i32, flags: i32, out: i32| {
            dispatch(&mut c, fd, |g, s| accept(g, s, fd, flags, out), |w, m| p1::sock_accept(w, m, fd, flags, out))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "sock_recv", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, flags: i32, out_len: i32, out_flags: i32| {
            dispatch(
                &mut c,
                fd,
                |g, s| {
                    let got = recv_into(g, s, fd, iovs, n, flags & RIFLAGS_PEEK != 0)?;
                    g.put_u32(out_len, got)?;
                    g.put(out_flags, &0u16.to_le_bytes())
                },
                |w, m| p1::sock_recv(w, m, fd, iovs, n, flags, out_len, out_flags),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "sock_send", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, flags: i32, out: i32| {
            dispatch(
                &mut c,
                fd,
                |g, s| send_from(g, s, fd, iovs, n).and_then(|sent| g.put_u32(out, sent)),
                |w, m| p1::sock_send(w, m, fd, iovs, n, flags, out),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "sock_shutdown", |mut c: Caller<'_, T>, fd: i32, how: i32| {
            dispatch(&mut c, fd, |_, s| shutdown(s, fd, how), |w, m| p1::sock_shutdown(w, m, fd, how))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_read", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| {
            dispatch(
                &mut c,
                fd,
                |g, s| recv_into(g, s, fd, iovs, n, false).and_then(|got| g.put_u32(out, got)),
                |w, m| in_tokio(p1::fd_read(w, m, fd, iovs, n, out)),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_write", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| {
            dispatch(
                &mut c,
                fd,
                |g, s| send_from(g, s, fd, iovs, n).and_then(|sent| g.put_u32(out, sent)),
                |w, m| in_tokio(p1::fd_write(w, m, fd, iovs, n, out)),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_close", |mut c: Caller<'_, T>, fd: i32| {
            dispatch(&mut c, fd, |_, s| close(s, fd), |w, m| in_tokio(p1::fd_close(w, m, fd)))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_fdstat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
            dispatch(&mut c, fd, |g, s| fdstat(g, s, fd, out), |w, m| in_tokio(p1::fd_fdstat_get(w, m, fd, out)))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_fdstat_set_flags", |mut c: Caller<'_, T>, fd: i32, flags: i32| {
            dispatch(
                &mut c,
                fd,
                |_, s| {
                    // Only O_NONBLOCK means anything for a socket; the rest (append, sync) is refused.
                    if flags & !i32::from(FDFLAGS_NONBLOCK) != 0 {
                        return Err(errno::INVAL);
                    }
                    s.end(fd)?.nonblocking = flags & i32::from(FDFLAGS_NONBLOCK) != 0;
                    Ok(())
                },
                |w, m| p1::fd_fdstat_set_flags(w, m, fd, flags),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_filestat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
            dispatch(&mut c, fd, |g, s| filestat(g, s, fd, out), |w, m| in_tokio(p1::fd_filestat_get(w, m, fd, out)))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "poll_oneoff", |mut c: Caller<'_, T>, subs: i32, events: i32, n: i32, out: i32| poll(&mut c, subs, events, n, out))
        .map_err(boxed)?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_carries_bytes_both_ways_and_reports_end_of_file_after_close() {
        let mut s = SocketPairs::default();
        let a = s.make_pair(true).unwrap() as i32;
        let b = a + 1;
        assert_eq!(s.send(a, b"ping").unwrap(), 4);
        assert_eq!(s.recv(b, 2, true).unwrap(), b"pi");
        assert_eq!(s.recv(b, 10, false).unwrap(), b"ping");
        assert_eq!(s.recv(b, 10, false), Err(errno::AGAIN));
        assert_eq!(s.read_readiness(b as u32), Readiness::Waiting);
        close(&mut s, a).unwrap();
        assert_eq!(s.recv(b, 10, false).unwrap(), b"");
        assert_eq!(s.send(b, b"x"), Err(errno::PIPE));
        assert_eq!(s.read_readiness(b as u32), Readiness::Ready { bytes: 0, hangup: true });
    }
}
