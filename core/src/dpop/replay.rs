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

/// Records `digest` (the SHA-256 of the proof's `jti`) until `expires` (seconds since the
/// epoch), at time `now`. An entry is one `u64`: a 32-bit fingerprint and the expiry, so a
/// slot changes in one compare-and-swap and two workers racing with the same proof agree
/// (the loser finds the winner's entry in the slot it lost). All-zero slots are empty.
pub fn record(slots: &[AtomicU64], digest: &[u8; 32], expires: u32, now: u32) -> Seen {
    if slots.is_empty() {
        return Seen::Full;
    }
    let fp = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) | 1;
    let mut home = [0u8; 8];
    home.copy_from_slice(&digest[4..12]);
    let home = (u64::from_le_bytes(home) % slots.len() as u64) as usize;
    let entry = (u64::from(fp) << 32) | u64::from(expires);
    for probe in 0..PROBES.min(slots.len()) {
        let slot = &slots[(home + probe) % slots.len()];
        let mut current = slot.load(Ordering::Acquire);
        for _ in 0..RETRIES {
            let live = current != 0 && (current as u32) > now;
            if live {
                if (current >> 32) as u32 == fp {
                    return Seen::Replay;
                }
                break;
            }
            match slot.compare_exchange(current, entry, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Seen::Fresh,
                Err(actual) => current = actual,
            }
        }
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
