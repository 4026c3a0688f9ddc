//! Tests for auth_jwt: a panic in the module never crosses into NGINX.

use crate::harness::{Jwt, Nginx};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        location / {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            proxy_pass {{upstream}};
        }
    }
"#;

/// The module under test is built with the `test-panic` feature: the header below makes the
/// access handler panic. The request gets 500, one `[alert]` names the panic, and the same
/// worker goes on serving.
#[test]
fn a_panic_answers_500_logs_alert_and_the_worker_lives() {
    let nginx = Nginx::http(CONF)
        .allow_log("bug: panic caught at the NGINX boundary")
        .start();
    let workers = nginx.worker_pids();
    let token = Jwt::new("RS256").encode();
    let mark = nginx.log_mark();

    let resp = nginx
        .get("/")
        .bearer(&token)
        .header("X-Auth-Jwt-Test-Panic", "1")
        .send();
    assert_eq!(resp.status, 500, "{resp:?}");
    let alert = nginx.assert_log(mark, "[alert]*bug: panic caught at the NGINX boundary*");
    assert!(alert.contains("test-panic trigger"), "{alert}");
    assert!(alert.contains("src/handler.rs"), "{alert}");

    for _ in 0..3 {
        let resp = nginx.get("/").bearer(&token).send();
        assert_eq!(resp.status, 200, "{resp:?}");
    }
    assert_eq!(
        nginx.worker_pids(),
        workers,
        "the worker must survive the panic"
    );
    nginx.finish();
}
