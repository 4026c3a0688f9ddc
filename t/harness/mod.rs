//! Test harness for the auth_jwt integration tests: what Test::Nginx gives Perl modules.
//!
//! - `nginx`: temp prefix, config templates, ports, start/stop/reload, `nginx -t`, error log.
//! - `http`: a raw HTTP/1.1 client that sends requests exactly as written.
//! - `keys`: RSA, EC, Ed25519 and HMAC keys made once per process, as JWKS and PEM files.
//! - `mint`: token minting (RustCrypto, not the OpenSSL verifier) including malformed tokens.
//! - `expect`: what accepted and refused requests must look like, and their log lines.

// Each feature file uses a different part of the harness.
#![allow(dead_code, reason = "the harness is a library shared by the feature files")]

pub mod expect;
pub mod http;
pub mod keys;
pub mod mint;
pub mod nginx;

pub use expect::Failures;
pub use http::{Request, Response};
pub use keys::keys;
pub use mint::{b64, now, Jwt, Signer, ALL_ALGS};
pub use nginx::Nginx;
