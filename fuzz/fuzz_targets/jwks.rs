//! JWKS documents (and key files that start with `{`): the keys an IdP or a file gives.
//! Invariants: no panic; at most `MAX_KEYS` keys; every key verifies some algorithm, fits
//! its own `alg`, and has a `kid` of at most `MAX_KID_LEN` bytes; errors render.
#![no_main]

use auth_jwt_core::jwks::{self, Parsed, MAX_KEYS};
use auth_jwt_core::jwt::token::MAX_KID_LEN;
use libfuzzer_sys::fuzz_target;

fn check(parsed: &Parsed) {
    assert!(parsed.keys.len() <= MAX_KEYS);
    for key in parsed.keys.keys() {
        assert!(!key.algorithms().is_empty());
        assert!(key.alg.is_none_or(|alg| key.fits(alg)));
        assert!(key.kid.as_ref().is_none_or(|k| k.len() <= MAX_KID_LEN));
        let _ = format!("{key:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    for result in [jwks::parse_jwks(data), jwks::parse_key_file(data)] {
        match result {
            Ok(parsed) => check(&parsed),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
