//! Byte-level helpers of the JSON scanner: the key stack, plain string runs, hex, unescaping.
#![forbid(unsafe_code)]

/// Keys of an object beyond this many are checked for duplicates through a sorted set.
pub(super) const LINEAR_KEYS: usize = 16;

/// A key's text between its quotes.
#[derive(Clone, Copy, Default)]
pub(super) struct Key {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) escaped: bool,
    /// The first eight bytes of the raw text, zero-padded: most keys compare on it alone.
    pub(super) head: u64,
}

/// The keys of the objects being scanned, innermost last: the first few on the stack (a
/// token's payload has about ten), the rest in a `Vec`.
#[derive(Default)]
pub(super) struct Keys {
    inline: [Key; LINEAR_KEYS],
    pub(super) len: usize,
    spill: Vec<Key>,
}

impl Keys {
    pub(super) fn get(&self, i: usize) -> Key {
        match self.inline.get(i) {
            Some(&k) => k,
            None => self.spill[i - LINEAR_KEYS],
        }
    }

    pub(super) fn push(&mut self, key: Key) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = key,
            None => self.spill.push(key),
        }
        self.len += 1;
    }

    pub(super) fn truncate(&mut self, len: usize) {
        self.len = len;
        self.spill.truncate(len.saturating_sub(LINEAR_KEYS));
    }
}

/// A one-word filter over an object's keys, which settles most duplicate checks without
/// comparing keys: a bit per key, picked by its length and first bytes, so equal keys pick
/// the same bit, and a key whose bit is clear is new. It answers only while every key of the
/// object is unescaped (an escape can spell a key in other bytes) and the object has fewer
/// than [`LINEAR_KEYS`] keys (beyond, the sorted set must see every key).
#[derive(Default)]
pub(super) struct Seen {
    bits: u64,
    escaped: bool,
}

impl Seen {
    /// Whether `key` is surely not among the object's `count` keys before it. `false` means
    /// the keys must be compared.
    #[inline(always)]
    pub(super) fn surely_new(&mut self, key: Key, count: usize) -> bool {
        self.escaped |= key.escaped;
        if self.escaped || count >= LINEAR_KEYS {
            return false;
        }
        let len = (key.end - key.start) as u64;
        let mixed = (key.head ^ len.rotate_left(56)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bit = 1u64 << (mixed >> 58);
        let new = self.bits & bit == 0;
        self.bits |= bit;
        new
    }
}

/// How many bytes at the start of `b` a string holds as they are: printable ASCII but for
/// `"` and `\\`. Eight bytes at a time, as serde_json does.
pub(super) fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut chunks = b.chunks_exact(8);
    let mut n = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let below_space = word.wrapping_sub(ONES * 0x20);
        let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
        let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
        // The high bit of a byte is set if it is special (or >= 0x80, special too). Borrows
        // only run from a special byte to later ones, so the lowest set bit is exact.
        let special = (below_space | quote | backslash | word) & HIGH;
        if special != 0 {
            return n + special.trailing_zeros() as usize / 8;
        }
        n += 8;
    }
    let tail = chunks.remainder();
    n + tail
        .iter()
        .position(|&c| c < 0x20 || c == b'"' || c == b'\\' || c >= 0x80)
        .unwrap_or(tail.len())
}

pub(super) fn hex(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(n << 4 | v)
    })
}

/// The text of a JSON string that [`super::scan::scan_object`] accepted (between its quotes), unescaped.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let b = rest.as_bytes();
        let (c, used) = match b.get(at + 1) {
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => {
                let hi = b.get(at + 2..at + 6).and_then(hex).unwrap_or(0xfffd);
                if (0xd800..0xdc00).contains(&hi) {
                    let lo = b.get(at + 8..at + 12).and_then(hex).unwrap_or(0xdc00);
                    let c = 0x10000 + ((hi - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff);
                    (char::from_u32(c).unwrap_or('\u{fffd}'), 12)
                } else {
                    (char::from_u32(hi).unwrap_or('\u{fffd}'), 6)
                }
            }
            Some(&c) => (char::from(c), 2),
            None => break,
        };
        out.push(c);
        rest = rest.get(at + used..).unwrap_or("");
    }
    out.push_str(rest);
    out
}
