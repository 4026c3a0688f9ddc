//! Tests for auth_jwt: remote keys (JWKS fetcher, discovery, failure modes, reload).
//!
//! A mock IdP (`harness::idp`) serves the keys over real TLS and counts what it is asked.
//! Refresh, timeout and max_stale are short so that every wait is a few seconds, and waits
//! poll for their condition with a bound instead of sleeping a fixed time. This file holds
//! what the topic files share.

mod config;
mod discovery;
mod failures;
mod fetching;
mod workers;

use std::collections::HashSet;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::certs::unrelated_ca_pem;
use crate::harness::expect::upstream;
use crate::harness::idp::{Fault, Idp, JWKS_PATH};
use crate::harness::logs::matches;
use crate::harness::poll_until;
use crate::harness::{keys, Failures, Jwt, Nginx, Request, Response};

/// `@SOURCE@`: the key directive(s) of `location /`; `@LOC@`: more for that location;
/// `@HTTP@`: more for `http { }`; `@CA@`: the trusted CA bundle.
pub(super) const CONF: &str = r#"
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
pub(super) const KEYS_WAIT: Duration = Duration::from_secs(8);
/// Fetcher log lines reach error.log through a 1 s timer in the worker.
pub(super) const LOG_WAIT: Duration = Duration::from_secs(6);

pub(super) fn conf(idp: &Idp, source: &str, loc: &str, http: &str) -> String {
    CONF.replace("@CA@", &idp.ca_file().display().to_string())
        .replace("@SOURCE@", source)
        .replace("@LOC@", loc)
        .replace("@HTTP@", http)
}

/// `auth_jwt_key_uri <idp jwks> <params>;`
pub(super) fn key_uri(idp: &Idp, params: &str) -> String {
    format!("auth_jwt_key_uri {} {params};", idp.jwks_url())
}

/// A token signed by `rsa-1`, the IdP's default key.
pub(super) fn token1() -> String {
    Jwt::new("RS256").encode()
}

/// A token signed by `rsa-2`.
pub(super) fn token2() -> String {
    Jwt::new("RS256").rsa_key(&keys().rsa_other).encode()
}

pub(super) fn get(nginx: &Nginx, token: &str) -> Response {
    nginx.get("/").bearer(token).send()
}

/// Waits until `token` is let through to the upstream; returns how long that took.
pub(super) fn wait_accepted(nginx: &Nginx, token: &str, timeout: Duration) -> Duration {
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
pub(super) fn wait_log(nginx: &Nginx, mark: usize, pattern: &str, timeout: Duration) -> String {
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
pub(super) fn pid_of(line: &str) -> Option<u32> {
    line.split("] ").nth(1)?.split('#').next()?.parse().ok()
}

/// Waits until `workers` distinct workers logged (after `mark`) that they took up the keys
/// `generation <keys>` of `url`: until then a worker may still answer without them.
pub(super) fn wait_keys_in_workers(
    nginx: &Nginx,
    mark: usize,
    url: &str,
    keys: &str,
    workers: usize,
) {
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
pub(super) fn no_keys_503(resp: &Response) -> Result<(), String> {
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
pub(super) struct Traffic {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(usize, Vec<String>)>,
}

impl Traffic {
    pub(super) fn start(port: u16, tokens: Vec<String>) -> Self {
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
    pub(super) fn finish(self, what: &str) -> usize {
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
