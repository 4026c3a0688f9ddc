//! Tests of the claim rules, each case read both from a map and from the scanned text.
use super::*;
use VerifyError::*;

const NOW: i64 = 1_000_000;

fn claims(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap()
}

/// The rules on `claims` as a map, checked to answer alike on the claims' scanned text
/// (the request path), with `check_with` on the times that `check_times` read.
fn check(claims: &Map<String, Value>, rules: &ClaimRules<'_>, now: i64) -> Result<(), VerifyError> {
    let by_map = super::check(claims, rules, now);
    let text = serde_json::to_string(claims).unwrap();
    let limits = crate::jwt::json::Limits {
        max_depth: 16,
        max_members: 1024,
    };
    let mut spans = Spans::default();
    scan::scan_object(text.as_bytes(), limits, |k, v| spans.record(k, v)).unwrap();
    let raw = spans.of(&text);
    let times = check_times(&raw, rules, now);
    assert_eq!(times.map(drop), by_map, "{text}");
    if let Ok(times) = times {
        assert_eq!(times, Times::of(claims), "{text}");
        assert_eq!(check_with(&raw, times, rules, now), by_map, "{text}");
        assert_eq!(check_with(claims, times, rules, now), by_map, "{text}");
    }
    by_map
}

fn rules<'a>(leeway: i64, issuers: &'a [String], audiences: &'a [String]) -> ClaimRules<'a> {
    ClaimRules {
        leeway,
        require_exp: true,
        issuers,
        audiences,
    }
}

#[test]
fn time_claims() {
    let exp_nan = BadClaim("claim exp is not a number");
    let nbf_nan = BadClaim("claim nbf is not a number");
    let cases: &[(&str, i64, Result<(), VerifyError>)] = &[
        (r#"{"exp":1000001}"#, 0, Ok(())),
        (r#"{"exp":1000000}"#, 0, Err(Expired { exp: 1_000_000 })),
        (r#"{"exp":999999}"#, 0, Err(Expired { exp: 999_999 })),
        (r#"{"exp":999999}"#, 1, Err(Expired { exp: 999_999 })),
        (r#"{"exp":999999}"#, 2, Ok(())),
        (r#"{"exp":999999}"#, -100, Err(Expired { exp: 999_999 })),
        (r#"{"exp":1000000.5}"#, 0, Ok(())),
        (r#"{"exp":999999.5}"#, 0, Err(Expired { exp: 1_000_000 })),
        (r#"{"exp":1e300}"#, 0, Ok(())),
        (r#"{"exp":-1e300}"#, 0, Err(Expired { exp: i64::MIN })),
        (r#"{"exp":-1}"#, 0, Err(Expired { exp: -1 })),
        (r#"{"exp":18446744073709551615}"#, 0, Ok(())),
        (r#"{"exp":9223372036854775807}"#, i64::MAX, Ok(())),
        (
            r#"{"exp":-9223372036854775808}"#,
            0,
            Err(Expired { exp: i64::MIN }),
        ),
        (r#"{"exp":"2000000"}"#, 0, Err(exp_nan)),
        (r#"{"exp":null}"#, 0, Err(exp_nan)),
        (r#"{"exp":true}"#, 0, Err(exp_nan)),
        (r#"{"exp":[2000000]}"#, 0, Err(exp_nan)),
        (r#"{"exp":{"$numberLong":"2000000"}}"#, 0, Err(exp_nan)),
        // JSON numbers beyond f64 parse (they keep their text) but are no time.
        (r#"{"exp":1e999}"#, 0, Err(exp_nan)),
        (r#"{"exp":-1e999}"#, 0, Err(exp_nan)),
        (r#"{"exp":2000000,"nbf":1e999}"#, 0, Err(nbf_nan)),
        (r#"{"exp":1e+6}"#, 0, Err(Expired { exp: 1_000_000 })),
        (r#"{"exp":2e6,"nbf":-0}"#, 0, Ok(())),
        (
            r#"{"exp":2000000.0,"nbf":1000001.000}"#,
            0,
            Err(NotYetValid { nbf: 1_000_001 }),
        ),
        (r#"{}"#, 0, Err(MissingExp)),
        (r#"{"nbf":1}"#, 0, Err(MissingExp)),
        (r#"{"exp":2000000,"nbf":1000000}"#, 0, Ok(())),
        (
            r#"{"exp":2000000,"nbf":1000001}"#,
            0,
            Err(NotYetValid { nbf: 1_000_001 }),
        ),
        (r#"{"exp":2000000,"nbf":1000001}"#, 1, Ok(())),
        (
            r#"{"exp":2000000,"nbf":1000000.5}"#,
            0,
            Err(NotYetValid { nbf: 1_000_001 }),
        ),
        (
            r#"{"exp":2000000,"nbf":1e300}"#,
            0,
            Err(NotYetValid { nbf: i64::MAX }),
        ),
        (r#"{"exp":2000000,"nbf":-1e300}"#, 0, Ok(())),
        (r#"{"exp":2000000,"nbf":"0"}"#, 0, Err(nbf_nan)),
        (r#"{"exp":2000000,"nbf":null}"#, 0, Err(nbf_nan)),
        (r#"{"exp":1,"nbf":"x"}"#, 0, Err(Expired { exp: 1 })),
    ];
    for &(json, leeway, expected) in cases {
        assert_eq!(
            check(&claims(json), &rules(leeway, &[], &[]), NOW),
            expected,
            "{json} {leeway}"
        );
    }
}

#[test]
fn exp_optional_and_extreme_now() {
    let relaxed = ClaimRules {
        require_exp: false,
        ..rules(0, &[], &[])
    };
    assert_eq!(check(&claims("{}"), &relaxed, NOW), Ok(()));
    assert_eq!(
        check(&claims(r#"{"exp":"1"}"#), &relaxed, NOW),
        Err(BadClaim("claim exp is not a number"))
    );
    let far = claims(r#"{"exp":9223372036854775807,"nbf":-9223372036854775808}"#);
    for now in [i64::MIN, -1, 0, i64::MAX - 1] {
        assert_eq!(
            check(&far, &rules(i64::MAX, &[], &[]), now),
            Ok(()),
            "{now}"
        );
    }
    assert_eq!(
        check(&far, &rules(0, &[], &[]), i64::MAX),
        Err(Expired { exp: i64::MAX })
    );
}

#[test]
fn issuer_and_audience() {
    let iss = [
        "https://a.example".to_string(),
        "https://b.example".to_string(),
    ];
    let aud = ["api".to_string(), "web".to_string()];
    let aud_type = BadClaim("claim aud is not a string or array of strings");
    let cases: &[(&str, bool, bool, Result<(), VerifyError>)] = &[
        (
            r#"{"iss":"https://b.example","aud":"x"}"#,
            true,
            false,
            Ok(()),
        ),
        (
            r#"{"iss":"https://c.example"}"#,
            true,
            false,
            Err(IssuerMismatch),
        ),
        (
            r#"{"iss":"https://a.example/"}"#,
            true,
            false,
            Err(IssuerMismatch),
        ),
        (
            r#"{"iss":"HTTPS://A.EXAMPLE"}"#,
            true,
            false,
            Err(IssuerMismatch),
        ),
        (r#"{}"#, true, false, Err(MissingIss)),
        (
            r#"{"iss":["https://a.example"]}"#,
            true,
            false,
            Err(BadClaim("claim iss is not a string")),
        ),
        (
            r#"{"iss":null}"#,
            true,
            false,
            Err(BadClaim("claim iss is not a string")),
        ),
        (r#"{"iss":5,"aud":5}"#, false, false, Ok(())),
        (r#"{"aud":"web"}"#, false, true, Ok(())),
        (r#"{"aud":["x","api"]}"#, false, true, Ok(())),
        (r#"{"aud":"Web"}"#, false, true, Err(AudienceMismatch)),
        (r#"{"aud":["x","y"]}"#, false, true, Err(AudienceMismatch)),
        (r#"{"aud":[]}"#, false, true, Err(AudienceMismatch)),
        (r#"{}"#, false, true, Err(MissingAud)),
        (r#"{"aud":["api",1]}"#, false, true, Err(aud_type)),
        (r#"{"aud":[["api"]]}"#, false, true, Err(aud_type)),
        (r#"{"aud":{"api":true}}"#, false, true, Err(aud_type)),
        (r#"{"aud":null}"#, false, true, Err(aud_type)),
        (
            r#"{"iss":"https://x","aud":"api"}"#,
            true,
            true,
            Err(IssuerMismatch),
        ),
        (
            r#"{"iss":"https://a.example","aud":"api"}"#,
            true,
            true,
            Ok(()),
        ),
    ];
    for &(json, with_iss, with_aud, expected) in cases {
        let mut full = claims(json);
        full.insert("exp".into(), Value::from(NOW + 60));
        let r = rules(
            0,
            if with_iss { &iss } else { &[] },
            if with_aud { &aud } else { &[] },
        );
        assert_eq!(check(&full, &r, NOW), expected, "{json}");
    }
}
