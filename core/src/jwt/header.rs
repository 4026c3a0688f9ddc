//! A compact JWS's protected header: strict base64url, strict JSON and the JOSE rules, and a
//! per-thread memo of the headers of tokens that verified.
//!
//! An issuer's tokens carry one header per signing key, byte for byte (`alg`, `kid`, `typ`):
//! after the first of them verified, the next ones' header needs no decoding and no JSON,
//! only a comparison with the remembered text. What is remembered is what [`parse`] found in
//! exactly those bytes (strict base64url gives each header one encoding), never a verdict:
//! the signature, the algorithm allow-list and the claims are checked for every token.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::rc::Rc;

use super::alg::Alg;
use super::error::VerifyError;
use super::json::{JsonError, LazyJson, Limits};
use super::scan::{self, Span};
use super::token::{decode, header_text};

/// Longest `kid` accepted in a token header, in bytes.
pub const MAX_KID_LEN: usize = 256;

pub const HEADER_LIMITS: Limits = Limits {
    max_depth: 8,
    max_members: 64,
};

/// Headers that point at keys chosen by the token's author; keys only come from configuration.
const KEY_REFERENCE_HEADERS: [&str; 3] = ["jku", "x5u", "jwk"];

/// Headers a thread remembers: an issuer has a few signing keys, and a location a few issuers.
const KNOWN_HEADERS: usize = 8;
/// Longest header segment remembered (base64url bytes): the memo stays under 8 KiB of text.
const MAX_KNOWN_HEADER: usize = 1024;

/// A header that passed every rule that needs no key: its algorithm, `kid` and JSON text.
#[derive(Clone)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<Rc<str>>,
    /// The header's JSON text, its members parsed on first use (`$jwt_header_*`).
    pub json: Rc<LazyJson>,
}

thread_local! {
    /// Header segments of tokens that verified, with what they hold; replaced in turn.
    static KNOWN: RefCell<Known> = const {
        RefCell::new(Known {
            entries: Vec::new(),
            next: 0,
        })
    };
}

struct Known {
    entries: Vec<(Box<[u8]>, Header)>,
    /// The entry the next new header replaces, once the memo is full.
    next: usize,
}

impl Known {
    /// What was remembered of exactly these header bytes.
    fn get(&self, segment: &[u8]) -> Option<&Header> {
        let entry = self.entries.iter().find(|(text, _)| **text == *segment);
        entry.map(|(_, header)| header)
    }
}

/// The header in `segment` (base64url, as received), from the memo when a token that
/// verified carried exactly these bytes; whether it came from there.
pub fn parse(segment: &[u8]) -> Result<(Header, bool), VerifyError> {
    let known = KNOWN.with_borrow(|known| known.get(segment).cloned());
    match known {
        Some(header) => Ok((header, true)),
        None => parse_new(segment).map(|header| (header, false)),
    }
}

/// Remembers `header`, parsed from `segment`, for this thread's next tokens: call it once the
/// token that carried it verified.
pub fn remember(segment: &[u8], header: &Header) {
    if segment.len() > MAX_KNOWN_HEADER {
        return;
    }
    KNOWN.with_borrow_mut(|known| {
        if known.get(segment).is_some() {
            return;
        }
        let entry = (Box::from(segment), header.clone());
        if known.entries.len() < KNOWN_HEADERS {
            known.entries.push(entry);
        } else {
            known.entries[known.next] = entry;
            known.next = (known.next + 1) % KNOWN_HEADERS;
        }
    });
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

fn parse_new(segment: &[u8]) -> Result<Header, VerifyError> {
    let header = decode(segment).ok_or(VerifyError::Malformed("bad base64url in header"))?;
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
        Some(Some(s)) if s.len() <= MAX_KID_LEN => Some(Rc::from(s.as_ref())),
        Some(Some(_)) => return Err(VerifyError::Malformed("kid is too long")),
        Some(None) => return Err(VerifyError::Malformed("kid is not a string")),
    };
    Ok(Header {
        alg,
        kid,
        json: Rc::new(LazyJson::new(header, HEADER_LIMITS)),
    })
}

fn header_error(e: JsonError) -> VerifyError {
    VerifyError::Malformed(header_text(e))
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
