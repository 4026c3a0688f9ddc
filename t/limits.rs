//! Tests for auth_jwt: limits on attacker- and IdP-controlled sizes and counts.
//!
//! Each limit is tested at its boundary: the largest accepted value passes whole (never
//! truncated), one more is refused without a 5xx, and the limit is the documented one.
//! Covered elsewhere too: JSON depth and member counts (`jwt::token`, `jwt::json` unit
//! tests, t/malformed.rs), JWKS key counts (`jwt/jwks_tests.rs`), `kid` length (`jwt::token`
//! tests, t/attacks.rs), JWKS bodies well over 1 MiB (t/remote/), identity values over
//! 4096 bytes (`identity` tests, src/proptests.rs), unknown kids (t/chaos.rs).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::expect::upstream;
use crate::harness::idp::{Idp, JWKS_PATH};
use crate::harness::{keys, Failures, Jwt, Nginx};

/// `auth_jwt_max_size`, the identity-header cap and the claim variables, on local keys.
const LOCAL: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        large_client_header_buffers 4 64k;
        auth_jwt_key_file {{keys}}/jwks.json;
        location /small/ {
            auth_jwt "api";
            auth_jwt_max_size 2k;
            proxy_pass {{upstream}};
        }
        location /identity/ {
            auth_jwt "api";
            auth_jwt_identity_header X-User sub;
            proxy_pass {{upstream}};
        }
        location /vars/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            auth_jwt_key_file {{prefix}}/long-kid.json;
            proxy_set_header X-Claims $jwt_claim_pad;
            proxy_set_header X-Test $jwt_header_kid;
            proxy_set_header X-Jwt-Sub $jwt_payload;
            proxy_pass {{upstream}};
        }
    }
"#;

/// NGINX with `LOCAL`; `long-kid.json` holds the standard RSA key under a 256-byte kid.
fn local() -> crate::harness::config::NginxBuilder {
    let mut jwk = keys().rsa.jwk();
    jwk["kid"] = json!(long_kid());
    Nginx::http(LOCAL).file("long-kid.json", json!({ "keys": [jwk] }).to_string())
}

/// A kid of 256 bytes, the longest accepted.
fn long_kid() -> String {
    "k".repeat(256)
}

/// An RS256 token whose compact form is exactly `len` bytes long, padded through a header
/// member and a claim (a base64url segment can have any length but 1 mod 4).
fn token_of_length(len: usize) -> String {
    let mint = |header_pad: usize, claim_pad: usize| {
        Jwt::new("RS256")
            .header("x", json!("h".repeat(header_pad)))
            .claim("pad", json!("p".repeat(claim_pad)))
            .encode()
    };
    for header_pad in 0..4 {
        let bare = mint(header_pad, 0).len();
        let guess = len.saturating_sub(bare) * 3 / 4;
        for claim_pad in guess.saturating_sub(4)..guess + 4 {
            let token = mint(header_pad, claim_pad);
            if token.len() == len {
                return token;
            }
        }
    }
    panic!("no token of exactly {len} bytes");
}

#[test]
fn max_size_admits_exactly_its_bytes() {
    let nginx = local().start();
    let at = token_of_length(2048);
    let over = token_of_length(2049);
    assert_eq!((at.len(), over.len()), (2048, 2049));
    nginx.check_accepted("/small/", &at).unwrap();
    nginx
        .check_rejected("/small/", "api", &over, "invalid", "token too large")
        .unwrap();
    // The default is 16k: the same 2049-byte token passes elsewhere.
    nginx.check_accepted("/identity/", &over).unwrap();
    let default_at = token_of_length(16 * 1024);
    nginx.check_accepted("/identity/", &default_at).unwrap();
    let default_over = token_of_length(16 * 1024 + 1);
    nginx
        .check_rejected(
            "/identity/",
            "api",
            &default_over,
            "invalid",
            "token too large",
        )
        .unwrap();
    nginx.finish();
}

#[test]
fn identity_headers_pass_4096_bytes_whole_and_refuse_more() {
    let nginx = local().echo_header("x-user").start();
    let mut f = Failures::new();
    for len in [4095, 4096] {
        let sub = "u".repeat(len);
        let token = Jwt::new("ES256").claim("sub", json!(sub)).encode();
        let got = nginx
            .check_accepted("/identity/", &token)
            .map(|resp| resp.echo("x-user").unwrap_or_default());
        f.check(
            &format!("sub of {len} bytes"),
            got.and_then(|v| {
                if v == sub {
                    Ok(())
                } else {
                    Err(format!("upstream got {} bytes", v.len()))
                }
            }),
        );
    }
    // An array is joined first; the cap applies to what the upstream would get.
    let roles: Vec<String> = (0..2).map(|_| "r".repeat(2048)).collect();
    for (what, claim) in [
        ("sub of 4097 bytes", json!("u".repeat(4097))),
        ("array joined to 4097 bytes", json!(roles)),
    ] {
        let token = Jwt::new("ES256").claim("sub", claim).encode();
        f.check(
            what,
            nginx.check_rejected("/identity/", "api", &token, "invalid", ""),
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn variables_carry_long_claims_and_headers_whole() {
    // Within the 16k token limit: a 10,000-byte claim, and a kid of 256 bytes (the limit).
    let kid = long_kid();
    let nginx = local().start();
    let pad = "v".repeat(10_000);
    let token = Jwt::new("RS256")
        .kid(&kid)
        .claim("pad", json!(pad))
        .encode();
    let resp = nginx.check_accepted("/vars/", &token).unwrap();
    assert_eq!(resp.echo("x-claims").as_deref(), Some(pad.as_str()));
    assert_eq!(resp.echo("x-test").as_deref(), Some(kid.as_str()));
    let payload = resp.echo("x-jwt-sub").unwrap_or_default();
    let payload: Value = serde_json::from_str(&payload).expect("$jwt_payload is the JSON");
    assert_eq!(payload["pad"], json!(pad));
    // One byte more of kid: refused before any key is looked up.
    let long = Jwt::new("RS256").kid(&format!("{kid}k")).encode();
    nginx
        .check_rejected(
            "/vars/",
            "api",
            &long,
            "invalid",
            "malformed token: kid is too long",
        )
        .unwrap();
    nginx.finish();
}

/// A key URI of `len` bytes on `idp` (the IdP ignores the query string).
fn long_uri(idp: &Idp, len: usize) -> String {
    let base = format!("{}?pad=", idp.jwks_url());
    format!("{base}{}", "x".repeat(len - base.len()))
}

fn remote_conf(idp: &Idp, zone: &str, uris: &[String]) -> String {
    let sources: String = uris
        .iter()
        .map(|u| format!("            auth_jwt_key_uri {u} refresh=1s timeout=2s;\n"))
        .collect();
    format!(
        r#"
    auth_jwt_zone {zone};
    auth_jwt_trusted_certificate {ca};
    server {{
        listen 127.0.0.1:{{{{port}}}};
        location / {{
            auth_jwt "api";
{sources}            proxy_pass {{{{upstream}}}};
        }}
    }}
"#,
        ca = idp.ca_file().display()
    )
}

/// Waits until `token` is answered by the upstream at `/`.
fn wait_accepted(nginx: &Nginx, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(8);
    while !nginx.get("/").bearer(token).send().is_from_upstream() {
        assert!(
            Instant::now() < deadline,
            "keys never arrived:\n{}",
            nginx.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a warn line about a failed fetch of `url` that contains `reason`.
fn wait_fetch_failure(nginx: &Nginx, mark: usize, url: &str, reason: &str) {
    let pattern = format!("[warn] *auth_jwt: fetch of \"{url}\" failed*{reason}*");
    let deadline = Instant::now() + Duration::from_secs(8);
    while nginx.log_lines(mark, &pattern).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no {pattern:?} in:\n{}",
            nginx.log_since(mark)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn thirty_two_key_uris_of_up_to_1024_bytes() {
    let idp = Idp::start();
    let uris = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| format!("{}?source={i}", idp.jwks_url()))
            .collect()
    };
    Nginx::http(&remote_conf(&idp, "1m", &uris(32)))
        .check()
        .assert_ok();
    Nginx::http(&remote_conf(&idp, "1m", &uris(33)))
        .check()
        .assert_emerg("source=32", &["more than 32 key URIs"]);
    Nginx::http(&remote_conf(&idp, "1m", &[long_uri(&idp, 1025)]))
        .check()
        .assert_emerg("auth_jwt_key_uri", &["URL is longer than 1024 bytes"]);
    assert_eq!(idp.jwks_count(), 0, "nginx -t fetched");
}

/// Regression: a key URI longer than its shared-zone slot (1024 bytes) passed `nginx -t`
/// and then never matched its slot: no fetch, 503 forever. Now it is refused at load, and
/// one of exactly 1024 bytes works, across a reload too.
#[test]
fn a_key_uri_of_1024_bytes_keeps_its_keys_across_reloads() {
    let idp = Idp::start();
    let mut nginx = Nginx::http(&remote_conf(&idp, "1m", &[long_uri(&idp, 1024)])).start();
    let token = Jwt::new("RS256").encode();
    wait_accepted(&nginx, &token);
    let fetches = idp.jwks_count();
    nginx.reload().expect("reload");
    upstream(&nginx.get("/").bearer(&token).send()).unwrap();
    assert!(idp.jwks_count() <= fetches + 1, "{:?}", idp.hits(JWKS_PATH));
    nginx.finish();
}

/// A JWKS document `{"keys":[...],"padding":"xx..."}` of exactly `size` bytes.
fn padded_jwks(jwk_list: &[Value], size: usize) -> Vec<u8> {
    let keys = serde_json::to_string(jwk_list).expect("json");
    let bare = format!(r#"{{"keys":{keys},"padding":""}}"#);
    let pad = size
        .checked_sub(bare.len())
        .expect("size below the keys' own");
    let body = format!(r#"{{"keys":{keys},"padding":"{}"}}"#, "x".repeat(pad));
    assert_eq!(body.len(), size);
    body.into_bytes()
}

/// `n` copies of the standard RSA key, kids `k0`.. and the last one `rsa-1`.
fn many_keys(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut jwk = keys().rsa.jwk();
            if i + 1 < n {
                jwk["kid"] = json!(format!("k{i}"));
            }
            jwk
        })
        .collect()
}

/// The JWKS size limit is "over 1 MiB refused": a body of exactly 1 MiB is taken.
#[test]
fn a_jwks_of_exactly_one_mebibyte_is_taken() {
    const MIB: usize = 1 << 20;
    let idp = Idp::start();
    idp.set_jwks_body(padded_jwks(&many_keys(2), MIB));
    let nginx = Nginx::http(&remote_conf(&idp, "4m", &[idp.jwks_url()])).start();
    wait_accepted(&nginx, &Jwt::new("RS256").encode());
    let mark = nginx.log_mark();
    idp.set_jwks_body(padded_jwks(&many_keys(2), MIB + 1));
    wait_fetch_failure(&nginx, mark, &idp.jwks_url(), "(too_large)");
    nginx
        .check_accepted("/", &Jwt::new("RS256").encode())
        .unwrap();
    nginx.finish();
}

#[test]
fn a_jwks_of_256_keys_is_taken_and_one_more_is_refused() {
    let idp = Idp::start();
    let url = idp.jwks_url();
    idp.set_keys(&many_keys(256));
    let nginx = Nginx::http(&remote_conf(&idp, "4m", std::slice::from_ref(&url))).start();
    wait_accepted(&nginx, &Jwt::new("RS256").encode());
    nginx
        .check_accepted("/", &Jwt::new("RS256").kid("k0").encode())
        .unwrap();
    let mark = nginx.log_mark();
    idp.set_keys(&many_keys(257));
    wait_fetch_failure(&nginx, mark, &url, "jwks has more than 256 keys");
    // The 256 keys in hand stay in use.
    nginx
        .check_accepted("/", &Jwt::new("RS256").kid("k254").encode())
        .unwrap();
    nginx.finish();
}

/// A JWKS larger than the space left in `auth_jwt_zone` is refused with a warning naming
/// the zone; the keys already stored stay in use.
#[test]
fn a_jwks_larger_than_the_zone_keeps_the_old_keys() {
    let idp = Idp::start();
    let url = idp.jwks_url();
    let nginx = Nginx::http(&remote_conf(&idp, "512k", std::slice::from_ref(&url))).start();
    let token = Jwt::new("RS256").encode();
    wait_accepted(&nginx, &token);
    let mark = nginx.log_mark();
    idp.set_jwks_body(padded_jwks(&[keys().rsa.jwk()], 700_000));
    wait_fetch_failure(&nginx, mark, &url, "auth_jwt_zone is too small");
    nginx.check_accepted("/", &token).unwrap();
    nginx.finish();
}
