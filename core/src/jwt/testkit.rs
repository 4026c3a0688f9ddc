//! Test-only minting with OpenSSL private-key operations: only verification is under test.
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{self, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use openssl::x509::{X509Builder, X509NameBuilder};

pub fn hmac_sign(md: MessageDigest, secret: &[u8], input: &[u8]) -> Vec<u8> {
    let key = PKey::hmac(secret).unwrap();
    Signer::new(md, &key)
        .unwrap()
        .sign_oneshot_to_vec(input)
        .unwrap()
}

pub fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

pub fn ec_key(nid: Nid) -> PKey<Private> {
    let group = EcGroup::from_curve_name(nid).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// One 2048-bit RSA key for the whole test run (generation is the slow part).
pub fn shared_rsa() -> &'static PKey<Private> {
    static KEY: OnceLock<PKey<Private>> = OnceLock::new();
    KEY.get_or_init(|| rsa_key(2048))
}

pub fn shared_p384() -> &'static PKey<Private> {
    static KEY: OnceLock<PKey<Private>> = OnceLock::new();
    KEY.get_or_init(|| ec_key(Nid::SECP384R1))
}

pub fn public_of(key: &PKey<Private>) -> PKey<Public> {
    PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap()
}

pub fn pem_of(key: &PKey<Private>) -> String {
    String::from_utf8(key.public_key_to_pem().unwrap()).unwrap()
}

/// PKCS#1 v1.5, or PSS with the given salt length (MGF1 with the same digest).
pub fn rsa_sign(
    key: &PKey<Private>,
    md: MessageDigest,
    pss: Option<RsaPssSaltlen>,
    input: &[u8],
) -> Vec<u8> {
    let mut signer = Signer::new(md, key).unwrap();
    if let Some(salt) = pss {
        signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        signer.set_rsa_pss_saltlen(salt).unwrap();
        signer.set_rsa_mgf1_md(md).unwrap();
    }
    signer.sign_oneshot_to_vec(input).unwrap()
}

/// A JWS ECDSA signature: `r || s`, each left-padded to `len` bytes.
pub fn ecdsa_sign(key: &PKey<Private>, md: MessageDigest, len: i32, input: &[u8]) -> Vec<u8> {
    let digest = hash::hash(md, input).unwrap();
    let sig = EcdsaSig::sign(&digest, &key.ec_key().unwrap()).unwrap();
    let mut out = sig.r().to_vec_padded(len).unwrap();
    out.extend(sig.s().to_vec_padded(len).unwrap());
    out
}

/// The public point's affine coordinates, each `len` bytes.
pub fn ec_point(key: &PKey<Private>, len: i32) -> (Vec<u8>, Vec<u8>) {
    let ec = key.ec_key().unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
        .unwrap();
    (x.to_vec_padded(len).unwrap(), y.to_vec_padded(len).unwrap())
}

/// The group order n of a curve, `len` bytes.
pub fn curve_order(nid: Nid, len: i32) -> Vec<u8> {
    let group = EcGroup::from_curve_name(nid).unwrap();
    let mut n = BigNum::new().unwrap();
    group
        .order(&mut n, &mut BigNumContext::new().unwrap())
        .unwrap();
    n.to_vec_padded(len).unwrap()
}

/// The DER `Ecdsa-Sig-Value` of (r, s), which some libraries wrongly put in a JWS.
pub fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let r = BigNum::from_slice(r).unwrap();
    let s = BigNum::from_slice(s).unwrap();
    EcdsaSig::from_private_components(r, s)
        .unwrap()
        .to_der()
        .unwrap()
}

/// A self-signed certificate for `key`, PEM.
pub fn certificate(key: &PKey<Private>) -> String {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "issuer.example").unwrap();
    let name = name.build();
    let mut cert = X509Builder::new().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.sign(key, MessageDigest::sha256()).unwrap();
    String::from_utf8(cert.build().to_pem().unwrap()).unwrap()
}
