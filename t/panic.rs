//! Tests for auth_jwt: a panic in the module never crosses into NGINX.

use crate::harness::prefix::skip_with_installed_module;
use crate::harness::{Jwt, Nginx};

/// Why these tests cannot run against an installed module.
const NO_TEST_PANIC: &str = "a release build without the `test-panic` feature they trigger";

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
    if skip_with_installed_module(
        "a_panic_answers_500_logs_alert_and_the_worker_lives",
        NO_TEST_PANIC,
    ) {
        return;
    }
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

/// Every function NGINX calls into the module runs behind one boundary. The test-panic build
/// makes the boundary named by `AUTH_JWT_TEST_PANIC` panic: at configuration time `nginx -t`
/// fails with the `[alert]` and no crash.
#[test]
fn a_panic_while_loading_the_configuration_fails_nginx_t_cleanly() {
    if skip_with_installed_module(
        "a_panic_while_loading_the_configuration_fails_nginx_t_cleanly",
        NO_TEST_PANIC,
    ) {
        return;
    }
    for site in [
        "preconfiguration",
        "postconfiguration",
        "directive",
        "merge_srv_conf",
        "merge_loc_conf",
        "init_zone",
    ] {
        let conf = CONF.replace(
            "auth_jwt \"api\";",
            "auth_jwt \"api\";\n            auth_jwt_leeway 5s;\n            auth_jwt_issuer https://i;",
        );
        let check = Nginx::http(&conf).env("AUTH_JWT_TEST_PANIC", site).check();
        assert!(!check.ok, "{site}: nginx -t passed:\n{}", check.stderr);
        assert!(
            check
                .stderr
                .contains(&format!("test-panic trigger at {site}")),
            "{site}:\n{}",
            check.stderr
        );
        assert!(
            !check.stderr.contains("signal"),
            "{site}:\n{}",
            check.stderr
        );
    }
}

/// In a worker: the request-time boundaries answer 500 or skip the value, the worker lives.
#[test]
fn a_panic_in_a_request_time_boundary_keeps_the_worker() {
    if skip_with_installed_module(
        "a_panic_in_a_request_time_boundary_keeps_the_worker",
        NO_TEST_PANIC,
    ) {
        return;
    }
    let conf = CONF.replace(
        "proxy_pass {{upstream}};",
        "auth_jwt_identity_header X-User-Id sub;\n            proxy_set_header X-Jwt-Sub $jwt_claim_sub;\n            proxy_pass {{upstream}};",
    );
    for (site, want) in [("strip", 500), ("access", 500), ("variable", 200)] {
        let nginx = Nginx::http(&conf)
            .env("AUTH_JWT_TEST_PANIC", site)
            .allow_log("bug: panic caught at the NGINX boundary")
            .start();
        let workers = nginx.worker_pids();
        let token = Jwt::new("RS256").encode();
        for _ in 0..3 {
            let resp = nginx.get("/").bearer(&token).send();
            assert_eq!(resp.status, want, "{site}: {}", resp.summary());
            if site == "variable" {
                assert_eq!(resp.echo("x-jwt-sub").as_deref(), Some(""), "{site}");
            }
        }
        nginx.assert_log(0, &format!("[alert]*test-panic trigger at {site}*"));
        assert_eq!(nginx.worker_pids(), workers, "{site}: the worker must live");
        nginx.finish();
    }
}

/// The worker's own hooks: a panic in `init_process` leaves a serving worker (without remote
/// keys), one in the fetcher's log timer or in `exit_process` is logged and nothing crashes.
#[test]
fn a_panic_in_a_worker_hook_is_contained() {
    if skip_with_installed_module("a_panic_in_a_worker_hook_is_contained", NO_TEST_PANIC) {
        return;
    }
    let idp = crate::harness::idp::Idp::start();
    let conf = CONF.replace(
        "auth_jwt_key_file {{keys}}/jwks.json;",
        &format!(
            "auth_jwt_key_file {{{{keys}}}}/jwks.json;\n            auth_jwt_key_uri {} refresh=1s;\n            auth_jwt_trusted_certificate {};",
            idp.jwks_url(),
            idp.ca_file().display()
        ),
    );
    let token = Jwt::new("RS256").encode();
    for site in ["init_process", "log_timer", "exit_process"] {
        let mut nginx = Nginx::http(&conf)
            .env("AUTH_JWT_TEST_PANIC", site)
            .allow_log("bug: panic caught at the NGINX boundary")
            .start();
        let workers = nginx.worker_pids();
        let resp = nginx.get("/").bearer(&token).send();
        assert_eq!(resp.status, 200, "{site}: {}", resp.summary());
        if site != "exit_process" {
            let line = nginx
                .wait_log(0, &format!("[alert]*test-panic trigger at {site}*"))
                .unwrap_or_else(|e| panic!("{site}: {e}"));
            assert!(line.contains("bug: panic caught"), "{line}");
            assert_eq!(nginx.worker_pids(), workers, "{site}: the worker must live");
        }
        nginx.stop();
        let log = nginx.error_log();
        assert!(
            log.contains(&format!("test-panic trigger at {site}")),
            "{site}:\n{log}"
        );
        assert!(!log.contains("exited on signal"), "{site}:\n{log}");
        nginx.finish();
    }
}
