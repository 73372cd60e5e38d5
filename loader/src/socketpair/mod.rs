//! Virtual descriptors for a WASI preview-1 guest: connected pairs of stream sockets (what
//! the wasm CPython's `socket.socketpair()` returns, and so what asyncio's event loop wakes
//! itself up with) and aliases of real descriptors (the `dup` that `mmap` needs).
//!
//! WASI preview 1 can do neither, and wasmtime-wasi keeps its descriptor table to itself, so
//! they live here: [`add_socketpair_to_linker`] wraps the WASI functions a socket or an alias
//! is used through (`sock_accept`, `sock_recv`, `sock_send`, `sock_shutdown`, `fd_read`,
//! `fd_write`, `fd_pread`, `fd_pwrite`, `fd_seek`, `fd_sync`, `fd_close`, `fd_fdstat_get`,
//! `fd_fdstat_set_flags`, `fd_filestat_get`, `poll_oneoff`, and `fd_readdir`, which
//! `readdir` answers without listing a directory once per buffer). A call on a socket (from
//! [`VIRTUAL_FD_BASE`] up) is answered from [`SocketPairs`], a call on an alias (from
//! [`ALIAS_FD_BASE`] up) goes to wasmtime-wasi with the real descriptor, and every other call
//! goes to wasmtime-wasi unchanged. A guest makes a pair by accepting from the reserved
//! descriptor [`FACTORY_FD`] (the new descriptor and the next one are the two ends; the
//! `_socket` side module's `socketpair()` does this) and an alias by accepting from a real
//! descriptor with [`DUP_FLAG`]; a real descriptor closed while it has aliases stays open in
//! wasmtime-wasi (the guest gets `EBADF` for it from the wrapped calls) until the last alias
//! is closed. Everything is in one thread, so a call that would wait for the peer forever (a
//! blocking `recv` on an empty socket, a `poll` on nothing else) fails with `EDEADLK`.

mod guest;
mod poll;
mod readdir;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use pymode_abi::host::socketpair::{ALIAS_FD_BASE, DUP_FLAG, FACTORY_FD, MAX_BUFFERED, VIRTUAL_FD_BASE};
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::{WasiP1Ctx, wasi_snapshot_preview1 as p1};

use crate::error::{BoxError, boxed};
use guest::Guest;

/// The WASI errno values this module answers with.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const AGAIN: i32 = 6;
    pub const BADF: i32 = 8;
    pub const DEADLK: i32 = 16;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const MFILE: i32 = 33;
    pub const NOTDIR: i32 = 54;
    pub const NOTSUP: i32 = 58;
    pub const PIPE: i32 = 64;
    pub const SPIPE: i32 = 70;
}

const FILETYPE_SOCKET_STREAM: u8 = 6;
const FDFLAGS_NONBLOCK: u16 = 4;
const RIFLAGS_PEEK: i32 = 1;
const SDFLAGS_RD: i32 = 1;
const SDFLAGS_WR: i32 = 2;
/// fd_read, fd_fdstat_set_flags, fd_write, fd_filestat_get, poll_fd_readwrite, sock_shutdown.
const SOCKET_RIGHTS: u64 = (1 << 1) | (1 << 3) | (1 << 6) | (1 << 21) | (1 << 27) | (1 << 28);

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

/// The guest's virtual socket pairs and aliases, kept in the store's data next to the WASI
/// context.
#[derive(Debug, Default)]
pub struct SocketPairs {
    ends: BTreeMap<u32, End>,
    /// Pairs made so far: pair `k` is `VIRTUAL_FD_BASE + 2k` and the next descriptor.
    made: u32,
    /// Each alias and the real descriptor it stands for.
    aliases: BTreeMap<u32, i32>,
    /// Aliases made so far: alias `k` is `ALIAS_FD_BASE + k`.
    aliases_made: u32,
    /// Real descriptors the guest has closed while aliases of them were open.
    closed_by_guest: BTreeSet<i32>,
    /// The directory listing being read (`readdir`).
    listing: Option<readdir::Listing>,
}

/// Where a call on a descriptor goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A socket of a pair (or the factory): answered here.
    Socket,
    /// wasmtime-wasi, with this descriptor.
    Real(i32),
    /// A closed alias, or a real descriptor the guest closed: `EBADF`.
    Closed,
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

/// Whether a read would return now, and how many bytes it would get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Ready { bytes: u64, hangup: bool },
    Waiting,
}

impl SocketPairs {
    fn target(&self, fd: i32) -> Target {
        match u32::try_from(fd) {
            Ok(n) if n >= ALIAS_FD_BASE => self.aliases.get(&n).map_or(Target::Closed, |&real| Target::Real(real)),
            Ok(n) if n >= FACTORY_FD => Target::Socket,
            _ if self.closed_by_guest.contains(&fd) => Target::Closed,
            _ => Target::Real(fd),
        }
    }

    /// A new alias of the real descriptor `real`.
    fn alias(&mut self, real: i32) -> Result<u32, i32> {
        let fd = ALIAS_FD_BASE.checked_add(self.aliases_made).ok_or(errno::MFILE)?;
        self.aliases_made += 1;
        self.aliases.insert(fd, real);
        Ok(fd)
    }

    /// Makes a pair; returns its first descriptor (the second is the next one).
    fn make_pair(&mut self, nonblocking: bool) -> Result<u32, i32> {
        let first = self
            .made
            .checked_mul(2)
            .and_then(|n| VIRTUAL_FD_BASE.checked_add(n))
            .filter(|&fd| fd < ALIAS_FD_BASE - 1)
            .ok_or(errno::MFILE)?;
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

fn status(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(errno::SUCCESS)
}

/// Runs `f` on the guest's memory, the WASI context and the socket pairs.
fn with_host<T: HasSocketPairs + 'static>(
    caller: &mut Caller<'_, T>,
    f: impl FnOnce(Guest<'_>, &mut WasiP1Ctx, &mut SocketPairs) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(wasmtime::Error::msg("the guest calling WASI exports no memory"));
    };
    // wasmtime-wasi bounds what one call may copy by a per-call allowance that its own
    // linker glue sets before each call; calling its functions directly, we set it too, or
    // the first copy fails with ENOMEM.
    let fuel = caller.as_context_mut().hostcall_fuel();
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    let (wasi, sockets) = host.wasi_and_sockets();
    p1::WasiSnapshotPreview1::set_hostcall_fuel(wasi, fuel);
    f(Guest(data), wasi, sockets)
}

/// Runs `socket` when `fd` is a socket of a pair, `real` (a wasmtime-wasi function) with the
/// real descriptor otherwise.
fn dispatch<T: HasSocketPairs + 'static>(
    caller: &mut Caller<'_, T>,
    fd: i32,
    socket: impl FnOnce(&mut Guest<'_>, &mut SocketPairs) -> Result<(), i32>,
    real: impl FnOnce(&mut WasiP1Ctx, &mut wiggle::GuestMemory<'_>, i32) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    with_host(caller, |mut g, wasi, sockets| match sockets.target(fd) {
        Target::Socket => Ok(status(socket(&mut g, sockets))),
        Target::Real(fd) => real(wasi, &mut wiggle::GuestMemory::Unshared(g.0), fd),
        Target::Closed => Ok(errno::BADF),
    })
}

/// `sock_accept`: a new pair from the factory, a new alias with [`DUP_FLAG`], else
/// wasmtime-wasi's.
fn sock_accept<T: HasSocketPairs + 'static>(caller: &mut Caller<'_, T>, fd: i32, flags: i32, out: i32) -> wasmtime::Result<i32> {
    with_host(caller, |mut g, wasi, s| {
        let made = match s.target(fd) {
            Target::Closed => Err(errno::BADF),
            Target::Socket if fd == FACTORY_FD as i32 => s.make_pair(flags & i32::from(FDFLAGS_NONBLOCK) != 0),
            // A virtual socket is connected, not listening, and its aliases are not kept.
            Target::Socket => Err(if s.end(fd).is_ok() { errno::INVAL } else { errno::BADF }),
            // dup's EBADF: only a descriptor wasmtime-wasi has open gets an alias.
            Target::Real(real) if flags == i32::from(DUP_FLAG) => match fdstat_status(&mut g, wasi, real, out) {
                errno::SUCCESS => s.alias(real),
                error => Err(error),
            },
            Target::Real(real) => return p1::sock_accept(wasi, &mut wiggle::GuestMemory::Unshared(g.0), real, flags, out),
        };
        Ok(status(made.and_then(|fd| g.put_u32(out, fd))))
    })
}

/// wasmtime-wasi's `fd_fdstat_get` status for `real`: `SUCCESS` when it is open. wasmtime-wasi
/// answers only into guest memory, so the 24-byte answer goes to the 8-aligned address at or
/// below `near` (the caller's result pointer) and the bytes that were there are put back.
fn fdstat_status(g: &mut Guest<'_>, wasi: &mut WasiP1Ctx, real: i32, near: i32) -> i32 {
    let scratch = near & !7;
    let Ok(saved) = g.bytes(scratch, 24).map(<[u8]>::to_vec) else {
        return errno::FAULT;
    };
    let status = in_tokio(p1::fd_fdstat_get(wasi, &mut wiggle::GuestMemory::Unshared(&mut *g.0), real, scratch));
    match (status, g.put(scratch, &saved)) {
        (Ok(status), Ok(())) => status,
        // The scratch address is ours, not the guest's: a refusal of it is not the guest's fault.
        (Err(_), _) => errno::FAULT,
        (_, Err(error)) => error,
    }
}

/// `fd_close`: a socket's end, an alias (the real descriptor is closed with the last one
/// once the guest has closed it too), a real descriptor (kept open while aliased).
fn fd_close<T: HasSocketPairs + 'static>(caller: &mut Caller<'_, T>, fd: i32) -> wasmtime::Result<i32> {
    with_host(caller, |g, wasi, s| {
        let real = match (s.target(fd), u32::try_from(fd)) {
            (Target::Closed, _) => return Ok(errno::BADF),
            (Target::Socket, _) => return Ok(status(close(s, fd))),
            (Target::Real(real), Ok(n)) if n >= ALIAS_FD_BASE => {
                s.aliases.remove(&n);
                if s.aliases.values().any(|&r| r == real) || !s.closed_by_guest.remove(&real) {
                    return Ok(errno::SUCCESS);
                }
                real
            }
            (Target::Real(real), _) if s.aliases.values().any(|&r| r == real) => {
                s.closed_by_guest.insert(real);
                return Ok(errno::SUCCESS);
            }
            (Target::Real(real), _) => real,
        };
        readdir::forget(&mut s.listing, real);
        in_tokio(p1::fd_close(wasi, &mut wiggle::GuestMemory::Unshared(g.0), real))
    })
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
        .func_wrap(M, "sock_accept", |mut c: Caller<'_, T>, fd: i32, flags: i32, out: i32| sock_accept(&mut c, fd, flags, out))
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
                |w, m, fd| p1::sock_recv(w, m, fd, iovs, n, flags, out_len, out_flags),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "sock_send", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, flags: i32, out: i32| {
            dispatch(
                &mut c,
                fd,
                |g, s| send_from(g, s, fd, iovs, n).and_then(|sent| g.put_u32(out, sent)),
                |w, m, fd| p1::sock_send(w, m, fd, iovs, n, flags, out),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "sock_shutdown", |mut c: Caller<'_, T>, fd: i32, how: i32| {
            dispatch(&mut c, fd, |_, s| shutdown(s, fd, how), |w, m, fd| p1::sock_shutdown(w, m, fd, how))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_read", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| {
            dispatch(
                &mut c,
                fd,
                |g, s| recv_into(g, s, fd, iovs, n, false).and_then(|got| g.put_u32(out, got)),
                |w, m, fd| in_tokio(p1::fd_read(w, m, fd, iovs, n, out)),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_write", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| {
            dispatch(
                &mut c,
                fd,
                |g, s| send_from(g, s, fd, iovs, n).and_then(|sent| g.put_u32(out, sent)),
                |w, m, fd| in_tokio(p1::fd_write(w, m, fd, iovs, n, out)),
            )
        })
        .map_err(boxed)?;
    // Sockets cannot seek; aliases (files) can.
    linker
        .func_wrap(M, "fd_pread", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, at: i64, out: i32| {
            dispatch(&mut c, fd, |_, _| Err(errno::SPIPE), |w, m, fd| in_tokio(p1::fd_pread(w, m, fd, iovs, n, at, out)))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_pwrite", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, at: i64, out: i32| {
            dispatch(&mut c, fd, |_, _| Err(errno::SPIPE), |w, m, fd| in_tokio(p1::fd_pwrite(w, m, fd, iovs, n, at, out)))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_seek", |mut c: Caller<'_, T>, fd: i32, delta: i64, whence: i32, out: i32| {
            dispatch(&mut c, fd, |_, _| Err(errno::SPIPE), |w, m, fd| in_tokio(p1::fd_seek(w, m, fd, delta, whence, out)))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_sync", |mut c: Caller<'_, T>, fd: i32| {
            dispatch(&mut c, fd, |_, _| Err(errno::INVAL), |w, m, fd| in_tokio(p1::fd_sync(w, m, fd)))
        })
        .map_err(boxed)?;
    linker.func_wrap(M, "fd_close", |mut c: Caller<'_, T>, fd: i32| fd_close(&mut c, fd)).map_err(boxed)?;
    linker
        .func_wrap(M, "fd_fdstat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
            dispatch(&mut c, fd, |g, s| fdstat(g, s, fd, out), |w, m, fd| in_tokio(p1::fd_fdstat_get(w, m, fd, out)))
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
                |w, m, fd| p1::fd_fdstat_set_flags(w, m, fd, flags),
            )
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_filestat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
            dispatch(&mut c, fd, |g, s| filestat(g, s, fd, out), |w, m, fd| in_tokio(p1::fd_filestat_get(w, m, fd, out)))
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "fd_readdir", |mut c: Caller<'_, T>, fd: i32, buf: i32, len: i32, cookie: i64, out: i32| {
            with_host(&mut c, |mut g, wasi, s| match s.target(fd) {
                Target::Socket => Ok(errno::NOTDIR),
                Target::Closed => Ok(errno::BADF),
                Target::Real(real) => readdir::fd_readdir(&mut g, wasi, &mut s.listing, real, (buf, len, cookie, out)),
            })
        })
        .map_err(boxed)?;
    // Wrapped only so that a kept listing never outlives the descriptor it belongs to.
    linker
        .func_wrap(M, "fd_renumber", |mut c: Caller<'_, T>, from: i32, to: i32| {
            with_host(&mut c, |g, wasi, s| {
                readdir::forget(&mut s.listing, from);
                readdir::forget(&mut s.listing, to);
                in_tokio(p1::fd_renumber(wasi, &mut wiggle::GuestMemory::Unshared(g.0), from, to))
            })
        })
        .map_err(boxed)?;
    linker
        .func_wrap(M, "poll_oneoff", |mut c: Caller<'_, T>, subs: i32, events: i32, n: i32, out: i32| {
            with_host(&mut c, |g, wasi, sockets| poll::poll_oneoff(g, wasi, sockets, (subs, events, n, out)))
        })
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

    #[test]
    fn aliases_stand_for_their_descriptor_until_closed() {
        let mut s = SocketPairs::default();
        let alias = s.alias(5).unwrap();
        assert_eq!(s.target(alias as i32), Target::Real(5));
        assert_eq!(s.target(5), Target::Real(5));
        assert_eq!(s.target(FACTORY_FD as i32), Target::Socket);
        s.closed_by_guest.insert(5);
        assert_eq!(s.target(5), Target::Closed);
        s.aliases.remove(&alias);
        assert_eq!(s.target(alias as i32), Target::Closed);
    }
}
