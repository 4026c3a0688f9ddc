//! Tokens with arbitrary header and payload bytes, correctly signed with the fixed key for
//! an algorithm picked by the first byte: drives the fuzzer past the signature check into
//! claims, key selection and identity rendering. Input: `<alg byte><header>\0<payload>`.
//! Invariants:
//! - no panic;
//! - a token that parses, whose `alg` is the one signed with and whose `kid` names the
//!   signing key (or is absent), verifies: the verifier checks exactly the bytes signed;
//! - claim values render to identity headers only without control characters and within
//!   4096 bytes;
//! - the scanned header and payload are what the strict parser makes of them, and the claim
//!   rules answer alike on the map and on the scanned text.
#![no_main]

use auth_jwt_core::jwt::alg::{Alg, AlgSet};
use auth_jwt_core::jwt::{claims, json, token};
use libfuzzer_sys::fuzz_target;
use ngx_http_auth_jwt_module_fuzz::fixture::{self, b64, NOW};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let alg = Alg::ALL[usize::from(pick) % Alg::ALL.len()];
    let (header, payload) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b"{}"[..]),
    };
    let fx = fixture::fixture();
    let input = format!("{}.{}", b64(header), b64(payload));
    let jws = format!("{input}.{}", b64(&fx.signature(alg, input.as_bytes())));

    let Ok(parsed) = token::parse(jws.as_bytes()) else {
        return;
    };
    assert_eq!(parsed.signing_input, input.as_bytes());
    let kid_fits = match parsed.kid.as_deref() {
        None => true,
        Some(kid) => kid == fx.kid_for(alg) || (kid == "rsa-ps" && alg == Alg::PS256),
    };
    let verified = fx.keys.verify(&parsed, AlgSet::all());
    if parsed.alg == alg && kid_fits {
        assert!(
            verified.is_ok(),
            "correctly signed token refused: {verified:?}"
        );
    }
    // The header scanned; its map (built on demand) is the strict parser's.
    let header = json::parse_object(parsed.header.text().as_bytes(), token::HEADER_LIMITS);
    assert_eq!(header.as_ref(), Ok(&**parsed.header));
    if let (true, Ok(payload)) = (verified.is_ok(), parsed.payload()) {
        let map = json::parse_object(payload.json().as_bytes(), token::PAYLOAD_LIMITS);
        assert_eq!(map.as_ref(), Ok(&*payload.claims));
        // The claim rules answer alike on the map and on the scanned text.
        for now in [NOW, i64::MAX, i64::MIN] {
            let by_map = claims::check(&*payload.claims, &fixture::rules(), now);
            let by_text = claims::check(&payload.registered(), &fixture::rules(), now);
            assert_eq!(by_map, by_text);
        }
        for value in payload.claims.values().chain(parsed.header.values()) {
            fixture::check_identity(value);
        }
    }
});
