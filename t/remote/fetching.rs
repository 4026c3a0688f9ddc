//! Tests for auth_jwt: remote keys fetched in the background, rotation, revalidation.

use super::*;

#[test]
fn keys_are_fetched_in_the_background_and_verify() {
    let idp = Idp::start();
    let k = keys();
    // Symmetric keys from the network are dropped: a published secret lets anyone sign.
    idp.set_keys(&[k.rsa.jwk(), k.p256.jwk(), k.hs256.jwk()]);
    let url = idp.jwks_url();
    let nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=10m"), "", "")).start();
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    wait_log(
        &nginx,
        0,
        &format!("[info] *auth_jwt: keys from \"{url}\": generation 1, kids [rsa-1, ec256-1]"),
        LOG_WAIT,
    );
    let mut f = Failures::new();
    for i in 0..20 {
        f.check(
            &format!("RS256 {i}"),
            nginx.check_accepted("/", &token1()).map(|_| ()),
        );
        f.check(
            &format!("ES256 {i}"),
            nginx
                .check_accepted("/", &Jwt::new("ES256").encode())
                .map(|_| ()),
        );
    }
    f.assert();
    // The IdP is not on the request path: one fetch for all of that.
    assert_eq!(idp.jwks_count(), 1, "{:?}", idp.hits(JWKS_PATH));
    let hit = &idp.hits(JWKS_PATH)[0];
    assert_eq!((hit.status, hit.if_none_match.as_deref()), (200, None));
    nginx
        .check_rejected(
            "/",
            "api",
            &Jwt::new("HS256").encode(),
            "invalid",
            "no key matches kid",
        )
        .unwrap();
    nginx.finish();
}

#[test]
fn rotation_with_overlap_is_followed_without_a_failed_request() {
    let idp = Idp::start();
    let k = keys();
    let url = idp.jwks_url();
    let nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=1s"), "", ""))
        .workers(2)
        .start();
    wait_keys_in_workers(&nginx, 0, &url, "1, kids [rsa-1]", 2);
    let old = Traffic::start(nginx.port(), vec![token1()]);

    // The IdP publishes the next key before it signs with it...
    let mark = nginx.log_mark();
    idp.set_keys(&[k.rsa.jwk(), k.rsa_other.jwk()]);
    // ...and every worker has it before a client shows a token it signed.
    wait_keys_in_workers(
        &nginx,
        mark,
        &url,
        "2, kids [rsa-1, rsa-2] (were [rsa-1])",
        2,
    );
    old.finish("while rsa-2 was added");
    let both = Traffic::start(nginx.port(), vec![token1(), token2()]);
    thread::sleep(Duration::from_millis(1500));
    both.finish("with rsa-1 and rsa-2 published");

    // Clients have moved to the new key; the IdP retires the old one.
    let new = Traffic::start(nginx.port(), vec![token2()]);
    let mark = nginx.log_mark();
    idp.set_keys(&[k.rsa_other.jwk()]);
    wait_keys_in_workers(
        &nginx,
        mark,
        &url,
        "3, kids [rsa-2] (were [rsa-1, rsa-2])",
        2,
    );
    thread::sleep(Duration::from_millis(500));
    new.finish("while rsa-1 was retired");
    nginx
        .check_rejected("/", "api", &token1(), "invalid", "no key matches kid")
        .unwrap();
    nginx.finish();
}

#[test]
fn rotation_without_overlap_wakes_the_fetcher_once_per_30s() {
    let idp = Idp::start();
    let k = keys();
    let url = idp.jwks_url();
    // A refresh far away: only an unknown kid can make the fetcher look again.
    let nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=10m"), "", "")).start();
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    assert_eq!(idp.jwks_count(), 1);

    // The IdP swaps its key at once; the first token from the new key is refused...
    idp.set_keys(&[k.rsa_other.jwk()]);
    let asked = Instant::now();
    nginx
        .check_rejected("/", "api", &token2(), "invalid", "no key matches kid")
        .unwrap();
    // ...and makes the fetcher look right away, not in 10 minutes.
    let fetched = idp
        .wait_count(JWKS_PATH, 2, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}\n{}", nginx.error_log()));
    let delay = fetched.saturating_duration_since(asked);
    assert!(
        delay < Duration::from_millis(1500),
        "early fetch after {delay:?}"
    );
    wait_accepted(&nginx, &token2(), Duration::from_secs(3));
    wait_log(
        &nginx,
        0,
        &format!("auth_jwt: keys from \"{url}\": generation 2, kids [rsa-2] (were [rsa-1])"),
        LOG_WAIT,
    );

    // Within 30 s, other unknown kids (the retired one, one never published) get 401 and
    // no fetch.
    let other = Jwt::new("ES256").ec_key(&k.p256_other).encode();
    for token in [&token1(), &other, &token1(), &other] {
        nginx
            .check_rejected("/", "api", token, "invalid", "no key matches kid")
            .unwrap();
    }
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        idp.jwks_count(),
        2,
        "an unknown kid made another fetch within 30 s: {:?}",
        idp.hits(JWKS_PATH)
    );
    nginx.finish();
}

#[test]
fn etag_revalidation_keeps_keys_and_a_short_refresh_beats_a_long_max_age() {
    let idp = Idp::start();
    // refresh (1 s) is shorter than max-age: refresh wins.
    idp.set_cache_control(Some("public, max-age=3600"));
    let url = idp.jwks_url();
    let nginx = Nginx::http(&conf(
        &idp,
        &key_uri(&idp, "refresh=1s max_stale=2s"),
        "",
        "",
    ))
    .start();
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    let etag = idp.etag();
    idp.wait_count(JWKS_PATH, 5, Duration::from_secs(7))
        .unwrap_or_else(|e| panic!("max-age=3600 overrode refresh=1s? {e}"));
    let hits = idp.hits(JWKS_PATH);
    assert_eq!(hits[0].status, 200);
    for hit in &hits[1..] {
        assert_eq!(
            (hit.status, hit.if_none_match.as_deref()),
            (304, Some(etag.as_str())),
            "{hits:?}"
        );
    }
    // 304s count as successes: 4 s after the only 200, past max_stale=2s, the keys live.
    nginx.check_accepted("/", &token1()).unwrap();
    nginx.assert_no_log(0, "generation 2");

    // A changed key set is a new ETag: 200, a new generation, then 304s against the new tag.
    let mark = nginx.log_mark();
    idp.set_keys(&[keys().rsa.jwk(), keys().rsa_other.jwk()]);
    let new_etag = idp.etag();
    wait_log(
        &nginx,
        mark,
        &format!("auth_jwt: keys from \"{url}\": generation 2, kids [rsa-1, rsa-2] (were [rsa-1])"),
        LOG_WAIT,
    );
    nginx.check_accepted("/", &token2()).unwrap();
    let n = idp.jwks_count();
    idp.wait_count(JWKS_PATH, n + 1, Duration::from_secs(4))
        .unwrap();
    let last = idp.hits(JWKS_PATH).pop().expect("a hit");
    assert_eq!(
        (last.status, last.if_none_match.as_deref()),
        (304, Some(new_etag.as_str()))
    );
    nginx.finish();
}

#[test]
fn max_age_shorter_than_refresh_is_honoured_with_a_30s_floor() {
    // max-age=5 asks for a refresh in 5 s: sooner than refresh=10m, but below the 30 s floor.
    let idp = Idp::start();
    idp.set_cache_control(Some("max-age=5"));
    // Without an ETag every fetch is a full 200.
    idp.set_etag(false);
    let nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=10m"), "", "")).start();
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    let first = idp.hits(JWKS_PATH)[0].at;
    let second = idp
        .wait_count(JWKS_PATH, 2, Duration::from_secs(36))
        .unwrap_or_else(|e| panic!("max-age ignored (refresh=10m won)? {e}"));
    let gap = second - first;
    assert!(
        gap >= Duration::from_secs(29) && gap <= Duration::from_millis(32500),
        "second fetch {gap:?} after the first; expected 30 s (max-age=5 raised to the floor)"
    );
    let hits = idp.hits(JWKS_PATH);
    assert_eq!(
        (hits[1].status, hits[1].if_none_match.as_deref()),
        (200, None)
    );
    nginx.check_accepted("/", &token1()).unwrap();
    nginx.finish();
}
