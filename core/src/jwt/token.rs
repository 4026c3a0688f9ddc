//! Compact JWS parsing: segments, strict base64url and JOSE header rules; no signature check.
//! The payload is decoded only on demand ([`Token::payload`]), so that it can wait until the
//! signature has verified: an attacker's payload is never parsed for a forged token.
#![forbid(unsafe_code)]

use std::fmt;
use std::rc::Rc;

use super::alg::Alg;
use super::b64;
use super::claims::{RawClaims, Spans};
use super::error::VerifyError;
use super::header::{self, Header};
use super::json::{JsonError, LazyJson, Limits};
use super::scan;

/// Strict base64url (RFC 7515 §2), as every JOSE segment is read.
pub use super::b64::decode;
pub use super::header::{HEADER_LIMITS, MAX_KID_LEN};

pub const PAYLOAD_LIMITS: Limits = Limits {
    max_depth: 16,
    max_members: 1024,
};

/// A compact JWS with a valid header and segments, whose signature has not been checked
/// yet and whose payload has not been decoded yet.
pub struct Token<'a> {
    pub alg: Alg,
    pub kid: Option<Rc<str>>,
    /// The header's JSON text, its members parsed on first use (`$jwt_header_*`).
    pub header: Rc<LazyJson>,
    /// `<header>.<payload>` exactly as received: the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub signature: Signature,
    /// The payload segment, base64url as received.
    payload: &'a [u8],
    /// The header segment, and whether its parse came from the thread's memo.
    header_segment: &'a [u8],
    header_known: bool,
}

/// Longest signature kept on the stack: ES512's 132 bytes (HMAC, ECDSA and EdDSA fit).
const INLINE_SIGNATURE: usize = 132;

/// A decoded signature: on the stack when it fits [`INLINE_SIGNATURE`], else (RSA) on the heap.
pub enum Signature {
    Inline([u8; INLINE_SIGNATURE], usize),
    Heap(Vec<u8>),
}

impl Signature {
    /// Strict base64url, as [`decode`].
    fn decode(segment: &[u8]) -> Option<Self> {
        if b64::decoded_len(segment.len())? > INLINE_SIGNATURE {
            return decode(segment).map(Signature::Heap);
        }
        let mut bytes = [0; INLINE_SIGNATURE];
        let len = b64::decode_to(segment, &mut bytes)?;
        Some(Signature::Inline(bytes, len))
    }
}

impl std::ops::Deref for Signature {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Signature::Inline(bytes, len) => &bytes[..*len],
            Signature::Heap(bytes) => bytes,
        }
    }
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
    /// Lets the thread's next tokens with this header skip its parse: call it once this
    /// token verified.
    pub fn remember_header(&self) {
        if !self.header_known {
            let header = Header {
                alg: self.alg,
                kid: self.kid.clone(),
                json: Rc::clone(&self.header),
            };
            header::remember(self.header_segment, &header);
        }
    }

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
    let header_segment = header;
    let (Header { alg, kid, json }, header_known) = header::parse(header_segment)?;

    if payload.is_empty() {
        return Err(VerifyError::Malformed("empty payload"));
    }

    if signature.is_empty() {
        return Err(VerifyError::Malformed("empty signature"));
    }
    let signature =
        Signature::decode(signature).ok_or(VerifyError::Malformed("bad base64url in signature"))?;

    Ok(Token {
        alg,
        kid,
        header: json,
        signing_input,
        signature,
        payload,
        header_segment,
        header_known,
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
