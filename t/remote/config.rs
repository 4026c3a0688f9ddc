//! Tests for auth_jwt: remote key directives at load (nginx -t) and files read by the master.

use super::*;
use crate::harness::unprivileged::{can_drop_privileges, group_of, uid_of, RootOnlyDir};

#[test]
fn remote_key_config_errors_name_file_and_line() {
    let idp = Idp::start();
    let url = idp.jwks_url();
    let location = |directives: &str| {
        format!(
            r#"
    server {{
        listen 127.0.0.1:{{{{port}}}};
        location / {{
            auth_jwt "api";
            {directives}
            proxy_pass {{{{upstream}}}};
        }}
    }}
"#
        )
    };
    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        (
            "auth_jwt_key_uri http://127.0.0.1/jwks.json;".into(),
            "auth_jwt_key_uri",
            vec!["\"http://127.0.0.1/jwks.json\" is not an https:// URL"],
        ),
        (
            "auth_jwt_discovery http://idp.example/realms/a;".into(),
            "auth_jwt_discovery",
            vec!["is not an https:// URL"],
        ),
        (
            format!("auth_jwt_key_uri {url} refresh=500ms;"),
            "auth_jwt_key_uri",
            vec!["refresh must be at least 1s"],
        ),
        (
            format!("auth_jwt_key_uri {url} timeout=50ms;"),
            "auth_jwt_key_uri",
            vec!["timeout at least 100ms"],
        ),
        (
            format!("auth_jwt_key_uri {url} refresh=soon;"),
            "auth_jwt_key_uri",
            vec!["refresh=soon"],
        ),
        (
            format!("auth_jwt_key_uri {url} retries=3;"),
            "auth_jwt_key_uri",
            vec!["retries=3"],
        ),
        (
            // Two spaces: `at` finds the second line.
            format!("auth_jwt_key_uri {url};\n            auth_jwt_key_uri  {url};"),
            "auth_jwt_key_uri  ",
            vec!["is duplicate"],
        ),
        (
            format!("auth_jwt_key_uri {url};\n            auth_jwt_fail_mode sometimes;"),
            "auth_jwt_fail_mode",
            vec!["sometimes"],
        ),
        (
            format!("auth_jwt_key_uri {url};\n            auth_jwt_trusted_certificate {{{{prefix}}}}/none.pem;"),
            "auth_jwt_trusted_certificate",
            vec!["none.pem"],
        ),
        (
            format!("auth_jwt_key_uri {url};\n            auth_jwt_trusted_certificate {{{{prefix}}}}/conf/nginx.conf;"),
            "auth_jwt_trusted_certificate",
            vec!["conf/nginx.conf", "no certificates"],
        ),
    ];
    let mut f = Failures::new();
    for (directives, at, parts) in &cases {
        let check = Nginx::http(&location(directives)).check();
        f.check(directives, check.emerg(at, parts).map(|_| ()));
    }
    // One URL, two parameter sets: the node can fetch it only one way.
    let two = format!(
        r#"
    server {{
        listen 127.0.0.1:{{{{port}}}};
        location /a {{
            auth_jwt "api";
            auth_jwt_key_uri {url} refresh=1m;
            proxy_pass {{{{upstream}}}};
        }}
        location /b {{
            auth_jwt "api";
            auth_jwt_key_uri {url} refresh=2m;
            proxy_pass {{{{upstream}}}};
        }}
    }}
"#
    );
    let check = Nginx::http(&two).check();
    f.check(
        "same URL, other parameters",
        check
            .emerg(
                "refresh=2m",
                &["is already configured with other parameters"],
            )
            .map(|_| ()),
    );
    let small = format!(
        "auth_jwt_zone 100k;\n{}",
        location(&format!("auth_jwt_key_uri {url};"))
    );
    let check = Nginx::http(&small).check();
    f.check(
        "zone too small",
        check.emerg("auth_jwt_zone", &["512k"]).map(|_| ()),
    );
    // The bundle is read and parsed by `nginx -t` (the master), never first by a worker.
    let broken_pem = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    let key_only = &keys().rsa.private_pem;
    let bad_files: [(&str, &str, &[&str]); 3] = [
        ("conf", "", &["conf\": ", "directory"]),
        ("broken.pem", broken_pem, &["broken.pem"]),
        ("key.pem", key_only, &["key.pem\": no certificates"]),
    ];
    for (name, content, parts) in bad_files {
        let template = format!(
            "auth_jwt_trusted_certificate {{{{prefix}}}}/{name};\n{}",
            location(&format!("auth_jwt_key_uri {url};"))
        );
        let mut builder = Nginx::http(&template);
        if !content.is_empty() {
            builder = builder.file(name, content);
        }
        let check = builder.check();
        f.check(
            &format!("trusted certificate {name}"),
            check
                .emerg("auth_jwt_trusted_certificate", parts)
                .map(|_| ()),
        );
    }
    // A valid configuration passes, and `nginx -t` does not touch the network.
    let good = format!(
        "auth_jwt_trusted_certificate {};\n{}",
        idp.ca_file().display(),
        location(&format!(
            "auth_jwt_key_uri {url} refresh=1s timeout=100ms max_stale=1s;"
        ))
    );
    Nginx::http(&good).check().assert_ok();
    f.assert();
    assert_eq!(idp.jwks_count(), 0, "nginx -t fetched the keys");
}

#[test]
fn a_trusted_certificate_only_the_master_can_read_still_serves_the_workers() {
    if !can_drop_privileges() {
        return;
    }
    let idp = Idp::start();
    let url = idp.jwks_url();
    // The CA bundle sits where only root can read it, as /etc/ssl/private would be.
    let dir = RootOnlyDir::new("ngx-auth-jwt-root-only-ca");
    let ca = dir.0.join("ca.pem");
    fs::write(&ca, idp.ca_pem()).expect("write ca.pem");
    let template = format!(
        r#"
user nobody {group};
events {{
    worker_connections 64;
}}
http {{
{{{{echo_server}}}}
    auth_jwt_zone 1m;
    auth_jwt_trusted_certificate {ca};
    server {{
        listen 127.0.0.1:{{{{port}}}};
        location / {{
            auth_jwt "api";
            auth_jwt_key_uri {url} refresh=10m timeout=2s;
            proxy_pass {{{{upstream}}}};
        }}
    }}
}}
"#,
        group = group_of("nobody"),
        ca = ca.display(),
    );
    let nginx = Nginx::main(&template).start();
    let workers = nginx.worker_pids();
    assert_ne!(uid_of(workers[0]), "0", "the worker runs as root");
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    assert_eq!(idp.jwks_count(), 1, "{:?}", idp.hits(JWKS_PATH));
    nginx.finish();
}
