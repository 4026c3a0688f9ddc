//! JWE: RFC 7516 vectors, every algorithm pair, and every refusal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use openssl::aes::{wrap_key, AesKey};
use openssl::hash::MessageDigest;
use openssl::symm::Cipher;

use super::testkit::{cbc_tag, jwk, kek_for, oct, rsa_decrypt_key, Enc2};
use super::*;

/// RFC 7516 Appendix A.3: A128KW with A128CBC-HS256.
const A3_KEY: &str = "GawgguFyGrWKav7AX4VKUg";
const A3_TOKEN: &str = "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.\
6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ.\
AxY8DCtDaGlsbGljb3RoZQ.\
KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.\
U0m_YmjN04DJvceFICbCVQ";

#[test]
fn rfc7516_a3_decrypts() {
    let k = B64.decode(A3_KEY).unwrap();
    let keys = DecryptKeys::new(vec![oct(None, None, &k)]);
    let d = decrypt(A3_TOKEN.as_bytes(), &keys).unwrap();
    assert_eq!(d.plaintext, b"Live long and prosper.");
    assert_eq!((d.alg, d.enc), (KeyAlg::A128Kw, Enc::A128CbcHs256));
    assert!(!d.is_nested());
}

#[test]
fn every_pair_round_trips() {
    for alg in KeyAlg::ALL {
        for enc in Enc::ALL {
            let (kek, key) = kek_for(alg, enc);
            let token = Enc2::new(alg, enc).seal(&kek, br#"{"sub":"a"}"#);
            let keys = DecryptKeys::new(vec![key]);
            let d = decrypt(token.as_bytes(), &keys)
                .unwrap_or_else(|e| panic!("{} {}: {e}", alg.name(), enc.name()));
            assert_eq!(d.plaintext, br#"{"sub":"a"}"#);
        }
    }
}

/// Flips one bit in the segment `i` (decoded) and re-encodes it.
fn tamper(token: &str, i: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = B64.decode(&parts[i]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    parts[i] = B64.encode(bytes);
    parts.join(".")
}

#[test]
fn tampering_fails_uniformly() {
    for (alg, enc) in [
        (KeyAlg::A256Kw, Enc::A256CbcHs512),
        (KeyAlg::Dir, Enc::A128Gcm),
        (KeyAlg::RsaOaep256, Enc::A128CbcHs256),
        (KeyAlg::A128GcmKw, Enc::A256Gcm),
    ] {
        let (kek, key) = kek_for(alg, enc);
        let token = Enc2::new(alg, enc).seal(&kek, b"{}");
        let keys = DecryptKeys::new(vec![key]);
        let segments: &[usize] = if alg == KeyAlg::Dir {
            &[2, 3, 4]
        } else {
            &[1, 2, 3, 4]
        };
        for &i in segments {
            let t = tamper(&token, i);
            let err = decrypt(t.as_bytes(), &keys).err();
            assert_eq!(
                err,
                Some(JweError::DecryptFailed),
                "{} segment {i}",
                alg.name()
            );
        }
        // The protected header: one more member changes the additional data.
        let h = B64.encode(format!(
            r#"{{"alg":"{}","enc":"{}","x":1}}"#,
            alg.name(),
            enc.name()
        ));
        let rest = token.split_once('.').unwrap().1;
        let gcmkw = alg.kek_len().is_some() && alg.name().contains("GCM");
        if !gcmkw {
            let t = format!("{h}.{rest}");
            assert_eq!(
                decrypt(t.as_bytes(), &keys).err(),
                Some(JweError::DecryptFailed)
            );
        }
        // A truncated tag is refused before any decryption.
        let cut = token.rsplit_once('.').unwrap();
        let short = B64.decode(cut.1).unwrap();
        let t = format!("{}.{}", cut.0, B64.encode(&short[..short.len() - 1]));
        assert!(matches!(
            decrypt(t.as_bytes(), &keys),
            Err(JweError::Malformed(_))
        ));
    }
}

#[test]
fn bad_padding_with_a_valid_tag_is_the_same_failure() {
    let enc = Enc::A128CbcHs256;
    let cek: Vec<u8> = (0..32).collect();
    let h = B64.encode(r#"{"alg":"dir","enc":"A128CBC-HS256"}"#);
    // One raw block decrypting to zeros (IV zero): no valid PKCS#7 padding, a valid tag.
    let iv = [0u8; 16];
    let mut ct = [0u8; 16];
    let c = openssl::symm::Crypter::new(
        Cipher::aes_128_ecb(),
        openssl::symm::Mode::Encrypt,
        &cek[16..],
        None,
    );
    let mut c = c.unwrap();
    c.pad(false);
    let mut out = [0u8; 32];
    let n = c.update(&[0u8; 16], &mut out).unwrap();
    ct.copy_from_slice(&out[..n]);
    let tag = cbc_tag(
        MessageDigest::sha256(),
        &cek[..16],
        h.as_bytes(),
        &iv,
        &ct,
        16,
    );
    let t = [
        h.clone(),
        String::new(),
        B64.encode(iv),
        B64.encode(ct),
        B64.encode(tag),
    ]
    .join(".");
    let keys = DecryptKeys::new(vec![oct(None, None, &cek)]);
    assert_eq!(
        decrypt(t.as_bytes(), &keys).err(),
        Some(JweError::DecryptFailed)
    );
    // The same with a padded block decrypts: the test's construction is sound.
    let iv = [16u8; 16];
    let tag = cbc_tag(
        MessageDigest::sha256(),
        &cek[..16],
        h.as_bytes(),
        &iv,
        &ct,
        16,
    );
    let t = [
        h,
        String::new(),
        B64.encode(iv),
        B64.encode(ct),
        B64.encode(tag),
    ]
    .join(".");
    assert_eq!(decrypt(t.as_bytes(), &keys).unwrap().plaintext, b"");
    assert_eq!(enc.tag_len(), 16);
}

#[test]
fn wrong_sizes_and_keys_are_refused() {
    // A CEK of the wrong size inside a valid key wrap: the same failure as a forgery.
    let kek = [3u8; 16];
    let key = AesKey::new_encrypt(&kek).unwrap();
    let mut ek = vec![0; 24 + 8];
    wrap_key(&key, None, &mut ek, &[5u8; 24]).unwrap();
    let h = B64.encode(r#"{"alg":"A128KW","enc":"A128CBC-HS256"}"#);
    let t = [
        h,
        B64.encode(ek),
        B64.encode([0u8; 16]),
        B64.encode([0u8; 16]),
        B64.encode([0u8; 16]),
    ]
    .join(".");
    let keys = DecryptKeys::new(vec![oct(None, None, &kek)]);
    assert_eq!(
        decrypt(t.as_bytes(), &keys).err(),
        Some(JweError::DecryptFailed)
    );

    // dir with a key of another size: no key fits.
    let token = Enc2::new(KeyAlg::Dir, Enc::A256Gcm).seal(&[1u8; 32], b"{}");
    let keys = DecryptKeys::new(vec![oct(None, None, &[1u8; 16])]);
    assert_eq!(
        decrypt(token.as_bytes(), &keys).err(),
        Some(JweError::NoFittingKey)
    );
    // The JWK's alg binds it.
    let keys = DecryptKeys::new(vec![oct(None, Some(KeyAlg::A256Kw), &[1u8; 32])]);
    assert_eq!(
        decrypt(token.as_bytes(), &keys).err(),
        Some(JweError::NoFittingKey)
    );
    // A wrong key of the right size.
    let keys = DecryptKeys::new(vec![oct(None, None, &[2u8; 32])]);
    assert_eq!(
        decrypt(token.as_bytes(), &keys).err(),
        Some(JweError::DecryptFailed)
    );
    // kid selects.
    let token = format!(
        "{}.{}",
        B64.encode(r#"{"alg":"dir","enc":"A256GCM","kid":"b"}"#),
        token.split_once('.').unwrap().1
    );
    let keys = DecryptKeys::new(vec![oct(Some("a"), None, &[1u8; 32])]);
    assert_eq!(
        decrypt(token.as_bytes(), &keys).err(),
        Some(JweError::UnknownKid)
    );
}

#[test]
fn headers_refused() {
    let keys = DecryptKeys::new(vec![oct(None, None, &[1u8; 32])]);
    let tail = "..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA";
    let cases: &[(&str, JweError)] = &[
        (
            r#"{"alg":"RSA1_5","enc":"A128GCM"}"#,
            JweError::UnsupportedAlg,
        ),
        (
            r#"{"alg":"PBES2-HS256+A128KW","enc":"A128GCM"}"#,
            JweError::UnsupportedAlg,
        ),
        (
            r#"{"alg":"ECDH-ES","enc":"A128GCM"}"#,
            JweError::UnsupportedAlg,
        ),
        (
            r#"{"alg":"ECDH-ES+A128KW","enc":"A128GCM"}"#,
            JweError::UnsupportedAlg,
        ),
        (r#"{"alg":"dir","enc":"A128CBC"}"#, JweError::UnsupportedEnc),
        (
            r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#,
            JweError::Zip,
        ),
        (
            r#"{"alg":"dir","enc":"A256GCM","crit":["x"],"x":1}"#,
            JweError::Crit,
        ),
        (
            r#"{"alg":"dir","enc":"A256GCM","jku":"https://a"}"#,
            JweError::KeyReference,
        ),
        (r#"{"alg":"dir"}"#, JweError::Malformed("header has no enc")),
        (
            r#"{"enc":"A256GCM"}"#,
            JweError::Malformed("header has no alg"),
        ),
        (
            r#"{"alg":"dir","enc":"A256GCM","alg":"dir"}"#,
            JweError::Malformed("duplicate member in header"),
        ),
        (
            r#"{"alg":"A128GCMKW","enc":"A256GCM"}"#,
            JweError::Malformed("bad iv or tag header for gcm key wrap"),
        ),
    ];
    for (header, want) in cases {
        let t = format!("{}{tail}", B64.encode(header));
        assert_eq!(decrypt(t.as_bytes(), &keys).err(), Some(*want), "{header}");
    }
    for t in ["a.b.c", "a.b.c.d.e.f", ".a.b.c.d", "e30.a.b.c.d"] {
        assert!(
            matches!(decrypt(t.as_bytes(), &keys), Err(JweError::Malformed(_))),
            "{t}"
        );
    }
    // dir with an encrypted key.
    let t = format!(
        "{}.AAAA.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
        B64.encode(r#"{"alg":"dir","enc":"A256GCM"}"#)
    );
    assert!(matches!(
        decrypt(t.as_bytes(), &keys),
        Err(JweError::Malformed(_))
    ));
}

#[test]
fn jwk_roles() {
    // (jwk, is a decryption key)
    let cases = [
        (r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#, true),
        (
            r#"{"kty":"oct","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
            true,
        ),
        (
            r#"{"kty":"oct","alg":"A128KW","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
            true,
        ),
        (
            r#"{"kty":"oct","use":"sig","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
            false,
        ),
        (
            r#"{"kty":"oct","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            false,
        ),
        // An unmarked secret of an HMAC-only length.
        (
            r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            false,
        ),
        (r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#, false),
        (r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#, false),
        (
            r#"{"kty":"RSA","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}"#,
            false,
        ),
        (
            r#"{"kty":"EC","use":"enc","crv":"P-256","x":"AA","y":"AA"}"#,
            false,
        ),
    ];
    for (text, want) in cases {
        let got = keys::from_jwk(&jwk(text), None).unwrap();
        assert_eq!(got.is_some(), want, "{text}");
    }
    let refused = [
        r#"{"kty":"oct","use":"enc","k":"AAAA"}"#,
        r#"{"kty":"oct","alg":"A256KW","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
        r#"{"kty":"oct","use":"enc","alg":"RSA1_5","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
        r#"{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB","d":"AQAB"}"#,
    ];
    for text in refused {
        assert!(keys::from_jwk(&jwk(text), None).is_err(), "{text}");
    }
    assert_eq!(format!("{:?}", rsa_decrypt_key()), "DecryptKey(RSA)");
}

#[test]
fn nested_is_read_from_cty() {
    let k = [4u8; 16];
    let mut e = Enc2::new(KeyAlg::Dir, Enc::A128Gcm);
    e.header = r#"{"alg":"dir","enc":"A128GCM","cty":"jwt"}"#.into();
    let token = e.seal(&k, b"a.b.c");
    let d = decrypt(
        token.as_bytes(),
        &DecryptKeys::new(vec![oct(None, None, &k)]),
    )
    .unwrap();
    assert!(d.is_nested());
    assert_eq!(d.cty.as_deref(), Some("jwt"));
}

/// A key-wrap key never verifies and a signing key never decrypts; an unmarked secret is
/// both, and is left out of the keys that check a nested token's inner signature.
#[test]
fn key_files_keep_the_roles_apart() {
    let k32 = B64.encode([1u8; 32]);
    let text = format!(
        r#"{{"keys":[
        {{"kty":"oct","kid":"enc","use":"enc","k":"{k32}"}},
        {{"kty":"oct","kid":"sig","use":"sig","k":"{k32}"}},
        {{"kty":"oct","kid":"hs","alg":"HS256","k":"{k32}"}},
        {{"kty":"oct","kid":"kw","alg":"A256KW","k":"{k32}"}},
        {{"kty":"oct","kid":"both","k":"{k32}"}}]}}"#
    );
    let parsed = crate::jwks::parse_jwks(text.as_bytes()).unwrap();
    let kids = |ks: &[Option<String>]| ks.iter().flatten().cloned().collect::<Vec<_>>();
    let verify: Vec<_> = parsed.keys.keys().iter().map(|k| k.kid.clone()).collect();
    let signing: Vec<_> = parsed
        .signing_only
        .keys()
        .iter()
        .map(|k| k.kid.clone())
        .collect();
    let decrypt: Vec<_> = parsed
        .decrypt
        .keys()
        .iter()
        .map(|k| k.kid.clone())
        .collect();
    assert_eq!(kids(&verify), ["sig", "hs", "both"]);
    assert_eq!(kids(&signing), ["sig", "hs"]);
    assert_eq!(kids(&decrypt), ["enc", "kw", "both"]);
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
}
