//! Revocation directives (`auth_jwt_revocation_file`, `auth_jwt_revocation_redis`,
//! `auth_jwt_revocation_lifetime`): everything a worker needs is read here, by the master.

use core::ffi::{c_char, c_void};
use std::sync::Arc;

use nginx_sys::{ngx_command_t, ngx_conf_t};

use super::cmd::{set_once, with_conf};
use super::ext::full_path;
use super::loc::JwtMainConf;
use crate::fetch::http::{TrustedCa, MAX_CA_FILE};
use crate::revocation::{sync, FileSource, RedisSource};
use auth_jwt_core::directive::parse_duration;
use auth_jwt_core::revocation::redis_url::{parse_redis_args, password_from_file};

/// Largest password file read.
const MAX_PASSWORD_FILE: u64 = 4096;

pub(super) unsafe extern "C" fn cmd_set_file(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_MAIN_CONF_OFFSET, so `conf` is a JwtMainConf.
    unsafe {
        with_conf(cf, conf, |mcf: &mut JwtMainConf, args| {
            set_once(&mut mcf.revocation.file, || {
                let path = full_path(cf, args[0]).ok_or("cannot resolve path")?;
                let initial = sync::load_file(&path)?;
                Ok::<_, String>(Arc::new(FileSource { path, initial }))
            })
        })
    }
}

pub(super) unsafe extern "C" fn cmd_set_redis(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_MAIN_CONF_OFFSET, so `conf` is a JwtMainConf.
    unsafe {
        with_conf(cf, conf, |mcf: &mut JwtMainConf, args| {
            set_once(&mut mcf.revocation.redis, || {
                let mut parsed = parse_redis_args(args).map_err(|e| e.to_string())?;
                let password = match &parsed.password_file {
                    Some(file) => {
                        let path = full_path(cf, file).ok_or("cannot resolve path")?;
                        let text = read_small(&path, MAX_PASSWORD_FILE)?;
                        parsed.password_file = Some(path);
                        Some(password_from_file(&text).map_err(|e| e.to_string())?)
                    }
                    None => parsed.url.password.take(),
                };
                let ca_pem = match &parsed.trusted_certificate {
                    Some(file) => {
                        let path = full_path(cf, file).ok_or("cannot resolve path")?;
                        // Checked as the IdP fetcher's bundle is: PEM certificates, at least one.
                        TrustedCa::load(&path)?;
                        let pem = read_small(&path, MAX_CA_FILE)?;
                        parsed.trusted_certificate = Some(path);
                        Some(pem.into_bytes())
                    }
                    None => None,
                };
                Ok::<_, String>(Arc::new(RedisSource {
                    args: parsed,
                    password,
                    ca_pem,
                }))
            })
        })
    }
}

pub(super) unsafe extern "C" fn cmd_set_lifetime(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_MAIN_CONF_OFFSET, so `conf` is a JwtMainConf.
    unsafe {
        with_conf(cf, conf, |mcf: &mut JwtMainConf, args| {
            set_once(&mut mcf.revocation.lifetime, || {
                parse_duration(args[0]).and_then(|d| {
                    if d.as_secs() >= 1 {
                        Ok(d)
                    } else {
                        Err(auth_jwt_core::directive::ConfError::InvalidValue(
                            args[0].into(),
                        ))
                    }
                })
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
