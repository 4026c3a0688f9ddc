//! Registered-claim checks (RFC 7519 §4.1): `exp`, `nbf` with leeway, `iss`, `aud`.
#![forbid(unsafe_code)]

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::error::VerifyError;
use super::scan::{self, Kind, Span};

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

/// The registered claims of one token, as the rules read them: from a `serde_json` map, or
/// from the spans [`Spans`] recorded while scanning the payload's text (the request path).
pub trait Registered {
    /// `exp` or `nbf` in whole seconds: `Ok(None)` when absent, `Err` when not a number.
    fn numeric_date(&self, name: &str) -> Result<Option<i64>, WrongType>;
    /// `iss`.
    fn iss(&self) -> Text<'_>;
    /// Whether `aud` (a string or an array of strings) names one of `accepted`: `Ok(None)`
    /// when absent, `Err` when it is neither.
    fn aud(&self, accepted: &[String]) -> Result<Option<bool>, WrongType>;
}

/// A registered claim present with the wrong JSON type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongType;

/// A claim that should be a string.
#[derive(Debug, PartialEq, Eq)]
pub enum Text<'a> {
    Absent,
    NotString,
    Is(Cow<'a, str>),
}

impl Registered for Map<String, Value> {
    fn numeric_date(&self, name: &str) -> Result<Option<i64>, WrongType> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => seconds(n.as_str()).map(Some).ok_or(WrongType),
            Some(_) => Err(WrongType),
        }
    }

    fn iss(&self) -> Text<'_> {
        match self.get("iss") {
            None => Text::Absent,
            Some(Value::String(s)) => Text::Is(Cow::Borrowed(s)),
            Some(_) => Text::NotString,
        }
    }

    fn aud(&self, accepted: &[String]) -> Result<Option<bool>, WrongType> {
        match self.get("aud") {
            None => Ok(None),
            Some(Value::String(aud)) => Ok(Some(accepted.contains(aud))),
            Some(Value::Array(items)) => {
                let mut found = false;
                for item in items {
                    let Value::String(aud) = item else {
                        return Err(WrongType);
                    };
                    found |= accepted.contains(aud);
                }
                Ok(Some(found))
            }
            Some(_) => Err(WrongType),
        }
    }
}

/// Where the registered claims are in a payload's text, recorded by the scan that validated
/// it ([`Spans::record`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spans {
    exp: Option<Span>,
    nbf: Option<Span>,
    iss: Option<Span>,
    aud: Option<Span>,
    /// Read by the revocation check, not by the rules.
    jti: Option<Span>,
    sub: Option<Span>,
    iat: Option<Span>,
    /// `cnf` (RFC 7800): read by the sender-constrained checks, which skip a token without.
    cnf: Option<Span>,
}

impl Spans {
    /// Notes a top-level member of the payload, if it is a registered claim the rules read.
    pub fn record(&mut self, name: &[u8], value: Span) {
        let slot = match name {
            b"exp" => &mut self.exp,
            b"nbf" => &mut self.nbf,
            b"iss" => &mut self.iss,
            b"aud" => &mut self.aud,
            b"jti" => &mut self.jti,
            b"sub" => &mut self.sub,
            b"iat" => &mut self.iat,
            b"cnf" => &mut self.cnf,
            _ => return,
        };
        *slot = Some(value);
    }

    /// Whether the payload has a top-level `cnf` member (of any type: the sender-constrained
    /// checks judge it). The scan unescaped the name, so `"c\u006ef"` counts too.
    pub fn has_cnf(&self) -> bool {
        self.cnf.is_some()
    }

    /// The claims of `payload`, the text these spans were recorded from.
    pub fn of<'a>(&'a self, payload: &'a str) -> RawClaims<'a> {
        RawClaims {
            text: payload,
            spans: self,
        }
    }
}

/// A scanned payload's registered claims, read from its text.
#[derive(Clone, Copy, Debug)]
pub struct RawClaims<'a> {
    text: &'a str,
    spans: &'a Spans,
}

impl<'a> RawClaims<'a> {
    /// `jti`, `sub` or `iss` when it is a string (unescaped); `None` otherwise.
    pub fn string(&self, name: &str) -> Option<Cow<'a, str>> {
        let span = match name {
            "jti" => self.spans.jti,
            "sub" => self.spans.sub,
            "iss" => self.spans.iss,
            _ => None,
        }?;
        span.string(self.text)
    }

    /// `iat` in whole seconds (a fraction rounded down) when it is a finite number.
    pub fn iat(&self) -> Option<i64> {
        let span = self.spans.iat.filter(|s| s.kind == Kind::Number)?;
        let text = span.text(self.text);
        text.parse::<i64>().ok().or_else(|| {
            text.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| f.floor() as i64)
        })
    }
}

impl Registered for RawClaims<'_> {
    fn numeric_date(&self, name: &str) -> Result<Option<i64>, WrongType> {
        let span = match name {
            "exp" => self.spans.exp,
            "nbf" => self.spans.nbf,
            _ => None,
        };
        match span {
            None => Ok(None),
            Some(s) if s.kind == Kind::Number => {
                seconds(s.text(self.text)).map(Some).ok_or(WrongType)
            }
            Some(_) => Err(WrongType),
        }
    }

    fn iss(&self) -> Text<'_> {
        match self.spans.iss {
            None => Text::Absent,
            Some(s) => s.string(self.text).map_or(Text::NotString, Text::Is),
        }
    }

    fn aud(&self, accepted: &[String]) -> Result<Option<bool>, WrongType> {
        let Some(span) = self.spans.aud else {
            return Ok(None);
        };
        let names = |s: Cow<'_, str>| accepted.iter().any(|a| *a == s);
        match span.kind {
            Kind::String { .. } => Ok(span.string(self.text).map(names)),
            Kind::Array => {
                let array = span.text(self.text);
                let mut found = false;
                for item in scan::array_items(array) {
                    found |= names(item.string(array).ok_or(WrongType)?);
                }
                Ok(Some(found))
            }
            _ => Err(WrongType),
        }
    }
}

/// Checks the claims of a token whose signature is valid, at unix time `now`.
pub fn check(
    claims: &(impl Registered + ?Sized),
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(), VerifyError> {
    check_times(claims, rules, now).map(drop)
}

/// [`check`], returning the [`Times`] it read.
pub fn check_times(
    claims: &(impl Registered + ?Sized),
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<Times, VerifyError> {
    let exp = numeric_date(claims, "exp", "claim exp is not a number")?;
    check_exp(exp, rules, now)?;
    let nbf = numeric_date(claims, "nbf", "claim nbf is not a number")?;
    check_rest(claims, nbf, rules, now)?;
    Ok(Times { exp, nbf })
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
    pub fn of(claims: &(impl Registered + ?Sized)) -> Self {
        let read = |name| claims.numeric_date(name).ok().flatten();
        Self {
            exp: read("exp"),
            nbf: read("nbf"),
        }
    }
}

/// [`check`] for claims that passed it before, with their [`Times`]: same rules, same
/// answers, no number parsing.
pub fn check_with(
    claims: &(impl Registered + ?Sized),
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
    claims: &(impl Registered + ?Sized),
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
        match claims.iss() {
            Text::Absent => return Err(VerifyError::MissingIss),
            Text::Is(iss) if rules.issuers.iter().any(|i| *i == iss) => {}
            Text::Is(_) => return Err(VerifyError::IssuerMismatch),
            Text::NotString => return Err(VerifyError::BadClaim("claim iss is not a string")),
        }
    }
    if !rules.audiences.is_empty() {
        match claims.aud(rules.audiences) {
            Ok(None) => return Err(VerifyError::MissingAud),
            Ok(Some(true)) => {}
            Ok(Some(false)) => return Err(VerifyError::AudienceMismatch),
            Err(WrongType) => {
                return Err(VerifyError::BadClaim(
                    "claim aud is not a string or array of strings",
                ))
            }
        }
    }
    Ok(())
}

/// A NumericDate claim in whole seconds, if present; anything but a JSON number is refused.
fn numeric_date(
    claims: &(impl Registered + ?Sized),
    name: &str,
    not_a_number: &'static str,
) -> Result<Option<i64>, VerifyError> {
    claims
        .numeric_date(name)
        .map_err(|WrongType| VerifyError::BadClaim(not_a_number))
}

/// A JSON number's text in whole seconds, as serde_json's `Number` reads it (`as_i64`, then
/// `is_u64`, then `as_f64`). Rounds up: with an integer `now`, `now >= 100.5` iff `now >= 101`
/// and `now < 100.5` iff `now < 101`, so both the `exp` and the `nbf` comparison stay exact.
/// Saturates at the `i64` bounds (`as` from `f64` saturates); numbers beyond `f64` (`1e400`)
/// are refused.
fn seconds(text: &str) -> Option<i64> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(i);
    }
    if text.parse::<u64>().is_ok() {
        return Some(i64::MAX);
    }
    let f = text.parse::<f64>().ok()?;
    f.is_finite().then(|| f.ceil() as i64)
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
