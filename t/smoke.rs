//! Tests for auth_jwt: the harness itself, on plain NGINX and with RustCrypto cross-checks.

use rsa::signature::Verifier as _;
use serde_json::json;

use crate::harness::logs::matches;
use crate::harness::mint::{b64_decode, ecdsa_raw_to_der};
use crate::harness::prefix::{free_port, nginx_version};
use crate::harness::Jwt;
use crate::harness::{keys, Nginx, ALL_ALGS};

const PLAIN: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        location / {
            proxy_pass {{upstream}};
        }
        location /static/ {
            alias {{prefix}}/html/;
        }
    }
"#;

#[test]
fn plain_nginx_serves_proxies_and_reports_headers() {
    let nginx = Nginx::http(PLAIN).without_module().start();
    let resp = nginx
        .get("/some/path?q=1")
        .header("X-User-Id", "one")
        .header("x-user-id", "two")
        .header("Authorization", "Bearer  odd  value")
        .send();
    assert!(resp.is_from_upstream(), "{}", resp.summary());
    assert_eq!(resp.echo("uri").as_deref(), Some("/some/path?q=1"));
    assert_eq!(resp.echo("method").as_deref(), Some("GET"));
    // NGINX (1.23 and later) joins repeated unknown headers with ", " in $http_*: spoofed
    // duplicates stay visible. NGINX 1.22 gives the first one only.
    let joined = if nginx_version() >= (1, 23, 0) {
        "one, two"
    } else {
        "one"
    };
    assert_eq!(resp.echo("x-user-id").as_deref(), Some(joined));
    assert_eq!(
        resp.echo("authorization").as_deref(),
        Some("Bearer  odd  value")
    );
    assert_eq!(resp.echo("x-tenant").as_deref(), Some(""));
    assert_eq!(resp.echo("not-echoed"), None);

    let page = nginx.get("/static/index.html").send();
    assert_eq!((page.status, page.text().as_str()), (200, "index\n"));
    let head = nginx.request("HEAD", "/static/index.html").send();
    assert_eq!((head.status, head.body.len()), (200, 0));
    let post = nginx.request("POST", "/x").body("payload").send();
    assert_eq!(post.echo("method").as_deref(), Some("POST"));
    nginx.finish();
}

#[test]
fn plain_nginx_reloads_with_new_workers() {
    let mut nginx = Nginx::http(PLAIN).without_module().workers(2).start();
    let before = nginx.worker_pids();
    assert_eq!(before.len(), 2, "two workers");
    let reloaded = PLAIN.replace(
        "location / {",
        "location /moved/ {\n            return 204;\n        }\n        location / {",
    );
    nginx.reload_with(&reloaded).expect("reload");
    let after = nginx.worker_pids();
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "new workers: {before:?} -> {after:?}"
    );
    assert_eq!(nginx.get("/moved/").send().status, 204);
    assert!(nginx.get("/").send().is_from_upstream());

    // A broken configuration is refused and the old one keeps serving.
    let err = nginx
        .reload_with("server { listen 127.0.0.1:{{port}}; bogus_directive; }")
        .unwrap_err();
    assert!(
        err.contains("unknown directive \"bogus_directive\""),
        "{err}"
    );
    assert_eq!(nginx.get("/moved/").send().status, 204);
    // That [emerg] is the point of this check; the final log scan must catch nothing else.
    assert_eq!(nginx.log_problems().len(), 1, "{:?}", nginx.log_problems());
    nginx.allow_log("bogus_directive");
    nginx.finish();
}

#[test]
fn whole_file_template_extra_echo_headers_and_log_helpers() {
    let template = r#"
events {
    worker_connections 64;
}
http {
    {{echo_server}}
    server {
        listen 127.0.0.1:{{port}};
        location / {
            add_header X-Multi one;
            add_header X-Multi two;
            proxy_pass {{upstream}};
        }
        location /missing/ {
            root {{prefix}}/html;
        }
    }
}
"#;
    let nginx = Nginx::main(template)
        .without_module()
        .echo_header("X-Extra")
        .allow_log("never appears")
        .start();
    assert!(nginx
        .config()
        .contains(&format!("listen 127.0.0.1:{};", nginx.upstream_port())));
    assert!(nginx.prefix().join("conf/nginx.conf").is_file());
    let resp = nginx.get("/").header("X-Extra", "yes").send();
    assert_eq!(resp.echo("x-extra").as_deref(), Some("yes"));
    assert_eq!(resp.headers_all("x-multi"), ["one", "two"]);
    let mark = nginx.log_mark();
    assert_eq!(nginx.get("/missing/nope").send().status, 404);
    nginx.assert_log(mark, "[error] *open() \"*/html/missing/nope\" failed");
    nginx.assert_no_log(mark, "[alert]");
    nginx.finish();
}

#[test]
fn log_scan_catches_alerts() {
    let mut nginx = Nginx::http(PLAIN).without_module().workers(2).start();
    let victim = nginx.worker_pids()[0];
    Nginx::signal(victim, "KILL");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while nginx.log_problems().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let problems = nginx.log_problems();
    assert!(
        problems
            .iter()
            .any(|l| l.contains("[alert]") && l.contains("exited on signal 9")),
        "the final scan would miss a killed worker: {problems:?}"
    );
    nginx.allow_log("exited on signal 9");
    assert!(nginx.log_problems().is_empty());
    nginx.finish();
}

#[test]
fn config_check_reports_file_and_line() {
    let check = Nginx::http("server {\n listen 127.0.0.1:{{port}};\n no_such_directive on;\n}")
        .without_module()
        .check();
    check.assert_emerg(
        "no_such_directive",
        &["unknown directive \"no_such_directive\""],
    );
    Nginx::http(PLAIN).without_module().check().assert_ok();
}

#[test]
fn ports_are_never_handed_out_twice() {
    let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
    let unique: std::collections::HashSet<_> = ports.iter().collect();
    assert_eq!(unique.len(), ports.len());
}

#[test]
fn log_patterns_match_in_order() {
    let line = "2024/01/01 [info] 12#0: *1 auth_jwt: rejected (invalid): bad, kid=\"k\", alg=\"RS256\", client: 1";
    assert!(matches(line, "auth_jwt: rejected (invalid)"));
    assert!(matches(
        line,
        "[info] *rejected (invalid): *kid=\"k\", alg=\"RS256\""
    ));
    assert!(!matches(line, "alg=\"RS256\"*kid="));
}

#[test]
fn module_loads_into_nginx() {
    let nginx = Nginx::http(PLAIN).start();
    assert!(nginx.get("/").send().is_from_upstream());
    nginx.finish();
}

/// Minted tokens verify with RustCrypto's verifiers: a failure in the module's algorithm tests
/// is then the module's, not the minting's.
#[test]
fn minted_tokens_verify_with_rustcrypto() {
    let k = keys();
    for alg in ALL_ALGS {
        let token = Jwt::new(alg).claims(json!({"x": 1})).encode();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64_decode(sig);
        let input = input.as_bytes();
        let ok = match alg {
            "HS256" => hmac_ok::<sha2::Sha256>(&k.hs256.secret, input, &sig),
            "HS384" => hmac_ok::<sha2::Sha384>(&k.hs384.secret, input, &sig),
            "HS512" => hmac_ok::<sha2::Sha512>(&k.hs512.secret, input, &sig),
            "RS256" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(k.rsa.public.clone())
                .verify(input, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "RS384" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(k.rsa.public.clone())
                .verify(input, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "RS512" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(k.rsa.public.clone())
                .verify(input, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "PS256" => rsa::pss::VerifyingKey::<sha2::Sha256>::new(k.rsa.public.clone())
                .verify(input, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "PS384" => rsa::pss::VerifyingKey::<sha2::Sha384>::new(k.rsa.public.clone())
                .verify(input, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "PS512" => rsa::pss::VerifyingKey::<sha2::Sha512>::new(k.rsa.public.clone())
                .verify(input, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "ES256" => {
                let crate::harness::keys::EcSecret::P256(sk) = &k.p256.secret else {
                    unreachable!()
                };
                let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
                sig.len() == 64 && sk.verifying_key().verify(input, &s).is_ok()
            }
            "ES384" => {
                let crate::harness::keys::EcSecret::P384(sk) = &k.p384.secret else {
                    unreachable!()
                };
                let s = p384::ecdsa::Signature::from_slice(&sig).unwrap();
                sig.len() == 96 && sk.verifying_key().verify(input, &s).is_ok()
            }
            "ES512" => {
                let crate::harness::keys::EcSecret::P521(sk) = &k.p521.secret else {
                    unreachable!()
                };
                let s = p521::ecdsa::Signature::from_slice(&sig).unwrap();
                sig.len() == 132
                    && p521::ecdsa::VerifyingKey::from(sk)
                        .verify(input, &s)
                        .is_ok()
            }
            "EdDSA" => {
                let s = ed25519_dalek::Signature::from_slice(&sig).unwrap();
                k.ed.signing
                    .verifying_key()
                    .verify_strict(input, &s)
                    .is_ok()
            }
            _ => unreachable!(),
        };
        assert!(ok, "{alg} token does not verify with RustCrypto: {token}");
    }
    // DER conversion: SEQUENCE of two INTEGERs, high bit padded.
    let mut raw = vec![0u8; 64];
    raw[0] = 0x80;
    raw[63] = 1;
    let der = ecdsa_raw_to_der(&raw);
    assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x21, 0x00]);
    assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
}

fn hmac_ok<D: hmac::digest::Digest + hmac::digest::core_api::BlockSizeUser + Clone>(
    secret: &[u8],
    input: &[u8],
    sig: &[u8],
) -> bool {
    use hmac::{Mac as _, SimpleHmac};
    let mut mac = SimpleHmac::<D>::new_from_slice(secret).unwrap();
    mac.update(input);
    mac.verify_slice(sig).is_ok()
}
