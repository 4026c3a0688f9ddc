//! OpenID discovery documents and the other IdP answers the fetcher interprets.
//! Input: `<issuer>\n<document>`; the first line also serves as a `Cache-Control` value, and
//! the first 16 bytes as backoff parameters.
//! Invariants: no panic; an accepted `jwks_uri` is an https URL and comes from a document
//! naming exactly the issuer; refresh and backoff stay within their bounds.
#![no_main]

use std::time::Duration;

use auth_jwt_core::refresh::{self as policy, DiscoveryError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, document) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let issuer = String::from_utf8_lossy(first);

    match policy::jwks_uri(document, &issuer) {
        Ok(uri) => {
            assert!(policy::is_https_url(&uri));
            let doc: serde_json::Value = serde_json::from_slice(document).expect("accepted json");
            assert_eq!(doc["issuer"].as_str(), Some(&*issuer));
        }
        Err(e @ DiscoveryError::Json) => assert!(
            serde_json::from_slice::<serde_json::Value>(document).is_err(),
            "{e}"
        ),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let url = policy::discovery_url(&issuer);
    assert!(url.ends_with("/.well-known/openid-configuration"));
    if policy::is_https_url(&issuer) {
        assert!(policy::is_https_url(&url));
    }

    let refresh = Duration::from_secs(600);
    let max_age = policy::max_age(&issuer);
    let interval = policy::refresh_interval(max_age, refresh);
    assert!(interval <= refresh);
    assert!(interval >= policy::MIN_MAX_AGE.min(refresh));

    let mut raw = [0u8; 16];
    let n = data.len().min(16);
    raw[..n].copy_from_slice(&data[..n]);
    let failures = u32::from_le_bytes(raw[..4].try_into().expect("4 bytes"));
    let refresh = Duration::from_millis(u64::from(u32::from_le_bytes(
        raw[4..8].try_into().expect("4 bytes"),
    )));
    let unit = f64::from_le_bytes(raw[8..16].try_into().expect("8 bytes"));
    let delay = policy::backoff(failures, refresh, unit);
    assert!(delay <= policy::MAX_BACKOFF.mul_f64(1.2));
});
