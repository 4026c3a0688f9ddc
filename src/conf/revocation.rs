//! Revocation directives (`auth_jwt_revocation_file`, `auth_jwt_revocation_redis`,
//! `auth_jwt_revocation_lifetime`): everything a worker needs is read here, by the master.

use std::sync::Arc;

use super::directive::{directive, set_once};
use super::loc::JwtMainConf;
use crate::error::Error;
use crate::fetch::http::{TrustedCa, MAX_CA_FILE};
use crate::revocation::{sync, FileSource, RedisSource};
use auth_jwt_core::directive::{parse_duration, ConfError};
use auth_jwt_core::revocation::redis_url::{parse_redis_args, password_from_file};

/// Largest password file read.
const MAX_PASSWORD_FILE: u64 = 4096;

directive! {
    /// `auth_jwt_revocation_file <path>`: parsed now, so that `nginx -t` checks it.
    RevocationFile(cf, mcf: JwtMainConf, args) {
        let path = cf.full_path(args[0])?;
        set_once(&mut mcf.revocation.file, || {
            let initial = sync::load_file(&path)?;
            Ok::<_, Error>(Arc::new(FileSource { path, initial }))
        })
    }
}

directive! {
    /// `auth_jwt_revocation_redis <url> [stream=] [timeout=] [max_stale=] [on_stale=]
    /// [password_file=] [trusted_certificate=]`.
    RevocationRedis(cf, mcf: JwtMainConf, args) {
        let mut parsed = parse_redis_args(args)?;
        let password = match parsed.password_file.clone() {
            Some(file) => {
                let path = cf.full_path(&file)?;
                let text = read_small(&path, MAX_PASSWORD_FILE)?;
                parsed.password_file = Some(path);
                Some(password_from_file(&text)?)
            }
            None => parsed.url.password.take(),
        };
        let ca_pem = match parsed.trusted_certificate.clone() {
            Some(file) => {
                let path = cf.full_path(&file)?;
                // Checked as the IdP fetcher's bundle is: PEM certificates, at least one.
                TrustedCa::load(&path)?;
                let pem = read_small(&path, MAX_CA_FILE)?;
                parsed.trusted_certificate = Some(path);
                Some(pem.into_bytes())
            }
            None => None,
        };
        set_once(&mut mcf.revocation.redis, || {
            Ok::<_, Error>(Arc::new(RedisSource { args: parsed, password, ca_pem }))
        })
    }
}

directive! {
    /// `auth_jwt_revocation_lifetime <time>`: the longest lifetime of a token.
    RevocationLifetime(_, mcf: JwtMainConf, args) {
        set_once(&mut mcf.revocation.lifetime, || {
            parse_duration(args[0]).and_then(|d| {
                if d.as_secs() >= 1 {
                    Ok(d)
                } else {
                    Err(ConfError::InvalidValue(args[0].into()))
                }
            })
        })
    }
}

/// A small text file, whole; the error names the file, never its content.
fn read_small(path: &str, max: u64) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_string(&mut text))
        .map_err(|e| format!("\"{path}\": {e}"))?;
    if text.len() as u64 > max {
        return Err(format!("\"{path}\": larger than {max} bytes"));
    }
    Ok(text)
}
