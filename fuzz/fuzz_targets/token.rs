//! Token parse and verify, as the access handler runs them (size, parse, signature, claims),
//! against fixed keys of every type. Invariants:
//! - no panic, whatever the bytes;
//! - a token that verifies has a signing input (`header.payload`) the fixture signed: no
//!   mutation of a signed token verifies unless the signed part is unchanged;
//! - the header and signature of a parsed token, and its payload once decoded, are canonical
//!   base64url (one encoding per value);
//! - the verified-token cache answers exactly as the uncached path, and stays bounded.
#![no_main]

use std::cell::RefCell;

use auth_jwt_core::authn::{self, Cache};
use auth_jwt_core::jwt::token::{self, MAX_KID_LEN};
use libfuzzer_sys::fuzz_target;
use ngx_http_auth_jwt_module_fuzz::fixture::{self, b64, NOW};

const CACHE_ENTRIES: usize = 64;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::new(CACHE_ENTRIES));
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture::fixture();
    let sources = fx.sources();
    let policy = fixture::policy();

    if let Ok(parsed) = token::parse(data) {
        assert!(data.starts_with(parsed.signing_input));
        assert!(parsed.kid.as_ref().is_none_or(|k| k.len() <= MAX_KID_LEN));
        let segments: Vec<&[u8]> = data.split(|&b| b == b'.').collect();
        assert_eq!(segments.len(), 3);
        // The payload is decoded only on demand (after the signature check), so its segment
        // is canonical only when decoding it succeeds.
        let payload_ok = parsed.payload().is_ok();
        for (i, segment) in segments.into_iter().enumerate() {
            if i == 1 && !payload_ok {
                continue;
            }
            let decoded = token::decode(segment).expect("parsed segments decode");
            assert_eq!(
                b64(&decoded).as_bytes(),
                segment,
                "non-canonical base64url accepted"
            );
        }
    }

    let plain = authn::authenticate(data, &sources, &policy, NOW);
    match &plain {
        Ok(_) => {
            let input = token::parse(data)
                .expect("verified tokens parse")
                .signing_input;
            assert!(
                fx.signed.contains(input),
                "a token nobody signed verified: {:?}",
                String::from_utf8_lossy(data)
            );
        }
        Err(denial) => {
            let _ = denial.error.to_string();
            if let Some(kid) = &denial.kid {
                let safe = authn::log_safe(kid);
                assert!(safe.len() <= 64 * 2 + 3);
                assert!(safe.bytes().all(|b| (b' '..=b'~').contains(&b)));
            }
        }
    }

    CACHE.with_borrow_mut(|cache| {
        let (cached, _) = authn::authenticate_cached(data, &sources, &policy, NOW, cache);
        match (&cached, &plain) {
            (Ok(c), Ok((v, _))) => {
                assert_eq!(c.payload(), v.payload());
                assert_eq!(c.alg, v.alg);
            }
            (Err(c), Err(p)) => assert_eq!(c.error, p.error),
            _ => panic!("cache and uncached path disagree"),
        }
        assert!(cache.len() <= CACHE_ENTRIES);
    });
});
