//! Key selection and signature verification of parsed tokens, with OpenSSL.
#![forbid(unsafe_code)]

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::md::{Md, MdRef};
use openssl::md_ctx::MdCtx;
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use std::cell::RefCell;
use std::collections::hash_map::{Entry, HashMap};
use std::sync::OnceLock;

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

    /// Checks a signature over `input` made with `alg` by any key of the set (no `kid`), for
    /// JWS that are not access tokens (DPoP proofs, whose key travels in their header).
    pub fn verify_signature(
        &self,
        alg: Alg,
        input: &[u8],
        signature: &[u8],
        allowed: AlgSet,
    ) -> Result<&Jwk, VerifyError> {
        self.verify_parts(alg, None, input, signature, allowed)
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
    match (&material.kind, alg) {
        (Kind::Hmac { key, .. }, Alg::HS256 | Alg::HS384 | Alg::HS512) => {
            key.verify(alg, input, signature)
        }
        (Kind::Rsa(key), Alg::RS256 | Alg::RS384 | Alg::RS512) => rsa(key, alg, input, signature),
        (Kind::Rsa(key), Alg::PS256 | Alg::PS384 | Alg::PS512) => rsa(key, alg, input, signature),
        (Kind::Ec { key, curve, order }, _) if curve.alg() == alg => {
            ecdsa(key, curve.coordinate_len(), order, alg, input, signature)
        }
        (Kind::Ed25519(key), Alg::EdDSA) => ed25519(key, input, signature),
        _ => false,
    }
}

thread_local! {
    /// Verification contexts, ready for `EVP_PKEY_verify`, per key and algorithm.
    ///
    /// OpenSSL 3 fetches the signature and digest implementations and sets up a context on
    /// every `EVP_DigestVerifyInit`, which costs about a third of an RSA-2048 verify. A
    /// prepared context is reused instead (as `openssl speed` does), and the digest is taken
    /// with an implementation fetched once. Everything still goes through OpenSSL's providers,
    /// so a FIPS provider configured as the default is the one that checks. Contexts are per
    /// thread because `EVP_PKEY_CTX` is not thread-safe; only the worker's main thread
    /// verifies. A context holds a reference on its key, so the key's address cannot be
    /// reused while cached.
    static CONTEXTS: RefCell<HashMap<(usize, Alg), PkeyCtx<Public>>> =
        RefCell::new(HashMap::new());
    static DIGEST_CTX: RefCell<Option<MdCtx>> = const { RefCell::new(None) };
}

/// Contexts kept per thread at most; beyond this (many rotations) the cache starts over.
const MAX_CONTEXTS: usize = 256;

/// RSASSA-PKCS1-v1_5 or RSASSA-PSS (RFC 7518 §3.3, §3.5: salt length = digest length,
/// MGF1 with the same digest). The signature must be exactly as long as the modulus.
fn rsa(key: &PKey<Public>, alg: Alg, input: &[u8], signature: &[u8]) -> bool {
    if signature.len() != key.size() {
        return false;
    }
    verify_digest(key, alg, input, signature)
}

/// ECDSA (RFC 7518 §3.4): the signature is `r || s`, each exactly `len` bytes (DER is not
/// JWS), each in [1, n-1], checked here before OpenSSL sees them.
fn ecdsa(
    key: &PKey<Public>,
    len: usize,
    order: &[u8],
    alg: Alg,
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
    let mut der = [0u8; DER_MAX];
    let n = ecdsa_der(r, s, &mut der);
    verify_digest(key, alg, input, &der[..n])
}

/// Longest DER `ECDSA-Sig-Value` of P-521: two 67-byte INTEGERs with their headers, and the
/// SEQUENCE's (long-form length) header.
const DER_MAX: usize = 3 + 2 * (2 + 67);

/// The DER `SEQUENCE { INTEGER r, INTEGER s }` of raw big-endian `r` and `s` (each at most 66
/// bytes, not zero), written into `out`; its length. Built here rather than through
/// `ECDSA_SIG` (two `BIGNUM`s, an allocation and an encoder per check: 10,700 instructions
/// of a 940,000-instruction ES256 proof check, measured with callgrind).
fn ecdsa_der(r: &[u8], s: &[u8], out: &mut [u8; DER_MAX]) -> usize {
    fn int(v: &[u8], out: &mut [u8]) -> usize {
        let v = &v[v.iter().position(|&b| b != 0).unwrap_or(v.len() - 1)..];
        let pad = usize::from(v[0] & 0x80 != 0);
        out[0] = 0x02;
        out[1] = (v.len() + pad) as u8;
        out[2] = 0;
        out[2 + pad..2 + pad + v.len()].copy_from_slice(v);
        2 + pad + v.len()
    }
    let mut body = [0u8; DER_MAX];
    let n = int(r, &mut body);
    let n = n + int(s, &mut body[n..]);
    let head = if n < 0x80 {
        out[..2].copy_from_slice(&[0x30, n as u8]);
        2
    } else {
        out[..3].copy_from_slice(&[0x30, 0x81, n as u8]);
        3
    };
    out[head..head + n].copy_from_slice(&body[..n]);
    head + n
}

/// SHA-256 with the per-thread context and the implementation fetched once (OpenSSL 3's
/// one-shot `SHA256()` fetches it on every call: 8,500 instructions for a 40-byte input,
/// measured with callgrind).
pub fn sha256(input: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    match digest(Alg::ES256, input) {
        Ok(d) if d.len == 32 => out.copy_from_slice(d.as_ref()),
        _ => {
            drop(ErrorStack::get());
            out = openssl::sha::sha256(input);
        }
    }
    out
}

/// Hashes `input` for `alg` and checks `signature` over the digest with the key's
/// prepared context.
fn verify_digest(key: &PKey<Public>, alg: Alg, input: &[u8], signature: &[u8]) -> bool {
    let verified = digest(alg, input).and_then(|digest| {
        CONTEXTS.with_borrow_mut(|contexts| {
            if contexts.len() >= MAX_CONTEXTS {
                contexts.clear();
            }
            let ctx = match contexts.entry((key.as_ptr() as usize, alg)) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(context(key, alg)?),
            };
            ctx.verify(digest.as_ref(), signature)
        })
    });
    let ok = verified.unwrap_or(false);
    if !ok {
        // A mismatch may leave an error on OpenSSL's queue; NGINX must not find it there.
        drop(ErrorStack::get());
    }
    ok
}

fn context(key: &PKey<Public>, alg: Alg) -> Result<PkeyCtx<Public>, ErrorStack> {
    let mut ctx = PkeyCtx::new(key)?;
    ctx.verify_init()?;
    if matches!(alg, Alg::ES256 | Alg::ES384 | Alg::ES512) {
        return Ok(ctx);
    }
    let md = sha2(alg)?;
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

/// SHA-256/384/512 for `alg`, fetched from the default provider once per process.
fn sha2(alg: Alg) -> Result<&'static MdRef, ErrorStack> {
    static FETCHED: OnceLock<Option<[Md; 3]>> = OnceLock::new();
    let fetched = FETCHED.get_or_init(|| {
        let fetch = |name| Md::fetch(None, name, None);
        Some([
            fetch("SHA256").ok()?,
            fetch("SHA384").ok()?,
            fetch("SHA512").ok()?,
        ])
    });
    let i = match alg {
        Alg::RS256 | Alg::PS256 | Alg::ES256 | Alg::HS256 => 0,
        Alg::RS384 | Alg::PS384 | Alg::ES384 | Alg::HS384 => 1,
        _ => 2,
    };
    match fetched {
        Some(mds) => Ok(&mds[i]),
        None => Err(ErrorStack::get()),
    }
}

/// A SHA-2 digest on the stack.
struct Digest {
    bytes: [u8; 64],
    len: usize,
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Hashes with a per-thread `EVP_MD_CTX` and a pre-fetched implementation: no fetch and no
/// allocation per call.
fn digest(alg: Alg, input: &[u8]) -> Result<Digest, ErrorStack> {
    let md = sha2(alg)?;
    DIGEST_CTX.with_borrow_mut(|slot| {
        let ctx = match slot {
            Some(ctx) => ctx,
            None => slot.insert(MdCtx::new()?),
        };
        ctx.digest_init(md)?;
        ctx.digest_update(input)?;
        let mut out = Digest {
            bytes: [0; 64],
            len: 0,
        };
        out.len = ctx.digest_final(&mut out.bytes)?;
        Ok(out)
    })
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
