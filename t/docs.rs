//! Tests for auth_jwt: every log line the README's troubleshooting table quotes is produced.

use serde_json::json;

use crate::harness::logs::matches;
use crate::harness::{Jwt, Nginx};

const README: &str = include_str!("../README.md");

/// The log lines quoted in the troubleshooting table (second column), as harness patterns:
/// the table's placeholders (`N`, `...`, `https://...`, `file:line`) become `*`.
fn quoted_log_lines() -> Vec<String> {
    let table = README
        .split("## Troubleshooting")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Troubleshooting section");
    let mut lines = Vec::new();
    for row in table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| symptom"))
    {
        let Some(cell) = row.split(" | ").nth(1) else {
            continue;
        };
        for quoted in cell.split('`').skip(1).step_by(2) {
            let pattern = quoted
                .replace("https://...", "*")
                .replace("...", "*")
                .replace("file:line", "*")
                .split(' ')
                .map(|w| match w {
                    "N" => "*",
                    "#N" => "#*",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join(" ");
            lines.push(pattern);
        }
    }
    lines
}

/// Lines that need a live identity provider: produced by t/remote/, which must assert them.
const FETCHER_LINES: &[&str] = &[
    "no usable keys from",
    "failed (dns)",
    "failed (tls)",
    "failed (timeout)",
    "failed (http_5xx)",
];

/// Lines that need a live Redis: produced by t/revocation/, which must assert them.
const REDIS_LINES: &[&str] = &[
    "revocation sync with",
    "revocation list too stale",
    "went back (recreated, or Redis restarted without persistence)",
    "revocation table full (capacity",
    "refused: ",
];

/// Lines of sender-constrained tokens: produced by t/mtls.rs and t/dpop.rs, which must assert
/// them (they need TLS client certificates and DPoP proofs).
const SENDER_LINES: &[&str] = &[
    "client certificate does not match the token's binding",
    "token bound to a client certificate, none presented",
    "DPoP proof htu does not match the request URI",
    "iat outside the acceptance window",
    "DPoP proof replayed",
    "DPoP-bound token sent as a bearer token",
    "DPoP replay sharing with",
];

/// Lines of the rate limits (some need a live Redis): produced by t/ratelimit/, which must
/// assert them.
const LIMIT_LINES: &[&str] = &["rate limited by zone", "unreachable, limiting alone"];

const CONF: &str = r#"
    map $arg_ok $ok { default 0; yes 1; }
    auth_jwt_revocation_file {{prefix}}/revoked.json;
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        location / { auth_jwt "api"; proxy_pass {{upstream}}; }
        location /iss/ { auth_jwt "api"; auth_jwt_issuer https://good.example; proxy_pass {{upstream}}; }
        location /aud/ { auth_jwt "api"; auth_jwt_audience api; proxy_pass {{upstream}}; }
        location /alg/ { auth_jwt "api"; auth_jwt_algorithms ES256; proxy_pass {{upstream}}; }
        location /req/ { auth_jwt "api"; auth_jwt_require $ok error=403; proxy_pass {{upstream}}; }
        location /enc/ { auth_jwt "api"; auth_jwt_type encrypted; auth_jwt_key_file enc.json; proxy_pass {{upstream}}; }
    }
"#;

/// A `dir` key, and a JWE with the right lengths that it does not decrypt.
const ENC_KEY: &str =
    r#"{"kty":"oct","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
const FORGED_JWE: &str =
    "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAAAAAAAAAAAAAA.eA.AAAAAAAAAAAAAAAAAAAAAA";

#[test]
fn troubleshooting_log_lines_are_real() {
    let patterns = quoted_log_lines();
    assert!(patterns.len() >= 12, "{patterns:?}");

    let nginx = Nginx::http(CONF)
        .file("revoked.json", r#"[{"jti": "docs-revoked"}]"#)
        .file("conf/enc.json", ENC_KEY)
        .start();
    let mark = nginx.log_mark();
    let rs = || Jwt::new("RS256");
    let requests = [
        ("/", None),
        ("/", Some(rs().exp_in(-3600).encode())),
        ("/", Some(rs().nbf_in(3600).encode())),
        ("/", Some(rs().kid("no-such-kid").encode())),
        ("/", Some(rs().no_exp().encode())),
        (
            "/iss/",
            Some(rs().claim("iss", json!("https://evil.example")).encode()),
        ),
        ("/aud/", Some(rs().claim("aud", json!("other")).encode())),
        ("/alg/", Some(rs().encode())),
        ("/req/", Some(rs().encode())),
        ("/", Some(rs().claim("jti", json!("docs-revoked")).encode())),
        ("/", Some(FORGED_JWE.to_owned())),
        ("/enc/", Some(FORGED_JWE.to_owned())),
        ("/enc/", Some(rs().encode())),
    ];
    for (path, token) in requests {
        let mut req = nginx.get(path);
        if let Some(t) = &token {
            req = req.bearer(t);
        }
        assert!(matches!(req.send().status, 401 | 403), "{path}");
    }
    let log = nginx.log_since(mark);

    // The configuration error and the query-string warning, from `nginx -t`.
    let check = Nginx::http(r#"server { listen 127.0.0.1:{{port}}; location / { auth_jwt "api" token=$arg_t; proxy_pass {{upstream}}; } }"#).check();
    assert!(!check.ok);

    let remote = [
        include_str!("remote/mod.rs"),
        include_str!("remote/config.rs"),
        include_str!("remote/discovery.rs"),
        include_str!("remote/failures.rs"),
        include_str!("remote/fetching.rs"),
        include_str!("remote/workers.rs"),
    ]
    .concat();
    let revocation = [
        include_str!("revocation/mod.rs"),
        include_str!("revocation/secure.rs"),
        include_str!("revocation/table.rs"),
    ]
    .concat();
    let sender = [
        include_str!("mtls.rs"),
        include_str!("dpop.rs"),
        include_str!("dpop/shared.rs"),
    ]
    .concat();
    let limits = [
        include_str!("ratelimit/mod.rs"),
        include_str!("ratelimit/keys.rs"),
    ]
    .concat();
    // Lines only a live peer produces: the test files that must assert each fragment.
    let groups: [(&[&str], &str, &str); 4] = [
        (FETCHER_LINES, &remote, "t/remote/"),
        (REDIS_LINES, &revocation, "t/revocation/"),
        (SENDER_LINES, &sender, "t/mtls.rs, t/dpop.rs"),
        (LIMIT_LINES, &limits, "t/ratelimit/"),
    ];
    let mut missing = Vec::new();
    for pattern in &patterns {
        let mut by_peer = false;
        for (lines, source, files) in groups {
            for fragment in lines.iter().filter(|f| pattern.contains(*f)) {
                by_peer = true;
                if !source.contains(fragment) {
                    missing.push(format!("{pattern} ({files} does not assert {fragment:?})"));
                }
            }
        }
        if by_peer {
            continue;
        }
        let produced = log
            .lines()
            .chain(check.stderr.lines())
            .any(|l| matches(l, pattern));
        if !produced {
            missing.push(pattern.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "README quotes log lines no test produces:\n{}",
        missing.join("\n")
    );
    nginx.finish();
}
