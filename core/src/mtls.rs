//! Certificate-bound tokens (RFC 8705 section 3): the `cnf.x5t#S256` binding, the client
//! certificate's thumbprint, the `auth_jwt_mtls` policy and its directive value.
#![forbid(unsafe_code)]

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::directive::ConfError;

/// `auth_jwt_mtls`: which tokens must be bound to the connection's client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MtlsPolicy {
    /// No check: the binding is ignored.
    Off,
    /// A token that carries `cnf.x5t#S256` is checked; an unbound token passes.
    #[default]
    Optional,
    /// Only bound tokens pass, on the connection of their certificate.
    Required,
}

/// Arguments of `auth_jwt_mtls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtlsArgs<'a> {
    pub policy: MtlsPolicy,
    /// `certificate=$var`: the client certificate (PEM, or URL-encoded PEM such as
    /// `$ssl_client_escaped_cert`) from a variable, for deployments behind a TLS terminator.
    pub certificate: Option<&'a str>,
}

/// Parses `auth_jwt_mtls required | optional | off [certificate=$variable]`.
pub fn parse_mtls<'a>(args: &[&'a str]) -> Result<MtlsArgs<'a>, ConfError> {
    let (first, rest) = args
        .split_first()
        .ok_or_else(|| ConfError::Other("invalid number of arguments".into()))?;
    let policy = match *first {
        "required" => MtlsPolicy::Required,
        "optional" => MtlsPolicy::Optional,
        "off" => MtlsPolicy::Off,
        other => return Err(ConfError::InvalidValue(other.into())),
    };
    let certificate = match rest {
        [] => None,
        [param] if policy != MtlsPolicy::Off => {
            let Some(var) = param.strip_prefix("certificate=") else {
                return Err(ConfError::InvalidValue((*param).into()));
            };
            if !var.starts_with('$') || var.len() < 2 {
                return Err(ConfError::NotVariable(var.into()));
            }
            Some(var)
        }
        _ => return Err(ConfError::Other("invalid number of arguments".into())),
    };
    Ok(MtlsArgs {
        policy,
        certificate,
    })
}

/// Why a token was refused for its certificate binding. `Display` is the challenge's
/// `error_description`: fixed text, never bytes of the token or the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsError {
    /// `required`, and the token has no `cnf.x5t#S256`.
    Unbound,
    /// The token is bound, and the connection has no client certificate.
    NoCertificate,
    /// The client certificate is not the one the token is bound to.
    Mismatch,
    /// `cnf` or `cnf.x5t#S256` is not of the RFC 8705 shape.
    BadBinding,
    /// The certificate from `certificate=$var` is neither PEM nor URL-encoded PEM.
    BadCertificate,
}

impl MtlsError {
    /// The `result` label of `nginx_auth_jwt_sender_constrained_total{method="mtls"}`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unbound => "unbound",
            Self::NoCertificate => "no_certificate",
            Self::Mismatch => "mismatch",
            Self::BadBinding => "bad_binding",
            Self::BadCertificate => "bad_certificate",
        }
    }
}

impl fmt::Display for MtlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unbound => "token not bound to a client certificate",
            Self::NoCertificate => "token bound to a client certificate, none presented",
            Self::Mismatch => "client certificate does not match the token's binding",
            Self::BadBinding => "malformed cnf.x5t#S256 claim",
            Self::BadCertificate => "client certificate unreadable",
        })
    }
}

impl std::error::Error for MtlsError {}

/// The token's `cnf.x5t#S256`, when it has one. A `cnf` that is not an object, or an
/// `x5t#S256` that is not the base64url text of 32 bytes, is a malformed binding: refused
/// rather than ignored, so that a token cannot shed its binding by mangling it.
pub fn binding(claims: &Map<String, Value>) -> Result<Option<&str>, MtlsError> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(None);
    };
    let cnf = cnf.as_object().ok_or(MtlsError::BadBinding)?;
    let Some(x5t) = cnf.get("x5t#S256") else {
        return Ok(None);
    };
    let x5t = x5t.as_str().ok_or(MtlsError::BadBinding)?;
    match URL_SAFE_NO_PAD.decode(x5t) {
        Ok(bytes) if bytes.len() == 32 => Ok(Some(x5t)),
        _ => Err(MtlsError::BadBinding),
    }
}

/// RFC 8705 `x5t#S256`: base64url (no padding) of the SHA-256 of the certificate's DER.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(crate::jwt::verify::sha256(der))
}

/// The client certificate (DER) from a variable's value: PEM, or PEM URL-encoded the way
/// NGINX's `$ssl_client_escaped_cert` and most terminators send it.
pub fn certificate_from_text(text: &[u8]) -> Result<Vec<u8>, MtlsError> {
    let decoded;
    let pem = if text.contains(&b'%') {
        decoded = percent_decode(text).ok_or(MtlsError::BadCertificate)?;
        &decoded[..]
    } else {
        text
    };
    openssl::x509::X509::from_pem(pem)
        .and_then(|cert| cert.to_der())
        .map_err(|_| MtlsError::BadCertificate)
}

fn percent_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        if b != b'%' {
            out.push(if b == b'+' { b' ' } else { b });
            continue;
        }
        let hi = (*bytes.next()? as char).to_digit(16)?;
        let lo = (*bytes.next()? as char).to_digit(16)?;
        out.push(u8::try_from(hi * 16 + lo).ok()?);
    }
    Some(out)
}

/// What the check found, for the counters: a bound token on its certificate, or a token
/// the policy let through without a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsVerdict {
    Bound,
    Unbound,
}

/// The certificate-binding check of one verified token. `certificate` is the client
/// certificate's DER, when the connection (or the configured variable) has one. The
/// thumbprints are compared in constant time.
pub fn check(
    policy: MtlsPolicy,
    claims: &Map<String, Value>,
    certificate: Option<&[u8]>,
) -> Result<MtlsVerdict, MtlsError> {
    if policy == MtlsPolicy::Off {
        return Ok(MtlsVerdict::Unbound);
    }
    let Some(expected) = binding(claims)? else {
        return match policy {
            MtlsPolicy::Required => Err(MtlsError::Unbound),
            _ => Ok(MtlsVerdict::Unbound),
        };
    };
    let der = certificate.ok_or(MtlsError::NoCertificate)?;
    let actual = thumbprint(der);
    // Both are 43 characters (32 bytes, checked above), so the lengths say nothing.
    if actual.len() == expected.len() && openssl::memcmp::eq(actual.as_bytes(), expected.as_bytes())
    {
        Ok(MtlsVerdict::Bound)
    } else {
        Err(MtlsError::Mismatch)
    }
}

#[cfg(test)]
#[path = "mtls_tests.rs"]
mod tests;
