//! Unit tests for key selection and signature checks: RFC vectors, then attacks.
#![forbid(unsafe_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;

use super::*;
use crate::jwt::testkit::*;
use crate::jwt::token;
use crate::jwt::vectors::*;

fn jwk(kid: Option<&str>, alg: Option<Alg>, material: KeyMaterial) -> Jwk {
    Jwk::new(kid.map(str::to_owned), alg, material).unwrap()
}

fn hs256_key() -> KeyMaterial {
    KeyMaterial::hmac(&b64(HS256_K)).unwrap()
}

fn rs256_key() -> KeyMaterial {
    KeyMaterial::rsa(&b64(RS256_N), &b64(RS256_E)).unwrap()
}

fn es256_key() -> KeyMaterial {
    KeyMaterial::ec(Curve::P256, &b64(ES256_X), &b64(ES256_Y)).unwrap()
}

fn es512_key() -> KeyMaterial {
    KeyMaterial::ec(Curve::P521, &b64(ES512_X), &b64(ES512_Y)).unwrap()
}

fn ed25519_key() -> KeyMaterial {
    KeyMaterial::ed25519(&b64(ED25519_X)).unwrap()
}

fn set(keys: Vec<Jwk>) -> KeySet {
    KeySet::new(keys)
}

/// Splits a compact token into (signing input, decoded signature) without parsing claims.
fn split(token: &str) -> (&[u8], Vec<u8>) {
    let dot = token.rfind('.').unwrap();
    (&token.as_bytes()[..dot], b64(&token[dot + 1..]))
}

fn verify_raw(keys: &KeySet, alg: Alg, kid: Option<&str>, token: &str) -> Result<(), VerifyError> {
    let (input, sig) = split(token);
    keys.verify_parts(alg, kid, input, &sig, AlgSet::all())
        .map(drop)
}

fn assert_error_queue_empty() {
    assert!(
        ErrorStack::get().errors().is_empty(),
        "openssl error queue not drained"
    );
}

#[test]
fn rfc_vectors_verify() {
    let ed = format!("{ED25519_INPUT}.{ED25519_SIG}");
    let es512 = format!("{ES512_INPUT}.{ES512_SIG}");
    let cases: [(KeyMaterial, Alg, &str); 5] = [
        (hs256_key(), Alg::HS256, HS256_TOKEN),
        (rs256_key(), Alg::RS256, RS256_TOKEN),
        (es256_key(), Alg::ES256, ES256_TOKEN),
        (es512_key(), Alg::ES512, &es512),
        (ed25519_key(), Alg::EdDSA, &ed),
    ];
    for (material, alg, text) in cases {
        let keys = set(vec![jwk(None, None, material)]);
        assert_eq!(verify_raw(&keys, alg, None, text), Ok(()), "{alg}");
        // Every single-bit flip in the signing input or the signature is caught.
        let (input, sig) = split(text);
        for i in (0..input.len()).step_by(7) {
            let mut bad = input.to_vec();
            bad[i] ^= 0x01;
            let r = keys.verify_parts(alg, None, &bad, &sig, AlgSet::all());
            assert_eq!(
                r.unwrap_err(),
                VerifyError::BadSignature,
                "{alg} input byte {i}"
            );
        }
        for i in 0..sig.len() {
            let mut bad = sig.clone();
            bad[i] ^= 0x80;
            let r = keys.verify_parts(alg, None, input, &bad, AlgSet::all());
            assert_eq!(
                r.unwrap_err(),
                VerifyError::BadSignature,
                "{alg} sig byte {i}"
            );
        }
        assert_error_queue_empty();
    }
}

#[test]
fn parsed_tokens_verify_through_keyset() {
    let keys = set(vec![
        jwk(Some("h"), None, hs256_key()),
        jwk(Some("r"), Some(Alg::RS256), rs256_key()),
        jwk(Some("e"), None, es256_key()),
    ]);
    for (text, kty) in [
        (HS256_TOKEN, "oct"),
        (RS256_TOKEN, "RSA"),
        (ES256_TOKEN, "EC"),
    ] {
        let t = token::parse(text.as_bytes()).unwrap();
        assert_eq!(t.payload().unwrap().claims["exp"], EXP);
        assert_eq!(keys.verify(&t, AlgSet::all()).unwrap().kty(), kty);
    }
}

#[test]
fn tampered_payload_fails() {
    // Same header and signature, payload claims `"iss":"joe "` instead of `"iss":"joe"`.
    let forged_payload = URL_SAFE_NO_PAD.encode(
        b"{\"iss\":\"joe \",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}",
    );
    for (text, material) in [
        (HS256_TOKEN, hs256_key()),
        (RS256_TOKEN, rs256_key()),
        (ES256_TOKEN, es256_key()),
    ] {
        let forged = text.replacen(PAYLOAD, &forged_payload, 1);
        let t = token::parse(forged.as_bytes()).unwrap();
        let keys = set(vec![jwk(None, None, material)]);
        assert_eq!(
            keys.verify(&t, AlgSet::all()).unwrap_err(),
            VerifyError::BadSignature
        );
    }
}

#[test]
fn allow_list_is_checked_first() {
    let keys = set(vec![jwk(None, None, rs256_key())]);
    let t = token::parse(RS256_TOKEN.as_bytes()).unwrap();
    let only_es: AlgSet = [Alg::ES256].into_iter().collect();
    assert_eq!(
        keys.verify(&t, only_es).unwrap_err(),
        VerifyError::AlgNotAllowed(Alg::RS256)
    );
    assert_eq!(
        keys.verify(&t, AlgSet::empty()).unwrap_err(),
        VerifyError::AlgNotAllowed(Alg::RS256)
    );
}

#[test]
fn hmac_keyed_with_a_public_key_is_refused() {
    // The classic confusion: HS256 with the RSA/EC public key (as PEM or DER) as the secret.
    let rsa = rs256_key();
    let Kind::Rsa(pkey) = &rsa.kind else {
        unreachable!()
    };
    let ec = es256_key();
    let Kind::Ec { key: ec_pkey, .. } = &ec.kind else {
        unreachable!()
    };
    let secrets = [
        pkey.public_key_to_pem().unwrap(),
        pkey.public_key_to_der().unwrap(),
        ec_pkey.public_key_to_pem().unwrap(),
        b64(RS256_N),
    ];
    for secret in secrets {
        let input = format!(
            "{}.{PAYLOAD}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#)
        );
        let mac = hmac_sign(MessageDigest::sha256(), &secret, input.as_bytes());
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
        let keys = set(vec![
            jwk(None, None, rs256_key()),
            jwk(Some("e"), None, es256_key()),
        ]);
        assert_eq!(
            verify_raw(&keys, Alg::HS256, None, &forged),
            Err(VerifyError::NoFittingKey)
        );
        assert_eq!(
            verify_raw(&keys, Alg::HS256, Some("e"), &forged),
            Err(VerifyError::KeyTypeMismatch)
        );
    }
}

#[test]
fn key_type_and_alg_binding() {
    let (x, y) = ec_point(shared_p384(), 48);
    let es384 = KeyMaterial::ec(Curve::P384, &x, &y).unwrap();
    let cases: Vec<(KeyMaterial, Option<Alg>, Vec<Alg>)> = vec![
        (hs256_key(), None, vec![Alg::HS256, Alg::HS384, Alg::HS512]),
        (hs256_key(), Some(Alg::HS384), vec![Alg::HS384]),
        (
            rs256_key(),
            None,
            vec![
                Alg::RS256,
                Alg::RS384,
                Alg::RS512,
                Alg::PS256,
                Alg::PS384,
                Alg::PS512,
            ],
        ),
        (rs256_key(), Some(Alg::PS512), vec![Alg::PS512]),
        (es256_key(), None, vec![Alg::ES256]),
        (es384, None, vec![Alg::ES384]),
        (es512_key(), None, vec![Alg::ES512]),
        (ed25519_key(), None, vec![Alg::EdDSA]),
    ];
    for (material, alg, fits) in cases {
        let key = jwk(None, alg, material);
        for a in Alg::ALL {
            assert_eq!(key.fits(a), fits.contains(&a), "{key:?} {a}");
        }
        assert_eq!(key.algorithms().iter().collect::<Vec<_>>(), fits);
    }
    for (material, alg) in [
        (hs256_key(), Alg::RS256),
        (rs256_key(), Alg::HS256),
        (rs256_key(), Alg::ES256),
        (es256_key(), Alg::ES384),
        (es512_key(), Alg::ES256),
        (ed25519_key(), Alg::ES256),
    ] {
        let err = Jwk::new(None, Some(alg), material).unwrap_err();
        assert_eq!(err, KeyError::AlgMismatch);
    }
}

#[test]
fn kid_selects_exactly() {
    use VerifyError::{BadSignature, KeyTypeMismatch, NoFittingKey, UnknownKid};
    let named = vec![
        jwk(Some("h"), None, hs256_key()),
        jwk(Some("r"), None, rs256_key()),
        jwk(Some("e"), None, es256_key()),
    ];
    let mut with_kidless = named.clone();
    with_kidless.push(jwk(None, None, es256_key()));
    let (named, with_kidless) = (set(named), set(with_kidless));
    type Case = (
        &'static str,
        Alg,
        Option<&'static str>,
        Result<(), VerifyError>,
    );
    let (es, hs, rs) = (ES256_TOKEN, HS256_TOKEN, RS256_TOKEN);
    // (token, alg, kid, with only named keys, with a kid-less ES256 key added)
    let cases: &[(Case, Result<(), VerifyError>)] = &[
        ((es, Alg::ES256, Some("e"), Ok(())), Ok(())),
        ((es, Alg::ES256, None, Ok(())), Ok(())),
        // An unknown kid selects nothing: neither a key with another kid nor a kid-less one.
        (
            (es, Alg::ES256, Some("x"), Err(UnknownKid)),
            Err(UnknownKid),
        ),
        (
            (es, Alg::ES256, Some("E"), Err(UnknownKid)),
            Err(UnknownKid),
        ),
        ((es, Alg::ES256, Some(""), Err(UnknownKid)), Err(UnknownKid)),
        (
            (hs, Alg::HS256, Some("x"), Err(UnknownKid)),
            Err(UnknownKid),
        ),
        (
            (rs, Alg::RS256, Some("x"), Err(UnknownKid)),
            Err(UnknownKid),
        ),
        // A known kid of another key type: no fallback at all.
        (
            (es, Alg::ES256, Some("r"), Err(KeyTypeMismatch)),
            Err(KeyTypeMismatch),
        ),
        (
            (hs, Alg::HS256, Some("e"), Err(KeyTypeMismatch)),
            Err(KeyTypeMismatch),
        ),
        ((rs, Alg::RS256, Some("r"), Ok(())), Ok(())),
        (
            (rs, Alg::PS256, Some("r"), Err(BadSignature)),
            Err(BadSignature),
        ),
        ((rs, Alg::RS384, None, Err(BadSignature)), Err(BadSignature)),
        ((hs, Alg::HS256, Some("h"), Ok(())), Ok(())),
        ((hs, Alg::HS512, None, Err(BadSignature)), Err(BadSignature)),
        ((es, Alg::ES384, None, Err(NoFittingKey)), Err(NoFittingKey)),
        ((es, Alg::EdDSA, None, Err(NoFittingKey)), Err(NoFittingKey)),
    ];
    for &((text, alg, kid, only_named), kidless) in cases {
        assert_eq!(
            verify_raw(&named, alg, kid, text),
            only_named,
            "{alg} {kid:?}"
        );
        assert_eq!(
            verify_raw(&with_kidless, alg, kid, text),
            kidless,
            "{alg} {kid:?}"
        );
    }
    let empty = KeySet::default();
    assert_eq!(verify_raw(&empty, Alg::ES256, None, es), Err(NoFittingKey));
    assert_eq!(
        verify_raw(&empty, Alg::ES256, Some("e"), es),
        Err(UnknownKid)
    );
}

#[test]
fn every_fitting_key_is_tried_and_the_right_one_returned() {
    let other = KeyMaterial::hmac(b"another secret, also long enough..").unwrap();
    let keys = set(vec![
        jwk(Some("a"), None, other.clone()),
        jwk(Some("b"), None, rs256_key()),
        jwk(Some("c"), None, hs256_key()),
        jwk(Some("d"), None, other),
    ]);
    let t = token::parse(HS256_TOKEN.as_bytes()).unwrap();
    assert_eq!(
        keys.verify(&t, AlgSet::all()).unwrap().kid.as_deref(),
        Some("c")
    );
    // Two keys share a kid: each fitting one is tried.
    let dup = set(vec![
        jwk(Some("k"), None, es256_key()),
        jwk(Some("k"), None, hs256_key()),
    ]);
    assert_eq!(verify_raw(&dup, Alg::HS256, Some("k"), HS256_TOKEN), Ok(()));
    assert_eq!(verify_raw(&dup, Alg::ES256, Some("k"), ES256_TOKEN), Ok(()));
}

mod signatures;

#[test]
fn ecdsa_der_is_what_openssl_encodes() {
    use openssl::bn::BigNum;
    use openssl::ecdsa::EcdsaSig;
    let mut cases: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for len in [32, 48, 66] {
        let mut high = vec![0x80u8; len];
        high[len - 1] = 7;
        let mut zeros = vec![0u8; len];
        zeros[len - 1] = 1;
        let mut seven_f = vec![0x7fu8; len];
        seven_f[0] = 0;
        seven_f[1] = 0x80;
        let ff = vec![0xffu8; len];
        cases.extend([
            (high.clone(), zeros.clone()),
            (zeros, high),
            (seven_f.clone(), ff.clone()),
            (ff, seven_f),
        ]);
    }
    for (r, s) in cases {
        let want = EcdsaSig::from_private_components(
            BigNum::from_slice(&r).unwrap(),
            BigNum::from_slice(&s).unwrap(),
        )
        .unwrap()
        .to_der()
        .unwrap();
        let mut out = [0u8; DER_MAX];
        let n = ecdsa_der(&r, &s, &mut out);
        assert_eq!(&out[..n], &want[..], "r {r:02x?}");
    }
}

#[test]
fn sha256_is_sha256() {
    for input in [&b""[..], b"abc", &[7u8; 1000]] {
        assert_eq!(sha256(input), openssl::sha::sha256(input));
    }
}
