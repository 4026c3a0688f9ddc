//! `$jwt_*` variables and those defined by `auth_jwt_claim_set`/`auth_jwt_header_set`.

use nginx_sys::{
    __BindgenBitfieldUnit, ngx_conf_t, ngx_http_add_variable, ngx_http_request_t,
    ngx_http_variable_t, ngx_int_t, ngx_str_t, ngx_variable_value_t, NGX_ERROR,
    NGX_HTTP_VAR_NOCACHEABLE, NGX_HTTP_VAR_PREFIX, NGX_OK,
};

use std::borrow::Cow;

use crate::ctx::{self, JwtCtx};
use crate::headers::copy_str;
use crate::log::boundary;
use auth_jwt_core::identity;
use ngx::http::{HttpModuleMainConf, NgxHttpCoreModule, Request};

/// Where a JSON value for a `auth_jwt_claim_set`/`auth_jwt_header_set` variable comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Claims,
    Header,
}

/// A variable defined by `auth_jwt_claim_set` or `auth_jwt_header_set`.
#[derive(Debug)]
pub struct PathVar {
    pub source: Source,
    pub path: Vec<String>,
}

type Getter =
    unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_variable_value_t, usize) -> ngx_int_t;

/// Adds the module's built-in variables (from `preconfiguration`).
///
/// # Safety
/// `cf` must be the live `ngx_conf_t` of the `http` block being parsed.
pub unsafe fn register(cf: *mut ngx_conf_t) -> Option<()> {
    let vars: [(&str, Getter, u32); 6] = [
        ("jwt_status", get_status, 0),
        ("jwt_error", get_error, 0),
        ("jwt_limit_status", get_limit_status, 0),
        ("jwt_payload", get_payload, 0),
        ("jwt_claim_", get_claim, NGX_HTTP_VAR_PREFIX),
        ("jwt_header_", get_header, NGX_HTTP_VAR_PREFIX),
    ];
    for (name, get, flags) in vars {
        // SAFETY: forwarded contract.
        unsafe { add(cf, name, get, 0, flags) }?;
    }
    Some(())
}

/// Adds `$name` reading `var` (from `auth_jwt_claim_set`/`auth_jwt_header_set`).
///
/// # Safety
/// `cf` as for `register`; `var` must stay at its address for the configuration's lifetime
/// (it is boxed in the main configuration).
pub unsafe fn add_path_var(cf: *mut ngx_conf_t, name: &str, var: &PathVar) -> Option<()> {
    // SAFETY: forwarded contract.
    unsafe { add(cf, name, get_path_var, var as *const PathVar as usize, 0) }
}

/// # Safety
/// As for `register`.
unsafe fn add(cf: *mut ngx_conf_t, name: &str, get: Getter, data: usize, flags: u32) -> Option<()> {
    let mut name = ngx_str_t {
        len: name.len(),
        data: name.as_ptr().cast_mut(),
    };
    // SAFETY: NGINX copies the name into the configuration pool.
    let v: *mut ngx_http_variable_t =
        unsafe { ngx_http_add_variable(cf, &mut name, (NGX_HTTP_VAR_NOCACHEABLE | flags) as _) };
    // SAFETY: a non-NULL result is the pool-allocated variable, ours to fill.
    let v = unsafe { v.as_mut() }?;
    v.get_handler = Some(get);
    v.data = data;
    Some(())
}

/// Runs `value` on the request's context and stores the result, or marks the variable not
/// found when there is no context or no value.
///
/// # Safety
/// `r` and `v` as NGINX passes them to a variable's get handler.
unsafe fn evaluate(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    value: impl for<'c> FnOnce(&'c JwtCtx) -> Option<Cow<'c, str>>,
) -> ngx_int_t {
    // SAFETY: NGINX passes the live request and its variable slot. The request is only read:
    // NGINX enters here while the access handler holds its own (shared) borrow, e.g. from
    // `auth_jwt_require`'s complex values; the pool is reached through its raw pointer.
    let (r, v) = unsafe { (&*r, &mut *v) };
    // SAFETY: the request's connection and log live as long as the request.
    let log = unsafe { (*r.connection).log };
    // The value is borrowed from the context where it can be (a string claim, the payload,
    // the status) and copied once, into the request pool.
    let copied = boundary("variable", log, Err(()), || {
        let Some(text) = ctx::get(r).and_then(value) else {
            return Ok(None);
        };
        // A value with a control character could split a header or a request wherever the
        // variable is used (`proxy_set_header`, `add_header`, a log line): never produced.
        if text.bytes().any(|b| b.is_ascii_control()) {
            return Ok(None);
        }
        // SAFETY: the request's pool lives as long as the request.
        unsafe { copy_str(r.pool, &text) }.map(Some).ok_or(())
    });
    match copied {
        Ok(Some(s)) => {
            v.data = s.data;
            set_found(v, s.len);
        }
        Ok(None) => v.set_not_found(1),
        Err(()) => return NGX_ERROR as ngx_int_t,
    }
    NGX_OK as ngx_int_t
}

/// Whether the indexed variable `index` is this module's `$jwt_claim_<name>`, not a `map`
/// or `set` of the same name (which NGINX resolves before a prefix variable).
pub fn is_claim_var(request: &Request, index: usize) -> bool {
    let Some(cmcf) = NgxHttpCoreModule::main_conf(request) else {
        return false;
    };
    // SAFETY: once the configuration is loaded, `cmcf->variables` is the array of indexed
    // variables (`ngx_http_variable_t`), each with the handler NGINX resolved for it.
    let vars: &[ngx_http_variable_t] = unsafe { cmcf.variables.as_slice() };
    let ours: Getter = get_claim;
    vars.get(index)
        .and_then(|v| v.get_handler)
        .is_some_and(|get| core::ptr::fn_addr_eq(get, ours))
}

/// Marks `v` valid, not cacheable and found, `len` bytes long, keeping its `escape` bit, in
/// one store: bindgen's bitfield setters go bit by bit, and the four calls cost about 450
/// instructions a variable (callgrind, `$jwt_claim_sub` as a rate-limit key), a fifth of
/// what a limit costs a request.
#[cfg(target_endian = "little")]
fn set_found(v: &mut ngx_variable_value_t, len: usize) {
    // `unsigned len:28, valid:1, no_cacheable:1, not_found:1, escape:1`, from the low bit.
    const VALID: u32 = 1 << 28;
    const NO_CACHEABLE: u32 = 1 << 29;
    const ESCAPE: u32 = 1 << 31;
    let escape = if v.escape() != 0 { ESCAPE } else { 0 };
    let word = (len as u32 & (VALID - 1)) | VALID | NO_CACHEABLE | escape;
    v._bitfield_1 = __BindgenBitfieldUnit::new(word.to_le_bytes());
}

#[cfg(not(target_endian = "little"))]
fn set_found(v: &mut ngx_variable_value_t, len: usize) {
    v.set_len(len as u32);
    v.set_valid(1);
    v.set_no_cacheable(1);
    v.set_not_found(0);
}

unsafe extern "C" fn get_status(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _: usize,
) -> ngx_int_t {
    // SAFETY: called by NGINX as a get handler.
    unsafe { evaluate(r, v, |ctx| Some(Cow::Borrowed(ctx.status.as_str()))) }
}

unsafe extern "C" fn get_error(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _: usize,
) -> ngx_int_t {
    // SAFETY: called by NGINX as a get handler.
    unsafe { evaluate(r, v, |ctx| Some(Cow::Borrowed(&ctx.error))) }
}

unsafe extern "C" fn get_limit_status(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _: usize,
) -> ngx_int_t {
    // SAFETY: called by NGINX as a get handler.
    unsafe { evaluate(r, v, |ctx| ctx.limit.as_str().map(Cow::Borrowed)) }
}

unsafe extern "C" fn get_payload(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    _: usize,
) -> ngx_int_t {
    // SAFETY: called by NGINX as a get handler.
    unsafe {
        evaluate(r, v, |ctx| {
            let token = ctx.token.as_ref()?;
            Some(Cow::Borrowed(
                token.nested_jws.as_deref().unwrap_or(token.payload()),
            ))
        })
    }
}

/// `$jwt_claim_<name>`: NGINX passes the full variable name as `data`.
unsafe extern "C" fn get_claim(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    data: usize,
) -> ngx_int_t {
    // SAFETY: for prefix variables `data` is the `ngx_str_t` name of the variable used.
    let name = unsafe { suffix(data, "jwt_claim_") };
    // SAFETY: called by NGINX as a get handler.
    unsafe { evaluate(r, v, |ctx| ctx.token.as_ref()?.claim_text(name?)) }
}

/// `$jwt_header_<name>`.
unsafe extern "C" fn get_header(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    data: usize,
) -> ngx_int_t {
    // SAFETY: as for `get_claim`.
    let name = unsafe { suffix(data, "jwt_header_") };
    // SAFETY: called by NGINX as a get handler.
    unsafe {
        evaluate(r, v, |ctx| {
            Some(identity::render(ctx.token.as_ref()?.header.get(name?)?))
        })
    }
}

unsafe extern "C" fn get_path_var(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    data: usize,
) -> ngx_int_t {
    // SAFETY: `data` is the address of a boxed `PathVar` owned by the main configuration.
    let var = unsafe { &*(data as *const PathVar) };
    // SAFETY: called by NGINX as a get handler.
    unsafe {
        evaluate(r, v, |ctx| {
            let token = ctx.token.as_ref()?;
            let root = match var.source {
                Source::Claims => &token.claims,
                Source::Header => &token.header,
            };
            Some(identity::render(identity::lookup(root, &var.path)?))
        })
    }
}

/// The part of a prefix variable's name after `prefix`, as NGINX lower-cased it.
///
/// # Safety
/// `data` must be the address of a live `ngx_str_t`.
unsafe fn suffix<'a>(data: usize, prefix: &str) -> Option<&'a str> {
    // SAFETY: per the contract.
    let name = unsafe { (*(data as *const ngx_str_t)).to_str() }.ok()?;
    name.get(prefix.len()..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_found_writes_what_the_bindgen_setters_write() {
        for len in [0usize, 1, 5, 255, 256, 1 << 20, (1 << 28) - 1] {
            for (escape, not_found, stale_len) in [(0, 0, 0), (1, 1, 77), (0, 1, (1 << 28) - 1)] {
                // SAFETY: an all-zero ngx_variable_value_t is a valid value (NULL data).
                let mut slow: ngx_variable_value_t = unsafe { core::mem::zeroed() };
                slow.set_escape(escape);
                slow.set_not_found(not_found);
                slow.set_len(stale_len);
                let mut fast = slow;
                slow.set_len(len as u32);
                slow.set_valid(1);
                slow.set_no_cacheable(1);
                slow.set_not_found(0);
                set_found(&mut fast, len);
                let fields = |v: &ngx_variable_value_t| {
                    (
                        v.len(),
                        v.valid(),
                        v.no_cacheable(),
                        v.not_found(),
                        v.escape(),
                    )
                };
                assert_eq!(fields(&fast), fields(&slow), "len {len}, escape {escape}");
            }
        }
    }
}
