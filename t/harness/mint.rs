//! Token minting with RustCrypto: well-formed JWS tokens and every malformation the attack tests need.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer as _};
use serde_json::{json, Map, Value};
use sha2::{Sha256, Sha384, Sha512};

pub use super::keys::{b64, b64_decode};
use super::keys::{keys, EcKey, EcSecret, EdKey, HmacKey, RsaKey};

/// Unix time now, in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Digest of an HMAC or RSA signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_alg(alg: &str) -> Self {
        match &alg[alg.len() - 3..] {
            "256" => Hash::Sha256,
            "384" => Hash::Sha384,
            _ => Hash::Sha512,
        }
    }
}

/// How the signature is made. The header's `alg` is independent of it, so any mismatch can be built.
#[derive(Clone)]
pub enum Signer {
    /// Empty signature (`header.payload.`).
    Unsigned,
    Hmac(Hash, Vec<u8>),
    RsaPkcs1(Hash, &'static RsaKey),
    RsaPss(Hash, &'static RsaKey),
    /// Digest by curve: P-256/SHA-256, P-384/SHA-384, P-521/SHA-512.
    Ecdsa(&'static EcKey),
    Ed25519(&'static EdKey),
}

impl Signer {
    /// Signs `input`; ECDSA signatures in JOSE raw `r || s` form.
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Signer::Unsigned => Vec::new(),
            Signer::Hmac(hash, secret) => hmac(*hash, secret, input),
            Signer::RsaPkcs1(hash, key) => {
                let k = key.private.clone();
                match hash {
                    Hash::Sha256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(k)
                        .sign(input)
                        .to_vec(),
                    Hash::Sha384 => rsa::pkcs1v15::SigningKey::<Sha384>::new(k)
                        .sign(input)
                        .to_vec(),
                    Hash::Sha512 => rsa::pkcs1v15::SigningKey::<Sha512>::new(k)
                        .sign(input)
                        .to_vec(),
                }
            }
            Signer::RsaPss(hash, key) => {
                // Salt length = digest length (RFC 7518 3.5), which `SigningKey::new` uses.
                let k = key.private.clone();
                let rng = &mut OsRng;
                match hash {
                    Hash::Sha256 => rsa::pss::SigningKey::<Sha256>::new(k)
                        .sign_with_rng(rng, input)
                        .to_vec(),
                    Hash::Sha384 => rsa::pss::SigningKey::<Sha384>::new(k)
                        .sign_with_rng(rng, input)
                        .to_vec(),
                    Hash::Sha512 => rsa::pss::SigningKey::<Sha512>::new(k)
                        .sign_with_rng(rng, input)
                        .to_vec(),
                }
            }
            Signer::Ecdsa(key) => match &key.secret {
                EcSecret::P256(sk) => {
                    let sig: p256::ecdsa::Signature = sk.sign_with_rng(&mut OsRng, input);
                    sig.to_bytes().to_vec()
                }
                EcSecret::P384(sk) => {
                    let sig: p384::ecdsa::Signature = sk.sign_with_rng(&mut OsRng, input);
                    sig.to_bytes().to_vec()
                }
                EcSecret::P521(sk) => {
                    let sig: p521::ecdsa::Signature = sk.sign_with_rng(&mut OsRng, input);
                    sig.to_bytes().to_vec()
                }
            },
            Signer::Ed25519(key) => ed25519_dalek::Signer::sign(&key.signing, input)
                .to_bytes()
                .to_vec(),
        }
    }
}

fn hmac(hash: Hash, secret: &[u8], input: &[u8]) -> Vec<u8> {
    macro_rules! mac {
        ($d:ty) => {{
            let mut mac = Hmac::<$d>::new_from_slice(secret).expect("hmac accepts any key length");
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }};
    }
    match hash {
        Hash::Sha256 => mac!(Sha256),
        Hash::Sha384 => mac!(Sha384),
        Hash::Sha512 => mac!(Sha512),
    }
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` from a raw `r || s` ECDSA signature.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let trimmed: &[u8] = match bytes.iter().position(|&b| b != 0) {
            Some(i) => &bytes[i..],
            None => &[0],
        };
        let mut out = vec![0x02];
        let pad = trimmed[0] & 0x80 != 0;
        der_len(&mut out, trimmed.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(trimmed);
        out
    }
    fn der_len(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend_from_slice(&[0x81, len as u8]);
        } else {
            out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
        }
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let body: Vec<u8> = integer(r).into_iter().chain(integer(s)).collect();
    let mut out = vec![0x30];
    der_len(&mut out, body.len());
    out.extend(body);
    out
}

/// A token under construction. Defaults: header `{"alg":<alg>,"typ":"JWT","kid":<key's kid>}`,
/// claims `{"sub":"alice","iat":now,"exp":now+600}`, signed by the standard key for the
/// algorithm (`keys()`: `hs256`/`hs384`/`hs512`, `rsa-1`, `ec256-1`/`ec384-1`/`ec521-1`, `ed-1`).
#[derive(Clone)]
pub struct Jwt {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    raw_header: Option<Vec<u8>>,
    raw_payload: Option<Vec<u8>>,
    signer: Signer,
    signature: Option<Vec<u8>>,
    der: bool,
}

impl Jwt {
    /// A valid token for one of the 13 JOSE algorithms, signed by its standard key.
    pub fn new(alg: &str) -> Self {
        let (signer, kid) = default_signer(alg).unwrap_or_else(|| {
            panic!("no default key for {alg:?}: use Jwt::new(<known>).alg({alg:?})")
        });
        let now = now();
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        let claims = json!({"sub": "alice", "iat": now, "exp": now + 600});
        Self {
            header: into_map(header),
            claims: into_map(claims),
            raw_header: None,
            raw_payload: None,
            signer,
            signature: None,
            der: false,
        }
    }

    /// Sets the header's `alg` only (the signer stays): `Jwt::new("RS256").alg("none")`.
    pub fn alg(self, alg: &str) -> Self {
        self.header("alg", json!(alg))
    }

    /// Sets the header's `kid`.
    pub fn kid(self, kid: &str) -> Self {
        self.header("kid", json!(kid))
    }

    /// Removes the header's `kid`.
    pub fn no_kid(self) -> Self {
        self.remove_header("kid")
    }

    /// Sets one header member.
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header.insert(name.to_owned(), value);
        self
    }

    /// Merges the members of a JSON object into the header.
    pub fn header_extra(mut self, extra: Value) -> Self {
        self.header.extend(into_map(extra));
        self
    }

    /// Removes one header member.
    pub fn remove_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Sets one claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_owned(), value);
        self
    }

    /// Merges the members of a JSON object into the claims.
    pub fn claims(mut self, claims: Value) -> Self {
        self.claims.extend(into_map(claims));
        self
    }

    /// Replaces all claims (no default `exp`, `sub`, `iat`).
    pub fn only_claims(mut self, claims: Value) -> Self {
        self.claims = into_map(claims);
        self
    }

    /// Removes one claim.
    pub fn remove_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// `exp` = now + `secs` (negative: in the past).
    pub fn exp_in(self, secs: i64) -> Self {
        self.claim("exp", json!(now() + secs))
    }

    /// `nbf` = now + `secs`.
    pub fn nbf_in(self, secs: i64) -> Self {
        self.claim("nbf", json!(now() + secs))
    }

    /// Drops the `exp` claim.
    pub fn no_exp(self) -> Self {
        self.remove_claim("exp")
    }

    /// The header segment is exactly these bytes (base64url-encoded), e.g. duplicate keys.
    pub fn raw_header(mut self, json: impl AsRef<[u8]>) -> Self {
        self.raw_header = Some(json.as_ref().to_vec());
        self
    }

    /// The payload segment is exactly these bytes (base64url-encoded).
    pub fn raw_payload(mut self, json: impl AsRef<[u8]>) -> Self {
        self.raw_payload = Some(json.as_ref().to_vec());
        self
    }

    /// Signs with this signer instead of the default one (the header is unchanged).
    pub fn signer(mut self, signer: Signer) -> Self {
        self.signer = signer;
        self
    }

    /// Signs HMAC with these secret bytes, using the digest of the header's `alg` (HS256 if it is not HS*).
    pub fn hmac_secret(self, secret: impl AsRef<[u8]>) -> Self {
        let alg = self.header_alg();
        let hash = if alg.starts_with("HS") {
            Hash::from_alg(&alg)
        } else {
            Hash::Sha256
        };
        self.signer(Signer::Hmac(hash, secret.as_ref().to_vec()))
    }

    /// Signs with another RSA key of the same scheme, and names its kid.
    pub fn rsa_key(self, key: &'static RsaKey) -> Self {
        let alg = self.header_alg();
        let hash = Hash::from_alg(&alg);
        let signer = if alg.starts_with("PS") {
            Signer::RsaPss(hash, key)
        } else {
            Signer::RsaPkcs1(hash, key)
        };
        self.signer(signer).kid(key.kid)
    }

    /// Signs with another EC key, and names its kid.
    pub fn ec_key(self, key: &'static EcKey) -> Self {
        self.signer(Signer::Ecdsa(key)).kid(key.kid)
    }

    /// Signs with another Ed25519 key, and names its kid.
    pub fn ed_key(self, key: &'static EdKey) -> Self {
        self.signer(Signer::Ed25519(key)).kid(key.kid)
    }

    /// Signs with another HMAC secret, and names its kid.
    pub fn hmac_key(self, key: &'static HmacKey) -> Self {
        self.hmac_secret(&key.secret).kid(key.kid)
    }

    /// Uses these bytes as the signature, whatever the signer.
    pub fn signature(mut self, sig: impl AsRef<[u8]>) -> Self {
        self.signature = Some(sig.as_ref().to_vec());
        self
    }

    /// Empty signature segment.
    pub fn unsigned(self) -> Self {
        self.signer(Signer::Unsigned)
    }

    /// ECDSA signature in DER form instead of raw `r || s` (which JOSE requires).
    pub fn der_signature(mut self) -> Self {
        self.der = true;
        self
    }

    /// The header's `alg` as a string ("" if absent or not a string).
    pub fn header_alg(&self) -> String {
        self.header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }

    /// The header JSON text that will be encoded.
    pub fn header_json(&self) -> Vec<u8> {
        match &self.raw_header {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&self.header).expect("header json"),
        }
    }

    /// The payload JSON text that will be encoded.
    pub fn payload_json(&self) -> Vec<u8> {
        match &self.raw_payload {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&self.claims).expect("payload json"),
        }
    }

    /// The three segments: base64url header, base64url payload, base64url signature.
    pub fn segments(&self) -> [String; 3] {
        let header = b64(self.header_json());
        let payload = b64(self.payload_json());
        let signature = self.signature_bytes(format!("{header}.{payload}").as_bytes());
        [header, payload, b64(signature)]
    }

    /// The signature bytes over `input` as this token would carry them.
    pub fn signature_bytes(&self, input: &[u8]) -> Vec<u8> {
        if let Some(sig) = &self.signature {
            return sig.clone();
        }
        let sig = self.signer.sign(input);
        if self.der {
            ecdsa_raw_to_der(&sig)
        } else {
            sig
        }
    }

    /// The compact serialization `header.payload.signature`.
    pub fn encode(&self) -> String {
        self.segments().join(".")
    }
}

/// The standard signer and kid for a JOSE algorithm name.
pub fn default_signer(alg: &str) -> Option<(Signer, &'static str)> {
    let k = keys();
    let hash = || Hash::from_alg(alg);
    Some(match alg {
        "HS256" => (
            Signer::Hmac(Hash::Sha256, k.hs256.secret.clone()),
            k.hs256.kid,
        ),
        "HS384" => (
            Signer::Hmac(Hash::Sha384, k.hs384.secret.clone()),
            k.hs384.kid,
        ),
        "HS512" => (
            Signer::Hmac(Hash::Sha512, k.hs512.secret.clone()),
            k.hs512.kid,
        ),
        "RS256" | "RS384" | "RS512" => (Signer::RsaPkcs1(hash(), &k.rsa), k.rsa.kid),
        "PS256" | "PS384" | "PS512" => (Signer::RsaPss(hash(), &k.rsa), k.rsa.kid),
        "ES256" => (Signer::Ecdsa(&k.p256), k.p256.kid),
        "ES384" => (Signer::Ecdsa(&k.p384), k.p384.kid),
        "ES512" => (Signer::Ecdsa(&k.p521), k.p521.kid),
        "EdDSA" => (Signer::Ed25519(&k.ed), k.ed.kid),
        _ => return None,
    })
}

/// The 13 algorithms the module supports.
pub const ALL_ALGS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "EdDSA",
];

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected a JSON object, got {other}"),
    }
}
