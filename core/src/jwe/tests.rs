//! JWE: RFC 7516 vectors, every algorithm pair, and every refusal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use openssl::aes::{wrap_key, AesKey};
use openssl::encrypt::Encrypter;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;
use openssl::symm::{encrypt, encrypt_aead, Cipher};
use serde_json::{Map, Value};

use super::*;

/// RFC 7516 Appendix A.3: A128KW with A128CBC-HS256.
const A3_KEY: &str = "GawgguFyGrWKav7AX4VKUg";
const A3_TOKEN: &str = "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.\
6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ.\
AxY8DCtDaGlsbGljb3RoZQ.\
KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.\
U0m_YmjN04DJvceFICbCVQ";

fn oct(kid: Option<&str>, alg: Option<KeyAlg>, k: &[u8]) -> DecryptKey {
    DecryptKey::oct(kid.map(str::to_owned), alg, k).unwrap()
}

fn jwk(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap()
}

#[test]
fn rfc7516_a3_decrypts() {
    let k = B64.decode(A3_KEY).unwrap();
    let keys = DecryptKeys::new(vec![oct(None, None, &k)]);
    let d = decrypt(A3_TOKEN.as_bytes(), &keys).unwrap();
    assert_eq!(d.plaintext, b"Live long and prosper.");
    assert_eq!((d.alg, d.enc), (KeyAlg::A128Kw, Enc::A128CbcHs256));
    assert!(!d.is_nested());
}

/// An independent-enough encryptor for the tests: OpenSSL's primitives, assembled here.
struct Enc2 {
    alg: KeyAlg,
    enc: Enc,
    header: String,
}

fn rsa_key() -> PKey<Private> {
    use std::sync::OnceLock;
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    let der = KEY.get_or_init(|| Rsa::generate(2048).unwrap().private_key_to_der().unwrap());
    PKey::from_rsa(Rsa::private_key_from_der(der).unwrap()).unwrap()
}

impl Enc2 {
    fn new(alg: KeyAlg, enc: Enc) -> Self {
        let header = format!(r#"{{"alg":"{}","enc":"{}"}}"#, alg.name(), enc.name());
        Self { alg, enc, header }
    }

    /// Encrypts `plaintext` for `kek` (a symmetric key, or empty for the test RSA key).
    fn seal(&self, kek: &[u8], plaintext: &[u8]) -> String {
        let mut cek = vec![0u8; self.enc.cek_len()];
        openssl::rand::rand_bytes(&mut cek).unwrap();
        let mut header = self.header.clone();
        let ek = match self.alg {
            KeyAlg::Dir => {
                cek = kek.to_vec();
                Vec::new()
            }
            KeyAlg::A128Kw | KeyAlg::A192Kw | KeyAlg::A256Kw => {
                let key = AesKey::new_encrypt(kek).unwrap();
                let mut out = vec![0; cek.len() + 8];
                wrap_key(&key, None, &mut out, &cek).unwrap();
                out
            }
            KeyAlg::A128GcmKw | KeyAlg::A192GcmKw | KeyAlg::A256GcmKw => {
                let iv = [7u8; 12];
                let mut tag = [0u8; 16];
                let cipher = match kek.len() {
                    16 => Cipher::aes_128_gcm(),
                    24 => Cipher::aes_192_gcm(),
                    _ => Cipher::aes_256_gcm(),
                };
                let out = encrypt_aead(cipher, kek, Some(&iv), &[], &cek, &mut tag).unwrap();
                header.pop();
                header += &format!(
                    r#","iv":"{}","tag":"{}"}}"#,
                    B64.encode(iv),
                    B64.encode(tag)
                );
                out
            }
            _ => {
                let key = rsa_key();
                let md = match self.alg {
                    KeyAlg::RsaOaep => MessageDigest::sha1(),
                    KeyAlg::RsaOaep256 => MessageDigest::sha256(),
                    KeyAlg::RsaOaep384 => MessageDigest::sha384(),
                    _ => MessageDigest::sha512(),
                };
                let mut e = Encrypter::new(&key).unwrap();
                e.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
                e.set_rsa_oaep_md(md).unwrap();
                e.set_rsa_mgf1_md(md).unwrap();
                let mut out = vec![0; e.encrypt_len(&cek).unwrap()];
                let n = e.encrypt(&cek, &mut out).unwrap();
                out.truncate(n);
                out
            }
        };
        let h = B64.encode(&header);
        let iv = vec![9u8; self.enc.iv_len()];
        let (ct, tag) = content(self.enc, &cek, h.as_bytes(), &iv, plaintext);
        [
            h,
            B64.encode(ek),
            B64.encode(iv),
            B64.encode(ct),
            B64.encode(tag),
        ]
        .join(".")
    }
}

fn content(enc: Enc, cek: &[u8], aad: &[u8], iv: &[u8], pt: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (md, cipher) = match enc {
        Enc::A128CbcHs256 => (MessageDigest::sha256(), Cipher::aes_128_cbc()),
        Enc::A192CbcHs384 => (MessageDigest::sha384(), Cipher::aes_192_cbc()),
        Enc::A256CbcHs512 => (MessageDigest::sha512(), Cipher::aes_256_cbc()),
        _ => {
            let cipher = match cek.len() {
                16 => Cipher::aes_128_gcm(),
                24 => Cipher::aes_192_gcm(),
                _ => Cipher::aes_256_gcm(),
            };
            let mut tag = vec![0; 16];
            let ct = encrypt_aead(cipher, cek, Some(iv), aad, pt, &mut tag).unwrap();
            return (ct, tag);
        }
    };
    let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
    let ct = encrypt(cipher, enc_key, Some(iv), pt).unwrap();
    (
        ct.clone(),
        cbc_tag(md, mac_key, aad, iv, &ct, enc.tag_len()),
    )
}

fn cbc_tag(md: MessageDigest, key: &[u8], aad: &[u8], iv: &[u8], ct: &[u8], n: usize) -> Vec<u8> {
    let pkey = PKey::hmac(key).unwrap();
    let mut s = Signer::new(md, &pkey).unwrap();
    for part in [aad, iv, ct, &(aad.len() as u64 * 8).to_be_bytes()] {
        s.update(part).unwrap();
    }
    s.sign_to_vec().unwrap()[..n].to_vec()
}

fn rsa_decrypt_key() -> DecryptKey {
    let rsa = rsa_key().rsa().unwrap();
    let b = |n: &openssl::bn::BigNumRef| B64.encode(n.to_vec());
    let text = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}","d":"{}","p":"{}","q":"{}","dp":"{}","dq":"{}","qi":"{}"}}"#,
        b(rsa.n()),
        b(rsa.e()),
        b(rsa.d()),
        b(rsa.p().unwrap()),
        b(rsa.q().unwrap()),
        b(rsa.dmp1().unwrap()),
        b(rsa.dmq1().unwrap()),
        b(rsa.iqmp().unwrap())
    );
    keys::from_jwk(&jwk(&text), None).unwrap().unwrap()
}

/// The key each pair needs: the CEK itself for `dir`, the KEK, or the RSA key.
fn kek_for(alg: KeyAlg, enc: Enc) -> (Vec<u8>, DecryptKey) {
    if alg.is_rsa() {
        return (Vec::new(), rsa_decrypt_key());
    }
    let len = alg.kek_len().unwrap_or(enc.cek_len());
    let k: Vec<u8> = (0..len as u8).collect();
    (k.clone(), oct(None, None, &k))
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
