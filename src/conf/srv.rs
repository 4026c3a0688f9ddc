//! `server`-level configuration: the identity header names removed from every request.

use auth_jwt_core::identity::fold_name;

/// Built from every `auth_jwt_identity_header` of the server: its own, its locations' at any
/// depth, and the `http` level's (merged in).
#[derive(Debug, Default)]
pub struct JwtSrvConf {
    /// Folded names (see [`fold_name`]), each once.
    pub strip: Vec<String>,
}

impl JwtSrvConf {
    /// Adds a header name configured at this server or in one of its locations.
    pub fn add(&mut self, name: &str) {
        let folded = fold_name(name);
        if !self.strip.contains(&folded) {
            self.strip.push(folded);
        }
    }

    /// Adds the names configured at the `http` level.
    pub fn merge(&mut self, prev: &Self) {
        for name in &prev.strip {
            if !self.strip.contains(name) {
                self.strip.push(name.clone());
            }
        }
    }
}
