//! NGINX module statics and hooks for ngx_http_auth_jwt_module.

pub mod jwks;
pub mod jwt;
