//! `crate::fetch` of the module, reduced to its pure refresh, backoff and discovery rules.

#[path = "../../src/fetch/policy.rs"]
pub mod policy;
