//! The proof's embedded public key: private members refused, RFC 7638 thumbprint, and the
//! key set that verifies the proof's signature.
#![forbid(unsafe_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

use super::DpopError;
use crate::jwks;
use crate::jwt::alg::Alg;
use crate::jwt::verify::KeySet;

/// JWK members that only a private (or symmetric) key has.
const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The members RFC 7638 section 3.2 hashes, in lexicographic order, per key type.
fn required(kty: &str) -> Option<&'static [&'static str]> {
    match kty {
        "EC" => Some(&["crv", "kty", "x", "y"]),
        "RSA" => Some(&["e", "kty", "n"]),
        "OKP" => Some(&["crv", "kty", "x"]),
        _ => None,
    }
}

/// Keys of earlier proofs, by the RFC 7638 canonical JSON of their `jwk` (with its
/// thumbprint): a client signs every proof with the same key, and making an OpenSSL key from
/// a JWK (the point check is a scalar multiplication) costs more than the signature check;
/// hashing the canonical JSON again for the thumbprint costs more than looking it up.
/// Bounded: emptied when full.
///
/// It also remembers proof headers, by their base64url text: a client's proofs all carry the
/// same header (`typ`, `alg`, `jwk`), so a header seen before in a proof that passed needs
/// no decoding, no JSON and no canonical form again, only the checks that depend on the
/// location or the token (the algorithm allow-list, the thumbprint against `cnf.jkt`).
#[derive(Default)]
pub struct KeyCache {
    keys: HashMap<String, (String, Arc<KeySet>)>,
    headers: HashMap<Box<[u8]>, KnownHeader>,
}

/// Keys, and headers, a worker's [`KeyCache`] holds before it starts over.
const KEY_CACHE_ENTRIES: usize = 1024;
/// Longest header text remembered (an RSA-4096 `jwk` fits): a worker's headers stay under
/// 2 MiB, whatever a key holder pads them with.
const MAX_REMEMBERED_HEADER: usize = 2048;

/// What a proof header was found to hold, in a proof that then passed: `typ`
/// `dpop+jwt`, no `crit`, a public asymmetric `jwk` with `thumbprint`, and `alg`.
pub struct KnownHeader {
    pub alg: Alg,
    thumbprint: String,
    keys: Arc<KeySet>,
}

impl KnownHeader {
    /// The key set, if this header's key is the one `jkt` names (compared in constant time).
    pub fn keys_for(&self, jkt: &str) -> Result<Arc<KeySet>, DpopError> {
        if same(jkt, &self.thumbprint) {
            Ok(Arc::clone(&self.keys))
        } else {
            Err(MISMATCH)
        }
    }
}

const MISMATCH: DpopError = DpopError::Proof("key does not match the token's cnf.jkt");

fn same(jkt: &str, thumbprint: &str) -> bool {
    jkt.len() == thumbprint.len() && openssl::memcmp::eq(jkt.as_bytes(), thumbprint.as_bytes())
}

impl KeyCache {
    /// The facts of `header` (a proof's first segment, as sent), if a proof that passed
    /// carried exactly this text before.
    pub fn known_header(&self, header: &[u8]) -> Option<&KnownHeader> {
        self.headers.get(header)
    }

    /// Remembers `header` of a proof that passed every check with `keys`, whose thumbprint
    /// is `jkt`.
    pub fn remember_header(&mut self, header: &[u8], alg: Alg, jkt: &str, keys: &Arc<KeySet>) {
        if header.len() > MAX_REMEMBERED_HEADER {
            return;
        }
        if self.headers.len() >= KEY_CACHE_ENTRIES {
            self.headers.clear();
        }
        let known = KnownHeader {
            alg,
            thumbprint: jkt.to_owned(),
            keys: Arc::clone(keys),
        };
        self.headers.insert(header.into(), known);
    }

    /// The key set of `jwk`, once its RFC 7638 thumbprint is known to equal `jkt` (compared
    /// in constant time, before any key is made from it). The canonical JSON covers every
    /// member that makes the key, so equal texts mean the same public key and thumbprint.
    pub fn key_for(&mut self, jwk: &Value, jkt: &str) -> Result<Arc<KeySet>, DpopError> {
        let canonical = canonical(jwk)?;
        if let Some((thumbprint, keys)) = self.keys.get(&canonical) {
            return if same(jkt, thumbprint) {
                Ok(Arc::clone(keys))
            } else {
                Err(MISMATCH)
            };
        }
        let thumbprint = hash(&canonical);
        if !same(jkt, &thumbprint) {
            return Err(MISMATCH);
        }
        let keys = Arc::new(key_set(jwk)?);
        if self.keys.len() >= KEY_CACHE_ENTRIES {
            self.keys.clear();
        }
        self.keys.insert(canonical, (thumbprint, Arc::clone(&keys)));
        Ok(keys)
    }
}

/// The RFC 7638 SHA-256 thumbprint of a proof header's `jwk`, once it is known to be public
/// and asymmetric.
pub fn public_thumbprint(jwk: &Value) -> Result<String, DpopError> {
    canonical(jwk).map(|c| hash(&c))
}

/// The RFC 7638 canonical JSON of a public, asymmetric `jwk`.
fn canonical(jwk: &Value) -> Result<String, DpopError> {
    let jwk = jwk
        .as_object()
        .ok_or(DpopError::Proof("jwk is not an object"))?;
    if PRIVATE.iter().any(|m| jwk.contains_key(*m)) {
        return Err(DpopError::Proof("jwk holds a private key"));
    }
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let members = required(kty).ok_or(DpopError::Proof("jwk is not an asymmetric key"))?;
    canonical_json(jwk, members)
}

fn hash(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(crate::jwt::verify::sha256(canonical.as_bytes()))
}

/// The public key of a proof header's `jwk`, and its RFC 7638 SHA-256 thumbprint.
pub fn public_key(jwk: &Value) -> Result<(KeySet, String), DpopError> {
    let thumbprint = public_thumbprint(jwk)?;
    Ok((key_set(jwk)?, thumbprint))
}

fn key_set(jwk: &Value) -> Result<KeySet, DpopError> {
    let text = serde_json::to_vec(jwk).map_err(|_| DpopError::Proof("jwk unreadable"))?;
    let parsed = jwks::parse_jwks(&text).map_err(|_| DpopError::Proof("jwk unusable"))?;
    if parsed.keys.is_empty() {
        return Err(DpopError::Proof("jwk unusable"));
    }
    Ok(parsed.keys)
}

/// RFC 7638: the required members as compact JSON in name order. Values are written as they
/// are unless they need JSON escaping (base64url and curve names never do).
fn canonical_json(jwk: &Map<String, Value>, members: &[&str]) -> Result<String, DpopError> {
    let mut canonical = String::with_capacity(160);
    canonical.push('{');
    for (i, name) in members.iter().enumerate() {
        let value = jwk
            .get(*name)
            .and_then(Value::as_str)
            .ok_or(DpopError::Proof("jwk lacks a required member"))?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            canonical.push('"');
            canonical.push_str(value);
            canonical.push('"');
        } else {
            canonical.push_str(&Value::from(value).to_string());
        }
    }
    canonical.push('}');
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let (_, tp) = public_key(&jwk).unwrap();
        assert_eq!(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn the_canonical_json_is_serde_json_s() {
        // The written-as-is path and the escaping one agree with serde_json's output.
        for x in [
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "a\"b\\c\u{1}\u{7f}é",
        ] {
            let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": "y"});
            let mut want = String::from("{");
            for (i, m) in ["crv", "kty", "x", "y"].iter().enumerate() {
                let sep = if i > 0 { "," } else { "" };
                want.push_str(&format!("{sep}\"{m}\":{}", jwk[m]));
            }
            want.push('}');
            let want = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(want.as_bytes()));
            assert_eq!(public_thumbprint(&jwk).unwrap(), want, "{x}");
        }
    }

    #[test]
    fn private_and_symmetric_keys_are_refused() {
        for jwk in [
            json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "oct"}),
            json!({"kty": "EC", "crv": "P-256", "x": "a"}),
            json!("EC"),
        ] {
            assert!(public_key(&jwk).is_err(), "{jwk}");
        }
    }
}
