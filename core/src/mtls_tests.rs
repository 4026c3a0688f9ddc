use super::*;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509NameBuilder, X509};
use serde_json::json;
use sha2::{Digest, Sha256};

fn cert(cn: &str) -> X509 {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// The thumbprint computed by RustCrypto, not by the OpenSSL code under test.
fn x5t(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

#[test]
fn thumbprint_is_base64url_sha256_of_der() {
    let der = cert("a").to_der().unwrap();
    assert_eq!(thumbprint(&der), x5t(&der));
    assert_eq!(thumbprint(&der).len(), 43);
}

#[test]
fn policies_and_bindings() {
    let ours = cert("ours").to_der().unwrap();
    let theirs = cert("theirs").to_der().unwrap();
    let bound = claims(json!({"sub": "a", "cnf": {"x5t#S256": x5t(&ours)}}));
    let unbound = claims(json!({"sub": "a"}));
    let jkt_only = claims(json!({"cnf": {"jkt": "abc"}}));
    use MtlsError::*;
    use MtlsPolicy::*;
    use MtlsVerdict as V;
    type Case<'a> = (
        MtlsPolicy,
        &'a Map<String, Value>,
        Option<&'a [u8]>,
        Result<V, MtlsError>,
    );
    let cases: [Case<'_>; 12] = [
        (Optional, &bound, Some(&ours), Ok(V::Bound)),
        (Required, &bound, Some(&ours), Ok(V::Bound)),
        (Optional, &bound, Some(&theirs), Err(Mismatch)),
        (Required, &bound, Some(&theirs), Err(Mismatch)),
        (Optional, &bound, None, Err(NoCertificate)),
        (Optional, &unbound, None, Ok(V::Unbound)),
        (Optional, &unbound, Some(&ours), Ok(V::Unbound)),
        (Required, &unbound, Some(&ours), Err(Unbound)),
        (Required, &jkt_only, Some(&ours), Err(Unbound)),
        (Off, &bound, Some(&theirs), Ok(V::Unbound)),
        (Off, &bound, None, Ok(V::Unbound)),
        (Off, &unbound, None, Ok(V::Unbound)),
    ];
    for (i, (policy, claims, cert, want)) in cases.into_iter().enumerate() {
        assert_eq!(check(policy, claims, cert), want, "case {i}");
    }
}

#[test]
fn malformed_bindings_are_refused_not_ignored() {
    let der = cert("a").to_der().unwrap();
    let short = URL_SAFE_NO_PAD.encode([0u8; 31]);
    let padded = format!("{}=", x5t(&der));
    for cnf in [
        json!("x"),
        json!(["x5t#S256"]),
        json!({"x5t#S256": 5}),
        json!({"x5t#S256": short}),
        json!({"x5t#S256": padded}),
        json!({"x5t#S256": "!!!"}),
    ] {
        let c = claims(json!({ "cnf": cnf }));
        assert_eq!(
            check(MtlsPolicy::Optional, &c, Some(&der)),
            Err(MtlsError::BadBinding),
            "{cnf}"
        );
    }
}

#[test]
fn certificates_from_variables() {
    let c = cert("a");
    let der = c.to_der().unwrap();
    let pem = c.to_pem().unwrap();
    assert_eq!(certificate_from_text(&pem).unwrap(), der);
    let escaped: String = pem
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    assert_eq!(certificate_from_text(escaped.as_bytes()).unwrap(), der);
    for bad in [
        &b""[..],
        b"garbage",
        b"%ZZ",
        b"%4",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n",
    ] {
        assert_eq!(
            certificate_from_text(bad),
            Err(MtlsError::BadCertificate),
            "{bad:?}"
        );
    }
}

#[test]
fn directive_values() {
    let ok = |args: &[&str], policy, certificate| {
        assert_eq!(
            parse_mtls(args),
            Ok(MtlsArgs {
                policy,
                certificate
            }),
            "{args:?}"
        );
    };
    ok(&["required"], MtlsPolicy::Required, None);
    ok(&["optional"], MtlsPolicy::Optional, None);
    ok(&["off"], MtlsPolicy::Off, None);
    ok(
        &["required", "certificate=$ssl_client_escaped_cert"],
        MtlsPolicy::Required,
        Some("$ssl_client_escaped_cert"),
    );
    for bad in [
        &["on"][..],
        &[],
        &["required", "cert=$x"],
        &["required", "certificate=x"],
        &["required", "certificate=$"],
        &["off", "certificate=$x"],
        &["required", "certificate=$x", "y"],
    ] {
        assert!(parse_mtls(bad).is_err(), "{bad:?}");
    }
}
