//! Cost of one JWE decryption per algorithm pair, on tokens minted by t/jwe/mint.py:
//! `/usr/bin/python3 t/jwe/mint.py > /tmp/jwe.json`
//! `cargo run --release -p auth_jwt_core --example jwe_cost /tmp/jwe.json`

use std::time::Instant;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: jwe_cost <mint.py output>");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("read"))
        .expect("mint.py output is JSON");
    let jwks = v["jwks"].to_string();
    let keys = auth_jwt_core::jwks::parse_jwks(jwks.as_bytes())
        .expect("mint.py key set")
        .decrypt;
    for name in [
        "dir A128GCM",
        "dir A128CBC-HS256",
        "A256KW A256GCM",
        "A256GCMKW A256CBC-HS512",
        "RSA-OAEP A256GCM",
        "RSA-OAEP-256 A256GCM",
    ] {
        let token = v["tokens"][name].as_str().expect("token").as_bytes();
        let n: u32 = if name.starts_with("RSA") { 500 } else { 20_000 };
        let start = Instant::now();
        for _ in 0..n {
            auth_jwt_core::jwe::decrypt(token, &keys).expect("decrypts");
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!("{name:26} {us:8.2} µs/token ({} bytes)", token.len());
    }
}
