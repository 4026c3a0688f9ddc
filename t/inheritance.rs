//! Tests for auth_jwt: http → server → location inheritance, `auth_jwt off`, limit_except.

use crate::harness::expect::{invalid, missing, upstream};
use crate::harness::{Failures, Jwt, Nginx, Request};

const CONF: &str = r#"
    auth_jwt "top";
    auth_jwt_key_file {{keys}}/jwks.json;

    server {
        listen 127.0.0.1:{{port}};

        location / {
            proxy_pass {{upstream}};
        }
        location /off/ {
            auth_jwt off;
            proxy_pass {{upstream}};
        }
        location /realm/ {
            auth_jwt "inner";
            proxy_pass {{upstream}};
        }
        location /api/ {
            auth_jwt "api";
            proxy_pass {{upstream}};

            location /api/public/ {
                auth_jwt off;
                proxy_pass {{upstream}};
            }
            location /api/deep/ {
                proxy_pass {{upstream}};
            }
        }
        location /write/ {
            auth_jwt off;
            limit_except GET HEAD {
                auth_jwt "write";
                proxy_pass {{upstream}};
            }
            proxy_pass {{upstream}};
        }
        location /guarded-write/ {
            auth_jwt "read";
            limit_except GET {
                auth_jwt "write";
                proxy_pass {{upstream}};
            }
            proxy_pass {{upstream}};
        }
    }

    server {
        listen 127.0.0.1:{{port2}};
        auth_jwt off;
        auth_jwt_algorithms ES256;

        location / {
            proxy_pass {{upstream}};
        }
        location /on/ {
            auth_jwt "two";
            proxy_pass {{upstream}};
        }
        location /rs/ {
            auth_jwt "two";
            auth_jwt_algorithms RS256;
            proxy_pass {{upstream}};
        }
    }

    server {
        listen 127.0.0.1:{{port3}};
        auth_jwt "three";
        auth_jwt_leeway 120s;

        location / {
            proxy_pass {{upstream}};
        }
        location /strict/ {
            auth_jwt_leeway 0s;
            proxy_pass {{upstream}};
        }
    }
"#;

#[test]
fn http_level_auth_applies_to_servers_and_locations() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("RS256").encode();
    let mut f = Failures::new();
    f.check("/ no token", missing(&nginx.get("/").send(), "top"));
    f.check("/ token", nginx.check_accepted("/", &token).map(|_| ()));
    f.check("/off/", upstream(&nginx.get("/off/").send()));
    f.check("/realm/", missing(&nginx.get("/realm/").send(), "inner"));
    f.check(
        "/realm/ bad token",
        invalid(&nginx.get("/realm/").bearer("a.b.c").send(), "inner"),
    );
    f.check(
        "/realm/ token",
        nginx.check_accepted("/realm/", &token).map(|_| ()),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn nested_locations_inherit_and_switch_off() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("ES256").encode();
    let mut f = Failures::new();
    f.check("/api/x", missing(&nginx.get("/api/x").send(), "api"));
    f.check(
        "/api/public/x",
        upstream(&nginx.get("/api/public/x").send()),
    );
    f.check(
        "/api/deep/x",
        missing(&nginx.get("/api/deep/x").send(), "api"),
    );
    f.check(
        "/api/deep/x token",
        nginx.check_accepted("/api/deep/x", &token).map(|_| ()),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn limit_except_protects_other_methods() {
    let nginx = Nginx::http(CONF).start();
    let token = Jwt::new("EdDSA").encode();
    let mut f = Failures::new();
    f.check("GET open", upstream(&nginx.get("/write/").send()));
    f.check(
        "HEAD open",
        if nginx.request("HEAD", "/write/").send().status == 200 {
            Ok(())
        } else {
            Err("HEAD".into())
        },
    );
    f.check(
        "POST no token",
        missing(&nginx.request("POST", "/write/").body("x").send(), "write"),
    );
    f.check(
        "DELETE no token",
        missing(&nginx.request("DELETE", "/write/").send(), "write"),
    );
    f.check(
        "POST bad token",
        invalid(
            &nginx
                .request("POST", "/write/")
                .bearer("x.y.z")
                .body("x")
                .send(),
            "write",
        ),
    );
    f.check(
        "POST token",
        nginx
            .accepts(nginx.request("POST", "/write/").bearer(&token).body("x"))
            .map(|_| ()),
    );
    f.check(
        "guarded GET no token",
        missing(&nginx.get("/guarded-write/").send(), "read"),
    );
    f.check(
        "guarded GET token",
        nginx.check_accepted("/guarded-write/", &token).map(|_| ()),
    );
    f.check(
        "guarded PUT no token",
        missing(
            &nginx.request("PUT", "/guarded-write/").body("x").send(),
            "write",
        ),
    );
    f.check(
        "guarded PUT token",
        nginx
            .accepts(
                nginx
                    .request("PUT", "/guarded-write/")
                    .bearer(&token)
                    .body("x"),
            )
            .map(|_| ()),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn server_level_settings_inherit_and_override() {
    let nginx = Nginx::http(CONF).start();
    let port2 = nginx.extra_port(2);
    let get = |path: &str| Request::new(port2, "GET", path);
    let mut f = Failures::new();
    f.check("server off", upstream(&get("/").send()));
    f.check("location on", missing(&get("/on/").send(), "two"));
    f.check(
        "ES256 allowed",
        upstream(&get("/on/").bearer(&Jwt::new("ES256").encode()).send()),
    );
    let rs = Jwt::new("RS256").encode();
    let mark = nginx.log_mark();
    f.check(
        "RS256 not allowed",
        invalid(&get("/on/").bearer(&rs).send(), "two"),
    );
    f.check(
        "RS256 not allowed log",
        nginx.denial_line(mark, "invalid", "algorithm RS256 is not allowed"),
    );
    f.check(
        "override allows RS256",
        upstream(&get("/rs/").bearer(&rs).send()),
    );
    f.check(
        "override forbids ES256",
        invalid(
            &get("/rs/").bearer(&Jwt::new("ES256").encode()).send(),
            "two",
        ),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn leeway_inherits_and_overrides() {
    let nginx = Nginx::http(CONF).start();
    let port3 = nginx.extra_port(3);
    let get = |path: &str, t: &str| Request::new(port3, "GET", path).bearer(t).send();
    let late = Jwt::new("RS256").exp_in(-60).encode();
    let mut f = Failures::new();
    f.check("server leeway", upstream(&get("/", &late)));
    f.check("location 0s", invalid(&get("/strict/", &late), "three"));
    f.assert();
    nginx.finish();
}
