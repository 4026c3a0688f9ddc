//! DPoP proofs and certificate bindings, as the access handler checks them. Invariants:
//! - no panic, whatever the bytes (proof, claims, certificate text);
//! - no proof passes for a `cnf.jkt` no key hashes to, whatever its header claims;
//! - the replay table stays consistent: a `jti` just recorded is a replay until it expires.
#![no_main]

use core::sync::atomic::AtomicU64;

use auth_jwt_core::dpop::{self, replay, DpopRules, ProofTarget};
use auth_jwt_core::jwt::json::{self, Limits};
use auth_jwt_core::mtls::{self, MtlsPolicy};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;
/// The thumbprint of no key: 43 characters that SHA-256 will not produce on purpose.
const NOBODY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fuzz_target!(|data: &[u8]| {
    let target = ProofTarget {
        method: b"GET",
        htu: "https://api.example/orders",
        token_sha256: dpop::token_digest(b"header.payload.signature"),
        now: NOW,
    };
    let rules = DpopRules::default();
    if let Err(e) = dpop::check_proof(data, &target, NOBODY, &rules) {
        let _ = e.to_string();
    } else {
        panic!("a proof passed for a key nobody has");
    }
    // The proof's own thumbprint, when its header parses: checked against itself, the proof
    // may pass only if it is a real signature by that key, which a fuzzer cannot forge.
    let limits = Limits {
        max_depth: 8,
        max_members: 64,
    };
    if let Ok(claims) = json::parse_object(data, limits) {
        let _ = dpop::binding(&claims);
        let _ = mtls::binding(&claims);
        for policy in [MtlsPolicy::Off, MtlsPolicy::Optional, MtlsPolicy::Required] {
            let _ = mtls::check(policy, &claims, Some(data));
            let _ = mtls::check(policy, &claims, None);
        }
        if let Some(jwk) = claims.get("jwk") {
            let _ = dpop::jwk::public_key(jwk);
        }
    }
    let _ = mtls::certificate_from_text(data);
    let slots: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    let digest = openssl::sha::sha256(data);
    if replay::record(&slots, &digest, 100, 10) == replay::Seen::Fresh {
        assert_eq!(
            replay::record(&slots, &digest, 100, 99),
            replay::Seen::Replay
        );
    }
});
