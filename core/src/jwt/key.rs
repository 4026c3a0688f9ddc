//! Verification keys: OpenSSL key objects validated and built once, bound to their algorithms.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;

use super::alg::{Alg, AlgSet};
use super::ed25519;
use super::hmac::HmacKey;

/// Smallest RSA modulus accepted (NIST SP 800-131A; RFC 7518 §3.3 requires 2048).
pub const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted: OpenSSL's own limit, and a bound on verification cost.
pub const MAX_RSA_BITS: u32 = 16384;
/// Shortest HMAC secret accepted: HS256's output (RFC 7518 §3.2). A secret verifies only the
/// HS algorithms whose output is no longer than it: HS384 needs 48 bytes, HS512 64.
pub const MIN_HMAC_LEN: usize = 32;
/// Length of an Ed25519 public key and of its signatures' halves.
pub const ED25519_KEY_LEN: usize = 32;

/// The NIST curves JWS uses, each bound to one ECDSA algorithm (RFC 7518 §3.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// Looks up a JWK `crv` name.
    pub fn from_name(crv: &str) -> Option<Curve> {
        match crv {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Bytes in one coordinate, and in each of `r` and `s` of a JWS signature.
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The one algorithm a key on this curve verifies.
    pub fn alg(self) -> Alg {
        match self {
            Curve::P256 => Alg::ES256,
            Curve::P384 => Alg::ES384,
            Curve::P521 => Alg::ES512,
        }
    }

    fn nid(self) -> Nid {
        match self {
            Curve::P256 => Nid::X9_62_PRIME256V1,
            Curve::P384 => Nid::SECP384R1,
            Curve::P521 => Nid::SECP521R1,
        }
    }

    fn from_nid(nid: Nid) -> Option<Curve> {
        [Curve::P256, Curve::P384, Curve::P521]
            .into_iter()
            .find(|c| c.nid() == nid)
    }
}

/// Why key material was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyError {
    /// Under [`MIN_HMAC_LEN`] bytes, the shortest output of an HS algorithm (RFC 7518 §3.2).
    HmacTooShort,
    /// The JWK's `alg` needs a longer secret: HS384 48 bytes, HS512 64.
    HmacTooShortForAlg,
    RsaTooShort,
    RsaTooLong,
    RsaModulus,
    RsaExponent,
    EcCoordinateLength,
    EcPoint,
    /// A curve other than P-256, P-384, P-521 (or explicit curve parameters).
    UnsupportedCurve,
    Ed25519Length,
    /// `y` is not below the field prime (RFC 8032 §5.1.3 refuses the encoding).
    Ed25519Encoding,
    /// No point of the curve has this `y`.
    Ed25519Point,
    /// A point of order 1, 2, 4 or 8: with it, a signature verifies without the private key.
    Ed25519SmallOrder,
    /// A key type no JWS algorithm here uses (Ed448, X25519, DSA, RSA-PSS-only keys, ...).
    UnsupportedType,
    /// The key's `alg` is not one its type can verify.
    AlgMismatch,
    /// OpenSSL could not build the key object.
    Openssl,
}

impl KeyError {
    /// True for well-formed keys of a kind this module does not use (skipped, not fatal).
    pub fn is_unsupported(self) -> bool {
        matches!(self, KeyError::UnsupportedCurve | KeyError::UnsupportedType)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyError::HmacTooShort => "hmac secret is shorter than 32 bytes",
            KeyError::HmacTooShortForAlg => "hmac secret is shorter than its alg's hash output",
            KeyError::RsaTooShort => "rsa modulus is shorter than 2048 bits",
            KeyError::RsaTooLong => "rsa modulus is longer than 16384 bits",
            KeyError::RsaModulus => "rsa modulus is even",
            KeyError::RsaExponent => "rsa exponent is not odd, above 1 and below the modulus",
            KeyError::EcCoordinateLength => "ec coordinate length does not fit the curve",
            KeyError::EcPoint => "ec point is not on the curve",
            KeyError::UnsupportedCurve => "unsupported ec curve",
            KeyError::Ed25519Length => "ed25519 public key is not 32 bytes",
            KeyError::Ed25519Encoding => "ed25519 public key is not a canonical encoding",
            KeyError::Ed25519Point => "ed25519 public key is not a point on the curve",
            KeyError::Ed25519SmallOrder => "ed25519 public key is a small-order point",
            KeyError::UnsupportedType => "unsupported key type",
            KeyError::AlgMismatch => "alg does not fit the key type",
            KeyError::Openssl => "openssl could not build the key",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for KeyError {}

/// Validated key material, with every OpenSSL object signature checks need already built.
#[derive(Clone)]
pub struct KeyMaterial {
    pub(super) kind: Kind,
}

#[derive(Clone)]
pub(super) enum Kind {
    Hmac {
        /// Shared: cloning a key set must not copy six digest states.
        key: Arc<HmacKey>,
        /// The HS algorithms whose output is no longer than the secret.
        algs: AlgSet,
    },
    Rsa(PKey<Public>),
    Ec {
        /// The key as an `EVP_PKEY`, for provider-based verification.
        key: PKey<Public>,
        curve: Curve,
        /// The group order n, big-endian, `coordinate_len` bytes: `r` and `s` must lie in
        /// [1, n-1].
        order: Box<[u8]>,
    },
    Ed25519(PKey<Public>),
}

impl KeyMaterial {
    /// An HMAC secret (JWK `oct`) of at least [`MIN_HMAC_LEN`] bytes; it verifies the HS
    /// algorithms whose hash output is no longer than it (RFC 7518 §3.2).
    pub fn hmac(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HMAC_LEN {
            return Err(KeyError::HmacTooShort);
        }
        let algs = [(Alg::HS256, 32), (Alg::HS384, 48), (Alg::HS512, 64)]
            .into_iter()
            .filter(|&(_, output)| secret.len() >= output)
            .map(|(alg, _)| alg)
            .collect();
        let key = HmacKey::new(secret).map_err(|_| KeyError::Openssl)?;
        Ok(Self {
            kind: Kind::Hmac {
                key: Arc::new(key),
                algs,
            },
        })
    }

    /// An RSA public key from big-endian modulus and exponent (JWK `n`, `e`).
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n = BigNum::from_slice(n).map_err(|_| KeyError::Openssl)?;
        let e = BigNum::from_slice(e).map_err(|_| KeyError::Openssl)?;
        check_rsa(&n, &e)?;
        let rsa = Rsa::from_public_components(n, e).map_err(|_| KeyError::Openssl)?;
        let key = PKey::from_rsa(rsa).map_err(|_| KeyError::Openssl)?;
        Ok(Self {
            kind: Kind::Rsa(key),
        })
    }

    /// An EC public key from big-endian affine coordinates of exactly the curve's length
    /// (JWK `x`, `y`, RFC 7518 §6.2.1.2); the point must be on the curve.
    pub fn ec(curve: Curve, x: &[u8], y: &[u8]) -> Result<Self, KeyError> {
        let len = curve.coordinate_len();
        if x.len() != len || y.len() != len {
            return Err(KeyError::EcCoordinateLength);
        }
        let group = EcGroup::from_curve_name(curve.nid()).map_err(|_| KeyError::Openssl)?;
        let x = BigNum::from_slice(x).map_err(|_| KeyError::Openssl)?;
        let y = BigNum::from_slice(y).map_err(|_| KeyError::Openssl)?;
        let key = EcKey::from_public_key_affine_coordinates(&group, &x, &y)
            .map_err(|_| KeyError::EcPoint)?;
        Self::ec_key(key, curve)
    }

    /// An Ed25519 public key (JWK `OKP` with `crv` `Ed25519`, RFC 8037): the canonical
    /// encoding of a curve point of large order.
    pub fn ed25519(x: &[u8]) -> Result<Self, KeyError> {
        let x: &[u8; ED25519_KEY_LEN] = x.try_into().map_err(|_| KeyError::Ed25519Length)?;
        ed25519::check(x)?;
        let key = PKey::public_key_from_raw_bytes(x, Id::ED25519).map_err(|_| KeyError::Openssl)?;
        Ok(Self {
            kind: Kind::Ed25519(key),
        })
    }

    /// A public key decoded by OpenSSL (SPKI, PKCS#1, certificate), held to the same rules.
    pub fn from_public_key(key: PKey<Public>) -> Result<Self, KeyError> {
        match key.id() {
            Id::RSA => {
                let rsa = key.rsa().map_err(|_| KeyError::Openssl)?;
                check_rsa(rsa.n(), rsa.e())?;
                Ok(Self {
                    kind: Kind::Rsa(key),
                })
            }
            Id::EC => {
                let ec = key.ec_key().map_err(|_| KeyError::Openssl)?;
                let curve = ec
                    .group()
                    .curve_name()
                    .and_then(Curve::from_nid)
                    .ok_or(KeyError::UnsupportedCurve)?;
                Self::ec_key(ec, curve)
            }
            Id::ED25519 => {
                let x = key.raw_public_key().map_err(|_| KeyError::Openssl)?;
                let x: &[u8; ED25519_KEY_LEN] = x
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyError::Ed25519Length)?;
                ed25519::check(x)?;
                Ok(Self {
                    kind: Kind::Ed25519(key),
                })
            }
            _ => Err(KeyError::UnsupportedType),
        }
    }

    fn ec_key(key: EcKey<Public>, curve: Curve) -> Result<Self, KeyError> {
        key.check_key().map_err(|_| KeyError::EcPoint)?;
        let mut order = BigNum::new().map_err(|_| KeyError::Openssl)?;
        let mut ctx = BigNumContext::new().map_err(|_| KeyError::Openssl)?;
        key.group()
            .order(&mut order, &mut ctx)
            .map_err(|_| KeyError::Openssl)?;
        let len = i32::try_from(curve.coordinate_len()).map_err(|_| KeyError::Openssl)?;
        let order = order.to_vec_padded(len).map_err(|_| KeyError::Openssl)?;
        let key = PKey::from_ec_key(key).map_err(|_| KeyError::Openssl)?;
        Ok(Self {
            kind: Kind::Ec {
                key,
                curve,
                order: order.into_boxed_slice(),
            },
        })
    }

    /// JWK `kty`: `oct`, `RSA`, `EC` or `OKP`.
    pub fn kty(&self) -> &'static str {
        match self.kind {
            Kind::Hmac { .. } => "oct",
            Kind::Rsa(_) => "RSA",
            Kind::Ec { .. } => "EC",
            Kind::Ed25519(_) => "OKP",
        }
    }

    /// Every algorithm this key type can verify: the key-type/algorithm binding.
    pub fn algorithms(&self) -> AlgSet {
        let algs: &[Alg] = match &self.kind {
            Kind::Hmac { algs, .. } => return *algs,
            Kind::Rsa(_) => &[
                Alg::RS256,
                Alg::RS384,
                Alg::RS512,
                Alg::PS256,
                Alg::PS384,
                Alg::PS512,
            ],
            Kind::Ec { curve, .. } => return [curve.alg()].into_iter().collect(),
            Kind::Ed25519(_) => &[Alg::EdDSA],
        };
        algs.iter().copied().collect()
    }
}

impl fmt::Debug for KeyMaterial {
    /// Names the key type only: an HMAC secret never reaches a log through `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Ec { curve, .. } => write!(f, "KeyMaterial(EC {})", curve.name()),
            _ => write!(f, "KeyMaterial({})", self.kty()),
        }
    }
}

fn check_rsa(n: &BigNumRef, e: &BigNumRef) -> Result<(), KeyError> {
    let bits = u32::try_from(n.num_bits()).unwrap_or(0);
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooShort);
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyError::RsaTooLong);
    }
    if !n.is_odd() {
        return Err(KeyError::RsaModulus);
    }
    if !e.is_odd() || e.num_bits() < 2 || e.ucmp(n).is_ge() {
        return Err(KeyError::RsaExponent);
    }
    Ok(())
}

/// One verification key, as configured: optional `kid` and `alg`, and its material.
#[derive(Clone, Debug)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The JWK's `alg`, if it names one: then the key verifies that algorithm only.
    pub alg: Option<Alg>,
    material: KeyMaterial,
}

impl Jwk {
    /// Binds material to its `kid` and `alg`; an `alg` the key type cannot verify is refused.
    pub fn new(
        kid: Option<String>,
        alg: Option<Alg>,
        material: KeyMaterial,
    ) -> Result<Self, KeyError> {
        if let Some(a) = alg.filter(|&a| !material.algorithms().contains(a)) {
            let hs = matches!(a, Alg::HS256 | Alg::HS384 | Alg::HS512);
            return Err(match material.kind {
                Kind::Hmac { .. } if hs => KeyError::HmacTooShortForAlg,
                _ => KeyError::AlgMismatch,
            });
        }
        Ok(Self { kid, alg, material })
    }

    /// Whether this key may verify a token signed with `alg`: the type fits, and so does the
    /// JWK's own `alg` when it has one. This is what stops HS256 keyed with an RSA key.
    pub fn fits(&self, alg: Alg) -> bool {
        self.alg.is_none_or(|a| a == alg) && self.material.algorithms().contains(alg)
    }

    pub fn kty(&self) -> &'static str {
        self.material.kty()
    }

    /// The algorithms this key verifies (for status pages and logs).
    pub fn algorithms(&self) -> AlgSet {
        match self.alg {
            Some(a) => [a].into_iter().collect(),
            None => self.material.algorithms(),
        }
    }

    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
