//! A tiny ordered parallel map on scoped threads: the phases that work per object or per
//! function (parsing, patching, validating bodies) split their items into one contiguous
//! chunk per core and keep the results in input order.

use std::num::NonZeroUsize;

/// Applies `f` to every item on up to `available_parallelism` threads, each given at least
/// `min_per_thread` items (a thread costs about as much as patching a few hundred small
/// functions); results are in item order.
pub fn map<T: Sync, R: Send>(items: &[T], min_per_thread: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(items.len() / min_per_thread.max(1));
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>())).collect();
        // A panic in a worker is a bug in `f`; re-raise it on this thread.
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// Like [`map`], but hands each thread its whole chunk at once and returns one result per
/// chunk, in order: for work that appends to one buffer per thread.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], min_per_thread: usize, f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(items.len() / min_per_thread.max(1));
    if threads <= 1 {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(move || f(part))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}
