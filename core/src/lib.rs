//! The pure core of ngx_http_auth_jwt_module: everything that decides, with no NGINX in it.
//!
//! JOSE parsing and verification (`jwt`), key sets (`jwks`), the authentication policy and
//! its token cache (`authn`, `cache`), what reaches the upstream and the client (`identity`,
//! `challenge`), the directive values (`directive`), the fetcher's refresh, backoff and
//! discovery rules (`refresh`), revocations and their lock-free table (`revocation`), and the
//! metrics and status texts (`metrics`). The module crate is the FFI layer over it; `cargo test -p auth_jwt_core` needs no NGINX.
#![forbid(unsafe_code)]

pub mod authn;
pub mod cache;
pub mod challenge;
pub mod directive;
pub mod dpop;
pub mod identity;
pub mod jwe;
pub mod jwks;
pub mod jwt;
pub mod keyreq;
pub mod metrics;
pub mod mtls;
pub mod refresh;
pub mod revocation;

#[cfg(test)]
mod proptests;
