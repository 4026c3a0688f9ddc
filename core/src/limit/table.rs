//! The counters' table: fixed-size open addressing over a slice of atomics that the module
//! places in shared memory. Every worker counts without a lock, a wait or an allocation; the
//! node's elected sync thread drains the unsynced hits and folds the cluster totals back in.
//!
//! A key lives in one of `PROBE` slots from its home. A new key takes an empty one, else the
//! least recently used of them (evicted and counted): memory never grows past the slice, and
//! no delete ever shifts a chain. Slot: key, state (window:24 | cur:20 | prev:20), two
//! pending words (window:24 | count:40) for the window's parity, the second of the last
//! logged refusal, last use in milliseconds.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{decide, Counts, MAX_LIMIT};

const TRACKED: usize = 0;
const EVICTED: usize = 1;
const ALLOWED: usize = 2;
const LIMITED: usize = 3;
const SYNC_FAILURES: usize = 4;
const WRITER: usize = 5;
const REDIS: usize = 6;
/// Words before the first slot (one cache line).
pub const HEADER: usize = 8;
pub const SLOT_WORDS: usize = 6;
/// Bytes per slot.
pub const SLOT_BYTES: usize = SLOT_WORDS * 8;
/// Slots a key may live in, from its home.
pub const PROBE: usize = 8;
const TRIES: usize = 64;
const WMASK: u64 = (1 << 24) - 1;
const CMASK: u64 = (1 << 20) - 1;
const PMASK: u64 = (1 << 40) - 1;
const LOW: u64 = u32::MAX as u64;

/// Redis reachable at the last sync.
pub const REDIS_UP: u64 = 1;
/// The last sync failed: the node limits alone.
pub const REDIS_DOWN: u64 = 2;

/// The window rule's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow { remaining: u32, reset_s: u32 },
    Limit { retry_after: u32 },
}

/// One key's unsynced hits, drained for Redis; `delta` 0 asks for the total only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncItem {
    pub slot: usize,
    pub key: u64,
    pub window: u64,
    pub delta: u64,
}

/// A view of a table's words.
#[derive(Clone, Copy)]
pub struct LimitTable<'a> {
    words: &'a [AtomicU64],
    slots: usize,
}

fn unpack(state: u64, now_window: u64) -> Counts {
    let stored = state >> 40;
    let back = now_window.wrapping_sub(stored) & WMASK;
    Counts {
        window: now_window.wrapping_sub(back),
        cur: ((state >> 20) & CMASK) as u32,
        prev: (state & CMASK) as u32,
    }
}

fn pack(c: Counts) -> u64 {
    ((c.window & WMASK) << 40) | ((u64::from(c.cur) & CMASK) << 20) | (u64::from(c.prev) & CMASK)
}

impl<'a> LimitTable<'a> {
    /// Words needed for `slots` slots.
    pub const fn words_for(slots: usize) -> usize {
        HEADER + SLOT_WORDS * slots
    }

    /// Slots that fit in `bytes`.
    pub fn slots_for_bytes(bytes: usize) -> usize {
        (bytes / 8).saturating_sub(HEADER) / SLOT_WORDS
    }

    /// A view over `words` (all-zero is the empty table).
    pub fn new(words: &'a [AtomicU64]) -> Self {
        let slots = Self::slots_for_bytes(words.len() * 8);
        Self { words, slots }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    fn w(&self, i: usize) -> &AtomicU64 {
        &self.words[i]
    }

    fn at(&self, slot: usize, field: usize) -> &AtomicU64 {
        &self.words[HEADER + SLOT_WORDS * slot + field]
    }

    pub fn tracked(&self) -> u64 {
        self.counter(TRACKED)
    }
    pub fn evicted(&self) -> u64 {
        self.counter(EVICTED)
    }
    pub fn allowed(&self) -> u64 {
        self.counter(ALLOWED)
    }
    pub fn limited(&self) -> u64 {
        self.counter(LIMITED)
    }

    pub fn sync_failures(&self) -> u64 {
        self.counter(SYNC_FAILURES)
    }

    /// Redis as the sync last found it: 0 not tried yet, [`REDIS_UP`], [`REDIS_DOWN`].
    pub fn redis_state(&self) -> u64 {
        self.counter(REDIS)
    }

    /// Records a sync's outcome; true when the state changed (log it).
    pub fn set_redis_state(&self, state: u64) -> bool {
        if state == REDIS_DOWN {
            self.w(SYNC_FAILURES).fetch_add(1, Ordering::Relaxed);
        }
        self.slots > 0 && self.w(REDIS).swap(state, Ordering::Relaxed) != state
    }

    /// Takes the sync's lease for `owner` (non-zero) until `until` (seconds); a holder past
    /// its time (a killed worker) is replaced. One sync per node.
    pub fn try_lock(&self, owner: u32, now: i64, until: i64) -> bool {
        if self.slots == 0 {
            return false;
        }
        crate::lease::try_lease(self.w(WRITER), owner, now, until)
    }

    fn counter(&self, i: usize) -> u64 {
        if self.slots == 0 {
            return 0;
        }
        self.w(i).load(Ordering::Relaxed)
    }

    /// The slot holding `key`, taking one (empty, else the least recently used) if none does.
    fn find(&self, key: u64, now_ms: u64) -> Option<usize> {
        let home = (key as usize) % self.slots;
        for _ in 0..TRIES {
            let mut victim = (home, u64::MAX, 0);
            for d in 0..PROBE.min(self.slots) {
                let s = (home + d) % self.slots;
                let k = self.at(s, 0).load(Ordering::Acquire);
                if k == key {
                    return Some(s);
                }
                if k == 0 {
                    victim = (s, 0, 0);
                    break;
                }
                let used = self.at(s, 5).load(Ordering::Relaxed);
                if used < victim.1 {
                    victim = (s, used, k);
                }
            }
            let (s, _, old) = victim;
            if self
                .at(s, 0)
                .compare_exchange(old, key, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                for f in 1..SLOT_WORDS - 1 {
                    self.at(s, f).store(0, Ordering::Relaxed);
                }
                self.at(s, 5).store(now_ms, Ordering::Relaxed);
                let counter = if old == 0 { TRACKED } else { EVICTED };
                self.w(counter).fetch_add(1, Ordering::Relaxed);
                return Some(s);
            }
        }
        None
    }

    /// One request for `key` at `now_ms` against `limit` (the cluster's, or this node's
    /// alone): counted when allowed. With `share` > 1 (the `nodes=` hint, Redis up), a node
    /// takes at most its share of the room it saw at the last sync until the next one, so
    /// that nodes do not all spend the same room. A table under a contention it cannot
    /// resolve in a bounded number of tries allows, uncounted.
    pub fn hit(&self, key: u64, now_ms: u64, window_ms: u64, limit: u32, share: u32) -> Decision {
        if self.slots == 0 {
            return decide(Counts::default(), now_ms, window_ms, limit);
        }
        let window = now_ms / window_ms;
        let Some(s) = self.find(key, now_ms) else {
            return decide(Counts::default(), now_ms, window_ms, limit);
        };
        self.at(s, 5).store(now_ms, Ordering::Relaxed);
        let state = self.at(s, 1);
        let mut old = state.load(Ordering::Acquire);
        for _ in 0..TRIES {
            let c = unpack(old, window).at(window);
            let mut d = decide(c, now_ms, window_ms, limit);
            if let Decision::Allow { remaining, .. } = d {
                if share > 1 && !self.within_share(s, window, limit - remaining, limit, share) {
                    d = Decision::Limit { retry_after: 1 };
                }
            }
            if let Decision::Limit { .. } = d {
                self.w(LIMITED).fetch_add(1, Ordering::Relaxed);
                return d;
            }
            let new = pack(Counts {
                cur: (c.cur + 1).min(MAX_LIMIT),
                ..c
            });
            match state.compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.pend(s, window);
                    self.w(ALLOWED).fetch_add(1, Ordering::Relaxed);
                    return d;
                }
                Err(now) => old = now,
            }
        }
        decide(Counts::default(), now_ms, window_ms, limit)
    }

    /// Whether one more unsynced hit stays within this node's share of the room it saw at
    /// the last sync (`used`: the estimate with this hit).
    fn within_share(&self, s: usize, window: u64, used: u32, limit: u32, share: u32) -> bool {
        let p = self
            .at(s, 2 + (window & 1) as usize)
            .load(Ordering::Relaxed);
        let pending = if p >> 40 == window & WMASK {
            p & PMASK
        } else {
            0
        };
        let room = u64::from(limit) + 1 + pending - u64::from(used);
        pending < room.div_ceil(u64::from(share))
    }

    /// Whether a refusal of `key` at second `now_s` is the first of that second (for the
    /// one log line per key per second). The second is the word's low half.
    pub fn log_due(&self, key: u64, now_s: u64) -> bool {
        for d in 0..PROBE.min(self.slots) {
            let s = ((key as usize) % self.slots + d) % self.slots;
            if self.at(s, 0).load(Ordering::Acquire) != key {
                continue;
            }
            let last = self.at(s, 4);
            let old = last.load(Ordering::Relaxed);
            let now_s = now_s & LOW;
            return old & LOW != now_s
                && last
                    .compare_exchange(
                        old,
                        (old & !LOW) | now_s,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok();
        }
        false
    }

    /// The cluster total the last fold of `window` read, kept in the high half of the log
    /// word: set bit, window:11, total:20.
    fn last_total(&self, s: usize, window: u64) -> Option<u64> {
        let v = self.at(s, 4).load(Ordering::Relaxed) >> 32;
        (v >> 31 == 1 && (v >> 20) & 0x7ff == window & 0x7ff).then_some(v & CMASK)
    }

    fn set_last_total(&self, s: usize, window: u64, total: u64) {
        let high = ((1 << 31) | ((window & 0x7ff) << 20) | total.min(CMASK)) << 32;
        let _ = self
            .at(s, 4)
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |old| {
                Some((old & LOW) | high)
            });
    }

    /// Adds one unsynced hit for `window`; an older window's hits still there are dropped.
    fn pend(&self, s: usize, window: u64) {
        let p = self.at(s, 2 + (window & 1) as usize);
        let mut old = p.load(Ordering::Relaxed);
        for _ in 0..TRIES {
            let new = if old >> 40 == window & WMASK {
                old + 1
            } else {
                ((window & WMASK) << 40) | 1
            };
            match p.compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => old = now,
            }
        }
    }

    /// Takes the unsynced hits of every key used within the last two windows (one item per
    /// pending window), and asks for the totals of the ones with none. Keys idle longer are
    /// left alone: Redis expires theirs.
    pub fn drain(&self, now_ms: u64, window_ms: u64, out: &mut Vec<SyncItem>) {
        let window = now_ms / window_ms;
        for s in 0..self.slots {
            let key = self.at(s, 0).load(Ordering::Acquire);
            if key == 0 || self.at(s, 5).load(Ordering::Relaxed) + 2 * window_ms < now_ms {
                continue;
            }
            let before = out.len();
            for f in [2, 3] {
                let p = self.at(s, f).swap(0, Ordering::AcqRel);
                let delta = p & PMASK;
                let w = window.wrapping_sub(window.wrapping_sub(p >> 40) & WMASK);
                if delta > 0 && window - w <= 1 {
                    out.push(SyncItem {
                        slot: s,
                        key,
                        window: w,
                        delta,
                    });
                }
            }
            if out[before..].iter().all(|i| i.window != window) {
                out.push(SyncItem {
                    slot: s,
                    key,
                    window,
                    delta: 0,
                });
            }
        }
    }

    /// Folds a cluster `total` for `item`'s window into its key: the key's count becomes the
    /// total, plus the hits counted here since the drain, plus — with a `nodes` hint — the
    /// other nodes' hits Redis has not seen yet. Those are taken as what the others added to
    /// Redis since this node's last sync of the window (`total - delta - last total`), or, at
    /// a window's first sync, as `nodes - 1` times this node's `delta` (a round-robin
    /// balancer gives every node the same share). The estimate holds until the next sync
    /// replaces it, so a count may go down, never below what Redis holds.
    pub fn fold(&self, item: &SyncItem, total: u64, now_ms: u64, window_ms: u64, nodes: u32) {
        if self.at(item.slot, 0).load(Ordering::Acquire) != item.key {
            return;
        }
        let window = now_ms / window_ms;
        let unseen = match (nodes, self.last_total(item.slot, item.window)) {
            (0 | 1, _) => 0,
            (_, Some(last)) => total.saturating_sub(item.delta).saturating_sub(last),
            (n, None) => item.delta * u64::from(n - 1),
        };
        self.set_last_total(item.slot, item.window, total);
        let state = self.at(item.slot, 1);
        let mut old = state.load(Ordering::Acquire);
        for _ in 0..TRIES {
            // Read after the state: a hit counts in the state first, then in the pending word.
            let since = self
                .at(item.slot, 2 + (item.window & 1) as usize)
                .load(Ordering::Acquire);
            let since = if since >> 40 == item.window & WMASK {
                since & PMASK
            } else {
                0
            };
            let seen = (total + since + unseen).min(u64::from(MAX_LIMIT)) as u32;
            let mut c = unpack(old, window).at(window);
            if item.window == window {
                c.cur = seen;
            } else if item.window + 1 == window {
                c.prev = seen;
            } else {
                return;
            }
            match state.compare_exchange_weak(old, pack(c), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => old = now,
            }
        }
    }
}
