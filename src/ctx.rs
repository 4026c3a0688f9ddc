//! The per-request record of what the access handler decided, read by the variables.

use std::rc::Rc;

use nginx_sys::ngx_http_request_t;
use ngx::core::Pool;

use auth_jwt_core::authn::Verified;
use auth_jwt_core::jwt::error::Status;
use auth_jwt_core::limit::LimitStatus;

/// Outcome of the access check for one request.
#[derive(Debug)]
pub struct JwtCtx {
    pub status: Status,
    /// Short reason for `$jwt_error`; empty when the token passed.
    pub error: String,
    pub token: Option<Rc<Verified>>,
    /// `$jwt_limit_status`.
    pub limit: LimitStatus,
}

/// The request's context, if the access handler has run for it.
pub fn get(r: &ngx_http_request_t) -> Option<&JwtCtx> {
    let module = crate::module();
    // SAFETY: `r->ctx` has one slot per HTTP module; this module's slot is NULL or a `JwtCtx`
    // allocated by `set` from the request pool, which lives as long as `r`.
    unsafe { (*r.ctx.add(module.ctx_index)).cast::<JwtCtx>().as_ref() }
}

/// The request's context, mutable.
pub fn get_mut(r: &mut ngx_http_request_t) -> Option<&mut JwtCtx> {
    let module = crate::module();
    // SAFETY: as in `get`; the exclusive borrow of `r` makes this the only reference.
    unsafe { (*r.ctx.add(module.ctx_index)).cast::<JwtCtx>().as_mut() }
}

/// Stores `ctx` for the request (dropped with the request pool). `None` when out of memory.
pub fn set(r: &mut ngx_http_request_t, ctx: JwtCtx) -> Option<&mut JwtCtx> {
    // SAFETY: `r->pool` is the live request pool.
    let pool = unsafe { Pool::from_ngx_pool(r.pool) };
    let p = pool.allocate(ctx);
    if p.is_null() {
        return None;
    }
    let module = crate::module();
    // SAFETY: as in `get`; `p` is a valid `JwtCtx` that the pool drops on cleanup.
    unsafe {
        *r.ctx.add(module.ctx_index) = p.cast();
        Some(&mut *p)
    }
}

/// Records `ctx` as the request's outcome: in place when the request has a context already
/// (the verified token published for the requirements), otherwise in a new one.
pub fn put(r: &mut ngx_http_request_t, ctx: JwtCtx) -> Option<&mut JwtCtx> {
    if get(r).is_none() {
        return set(r, ctx);
    }
    let existing = get_mut(r)?;
    *existing = ctx;
    Some(existing)
}
