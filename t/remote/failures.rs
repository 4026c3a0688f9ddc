//! Tests for auth_jwt: remote keys when the IdP fails (errors, staleness, DNS, TLS, hangs).

use super::*;

/// A fault, and the kind the warn line must name.
struct FaultCase {
    fault: Fault,
    kind: &'static str,
}

#[test]
fn fetch_failures_keep_the_last_good_keys() {
    let idp = Idp::start();
    let k = keys();
    let url = idp.jwks_url();
    let nginx = Nginx::http(&conf(
        &idp,
        &key_uri(&idp, "refresh=1s timeout=1s max_stale=1h"),
        "",
        "",
    ))
    .start();
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    // From now on the IdP's key set is rsa-2 only: a faulty answer that were taken (the huge
    // one is a valid JWKS; the slow one arrives after the timeout) would retire rsa-1.
    idp.set_keys(&[k.rsa_other.jwk()]);
    let cases = [
        FaultCase {
            fault: Fault::Status(500),
            kind: "failed (http_5xx): HTTP status 500",
        },
        FaultCase {
            fault: Fault::Garbage,
            kind: "failed (invalid): invalid JWKS",
        },
        FaultCase {
            fault: Fault::Hang,
            kind: "failed (timeout): timed out",
        },
        FaultCase {
            fault: Fault::Huge,
            kind: "failed (too_large): response larger than 1048576 bytes",
        },
        FaultCase {
            fault: Fault::Slow(Duration::from_secs(3)),
            kind: "failed (timeout): timed out",
        },
        FaultCase {
            fault: Fault::Reset,
            kind: "failed (io): ",
        },
        FaultCase {
            fault: Fault::Status(502),
            kind: "failed (http_5xx): HTTP status 502",
        },
    ];
    let mut f = Failures::new();
    for case in &cases {
        let name = format!("{:?}", case.fault);
        let mark = nginx.log_mark();
        idp.set_fault(case.fault);
        let pattern = format!(
            "[warn] *auth_jwt: fetch of \"{url}\" {}*; keeping the last good keys",
            case.kind
        );
        let logged = poll_until(LOG_WAIT + Duration::from_secs(2), || {
            nginx
                .log_lines(mark, "auth_jwt: fetch of")
                .iter()
                .any(|l| matches(l, &pattern))
                .then_some(())
        });
        f.check(
            &name,
            logged.ok_or_else(|| format!("no {pattern:?} in:\n{}", nginx.log_since(mark))),
        );
        // The stale keys still verify.
        f.check(&name, nginx.check_accepted("/", &token1()).map(|_| ()));
    }
    // Nothing a faulty IdP sent replaced the keys.
    nginx.assert_no_log(0, "generation 2");
    // The IdP heals: the new key set arrives, and recovery is logged once.
    let mark = nginx.log_mark();
    idp.set_fault(Fault::Slow(Duration::from_millis(300)));
    wait_log(
        &nginx,
        mark,
        &format!("[notice] *auth_jwt: fetch of \"{url}\" recovered after * failures"),
        LOG_WAIT,
    );
    wait_log(
        &nginx,
        mark,
        &format!("auth_jwt: keys from \"{url}\": generation 2, kids [rsa-2] (were [rsa-1])"),
        LOG_WAIT,
    );
    wait_accepted(&nginx, &token2(), Duration::from_secs(2));
    f.assert();
    nginx.finish();
}

#[test]
fn stale_keys_expire_after_max_stale_then_503_until_the_idp_is_back() {
    let idp = Idp::start();
    let url = idp.jwks_url();
    let nginx = Nginx::http(&conf(
        &idp,
        &key_uri(&idp, "refresh=1s timeout=1s max_stale=3s"),
        "",
        "",
    ))
    .start();
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    for round in 1..=2 {
        let mark = nginx.log_mark();
        idp.set_fault(Fault::Status(500));
        // Poll until the first 503; everything before it must be a 200.
        let first_503 = poll_until(Duration::from_secs(10), || {
            let resp = get(&nginx, &token1());
            if resp.status == 503 {
                Some((Instant::now(), resp))
            } else {
                assert!(
                    resp.is_from_upstream(),
                    "round {round}: stale keys must verify until max_stale: {}",
                    resp.summary()
                );
                None
            }
        });
        let (at, resp) = first_503.unwrap_or_else(|| {
            panic!(
                "round {round}: no 503 within 10 s of the outage:\n{}",
                nginx.error_log()
            )
        });
        no_keys_503(&resp).unwrap();
        // The keys lasted max_stale (3 s, counted in whole seconds) after the last success.
        let last_ok = idp
            .hits(JWKS_PATH)
            .iter()
            .rev()
            .find(|h| h.status == 200 || h.status == 304)
            .map(|h| h.at)
            .expect("a successful fetch");
        let lasted = at.saturating_duration_since(last_ok);
        assert!(
            lasted >= Duration::from_millis(1900) && lasted <= Duration::from_millis(4500),
            "round {round}: keys lasted {lasted:?} after the last good fetch (max_stale=3s)"
        );
        for _ in 0..5 {
            no_keys_503(&get(&nginx, &token1())).unwrap();
        }
        let warn =
            format!("[warn] *auth_jwt: no usable keys from {url}: answering 503 (fail closed)");
        let warns = nginx.log_lines(mark, &warn);
        assert_eq!(
            warns.len(),
            1,
            "round {round}: the no-keys warn is logged once per state change (keys came back, then went again), got:\n{}",
            nginx.log_since(mark)
        );
        assert_eq!(
            nginx
                .log_lines(
                    mark,
                    "[info] *auth_jwt: rejected (no_keys): no keys available"
                )
                .len(),
            6,
            "round {round}: one info line per 503"
        );
        wait_log(
            &nginx,
            mark,
            &format!("[warn] *auth_jwt: fetch of \"{url}\" failed (http_5xx): HTTP status 500; keeping the last good keys"),
            LOG_WAIT,
        );
        assert_eq!(
            nginx.log_lines(mark, "auth_jwt: fetch of").len(),
            1,
            "round {round}: the same failure is logged once"
        );

        // The IdP comes back: keys again within one retry.
        let mark = nginx.log_mark();
        idp.set_fault(Fault::Ok);
        wait_accepted(&nginx, &token1(), Duration::from_secs(4));
        wait_log(
            &nginx,
            mark,
            &format!("[notice] *auth_jwt: fetch of \"{url}\" recovered after * failures"),
            LOG_WAIT,
        );
    }
    nginx.finish();
}

#[test]
fn idp_down_at_start_nginx_starts_answers_503_then_recovers() {
    let idp = Idp::start();
    idp.set_fault(Fault::Reset);
    let url = idp.jwks_url();
    let started = Instant::now();
    let nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=2s timeout=1s"), "", "")).start();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "start took {took:?}");
    no_keys_503(&get(&nginx, &token1())).unwrap();
    let resp = nginx.get("/").bearer("not.a.token").send();
    no_keys_503(&resp).unwrap();
    wait_log(
        &nginx,
        0,
        &format!("[warn] *auth_jwt: fetch of \"{url}\" failed (*): *; no keys yet"),
        LOG_WAIT,
    );
    wait_log(
        &nginx,
        0,
        &format!("[warn] *auth_jwt: no usable keys from {url}: answering 503 (fail closed)"),
        LOG_WAIT,
    );
    let mark = nginx.log_mark();
    idp.set_fault(Fault::Ok);
    wait_accepted(&nginx, &token1(), Duration::from_secs(6));
    wait_log(
        &nginx,
        mark,
        &format!("[notice] *auth_jwt: fetch of \"{url}\" recovered after * failures"),
        LOG_WAIT,
    );
    wait_log(
        &nginx,
        mark,
        &format!("[info] *auth_jwt: keys from \"{url}\": generation 1, kids [rsa-1]"),
        LOG_WAIT,
    );
    nginx.finish();
}

#[test]
fn fail_open_lets_requests_through_without_identity() {
    let idp = Idp::start();
    idp.set_fault(Fault::Status(503));
    let url = idp.jwks_url();
    let nginx = Nginx::http(&conf(
        &idp,
        &key_uri(&idp, "refresh=1s timeout=1s"),
        "auth_jwt_fail_mode open;\n            auth_jwt_identity_header X-User sub;",
        "",
    ))
    .start();
    let mut f = Failures::new();
    let expired = Jwt::new("RS256").exp_in(-100).encode();
    for (name, token) in [
        ("valid", token1()),
        ("expired", expired.clone()),
        ("garbage", "x.y.z".into()),
    ] {
        for _ in 0..3 {
            let resp = nginx
                .get("/")
                .bearer(&token)
                .header("X-User", "mallory")
                .send();
            f.check(name, upstream(&resp));
            let identity = resp.echo("x-user");
            if identity.as_deref() != Some("") {
                f.check::<()>(
                    name,
                    Err(format!("X-User reached the upstream: {identity:?}")),
                );
            }
            if resp.header("x-jwt-status") != Some("bypass") {
                f.check::<()>(
                    name,
                    Err(format!("$jwt_status: {:?}", resp.header("x-jwt-status"))),
                );
            }
        }
    }
    f.assert();
    let warn = format!(
        "[warn] *auth_jwt: no usable keys from {url}: letting requests through (fail open)"
    );
    assert_eq!(nginx.log_lines(0, &warn).len(), 1, "{}", nginx.error_log());

    // Keys arrive: tokens are checked again, identity headers come from the token.
    idp.set_fault(Fault::Ok);
    let resp = poll_until(KEYS_WAIT, || {
        let resp = nginx
            .get("/")
            .bearer(&token1())
            .header("X-User", "mallory")
            .send();
        (resp.header("x-jwt-status") == Some("ok")).then_some(resp)
    })
    .unwrap_or_else(|| panic!("keys never arrived:\n{}", nginx.error_log()));
    upstream(&resp).unwrap();
    assert_eq!(resp.echo("x-user").as_deref(), Some("alice"));
    nginx
        .check_rejected("/", "api", &expired, "expired", "")
        .unwrap();
    nginx.finish();
}

#[test]
fn a_key_uri_whose_host_does_not_resolve_gives_no_keys() {
    // `.invalid` never resolves (RFC 6761): the fetcher says so, NGINX runs and answers 503.
    let url = "https://idp.invalid/jwks.json";
    let template = format!(
        r#"
    server {{
        listen 127.0.0.1:{{{{port}}}};
        location / {{
            auth_jwt "api";
            auth_jwt_key_uri {url} refresh=10m timeout=2s;
            add_header X-Jwt-Status $jwt_status always;
            proxy_pass {{{{upstream}}}};
        }}
    }}
"#
    );
    let nginx = Nginx::http(&template).start();
    wait_log(
        &nginx,
        0,
        &format!("[warn] *auth_jwt: fetch of \"{url}\" failed (dns): *; no keys yet"),
        LOG_WAIT,
    );
    no_keys_503(&get(&nginx, &token1())).unwrap();
    nginx.finish();
}

#[test]
fn an_idp_certificate_from_another_ca_is_refused() {
    let idp = Idp::start();
    let url = idp.jwks_url();
    // /a trusts an unrelated CA; /b trusts the system store: neither signed the IdP's cert.
    let template = format!(
        r#"
    auth_jwt_zone 1m;
    server {{
        listen 127.0.0.1:{{{{port}}}};
        add_header X-Jwt-Status $jwt_status always;
        location /a {{
            auth_jwt "api";
            auth_jwt_trusted_certificate {{{{prefix}}}}/other-ca.pem;
            auth_jwt_key_uri {url}?a refresh=10m timeout=2s;
            proxy_pass {{{{upstream}}}};
        }}
        location /b {{
            auth_jwt "api";
            auth_jwt_key_uri {url}?b refresh=10m timeout=2s;
            proxy_pass {{{{upstream}}}};
        }}
    }}
"#
    );
    let nginx = Nginx::http(&template)
        .file("other-ca.pem", unrelated_ca_pem())
        .start();
    for path in ["a", "b"] {
        wait_log(
            &nginx,
            0,
            &format!("[warn] *auth_jwt: fetch of \"{url}?{path}\" failed (tls): *; no keys yet"),
            LOG_WAIT,
        );
        let resp = nginx.get(&format!("/{path}")).bearer(&token1()).send();
        no_keys_503(&resp).unwrap();
    }
    assert_eq!(
        idp.jwks_count(),
        0,
        "a request went to an unverified server"
    );
    nginx.finish();
}

/// Waits for the line of `pid` saying that its fetcher thread was joined; returns it.
fn wait_joined(nginx: &Nginx, mark: usize, pid: u32) -> String {
    poll_until(LOG_WAIT, || {
        nginx
            .log_lines(mark, "[info] *auth_jwt: key fetcher joined in *")
            .into_iter()
            .find(|l| pid_of(l) == Some(pid))
    })
    .unwrap_or_else(|| {
        panic!(
            "worker {pid} did not log that it joined its fetcher; since mark:\n{}",
            nginx.log_since(mark)
        )
    })
}

#[test]
fn a_hanging_idp_does_not_hold_up_worker_exit() {
    let idp = Idp::start();
    // The IdP reads each request and never answers: every fetch is in flight until its
    // 30 s timeout, far longer than a worker may take to exit.
    idp.set_fault(Fault::Hang);
    let source = key_uri(&idp, "refresh=10m timeout=30s");
    let mut nginx = Nginx::http(&conf(&idp, &source, "", "")).start();
    idp.wait_count(JWKS_PATH, 1, KEYS_WAIT).unwrap();
    let old = nginx.worker_pids();
    let mark = nginx.log_mark();
    let start = Instant::now();
    nginx.reload().unwrap();
    let reload = start.elapsed();
    let joined_old = wait_joined(&nginx, mark, old[0]);
    // The old worker gave its lease back: the new one fetches at once, not after 30 s.
    idp.wait_count(JWKS_PATH, 2, KEYS_WAIT).unwrap();
    let worker = nginx.worker_pids()[0];
    let mark = nginx.log_mark();
    let start = Instant::now();
    nginx.stop();
    let quit = start.elapsed();
    let joined = wait_joined(&nginx, mark, worker);
    eprintln!("hanging IdP: reload done in {reload:?}, quit in {quit:?}\n{joined_old}\n{joined}");
    for (what, took) in [("reload", reload), ("quit", quit)] {
        assert!(
            took < Duration::from_millis(1500),
            "{what} took {took:?} with a hanging IdP"
        );
    }
    nginx.finish();
}
