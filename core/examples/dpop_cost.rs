//! Cost of one DPoP proof check (everything but the replay table), on a proof minted by
//! t/dpop/mint.py: `python3 scripts/bench.d/dpop_cost_mint.py /tmp/dpop.json`, then
//! `cargo run --release -p auth_jwt_core --example dpop_cost /tmp/dpop.json [n]`; for
//! instructions, `valgrind --tool=callgrind target/release/examples/dpop_cost /tmp/dpop.json
//! 1000` and `callgrind_annotate --inclusive=yes` (`EVP_PKEY_verify` is the ECDSA verify).

use auth_jwt_core::dpop::jwk::KeyCache;
use auth_jwt_core::dpop::{check_proof_cached, DpopRules, ProofTarget};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: dpop_cost <json> [n]");
    let n: u32 = args.next().map_or(2000, |a| a.parse().expect("n"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("read"))
        .expect("{token, jkt, proof, htu, iat}");
    let text = |k: &str| v[k].as_str().expect(k).to_owned();
    let (token, jkt, proof, htu) = (text("token"), text("jkt"), text("proof"), text("htu"));
    let target = ProofTarget {
        method: b"GET",
        htu: &htu,
        token_sha256: auth_jwt_core::dpop::token_digest(token.as_bytes()),
        now: v["iat"].as_i64().expect("iat"),
    };
    let rules = DpopRules::default();
    let mut cache = KeyCache::default();
    let start = std::time::Instant::now();
    for _ in 0..n {
        check_proof_cached(proof.as_bytes(), &target, &jkt, &rules, &mut cache).expect("valid");
    }
    let each = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("{n} checks: {each:.2} µs each (wall clock, ECDSA verify included)");
}
