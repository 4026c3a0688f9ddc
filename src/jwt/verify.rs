//! Key selection and signature verification of parsed tokens, with OpenSSL.
#![forbid(unsafe_code)]

use foreign_types::ForeignTypeRef;
use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::{self, MessageDigest};
use openssl::md::Md;
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sha;
use openssl::sign::{RsaPssSaltlen, Verifier};
use std::cell::RefCell;
use std::collections::hash_map::{Entry, HashMap};

pub use super::key::{Curve, Jwk, KeyError, KeyMaterial};

use super::alg::{Alg, AlgSet};
use super::error::VerifyError;
use super::key::{Kind, ED25519_KEY_LEN};
use super::token::Token;

/// Keys from configuration or a fetched JWKS, built once and shared read-only by requests.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

// Workers share key sets across threads (the fetcher builds them, requests read them).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<KeySet>();
};

impl KeySet {
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }

    pub fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Every algorithm some key here can verify.
    pub fn algorithms(&self) -> AlgSet {
        self.keys
            .iter()
            .flat_map(|k| k.algorithms().iter())
            .collect()
    }

    /// Chooses the key(s) for `token` and checks its signature; returns the key that verified.
    ///
    /// The algorithm must be in `allowed`, and a key is only used for algorithms its type
    /// (and its own `alg`, if set) fits. A token `kid` selects the keys with exactly that
    /// `kid` and nothing else: if none has it the token is refused with
    /// [`VerifyError::UnknownKid`], with no fallback to other keys (kid-less ones included).
    /// Without a `kid`, every fitting key is tried.
    pub fn verify(&self, token: &Token<'_>, allowed: AlgSet) -> Result<&Jwk, VerifyError> {
        self.verify_parts(
            token.alg,
            token.kid.as_deref(),
            token.signing_input,
            &token.signature,
            allowed,
        )
    }

    fn verify_parts(
        &self,
        alg: Alg,
        kid: Option<&str>,
        input: &[u8],
        signature: &[u8],
        allowed: AlgSet,
    ) -> Result<&Jwk, VerifyError> {
        if !allowed.contains(alg) {
            return Err(VerifyError::AlgNotAllowed(alg));
        }
        let search = |candidate: &dyn Fn(&Jwk) -> bool| {
            let mut seen = Search::Empty;
            for key in self.keys.iter().filter(|k| candidate(k)) {
                if !key.fits(alg) {
                    if let Search::Empty = seen {
                        seen = Search::NoneFit;
                    }
                } else if check(key.material(), alg, input, signature) {
                    return Search::Verified(key);
                } else {
                    seen = Search::Failed;
                }
            }
            seen
        };
        let Some(kid) = kid else {
            return match search(&|_| true) {
                Search::Verified(key) => Ok(key),
                Search::Failed => Err(VerifyError::BadSignature),
                Search::NoneFit | Search::Empty => Err(VerifyError::NoFittingKey),
            };
        };
        match search(&|k| k.kid.as_deref() == Some(kid)) {
            Search::Verified(key) => Ok(key),
            Search::Failed => Err(VerifyError::BadSignature),
            Search::NoneFit => Err(VerifyError::KeyTypeMismatch),
            Search::Empty => Err(VerifyError::UnknownKid),
        }
    }
}

/// What trying a list of candidate keys found.
enum Search<'k> {
    Verified(&'k Jwk),
    /// Some key fit the algorithm; none verified.
    Failed,
    /// There were candidates, none of a fitting type.
    NoneFit,
    /// There were no candidates.
    Empty,
}

/// Verifies one signature with one key that fits `alg`. Any OpenSSL failure counts as a bad
/// signature; the OpenSSL error queue is left empty either way.
fn check(material: &KeyMaterial, alg: Alg, input: &[u8], signature: &[u8]) -> bool {
    let md = digest(alg);
    match (&material.kind, alg) {
        (Kind::Hmac(key), Alg::HS256 | Alg::HS384 | Alg::HS512) => {
            key.verify(alg, input, signature)
        }
        (Kind::Rsa(key), Alg::RS256 | Alg::RS384 | Alg::RS512) => rsa(key, alg, input, signature),
        (Kind::Rsa(key), Alg::PS256 | Alg::PS384 | Alg::PS512) => rsa(key, alg, input, signature),
        (Kind::Ec { key, curve, order }, _) if curve.alg() == alg => {
            ecdsa(key, curve.coordinate_len(), order, md, input, signature)
        }
        (Kind::Ed25519(key), Alg::EdDSA) => ed25519(key, input, signature),
        _ => false,
    }
}

fn digest(alg: Alg) -> MessageDigest {
    match alg {
        Alg::HS256 | Alg::RS256 | Alg::PS256 | Alg::ES256 => MessageDigest::sha256(),
        Alg::HS384 | Alg::RS384 | Alg::PS384 | Alg::ES384 => MessageDigest::sha384(),
        Alg::HS512 | Alg::RS512 | Alg::PS512 | Alg::ES512 => MessageDigest::sha512(),
        // Ed25519 hashes internally; this value is never used.
        Alg::EdDSA => MessageDigest::null(),
    }
}

thread_local! {
    /// RSA verification contexts, ready for `EVP_PKEY_verify`, per key and algorithm.
    ///
    /// OpenSSL 3 fetches the signature and digest implementations and sets up a context on
    /// every `EVP_DigestVerifyInit`, which costs about a third of an RSA-2048 verify. A
    /// prepared context is reused instead (as `openssl speed` does); the digest is computed
    /// with the fetch-free one-shot SHA-2 functions. Contexts are per thread because
    /// `EVP_PKEY_CTX` is not thread-safe; only the worker's main thread verifies. A context
    /// holds a reference on its key, so the key's address cannot be reused while cached.
    static RSA_CONTEXTS: RefCell<HashMap<(usize, Alg), PkeyCtx<Public>>> =
        RefCell::new(HashMap::new());
}

/// Contexts kept per thread at most; beyond this (many rotations) the cache starts over.
const MAX_RSA_CONTEXTS: usize = 256;

/// RSASSA-PKCS1-v1_5 or RSASSA-PSS (RFC 7518 §3.3, §3.5: salt length = digest length,
/// MGF1 with the same digest). The signature must be exactly as long as the modulus.
fn rsa(key: &PKey<Public>, alg: Alg, input: &[u8], signature: &[u8]) -> bool {
    if signature.len() != key.size() {
        return false;
    }
    let digest = Digest::of(alg, input);
    let verified = RSA_CONTEXTS.with_borrow_mut(|contexts| {
        if contexts.len() >= MAX_RSA_CONTEXTS {
            contexts.clear();
        }
        let ctx = match contexts.entry((key.as_ptr() as usize, alg)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(rsa_context(key, alg)?),
        };
        ctx.verify(digest.as_ref(), signature)
    });
    let ok = verified.unwrap_or(false);
    if !ok {
        // A mismatch may leave an error on OpenSSL's queue; NGINX must not find it there.
        drop(ErrorStack::get());
    }
    ok
}

fn rsa_context(key: &PKey<Public>, alg: Alg) -> Result<PkeyCtx<Public>, ErrorStack> {
    let md = match alg {
        Alg::RS256 | Alg::PS256 => Md::sha256(),
        Alg::RS384 | Alg::PS384 => Md::sha384(),
        _ => Md::sha512(),
    };
    let mut ctx = PkeyCtx::new(key)?;
    ctx.verify_init()?;
    ctx.set_signature_md(md)?;
    if matches!(alg, Alg::PS256 | Alg::PS384 | Alg::PS512) {
        ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
        ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        ctx.set_rsa_mgf1_md(md)?;
    } else {
        ctx.set_rsa_padding(Padding::PKCS1)?;
    }
    Ok(ctx)
}

/// A SHA-2 digest on the stack, computed without an EVP fetch.
enum Digest {
    Sha256([u8; 32]),
    Sha384([u8; 48]),
    Sha512([u8; 64]),
}

impl Digest {
    fn of(alg: Alg, input: &[u8]) -> Self {
        match alg {
            Alg::RS256 | Alg::PS256 | Alg::ES256 | Alg::HS256 => Self::Sha256(sha::sha256(input)),
            Alg::RS384 | Alg::PS384 | Alg::ES384 | Alg::HS384 => Self::Sha384(sha::sha384(input)),
            _ => Self::Sha512(sha::sha512(input)),
        }
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Sha256(d) => d,
            Self::Sha384(d) => d,
            Self::Sha512(d) => d,
        }
    }
}

/// ECDSA (RFC 7518 §3.4): the signature is `r || s`, each exactly `len` bytes (DER is not
/// JWS), each in [1, n-1], checked here before OpenSSL sees them.
fn ecdsa(
    key: &EcKey<Public>,
    len: usize,
    order: &[u8],
    md: MessageDigest,
    input: &[u8],
    signature: &[u8],
) -> bool {
    if signature.len() != 2 * len {
        return false;
    }
    let (r, s) = signature.split_at(len);
    if !in_range(r, order) || !in_range(s, order) {
        return false;
    }
    let verified = (|| {
        let r = BigNum::from_slice(r)?;
        let s = BigNum::from_slice(s)?;
        let digest = hash::hash(md, input)?;
        EcdsaSig::from_private_components(r, s)?.verify(&digest, key)
    })();
    let ok = verified.unwrap_or(false);
    if !ok {
        // ECDSA_do_verify may queue an error for a mere mismatch; drain it.
        drop(ErrorStack::get());
    }
    ok
}

/// `1 <= v < n`, both big-endian of the same length (so byte order is numeric order).
fn in_range(v: &[u8], n: &[u8]) -> bool {
    v.len() == n.len() && v.iter().any(|&b| b != 0) && v < n
}

/// Ed25519 (RFC 8037 §3.1): pure EdDSA over the signing input, 64-byte signatures.
fn ed25519(key: &PKey<Public>, input: &[u8], signature: &[u8]) -> bool {
    if signature.len() != 2 * ED25519_KEY_LEN {
        return false;
    }
    Verifier::new_without_digest(key)
        .and_then(|mut verifier| verifier.verify_oneshot(signature, input))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
