//! Key sets from files and identity providers: JWKS (RFC 7517) and PEM, validated at load.
#![forbid(unsafe_code)]

use std::fmt;

use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use serde_json::{Map, Value};

use crate::jwe::{self, DecryptKey, DecryptKeys};
use crate::jwt::alg::Alg;
use crate::jwt::json::{self, JsonError, Limits};
use crate::jwt::key::{Curve, KeyError};
use crate::jwt::token::{self, MAX_KID_LEN};
use crate::jwt::verify::{Jwk, KeyMaterial, KeySet};

/// Most keys one JWKS may hold.
pub const MAX_KEYS: usize = 256;

const JWKS_LIMITS: Limits = Limits {
    max_depth: 16,
    max_members: 64 * MAX_KEYS,
};

/// The usable keys of a source, and what was left out (for the log).
#[derive(Debug, Default)]
pub struct Parsed {
    /// Verification keys.
    pub keys: KeySet,
    /// The verification keys that are not also decryption keys (`use` `sig`, a JWS `alg`,
    /// public keys): the inner signature of a nested token is checked with these only.
    pub signing_only: KeySet,
    /// Decryption keys (JWE): `oct` and RSA private keys with `use` `enc` or none.
    pub decrypt: DecryptKeys,
    /// Well-formed keys this module does not use, each with its position and reason,
    /// e.g. `key 2 (kid "enc-1"): use is enc`.
    pub skipped: Vec<String>,
}

/// What is wrong with one key (JWK or PEM block).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Problem {
    /// A required member is absent.
    Missing(&'static str),
    /// A member has the wrong JSON type; the text says what was expected.
    WrongType(&'static str, &'static str),
    /// A member is not strict base64url.
    NotBase64url(&'static str),
    /// The key material itself is refused.
    Key(KeyError),
    /// Anything else, described in full.
    Invalid(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(name) => write!(f, "member {name:?} is missing"),
            Problem::WrongType(name, want) => write!(f, "member {name:?} is not {want}"),
            Problem::NotBase64url(name) => write!(f, "member {name:?} is not valid base64url"),
            Problem::Key(e) => f.write_str(e.as_str()),
            Problem::Invalid(what) => f.write_str(what),
        }
    }
}

/// Why a key source was refused as a whole. Positions count from 1. `kid` values come from
/// the source itself (configuration or the configured IdP) and are shown escaped.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum JwksError {
    Json(JsonError),
    /// Neither `{"keys": [...]}` nor a single JWK.
    NotKeySet,
    TooManyKeys,
    Key {
        index: usize,
        kid: Option<String>,
        problem: Problem,
    },
    Pem {
        block: usize,
        problem: Problem,
    },
    PrivateKey {
        block: usize,
    },
    NoPemBlocks,
    UnknownFormat,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::Json(e) => write!(f, "invalid jwks: {e}"),
            JwksError::NotKeySet => f.write_str("not a jwks: no \"keys\" array and no \"kty\""),
            JwksError::TooManyKeys => write!(f, "jwks has more than {MAX_KEYS} keys"),
            JwksError::Key {
                index,
                kid: Some(kid),
                problem,
            } => write!(f, "key {index} (kid {kid:?}): {problem}"),
            JwksError::Key { index, problem, .. } => write!(f, "key {index}: {problem}"),
            JwksError::Pem { block, problem } => write!(f, "pem block {block}: {problem}"),
            JwksError::PrivateKey { block } => write!(
                f,
                "pem block {block}: private keys are not accepted, give the public key"
            ),
            JwksError::NoPemBlocks => f.write_str("no pem blocks found"),
            JwksError::UnknownFormat => f.write_str("neither a jwks (json) nor a pem file"),
        }
    }
}

impl std::error::Error for JwksError {}

/// Reads a key file: a JWKS or single JWK if it starts with `{`, else PEM blocks.
pub fn parse_key_file(bytes: &[u8]) -> Result<Parsed, JwksError> {
    let text = strip_bom(bytes).trim_ascii_start();
    if text.starts_with(b"{") {
        parse_jwks(bytes)
    } else if find(text, PEM_BEGIN).is_some() {
        parse_pem(bytes)
    } else {
        Err(JwksError::UnknownFormat)
    }
}

/// Parses a JWKS (`{"keys": [...]}`) or a single JWK object.
///
/// Keys of kinds this module does not verify with (`use` other than `sig`, `key_ops`
/// without `verify`, unknown `kty`, `crv` or `alg`) are skipped; a key of a kind it does
/// use but with bad material fails the whole set. Private members (`d`, `p`, ...) of
/// asymmetric keys are ignored: only the public part is used.
pub fn parse_jwks(bytes: &[u8]) -> Result<Parsed, JwksError> {
    let doc = json::parse_object(strip_bom(bytes), JWKS_LIMITS).map_err(JwksError::Json)?;
    let single;
    let entries = if let Some(keys) = doc.get("keys") {
        keys.as_array().ok_or(JwksError::NotKeySet)?.as_slice()
    } else if doc.contains_key("kty") {
        single = Value::Object(doc);
        std::slice::from_ref(&single)
    } else {
        return Err(JwksError::NotKeySet);
    };
    if entries.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys);
    }
    let mut parsed = Parsed::default();
    let mut keys = Vec::with_capacity(entries.len());
    let mut signing_only = Vec::with_capacity(entries.len());
    let mut decrypt: Vec<DecryptKey> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let index = i + 1;
        let fail = |kid: Option<&String>, problem| JwksError::Key {
            index,
            kid: kid.cloned(),
            problem,
        };
        let Value::Object(jwk) = entry else {
            return Err(fail(None, Problem::Invalid("not a json object")));
        };
        let kid = match jwk.get("kid") {
            None => None,
            Some(Value::String(kid)) if kid.len() <= MAX_KID_LEN => Some(kid),
            Some(Value::String(_)) => {
                parsed.skipped.push(format!(
                    "key {index}: kid is longer than {MAX_KID_LEN} bytes"
                ));
                continue;
            }
            Some(_) => return Err(fail(None, Problem::WrongType("kid", "a string"))),
        };
        let dec = jwe::keys::from_jwk(jwk, kid).map_err(|e| fail(kid, Problem::Invalid(e)))?;
        match parse_jwk(jwk, kid) {
            Ok(Ok(key)) => {
                if dec.is_none() {
                    signing_only.push(key.clone());
                }
                keys.push(key);
            }
            Ok(Err(_)) | Err(_) if dec.is_some() => {}
            Ok(Err(reason)) => parsed.skipped.push(match kid {
                Some(kid) => format!("key {index} (kid {kid:?}): {reason}"),
                None => format!("key {index}: {reason}"),
            }),
            Err(problem) => return Err(fail(kid, problem)),
        }
        decrypt.extend(dec);
    }
    parsed.keys = KeySet::new(keys);
    parsed.signing_only = KeySet::new(signing_only);
    parsed.decrypt = DecryptKeys::new(decrypt);
    Ok(parsed)
}

/// One JWK: `Ok(Ok(key))` to use, `Ok(Err(reason))` to skip, `Err` to refuse the set.
fn parse_jwk(
    jwk: &Map<String, Value>,
    kid: Option<&String>,
) -> Result<Result<Jwk, &'static str>, Problem> {
    let kty = string(jwk, "kty")?.ok_or(Problem::Missing("kty"))?;
    match string(jwk, "use")? {
        None | Some("sig") => {}
        Some("enc") => return Ok(Err("use is enc")),
        Some(_) => return Ok(Err("use is not sig")),
    }
    if let Some(ops) = jwk.get("key_ops") {
        const WANT: Problem = Problem::WrongType("key_ops", "an array of strings");
        let ops = ops.as_array().ok_or(WANT)?;
        let mut verify = false;
        for op in ops {
            verify |= op.as_str().ok_or(WANT)? == "verify";
        }
        if !verify {
            return Ok(Err("key_ops lacks verify"));
        }
    }
    let alg = match string(jwk, "alg")? {
        None => None,
        Some(name) => match Alg::from_name(name) {
            Some(alg) => Some(alg),
            None => return Ok(Err("unsupported alg")),
        },
    };
    let material = match kty {
        "oct" => KeyMaterial::hmac(&bytes(jwk, "k")?),
        "RSA" => KeyMaterial::rsa(&bytes(jwk, "n")?, &bytes(jwk, "e")?),
        "EC" => {
            let crv = string(jwk, "crv")?.ok_or(Problem::Missing("crv"))?;
            let Some(curve) = Curve::from_name(crv) else {
                return Ok(Err("unsupported ec curve"));
            };
            KeyMaterial::ec(curve, &bytes(jwk, "x")?, &bytes(jwk, "y")?)
        }
        "OKP" => match string(jwk, "crv")?.ok_or(Problem::Missing("crv"))? {
            "Ed25519" => KeyMaterial::ed25519(&bytes(jwk, "x")?),
            _ => return Ok(Err("unsupported okp curve")),
        },
        _ => return Ok(Err("unsupported kty")),
    };
    let key = material.and_then(|m| Jwk::new(kid.cloned(), alg, m));
    match key {
        Ok(key) => Ok(Ok(key)),
        Err(e) if e.is_unsupported() => Ok(Err(e.as_str())),
        Err(e) => Err(Problem::Key(e)),
    }
}

/// An optional string member.
fn string<'a>(jwk: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>, Problem> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Problem::WrongType(name, "a string")),
    }
}

/// A required base64url member, decoded.
fn bytes(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Problem> {
    let text = string(jwk, name)?.ok_or(Problem::Missing(name))?;
    token::decode(text.as_bytes()).ok_or(Problem::NotBase64url(name))
}

const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_DASHES: &[u8] = b"-----";
/// Longer than any real PEM label; bounds the search for the matching end line.
const MAX_PEM_LABEL: usize = 64;

/// Parses one or more PEM blocks: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1) and
/// `CERTIFICATE` (its public key; dates and issuer are not checked: the file is the trust).
/// Text around blocks is ignored. Any private key block refuses the file.
pub fn parse_pem(bytes: &[u8]) -> Result<Parsed, JwksError> {
    let mut parsed = Parsed::default();
    let mut keys = Vec::new();
    let mut rest = bytes;
    let mut block = 0;
    while let Some(start) = find(rest, PEM_BEGIN) {
        block += 1;
        let fail = |what| JwksError::Pem {
            block,
            problem: Problem::Invalid(what),
        };
        let from_begin = rest.get(start..).unwrap_or_default();
        let after_begin = from_begin.get(PEM_BEGIN.len()..).unwrap_or_default();
        let label = find(
            after_begin
                .get(..MAX_PEM_LABEL + PEM_DASHES.len())
                .unwrap_or(after_begin),
            PEM_DASHES,
        )
        .and_then(|len| after_begin.get(..len))
        .ok_or(fail("bad begin line"))?;
        let end_line = [b"-----END ", label, PEM_DASHES].concat();
        let end = find(from_begin, &end_line).ok_or(fail("no matching end line"))?;
        let pem_len = end + end_line.len();
        let pem = from_begin.get(..pem_len).unwrap_or_default();
        rest = from_begin.get(pem_len..).unwrap_or_default();

        let public = match label {
            b"PUBLIC KEY" => PKey::public_key_from_pem(pem).map_err(|_| fail("bad public key"))?,
            b"RSA PUBLIC KEY" => Rsa::public_key_from_pem_pkcs1(pem)
                .and_then(PKey::from_rsa)
                .map_err(|_| fail("bad rsa public key"))?,
            b"CERTIFICATE" => certificate_key(pem).ok_or(fail("bad certificate"))?,
            _ if label.ends_with(b"PRIVATE KEY") => return Err(JwksError::PrivateKey { block }),
            b"EC PARAMETERS" => {
                parsed
                    .skipped
                    .push(format!("pem block {block}: ec parameters, not a key"));
                continue;
            }
            _ => return Err(fail("unsupported block type")),
        };
        match KeyMaterial::from_public_key(public).and_then(|m| Jwk::new(None, None, m)) {
            Ok(key) => keys.push(key),
            Err(e) if e.is_unsupported() => {
                parsed.skipped.push(format!("pem block {block}: {e}"));
            }
            Err(e) => {
                return Err(JwksError::Pem {
                    block,
                    problem: Problem::Key(e),
                })
            }
        }
    }
    if block == 0 {
        return Err(JwksError::NoPemBlocks);
    }
    parsed.signing_only = KeySet::new(keys.clone());
    parsed.keys = KeySet::new(keys);
    Ok(parsed)
}

fn certificate_key(pem: &[u8]) -> Option<PKey<Public>> {
    X509::from_pem(pem).ok()?.public_key().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

#[cfg(test)]
#[path = "jwt/jwks_tests.rs"]
mod tests;
