//! Tests of key loading: RSA, EC, Ed25519 and HMAC material.

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
