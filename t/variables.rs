//! Tests for auth_jwt: $jwt_* variables in add_header, proxy_set_header and access logs.

use serde_json::json;

use crate::harness::expect::CONTROL_VALUES;
use crate::harness::{keys, now, Failures, Jwt, Nginx, Response};

const CONF: &str = r#"
    auth_jwt_claim_set $jwt_email email;
    auth_jwt_claim_set $jwt_tenant org id;
    auth_jwt_claim_set $jwt_deep a b c;
    auth_jwt_header_set $jwt_typ typ;
    auth_jwt_header_set $jwt_custom x-custom;
    log_format jwt '$status|$jwt_status|$jwt_error|$jwt_claim_sub|$jwt_header_kid|$jwt_header_alg|$jwt_tenant';

    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        access_log logs/jwt.log jwt;

        location / {
            auth_jwt "api";
            add_header X-Status "[$jwt_status]" always;
            add_header X-Error "[$jwt_error]" always;
            add_header X-Sub "[$jwt_claim_sub]" always;
            add_header X-Roles "[$jwt_claim_roles]" always;
            add_header X-Kid "[$jwt_header_kid]" always;
            add_header X-Alg "[$jwt_header_alg]" always;
            add_header X-Email "[$jwt_email]" always;
            add_header X-Tenant "[$jwt_tenant]" always;
            add_header X-Deep "[$jwt_deep]" always;
            add_header X-Typ "[$jwt_typ]" always;
            add_header X-Custom "[$jwt_custom]" always;
            proxy_set_header X-Jwt-Sub $jwt_claim_sub;
            proxy_set_header X-Jwt-Status $jwt_status;
            proxy_pass {{upstream}};
        }
        location /payload/ {
            auth_jwt "api";
            add_header X-Payload "[$jwt_payload]" always;
            proxy_pass {{upstream}};
        }
        location /off/ {
            auth_jwt off;
            add_header X-Sub "[$jwt_claim_sub]" always;
            add_header X-Payload "[$jwt_payload]" always;
            proxy_pass {{upstream}};
        }
    }
"#;

fn bracketed(resp: &Response, name: &str) -> Result<String, String> {
    let v = resp
        .header(name)
        .ok_or_else(|| format!("no {name} header in {}", resp.summary()))?;
    v.strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .map(str::to_owned)
        .ok_or_else(|| format!("{name}: {v:?}"))
}

fn expect_headers(f: &mut Failures, case: &str, resp: &Response, want: &[(&str, &str)]) {
    for (name, value) in want {
        let got = bracketed(resp, name);
        f.check(
            &format!("{case} {name}"),
            match got {
                Ok(v) if v == *value => Ok(()),
                other => Err(format!("{other:?}, want {value:?}")),
            },
        );
    }
}

#[test]
fn variables_after_success() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("RS256")
        .header("x-custom", json!("hdr"))
        .claims(json!({
            "email": "alice@example.com",
            "org": {"id": "acme"},
            "roles": ["a", "b"],
            "a": {"b": {"c": "deep"}},
        }))
        .encode();
    let resp = nginx.check_accepted("/", &token).unwrap();
    let mut f = Failures::new();
    expect_headers(
        &mut f,
        "ok",
        &resp,
        &[
            ("x-status", "ok"),
            ("x-error", ""),
            ("x-sub", "alice"),
            ("x-roles", "a,b"),
            ("x-kid", "rsa-1"),
            ("x-alg", "RS256"),
            ("x-email", "alice@example.com"),
            ("x-tenant", "acme"),
            ("x-deep", "deep"),
            ("x-typ", "JWT"),
            ("x-custom", "hdr"),
        ],
    );
    f.check(
        "upstream x-jwt-sub",
        match resp.echo("x-jwt-sub") {
            Some(v) if v == "alice" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    f.check(
        "upstream x-jwt-status",
        match resp.echo("x-jwt-status") {
            Some(v) if v == "ok" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    f.assert();
    nginx.finish();
}

#[test]
fn status_and_error_after_failures() {
    let nginx = Nginx::http(CONF).start();
    let k = keys();
    let exp = now() - 100;
    let cases: Vec<(&str, Option<String>, &str, &str)> = vec![
        ("missing", None, "missing", "no bearer token"),
        (
            "expired",
            Some(Jwt::new("ES256").claim("exp", json!(exp)).encode()),
            "expired",
            "token expired at",
        ),
        (
            "bad signature",
            Some(
                Jwt::new("RS256")
                    .rsa_key(&k.rsa_other)
                    .kid("rsa-1")
                    .encode(),
            ),
            "invalid",
            "signature verification failed",
        ),
        (
            "alg none",
            Some(Jwt::new("RS256").alg("none").unsigned().encode()),
            "invalid",
            "algorithm none is not allowed",
        ),
        (
            "unknown kid",
            Some(Jwt::new("RS256").kid("nope").encode()),
            "invalid",
            "no key matches kid",
        ),
    ];
    let mut f = Failures::new();
    for (case, token, status, error) in cases {
        let mut req = nginx.get("/");
        if let Some(t) = &token {
            req = req.bearer(t);
        }
        let resp = req.send();
        f.check(
            case,
            if resp.status == 401 {
                Ok(())
            } else {
                Err(resp.summary())
            },
        );
        f.check(
            &format!("{case} status"),
            match bracketed(&resp, "x-status") {
                Ok(v) if v == status => Ok(()),
                other => Err(format!("{other:?}, want {status:?}")),
            },
        );
        f.check(
            &format!("{case} error"),
            match bracketed(&resp, "x-error") {
                Ok(v) if v.starts_with(error) => Ok(()),
                other => Err(format!("{other:?}, want {error:?}...")),
            },
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn payload_is_the_decoded_json() {
    let nginx = Nginx::http(CONF).start();
    let payload = format!(
        r#"{{"sub":"alice","exp":{},"n":[1,2],"s":"x y"}}"#,
        now() + 600
    );
    let token = Jwt::new("EdDSA").raw_payload(&payload).encode();
    let resp = nginx.check_accepted("/payload/", &token).unwrap();
    assert_eq!(bracketed(&resp, "x-payload").unwrap(), payload);
    nginx.finish();
}

#[test]
fn variables_are_empty_where_auth_is_off() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("RS256").encode();
    let resp = nginx.get("/off/").bearer(&token).send();
    let mut f = Failures::new();
    f.check("upstream", crate::harness::expect::upstream(&resp));
    expect_headers(&mut f, "off", &resp, &[("x-sub", ""), ("x-payload", "")]);
    f.assert();
    nginx.finish();
}

#[test]
fn variables_in_the_access_log() {
    let nginx = Nginx::http(CONF).start();
    let exp = now() - 100;
    let good = Jwt::new("RS256")
        .claim("org", json!({"id": "acme"}))
        .encode();
    let expired = Jwt::new("ES256").claim("exp", json!(exp)).encode();
    nginx.check_accepted("/", &good).unwrap();
    assert_eq!(nginx.get("/").bearer(&expired).send().status, 401);
    assert_eq!(nginx.get("/").send().status, 401);
    // The access log is written when the request ends: wait for it, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut log = nginx.log_file("jwt.log");
    while log.lines().count() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        log = nginx.log_file("jwt.log");
    }
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(lines.len(), 3, "{log}");
    let empty = |v: &str| v.is_empty() || v == "-";
    assert_eq!(lines[0][..2], ["200", "ok"], "{log}");
    assert!(empty(lines[0][2]), "no error on success: {log}");
    assert_eq!(lines[0][3..], ["alice", "rsa-1", "RS256", "acme"], "{log}");
    assert_eq!(
        lines[1][..3],
        ["401", "expired", format!("token expired at {exp}").as_str()],
        "{log}"
    );
    assert_eq!(
        lines[2][..3],
        ["401", "missing", "no bearer token"],
        "{log}"
    );
    nginx.finish();
}

/// A signed value holding CR, LF, NUL or another control character never becomes a variable's
/// value: `proxy_set_header X-Name $jwt_claim_name` would otherwise smuggle a header (or a
/// whole request) to the upstream, and `add_header` would split the response.
#[test]
fn control_characters_never_reach_a_variable() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for &(what, value) in CONTROL_VALUES {
        let token = Jwt::new("RS256")
            .claim("sub", json!(value))
            .claim("email", json!(value))
            .claim("org", json!({"id": value}))
            .claim("roles", json!(["a", value]))
            .header("x-custom", json!(value))
            .encode();
        let resp = nginx.get("/").bearer(&token).send();
        f.check(what, crate::harness::expect::upstream(&resp));
        expect_headers(
            &mut f,
            what,
            &resp,
            &[
                ("x-sub", ""),
                ("x-email", ""),
                ("x-tenant", ""),
                ("x-roles", ""),
                ("x-custom", ""),
                ("x-status", "ok"),
            ],
        );
        f.check(
            what,
            match (resp.echo("x-jwt-sub"), resp.header("x-evil")) {
                (Some(sub), None) if sub.is_empty() => Ok(()),
                other => Err(format!("x-jwt-sub and x-evil: {other:?}")),
            },
        );
    }
    // JSON allows CR, LF and TAB as whitespace: the payload text is refused whole.
    let payload = format!("{{\"sub\":\"alice\",\r\n\"exp\":{}}}", now() + 600);
    let token = Jwt::new("RS256").raw_payload(payload).encode();
    let resp = nginx.get("/payload/").bearer(&token).send();
    f.check("payload", crate::harness::expect::upstream(&resp));
    expect_headers(&mut f, "payload", &resp, &[("x-payload", "")]);
    f.assert();
    nginx.finish();
}
