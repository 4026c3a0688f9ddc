//! Tests for auth_jwt: challenge attributes for OAuth clients (RFC 6750 scope, RFC 9728 resource_metadata).

use crate::harness::{Jwt, Nginx};

const META: &str = "https://api.example/.well-known/oauth-protected-resource";

const CONF: &str = r#"
    map $jwt_claim_scope $can_write { default 0; "~(^| )orders:write( |$)" 1; }
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        auth_jwt_resource_metadata https://api.example/.well-known/oauth-protected-resource;
        location / {
            auth_jwt "mcp";
            auth_jwt_scope orders:read orders:write;
            auth_jwt_require $can_write error=403;
            proxy_pass {{upstream}};
        }
        location /plain/ {
            auth_jwt "mcp";
            auth_jwt_resource_metadata off.invalid;
            proxy_pass {{upstream}};
        }
    }
"#;

#[test]
fn challenges_carry_scope_and_resource_metadata() {
    let conf = CONF.replace("            auth_jwt_resource_metadata off.invalid;\n", "");
    let nginx = Nginx::http(&conf).start();
    let tail = format!(r#"scope="orders:read orders:write", resource_metadata="{META}""#);

    let resp = nginx.get("/").send();
    assert_eq!(resp.status, 401);
    assert_eq!(resp.challenge(), format!(r#"Bearer realm="mcp", {tail}"#));

    let read_only = Jwt::new("RS256")
        .claim("scope", "orders:read".into())
        .encode();
    let resp = nginx.get("/").bearer(&read_only).send();
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.challenge(),
        format!(r#"Bearer realm="mcp", error="insufficient_scope", {tail}"#)
    );

    let writer = Jwt::new("RS256")
        .claim("scope", "orders:read orders:write".into())
        .encode();
    assert_eq!(nginx.get("/").bearer(&writer).send().status, 200);

    // Inherited from the server: the metadata URL, without the location's scope.
    let resp = nginx.get("/plain/").send();
    assert_eq!(
        resp.challenge(),
        format!(r#"Bearer realm="mcp", resource_metadata="{META}""#)
    );
    nginx.finish();
}

#[test]
fn bad_attributes_fail_nginx_t() {
    let check = Nginx::http(CONF).check();
    check.assert_emerg(
        "auth_jwt_resource_metadata off.invalid",
        &["is not an https:// URL", "auth_jwt_resource_metadata"],
    );
    let bad_scope = CONF.replace("orders:read orders:write;", "\"orders read\";");
    Nginx::http(&bad_scope)
        .check()
        .assert_emerg("\"orders read\"", &["invalid value", "auth_jwt_scope"]);
}
