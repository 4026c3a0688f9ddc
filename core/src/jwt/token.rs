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
    VerifyError::Malformed(match e {
        JsonError::Syntax => "header is not valid json",
        JsonError::NotObject => "header is not a json object",
        JsonError::DuplicateKey => "duplicate member in header",
        JsonError::TooDeep => "header is nested too deeply",
        JsonError::TooManyMembers => "header has too many members",
        JsonError::ReservedKey => "reserved member name in header",
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The header, then the payload, as `authn` reads them (with the signature check between).
    fn parse_all(text: &[u8]) -> Result<Payload, VerifyError> {
        parse(text)?.payload()
    }

    fn b64(s: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn jws(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            b64(header.as_bytes()),
            b64(payload.as_bytes())
        )
    }

    const HS: &str = r#"{"alg":"HS256"}"#;
    const CLAIMS: &str = r#"{"sub":"a"}"#;

    #[test]
    fn parses_a_token() {
        let text = jws(
            r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#,
            r#"{"sub":"a","n":[1]}"#,
        );
        let token = parse(text.as_bytes()).unwrap();
        assert_eq!(token.alg, Alg::ES256);
        assert_eq!(token.kid.as_deref(), Some("k1"));
        assert_eq!(token.header["typ"], "JWT");
        let payload = token.payload().unwrap();
        assert_eq!(payload.claims["sub"], "a");
        assert_eq!(payload.json(), r#"{"sub":"a","n":[1]}"#);
        assert_eq!(token.signature, b"sig");
        let dot = text.rfind('.').unwrap();
        assert_eq!(token.signing_input, &text.as_bytes()[..dot]);
        assert!(!format!("{token:?}").contains("sub"));
    }

    #[test]
    fn accepts_every_alg_and_long_kid() {
        for alg in Alg::ALL {
            let text = jws(&format!(r#"{{"alg":"{alg}"}}"#), CLAIMS);
            assert_eq!(parse(text.as_bytes()).unwrap().alg, alg);
        }
        let kid = "k".repeat(MAX_KID_LEN);
        let text = jws(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#), CLAIMS);
        assert_eq!(parse(text.as_bytes()).unwrap().kid.unwrap(), kid);
    }

    #[test]
    fn rejects_bad_structure_and_encoding() {
        let h = b64(HS.as_bytes());
        let p = b64(CLAIMS.as_bytes());
        let m = VerifyError::Malformed;
        let segments = m("expected 3 segments");
        let cases: Vec<(String, VerifyError)> = vec![
            (String::new(), segments),
            (h.clone(), segments),
            (format!("{h}.{p}"), segments),
            (format!("{h}.{p}.c2ln.c2ln"), segments),
            (format!("{h}.{p}.a.b.c.d"), segments),
            ("....".into(), VerifyError::Encrypted),
            (format!("{h}.{p}.a.b.c"), VerifyError::Encrypted),
            ("..".into(), m("empty header")),
            (format!(".{p}.c2ln"), m("empty header")),
            (format!("{h}..c2ln"), m("empty payload")),
            (format!("{h}.{p}."), m("empty signature")),
            (format!("{h}=.{p}.c2ln"), m("bad base64url in header")),
            (format!("{h}.{p}=.c2ln"), m("bad base64url in payload")),
            (format!("{h}.{p}.c2ln===="), m("bad base64url in signature")),
            (format!("{h}.{p}.c2ln="), m("bad base64url in signature")),
            (format!("{h}.{p}.c2+n"), m("bad base64url in signature")),
            (format!("{h}.{p}.c2/n"), m("bad base64url in signature")),
            (format!("{h}.{p}.c2 n"), m("bad base64url in signature")),
            (format!("{h}.{p}.c2ln\n"), m("bad base64url in signature")),
            (format!("{h}.{p}. c2ln"), m("bad base64url in signature")),
            (format!("{h}.{p}.c2l\tn"), m("bad base64url in signature")),
            (format!("{h} .{p}.c2ln"), m("bad base64url in header")),
            (format!("{h}.{p}.A"), m("bad base64url in signature")),
            (format!("{h}.{p}.AB"), m("bad base64url in signature")),
            (format!("{h}.{p}.AAB"), m("bad base64url in signature")),
            (format!("{h}.{p}.c2l%"), m("bad base64url in signature")),
            (
                format!("{h}.{p}.c2l\u{e9}"),
                m("bad base64url in signature"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_all(text.as_bytes()).unwrap_err(),
                expected,
                "{text:?}"
            );
        }
        let canonical = format!("{h}.{p}.AA");
        assert_eq!(parse(canonical.as_bytes()).unwrap().signature, [0]);
        assert_eq!(
            parse(format!("{h}.{p}.AAA").as_bytes()).unwrap().signature,
            [0, 0]
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let m = VerifyError::Malformed;
        let long_kid = format!(
            r#"{{"alg":"HS256","kid":"{}"}}"#,
            "k".repeat(MAX_KID_LEN + 1)
        );
        let deep = format!(
            r#"{{"alg":"HS256","x":{}1{}}}"#,
            "[".repeat(8),
            "]".repeat(8)
        );
        let wide = format!(
            r#"{{"alg":"HS256",{}}}"#,
            (0..64)
                .map(|i| format!(r#""h{i}":0"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let cases: Vec<(&str, VerifyError)> = vec![
            (r#"{"alg":"none"}"#, VerifyError::AlgNone),
            (r#"{"alg":"None"}"#, VerifyError::AlgNone),
            (r#"{"alg":"NONE"}"#, VerifyError::AlgNone),
            (r#"{"alg":"nOnE"}"#, VerifyError::AlgNone),
            (r#"{"alg":"n\u006fne"}"#, VerifyError::AlgNone),
            (r#"{"alg":"none ","kid":"x"}"#, VerifyError::UnsupportedAlg),
            (r#"{"alg":"hs256"}"#, VerifyError::UnsupportedAlg),
            (r#"{"alg":"ES256K"}"#, VerifyError::UnsupportedAlg),
            (r#"{"alg":"RSA-OAEP"}"#, VerifyError::UnsupportedAlg),
            (r#"{"alg":""}"#, VerifyError::UnsupportedAlg),
            (r#"{"typ":"JWT"}"#, m("header has no alg")),
            (r#"{"alg":null}"#, m("alg is not a string")),
            (r#"{"alg":256}"#, m("alg is not a string")),
            (r#"{"alg":["HS256"]}"#, m("alg is not a string")),
            (
                r#"{"alg":"HS256","alg":"none"}"#,
                m("duplicate member in header"),
            ),
            (
                r#"{"alg":"HS256","x":{"a":1,"a":2}}"#,
                m("duplicate member in header"),
            ),
            (
                r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
                VerifyError::CritUnsupported,
            ),
            (r#"{"alg":"HS256","crit":[]}"#, VerifyError::CritUnsupported),
            (
                r#"{"alg":"RS256","jku":"https://evil"}"#,
                VerifyError::KeyReferenceHeader("jku"),
            ),
            (
                r#"{"alg":"RS256","x5u":"https://evil"}"#,
                VerifyError::KeyReferenceHeader("x5u"),
            ),
            (
                r#"{"alg":"RS256","jwk":{"kty":"oct"}}"#,
                VerifyError::KeyReferenceHeader("jwk"),
            ),
            (r#"{"alg":"HS256","kid":7}"#, m("kid is not a string")),
            (r#"{"alg":"HS256","kid":null}"#, m("kid is not a string")),
            (long_kid.as_str(), m("kid is too long")),
            (deep.as_str(), m("header is nested too deeply")),
            (wide.as_str(), m("header has too many members")),
            (r#"["alg","HS256"]"#, m("header is not a json object")),
            (r#""HS256""#, m("header is not a json object")),
            (r#"{"alg":"HS256""#, m("header is not valid json")),
            ("{\"alg\":\"HS256\"}\u{0}", m("header is not valid json")),
        ];
        for (header, expected) in cases {
            let text = jws(header, CLAIMS);
            assert_eq!(parse(text.as_bytes()).unwrap_err(), expected, "{header}");
        }
        let raw = format!(
            "{}.{}.c2ln",
            b64(b"{\"alg\":\"HS\xff\"}"),
            b64(CLAIMS.as_bytes())
        );
        assert_eq!(
            parse(raw.as_bytes()).unwrap_err(),
            m("header is not valid json")
        );
    }

    #[test]
    fn rejects_bad_payloads() {
        let m = VerifyError::Malformed;
        let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(16), "]".repeat(16));
        let wide = format!("[{}]", vec!["0"; 1025].join(","));
        let wide = format!(r#"{{"x":{wide}}}"#);
        let cases: Vec<(&[u8], VerifyError)> = vec![
            (b"[]", m("payload is not a json object")),
            (b"\"sub\"", m("payload is not a json object")),
            (b"42", m("payload is not a json object")),
            (
                b"{\"exp\":1,\"exp\":99999999999}",
                m("duplicate member in payload"),
            ),
            (
                b"{\"a\":[{\"b\":1,\"b\":1}]}",
                m("duplicate member in payload"),
            ),
            (
                br#"{"sub":{"$serde_json::private::Number":"1"}}"#,
                m("reserved member name in payload"),
            ),
            (b"{\"sub\":\"a\"", m("payload is not valid json")),
            (b"{\"sub\":\"\xff\"}", m("payload is not utf-8")),
            (b"\xfe\xff", m("payload is not utf-8")),
            (deep.as_bytes(), m("payload is nested too deeply")),
            (wide.as_bytes(), m("payload has too many members")),
        ];
        for (payload, expected) in cases {
            let text = format!("{}.{}.c2ln", b64(HS.as_bytes()), b64(payload));
            // The payload is read only when asked for, after the signature check.
            assert!(parse(text.as_bytes()).is_ok());
            assert_eq!(
                parse_all(text.as_bytes()).unwrap_err(),
                expected,
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn counts_dots() {
        for len in 0..40 {
            for at in 0..len {
                let mut t = vec![b'a'; len];
                t[at] = b'.';
                t[len - 1 - at / 2] = b'.';
                let want = t.iter().filter(|&&b| b == b'.').count();
                assert_eq!(dots(&t), want, "{len} {at}");
                t.iter_mut().for_each(|b| *b ^= 0x80);
                assert_eq!(dots(&t), 0);
            }
        }
        assert_eq!(dots(&[b'.'; 33]), 33);
        for len in 1..40 {
            for at in 0..len {
                let mut t = vec![b'a'; len];
                t[at] = b'.';
                if at + 3 < len {
                    t[at + 3] = b'.';
                }
                assert_eq!(find_dot(&t), Some(at), "{len} {at}");
            }
            assert_eq!(find_dot(&vec![b'a'; len]), None);
        }
        assert_eq!(dots(b"\x2e\xae\x2f\x2d.\x00\xff\xd1"), 2);
    }

    #[test]
    fn header_errors_come_before_payload_and_signature() {
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"not json"));
        assert_eq!(parse(none.as_bytes()).unwrap_err(), VerifyError::AlgNone);
    }
}
