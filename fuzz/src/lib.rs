//! The module's pure core, compiled from ../src by path for fuzzing, plus the fixed keys the
//! fuzz targets verify against.
//!
//! The module itself is a cdylib whose FFI half needs NGINX's symbols, so the targets do not
//! depend on it: the modules below are the very files of ../src, under the same paths
//! (`crate::jwt`, `crate::jwks`, `crate::fetch::policy`, `crate::conf::value`, ...), so their
//! `crate::` imports resolve as in the module.
#![allow(dead_code)]

#[path = "../../src/authn.rs"]
pub mod authn;
#[path = "../../src/cache.rs"]
pub mod cache;
#[path = "../../src/challenge.rs"]
pub mod challenge;
pub mod conf;
pub mod fetch;
#[path = "../../src/identity.rs"]
pub mod identity;
#[path = "../../src/jwks.rs"]
pub mod jwks;
#[path = "../../src/jwt/mod.rs"]
pub mod jwt;

pub mod fixture;
