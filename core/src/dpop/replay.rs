//! The DPoP replay cache: a fixed table of atomics (in the shared zone), lock-free, bounded,
//! each entry expiring with the proof's acceptance window.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

/// Slots probed from a proof's home slot before the table counts as full there.
const PROBES: usize = 16;
/// Compare-and-swap retries on one slot that other workers keep changing.
const RETRIES: usize = 4;

/// What recording a proof's `jti` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First use within the window: recorded.
    Fresh,
    /// Recorded before and not expired: a replay.
    Replay,
    /// Every slot near its home holds a live proof: refused rather than forgotten.
    Full,
}

/// Records `digest` (the SHA-256 of the proof's `jti`; only its first 12 bytes are used)
/// until `expires` (seconds since the epoch), at time `now`. An entry is one `u64`: a 32-bit
/// fingerprint and the expiry, so a slot changes in one compare-and-swap. All-zero slots are
/// empty.
///
/// Every probed slot is looked at for a live entry of the same fingerprint before the first
/// free one is claimed: a proof recorded behind a live entry stays found after that entry
/// expires. After a claim the probed slots are looked at once more: two workers racing with
/// the same proof may both claim (in different slots, when one of them saw an entry expire
/// that the other still saw live), and then at least one of them sees the other's entry
/// (sequentially consistent claim and loads) and answers `Replay`. What remains possible is
/// that both see each other and both refuse: a client never sends one proof twice at once,
/// so that costs an attacker's replay, never a legitimate request; never are both admitted.
pub fn record(slots: &[AtomicU64], digest: &[u8; 32], expires: u32, now: u32) -> Seen {
    if slots.is_empty() {
        return Seen::Full;
    }
    let fp = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) | 1;
    let mut home = [0u8; 8];
    home.copy_from_slice(&digest[4..12]);
    let home = (u64::from_le_bytes(home) % slots.len() as u64) as usize;
    let probes = PROBES.min(slots.len());
    let probed = || (0..probes).map(|i| (i, &slots[(home + i) % slots.len()]));
    let live = |v: u64| v != 0 && (v as u32) > now;
    let entry = (u64::from(fp) << 32) | u64::from(expires);
    for _ in 0..RETRIES {
        let mut free = None;
        for (i, slot) in probed() {
            let current = slot.load(Ordering::SeqCst);
            if !live(current) {
                free = free.or(Some((i, current)));
            } else if (current >> 32) as u32 == fp {
                return Seen::Replay;
            }
        }
        let Some((claimed, current)) = free else {
            return Seen::Full;
        };
        let slot = probed()
            .nth(claimed)
            .map(|(_, s)| s)
            .expect("a probed slot");
        if slot
            .compare_exchange(current, entry, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // Another worker changed that slot since the look: look again.
            continue;
        }
        let twin = probed().any(|(i, s)| {
            let v = s.load(Ordering::SeqCst);
            i != claimed && live(v) && (v >> 32) as u32 == fp
        });
        return if twin { Seen::Replay } else { Seen::Fresh };
    }
    Seen::Full
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u32) -> [u8; 32] {
        openssl::sha::sha256(&n.to_le_bytes())
    }

    #[test]
    fn a_jti_is_refused_until_it_expires() {
        let slots: Vec<AtomicU64> = (0..64).map(|_| AtomicU64::new(0)).collect();
        let d = digest(1);
        assert_eq!(record(&slots, &d, 160, 100), Seen::Fresh);
        assert_eq!(record(&slots, &d, 160, 101), Seen::Replay);
        assert_eq!(record(&slots, &d, 170, 159), Seen::Replay);
        assert_eq!(
            record(&slots, &d, 220, 160),
            Seen::Fresh,
            "expired: a new entry"
        );
        assert_eq!(record(&slots, &digest(2), 160, 100), Seen::Fresh);
    }

    #[test]
    fn a_full_table_refuses_and_frees_with_time() {
        let slots: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
        for n in 0..8 {
            assert_eq!(record(&slots, &digest(n), 200, 100), Seen::Fresh);
        }
        assert_eq!(record(&slots, &digest(99), 200, 100), Seen::Full);
        assert_eq!(record(&slots, &digest(99), 300, 200), Seen::Fresh);
        assert_eq!(record(&[], &digest(1), 300, 200), Seen::Full);
    }

    /// Digests of two proofs whose home slot is the same in a table of `len` slots.
    fn same_home(len: u64) -> ([u8; 32], [u8; 32]) {
        let home = |d: &[u8; 32]| u64::from_le_bytes(d[4..12].try_into().unwrap()) % len;
        let q = digest(0);
        let p = (1..).map(digest).find(|p| home(p) == home(&q)).unwrap();
        (q, p)
    }

    #[test]
    fn a_proof_recorded_behind_an_expired_one_is_still_a_replay() {
        // P's home slot holds a live Q, so P is recorded one slot further; once Q expires,
        // the home slot is free again, but P must still be found behind it.
        let slots: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
        let (q, p) = same_home(8);
        assert_eq!(record(&slots, &q, 150, 100), Seen::Fresh);
        assert_eq!(record(&slots, &p, 300, 100), Seen::Fresh);
        assert_eq!(
            record(&slots, &p, 300, 200),
            Seen::Replay,
            "replayed after Q expired"
        );
        assert_eq!(
            record(&slots, &q, 400, 200),
            Seen::Fresh,
            "Q itself expired"
        );
        assert_eq!(record(&slots, &p, 300, 250), Seen::Replay);
    }

    #[test]
    fn racing_threads_across_an_expiry_never_both_admit() {
        // Q expires at 150 in P's home slot: the worker at 149 claims the next slot, the one
        // at 150 the home slot; both claims may succeed, but never may both admit P.
        let (q, p) = same_home(8);
        let slots: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
        let rounds = 20_000;
        let go = std::sync::Barrier::new(3);
        let done = std::sync::Barrier::new(3);
        let fresh = AtomicU64::new(0);
        let (mut twice, mut both_refused) = (0, 0);
        std::thread::scope(|s| {
            for now in [149, 150] {
                let (go, done, slots, fresh) = (&go, &done, &slots, &fresh);
                s.spawn(move || {
                    for _ in 0..rounds {
                        go.wait();
                        if record(slots, &p, 400, now) == Seen::Fresh {
                            fresh.fetch_add(1, Ordering::SeqCst);
                        }
                        done.wait();
                    }
                });
            }
            for _ in 0..rounds {
                slots.iter().for_each(|s| s.store(0, Ordering::SeqCst));
                assert_eq!(record(&slots, &q, 150, 100), Seen::Fresh);
                fresh.store(0, Ordering::SeqCst);
                go.wait();
                done.wait();
                match fresh.load(Ordering::SeqCst) {
                    2 => twice += 1,
                    0 => both_refused += 1,
                    _ => {}
                }
                assert_eq!(record(&slots, &p, 400, 151), Seen::Replay);
            }
        });
        println!("{rounds} rounds: {both_refused} with both refused");
        assert_eq!(twice, 0, "admitted twice");
    }

    #[test]
    fn racing_threads_admit_a_proof_once() {
        let slots: Vec<AtomicU64> = (0..1024).map(|_| AtomicU64::new(0)).collect();
        for n in 0..200 {
            let d = digest(n);
            let fresh = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| record(&slots, &d, 1000, 10)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .filter(|&r| r == Seen::Fresh)
                    .count()
            });
            assert_eq!(fresh, 1, "jti {n}");
        }
    }
}
