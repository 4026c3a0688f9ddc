//! Test harness for the auth_jwt integration tests: what Test::Nginx gives Perl modules.
//!
//! - `config`: the builder, ports, and the rendered `nginx.conf` (templates, echo upstream).
//! - `nginx`: start/stop/reload of a running NGINX, its processes and logs.
//! - `prefix`: the temp prefix, the module (built on first use), free ports.
//! - `logs`: waiting for error-log lines, and asserting on them.
//! - `check`: `nginx -t` results: failed where and why.
//! - `text`: numbered lines, log patterns, the markers that fail a test.
//! - `prometheus`: a real Prometheus server scraping the metrics location.
//! - `redis`: a real `redis-server` on a loopback port of its own, and `redis-cli`.
//! - `http`: a raw HTTP/1.1 client that sends requests exactly as written.
//! - `keys`: RSA, EC, Ed25519 and HMAC keys made once per process, as JWKS and PEM files.
//! - `mint`: token minting (RustCrypto, not the OpenSSL verifier) including malformed tokens.
//! - `certs`: a test CA, server and client certificates (OpenSSL).
//! - `unprivileged`: `user nobody` workers, and files only the master (root) may read.
//! - `expect`: what accepted and refused requests must look like, and their log lines.

pub mod certs;
pub mod check;
pub mod config;
pub mod expect;
pub mod http;
pub mod idp;
pub mod keys;
pub mod logs;
pub mod mint;
pub mod nginx;
pub mod prefix;
pub mod prometheus;
pub mod redis;
pub mod text;
pub mod unprivileged;

pub use expect::Failures;
pub use http::{Request, Response};
pub use keys::keys;
pub use mint::{b64, now, Jwt, Signer, ALL_ALGS};
pub use nginx::Nginx;

/// Polls `f` every 25 ms until it gives a value, for at most `timeout`.
pub fn poll_until<T>(timeout: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

// Layers, each importing only from those after it: check, expect, logs, prometheus → nginx →
// config, http, keys/mint (mint → keys), idp → certs, prefix, text.
