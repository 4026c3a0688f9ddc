//! Rate limits in the shared zone: the configured `auth_jwt_limit_zone`s, their counters'
//! tables (carved from the zone at configuration load), and the one hit per limit that the
//! request path makes: no lock, no wait, no allocation.

use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::conf::ext::ComplexValue;
use crate::revocation::RedisSource;
use auth_jwt_core::limit::table::REDIS_UP;
use auth_jwt_core::limit::{
    key_hash, Decision, KeyHasher, LimitStatus, LimitTable, LimitZoneArgs, Shown,
};

pub mod sync;

/// Most `auth_jwt_limit_zone`s in one configuration.
pub const MAX_LIMIT_ZONES: usize = 16;

/// One `auth_jwt_limit_zone`, as the master read it.
#[derive(Debug)]
pub struct LimitZoneConf {
    pub args: LimitZoneArgs,
    /// `key=`, evaluated after the token verified.
    pub key: ComplexValue,
    /// A `key=` of exactly one `$jwt_claim_<name>`: read from the claims directly.
    pub claim: Option<ClaimKey>,
    /// The key hash with the zone's name already in it.
    pub hasher: KeyHasher,
    /// `redis=`, with the password taken out of the URL (never logged).
    pub redis: Option<Arc<RedisSource>>,
}

/// A key that is one claim: its name, and the index of its variable, by which the request
/// path checks that the variable is still this module's (not shadowed by a `map`).
#[derive(Debug)]
pub struct ClaimKey {
    pub name: String,
    pub index: usize,
}

/// One zone's table in shared memory. All-zero is the valid empty state.
#[repr(C)]
pub struct LimitSlot {
    words: AtomicPtr<AtomicU64>,
    nwords: AtomicUsize,
    /// The zone's name hash and size, so that a reload keeps a table it still configures.
    id: AtomicU64,
}

/// The zone's limit part.
#[repr(C)]
pub struct LimitZones {
    slots: [LimitSlot; MAX_LIMIT_ZONES],
}

impl LimitZones {
    /// The table of zone `i` (empty until allocated).
    pub fn table(&self, i: usize) -> LimitTable<'_> {
        let Some(slot) = self.slots.get(i) else {
            return LimitTable::new(&[]);
        };
        let p = slot.words.load(Ordering::Acquire);
        if p.is_null() {
            return LimitTable::new(&[]);
        }
        let n = slot.nwords.load(Ordering::Relaxed);
        // SAFETY: a non-NULL `words` is a zeroed slab allocation of `nwords` u64 words made by
        // `init_zone`, never freed while the zone lives; atomics have the layout of u64.
        LimitTable::new(unsafe { core::slice::from_raw_parts(p, n) })
    }
}

fn id_of(args: &LimitZoneArgs) -> u64 {
    key_hash(&args.name, &args.size.to_le_bytes())
}

/// Allocates each configured zone's table (`size=` bytes) at configuration load, in the
/// master; a table of the same name and size from the previous cycle is kept, with its counts.
/// Err(reason) for an `emerg` line.
pub fn init_zone(
    zones: &LimitZones,
    confs: &[LimitZoneConf],
    alloc: impl Fn(usize) -> *mut u8,
) -> Result<(), String> {
    for (slot, conf) in zones.slots.iter().zip(confs) {
        let id = id_of(&conf.args);
        if slot.id.load(Ordering::Relaxed) == id && !slot.words.load(Ordering::Acquire).is_null() {
            continue;
        }
        let words = LimitTable::words_for(LimitTable::slots_for_bytes(conf.args.size));
        let p = alloc(words * 8).cast::<AtomicU64>();
        if p.is_null() {
            return Err(format!(
                "auth_jwt_zone has no room for auth_jwt_limit_zone \"{}\" size={}",
                conf.args.name, conf.args.size
            ));
        }
        slot.nwords.store(words, Ordering::Relaxed);
        slot.words.store(p, Ordering::Release);
        slot.id.store(id, Ordering::Relaxed);
    }
    Ok(())
}

/// Bytes the zone needs for `confs` on top of its own (the tables plus slab overhead).
pub fn zone_bytes(confs: &[LimitZoneConf]) -> usize {
    confs.iter().map(|c| c.args.size + 8192).sum()
}

/// What one limit said about a request.
pub struct Refused {
    pub zone: usize,
    pub retry_after: u32,
    /// The first refusal of this key in this second: log it.
    pub log: bool,
}

/// The request path: one hit per limit, in order; the first refusal ends it. `key_of` gives
/// the key's hash, or None for an empty key, which is not limited (as with `limit_req`).
/// Ok(`Passed` when a limit counted the request, with the fields of the tightest zone that
/// shows them; else `None`).
pub fn check(
    zones: &LimitZones,
    confs: &[LimitZoneConf],
    limits: &[usize],
    key_of: impl Fn(&LimitZoneConf) -> Option<u64>,
    now_ms: u64,
) -> Result<LimitStatus, Refused> {
    let (mut counted, mut shown) = (false, None);
    for &i in limits {
        let Some(conf) = confs.get(i) else {
            break;
        };
        let Some(key) = key_of(conf) else {
            continue;
        };
        counted = true;
        let p = &conf.args.policy;
        let table = zones.table(i);
        // Synced: the cluster's limit, each node spending its share of the room between two
        // syncs; alone (no Redis, or Redis down): the whole limit, or its share with nodes=.
        let (limit, share) = if conf.redis.is_some() && table.redis_state() == REDIS_UP {
            (p.limit(), conf.args.nodes.unwrap_or(1))
        } else {
            (p.alone(conf.args.nodes), 1)
        };
        match table.hit(key, now_ms, p.window_ms, limit, share) {
            Decision::Limit { retry_after } => {
                let log = table.log_due(key, now_ms / 1000);
                return Err(Refused {
                    zone: i,
                    retry_after,
                    log,
                });
            }
            Decision::Allow { remaining, reset_s } if conf.args.headers_always => {
                let here = Shown {
                    zone: i,
                    remaining,
                    reset_s,
                };
                shown = Some(Shown::tighter(shown, here));
            }
            Decision::Allow { .. } => {}
        }
    }
    Ok(if counted {
        LimitStatus::Passed(shown)
    } else {
        LimitStatus::None
    })
}
