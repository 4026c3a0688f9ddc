//! Tests for auth_jwt: the exposition checked by promtool and scraped by a real Prometheus.

use std::process::{Command, Stdio};

use super::*;
use crate::harness::prometheus::{prometheus_tool, Prometheus};

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

const DASHBOARD: &str = include_str!("../../grafana/auth-jwt.json");

/// Every query of the Grafana dashboard parses (promtool checks it as a recording rule) and
/// names only metrics that NGINX exposes: with remote keys, and with Redis revocations.
#[test]
fn the_grafana_dashboard_queries_parse_and_name_real_metrics() {
    let promtool = prometheus_tool("promtool");
    let Some(redis) = crate::harness::redis::Redis::start() else {
        return;
    };
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").replace("$instance", ".*"))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, e) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:q{n}\n        expr: {}\n",
            serde_json::to_string(e).expect("quoted")
        ));
    }
    let file = std::env::temp_dir().join(format!("auth-jwt-dashboard.{}.yml", std::process::id()));
    std::fs::write(&file, rules).expect("rules file");
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // What NGINX exposes: remote keys (the shared sources), and Redis revocations.
    let src = Sources::start();
    let remote = src.nginx(1);
    send(&remote, &Mix::STANDARD);
    let mut exposed = scrape(&remote).text;
    remote.finish();
    let conf = format!(
        r#"
    auth_jwt_revocation_redis redis://127.0.0.1:{} timeout=1s;
    server {{
        listen 127.0.0.1:{{{{port}}}};
        auth_jwt_key_file {{{{keys}}}}/jwks.json;
        location = /metrics {{ auth_jwt_metrics; }}
    }}
"#,
        redis.port
    );
    let revoking = Nginx::http(&conf).start();
    exposed.push_str(&revoking.get("/metrics").send().text());
    revoking.finish();
    let names: std::collections::BTreeSet<&str> = exposed
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for e in &exprs {
        for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let Some(name) = word.strip_prefix("nginx_auth_jwt_").map(|_| word) else {
                continue;
            };
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                names.contains(family),
                "the dashboard queries {name}, which NGINX does not expose: {e}\n{names:?}"
            );
        }
    }
}
