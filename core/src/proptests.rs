//! Property tests (proptest) of the pure core: base64url, claim checks, caches, identities.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Map, Number, Value};

use crate::authn::{self, Cache, KeySource, Lookup, Policy};
use crate::cache::TokenCache;
use crate::identity::{self, IdentityError, MAX_HEADER_VALUE};
use crate::jwks;
use crate::jwt::alg::AlgSet;
use crate::jwt::claims::{self, ClaimRules};
use crate::jwt::error::VerifyError;
use crate::jwt::token;
use crate::jwt::vectors::{EXP, HS256_K, HS256_TOKEN};

/// A strict base64url decoder written from RFC 4648 §5 and RFC 7515 §2, bit by bit: the
/// reference `token::decode` must agree with.
fn reference_decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero: one encoding per byte string.
    (acc == 0).then_some(out)
}

proptest! {
    #[test]
    fn base64url_round_trips(bytes in vec(any::<u8>(), 0..200)) {
        let text = URL_SAFE_NO_PAD.encode(&bytes);
        prop_assert_eq!(token::decode(text.as_bytes()), Some(bytes));
    }

    #[test]
    fn base64url_decoding_is_strict(text in "[A-Za-z0-9_=+/ .\\-]{0,40}") {
        let decoded = token::decode(text.as_bytes());
        prop_assert_eq!(&decoded, &reference_decode(text.as_bytes()));
        if let Some(bytes) = decoded {
            // Accepted text is the one canonical encoding of what it decodes to.
            prop_assert_eq!(URL_SAFE_NO_PAD.encode(bytes), text);
        }
    }

    #[test]
    fn base64url_agrees_with_the_reference(text in "[A-Za-z0-9_\\-]{0,64}") {
        prop_assert_eq!(token::decode(text.as_bytes()), reference_decode(text.as_bytes()));
    }
}

fn rules(leeway: i64) -> ClaimRules<'static> {
    ClaimRules {
        leeway,
        require_exp: true,
        issuers: &[],
        audiences: &[],
    }
}

fn claims_of(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("claims are objects"),
    }
}

/// What `exp` and `nbf` mean, in exact integer arithmetic.
fn expected(exp: i64, nbf: Option<i64>, now: i64, leeway: i64) -> Result<(), VerifyError> {
    let (now, leeway) = (i128::from(now), i128::from(leeway.max(0)));
    if now >= i128::from(exp) + leeway {
        return Err(VerifyError::Expired { exp });
    }
    match nbf {
        Some(nbf) if now + leeway < i128::from(nbf) => Err(VerifyError::NotYetValid { nbf }),
        _ => Ok(()),
    }
}

/// Times near a boundary: `now`, and `exp`/`nbf` within a few seconds of `now ± leeway`.
fn near() -> impl Strategy<Value = (i64, i64, i64)> {
    (
        any::<i64>(),
        -3i64..=3,
        prop_oneof![Just(0i64), 0i64..120, any::<i64>()],
    )
}

proptest! {
    #[test]
    fn exp_and_nbf_at_any_time(
        exp in any::<i64>(),
        nbf in proptest::option::of(any::<i64>()),
        now in any::<i64>(),
        leeway in any::<i64>(),
    ) {
        let mut c = json!({ "exp": exp });
        if let Some(nbf) = nbf {
            c["nbf"] = json!(nbf);
        }
        prop_assert_eq!(
            claims::check(&claims_of(c), &rules(leeway), now),
            expected(exp, nbf, now, leeway)
        );
    }

    /// A cached token's later checks read its times once: same answers as reading the JSON.
    #[test]
    fn times_read_once_answer_as_the_claims(
        exp in proptest::option::of(any::<i64>()),
        nbf in proptest::option::of(any::<i64>()),
        frac in any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()),
        now in any::<i64>(),
        leeway in any::<i64>(),
    ) {
        let mut c = json!({ "n": frac });
        if let Some(exp) = exp {
            c["exp"] = json!(exp);
        }
        if let Some(nbf) = nbf {
            c["nbf"] = json!(nbf);
        } else {
            c["nbf"] = json!(Number::from_f64(frac).expect("finite"));
        }
        let claims = claims_of(c);
        let times = claims::Times::of(&claims);
        for require_exp in [false, true] {
            let rules = ClaimRules { require_exp, ..rules(leeway) };
            prop_assert_eq!(
                claims::check_with(&claims, times, &rules, now),
                claims::check(&claims, &rules, now)
            );
        }
    }

    #[test]
    fn exp_and_nbf_at_the_boundary((now, delta, leeway) in near()) {
        let edge = now.saturating_add(leeway.max(0)).saturating_add(delta);
        let exp_only = json!({ "exp": edge });
        prop_assert_eq!(
            claims::check(&claims_of(exp_only), &rules(leeway), now),
            expected(edge, None, now, leeway)
        );
        let edge = now.saturating_add(delta).saturating_sub(leeway.max(0));
        let with_nbf = json!({ "exp": i64::MAX, "nbf": edge });
        prop_assert_eq!(
            claims::check(&claims_of(with_nbf), &rules(leeway), now),
            expected(i64::MAX, Some(edge), now, leeway)
        );
    }

    #[test]
    fn fractional_and_huge_times_round_up_and_saturate(
        exp in any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()),
        big in any::<u64>(),
        now in any::<i64>(),
        leeway in 0i64..1000,
    ) {
        let c = json!({ "exp": Number::from_f64(exp).expect("finite") });
        // Rounding up keeps `now >= exp` exact for an integer `now`.
        let secs = exp.ceil() as i64;
        prop_assert_eq!(
            claims::check(&claims_of(c), &rules(leeway), now),
            expected(secs, None, now, leeway)
        );
        let c = json!({ "exp": big });
        let secs = i64::try_from(big).unwrap_or(i64::MAX);
        prop_assert_eq!(
            claims::check(&claims_of(c), &rules(leeway), now),
            expected(secs, None, now, leeway)
        );
    }
}

/// Cache keys: a small pool with prefixes, extensions and near-misses of each other.
const KEYS: [&[u8]; 8] = [b"", b"a", b"aa", b"ab", b"b", b"a.b.c", b"a.b.d", b"A.b.c"];

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, u32),
    Get(usize),
    Retain(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..KEYS.len(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => (0..KEYS.len()).prop_map(Op::Get),
        1 => (1u32..4).prop_map(Op::Retain),
    ]
}

proptest! {
    #[test]
    fn token_cache_is_bounded_and_hits_only_identical_keys(
        capacity in 0usize..6,
        ops in vec(op(), 0..200),
    ) {
        let mut cache = TokenCache::new(capacity);
        // The last value stored per key: a hit must return exactly that.
        let mut model: HashMap<usize, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    cache.insert(KEYS[k], v);
                    model.insert(k, v);
                    if capacity > 0 {
                        prop_assert_eq!(cache.get(KEYS[k]), Some(&v));
                    }
                }
                Op::Get(k) => {
                    if let Some(&hit) = cache.get(KEYS[k]) {
                        prop_assert_eq!(Some(&hit), model.get(&k));
                    }
                }
                Op::Retain(m) => {
                    cache.retain(|v| v % m == 0);
                    model.retain(|_, v| *v % m == 0);
                }
            }
            prop_assert!(cache.len() <= capacity);
        }
        for (k, key) in KEYS.iter().enumerate() {
            if let Some(&hit) = cache.get(key) {
                prop_assert_eq!(Some(&hit), model.get(&k));
            }
        }
    }
}

fn hs256_sources() -> Vec<KeySource> {
    let jwks = format!(r#"{{"keys":[{{"kty":"oct","k":"{HS256_K}"}}]}}"#);
    let keys = Arc::new(jwks::parse_jwks(jwks.as_bytes()).expect("jwks").keys);
    vec![KeySource { keys, issuer: None }]
}

proptest! {
    #[test]
    fn a_changed_token_never_verifies_and_never_hits(
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        truncate in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let sources = hs256_sources();
        let policy = Policy {
            max_size: 16 * 1024,
            algorithms: AlgSet::all(),
            claims: rules(0),
            expect: crate::authn::Expect::Signed,
        };
        let now = EXP - 10;
        let mut cache = Cache::new(16);
        let original = HS256_TOKEN.as_bytes();
        let (first, _) = authn::authenticate_cached(original, &sources, &policy, now, &mut cache);
        prop_assert!(first.is_ok());

        let mut token = original.to_vec();
        for (at, byte) in edits {
            let i = at.index(token.len());
            token[i] = byte;
        }
        if let Some(at) = truncate {
            token.truncate(at.index(token.len()));
        }
        let (result, lookup) = authn::authenticate_cached(&token, &sources, &policy, now, &mut cache);
        if token == original {
            prop_assert_eq!(lookup, Lookup::Hit);
            prop_assert!(result.is_ok());
        } else {
            prop_assert_eq!(lookup, Lookup::Miss);
            prop_assert!(result.is_err(), "a changed token verified: {:?}", String::from_utf8_lossy(&token));
            prop_assert!(cache.len() == 1);
        }
    }
}

/// JSON values whose strings are rich in control characters and odd Unicode.
fn json_value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        "[a-z]{0,8}",
        "[\\x00-\\x1f\\x7f a-z\u{80}-\u{9f}\u{2028}\u{feff}]{0,8}",
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        text.prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(("[a-z]{1,4}", inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn check_header_value(value: &Value) -> Result<(), TestCaseError> {
    let text = identity::render(value);
    match identity::header_value(value) {
        Ok(v) => {
            prop_assert_eq!(&v, &text);
            prop_assert!(v.len() <= MAX_HEADER_VALUE);
            prop_assert!(!v.bytes().any(|b| b.is_ascii_control()), "{:?}", v);
        }
        Err(IdentityError::TooLong) => prop_assert!(text.len() > MAX_HEADER_VALUE),
        Err(IdentityError::ControlCharacter) => {
            prop_assert!(text.len() <= MAX_HEADER_VALUE);
            prop_assert!(text.bytes().any(|b| b.is_ascii_control()));
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn identity_headers_never_carry_control_characters(value in json_value()) {
        check_header_value(&value)?;
        if let Value::Object(map) = &value {
            for (name, member) in map {
                let path = [name.clone()];
                prop_assert_eq!(identity::lookup(map, &path), Some(member));
                check_header_value(member)?;
            }
        }
    }

    #[test]
    fn identity_headers_stop_at_4096_bytes(
        len in (MAX_HEADER_VALUE - 3)..(MAX_HEADER_VALUE + 3),
        parts in 1usize..4,
    ) {
        let text = "x".repeat(len);
        let single = json!(text);
        prop_assert_eq!(identity::header_value(&single).is_ok(), len <= MAX_HEADER_VALUE);
        // An array renders joined with commas: the limit applies to the joined text.
        let items: Vec<String> = (0..parts).map(|_| "y".repeat(len / parts)).collect();
        let joined = items.join(",").len();
        let array = json!(items);
        prop_assert_eq!(identity::header_value(&array).is_ok(), joined <= MAX_HEADER_VALUE);
    }
}
