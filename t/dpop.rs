//! Tests for auth_jwt: DPoP (RFC 9449), with proofs minted by pyca/cryptography (t/dpop/mint.py).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::harness::{now, Failures, Jwt, Nginx, Request, Response};

mod shared;

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        location / {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
        location /required/ {
            auth_jwt "api";
            auth_jwt_dpop required window=30s;
            proxy_pass {{upstream}};
        }
        location /off/ {
            auth_jwt "api";
            auth_jwt_dpop off;
            proxy_pass {{upstream}};
        }
        location /origin/ {
            auth_jwt "api";
            auth_jwt_dpop optional origin=https://api.example algorithms=ES256,EdDSA;
            proxy_pass {{upstream}};
        }
        location /nonce/ {
            auth_jwt "api";
            auth_jwt_dpop required nonce=on;
            proxy_pass {{upstream}};
        }
        location /metrics {
            auth_jwt_metrics;
        }
    }
"#;

const MINT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/t/dpop/mint.py");

/// A P-256 key made by the Python script: its PEM path and RFC 7638 thumbprint.
fn key(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(format!("{name}.pem")).display().to_string();
    let out = Command::new("python3")
        .args([MINT, "key", &path])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("key json");
    (path, v["jkt"].as_str().unwrap().to_owned())
}

/// Proofs for every spec, minted in one run of the script.
fn proofs(specs: &[Value]) -> Vec<String> {
    let mut child = Command::new("python3")
        .args([MINT, "proofs"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = serde_json::to_vec(specs).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "mint.py failed");
    serde_json::from_slice(&out.stdout).expect("proofs json")
}

fn bound(jkt: &str) -> String {
    Jwt::new("ES256")
        .claim("cnf", json!({ "jkt": jkt }))
        .encode()
}

fn dpop(nginx: &Nginx, path: &str, token: &str, proofs: &[&str]) -> Response {
    let mut req =
        Request::new(nginx.port(), "GET", path).header("Authorization", &format!("DPoP {token}"));
    for p in proofs {
        req = req.header("DPoP", p);
    }
    req.send()
}

fn refused(resp: &Response, error: &str, description: &str) -> Result<(), String> {
    let challenge = resp.challenge();
    let want = format!("error=\"{error}\", error_description=\"{description}\"");
    if resp.status == 401 && challenge.contains(&want) {
        Ok(())
    } else {
        Err(format!(
            "{} {challenge:?}, want 401 with {want}",
            resp.status
        ))
    }
}

#[test]
fn a_right_proof_passes_and_each_check_fails_alone() {
    let nginx = Nginx::http(CONF).workers(2).start();
    let dir = nginx.prefix();
    let (k1, jkt1) = key(dir, "k1");
    let (k2, _) = key(dir, "k2");
    let token = bound(&jkt1);
    let t = now();
    let htu = "http://localhost/orders";
    let base = |jti: &str| json!({"key": k1, "htm": "GET", "htu": htu, "iat": t, "jti": jti, "token": token});
    let with = |jti: &str, name: &str, value: Value| {
        let mut s = base(jti);
        s[name] = value;
        s
    };
    let specs = vec![
        base("ok"),
        with("typ", "header", json!({"typ": "JWT"})),
        with("alg", "header", json!({"alg": "HS256"})),
        with("private", "private", json!(true)),
        with("htm", "htm", json!("POST")),
        with("htu", "htu", json!("http://localhost/admin")),
        with("iat", "iat", json!(t - 120)),
        with("ath", "token", json!("another token")),
        with("key", "key", json!(k2)),
        base("replayed"),
        base("second"),
        with("origin", "htu", json!("https://api.example/origin/x")),
        with("required", "htu", json!("http://localhost/required/x")),
    ];
    let p = proofs(&specs);
    let mut f = Failures::new();
    let resp = dpop(&nginx, "/orders", &token, &[&p[0]]);
    f.check("right proof", crate::harness::expect::upstream(&resp));
    let proof_error = |name: &str, proof: &str, why: &str| {
        let resp = dpop(&nginx, "/orders", &token, &[proof]);
        (
            name.to_owned(),
            refused(&resp, "invalid_dpop_proof", &format!("DPoP proof {why}")),
        )
    };
    for (name, proof, why) in [
        ("typ", &p[1], "typ is not dpop+jwt"),
        ("alg", &p[2], "alg is not allowed"),
        ("private jwk", &p[3], "jwk holds a private key"),
        ("htm", &p[4], "htm does not match the request method"),
        ("htu", &p[5], "htu does not match the request URI"),
        ("iat", &p[6], "iat outside the acceptance window"),
        ("ath", &p[7], "ath does not match the access token"),
        ("other key", &p[8], "key does not match the token's cnf.jkt"),
    ] {
        let (case, result) = proof_error(name, proof, why);
        f.check(&case, result);
    }
    let resp = dpop(&nginx, "/orders", &token, &[]);
    f.check(
        "no proof",
        refused(&resp, "invalid_dpop_proof", "DPoP proof missing"),
    );
    let resp = dpop(&nginx, "/orders", &token, &[&p[9], &p[10]]);
    f.check(
        "two proofs",
        refused(
            &resp,
            "invalid_dpop_proof",
            "DPoP proof sent more than once",
        ),
    );
    if !resp.challenge().starts_with("DPoP algs=\"") || !resp.challenge().contains("ES256") {
        f.check::<()>("algs", Err(resp.challenge().to_owned()));
    }
    // The same proof again, on new connections (either worker): refused as a replay.
    f.check(
        "first use",
        crate::harness::expect::upstream(&dpop(&nginx, "/orders", &token, &[&p[9]])),
    );
    for i in 0..4 {
        let resp = dpop(&nginx, "/orders", &token, &[&p[9]]);
        f.check(
            &format!("replay {i}"),
            refused(&resp, "invalid_dpop_proof", "DPoP proof replayed"),
        );
    }
    // The bound token as a bearer token: refused; the unbound one as DPoP too.
    let resp = Request::new(nginx.port(), "GET", "/orders")
        .bearer(&token)
        .send();
    f.check(
        "bearer",
        refused(
            &resp,
            "invalid_token",
            "DPoP-bound token sent as a bearer token",
        ),
    );
    let unbound = Jwt::new("ES256").encode();
    let resp = dpop(&nginx, "/orders", &unbound, &[&p[10]]);
    f.check(
        "unbound as DPoP",
        refused(&resp, "invalid_token", "token not bound to a DPoP key"),
    );
    let resp = Request::new(nginx.port(), "GET", "/required/x")
        .bearer(&unbound)
        .send();
    f.check(
        "unbound, required",
        refused(&resp, "invalid_token", "token not bound to a DPoP key"),
    );
    let resp = Request::new(nginx.port(), "GET", "/orders")
        .bearer(&unbound)
        .send();
    f.check("unbound, optional", crate::harness::expect::upstream(&resp));
    let resp = Request::new(nginx.port(), "GET", "/off/x")
        .bearer(&token)
        .send();
    f.check("off", crate::harness::expect::upstream(&resp));
    let resp = dpop(&nginx, "/origin/x?q=1", &token, &[&p[11]]);
    f.check("origin=", crate::harness::expect::upstream(&resp));
    let resp = dpop(&nginx, "/required/x", &token, &[&p[12]]);
    f.check("required", crate::harness::expect::upstream(&resp));
    let metrics = Request::new(nginx.port(), "GET", "/metrics").send().text();
    let lines = [
        "{method=\"dpop\",result=\"ok\"} 4",
        "{method=\"dpop\",result=\"replay\"} 4",
        "{method=\"dpop\",result=\"bearer\"} 1",
    ];
    f.check(
        "metrics",
        crate::harness::expect::lines_in(&metrics, &lines),
    );
    f.assert();
    for line in [
        "rejected (invalid): DPoP proof replayed",
        "rejected (invalid): DPoP proof htu does not match the request URI",
        "rejected (invalid): DPoP proof iat outside the acceptance window",
        "rejected (invalid): DPoP-bound token sent as a bearer token",
    ] {
        nginx.assert_log(0, line);
    }
    let log = nginx.error_log();
    assert!(!log.contains(&p[0]), "a proof was logged");
    nginx.finish();
}

#[test]
fn a_server_nonce_is_asked_for_then_accepted() {
    let nginx = Nginx::http(CONF).workers(2).start();
    let (k1, jkt1) = key(nginx.prefix(), "k1");
    let token = bound(&jkt1);
    let spec = |jti: &str, nonce: Option<&str>| {
        let mut s = json!({"key": k1, "htm": "GET", "htu": "http://localhost/nonce/x",
            "iat": now(), "jti": jti, "token": token});
        if let Some(n) = nonce {
            s["claims"] = json!({ "nonce": n });
        }
        s
    };
    let first = proofs(&[
        spec("no-nonce", None),
        spec("wrong", Some("AAAAAAAAAAAAAAAAAAAAAA")),
    ]);
    let mut f = Failures::new();
    let resp = dpop(&nginx, "/nonce/x", &token, &[&first[0]]);
    let why = "DPoP proof lacks the server's current nonce";
    f.check("no nonce", refused(&resp, "use_dpop_nonce", why));
    let nonce = resp.header("DPoP-Nonce").unwrap_or_default().to_owned();
    if nonce.len() != 22 {
        f.check::<()>("DPoP-Nonce", Err(format!("{nonce:?}")));
    }
    let resp = dpop(&nginx, "/nonce/x", &token, &[&first[1]]);
    f.check("wrong nonce", refused(&resp, "use_dpop_nonce", why));
    // Either worker accepts the nonce either worker gave.
    let again = proofs(&[spec("with-1", Some(&nonce)), spec("with-2", Some(&nonce))]);
    for (i, p) in again.iter().enumerate() {
        let resp = dpop(&nginx, "/nonce/x", &token, &[p]);
        f.check(
            &format!("with nonce {i}"),
            crate::harness::expect::upstream(&resp),
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn bad_dpop_directives_fail_nginx_t() {
    crate::mtls::refused_in_location(
        "auth_jwt_dpop",
        &[
            ("auth_jwt_dpop on;", "invalid value \"on\""),
            ("auth_jwt_dpop required algorithms=HS256;", "asymmetric"),
            ("auth_jwt_dpop required window=2h;", "must be 1s to 1h"),
            ("auth_jwt_dpop required origin=https://a/b;", "no path"),
            (
                "auth_jwt_dpop required colour=blue;",
                "invalid value \"colour=blue\"",
            ),
        ],
    );
}
