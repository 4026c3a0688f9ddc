//! Test helpers for JWE: an encryptor assembled from OpenSSL's primitives, and keys.

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

use super::keys::{self, DecryptKey};
use super::{Enc, KeyAlg};

pub(crate) fn oct(kid: Option<&str>, alg: Option<KeyAlg>, k: &[u8]) -> DecryptKey {
    DecryptKey::oct(kid.map(str::to_owned), alg, k).unwrap()
}

pub(crate) fn jwk(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap()
}

/// An independent-enough encryptor for the tests: OpenSSL's primitives, assembled here.
pub(crate) struct Enc2 {
    alg: KeyAlg,
    enc: Enc,
    pub(crate) header: String,
}

pub(crate) fn rsa_key() -> PKey<Private> {
    use std::sync::OnceLock;
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    let der = KEY.get_or_init(|| Rsa::generate(2048).unwrap().private_key_to_der().unwrap());
    PKey::from_rsa(Rsa::private_key_from_der(der).unwrap()).unwrap()
}

impl Enc2 {
    pub(crate) fn new(alg: KeyAlg, enc: Enc) -> Self {
        let header = format!(r#"{{"alg":"{}","enc":"{}"}}"#, alg.name(), enc.name());
        Self { alg, enc, header }
    }

    /// Encrypts `plaintext` for `kek` (a symmetric key, or empty for the test RSA key).
    pub(crate) fn seal(&self, kek: &[u8], plaintext: &[u8]) -> String {
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

pub(crate) fn content(
    enc: Enc,
    cek: &[u8],
    aad: &[u8],
    iv: &[u8],
    pt: &[u8],
) -> (Vec<u8>, Vec<u8>) {
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

pub(crate) fn cbc_tag(
    md: MessageDigest,
    key: &[u8],
    aad: &[u8],
    iv: &[u8],
    ct: &[u8],
    n: usize,
) -> Vec<u8> {
    let pkey = PKey::hmac(key).unwrap();
    let mut s = Signer::new(md, &pkey).unwrap();
    for part in [aad, iv, ct, &(aad.len() as u64 * 8).to_be_bytes()] {
        s.update(part).unwrap();
    }
    s.sign_to_vec().unwrap()[..n].to_vec()
}

pub(crate) fn rsa_decrypt_key() -> DecryptKey {
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
pub(crate) fn kek_for(alg: KeyAlg, enc: Enc) -> (Vec<u8>, DecryptKey) {
    if alg.is_rsa() {
        return (Vec::new(), rsa_decrypt_key());
    }
    let len = alg.kek_len().unwrap_or(enc.cek_len());
    let k: Vec<u8> = (0..len as u8).collect();
    (k.clone(), oct(None, None, &k))
}
