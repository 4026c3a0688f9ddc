//! Sharing accepted DPoP proofs between nodes: the outbox ring the request path pushes to
//! (lock-free, bounded, never waiting), the stream entry's fields, and the report.
#![forbid(unsafe_code)]

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

/// Words before the cells: the push position (word 0) and the pop position (word 8), each on
/// its own cache line.
pub const HEADER: usize = 16;
const TAIL: usize = 0;
const HEAD: usize = 8;
/// Words a cell: its state, the replay key, the fingerprint and expiry.
const CELL: usize = 3;
/// Compare-and-swap retries on the push position before a push counts as dropped.
const RETRIES: usize = 8;
/// Latest expiry a received entry may have, from now: twice the longest `window=` and a
/// minute of clock difference between nodes. Later ones are ignored.
pub const MAX_AHEAD: u32 = 2 * 3600 + 60;

/// Words for an outbox of `cells` cells.
pub fn words_for(cells: usize) -> usize {
    HEADER + CELL * cells
}

/// One accepted proof: the replay table's key (the first 12 bytes of the `jti`'s SHA-256)
/// and when its entry expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    pub key: [u8; 12],
    pub expires: u32,
}

impl Shared {
    pub fn of(digest: &[u8; 32], expires: u32) -> Self {
        let mut key = [0u8; 12];
        key.copy_from_slice(&digest[..12]);
        Self { key, expires }
    }

    /// The digest `replay::record` reads (its first 12 bytes; the rest is zero).
    pub fn digest(&self) -> [u8; 32] {
        let mut d = [0u8; 32];
        d[..12].copy_from_slice(&self.key);
        d
    }

    /// The `k` field of a stream entry: 24 hex digits.
    pub fn key_hex(&self) -> String {
        let mut s = String::with_capacity(24);
        for b in self.key {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// An entry read from the stream (`k`, `e`), if well-formed and live at `now`.
    pub fn parse(k: &str, e: &str, now: u32) -> Option<Self> {
        if k.len() != 24 || !k.is_ascii() {
            return None;
        }
        let mut key = [0u8; 12];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&k[2 * i..2 * i + 2], 16).ok()?;
        }
        let expires: u32 = e.parse().ok()?;
        (expires > now && expires <= now.saturating_add(MAX_AHEAD)).then_some(Self { key, expires })
    }

    fn words(&self) -> (u64, u64) {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.key[4..]);
        let fp = u32::from_le_bytes([self.key[0], self.key[1], self.key[2], self.key[3]]);
        (
            u64::from_le_bytes(a),
            (u64::from(fp) << 32) | u64::from(self.expires),
        )
    }

    fn from_words(a: u64, b: u64) -> Self {
        let mut key = [0u8; 12];
        key[..4].copy_from_slice(&((b >> 32) as u32).to_le_bytes());
        key[4..].copy_from_slice(&a.to_le_bytes());
        Self {
            key,
            expires: b as u32,
        }
    }
}

/// The outbox: a bounded multi-producer ring over atomics (Vyukov's queue). Each cell's state
/// word is `2 × lap` while free for that lap and `2 × lap + 1` once filled, so that the
/// all-zero allocation is a valid empty ring. Producers (workers, on the request path) claim a
/// position with one compare-and-swap and never wait; the one consumer (the node's elected
/// sync thread) pops in order.
pub struct Outbox<'a> {
    words: &'a [AtomicU64],
    cells: u64,
}

/// What a pop found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop {
    Entry(Shared),
    Empty,
    /// The next cell is claimed but not filled yet: a worker is writing it (or was killed
    /// while doing so; see [`Outbox::skip`]).
    Busy,
}

impl<'a> Outbox<'a> {
    pub fn new(words: &'a [AtomicU64]) -> Self {
        let cells = (words.len().saturating_sub(HEADER) / CELL) as u64;
        Self { words, cells }
    }

    pub fn capacity(&self) -> usize {
        self.cells as usize
    }

    fn cell(&self, pos: u64) -> &[AtomicU64] {
        let i = HEADER + CELL * (pos % self.cells) as usize;
        &self.words[i..i + CELL]
    }

    /// Queues `item`; false when the ring is full (or too contended): the caller counts it.
    pub fn push(&self, item: Shared) -> bool {
        if self.cells == 0 {
            return false;
        }
        let tail = &self.words[TAIL];
        for _ in 0..RETRIES {
            let pos = tail.load(Ordering::Relaxed);
            let cell = self.cell(pos);
            let free = 2 * (pos / self.cells);
            let state = cell[0].load(Ordering::Acquire);
            if state < free {
                return false;
            }
            if state == free
                && tail
                    .compare_exchange(pos, pos + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                let (a, b) = item.words();
                cell[1].store(a, Ordering::Relaxed);
                cell[2].store(b, Ordering::Relaxed);
                cell[0].store(free + 1, Ordering::Release);
                return true;
            }
        }
        false
    }

    /// Takes the oldest entry. Only the node's elected sync thread calls it.
    pub fn pop(&self) -> Pop {
        if self.cells == 0 {
            return Pop::Empty;
        }
        let head = &self.words[HEAD];
        let pos = head.load(Ordering::Acquire);
        let cell = self.cell(pos);
        let lap = pos / self.cells;
        if cell[0].load(Ordering::Acquire) == 2 * lap + 1 {
            let item = Shared::from_words(
                cell[1].load(Ordering::Relaxed),
                cell[2].load(Ordering::Relaxed),
            );
            cell[0].store(2 * (lap + 1), Ordering::Release);
            head.store(pos + 1, Ordering::Release);
            return Pop::Entry(item);
        }
        if self.words[TAIL].load(Ordering::Acquire) > pos {
            Pop::Busy
        } else {
            Pop::Empty
        }
    }

    /// Gives up on a cell that stayed [`Pop::Busy`] (its worker was killed between claim and
    /// fill): frees it for the next lap and moves on. Should that worker only have been slow,
    /// its late fill makes the cell look taken for one more lap, which the next skip heals;
    /// the worst it leaves is one entry lost or garbled, that is one proof not shared.
    pub fn skip(&self) {
        if self.cells == 0 {
            return;
        }
        let head = &self.words[HEAD];
        let pos = head.load(Ordering::Acquire);
        let cell = self.cell(pos);
        let lap = pos / self.cells;
        let state = cell[0].load(Ordering::Acquire);
        if state <= 2 * lap + 1 {
            let _ =
                cell[0].compare_exchange(state, 2 * (lap + 1), Ordering::AcqRel, Ordering::Relaxed);
        }
        head.store(pos + 1, Ordering::Release);
    }
}

/// The replay sharing's part of the metrics and the status page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShareReport {
    /// The Redis URL, without password.
    pub redis: String,
    pub stream: String,
    pub connection: &'static str,
    pub sent: u64,
    pub received: u64,
    pub dropped: u64,
    pub failures: u64,
    pub outbox_capacity: u64,
}

impl ShareReport {
    pub fn prometheus(&self) -> String {
        let mut w = String::with_capacity(1024);
        for (name, kind, help, n) in [
            (
                "dpop_replay_sent_total",
                "counter",
                "Accepted DPoP proofs sent to the other nodes through Redis.",
                self.sent,
            ),
            (
                "dpop_replay_received_total",
                "counter",
                "DPoP proofs accepted by other nodes, added to this node's replay table.",
                self.received,
            ),
            (
                "dpop_replay_outbox_dropped_total",
                "counter",
                "Accepted DPoP proofs not shared: the outbox was full.",
                self.dropped,
            ),
            (
                "dpop_replay_sync_failures_total",
                "counter",
                "Failed connections or round trips of the DPoP replay sharing.",
                self.failures,
            ),
            (
                "dpop_replay_connected",
                "gauge",
                "1 while the DPoP replay sharing is connected to Redis.",
                u64::from(self.connection == "connected"),
            ),
        ] {
            let _ = writeln!(w, "# HELP nginx_auth_jwt_{name} {help}");
            let _ = writeln!(w, "# TYPE nginx_auth_jwt_{name} {kind}");
            let _ = writeln!(w, "nginx_auth_jwt_{name} {n}");
        }
        w
    }

    pub fn json(&self) -> Value {
        json!({
            "redis": self.redis,
            "stream": self.stream,
            "connection": self.connection,
            "sent": self.sent,
            "received": self.received,
            "outbox_dropped": self.dropped,
            "outbox_capacity": self.outbox_capacity,
            "sync_failures": self.failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(cells: usize) -> Vec<AtomicU64> {
        (0..words_for(cells)).map(|_| AtomicU64::new(0)).collect()
    }

    fn item(n: u32) -> Shared {
        Shared::of(&openssl::sha::sha256(&n.to_le_bytes()), 1000 + n)
    }

    #[test]
    fn entries_come_out_in_order_and_a_full_ring_drops() {
        let words = ring(4);
        let o = Outbox::new(&words);
        assert_eq!(o.pop(), Pop::Empty);
        for lap in 0..3 {
            for n in 0..4 {
                assert!(o.push(item(lap * 10 + n)), "lap {lap} push {n}");
            }
            assert!(!o.push(item(99)), "full");
            for n in 0..4 {
                assert_eq!(o.pop(), Pop::Entry(item(lap * 10 + n)));
            }
            assert_eq!(o.pop(), Pop::Empty);
        }
        assert!(!Outbox::new(&[]).push(item(1)));
    }

    #[test]
    fn a_cell_claimed_and_never_filled_is_skipped() {
        let words = ring(4);
        let o = Outbox::new(&words);
        // A worker killed between its claim and its fill.
        words[TAIL].store(1, Ordering::SeqCst);
        assert!(o.push(item(1)));
        assert_eq!(o.pop(), Pop::Busy);
        o.skip();
        assert_eq!(o.pop(), Pop::Entry(item(1)));
        assert_eq!(o.pop(), Pop::Empty);
        for n in 0..4 {
            assert!(o.push(item(n)));
        }
        for n in 0..4 {
            assert_eq!(o.pop(), Pop::Entry(item(n)));
        }
    }

    #[test]
    fn racing_producers_lose_nothing_but_what_they_count() {
        let words = ring(256);
        let o = Outbox::new(&words);
        let (pushed, finished) = (AtomicU64::new(0), AtomicU64::new(0));
        let mut popped = Vec::new();
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let (o, pushed, finished) = (&o, &pushed, &finished);
                s.spawn(move || {
                    for n in 0..2000 {
                        if o.push(item(t * 10_000 + n)) {
                            pushed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                let done = finished.load(Ordering::SeqCst) == 4;
                match o.pop() {
                    Pop::Entry(e) => popped.push(e),
                    Pop::Empty if done => break,
                    _ => std::hint::spin_loop(),
                }
            }
        });
        assert_eq!(popped.len() as u64, pushed.load(Ordering::Relaxed));
        assert!(popped.len() >= 256, "{} shared", popped.len());
        let mut keys: Vec<_> = popped.iter().map(|e| e.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), popped.len(), "no entry twice");
    }

    #[test]
    fn stream_fields_round_trip_and_bad_ones_are_ignored() {
        let e = item(7);
        let hex = e.key_hex();
        assert_eq!(hex.len(), 24);
        assert_eq!(Shared::parse(&hex, &e.expires.to_string(), 900), Some(e));
        assert_eq!(Shared::of(&e.digest(), e.expires), e);
        for (k, x) in [
            (&hex[..22], "1007"),
            ("zz".repeat(12).as_str(), "1007"),
            (hex.as_str(), "soon"),
            (hex.as_str(), "1007"),
        ] {
            let now = if x == "1007" && k == hex { 1007 } else { 900 };
            assert_eq!(Shared::parse(k, x, now), None, "{k} {x}");
        }
        assert_eq!(Shared::parse(&hex, "9999999", 900), None, "too far ahead");
    }
}
