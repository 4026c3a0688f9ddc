//! The revocation table: a fixed-size open-addressing hash table (linear probing) over a
//! slice of atomics, which the module places in shared memory. One writer at a time (the
//! node's elected sync thread, behind [`Table::try_lock`]) inserts and sweeps; every worker
//! looks up without a lock and without waiting.
//!
//! Layout: `HEADER` words, then one (key, meta) pair per slot. A key is 0 when the slot is
//! empty. An insert writes the meta, then the key (release), so that a reader that sees the
//! key sees its meta. A delete shifts the entries behind it back (no tombstones, so probe
//! chains never rot) inside a sequence lock: a reader that found nothing retries when the
//! sequence moved, and a reader that found its key re-reads the key to be sure the meta
//! belongs to it.

use core::sync::atomic::{fence, AtomicU64, Ordering};

use super::{Entry, Kind};

const SEQ: usize = 0;
const LEN: usize = 1;
/// Entries per kind, at `COUNTS + i` for `Kind::ALL[i]`.
const COUNTS: usize = 2;
const WRITER: usize = 5;
/// Inserts and widenings so far: with `SEQ` (deletes), what a [`Stamp`] compares.
const GEN: usize = 6;
/// Words before the first slot (one cache line).
pub const HEADER: usize = 8;
/// Bytes per slot.
pub const SLOT_BYTES: usize = 16;
/// The table is full at this share of its slots (7/8): probe chains stay short.
const LOAD_NUM: usize = 7;
const LOAD_DEN: usize = 8;
/// How often a lookup that found nothing tries again while a delete is under way.
const READ_TRIES: usize = 64;

/// A view of a table's words.
#[derive(Clone, Copy)]
pub struct Table<'a> {
    words: &'a [AtomicU64],
    slots: usize,
    mask: usize,
}

/// A table's state as far as lookups can tell: two equal stamps of one table enclose no
/// insert, widening or delete (see [`Table::stamp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    table: usize,
    seq: u64,
    gen: u64,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    Added,
    /// The key was there: its times were widened (the later `until`, the later `before`).
    Updated,
    /// Already held as it is.
    Unchanged,
    /// No room: at most `capacity()` entries.
    Full,
}

impl<'a> Table<'a> {
    /// Words needed for `slots` slots (a power of two).
    pub const fn words_for(slots: usize) -> usize {
        HEADER + 2 * slots
    }

    /// The largest power-of-two slot count whose table fits in `bytes`.
    pub fn slots_for_bytes(bytes: usize) -> usize {
        let slots = (bytes / 8).saturating_sub(HEADER) / 2;
        if slots < 2 {
            return 0;
        }
        1 << (usize::BITS - 1 - slots.leading_zeros())
    }

    /// A view over `words` (all-zero is the empty table). Slots past the largest power of two
    /// that fits are unused.
    pub fn new(words: &'a [AtomicU64]) -> Self {
        let slots = Self::slots_for_bytes(words.len() * 8);
        Self {
            words,
            slots,
            mask: slots.saturating_sub(1),
        }
    }

    /// Slots in the table.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Most entries the table takes.
    pub fn capacity(&self) -> usize {
        self.slots() / LOAD_DEN * LOAD_NUM
    }

    pub fn len(&self) -> usize {
        if self.slots == 0 {
            return 0;
        }
        self.word(LEN).load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.slots() == 0 || self.len() == 0
    }

    /// Entries of one kind.
    pub fn count(&self, kind: Kind) -> u64 {
        if self.slots == 0 {
            return 0;
        }
        self.count_word(kind).load(Ordering::Relaxed)
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        &self.words[i]
    }

    fn key_at(&self, slot: usize) -> &AtomicU64 {
        &self.words[HEADER + 2 * slot]
    }

    fn meta_at(&self, slot: usize) -> &AtomicU64 {
        &self.words[HEADER + 2 * slot + 1]
    }

    fn home(&self, key: u64) -> usize {
        // The low bits are the kind tag: probe by the high ones.
        (key >> 2) as usize & self.mask
    }

    /// The table's stamp, read before a lookup; `None` while a delete is under way.
    pub fn stamp(&self) -> Option<Stamp> {
        if self.slots == 0 {
            return None;
        }
        let seq = self.word(SEQ).load(Ordering::Acquire);
        let gen = self.word(GEN).load(Ordering::Acquire);
        (seq & 1 == 0).then_some(Stamp {
            table: self.words.as_ptr() as usize,
            seq,
            gen,
        })
    }

    /// The live entry for `key` at `now`. Never waits: after a bounded number of retries
    /// behind a delete it answers with what it saw.
    pub fn get(&self, key: u64, now: i64) -> Option<Entry> {
        if self.slots() == 0 {
            return None;
        }
        for _ in 0..READ_TRIES {
            let seq = self.word(SEQ).load(Ordering::Acquire);
            if let Some(e) = self.probe(key) {
                return Some(e).filter(|e| e.live(now));
            }
            fence(Ordering::Acquire);
            if seq & 1 == 0 && self.word(SEQ).load(Ordering::Relaxed) == seq {
                return None;
            }
            core::hint::spin_loop();
        }
        None
    }

    fn probe(&self, key: u64) -> Option<Entry> {
        let mut i = self.home(key);
        for _ in 0..self.slots() {
            let k = self.key_at(i).load(Ordering::Acquire);
            if k == 0 {
                return None;
            }
            if k == key {
                let meta = self.meta_at(i).load(Ordering::Acquire);
                if self.key_at(i).load(Ordering::Acquire) == key {
                    return Some(Entry::from_parts(key, meta));
                }
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Takes the writer's lock for `owner` (non-zero) until `until`; a holder past its time
    /// (a process killed while writing) is replaced.
    pub fn try_lock(&self, owner: u32, now: i64, until: i64) -> bool {
        if self.slots == 0 {
            return false;
        }
        crate::lease::try_lease(self.word(WRITER), owner, now, until)
    }

    pub fn unlock(&self, owner: u32) {
        if self.slots == 0 {
            return;
        }
        let w = self.word(WRITER);
        let held = w.load(Ordering::Acquire);
        if (held >> 32) as u32 == owner {
            let _ = w.compare_exchange(held, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Inserts or widens `e`. The caller holds the writer's lock.
    pub fn insert(&self, e: Entry) -> Insert {
        if self.slots() == 0 {
            return Insert::Full;
        }
        let mut i = self.home(e.key);
        for _ in 0..self.slots() {
            let k = self.key_at(i).load(Ordering::Relaxed);
            if k == e.key {
                let old = Entry::from_parts(k, self.meta_at(i).load(Ordering::Relaxed));
                let until = if old.until == 0 || e.until == 0 {
                    0
                } else {
                    old.until.max(e.until)
                };
                let new = Entry {
                    until,
                    before: old.before.max(e.before),
                    ..e
                };
                if new == old {
                    return Insert::Unchanged;
                }
                self.meta_at(i).store(new.meta(), Ordering::Release);
                self.word(GEN).fetch_add(1, Ordering::Release);
                return Insert::Updated;
            }
            if k == 0 {
                if self.len() >= self.capacity() {
                    return Insert::Full;
                }
                self.meta_at(i).store(e.meta(), Ordering::Relaxed);
                self.key_at(i).store(e.key, Ordering::Release);
                self.word(LEN).fetch_add(1, Ordering::Relaxed);
                self.count_word(e.kind()).fetch_add(1, Ordering::Relaxed);
                self.word(GEN).fetch_add(1, Ordering::Release);
                return Insert::Added;
            }
            i = (i + 1) & self.mask;
        }
        Insert::Full
    }

    fn count_word(&self, kind: Kind) -> &AtomicU64 {
        let i = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.word(COUNTS + i)
    }

    /// Removes the entries no longer live at `now`; returns how many. The caller holds the
    /// writer's lock.
    pub fn sweep(&self, now: i64) -> usize {
        let mut removed = 0;
        let mut i = 0;
        while i < self.slots() {
            let k = self.key_at(i).load(Ordering::Relaxed);
            let e = Entry::from_parts(k, self.meta_at(i).load(Ordering::Relaxed));
            if k != 0 && !e.live(now) {
                self.delete(i);
                removed += 1;
                // The slot now holds what was shifted in: look at it again.
                continue;
            }
            i += 1;
        }
        removed
    }

    /// Removes the entry for `key`, if any. The caller holds the writer's lock.
    pub fn remove(&self, key: u64) -> bool {
        let mut i = self.home(key);
        for _ in 0..self.slots() {
            match self.key_at(i).load(Ordering::Relaxed) {
                0 => return false,
                k if k == key => {
                    self.delete(i);
                    return true;
                }
                _ => i = (i + 1) & self.mask,
            }
        }
        false
    }

    /// Backward-shift deletion of the entry at `hole`, inside the sequence lock.
    fn delete(&self, mut hole: usize) {
        let seq = self.word(SEQ);
        let kind = Entry::from_parts(self.key_at(hole).load(Ordering::Relaxed), 0).kind();
        seq.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let k = self.key_at(j).load(Ordering::Relaxed);
            if k == 0 {
                break;
            }
            // The entry at j may move to the hole if its home is not in (hole, j].
            let home = self.home(k);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if stays {
                continue;
            }
            let meta = self.meta_at(j).load(Ordering::Relaxed);
            self.meta_at(hole).store(meta, Ordering::Relaxed);
            self.key_at(hole).store(k, Ordering::Release);
            hole = j;
        }
        self.key_at(hole).store(0, Ordering::Release);
        self.word(LEN).fetch_sub(1, Ordering::Relaxed);
        self.count_word(kind).fetch_sub(1, Ordering::Relaxed);
        seq.fetch_add(1, Ordering::Release);
    }
}
