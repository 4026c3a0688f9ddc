//! Decryption keys: symmetric `oct` keys and RSA private keys from a JWKS, kept apart from
//! the verification keys (a key-wrap key never verifies a signature, a signing key never
//! decrypts).
#![forbid(unsafe_code)]

use std::fmt;

use openssl::bn::BigNum;
use openssl::pkey::{PKey, Private};
use openssl::rsa::RsaPrivateKeyBuilder;
use serde_json::{Map, Value};

use super::{Enc, KeyAlg};
use crate::jwt::token;

/// Smallest RSA modulus accepted for RSA-OAEP (RFC 7518 §4.3 requires 2048).
pub const MIN_RSA_BITS: u32 = 2048;
const MAX_RSA_BITS: u32 = 16384;
/// The only lengths an AES key-wrap key or a direct content key can have.
const OCT_LENS: [usize; 5] = [16, 24, 32, 48, 64];

#[derive(Clone)]
enum Secret {
    Oct(Box<[u8]>),
    Rsa(PKey<Private>),
}

/// One decryption key: optional `kid` and `alg`, and its secret.
#[derive(Clone)]
pub struct DecryptKey {
    pub kid: Option<String>,
    /// The JWK's `alg`: then the key decrypts tokens of that algorithm only.
    pub alg: Option<KeyAlg>,
    secret: Secret,
}

impl fmt::Debug for DecryptKey {
    /// Names the key type only: a secret never reaches a log through `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecryptKey({})", self.kty())
    }
}

impl DecryptKey {
    /// A symmetric key for `dir` or AES key wrapping.
    pub fn oct(kid: Option<String>, alg: Option<KeyAlg>, k: &[u8]) -> Result<Self, &'static str> {
        if !OCT_LENS.contains(&k.len()) {
            return Err("decryption key is not 16, 24, 32, 48 or 64 bytes");
        }
        if alg.is_some_and(KeyAlg::is_rsa) {
            return Err("alg does not fit the key type");
        }
        if let Some(kek) = alg.and_then(KeyAlg::kek_len) {
            if kek != k.len() {
                return Err("key length does not fit its alg");
            }
        }
        Ok(Self {
            kid,
            alg,
            secret: Secret::Oct(k.into()),
        })
    }

    pub fn kty(&self) -> &'static str {
        match self.secret {
            Secret::Oct(_) => "oct",
            Secret::Rsa(_) => "RSA",
        }
    }

    /// Whether this key may decrypt a token with `alg` and `enc`: the type fits, the size
    /// fits (`dir`: the content key's; AES wrapping: the key-encryption key's), and so does
    /// the JWK's own `alg` when it has one.
    pub fn fits(&self, alg: KeyAlg, enc: Enc) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match (&self.secret, alg) {
            (Secret::Oct(k), KeyAlg::Dir) => k.len() == enc.cek_len(),
            (Secret::Oct(k), _) => alg.kek_len() == Some(k.len()),
            (Secret::Rsa(_), _) => alg.is_rsa(),
        }
    }

    pub(super) fn oct_bytes(&self) -> Option<&[u8]> {
        match &self.secret {
            Secret::Oct(k) => Some(k),
            Secret::Rsa(_) => None,
        }
    }

    pub(super) fn rsa(&self) -> Option<&PKey<Private>> {
        match &self.secret {
            Secret::Rsa(k) => Some(k),
            Secret::Oct(_) => None,
        }
    }
}

/// The decryption keys of a location.
#[derive(Clone, Debug, Default)]
pub struct DecryptKeys {
    keys: Vec<DecryptKey>,
}

impl DecryptKeys {
    pub fn new(keys: Vec<DecryptKey>) -> Self {
        Self { keys }
    }

    pub fn extend(&mut self, other: DecryptKeys) {
        self.keys.extend(other.keys);
    }

    pub fn keys(&self) -> &[DecryptKey] {
        &self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// What one JWK is for decryption: `Ok(Some(key))` to use, `Ok(None)` when it is not a
/// decryption key (a signing key, a public key), `Err` when it claims to be one but is bad.
///
/// A decryption key is an `oct` key or an RSA key with its private members, whose `use` is
/// `enc` or absent and whose `alg`, if any, is a JWE key management algorithm. An `oct` or
/// RSA private key marked for encryption (`use` `enc`, a JWE `alg`) that is not usable is an
/// error; an unmarked one is left to the signature rules; public keys are never used.
pub fn from_jwk(
    jwk: &Map<String, Value>,
    kid: Option<&String>,
) -> Result<Option<DecryptKey>, &'static str> {
    let kty = match jwk.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        _ => return Ok(None),
    };
    let declared = match jwk.get("use") {
        None => false,
        Some(Value::String(u)) if u == "enc" => true,
        Some(_) => return Ok(None),
    };
    if let Some(Value::Array(ops)) = jwk.get("key_ops") {
        let unwrap = ops
            .iter()
            .any(|o| matches!(o.as_str(), Some("decrypt" | "unwrapKey")));
        if !unwrap {
            return Ok(None);
        }
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => match KeyAlg::from_name(name) {
            Some(alg) => Some(alg),
            // A JWS algorithm: a signing key.
            None if crate::jwt::alg::Alg::from_name(name).is_some() => return Ok(None),
            None if declared => return Err("unsupported jwe key management algorithm"),
            None => return Ok(None),
        },
        Some(_) => return Err("member \"alg\" is not a string"),
    };
    let declared = declared || alg.is_some();
    let kid = kid.cloned();
    let key = match kty {
        "oct" => {
            let Some(k) = member(jwk, "k") else {
                return if declared {
                    Err("member \"k\" is missing or not base64url")
                } else {
                    Ok(None)
                };
            };
            DecryptKey::oct(kid, alg, &k)
        }
        "RSA" if jwk.contains_key("d") => rsa_private(jwk).and_then(|secret| {
            if alg.is_some_and(|a| !a.is_rsa()) {
                return Err("alg does not fit the key type");
            }
            Ok(DecryptKey { kid, alg, secret })
        }),
        // A public encryption key (an IdP publishes them for its clients): not ours to use.
        _ => return Ok(None),
    };
    match key {
        Ok(key) => Ok(Some(key)),
        // An unmarked oct key of another length is an HMAC secret, not a decryption key.
        Err(_) if !declared && kty == "oct" => Ok(None),
        Err(e) => Err(e),
    }
}

fn rsa_private(jwk: &Map<String, Value>) -> Result<Secret, &'static str> {
    if jwk.contains_key("oth") {
        return Err("multi-prime rsa keys are not supported");
    }
    let mut parts = Vec::with_capacity(8);
    for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        let bytes =
            member(jwk, name).ok_or("rsa private key lacks a member or it is not base64url")?;
        parts.push(BigNum::from_slice(&bytes).map_err(|_| "openssl could not read the key")?);
    }
    let bits = u32::try_from(parts[0].num_bits()).unwrap_or(0);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err("rsa modulus is not 2048 to 16384 bits");
    }
    let mut it = parts.into_iter();
    let mut next = || it.next().ok_or("rsa private key lacks a member");
    let (n, e, d) = (next()?, next()?, next()?);
    let (p, q, dp, dq, qi) = (next()?, next()?, next()?, next()?, next()?);
    let rsa = RsaPrivateKeyBuilder::new(n, e, d)
        .and_then(|b| b.set_factors(p, q))
        .and_then(|b| b.set_crt_params(dp, dq, qi))
        .map(|b| b.build())
        .map_err(|_| "openssl could not build the rsa key")?;
    if !rsa.check_key().unwrap_or(false) {
        return Err("rsa private key is inconsistent");
    }
    PKey::from_rsa(rsa)
        .map(Secret::Rsa)
        .map_err(|_| "openssl could not build the rsa key")
}

fn member(jwk: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    token::decode(jwk.get(name)?.as_str()?.as_bytes())
}
