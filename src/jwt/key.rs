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
use super::hmac::HmacKey;

/// Smallest RSA modulus accepted (NIST SP 800-131A; RFC 7518 §3.3 requires 2048).
pub const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted: OpenSSL's own limit, and a bound on verification cost.
pub const MAX_RSA_BITS: u32 = 16384;
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
    EmptySecret,
    RsaTooShort,
    RsaTooLong,
    RsaModulus,
    RsaExponent,
    EcCoordinateLength,
    EcPoint,
    /// A curve other than P-256, P-384, P-521 (or explicit curve parameters).
    UnsupportedCurve,
    Ed25519Length,
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
            KeyError::EmptySecret => "hmac secret is empty",
            KeyError::RsaTooShort => "rsa modulus is shorter than 2048 bits",
            KeyError::RsaTooLong => "rsa modulus is longer than 16384 bits",
            KeyError::RsaModulus => "rsa modulus is even",
            KeyError::RsaExponent => "rsa exponent is not odd, above 1 and below the modulus",
            KeyError::EcCoordinateLength => "ec coordinate length does not fit the curve",
            KeyError::EcPoint => "ec point is not on the curve",
            KeyError::UnsupportedCurve => "unsupported ec curve",
            KeyError::Ed25519Length => "ed25519 public key is not 32 bytes",
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
    /// Shared: cloning a key set must not copy six digest states.
    Hmac(Arc<HmacKey>),
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
    /// An HMAC secret (JWK `oct`).
    pub fn hmac(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        let key = HmacKey::new(secret).map_err(|_| KeyError::Openssl)?;
        Ok(Self {
            kind: Kind::Hmac(Arc::new(key)),
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

    /// An Ed25519 public key (JWK `OKP` with `crv` `Ed25519`, RFC 8037).
    pub fn ed25519(x: &[u8]) -> Result<Self, KeyError> {
        if x.len() != ED25519_KEY_LEN {
            return Err(KeyError::Ed25519Length);
        }
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
            Id::ED25519 => Ok(Self {
                kind: Kind::Ed25519(key),
            }),
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
            Kind::Hmac(_) => "oct",
            Kind::Rsa(_) => "RSA",
            Kind::Ec { .. } => "EC",
            Kind::Ed25519(_) => "OKP",
        }
    }

    /// Every algorithm this key type can verify: the key-type/algorithm binding.
    pub fn algorithms(&self) -> AlgSet {
        let algs: &[Alg] = match &self.kind {
            Kind::Hmac(_) => &[Alg::HS256, Alg::HS384, Alg::HS512],
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
        if alg.is_some_and(|a| !material.algorithms().contains(a)) {
            return Err(KeyError::AlgMismatch);
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
mod tests {
    use super::*;

    #[test]
    fn rsa_limits() {
        let n2048 = [0xff; 256];
        let mut even = n2048;
        even[255] = 0xfe;
        type Case<'a> = (&'a [u8], &'a [u8], Result<(), KeyError>);
        let cases: [Case; 9] = [
            (&n2048, &[1, 0, 1], Ok(())),
            (&n2048, &[3], Ok(())),
            (&[0xff; 255], &[1, 0, 1], Err(KeyError::RsaTooShort)),
            (&[0xff; 2049], &[1, 0, 1], Err(KeyError::RsaTooLong)),
            (&[], &[1, 0, 1], Err(KeyError::RsaTooShort)),
            (&even, &[1, 0, 1], Err(KeyError::RsaModulus)),
            (&n2048, &[1], Err(KeyError::RsaExponent)),
            (&n2048, &[1, 0, 0], Err(KeyError::RsaExponent)),
            (&n2048, &n2048, Err(KeyError::RsaExponent)),
        ];
        for (n, e, expected) in cases {
            let got = KeyMaterial::rsa(n, e).map(|m| m.kty());
            assert_eq!(
                got,
                expected.map(|()| "RSA"),
                "n {} bytes, e {e:?}",
                n.len()
            );
        }
    }

    #[test]
    fn other_material() {
        assert_eq!(KeyMaterial::hmac(b"").unwrap_err(), KeyError::EmptySecret);
        for len in [0, 31, 33, 64] {
            let err = KeyMaterial::ed25519(&vec![9; len]).unwrap_err();
            assert_eq!(err, KeyError::Ed25519Length);
        }
        let x = [1u8; 32];
        assert_eq!(
            KeyMaterial::ec(Curve::P256, &x, &x).unwrap_err(),
            KeyError::EcPoint
        );
        let ec = KeyMaterial::ec(Curve::P521, &[0; 66], &[0; 65]).unwrap_err();
        assert_eq!(ec, KeyError::EcCoordinateLength);
        let secret = KeyMaterial::hmac(b"hunter2-hunter2").unwrap();
        assert_eq!(format!("{secret:?}"), "KeyMaterial(oct)");
    }

    #[test]
    fn unsupported_public_keys_are_skippable() {
        for key in [
            PKey::generate_x25519().unwrap(),
            PKey::generate_ed448().unwrap(),
            PKey::generate_x448().unwrap(),
        ] {
            let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
            let err = KeyMaterial::from_public_key(public).unwrap_err();
            assert_eq!(err, KeyError::UnsupportedType);
            assert!(err.is_unsupported());
        }
        assert!(!KeyError::RsaTooShort.is_unsupported());
    }

    #[test]
    fn curve_table_matches_openssl() {
        for (curve, nid) in [
            (Curve::P256, Nid::X9_62_PRIME256V1),
            (Curve::P384, Nid::SECP384R1),
            (Curve::P521, Nid::SECP521R1),
        ] {
            let group = EcGroup::from_curve_name(nid).unwrap();
            let bits = usize::try_from(group.degree()).unwrap();
            assert_eq!(curve.coordinate_len(), bits.div_ceil(8), "{curve:?}");
            assert_eq!(Curve::from_name(curve.name()), Some(curve));
            assert_eq!(Curve::from_nid(nid), Some(curve));
        }
    }
}
