//! Tests of the authentication path: order of checks, the cache, issuer binding.

use super::*;

#[test]
fn log_safe_escapes_and_bounds() {
    assert_eq!(log_safe("k1"), "k1");
    assert_eq!(log_safe("a\r\nb"), "a??b");
    assert_eq!(log_safe("a\"b\\"), "a\\\"b\\\\");
    assert_eq!(log_safe("ü"), "?");
    let long = "x".repeat(100);
    assert_eq!(log_safe(&long), format!("{}...", "x".repeat(64)));
}

use crate::jwks;
use crate::jwt::vectors::{EXP, HS256_K, HS256_TOKEN};

fn rules() -> ClaimRules<'static> {
    ClaimRules {
        leeway: 0,
        require_exp: true,
        issuers: &[],
        audiences: &[],
    }
}

/// A forged token's payload is never parsed: with a garbage payload and a wrong signature
/// the refusal is the signature's. Bound to an issuer, the payload comes first.
#[test]
fn the_payload_waits_for_the_signature() {
    let header = HS256_TOKEN.split('.').next().unwrap();
    let forged = format!("{header}.bm90IGpzb24.c2lnbmF0dXJl"); // "not json", "signature"
    let policy = Policy {
        max_size: 16 * 1024,
        algorithms: AlgSet::all(),
        claims: rules(),
        expect: Expect::Signed,
    };
    let unbound = hs256_keys();
    let err = authenticate(forged.as_bytes(), &unbound, &policy, 0).unwrap_err();
    assert_eq!(err.error, VerifyError::BadSignature);
    let bound = vec![KeySource {
        keys: Arc::clone(&unbound[0].keys),
        issuer: Some("joe".into()),
    }];
    let err = authenticate(forged.as_bytes(), &bound, &policy, 0).unwrap_err();
    assert_eq!(
        err.error,
        VerifyError::Malformed("payload is not valid json")
    );
    // Both read the vector's payload alike once the signature is right.
    for sources in [&unbound, &bound] {
        let err = authenticate(HS256_TOKEN.as_bytes(), sources, &policy, EXP + 1).unwrap_err();
        assert_eq!(err.error, VerifyError::Expired { exp: EXP });
    }
}

fn hs256_keys() -> Vec<KeySource> {
    let jwks = format!(r#"{{"keys":[{{"kty":"oct","k":"{HS256_K}"}}]}}"#);
    let keys = Arc::new(jwks::parse_jwks(jwks.as_bytes()).unwrap().keys);
    vec![KeySource { keys, issuer: None }]
}

#[test]
fn cache_hits_recheck_claims_and_policy() {
    let keys = hs256_keys();
    let token = HS256_TOKEN.as_bytes();
    let policy = Policy {
        max_size: 16 * 1024,
        algorithms: AlgSet::all(),
        claims: rules(),
        expect: Expect::Signed,
    };
    let mut cache = Cache::new(8);
    let now = EXP - 10;

    let (first, lookup) = authenticate_cached(token, &keys, &policy, now, &mut cache);
    assert!(first.is_ok());
    assert_eq!(lookup, Lookup::Miss);
    let (second, lookup) = authenticate_cached(token, &keys, &policy, now, &mut cache);
    assert_eq!(lookup, Lookup::Hit);
    assert!(Rc::ptr_eq(&first.unwrap(), &second.unwrap()));

    // The same token later: expired, although its signature is cached.
    let (late, lookup) = authenticate_cached(token, &keys, &policy, EXP, &mut cache);
    assert_eq!(lookup, Lookup::Hit);
    assert!(matches!(
        late.unwrap_err().error,
        VerifyError::Expired { exp: EXP }
    ));

    // Another location that does not allow HS256.
    let strict = Policy {
        algorithms: [Alg::RS256].into_iter().collect(),
        ..policy
    };
    let (refused, _) = authenticate_cached(token, &keys, &strict, now, &mut cache);
    assert!(matches!(
        refused.unwrap_err().error,
        VerifyError::AlgNotAllowed(Alg::HS256)
    ));

    // Another key set (another location, or keys rotated): verified afresh, and refused.
    let other = vec![KeySource {
        keys: Arc::new(KeySet::new(Vec::new())),
        issuer: None,
    }];
    let (fresh, lookup) = authenticate_cached(token, &other, &policy, now, &mut cache);
    assert_eq!(lookup, Lookup::Miss);
    assert!(fresh.is_err());
}

#[test]
fn sources_bound_to_an_issuer_only_verify_its_tokens() {
    let token = HS256_TOKEN.as_bytes(); // "iss": "joe"
    let policy = Policy {
        max_size: 16 * 1024,
        algorithms: AlgSet::all(),
        claims: rules(),
        expect: Expect::Signed,
    };
    let keys = hs256_keys().remove(0).keys;
    let bound = |issuer| {
        vec![KeySource {
            keys: Arc::clone(&keys),
            issuer: Some(Arc::from(issuer)),
        }]
    };
    let now = EXP - 10;
    assert!(authenticate(token, &bound("joe"), &policy, now).is_ok());
    let denial = authenticate(token, &bound("https://idp.example"), &policy, now).unwrap_err();
    assert_eq!(denial.error, VerifyError::IssuerMismatch);
    // An empty source without the kid passes the token on to the next one.
    let mut two = vec![KeySource {
        keys: Arc::new(KeySet::default()),
        issuer: None,
    }];
    two.extend(bound("joe"));
    let (_, verified_by) = authenticate(token, &two, &policy, now).unwrap();
    assert!(Arc::ptr_eq(&verified_by.unwrap(), &keys));
}

#[test]
fn refused_tokens_are_not_cached() {
    let keys = hs256_keys();
    let policy = Policy {
        max_size: 16 * 1024,
        algorithms: AlgSet::all(),
        claims: rules(),
        expect: Expect::Signed,
    };
    let mut cache = Cache::new(8);
    let mut tampered = HS256_TOKEN.as_bytes().to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    let (result, _) = authenticate_cached(&tampered, &keys, &policy, EXP - 10, &mut cache);
    assert!(result.is_err());
    assert!(cache.is_empty());
}

#[test]
fn oversized_token_is_refused_before_parsing() {
    let policy = Policy {
        max_size: 8,
        algorithms: AlgSet::all(),
        claims: rules(),
        expect: Expect::Signed,
    };
    let denial = authenticate(b"aaaaaaaaa", &[], &policy, 0).unwrap_err();
    assert!(matches!(denial.error, VerifyError::TooLarge));
}

/// The revocation probe read from the payload's text is the one the claims tree gives,
/// escapes, fractions and wrong types included.
/// A token signed with the vectors' HS256 key.
fn hs256_token(header: &str, payload: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use openssl::hash::MessageDigest;
    let secret = URL_SAFE_NO_PAD.decode(HS256_K).unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let tag = crate::jwt::testkit::hmac_sign(MessageDigest::sha256(), &secret, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Signed tokens, every algorithm, `exp` not required.
fn signed_without_exp() -> Policy<'static> {
    Policy {
        max_size: 16 * 1024,
        algorithms: AlgSet::all(),
        claims: ClaimRules {
            require_exp: false,
            ..rules()
        },
        expect: Expect::Signed,
    }
}

/// The sender-constrained checks skip a token without `cnf` on the scan's word: it must
/// agree with the claims tree, escaped names included, nested members excluded.
#[test]
fn has_cnf_from_the_scan_matches_the_tree() {
    let policy = signed_without_exp();
    let payloads = [
        (r#"{"sub":"a","cnf":{"jkt":"x"}}"#, true),
        (r#"{"c\u006ef":{"x5t#S256":"y"}}"#, true),
        (r#"{"cnf":"not an object"}"#, true),
        (r#"{"cnf":null}"#, true),
        (r#"{"sub":{"cnf":{"jkt":"x"}}}"#, false),
        (r#"{"cnfx":1,"cn":2}"#, false),
        (r#"{}"#, false),
    ];
    for (payload, expected) in payloads {
        let token = hs256_token(r#"{"alg":"HS256"}"#, payload);
        let (verified, _) = authenticate(token.as_bytes(), &hs256_keys(), &policy, 0)
            .unwrap_or_else(|d| panic!("{payload}: {:?}", d.error));
        assert_eq!(verified.has_cnf(), expected, "{payload}");
        assert_eq!(verified.claims.contains_key("cnf"), expected, "{payload}");
    }
}

#[test]
fn the_revocation_probe_from_the_text_matches_the_tree() {
    let policy = signed_without_exp();
    let payloads = [
        r#"{"jti":"j-1","sub":"alice","iss":"https://idp","iat":1700000000}"#,
        r#"{"jti":"j\u002d1","sub":"al\"ice","iat":1700000000.7}"#,
        r#"{"jti":5,"sub":["s"],"iss":null,"iat":"1"}"#,
        r#"{"sub":"bob","iat":-3.5}"#,
        r#"{"iat":1e3,"jti":""}"#,
        r#"{}"#,
    ];
    for (n, payload) in payloads.iter().enumerate() {
        for header in [r#"{"alg":"HS256"}"#, r#"{"alg":"HS256","kid":"k\/1"}"#] {
            let token = hs256_token(header, payload);
            let sources = if header.contains("kid") {
                let jwks = format!(r#"{{"keys":[{{"kty":"oct","kid":"k/1","k":"{HS256_K}"}}]}}"#);
                let keys = Arc::new(jwks::parse_jwks(jwks.as_bytes()).unwrap().keys);
                vec![KeySource { keys, issuer: None }]
            } else {
                hs256_keys()
            };
            let (verified, _) = authenticate(token.as_bytes(), &sources, &policy, 0)
                .unwrap_or_else(|d| panic!("payload {n}: {:?}", d.error));
            let from_tree = Probe::of(&Facts::of(verified.kid.as_deref(), &verified.claims));
            assert_eq!(
                *verified.revocation_probe(),
                from_tree,
                "payload {n} {header}"
            );
        }
    }
}

/// A rate limit keyed by a claim reads it through `claim_text`, which takes `sub`, `iss` and
/// `jti` strings from the scan: it must give what the variable gives from the tree.
#[test]
fn claim_text_from_the_text_matches_the_tree() {
    let policy = signed_without_exp();
    let payloads = [
        r#"{"sub":"alice","iss":"https://idp","jti":"j-1","tenant":"t"}"#,
        r#"{"s\u0075b":"al\"ice","iss":"a\/b","jti":"\u00e9"}"#,
        r#"{"sub":42,"iss":null,"jti":["a","b"],"tenant":{"x":1}}"#,
        r#"{"sub":"","iss":true,"jti":1.5}"#,
        r#"{"sub":{"sub":"inner"}}"#,
        r#"{}"#,
    ];
    for payload in payloads {
        let token = hs256_token(r#"{"alg":"HS256"}"#, payload);
        let (verified, _) = authenticate(token.as_bytes(), &hs256_keys(), &policy, 0)
            .unwrap_or_else(|d| panic!("{payload}: {:?}", d.error));
        for name in ["sub", "iss", "jti", "tenant", "exp"] {
            let from_tree = verified.claims.get(name).map(crate::identity::render);
            assert_eq!(verified.claim_text(name), from_tree, "{payload} {name}");
        }
    }
}

/// A DPoP proof's `ath` is checked against this digest: it is the token's SHA-256 (here by
/// RustCrypto, not OpenSSL), the same on a cache hit, and never a remembered one for
/// another token.
#[test]
fn the_token_digest_is_the_tokens_sha256() {
    use sha2::{Digest, Sha256};
    let policy = signed_without_exp();
    let token = hs256_token(r#"{"alg":"HS256"}"#, r#"{"sub":"alice"}"#);
    let mut cache = Cache::new(4);
    let sha = |t: &[u8]| -> [u8; 32] { Sha256::digest(t).into() };
    for _ in 0..2 {
        let (verified, _) =
            authenticate_cached(token.as_bytes(), &hs256_keys(), &policy, 0, &mut cache);
        let verified = verified.unwrap_or_else(|d| panic!("{:?}", d.error));
        assert_eq!(
            verified.token_digest(token.as_bytes()),
            sha(token.as_bytes())
        );
        let longer = format!("{token}x");
        assert_eq!(
            verified.token_digest(longer.as_bytes()),
            sha(longer.as_bytes())
        );
    }
}

mod jwe_tests {
    use super::*;
    use crate::jwe::testkit::{oct, Enc2};
    use crate::jwe::{Enc, KeyAlg};

    fn claims_json() -> String {
        format!(r#"{{"sub":"alice","exp":{}}}"#, EXP)
    }

    fn policy(expect: Expect<'_>) -> Policy<'_> {
        Policy {
            max_size: 16 * 1024,
            algorithms: AlgSet::all(),
            claims: rules(),
            expect,
        }
    }

    fn dec(k: &[u8]) -> Arc<DecryptKeys> {
        Arc::new(DecryptKeys::new(vec![oct(None, None, k)]))
    }

    #[test]
    fn encrypted_tokens_yield_their_claims_and_header() {
        let keys = dec(&[7; 32]);
        let token = Enc2::new(KeyAlg::Dir, Enc::A256Gcm).seal(&[7; 32], claims_json().as_bytes());
        let p = policy(Expect::Encrypted(&keys));
        let (v, by) = authenticate(token.as_bytes(), &[], &p, EXP - 10).unwrap();
        assert!(by.is_none());
        assert_eq!(v.alg, None);
        assert_eq!(v.payload(), claims_json());
        assert!(v.header.text().contains("\"dir\""));
        // Claims are checked as for a signed token.
        let late = authenticate(token.as_bytes(), &[], &p, EXP).unwrap_err();
        assert_eq!(late.error, VerifyError::Expired { exp: EXP });
        // A signed token is not an encrypted one, and the other way round.
        let denial = authenticate(HS256_TOKEN.as_bytes(), &[], &p, EXP - 10).unwrap_err();
        assert_eq!(
            denial.error,
            VerifyError::Jwe("token is signed, not encrypted")
        );
        let signed = policy(Expect::Signed);
        let denial = authenticate(token.as_bytes(), &hs256_keys(), &signed, EXP - 10).unwrap_err();
        assert_eq!(denial.error, VerifyError::Encrypted);
    }

    #[test]
    fn nested_tokens_verify_the_inner_jws() {
        let keys = dec(&[7; 16]);
        let mut e = Enc2::new(KeyAlg::A128Kw, Enc::A128CbcHs256);
        e.header = r#"{"alg":"A128KW","enc":"A128CBC-HS256","cty":"JWT"}"#.into();
        let token = e.seal(&[7; 16], HS256_TOKEN.as_bytes());
        let p = policy(Expect::Nested(&keys));
        let sources = hs256_keys();
        let (v, by) = authenticate(token.as_bytes(), &sources, &p, EXP - 10).unwrap();
        assert!(Arc::ptr_eq(&by.unwrap(), &sources[0].keys));
        assert_eq!(v.alg, Some(Alg::HS256));
        assert_eq!(v.nested_jws.as_deref(), Some(HS256_TOKEN));
        // Without the inner key the signature is what fails.
        let none: Vec<KeySource> = Vec::new();
        assert!(authenticate(token.as_bytes(), &none, &p, EXP - 10).is_err());
        // No cty: not a nested token.
        let plain =
            Enc2::new(KeyAlg::A128Kw, Enc::A128CbcHs256).seal(&[7; 16], HS256_TOKEN.as_bytes());
        let denial = authenticate(plain.as_bytes(), &sources, &p, EXP - 10).unwrap_err();
        assert!(matches!(denial.error, VerifyError::Jwe(m) if m.contains("not nested")));
    }

    /// A token cached where it decrypted is no hit where other keys, or another type, apply.
    #[test]
    fn cache_hits_are_bound_to_the_type_and_the_decryption_keys() {
        let (a, b) = (dec(&[7; 32]), dec(&[8; 32]));
        let token = Enc2::new(KeyAlg::Dir, Enc::A256Gcm).seal(&[7; 32], claims_json().as_bytes());
        let t = token.as_bytes();
        let mut cache = Cache::new(8);
        let now = EXP - 10;
        let at_a = policy(Expect::Encrypted(&a));
        let (first, lookup) = authenticate_cached(t, &[], &at_a, now, &mut cache);
        assert!(first.is_ok());
        assert_eq!(lookup, Lookup::Miss);
        let (_, lookup) = authenticate_cached(t, &[], &at_a, now, &mut cache);
        assert_eq!(lookup, Lookup::Hit);
        // Location B decrypts with another key: verified afresh, and refused.
        let at_b = policy(Expect::Encrypted(&b));
        let (refused, lookup) = authenticate_cached(t, &[], &at_b, now, &mut cache);
        assert_eq!(lookup, Lookup::Miss);
        assert!(refused.is_err());
        // Nested with the same keys, or signed: not a hit either.
        for p in [policy(Expect::Nested(&a)), policy(Expect::Signed)] {
            let (refused, lookup) = authenticate_cached(t, &hs256_keys(), &p, now, &mut cache);
            assert_eq!(lookup, Lookup::Miss);
            assert!(refused.is_err());
        }
    }
}
