//! Tests for auth_jwt: attacks on the algorithms, the keys and the signature.
//!
//! Every case must end in a 401 with `error="invalid_token"` (never a 5xx, never the
//! upstream), one `[info]` denial line with the reason, and no piece of the token in the log.

use std::io::Read as _;
use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;

use crate::harness::expect::{at, case, Case};
use crate::harness::mint::{b64_decode, ecdsa_raw_to_der, Hash};
use crate::harness::{b64, keys, now, Failures, Jwt, Nginx, Signer};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        large_client_header_buffers 4 64k;

        location / {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            auth_jwt_key_file {{keys}}/enc.json;
            proxy_pass {{upstream}};
        }
        location /public/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/public.json;
            proxy_pass {{upstream}};
        }
        location /pem/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/rsa.pem;
            proxy_pass {{upstream}};
        }
        location /small/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            auth_jwt_max_size 1k;
            proxy_pass {{upstream}};
        }
    }
"#;

/// Starts NGINX, checks every case, reports all failures together.
fn run(cases: Vec<Case>) -> Nginx {
    let nginx = Nginx::http(CONF).start();
    nginx.rejects_all("api", &cases);
    nginx
}

/// A token with its signature segment replaced by `sig`.
fn with_sig(jwt: &Jwt, sig: &[u8]) -> String {
    jwt.clone().signature(sig).encode()
}

/// The decoded signature of a freshly minted token.
fn sig_of(jwt: &Jwt) -> Vec<u8> {
    b64_decode(&jwt.segments()[2])
}

#[test]
fn alg_none_in_any_spelling() {
    let mut cases = Vec::new();
    for spelling in ["none", "None", "NONE", "nOnE"] {
        cases.push(case(
            format!("{spelling} unsigned"),
            Jwt::new("RS256").alg(spelling).unsigned().encode(),
            "algorithm none is not allowed",
        ));
        cases.push(case(
            format!("{spelling} with signature"),
            Jwt::new("RS256").alg(spelling).encode(),
            "algorithm none is not allowed",
        ));
        cases.push(case(
            format!("{spelling} without kid"),
            Jwt::new("HS256").alg(spelling).no_kid().unsigned().encode(),
            "algorithm none is not allowed",
        ));
    }
    cases.push(case(
        "none at a PEM key",
        Jwt::new("RS256").alg("none").no_kid().unsigned().encode(),
        "algorithm none is not allowed",
    ));
    cases.push(case(
        "none with space",
        Jwt::new("RS256").alg("none ").unsigned().encode(),
        "",
    ));
    cases.push(case(
        "empty alg",
        Jwt::new("RS256").alg("").unsigned().encode(),
        "",
    ));
    run(cases).finish();
}

#[test]
fn hmac_signed_with_the_public_key() {
    let k = keys();
    let jwk_text = serde_json::to_string(&k.rsa.jwk()).unwrap();
    let n = k.rsa.jwk()["n"].as_str().unwrap().to_owned();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("spki pem", k.rsa.spki_pem.clone().into_bytes()),
        ("pkcs1 pem", k.rsa.pkcs1_pem.clone().into_bytes()),
        (
            "spki pem trimmed",
            k.rsa.spki_pem.trim().as_bytes().to_vec(),
        ),
        ("spki der", k.rsa.spki_der.clone()),
        ("jwk json", jwk_text.into_bytes()),
        ("modulus text", n.into_bytes()),
    ];
    let mut cases = Vec::new();
    for (what, secret) in &secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            let jwt = Jwt::new(alg).hmac_secret(secret);
            cases.push(case(
                format!("{alg} {what} kid rsa-1"),
                jwt.clone().kid("rsa-1").encode(),
                "key type does not fit algorithm",
            ));
            cases.push(case(
                format!("{alg} {what} no kid"),
                jwt.clone().no_kid().encode(),
                "signature verification failed",
            ));
            cases.push(at(
                "/public/",
                format!("{alg} {what} no kid, public keys"),
                jwt.clone().no_kid().encode(),
                "no key for algorithm",
            ));
            cases.push(at(
                "/pem/",
                format!("{alg} {what} no kid, pem"),
                jwt.no_kid().encode(),
                "no key for algorithm",
            ));
        }
    }
    let ec_pem = Jwt::new("HS256").hmac_secret(k.p256.spki_pem.as_bytes());
    cases.push(case(
        "HS256 with EC pem, kid ec256-1",
        ec_pem.kid("ec256-1").encode(),
        "key type does not fit algorithm",
    ));
    let ed = Jwt::new("HS256").hmac_secret(k.ed.x);
    cases.push(case(
        "HS256 with Ed25519 x, kid ed-1",
        ed.kid("ed-1").encode(),
        "key type does not fit algorithm",
    ));
    run(cases).finish();
}

#[test]
fn ecdsa_signatures_out_of_range_or_in_der() {
    let k = keys();
    let mut cases = Vec::new();
    for key in [&k.p256, &k.p384, &k.p521] {
        let alg = key.alg();
        let jwt = Jwt::new(alg);
        let sig = sig_of(&jwt);
        let size = key.size();
        let (r, s) = sig.split_at(size);
        let n = key.order();
        let zero = vec![0u8; size];
        let ff = vec![0xffu8; size];
        let cat = |a: &[u8], b: &[u8]| [a, b].concat();
        let sigs: Vec<(&str, Vec<u8>)> = vec![
            ("r=s=0", cat(&zero, &zero)),
            ("r=0", cat(&zero, s)),
            ("s=0", cat(r, &zero)),
            ("r=n", cat(&n, s)),
            ("s=n", cat(r, &n)),
            ("r=s=n", cat(&n, &n)),
            ("r=s=ff..", cat(&ff, &ff)),
            ("der", ecdsa_raw_to_der(&sig)),
            ("one byte more", cat(&sig, &[0])),
            ("leading zero", cat(&[0], &sig)),
            ("one byte less", sig[..sig.len() - 1].to_vec()),
            ("r only", r.to_vec()),
            ("twice", cat(&sig, &sig)),
            ("one bit flipped", {
                let mut v = sig.clone();
                v[size / 2] ^= 1;
                v
            }),
        ];
        for (what, bad) in sigs {
            cases.push(case(
                format!("{alg} {what}"),
                with_sig(&jwt, &bad),
                "signature verification failed",
            ));
        }
        cases.push(case(
            format!("{alg} der via minting"),
            jwt.clone().der_signature().encode(),
            "signature verification failed",
        ));
    }
    run(cases).finish();
}

#[test]
fn signatures_of_the_wrong_length() {
    let mut cases = Vec::new();
    for alg in ["RS256", "PS256", "HS256", "HS512", "EdDSA"] {
        let jwt = Jwt::new(alg);
        let sig = sig_of(&jwt);
        let half = sig.len() / 2;
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", sig[..sig.len() - 1].to_vec()),
            ("half", sig[..half].to_vec()),
            ("extended", [sig.as_slice(), &[0]].concat()),
            ("leading zero", [&[0], sig.as_slice()].concat()),
            ("one byte", vec![sig[0]]),
            ("zeros", vec![0; sig.len()]),
        ];
        for (what, bad) in variants {
            cases.push(case(
                format!("{alg} {what}"),
                with_sig(&jwt, &bad),
                "signature verification failed",
            ));
        }
        cases.push(case(
            format!("{alg} empty"),
            jwt.clone().unsigned().encode(),
            "",
        ));
    }
    run(cases).finish();
}

#[test]
fn crit_and_key_reference_headers() {
    let k = keys();
    let attacker = k.rsa_other.jwk();
    let spy = TcpListener::bind("127.0.0.1:0").unwrap();
    spy.set_nonblocking(true).unwrap();
    let spy_url = format!(
        "http://127.0.0.1:{}/jwks.json",
        spy.local_addr().unwrap().port()
    );
    let forged = || Jwt::new("RS256").rsa_key(&k.rsa_other);
    let cases = vec![
        case(
            "crit exp",
            Jwt::new("RS256")
                .header("crit", json!(["exp"]))
                .header("exp", json!(1))
                .encode(),
            "unsupported critical header",
        ),
        case(
            "crit b64",
            Jwt::new("RS256")
                .header_extra(json!({"crit": ["b64"], "b64": false}))
                .encode(),
            "unsupported critical header",
        ),
        case(
            "crit empty",
            Jwt::new("RS256").header("crit", json!([])).encode(),
            "unsupported critical header",
        ),
        case(
            "crit string",
            Jwt::new("ES256").header("crit", json!("x")).encode(),
            "",
        ),
        case(
            "jku, attacker key",
            forged().header("jku", json!(spy_url)).encode(),
            "header jku is not accepted",
        ),
        case(
            "jku, good key",
            Jwt::new("RS256").header("jku", json!(spy_url)).encode(),
            "header jku is not accepted",
        ),
        case(
            "x5u",
            forged().header("x5u", json!(spy_url)).encode(),
            "header x5u is not accepted",
        ),
        case(
            "jwk embedded, no kid",
            forged().no_kid().header("jwk", attacker.clone()).encode(),
            "header jwk is not accepted",
        ),
        case(
            "jwk embedded, kid",
            forged().header("jwk", attacker).encode(),
            "header jwk is not accepted",
        ),
        case(
            "x5c, attacker key",
            forged()
                .no_kid()
                .header("x5c", json!([b64(&k.rsa_other.spki_der)]))
                .encode(),
            "",
        ),
    ];
    let nginx = run(cases);
    // The module never fetched anything.
    std::thread::sleep(Duration::from_millis(100));
    match spy.accept() {
        Ok((mut conn, _)) => {
            let mut buf = [0u8; 512];
            let n = conn.read(&mut buf).unwrap_or(0);
            panic!(
                "the module connected to the jku/x5u URL: {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
    nginx.finish();
}

#[test]
fn kid_selects_exactly_one_key() {
    let k = keys();
    let mut cases = Vec::new();
    // Validly signed by rsa-1, but the kid names no published signing key.
    for kid in [
        "../../etc/passwd",
        "/etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "rsa-1/../rsa-1",
        "rsa-1\u{0}",
        "rsa-1 ",
        " rsa-1",
        "RSA-1",
        "rsa",
        "*",
    ] {
        cases.push(case(
            format!("kid {kid:?}"),
            Jwt::new("RS256").kid(kid).encode(),
            "no key matches kid",
        ));
    }
    // The kid names a key of a type that does not fit the algorithm.
    let mismatches = [
        ("ES256", "rsa-1", Jwt::new("ES256")),
        ("RS256", "ec256-1", Jwt::new("RS256")),
        ("RS256", "hs256", Jwt::new("RS256")),
        ("PS256", "ed-1", Jwt::new("PS256")),
        ("HS256", "ed-1", Jwt::new("HS256")),
        ("HS256", "rsa-1", Jwt::new("HS256")),
        ("ES384", "ec256-1", Jwt::new("ES384")),
        ("ES256", "ec521-1", Jwt::new("ES256")),
        ("EdDSA", "rsa-1", Jwt::new("EdDSA")),
        ("ES512", "ed-1", Jwt::new("ES512")),
    ];
    for (alg, kid, jwt) in mismatches {
        cases.push(case(
            format!("{alg} with kid {kid}"),
            jwt.kid(kid).encode(),
            "key type does not fit algorithm",
        ));
    }
    // A JWKS key marked "use":"enc" never verifies, even with the right key material.
    cases.push(case(
        "use=enc key",
        Jwt::new("RS256").kid("rsa-enc").encode(),
        "",
    ));
    // Unpublished key under its own kid.
    cases.push(case(
        "unknown kid",
        Jwt::new("RS256").rsa_key(&k.rsa_other).encode(),
        "no key matches kid",
    ));
    for (what, kid) in [
        ("number", json!(1)),
        ("null", json!(null)),
        ("object", json!({})),
        ("array", json!(["rsa-1"])),
    ] {
        cases.push(case(
            format!("kid {what}"),
            Jwt::new("RS256").header("kid", kid).encode(),
            "",
        ));
    }
    run(cases).finish();
}

#[test]
fn kid_cannot_inject_into_the_log() {
    let nginx = Nginx::http(CONF).start();
    let mark = nginx.log_mark();
    let kids = [
        "a\"b",
        "a\", alg=\"RS256",
        "x\r\nINJECTED-LINE [warn] 1#1: forged",
        "x\nINJECTED-LINE",
        "x\rINJECTED-LINE",
        "esc\u{1b}[31mred",
        "tab\there",
        "nul\u{0}byte",
        "\u{2028}line separator",
    ];
    let mut f = Failures::new();
    for kid in kids {
        let token = Jwt::new("RS256").kid(kid).encode();
        f.check(
            kid,
            nginx.check_rejected("/", "api", &token, "invalid", "no key matches kid"),
        );
    }
    let long = "k".repeat(10_000);
    f.check(
        "long kid",
        nginx.check_rejected(
            "/",
            "api",
            &Jwt::new("RS256").kid(&long).encode(),
            "invalid",
            "",
        ),
    );
    f.assert();
    let log = nginx.log_since(mark);
    assert!(!log.contains('\r'), "raw CR in the error log:\n{log}");
    assert!(!log.contains('\u{1b}'), "raw ESC in the error log:\n{log}");
    assert!(!log.contains('\0'), "raw NUL in the error log");
    for line in log.lines() {
        assert!(!line.starts_with("INJECTED"), "log injection: {line:?}");
        assert!(
            line.len() < 4096,
            "unbounded log line ({} bytes)",
            line.len()
        );
        assert!(!line.contains(&long), "the 10k kid was logged");
    }
    nginx.finish();
}

#[test]
fn tampered_tokens() {
    let mut cases = Vec::new();
    for alg in ["RS256", "PS384", "ES256", "ES512", "EdDSA", "HS256"] {
        let jwt = Jwt::new(alg);
        let [h, p, s] = jwt.segments();
        let admin = b64(serde_json::to_vec(&json!({"sub": "admin", "exp": now() + 600})).unwrap());
        let header_plus = jwt.clone().header("x", json!(1)).segments()[0].clone();
        let other = Jwt::new(alg).claim("sub", json!("admin")).segments();
        cases.push(case(
            format!("{alg} payload replaced"),
            format!("{h}.{admin}.{s}"),
            "signature verification failed",
        ));
        cases.push(case(
            format!("{alg} header replaced"),
            format!("{header_plus}.{p}.{s}"),
            "signature verification failed",
        ));
        cases.push(case(
            format!("{alg} signature of another token"),
            format!("{h}.{p}.{}", other[2]),
            "signature verification failed",
        ));
        cases.push(case(
            format!("{alg} payload of another token"),
            format!("{h}.{}.{s}", other[1]),
            "signature verification failed",
        ));
    }
    run(cases).finish();
}

#[test]
fn unsupported_algorithm_names() {
    let mut cases = Vec::new();
    for alg in [
        "RS1024",
        "HS1",
        "rs256",
        "Rs256",
        "ES256K",
        "Ed25519",
        "ED25519",
        "EdDSA ",
        "RSA-OAEP",
        "dir",
        "A128KW",
        "HS256\u{0}",
        "PS256 ",
    ] {
        cases.push(case(
            format!("alg {alg:?}"),
            Jwt::new("RS256").alg(alg).encode(),
            "",
        ));
    }
    run(cases).finish();
}

/// Signed with a JOSE signer the header does not name: the signature must not verify.
#[test]
fn signer_does_not_match_alg() {
    let k = keys();
    let cases = vec![
        case(
            "RS256 header, PS256 signature",
            Jwt::new("RS256")
                .signer(Signer::RsaPss(Hash::Sha256, &k.rsa))
                .encode(),
            "signature verification failed",
        ),
        case(
            "PS256 header, RS256 signature",
            Jwt::new("PS256")
                .signer(Signer::RsaPkcs1(Hash::Sha256, &k.rsa))
                .encode(),
            "signature verification failed",
        ),
        case(
            "RS384 header, RS256 signature",
            Jwt::new("RS384")
                .signer(Signer::RsaPkcs1(Hash::Sha256, &k.rsa))
                .encode(),
            "signature verification failed",
        ),
        case(
            "HS512 header, HS256 signature",
            Jwt::new("HS512")
                .kid("hs512")
                .signer(Signer::Hmac(Hash::Sha256, k.hs512.secret.clone()))
                .encode(),
            "signature verification failed",
        ),
        case(
            "PS256 salt 0",
            {
                let jwt = Jwt::new("PS256");
                let [h, p, _] = jwt.segments();
                let input = format!("{h}.{p}");
                use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
                let sk = rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(
                    k.rsa.private.clone(),
                    0,
                );
                let sig = sk
                    .sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes())
                    .to_vec();
                format!("{input}.{}", b64(sig))
            },
            "",
        ),
    ];
    run(cases).finish();
}
