//! Prometheus text exposition and the JSON status page, rendered from plain snapshots.
#![forbid(unsafe_code)]

use core::fmt::Write;

use serde_json::{json, Value};

use crate::jwt::error::Status;

/// Upper bounds of the verification-duration histogram, in seconds (5 µs to 50 ms).
pub const BUCKETS: [f64; 13] = [
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2,
];

/// The bucket a duration in nanoseconds falls into (`BUCKETS.len()` for `+Inf`).
pub fn bucket(nanos: u64) -> usize {
    let secs = nanos as f64 / 1e9;
    BUCKETS
        .iter()
        .position(|&le| secs <= le)
        .unwrap_or(BUCKETS.len())
}

/// `(method, result)` label pairs of `nginx_auth_jwt_sender_constrained_total`: every check
/// of a token bound to its sender, and every refusal for a missing binding.
pub const SENDER: [(&str, &str); 13] = [
    ("mtls", "ok"),
    ("mtls", "unbound"),
    ("mtls", "no_certificate"),
    ("mtls", "mismatch"),
    ("mtls", "bad_binding"),
    ("mtls", "bad_certificate"),
    ("dpop", "ok"),
    ("dpop", "unbound"),
    ("dpop", "bearer"),
    ("dpop", "invalid_proof"),
    ("dpop", "replay"),
    ("dpop", "use_nonce"),
    ("dpop", "bad_binding"),
];

/// The index of `(method, result)` in [`SENDER`].
pub fn sender_index(method: &str, result: &str) -> Option<usize> {
    SENDER.iter().position(|&(m, r)| m == method && r == result)
}

/// Request counters summed over the workers.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counters {
    /// Indexed like [`Status::ALL`].
    pub requests: [u64; 8],
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Per bucket (not cumulative), the last one being `+Inf`.
    pub buckets: [u64; BUCKETS.len() + 1],
    pub duration_sum_ns: u64,
    /// Indexed like [`SENDER`].
    pub sender: [u64; SENDER.len()],
}

/// One remote key source as the zone and this worker see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceReport {
    pub url: String,
    pub kind: &'static str,
    pub jwks_uri: String,
    pub fetches_ok: u64,
    pub fetches_not_modified: u64,
    pub fetches_failed: u64,
    /// Last successful fetch (0: never).
    pub last_success: i64,
    pub next_fetch: i64,
    /// When the keys stop being used (0: no keys).
    pub stale_at: i64,
    pub generation: u64,
    pub failures: u32,
    pub last_error: String,
    pub kids: Vec<String>,
    pub algorithms: Vec<&'static str>,
}

/// One `auth_jwt_key_file`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    pub path: String,
    pub kids: Vec<String>,
    pub algorithms: Vec<&'static str>,
}

/// Everything the status page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport<'a> {
    pub module_version: &'a str,
    pub nginx_version: &'a str,
    pub now: i64,
    pub counters: &'a Counters,
    pub sources: &'a [SourceReport],
    pub files: &'a [FileReport],
    pub cache_entries: usize,
    pub cache_capacity: usize,
    /// The `revocations` object, when the configuration revokes.
    pub revocations: Option<Value>,
    /// One object per `auth_jwt_limit_zone`.
    pub limits: Vec<Value>,
    /// The DPoP replay sharing (`dpop::share`), when the node shares through Redis.
    pub dpop_replay: Option<Value>,
}

/// The Prometheus text format (version 0.0.4).
pub fn prometheus(c: &Counters, sources: &[SourceReport], now: i64) -> String {
    let mut out = String::with_capacity(4096);
    let w = &mut out;
    header(
        w,
        "requests_total",
        "counter",
        "Requests checked by auth_jwt, by outcome ($jwt_status).",
    );
    for (status, n) in Status::ALL.iter().zip(c.requests) {
        let _ = writeln!(
            w,
            "nginx_auth_jwt_requests_total{{result=\"{}\"}} {n}",
            status.as_str()
        );
    }
    header(
        w,
        "cache_hits_total",
        "counter",
        "Tokens found in the verified-token cache.",
    );
    let _ = writeln!(w, "nginx_auth_jwt_cache_hits_total {}", c.cache_hits);
    header(
        w,
        "cache_misses_total",
        "counter",
        "Tokens parsed and verified in full.",
    );
    let _ = writeln!(w, "nginx_auth_jwt_cache_misses_total {}", c.cache_misses);

    header(
        w,
        "verify_duration_seconds",
        "histogram",
        "Time to check one token, cache lookup included.",
    );
    let mut cumulative = 0;
    for (le, n) in BUCKETS.iter().zip(c.buckets) {
        cumulative += n;
        let _ = writeln!(
            w,
            "nginx_auth_jwt_verify_duration_seconds_bucket{{le=\"{le:e}\"}} {cumulative}"
        );
    }
    let count: u64 = c.buckets.iter().sum();
    let _ = writeln!(
        w,
        "nginx_auth_jwt_verify_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        w,
        "nginx_auth_jwt_verify_duration_seconds_sum {}",
        c.duration_sum_ns as f64 / 1e9
    );
    let _ = writeln!(w, "nginx_auth_jwt_verify_duration_seconds_count {count}");
    header(
        w,
        "sender_constrained_total",
        "counter",
        "Checks of sender-constrained tokens (mTLS, DPoP), by method and result.",
    );
    for ((method, result), n) in SENDER.iter().zip(c.sender) {
        let _ = writeln!(
            w,
            "nginx_auth_jwt_sender_constrained_total{{method=\"{method}\",result=\"{result}\"}} {n}"
        );
    }

    if sources.is_empty() {
        return out;
    }
    header(
        w,
        "jwks_fetches_total",
        "counter",
        "JWKS fetches by key URI and result.",
    );
    for s in sources {
        let uri = escape(&s.url);
        for (result, n) in [
            ("ok", s.fetches_ok),
            ("not_modified", s.fetches_not_modified),
            ("error", s.fetches_failed),
        ] {
            let _ = writeln!(
                w,
                "nginx_auth_jwt_jwks_fetches_total{{uri=\"{uri}\",result=\"{result}\"}} {n}"
            );
        }
    }
    header(
        w,
        "jwks_last_success_timestamp_seconds",
        "gauge",
        "Time of the last successful fetch (0: never).",
    );
    for s in sources {
        let _ = writeln!(
            w,
            "nginx_auth_jwt_jwks_last_success_timestamp_seconds{{uri=\"{}\"}} {}",
            escape(&s.url),
            s.last_success
        );
    }
    header(
        w,
        "jwks_keys",
        "gauge",
        "Keys this worker verifies with, per key URI.",
    );
    for s in sources {
        let _ = writeln!(
            w,
            "nginx_auth_jwt_jwks_keys{{uri=\"{}\"}} {}",
            escape(&s.url),
            s.kids.len()
        );
    }
    header(
        w,
        "jwks_stale_in_seconds",
        "gauge",
        "Seconds until the keys are too old to use (0: none usable).",
    );
    for s in sources {
        let left = if s.stale_at > now {
            s.stale_at - now
        } else {
            0
        };
        let _ = writeln!(
            w,
            "nginx_auth_jwt_jwks_stale_in_seconds{{uri=\"{}\"}} {left}",
            escape(&s.url)
        );
    }
    out
}

fn header(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP nginx_auth_jwt_{name} {help}");
    let _ = writeln!(w, "# TYPE nginx_auth_jwt_{name} {kind}");
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The JSON status page.
pub fn status_json(r: &StatusReport<'_>) -> String {
    let requests: serde_json::Map<String, Value> = Status::ALL
        .iter()
        .zip(r.counters.requests)
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    let mut sender = serde_json::Map::new();
    for ((method, result), n) in SENDER.iter().zip(r.counters.sender) {
        let entry = sender.entry(*method).or_insert_with(|| json!({}));
        entry[*result] = json!(n);
    }
    let sources: Vec<Value> = r
        .sources
        .iter()
        .map(|s| {
            json!({
                "source": s.kind,
                "url": s.url,
                "jwks_uri": (!s.jwks_uri.is_empty()).then_some(&s.jwks_uri),
                "generation": s.generation,
                "kids": s.kids,
                "algorithms": s.algorithms,
                "fetched_at": (s.last_success > 0).then_some(s.last_success),
                "next_refresh": (s.next_fetch > 0).then_some(s.next_fetch),
                "stale_at": (s.stale_at > 0).then_some(s.stale_at),
                "stale": s.stale_at <= r.now,
                "consecutive_failures": s.failures,
                "last_error": (!s.last_error.is_empty()).then_some(&s.last_error),
                "fetches": {"ok": s.fetches_ok, "not_modified": s.fetches_not_modified, "error": s.fetches_failed},
            })
        })
        .collect();
    let files: Vec<Value> = r
        .files
        .iter()
        .map(|f| json!({"source": "file", "path": f.path, "kids": f.kids, "algorithms": f.algorithms}))
        .collect();
    let status = json!({
        "module": {"name": "ngx_http_auth_jwt_module", "version": r.module_version},
        "nginx": {"version": r.nginx_version},
        "time": r.now,
        "key_sets": files.into_iter().chain(sources).collect::<Vec<_>>(),
        "cache": {"entries": r.cache_entries, "capacity": r.cache_capacity, "scope": "this worker"},
        "requests": requests,
        "cache_lookups": {"hits": r.counters.cache_hits, "misses": r.counters.cache_misses},
        "sender_constrained": sender,
        "revocations": r.revocations,
        "limits": r.limits,
        "dpop_replay": r.dpop_replay,
    });
    let mut text = serde_json::to_string_pretty(&status).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_5us_to_50ms() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(5_000), 0);
        assert_eq!(bucket(5_001), 1);
        assert_eq!(bucket(1_000_000), 7);
        assert_eq!(bucket(50_000_000), 12);
        assert_eq!(bucket(50_000_001), 13);
        assert_eq!(bucket(u64::MAX), 13);
    }

    fn source() -> SourceReport {
        SourceReport {
            url: "https://idp/jwks?a=\"b\"".into(),
            kind: "jwks",
            jwks_uri: String::new(),
            fetches_ok: 3,
            fetches_not_modified: 1,
            fetches_failed: 2,
            last_success: 1000,
            next_fetch: 1600,
            stale_at: 1100,
            generation: 2,
            failures: 0,
            last_error: String::new(),
            kids: vec!["k1".into(), "k2".into()],
            algorithms: vec!["RS256"],
        }
    }

    #[test]
    fn exposition_is_well_formed() {
        let mut c = Counters::default();
        c.requests[0] = 7;
        c.requests[2] = 3;
        c.cache_hits = 5;
        c.buckets[0] = 4;
        c.buckets[13] = 1;
        c.duration_sum_ns = 2_500_000_000;
        let text = prometheus(&c, &[source()], 1050);
        for line in [
            "nginx_auth_jwt_requests_total{result=\"ok\"} 7",
            "nginx_auth_jwt_requests_total{result=\"invalid\"} 3",
            "nginx_auth_jwt_requests_total{result=\"bypass\"} 0",
            "nginx_auth_jwt_cache_hits_total 5",
            "nginx_auth_jwt_verify_duration_seconds_bucket{le=\"5e-6\"} 4",
            "nginx_auth_jwt_verify_duration_seconds_bucket{le=\"5e-2\"} 4",
            "nginx_auth_jwt_verify_duration_seconds_bucket{le=\"+Inf\"} 5",
            "nginx_auth_jwt_verify_duration_seconds_sum 2.5",
            "nginx_auth_jwt_verify_duration_seconds_count 5",
            "nginx_auth_jwt_jwks_fetches_total{uri=\"https://idp/jwks?a=\\\"b\\\"\",result=\"error\"} 2",
            "nginx_auth_jwt_jwks_keys{uri=\"https://idp/jwks?a=\\\"b\\\"\"} 2",
            "nginx_auth_jwt_jwks_stale_in_seconds{uri=\"https://idp/jwks?a=\\\"b\\\"\"} 50",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every sample belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|_| name.contains("duration")))
                .unwrap_or(name);
            assert!(text.contains(&format!("# TYPE {family} ")), "{name}");
        }
    }

    #[test]
    fn status_page_fields() {
        let c = Counters::default();
        let sources = [source()];
        let files = [FileReport {
            path: "/etc/nginx/keys.json".into(),
            kids: vec!["f1".into()],
            algorithms: vec!["ES256"],
        }];
        let text = status_json(&StatusReport {
            module_version: "0.1.0",
            nginx_version: "1.28.3",
            now: 1200,
            counters: &c,
            sources: &sources,
            files: &files,
            cache_entries: 3,
            cache_capacity: 1024,
            revocations: None,
            limits: Vec::new(),
            dpop_replay: None,
        });
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["module"]["version"], "0.1.0");
        assert_eq!(v["key_sets"][0]["source"], "file");
        assert_eq!(v["key_sets"][1]["kids"], json!(["k1", "k2"]));
        assert_eq!(v["key_sets"][1]["stale"], true);
        assert_eq!(v["key_sets"][1]["next_refresh"], 1600);
        assert_eq!(v["cache"]["capacity"], 1024);
        assert_eq!(v["requests"]["no_keys"], 0);
    }
}
