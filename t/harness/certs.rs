//! Test certificates made with OpenSSL: a CA and a server certificate for 127.0.0.1 (P-256,
//! valid from an hour ago for two days).

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

use super::mint::now;

/// A CA certificate that signed nothing the tests serve: trusting it must not be enough.
pub fn unrelated_ca_pem() -> String {
    let (cert, _) = make_ca("auth_jwt unrelated CA");
    String::from_utf8(cert.to_pem().expect("pem")).expect("pem is text")
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().expect("bignum");
    bn.rand(64, MsbOption::MAYBE_ZERO, false).expect("rand");
    bn.to_asn1_integer().expect("serial")
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey")
}

fn validity(builder: &mut X509Builder) {
    let from = Asn1Time::from_unix(now() - 3600).expect("not before");
    let until = Asn1Time::days_from_now(2).expect("not after");
    builder.set_not_before(&from).expect("not before");
    builder.set_not_after(&until).expect("not after");
}

/// A self-signed CA named `cn`.
pub fn make_ca(cn: &str) -> (X509, PKey<Private>) {
    let key = ec_key();
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, cn).expect("cn");
    let name = name.build();
    let mut b = X509Builder::new().expect("x509");
    b.set_version(2).expect("v3");
    b.set_serial_number(&serial()).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    validity(&mut b);
    let ext = BasicConstraints::new().critical().ca().build().expect("bc");
    b.append_extension(ext).expect("bc");
    let ext = KeyUsage::new()
        .critical()
        .key_cert_sign()
        .crl_sign()
        .build()
        .expect("ku");
    b.append_extension(ext).expect("ku");
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .expect("ski");
    b.append_extension(ski).expect("ski");
    b.sign(&key, MessageDigest::sha256()).expect("sign ca");
    (b.build(), key)
}

/// The part every certificate `ca` signs shares: a fresh key, `cn`, validity, no CA
/// rights, digital signature only.
fn signed_by(ca: &X509, cn: &str) -> (X509Builder, PKey<Private>) {
    let key = ec_key();
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, cn).expect("cn");
    let name = name.build();
    let mut b = X509Builder::new().expect("x509");
    b.set_version(2).expect("v3");
    b.set_serial_number(&serial()).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(ca.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    validity(&mut b);
    let ext = BasicConstraints::new().build().expect("bc");
    b.append_extension(ext).expect("bc");
    let ext = KeyUsage::new()
        .critical()
        .digital_signature()
        .build()
        .expect("ku");
    b.append_extension(ext).expect("ku");
    (b, key)
}

pub fn make_leaf(ca: &X509, ca_key: &PKey<Private>) -> (X509, PKey<Private>) {
    let (mut b, key) = signed_by(ca, "127.0.0.1");
    let ext = ExtendedKeyUsage::new().server_auth().build().expect("eku");
    b.append_extension(ext).expect("eku");
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&b.x509v3_context(Some(ca), None))
        .expect("san");
    b.append_extension(san).expect("san");
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(Some(ca), None))
        .expect("ski");
    b.append_extension(ski).expect("ski");
    let aki = AuthorityKeyIdentifier::new()
        .keyid(false)
        .build(&b.x509v3_context(Some(ca), None))
        .expect("aki");
    b.append_extension(aki).expect("aki");
    b.sign(ca_key, MessageDigest::sha256()).expect("sign leaf");
    (b.build(), key)
}

/// A TLS client certificate named `cn` (clientAuth), signed by `ca`.
pub fn make_client(ca: &X509, ca_key: &PKey<Private>, cn: &str) -> (X509, PKey<Private>) {
    let (mut b, key) = signed_by(ca, cn);
    let ext = ExtendedKeyUsage::new().client_auth().build().expect("eku");
    b.append_extension(ext).expect("eku");
    b.sign(ca_key, MessageDigest::sha256())
        .expect("sign client");
    (b.build(), key)
}
