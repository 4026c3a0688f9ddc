//! Ed25519 public keys checked at load: canonical, on the curve, not of small order.
#![forbid(unsafe_code)]

use openssl::bn::{BigNum, BigNumContext, BigNumRef};

use super::key::{KeyError, ED25519_KEY_LEN};

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
pub(super) fn check(x: &[u8; ED25519_KEY_LEN]) -> Result<(), KeyError> {
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
