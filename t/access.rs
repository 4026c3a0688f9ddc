//! Tests for auth_jwt: how the module's answer combines with NGINX's other access checks.

use crate::harness::expect::status;
use crate::harness::idp::{Fault, Idp};
use crate::harness::{Failures, Jwt, Nginx};

/// Fail open, with no keys (the IdP answers 503): the other access checks still decide.
const FAIL_OPEN: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_uri @URL@ refresh=1s timeout=1s;
        auth_jwt_trusted_certificate @CA@;
        auth_jwt_fail_mode open;

        location /deny/ {
            satisfy any;
            auth_jwt "api";
            deny all;
            proxy_pass {{upstream}};
        }
        location /allow/ {
            satisfy any;
            auth_jwt "api";
            allow 127.0.0.1;
            deny all;
            proxy_pass {{upstream}};
        }
        location /basic/ {
            satisfy any;
            auth_jwt "api";
            auth_basic "basic";
            auth_basic_user_file {{prefix}}/htpasswd;
            proxy_pass {{upstream}};
        }
        location /all/ {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
    }
"#;

#[test]
fn fail_open_lets_the_other_access_checks_decide() {
    let idp = Idp::start();
    idp.set_fault(Fault::Status(503));
    let conf = FAIL_OPEN
        .replace("@URL@", &idp.jwks_url())
        .replace("@CA@", &idp.ca_file().display().to_string());
    // "user:password", hashed with {PLAIN}: no crypt dependency in the test.
    let nginx = Nginx::http(&conf)
        .file("htpasswd", "user:{PLAIN}password\n")
        .start();
    let token = Jwt::new("RS256").encode();
    let mut f = Failures::new();
    for (path, basic, want) in [
        ("/deny/", false, 403),
        ("/allow/", false, 200),
        ("/basic/", false, 401),
        ("/basic/", true, 200),
        ("/all/", false, 200),
    ] {
        let mut req = nginx.get(path).bearer(&token);
        if basic {
            // base64("user:password")
            req = nginx
                .get(path)
                .header("Authorization", "Basic dXNlcjpwYXNzd29yZA==");
        }
        f.check(&format!("{path} basic={basic}"), status(&req.send(), want));
    }
    f.assert();
    nginx.finish();
}
