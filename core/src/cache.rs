//! A bounded map from whole tokens to what verifying them produced, with CLOCK eviction.
#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

/// Entries are keyed by the token's bytes themselves: a lookup compares them in full, so no
/// crafted token can collide its way into another token's entry.
///
/// The hash reads only the length and the last [`HASHED_TAIL`] bytes, with the standard
/// library's randomly keyed SipHash: only tokens whose signature verified are stored, and
/// their tails are signature bytes that nobody but the key holder chooses, so a client cannot
/// pile entries into one bucket; hashing the whole token cost as much as the rest of a cached
/// request (measured with callgrind, about 1,600 instructions for a 700-byte token).
#[derive(Debug)]
pub struct TokenCache<V> {
    capacity: usize,
    index: HashMap<Rc<[u8]>, usize, TailHash>,
    slots: Vec<Slot<V>>,
    hand: usize,
}

#[derive(Debug)]
struct Slot<V> {
    key: Rc<[u8]>,
    value: V,
    referenced: bool,
}

impl<V> TokenCache<V> {
    /// A cache holding at most `capacity` tokens; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            index: HashMap::with_hasher(TailHash::default()),
            slots: Vec::new(),
            hand: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The value stored for `token`, marking it recently used.
    pub fn get(&mut self, token: &[u8]) -> Option<&V> {
        let &i = self.index.get(token)?;
        let slot = &mut self.slots[i];
        slot.referenced = true;
        Some(&slot.value)
    }

    /// Stores `value` for `token`, evicting a not-recently-used entry when full.
    pub fn insert(&mut self, token: &[u8], value: V) {
        if self.capacity == 0 {
            return;
        }
        if let Some(&i) = self.index.get(token) {
            self.slots[i].value = value;
            return;
        }
        let key: Rc<[u8]> = Rc::from(token);
        let slot = Slot {
            key: Rc::clone(&key),
            value,
            referenced: false,
        };
        let i = if self.slots.len() < self.capacity {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let victim = self.victim();
            let old = std::mem::replace(&mut self.slots[victim], slot);
            self.index.remove(&old.key);
            victim
        };
        self.index.insert(key, i);
    }

    /// Removes every entry for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        let slots = std::mem::take(&mut self.slots);
        self.index.clear();
        self.hand = 0;
        for slot in slots.into_iter().filter(|s| keep(&s.value)) {
            self.index.insert(Rc::clone(&slot.key), self.slots.len());
            self.slots.push(slot);
        }
    }

    /// CLOCK: sweep from the hand, giving referenced entries a second chance. Ends within
    /// two turns, since the first turn clears every reference bit it passes.
    fn victim(&mut self) -> usize {
        let n = self.slots.len();
        for _ in 0..2 * n {
            let i = self.hand;
            self.hand = (self.hand + 1) % n;
            let slot = &mut self.slots[i];
            if !slot.referenced {
                return i;
            }
            slot.referenced = false;
        }
        self.hand
    }
}

/// Bytes at the end of a token that the cache's hash reads (see [`TokenCache`]).
pub const HASHED_TAIL: usize = 32;

/// Builds [`TailHasher`]s, keyed once per cache.
#[derive(Debug, Default, Clone)]
struct TailHash(RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

/// SipHash over the length and the last [`HASHED_TAIL`] bytes of what it is given (a `[u8]`
/// key hashes as its length, then its bytes in one `write`).
struct TailHasher(std::collections::hash_map::DefaultHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0
            .write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
    }

    fn write_usize(&mut self, n: usize) {
        self.0.write_usize(n);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_that_share_their_tail_are_still_different_entries() {
        let mut c = TokenCache::new(8);
        let tail = [b'x'; HASHED_TAIL];
        let a = [b"a.".as_slice(), &tail].concat();
        let b = [b"b.".as_slice(), &tail].concat();
        c.insert(&a, 1);
        assert_eq!(c.get(&b), None);
        c.insert(&b, 2);
        assert_eq!(c.get(&a), Some(&1));
        assert_eq!(c.get(&b), Some(&2));
        assert_eq!(c.get(&tail), None);
    }

    #[test]
    fn hit_miss_and_update() {
        let mut c = TokenCache::new(4);
        assert_eq!(c.get(b"a"), None);
        c.insert(b"a", 1);
        c.insert(b"b", 2);
        assert_eq!(c.get(b"a"), Some(&1));
        assert_eq!(c.get(b"b"), Some(&2));
        c.insert(b"a", 3);
        assert_eq!(c.get(b"a"), Some(&3));
        assert_eq!(c.len(), 2);
        // A prefix or an extension of a cached token is another token.
        assert_eq!(c.get(b"aa"), None);
        assert_eq!(c.get(b""), None);
    }

    #[test]
    fn bounded_and_keeps_recently_used() {
        let mut c = TokenCache::new(3);
        for (k, v) in [(b"a", 1), (b"b", 2), (b"c", 3)] {
            c.insert(k, v);
        }
        c.get(b"a");
        c.insert(b"d", 4);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(b"a"), Some(&1), "recently used entry survives");
        assert_eq!(c.get(b"d"), Some(&4));
        for i in 0..1000u32 {
            c.insert(&i.to_be_bytes(), i as i32);
            assert!(c.len() <= 3);
            assert_eq!(c.index.len(), c.len());
        }
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let mut c = TokenCache::new(0);
        c.insert(b"a", 1);
        assert_eq!(c.get(b"a"), None);
        assert!(c.is_empty());
    }

    #[test]
    fn retain_drops_and_reindexes() {
        let mut c = TokenCache::new(8);
        for i in 0..8u8 {
            c.insert(&[i], i);
        }
        c.retain(|v| v % 2 == 0);
        assert_eq!(c.len(), 4);
        for i in 0..8u8 {
            assert_eq!(c.get(&[i]).copied(), (i % 2 == 0).then_some(i));
        }
        c.insert(&[9], 9);
        assert_eq!(c.get(&[9]), Some(&9));
    }
}
