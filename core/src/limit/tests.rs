//! Tests of the limit rule, its parsers, header texts and table.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn words(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

#[test]
fn a_key_of_one_claim_variable_names_the_claim() {
    for (key, claim) in [
        ("$jwt_claim_sub", Some("sub")),
        ("${jwt_claim_client_id}", Some("client_id")),
        ("$JWT_CLAIM_Sub", Some("sub")),
        ("$jwt_claim_", None),
        ("$jwt_claim_sub:$jwt_claim_iss", None),
        ("$jwt_claim_sub-x", None),
        ("${jwt_claim_sub}x", None),
        ("${jwt_claim_sub", None),
        ("$jwt_header_kid", None),
        ("$arg_u", None),
        ("jwt_claim_sub", None),
        ("$", None),
    ] {
        assert_eq!(claim_key(key).as_deref(), claim, "{key}");
    }
}

#[test]
fn zone_arguments() {
    let a = parse_limit_zone(&["api", "key=$jwt_claim_sub", "rate=10r/s"]).unwrap();
    assert_eq!(a.key, "$jwt_claim_sub");
    assert_eq!(
        a.policy,
        Policy {
            quota: 10,
            burst: 0,
            window_ms: 1000
        }
    );
    assert_eq!(
        (a.size, a.sync, a.nodes, a.redis),
        (DEFAULT_SIZE, DEFAULT_SYNC, None, None)
    );
    let a = parse_limit_zone(&[
        "m",
        "key=$x",
        "rate=600r/m",
        "burst=5",
        "size=10m",
        "redis=redis://127.0.0.1:1/0",
        "sync=100ms",
        "nodes=3",
        "headers=always",
    ])
    .unwrap();
    assert!(a.headers_always);
    assert_eq!(
        a.policy,
        Policy {
            quota: 600,
            burst: 5,
            window_ms: 60_000
        }
    );
    assert_eq!(a.size, 10 << 20);
    assert_eq!(a.sync, Duration::from_millis(100));
    assert_eq!(a.nodes, Some(3));
    assert_eq!(a.redis.as_deref(), Some("redis://127.0.0.1:1/0"));
}

#[test]
fn zone_arguments_refused() {
    for (args, reason) in [
        (&["z", "rate=1r/s"][..], "key= is required"),
        (&["z", "key=$x"][..], "rate= is required"),
        (
            &["z", "key=x", "rate=1r/s"][..],
            "\"x\" must be a variable, such as $name",
        ),
        (&["z", "key=$x", "rate=10"][..], "invalid value \"rate=10\""),
        (
            &["z", "key=$x", "rate=0r/s"][..],
            "invalid value \"rate=0r/s\"",
        ),
        (
            &["z", "key=$x", "rate=-1r/s"][..],
            "invalid value \"rate=-1r/s\"",
        ),
        (
            &["z", "key=$x", "rate=10r/h"][..],
            "invalid value \"rate=10r/h\"",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "burst=x"][..],
            "invalid value \"burst=x\"",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "size=1x"][..],
            "invalid value \"size=1x\"",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "size=1k"][..],
            "size=1024 is too small, at least 32k",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "sync=0"][..],
            "invalid value \"sync=0\"",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "sync=2s"][..],
            "sync= must not be longer than the rate's window",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "nodes=0"][..],
            "invalid value \"nodes=0\"",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "redis=http://x"][..],
            "invalid value \"redis=http://x\"",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "headers=on"][..],
            "invalid value \"headers=on\"",
        ),
        (
            &["z", "key=$x", "rate=1r/s", "color=red"][..],
            "invalid value \"color=red\"",
        ),
        (
            &["z", "key=$x", "rate=1000000r/s", "burst=1"][..],
            "rate + burst must not exceed 1000000 per window",
        ),
        (&[][..], "a zone name is required"),
    ] {
        let e = parse_limit_zone(args).unwrap_err();
        assert_eq!(e.to_string(), reason, "{args:?}");
    }
}

#[test]
fn alone_share() {
    let p = Policy {
        quota: 100,
        burst: 0,
        window_ms: 1000,
    };
    assert_eq!(p.alone(None), 100);
    assert_eq!(p.alone(Some(1)), 100);
    assert_eq!(p.alone(Some(3)), 34);
    assert_eq!(Policy { quota: 1, ..p }.alone(Some(5)), 1);
}

#[test]
fn sliding_window() {
    let w = 1000;
    // 10 in window 4, then at 5.250 s three quarters of them still count: 8 (rounded up).
    let c = Counts {
        window: 4,
        cur: 10,
        prev: 0,
    };
    assert_eq!(c.at(5).estimate(250, w), 8);
    assert_eq!(
        decide(c, 5250, w, 10),
        Decision::Allow {
            remaining: 1,
            reset_s: 1
        }
    );
    assert_eq!(decide(c, 5000, w, 10), Decision::Limit { retry_after: 1 });
    assert_eq!(
        c.at(7),
        Counts {
            window: 7,
            cur: 0,
            prev: 0
        }
    );
    // r/m: 60 in the last minute; 10 s into the next, 50 of them still count.
    let c = Counts {
        window: 0,
        cur: 60,
        prev: 0,
    };
    assert_eq!(
        decide(c, 70_000, 60_000, 60),
        Decision::Allow {
            remaining: 9,
            reset_s: 50
        }
    );
    assert_eq!(
        decide(c, 59_000, 60_000, 60),
        Decision::Limit { retry_after: 2 }
    );
    let c = Counts {
        window: 1,
        cur: 30,
        prev: 60,
    };
    // 30 + 60 × 50/60 = 80 > 60: waits until 60 × left/60 <= 29, i.e. left <= 29 s: 21 s.
    assert_eq!(
        decide(c, 70_000, 60_000, 60),
        Decision::Limit { retry_after: 21 }
    );
}

#[test]
fn headers() {
    let p = Policy {
        quota: 100,
        burst: 20,
        window_ms: 60_000,
    };
    assert_eq!(policy_header("api", &p), "\"api\";q=120;w=60");
    assert_eq!(ratelimit_header("api", 0, 7), "\"api\";r=0;t=7");
}

#[test]
fn limit_status_values() {
    assert_eq!(LimitStatus::default().as_str(), None);
    assert_eq!(LimitStatus::Passed(None).as_str(), Some("PASSED"));
    let shown = |zone, remaining| Shown {
        zone,
        remaining,
        reset_s: 1,
    };
    assert_eq!(Shown::tighter(None, shown(0, 5)), shown(0, 5));
    assert_eq!(Shown::tighter(Some(shown(0, 5)), shown(1, 3)), shown(1, 3));
    assert_eq!(Shown::tighter(Some(shown(0, 3)), shown(1, 3)), shown(0, 3));
    assert_eq!(LimitStatus::Rejected.as_str(), Some("REJECTED"));
}

/// The hash names the Redis keys, which nodes of two releases share during a rolling
/// upgrade: it must stay FNV-1a over `zone`, a zero byte, `value` (this is the first form).
fn key_hash_as_first_written(zone: &str, value: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in zone.bytes().chain([0]).chain(value.iter().copied()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

proptest! {
    #[test]
    fn the_key_hash_keeps_its_values(zone in "[a-z_]{0,12}", value in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(key_hash(&zone, &value), key_hash_as_first_written(&zone, &value));
        prop_assert_eq!(KeyHasher::new(&zone).hash(&value), key_hash(&zone, &value));
    }
}

#[test]
fn key_identity() {
    assert_eq!(key_hash("a", b"alice"), key_hash("a", b"alice"));
    assert_ne!(key_hash("a", b"alice"), key_hash("b", b"alice"));
    assert_ne!(key_hash("a", b"b"), key_hash("ab", b""));
    assert_eq!(
        redis_key("a", 0xff, 9),
        "auth_jwt:limit:a:00000000000000ff:9"
    );
}

#[test]
fn table_limits_one_node() {
    let w = words(LimitTable::words_for(64));
    let t = LimitTable::new(&w);
    let allowed = (0..50)
        .filter(|i| matches!(t.hit(7, 3000 + i, 1000, 10, 1), Decision::Allow { .. }))
        .count();
    assert_eq!(allowed, 10);
    assert_eq!((t.allowed(), t.limited(), t.tracked()), (10, 40, 1));
    // Another key counts alone.
    assert!(matches!(
        t.hit(8, 3100, 1000, 10, 1),
        Decision::Allow { remaining: 9, .. }
    ));
}

#[test]
fn million_keys_stay_in_the_table() {
    let bytes = 1 << 20;
    let w = words(bytes / 8);
    let t = LimitTable::new(&w);
    for k in 1..=1_000_000u64 {
        t.hit(k.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, k, 1000, 5, 1);
    }
    assert_eq!(t.tracked() as usize, t.slots());
    assert_eq!(t.evicted() as usize, 1_000_000 - t.slots());
    assert_eq!(w.len() * 8, bytes);
}

/// The simulation's cluster in step, no warm-up: 100 r/s, sync 200 ms, at `per_ms` a ms.
fn cluster(nodes: usize, hint: u32, per_ms: u64) -> Vec<u64> {
    let s = super::sim::Sim {
        nodes,
        hint,
        limit: 100,
        sync_ms: 200,
        rtt_ms: 0,
        per_ms,
        start_ms: 0,
        warm_ms: 0,
        staggered: false,
        busy: nodes,
        ..super::sim::Sim::like_the_test()
    };
    super::sim::run(&s).per_window
}

#[test]
fn cluster_within_overshoot_bound() {
    // 3 nodes, 100 r/s, sync 200 ms, 1000 r/s offered, no hint: each other node admits at
    // most what reaches it in one sync interval (67) over the limit.
    let per_window = cluster(3, 1, 1);
    for (i, a) in per_window.iter().enumerate().take(10) {
        assert!(*a <= 100 + 2 * 200 / 3 + 2, "window {i}: {a}");
        assert!(*a >= 90, "window {i}: {a}");
    }
}

#[test]
fn cluster_with_nodes_hint_within_ten_percent() {
    for (nodes, per_ms) in [(3, 1), (3, 3), (2, 1), (5, 2)] {
        let per_window = cluster(nodes, nodes as u32, per_ms);
        let total: u64 = per_window[..10].iter().sum();
        assert!(
            (900..=1100).contains(&total),
            "{nodes} nodes, {per_ms}/ms: {total} {per_window:?}"
        );
    }
}

#[test]
fn fold_estimates_the_unseen_hits() {
    let w = words(LimitTable::words_for(8));
    let t = LimitTable::new(&w);
    let count = |now| match t.hit(9, now, 1000, 1000, 1) {
        Decision::Allow { remaining, .. } => 1000 - 1 - remaining,
        Decision::Limit { .. } => 1000,
    };
    let mut items = Vec::new();
    let mut sync = |now, total: &dyn Fn(u64) -> u64| {
        items.clear();
        t.drain(now, 1000, &mut items);
        for it in &items {
            t.fold(it, total(it.delta), now, 1000, 3);
        }
    };
    for i in 0..4 {
        t.hit(9, 5000 + i, 1000, 1000, 1);
    }
    // The window's first sync: Redis holds these 4 and 2 of others; the other two nodes
    // are taken to have as many unseen: 6 + 2 × 4.
    sync(5100, &|d| d + 2);
    assert_eq!(count(5100), 14);
    // Next sync: the 1 counted above; the others added 9 since the last: as many unseen.
    sync(5200, &|d| 6 + d + 9);
    assert_eq!(count(5200), 16 + 9);
    // The one above; nothing new from the others: no estimate left.
    sync(5300, &|d| 16 + d);
    assert_eq!(count(5300), 17);
}

proptest! {
    #[test]
    fn one_node_never_exceeds(limit in 1u32..200, gaps in prop::collection::vec(0u64..40, 1..600)) {
        let w = words(LimitTable::words_for(8));
        let t = LimitTable::new(&w);
        let mut now = 0;
        let mut hits: Vec<u64> = Vec::new();
        for g in gaps {
            now += g;
            if let Decision::Allow { .. } = t.hit(5, now, 1000, limit, 1) {
                hits.push(now);
            }
        }
        // Any 1 s sliding span holds at most limit + (rounding) allowed hits of the
        // fixed windows it touches: never more than twice, and one fixed window never more
        // than the limit.
        for win in 0..=now / 1000 {
            let n = hits.iter().filter(|h| **h / 1000 == win).count() as u32;
            prop_assert!(n <= limit);
        }
    }

    /// A Redis that holds at least what this node added never lowers the node's count.
    #[test]
    fn fold_never_lowers(cur in 0u32..1000, others in 0u64..1000) {
        let total = u64::from(cur) + others;
        let w = words(LimitTable::words_for(8));
        let t = LimitTable::new(&w);
        for i in 0..cur {
            t.hit(9, 5000 + u64::from(i % 900), 1000, MAX_LIMIT, 1);
        }
        let mut items = Vec::new();
        t.drain(5950, 1000, &mut items);
        let before = match t.hit(9, 5950, 1000, MAX_LIMIT, 1) {
            Decision::Allow { remaining, .. } => remaining,
            Decision::Limit { .. } => 0,
        };
        for it in &items {
            t.fold(it, total, 5950, 1000, 1);
        }
        let after = match t.hit(9, 5950, 1000, MAX_LIMIT, 1) {
            Decision::Allow { remaining, .. } => remaining,
            Decision::Limit { .. } => 0,
        };
        prop_assert!(after < before);
    }
}
