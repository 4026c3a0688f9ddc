//! The compact serialisation (RFC 7516 §7.1): five segments, the protected header's rules,
//! then the decryption with each fitting key.
#![forbid(unsafe_code)]

use serde_json::{Map, Value};

use super::crypto;
use super::keys::{DecryptKey, DecryptKeys};
use super::{Decrypted, Enc, JweError, KeyAlg};
use crate::jwt::json::{self, JsonError};
use crate::jwt::token::{self, HEADER_LIMITS, MAX_KID_LEN};

/// Length of the `iv` and `tag` header members of the AES-GCM key wrap (RFC 7518 §4.7.1).
const GCMKW_IV_LEN: usize = 12;
const GCMKW_TAG_LEN: usize = 16;

/// The five segments, decoded (the header also as sent: it is the additional data).
struct Parts<'a> {
    header_b64: &'a [u8],
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

fn split(token: &[u8]) -> Result<Parts<'_>, JweError> {
    let mut segments = token.split(|&b| b == b'.');
    let mut next = || {
        segments
            .next()
            .ok_or(JweError::Malformed("expected 5 segments"))
    };
    let (header_b64, ek, iv, ct, tag) = (next()?, next()?, next()?, next()?, next()?);
    if segments.next().is_some() {
        return Err(JweError::Malformed("expected 5 segments"));
    }
    if header_b64.is_empty() {
        return Err(JweError::Malformed("empty header"));
    }
    let b64 = |s: &[u8], what| token::decode(s).ok_or(JweError::Malformed(what));
    Ok(Parts {
        header_b64,
        encrypted_key: b64(ek, "bad base64url in encrypted key")?,
        iv: b64(iv, "bad base64url in iv")?,
        ciphertext: b64(ct, "bad base64url in ciphertext")?,
        tag: b64(tag, "bad base64url in tag")?,
    })
}

/// The protected header's members that decryption reads.
struct Header {
    alg: KeyAlg,
    enc: Enc,
    kid: Option<String>,
    cty: Option<String>,
    /// `iv` and `tag` of the AES-GCM key wrap.
    gcmkw: Option<(Vec<u8>, Vec<u8>)>,
    text: String,
}

fn header(b64: &[u8]) -> Result<Header, JweError> {
    let bytes = token::decode(b64).ok_or(JweError::Malformed("bad base64url in header"))?;
    let map = json::parse_object(&bytes, HEADER_LIMITS).map_err(header_error)?;
    if map.contains_key("zip") {
        return Err(JweError::Zip);
    }
    if map.contains_key("crit") {
        return Err(JweError::Crit);
    }
    if ["jku", "x5u", "jwk"].iter().any(|h| map.contains_key(*h)) {
        return Err(JweError::KeyReference);
    }
    let alg = string(&map, "alg")?.ok_or(JweError::Malformed("header has no alg"))?;
    let alg = KeyAlg::from_name(alg).ok_or(JweError::UnsupportedAlg)?;
    let enc = string(&map, "enc")?.ok_or(JweError::Malformed("header has no enc"))?;
    let enc = Enc::from_name(enc).ok_or(JweError::UnsupportedEnc)?;
    let kid = string(&map, "kid")?.map(str::to_owned);
    if kid.as_ref().is_some_and(|k| k.len() > MAX_KID_LEN) {
        return Err(JweError::Malformed("kid is too long"));
    }
    let cty = string(&map, "cty")?.map(str::to_owned);
    let gcmkw = match alg {
        KeyAlg::A128GcmKw | KeyAlg::A192GcmKw | KeyAlg::A256GcmKw => {
            let bin = |name, len| {
                string(&map, name)?
                    .and_then(|s| token::decode(s.as_bytes()))
                    .filter(|b| b.len() == len)
                    .ok_or(JweError::Malformed("bad iv or tag header for gcm key wrap"))
            };
            Some((bin("iv", GCMKW_IV_LEN)?, bin("tag", GCMKW_TAG_LEN)?))
        }
        _ => None,
    };
    let text = String::from_utf8(bytes).map_err(|_| JweError::Malformed("header is not utf-8"))?;
    Ok(Header {
        alg,
        enc,
        kid,
        cty,
        gcmkw,
        text,
    })
}

fn string<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, JweError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JweError::Malformed("a header member is not a string")),
    }
}

fn header_error(e: JsonError) -> JweError {
    JweError::Malformed(crate::jwt::token::header_text(e))
}

/// Decrypts a compact JWE with the first of `keys` that fits and authenticates it. A `kid`
/// selects the keys that carry it (none: [`JweError::UnknownKid`]); without one, every key
/// that fits `alg` and `enc` is tried.
pub fn decrypt(token: &[u8], keys: &DecryptKeys) -> Result<Decrypted, JweError> {
    let parts = split(token)?;
    let h = header(parts.header_b64)?;
    if parts.iv.len() != h.enc.iv_len() {
        return Err(JweError::Malformed("iv length does not fit enc"));
    }
    if parts.tag.len() != h.enc.tag_len() {
        return Err(JweError::Malformed("tag length does not fit enc"));
    }
    if (h.alg == KeyAlg::Dir) != parts.encrypted_key.is_empty() {
        return Err(JweError::Malformed(
            "encrypted key must be empty with dir and only with dir",
        ));
    }
    let mut named = keys
        .keys()
        .iter()
        .filter(|k| h.kid.is_none() || k.kid == h.kid)
        .peekable();
    if h.kid.is_some() && named.peek().is_none() {
        return Err(JweError::UnknownKid);
    }
    let mut fitting = named.filter(|k| k.fits(h.alg, h.enc)).peekable();
    if fitting.peek().is_none() {
        return Err(JweError::NoFittingKey);
    }
    for key in fitting {
        if let Some(plaintext) = try_key(&h, &parts, key) {
            return Ok(Decrypted {
                alg: h.alg,
                enc: h.enc,
                kid: h.kid,
                cty: h.cty,
                header: h.text,
                plaintext,
            });
        }
    }
    Err(JweError::DecryptFailed)
}

/// One key: unwrap the content key, then decrypt. An unwrap that fails or yields a key of
/// the wrong size goes on with a random key, so that it fails only at the tag, like any
/// other forgery (RFC 7516 §11.5: no oracle on the key unwrap, the RSA padding in particular).
fn try_key(h: &Header, parts: &Parts<'_>, key: &DecryptKey) -> Option<Vec<u8>> {
    let ek = &parts.encrypted_key;
    let unwrapped = match h.alg {
        KeyAlg::Dir => key.oct_bytes().map(<[u8]>::to_vec),
        KeyAlg::A128Kw | KeyAlg::A192Kw | KeyAlg::A256Kw => {
            crypto::aes_unwrap(key.oct_bytes()?, ek)
        }
        KeyAlg::A128GcmKw | KeyAlg::A192GcmKw | KeyAlg::A256GcmKw => {
            let (iv, tag) = h.gcmkw.as_ref()?;
            crypto::gcm_unwrap(key.oct_bytes()?, iv, tag, ek)
        }
        KeyAlg::RsaOaep | KeyAlg::RsaOaep256 | KeyAlg::RsaOaep384 | KeyAlg::RsaOaep512 => {
            crypto::rsa_unwrap(h.alg, key.rsa()?, ek)
        }
    };
    let cek = match unwrapped {
        Some(cek) if cek.len() == h.enc.cek_len() => cek,
        _ => crypto::random_key(h.enc.cek_len())?,
    };
    crypto::decrypt_content(
        h.enc,
        &cek,
        parts.header_b64,
        &parts.iv,
        &parts.ciphertext,
        &parts.tag,
    )
}

/// The `kid` of a JWE's protected header, for the log line of a refused token (read again
/// only then: a refusal costs one more header parse, a success none).
pub fn peek_kid(token: &[u8]) -> Option<String> {
    let first = token.split(|&b| b == b'.').next()?;
    let header = header(first).ok()?;
    header.kid
}
