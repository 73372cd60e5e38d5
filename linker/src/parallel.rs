//! Tiny ordered parallel maps on scoped threads: the phases that work per object or per
//! function (parsing, locating relocations, patching, validating bodies) hand out their items
//! (or contiguous pieces of them) to one thread per core, each taking the next piece when it
//! is done, and keep the results in input order.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Applies `f` to every item on up to [`cores`] threads when there are at least
/// `min_per_thread` items per thread (a thread costs about as much as patching a few hundred
/// small functions); results are in item order.
pub fn map<T: Sync, R: Send>(items: &[T], min_per_thread: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if cores() <= 1 || items.len() < 2 * min_per_thread.max(1) {
        return items.iter().map(f).collect();
    }
    run(items.iter().collect(), f)
}

/// How many threads the phases use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Splits `0..weights.len()` into at most `pieces` contiguous ranges of about equal total
/// weight, each of at least `min_weight` (below that handing work to another thread costs
/// more than it saves). Items differ widely in size (one `__wasm_apply_data_relocs` can
/// outweigh thousands of small functions), so counting items would balance badly.
pub fn balanced_ranges(weights: &[usize], pieces: usize, min_weight: usize) -> Vec<std::ops::Range<usize>> {
    let total: usize = weights.iter().sum();
    let pieces = pieces.min(total / min_weight.max(1)).max(1);
    let share = total.div_ceil(pieces).max(1);
    let mut ranges = Vec::with_capacity(pieces);
    let (mut start, mut acc) = (0, 0);
    for (i, &w) in weights.iter().enumerate() {
        acc += w;
        if acc >= share && ranges.len() + 1 < pieces {
            ranges.push(start..i + 1);
            start = i + 1;
            acc = 0;
        }
    }
    if start < weights.len() || ranges.is_empty() {
        ranges.push(start..weights.len());
    }
    ranges
}

/// How many pieces to cut parallel work into: several per core, so that threads that take
/// the next piece when done end together even when pieces cost different amounts or the
/// machine is busy with other work.
pub fn pieces() -> usize {
    cores() * 8
}

/// Runs `f` on every work item on up to [`cores`] threads (this one included), each taking
/// the next unclaimed item when it is done with one; results are in item order.
pub fn run<W: Send, R: Send>(work: Vec<W>, f: impl Fn(W) -> R + Sync) -> Vec<R> {
    let count = work.len();
    let threads = cores().min(count);
    if threads <= 1 {
        return work.into_iter().map(f).collect();
    }
    // Each slot is taken exactly once, by the thread that claimed its index.
    let slots: Vec<Mutex<Option<W>>> = work.into_iter().map(|w| Mutex::new(Some(w))).collect();
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(i) else { break };
            if let Some(w) = slot.lock().ok().and_then(|mut s| s.take()) {
                done.push((i, f(w)));
            }
        }
        done
    };
    let mut done = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mut done = worker();
        for handle in handles {
            // A panic in a worker is a bug in `f`; re-raise it on this thread.
            done.extend(handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        done
    });
    done.sort_unstable_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, r)| r).collect()
}
