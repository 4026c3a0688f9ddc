//! Tests for auth_jwt: remote keys (JWKS fetcher, discovery, failure modes, reload).
//!
//! A mock IdP (`harness::idp`) serves the keys over real TLS and counts what it is asked.
//! Refresh, timeout and max_stale are short so that every wait is a few seconds, and waits
//! poll for their condition with a bound instead of sleeping a fixed time.

use std::collections::HashSet;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::expect::upstream;
use crate::harness::idp::{unrelated_ca_pem, Fault, Idp, JWKS_PATH};
use crate::harness::logs::matches;
use crate::harness::poll_until;
use crate::harness::{keys, Failures, Jwt, Nginx, Request, Response};

/// `@SOURCE@`: the key directive(s) of `location /`; `@LOC@`: more for that location;
/// `@HTTP@`: more for `http { }`; `@CA@`: the trusted CA bundle.
const CONF: &str = r#"
    auth_jwt_zone 1m;
    auth_jwt_trusted_certificate @CA@;
    @HTTP@
    server {
        listen 127.0.0.1:{{port}} reuseport;
        location / {
            auth_jwt "api";
            @SOURCE@
            add_header X-Jwt-Status $jwt_status always;
            @LOC@
            proxy_pass {{upstream}};
        }
    }
"#;

/// How long keys may take to arrive after NGINX starts or the IdP comes back.
const KEYS_WAIT: Duration = Duration::from_secs(8);
/// Fetcher log lines reach error.log through a 1 s timer in the worker.
const LOG_WAIT: Duration = Duration::from_secs(6);

fn conf(idp: &Idp, source: &str, loc: &str, http: &str) -> String {
    CONF.replace("@CA@", &idp.ca_file().display().to_string())
        .replace("@SOURCE@", source)
        .replace("@LOC@", loc)
        .replace("@HTTP@", http)
}

/// `auth_jwt_key_uri <idp jwks> <params>;`
fn key_uri(idp: &Idp, params: &str) -> String {
    format!("auth_jwt_key_uri {} {params};", idp.jwks_url())
}

/// A token signed by `rsa-1`, the IdP's default key.
fn token1() -> String {
    Jwt::new("RS256").encode()
}

/// A token signed by `rsa-2`.
fn token2() -> String {
    Jwt::new("RS256").rsa_key(&keys().rsa_other).encode()
}

fn get(nginx: &Nginx, token: &str) -> Response {
    nginx.get("/").bearer(token).send()
}

/// Waits until `token` is let through to the upstream; returns how long that took.
fn wait_accepted(nginx: &Nginx, token: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    poll_until(timeout, || {
        get(nginx, token).is_from_upstream().then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "token not accepted within {timeout:?}; last: {}\nerror.log:\n{}",
            get(nginx, token).summary(),
            nginx.error_log()
        )
    });
    start.elapsed()
}

/// Waits for an error-log line after `mark` matching `pattern` (see `logs::matches`).
fn wait_log(nginx: &Nginx, mark: usize, pattern: &str, timeout: Duration) -> String {
    poll_until(timeout, || {
        nginx
            .log_since(mark)
            .lines()
            .find(|l| matches(l, pattern))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| {
        panic!(
            "no error.log line matching {pattern:?} within {timeout:?}; since mark:\n{}",
            nginx.log_since(mark)
        )
    })
}

/// Pid of the process that wrote an error-log line: "2024/01/01 00:00:00 [info] 123#123: ...".
fn pid_of(line: &str) -> Option<u32> {
    line.split("] ").nth(1)?.split('#').next()?.parse().ok()
}

/// Waits until `workers` distinct workers logged (after `mark`) that they took up the keys
/// `generation <keys>` of `url`: until then a worker may still answer without them.
fn wait_keys_in_workers(nginx: &Nginx, mark: usize, url: &str, keys: &str, workers: usize) {
    let pattern = format!("[info] *auth_jwt: keys from \"{url}\": generation {keys}");
    poll_until(KEYS_WAIT, || {
        let pids: HashSet<u32> = nginx
            .log_lines(mark, &pattern)
            .iter()
            .filter_map(|l| pid_of(l))
            .collect();
        (pids.len() >= workers).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "fewer than {workers} workers logged {pattern:?}:\n{}",
            nginx.log_since(mark)
        )
    });
}

/// The 503 of a location without usable keys, failing closed.
fn no_keys_503(resp: &Response) -> Result<(), String> {
    let ok = resp.status == 503
        && resp.header("retry-after") == Some("5")
        && resp.header("x-jwt-status") == Some("no_keys");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected 503, Retry-After: 5, X-Jwt-Status: no_keys; got {} headers {:?}",
            resp.summary(),
            resp.headers
        ))
    }
}

/// Clients sending valid tokens back to back on another thread; every answer must come
/// from the upstream.
struct Traffic {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(usize, Vec<String>)>,
}

impl Traffic {
    fn start(port: u16, tokens: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let (mut sent, mut errors) = (0usize, Vec::new());
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let token = &tokens[sent % tokens.len()];
                sent += 1;
                match Request::new(port, "GET", "/").bearer(token).try_send() {
                    Ok(r) if r.is_from_upstream() => {}
                    Ok(r) => errors.push(r.summary()),
                    Err(e) => errors.push(e),
                }
                thread::sleep(Duration::from_millis(2));
            }
            (sent, errors)
        });
        Self { stop, handle }
    }

    /// Stops the clients; panics unless they sent something and every request passed.
    fn finish(self, what: &str) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (sent, errors) = self.handle.join().expect("client thread");
        assert!(sent > 0, "{what}: no request sent");
        assert!(
            errors.is_empty(),
            "{what}: {} of {sent} requests failed:\n{}",
            errors.len(),
            errors.join("\n")
        );
        sent
    }
}

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
fn four_workers_fetch_once_per_interval() {
    let idp = Idp::start();
    let nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=2s"), "", ""))
        .workers(4)
        .start();
    wait_keys_in_workers(&nginx, 0, &idp.jwks_url(), "1, kids [rsa-1]", 4);
    let first = idp.hits(JWKS_PATH)[0].at;
    let traffic = Traffic::start(nginx.port(), vec![token1()]);
    let window = Duration::from_secs(7);
    thread::sleep(window.saturating_sub(first.elapsed()));
    traffic.finish("four workers");
    let hits: Vec<Instant> = idp
        .hits(JWKS_PATH)
        .iter()
        .map(|h| h.at)
        .filter(|at| at.saturating_duration_since(first) <= window)
        .collect();
    // 7 s at one fetch per 2 s: the first fetch and 3 (at most 4) refreshes; four fetchers
    // each fetching would give about 16.
    let refreshes = hits.len() - 1;
    assert!(
        (3..=4).contains(&refreshes),
        "{refreshes} refreshes in {window:?} with refresh=2s: {:?}",
        hits.iter()
            .map(|h| h.saturating_duration_since(first))
            .collect::<Vec<_>>()
    );
    // Fetch times are scheduled in whole seconds: the first gap may be as short as 1 s.
    let gaps: Vec<Duration> = hits.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(900)),
        "fetches closer than the interval: {gaps:?}"
    );
    nginx.finish();
}

/// Pids among `pids` holding an established TCP connection to 127.0.0.1:`port`.
fn pids_connected_to(port: u16, pids: &[u32]) -> Vec<u32> {
    let remote = format!("0100007F:{port:04X}");
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let inodes: HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.len() > 9 && cols[2] == remote && cols[3] == "01").then(|| cols[9].to_owned())
        })
        .collect();
    pids.iter()
        .copied()
        .filter(|pid| {
            let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            fds.filter_map(Result::ok).any(|fd| {
                fs::read_link(fd.path()).is_ok_and(|target| {
                    let t = target.to_string_lossy();
                    t.strip_prefix("socket:[")
                        .and_then(|rest| rest.strip_suffix(']'))
                        .is_some_and(|inode| inodes.contains(inode))
                })
            })
        })
        .collect()
}

/// Waits until `n` workers run and none of `gone` is among them.
fn wait_workers(nginx: &Nginx, n: usize, gone: &[u32]) {
    poll_until(Duration::from_secs(10), || {
        let pids = nginx.worker_pids();
        (pids.len() == n && pids.iter().all(|p| !gone.contains(p))).then_some(())
    })
    .unwrap_or_else(|| panic!("workers not replaced: {:?}", nginx.worker_pids()));
}

#[test]
fn killing_the_fetching_worker_hands_the_fetch_on() {
    let idp = Idp::start();
    let mut nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=1s timeout=2s"), "", ""))
        .workers(3)
        .start();
    wait_keys_in_workers(&nginx, 0, &idp.jwks_url(), "1, kids [rsa-1]", 3);
    for round in 1..=2 {
        // Catch the fetcher in the act: the IdP hangs, so the fetching worker holds a
        // connection to it (and the fetch lease) for the whole timeout.
        idp.set_fault(Fault::Hang);
        let seen = idp.jwks_count();
        idp.wait_count(JWKS_PATH, seen + 1, Duration::from_secs(5))
            .unwrap();
        // Scanning /proc under load can miss one hung fetch; the fetcher retries every second.
        let fetching = poll_until(Duration::from_secs(8), || {
            let pids = pids_connected_to(idp.port(), &nginx.worker_pids());
            (pids.len() == 1).then(|| pids[0])
        })
        .unwrap_or_else(|| {
            let remote = format!(":{:04X}", idp.port());
            let tcp: Vec<String> = fs::read_to_string("/proc/net/tcp")
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&remote))
                .map(str::to_owned)
                .collect();
            panic!(
                "round {round}: no single worker connected to the IdP; workers {:?}, connected {:?}, hits {:?}\n{}",
                nginx.worker_pids(),
                pids_connected_to(idp.port(), &nginx.worker_pids()),
                idp.hits(JWKS_PATH),
                tcp.join("\n")
            )
        });
        Nginx::signal(fetching, "KILL");
        idp.set_fault(Fault::Ok);
        nginx.allow_log(&format!("{fetching} exited on signal 9"));
        wait_workers(&nginx, 3, &[fetching]);
        // Once the dead worker's lease runs out (timeout + 2 s), another worker fetches,
        // and the refresh goes on at its interval.
        let n = idp.jwks_count();
        idp.wait_count(JWKS_PATH, n + 1, Duration::from_secs(8))
            .unwrap_or_else(|e| panic!("round {round}: refresh stopped: {e}"));
        idp.wait_count(JWKS_PATH, n + 2, Duration::from_secs(4))
            .unwrap_or_else(|e| panic!("round {round}: refresh stopped: {e}"));
        let served = Traffic::start(nginx.port(), vec![token1()]);
        thread::sleep(Duration::from_millis(300));
        served.finish(&format!("round {round}"));
    }
    // Every worker at once: the new ones start from the zone's keys.
    let all = nginx.worker_pids();
    for &pid in &all {
        Nginx::signal(pid, "KILL");
        nginx.allow_log(&format!("{pid} exited on signal 9"));
    }
    wait_workers(&nginx, 3, &all);
    let n = idp.jwks_count();
    let traffic = Traffic::start(nginx.port(), vec![token1()]);
    idp.wait_count(JWKS_PATH, n + 2, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("after killing every worker: {e}"));
    traffic.finish("after killing every worker");
    nginx.finish();
}

#[test]
fn reload_under_traffic_fails_nothing_and_fetches_nothing() {
    let idp = Idp::start();
    let source = key_uri(&idp, "refresh=10m");
    let mut nginx = Nginx::http(&conf(&idp, &source, "", "")).workers(2).start();
    wait_keys_in_workers(&nginx, 0, &idp.jwks_url(), "1, kids [rsa-1]", 2);
    let traffic = Traffic::start(nginx.port(), vec![token1()]);
    thread::sleep(Duration::from_millis(200));
    let mark = nginx.log_mark();
    for _ in 0..2 {
        nginx.reload().expect("reload");
        thread::sleep(Duration::from_millis(300));
    }
    // The new workers' fetchers have run several ticks by now.
    thread::sleep(Duration::from_millis(700));
    let sent = traffic.finish("during two reloads");
    assert!(sent > 20, "only {sent} requests during the reloads");
    assert_eq!(
        idp.jwks_count(),
        1,
        "the reload made the fetcher fetch again: {:?}",
        idp.hits(JWKS_PATH)
    );
    nginx.assert_no_log(mark, "auth_jwt: fetch of");
    nginx.assert_no_log(mark, "no usable keys");
    nginx.finish();
}

#[test]
fn reload_with_another_key_uri_takes_effect() {
    let idp = Idp::start();
    let idp2 = Idp::start();
    idp2.set_keys(&[keys().rsa_other.jwk()]);
    // One bundle trusting both IdPs.
    let bundle = format!("{}{}", idp.ca_pem(), idp2.ca_pem());
    let template = |source: &str| {
        conf(&idp, source, "", "").replace(
            &idp.ca_file().display().to_string(),
            "{{prefix}}/bundle.pem",
        )
    };
    let mut nginx = Nginx::http(&template(&key_uri(&idp, "refresh=10m")))
        .file("bundle.pem", &bundle)
        .start();
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    nginx
        .reload_with(&template(&key_uri(&idp2, "refresh=10m")))
        .expect("reload");
    wait_accepted(&nginx, &token2(), KEYS_WAIT);
    nginx
        .check_rejected("/", "api", &token1(), "invalid", "no key matches kid")
        .unwrap();
    assert_eq!(idp2.jwks_count(), 1);
    assert_eq!(idp.jwks_count(), 1, "the old URI is not fetched any more");
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

#[test]
fn discovery_binds_keys_to_the_issuer() {
    let idp = Idp::with_issuer_path("/realms/test");
    let issuer = idp.issuer();
    let source = format!("auth_jwt_discovery {issuer} refresh=10m;");
    let nginx = Nginx::http(&conf(&idp, &source, "", "")).start();
    let good = Jwt::new("RS256").claim("iss", json!(issuer)).encode();
    wait_accepted(&nginx, &good, KEYS_WAIT);
    assert_eq!(idp.count(&idp.discovery_path()), 1);
    assert_eq!(idp.jwks_count(), 1);
    wait_log(
        &nginx,
        0,
        &format!("[info] *auth_jwt: keys from \"{issuer}\": generation 1, kids [rsa-1]"),
        LOG_WAIT,
    );
    // The same key, another (or no) issuer: these keys do not vouch for it.
    let cases = [
        (
            "other issuer",
            Jwt::new("RS256").claim("iss", json!("https://evil.example/realms/test")),
        ),
        (
            "issuer prefix",
            Jwt::new("RS256").claim("iss", json!(format!("{issuer}/x"))),
        ),
        (
            "base URL",
            Jwt::new("RS256").claim("iss", json!(idp.base())),
        ),
        ("no issuer", Jwt::new("RS256")),
    ];
    let mut f = Failures::new();
    for (name, token) in cases {
        f.check(
            name,
            nginx.check_rejected(
                "/",
                "api",
                &token.encode(),
                "invalid",
                "issuer not accepted",
            ),
        );
    }
    f.assert();
    nginx.check_accepted("/", &good).unwrap();
    // Refused issuers are not unknown kids: no early fetch.
    assert_eq!(idp.jwks_count(), 1);
    nginx.finish();
}

#[test]
fn discovery_naming_another_issuer_gives_no_keys() {
    let idp = Idp::with_issuer_path("/realms/test");
    idp.set_discovery_issuer(Some("https://evil.example/realms/test"));
    let issuer = idp.issuer();
    let source = format!("auth_jwt_discovery {issuer} refresh=10m timeout=1s;");
    let nginx = Nginx::http(&conf(&idp, &source, "", "")).start();
    let token = Jwt::new("RS256").claim("iss", json!(issuer)).encode();
    wait_log(
        &nginx,
        0,
        &format!("[warn] *auth_jwt: fetch of \"{issuer}\" failed (invalid): discovery document names another issuer; no keys yet"),
        LOG_WAIT,
    );
    no_keys_503(&get(&nginx, &token)).unwrap();
    assert_eq!(
        idp.jwks_count(),
        0,
        "the JWKS of a refused provider was fetched"
    );
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

#[test]
fn remote_key_config_errors_name_file_and_line() {
    let idp = Idp::start();
    let url = idp.jwks_url();
    let location = |directives: &str| {
        format!(
            r#"
    server {{
        listen 127.0.0.1:{{{{port}}}};
        location / {{
            auth_jwt "api";
            {directives}
            proxy_pass {{{{upstream}}}};
        }}
    }}
"#
        )
    };
    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        (
            "auth_jwt_key_uri http://127.0.0.1/jwks.json;".into(),
            "auth_jwt_key_uri",
            vec!["\"http://127.0.0.1/jwks.json\" is not an https:// URL"],
        ),
        (
            "auth_jwt_discovery http://idp.example/realms/a;".into(),
            "auth_jwt_discovery",
            vec!["is not an https:// URL"],
        ),
        (
            format!("auth_jwt_key_uri {url} refresh=500ms;"),
            "auth_jwt_key_uri",
            vec!["refresh must be at least 1s"],
        ),
        (
            format!("auth_jwt_key_uri {url} timeout=50ms;"),
            "auth_jwt_key_uri",
            vec!["timeout at least 100ms"],
        ),
        (
            format!("auth_jwt_key_uri {url} refresh=soon;"),
            "auth_jwt_key_uri",
            vec!["refresh=soon"],
        ),
        (
            format!("auth_jwt_key_uri {url} retries=3;"),
            "auth_jwt_key_uri",
            vec!["retries=3"],
        ),
        (
            // Two spaces: `at` finds the second line.
            format!("auth_jwt_key_uri {url};\n            auth_jwt_key_uri  {url};"),
            "auth_jwt_key_uri  ",
            vec!["is duplicate"],
        ),
        (
            format!("auth_jwt_key_uri {url};\n            auth_jwt_fail_mode sometimes;"),
            "auth_jwt_fail_mode",
            vec!["sometimes"],
        ),
        (
            format!("auth_jwt_key_uri {url};\n            auth_jwt_trusted_certificate {{{{prefix}}}}/none.pem;"),
            "auth_jwt_trusted_certificate",
            vec!["none.pem"],
        ),
        (
            format!("auth_jwt_key_uri {url};\n            auth_jwt_trusted_certificate {{{{prefix}}}}/conf/nginx.conf;"),
            "auth_jwt_trusted_certificate",
            vec!["conf/nginx.conf", "no certificates"],
        ),
    ];
    let mut f = Failures::new();
    for (directives, at, parts) in &cases {
        let check = Nginx::http(&location(directives)).check();
        f.check(directives, check.emerg(at, parts).map(|_| ()));
    }
    // One URL, two parameter sets: the node can fetch it only one way.
    let two = format!(
        r#"
    server {{
        listen 127.0.0.1:{{{{port}}}};
        location /a {{
            auth_jwt "api";
            auth_jwt_key_uri {url} refresh=1m;
            proxy_pass {{{{upstream}}}};
        }}
        location /b {{
            auth_jwt "api";
            auth_jwt_key_uri {url} refresh=2m;
            proxy_pass {{{{upstream}}}};
        }}
    }}
"#
    );
    let check = Nginx::http(&two).check();
    f.check(
        "same URL, other parameters",
        check
            .emerg(
                "refresh=2m",
                &["is already configured with other parameters"],
            )
            .map(|_| ()),
    );
    let small = format!(
        "auth_jwt_zone 100k;\n{}",
        location(&format!("auth_jwt_key_uri {url};"))
    );
    let check = Nginx::http(&small).check();
    f.check(
        "zone too small",
        check.emerg("auth_jwt_zone", &["512k"]).map(|_| ()),
    );
    // The bundle is read and parsed by `nginx -t` (the master), never first by a worker.
    let broken_pem = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    let key_only = &keys().rsa.private_pem;
    let bad_files: [(&str, &str, &[&str]); 3] = [
        ("conf", "", &["conf\": ", "directory"]),
        ("broken.pem", broken_pem, &["broken.pem"]),
        ("key.pem", key_only, &["key.pem\": no certificates"]),
    ];
    for (name, content, parts) in bad_files {
        let template = format!(
            "auth_jwt_trusted_certificate {{{{prefix}}}}/{name};\n{}",
            location(&format!("auth_jwt_key_uri {url};"))
        );
        let mut builder = Nginx::http(&template);
        if !content.is_empty() {
            builder = builder.file(name, content);
        }
        let check = builder.check();
        f.check(
            &format!("trusted certificate {name}"),
            check
                .emerg("auth_jwt_trusted_certificate", parts)
                .map(|_| ()),
        );
    }
    // A valid configuration passes, and `nginx -t` does not touch the network.
    let good = format!(
        "auth_jwt_trusted_certificate {};\n{}",
        idp.ca_file().display(),
        location(&format!(
            "auth_jwt_key_uri {url} refresh=1s timeout=100ms max_stale=1s;"
        ))
    );
    Nginx::http(&good).check().assert_ok();
    f.assert();
    assert_eq!(idp.jwks_count(), 0, "nginx -t fetched the keys");
}

/// A directory only root may enter, removed on drop.
struct RootOnlyDir(std::path::PathBuf);

impl RootOnlyDir {
    fn new(name: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("{name}.{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
        Self(dir)
    }
}

impl Drop for RootOnlyDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The primary group of `user`, by name (`user nobody;` alone would ask for a group named
/// `nobody`, which Debian does not have).
fn group_of(user: &str) -> String {
    let out = std::process::Command::new("id")
        .args(["-gn", user])
        .output()
        .expect("run id -gn");
    assert!(out.status.success(), "id -gn {user}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_trusted_certificate_only_the_master_can_read_still_serves_the_workers() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the master must run as root to drop to `user nobody`");
        return;
    }
    let idp = Idp::start();
    let url = idp.jwks_url();
    // The CA bundle sits where only root can read it, as /etc/ssl/private would be.
    let dir = RootOnlyDir::new("ngx-auth-jwt-root-only-ca");
    let ca = dir.0.join("ca.pem");
    fs::write(&ca, idp.ca_pem()).expect("write ca.pem");
    let template = format!(
        r#"
user nobody {group};
events {{
    worker_connections 64;
}}
http {{
{{{{echo_server}}}}
    auth_jwt_zone 1m;
    auth_jwt_trusted_certificate {ca};
    server {{
        listen 127.0.0.1:{{{{port}}}};
        location / {{
            auth_jwt "api";
            auth_jwt_key_uri {url} refresh=10m timeout=2s;
            proxy_pass {{{{upstream}}}};
        }}
    }}
}}
"#,
        group = group_of("nobody"),
        ca = ca.display(),
    );
    let nginx = Nginx::main(&template).start();
    let workers = nginx.worker_pids();
    let uid = fs::read_to_string(format!("/proc/{}/status", workers[0]))
        .expect("worker status")
        .lines()
        .find_map(|l| l.strip_prefix("Uid:").map(str::to_owned))
        .expect("Uid line");
    assert_ne!(
        uid.split_whitespace().next(),
        Some("0"),
        "the worker runs as root"
    );
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    assert_eq!(idp.jwks_count(), 1, "{:?}", idp.hits(JWKS_PATH));
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
