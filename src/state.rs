//! State a worker keeps for itself, outside shared memory: the verified-token cache.

use std::cell::RefCell;

use auth_jwt_core::authn::Cache;

thread_local! {
    /// This worker's verified-token cache (workers are single-threaded processes; the
    /// fetcher thread never touches it).
    static CACHE: RefCell<Cache> = RefCell::new(Cache::new(0));
}

/// Runs `f` on the cache, first resizing it to `capacity` entries if the configuration
/// asks for another size (the cache then starts empty).
pub fn with_cache<T>(capacity: usize, f: impl FnOnce(&mut Cache) -> T) -> T {
    CACHE.with_borrow_mut(|cache| {
        if cache.capacity() != capacity {
            *cache = Cache::new(capacity);
        }
        f(cache)
    })
}

/// Entries held, and capacity.
pub fn cache_fill() -> (usize, usize) {
    CACHE.with_borrow(|c| (c.len(), c.capacity()))
}
