//! Directive handlers: each converts NGINX's pointers once, rejects duplicates, and calls
//! a pure parser from `value`.

use core::ffi::{c_char, c_void, CStr};
use std::sync::Arc;

use nginx_sys::{
    ngx_command_t, ngx_conf_set_flag_slot, ngx_conf_set_sec_slot, ngx_conf_set_size_slot,
    ngx_conf_t, ngx_http_conf_ctx_t,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::{HttpModuleMainConf, HttpModuleServerConf};
use ngx::ngx_log_error;

use super::ext::{args, complex_value, fail, full_path};
use super::loc::{IdentityHeader, JwtLocConf, JwtMainConf, Mode, Requirement, MAX_KEY_FILE};
use crate::variables::{PathVar, Source};
use crate::HttpAuthJwtModule;
use auth_jwt_core::directive::{
    parse_algorithms, parse_auth_jwt, parse_cache, parse_fail_mode, parse_header_name, parse_path,
    parse_require, parse_resource_metadata, parse_scope, parse_variable_name, token_in_query,
    AuthJwtArgs,
};
use auth_jwt_core::jwks;
use auth_jwt_core::metrics::FileReport;

pub(super) const SEC: u8 = 0;
pub(super) const FLAG: u8 = 1;
pub(super) const SIZE: u8 = 2;
pub(super) const JWKS: bool = false;
pub(super) const DISCOVERY: bool = true;
pub(super) const CLAIMS: bool = true;
pub(super) const HEADER: bool = false;
pub(super) const ISSUERS: bool = true;
pub(super) const AUDIENCES: bool = false;

/// NGINX's slot setters, with their errors reworded in the module's one style.
pub(super) unsafe extern "C" fn cmd_slot<const KIND: u8>(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: NGINX calls directive handlers with a live configuration context.
    let log = unsafe { (*cf).log };
    // SAFETY: NGINX's own arguments for this directive.
    crate::log::boundary("directive", log, NGX_CONF_ERROR, || unsafe {
        slot::<KIND>(cf, cmd, conf)
    })
}

/// # Safety
/// As `cmd_slot`'s: NGINX's arguments for this directive.
unsafe fn slot<const KIND: u8>(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: NGINX calls this with the directive's own `cf`, `cmd` and the location
    // configuration at `cmd->offset`, as the slot setters require.
    let rv = unsafe {
        match KIND {
            SEC => ngx_conf_set_sec_slot(cf, cmd, conf),
            FLAG => ngx_conf_set_flag_slot(cf, cmd, conf),
            _ => ngx_conf_set_size_slot(cf, cmd, conf),
        }
    };
    if rv.is_null() {
        return NGX_CONF_OK;
    }
    if rv == NGX_CONF_ERROR {
        // The setter has logged its own message.
        return rv;
    }
    // SAFETY: any other result of a slot setter is a static NUL-terminated string.
    let reason = unsafe { CStr::from_ptr(rv) }.to_string_lossy();
    // SAFETY: `cf` is the directive's context, as above.
    unsafe {
        match args(cf) {
            Ok((name, args)) if reason == "invalid value" => {
                let value = args.first().copied().unwrap_or_default();
                fail(cf, name, format_args!("invalid value \"{value}\""))
            }
            Ok((name, _)) => fail(cf, name, reason),
            Err(e) => fail(cf, "auth_jwt", e),
        }
    }
}

/// Sets a directive's value once per level; a second one is NGINX's "is duplicate".
pub(crate) fn set_once<T, E: core::fmt::Display>(
    field: &mut Option<T>,
    parse: impl FnOnce() -> Result<T, E>,
) -> Result<(), String> {
    if field.is_some() {
        return Err("is duplicate".into());
    }
    *field = Some(parse().map_err(|e| e.to_string())?);
    Ok(())
}

/// Turns the directive handler's body into NGINX's return convention.
///
/// # Safety
/// `cf` must be the live configuration context of the directive being parsed.
unsafe fn finish(cf: *mut ngx_conf_t, name: &str, result: Result<(), String>) -> *mut c_char {
    match result {
        Ok(()) => NGX_CONF_OK,
        // SAFETY: per the contract.
        Err(reason) => unsafe { fail(cf, name, reason) },
    }
}

/// Runs `body` with the directive's name, arguments and typed configuration.
///
/// # Safety
/// `conf` must point at a `T` allocated by this module's create_*_conf.
pub(crate) unsafe fn with_conf<T>(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
    body: impl FnOnce(&mut T, &[&str]) -> Result<(), String>,
) -> *mut c_char {
    // SAFETY: the caller guarantees `cf` is the directive's context.
    let (name, args) = match unsafe { args(cf) } {
        Ok(a) => a,
        // SAFETY: as above.
        Err(e) => return unsafe { fail(cf, "auth_jwt", e) },
    };
    // SAFETY: the caller guarantees `conf` points at a live `T`.
    let conf = unsafe { &mut *conf.cast::<T>() };
    let result = crate::log::catch("directive", || body(conf, &args))
        .unwrap_or_else(|panic| Err(format!("bug: panic while parsing: {panic}")));
    // SAFETY: as above.
    unsafe { finish(cf, name, result) }
}

pub(super) unsafe extern "C" fn cmd_set_auth_jwt(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            if lcf.mode.is_some() {
                return Err("is duplicate".into());
            }
            lcf.mode = Some(match parse_auth_jwt(args).map_err(|e| e.to_string())? {
                AuthJwtArgs::Off => Mode::Off,
                AuthJwtArgs::On { realm, token } => Mode::On {
                    // A warning, not an error: some clients (WebSocket, EventSource) cannot
                    // send a header.
                    token: match token {
                        Some(t) => {
                            if token_in_query(t) {
                                warn_token_in_query(cf, t);
                            }
                            Some(complex_value(cf, t).ok_or("invalid token variable")?)
                        }
                        None => None,
                    },
                    realm: complex_value(cf, realm).ok_or("invalid realm")?,
                    declared_at: conf_position(cf),
                },
            });
            Ok(())
        })
    }
}

pub(super) unsafe extern "C" fn cmd_add_key_file(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            let path = full_path(cf, args[0]).ok_or("cannot resolve path")?;
            let parsed = read_key_file(&path).map_err(|e| format!("\"{path}\": {e}"))?;
            for skipped in &parsed.skipped {
                ngx_log_error!(
                    nginx_sys::NGX_LOG_WARN,
                    (*cf).log,
                    "auth_jwt: \"{path}\": key not used: {skipped}"
                );
            }
            let mcf = HttpAuthJwtModule::main_conf_mut(&*cf);
            if let Some(mcf) = mcf.filter(|m| m.files.iter().all(|f| f.path != path)) {
                let keys = parsed.keys.keys();
                mcf.files.push(FileReport {
                    path: path.clone(),
                    kids: keys.iter().filter_map(|k| k.kid.clone()).collect(),
                    algorithms: parsed.keys.algorithms().iter().map(|a| a.name()).collect(),
                });
            }
            match &mut lcf.keys {
                None => lcf.keys = Some(Arc::new(parsed.keys)),
                // Unique while this level is parsed: merge has not shared it yet.
                Some(keys) => Arc::get_mut(keys)
                    .ok_or("key set already shared")?
                    .extend(parsed.keys),
            }
            Ok(())
        })
    }
}

fn read_key_file(path: &str) -> Result<jwks::Parsed, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err("file is larger than 1 MiB".into());
    }
    let parsed = jwks::parse_key_file(&bytes).map_err(|e| e.to_string())?;
    if parsed.keys.is_empty() {
        return Err("no usable keys".into());
    }
    Ok(parsed)
}

/// `auth_jwt_issuer` (`ISSUERS`) and `auth_jwt_audience`.
pub(super) unsafe extern "C" fn cmd_set_list<const ISSUERS: bool>(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            let field = if ISSUERS {
                &mut lcf.issuers
            } else {
                &mut lcf.audiences
            };
            set_once(field, || {
                Ok::<_, String>(args.iter().map(|a| (*a).to_owned()).collect())
            })
        })
    }
}

pub(super) unsafe extern "C" fn cmd_set_algorithms(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            set_once(&mut lcf.algorithms, || parse_algorithms(args))
        })
    }
}

pub(super) unsafe extern "C" fn cmd_add_require(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            let (values, error) = parse_require(args).map_err(|e| e.to_string())?;
            let values = values
                .into_iter()
                .map(|v| complex_value(cf, v).ok_or_else(|| format!("invalid value \"{v}\"")))
                .collect::<Result<_, _>>()?;
            lcf.requires
                .get_or_insert_with(Vec::new)
                .push(Requirement { values, error });
            Ok(())
        })
    }
}

pub(super) unsafe extern "C" fn cmd_add_identity_header(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: during parsing `cf->ctx` is the enclosing block's context; inside a location
    // its `srv_conf` is the server's. That configuration is not `conf` (a JwtLocConf).
    let scf = unsafe { (*cf).ctx.cast::<ngx_http_conf_ctx_t>().as_ref() }
        .and_then(HttpAuthJwtModule::server_conf_mut);
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            let lowcase = parse_header_name(args[0]).map_err(|e| e.to_string())?;
            let claim = parse_path(&args[1..]).map_err(|e| e.to_string())?;
            let headers = lcf.identity.get_or_insert_with(Vec::new);
            if headers.iter().any(|h| h.lowcase == lowcase) {
                return Err(format!("header \"{}\" is duplicate", args[0]));
            }
            headers.push(IdentityHeader {
                name: args[0].to_owned(),
                lowcase,
                claim,
            });
            // Every request of the server loses the client's copies (see JwtSrvConf).
            scf.ok_or("no server configuration")?.add(args[0]);
            Ok(())
        })
    }
}

pub(super) unsafe extern "C" fn cmd_add_path_var<const FROM_CLAIMS: bool>(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_MAIN_CONF_OFFSET, so `conf` is a JwtMainConf.
    unsafe {
        with_conf(cf, conf, |mcf: &mut JwtMainConf, args| {
            let name = parse_variable_name(args[0]).map_err(|e| e.to_string())?;
            let source = if FROM_CLAIMS {
                Source::Claims
            } else {
                Source::Header
            };
            let var = Box::new(PathVar {
                source,
                path: parse_path(&args[1..]).map_err(|e| e.to_string())?,
            });
            crate::variables::add_path_var(cf, name, &var).ok_or("cannot add variable")?;
            mcf.vars.push(var);
            Ok(())
        })
    }
}

pub(super) unsafe extern "C" fn cmd_set_scope(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            set_once(&mut lcf.scope, || parse_scope(args))
        })
    }
}

pub(super) unsafe extern "C" fn cmd_set_resource_metadata(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            set_once(&mut lcf.resource_metadata, || {
                parse_resource_metadata(args[0])
            })
        })
    }
}

pub(super) unsafe extern "C" fn cmd_set_fail_mode(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            set_once(&mut lcf.fail_mode, || parse_fail_mode(args[0]))
        })
    }
}

pub(super) unsafe extern "C" fn cmd_set_cache(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_MAIN_CONF_OFFSET, so `conf` is a JwtMainConf.
    unsafe {
        with_conf(cf, conf, |mcf: &mut JwtMainConf, args| {
            set_once(&mut mcf.cache, || parse_cache(args[0]))
        })
    }
}

/// `[warn] ... in file:line`: the token would be written to NGINX's logs with the request line.
///
/// # Safety
/// `cf` must be the live configuration context of the directive being parsed.
unsafe fn warn_token_in_query(cf: *mut ngx_conf_t, value: &str) {
    ngx::ngx_conf_log_error!(
        nginx_sys::NGX_LOG_WARN,
        cf,
        "\"auth_jwt\" takes the token from the query string (token={value}): NGINX writes it to the access log and to every error-log line about the request (\"request:\"), the module's own denials included; prefer a header or a cookie"
    );
}

/// `file:line` of the directive being parsed.
///
/// # Safety
/// `cf` must be the live configuration context of the directive being parsed.
pub(super) unsafe fn conf_position(cf: *mut ngx_conf_t) -> String {
    // SAFETY: during parsing `cf->conf_file` is the file being read.
    unsafe {
        let file = &*(*cf).conf_file;
        format!("{}:{}", file.file.name.to_str().unwrap_or("?"), file.line)
    }
}
