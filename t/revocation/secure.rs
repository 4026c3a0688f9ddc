//! Redis over TLS with an ACL user, two nodes of two workers: the password and CA only the master can read, the
//! password never shown; an untrusted certificate or a wrong password refused and logged once.

use std::fs;
use std::time::Duration;

use super::{token, until_status, wait_log};
use crate::harness::mint::now;
use crate::harness::redis::{Redis, Secure};
use crate::harness::unprivileged::{can_drop_privileges, group_of, uid_of, RootOnlyDir};
use crate::harness::{certs, Nginx};

const PASSWORD: &str = "s3cret-redis-pw";

fn secure_redis() -> Option<Redis> {
    Redis::start_with(Secure {
        tls: true,
        user: Some(("auth-jwt".into(), PASSWORD.into())),
    })
}

/// `user nobody` workers; `{redis}` is the directive's arguments.
fn template(redis: &str) -> String {
    format!(
        r#"
user nobody {group};
events {{
    worker_connections 64;
}}
http {{
{{{{echo_server}}}}
    auth_jwt_revocation_redis {redis};
    server {{
        listen 127.0.0.1:{{{{port}}}};
        auth_jwt_key_file {{{{keys}}}}/jwks.json;
        location / {{
            auth_jwt "api";
            proxy_pass {{{{upstream}}}};
        }}
        location = /status {{
            auth_jwt_status;
        }}
        location = /metrics {{
            auth_jwt_metrics;
        }}
    }}
}}
"#,
        group = group_of("nobody"),
    )
}

#[test]
fn rediss_with_an_acl_user_whose_password_and_ca_only_the_master_can_read() {
    if !can_drop_privileges() {
        return;
    }
    let Some(redis) = secure_redis() else {
        return;
    };
    let dir = RootOnlyDir::new("ngx-auth-jwt-root-only-redis");
    let pass = dir.0.join("redis.pass");
    let ca = dir.0.join("redis-ca.pem");
    fs::write(&pass, format!("{PASSWORD}\n")).expect("password file");
    fs::write(&ca, redis.ca_pem.as_deref().expect("TLS")).expect("ca");
    let args = format!(
        "rediss://auth-jwt@127.0.0.1:{} password_file={} trusted_certificate={} timeout=1s",
        redis.port,
        pass.display(),
        ca.display()
    );
    // Two nodes of two workers each, one Redis.
    let nodes = [
        Nginx::main(&template(&args)).workers(2).start(),
        Nginx::main(&template(&args)).workers(2).start(),
    ];
    for pid in nodes.iter().flat_map(Nginx::worker_pids) {
        assert_ne!(uid_of(pid), "0", "a worker runs as root");
    }
    let t0 = now();
    let stolen = token("stolen-over-tls", "bob", t0);
    for node in &nodes {
        until_status(node, &stolen, 200);
    }
    redis.xadd(&["jti", "stolen-over-tls", "exp", &(t0 + 600).to_string()]);
    for node in &nodes {
        let took = until_status(node, &stolen, 401);
        eprintln!("revoked over TLS with an ACL user in {took:?}");
        // Every worker refuses it (fresh connections land on either worker).
        for _ in 0..20 {
            let resp = node.get("/").bearer(&stolen).send();
            assert_eq!(resp.status, 401, "{resp:?}");
        }
    }
    let [nginx, other] = nodes;
    other.finish();
    let status = nginx.get("/status").send();
    assert_eq!(status.status, 200);
    let page: serde_json::Value = serde_json::from_str(&status.text()).expect("status JSON");
    let rev = &page["revocations"];
    assert_eq!(rev["redis"]["connection"], "connected", "{rev}");
    assert_eq!(
        rev["redis"]["url"],
        format!("rediss://auth-jwt@127.0.0.1:{}/0", redis.port),
        "{rev}"
    );
    assert_eq!(rev["entries"]["jti"], 1, "{rev}");
    // The default 16m zone: README's 229,376 revocations.
    assert_eq!(rev["capacity"], 229_376, "{rev}");
    let metrics = nginx.get("/metrics").send().text();
    assert!(
        metrics.contains("nginx_auth_jwt_revocation_connected 1"),
        "{metrics}"
    );
    for (what, text) in [
        ("status page", status.text().as_str()),
        ("metrics", metrics.as_str()),
        ("error log", nginx.error_log().as_str()),
    ] {
        assert!(!text.contains(PASSWORD), "the password is in the {what}");
    }
    nginx.finish();
}

#[test]
fn an_untrusted_certificate_or_a_wrong_password_is_refused_logged_once_and_never_shown() {
    let Some(redis) = secure_redis() else {
        return;
    };
    let wrong_password = "not-the-redis-pw";
    let cases = [
        (
            "untrusted certificate",
            format!(
                "rediss://auth-jwt:{PASSWORD}@127.0.0.1:{} trusted_certificate={{{{prefix}}}}/other-ca.pem timeout=1s",
                redis.port
            ),
            "certificate verify failed",
        ),
        (
            "wrong password",
            format!(
                "rediss://auth-jwt@127.0.0.1:{} password_file={{{{prefix}}}}/redis.pass trusted_certificate={{{{prefix}}}}/ca.pem timeout=1s",
                redis.port
            ),
            "Password authentication failed",
        ),
    ];
    for (case, args, reason) in cases {
        let conf = format!(
            r#"
    auth_jwt_revocation_redis {args};
    server {{
        listen 127.0.0.1:{{{{port}}}};
        auth_jwt_key_file {{{{keys}}}}/jwks.json;
        location / {{
            auth_jwt "api";
            proxy_pass {{{{upstream}}}};
        }}
    }}
"#
        );
        let nginx = Nginx::http(&conf)
            .file("other-ca.pem", certs::unrelated_ca_pem())
            .file("ca.pem", redis.ca_pem.as_deref().expect("TLS"))
            .file("redis.pass", wrong_password)
            .allow_log("revocation sync with")
            .start();
        let log = wait_log(&nginx, "revocation sync with");
        let failures: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("revocation sync with") && l.contains("failed"))
            .collect();
        assert!(!failures.is_empty(), "{case}: no failure logged: {log}");
        assert!(
            failures[0].contains(reason),
            "{case}: the reason is not {reason:?}: {}",
            failures[0]
        );
        assert!(failures[0].contains("[warn]"), "{case}: {}", failures[0]);
        // Retries back off (1 s, 2 s, ...): in 3.5 s at least two more attempts, one line.
        std::thread::sleep(Duration::from_millis(3500));
        let log = nginx.error_log();
        let lines = log
            .lines()
            .filter(|l| l.contains("revocation sync with") && l.contains("failed"))
            .count();
        assert_eq!(lines, 1, "{case}: logged more than once per state: {log}");
        for secret in [PASSWORD, wrong_password] {
            assert!(!log.contains(secret), "{case}: a password is in the log");
        }
        // The last set (empty) holds: tokens are served.
        let fine = token("fine", "bob", now());
        assert_eq!(nginx.get("/").bearer(&fine).send().status, 200, "{case}");
        nginx.finish();
    }
}
