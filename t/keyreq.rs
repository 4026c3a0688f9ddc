//! Tests for auth_jwt: keys from a subrequest (`auth_jwt_key_request`, `auth_jwt_key_cache`).

use std::thread;
use std::time::Duration;

use crate::harness::idp::{Fault, Idp, JWKS_PATH};
use crate::harness::{keys, poll_until, Failures, Jwt, Nginx};

/// NGINX Plus's documented example, with the IdP on HTTPS behind the internal location.
fn conf(idp: &Idp, cache: &str) -> String {
    format!(
        r#"
    proxy_cache_path {{{{prefix}}}}/cache levels=1 keys_zone=foo:10m;
    server {{
        listen 127.0.0.1:{{{{port}}}};

        location / {{
            auth_jwt             "closed site";
            auth_jwt_key_cache   {cache};
            auth_jwt_key_request /jwks_uri;
            proxy_pass {{{{upstream}}}};
        }}

        location = /jwks_uri {{
            internal;
            proxy_cache foo;
            proxy_pass  https://127.0.0.1:{port}{JWKS_PATH};
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_trusted_certificate {ca};
        }}
    }}
"#,
        port = idp.port(),
        ca = idp.ca_file().display(),
    )
}

fn rs() -> String {
    Jwt::new("RS256").encode()
}

#[test]
fn plus_example_fetches_once_for_every_worker() {
    let idp = Idp::start();
    // A secret in the response is never used: anyone who read it could mint tokens.
    let k = keys();
    idp.set_keys(&[k.rsa.jwk(), k.hs256.jwk()]);
    let nginx = Nginx::http(&conf(&idp, "1h")).workers(2).start();
    let mut f = Failures::new();
    for i in 0..30 {
        f.check(&format!("request {i}"), nginx.check_accepted("/", &rs()));
    }
    f.assert();
    assert_eq!(idp.jwks_count(), 1, "{:?}", idp.hits(JWKS_PATH));
    nginx
        .check_rejected(
            "/",
            "closed site",
            &Jwt::new("HS256").encode(),
            "invalid",
            "no key matches kid",
        )
        .unwrap();
    // The client cannot reach the internal location.
    assert_eq!(nginx.get("/jwks_uri").send().status, 404);
    nginx.finish();
}

#[test]
fn concurrent_requests_share_one_subrequest() {
    let idp = Idp::start();
    idp.set_fault(Fault::Slow(Duration::from_millis(800)));
    let nginx = Nginx::http(&conf(&idp, "1h")).start();
    let port = nginx.port();
    let token = rs();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let token = token.clone();
            thread::spawn(move || {
                crate::harness::Request::new(port, "GET", "/")
                    .bearer(&token)
                    .send()
                    .status
            })
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(idp.jwks_count(), 1, "{:?}", idp.hits(JWKS_PATH));
    nginx.finish();
}

#[test]
fn failures_keep_the_keys_and_no_keys_answer_503() {
    let idp = Idp::start();
    idp.set_fault(Fault::Status(500));
    let nginx = Nginx::http(&conf(&idp, "1s"))
        .allow_log("key request")
        .allow_log("upstream")
        .start();
    // Never any keys: 503 with Retry-After, never a 401 or 500.
    let resp = nginx.get("/").bearer(&rs()).send();
    assert_eq!(resp.status, 503, "{}", resp.summary());
    assert!(resp.header("retry-after").is_some(), "{}", resp.summary());
    nginx
        .wait_log(
            0,
            "[warn] *auth_jwt: key request \"/jwks_uri\" failed: status 500",
        )
        .unwrap();
    // The IdP recovers (after the 5 s without keys that pace the retries).
    idp.set_fault(Fault::Ok);
    let ok = poll_until(Duration::from_secs(10), || {
        (nginx.get("/").bearer(&rs()).send().status == 200).then_some(())
    });
    assert!(ok.is_some(), "{}", nginx.error_log());
    // It fails again once the 1 s cache is over: the last good keys stay.
    idp.set_fault(Fault::Status(500));
    let fetches = idp.jwks_count();
    let refetched = poll_until(Duration::from_secs(10), || {
        let status = nginx.get("/").bearer(&rs()).send().status;
        assert_eq!(status, 200);
        (idp.jwks_count() > fetches).then_some(())
    });
    assert!(refetched.is_some());
    nginx.check_accepted("/", &rs()).unwrap();
    nginx.finish();
}

#[test]
fn an_unknown_kid_refetches_at_most_once_per_30s() {
    let idp = Idp::start();
    let nginx = Nginx::http(&conf(&idp, "1h")).start();
    nginx.check_accepted("/", &rs()).unwrap();
    assert_eq!(idp.jwks_count(), 1);
    // The IdP rotates in rsa-2: the first token naming it is refused and wakes a refetch.
    let k = keys();
    idp.set_keys(&[k.rsa.jwk(), k.rsa_other.jwk()]);
    let new = Jwt::new("RS256").rsa_key(&k.rsa_other).encode();
    nginx
        .check_rejected("/", "closed site", &new, "invalid", "no key matches kid")
        .unwrap();
    nginx.check_accepted("/", &new).unwrap();
    assert_eq!(idp.jwks_count(), 2);
    // Another unknown kid within 30 s: refused, no fetch.
    let other = Jwt::new("RS256").kid("nope").encode();
    for _ in 0..3 {
        nginx
            .check_rejected("/", "closed site", &other, "invalid", "no key matches kid")
            .unwrap();
    }
    nginx.check_accepted("/", &rs()).unwrap();
    assert_eq!(idp.jwks_count(), 2, "{:?}", idp.hits(JWKS_PATH));
    nginx.finish();
}

#[test]
fn clients_that_go_away_while_keys_are_fetched_cost_nothing() {
    use std::io::Write;
    let idp = Idp::start();
    idp.set_fault(Fault::Slow(Duration::from_millis(1500)));
    let nginx = Nginx::http(&conf(&idp, "1h")).allow_log("client").start();
    let token = rs();
    let raw = format!("GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    // The first client starts the fetch and leaves; the second waits and leaves; a third
    // gets its answer from the fetch all the same.
    for _ in 0..2 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", nginx.port())).unwrap();
        c.write_all(raw.as_bytes()).unwrap();
        thread::sleep(Duration::from_millis(200));
        drop(c);
    }
    nginx.check_accepted("/", &token).unwrap();
    idp.set_fault(Fault::Ok);
    nginx.check_accepted("/", &token).unwrap();
    assert_eq!(idp.jwks_count(), 1, "{:?}", idp.hits(JWKS_PATH));
    nginx.finish();
}

#[test]
fn nginx_t_checks_the_key_request_directives() {
    let loc = |body: &str| {
        format!(
            "server {{ listen 127.0.0.1:{{{{port}}}};\n    location / {{\n        auth_jwt \"api\";\n        {body}\n        proxy_pass {{{{upstream}}}};\n    }}\n}}"
        )
    };
    Nginx::http(&loc("auth_jwt_key_request jwks;"))
        .check()
        .assert_emerg(
            "auth_jwt_key_request",
            &["invalid value \"jwks\"", "starts with \"/\""],
        );
    Nginx::http(&loc(
        "auth_jwt_key_request /jwks;\n        auth_jwt_key_cache soon;",
    ))
    .check()
    .assert_emerg("auth_jwt_key_cache", &["\"auth_jwt_key_cache\""]);
    // Variables, and several URIs: keys add up.
    Nginx::http(&loc(
        "auth_jwt_key_request /jwks?tenant=$host;\n        auth_jwt_key_request /more;\n        auth_jwt_key_cache 10m;",
    ))
    .check()
    .assert_ok();
}
