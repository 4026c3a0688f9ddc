//! Unit tests for JWKS and PEM key sources (kept under src/jwt/ beside the other core tests).
#![forbid(unsafe_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;

use super::*;
use crate::jwt::alg::AlgSet;
use crate::jwt::testkit::*;
use crate::jwt::vectors::*;

fn enc(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn one(jwk: &str) -> String {
    format!(r#"{{"keys":[{jwk}]}}"#)
}

fn kinds(parsed: &Parsed) -> Vec<&'static str> {
    parsed.keys.keys().iter().map(Jwk::kty).collect()
}

#[test]
fn rfc_keys_verify_rfc_tokens() {
    // The A.2 JWK carries its private members; only n and e are used.
    let jwks = format!(
        r#"{{"keys":[
            {{"kty":"oct","kid":"h","k":"{HS256_K}"}},
            {{"kty":"RSA","kid":"r","use":"sig","n":"{RS256_N}","e":"{RS256_E}","d":"AQAB","p":"AQAB"}},
            {{"kty":"EC","kid":"e","crv":"P-256","x":"{ES256_X}","y":"{ES256_Y}","alg":"ES256"}},
            {{"kty":"EC","crv":"P-521","x":"{ES512_X}","y":"{ES512_Y}","key_ops":["verify"]}},
            {{"kty":"OKP","crv":"Ed25519","x":"{ED25519_X}"}}
        ]}}"#
    );
    let parsed = parse_jwks(jwks.as_bytes()).unwrap();
    assert_eq!(kinds(&parsed), ["oct", "RSA", "EC", "EC", "OKP"]);
    assert!(parsed.skipped.is_empty());
    assert_eq!(
        parsed.keys.keys()[2]
            .algorithms()
            .iter()
            .collect::<Vec<_>>(),
        [Alg::ES256]
    );
    for text in [HS256_TOKEN, RS256_TOKEN, ES256_TOKEN] {
        let t = token::parse(text.as_bytes()).unwrap();
        assert!(parsed.keys.verify(&t, AlgSet::all()).is_ok(), "{text}");
    }
}

#[test]
fn jwk_edge_cases() {
    let n = RS256_N;
    let short_n = enc(&[0xff; 128]);
    let even_n = {
        let mut n = b64(RS256_N);
        *n.last_mut().unwrap() &= 0xfe;
        enc(&n)
    };
    let (x, y) = (ES256_X, ES256_Y);
    let off_curve = {
        let mut y = b64(ES256_Y);
        *y.last_mut().unwrap() ^= 1;
        enc(&y)
    };
    let x31 = enc(&b64(ES256_X)[1..]);
    let x521_short = enc(&b64(ES512_X)[1..]);
    let ed = ED25519_X;
    let long_kid = "k".repeat(MAX_KID_LEN + 1);
    // (jwk, Ok(kty) | Err(message)); skipped keys give Ok("skipped: <reason>").
    let cases: Vec<(String, Result<&str, String>)> = vec![
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#),
            Ok("RSA"),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}=","e":"AQAB"}}"#),
            Err(r#"key 1: member "n" is not valid base64url"#.into()),
        ),
        (
            format!(r#"{{"kty":"RSA","kid":"r","n":"{n}","e":"AQ+B"}}"#),
            Err(r#"key 1 (kid "r"): member "e" is not valid base64url"#.into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}"}}"#),
            Err(r#"key 1: member "e" is missing"#.into()),
        ),
        (
            r#"{"kty":"RSA","n":7,"e":"AQAB"}"#.into(),
            Err(r#"key 1: member "n" is not a string"#.into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{short_n}","e":"AQAB"}}"#),
            Err("key 1: rsa modulus is shorter than 2048 bits".into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{even_n}","e":"AQAB"}}"#),
            Err("key 1: rsa modulus is even".into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQ"}}"#),
            Err("key 1: rsa exponent is not odd, above 1 and below the modulus".into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"Ag"}}"#),
            Err("key 1: rsa exponent is not odd, above 1 and below the modulus".into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","alg":"HS256"}}"#),
            Err("key 1: alg does not fit the key type".into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","alg":"RSA-OAEP"}}"#),
            Ok("skipped: unsupported alg"),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","alg":"none"}}"#),
            Ok("skipped: unsupported alg"),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","alg":256}}"#),
            Err(r#"key 1: member "alg" is not a string"#.into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","use":"enc"}}"#),
            Ok("skipped: use is enc"),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","use":"other"}}"#),
            Ok("skipped: use is not sig"),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","use":1}}"#),
            Err(r#"key 1: member "use" is not a string"#.into()),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","key_ops":["encrypt"]}}"#),
            Ok("skipped: key_ops lacks verify"),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","key_ops":[]}}"#),
            Ok("skipped: key_ops lacks verify"),
        ),
        (
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","key_ops":"verify"}}"#),
            Err(r#"key 1: member "key_ops" is not an array of strings"#.into()),
        ),
        (
            format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}"}}"#),
            Ok("EC"),
        ),
        (
            format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{off_curve}"}}"#),
            Err("key 1: ec point is not on the curve".into()),
        ),
        (
            format!(r#"{{"kty":"EC","crv":"P-256","x":"{x31}","y":"{y}"}}"#),
            Err("key 1: ec coordinate length does not fit the curve".into()),
        ),
        (
            format!(r#"{{"kty":"EC","crv":"P-384","x":"{x}","y":"{y}"}}"#),
            Err("key 1: ec coordinate length does not fit the curve".into()),
        ),
        (
            format!(r#"{{"kty":"EC","crv":"P-521","x":"{x521_short}","y":"{ES512_Y}"}}"#),
            Err("key 1: ec coordinate length does not fit the curve".into()),
        ),
        (
            format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}","alg":"ES384"}}"#),
            Err("key 1: alg does not fit the key type".into()),
        ),
        (
            format!(r#"{{"kty":"EC","crv":"secp256k1","x":"{x}","y":"{y}"}}"#),
            Ok("skipped: unsupported ec curve"),
        ),
        (
            format!(r#"{{"kty":"EC","x":"{x}","y":"{y}"}}"#),
            Err(r#"key 1: member "crv" is missing"#.into()),
        ),
        (
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ed}"}}"#),
            Ok("OKP"),
        ),
        (
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x31}"}}"#),
            Err("key 1: ed25519 public key is not 32 bytes".into()),
        ),
        (
            format!(r#"{{"kty":"OKP","crv":"Ed448","x":"{x}"}}"#),
            Ok("skipped: unsupported okp curve"),
        ),
        (
            format!(r#"{{"kty":"OKP","crv":"X25519","x":"{ed}"}}"#),
            Ok("skipped: unsupported okp curve"),
        ),
        (
            r#"{"kty":"oct","k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE"}"#.into(),
            Ok("oct"),
        ),
        (
            r#"{"kty":"oct","k":""}"#.into(),
            Err("key 1: hmac secret is shorter than 32 bytes".into()),
        ),
        (
            r#"{"kty":"oct","k":"c2VjcmV0"}"#.into(),
            Err("key 1: hmac secret is shorter than 32 bytes".into()),
        ),
        (
            r#"{"kty":"oct","k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE","alg":"HS384"}"#
                .into(),
            Err("key 1: hmac secret is shorter than its alg's hash output".into()),
        ),
        (
            r#"{"kty":"oct"}"#.into(),
            Err(r#"key 1: member "k" is missing"#.into()),
        ),
        (
            r#"{"kty":"oct","k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE","alg":"RS256"}"#
                .into(),
            Err("key 1: alg does not fit the key type".into()),
        ),
        (r#"{"kty":"foo"}"#.into(), Ok("skipped: unsupported kty")),
        (r#"{"kty":"rsa"}"#.into(), Ok("skipped: unsupported kty")),
        (
            r#"{"k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE"}"#.into(),
            Err(r#"key 1: member "kty" is missing"#.into()),
        ),
        (
            r#"{"kty":1}"#.into(),
            Err(r#"key 1: member "kty" is not a string"#.into()),
        ),
        (
            r#"{"kty":"oct","k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE","kid":5}"#.into(),
            Err(r#"key 1: member "kid" is not a string"#.into()),
        ),
        (
            format!(
                r#"{{"kty":"oct","k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE","kid":"{long_kid}"}}"#
            ),
            Ok("skipped: kid is longer than 256 bytes"),
        ),
        (
            r#"{"kty":"oct","k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE","kid":"a\"b\n"}"#
                .into(),
            Ok("oct"),
        ),
        (
            r#"{"kty":"oct","k":"","kid":"a\"b\n"}"#.into(),
            Err(r#"key 1 (kid "a\"b\n"): hmac secret is shorter than 32 bytes"#.into()),
        ),
        (r#""RSA""#.into(), Err("key 1: not a json object".into())),
        (r#"null"#.into(), Err("key 1: not a json object".into())),
    ];
    for (jwk, expected) in cases {
        let got = match parse_jwks(one(&jwk).as_bytes()) {
            Ok(p) if p.skipped.len() == 1 && p.keys.is_empty() => {
                let reason = p.skipped[0].split(": ").last().unwrap().to_owned();
                assert!(p.skipped[0].starts_with("key 1"), "{}", p.skipped[0]);
                Ok(format!("skipped: {reason}"))
            }
            Ok(p) if p.skipped.is_empty() && p.keys.len() == 1 => {
                Ok(p.keys.keys()[0].kty().to_owned())
            }
            Ok(p) => panic!("{jwk}: unexpected {p:?}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(got, expected.map(str::to_owned), "{jwk}");
    }
}

#[test]
fn jwks_document_shapes() {
    let oct = r#"{"kty":"oct","k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE"}"#;
    let many = one(&vec![oct; MAX_KEYS + 1].join(","));
    let max = one(&vec![oct; MAX_KEYS].join(","));
    assert_eq!(parse_jwks(max.as_bytes()).unwrap().keys.len(), MAX_KEYS);
    let cases: Vec<(String, Result<usize, JwksError>)> = vec![
        (one(oct), Ok(1)),
        (oct.into(), Ok(1)),
        (format!("\u{feff}{}", one(oct)), Ok(1)),
        (r#"{"keys":[]}"#.into(), Ok(0)),
        (
            format!(r#"{{"keys":[{oct},{oct}],"other":{{"x":1}}}}"#),
            Ok(2),
        ),
        (many, Err(JwksError::TooManyKeys)),
        (r#"{"keys":{}}"#.into(), Err(JwksError::NotKeySet)),
        (r#"{"keys":null}"#.into(), Err(JwksError::NotKeySet)),
        ("{}".into(), Err(JwksError::NotKeySet)),
        ("[]".into(), Err(JwksError::Json(JsonError::NotObject))),
        ("".into(), Err(JwksError::Json(JsonError::Syntax))),
        (
            r#"{"keys":[],"keys":[]}"#.into(),
            Err(JwksError::Json(JsonError::DuplicateKey)),
        ),
        (
            one(r#"{"kty":"oct","k":"a","k":"b"}"#),
            Err(JwksError::Json(JsonError::DuplicateKey)),
        ),
        (
            format!(r#"{{"keys":{}{}}}"#, "[".repeat(20), "]".repeat(20)),
            Err(JwksError::Json(JsonError::TooDeep)),
        ),
    ];
    for (doc, expected) in cases {
        let got = parse_jwks(doc.as_bytes()).map(|p| p.keys.len());
        assert_eq!(got, expected, "{doc}");
    }
    assert_eq!(
        JwksError::TooManyKeys.to_string(),
        "jwks has more than 256 keys"
    );
}

// ---- PEM ----

#[test]
fn pem_sources() {
    let rsa = shared_rsa();
    let p256 = ec_key(Nid::X9_62_PRIME256V1);
    let ed25519 = PKey::generate_ed25519().unwrap();
    let ed448 = PKey::generate_ed448().unwrap();
    let k256 = ec_key(Nid::SECP256K1);
    let pkcs1 = String::from_utf8(rsa.rsa().unwrap().public_key_to_pem_pkcs1().unwrap()).unwrap();
    let private = |pem: Vec<u8>| String::from_utf8(pem).unwrap();
    let rsa_pub = pem_of(rsa);
    let body_start = rsa_pub.find('\n').unwrap() + 1;
    let garbled = format!(
        "{}AAAA{}",
        &rsa_pub[..body_start],
        &rsa_pub[body_start + 4..]
    );
    // (file, Ok(key types) | Err(message), number skipped)
    type Case = (String, Result<Vec<&'static str>, &'static str>, usize);
    let cases: Vec<Case> = vec![
        (rsa_pub.clone(), Ok(vec!["RSA"]), 0),
        (pkcs1, Ok(vec!["RSA"]), 0),
        (pem_of(&p256), Ok(vec!["EC"]), 0),
        (pem_of(&ed25519), Ok(vec!["OKP"]), 0),
        (certificate(rsa), Ok(vec!["RSA"]), 0),
        (certificate(&p256), Ok(vec!["EC"]), 0),
        (pem_of(&ed448), Ok(vec![]), 1),
        (pem_of(&k256), Ok(vec![]), 1),
        (
            format!(
                "Subject: CN=x\n{}\nnext one:\r\n{}{}",
                certificate(&p256),
                pem_of(&ed25519),
                pem_of(&ed448)
            ),
            Ok(vec!["EC", "OKP"]),
            1,
        ),
        (
            pem_of(&rsa_key(1024)),
            Err("pem block 1: rsa modulus is shorter than 2048 bits"),
            0,
        ),
        (
            private(rsa.private_key_to_pem_pkcs8().unwrap()),
            Err("pem block 1: private keys are not accepted, give the public key"),
            0,
        ),
        (
            private(rsa.rsa().unwrap().private_key_to_pem().unwrap()),
            Err("pem block 1: private keys are not accepted, give the public key"),
            0,
        ),
        (
            format!(
                "{}{}",
                pem_of(&p256),
                private(p256.ec_key().unwrap().private_key_to_pem().unwrap())
            ),
            Err("pem block 2: private keys are not accepted, give the public key"),
            0,
        ),
        (garbled, Err("pem block 1: bad public key"), 0),
        (
            rsa_pub.replace("END PUBLIC KEY", "END RSA PUBLIC KEY"),
            Err("pem block 1: no matching end line"),
            0,
        ),
        (
            "-----BEGIN PUBLIC KEY".into(),
            Err("pem block 1: bad begin line"),
            0,
        ),
        (
            format!("-----BEGIN {}-----\n", "A".repeat(65)),
            Err("pem block 1: bad begin line"),
            0,
        ),
        (
            format!(
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
                pem_of(&p256)
            ),
            Ok(vec!["EC"]),
            1,
        ),
        (
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".into(),
            Err("pem block 1: unsupported block type"),
            0,
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            Err("pem block 1: bad certificate"),
            0,
        ),
        ("no blocks here".into(), Err("no pem blocks found"), 0),
        (String::new(), Err("no pem blocks found"), 0),
    ];
    for (pem, expected, skipped) in cases {
        let got = parse_pem(pem.as_bytes());
        match (&got, expected) {
            (Ok(p), Ok(kinds_expected)) => {
                assert_eq!(kinds(p), kinds_expected, "{pem}");
                assert_eq!(p.skipped.len(), skipped, "{pem}: {:?}", p.skipped);
                assert!(p.keys.keys().iter().all(|k| k.kid.is_none()));
            }
            (Err(e), Err(message)) => assert_eq!(e.to_string(), message, "{pem}"),
            _ => panic!("{pem}: got {got:?}"),
        }
    }
    assert!(ErrorStack::get().errors().is_empty());
}

#[test]
fn pem_key_verifies_a_minted_token() {
    let rsa = shared_rsa();
    let parsed = parse_key_file(certificate(rsa).as_bytes()).unwrap();
    let input = format!("{}.{}", enc(br#"{"alg":"PS256"}"#), enc(br#"{"sub":"a"}"#));
    let salt = Some(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH);
    let sig = rsa_sign(rsa, MessageDigest::sha256(), salt, input.as_bytes());
    let text = format!("{input}.{}", enc(&sig));
    let t = token::parse(text.as_bytes()).unwrap();
    assert!(parsed.keys.verify(&t, AlgSet::all()).is_ok());
    let only_rs: AlgSet = [Alg::RS256].into_iter().collect();
    let denied = parsed.keys.verify(&t, only_rs).unwrap_err();
    assert_eq!(
        denied,
        crate::jwt::error::VerifyError::AlgNotAllowed(Alg::PS256)
    );
}

#[test]
fn key_file_sniffing() {
    let jwks = one(r#"{"kty":"oct","k":"YSAzMi1ieXRlIGhtYWMgc2VjcmV0IGZvciB0ZXN0cyE"}"#);
    let pem = pem_of(&PKey::generate_ed25519().unwrap());
    let cases: Vec<(String, Result<&str, JwksError>)> = vec![
        (jwks.clone(), Ok("oct")),
        (format!(" \r\n\t{jwks}"), Ok("oct")),
        (format!("\u{feff}{jwks}"), Ok("oct")),
        (pem.clone(), Ok("OKP")),
        (format!("# demo key\n{pem}"), Ok("OKP")),
        ("{not json".into(), Err(JwksError::Json(JsonError::Syntax))),
        ("hello".into(), Err(JwksError::UnknownFormat)),
        ("".into(), Err(JwksError::UnknownFormat)),
        ("[]".into(), Err(JwksError::UnknownFormat)),
    ];
    for (file, expected) in cases {
        let got = parse_key_file(file.as_bytes()).map(|p| p.keys.keys()[0].kty());
        assert_eq!(got, expected, "{file}");
    }
}
