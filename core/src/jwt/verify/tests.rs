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

#[test]
fn wrong_signature_lengths_fail_without_panic() {
    let keys = set(vec![
        jwk(None, None, hs256_key()),
        jwk(None, None, rs256_key()),
        jwk(None, None, es256_key()),
        jwk(None, None, es512_key()),
        jwk(None, None, ed25519_key()),
    ]);
    for (alg, len) in [
        (Alg::HS256, 32),
        (Alg::HS384, 48),
        (Alg::HS512, 64),
        (Alg::RS256, 256),
        (Alg::PS256, 256),
        (Alg::ES256, 64),
        (Alg::ES512, 132),
        (Alg::EdDSA, 64),
    ] {
        for bad in [0, 1, len - 1, len + 1, 2 * len, 4096] {
            let sig = vec![0x5a; bad];
            let r = keys.verify_parts(alg, None, b"e30.e30", &sig, AlgSet::all());
            assert_eq!(r.unwrap_err(), VerifyError::BadSignature, "{alg} {bad}");
        }
    }
    // The RS256 signature with a leading zero byte stripped or added is not the modulus size.
    let (input, sig) = split(RS256_TOKEN);
    let mut padded = vec![0];
    padded.extend_from_slice(&sig);
    let r = keys.verify_parts(Alg::RS256, None, input, &padded, AlgSet::all());
    assert_eq!(r.unwrap_err(), VerifyError::BadSignature);
    assert_error_queue_empty();
}

#[test]
fn ecdsa_scalar_range_and_encoding() {
    let keys = set(vec![jwk(None, None, es256_key())]);
    let (input, sig) = split(ES256_TOKEN);
    let (r, s) = sig.split_at(32);
    let n = curve_order(Nid::X9_62_PRIME256V1, 32);
    let zero = [0u8; 32];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        ([zero, zero].concat(), "r = s = 0"),
        ([&zero[..], s].concat(), "r = 0"),
        ([r, &zero[..]].concat(), "s = 0"),
        ([&n[..], s].concat(), "r = n"),
        ([r, &n[..]].concat(), "s = n"),
        ([&[0xff; 32][..], s].concat(), "r > n"),
        ([r, &[0xff; 32][..]].concat(), "s > n"),
        ([n.clone(), n.clone()].concat(), "r = s = n"),
        (der_signature(r, s), "DER"),
        ([&[0u8][..], r, s].concat(), "leading zero"),
        ([r, s, &[0u8][..]].concat(), "trailing zero"),
        ([s, r].concat(), "swapped"),
    ];
    for (bad, what) in cases {
        let res = keys.verify_parts(Alg::ES256, None, input, &bad, AlgSet::all());
        assert_eq!(res.unwrap_err(), VerifyError::BadSignature, "{what}");
    }
    // P-521: 66-byte scalars whose top bits exceed 521 bits are out of range, not truncated.
    let keys = set(vec![jwk(None, None, es512_key())]);
    let mut sig = b64(ES512_SIG);
    sig[0] |= 0xfe;
    let res = keys.verify_parts(
        Alg::ES512,
        None,
        ES512_INPUT.as_bytes(),
        &sig,
        AlgSet::all(),
    );
    assert_eq!(res.unwrap_err(), VerifyError::BadSignature);
    assert_error_queue_empty();
}

#[test]
fn minted_signatures_verify() {
    let rsa = shared_rsa();
    let rsa_public = KeyMaterial::from_public_key(public_of(rsa)).unwrap();
    let p384 = shared_p384();
    let p384_public = KeyMaterial::from_public_key(public_of(p384)).unwrap();
    let secret = b"a 64-byte secret for HS512 tokens, a 64-byte secret for HS512 !!";
    let hmac_key = KeyMaterial::hmac(secret).unwrap();
    let keys = set(vec![
        jwk(None, None, rsa_public),
        jwk(None, None, p384_public),
        jwk(None, None, hmac_key),
    ]);
    let input = b"eyJhbGciOiJ4In0.eyJzdWIiOiJ4In0";
    for alg in [
        Alg::HS384,
        Alg::HS512,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES384,
    ] {
        let md = match alg {
            Alg::PS256 => MessageDigest::sha256(),
            Alg::HS384 | Alg::RS384 | Alg::PS384 | Alg::ES384 => MessageDigest::sha384(),
            _ => MessageDigest::sha512(),
        };
        let sig = match alg {
            Alg::HS384 | Alg::HS512 => hmac_sign(md, secret, input),
            Alg::RS384 | Alg::RS512 => rsa_sign(rsa, md, None, input),
            Alg::ES384 => ecdsa_sign(p384, md, 48, input),
            _ => rsa_sign(rsa, md, Some(RsaPssSaltlen::DIGEST_LENGTH), input),
        };
        assert!(
            keys.verify_parts(alg, None, input, &sig, AlgSet::all())
                .is_ok(),
            "{alg}"
        );
        let mut bad = sig.clone();
        bad[sig.len() / 2] ^= 1;
        let res = keys.verify_parts(alg, None, input, &bad, AlgSet::all());
        assert_eq!(res.unwrap_err(), VerifyError::BadSignature, "{alg}");
    }
    // PSS with a salt length other than the digest length is not RFC 7518 PS256.
    let sig = rsa_sign(
        rsa,
        MessageDigest::sha256(),
        Some(RsaPssSaltlen::MAXIMUM_LENGTH),
        input,
    );
    let res = keys.verify_parts(Alg::PS256, None, input, &sig, AlgSet::all());
    assert_eq!(res.unwrap_err(), VerifyError::BadSignature);
    // A PKCS#1 v1.5 signature does not pass as PSS, nor the reverse.
    let sig = rsa_sign(rsa, MessageDigest::sha256(), None, input);
    let res = keys.verify_parts(Alg::PS256, None, input, &sig, AlgSet::all());
    assert_eq!(res.unwrap_err(), VerifyError::BadSignature);
    assert_error_queue_empty();
}

#[test]
fn mutated_tokens_never_panic_and_never_verify() {
    use crate::jwt::claims::{self, ClaimRules};
    let keys = set(vec![
        jwk(None, None, hs256_key()),
        jwk(None, None, rs256_key()),
        jwk(None, None, es256_key()),
    ]);
    let rules = ClaimRules {
        leeway: i64::MAX,
        require_exp: true,
        issuers: &["joe".to_owned()],
        audiences: &["a".to_owned()],
    };
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % 1_000_003).unwrap()
    };
    let alphabet = b"AQgwZaz09-_.=+/ \n{}\"";
    let mut parsed_count = 0;
    for base in [HS256_TOKEN, RS256_TOKEN, ES256_TOKEN] {
        for _ in 0..5000 {
            let mut t = base.as_bytes().to_vec();
            for _ in 0..=next() % 3 {
                let i = next() % t.len();
                let c = alphabet[next() % alphabet.len()];
                match next() % 4 {
                    0 | 1 => t[i] = c,
                    2 => drop(t.remove(i)),
                    _ => t.insert(i, c),
                }
            }
            let Ok(parsed) = token::parse(&t) else {
                continue;
            };
            parsed_count += 1;
            let verified = keys.verify(&parsed, AlgSet::all());
            assert!(
                verified.is_err() || t == base.as_bytes(),
                "{}",
                String::from_utf8_lossy(&t)
            );
            if let Ok(payload) = parsed.payload() {
                let by_map = claims::check(&*payload.claims, &rules, 0);
                assert_eq!(claims::check(&payload.registered(), &rules, 0), by_map);
            }
        }
    }
    assert!(
        parsed_count > 1500,
        "only {parsed_count} of 15000 mutations parsed"
    );
    assert_error_queue_empty();
}
