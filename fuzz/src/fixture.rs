//! Fixed keys of every type, the key set the targets verify with, and tokens minted with
//! them. The private keys in `fuzz/keys/` exist for fuzzing only and protect nothing.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer};
use serde_json::{json, Value};

use auth_jwt_core::authn::{Expect, KeySource, Policy};
use auth_jwt_core::identity::{self, IdentityError, MAX_HEADER_VALUE};
use auth_jwt_core::jwks;
use auth_jwt_core::jwt::alg::{Alg, AlgSet};
use auth_jwt_core::jwt::claims::ClaimRules;
use auth_jwt_core::jwt::verify::KeySet;

/// The time every target checks claims at.
pub const NOW: i64 = 1_700_000_000;
pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "api";
/// The HMAC secret of the `oct` key (kid `hs`): 64 bytes, long enough for HS512.
pub const HMAC_SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-fuzzing-secret-fuzzing-secret-64!!";

const RSA_PEM: &[u8] = include_bytes!("../keys/rsa.pem");
const P256_PEM: &[u8] = include_bytes!("../keys/p256.pem");
const P384_PEM: &[u8] = include_bytes!("../keys/p384.pem");
const P521_PEM: &[u8] = include_bytes!("../keys/p521.pem");
const ED25519_PEM: &[u8] = include_bytes!("../keys/ed25519.pem");

/// Everything the targets share, built once per process.
pub struct Fixture {
    pub keys: Arc<KeySet>,
    /// The JWKS the key set was parsed from (public keys and the `oct` secret).
    pub jwks: String,
    /// Tokens signed with the fixed keys, one or more per algorithm.
    pub tokens: Vec<String>,
    /// Their signing inputs (`header.payload`): the only ones any token may verify with.
    pub signed: HashSet<Vec<u8>>,
    private: Vec<(&'static str, PKey<Private>)>,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(Fixture::new)
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The rules the targets use: every claim check is on.
pub fn rules() -> ClaimRules<'static> {
    static ISSUERS: OnceLock<[String; 1]> = OnceLock::new();
    static AUDIENCES: OnceLock<[String; 1]> = OnceLock::new();
    ClaimRules {
        leeway: 60,
        require_exp: true,
        issuers: ISSUERS.get_or_init(|| [ISSUER.to_owned()]),
        audiences: AUDIENCES.get_or_init(|| [AUDIENCE.to_owned()]),
    }
}

pub fn policy() -> Policy<'static> {
    Policy {
        max_size: 16 * 1024,
        algorithms: AlgSet::all(),
        claims: rules(),
        expect: Expect::Signed,
    }
}

/// The claims of the minted tokens: valid at [`NOW`] under [`rules`].
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "fuzz",
        "aud": [AUDIENCE, "other"],
        "exp": NOW + 3600,
        "nbf": NOW - 60,
        "iat": NOW - 60,
        "roles": ["reader", "writer"],
        "org": {"id": "o-1", "tier": 2},
    })
}

impl Fixture {
    fn new() -> Self {
        let private: Vec<(&'static str, PKey<Private>)> = [
            ("rsa", RSA_PEM),
            ("ec256", P256_PEM),
            ("ec384", P384_PEM),
            ("ec521", P521_PEM),
            ("ed", ED25519_PEM),
        ]
        .into_iter()
        .map(|(kid, pem)| (kid, PKey::private_key_from_pem(pem).expect("fixture key")))
        .collect();
        let mut jwk_list: Vec<Value> = private.iter().map(|(kid, k)| public_jwk(kid, k)).collect();
        jwk_list.push(json!({"kty": "oct", "kid": "hs", "k": b64(HMAC_SECRET)}));
        // The P-256 key again without kid, and the RSA key again bound to PS256 only: tokens
        // without kid try every fitting key; a JWK `alg` narrows a key to one algorithm.
        let mut no_kid = public_jwk("ec256", &private[1].1);
        no_kid.as_object_mut().expect("object").remove("kid");
        jwk_list.push(no_kid);
        let mut ps_only = public_jwk("rsa-ps", &private[0].1);
        ps_only["alg"] = json!("PS256");
        jwk_list.push(ps_only);
        // A key that must never verify anything: an encryption key.
        let mut enc = public_jwk("rsa-enc", &private[0].1);
        enc["use"] = json!("enc");
        jwk_list.push(enc);
        let jwks = json!({ "keys": jwk_list }).to_string();
        let keys = Arc::new(
            jwks::parse_jwks(jwks.as_bytes())
                .expect("fixture jwks")
                .keys,
        );

        let mut fixture = Fixture {
            keys,
            jwks,
            tokens: Vec::new(),
            signed: HashSet::new(),
            private,
        };
        let payload = claims().to_string();
        for alg in Alg::ALL {
            let kid = fixture.kid_for(alg);
            for header in [
                json!({"alg": alg.name(), "kid": kid, "typ": "JWT"}),
                json!({"alg": alg.name()}),
            ] {
                let token = fixture.sign(alg, header.to_string().as_bytes(), payload.as_bytes());
                fixture.tokens.push(token);
            }
        }
        let ps = fixture.sign(
            Alg::PS256,
            br#"{"alg":"PS256","kid":"rsa-ps"}"#,
            payload.as_bytes(),
        );
        fixture.tokens.push(ps);
        fixture
    }

    /// The kid of the fixed key for `alg`.
    pub fn kid_for(&self, alg: Alg) -> &'static str {
        match alg {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => "hs",
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => "rsa",
            Alg::ES256 => "ec256",
            Alg::ES384 => "ec384",
            Alg::ES512 => "ec521",
            Alg::EdDSA => "ed",
        }
    }

    pub fn sources(&self) -> Vec<KeySource> {
        vec![KeySource {
            keys: Arc::clone(&self.keys),
            issuer: None,
        }]
    }

    /// A compact JWS of `header` and `payload` (raw bytes, encoded here) signed with the
    /// fixed key for `alg`; its signing input is recorded in `signed`.
    pub fn sign(&mut self, alg: Alg, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.signature(alg, input.as_bytes());
        self.signed.insert(input.clone().into_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// A signature of `input` with the fixed key for `alg`.
    pub fn signature(&self, alg: Alg, input: &[u8]) -> Vec<u8> {
        let key = |kid: &str| {
            &self
                .private
                .iter()
                .find(|(k, _)| *k == kid)
                .expect("fixture key")
                .1
        };
        let md = match alg {
            Alg::HS256 | Alg::RS256 | Alg::PS256 | Alg::ES256 => MessageDigest::sha256(),
            Alg::HS384 | Alg::RS384 | Alg::PS384 | Alg::ES384 => MessageDigest::sha384(),
            Alg::HS512 | Alg::RS512 | Alg::PS512 | Alg::ES512 => MessageDigest::sha512(),
            Alg::EdDSA => MessageDigest::null(),
        };
        match alg {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => {
                let key = PKey::hmac(HMAC_SECRET).expect("hmac key");
                let mut signer = Signer::new(md, &key).expect("signer");
                signer.sign_oneshot_to_vec(input).expect("hmac")
            }
            Alg::RS256 | Alg::RS384 | Alg::RS512 => {
                let mut signer = Signer::new(md, key("rsa")).expect("signer");
                signer.sign_oneshot_to_vec(input).expect("rsa")
            }
            Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                let mut signer = Signer::new(md, key("rsa")).expect("signer");
                signer.set_rsa_padding(Padding::PKCS1_PSS).expect("pss");
                signer
                    .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                    .expect("salt");
                signer.set_rsa_mgf1_md(md).expect("mgf1");
                signer.sign_oneshot_to_vec(input).expect("pss")
            }
            Alg::ES256 | Alg::ES384 | Alg::ES512 => {
                let (kid, len) = match alg {
                    Alg::ES256 => ("ec256", 32),
                    Alg::ES384 => ("ec384", 48),
                    _ => ("ec521", 66),
                };
                let mut signer = Signer::new(md, key(kid)).expect("signer");
                let der = signer.sign_oneshot_to_vec(input).expect("ecdsa");
                let sig = EcdsaSig::from_der(&der).expect("der");
                let mut raw = sig.r().to_vec_padded(len).expect("r");
                raw.extend(sig.s().to_vec_padded(len).expect("s"));
                raw
            }
            Alg::EdDSA => {
                let mut signer = Signer::new_without_digest(key("ed")).expect("signer");
                signer.sign_oneshot_to_vec(input).expect("ed25519")
            }
        }
    }

    /// PEM public keys of every fixed asymmetric key.
    pub fn public_pems(&self) -> Vec<(&'static str, Vec<u8>)> {
        self.private
            .iter()
            .map(|(kid, k)| (*kid, k.public_key_to_pem().expect("pem")))
            .collect()
    }

    pub fn private_key(&self, kid: &str) -> &PKey<Private> {
        &self
            .private
            .iter()
            .find(|(k, _)| *k == kid)
            .expect("fixture key")
            .1
    }
}

/// The public JWK of a fixed private key.
fn public_jwk(kid: &str, key: &PKey<Private>) -> Value {
    if let Ok(rsa) = key.rsa() {
        return json!({"kty": "RSA", "kid": kid, "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec())});
    }
    if let Ok(ec) = key.ec_key() {
        let (crv, len) = match ec.group().degree() {
            256 => ("P-256", 32),
            384 => ("P-384", 48),
            _ => ("P-521", 66),
        };
        let mut ctx = BigNumContext::new().expect("bn ctx");
        let (mut x, mut y) = (BigNum::new().expect("x"), BigNum::new().expect("y"));
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .expect("affine");
        return json!({
            "kty": "EC", "kid": kid, "crv": crv,
            "x": b64(&x.to_vec_padded(len).expect("x")),
            "y": b64(&y.to_vec_padded(len).expect("y")),
        });
    }
    let raw = key.raw_public_key().expect("ed25519 public key");
    json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(&raw)})
}

/// The identity-header oracle: a rendered claim reaches a header whole, or is refused for
/// exactly the reason the rendering shows (too long, or a control character).
pub fn check_identity(value: &Value) {
    let text = identity::render(value);
    match identity::header_value(value) {
        Ok(v) => {
            assert_eq!(v, text);
            assert!(v.len() <= MAX_HEADER_VALUE);
            assert!(!v.bytes().any(|b| b.is_ascii_control()));
        }
        Err(IdentityError::TooLong) => assert!(text.len() > MAX_HEADER_VALUE),
        Err(IdentityError::ControlCharacter) => {
            assert!(text.bytes().any(|b| b.is_ascii_control()));
        }
    }
}
