//! JWE compact parse and decryption with fixed keys of every kind (oct keys of each size,
//! an RSA private key), as `auth_jwt_type encrypted` runs it. Invariants:
//! - no panic, whatever the bytes;
//! - a token that decrypts has five canonical base64url segments and a plaintext no longer
//!   than its ciphertext (no `zip`: nothing is inflated);
//! - every refusal has a message, and a refusal never depends on which key was tried first:
//!   the same bytes give the same answer twice.
#![no_main]

use std::sync::OnceLock;

use auth_jwt_core::jwe::{self, DecryptKeys};
use auth_jwt_core::jwks;
use auth_jwt_core::jwt::token;
use libfuzzer_sys::fuzz_target;
use ngx_http_auth_jwt_module_fuzz::fixture::b64;

/// Oct keys `0, 1, 2, ...` of 16, 24, 32, 48 and 64 bytes (kids `oct-<n>`), and one RSA key.
fn keys() -> &'static DecryptKeys {
    static KEYS: OnceLock<DecryptKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut jwks = String::from(r#"{"keys":["#);
        for n in [16u8, 24, 32, 48, 64] {
            let k = b64(&(0..n).collect::<Vec<u8>>());
            jwks += &format!(r#"{{"kty":"oct","kid":"oct-{n}","use":"enc","k":"{k}"}},"#);
        }
        let rsa = openssl::rsa::Rsa::private_key_from_pem(include_bytes!("../keys/rsa.pem"))
            .expect("fuzz/keys/rsa.pem");
        let b = |n: &openssl::bn::BigNumRef| b64(&n.to_vec());
        jwks += &format!(
            r#"{{"kty":"RSA","kid":"rsa","use":"enc","n":"{}","e":"{}","d":"{}","p":"{}","q":"{}","dp":"{}","dq":"{}","qi":"{}"}}]}}"#,
            b(rsa.n()),
            b(rsa.e()),
            b(rsa.d()),
            b(rsa.p().unwrap()),
            b(rsa.q().unwrap()),
            b(rsa.dmp1().unwrap()),
            b(rsa.dmq1().unwrap()),
            b(rsa.iqmp().unwrap())
        );
        jwks::parse_jwks(jwks.as_bytes()).expect("fixed keys").decrypt
    })
}

fuzz_target!(|data: &[u8]| {
    let result = jwe::decrypt(data, keys());
    match &result {
        Ok(d) => {
            let segments: Vec<&[u8]> = data.split(|&b| b == b'.').collect();
            assert_eq!(segments.len(), 5);
            for segment in &segments {
                let decoded = token::decode(segment).expect("decrypted segments decode");
                assert_eq!(
                    b64(&decoded).as_bytes(),
                    *segment,
                    "non-canonical base64url"
                );
            }
            let ciphertext = token::decode(segments[3]).unwrap();
            assert!(d.plaintext.len() <= ciphertext.len());
        }
        Err(e) => assert!(!e.as_str().is_empty()),
    }
    let again = jwe::decrypt(data, keys());
    assert_eq!(result.as_ref().err(), again.as_ref().err());
});
