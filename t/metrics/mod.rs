//! Tests for auth_jwt: Prometheus metrics and the status page.
//!
//! Counters are checked for exact values after known traffic. Which worker served a request
//! is read from an access log (`$pid $jwt_status`): each worker verifies a good token once and
//! then finds it in its own cache, so the expected cache misses follow from that log.
//! `promtool` and the Prometheus server come from Debian's `prometheus` package, which
//! `scripts/test` installs; without them these tests fail, they do not skip. This file holds
//! what the topic files share; the Prometheus runner is `harness::prometheus`.

mod counters;
mod prometheus;
mod status;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::idp::{Idp, JWKS_PATH};
use crate::harness::mint::b64_decode;
use crate::harness::poll_until;
use crate::harness::prefix::free_port;
use crate::harness::{keys, now, Jwt, Nginx, Request};

/// `{{port}}`: the protected server (access log `logs/jwt.log`); `{{port2}}`: metrics and
/// status, where `auth_jwt` is off. `@DEAD@` is a key URI nothing answers (`no_keys` and
/// `bypass`), `@HTTP@` and `@LOC@` more for `http { }` and for the protected server.
pub(crate) const CONF: &str = r#"
    log_format jwt '$pid $jwt_status $uri';
    map $jwt_claim_role $is_admin {
        admin 1;
        default 0;
    }
    @HTTP@
    server {
        listen 127.0.0.1:{{port}} reuseport;
        access_log logs/jwt.log jwt;
        location / {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/public.json;
            proxy_pass {{upstream}};
        }
        location /admin/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/public.json;
            auth_jwt_require $is_admin error=403;
            proxy_pass {{upstream}};
        }
        location /closed/ {
            auth_jwt "api";
            auth_jwt_key_uri @DEAD@ timeout=1s;
            proxy_pass {{upstream}};
        }
        location /open/ {
            auth_jwt "api";
            auth_jwt_key_uri @DEAD@ timeout=1s;
            auth_jwt_fail_mode open;
            proxy_pass {{upstream}};
        }
        @LOC@
    }
    server {
        listen 127.0.0.1:{{port2}};
        location = /metrics {
            auth_jwt_metrics;
        }
        location = /status {
            auth_jwt_status;
        }
    }
"#;

/// `$jwt_status` values in the order of the exposition.
pub(crate) const RESULTS: [&str; 8] = [
    "ok",
    "missing",
    "invalid",
    "expired",
    "forbidden",
    "revoked",
    "no_keys",
    "bypass",
];

/// `auth_jwt_cache` of the status-page configuration.
pub(crate) const CACHE_ENTRIES: usize = 77;

/// `max_stale` of the mock IdPs' sources.
pub(crate) const MAX_STALE: i64 = 7200;

pub(crate) const KEYS_WAIT: Duration = Duration::from_secs(10);

pub(crate) fn conf(dead: &str, http: &str, loc: &str) -> String {
    CONF.replace("@DEAD@", dead)
        .replace("@HTTP@", http)
        .replace("@LOC@", loc)
}

/// A key URI on a port nothing listens on.
pub(crate) fn dead_uri() -> String {
    format!("https://127.0.0.1:{}/jwks.json", free_port())
}

/// One request to send: path, bearer token, expected HTTP status and `$jwt_status`.
type Planned = (&'static str, Option<String>, u16, &'static str);

/// Requests of each outcome to send.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mix {
    ok: usize,
    missing: usize,
    invalid: usize,
    expired: usize,
    forbidden: usize,
    no_keys: usize,
    bypass: usize,
}

impl Mix {
    const STANDARD: Mix = Mix {
        ok: 120,
        missing: 20,
        invalid: 30,
        expired: 25,
        forbidden: 15,
        no_keys: 6,
        bypass: 6,
    };

    pub(crate) fn get(&self, result: &str) -> usize {
        match result {
            "ok" => self.ok,
            "missing" => self.missing,
            "invalid" => self.invalid,
            "expired" => self.expired,
            "forbidden" => self.forbidden,
            "no_keys" => self.no_keys,
            "bypass" => self.bypass,
            _ => 0,
        }
    }

    pub(crate) fn total(&self) -> usize {
        RESULTS.iter().map(|r| self.get(r)).sum()
    }

    /// Tokens checked against keys: everything but `missing`, `no_keys` and `bypass`.
    pub(crate) fn checked(&self) -> usize {
        self.ok + self.invalid + self.expired + self.forbidden
    }

    /// (path, token, expected HTTP status, `$jwt_status`) for every request, interleaved.
    pub(crate) fn requests(&self) -> Vec<Planned> {
        let good = Jwt::new("ES256").claim("role", json!("user")).encode();
        let user = Jwt::new("RS256").claim("role", json!("user")).encode();
        let bad = [
            Jwt::new("RS256").kid("nope").encode(),
            Jwt::new("ES256").signature([7u8; 64]).encode(),
            "not.a.token".to_owned(),
        ];
        let expired = Jwt::new("EdDSA").exp_in(-3600).encode();
        let mut kinds: Vec<Vec<Planned>> = vec![
            vec![("/", Some(good.clone()), 200, "ok"); self.ok],
            vec![("/", None, 401, "missing"); self.missing],
            (0..self.invalid)
                .map(|i| ("/", Some(bad[i % bad.len()].clone()), 401, "invalid"))
                .collect(),
            vec![("/", Some(expired), 401, "expired"); self.expired],
            vec![("/admin/", Some(user), 403, "forbidden"); self.forbidden],
            vec![("/closed/", Some(good.clone()), 503, "no_keys"); self.no_keys],
            vec![("/open/", Some(good), 200, "bypass"); self.bypass],
        ];
        // Round-robin over the kinds, so every worker sees a bit of everything.
        let mut out = Vec::with_capacity(self.total());
        while kinds.iter().any(|k| !k.is_empty()) {
            for k in &mut kinds {
                if let Some(r) = k.pop() {
                    out.push(r);
                }
            }
        }
        out
    }
}

/// Sends `mix` from 8 client threads, one connection per request; panics on any answer that
/// is not the expected one. Returns once the access log holds a line for every request.
pub(crate) fn send(nginx: &Nginx, mix: &Mix) {
    let from = served(nginx, 0).len();
    let port = nginx.port();
    let requests = mix.requests();
    let threads = 8;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mine: Vec<_> = requests.iter().skip(t).step_by(threads).cloned().collect();
            thread::spawn(move || {
                let mut errors = Vec::new();
                for (path, token, status, result) in mine {
                    let mut req = Request::new(port, "GET", path);
                    if let Some(token) = &token {
                        req = req.bearer(token);
                    }
                    match req.try_send() {
                        Ok(r) if r.status == status && (status != 200 || r.is_from_upstream()) => {}
                        Ok(r) => errors.push(format!("{result} {path}: {}", r.summary())),
                        Err(e) => errors.push(format!("{result} {path}: {e}")),
                    }
                }
                errors
            })
        })
        .collect();
    let errors: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    assert!(
        errors.is_empty(),
        "unexpected answers:\n{}",
        errors.join("\n")
    );
    let want = from + mix.total();
    poll_until(Duration::from_secs(3), || {
        (served(nginx, 0).len() >= want).then_some(())
    })
    .unwrap_or_else(|| panic!("access log has not {want} lines"));
}

/// The protected server's access log from line `from` on: (worker pid, `$jwt_status`).
pub(crate) fn served(nginx: &Nginx, from: usize) -> Vec<(u32, String)> {
    nginx
        .log_file("jwt.log")
        .lines()
        .skip(from)
        .filter_map(|l| {
            let mut it = l.split(' ');
            Some((it.next()?.parse().ok()?, it.next()?.to_owned()))
        })
        .collect()
}

/// Workers that answered at least one request with this `$jwt_status`.
pub(crate) fn workers_with(lines: &[(u32, String)], result: &str) -> HashSet<u32> {
    lines
        .iter()
        .filter(|(_, s)| s == result)
        .map(|(pid, _)| *pid)
        .collect()
}

/// What the counters must say: requests by result, cache hits and misses.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Expected {
    requests: BTreeMap<&'static str, u64>,
    hits: u64,
    misses: u64,
}

impl Expected {
    /// Every result present, at 0.
    pub(crate) fn with_zeroes(mut self) -> Self {
        for r in RESULTS {
            self.requests.entry(r).or_default();
        }
        self
    }

    /// Adds one round of `mix` whose access-log lines are `lines`: invalid and expired tokens
    /// are never cached; a good token is a miss once per worker that saw it, then hits.
    pub(crate) fn add(&mut self, mix: &Mix, lines: &[(u32, String)]) {
        assert_eq!(lines.len(), mix.total(), "access log lines of the round");
        for result in RESULTS {
            let logged = lines.iter().filter(|(_, s)| s == result).count();
            assert_eq!(logged, mix.get(result), "access log: {result} lines");
            *self.requests.entry(result).or_default() += mix.get(result) as u64;
        }
        let first_sight = workers_with(lines, "ok").len() + workers_with(lines, "forbidden").len();
        let misses = mix.invalid + mix.expired + first_sight;
        self.misses += misses as u64;
        self.hits += (mix.checked() - misses) as u64;
    }
}

/// One scrape of `/metrics`: each sample by its series as printed (`name{labels}`).
pub(crate) struct Scrape {
    pub(crate) text: String,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    pub(crate) fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample {series} in\n{}", self.text))
    }

    pub(crate) fn count(&self, series: &str) -> u64 {
        let v = self.get(series);
        assert!(v >= 0.0 && v.fract() == 0.0, "{series} = {v}");
        v as u64
    }

    pub(crate) fn requests(&self, result: &str) -> u64 {
        self.count(&format!(
            "nginx_auth_jwt_requests_total{{result=\"{result}\"}}"
        ))
    }

    pub(crate) fn hits(&self) -> u64 {
        self.count("nginx_auth_jwt_cache_hits_total")
    }

    pub(crate) fn misses(&self) -> u64 {
        self.count("nginx_auth_jwt_cache_misses_total")
    }

    /// Requests by result, cache hits and misses.
    pub(crate) fn counters(&self) -> Expected {
        Expected {
            requests: RESULTS.iter().map(|r| (*r, self.requests(r))).collect(),
            hits: self.hits(),
            misses: self.misses(),
        }
    }

    /// The histogram: cumulative buckets ending in `+Inf` = `_count` = one per token checked.
    pub(crate) fn check_histogram(&self) {
        let buckets: Vec<(&String, f64)> = self
            .samples
            .iter()
            .filter(|(k, _)| k.starts_with("nginx_auth_jwt_verify_duration_seconds_bucket{"))
            .map(|(k, v)| (k, *v))
            .collect();
        assert_eq!(buckets.len(), 14, "13 bounds and +Inf:\n{}", self.text);
        let mut in_order: Vec<f64> = self
            .text
            .lines()
            .filter(|l| l.starts_with("nginx_auth_jwt_verify_duration_seconds_bucket{"))
            .map(|l| sample(l).1)
            .collect();
        assert!(
            in_order.windows(2).all(|w| w[0] <= w[1]),
            "buckets not cumulative:\n{}",
            self.text
        );
        let inf = in_order.pop().unwrap_or_default();
        let count = self.get("nginx_auth_jwt_verify_duration_seconds_count");
        let inf_series = "nginx_auth_jwt_verify_duration_seconds_bucket{le=\"+Inf\"}";
        assert_eq!(self.get(inf_series), inf);
        assert_eq!(inf, count);
        assert_eq!(count as u64, self.hits() + self.misses(), "one per check");
        let sum = self.get("nginx_auth_jwt_verify_duration_seconds_sum");
        assert!(
            (count == 0.0 && sum == 0.0) || (sum > 0.0 && sum < count),
            "sum {sum} for {count} checks"
        );
    }
}

/// A sample line: (series, value).
pub(crate) fn sample(line: &str) -> (String, f64) {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("bad sample line {line:?}"));
    let value = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line:?}"));
    (series.to_owned(), value)
}

/// GET `/metrics` from the metrics server.
pub(crate) fn scrape(nginx: &Nginx) -> Scrape {
    let resp = Request::new(nginx.extra_port(2), "GET", "/metrics").send();
    assert_eq!(resp.status, 200, "{}", resp.summary());
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = resp.text();
    let samples = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(sample)
        .collect();
    Scrape { text, samples }
}

/// GET `/status` from the metrics server, parsed.
pub(crate) fn status(nginx: &Nginx) -> Value {
    let resp = Request::new(nginx.extra_port(2), "GET", "/status").send();
    assert_eq!(resp.status, 200, "{}", resp.summary());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("status page is not JSON ({e}):\n{}", resp.text()))
}

pub(crate) fn assert_counters(scrape: &Scrape, want: &Expected, when: &str) {
    assert_eq!(scrape.counters(), *want, "{when}:\n{}", scrape.text);
    scrape.check_histogram();
}

/// The key sets of the status test: a key file, a JWKS URI and an OpenID issuer.
pub(crate) struct Sources {
    jwks: Idp,
    oidc: Idp,
    dead: String,
}

impl Sources {
    pub(crate) fn start() -> Self {
        let k = keys();
        let jwks = Idp::start();
        jwks.set_keys(&[k.rsa.jwk(), k.p256.jwk()]);
        let oidc = Idp::with_issuer_path("/realms/test");
        let mut pinned = k.rsa_other.jwk();
        pinned["alg"] = json!("PS256");
        oidc.set_keys(&[k.ed.jwk(), pinned]);
        Self {
            jwks,
            oidc,
            dead: dead_uri(),
        }
    }

    /// Where both IdPs' CA certificates are written, for `auth_jwt_trusted_certificate`.
    pub(crate) fn ca_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!(
            "ngx-auth-jwt-metrics-ca.{}.{}.pem",
            std::process::id(),
            self.jwks.port()
        ))
    }

    /// The configuration: both IdPs trusted through one CA bundle.
    pub(crate) fn conf(&self) -> String {
        let ca = format!("{}{}", self.jwks.ca_pem(), self.oidc.ca_pem());
        let ca_path = self.ca_path();
        fs::write(&ca_path, ca).expect("write CA bundle");
        let http = format!(
            "auth_jwt_cache {CACHE_ENTRIES};\n    auth_jwt_trusted_certificate {};",
            ca_path.display()
        );
        let loc = format!(
            "location /remote/ {{ auth_jwt \"api\"; auth_jwt_key_uri {} refresh=1h max_stale={MAX_STALE}s; proxy_pass {{{{upstream}}}}; }}\n        \
             location /oidc/ {{ auth_jwt \"api\"; auth_jwt_discovery {} refresh=1h max_stale={MAX_STALE}s; proxy_pass {{{{upstream}}}}; }}",
            self.jwks.jwks_url(),
            self.oidc.issuer()
        );
        conf(&self.dead, &http, &loc)
    }

    /// Starts NGINX and waits until the worker has both IdPs' keys and the dead source
    /// has failed at least once.
    pub(crate) fn nginx(&self, workers: u32) -> Nginx {
        let nginx = Nginx::http(&self.conf()).workers(workers).start();
        let ready = |v: &Value| {
            let sets = v["key_sets"].as_array()?;
            let remote = |url: &str| sets.iter().find(|s| s["url"] == url);
            let has_keys = |url: &str| remote(url).is_some_and(|s| s["kids"] != json!([]));
            let failed = remote(&self.dead)?["consecutive_failures"].as_u64()? >= 1;
            (has_keys(&self.jwks.jwks_url()) && has_keys(&self.oidc.issuer()) && failed)
                .then_some(())
        };
        poll_until(KEYS_WAIT, || ready(&status(&nginx))).unwrap_or_else(|| {
            panic!(
                "keys not in the status page within {KEYS_WAIT:?}:\n{:#}\nerror.log:\n{}",
                status(&nginx),
                nginx.error_log()
            )
        });
        nginx
    }
}

impl Drop for Sources {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.ca_path());
    }
}

/// Algorithms a JWK verifies: its `alg` if it names one, else every one its type allows.
pub(crate) fn algorithms_of(jwks: &[Value]) -> Vec<String> {
    let mut algs: Vec<String> = jwks
        .iter()
        .flat_map(
            |k| match (k["alg"].as_str(), k["kty"].as_str(), k["crv"].as_str()) {
                (Some(alg), _, _) => vec![alg],
                (_, Some("RSA"), _) => vec!["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
                (_, Some("EC"), Some("P-256")) => vec!["ES256"],
                (_, Some("EC"), Some("P-384")) => vec!["ES384"],
                (_, Some("EC"), Some("P-521")) => vec!["ES512"],
                (_, Some("OKP"), _) => vec!["EdDSA"],
                // HS256 from 32 bytes, HS384 from 48, HS512 from 64 (RFC 7518 §3.2).
                (_, Some("oct"), _) => {
                    let len = b64_decode(k["k"].as_str().expect("k")).len();
                    [("HS256", 32), ("HS384", 48), ("HS512", 64)]
                        .into_iter()
                        .filter(|&(_, min)| len >= min)
                        .map(|(alg, _)| alg)
                        .collect()
                }
                other => panic!("unexpected JWK {other:?}"),
            },
        )
        .map(str::to_owned)
        .collect();
    algs.sort();
    algs.dedup();
    algs
}

/// A JSON array of strings, sorted.
pub(crate) fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect();
    out.sort();
    out
}

pub(crate) fn kids_of(jwks: &[Value]) -> Vec<String> {
    let mut kids: Vec<String> = jwks
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    kids.sort();
    kids
}

/// The NGINX version the binary reports (`nginx -v`).
pub(crate) fn nginx_version() -> String {
    crate::harness::prefix::nginx_version_text()
}
