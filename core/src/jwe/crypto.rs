//! The JWE primitives over OpenSSL: unwrapping the content key, decrypting the content.
//! Each returns `None` on any failure; the caller turns every `None` into one error.
#![forbid(unsafe_code)]

use openssl::aes::{self, AesKey};
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::memcmp;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::Signer;
use openssl::symm::{self, Cipher};

use super::{Enc, KeyAlg};

/// AES key unwrap (RFC 3394) of `wrapped` with `kek` (A128KW, A192KW, A256KW).
pub(super) fn aes_unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    // At least one 64-bit block of key besides the integrity block.
    if wrapped.len() < 16 || wrapped.len() % 8 != 0 {
        return None;
    }
    let key = AesKey::new_decrypt(kek).ok()?;
    let mut out = vec![0; wrapped.len() - 8];
    let n = aes::unwrap_key(&key, None, &mut out, wrapped).ok()?;
    out.truncate(n);
    Some(out)
}

/// AES-GCM key unwrap (RFC 7518 §4.7) with the header's `iv` and `tag`.
pub(super) fn gcm_unwrap(kek: &[u8], iv: &[u8], tag: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    let cipher = gcm(kek.len())?;
    symm::decrypt_aead(cipher, kek, Some(iv), &[], wrapped, tag).ok()
}

/// RSAES-OAEP decryption (RFC 8017 §7.1) with the algorithm's hash for OAEP and MGF1.
pub(super) fn rsa_unwrap(alg: KeyAlg, key: &PKey<Private>, wrapped: &[u8]) -> Option<Vec<u8>> {
    let md = match alg {
        KeyAlg::RsaOaep => Md::sha1(),
        KeyAlg::RsaOaep256 => Md::sha256(),
        KeyAlg::RsaOaep384 => Md::sha384(),
        KeyAlg::RsaOaep512 => Md::sha512(),
        _ => return None,
    };
    let mut ctx = PkeyCtx::new(key).ok()?;
    ctx.decrypt_init().ok()?;
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
    ctx.set_rsa_oaep_md(md).ok()?;
    ctx.set_rsa_mgf1_md(md).ok()?;
    let mut out = Vec::new();
    ctx.decrypt_to_vec(wrapped, &mut out).ok()?;
    Some(out)
}

/// Authenticated decryption of the content under `cek` (of exactly `enc.cek_len()` bytes).
/// `aad` is the protected header as sent (RFC 7516 §5.2 step 14).
pub(super) fn decrypt_content(
    enc: Enc,
    cek: &[u8],
    aad: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Vec<u8>> {
    if cek.len() != enc.cek_len() || iv.len() != enc.iv_len() || tag.len() != enc.tag_len() {
        return None;
    }
    match enc {
        Enc::A128Gcm | Enc::A192Gcm | Enc::A256Gcm => {
            symm::decrypt_aead(gcm(cek.len())?, cek, Some(iv), aad, ciphertext, tag).ok()
        }
        Enc::A128CbcHs256 | Enc::A192CbcHs384 | Enc::A256CbcHs512 => {
            cbc_hmac(enc, cek, aad, iv, ciphertext, tag)
        }
    }
}

/// AES-CBC with HMAC-SHA-2 (RFC 7518 §5.2.2.2): the tag is checked first, in constant time,
/// and only an authentic ciphertext is decrypted; a bad padding then is as rare as a forgery.
fn cbc_hmac(
    enc: Enc,
    cek: &[u8],
    aad: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Vec<u8>> {
    let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
    let (md, cipher) = match enc {
        Enc::A128CbcHs256 => (MessageDigest::sha256(), Cipher::aes_128_cbc()),
        Enc::A192CbcHs384 => (MessageDigest::sha384(), Cipher::aes_192_cbc()),
        Enc::A256CbcHs512 => (MessageDigest::sha512(), Cipher::aes_256_cbc()),
        _ => return None,
    };
    let al = u64::try_from(aad.len()).ok()?.checked_mul(8)?.to_be_bytes();
    let pkey = PKey::hmac(mac_key).ok()?;
    let mut signer = Signer::new(md, &pkey).ok()?;
    for part in [aad, iv, ciphertext, &al] {
        signer.update(part).ok()?;
    }
    let mac = signer.sign_to_vec().ok()?;
    let expected = mac.get(..enc.tag_len())?;
    if expected.len() != tag.len() || !memcmp::eq(expected, tag) {
        return None;
    }
    symm::decrypt(cipher, enc_key, Some(iv), ciphertext).ok()
}

fn gcm(key_len: usize) -> Option<Cipher> {
    match key_len {
        16 => Some(Cipher::aes_128_gcm()),
        24 => Some(Cipher::aes_192_gcm()),
        32 => Some(Cipher::aes_256_gcm()),
        _ => None,
    }
}

/// A random key of `len` bytes: what decryption continues with when unwrapping failed, so
/// that the failure shows only as the tag's (RFC 7516 §11.5).
/// `None` if the RNG fails: the caller then refuses with the same error.
pub(super) fn random_key(len: usize) -> Option<Vec<u8>> {
    let mut key = vec![0; len];
    openssl::rand::rand_bytes(&mut key).ok()?;
    Some(key)
}
