//! `poll_oneoff` with virtual descriptors among the subscriptions.

use pymode_abi::host::socketpair::VIRTUAL_FD_BASE;
use wasmtime_wasi::p1::{WasiP1Ctx, wasi_snapshot_preview1 as p1};

use super::guest::{Guest, offset};
use super::{Readiness, SocketPairs, Target, errno, in_tokio};

const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const EVENTRWFLAGS_HANGUP: u16 = 1;
const TAG_FD_READ: u8 = 1;
const TAG_FD_WRITE: u8 = 2;

/// The event for a virtual socket's subscription, when it is ready.
fn ready_event(sockets: &SocketPairs, userdata: &[u8], tag: u8, fd: u32) -> Option<[u8; EVENT_SIZE]> {
    let readiness = if tag == TAG_FD_READ { sockets.read_readiness(fd) } else { sockets.write_readiness(fd) };
    let Readiness::Ready { bytes, hangup } = readiness else { return None };
    let mut ev = [0u8; EVENT_SIZE];
    ev[..8].copy_from_slice(userdata);
    let error = if sockets.ends.contains_key(&fd) { 0 } else { errno::BADF as u16 };
    ev[8..10].copy_from_slice(&error.to_le_bytes());
    ev[10] = tag;
    ev[16..24].copy_from_slice(&bytes.to_le_bytes());
    let flags = if hangup { EVENTRWFLAGS_HANGUP } else { 0 };
    ev[24..26].copy_from_slice(&flags.to_le_bytes());
    Some(ev)
}

/// What the subscriptions ask for: the ready virtual sockets' events, and the rest (aliases
/// turned into their real descriptors) for wasmtime-wasi.
struct Plan {
    any_virtual: bool,
    ready: Vec<[u8; EVENT_SIZE]>,
    rest: Vec<Vec<u8>>,
}

fn plan(g: &Guest<'_>, sockets: &SocketPairs, subs: i32, count: i32) -> Result<Plan, i32> {
    let count = usize::try_from(count).map_err(|_| errno::INVAL)?;
    let mut plan = Plan { any_virtual: false, ready: Vec::new(), rest: Vec::new() };
    for i in 0..count {
        let mut sub = g.bytes(offset(subs, i * SUBSCRIPTION_SIZE)?, SUBSCRIPTION_SIZE)?.to_vec();
        let tag = sub[8];
        let fd = u32::from_le_bytes([sub[16], sub[17], sub[18], sub[19]]);
        if (tag == TAG_FD_READ || tag == TAG_FD_WRITE) && fd >= VIRTUAL_FD_BASE {
            plan.any_virtual = true;
            match sockets.target(fd as i32) {
                Target::Real(real) => {
                    sub[16..20].copy_from_slice(&real.to_le_bytes());
                    plan.rest.push(sub);
                }
                _ => plan.ready.extend(ready_event(sockets, &sub[..8], tag, fd)),
            }
        } else {
            plan.rest.push(sub);
        }
    }
    Ok(plan)
}

/// The ready virtual sockets are answered at once; when none is ready, the rest (moved to
/// the front of the guest's subscription array, which wasi-libc does not read back) go to
/// wasmtime-wasi, since nothing can make a virtual socket ready while this thread waits.
pub(super) fn poll_oneoff(
    g: Guest<'_>,
    wasi: &mut WasiP1Ctx,
    sockets: &SocketPairs,
    (subs, events, count, nevents): (i32, i32, i32, i32),
) -> wasmtime::Result<i32> {
    let mut g = g;
    let plan = match plan(&g, sockets, subs, count) {
        Ok(p) => p,
        Err(e) => return Ok(e),
    };
    if !plan.any_virtual {
        return in_tokio(p1::poll_oneoff(wasi, &mut wiggle::GuestMemory::Unshared(g.0), subs, events, count, nevents));
    }
    let written = (|| {
        if !plan.ready.is_empty() {
            for (i, ev) in plan.ready.iter().enumerate() {
                g.put(offset(events, i * EVENT_SIZE)?, ev)?;
            }
            return g.put_u32(nevents, plan.ready.len() as u32).map(|()| true);
        }
        if plan.rest.is_empty() {
            return Err(errno::DEADLK);
        }
        for (i, sub) in plan.rest.iter().enumerate() {
            g.put(offset(subs, i * SUBSCRIPTION_SIZE)?, sub)?;
        }
        Ok(false)
    })();
    match written {
        Ok(true) => Ok(errno::SUCCESS),
        Ok(false) => {
            let n = plan.rest.len() as i32; // ok: at most `count`, an i32
            in_tokio(p1::poll_oneoff(wasi, &mut wiggle::GuestMemory::Unshared(g.0), subs, events, n, nevents))
        }
        Err(e) => Ok(e),
    }
}
