//! The access-phase handler: strip spoofable headers, then decide (request → token → keys →
//! claims → requirements: one [`Outcome`]) and apply the outcome (context, headers, status,
//! log line, counters).

use nginx_sys::{
    ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_ERROR, NGX_HTTP_FORBIDDEN,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_HTTP_UNAUTHORIZED, NGX_OK,
};
use ngx::core::NgxStr;
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, Request};

use core::fmt;
use std::borrow::Cow;
use std::cell::Ref;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::conf::{ext::ComplexValue, JwtLocConf, Mode};
use crate::ctx::{self, JwtCtx};
use crate::error::{Error, OrNoMemory};
use crate::log::{boundary, log_debug, log_info, log_warn};
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
    boundary(
        "access",
        log,
        NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        || access(request),
    )
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
    let applied = decide(request, lcf, token.as_ref())
        .and_then(|outcome| apply(request, lcf, realm, outcome));
    applied.unwrap_or(NGX_ERROR as ngx_int_t)
}

/// What the access check decided for one request. [`apply`] alone carries it out.
enum Outcome {
    /// No usable key set (IdP never reached, or keys older than `max_stale`).
    NoKeys { open: bool },
    /// The token passed; its identity claims are known to render safely.
    Admit(Rc<Verified>),
    /// Refused with 401 or 403.
    Deny(Refusal),
}

/// A refusal, as the variables, the log line and the challenge tell it.
struct Refusal {
    status: Status,
    /// `$jwt_error`, and the challenge's `error_description` for an invalid token.
    reason: Cow<'static, str>,
    /// What the log line says, when it says more than `reason`.
    detail: Option<String>,
    challenge: Kind,
    kid: Option<String>,
    alg: Option<Alg>,
    /// A token that verified but failed a requirement: its claims stay for the access log.
    token: Option<Rc<Verified>>,
}

/// The challenge a refusal answers with.
#[derive(Clone, Copy)]
enum Kind {
    /// 401 with the realm alone: no token was sent.
    Missing,
    /// 401 `error="invalid_token"`.
    InvalidToken,
    /// 403 `error="insufficient_scope"`.
    InsufficientScope,
}

impl Refusal {
    fn of(denial: Denial) -> Self {
        Self {
            status: denial.error.status(),
            reason: Cow::Owned(denial.error.to_string()),
            detail: None,
            challenge: Kind::InvalidToken,
            kid: denial.kid,
            alg: denial.alg,
            token: None,
        }
    }
}

/// Request → token → keys → claims → requirements, top to bottom. Writes nothing the
/// client sees; the one exception is the request's context, which the requirements need
/// (they read the verified claims through `$jwt_claim_*` variables).
fn decide(
    request: &mut Request,
    lcf: &JwtLocConf,
    token_var: Option<&ComplexValue>,
) -> Result<Outcome, Error> {
    let now = time::now();
    let sources = key_sources(lcf, now);
    if sources.is_empty() {
        let open = lcf.fail_mode == Some(FailMode::Open);
        return Ok(Outcome::NoKeys { open });
    }
    let Some(raw) = token_of(request, token_var) else {
        return Ok(Outcome::Deny(Refusal {
            status: Status::Missing,
            reason: Cow::Borrowed("no bearer token"),
            detail: None,
            challenge: Kind::Missing,
            kid: None,
            alg: None,
            token: None,
        }));
    };
    let policy = policy(lcf);
    let capacity = HttpAuthJwtModule::main_conf(request).map_or(0, |m| m.cache_entries());
    let started = Instant::now();
    let (result, lookup) = state::with_cache(capacity, |cache| {
        authn::authenticate_cached(raw, &sources, &policy, now, cache)
    });
    let zone = zone_of(request);
    if let Some(zone) = zone {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        zone.worker_counters().check(lookup == Lookup::Hit, nanos);
    }
    log_debug!(
        request.log(),
        "token checked ({}): {}",
        if lookup == Lookup::Hit {
            "cached"
        } else {
            "verified"
        },
        match &result {
            Ok(_) => "ok",
            Err(denial) => denial.error.status().as_str(),
        }
    );
    let verified = match result {
        Ok(verified) => verified,
        Err(denial) => {
            if let (VerifyError::UnknownKid, Some(zone)) = (&denial.error, zone) {
                wake_fetchers(zone, lcf, denial.kid.as_deref().unwrap_or_default(), now);
            }
            return Ok(Outcome::Deny(Refusal::of(denial)));
        }
    };
    if let Some(outcome) = revoked(request, &verified, now) {
        return Ok(outcome);
    }
    // A claim that cannot be sent safely as an identity header refuses the token.
    for h in lcf.identity.iter().flatten() {
        let Some(value) = identity::lookup(&verified.claims, &h.claim) else {
            continue;
        };
        if let Err(e) = identity::header_value(value) {
            return Ok(Outcome::Deny(Refusal::of(Denial {
                kid: verified.kid.clone(),
                alg: Some(verified.alg),
                error: VerifyError::BadClaim(e.as_str()),
            })));
        }
    }
    let Some(requires) = &lcf.requires else {
        return Ok(Outcome::Admit(verified));
    };
    // The requirements' complex values read the claims through the variables, which read
    // the context: publish the verified token first.
    let ctx = JwtCtx {
        status: Status::Ok,
        error: String::new(),
        token: Some(Rc::clone(&verified)),
    };
    ctx::put(request.as_mut(), ctx).or_no_memory()?;
    for (n, req) in requires.iter().enumerate() {
        if req.values.iter().all(|cv| is_truthy(request, cv)) {
            continue;
        }
        return Ok(Outcome::Deny(Refusal {
            status: Status::Forbidden,
            reason: Cow::Borrowed("token does not meet the requirements"),
            detail: Some(format!("auth_jwt_require #{} failed", n + 1)),
            challenge: match req.error {
                RequireError::Forbidden => Kind::InsufficientScope,
                RequireError::Unauthorized => Kind::InvalidToken,
            },
            kid: verified.kid.clone(),
            alg: Some(verified.alg),
            token: Some(verified),
        }));
    }
    Ok(Outcome::Admit(verified))
}

/// The revocation check, after verification and on cache hits alike: one lookup in the
/// shared zone, no lock, no allocation. A revoked token is denied (401); a revocation list
/// older than `max_stale` under `on_stale=503` answers as if there were no keys (503).
fn revoked(request: &Request, verified: &Rc<Verified>, now: i64) -> Option<Outcome> {
    let mcf = HttpAuthJwtModule::main_conf(request)?;
    let zone = &mcf.zone.get()?.revocations;
    if revocation::too_stale(zone, &mcf.revocation, now) {
        return Some(Outcome::NoKeys { open: false });
    }
    let why = revocation::check(zone, &mcf.revocation, verified, now)?;
    Some(Outcome::Deny(Refusal {
        status: Status::Revoked,
        reason: Cow::Borrowed("token revoked"),
        detail: Some(why.to_string()),
        challenge: Kind::InvalidToken,
        kid: verified.kid.clone(),
        alg: Some(verified.alg),
        token: None,
    }))
}

/// Carries out what [`decide`] decided: the context for the variables, the headers, the
/// status code, the log line and the outcome counter.
fn apply(
    request: &mut Request,
    lcf: &JwtLocConf,
    realm: &ComplexValue,
    outcome: Outcome,
) -> Result<ngx_int_t, Error> {
    let (status, rc) = match outcome {
        Outcome::Admit(token) => {
            // Each value goes straight from the claims (a string is borrowed) into the pool.
            for h in lcf.identity.iter().flatten() {
                let value = identity::lookup(&token.claims, &h.claim);
                if let Some(Ok(text)) = value.map(identity::header_value) {
                    headers::add_in(request.as_mut(), &h.name, &h.lowcase, &text).or_no_memory()?;
                }
            }
            let ctx = JwtCtx {
                status: Status::Ok,
                error: String::new(),
                token: Some(token),
            };
            ctx::put(request.as_mut(), ctx).or_no_memory()?;
            (Status::Ok, NGX_OK as ngx_int_t)
        }
        Outcome::NoKeys { open } => no_keys(request, lcf, open)?,
        Outcome::Deny(refusal) => refuse(request, lcf, realm, refusal)?,
    };
    // An internal redirect checks again; the client's request is counted once.
    if let (Some(zone), false) = (zone_of(request), request.as_ref().internal() != 0) {
        zone.worker_counters().outcome(status);
    }
    Ok(rc)
}

/// The shared zone of the request's configuration cycle.
fn zone_of(request: &Request) -> Option<&'static ZoneData> {
    HttpAuthJwtModule::main_conf(request)?.zone.get()
}

/// The key sets usable now: local files, and remote sets that are not too stale. Neither
/// allocates nor locks: the files' list is made at load, the remote sets are this worker's
/// snapshot, rebuilt only when a fetch changes them.
fn key_sources(lcf: &JwtLocConf, now: i64) -> Sources<'_> {
    match &lcf.remote {
        None => Sources::Files(&lcf.file_sources),
        Some(remote) => Sources::Snapshot(lcf.snapshot.get(&lcf.file_sources, remote, now)),
    }
}

/// A borrowed list of key sources.
enum Sources<'a> {
    Files(&'a [KeySource]),
    Snapshot(Ref<'a, [KeySource]>),
}

impl core::ops::Deref for Sources<'_> {
    type Target = [KeySource];
    fn deref(&self) -> &[KeySource] {
        match self {
            Self::Files(files) => files,
            Self::Snapshot(snapshot) => snapshot,
        }
    }
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

/// No usable keys: refuse with 503 and `Retry-After` (fail closed, the default), or let the
/// request through unauthenticated with identity headers already stripped (fail open).
/// Logged at `warn` once per state change.
fn no_keys(
    request: &mut Request,
    lcf: &JwtLocConf,
    open: bool,
) -> Result<(Status, ngx_int_t), Error> {
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
    ctx::put(request.as_mut(), ctx).or_no_memory()?;
    // Fail open lets the other access checks decide (`satisfy any` with `deny all` or
    // `auth_basic` still applies): NGX_OK would grant access under `satisfy any`.
    if open {
        return Ok((status, NGX_DECLINED as ngx_int_t));
    }
    log_denial(request, status, &"no keys available", None, None);
    headers::set_out(request.as_mut(), "Retry-After", RETRY_AFTER).or_no_memory()?;
    Ok((status, NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t))
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

/// `auth_jwt_require` semantics: the value is neither empty nor "0".
fn is_truthy(request: &Request, cv: &ComplexValue) -> bool {
    request
        .get_complex_value(cv.as_ref())
        .is_some_and(|v| !v.is_empty() && v.as_bytes() != b"0")
}

/// 401 or 403 with the challenge; the context keeps the reason (and a token that failed a
/// requirement) for the variables.
fn refuse(
    request: &mut Request,
    lcf: &JwtLocConf,
    realm: &ComplexValue,
    refusal: Refusal,
) -> Result<(Status, ngx_int_t), Error> {
    let Refusal {
        status,
        reason,
        detail,
        challenge,
        kid,
        alg,
        token,
    } = refusal;
    let logged: &dyn fmt::Display = match &detail {
        Some(detail) => detail,
        None => &reason,
    };
    log_denial(request, status, logged, kid.as_deref(), alg);
    let (challenge, code) = match challenge {
        Kind::Missing => (Challenge::Missing, NGX_HTTP_UNAUTHORIZED),
        Kind::InvalidToken => (Challenge::InvalidToken(&reason), NGX_HTTP_UNAUTHORIZED),
        Kind::InsufficientScope => (Challenge::InsufficientScope, NGX_HTTP_FORBIDDEN),
    };
    let realm = request
        .get_complex_value(realm.as_ref())
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default();
    let attrs = Attributes {
        scope: lcf.scope.as_deref(),
        resource_metadata: lcf.resource_metadata.as_deref(),
    };
    let value = www_authenticate(&realm, challenge, attrs);
    headers::set_www_authenticate(request.as_mut(), &value).or_no_memory()?;
    let ctx = JwtCtx {
        status,
        error: reason.into_owned(),
        token,
    };
    ctx::put(request.as_mut(), ctx).or_no_memory()?;
    Ok((status, code as ngx_int_t))
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
    // The arguments are only evaluated when `info` is logged: `log_safe` allocates.
    log_info!(
        request.log(),
        "rejected ({}): {reason}, kid=\"{}\", alg=\"{}\"",
        status.as_str(),
        kid.map(log_safe).as_deref().unwrap_or("-"),
        alg.map_or("-", Alg::name)
    );
}
