//! The shared zone: raw key sets and fetch state for every key URI, shared by all workers
//! of a node and kept across reloads.
//!
//! The layout is one `ZoneData` allocated from the zone's slab pool, with a fixed table of
//! slots; each slot's JWKS body is a separate slab allocation. The zone is mapped at the same
//! address in every process (NGINX maps it in the master before forking), so the pointers
//! stored here are valid everywhere. Locks are held only to copy bytes in or out.

use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering};

use nginx_sys::{
    ngx_int_t, ngx_shm_zone_t, ngx_slab_calloc, ngx_slab_free, ngx_slab_pool_t, NGX_ERROR, NGX_OK,
};
use ngx::sync::RwLock;
use ngx::sync::{RwLockReadGuard, RwLockWriteGuard};

use auth_jwt_core::directive::MAX_URL_LEN;
use auth_jwt_core::jwt::error::Status;
use auth_jwt_core::metrics::{self, Counters};

/// Most key URIs (and discovery issuers) one configuration may name.
pub const MAX_SOURCES: usize = 32;
const MAGIC: u64 = u64::from_be_bytes(*b"auth_jwt");
/// Bump when `ZoneData` changes shape: a reload with another layout starts a fresh table.
const LAYOUT_VERSION: u64 = 6;
/// Workers with their own counter slot; more share slots (sums stay right, atomics).
pub const MAX_WORKERS: usize = 64;

/// A string stored inline in shared memory, cut at a character boundary when too long.
#[repr(C)]
pub struct FixedStr<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> FixedStr<N> {
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len.min(N)]).unwrap_or_default()
    }

    pub fn set(&mut self, s: &str) {
        let mut end = s.len().min(N);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.buf[..end].copy_from_slice(&s.as_bytes()[..end]);
        self.len = end;
    }
}

/// A slab allocation holding a JWKS body.
#[repr(C)]
struct ShmBytes {
    ptr: *mut u8,
    len: usize,
}

/// Fetch state of one key URI. All-zero is the valid empty state.
#[repr(C)]
pub struct SlotState {
    /// The configured key URI or discovery issuer this slot belongs to; empty when free.
    pub uri: FixedStr<MAX_URL_LEN>,
    /// The `jwks_uri` a discovery document named.
    pub jwks_uri: FixedStr<MAX_URL_LEN>,
    pub etag: FixedStr<256>,
    pub last_error: FixedStr<256>,
    body: ShmBytes,
    /// Bumped whenever the stored body changes; workers re-parse when it moves.
    pub generation: u64,
    /// Last successful contact with the IdP (200 or 304), seconds since the epoch.
    pub fetched_at: i64,
    /// When the next scheduled fetch is due.
    pub next_fetch: i64,
    /// Consecutive failures since the last success.
    pub failures: u32,
    /// The worker whose fetcher is fetching now, and until when its claim holds.
    pub lease_pid: i32,
    pub lease_until: i64,
    /// Last time an unknown `kid` made a fetch happen early.
    pub last_wake_fetch: i64,
    pub key_count: u32,
    pub fetches_ok: u64,
    pub fetches_not_modified: u64,
    pub fetches_failed: u64,
}

/// One slot: its state, and a wake-up request that the request path sets without a lock.
#[repr(C)]
pub struct Slot {
    state: RwLock<SlotState>,
    /// Time an unknown `kid` asked for an early fetch (0: none pending).
    pub wake: AtomicI64,
}

/// How many times a slot lock is tried before the caller gives up for now. Locks are held
/// only to copy bytes; a holder that never lets go is a process killed in that instant, and
/// nobody must hang on it (the fetcher retries next tick, a report shows the slot as busy).
const LOCK_TRIES: usize = 10_000;

impl Slot {
    /// The state for reading, unless the lock stays taken.
    pub fn read(&self) -> Option<RwLockReadGuard<'_, SlotState>> {
        (0..LOCK_TRIES).find_map(|_| {
            self.state.try_read().or_else(|| {
                std::thread::yield_now();
                None
            })
        })
    }

    /// The state for writing, unless the lock stays taken.
    pub fn write(&self) -> Option<RwLockWriteGuard<'_, SlotState>> {
        (0..LOCK_TRIES).find_map(|_| {
            self.state.try_write().or_else(|| {
                std::thread::yield_now();
                None
            })
        })
    }
}

/// One worker's request counters: atomics, written by that worker only (no lock, no shared
/// cache line), summed when scraped. All-zero is the empty state.
#[repr(C, align(64))]
pub struct WorkerCounters {
    /// Indexed like `Status::ALL`.
    pub requests: [AtomicU64; 8],
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Verification durations per histogram bucket (`metrics::BUCKETS`, then `+Inf`).
    pub buckets: [AtomicU64; metrics::BUCKETS.len() + 1],
    pub duration_sum_ns: AtomicU64,
    /// Indexed like `metrics::SENDER`.
    pub sender: [AtomicU64; metrics::SENDER.len()],
}

impl WorkerCounters {
    /// Counts one request's outcome.
    pub fn outcome(&self, status: Status) {
        if let Some(i) = Status::ALL.iter().position(|s| *s == status) {
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one token check: cache hit or miss, and how long it took.
    pub fn check(&self, hit: bool, nanos: u64) {
        let lookups = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        lookups.fetch_add(1, Ordering::Relaxed);
        self.buckets[metrics::bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts one check of a sender-constrained token (`metrics::SENDER` labels).
    pub fn sender(&self, method: &str, result: &str) {
        if let Some(i) = metrics::sender_index(method, result) {
            self.sender[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[repr(C)]
pub struct ZoneData {
    magic: u64,
    version: u64,
    pool: *mut ngx_slab_pool_t,
    pub slots: [Slot; MAX_SOURCES],
    pub counters: [WorkerCounters; MAX_WORKERS],
    pub revocations: crate::revocation::RevocationZone,
    /// DPoP proofs seen within their window, and the outbox sharing them (`crate::replay`).
    pub dpop_replay: crate::replay::ReplayZone,
    pub limits: crate::limit::LimitZones,
}

// SAFETY: `ZoneData` lives in shared memory; every mutable field is behind a lock or atomic,
// and `pool` is only used through NGINX's slab functions, which lock the pool themselves.
unsafe impl Sync for ZoneData {}
// SAFETY: the body pointer is only dereferenced under the slot's lock.
unsafe impl Send for SlotState {}
// SAFETY: as above.
unsafe impl Sync for SlotState {}

/// A cycle's handle on its zone, kept in that cycle's main configuration (never in a
/// process-wide static: a reload that fails after its zone was initialised frees that zone
/// with the cycle, while the running cycle, and the workers the master forks for it, go on
/// with their own).
#[derive(Debug, Default)]
pub struct ZoneRef(AtomicPtr<ZoneData>);

impl ZoneRef {
    /// The zone, once this cycle's zone is initialised.
    pub fn get(&self) -> Option<&'static ZoneData> {
        // SAFETY: a non-NULL value was stored by `init` for this configuration's cycle and
        // points at a `ZoneData` in shared memory that stays mapped as long as that cycle
        // (and so this configuration) lives.
        unsafe { self.0.load(Ordering::Acquire).as_ref() }
    }
}

impl SlotState {
    /// A copy of the stored JWKS body.
    pub fn body(&self) -> Vec<u8> {
        if self.body.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: `ptr` is a live slab allocation of `len` bytes, replaced only under the
        // slot's write lock, which the caller's borrow excludes.
        unsafe { core::slice::from_raw_parts(self.body.ptr, self.body.len) }.to_vec()
    }

    /// Frees the body and clears the state, for a slot taken over by another URI.
    fn reset(&mut self, zone: &ZoneData, uri: &str) {
        self.replace_body(zone, &[]);
        // SAFETY: all-zero is this struct's empty state (no pointers remain after the call
        // above freed the body).
        unsafe { ptr::write_bytes(ptr::from_mut(self), 0, 1) };
        self.uri.set(uri);
    }

    /// Stores `bytes` as the body; `false` when the zone is out of memory (the old body stays).
    pub fn replace_body(&mut self, zone: &ZoneData, bytes: &[u8]) -> bool {
        let new = if bytes.is_empty() {
            ptr::null_mut()
        } else {
            // SAFETY: `pool` is the zone's slab pool; `ngx_slab_calloc` locks it.
            let p = unsafe { ngx_slab_calloc(zone.pool, bytes.len()) }.cast::<u8>();
            if p.is_null() {
                return false;
            }
            // SAFETY: `p` has room for `bytes.len()` bytes.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
            p
        };
        if !self.body.ptr.is_null() {
            // SAFETY: the old body was allocated from this pool and nothing else points at it.
            unsafe { ngx_slab_free(zone.pool, self.body.ptr.cast()) };
        }
        self.body = ShmBytes {
            ptr: new,
            len: bytes.len(),
        };
        true
    }
}

impl ZoneData {
    /// A zeroed allocation of `bytes` from the zone's pool; NULL when it has no room.
    pub fn alloc(&self, bytes: usize) -> *mut u8 {
        // SAFETY: `pool` is the zone's slab pool; `ngx_slab_calloc` locks it.
        unsafe { ngx_slab_calloc(self.pool, bytes) }.cast()
    }

    /// This worker's counters (`ngx_worker` is the worker's number, 0 without a master).
    pub fn worker_counters(&self) -> &WorkerCounters {
        // SAFETY: `ngx_worker` is written once when the worker starts, before any request.
        let worker = unsafe { nginx_sys::ngx_worker };
        &self.counters[worker % MAX_WORKERS]
    }

    /// Every worker's counters, summed.
    pub fn counters(&self) -> Counters {
        let mut sum = Counters::default();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for w in &self.counters {
            for (total, n) in sum.requests.iter_mut().zip(&w.requests) {
                *total += get(n);
            }
            for (total, n) in sum.buckets.iter_mut().zip(&w.buckets) {
                *total += get(n);
            }
            for (total, n) in sum.sender.iter_mut().zip(&w.sender) {
                *total += get(n);
            }
            sum.cache_hits += get(&w.cache_hits);
            sum.cache_misses += get(&w.cache_misses);
            sum.duration_sum_ns += get(&w.duration_sum_ns);
        }
        sum
    }

    /// The slot for `uri` (see [`choose_slot`]), reset for it unless it already holds it.
    pub fn claim(&self, uri: &str, wanted: &[&str], take_over: bool) -> Option<usize> {
        let held: Vec<String> = self
            .slots
            .iter()
            .map(|s| s.read().map(|st| st.uri.as_str().to_owned()))
            .collect::<Option<_>>()?;
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        let i = choose_slot(&held, uri, wanted, take_over)?;
        let slot = &self.slots[i];
        let mut st = slot.write()?;
        // Another process may have claimed it between the look and the lock: look again.
        choose_slot(&[st.uri.as_str()], uri, wanted, take_over)?;
        if st.uri.as_str() != uri {
            st.reset(self, uri);
            slot.wake.store(0, Ordering::Relaxed);
        }
        Some(i)
    }
}

/// Which slot `uri` may use, given the URI each slot holds ("" when free): the one already
/// holding it (its keys survive a reload), else a free one. With `take_over`, else one whose
/// URI no longer appears in `wanted`: only once the cycle has committed (from a worker),
/// since until then a failed reload leaves the running configuration using every slot it had.
fn choose_slot(held: &[&str], uri: &str, wanted: &[&str], take_over: bool) -> Option<usize> {
    let find = |pred: &dyn Fn(&str) -> bool| held.iter().position(|h| pred(h));
    find(&|h| h == uri)
        .or_else(|| find(&str::is_empty))
        .or_else(|| take_over.then(|| find(&|h| !wanted.contains(&h))).flatten())
}

/// `ngx_shm_zone_t.init`: reuses the previous cycle's table when its layout matches, else
/// allocates a new one; then lets `on_ready` claim slots for the configured URIs.
///
/// # Safety
/// NGINX calls it with the zone and the previous cycle's `data` (or NULL).
pub unsafe fn init(
    shm_zone: *mut ngx_shm_zone_t,
    old: *mut c_void,
    handle: &ZoneRef,
    on_ready: impl FnOnce(&'static ZoneData) -> bool,
) -> ngx_int_t {
    // SAFETY: NGINX passes the zone being initialised; its `shm.addr` is the slab pool.
    let (shm_zone, pool) = unsafe {
        (
            &mut *shm_zone,
            (*shm_zone).shm.addr.cast::<ngx_slab_pool_t>(),
        )
    };
    let reusable = NonNull::new(old.cast::<ZoneData>()).filter(|z| {
        // SAFETY: `old` is what this function stored in the previous cycle's zone.
        let z = unsafe { z.as_ref() };
        z.magic == MAGIC && z.version == LAYOUT_VERSION
    });
    let zone = match reusable {
        Some(z) => z.as_ptr(),
        None => {
            // SAFETY: a fresh table in the zone's pool; all-zero is its empty state.
            let z = unsafe { ngx_slab_calloc(pool, core::mem::size_of::<ZoneData>()) }
                .cast::<ZoneData>();
            if z.is_null() {
                return NGX_ERROR as ngx_int_t;
            }
            // SAFETY: `z` is a fresh, zeroed allocation big enough for `ZoneData`.
            unsafe {
                (*z).magic = MAGIC;
                (*z).version = LAYOUT_VERSION;
                (*z).pool = pool;
                (*pool).data = z.cast();
                // Out-of-memory for a JWKS body is reported by the fetcher, not as an [crit].
                (*pool).set_log_nomem(0);
            }
            z
        }
    };
    shm_zone.data = zone.cast();
    handle.0.store(zone, Ordering::Release);
    // SAFETY: `zone` points at an initialised `ZoneData` in shared memory.
    let zone: &'static ZoneData = unsafe { &*zone };
    if on_ready(zone) {
        NGX_OK as ngx_int_t
    } else {
        NGX_ERROR as ngx_int_t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_is_taken_over_only_after_commit() {
        let running: Vec<String> = (0..4).map(|i| format!("https://a/{i}")).collect();
        let held: Vec<&str> = running.iter().map(String::as_str).collect();
        let new = ["https://b/0", "https://a/2"];
        // Held slots are found again, whatever the phase.
        assert_eq!(choose_slot(&held, "https://a/2", &new, false), Some(2));
        assert_eq!(choose_slot(&held, "https://a/2", &new, true), Some(2));
        // A new cycle's URI, before commit: no slot of the running cycle's.
        assert_eq!(choose_slot(&held, new[0], &new, false), None);
        // After commit, the first slot of a URI the cycle no longer names.
        assert_eq!(choose_slot(&held, new[0], &new, true), Some(0));
        // A free slot goes first, in either phase.
        let with_free = ["https://a/0", "", "https://a/2"];
        assert_eq!(choose_slot(&with_free, new[0], &new, false), Some(1));
        assert_eq!(choose_slot(&with_free, new[0], &new, true), Some(1));
        // Nothing to take when every slot is still wanted.
        assert_eq!(choose_slot(&held, new[0], &held, true), None);
    }
}
