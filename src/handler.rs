//! The access-phase handler: strip spoofable headers, verify the token, answer or pass on.

use nginx_sys::{
    ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_ERROR, NGX_HTTP_FORBIDDEN,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_HTTP_UNAUTHORIZED, NGX_OK,
};
use ngx::core::NgxStr;
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, Request};

use core::fmt;
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::conf::{ext::ComplexValue, JwtLocConf, Mode};
use crate::ctx::{self, JwtCtx};
use crate::log::{boundary, log_info, log_warn};
use crate::zone::ZoneData;
use crate::{headers, revocation, state, time, HttpAuthJwtModule};
use auth_jwt_core::authn::{self, log_safe, Denial, KeySource, Lookup, Policy, Verified};
use auth_jwt_core::challenge::{www_authenticate, Attributes, Challenge};
use auth_jwt_core::directive::{FailMode, RequireError};
use auth_jwt_core::identity;
use auth_jwt_core::jwt::alg::Alg;
use auth_jwt_core::jwt::claims::ClaimRules;
use auth_jwt_core::jwt::error::{Status, VerifyError};

/// Registered in the post-read phase by `postconfiguration`: removes the client's copies of
/// every identity header name the server configures, before the rewrite phase evaluates any
/// variable and before a subrequest (which skips the access phase) can share the headers.
///
/// # Safety
/// NGINX calls it with a live request.
pub unsafe extern "C" fn strip_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: NGINX passes a valid request that this handler may use until it returns.
    let request = unsafe { Request::from_ngx_http_request(r) };
    let log = request.log();
    boundary(
        "strip",
        log,
        NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        || match strip_identity(request) {
            Some(()) => NGX_DECLINED as ngx_int_t,
            None => NGX_ERROR as ngx_int_t,
        },
    )
}

/// Removes every header named by an `auth_jwt_identity_header` of the request's server.
fn strip_identity(request: &mut Request) -> Option<()> {
    let Some(scf) = HttpAuthJwtModule::server_conf(request) else {
        return Some(());
    };
    headers::strip(request.as_mut(), &scf.strip)
}

/// Registered in the access phase by `postconfiguration`.
///
/// # Safety
/// NGINX calls it with a live request.
pub unsafe extern "C" fn access_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: NGINX passes a valid request that this handler may use until it returns.
    let request = unsafe { Request::from_ngx_http_request(r) };
    let log = request.log();
    let rc = boundary(
        "access",
        log,
        NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        || access(request),
    );
    // An internal redirect checks again; the client's request is counted once.
    let internal = request.as_ref().internal() != 0;
    if let (Some(ctx), Some(zone), false) = (ctx::get(request.as_ref()), zone_of(request), internal)
    {
        zone.worker_counters().outcome(ctx.status);
    }
    rc
}

fn access(request: &mut Request) -> ngx_int_t {
    #[cfg(feature = "test-panic")]
    if request.headers_in_iterator().any(|(name, _)| {
        name.as_bytes()
            .eq_ignore_ascii_case(b"x-auth-jwt-test-panic")
    }) {
        panic!("auth_jwt test-panic trigger");
    }
    let Some(lcf) = HttpAuthJwtModule::location_conf(request) else {
        return NGX_DECLINED as ngx_int_t;
    };
    let Some(Mode::On { realm, token, .. }) = &lcf.mode else {
        return NGX_DECLINED as ngx_int_t;
    };
    // The client's copies went in the post-read phase; after an internal redirect, the
    // values an earlier location set go too, so that this location's check alone decides.
    if request.as_ref().internal() != 0 && strip_identity(request).is_none() {
        return NGX_ERROR as ngx_int_t;
    }
    let now = time::now();
    let sources = key_sources(lcf, now);
    if sources.is_empty() {
        return no_keys(request, lcf);
    }
    let Some(raw) = token_of(request, token.as_ref()) else {
        let reason = "no bearer token";
        log_denial(request, Status::Missing, &reason, None, None);
        return answer(request, realm, Status::Missing, reason, Challenge::Missing);
    };
    let policy = policy(lcf);
    let capacity = HttpAuthJwtModule::main_conf(request).map_or(0, |m| m.cache_entries());
    let started = Instant::now();
    let (result, lookup) = state::with_cache(capacity, |cache| {
        authn::authenticate_cached(raw, &sources, &policy, now, cache)
    });
    if let Some(zone) = zone_of(request) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        zone.worker_counters().check(lookup == Lookup::Hit, nanos);
    }
    if let Err(denial) = &result {
        if denial.error == VerifyError::UnknownKid {
            if let Some(zone) = zone_of(request) {
                wake_fetchers(zone, lcf, denial.kid.as_deref().unwrap_or_default(), now);
            }
        }
    }
    match result {
        Ok(verified) => match revoked(request, realm, &verified, now) {
            Some(rc) => rc,
            None => admit(request, lcf, realm, verified),
        },
        Err(denial) => reject(request, realm, denial),
    }
}

/// The revocation check, after verification and on cache hits alike: one lookup in the
/// shared zone. `Some` answer when the token is revoked (401), or when the revocation list is
/// older than `max_stale` with `on_stale=503`.
fn revoked(
    request: &mut Request,
    realm: &ComplexValue,
    verified: &Verified,
    now: i64,
) -> Option<ngx_int_t> {
    let mcf = HttpAuthJwtModule::main_conf(request)?;
    let zone = &mcf.zone.get()?.revocations;
    if revocation::too_stale(zone, &mcf.revocation, now) {
        let reason = "revocation list stale";
        log_denial(
            request,
            Status::NoKeys,
            &reason,
            verified.kid.as_deref(),
            Some(verified.alg),
        );
        let ctx = JwtCtx {
            status: Status::NoKeys,
            error: reason.into(),
            token: None,
        };
        if ctx::set(request.as_mut(), ctx).is_none()
            || headers::set_out(request.as_mut(), "Retry-After", RETRY_AFTER).is_none()
        {
            return Some(NGX_ERROR as ngx_int_t);
        }
        return Some(NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t);
    }
    let why = revocation::check(zone, &mcf.revocation, verified, now)?;
    let (kid, alg) = (verified.kid.as_deref(), Some(verified.alg));
    log_denial(request, Status::Revoked, &why, kid, alg);
    let reason = "token revoked";
    Some(answer(
        request,
        realm,
        Status::Revoked,
        reason,
        Challenge::InvalidToken(reason),
    ))
}

/// The shared zone of the request's configuration cycle.
fn zone_of(request: &Request) -> Option<&'static ZoneData> {
    HttpAuthJwtModule::main_conf(request)?.zone.get()
}

/// The key sets usable now: local files, and remote sets that are not too stale.
/// Local files only (the usual case): the location's own list, with nothing allocated or
/// cloned per request.
fn key_sources(lcf: &JwtLocConf, now: i64) -> Cow<'_, [KeySource<'_>]> {
    if lcf.remote.is_none() {
        return Cow::Borrowed(&lcf.file_sources);
    }
    let files = lcf.file_sources.iter().cloned();
    let remote = lcf.remote.iter().flatten().filter_map(|source| {
        let keys = source.current(now)?;
        // Keys are back: the next outage is a new state change, logged again.
        if source.no_keys_logged.load(Ordering::Relaxed) {
            source.no_keys_logged.store(false, Ordering::Relaxed);
        }
        Some(KeySource {
            keys,
            issuer: source.issuer(),
        })
    });
    Cow::Owned(files.chain(remote).collect())
}

/// An unknown `kid` may be a key the IdP has just rotated in: ask the fetchers to look
/// early (each source rate-limits and remembers kids it already asked about).
fn wake_fetchers(zone: &ZoneData, lcf: &JwtLocConf, kid: &str, now: i64) {
    for source in lcf.remote.iter().flatten() {
        if let Some(&i) = source.slot.get() {
            if source.should_wake(kid, now) {
                zone.slots[i].wake.store(now, Ordering::Relaxed);
            }
        }
    }
}

/// No usable keys (IdP never reached, or keys older than `max_stale`): refuse with 503 and
/// `Retry-After` (fail closed, the default), or let the request through unauthenticated with
/// identity headers already stripped (fail open). Logged at `warn` once per state change.
fn no_keys(request: &mut Request, lcf: &JwtLocConf) -> ngx_int_t {
    let open = lcf.fail_mode == Some(FailMode::Open);
    let first = lcf
        .remote
        .iter()
        .flatten()
        .any(|s| !s.no_keys_logged.swap(true, Ordering::Relaxed));
    if first {
        let urls: Vec<&str> = lcf.remote.iter().flatten().map(|s| s.url()).collect();
        let action = if open {
            "letting requests through (fail open)"
        } else {
            "answering 503 (fail closed)"
        };
        log_warn!(
            request.log(),
            "no usable keys from {}: {action}",
            urls.join(", ")
        );
    }
    let status = if open { Status::Bypass } else { Status::NoKeys };
    let ctx = JwtCtx {
        status,
        error: "no keys available".into(),
        token: None,
    };
    if ctx::set(request.as_mut(), ctx).is_none() {
        return NGX_ERROR as ngx_int_t;
    }
    // Fail open lets the other access checks decide (`satisfy any` with `deny all` or
    // `auth_basic` still applies): NGX_OK would grant access under `satisfy any`.
    if open {
        return NGX_DECLINED as ngx_int_t;
    }
    log_denial(request, status, &"no keys available", None, None);
    if headers::set_out(request.as_mut(), "Retry-After", RETRY_AFTER).is_none() {
        return NGX_ERROR as ngx_int_t;
    }
    NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t
}

/// Seconds a client is told to wait while no keys are available.
const RETRY_AFTER: &str = "5";

fn policy(lcf: &JwtLocConf) -> Policy<'_> {
    Policy {
        max_size: lcf.max_size,
        algorithms: lcf.algorithms(),
        claims: ClaimRules {
            leeway: lcf.leeway,
            require_exp: lcf.require_exp != 0,
            issuers: lcf.issuers.as_deref().unwrap_or_default(),
            audiences: lcf.audiences.as_deref().unwrap_or_default(),
        },
    }
}

/// The token from `token=$var`, or from `Authorization: Bearer <token>`.
fn token_of<'r>(request: &'r Request, var: Option<&ComplexValue>) -> Option<&'r [u8]> {
    let token = match var {
        Some(cv) => request.get_complex_value(cv.as_ref())?.as_bytes(),
        None => bearer(request)?,
    };
    (!token.is_empty()).then_some(token)
}

fn bearer(request: &Request) -> Option<&[u8]> {
    let h = request.as_ref().headers_in.authorization;
    if h.is_null() {
        return None;
    }
    // SAFETY: a non-NULL `authorization` points at a parsed header of this request.
    let value = unsafe { NgxStr::from_ngx_str((*h).value) }.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"Bearer") || !rest.starts_with(b" ") {
        return None;
    }
    Some(rest.trim_ascii())
}

fn admit(
    request: &mut Request,
    lcf: &JwtLocConf,
    realm: &ComplexValue,
    verified: Rc<Verified>,
) -> ngx_int_t {
    // Identity headers are rendered first: a claim that cannot be sent safely refuses the token.
    let mut identity = Vec::with_capacity(lcf.identity.as_ref().map_or(0, Vec::len));
    for h in lcf.identity.iter().flatten() {
        let Some(value) = identity::lookup(&verified.claims, &h.claim) else {
            continue;
        };
        match identity::header_value(value) {
            Ok(text) => identity.push((h, text)),
            Err(e) => {
                let denial = Denial {
                    kid: verified.kid.clone(),
                    alg: Some(verified.alg),
                    error: VerifyError::BadClaim(e.as_str()),
                };
                return reject(request, realm, denial);
            }
        }
    }
    let token = Rc::clone(&verified);
    let ctx = JwtCtx {
        status: Status::Ok,
        error: String::new(),
        token: Some(verified),
    };
    if ctx::set(request.as_mut(), ctx).is_none() {
        return NGX_ERROR as ngx_int_t;
    }
    // Requirements read the claims through variables, so they run once the context is set.
    for (n, req) in lcf.requires.iter().flatten().enumerate() {
        if req.values.iter().all(|cv| is_truthy(request, cv)) {
            continue;
        }
        let reason = "token does not meet the requirements";
        let which = format_args!("auth_jwt_require #{} failed", n + 1);
        log_denial(
            request,
            Status::Forbidden,
            &which,
            token.kid.as_deref(),
            Some(token.alg),
        );
        return match req.error {
            RequireError::Forbidden => answer(
                request,
                realm,
                Status::Forbidden,
                reason,
                Challenge::InsufficientScope,
            ),
            RequireError::Unauthorized => answer(
                request,
                realm,
                Status::Forbidden,
                reason,
                Challenge::InvalidToken(reason),
            ),
        };
    }
    for (h, text) in identity {
        if headers::add_in(request.as_mut(), &h.name, &h.lowcase, &text).is_none() {
            return NGX_ERROR as ngx_int_t;
        }
    }
    NGX_OK as ngx_int_t
}

/// `auth_jwt_require` semantics: the value is neither empty nor "0".
fn is_truthy(request: &Request, cv: &ComplexValue) -> bool {
    request
        .get_complex_value(cv.as_ref())
        .is_some_and(|v| !v.is_empty() && v.as_bytes() != b"0")
}

fn reject(request: &mut Request, realm: &ComplexValue, denial: Denial) -> ngx_int_t {
    let status = denial.error.status();
    let reason = denial.error.to_string();
    log_denial(request, status, &reason, denial.kid.as_deref(), denial.alg);
    answer(
        request,
        realm,
        status,
        &reason,
        Challenge::InvalidToken(&reason),
    )
}

/// One `info` line per refusal, in the same shape whatever the reason. `kid` is the
/// attacker's text: escaped and cut by `log_safe`.
fn log_denial(
    request: &Request,
    status: Status,
    reason: &dyn fmt::Display,
    kid: Option<&str>,
    alg: Option<Alg>,
) {
    let kid = kid.map(log_safe);
    log_info!(
        request.log(),
        "rejected ({}): {reason}, kid=\"{}\", alg=\"{}\"",
        status.as_str(),
        kid.as_deref().unwrap_or("-"),
        alg.map_or("-", Alg::name)
    );
}

/// Records the outcome for the variables and answers with the challenge.
fn answer(
    request: &mut Request,
    realm: &ComplexValue,
    status: Status,
    reason: &str,
    challenge: Challenge<'_>,
) -> ngx_int_t {
    let code = match challenge {
        Challenge::InsufficientScope => NGX_HTTP_FORBIDDEN,
        _ => NGX_HTTP_UNAUTHORIZED,
    };
    match ctx::get_mut(request.as_mut()) {
        // A requirement failed after the token passed: the claims stay for the access log.
        Some(ctx) => {
            ctx.status = status;
            reason.clone_into(&mut ctx.error);
        }
        None => {
            let ctx = JwtCtx {
                status,
                error: reason.to_owned(),
                token: None,
            };
            if ctx::set(request.as_mut(), ctx).is_none() {
                return NGX_ERROR as ngx_int_t;
            }
        }
    }
    let realm = request
        .get_complex_value(realm.as_ref())
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lcf = HttpAuthJwtModule::location_conf(request);
    let attrs = Attributes {
        scope: lcf.and_then(|l| l.scope.as_deref()),
        resource_metadata: lcf.and_then(|l| l.resource_metadata.as_deref()),
    };
    let value = www_authenticate(&realm, challenge, attrs);
    if headers::set_www_authenticate(request.as_mut(), &value).is_none() {
        return NGX_ERROR as ngx_int_t;
    }
    code as ngx_int_t
}
