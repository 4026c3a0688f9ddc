//! Tests for auth_jwt: where the token comes from, and the challenge when there is none.

use crate::harness::expect::{invalid, missing, not_5xx, upstream};
use crate::harness::{Failures, Jwt, Nginx};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;

        location / {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
        location /arg/ {
            auth_jwt "api" token=$arg_access_token;
            proxy_pass {{upstream}};
        }
        location /cookie/ {
            auth_jwt "api" token=$cookie_jwt;
            proxy_pass {{upstream}};
        }
        location /header/ {
            auth_jwt "api" token=$http_x_token;
            proxy_pass {{upstream}};
        }
        location /spaced/ {
            auth_jwt "my protected api";
            proxy_pass {{upstream}};
        }
        location /static/ {
            auth_jwt "api";
            alias {{prefix}}/html/;
        }
    }
"#;

#[test]
fn no_token_gets_a_bare_bearer_challenge() {
    let nginx = Nginx::http(CONF).start();
    let mark = nginx.log_mark();
    let resp = nginx.get("/").send();
    missing(&resp, "api").unwrap();
    let line = nginx
        .denial_line(mark, "missing", "no bearer token")
        .unwrap();
    assert!(line.contains("kid=\"-\", alg=\"-\""), "{line}");
    nginx.finish();
}

#[test]
fn other_schemes_and_empty_bearer_are_refused() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("RS256").encode();
    let mut f = Failures::new();
    for value in [
        "Basic dXNlcjpwYXNz",
        "Digest username=\"a\"",
        "Token abc",
        &format!("JWT {token}"),
    ] {
        let resp = nginx.get("/").header("Authorization", value).send();
        f.check(value, missing(&resp, "api"));
    }
    // An empty bearer token is either "missing" or "invalid", never let through.
    for value in ["Bearer", "Bearer ", "bearer    "] {
        let resp = nginx.get("/").header("Authorization", value).send();
        let ok = missing(&resp, "api").or_else(|_| invalid(&resp, "api"));
        f.check(value, ok);
    }
    f.assert();
    nginx.finish();
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("ES256").encode();
    let mut f = Failures::new();
    for scheme in ["Bearer", "bearer", "BEARER", "BeArEr"] {
        let resp = nginx
            .get("/")
            .header("Authorization", &format!("{scheme} {token}"))
            .send();
        f.check(scheme, upstream(&resp));
    }
    f.assert();
    nginx.finish();
}

#[test]
fn token_from_a_variable() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("RS256").encode();
    let mut f = Failures::new();
    f.check(
        "query",
        nginx.accepts(nginx.get(&format!("/arg/?access_token={token}"))),
    );
    f.check(
        "cookie",
        nginx.accepts(
            nginx
                .get("/cookie/")
                .header("Cookie", &format!("a=b; jwt={token}; c=d")),
        ),
    );
    f.check(
        "header",
        nginx.accepts(nginx.get("/header/").header("X-Token", &token)),
    );
    // With token=, the Authorization header is not where the token is looked for.
    for path in ["/arg/", "/cookie/", "/header/"] {
        let resp = nginx.get(path).bearer(&token).send();
        f.check(path, missing(&resp, "api"));
    }
    let bad = Jwt::new("RS256").exp_in(-100).encode();
    let resp = nginx.get(&format!("/arg/?access_token={bad}")).send();
    f.check("expired in query", invalid(&resp, "api"));
    f.assert();
    nginx.finish();
}

#[test]
fn realm_is_quoted_as_configured() {
    let nginx = Nginx::http(CONF).start();
    missing(&nginx.get("/spaced/").send(), "my protected api").unwrap();
    let resp = nginx.get("/spaced/").bearer("a.b.c").send();
    invalid(&resp, "my protected api").unwrap();
    nginx.finish();
}

#[test]
fn static_content_is_protected() {
    let nginx = Nginx::http(CONF).start();
    missing(&nginx.get("/static/index.html").send(), "api").unwrap();
    let resp = nginx
        .get("/static/index.html")
        .bearer(&Jwt::new("EdDSA").encode())
        .send();
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "index\n"),
        "{}",
        resp.summary()
    );
    nginx.finish();
}

#[test]
fn accepted_requests_reach_the_upstream_unchanged() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("PS256").encode();
    let resp = nginx
        .request("POST", "/path?x=1")
        .bearer(&token)
        .body("hello")
        .send();
    upstream(&resp).unwrap();
    assert_eq!(resp.echo("method").as_deref(), Some("POST"));
    assert_eq!(resp.echo("uri").as_deref(), Some("/path?x=1"));
    assert_eq!(resp.echo("authorization"), Some(format!("Bearer {token}")));
    let head = nginx.request("HEAD", "/").bearer(&token).send();
    assert_eq!(head.status, 200);
    nginx.finish();
}

#[test]
fn duplicate_authorization_headers_never_pass() {
    let nginx = Nginx::http(CONF).start();
    let good = Jwt::new("RS256").encode();
    let resp = nginx
        .get("/")
        .bearer(&good)
        .header("Authorization", "Bearer x.y.z")
        .send();
    not_5xx(&resp).unwrap();
    assert_ne!(resp.status, 200, "{}", resp.summary());
    let resp = nginx
        .get("/")
        .header("Authorization", "Bearer x.y.z")
        .bearer(&good)
        .send();
    not_5xx(&resp).unwrap();
    assert_ne!(resp.status, 200, "{}", resp.summary());
    nginx.finish();
}
