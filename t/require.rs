//! Tests for auth_jwt: auth_jwt_require with maps and claim variables, error=401|403.

use serde_json::json;

use crate::harness::expect::{insufficient_scope, invalid, missing, status};
use crate::harness::{Failures, Jwt, Nginx};

const CONF: &str = r#"
    auth_jwt_claim_set $jwt_tenant org id;
    map $jwt_claim_role $is_admin {
        admin 1;
        default 0;
    }
    map $jwt_claim_scope $can_read {
        "~(^| )read( |$)" 1;
        default "";
    }
    map $jwt_tenant $tenant_ok {
        acme 1;
        default 0;
    }

    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        auth_jwt "api";

        location /admin/ {
            auth_jwt_require $is_admin;
            proxy_pass {{upstream}};
        }
        location /admin403/ {
            auth_jwt_require $is_admin error=403;
            proxy_pass {{upstream}};
        }
        location /admin401/ {
            auth_jwt_require $is_admin error=401;
            proxy_pass {{upstream}};
        }
        location /both/ {
            auth_jwt_require $is_admin $can_read error=403;
            proxy_pass {{upstream}};
        }
        location /tenant/ {
            auth_jwt_require $tenant_ok error=403;
            proxy_pass {{upstream}};
        }
        location /flag/ {
            auth_jwt_require $jwt_claim_flag;
            proxy_pass {{upstream}};
        }
    }

    server {
        listen 127.0.0.1:{{port2}};
        auth_jwt_key_file {{keys}}/jwks.json;
        auth_jwt "api";
        auth_jwt_require $is_admin error=403;

        location / {
            proxy_pass {{upstream}};
        }
        location /reader/ {
            auth_jwt_require $can_read error=403;
            proxy_pass {{upstream}};
        }
        location /open/ {
            auth_jwt off;
            proxy_pass {{upstream}};
        }
    }
"#;

fn role(role: &str) -> String {
    Jwt::new("RS256").claim("role", json!(role)).encode()
}

#[test]
fn requirement_from_a_map() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    f.check("admin", nginx.check_accepted("/admin/", &role("admin")));
    for path in ["/admin/", "/admin401/"] {
        let mark = nginx.log_mark();
        let resp = nginx.get(path).bearer(&role("user")).send();
        f.check(
            path,
            if resp.status == 401 && resp.challenge().starts_with("Bearer realm=\"api\"") {
                Ok(())
            } else {
                Err(format!("expected 401, got {}", resp.summary()))
            },
        );
        f.check(path, nginx.denial_line(mark, "forbidden", ""));
    }
    let token = Jwt::new("RS256").encode();
    let resp = nginx.get("/admin/").bearer(&token).send();
    f.check("no role claim", status(&resp, 401));
    f.assert();
    nginx.finish();
}

#[test]
fn error_403_is_insufficient_scope() {
    let nginx = Nginx::http(CONF).start();
    let mark = nginx.log_mark();
    let resp = nginx.get("/admin403/").bearer(&role("user")).send();
    insufficient_scope(&resp, "api").unwrap();
    nginx.denial_line(mark, "forbidden", "").unwrap();
    nginx.check_accepted("/admin403/", &role("admin")).unwrap();
    nginx.finish();
}

#[test]
fn every_value_must_hold() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    let token = |role: &str, scope: &str| {
        Jwt::new("ES256")
            .claims(json!({"role": role, "scope": scope}))
            .encode()
    };
    f.check(
        "admin+read",
        nginx.check_accepted("/both/", &token("admin", "write read")),
    );
    for (what, t) in [
        ("admin only", token("admin", "write")),
        ("read only", token("user", "read")),
        ("neither", token("x", "y")),
    ] {
        let resp = nginx.get("/both/").bearer(&t).send();
        f.check(what, insufficient_scope(&resp, "api"));
    }
    f.assert();
    nginx.finish();
}

#[test]
fn nested_claim_through_claim_set() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    let org = |id: serde_json::Value| {
        Jwt::new("EdDSA")
            .claim("org", json!({"id": id, "name": "x"}))
            .encode()
    };
    f.check(
        "acme",
        nginx.check_accepted("/tenant/", &org(json!("acme"))),
    );
    for (what, t) in [
        ("other", org(json!("evil"))),
        (
            "flat",
            Jwt::new("EdDSA").claim("org", json!("acme")).encode(),
        ),
        (
            "dotted name",
            Jwt::new("EdDSA").claim("org.id", json!("acme")).encode(),
        ),
        ("missing", Jwt::new("EdDSA").encode()),
    ] {
        f.check(
            what,
            insufficient_scope(&nginx.get("/tenant/").bearer(&t).send(), "api"),
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn empty_and_zero_fail() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    let flag = |v: serde_json::Value| Jwt::new("HS256").claim("flag", v).encode();
    for (what, t) in [
        ("1", flag(json!("1"))),
        ("yes", flag(json!("yes"))),
        ("00", flag(json!("00"))),
        ("number 2", flag(json!(2))),
    ] {
        f.check(what, nginx.check_accepted("/flag/", &t));
    }
    for (what, t) in [
        ("\"0\"", flag(json!("0"))),
        ("number 0", flag(json!(0))),
        ("empty", flag(json!(""))),
        ("missing", Jwt::new("HS256").encode()),
    ] {
        let mark = nginx.log_mark();
        let resp = nginx.get("/flag/").bearer(&t).send();
        f.check(
            what,
            if resp.status == 401 {
                Ok(())
            } else {
                Err(resp.summary())
            },
        );
        f.check(what, nginx.denial_line(mark, "forbidden", ""));
    }
    f.assert();
    nginx.finish();
}

#[test]
fn token_checks_come_before_requirements() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    let expired = Jwt::new("RS256")
        .claim("role", json!("user"))
        .exp_in(-60)
        .encode();
    f.check(
        "expired",
        nginx.check_rejected("/admin403/", "api", &expired, "expired", "token expired at"),
    );
    let forged = Jwt::new("RS256")
        .claim("role", json!("admin"))
        .rsa_key(&crate::harness::keys().rsa_other)
        .kid("rsa-1")
        .encode();
    f.check(
        "forged admin",
        nginx.check_rejected(
            "/admin403/",
            "api",
            &forged,
            "invalid",
            "signature verification failed",
        ),
    );
    f.check("missing", missing(&nginx.get("/admin403/").send(), "api"));
    let resp = nginx.get("/admin403/").bearer("not.a.token").send();
    f.check("garbage", invalid(&resp, "api"));
    f.assert();
    nginx.finish();
}

#[test]
fn requirements_inherit_and_override() {
    let nginx = Nginx::http(CONF).start();
    let port2 = nginx.extra_port(2);
    let get = |path: &str, t: &str| {
        crate::harness::Request::new(port2, "GET", path)
            .bearer(t)
            .send()
    };
    let mut f = Failures::new();
    f.check(
        "inherited, admin",
        crate::harness::expect::upstream(&get("/", &role("admin"))),
    );
    f.check(
        "inherited, user",
        insufficient_scope(&get("/", &role("user")), "api"),
    );
    let reader = Jwt::new("RS256")
        .claims(json!({"role": "user", "scope": "read"}))
        .encode();
    f.check(
        "override, reader",
        crate::harness::expect::upstream(&get("/reader/", &reader)),
    );
    f.check(
        "override, admin without read",
        insufficient_scope(&get("/reader/", &role("admin")), "api"),
    );
    let open = crate::harness::Request::new(port2, "GET", "/open/").send();
    f.check("auth off", crate::harness::expect::upstream(&open));
    f.assert();
    nginx.finish();
}
