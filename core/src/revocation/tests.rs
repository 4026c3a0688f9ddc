use core::sync::atomic::AtomicU64;

use super::file::parse_file;
use super::redis_url::{parse_redis_args, parse_redis_url, OnStale};
use super::*;

fn words(slots: usize) -> Vec<AtomicU64> {
    (0..Table::words_for(slots))
        .map(|_| AtomicU64::new(0))
        .collect()
}

fn fields(text: &str) -> Vec<(&str, &str)> {
    let parts: Vec<&str> = text.split(' ').collect();
    parts.chunks(2).map(|c| (c[0], c[1])).collect()
}

#[test]
fn stream_entries_parse_or_are_refused() {
    let ok = [
        (
            "jti a exp 100",
            Revocation::Jti {
                jti: "a".into(),
                exp: Some(100),
            },
        ),
        (
            "jti a",
            Revocation::Jti {
                jti: "a".into(),
                exp: None,
            },
        ),
        (
            "sub u iss https://i before 5",
            Revocation::Sub {
                sub: "u".into(),
                iss: Some("https://i".into()),
                before: 5,
            },
        ),
        (
            "before 5 sub u",
            Revocation::Sub {
                sub: "u".into(),
                iss: None,
                before: 5,
            },
        ),
        (
            "kid k",
            Revocation::Kid {
                kid: "k".into(),
                exp: None,
            },
        ),
        (
            "kid k exp 9",
            Revocation::Kid {
                kid: "k".into(),
                exp: Some(9),
            },
        ),
    ];
    for (text, want) in ok {
        assert_eq!(parse_entry(fields(text)), Ok(want), "{text}");
    }
    let bad = [
        ("exp 100", EntryError::NoKind),
        ("jti a sub b", EntryError::NoKind),
        ("jti a exp soon", EntryError::BadTime("exp")),
        ("jti a exp -1", EntryError::BadTime("exp")),
        ("jti a exp 1.5", EntryError::BadTime("exp")),
        ("sub u", EntryError::MissingBefore),
        (
            "sub u before 1 exp 2",
            EntryError::UnknownField("exp".into()),
        ),
        ("jti a before 1", EntryError::UnknownField("before".into())),
        ("kid k iss x", EntryError::UnknownField("iss".into())),
        ("jti a jti b", EntryError::Duplicate("jti")),
        ("jti a color red", EntryError::UnknownField("color".into())),
    ];
    for (text, want) in bad {
        assert_eq!(parse_entry(fields(text)), Err(want), "{text}");
    }
    assert_eq!(parse_entry([("jti", "")]), Err(EntryError::BadValue("jti")));
    let long = "x".repeat(MAX_VALUE + 1);
    assert_eq!(
        parse_entry([("kid", long.as_str())]),
        Err(EntryError::BadValue("kid"))
    );
    // The message for an attacker-chosen field name is escaped.
    let e = parse_entry([("a\"\n", "1")]).unwrap_err().to_string();
    assert_eq!(e, "unknown field \"a\\\"?\"");
}

#[test]
fn entries_expire_as_configured() {
    let day = 86400;
    let jti = Revocation::Jti {
        jti: "a".into(),
        exp: Some(500),
    }
    .entry(100, day);
    assert_eq!((jti.until, jti.before), (500, 0));
    let jti = Revocation::Jti {
        jti: "a".into(),
        exp: None,
    }
    .entry(100, day);
    assert_eq!(jti.until, 100 + 86400);
    let sub = Revocation::Sub {
        sub: "u".into(),
        iss: None,
        before: 1000,
    }
    .entry(5000, day);
    assert_eq!((sub.until, sub.before), (1000 + 86400, 1000));
    let kid = Revocation::Kid {
        kid: "k".into(),
        exp: None,
    }
    .entry(100, day);
    assert_eq!(kid.until, 0, "a revoked key stays revoked");
    assert!(kid.live(i64::from(u32::MAX)));
    assert!(!jti.live(100 + 86400) && jti.live(100 + 86399));
    assert_eq!([jti.kind(), sub.kind(), kid.kind()], Kind::ALL);
}

#[test]
fn tokens_are_checked_by_kid_jti_and_subject() {
    let w = words(64);
    let t = Table::new(&w);
    assert!(t.try_lock(7, 0, 10));
    let now = 1000;
    for r in [
        Revocation::Jti {
            jti: "stolen".into(),
            exp: Some(2000),
        },
        Revocation::Sub {
            sub: "alice".into(),
            iss: Some("https://a".into()),
            before: 900,
        },
        Revocation::Sub {
            sub: "bob".into(),
            iss: None,
            before: 900,
        },
        Revocation::Kid {
            kid: "leaked".into(),
            exp: None,
        },
    ] {
        assert_eq!(t.insert(r.entry(now, 3600)), Insert::Added);
    }
    let f = |jti, sub, iss, iat, kid| Facts {
        jti,
        sub,
        iss,
        iat,
        kid,
    };
    let kind = |facts: Facts<'_>| check(&t, &facts, now).map(|r| r.kind);
    assert_eq!(
        kind(f(Some("stolen"), None, None, None, None)),
        Some(Kind::Jti)
    );
    assert_eq!(kind(f(Some("other"), None, None, None, None)), None);
    assert_eq!(
        kind(f(None, None, None, None, Some("leaked"))),
        Some(Kind::Kid)
    );
    assert_eq!(kind(f(None, None, None, None, Some("fine"))), None);
    // alice under her issuer only; iat before 900 refused, at or after accepted; no iat refused.
    let alice = |iss, iat| kind(f(None, Some("alice"), iss, iat, None));
    assert_eq!(alice(Some("https://a"), Some(899)), Some(Kind::Sub));
    assert_eq!(alice(Some("https://a"), Some(900)), None);
    assert_eq!(alice(Some("https://a"), None), Some(Kind::Sub));
    assert_eq!(alice(Some("https://b"), Some(1)), None);
    assert_eq!(alice(None, Some(1)), None);
    // bob under any issuer.
    let bob = |iss, iat| kind(f(None, Some("bob"), iss, iat, None));
    assert_eq!(bob(Some("https://x"), Some(899)), Some(Kind::Sub));
    assert_eq!(bob(None, Some(899)), Some(Kind::Sub));
    assert_eq!(bob(None, Some(901)), None);
    // A jti past its expiry no longer counts, even before the sweep.
    assert_eq!(
        check(&t, &f(Some("stolen"), None, None, None, None), 2000),
        None
    );
    assert_eq!(
        [t.count(Kind::Jti), t.count(Kind::Sub), t.count(Kind::Kid)],
        [1, 2, 1]
    );
}

#[test]
fn facts_come_from_claims() {
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"jti":"j","sub":"s","iss":"i","iat":1700000000.7}"#).unwrap();
    let facts = Facts::of(Some("k"), &claims);
    assert_eq!(
        (facts.jti, facts.sub, facts.iss, facts.iat, facts.kid),
        (
            Some("j"),
            Some("s"),
            Some("i"),
            Some(1_700_000_000),
            Some("k")
        )
    );
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"jti":5,"sub":["s"],"iat":"1"}"#).unwrap();
    let facts = Facts::of(None, &claims);
    assert_eq!((facts.jti, facts.sub, facts.iat), (None, None, None));
}

#[test]
fn the_table_widens_fills_and_sweeps() {
    let w = words(16);
    let t = Table::new(&w);
    assert_eq!((t.slots(), t.capacity()), (16, 14));
    let e = |n: usize, until| Entry {
        key: key(Kind::Jti, "", &n.to_string()),
        until,
        before: 0,
    };
    for n in 0..14 {
        assert_eq!(t.insert(e(n, 100 + n as u32)), Insert::Added);
    }
    assert_eq!(t.insert(e(99, 1)), Insert::Full);
    assert_eq!(
        t.insert(e(3, 50)),
        Insert::Unchanged,
        "an earlier end keeps the later one"
    );
    assert_eq!(t.insert(e(3, 500)), Insert::Updated);
    assert_eq!(t.get(e(3, 0).key, 499).map(|x| x.until), Some(500));
    // Sweep at 107: entries 0..=7 (until 100..=107) go, 3 (widened) stays.
    assert_eq!(t.sweep(107), 7);
    assert_eq!(t.len(), 7);
    for n in 0..14 {
        let live = n == 3 || n >= 8;
        assert_eq!(t.get(e(n, 0).key, 0).is_some(), live, "entry {n}");
    }
    assert!(t.remove(e(3, 0).key));
    assert!(!t.remove(e(3, 0).key));
    assert_eq!(t.count(Kind::Jti), 6);
}

#[test]
fn deletes_keep_every_other_entry_reachable() {
    // Many keys in a small table: long probe chains that wrap around the end.
    let w = words(64);
    let t = Table::new(&w);
    let keys: Vec<u64> = (0..56)
        .map(|n| key(Kind::Kid, "", &format!("k{n}")))
        .collect();
    for (n, k) in keys.iter().enumerate() {
        let until = if n % 3 == 0 { 10 } else { 0 };
        assert_eq!(
            t.insert(Entry {
                key: *k,
                until,
                before: 0
            }),
            Insert::Added
        );
    }
    t.sweep(10);
    for (n, k) in keys.iter().enumerate() {
        assert_eq!(t.get(*k, 0).is_some(), n % 3 != 0, "key {n}");
    }
    for (n, k) in keys.iter().enumerate().filter(|(n, _)| n % 3 == 1) {
        assert!(t.remove(*k), "key {n}");
    }
    for (n, k) in keys.iter().enumerate() {
        assert_eq!(t.get(*k, 0).is_some(), n % 3 == 2, "key {n}");
    }
}

#[test]
fn readers_never_miss_an_entry_while_others_are_deleted() {
    let w = words(1024);
    let t = Table::new(&w);
    let stay: Vec<u64> = (0..400)
        .map(|n| key(Kind::Jti, "", &format!("s{n}")))
        .collect();
    for k in &stay {
        t.insert(Entry {
            key: *k,
            until: 0,
            before: 0,
        });
    }
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let t = Table::new(&w);
            for round in 0..200 {
                for k in &stay {
                    assert!(t.get(*k, 0).is_some(), "round {round}");
                }
            }
        });
        let t = Table::new(&w);
        for round in 0..200u32 {
            let churn: Vec<Entry> = (0..400)
                .map(|n| Entry {
                    key: key(Kind::Jti, "", &format!("c{round}-{n}")),
                    until: 5,
                    before: 0,
                })
                .collect();
            for e in &churn {
                t.insert(*e);
            }
            t.sweep(5);
            if reader.is_finished() {
                break;
            }
        }
    });
}

#[test]
fn the_writer_lock_is_exclusive_until_it_lapses() {
    let w = words(16);
    let t = Table::new(&w);
    assert!(t.try_lock(1, 100, 110));
    assert!(t.try_lock(1, 101, 111), "the holder renews");
    assert!(!t.try_lock(2, 105, 115));
    assert!(t.try_lock(2, 112, 122), "a lapsed holder is replaced");
    t.unlock(1);
    assert!(!t.try_lock(1, 113, 123), "only the holder unlocks");
    t.unlock(2);
    assert!(t.try_lock(1, 113, 123));
    let empty = Table::new(&[]);
    assert!(!empty.try_lock(1, 0, 1));
    assert_eq!(empty.get(1, 0), None);
    assert_eq!(
        empty.insert(Entry {
            key: 5,
            until: 0,
            before: 0
        }),
        Insert::Full
    );
    assert_eq!(Table::slots_for_bytes(4 << 20), 131_072);
    assert_eq!(
        Table::slots_for_bytes(Table::words_for(1 << 18) * 8),
        1 << 18
    );
}

#[test]
fn files_parse_with_the_entry_that_failed() {
    let ok = br#"[{"jti":"a","exp":100},{"sub":"u","iss":"i","before":"5"},{"kid":"k"}]"#;
    assert_eq!(parse_file(ok).unwrap().len(), 3);
    assert_eq!(parse_file(b"[]").unwrap(), vec![]);
    let bad: [(&[u8], &str); 5] = [
        (b"{", "invalid JSON"),
        (b"{}", "not a JSON array"),
        (b"[1]", "entry 1: not an object"),
        (
            br#"[{"kid":"k"},{"jti":"a","exp":true}]"#,
            "entry 2: field \"exp\" is not",
        ),
        (br#"[{"sub":"u"}]"#, "entry 1: a sub revocation needs"),
    ];
    for (text, want) in bad {
        let e = parse_file(text).unwrap_err();
        assert!(e.starts_with(want), "{e}");
    }
}

#[test]
fn redis_urls_and_parameters() {
    let u = parse_redis_url("redis://127.0.0.1:6390/2").unwrap();
    assert_eq!(
        (u.tls, u.host.as_str(), u.port, u.db),
        (false, "127.0.0.1", 6390, 2)
    );
    let u = parse_redis_url("rediss://nginx:s3cret@redis.example.com").unwrap();
    assert_eq!(
        (u.tls, u.port, u.user.as_deref()),
        (true, 6379, Some("nginx"))
    );
    assert_eq!(u.password.as_deref(), Some("s3cret"));
    assert_eq!(u.to_string(), "rediss://nginx@redis.example.com:6379/0");
    assert!(!format!("{u:?}").contains("s3cret"));
    let u = parse_redis_url("redis://:pw@[::1]:7000/").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.user.as_deref()),
        ("::1", 7000, None)
    );
    assert_eq!(u.to_string(), "redis://default@::1:7000/0");
    for bad in [
        "http://x",
        "redis://",
        "redis://h:0",
        "redis://h:x",
        "redis://h/db",
        "redis://u:pw@h o",
    ] {
        let e = parse_redis_url(bad).unwrap_err().to_string();
        assert!(!e.contains("pw"), "{e}");
    }
    let a = parse_redis_args(&["redis://h"]).unwrap();
    assert_eq!(a.stream, "auth_jwt:revocations");
    assert_eq!(a.on_stale, OnStale::Serve);
    let a = parse_redis_args(&[
        "rediss://u@h",
        "stream=s",
        "timeout=2s",
        "max_stale=1h",
        "on_stale=503",
        "password_file=/p",
        "trusted_certificate=/ca.pem",
    ])
    .unwrap();
    assert_eq!(
        (
            a.stream.as_str(),
            a.timeout.as_secs(),
            a.max_stale.as_secs()
        ),
        ("s", 2, 3600)
    );
    assert_eq!(
        (a.on_stale, a.password_file.as_deref()),
        (OnStale::Refuse, Some("/p"))
    );
    for bad in [
        &["redis://h", "stream="][..],
        &["redis://h", "on_stale=open"],
        &["redis://h", "timeout=10ms"],
        &["redis://h", "color=red"],
        &["redis://u:pw@h", "password_file=/p"],
        &["redis://h", "trusted_certificate=/ca.pem"],
        &[],
    ] {
        assert!(parse_redis_args(bad).is_err(), "{bad:?}");
    }
    assert_eq!(redis_url::password_from_file("pw\r\nmore").unwrap(), "pw");
    assert!(redis_url::password_from_file("\n").is_err());
}
