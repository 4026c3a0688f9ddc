//! Tests for auth_jwt: encrypted and nested tokens (`auth_jwt_type`, JWE), minted by jwcrypto.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

use crate::harness::{b64, Failures, Nginx};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_set_header X-Claims $jwt_payload;

        location /signed/ {
            auth_jwt "api";
            auth_jwt_key_file keys.json;
            proxy_pass {{upstream}};
        }
        location /enc/ {
            auth_jwt "api";
            auth_jwt_type encrypted;
            auth_jwt_key_file keys.json;
            proxy_pass {{upstream}};
        }
        location /nested/ {
            auth_jwt "api";
            auth_jwt_type nested;
            auth_jwt_key_file keys.json;
            proxy_pass {{upstream}};
        }
        location /small/ {
            auth_jwt "api";
            auth_jwt_type encrypted;
            auth_jwt_key_file keys.json;
            auth_jwt_max_size 1k;
            proxy_pass {{upstream}};
        }
        # NGINX Plus's own shape: one JWK in a file of its own.
        location /profile/ {
            auth_jwt "closed site";
            auth_jwt_type encrypted;
            auth_jwt_key_file key.jwk;
            proxy_pass {{upstream}};
        }
    }
"#;

/// What t/jwe/mint.py made: the key set, the single JWK, and the tokens by name.
struct Minted {
    jwks: String,
    single: String,
    tokens: HashMap<String, String>,
}

impl Minted {
    fn token(&self, name: &str) -> &str {
        self.tokens
            .get(name)
            .unwrap_or_else(|| panic!("mint.py made no token {name:?}"))
    }
}

/// Debian's python3 with python3-jwcrypto (scripts/test installs it).
fn mint() -> Minted {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/t/jwe/mint.py");
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import jwcrypto"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("python3 with jwcrypto (apt-get install python3-jwcrypto; scripts/test does)");
    let out = Command::new(python)
        .arg(script)
        .output()
        .expect("run mint.py");
    assert!(
        out.status.success(),
        "mint.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("mint.py printed JSON");
    let tokens = v["tokens"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap().to_owned()))
        .collect();
    Minted {
        jwks: v["jwks"].to_string(),
        single: v["single"].to_string(),
        tokens,
    }
}

fn start(m: &Minted) -> Nginx {
    Nginx::http(CONF)
        .file("conf/keys.json", &m.jwks)
        .file("conf/key.jwk", &m.single)
        .start()
}

const ALGS: [&str; 11] = [
    "dir",
    "A128KW",
    "A192KW",
    "A256KW",
    "A128GCMKW",
    "A192GCMKW",
    "A256GCMKW",
    "RSA-OAEP",
    "RSA-OAEP-256",
    "RSA-OAEP-384",
    "RSA-OAEP-512",
];
const ENCS: [&str; 6] = [
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
    "A128GCM",
    "A192GCM",
    "A256GCM",
];

#[test]
fn every_alg_and_enc_pair_decrypts() {
    let m = mint();
    let nginx = start(&m);
    let mut f = Failures::new();
    for alg in ALGS {
        for enc in ENCS {
            let name = format!("{alg} {enc}");
            let got = nginx.check_accepted("/enc/", m.token(&name)).and_then(|r| {
                let sub = r.echo("x-sub");
                let claims = r.echo("x-claims").unwrap_or_default();
                match (sub.as_deref(), claims.contains("\"exp\"")) {
                    (Some("alice"), true) => Ok(()),
                    _ => Err(format!("sub {sub:?}, $jwt_payload {claims:?}")),
                }
            });
            f.check(&name, got);
            // The same token where a signed one is expected, and where a nested one is.
            f.check(
                &format!("{name} at /signed/"),
                nginx.check_rejected("/signed/", "api", m.token(&name), "invalid", "encrypted"),
            );
            f.check(
                &format!("{name} at /nested/"),
                nginx.check_rejected("/nested/", "api", m.token(&name), "invalid", "*not nested"),
            );
        }
    }
    f.check(
        "single jwk",
        nginx.check_accepted("/profile/", m.token("single")),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn nested_tokens_verify_the_inner_signature() {
    let m = mint();
    let nginx = start(&m);
    let mut f = Failures::new();
    let inner = m.token("inner");
    for name in ["nested RSA-OAEP-256", "nested A256KW"] {
        let got = nginx
            .check_accepted("/nested/", m.token(name))
            .and_then(|r| {
                // Plus: `$jwt_payload` of a nested token is the enclosed JWS.
                match (r.echo("x-sub").as_deref(), r.echo("x-claims")) {
                    (Some("alice"), Some(p)) if p == inner => Ok(()),
                    other => Err(format!("unexpected {other:?}")),
                }
            });
        f.check(name, got);
        f.check(
            &format!("{name} at /enc/"),
            nginx.check_rejected("/enc/", "api", m.token(name), "invalid", "*not valid json"),
        );
    }
    let refused = [
        ("nested without cty", "*not nested (cty is not JWT)"),
        ("claims as nested", "malformed token"),
        // The inner JWS signed with a decryption key's secret: only signing keys verify.
        ("inner signed by oct-32", "no key matches kid"),
        ("inner", "token is signed, not encrypted"),
    ];
    for (name, reason) in refused {
        f.check(
            name,
            nginx.check_rejected("/nested/", "api", m.token(name), "invalid", reason),
        );
    }
    f.check("inner at /signed/", nginx.check_accepted("/signed/", inner));
    f.assert();
    nginx.finish();
}

/// Flips the last bit of the decoded segment `i`.
fn tamper(token: &str, i: usize) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[i]).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    parts[i] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

#[test]
fn every_jwe_attack_is_refused_with_401() {
    let m = mint();
    let nginx = start(&m);
    let mut f = Failures::new();
    let mut cases: Vec<(String, String, &str, &str)> = Vec::new();
    for name in [
        "A256KW A256CBC-HS512",
        "RSA-OAEP A128GCM",
        "dir A192GCM",
        "A128GCMKW A128CBC-HS256",
    ] {
        let t = m.token(name);
        let first = if name.starts_with("dir") { 2 } else { 1 };
        for (i, what) in [(1, "key"), (2, "iv"), (3, "ciphertext"), (4, "tag")] {
            if i >= first {
                let reason = "jwe decryption failed";
                cases.push((format!("{name}: {what}"), tamper(t, i), "/enc/", reason));
            }
        }
        // The protected header: another member changes the additional data.
        let (header, rest) = t.split_once('.').unwrap();
        let mut h: Value =
            serde_json::from_slice(&crate::harness::keys::b64_decode(header)).unwrap();
        h["x"] = Value::from(1);
        let forged = format!("{}.{rest}", b64(h.to_string().as_bytes()));
        cases.push((
            format!("{name}: header"),
            forged,
            "/enc/",
            "jwe decryption failed",
        ));
        // A truncated tag.
        let (head, tag) = t.rsplit_once('.').unwrap();
        let cut = format!("{head}.{}", &tag[..tag.len() - 2]);
        cases.push((format!("{name}: short tag"), cut, "/enc/", "*tag"));
    }
    let named = [
        ("cek 24 for 32", "jwe decryption failed"),
        ("dir 32 for oct-16", "no decryption key fits alg and enc"),
        // Its kid names a signing key, which no decryption looks at.
        ("encrypted with hs", "no decryption key matches kid"),
        ("wrapped with hs", "no decryption key matches kid"),
        // Without a kid every fitting decryption key is tried, and none is the signing key.
        ("encrypted with hs, no kid", "jwe decryption failed"),
        ("wrapped with hs, no kid", "jwe decryption failed"),
        ("RSA1_5", "unsupported jwe key management algorithm"),
        ("PBES2", "unsupported jwe key management algorithm"),
        ("ECDH-ES", "unsupported jwe key management algorithm"),
        ("ECDH-ES+A128KW", "unsupported jwe key management algorithm"),
        ("zip", "compressed jwe (zip) is not accepted"),
        ("jws signed by oct-32", "token is signed, not encrypted"),
    ];
    for (name, reason) in named {
        cases.push((name.into(), m.token(name).into(), "/enc/", reason));
    }
    // A key-wrap key never verifies a signature.
    let forged = m.token("jws signed by oct-32").to_owned();
    cases.push((
        "kw key as signing key".into(),
        forged,
        "/signed/",
        "no key matches kid",
    ));
    // Huge tokens are refused before any decoding.
    let huge = format!("{}{}", m.token("A128KW A128GCM"), "A".repeat(2000));
    cases.push(("huge".into(), huge, "/small/", "token too large"));
    for (name, token, path, reason) in &cases {
        f.check(
            name,
            nginx.check_rejected(path, "api", token, "invalid", reason),
        );
    }
    // The denial line names the JWE's kid, as for a signed token.
    let t = tamper(m.token("RSA-OAEP A128GCM"), 3);
    let req = nginx.get("/enc/").bearer(&t);
    let line = nginx.rejects(req, "api", "invalid", "jwe decryption failed");
    f.check(
        "kid in the log",
        line.and_then(|l| match l.contains(r#"kid="rsa-enc""#) {
            true => Ok(()),
            false => Err(l),
        }),
    );
    f.assert();
    nginx.finish();
}

const HS_KEY: &str =
    r#"{"kty":"oct","use":"sig","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;

fn location(body: &str) -> String {
    format!(
        r#"server {{ listen 127.0.0.1:{{{{port}}}};
    location / {{
        auth_jwt "api";
        {body}
        proxy_pass {{{{upstream}}}};
    }}
}}"#
    )
}

#[test]
fn nginx_t_refuses_bad_types_and_missing_decryption_keys() {
    let check = |body: &str, file: &str| {
        Nginx::http(&location(body))
            .file("conf/k.json", file)
            .check()
    };
    check(
        "auth_jwt_type jwe;\n        auth_jwt_key_file k.json;",
        HS_KEY,
    )
    .assert_emerg(
        "auth_jwt_type",
        &["invalid value \"jwe\" in \"auth_jwt_type\""],
    );
    check(
        "auth_jwt_type nested;\n        auth_jwt_type signed;\n        auth_jwt_key_file k.json;",
        HS_KEY,
    )
    .assert_emerg(
        "auth_jwt_type signed",
        &["is duplicate in \"auth_jwt_type\" directive"],
    );
    // A signing key only: nothing decrypts.
    let c = check(
        "auth_jwt_type encrypted;\n        auth_jwt_key_file k.json;",
        HS_KEY,
    );
    assert!(
        !c.ok && c.stderr.contains("has no decryption keys"),
        "{}",
        c.stderr
    );
    // A key marked for encryption of a size no algorithm uses.
    let odd = r#"{"kty":"oct","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    check(
        "auth_jwt_type encrypted;\n        auth_jwt_key_file k.json;",
        odd,
    )
    .assert_emerg(
        "auth_jwt_key_file",
        &["k.json", "not 16, 24, 32, 48 or 64 bytes"],
    );
    // A decryption key only, where a signature is expected.
    let enc = r#"{"kty":"oct","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#;
    let c = check("auth_jwt_key_file k.json;", enc);
    assert!(!c.ok && c.stderr.contains("has no keys"), "{}", c.stderr);
    check(
        "auth_jwt_type encrypted;\n        auth_jwt_key_file k.json;",
        enc,
    )
    .assert_ok();
}
