//! JSON Web Token parsing, signature verification and claim checks (pure, no NGINX).
#![forbid(unsafe_code)]

pub mod alg;
pub mod b64;
pub mod claims;
mod ed25519;
pub mod error;
pub mod header;
mod hmac;
pub mod json;
pub mod key;
pub mod scan;
mod scan_text;
pub mod token;
pub mod verify;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
pub(crate) mod vectors;
