//! Compact JWS parsing: segments, strict base64url and JOSE header rules; no signature check.
//! The payload is decoded only on demand ([`Token::payload`]), so that it can wait until the
//! signature has verified: an attacker's payload is never parsed for a forged token.
#![forbid(unsafe_code)]

use std::fmt;

use super::alg::Alg;
use super::claims::{RawClaims, Spans};
use super::error::VerifyError;
use super::json::{JsonError, LazyJson, Limits};
use super::scan::{self, Span};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Longest `kid` accepted in a token header, in bytes.
pub const MAX_KID_LEN: usize = 256;

pub const HEADER_LIMITS: Limits = Limits {
    max_depth: 8,
    max_members: 64,
};

pub const PAYLOAD_LIMITS: Limits = Limits {
    max_depth: 16,
    max_members: 1024,
};

/// Headers that point at keys chosen by the token's author; keys only come from configuration.
const KEY_REFERENCE_HEADERS: [&str; 3] = ["jku", "x5u", "jwk"];

/// A compact JWS with a valid header and segments, whose signature has not been checked
/// yet and whose payload has not been decoded yet.
pub struct Token<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    /// The header's JSON text, its members parsed on first use (`$jwt_header_*`).
    pub header: LazyJson,
    /// `<header>.<payload>` exactly as received: the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub signature: Vec<u8>,
    /// The payload segment, base64url as received.
    payload: &'a [u8],
}

/// A token's decoded payload, scanned: strict JSON, its registered claims located.
pub struct Payload {
    /// The payload's JSON text (`$jwt_payload`), its claims parsed on first use.
    pub claims: LazyJson,
    /// Where `exp`, `nbf`, `iss` and `aud` are in that text.
    pub spans: Spans,
}

impl Payload {
    /// The payload's JSON text.
    pub fn json(&self) -> &str {
        self.claims.text()
    }

    /// Its registered claims, as the claim rules read them.
    pub fn registered(&self) -> RawClaims<'_> {
        self.spans.of(self.claims.text())
    }
}

impl fmt::Debug for Payload {
    /// Leaves out the claims: a token's content never reaches logs through `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("len", &self.json().len())
            .finish_non_exhaustive()
    }
}

impl Token<'_> {
    /// Decodes and scans the payload: strict base64url, UTF-8, a strict JSON object (every
    /// rule of `json::parse_object`, without building its tree).
    pub fn payload(&self) -> Result<Payload, VerifyError> {
        let bytes =
            decode(self.payload).ok_or(VerifyError::Malformed("bad base64url in payload"))?;
        Payload::from_bytes(bytes)
    }
}

impl Payload {
    /// Scans decoded claims (a JWS payload, a JWE plaintext): UTF-8, a strict JSON object.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Payload, VerifyError> {
        let json =
            String::from_utf8(bytes).map_err(|_| VerifyError::Malformed("payload is not utf-8"))?;
        let mut spans = Spans::default();
        scan::scan_object(json.as_bytes(), PAYLOAD_LIMITS, |name, value| {
            spans.record(name, value)
        })
        .map_err(payload_error)?;
        Ok(Payload {
            claims: LazyJson::new(json, PAYLOAD_LIMITS),
            spans,
        })
    }
}

/// The header members the rules read.
#[derive(Default)]
struct HeaderSpans {
    alg: Option<Span>,
    kid: Option<Span>,
    crit: bool,
    /// Which of [`KEY_REFERENCE_HEADERS`] are present.
    key_reference: [bool; 3],
}

impl fmt::Debug for Token<'_> {
    /// Leaves out claims and signature: a token's content never reaches logs through `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("alg", &self.alg)
            .field("has_kid", &self.kid.is_some())
            .field("signature_len", &self.signature.len())
            .finish_non_exhaustive()
    }
}

/// Parses a compact JWS (RFC 7515 §7.1), checking everything but the signature.
pub fn parse(token: &[u8]) -> Result<Token<'_>, VerifyError> {
    let segments = || VerifyError::Malformed("expected 3 segments");
    let (Some(first), Some(second)) = (find_dot(token), token.iter().rposition(|&b| b == b'.'))
    else {
        return Err(segments());
    };
    let between = token.get(first + 1..second).ok_or_else(segments)?;
    match 2 + dots(between) {
        2 => {}
        4 => return Err(VerifyError::Encrypted),
        _ => return Err(segments()),
    }
    let (header, payload, signature) = (
        &token[..first],
        &token[first + 1..second],
        &token[second + 1..],
    );
    // What the signature covers: `header.payload`, as received.
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .ok_or_else(segments)?;

    if header.is_empty() {
        return Err(VerifyError::Malformed("empty header"));
    }
    let header = decode(header).ok_or(VerifyError::Malformed("bad base64url in header"))?;
    let mut found = HeaderSpans::default();
    scan::scan_object(&header, HEADER_LIMITS, |name, value| match name {
        b"alg" => found.alg = Some(value),
        b"kid" => found.kid = Some(value),
        b"crit" => found.crit = true,
        _ => {
            if let Some(i) = KEY_REFERENCE_HEADERS
                .iter()
                .position(|h| h.as_bytes() == name)
            {
                found.key_reference[i] = true;
            }
        }
    })
    .map_err(header_error)?;
    let header = String::from_utf8(header).map_err(|_| header_error(JsonError::Syntax))?;
    let alg = match found.alg.map(|s| s.string(&header)) {
        None => return Err(VerifyError::Malformed("header has no alg")),
        Some(Some(s)) if s.eq_ignore_ascii_case("none") => return Err(VerifyError::AlgNone),
        Some(Some(s)) => Alg::from_name(&s).ok_or(VerifyError::UnsupportedAlg)?,
        Some(None) => return Err(VerifyError::Malformed("alg is not a string")),
    };
    if found.crit {
        return Err(VerifyError::CritUnsupported);
    }
    if let Some(i) = found.key_reference.iter().position(|&present| present) {
        return Err(VerifyError::KeyReferenceHeader(KEY_REFERENCE_HEADERS[i]));
    }
    let kid = match found.kid.map(|s| s.string(&header)) {
        None => None,
        Some(Some(s)) if s.len() <= MAX_KID_LEN => Some(s.into_owned()),
        Some(Some(_)) => return Err(VerifyError::Malformed("kid is too long")),
        Some(None) => return Err(VerifyError::Malformed("kid is not a string")),
    };
    let header = LazyJson::new(header, HEADER_LIMITS);

    if payload.is_empty() {
        return Err(VerifyError::Malformed("empty payload"));
    }

    if signature.is_empty() {
        return Err(VerifyError::Malformed("empty signature"));
    }
    let signature =
        decode(signature).ok_or(VerifyError::Malformed("bad base64url in signature"))?;

    Ok(Token {
        alg,
        kid,
        header,
        signing_input,
        signature,
        payload,
    })
}

/// The high bit of each byte set exactly where `chunk` holds a `.` (no carries between bytes).
fn dot_mask(chunk: &[u8]) -> u64 {
    const LOW7: u64 = u64::from_ne_bytes([0x7f; 8]);
    const DOTS: u64 = u64::from_ne_bytes([b'.'; 8]);
    let v = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])) ^ DOTS;
    !(((v & LOW7) + LOW7) | v | LOW7)
}

/// How many `.` bytes `text` holds; eight bytes at a time.
fn dots(text: &[u8]) -> usize {
    let chunks = text.chunks_exact(8);
    let tail = chunks.remainder().iter().filter(|&&b| b == b'.').count();
    chunks.fold(tail, |n, chunk| n + dot_mask(chunk).count_ones() as usize)
}

/// Where the first `.` in `text` is; eight bytes at a time.
fn find_dot(text: &[u8]) -> Option<usize> {
    let mut chunks = text.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mask = dot_mask(chunk);
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks.remainder().iter().position(|&b| b == b'.')?;
    Some(at + tail)
}

/// Strict base64url (RFC 7515 §2): URL-safe alphabet only, no padding, no whitespace, and
/// zero trailing bits, so every byte string has exactly one accepted encoding.
pub fn decode(segment: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

fn header_error(e: JsonError) -> VerifyError {
    VerifyError::Malformed(header_text(e))
}

fn payload_error(e: JsonError) -> VerifyError {
    VerifyError::Malformed(match e {
        JsonError::Syntax => "payload is not valid json",
        JsonError::NotObject => "payload is not a json object",
        JsonError::DuplicateKey => "duplicate member in payload",
        JsonError::TooDeep => "payload is nested too deeply",
        JsonError::TooManyMembers => "payload has too many members",
        JsonError::ReservedKey => "reserved member name in payload",
    })
}

/// What is wrong with a JOSE header (of a JWS, or of a JWE: `jwe::compact` says the same).
pub(crate) fn header_text(e: JsonError) -> &'static str {
    match e {
        JsonError::Syntax => "header is not valid json",
        JsonError::NotObject => "header is not a json object",
        JsonError::DuplicateKey => "duplicate member in header",
        JsonError::TooDeep => "header is nested too deeply",
        JsonError::TooManyMembers => "header has too many members",
        JsonError::ReservedKey => "reserved member name in header",
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
