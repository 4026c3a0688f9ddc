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
        check_ed25519(x)?;
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
                check_ed25519(x)?;
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

/// The `y` (little-endian, sign bit clear) of every encoding of the eight points of order 1,
/// 2, 4 or 8, non-canonical ones (p, p+1) included: libsodium's blocklist. OpenSSL verifies
/// against such a key, and `[s]B = R + [k]A` then holds for an `(R, s)` anyone can compute.
const ED25519_SMALL_ORDER: [[u8; ED25519_KEY_LEN]; 7] = {
    let mut ys = [[0; ED25519_KEY_LEN]; 7];
    ys[1][0] = 1;
    ys[2] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    ys[3] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ];
    // p - 1, p, p + 1.
    let mut i = 4;
    while i < 7 {
        ys[i] = [0xff; ED25519_KEY_LEN];
        ys[i][0] = 0xe8 + i as u8;
        ys[i][31] = 0x7f;
        i += 1;
    }
    ys
};
/// The field prime p = 2^255 - 19 and the curve constant d = -121665/121666, big-endian hex.
const ED25519_P: &str = "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed";
const ED25519_D: &str = "52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3";

/// Decodes as RFC 8032 §5.1.3 does, without recovering `x`: `y` must be below p and
/// `(y^2 - 1) / (d y^2 + 1)` a square mod p (Euler's criterion); the point must not have
/// small order. OpenSSL keeps raw Ed25519 keys unchecked, so this is the load-time check
/// that EC keys get from `EC_KEY_check_key`.
fn check_ed25519(x: &[u8; ED25519_KEY_LEN]) -> Result<(), KeyError> {
    let mut y = *x;
    y[31] &= 0x7f;
    if ED25519_SMALL_ORDER.contains(&y) {
        return Err(KeyError::Ed25519SmallOrder);
    }
    y.reverse();
    let y = BigNum::from_slice(&y).map_err(|_| KeyError::Openssl)?;
    let p = BigNum::from_hex_str(ED25519_P).map_err(|_| KeyError::Openssl)?;
    if y.ucmp(&p).is_ge() {
        return Err(KeyError::Ed25519Encoding);
    }
    match is_square_ratio(&y, &p) {
        Ok(true) => Ok(()),
        Ok(false) => Err(KeyError::Ed25519Point),
        Err(_) => Err(KeyError::Openssl),
    }
}

/// Whether `(y^2 - 1) / (d y^2 + 1)` is a non-zero square mod `p`, for `y` in `[0, p)` other
/// than 1 and p - 1 (where it is 0). The denominator is never 0: d is not a square.
fn is_square_ratio(y: &BigNumRef, p: &BigNumRef) -> Result<bool, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let one = BigNum::from_u32(1)?;
    let d = BigNum::from_hex_str(ED25519_D)?;
    let mut y2 = BigNum::new()?;
    y2.mod_sqr(y, p, &mut ctx)?;
    let mut u = BigNum::new()?;
    u.mod_sub(&y2, &one, p, &mut ctx)?;
    let mut dy2 = BigNum::new()?;
    dy2.mod_mul(&d, &y2, p, &mut ctx)?;
    let mut v = BigNum::new()?;
    v.mod_add(&dy2, &one, p, &mut ctx)?;
    let mut v_inv = BigNum::new()?;
    v_inv.mod_inverse(&v, p, &mut ctx)?;
    let mut w = BigNum::new()?;
    w.mod_mul(&u, &v_inv, p, &mut ctx)?;
    // Euler's criterion: w^((p-1)/2) is 1 for a non-zero square, p - 1 for a non-square.
    let mut p_minus_1 = BigNum::new()?;
    p_minus_1.checked_sub(p, &one)?;
    let mut half = BigNum::new()?;
    half.rshift1(&p_minus_1)?;
    let mut euler = BigNum::new()?;
    euler.mod_exp(&w, &half, p, &mut ctx)?;
    Ok(euler == one)
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
    fn hmac_secret_lengths() {
        use Alg::{HS256, HS384, HS512};
        type Case = (usize, Option<Alg>, Result<Vec<Alg>, KeyError>);
        let cases: [Case; 14] = [
            (0, None, Err(KeyError::HmacTooShort)),
            (6, None, Err(KeyError::HmacTooShort)),
            (31, None, Err(KeyError::HmacTooShort)),
            (31, Some(HS256), Err(KeyError::HmacTooShort)),
            (32, None, Ok(vec![HS256])),
            (47, None, Ok(vec![HS256])),
            (48, None, Ok(vec![HS256, HS384])),
            (63, None, Ok(vec![HS256, HS384])),
            (64, None, Ok(vec![HS256, HS384, HS512])),
            (32, Some(HS256), Ok(vec![HS256])),
            (32, Some(HS384), Err(KeyError::HmacTooShortForAlg)),
            (47, Some(HS384), Err(KeyError::HmacTooShortForAlg)),
            (63, Some(HS512), Err(KeyError::HmacTooShortForAlg)),
            (64, Some(HS512), Ok(vec![HS512])),
        ];
        for (len, alg, expected) in cases {
            let got = KeyMaterial::hmac(&vec![7; len])
                .and_then(|m| Jwk::new(None, alg, m))
                .map(|k| {
                    // What a key verifies is what it fits: a 32-byte secret never meets HS512.
                    for a in [HS256, HS384, HS512] {
                        assert_eq!(k.fits(a), k.algorithms().contains(a), "{len} {a}");
                    }
                    k.algorithms().iter().collect::<Vec<_>>()
                });
            assert_eq!(got, expected, "{len} bytes, alg {alg:?}");
        }
    }

    #[test]
    fn other_material() {
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
        let secret = KeyMaterial::hmac(b"hunter2-hunter2-hunter2-hunter2-").unwrap();
        assert_eq!(format!("{secret:?}"), "KeyMaterial(oct)");
    }

    /// Test vectors: the y coordinate (little-endian, sign bit clear) of every encoding of the
    /// eight small-order points, non-canonical ones included (libsodium's blocklist).
    const SMALL_ORDER_Y: [&str; 7] = [
        "0000000000000000000000000000000000000000000000000000000000000000", // order 4
        "0100000000000000000000000000000000000000000000000000000000000000", // identity
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1, order 2
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p (0), order 4
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1 (1), identity
    ];

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    fn ed25519_result(x: &[u8; 32]) -> Result<(), KeyError> {
        KeyMaterial::ed25519(x).map(|_| ())
    }

    #[test]
    fn ed25519_small_order_and_non_canonical_points_are_refused() {
        let mut cases: Vec<([u8; 32], Result<(), KeyError>)> = Vec::new();
        for y in SMALL_ORDER_Y {
            for sign in [0, 0x80] {
                let mut x = hex32(y);
                x[31] |= sign;
                cases.push((x, Err(KeyError::Ed25519SmallOrder)));
            }
        }
        // y = p + 2 ..= 2^255 - 1: y >= p, either sign.
        for low in 0xef..=0xff {
            for sign in [0, 0x80] {
                let mut x = [0xff; 32];
                x[0] = low;
                x[31] = 0x7f | sign;
                cases.push((x, Err(KeyError::Ed25519Encoding)));
            }
        }
        // y = 2: (y^2 - 1) / (d y^2 + 1) is not a square mod p.
        let mut two = [0; 32];
        two[0] = 2;
        cases.push((two, Err(KeyError::Ed25519Point)));
        two[31] = 0x80;
        cases.push((two, Err(KeyError::Ed25519Point)));
        // y = 3 is on the curve, of large order.
        let mut three = [0; 32];
        three[0] = 3;
        cases.push((three, Ok(())));
        for (x, expected) in cases {
            assert_eq!(ed25519_result(&x), expected, "{x:02x?}");
            // The same point in an SPKI (PEM) key is held to the same rules.
            let spki = PKey::public_key_from_raw_bytes(&x, Id::ED25519).unwrap();
            let got = KeyMaterial::from_public_key(spki).map(|_| ());
            assert_eq!(got, expected, "spki {x:02x?}");
        }
    }

    #[test]
    fn ed25519_points_agree_with_dalek() {
        use ed25519_dalek::VerifyingKey;
        use sha2::{Digest, Sha256};
        // ed25519-dalek decodes without the canonical check, which hashes almost never hit
        // (19 in 2^255): a key loads exactly when dalek decodes it to a point of large order.
        let mut loaded = 0;
        for i in 0u32..2000 {
            let x: [u8; 32] = Sha256::digest(i.to_le_bytes()).into();
            let dalek = VerifyingKey::from_bytes(&x).is_ok_and(|k| !k.is_weak());
            let ours = ed25519_result(&x);
            assert_eq!(ours.is_ok(), dalek, "{x:02x?}: {ours:?}");
            loaded += usize::from(dalek);
        }
        assert!(
            (800..1200).contains(&loaded),
            "{loaded} of 2000 on the curve"
        );
        for y in SMALL_ORDER_Y.iter().take(5) {
            assert!(
                VerifyingKey::from_bytes(&hex32(y)).unwrap().is_weak(),
                "{y}"
            );
        }
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
