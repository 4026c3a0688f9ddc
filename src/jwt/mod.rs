//! JSON Web Token parsing, signature verification and claim checks (pure, no NGINX).

pub mod alg;
pub mod claims;
pub mod error;
pub mod json;
pub mod token;
pub mod verify;
