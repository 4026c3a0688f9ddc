//! The DPoP replay table in the shared zone, and its sharing between nodes: the outbox ring
//! that the request path pushes accepted proofs to, and the counters of the sync thread
//! (`sync`) that sends them through Redis and adds the other nodes' ones to the table.

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use auth_jwt_core::dpop::share::{self, Outbox, ShareReport, Shared};

use crate::revocation::{RedisSource, CONN_CONNECTING, CONN_DOWN, CONN_UP};

pub mod sync;

/// The replay table takes this fraction of `auth_jwt_zone` (16m: 131,072 proofs).
const TABLE_SHARE: usize = 16;
/// Cells of the outbox (24 bytes each: 96 KiB), made only with `auth_jwt_revocation_redis`.
/// The sync thread empties it every 20 ms: room for 200,000 new proofs a second.
pub const OUTBOX_CELLS: usize = 4096;
/// The Redis stream the nodes share accepted proofs through.
pub const STREAM: &str = "auth_jwt:dpop";

/// A slab allocation of atomics in the zone. All-zero is "not allocated".
#[repr(C)]
struct Words {
    ptr: AtomicPtr<AtomicU64>,
    len: AtomicUsize,
}

impl Words {
    fn get(&self) -> &[AtomicU64] {
        let p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            return &[];
        }
        // SAFETY: a non-NULL `ptr` is a zeroed slab allocation of `len` u64 words made by
        // `allocate`, never freed while the zone lives; atomics have the layout of u64.
        unsafe { core::slice::from_raw_parts(p, self.len.load(Ordering::Relaxed)) }
    }

    /// Allocates `len` words once (kept, with their contents, across reloads).
    fn allocate(&self, len: usize, alloc: impl Fn(usize) -> *mut u8) -> bool {
        if !self.ptr.load(Ordering::Acquire).is_null() {
            return true;
        }
        let p = alloc(len * 8).cast::<AtomicU64>();
        if p.is_null() || len == 0 {
            return false;
        }
        self.len.store(len, Ordering::Relaxed);
        self.ptr.store(p, Ordering::Release);
        true
    }
}

/// The zone's DPoP part. All-zero is the valid empty state.
#[repr(C)]
pub struct ReplayZone {
    table: Words,
    outbox: Words,
    /// The sync thread's lease (`auth_jwt_core::lease`): one per node sends and receives.
    pub lease: AtomicU64,
    /// This node's id in the stream's entries (its own entries come back and are skipped).
    pub node: AtomicU64,
    pub connection: AtomicU32,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub failures: AtomicU64,
}

impl ReplayZone {
    /// The replay table (empty until allocated).
    pub fn slots(&self) -> &[AtomicU64] {
        self.table.get()
    }

    /// The outbox (empty, so every push fails, without Redis).
    pub fn outbox(&self) -> Outbox<'_> {
        Outbox::new(self.outbox.get())
    }

    /// Allocates the table for a zone of `zone_size` bytes, and with `sharing` the outbox and
    /// this node's id; false when the zone has no room.
    pub fn allocate(
        &self,
        zone_size: usize,
        sharing: bool,
        alloc: impl Fn(usize) -> *mut u8,
    ) -> bool {
        if !self.table.allocate(zone_size / TABLE_SHARE / 8, &alloc) {
            return false;
        }
        if self.node.load(Ordering::Relaxed) == 0 {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            self.node.store(h.finish() | 1, Ordering::Relaxed);
        }
        !sharing || self.outbox.allocate(share::words_for(OUTBOX_CELLS), &alloc)
    }

    /// The request path, after a proof was recorded as fresh: queue it for the other nodes
    /// (no wait, no lock; a full outbox is counted). Nothing happens without Redis.
    pub fn share(&self, digest: &[u8; 32], expires: u32) {
        let outbox = self.outbox();
        if outbox.capacity() > 0 && !outbox.push(Shared::of(digest, expires)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The report for the metrics and the status page.
    pub fn report(&self, redis: &RedisSource) -> ShareReport {
        ShareReport {
            redis: redis.args.url.to_string(),
            stream: STREAM.into(),
            connection: match self.connection.load(Ordering::Relaxed) {
                CONN_UP => "connected",
                CONN_CONNECTING => "connecting",
                CONN_DOWN => "down",
                _ => "off",
            },
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            outbox_capacity: self.outbox().capacity() as u64,
        }
    }
}
