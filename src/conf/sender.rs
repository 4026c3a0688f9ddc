//! Directives of sender-constrained tokens: `auth_jwt_mtls` (RFC 8705) and `auth_jwt_dpop`
//! (RFC 9449).

use super::directive::{directive, set_once};
use super::loc::{JwtLocConf, MtlsConf};
use crate::error::Error;
use auth_jwt_core::dpop::parse_dpop;
use auth_jwt_core::mtls::parse_mtls;

directive! {
    /// `auth_jwt_mtls required | optional | off [certificate=$variable]`.
    Mtls(cf, lcf: JwtLocConf, args) {
        if lcf.mtls.is_some() {
            return Err(Error::Duplicate);
        }
        let parsed = parse_mtls(args)?;
        let certificate = match parsed.certificate {
            Some(var) => Some(cf.complex_value(var, "certificate variable")?),
            None => None,
        };
        lcf.mtls = Some(MtlsConf {
            policy: parsed.policy,
            certificate,
        });
        Ok(())
    }
}

directive! {
    /// `auth_jwt_dpop required | optional | off [window=] [algorithms=] [origin=] [nonce=]`.
    Dpop(_, lcf: JwtLocConf, args) {
        set_once(&mut lcf.dpop, || {
            let mut rules = parse_dpop(args)?;
            // `nonce=on`: one secret per location, drawn in the master, so every worker
            // makes and accepts the same nonces.
            if let Some(secret) = rules.nonce_secret.as_mut() {
                openssl::rand::rand_bytes(secret)
                    .map_err(|_| Error::Refused("cannot draw the DPoP nonce secret".into()))?;
            }
            Ok::<_, Error>(rules)
        })
    }
}
