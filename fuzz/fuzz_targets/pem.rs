//! PEM key files (`auth_jwt_key_file` with public keys or certificates).
//! Invariants: no panic; a private key block is never accepted; every key verifies some
//! algorithm; errors render.
#![no_main]

use auth_jwt_core::jwks::{self, JwksError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for result in [jwks::parse_pem(data), jwks::parse_key_file(data)] {
        match result {
            Ok(parsed) => {
                for key in parsed.keys.keys() {
                    assert!(!key.algorithms().is_empty());
                }
            }
            Err(e @ JwksError::PrivateKey { .. }) => {
                let _ = e.to_string();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
