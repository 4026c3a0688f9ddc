//! Signature checks under attack: wrong lengths, ECDSA scalar ranges, minted and mutated tokens.

use super::*;

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
