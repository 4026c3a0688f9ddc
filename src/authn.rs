//! One token in, one verdict out: size, parse, signature, then claims, in that order.
#![forbid(unsafe_code)]

use serde_json::{Map, Value};

use crate::jwt::alg::{Alg, AlgSet};
use crate::jwt::claims::{self, ClaimRules};
use crate::jwt::error::VerifyError;
use crate::jwt::token;
use crate::jwt::verify::KeySet;

/// What a location demands of a token, besides a valid signature.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// `auth_jwt_max_size`: longer tokens are refused before any parsing.
    pub max_size: usize,
    /// `auth_jwt_algorithms`.
    pub algorithms: AlgSet,
    /// `exp`/`nbf`/`iss`/`aud` rules.
    pub claims: ClaimRules<'a>,
}

/// A token whose signature and claims passed: what variables and identity headers read.
#[derive(Debug)]
pub struct Verified {
    pub alg: Alg,
    pub kid: Option<String>,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// The decoded payload, for `$jwt_payload`.
    pub payload: String,
}

/// A refused token, with what the log line may say about it.
#[derive(Debug)]
pub struct Denial {
    pub error: VerifyError,
    /// The header's `kid` and `alg` when the header parsed: attacker-chosen, log-escaped later.
    pub kid: Option<String>,
    pub alg: Option<Alg>,
}

impl From<VerifyError> for Denial {
    fn from(error: VerifyError) -> Self {
        Self {
            error,
            kid: None,
            alg: None,
        }
    }
}

/// Verifies `token` against `keys` under `policy` at time `now` (seconds since the epoch).
pub fn authenticate(
    token: &[u8],
    keys: &KeySet,
    policy: &Policy<'_>,
    now: i64,
) -> Result<Verified, Denial> {
    if token.len() > policy.max_size {
        return Err(VerifyError::TooLarge.into());
    }
    let parsed = token::parse(token)?;
    let denial = |error| Denial {
        error,
        kid: parsed.kid.clone(),
        alg: Some(parsed.alg),
    };
    keys.verify(&parsed, policy.algorithms).map_err(denial)?;
    claims::check(&parsed.claims, &policy.claims, now).map_err(denial)?;
    Ok(Verified {
        alg: parsed.alg,
        kid: parsed.kid,
        header: parsed.header,
        claims: parsed.claims,
        payload: parsed.payload_json,
    })
}

/// Makes attacker-chosen text (a `kid`) safe for one log line: printable ASCII only, quotes
/// and backslashes escaped, at most 64 characters.
pub fn log_safe(text: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::with_capacity(text.len().min(MAX + 3));
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push_str("...");
            break;
        }
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn oversized_token_is_refused_before_parsing() {
        let policy = Policy {
            max_size: 8,
            algorithms: AlgSet::all(),
            claims: ClaimRules {
                leeway: 0,
                require_exp: true,
                issuers: &[],
                audiences: &[],
            },
        };
        let keys = KeySet::new(Vec::new());
        let denial = authenticate(b"aaaaaaaaa", &keys, &policy, 0).unwrap_err();
        assert!(matches!(denial.error, VerifyError::TooLarge));
    }
}
