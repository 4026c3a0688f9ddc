//! Revocations in the shared zone: the configured sources, the table that the node's elected
//! sync thread fills (see `sync`), and the one lookup the request path makes.

use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ngx::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use auth_jwt_core::authn::Verified;
use auth_jwt_core::revocation::redis_url::{OnStale, RedisArgs};
use auth_jwt_core::revocation::report::RevocationReport;
use auth_jwt_core::revocation::{self as core_rev, Insert, Kind, Revocation, Revoked, Table};

pub(crate) mod redis;
pub mod sync;

/// Default `auth_jwt_revocation_lifetime`: the longest lifetime of a token.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(86400);
/// Share of `auth_jwt_zone` given to the revocation table (1/4: 4 MiB, 229,376 entries, in
/// the default 16m zone).
const ZONE_SHARE: usize = 4;

/// `auth_jwt_revocation_file`: its path, and the list read at configuration load.
#[derive(Debug)]
pub struct FileSource {
    pub path: String,
    pub initial: Vec<Revocation>,
}

/// `auth_jwt_revocation_redis`, with what the master read for it (the worker may not).
#[derive(Debug)]
pub struct RedisSource {
    pub args: RedisArgs,
    /// From the URL or `password_file=`; never logged, never shown.
    pub password: Option<String>,
    /// PEM of `trusted_certificate=`, parsed and checked at load.
    pub ca_pem: Option<Vec<u8>>,
}

/// The revocation part of the `http` configuration.
#[derive(Debug, Default)]
pub struct RevocationConf {
    pub file: Option<Arc<FileSource>>,
    pub redis: Option<Arc<RedisSource>>,
    /// `auth_jwt_revocation_lifetime`.
    pub lifetime: Option<Duration>,
}

impl RevocationConf {
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.redis.is_some()
    }

    pub fn lifetime_secs(&self) -> i64 {
        self.lifetime.unwrap_or(DEFAULT_LIFETIME).as_secs() as i64
    }
}

/// A short text inline in shared memory.
#[repr(C)]
pub struct Text<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> Text<N> {
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

/// Sync state, written by the sync thread that holds the table's writer lock; read by the
/// status page. All-zero is the valid initial state.
#[repr(C)]
pub struct SyncState {
    /// Last stream id applied (`ms-seq`).
    pub last_id: (u64, u64),
    pub last_error: Text<256>,
    pub file_loaded_at: i64,
    pub file_mtime: i64,
    pub file_len: u64,
    pub resyncs: u64,
    pub last_resync_ms: u64,
}

/// Connection states, for the status page (0: off).
pub const CONN_CONNECTING: u32 = 1;
pub const CONN_UP: u32 = 2;
pub const CONN_DOWN: u32 = 3;

/// The zone's revocation part. All-zero is the valid empty state (no table yet).
#[repr(C)]
pub struct RevocationZone {
    words: AtomicPtr<AtomicU64>,
    nwords: AtomicUsize,
    state: RwLock<SyncState>,
    /// Last successful read from Redis (seconds since the epoch); set to the start time when
    /// the zone is made, so that `max_stale` counts from there.
    pub synced_at: AtomicI64,
    pub connection: AtomicU32,
    pub sync_failures: AtomicU64,
    pub malformed: AtomicU64,
    pub table_full: AtomicU64,
}

const LOCK_TRIES: usize = 10_000;

impl RevocationZone {
    /// The table (empty until allocated).
    pub fn table(&self) -> Table<'_> {
        let p = self.words.load(Ordering::Acquire);
        if p.is_null() {
            return Table::new(&[]);
        }
        let n = self.nwords.load(Ordering::Relaxed);
        // SAFETY: a non-NULL `words` is a zeroed slab allocation of `nwords` u64 words made by
        // `allocate`, never freed while the zone lives; atomics have the layout of u64.
        Table::new(unsafe { core::slice::from_raw_parts(p, n) })
    }

    /// Allocates the table once, sized from the zone (`zone_size` bytes): an allocation in an
    /// earlier cycle's zone is kept, with its entries. `alloc` is the zone's fallible slab
    /// allocator. False when the zone has no room.
    pub fn allocate(&self, zone_size: usize, alloc: impl Fn(usize) -> *mut u8) -> bool {
        if !self.words.load(Ordering::Acquire).is_null() {
            return true;
        }
        // The share of the zone holds the slots; the header's cache line comes on top, so
        // that the share is not one line short of its power of two (half the slots).
        let slots = Table::slots_for_bytes(zone_size / ZONE_SHARE + core_rev::table::HEADER * 8);
        let words = Table::words_for(slots);
        let p = alloc(words * 8).cast::<AtomicU64>();
        if p.is_null() || slots == 0 {
            return false;
        }
        self.nwords.store(words, Ordering::Relaxed);
        self.words.store(p, Ordering::Release);
        true
    }

    pub fn read(&self) -> Option<RwLockReadGuard<'_, SyncState>> {
        (0..LOCK_TRIES).find_map(|_| {
            self.state.try_read().or_else(|| {
                std::thread::yield_now();
                None
            })
        })
    }

    pub fn write(&self) -> Option<RwLockWriteGuard<'_, SyncState>> {
        (0..LOCK_TRIES).find_map(|_| {
            self.state.try_write().or_else(|| {
                std::thread::yield_now();
                None
            })
        })
    }

    /// Stores one revocation; a full table is swept, then the miss is counted and returned.
    pub fn store(&self, r: &Revocation, now: i64, lifetime: i64) -> Insert {
        let table = self.table();
        let e = r.entry(now, lifetime);
        if !e.live(now) {
            return Insert::Unchanged;
        }
        match table.insert(e) {
            Insert::Full => {
                table.sweep(now);
                let again = table.insert(e);
                if again == Insert::Full {
                    self.table_full.fetch_add(1, Ordering::Relaxed);
                }
                again
            }
            done => done,
        }
    }

    /// The report for the status page and metrics.
    pub fn report(&self, conf: &RevocationConf) -> RevocationReport {
        let table = self.table();
        let mut r = RevocationReport {
            entries: Kind::ALL.map(|k| table.count(k)),
            capacity: table.capacity() as u64,
            connection: match self.connection.load(Ordering::Relaxed) {
                CONN_UP => "connected",
                CONN_CONNECTING => "connecting",
                CONN_DOWN => "down",
                _ => "off",
            },
            sync_failures: self.sync_failures.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            table_full: self.table_full.load(Ordering::Relaxed),
            ..Default::default()
        };
        if let Some(redis) = &conf.redis {
            r.redis = redis.args.url.to_string();
            r.stream = redis.args.stream.clone();
            r.synced_at = self.synced_at.load(Ordering::Relaxed);
        }
        if let Some(file) = &conf.file {
            r.file = file.path.clone();
        }
        if let Some(st) = self.read() {
            if st.last_id != (0, 0) {
                r.last_id = format!("{}-{}", st.last_id.0, st.last_id.1);
                r.newest_entry_ms = st.last_id.0 as i64;
            }
            r.last_error = st.last_error.as_str().to_owned();
            r.file_loaded_at = st.file_loaded_at;
            r.resyncs = st.resyncs;
            r.last_resync_ms = st.last_resync_ms;
        }
        r
    }
}

/// Sets the zone up for `conf` at configuration load (in the master): the table, the start of
/// the `max_stale` clock, and the file's list, so that the first request already sees it.
/// Err(reason) for an `emerg` line.
pub fn init_zone(
    zone: &RevocationZone,
    conf: &RevocationConf,
    zone_size: usize,
    alloc: impl Fn(usize) -> *mut u8,
    now: i64,
) -> Result<(), String> {
    if !conf.enabled() {
        return Ok(());
    }
    if !zone.allocate(zone_size, alloc) {
        return Err("auth_jwt_zone is too small for the revocation table".into());
    }
    let _ = zone
        .synced_at
        .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    let Some(file) = &conf.file else {
        return Ok(());
    };
    let table = zone.table();
    // The master is the only writer now; a lock left by a killed sync thread lapses in time.
    let owner = std::process::id();
    if !table.try_lock(owner, now, now + 5) {
        return Ok(());
    }
    let lifetime = conf.lifetime_secs();
    let full = file
        .initial
        .iter()
        .filter(|r| zone.store(r, now, lifetime) == Insert::Full)
        .count();
    table.unlock(owner);
    if full > 0 {
        return Err(format!(
            "{full} revocations of \"{}\" do not fit in the table (capacity {}): raise auth_jwt_zone",
            file.path,
            table.capacity()
        ));
    }
    Ok(())
}

/// The request path: whether the verified token is revoked. One lookup per fact in shared
/// memory, or none while the table has not changed since the token's last clean check; no
/// lock, no allocation.
pub fn check(
    zone: &RevocationZone,
    conf: &RevocationConf,
    token: &Verified,
    now: i64,
) -> Option<Revoked> {
    if !conf.enabled() {
        return None;
    }
    token.revoked(&zone.table(), now)
}

/// Whether `on_stale=503` applies now: Redis not read for longer than `max_stale`.
pub fn too_stale(zone: &RevocationZone, conf: &RevocationConf, now: i64) -> bool {
    let Some(redis) = &conf.redis else {
        return false;
    };
    if redis.args.on_stale != OnStale::Refuse {
        return false;
    }
    let synced = zone.synced_at.load(Ordering::Relaxed);
    now.saturating_sub(synced) > redis.args.max_stale.as_secs() as i64
}
