//! Tests of the header memo: what a verified token's header lets the next tokens skip, and
//! what it never does. Each test runs on its own thread, so with an empty memo.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::hash::MessageDigest;

use super::*;
use crate::authn::{authenticate, Expect, KeySource, Policy};
use crate::jwks;
use crate::jwt::alg::AlgSet;
use crate::jwt::claims::ClaimRules;
use crate::jwt::testkit::hmac_sign;
use crate::jwt::vectors::{b64, HS256_K};

const CLAIMS: &str = r#"{"sub":"a","exp":4000000000}"#;

fn sources() -> Vec<KeySource> {
    let jwks = format!(r#"{{"keys":[{{"kty":"oct","k":"{HS256_K}","kid":"k1"}}]}}"#);
    vec![KeySource {
        keys: Arc::new(jwks::parse_jwks(jwks.as_bytes()).unwrap().keys),
        issuer: None,
    }]
}

fn policy() -> Policy<'static> {
    Policy {
        max_size: 16 * 1024,
        algorithms: AlgSet::all(),
        claims: ClaimRules {
            leeway: 0,
            require_exp: true,
            issuers: &[],
            audiences: &[],
        },
        expect: Expect::Signed,
    }
}

/// An HS256 token of `header` and `claims`, signed with the vector key, or forged.
fn token(header: &str, claims: &str, signed: bool) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = hmac_sign(MessageDigest::sha256(), &b64(HS256_K), input.as_bytes());
    if !signed {
        mac[0] ^= 1;
    }
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
}

fn segment(token: &str) -> &[u8] {
    token.split('.').next().unwrap().as_bytes()
}

#[test]
fn a_verified_tokens_header_is_remembered_and_read_alike() {
    let header = r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#;
    let first = token(header, CLAIMS, true);
    let fresh = parse(segment(&first)).unwrap();
    assert!(!fresh.1, "nothing is remembered before a token verified");
    let (a, _) = authenticate(first.as_bytes(), &sources(), &policy(), 0).unwrap();
    let second = token(header, r#"{"sub":"b","exp":4000000001}"#, true);
    let (known, from_memo) = parse(segment(&second)).unwrap();
    assert!(from_memo);
    assert_eq!(known.alg, fresh.0.alg);
    assert_eq!(known.kid, fresh.0.kid);
    assert_eq!(known.json.text(), fresh.0.json.text());
    let (b, _) = authenticate(second.as_bytes(), &sources(), &policy(), 0).unwrap();
    assert!(Rc::ptr_eq(&a.header, &b.header), "one header, shared");
    assert_eq!(b.kid.as_deref(), Some("k1"));
    assert_eq!(b.header["typ"], "JWT");
    assert_eq!(b.claims["sub"], "b");
}

/// A forged token's header is not remembered, and a remembered header vouches for nothing:
/// the next token with it is still checked in full.
#[test]
fn a_remembered_header_is_no_verdict() {
    let header = r#"{"alg":"HS256","kid":"k1"}"#;
    let forged = token(header, CLAIMS, false);
    let err = authenticate(forged.as_bytes(), &sources(), &policy(), 0).unwrap_err();
    assert_eq!(err.error, VerifyError::BadSignature);
    assert!(!parse(segment(&forged)).unwrap().1);

    authenticate(
        token(header, CLAIMS, true).as_bytes(),
        &sources(),
        &policy(),
        0,
    )
    .unwrap();
    assert!(parse(segment(&forged)).unwrap().1);
    let err = authenticate(forged.as_bytes(), &sources(), &policy(), 0).unwrap_err();
    assert_eq!(err.error, VerifyError::BadSignature);
    assert_eq!(err.kid.as_deref(), Some("k1"));
    let expired = token(header, r#"{"exp":1}"#, true);
    let err = authenticate(expired.as_bytes(), &sources(), &policy(), 2).unwrap_err();
    assert_eq!(err.error, VerifyError::Expired { exp: 1 });
    let mut only_rs256 = policy();
    only_rs256.algorithms = AlgSet::empty();
    only_rs256.algorithms.insert(Alg::RS256);
    let other = token(header, CLAIMS, true);
    let err = authenticate(other.as_bytes(), &sources(), &only_rs256, 0).unwrap_err();
    assert_eq!(err.error, VerifyError::AlgNotAllowed(Alg::HS256));
}

/// The same JSON in other bytes is another header, parsed on its own; so is the same
/// header with a bad encoding of the same bytes.
#[test]
fn only_the_same_bytes_match() {
    let header = r#"{"alg":"HS256","kid":"k1"}"#;
    authenticate(
        token(header, CLAIMS, true).as_bytes(),
        &sources(),
        &policy(),
        0,
    )
    .unwrap();
    let reordered = token(r#"{"kid":"k1","alg":"HS256"}"#, CLAIMS, true);
    assert!(!parse(segment(&reordered)).unwrap().1);
    let known = URL_SAFE_NO_PAD.encode(header);
    assert!(parse(known.as_bytes()).unwrap().1);
    let padded = format!("{known}=");
    assert_eq!(
        parse(padded.as_bytes()).err(),
        Some(VerifyError::Malformed("bad base64url in header"))
    );
    assert!(!parse(&known.as_bytes()[..known.len() - 1]).is_ok_and(|(_, memo)| memo));
}

/// At most `KNOWN_HEADERS` headers, replaced oldest first; long ones are never kept.
#[test]
fn the_memo_is_bounded() {
    let header = |i: usize| format!(r#"{{"alg":"HS256","kid":"k1","n":{i}}}"#);
    for i in 0..KNOWN_HEADERS + 2 {
        authenticate(
            token(&header(i), CLAIMS, true).as_bytes(),
            &sources(),
            &policy(),
            0,
        )
        .unwrap();
    }
    let known = |i: usize| {
        parse(URL_SAFE_NO_PAD.encode(header(i)).as_bytes())
            .unwrap()
            .1
    };
    assert!(!known(0) && !known(1));
    assert!((2..KNOWN_HEADERS + 2).all(known));
    KNOWN.with_borrow(|k| assert_eq!(k.entries.len(), KNOWN_HEADERS));

    let long = format!(
        r#"{{"alg":"HS256","kid":"k1","pad":"{}"}}"#,
        "x".repeat(800)
    );
    authenticate(
        token(&long, CLAIMS, true).as_bytes(),
        &sources(),
        &policy(),
        0,
    )
    .unwrap();
    assert!(URL_SAFE_NO_PAD.encode(&long).len() > MAX_KNOWN_HEADER);
    assert!(!parse(URL_SAFE_NO_PAD.encode(&long).as_bytes()).unwrap().1);
}
