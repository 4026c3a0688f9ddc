//! Registered-claim checks (RFC 7519 §4.1): `exp`, `nbf` with leeway, `iss`, `aud`.
#![forbid(unsafe_code)]

use serde_json::{Map, Number, Value};

use super::error::VerifyError;

/// What the configuration asks of a token's claims.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRules<'a> {
    /// Allowed clock skew in seconds; negative values count as 0.
    pub leeway: i64,
    /// Refuse tokens without `exp` (RFC 9068 access tokens always carry one).
    pub require_exp: bool,
    /// Accepted `iss` values; empty: `iss` is not checked.
    pub issuers: &'a [String],
    /// Accepted audiences; empty: `aud` is not checked.
    pub audiences: &'a [String],
}

/// Checks the claims of a token whose signature is valid, at unix time `now`.
pub fn check(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(), VerifyError> {
    let exp = numeric_date(claims, "exp", "claim exp is not a number")?;
    check_exp(exp, rules, now)?;
    let nbf = numeric_date(claims, "nbf", "claim nbf is not a number")?;
    check_rest(claims, nbf, rules, now)
}

/// `exp` and `nbf` of claims that passed [`check`] once, read then, so that a cached token's
/// later checks need not read JSON numbers again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Times {
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
}

impl Times {
    /// The times of claims that passed [`check`] (anything else reads as absent).
    pub fn of(claims: &Map<String, Value>) -> Self {
        let read = |name| numeric_date(claims, name, "").ok().flatten();
        Self {
            exp: read("exp"),
            nbf: read("nbf"),
        }
    }
}

/// [`check`] for claims that passed it before, with their [`Times`]: same rules, same
/// answers, no number parsing.
pub fn check_with(
    claims: &Map<String, Value>,
    times: Times,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(), VerifyError> {
    check_exp(times.exp, rules, now)?;
    check_rest(claims, times.nbf, rules, now)
}

// i128 below: `exp + leeway` and `now + leeway` cannot overflow, whatever the token says.
fn check_exp(exp: Option<i64>, rules: &ClaimRules<'_>, now: i64) -> Result<(), VerifyError> {
    let leeway = i128::from(rules.leeway.max(0));
    match exp {
        Some(exp) if i128::from(now) >= i128::from(exp) + leeway => {
            Err(VerifyError::Expired { exp })
        }
        None if rules.require_exp => Err(VerifyError::MissingExp),
        _ => Ok(()),
    }
}

fn check_rest(
    claims: &Map<String, Value>,
    nbf: Option<i64>,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(), VerifyError> {
    let leeway = i128::from(rules.leeway.max(0));
    if let Some(nbf) = nbf {
        if i128::from(now) + leeway < i128::from(nbf) {
            return Err(VerifyError::NotYetValid { nbf });
        }
    }
    if !rules.issuers.is_empty() {
        match claims.get("iss") {
            None => return Err(VerifyError::MissingIss),
            Some(Value::String(iss)) if rules.issuers.contains(iss) => {}
            Some(Value::String(_)) => return Err(VerifyError::IssuerMismatch),
            Some(_) => return Err(VerifyError::BadClaim("claim iss is not a string")),
        }
    }
    if !rules.audiences.is_empty() {
        check_audience(claims.get("aud"), rules.audiences)?;
    }
    Ok(())
}

/// A NumericDate claim in whole seconds, if present; anything but a JSON number is refused.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    not_a_number: &'static str,
) -> Result<Option<i64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => seconds(n)
            .map(Some)
            .ok_or(VerifyError::BadClaim(not_a_number)),
        Some(_) => Err(VerifyError::BadClaim(not_a_number)),
    }
}

/// Rounds up: with an integer `now`, `now >= 100.5` iff `now >= 101` and `now < 100.5` iff
/// `now < 101`, so both the `exp` and the `nbf` comparison stay exact. Saturates at the
/// `i64` bounds (`as` from `f64` saturates); non-finite values cannot come from JSON, but
/// are refused all the same.
fn seconds(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_u64() {
        return Some(i64::MAX);
    }
    let f = n.as_f64()?;
    f.is_finite().then(|| f.ceil() as i64)
}

fn check_audience(aud: Option<&Value>, accepted: &[String]) -> Result<(), VerifyError> {
    const NOT_STRINGS: VerifyError =
        VerifyError::BadClaim("claim aud is not a string or array of strings");
    let found = match aud {
        None => return Err(VerifyError::MissingAud),
        Some(Value::String(aud)) => accepted.contains(aud),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                let Value::String(aud) = item else {
                    return Err(NOT_STRINGS);
                };
                found |= accepted.contains(aud);
            }
            found
        }
        Some(_) => return Err(NOT_STRINGS),
    };
    if found {
        Ok(())
    } else {
        Err(VerifyError::AudienceMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VerifyError::*;

    const NOW: i64 = 1_000_000;

    fn claims(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
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
}
