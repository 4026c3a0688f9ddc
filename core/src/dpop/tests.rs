//! Proofs signed with RustCrypto's ed25519-dalek, verified by the OpenSSL code under test.

use super::*;

use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use sha2::{Digest, Sha256};

const TOKEN: &[u8] = b"eyJ.token.sig";
const HTU: &str = "https://api.example/orders";
const NOW: i64 = 1_700_000_000;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn jwk(k: &SigningKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.verifying_key().as_bytes())})
}

/// RFC 7638 thumbprint, written out independently of `jwk::thumbprint`.
fn jkt(k: &SigningKey) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64(k.verifying_key().as_bytes())
    );
    b64(Sha256::digest(canonical))
}

fn proof(k: &SigningKey, header: Value, claims: Value) -> Vec<u8> {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = k.sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes())).into_bytes()
}

fn header(k: &SigningKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk(k)})
}

fn claims() -> Value {
    json!({
        "jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": HTU, "iat": NOW,
        "ath": b64(Sha256::digest(TOKEN)),
    })
}

fn target() -> ProofTarget<'static> {
    ProofTarget {
        method: b"GET",
        htu: HTU,
        token_sha256: super::token_digest(TOKEN),
        now: NOW,
    }
}

fn with(mut v: Value, name: &str, value: Value) -> Value {
    v[name] = value;
    v
}

fn without(mut v: Value, name: &str) -> Value {
    v.as_object_mut().unwrap().remove(name);
    v
}

#[test]
fn a_right_proof_passes() {
    let k = key(1);
    let p = check_proof(
        &proof(&k, header(&k), claims()),
        &target(),
        &jkt(&k),
        &DpopRules::default(),
    )
    .unwrap();
    assert_eq!(p.expires, NOW + DEFAULT_WINDOW + 1);
    assert_eq!(p.jti_digest[..], Sha256::digest("e1j3V_bKic8-LAEB")[..]);
    // Query and fragment of htu are ignored; scheme and host case, and the default port too.
    for htu in [
        "https://api.example/orders?x=1",
        "https://api.example/orders#f",
        "HTTPS://API.example/orders",
        "https://api.example:443/orders",
    ] {
        let c = with(claims(), "htu", json!(htu));
        assert!(
            check_proof(
                &proof(&k, header(&k), c),
                &target(),
                &jkt(&k),
                &DpopRules::default()
            )
            .is_ok(),
            "{htu}"
        );
    }
}

#[test]
fn each_check_fails_alone() {
    let k = key(1);
    let other = key(2);
    let rsa_only = DpopRules {
        algorithms: [Alg::RS256].into_iter().collect(),
        ..DpopRules::default()
    };
    let def = DpopRules::default();
    let good = |h: Value, c: Value| proof(&k, h, c);
    let mut forged = good(header(&k), claims());
    let at = forged.iter().rposition(|&b| b == b'.').unwrap() + 1;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let cases: Vec<(&str, Vec<u8>, &DpopRules, &str)> = vec![
        (
            "typ",
            good(with(header(&k), "typ", json!("JWT")), claims()),
            &def,
            "typ is not dpop+jwt",
        ),
        (
            "no typ",
            good(without(header(&k), "typ"), claims()),
            &def,
            "typ is not dpop+jwt",
        ),
        (
            "alg list",
            good(header(&k), claims()),
            &rsa_only,
            "alg is not allowed",
        ),
        (
            "alg none",
            good(with(header(&k), "alg", json!("none")), claims()),
            &def,
            "alg is not allowed",
        ),
        (
            "alg HS256",
            good(with(header(&k), "alg", json!("HS256")), claims()),
            &def,
            "alg is not allowed",
        ),
        (
            "private jwk",
            good(
                with(header(&k), "jwk", with(jwk(&k), "d", json!(b64([1u8; 32])))),
                claims(),
            ),
            &def,
            "jwk holds a private key",
        ),
        (
            "no jwk",
            good(without(header(&k), "jwk"), claims()),
            &def,
            "has no jwk",
        ),
        (
            "other jwk",
            good(with(header(&k), "jwk", jwk(&other)), claims()),
            &def,
            "key does not match the token's cnf.jkt",
        ),
        ("signature", forged, &def, "signature invalid"),
        (
            "htm",
            good(header(&k), with(claims(), "htm", json!("POST"))),
            &def,
            "htm does not match the request method",
        ),
        (
            "htu path",
            good(
                header(&k),
                with(claims(), "htu", json!("https://api.example/admin")),
            ),
            &def,
            "htu does not match the request URI",
        ),
        (
            "htu host",
            good(
                header(&k),
                with(claims(), "htu", json!("https://evil.example/orders")),
            ),
            &def,
            "htu does not match the request URI",
        ),
        (
            "htu scheme",
            good(
                header(&k),
                with(claims(), "htu", json!("http://api.example/orders")),
            ),
            &def,
            "htu does not match the request URI",
        ),
        (
            "iat old",
            good(header(&k), with(claims(), "iat", json!(NOW - 61))),
            &def,
            "iat outside the acceptance window",
        ),
        (
            "iat future",
            good(header(&k), with(claims(), "iat", json!(NOW + 61))),
            &def,
            "iat outside the acceptance window",
        ),
        (
            "iat text",
            good(header(&k), with(claims(), "iat", json!("now"))),
            &def,
            "iat missing",
        ),
        (
            "jti",
            good(header(&k), without(claims(), "jti")),
            &def,
            "jti missing",
        ),
        (
            "ath",
            good(
                header(&k),
                with(claims(), "ath", json!(b64(Sha256::digest(b"other")))),
            ),
            &def,
            "ath does not match the access token",
        ),
        (
            "no ath",
            good(header(&k), without(claims(), "ath")),
            &def,
            "ath does not match the access token",
        ),
        ("two dots", b"a.b".to_vec(), &def, "is not a compact JWS"),
        (
            "four dots",
            b"a.b.c.d".to_vec(),
            &def,
            "is not a compact JWS",
        ),
        ("huge", vec![b'a'; MAX_PROOF + 1], &def, "too large"),
    ];
    // Every case fails the same way with a cold cache and with one that remembers the good
    // header (most cases carry it, byte for byte), and no failure teaches the cache a header.
    let mut warm = jwk::KeyCache::default();
    let right = good(header(&k), claims());
    check_proof_cached(&right, &target(), &jkt(&k), &def, &mut warm).unwrap();
    let first = |p: &[u8]| p.split(|&b| b == b'.').next().unwrap().to_vec();
    assert!(warm.known_header(&first(&right)).is_some());
    for (case, p, rules, want) in cases {
        assert_eq!(
            check_proof(&p, &target(), &jkt(&k), rules),
            Err(DpopError::Proof(want)),
            "{case}"
        );
        let mut learning = jwk::KeyCache::default();
        for cache in [&mut warm, &mut learning] {
            assert_eq!(
                check_proof_cached(&p, &target(), &jkt(&k), rules, cache),
                Err(DpopError::Proof(want)),
                "{case}, cached"
            );
        }
        assert!(learning.known_header(&first(&p)).is_none(), "{case}");
    }
    // A right proof by another key than the one the token is bound to.
    assert_eq!(
        check_proof(
            &proof(&other, header(&other), claims()),
            &target(),
            &jkt(&k),
            &def
        ),
        Err(DpopError::Proof("key does not match the token's cnf.jkt"))
    );
}

#[test]
fn a_remembered_header_still_answers_to_the_token_and_the_location() {
    let (k, other) = (key(1), key(2));
    let mut cache = jwk::KeyCache::default();
    let def = DpopRules::default();
    let right = proof(&k, header(&k), claims());
    check_proof_cached(&right, &target(), &jkt(&k), &def, &mut cache).unwrap();
    // The same header, for a token bound to another key.
    assert_eq!(
        check_proof_cached(&right, &target(), &jkt(&other), &def, &mut cache),
        Err(DpopError::Proof("key does not match the token's cnf.jkt"))
    );
    // The same header, in a location that no longer allows its algorithm.
    let rsa_only = DpopRules {
        algorithms: [Alg::RS256].into_iter().collect(),
        ..DpopRules::default()
    };
    assert_eq!(
        check_proof_cached(&right, &target(), &jkt(&k), &rsa_only, &mut cache),
        Err(DpopError::Proof("alg is not allowed"))
    );
    // The same header over claims another key signed.
    let text = String::from_utf8(right.clone()).unwrap();
    let (head, _) = text.split_once('.').unwrap();
    let theirs = String::from_utf8(proof(&other, header(&k), claims())).unwrap();
    let (_, rest) = theirs.split_once('.').unwrap();
    let spliced = format!("{head}.{rest}");
    assert_eq!(
        check_proof_cached(spliced.as_bytes(), &target(), &jkt(&k), &def, &mut cache),
        Err(DpopError::Proof("signature invalid"))
    );
    // And a new proof under the remembered header still passes.
    let next = proof(&k, header(&k), with(claims(), "jti", json!("another")));
    check_proof_cached(&next, &target(), &jkt(&k), &def, &mut cache).unwrap();
}

#[test]
fn bindings() {
    let c = |v: Value| v.as_object().unwrap().clone();
    assert_eq!(binding(&c(json!({"cnf": {"jkt": "abc"}}))), Ok(Some("abc")));
    assert_eq!(binding(&c(json!({"cnf": {"x5t#S256": "abc"}}))), Ok(None));
    assert_eq!(binding(&c(json!({"sub": "a"}))), Ok(None));
    assert_eq!(
        binding(&c(json!({"cnf": "jkt"}))),
        Err(DpopError::BadBinding)
    );
    assert_eq!(
        binding(&c(json!({"cnf": {"jkt": 1}}))),
        Err(DpopError::BadBinding)
    );
}

#[test]
fn directive_values() {
    let r = parse_dpop(&[
        "required",
        "window=30s",
        "algorithms=ES256,EdDSA",
        "origin=https://API.example:8443",
    ])
    .unwrap();
    assert_eq!(r.policy, DpopPolicy::Required);
    assert_eq!(r.window, 30);
    assert_eq!(
        r.algorithms.iter().collect::<Vec<_>>(),
        vec![Alg::ES256, Alg::EdDSA]
    );
    assert_eq!(r.origin.as_deref(), Some("https://api.example:8443"));
    assert_eq!(parse_dpop(&["off"]).unwrap().policy, DpopPolicy::Off);
    assert_eq!(parse_dpop(&["optional"]).unwrap(), DpopRules::default());
    for bad in [
        &["on"][..],
        &[],
        &["required", "window=0s"],
        &["required", "window=2h"],
        &["required", "window=x"],
        &["required", "algorithms=HS256"],
        &["required", "algorithms=none"],
        &["required", "origin=https://a/path"],
        &["required", "origin=ftp://a"],
        &["required", "origin=https://a/"],
        &["required", "nonce"],
        &["required", "colour=blue"],
    ] {
        assert!(parse_dpop(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn server_nonces() {
    let k = key(1);
    let rules = DpopRules {
        nonce_secret: Some([7; 32]),
        ..DpopRules::default()
    };
    let now = server_nonce(&[7; 32], NOW, DEFAULT_WINDOW, 0);
    let before = server_nonce(&[7; 32], NOW, DEFAULT_WINDOW, 1);
    let older = server_nonce(&[7; 32], NOW, DEFAULT_WINDOW, 2);
    assert_eq!(now.len(), 22);
    assert_ne!(now, before);
    assert_ne!(now, server_nonce(&[8; 32], NOW, DEFAULT_WINDOW, 0), "keyed");
    let check = |c: Value| check_proof(&proof(&k, header(&k), c), &target(), &jkt(&k), &rules);
    assert!(check(with(claims(), "nonce", json!(now))).is_ok());
    assert!(check(with(claims(), "nonce", json!(before))).is_ok());
    assert_eq!(
        check(with(claims(), "nonce", json!(older))),
        Err(DpopError::UseNonce)
    );
    assert_eq!(check(claims()), Err(DpopError::UseNonce));
    assert_eq!(
        check(with(claims(), "nonce", json!(""))),
        Err(DpopError::UseNonce)
    );
    assert_eq!(
        parse_dpop(&["optional", "nonce=on"]).unwrap().nonce_secret,
        Some([0; 32])
    );
    assert!(parse_dpop(&["optional", "nonce=yes"]).is_err());
}

#[test]
fn the_claims_scan_reads_what_the_json_tree_reads() {
    // What the proof checks read from the claims, by the scanner and by serde_json's strict
    // tree (which they read before), over texts that differ in the ways that matter.
    let texts = [
        r#"{"htm":"GET","htu":"https://api.example/orders","iat":1700000000,"jti":"j","ath":"a"}"#,
        r#"{"h\u0074m":"G\u0045T","htu":"https:\/\/api.example\/orders","iat":-0,"jti":""}"#,
        r#"{"iat":1.7e9}"#,
        r#"{"iat":1700000000.0}"#,
        r#"{"iat":99999999999999999999}"#,
        r#"{"iat":-9223372036854775808}"#,
        r#"{"iat":"1700000000"}"#,
        r#"{"htm":["GET"],"jti":7,"nonce":null,"ath":{"x":1}}"#,
        r#"{"jti":"a","jti":"b"}"#,
        r#"{"jti":"\ud800"}"#,
        r#"{"jti":"é€😀"}"#,
        r#"{"deep":[[[[[[[[[[1]]]]]]]]]]}"#,
        r#"["htm"]"#,
        r#"{"htm":"GET"} "#,
        r#"{"htm":"GET"}x"#,
        "{\"jti\":\"\u{7f}\"}",
        "{\"jti\":\"\t\"}",
        "{}",
        "",
    ];
    for text in texts {
        let tree = json::parse_object(text.as_bytes(), PROOF_LIMITS).ok();
        let scanned = ProofClaims::scan(text.as_bytes());
        assert_eq!(scanned.is_some(), tree.is_some(), "{text}");
        let (Some(tree), Some(c)) = (tree, scanned) else {
            continue;
        };
        for name in ["htm", "htu", "nonce", "jti", "ath"] {
            let want = tree.get(name).and_then(Value::as_str);
            assert_eq!(c.text(name).as_deref(), want, "{name} in {text}");
        }
        let want = tree.get("iat").and_then(Value::as_i64);
        assert_eq!(c.integer("iat"), want, "iat in {text}");
    }
}
