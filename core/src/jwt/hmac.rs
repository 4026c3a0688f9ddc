//! HMAC (RFC 2104) on OpenSSL digests, with the keyed hash states computed once per key.
#![forbid(unsafe_code)]

use openssl::error::ErrorStack;
use openssl::hash::{self, DigestBytes, Hasher, MessageDigest};
use openssl::memcmp;

use super::alg::Alg;

const IPAD: u8 = 0x36;
const OPAD: u8 = 0x5c;

/// One secret, ready for HMAC-SHA-256, -384 and -512 (HS256, HS384, HS512).
///
/// `Signer::new` on an HMAC `PKey` sets up a MAC context per call (about 3 µs with OpenSSL
/// 3); copying two prepared digest states costs a sixth of that. The construction is the one
/// OpenSSL's `HMAC_Init_ex` uses (it precomputes the same two states), and the tests hold it
/// to RFC 4231 and to OpenSSL's own HMAC.
pub(super) struct HmacKey {
    sha256: Pads,
    sha384: Pads,
    sha512: Pads,
}

/// Hash states after absorbing `K ^ ipad` and `K ^ opad`; copied, never advanced, per MAC.
struct Pads {
    inner: Hasher,
    outer: Hasher,
}

impl HmacKey {
    pub(super) fn new(secret: &[u8]) -> Result<Self, ErrorStack> {
        Ok(Self {
            sha256: Pads::new(MessageDigest::sha256(), secret)?,
            sha384: Pads::new(MessageDigest::sha384(), secret)?,
            sha512: Pads::new(MessageDigest::sha512(), secret)?,
        })
    }

    /// Checks `tag` against the `alg` MAC of `input` in constant time. A tag of the wrong
    /// length, or an `alg` other than HS256/384/512, fails.
    pub(super) fn verify(&self, alg: Alg, input: &[u8], tag: &[u8]) -> bool {
        let pads = match alg {
            Alg::HS256 => &self.sha256,
            Alg::HS384 => &self.sha384,
            Alg::HS512 => &self.sha512,
            _ => return false,
        };
        match pads.mac(input) {
            Ok(mac) if mac.len() == tag.len() => memcmp::eq(&mac, tag),
            _ => false,
        }
    }
}

impl Pads {
    fn new(md: MessageDigest, secret: &[u8]) -> Result<Self, ErrorStack> {
        // K0: the secret, hashed first if longer than a block, zero-padded to a block.
        let mut block = vec![0u8; md.block_size()];
        let hashed;
        let key = if secret.len() > block.len() {
            hashed = hash::hash(md, secret)?;
            &hashed[..]
        } else {
            secret
        };
        for (b, k) in block.iter_mut().zip(key) {
            *b = *k;
        }
        block.iter_mut().for_each(|b| *b ^= IPAD);
        let mut inner = Hasher::new(md)?;
        inner.update(&block)?;
        block.iter_mut().for_each(|b| *b ^= IPAD ^ OPAD);
        let mut outer = Hasher::new(md)?;
        outer.update(&block)?;
        Ok(Self { inner, outer })
    }

    fn mac(&self, input: &[u8]) -> Result<DigestBytes, ErrorStack> {
        let mut inner = self.inner.clone();
        inner.update(input)?;
        let inner = inner.finish()?;
        let mut outer = self.outer.clone();
        outer.update(&inner)?;
        outer.finish()
    }
}

#[cfg(test)]
mod tests {
    use openssl::pkey::PKey;
    use openssl::sign::Signer;

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc4231_vectors() {
        let long_key = [0xaa; 131];
        let cases: [(&[u8], &[u8], Alg, &str); 6] = [
            (&[0x0b; 20], b"Hi There", Alg::HS256, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (&[0x0b; 20], b"Hi There", Alg::HS384, "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"),
            (b"Jefe", b"what do ya want for nothing?", Alg::HS512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
            (&long_key, b"Test Using Larger Than Block-Size Key - Hash Key First", Alg::HS256, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (&long_key, b"Test Using Larger Than Block-Size Key - Hash Key First", Alg::HS384, "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952"),
            (&long_key, b"Test Using Larger Than Block-Size Key - Hash Key First", Alg::HS512, "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"),
        ];
        for (secret, data, alg, expected) in cases {
            let key = HmacKey::new(secret).unwrap();
            let tag = hex(expected);
            assert!(key.verify(alg, data, &tag), "{expected}");
            assert!(!key.verify(alg, b"Hi there", &tag));
            assert!(!key.verify(alg, data, &tag[..tag.len() - 1]));
            let mut longer = tag.clone();
            longer.push(0);
            assert!(!key.verify(alg, data, &longer));
            assert!(!key.verify(Alg::RS256, data, &tag));
        }
    }

    #[test]
    fn agrees_with_openssl_hmac() {
        let algs = [
            (Alg::HS256, MessageDigest::sha256()),
            (Alg::HS384, MessageDigest::sha384()),
            (Alg::HS512, MessageDigest::sha512()),
        ];
        for secret_len in [1, 31, 32, 63, 64, 65, 127, 128, 129, 300] {
            let secret: Vec<u8> = (0..secret_len).map(|i| (i * 7 + 3) as u8).collect();
            let key = HmacKey::new(&secret).unwrap();
            let reference = PKey::hmac(&secret).unwrap();
            for (alg, md) in algs {
                for input_len in [0, 1, 55, 64, 200, 4096] {
                    let input = vec![b'x'; input_len];
                    let mut signer = Signer::new(md, &reference).unwrap();
                    let tag = signer.sign_oneshot_to_vec(&input).unwrap();
                    assert!(
                        key.verify(alg, &input, &tag),
                        "{alg} {secret_len} {input_len}"
                    );
                    // A MAC never passes for another digest, truncated or not.
                    for (other, _) in algs.iter().filter(|(a, _)| *a != alg) {
                        assert!(!key.verify(*other, &input, &tag));
                        assert!(!key.verify(*other, &input, &tag[..tag.len().min(32)]));
                    }
                }
            }
        }
    }
}
