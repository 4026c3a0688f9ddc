//! Tests for auth_jwt: exp, nbf, leeway, iss, aud and auth_jwt_require_exp.

use serde_json::json;

use crate::harness::expect::not_5xx;
use crate::harness::{now, Failures, Jwt, Nginx};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        auth_jwt "api";

        location / {
            proxy_pass {{upstream}};
        }
        location /leeway/ {
            auth_jwt_leeway 60s;
            proxy_pass {{upstream}};
        }
        location /noexp/ {
            auth_jwt_require_exp off;
            proxy_pass {{upstream}};
        }
        location /iss/ {
            auth_jwt_issuer https://idp.example https://other.example/realms/x;
            proxy_pass {{upstream}};
        }
        location /aud/ {
            auth_jwt_audience api://one api://two;
            proxy_pass {{upstream}};
        }
        location /both/ {
            auth_jwt_issuer https://idp.example;
            auth_jwt_audience api://one;
            proxy_pass {{upstream}};
        }
    }
"#;

#[test]
fn exp_in_the_future_passes_in_the_past_fails() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    f.check(
        "future",
        nginx.check_accepted("/", &Jwt::new("RS256").exp_in(300).encode()),
    );
    f.check(
        "far future",
        nginx.check_accepted(
            "/",
            &Jwt::new("RS256")
                .claim("exp", json!(32503680000i64))
                .encode(),
        ),
    );
    for (what, secs) in [("just past", -2), ("an hour ago", -3600)] {
        let exp = now() + secs;
        let token = Jwt::new("ES256").claim("exp", json!(exp)).encode();
        let reason = format!("token expired at {exp}");
        f.check(
            what,
            nginx.check_rejected("/", "api", &token, "expired", &reason),
        );
    }
    let token = Jwt::new("RS256").claim("exp", json!(1698157920)).encode();
    f.check(
        "2023",
        nginx.check_rejected(
            "/",
            "api",
            &token,
            "expired",
            "token expired at 1698157920, kid=\"rsa-1\", alg=\"RS256\"",
        ),
    );
    f.assert();
    // The challenge says why.
    let resp = nginx.get("/").bearer(&token).send();
    assert!(
        resp.challenge()
            .contains("error_description=\"token expired"),
        "{}",
        resp.summary()
    );
    nginx.finish();
}

#[test]
fn nbf_in_the_future_fails() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    f.check(
        "nbf past",
        nginx.check_accepted("/", &Jwt::new("RS256").nbf_in(-60).encode()),
    );
    f.check(
        "nbf now-1",
        nginx.check_accepted("/", &Jwt::new("RS256").nbf_in(-1).encode()),
    );
    let nbf = now() + 120;
    let token = Jwt::new("EdDSA").claim("nbf", json!(nbf)).encode();
    f.check(
        "nbf future",
        nginx.check_rejected(
            "/",
            "api",
            &token,
            "invalid",
            &format!("token not valid before {nbf}"),
        ),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn leeway_allows_clock_skew_both_ways() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    f.check(
        "exp 30s ago",
        nginx.check_accepted("/leeway/", &Jwt::new("RS256").exp_in(-30).encode()),
    );
    f.check(
        "nbf in 30s",
        nginx.check_accepted("/leeway/", &Jwt::new("RS256").nbf_in(30).encode()),
    );
    let exp = now() - 120;
    let token = Jwt::new("RS256").claim("exp", json!(exp)).encode();
    f.check(
        "exp 120s ago",
        nginx.check_rejected(
            "/leeway/",
            "api",
            &token,
            "expired",
            &format!("token expired at {exp}"),
        ),
    );
    let nbf = now() + 120;
    let token = Jwt::new("RS256").claim("nbf", json!(nbf)).encode();
    f.check(
        "nbf in 120s",
        nginx.check_rejected(
            "/leeway/",
            "api",
            &token,
            "invalid",
            "token not valid before",
        ),
    );
    // Without leeway the same skew fails.
    let token = Jwt::new("RS256").exp_in(-30).encode();
    f.check(
        "no leeway",
        nginx.check_rejected("/", "api", &token, "expired", "token expired at"),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn exp_is_required_unless_configured_off() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    let no_exp = Jwt::new("RS256").no_exp().encode();
    f.check(
        "default",
        nginx.check_rejected("/", "api", &no_exp, "invalid", "token has no exp claim"),
    );
    f.check("off", nginx.check_accepted("/noexp/", &no_exp));
    let expired = Jwt::new("RS256").exp_in(-60).encode();
    f.check(
        "off, still expired",
        nginx.check_rejected("/noexp/", "api", &expired, "expired", "token expired at"),
    );
    let only_nbf = Jwt::new("HS256")
        .only_claims(json!({"sub": "a", "nbf": now() + 300}))
        .encode();
    f.check(
        "off, nbf still checked",
        nginx.check_rejected(
            "/noexp/",
            "api",
            &only_nbf,
            "invalid",
            "token not valid before",
        ),
    );
    let empty = Jwt::new("HS256").only_claims(json!({})).encode();
    f.check("off, empty claims", nginx.check_accepted("/noexp/", &empty));
    f.assert();
    nginx.finish();
}

#[test]
fn numeric_dates_may_be_fractional_or_extreme() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    let future = now() as f64 + 300.5;
    f.check(
        "fractional exp",
        nginx.check_accepted("/", &Jwt::new("RS256").claim("exp", json!(future)).encode()),
    );
    let past = now() as f64 - 300.5;
    f.check(
        "fractional past exp",
        nginx.check_rejected(
            "/",
            "api",
            &Jwt::new("RS256").claim("exp", json!(past)).encode(),
            "expired",
            "",
        ),
    );
    for (what, exp) in [
        ("i64 min", json!(i64::MIN)),
        ("zero", json!(0)),
        ("negative", json!(-1)),
        ("-1e300", json!(-1e300)),
    ] {
        let token = Jwt::new("RS256").claim("exp", exp).encode();
        f.check(
            what,
            nginx.check_rejected("/", "api", &token, "expired", ""),
        );
    }
    // Far-future values must not overflow into the past (or crash): never a 5xx, never "expired".
    for (what, exp) in [
        ("i64 max", json!(i64::MAX)),
        ("u64 max", json!(u64::MAX)),
        ("1e300", json!(1e300)),
    ] {
        let mark = nginx.log_mark();
        let resp = nginx
            .get("/")
            .bearer(&Jwt::new("RS256").claim("exp", exp).encode())
            .send();
        f.check(what, not_5xx(&resp));
        let expired = nginx.log_lines(mark, "rejected (expired)");
        f.check(
            what,
            if expired.is_empty() {
                Ok(())
            } else {
                Err(format!("far future taken as expired: {expired:?}"))
            },
        );
    }
    // nbf far in the past with leeway: no underflow.
    f.check(
        "nbf i64 min",
        nginx.check_accepted(
            "/leeway/",
            &Jwt::new("RS256").claim("nbf", json!(i64::MIN)).encode(),
        ),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn issuer_must_be_listed() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for iss in ["https://idp.example", "https://other.example/realms/x"] {
        f.check(
            iss,
            nginx.check_accepted(
                "/iss/",
                &Jwt::new("RS256").claim("iss", json!(iss)).encode(),
            ),
        );
    }
    for (what, iss) in [
        ("other", json!("https://evil.example")),
        ("prefix", json!("https://idp.example.evil")),
        ("trailing slash", json!("https://idp.example/")),
        ("case", json!("https://IDP.example")),
        ("number", json!(1)),
        ("array", json!(["https://idp.example"])),
        ("null", json!(null)),
        ("empty", json!("")),
    ] {
        let token = Jwt::new("RS256").claim("iss", iss).encode();
        f.check(
            what,
            nginx.check_rejected("/iss/", "api", &token, "invalid", ""),
        );
    }
    let token = Jwt::new("RS256").encode();
    f.check(
        "missing",
        nginx.check_rejected("/iss/", "api", &token, "invalid", "token has no iss claim"),
    );
    // Without auth_jwt_issuer, any iss is fine.
    f.check(
        "unchecked",
        nginx.check_accepted(
            "/",
            &Jwt::new("RS256")
                .claim("iss", json!("https://evil.example"))
                .encode(),
        ),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn audience_must_intersect() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for (what, aud) in [
        ("string", json!("api://one")),
        ("second", json!("api://two")),
        ("array", json!(["other", "api://two"])),
        ("array of one", json!(["api://one"])),
    ] {
        f.check(
            what,
            nginx.check_accepted("/aud/", &Jwt::new("ES384").claim("aud", aud).encode()),
        );
    }
    for (what, aud) in [
        ("other", json!("api://three")),
        ("array without", json!(["a", "b"])),
        ("empty array", json!([])),
        ("prefix", json!("api://one/extra")),
        ("number", json!(1)),
        ("object", json!({"aud": "api://one"})),
        ("nested array", json!([["api://one"]])),
        ("array of numbers", json!([1, 2])),
    ] {
        let token = Jwt::new("ES384").claim("aud", aud).encode();
        f.check(
            what,
            nginx.check_rejected("/aud/", "api", &token, "invalid", ""),
        );
    }
    let token = Jwt::new("ES384").encode();
    f.check(
        "missing",
        nginx.check_rejected("/aud/", "api", &token, "invalid", "token has no aud claim"),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn issuer_and_audience_together() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    let good = Jwt::new("PS256").claims(json!({"iss": "https://idp.example", "aud": "api://one"}));
    f.check(
        "both",
        nginx.check_accepted("/both/", &good.clone().encode()),
    );
    f.check(
        "bad iss",
        nginx.check_rejected(
            "/both/",
            "api",
            &good.clone().claim("iss", json!("x")).encode(),
            "invalid",
            "",
        ),
    );
    f.check(
        "bad aud",
        nginx.check_rejected(
            "/both/",
            "api",
            &good.clone().claim("aud", json!("x")).encode(),
            "invalid",
            "",
        ),
    );
    f.check(
        "expired",
        nginx.check_rejected("/both/", "api", &good.exp_in(-10).encode(), "expired", ""),
    );
    f.assert();
    nginx.finish();
}
