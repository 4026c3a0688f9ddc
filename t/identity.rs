//! Tests for auth_jwt: identity headers for the upstream, and spoofed ones removed.

use serde_json::json;

use crate::harness::expect::{upstream, CONTROL_VALUES};
use crate::harness::{Failures, Jwt, Nginx};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        auth_jwt_identity_header X-User-Id sub;

        location / {
            auth_jwt "api";
            auth_jwt_identity_header X-User-Id sub;
            auth_jwt_identity_header X-User-Email email;
            auth_jwt_identity_header X-Tenant org id;
            auth_jwt_identity_header X-Roles roles;
            auth_jwt_identity_header X-Claims profile;
            auth_jwt_identity_header X-Scope scope;
            proxy_pass {{upstream}};
        }
        location /inherit/ {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
        location /open/ {
            auth_jwt off;
            proxy_pass {{upstream}};
        }
        location /any/ {
            satisfy any;
            allow 127.0.0.1;
            deny all;
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
    }
"#;

#[test]
fn identity_headers_carry_claims() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("RS256")
        .claims(json!({
            "sub": "alice",
            "email": "alice@example.com",
            "org": {"id": "acme", "name": "Acme"},
            "roles": ["admin", "dev"],
            "profile": {"team": "core"},
            "scope": "read write",
        }))
        .encode();
    let resp = nginx.check_accepted("/", &token).unwrap();
    let mut f = Failures::new();
    for (header, want) in [
        ("x-user-id", "alice"),
        ("x-user-email", "alice@example.com"),
        ("x-tenant", "acme"),
        ("x-roles", "admin,dev"),
        ("x-claims", r#"{"team":"core"}"#),
        ("x-scope", "read write"),
    ] {
        let got = resp.echo(header);
        f.check(
            header,
            if got.as_deref() == Some(want) {
                Ok(())
            } else {
                Err(format!("{header}: {got:?}, want {want:?}"))
            },
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn scalar_claims_are_rendered_as_text() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for (value, want) in [
        (json!(42), "42"),
        (json!(true), "true"),
        (json!("zoë"), "zoë"),
        (json!([1, "a"]), "1,a"),
    ] {
        let token = Jwt::new("ES256").claim("sub", value.clone()).encode();
        let got = nginx
            .check_accepted("/", &token)
            .map(|r| r.echo("x-user-id"));
        f.check(
            &value.to_string(),
            match got {
                Ok(Some(v)) if v == want => Ok(()),
                other => Err(format!("{other:?}, want {want:?}")),
            },
        );
    }
    f.assert();
    nginx.finish();
}

/// Every way a client may send the header itself.
fn spoofs(req: crate::harness::Request) -> Vec<(&'static str, crate::harness::Request)> {
    vec![
        ("canonical", req.clone().header("X-User-Id", "mallory")),
        ("lower case", req.clone().header("x-user-id", "mallory")),
        ("upper case", req.clone().header("X-USER-ID", "mallory")),
        (
            "twice",
            req.clone()
                .header("X-User-Id", "mallory")
                .header("x-user-id", "mallory2"),
        ),
        ("empty", req.clone().header("X-User-Id", "")),
        ("underscore", req.header("X_User_Id", "mallory")),
    ]
}

fn spoof_free(resp: &crate::harness::Response, want: &str) -> Result<(), String> {
    upstream(resp)?;
    match resp.echo("x-user-id") {
        Some(v) if v == want => Ok(()),
        other => Err(format!("upstream saw x-user-id {other:?}, want {want:?}")),
    }
}

#[test]
fn spoofed_header_is_replaced_on_success() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("RS256").encode();
    let mut f = Failures::new();
    for path in ["/", "/inherit/"] {
        for (what, req) in spoofs(nginx.get(path).bearer(&token)) {
            f.check(&format!("{path} {what}"), spoof_free(&req.send(), "alice"));
        }
    }
    f.assert();
    nginx.finish();
}

#[test]
fn spoofed_header_is_removed_when_the_claim_is_missing() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("RS256").remove_claim("sub").encode();
    let mut f = Failures::new();
    for (what, req) in spoofs(nginx.get("/").bearer(&token)) {
        f.check(what, spoof_free(&req.send(), ""));
    }
    let resp = nginx
        .get("/")
        .bearer(&token)
        .header("X-User-Email", "mallory@evil")
        .send();
    f.check(
        "email",
        match resp.echo("x-user-email") {
            Some(v) if v.is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    f.assert();
    nginx.finish();
}

#[test]
fn spoofed_header_is_removed_where_auth_is_off() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for (what, req) in spoofs(nginx.get("/open/")) {
        f.check(what, spoof_free(&req.send(), ""));
    }
    f.assert();
    nginx.finish();
}

#[test]
fn spoofed_header_is_removed_when_another_access_module_lets_the_request_in() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    // satisfy any + allow: the request passes without a (valid) token; the header still goes.
    for (what, req) in spoofs(nginx.get("/any/")) {
        f.check(&format!("no token, {what}"), spoof_free(&req.send(), ""));
    }
    let expired = Jwt::new("RS256").exp_in(-60).encode();
    for (what, req) in spoofs(nginx.get("/any/").bearer(&expired)) {
        f.check(
            &format!("expired token, {what}"),
            spoof_free(&req.send(), ""),
        );
    }
    let valid = Jwt::new("RS256").encode();
    for (what, req) in spoofs(nginx.get("/any/").bearer(&valid)) {
        let resp = req.send();
        let seen = resp.echo("x-user-id").unwrap_or_default();
        f.check(&format!("valid token, {what}"), upstream(&resp));
        f.check(
            &format!("valid token, {what}"),
            if seen.contains("mallory") {
                Err(format!("spoofed value reached the upstream: {seen:?}"))
            } else {
                Ok(())
            },
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn rejected_requests_do_not_reach_the_upstream() {
    let nginx = Nginx::http(CONF).start();
    let resp = nginx.get("/").header("X-User-Id", "mallory").send();
    assert_eq!(resp.status, 401, "{}", resp.summary());
    assert!(!resp.is_from_upstream());
    let bad = Jwt::new("RS256").exp_in(-5).encode();
    let resp = nginx
        .get("/")
        .bearer(&bad)
        .header("X-User-Id", "mallory")
        .send();
    assert_eq!(resp.status, 401, "{}", resp.summary());
    nginx.finish();
}

#[test]
fn control_characters_in_claims_are_refused() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for &(what, value) in CONTROL_VALUES {
        let token = Jwt::new("RS256").claim("sub", json!(value)).encode();
        f.check(
            what,
            nginx.check_rejected("/", "api", &token, "invalid", ""),
        );
        let nested = Jwt::new("RS256")
            .claim("org", json!({"id": value}))
            .encode();
        f.check(
            &format!("{what} nested"),
            nginx.check_rejected("/", "api", &nested, "invalid", ""),
        );
        let in_array = Jwt::new("RS256")
            .claim("roles", json!(["a", value]))
            .encode();
        f.check(
            &format!("{what} in array"),
            nginx.check_rejected("/", "api", &in_array, "invalid", ""),
        );
    }
    // A control character in a claim that feeds no identity header does not matter.
    let unused = Jwt::new("RS256")
        .claim("note", json!("line1\r\nline2"))
        .encode();
    f.check(
        "unused claim",
        nginx.check_accepted("/", &unused).map(|_| ()),
    );
    f.assert();
    nginx.finish();
}

const NUMBERS_CONF: &str = r#"
    auth_jwt_claim_set $jwt_user_id user id;
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;

        location / {
            auth_jwt "api";
            auth_jwt_identity_header X-User-Id sub;
            proxy_set_header X-Var-Sub $jwt_claim_sub;
            proxy_set_header X-Var-User-Id $jwt_user_id;
            proxy_pass {{upstream}};
        }
    }
"#;

/// Numbers reach the upstream as the token wrote them: past 2^64 they used to collapse into
/// one float (`1.8446744073709552e+19`), so two subjects shared one identity.
#[test]
fn numeric_claims_keep_their_json_text() {
    let nginx = Nginx::http(NUMBERS_CONF)
        .echo_header("X-Var-Sub")
        .echo_header("X-Var-User-Id")
        .start();
    let exp = crate::harness::now() + 300;
    let mut f = Failures::new();
    for number in [
        "18446744073709551616",
        "18446744073709551617",
        "-9223372036854775809",
        "1.0",
        "-0",
        "1e+400",
    ] {
        let payload = format!(r#"{{"sub":{number},"user":{{"id":{number}}},"exp":{exp}}}"#);
        let token = Jwt::new("ES256").raw_payload(payload).encode();
        let got = nginx.check_accepted("/", &token).map(|r| {
            ["x-user-id", "x-var-sub", "x-var-user-id"].map(|h| r.echo(h).unwrap_or_default())
        });
        f.check(
            number,
            match got {
                Ok(values) if values.iter().all(|v| v == number) => Ok(()),
                other => Err(format!("{other:?}, want {number:?} in all three")),
            },
        );
    }
    f.assert();
    nginx.finish();
}
