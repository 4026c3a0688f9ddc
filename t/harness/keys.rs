//! Test keys: generated once per test process with RustCrypto, published as JWKS and PEM files.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use rand::rngs::OsRng;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};

/// An RSA key pair with its public encodings.
pub struct RsaKey {
    pub kid: &'static str,
    pub private: RsaPrivateKey,
    pub public: RsaPublicKey,
    /// `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo).
    pub spki_pem: String,
    /// `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1).
    pub pkcs1_pem: String,
    /// SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// `-----BEGIN PRIVATE KEY-----` (PKCS#8), for "private keys are refused" tests.
    pub private_pem: String,
}

/// The private half of an ECDSA key, per curve.
pub enum EcSecret {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

/// An ECDSA key pair (P-256, P-384 or P-521) with its public encodings.
pub struct EcKey {
    pub kid: &'static str,
    /// JWK `crv`: `P-256`, `P-384` or `P-521`.
    pub crv: &'static str,
    pub secret: EcSecret,
    /// Affine coordinates, big-endian, full field length.
    pub x: Vec<u8>,
    pub y: Vec<u8>,
    pub spki_pem: String,
}

/// An Ed25519 key pair.
pub struct EdKey {
    pub kid: &'static str,
    pub signing: ed25519_dalek::SigningKey,
    pub x: [u8; 32],
    pub spki_pem: String,
}

/// A shared HMAC secret.
pub struct HmacKey {
    pub kid: &'static str,
    pub secret: Vec<u8>,
}

/// Every key the tests use. `*_other` keys are never published: tokens they sign must fail.
pub struct Keys {
    pub rsa: RsaKey,
    pub rsa_other: RsaKey,
    pub rsa_1024: RsaKey,
    pub p256: EcKey,
    pub p256_other: EcKey,
    pub p384: EcKey,
    pub p384_other: EcKey,
    pub p521: EcKey,
    pub p521_other: EcKey,
    pub ed: EdKey,
    pub ed_other: EdKey,
    pub hs256: HmacKey,
    pub hs384: HmacKey,
    pub hs512: HmacKey,
    pub hs_other: HmacKey,
}

/// The process-wide key set, generated on first use.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(Keys::generate)
}

impl RsaKey {
    fn generate(kid: &'static str, bits: usize) -> Self {
        let private = RsaPrivateKey::new(&mut OsRng, bits).expect("rsa key generation");
        let public = RsaPublicKey::from(&private);
        Self {
            kid,
            spki_pem: public
                .to_public_key_pem(LineEnding::LF)
                .expect("rsa spki pem"),
            pkcs1_pem: public.to_pkcs1_pem(LineEnding::LF).expect("rsa pkcs1 pem"),
            spki_der: public.to_public_key_der().expect("rsa spki der").to_vec(),
            private_pem: private
                .to_pkcs8_pem(LineEnding::LF)
                .expect("rsa pkcs8 pem")
                .to_string(),
            private,
            public,
        }
    }

    /// The public JWK: `{"kty":"RSA","kid":..,"n":..,"e":..}`.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "n": b64(self.public.n().to_bytes_be()),
            "e": b64(self.public.e().to_bytes_be()),
        })
    }
}

impl EcKey {
    fn generate(kid: &'static str, crv: &'static str) -> Self {
        let (secret, point, spki_pem) = match crv {
            "P-256" => {
                let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
                let pk = p256::PublicKey::from(sk.verifying_key());
                let point = pk.to_sec1_bytes().to_vec();
                let pem = pk.to_public_key_pem(LineEnding::LF).expect("p256 pem");
                (EcSecret::P256(sk), point, pem)
            }
            "P-384" => {
                let sk = p384::ecdsa::SigningKey::random(&mut OsRng);
                let pk = p384::PublicKey::from(sk.verifying_key());
                let point = pk.to_sec1_bytes().to_vec();
                let pem = pk.to_public_key_pem(LineEnding::LF).expect("p384 pem");
                (EcSecret::P384(sk), point, pem)
            }
            "P-521" => {
                let sk = p521::ecdsa::SigningKey::random(&mut OsRng);
                let encoded = p521::ecdsa::VerifyingKey::from(&sk).to_encoded_point(false);
                let pk = p521::PublicKey::from_sec1_bytes(encoded.as_bytes()).expect("p521 point");
                let pem = pk.to_public_key_pem(LineEnding::LF).expect("p521 pem");
                (EcSecret::P521(sk), encoded.as_bytes().to_vec(), pem)
            }
            other => panic!("unknown curve {other}"),
        };
        // Uncompressed SEC1 point: 0x04 || x || y.
        assert_eq!(point[0], 4, "uncompressed point expected");
        let coords = &point[1..];
        let (x, y) = coords.split_at(coords.len() / 2);
        Self {
            kid,
            crv,
            secret,
            x: x.to_vec(),
            y: y.to_vec(),
            spki_pem,
        }
    }

    /// Field (and scalar) length in bytes: 32, 48 or 66.
    pub fn size(&self) -> usize {
        self.x.len()
    }

    /// The curve order n, big-endian, `size()` bytes.
    pub fn order(&self) -> Vec<u8> {
        let hex = match self.crv {
            "P-256" => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
            "P-384" => {
                "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf\
                 581a0db248b0a77aecec196accc52973"
            }
            _ => {
                "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
                 fffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409"
            }
        };
        let bytes = hex_decode(hex);
        assert_eq!(bytes.len(), self.size());
        bytes
    }

    /// The JOSE algorithm this curve signs with.
    pub fn alg(&self) -> &'static str {
        match self.crv {
            "P-256" => "ES256",
            "P-384" => "ES384",
            _ => "ES512",
        }
    }

    /// The public JWK: `{"kty":"EC","kid":..,"crv":..,"x":..,"y":..}`.
    pub fn jwk(&self) -> Value {
        json!({"kty": "EC", "kid": self.kid, "crv": self.crv, "x": b64(&self.x), "y": b64(&self.y)})
    }
}

impl EdKey {
    fn generate(kid: &'static str) -> Self {
        let signing = ed25519_dalek::SigningKey::generate(&mut OsRng);
        let verifying = signing.verifying_key();
        Self {
            kid,
            x: verifying.to_bytes(),
            spki_pem: verifying
                .to_public_key_pem(LineEnding::LF)
                .expect("ed25519 pem"),
            signing,
        }
    }

    /// The public JWK: `{"kty":"OKP","crv":"Ed25519","kid":..,"x":..}`.
    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "kid": self.kid, "crv": "Ed25519", "x": b64(self.x)})
    }
}

impl HmacKey {
    fn generate(kid: &'static str, len: usize) -> Self {
        let secret: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
        Self { kid, secret }
    }

    /// The symmetric JWK: `{"kty":"oct","kid":..,"k":..}`.
    pub fn jwk(&self) -> Value {
        json!({"kty": "oct", "kid": self.kid, "k": b64(&self.secret)})
    }
}

impl Keys {
    fn generate() -> Self {
        Self {
            rsa: RsaKey::generate("rsa-1", 2048),
            rsa_other: RsaKey::generate("rsa-2", 2048),
            rsa_1024: RsaKey::generate("rsa-1024", 1024),
            p256: EcKey::generate("ec256-1", "P-256"),
            p256_other: EcKey::generate("ec256-2", "P-256"),
            p384: EcKey::generate("ec384-1", "P-384"),
            p384_other: EcKey::generate("ec384-2", "P-384"),
            p521: EcKey::generate("ec521-1", "P-521"),
            p521_other: EcKey::generate("ec521-2", "P-521"),
            ed: EdKey::generate("ed-1"),
            ed_other: EdKey::generate("ed-2"),
            hs256: HmacKey::generate("hs256", 32),
            hs384: HmacKey::generate("hs384", 48),
            hs512: HmacKey::generate("hs512", 64),
            hs_other: HmacKey::generate("hs-other", 64),
        }
    }

    /// Public JWKs of the published asymmetric keys.
    pub fn public_jwks(&self) -> Vec<Value> {
        vec![
            self.rsa.jwk(),
            self.p256.jwk(),
            self.p384.jwk(),
            self.p521.jwk(),
            self.ed.jwk(),
        ]
    }

    /// JWKs of the published HMAC secrets.
    pub fn hmac_jwks(&self) -> Vec<Value> {
        vec![self.hs256.jwk(), self.hs384.jwk(), self.hs512.jwk()]
    }

    /// Writes the standard key files into `dir` (`{{keys}}` in configuration templates):
    ///
    /// | file | content |
    /// |---|---|
    /// | `jwks.json` | every published key: RSA, P-256/384/521, Ed25519, and the three HMAC secrets |
    /// | `public.json` | the asymmetric keys only |
    /// | `hmac.json` | the HMAC secrets only |
    /// | `rsa.json`, `ec256.json`, `ec384.json`, `ec521.json`, `ed.json` | one key each |
    /// | `rsa.pem` (SPKI), `rsa_pkcs1.pem`, `ec256.pem`, `ec384.pem`, `ec521.pem`, `ed.pem` | PEM public keys |
    /// | `all.pem` | every published public key, one PEM block after another |
    /// | `rsa_1024.json`, `rsa_1024.pem` | a weak RSA key |
    /// | `rsa_private.pem` | a PKCS#8 private key |
    /// | `enc.json` | the RSA key marked `"use":"enc"` (kid `rsa-enc`), and an HMAC key (kid `enc-companion`) so that the file has a usable key |
    pub fn write_to(&self, dir: &Path) {
        fs::create_dir_all(dir).expect("create keys dir");
        let all: Vec<Value> = self
            .public_jwks()
            .into_iter()
            .chain(self.hmac_jwks())
            .collect();
        let mut enc = self.rsa.jwk();
        enc["kid"] = json!("rsa-enc");
        enc["use"] = json!("enc");
        let files: Vec<(&str, String)> = vec![
            ("jwks.json", jwks(&all)),
            ("public.json", jwks(&self.public_jwks())),
            ("hmac.json", jwks(&self.hmac_jwks())),
            ("rsa.json", jwks(&[self.rsa.jwk()])),
            ("ec256.json", jwks(&[self.p256.jwk()])),
            ("ec384.json", jwks(&[self.p384.jwk()])),
            ("ec521.json", jwks(&[self.p521.jwk()])),
            ("ed.json", jwks(&[self.ed.jwk()])),
            ("rsa.pem", self.rsa.spki_pem.clone()),
            ("rsa_pkcs1.pem", self.rsa.pkcs1_pem.clone()),
            ("ec256.pem", self.p256.spki_pem.clone()),
            ("ec384.pem", self.p384.spki_pem.clone()),
            ("ec521.pem", self.p521.spki_pem.clone()),
            ("ed.pem", self.ed.spki_pem.clone()),
            (
                "all.pem",
                [
                    &self.rsa.spki_pem,
                    &self.p256.spki_pem,
                    &self.p384.spki_pem,
                    &self.p521.spki_pem,
                    &self.ed.spki_pem,
                ]
                .iter()
                .map(|s| s.as_str())
                .collect::<String>(),
            ),
            ("rsa_1024.json", jwks(&[self.rsa_1024.jwk()])),
            ("rsa_1024.pem", self.rsa_1024.spki_pem.clone()),
            ("rsa_private.pem", self.rsa.private_pem.clone()),
            (
                "enc.json",
                jwks(&[
                    enc,
                    json!({"kty": "oct", "kid": "enc-companion", "k": b64([7u8; 32])}),
                ]),
            ),
        ];
        for (name, content) in files {
            fs::write(dir.join(name), content).expect("write key file");
        }
    }
}

/// A JWKS document `{"keys":[...]}` from JWK values.
pub fn jwks(keys: &[Value]) -> String {
    serde_json::to_string_pretty(&json!({ "keys": keys })).expect("jwks json")
}

fn hex_decode(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("hex"), 16).expect("hex"))
        .collect()
}

/// base64url without padding, as JOSE wants.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding (panics on bad input: for test-side tampering only).
pub fn b64_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}
