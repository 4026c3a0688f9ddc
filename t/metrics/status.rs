//! Tests for auth_jwt: the status page, and what the report locations answer.

use super::*;

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
