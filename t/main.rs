//! Integration tests for ngx_http_auth_jwt_module: the real NGINX binary with the built module.

mod harness;

mod access;
mod algorithms;
mod attacks;
mod challenge;
mod chaos;
mod claims;
mod config;
mod docs;
mod dpop;
mod examples;
mod identity;
mod inheritance;
mod jwe;
mod keyreq;
mod limits;
mod malformed;
mod metrics;
mod mtls;
mod panic;
mod remote;
mod require;
mod revocation;
mod smoke;
mod spoofing;
mod token;
mod variables;
mod workers;
