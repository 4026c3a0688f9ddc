//! Cost of one uncached token check per algorithm (size, parse, signature, claims: what the
//! access handler asks of the core for a token it has not seen), on the tokens
//! scripts/bench.d/mint.py writes:
//! `python3 scripts/bench.d/mint.py /tmp/mint 2000`, then
//! `cargo run --release -p auth_jwt_core --example verify_cost /tmp/mint [alg ...]`.
//! Beside `openssl speed rsa2048 ecdsap256 ed25519`, it separates the module's verify from
//! what NGINX and the kernel add in `scripts/bench`.

use std::sync::Arc;
use std::time::Instant;

use auth_jwt_core::authn::{self, Expect, KeySource, Policy};
use auth_jwt_core::jwt::alg::AlgSet;
use auth_jwt_core::jwt::claims::ClaimRules;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: verify_cost <mint.py OUTDIR> [alg ...]");
    let mut algs: Vec<String> = args.collect();
    if algs.is_empty() {
        algs = ["hs256", "rs256", "ps256", "es256", "eddsa", "es384"]
            .map(String::from)
            .to_vec();
    }
    let jwks = std::fs::read(format!("{dir}/jwks.json")).expect("read jwks.json");
    let keys = auth_jwt_core::jwks::parse_jwks(&jwks)
        .expect("mint.py key set")
        .keys;
    let sources = [KeySource {
        keys: Arc::new(keys),
        issuer: None,
    }];
    let policy = Policy {
        max_size: 16 * 1024,
        algorithms: AlgSet::all(),
        claims: ClaimRules {
            leeway: 0,
            require_exp: true,
            issuers: &[],
            audiences: &[],
        },
        expect: Expect::Signed,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    for alg in &algs {
        let text = std::fs::read_to_string(format!("{dir}/{alg}.tokens"))
            .unwrap_or_else(|e| panic!("{dir}/{alg}.tokens: {e}"));
        let tokens: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
        // One pass to warm caches (the verifier's prepared contexts), then the timed one;
        // the dear ES384 gets fewer tokens so that a run stays short.
        let n = if alg == "es384" {
            tokens.len().min(200)
        } else {
            tokens.len()
        };
        for t in &tokens[..n.min(50)] {
            authn::authenticate(t, &sources, &policy, now).expect("minted tokens verify");
        }
        let start = Instant::now();
        for t in &tokens[..n] {
            authn::authenticate(t, &sources, &policy, now).expect("minted tokens verify");
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("{alg:6} {us:9.2} µs/token ({n} tokens)");
    }
}
