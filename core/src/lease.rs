//! A lease in one shared word: `owner << 32 | until` (seconds), taken with a compare-and-swap.
//! It elects one writer per node among the workers' background threads (the revocation table,
//! each rate-limit table); a holder past its time (a killed worker) is replaced.

use core::sync::atomic::{AtomicU64, Ordering};

/// Takes or renews the lease in `w` for `owner` (non-zero) until `until`.
pub fn try_lease(w: &AtomicU64, owner: u32, now: i64, until: i64) -> bool {
    let mine = (u64::from(owner) << 32) | (until.clamp(0, i64::from(u32::MAX)) as u64);
    let held = w.load(Ordering::Acquire);
    let free = held == 0 || (held >> 32) as u32 == owner || ((held as u32) as i64) < now;
    free && w
        .compare_exchange(held, mine, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_until_it_lapses() {
        let w = AtomicU64::new(0);
        assert!(try_lease(&w, 7, 100, 105));
        assert!(try_lease(&w, 7, 101, 106), "renewed by its owner");
        assert!(!try_lease(&w, 8, 106, 111), "held until 106");
        assert!(try_lease(&w, 8, 107, 112), "lapsed: taken over");
    }
}
