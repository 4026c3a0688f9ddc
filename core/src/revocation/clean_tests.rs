//! The memo of a clean revocation check ([`Clean`]) against every write to the table.

use core::sync::atomic::{AtomicU64, Ordering};

use super::*;

fn words(slots: usize) -> Vec<AtomicU64> {
    (0..Table::words_for(slots))
        .map(|_| AtomicU64::new(0))
        .collect()
}

/// A cached token remembers a check that found nothing only while the table stands still:
/// an insert, a widening, another table or an earlier time each make the next check look
/// again.
#[test]
fn a_remembered_clean_check_lapses_with_any_change() {
    let (w, w2) = (words(64), words(64));
    let (t, t2) = (Table::new(&w), Table::new(&w2));
    let jti = |j: &str, exp| Revocation::Jti {
        jti: j.into(),
        exp: Some(exp),
    };
    let probe = Probe::of(&Facts {
        jti: Some("stolen"),
        sub: None,
        iss: None,
        iat: None,
        kid: None,
    });
    let clean = Clean::default();
    let check = |t: &Table<'_>, now| check_remembered(t, &probe, &clean, now).map(|r| r.kind);
    assert_eq!(t.insert(jti("other", 2000).entry(0, 3600)), Insert::Added);
    assert_eq!(check(&t, 1000), None);
    assert_eq!(check(&t, 1000), None);
    assert_eq!(t.insert(jti("stolen", 1500).entry(0, 3600)), Insert::Added);
    assert_eq!(
        check(&t, 1000),
        Some(Kind::Jti),
        "inserted after a clean check"
    );
    assert_eq!(check(&t, 1600), None, "expired at 1500");
    assert_eq!(
        t.insert(jti("stolen", 3000).entry(0, 3600)),
        Insert::Updated
    );
    assert_eq!(
        check(&t, 1600),
        Some(Kind::Jti),
        "widened after a clean check"
    );
    assert_eq!(check(&t, 3100), None, "expired at 3000");
    assert_eq!(check(&t, 2000), Some(Kind::Jti), "the clock went back");
    assert_eq!(check(&t, 3100), None);
    // Another table, as many writes in: the same sequence and count.
    for j in ["x", "y", "stolen"] {
        assert_eq!(t2.insert(jti(j, 5000).entry(0, 3600)), Insert::Added);
    }
    assert_eq!(check(&t2, 3100), Some(Kind::Jti), "another table");
    // A delete under way (odd sequence) is never remembered across.
    assert_eq!(check(&t, 3100), None);
    w[0].fetch_add(1, Ordering::Relaxed);
    assert!(t.stamp().is_none());
    assert_eq!(check(&t, 3100), None);
    w[0].fetch_add(1, Ordering::Relaxed);
    assert_eq!(
        t.insert(jti("stolen", 9000).entry(0, 3600)),
        Insert::Updated
    );
    assert_eq!(check(&t, 3100), Some(Kind::Jti));
}
