//! `crate::conf` of the module, reduced to its pure directive-value parsers.

#[path = "../../src/conf/value.rs"]
pub mod value;
