//! Tests for auth_jwt: certificate-bound tokens (RFC 8705) over real TLS client certificates.

use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::harness::certs::{make_ca, make_client, make_leaf};
use crate::harness::{Failures, Jwt, Nginx};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}} ssl;
        ssl_certificate {{prefix}}/server.pem;
        ssl_certificate_key {{prefix}}/server.key;
        ssl_client_certificate {{prefix}}/ca.pem;
        ssl_verify_client optional;
        auth_jwt_key_file {{keys}}/jwks.json;
        location / {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
        location /required/ {
            auth_jwt "api";
            auth_jwt_mtls required;
            proxy_pass {{upstream}};
        }
        location /off/ {
            auth_jwt "api";
            auth_jwt_mtls off;
            proxy_pass {{upstream}};
        }
    }
    # Behind a TLS terminator: the certificate comes in a header the terminator sets.
    server {
        listen 127.0.0.1:{{port2}};
        auth_jwt_key_file {{keys}}/jwks.json;
        location / {
            auth_jwt "api";
            auth_jwt_mtls required certificate=$http_x_client_cert;
            proxy_pass {{upstream}};
        }
        location /metrics {
            auth_jwt_metrics;
        }
    }
"#;

fn pem(cert: &X509) -> String {
    String::from_utf8(cert.to_pem().unwrap()).unwrap()
}

fn key_pem(key: &PKey<Private>) -> String {
    String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap()
}

/// `x5t#S256` computed with RustCrypto, independently of the module's OpenSSL.
fn x5t(cert: &X509) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(cert.to_der().unwrap()))
}

fn bound_to(cert: &X509) -> String {
    Jwt::new("ES256")
        .claim("cnf", json!({ "x5t#S256": x5t(cert) }))
        .encode()
}

/// Status and `WWW-Authenticate` of a GET through curl over TLS, with `client` (the name
/// of a `<name>.pem`/`<name>.key` pair in the prefix) as the client certificate.
fn curl(prefix: &Path, port: u16, path: &str, token: &str, client: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-D", "-", "--max-time", "10"])
        .arg("--cacert")
        .arg(prefix.join("ca.pem"))
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"));
    if let Some(name) = client {
        cmd.arg("--cert")
            .arg(prefix.join(format!("{name}.pem")))
            .arg("--key")
            .arg(prefix.join(format!("{name}.key")));
    }
    let out = cmd
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl runs");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer from curl: {head:?}"));
    let challenge = head
        .lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    (status, challenge)
}

fn check(
    case: &str,
    got: (u16, String),
    status: u16,
    description: Option<&str>,
) -> Result<(), String> {
    let (code, challenge) = &got;
    if *code != status {
        return Err(format!(
            "{case}: status {code}, want {status} ({challenge})"
        ));
    }
    match description {
        Some(d)
            if !challenge.contains(&format!(
                "error=\"invalid_token\", error_description=\"{d}\""
            )) =>
        {
            Err(format!("{case}: challenge {challenge:?}, want {d:?}"))
        }
        _ => Ok(()),
    }
}

#[test]
fn a_bound_token_passes_only_on_its_certificate() {
    let (ca, ca_key) = make_ca("auth_jwt test CA");
    let (server, server_key) = make_leaf(&ca, &ca_key);
    let (alice, alice_key) = make_client(&ca, &ca_key, "alice");
    let (mallory, mallory_key) = make_client(&ca, &ca_key, "mallory");
    let nginx = Nginx::http(CONF)
        .file("ca.pem", pem(&ca))
        .file("server.pem", pem(&server))
        .file("server.key", key_pem(&server_key))
        .file("alice.pem", pem(&alice))
        .file("alice.key", key_pem(&alice_key))
        .file("mallory.pem", pem(&mallory))
        .file("mallory.key", key_pem(&mallory_key))
        .start();
    let (prefix, port) = (nginx.prefix(), nginx.port());
    let token = bound_to(&alice);
    let unbound = Jwt::new("ES256").encode();
    let mut f = Failures::new();
    let mut case = |name: &str, path: &str, token: &str, client, status, why| {
        let got = curl(prefix, port, path, token, client);
        f.check(name, check(name, got, status, why));
    };
    case("right certificate", "/", &token, Some("alice"), 200, None);
    // Cached now: the cache hit is checked against the connection all the same.
    case(
        "other certificate",
        "/",
        &token,
        Some("mallory"),
        401,
        Some("client certificate does not match the token's binding"),
    );
    case(
        "no certificate",
        "/",
        &token,
        None,
        401,
        Some("token bound to a client certificate, none presented"),
    );
    case("unbound, optional", "/", &unbound, None, 200, None);
    case(
        "unbound, required",
        "/required/",
        &unbound,
        Some("alice"),
        401,
        Some("token not bound to a client certificate"),
    );
    case(
        "bound, required",
        "/required/",
        &token,
        Some("alice"),
        200,
        None,
    );
    case("bound, off", "/off/", &token, None, 200, None);
    let mangled = Jwt::new("ES256")
        .claim("cnf", json!({ "x5t#S256": "not-a-thumbprint" }))
        .encode();
    case(
        "malformed binding",
        "/",
        &mangled,
        Some("alice"),
        401,
        Some("malformed cnf.x5t#S256 claim"),
    );
    f.assert();
    nginx.assert_log(
        0,
        "rejected (invalid): client certificate does not match the token's binding",
    );
    nginx.assert_log(
        0,
        "rejected (invalid): token bound to a client certificate, none presented",
    );
    nginx.finish();
}

#[test]
fn behind_a_terminator_the_certificate_comes_from_a_variable() {
    let (ca, ca_key) = make_ca("auth_jwt test CA");
    let (server, server_key) = make_leaf(&ca, &ca_key);
    let (alice, _) = make_client(&ca, &ca_key, "alice");
    let (mallory, _) = make_client(&ca, &ca_key, "mallory");
    let nginx = Nginx::http(CONF)
        .file("ca.pem", pem(&ca))
        .file("server.pem", pem(&server))
        .file("server.key", key_pem(&server_key))
        .start();
    let port2 = nginx.extra_port(2);
    let token = bound_to(&alice);
    // As NGINX's $ssl_client_escaped_cert and most terminators send it: URL-encoded PEM.
    let escaped = |cert: &X509| -> String {
        pem(cert)
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let get = |cert: Option<&X509>| {
        let mut req = crate::harness::Request::new(port2, "GET", "/").bearer(&token);
        if let Some(cert) = cert {
            req = req.header("X-Client-Cert", &escaped(cert));
        }
        req.send()
    };
    let mut f = Failures::new();
    let resp = get(Some(&alice));
    f.check("right certificate", crate::harness::expect::upstream(&resp));
    let resp = get(Some(&mallory));
    f.check(
        "other certificate",
        crate::harness::expect::status(&resp, 401),
    );
    let resp = get(None);
    f.check("no header", crate::harness::expect::status(&resp, 401));
    let resp = crate::harness::Request::new(port2, "GET", "/")
        .bearer(&token)
        .header("X-Client-Cert", "garbage")
        .send();
    f.check("garbage header", crate::harness::expect::status(&resp, 401));
    if !resp.challenge().contains("client certificate unreadable") {
        f.check::<()>("garbage reason", Err(resp.challenge().to_owned()));
    }
    let metrics = crate::harness::Request::new(port2, "GET", "/metrics")
        .send()
        .text();
    let lines = [
        "nginx_auth_jwt_sender_constrained_total{method=\"mtls\",result=\"ok\"} 1",
        "nginx_auth_jwt_sender_constrained_total{method=\"mtls\",result=\"mismatch\"} 1",
        "nginx_auth_jwt_sender_constrained_total{method=\"mtls\",result=\"no_certificate\"} 1",
        "nginx_auth_jwt_sender_constrained_total{method=\"mtls\",result=\"bad_certificate\"} 1",
    ];
    f.check(
        "metrics",
        crate::harness::expect::lines_in(&metrics, &lines),
    );
    f.assert();
    nginx.finish();
}

/// `nginx -t` of each directive in a protected location fails with its reason (shared with
/// t/dpop.rs).
pub fn refused_in_location(name: &str, cases: &[(&str, &str)]) {
    let mut f = Failures::new();
    for (directive, reason) in cases {
        let conf = format!(
            "server {{ listen 127.0.0.1:{{{{port}}}}; auth_jwt_key_file {{{{keys}}}}/jwks.json;\n location / {{ auth_jwt api;\n {directive}\n proxy_pass {{{{upstream}}}}; }} }}"
        );
        let check = Nginx::http(&conf).check();
        let within = format!("\"{name}\" directive");
        f.check(directive, check.emerg(directive, &[reason, &within]));
    }
    f.assert();
}

#[test]
fn bad_mtls_directives_fail_nginx_t() {
    refused_in_location(
        "auth_jwt_mtls",
        &[
            ("auth_jwt_mtls on;", "invalid value \"on\""),
            (
                "auth_jwt_mtls required cert=$x;",
                "invalid value \"cert=$x\"",
            ),
            (
                "auth_jwt_mtls required certificate=x;",
                "\"x\" must be a variable",
            ),
            (
                "auth_jwt_mtls off certificate=$x;",
                "invalid number of arguments",
            ),
        ],
    );
}
