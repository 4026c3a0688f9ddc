//! Tests for auth_jwt: revocation from a file and from a Redis Stream.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::mint::now;
use crate::harness::redis::Redis;
use crate::harness::{poll_until, Jwt, Nginx};

mod secure;
mod table;

const CONF: &str = r#"
    auth_jwt_revocation_file {{prefix}}/revoked.json;
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        location / {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
    }
"#;

fn token(jti: &str, sub: &str, iat: i64) -> String {
    Jwt::new("RS256")
        .claim("jti", json!(jti))
        .claim("sub", json!(sub))
        .claim("iat", json!(iat))
        .encode()
}

fn status(nginx: &Nginx, token: &str) -> u16 {
    nginx.get("/").bearer(token).send().status
}

/// Polls (at most 10 s) until the error log holds `want`; the log as it is then.
fn wait_log(nginx: &Nginx, want: &str) -> String {
    poll_until(Duration::from_secs(10), || {
        let log = nginx.error_log();
        log.contains(want).then_some(log)
    })
    .unwrap_or_else(|| nginx.error_log())
}

/// Polls until `token` gets `want` (bounded: 50 tries, 5 s), returning how long it took.
fn until_status(nginx: &Nginx, token: &str, want: u16) -> Duration {
    let start = Instant::now();
    for _ in 0..500 {
        if status(nginx, token) == want {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no {want} within 5 s");
}

#[test]
fn a_file_revokes_by_jti_subject_and_kid_and_is_reread() {
    let t0 = now();
    let list = json!([
        {"jti": "stolen", "exp": t0 + 3600},
        {"sub": "alice", "before": t0},
    ]);
    let nginx = Nginx::http(CONF)
        .workers(2)
        .file("revoked.json", list.to_string())
        .start();
    let fine = token("fine", "bob", t0);
    let cached = token("later", "carol", t0);
    assert_eq!(status(&nginx, &fine), 200);
    assert_eq!(status(&nginx, &cached), 200, "now in a worker's cache");
    let resp = nginx.get("/").bearer(&token("stolen", "bob", t0)).send();
    assert_eq!(resp.status, 401);
    let challenge = resp.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"invalid_token\", error_description=\"token revoked\""),
        "{challenge}"
    );
    assert_eq!(status(&nginx, &token("a", "alice", t0 - 10)), 401);
    assert_eq!(
        status(&nginx, &token("b", "alice", t0 + 1)),
        200,
        "issued after"
    );
    // An edit is picked up without a reload: the cached token is refused at its next request.
    let path = nginx.prefix().join("revoked.json");
    let edited = json!([{"jti": "later"}, {"sub": "alice", "before": t0}]);
    std::fs::write(&path, edited.to_string()).unwrap();
    until_status(&nginx, &cached, 401);
    assert_eq!(status(&nginx, &token("stolen", "bob", t0)), 200, "lifted");
    // A broken edit keeps the last good list and says why.
    std::fs::write(&path, "[{").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status(&nginx, &cached), 401);
    let log = nginx.error_log();
    assert!(
        log.contains("not reloaded: invalid JSON") && log.contains("keeping the last good list"),
        "{log}"
    );
    assert!(
        log.contains("rejected (revoked): token revoked (jti)"),
        "{log}"
    );
    nginx.finish();
}

#[test]
fn a_broken_revocation_file_fails_the_configuration_test() {
    let out = Nginx::http(CONF)
        .file("revoked.json", r#"[{"sub": "alice"}]"#)
        .try_start()
        .err()
        .unwrap_or_default();
    assert!(
        out.contains("entry 1: a sub revocation needs \"before\""),
        "{out}"
    );
}

const REDIS_CONF: &str = r#"
    auth_jwt_revocation_redis redis://127.0.0.1:{{redis}} timeout=1s;
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        location / {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
    }
"#;

#[test]
fn redis_revocations_reach_every_worker_of_two_nodes_within_a_second() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let conf = REDIS_CONF.replace("{{redis}}", &redis.port.to_string());
    let a = Nginx::http(&conf).workers(2).start();
    let b = Nginx::http(&conf).workers(2).start();
    let t0 = now();
    let mut latencies = Vec::new();
    for n in 0..20 {
        let tok = token(&format!("j{n}"), "bob", t0);
        assert_eq!(status(&a, &tok), 200);
        assert_eq!(status(&b, &tok), 200, "cached on both nodes");
        let start = Instant::now();
        redis.xadd(&["jti", &format!("j{n}"), "exp", &(t0 + 3600).to_string()]);
        until_status(&a, &tok, 401);
        until_status(&b, &tok, 401);
        latencies.push(start.elapsed());
        // Every worker: several requests, spread by NGINX over both workers.
        for _ in 0..6 {
            assert_eq!(status(&a, &tok), 401);
            assert_eq!(status(&b, &tok), 401);
        }
    }
    latencies.sort();
    let p99 = latencies[latencies.len() - 1];
    eprintln!(
        "XADD to first 401 on both nodes: p50 {:?}, p99 {p99:?}",
        latencies[10]
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    // By subject and by kid.
    redis.xadd(&["sub", "alice", "before", &(t0 + 1).to_string()]);
    until_status(&b, &token("x", "alice", t0), 401);
    assert_eq!(status(&a, &token("y", "alice", t0 + 5)), 200);
    // A malformed entry is refused with one line, and the sync goes on.
    redis.xadd(&["jti", "m", "exp", "soon"]);
    redis.xadd(&["jti", "after-bad"]);
    until_status(&a, &token("after-bad", "bob", t0), 401);
    // Requests do not make Redis calls.
    let before = redis.calls("xread");
    let cached = token("fine", "bob", t0);
    for _ in 0..500 {
        assert_eq!(status(&a, &cached), 200);
    }
    let after = redis.calls("xread");
    eprintln!("XREAD calls during 500 requests: {}", after - before);
    assert!(after - before < 100, "{before} -> {after}");
    // By kid: every token signed under it (ES256 here, so that RS256 tokens stay usable).
    let kid = Jwt::new("ES256").claim("sub", json!("kid-user"));
    let header = crate::harness::mint::b64_decode(&kid.segments()[0]);
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    let kid = kid.encode();
    assert_eq!(status(&a, &kid), 200);
    redis.xadd(&["kid", header["kid"].as_str().unwrap()]);
    until_status(&a, &kid, 401);
    until_status(&b, &kid, 401);
    // The sync thread's lines are written by its worker's event loop, once a second.
    let want = "refused: field \"exp\" is not a time in seconds since the epoch";
    let deadline = Instant::now() + Duration::from_secs(3);
    while !a.error_log().contains(want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = a.error_log();
    assert!(log.contains(want), "{log}");
    assert!(
        log.contains("revocations: full sync of \"auth_jwt:revocations\""),
        "{log}"
    );
    a.finish();
    b.finish();
}

#[test]
fn redis_revocations_survive_reload_restart_and_outage_and_100k_sync() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let conf = REDIS_CONF.replace("{{redis}}", &redis.port.to_string());
    let mut nginx = Nginx::http(&conf)
        .workers(2)
        .allow_log("revocation sync with")
        .start();
    let t0 = now();
    let old = token("old", "bob", t0);
    redis.xadd(&["jti", "old", "exp", &(t0 + 3600).to_string()]);
    until_status(&nginx, &old, 401);
    nginx.reload().expect("reload");
    assert_eq!(status(&nginx, &old), 401, "kept across a reload");
    // Redis restarted without persistence: the set holds, and what is re-added comes in.
    redis.restart();
    assert_eq!(status(&nginx, &old), 401);
    let new = token("new", "bob", t0);
    assert_eq!(status(&nginx, &new), 200);
    redis.xadd(&["jti", "new", "exp", &(t0 + 3600).to_string()]);
    let took = until_status(&nginx, &new, 401);
    eprintln!("first revocation after a Redis restart applied in {took:?}");
    // Redis down: the last set holds.
    redis.stop();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&nginx, &old), 401);
    assert_eq!(status(&nginx, &new), 401);
    assert_eq!(status(&nginx, &token("fine", "bob", t0)), 200);
    // 100,000 entries, then a reconnect's full sync.
    redis.restart();
    redis.xadd_jtis("bulk", 100_000, t0 + 3600);
    let last = token("bulk-99999", "bob", t0);
    let took = until_status(&nginx, &last, 401);
    eprintln!("100,000 entries applied from the stream in {took:?} (after the last XADD)");
    // A new owner's full sync of the whole stream (a reload: new workers, new connections).
    let mark = nginx.log_mark();
    nginx.reload().expect("reload");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let log = nginx.log_since(mark);
        if let Some(l) = log
            .lines()
            .find(|l| l.contains("full sync") && l.contains("100000 entries"))
        {
            break l.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no full sync of 100,000 entries: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("{line}");
    assert_eq!(status(&nginx, &last), 401);
    nginx.finish();
}

/// `on_stale=503`: once Redis has not been read for `max_stale`, every token gets 503 with
/// `Retry-After` and its own reason (a list that old may miss revocations); when Redis is
/// back, tokens pass again.
#[test]
fn on_stale_503_refuses_once_the_list_is_older_than_max_stale() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let conf = REDIS_CONF
        .replace("{{redis}}", &redis.port.to_string())
        .replace("timeout=1s;", "timeout=1s max_stale=2s on_stale=503;");
    let nginx = Nginx::http(&conf)
        .allow_log("revocation sync with")
        .allow_log("revocation list too stale")
        .start();
    let fine = token("fine", "bob", now());
    until_status(&nginx, &fine, 200);
    redis.stop();
    // Bounded: max_stale (2 s) plus a sync interval, polled for at most 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        let resp = nginx.get("/").bearer(&fine).send();
        if resp.status == 503 || Instant::now() > deadline {
            break resp;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(resp.header("retry-after"), Some("5"), "{resp:?}");
    let log = nginx.error_log();
    assert!(
        log.contains("rejected (no_keys): revocation list too stale"),
        "{log}"
    );
    redis.restart();
    let took = until_status(&nginx, &fine, 200);
    eprintln!("served again {took:?} after Redis came back");
}
