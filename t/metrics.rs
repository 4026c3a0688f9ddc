//! Tests for auth_jwt: Prometheus metrics and the status page.
//!
//! Counters are checked for exact values after known traffic. Which worker served a request
//! is read from an access log (`$pid $jwt_status`): each worker verifies a good token once and
//! then finds it in its own cache, so the expected cache misses follow from that log.
//! `promtool` and the Prometheus server come from Debian's `prometheus` package, which
//! `scripts/test` installs; without them these tests fail, they do not skip.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::idp::{Idp, JWKS_PATH};
use crate::harness::mint::b64_decode;
use crate::harness::nginx::NGINX_BIN;
use crate::harness::poll_until;
use crate::harness::prefix::free_port;
use crate::harness::{keys, now, Jwt, Nginx, Request};

/// `{{port}}`: the protected server (access log `logs/jwt.log`); `{{port2}}`: metrics and
/// status, where `auth_jwt` is off. `@DEAD@` is a key URI nothing answers (`no_keys` and
/// `bypass`), `@HTTP@` and `@LOC@` more for `http { }` and for the protected server.
const CONF: &str = r#"
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
const RESULTS: [&str; 8] = [
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
const CACHE_ENTRIES: usize = 77;
/// `max_stale` of the mock IdPs' sources.
const MAX_STALE: i64 = 7200;
const KEYS_WAIT: Duration = Duration::from_secs(10);

fn conf(dead: &str, http: &str, loc: &str) -> String {
    CONF.replace("@DEAD@", dead)
        .replace("@HTTP@", http)
        .replace("@LOC@", loc)
}

/// A key URI on a port nothing listens on.
fn dead_uri() -> String {
    format!("https://127.0.0.1:{}/jwks.json", free_port())
}

/// One request to send: path, bearer token, expected HTTP status and `$jwt_status`.
type Planned = (&'static str, Option<String>, u16, &'static str);

/// Requests of each outcome to send.
#[derive(Clone, Copy, Debug, Default)]
struct Mix {
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

    fn get(&self, result: &str) -> usize {
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

    fn total(&self) -> usize {
        RESULTS.iter().map(|r| self.get(r)).sum()
    }

    /// Tokens checked against keys: everything but `missing`, `no_keys` and `bypass`.
    fn checked(&self) -> usize {
        self.ok + self.invalid + self.expired + self.forbidden
    }

    /// (path, token, expected HTTP status, `$jwt_status`) for every request, interleaved.
    fn requests(&self) -> Vec<Planned> {
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
fn send(nginx: &Nginx, mix: &Mix) {
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
fn served(nginx: &Nginx, from: usize) -> Vec<(u32, String)> {
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
fn workers_with(lines: &[(u32, String)], result: &str) -> HashSet<u32> {
    lines
        .iter()
        .filter(|(_, s)| s == result)
        .map(|(pid, _)| *pid)
        .collect()
}

/// What the counters must say: requests by result, cache hits and misses.
#[derive(Clone, Debug, Default, PartialEq)]
struct Expected {
    requests: BTreeMap<&'static str, u64>,
    hits: u64,
    misses: u64,
}

impl Expected {
    /// Every result present, at 0.
    fn with_zeroes(mut self) -> Self {
        for r in RESULTS {
            self.requests.entry(r).or_default();
        }
        self
    }

    /// Adds one round of `mix` whose access-log lines are `lines`: invalid and expired tokens
    /// are never cached; a good token is a miss once per worker that saw it, then hits.
    fn add(&mut self, mix: &Mix, lines: &[(u32, String)]) {
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
struct Scrape {
    text: String,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample {series} in\n{}", self.text))
    }

    fn count(&self, series: &str) -> u64 {
        let v = self.get(series);
        assert!(v >= 0.0 && v.fract() == 0.0, "{series} = {v}");
        v as u64
    }

    fn requests(&self, result: &str) -> u64 {
        self.count(&format!(
            "nginx_auth_jwt_requests_total{{result=\"{result}\"}}"
        ))
    }

    fn hits(&self) -> u64 {
        self.count("nginx_auth_jwt_cache_hits_total")
    }

    fn misses(&self) -> u64 {
        self.count("nginx_auth_jwt_cache_misses_total")
    }

    /// Requests by result, cache hits and misses.
    fn counters(&self) -> Expected {
        Expected {
            requests: RESULTS.iter().map(|r| (*r, self.requests(r))).collect(),
            hits: self.hits(),
            misses: self.misses(),
        }
    }

    /// The histogram: cumulative buckets ending in `+Inf` = `_count` = one per token checked.
    fn check_histogram(&self) {
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
fn sample(line: &str) -> (String, f64) {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("bad sample line {line:?}"));
    let value = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line:?}"));
    (series.to_owned(), value)
}

/// GET `/metrics` from the metrics server.
fn scrape(nginx: &Nginx) -> Scrape {
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
fn status(nginx: &Nginx) -> Value {
    let resp = Request::new(nginx.extra_port(2), "GET", "/status").send();
    assert_eq!(resp.status, 200, "{}", resp.summary());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("status page is not JSON ({e}):\n{}", resp.text()))
}

fn assert_counters(scrape: &Scrape, want: &Expected, when: &str) {
    assert_eq!(scrape.counters(), *want, "{when}:\n{}", scrape.text);
    scrape.check_histogram();
}

#[test]
fn counts_are_exact_across_four_workers() {
    let nginx = Nginx::http(&conf(&dead_uri(), "", "")).workers(4).start();
    let zero = scrape(&nginx);
    assert_counters(
        &zero,
        &Expected::default().with_zeroes(),
        "before any traffic",
    );

    let mix = Mix::STANDARD;
    send(&nginx, &mix);
    let lines = served(&nginx, 0);
    let workers: HashSet<u32> = lines.iter().map(|(pid, _)| *pid).collect();
    assert!(
        workers.len() >= 2,
        "every request went to {workers:?}: nothing shows the sum over workers"
    );
    let mut want = Expected::default();
    want.add(&mix, &lines);
    let s = scrape(&nginx);
    assert_counters(&s, &want, "after the traffic");
    assert_eq!(
        s.hits() + s.misses(),
        mix.checked() as u64,
        "one cache lookup per token checked"
    );
    // Scrapes and the status page are not requests auth_jwt checks.
    status(&nginx);
    assert_counters(&scrape(&nginx), &want, "after more scrapes");
    nginx.finish();
}

#[test]
fn counters_survive_reload() {
    let dead = dead_uri();
    let mut nginx = Nginx::http(&conf(&dead, "", "")).workers(4).start();
    let mix = Mix::STANDARD;
    send(&nginx, &mix);
    let mut want = Expected::default();
    want.add(&mix, &served(&nginx, 0));
    let before = scrape(&nginx);
    assert_counters(&before, &want, "before the reload");

    // A changed configuration (same zone): new workers, the zone's counters carry on.
    let old = nginx.worker_pids();
    let extra = "location /extra/ { auth_jwt off; proxy_pass {{upstream}}; }";
    nginx.reload_with(&conf(&dead, "", extra)).expect("reload");
    assert!(nginx.worker_pids().iter().all(|p| !old.contains(p)));
    let after = scrape(&nginx);
    assert_counters(&after, &want, "right after the reload");

    let from = served(&nginx, 0).len();
    let more = Mix {
        ok: 40,
        missing: 5,
        invalid: 7,
        expired: 3,
        forbidden: 9,
        no_keys: 2,
        bypass: 4,
    };
    send(&nginx, &more);
    let lines = served(&nginx, from);
    assert!(
        lines.iter().all(|(pid, _)| !old.contains(pid)),
        "an old worker served after the reload"
    );
    // The new workers' caches start empty: their misses follow from the new lines alone.
    want.add(&more, &lines);
    assert_counters(&scrape(&nginx), &want, "after the reload and more traffic");
    nginx.finish();
}

/// The key sets of the status test: a key file, a JWKS URI and an OpenID issuer.
struct Sources {
    jwks: Idp,
    oidc: Idp,
    dead: String,
}

impl Sources {
    fn start() -> Self {
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
    fn ca_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!(
            "ngx-auth-jwt-metrics-ca.{}.{}.pem",
            std::process::id(),
            self.jwks.port()
        ))
    }

    /// The configuration: both IdPs trusted through one CA bundle.
    fn conf(&self) -> String {
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
    fn nginx(&self, workers: u32) -> Nginx {
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
fn algorithms_of(jwks: &[Value]) -> Vec<String> {
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
fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect();
    out.sort();
    out
}

fn kids_of(jwks: &[Value]) -> Vec<String> {
    let mut kids: Vec<String> = jwks
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    kids.sort();
    kids
}

/// The NGINX version the binary reports (`nginx -v`).
fn nginx_version() -> String {
    let out = Command::new(NGINX_BIN)
        .arg("-v")
        .output()
        .expect("nginx -v");
    let text = String::from_utf8_lossy(&out.stderr);
    text.trim()
        .rsplit_once("nginx/")
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| panic!("unexpected nginx -v output {text:?}"))
}

#[test]
fn status_page_describes_the_key_sets() {
    let started = now();
    let src = Sources::start();
    let nginx = src.nginx(1);
    let k = keys();
    // Three tokens, one per key set, each verified once: three cache entries.
    let file_token = Jwt::new("ES256").claim("n", json!(1)).encode();
    nginx.check_accepted("/", &file_token).unwrap();
    let jwks_token = Jwt::new("ES256").claim("n", json!(2)).encode();
    nginx.check_accepted("/remote/", &jwks_token).unwrap();
    let oidc_token = Jwt::new("EdDSA")
        .claim("iss", json!(src.oidc.issuer()))
        .encode();
    nginx.check_accepted("/oidc/", &oidc_token).unwrap();

    let v = status(&nginx);
    let t = now();
    let text = format!("{v:#}");
    assert_eq!(v["module"]["name"], "ngx_http_auth_jwt_module", "{text}");
    assert_eq!(v["module"]["version"], env!("CARGO_PKG_VERSION"), "{text}");
    assert_eq!(v["nginx"]["version"], nginx_version(), "{text}");
    let time = v["time"].as_i64().expect("time");
    assert!((started..=t).contains(&time), "time {time}");

    let sets = v["key_sets"].as_array().expect("key_sets");
    // Two locations name public.json (today each directive has its own entry).
    let public = k.public_jwks();
    let path = nginx.prefix().join("keys/public.json");
    let files: Vec<&Value> = sets.iter().filter(|s| s["source"] == "file").collect();
    assert!(!files.is_empty(), "no key file in {text}");
    for f in files {
        assert_eq!(f["path"], path.display().to_string(), "{text}");
        assert_eq!(sorted(&f["kids"]), kids_of(&public), "{text}");
        assert_eq!(sorted(&f["algorithms"]), algorithms_of(&public), "{text}");
    }

    let remote = |url: &str| {
        sets.iter()
            .find(|s| s["url"] == url)
            .unwrap_or_else(|| panic!("no key set {url} in {text}"))
    };
    let jwks_keys = [k.rsa.jwk(), k.p256.jwk()];
    let mut pinned = k.rsa_other.jwk();
    pinned["alg"] = json!("PS256");
    let oidc_keys = [k.ed.jwk(), pinned];
    let exposition = scrape(&nginx);
    for (idp, set, kind, jwks_uri, served) in [
        (
            &src.jwks,
            remote(&src.jwks.jwks_url()),
            "jwks_uri",
            Value::Null,
            &jwks_keys,
        ),
        (
            &src.oidc,
            remote(&src.oidc.issuer()),
            "discovery",
            json!(src.oidc.jwks_url()),
            &oidc_keys,
        ),
    ] {
        let url = set["url"].as_str().expect("url");
        assert_eq!(set["source"], kind, "{text}");
        assert_eq!(set["jwks_uri"], jwks_uri, "{text}");
        assert_eq!(set["generation"], 1, "{text}");
        assert_eq!(sorted(&set["kids"]), kids_of(served), "{text}");
        assert_eq!(sorted(&set["algorithms"]), algorithms_of(served), "{text}");
        let fetched = set["fetched_at"].as_i64().expect("fetched_at");
        assert!((started..=t).contains(&fetched), "{text}");
        let next = set["next_refresh"].as_i64().expect("next_refresh");
        assert!(next > t && next <= fetched + 3600, "{text}");
        assert_eq!(set["stale_at"], fetched + MAX_STALE, "{text}");
        assert_eq!(set["stale"], false, "{text}");
        assert_eq!(set["consecutive_failures"], 0, "{text}");
        assert_eq!(set["last_error"], Value::Null, "{text}");
        let fetches_ok = set["fetches"]["ok"].as_u64().expect("fetches.ok");
        assert!(fetches_ok >= 1, "{text}");
        // Each successful fetch is one 200 from the IdP's JWKS path.
        let answered = idp
            .hits(JWKS_PATH)
            .iter()
            .filter(|h| h.status == 200)
            .count();
        assert_eq!(fetches_ok, answered as u64, "{text}");
        assert_eq!(set["fetches"]["error"], 0, "{text}");
        // The exposition says the same.
        let label = format!("{{uri=\"{url}\"}}");
        let fetches = format!("nginx_auth_jwt_jwks_fetches_total{{uri=\"{url}\",result=\"ok\"}}");
        assert_eq!(
            exposition.count(&fetches),
            fetches_ok,
            "{}",
            exposition.text
        );
        assert_eq!(
            exposition.get(&format!("nginx_auth_jwt_jwks_keys{label}")),
            served.len() as f64
        );
        assert_eq!(
            exposition.get(&format!(
                "nginx_auth_jwt_jwks_last_success_timestamp_seconds{label}"
            )),
            fetched as f64
        );
        let stale_in = exposition.get(&format!("nginx_auth_jwt_jwks_stale_in_seconds{label}"));
        assert!(
            stale_in > 0.0 && stale_in <= MAX_STALE as f64,
            "{}",
            exposition.text
        );
    }

    // The source nothing answers: no keys, failures counted, the error named.
    let dead = remote(&src.dead);
    assert_eq!(dead["kids"], json!([]), "{text}");
    assert_eq!(dead["generation"], 0, "{text}");
    assert_eq!(dead["fetched_at"], Value::Null, "{text}");
    assert_eq!(dead["stale"], true, "{text}");
    assert!(
        dead["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{text}"
    );
    assert!(dead["fetches"]["error"].as_u64() >= Some(1), "{text}");
    assert_eq!(dead["fetches"]["ok"], 0, "{text}");
    let label = format!("{{uri=\"{}\"}}", src.dead);
    assert_eq!(
        exposition.get(&format!("nginx_auth_jwt_jwks_stale_in_seconds{label}")),
        0.0
    );
    assert_eq!(
        exposition.get(&format!("nginx_auth_jwt_jwks_keys{label}")),
        0.0
    );

    // This worker's cache, out of auth_jwt_cache.
    assert_eq!(v["cache"]["capacity"], CACHE_ENTRIES, "{text}");
    assert_eq!(v["cache"]["entries"], 3, "{text}");
    assert_eq!(v["cache"]["scope"], "this worker", "{text}");
    // Counters as in the exposition.
    for r in RESULTS {
        assert_eq!(v["requests"][r], exposition.requests(r), "{r}: {text}");
    }
    assert_eq!(v["requests"]["ok"], 3, "{text}");
    assert_eq!(v["cache_lookups"]["hits"], exposition.hits(), "{text}");
    assert_eq!(v["cache_lookups"]["misses"], exposition.misses(), "{text}");
    nginx.finish();
}

/// A tool from Debian's `prometheus` package; fails the test when it is not installed.
fn prometheus_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found in PATH or /usr/bin: install the Debian package `prometheus` \
                 (apt-get install -y prometheus; scripts/test installs it)"
            )
        })
}

#[test]
fn exposition_passes_promtool() {
    let promtool = prometheus_tool("promtool");
    let src = Sources::start();
    let nginx = src.nginx(2);
    send(&nginx, &Mix::STANDARD);
    let text = scrape(&nginx).text;
    for family in [
        "requests_total",
        "cache_hits_total",
        "verify_duration_seconds",
        "jwks_fetches_total",
        "jwks_last_success_timestamp_seconds",
        "jwks_keys",
        "jwks_stale_in_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE nginx_auth_jwt_{family} ")),
            "{family} missing:\n{text}"
        );
    }
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", promtool.display()));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {} {report}\n--- exposition ---\n{text}",
        out.status
    );
    nginx.finish();
}

/// A Prometheus server on a loopback port, scraping one target every second; killed on drop.
struct Prometheus {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

const JOB: &str = "nginx_auth_jwt";

impl Prometheus {
    /// Starts Prometheus and waits (bounded) until it is ready.
    fn start(target: u16) -> Self {
        let bin = prometheus_tool("prometheus");
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "ngx-auth-jwt-prometheus.{}.{port}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("data")).expect("prometheus dir");
            fs::write(
                dir.join("prometheus.yml"),
                format!(
                    "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: {JOB}\n    metrics_path: /metrics\n    \
                     static_configs:\n      - targets: [\"127.0.0.1:{target}\"]\n"
                ),
            )
            .expect("prometheus.yml");
            let log = fs::File::create(dir.join("prometheus.log")).expect("prometheus.log");
            let child = Command::new(&bin)
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
            let mut prom = Self {
                child: Some(child),
                port,
                dir,
            };
            match prom.wait_ready(Duration::from_secs(15)) {
                Ok(()) => return prom,
                Err(e) => last = e,
            }
        }
        panic!("Prometheus did not start: {last}");
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            let ready = Request::new(self.port, "GET", "/-/ready").try_send();
            if ready.is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after {timeout:?}:\n{}", self.log()));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET <path>` of the HTTP API; its `data` member.
    fn api(&self, path: &str) -> Result<Value, String> {
        let resp = Request::new(self.port, "GET", path).try_send()?;
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("{path}: {e}: {}", resp.summary()))?;
        if resp.status != 200 || v["status"] != "success" {
            return Err(format!("{path}: {}", resp.summary()));
        }
        Ok(v["data"].clone())
    }

    /// An instant query (the expression is a plain metric name): series labels → value.
    fn query(&self, metric: &str) -> Result<BTreeMap<String, f64>, String> {
        let data = self.api(&format!("/api/v1/query?query={metric}"))?;
        let mut out = BTreeMap::new();
        for r in data["result"].as_array().ok_or("no result array")? {
            let m = &r["metric"];
            if m["job"] != JOB {
                continue;
            }
            let labels: Vec<String> = m
                .as_object()
                .ok_or("metric is not an object")?
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "__name__" | "job" | "instance"))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad value in {r}"))?;
            out.insert(labels.join(","), value);
        }
        Ok(out)
    }

    /// Polls until `metric` has exactly `want`; the last answer in the error.
    fn wait_for(&self, metric: &str, want: &BTreeMap<String, f64>) {
        let mut last = Err(String::from("not asked"));
        let found = poll_until(Duration::from_secs(10), || {
            last = self.query(metric);
            (last.as_ref() == Ok(want)).then_some(())
        });
        assert!(
            found.is_some(),
            "Prometheus has {metric} = {last:?}, want {want:?}\n--- prometheus.log ---\n{}",
            self.log()
        );
    }

    /// SIGTERM, and a clean exit within a bound.
    fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        Nginx::signal(child.id(), "TERM");
        let stopped = poll_until(Duration::from_secs(10), || child.try_wait().ok().flatten());
        let Some(status) = stopped else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Prometheus did not stop within 10s:\n{}", self.log());
        };
        assert!(
            status.success(),
            "Prometheus exited with {status}:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("kept Prometheus directory: {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// requests_total as Prometheus labels it.
fn by_result(want: &Expected) -> BTreeMap<String, f64> {
    want.requests
        .iter()
        .map(|(r, n)| (format!("result={r}"), *n as f64))
        .collect()
}

fn single(value: u64) -> BTreeMap<String, f64> {
    BTreeMap::from([(String::new(), value as f64)])
}

#[test]
fn prometheus_scrapes_the_metrics_location() {
    let src = Sources::start();
    let nginx = src.nginx(2);
    let mix = Mix::STANDARD;
    send(&nginx, &mix);
    let mut want = Expected::default();
    want.add(&mix, &served(&nginx, 0));
    // The status page's wait added nothing; the exposition agrees before Prometheus looks.
    assert_counters(&scrape(&nginx), &want, "before Prometheus");

    let prom = Prometheus::start(nginx.extra_port(2));
    prom.wait_for("up", &single(1));
    prom.wait_for("nginx_auth_jwt_requests_total", &by_result(&want));
    prom.wait_for("nginx_auth_jwt_cache_hits_total", &single(want.hits));
    prom.wait_for("nginx_auth_jwt_cache_misses_total", &single(want.misses));
    prom.wait_for(
        "nginx_auth_jwt_verify_duration_seconds_count",
        &single(want.hits + want.misses),
    );
    let keys: BTreeMap<String, f64> = [
        (format!("uri={}", src.jwks.jwks_url()), 2.0),
        (format!("uri={}", src.oidc.issuer()), 2.0),
        (format!("uri={}", src.dead), 0.0),
    ]
    .into_iter()
    .collect();
    prom.wait_for("nginx_auth_jwt_jwks_keys", &keys);
    // The target is healthy: Prometheus parsed every scrape.
    let targets = prom.api("/api/v1/targets").expect("targets");
    let active = targets["activeTargets"].as_array().expect("activeTargets");
    assert_eq!(active.len(), 1, "{targets:#}");
    assert_eq!(active[0]["health"], "up", "{targets:#}");
    assert_eq!(active[0]["lastError"], "", "{targets:#}");

    // More traffic: the next scrapes carry it.
    let from = served(&nginx, 0).len();
    let more = Mix {
        ok: 10,
        missing: 3,
        invalid: 4,
        expired: 2,
        forbidden: 1,
        no_keys: 1,
        bypass: 1,
    };
    send(&nginx, &more);
    want.add(&more, &served(&nginx, from));
    prom.wait_for("nginx_auth_jwt_requests_total", &by_result(&want));
    prom.wait_for("nginx_auth_jwt_cache_misses_total", &single(want.misses));
    prom.stop();
    nginx.finish();
}

#[test]
fn metrics_and_status_answer_get_and_head_only() {
    let nginx = Nginx::http(&conf(&dead_uri(), "", "")).start();
    let port = nginx.extra_port(2);
    for path in ["/metrics", "/status"] {
        let get = Request::new(port, "GET", path).send();
        assert_eq!(get.status, 200, "{path}: {}", get.summary());
        let head = Request::new(port, "HEAD", path).send();
        assert_eq!(head.status, 200, "HEAD {path}: {}", head.summary());
        assert_eq!(head.header("content-type"), get.header("content-type"));
        assert!(head.body.is_empty(), "HEAD {path} has a body");
        for method in ["POST", "PUT", "DELETE"] {
            let resp = Request::new(port, method, path).body("x").send();
            assert_eq!(resp.status, 405, "{method} {path}: {}", resp.summary());
        }
    }
    // None of that was a request auth_jwt checked.
    assert_counters(
        &scrape(&nginx),
        &Expected::default().with_zeroes(),
        "after GET/HEAD/POST",
    );
    nginx.finish();
}
