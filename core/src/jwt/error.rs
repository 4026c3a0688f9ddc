//! Outcome classes (`$jwt_status`) and the typed reasons a token is refused (`$jwt_error`).
#![forbid(unsafe_code)]

use std::fmt;

use super::alg::Alg;

/// The value of `$jwt_status` and the `result` label of the request counter.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Status {
    Ok,
    Missing,
    Invalid,
    Expired,
    Forbidden,
    Revoked,
    NoKeys,
    Bypass,
}

impl Status {
    /// Every status, in a stable order (for metrics exposition).
    pub const ALL: [Status; 8] = [
        Status::Ok,
        Status::Missing,
        Status::Invalid,
        Status::Expired,
        Status::Forbidden,
        Status::Revoked,
        Status::NoKeys,
        Status::Bypass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Invalid => "invalid",
            Status::Expired => "expired",
            Status::Forbidden => "forbidden",
            Status::Revoked => "revoked",
            Status::NoKeys => "no_keys",
            Status::Bypass => "bypass",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token was refused.
///
/// `Display` is a short lower-case reason fit for `error_description` and logs. It never
/// echoes bytes from the token: only static text, algorithm names and the integer time
/// values the verdict is based on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VerifyError {
    /// Not a well-formed compact JWS; the text says which part.
    Malformed(&'static str),
    /// Five segments: a JWE.
    Encrypted,
    /// A JWE refused (`auth_jwt_type encrypted` or `nested`); the text says why.
    Jwe(&'static str),
    /// Longer than the configured maximum.
    TooLarge,
    /// `alg` is `none` in any letter case.
    AlgNone,
    /// `alg` is not one this module implements.
    UnsupportedAlg,
    /// `alg` is implemented but not in the configured allow-list.
    AlgNotAllowed(Alg),
    /// A `crit` header is present; no extension is supported.
    CritUnsupported,
    /// A `jku`, `x5u` or `jwk` header is present; keys never come from the token.
    KeyReferenceHeader(&'static str),
    /// `kid` names no configured key.
    UnknownKid,
    /// Keys with this `kid` exist but none is of a type (or `alg`) that fits the token.
    KeyTypeMismatch,
    /// No `kid` and no key fits the algorithm.
    NoFittingKey,
    /// No fitting key verifies the signature.
    BadSignature,
    /// `exp` (seconds) plus leeway has passed.
    Expired { exp: i64 },
    /// `nbf` (seconds) minus leeway is still ahead.
    NotYetValid { nbf: i64 },
    /// No `exp` while one is required.
    MissingExp,
    /// A registered claim has the wrong JSON type; the text names it.
    BadClaim(&'static str),
    /// `iss` is not an accepted issuer.
    IssuerMismatch,
    /// Issuers are configured and the token has no `iss`.
    MissingIss,
    /// No `aud` value is an accepted audience.
    AudienceMismatch,
    /// Audiences are configured and the token has no `aud`.
    MissingAud,
}

impl VerifyError {
    /// The `$jwt_status` this refusal maps to.
    pub fn status(&self) -> Status {
        match self {
            VerifyError::Expired { .. } => Status::Expired,
            _ => Status::Invalid,
        }
    }

    /// True when the token names a key we do not have: the key set may be out of date.
    pub fn is_unknown_kid(&self) -> bool {
        matches!(self, VerifyError::UnknownKid)
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Malformed(what) => write!(f, "malformed token: {what}"),
            VerifyError::Encrypted => f.write_str("encrypted tokens are not supported"),
            VerifyError::Jwe(what) => f.write_str(what),
            VerifyError::TooLarge => f.write_str("token too large"),
            VerifyError::AlgNone => f.write_str("algorithm none is not allowed"),
            VerifyError::UnsupportedAlg => f.write_str("unsupported algorithm"),
            VerifyError::AlgNotAllowed(alg) => write!(f, "algorithm {alg} is not allowed"),
            VerifyError::CritUnsupported => f.write_str("unsupported critical header"),
            VerifyError::KeyReferenceHeader(name) => write!(f, "header {name} is not accepted"),
            VerifyError::UnknownKid => f.write_str("no key matches kid"),
            VerifyError::KeyTypeMismatch => f.write_str("key type does not fit algorithm"),
            VerifyError::NoFittingKey => f.write_str("no key for algorithm"),
            VerifyError::BadSignature => f.write_str("signature verification failed"),
            VerifyError::Expired { exp } => write!(f, "token expired at {exp}"),
            VerifyError::NotYetValid { nbf } => write!(f, "token not valid before {nbf}"),
            VerifyError::MissingExp => f.write_str("token has no exp claim"),
            VerifyError::BadClaim(what) => f.write_str(what),
            VerifyError::IssuerMismatch => f.write_str("issuer not accepted"),
            VerifyError::MissingIss => f.write_str("token has no iss claim"),
            VerifyError::AudienceMismatch => f.write_str("audience not accepted"),
            VerifyError::MissingAud => f.write_str("token has no aud claim"),
        }
    }
}

impl std::error::Error for VerifyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let cases = [
            (
                VerifyError::Malformed("expected 3 segments"),
                "malformed token: expected 3 segments",
            ),
            (VerifyError::Encrypted, "encrypted tokens are not supported"),
            (
                VerifyError::Jwe("jwe decryption failed"),
                "jwe decryption failed",
            ),
            (VerifyError::TooLarge, "token too large"),
            (VerifyError::AlgNone, "algorithm none is not allowed"),
            (VerifyError::UnsupportedAlg, "unsupported algorithm"),
            (
                VerifyError::AlgNotAllowed(Alg::RS256),
                "algorithm RS256 is not allowed",
            ),
            (VerifyError::CritUnsupported, "unsupported critical header"),
            (
                VerifyError::KeyReferenceHeader("jku"),
                "header jku is not accepted",
            ),
            (VerifyError::UnknownKid, "no key matches kid"),
            (
                VerifyError::KeyTypeMismatch,
                "key type does not fit algorithm",
            ),
            (VerifyError::NoFittingKey, "no key for algorithm"),
            (VerifyError::BadSignature, "signature verification failed"),
            (
                VerifyError::Expired { exp: 1698157920 },
                "token expired at 1698157920",
            ),
            (
                VerifyError::NotYetValid { nbf: 1698157920 },
                "token not valid before 1698157920",
            ),
            (VerifyError::MissingExp, "token has no exp claim"),
            (
                VerifyError::BadClaim("claim exp is not a number"),
                "claim exp is not a number",
            ),
            (VerifyError::IssuerMismatch, "issuer not accepted"),
            (VerifyError::MissingIss, "token has no iss claim"),
            (VerifyError::AudienceMismatch, "audience not accepted"),
            (VerifyError::MissingAud, "token has no aud claim"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
            let expected = if matches!(err, VerifyError::Expired { .. }) {
                Status::Expired
            } else {
                Status::Invalid
            };
            assert_eq!(err.status(), expected, "{err}");
            assert_eq!(err.is_unknown_kid(), err == VerifyError::UnknownKid);
        }
    }

    #[test]
    fn status_names() {
        let names: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "ok",
                "missing",
                "invalid",
                "expired",
                "forbidden",
                "revoked",
                "no_keys",
                "bypass"
            ]
        );
        assert_eq!(Status::NoKeys.to_string(), "no_keys");
    }
}
