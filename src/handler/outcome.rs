//! The outcome of the access check, and the one place that carries it out: the context for
//! the variables, the headers, the status code, the log line and the outcome counter.

use core::fmt;
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use nginx_sys::{
    ngx_int_t, NGX_DECLINED, NGX_HTTP_FORBIDDEN, NGX_HTTP_SERVICE_UNAVAILABLE,
    NGX_HTTP_TOO_MANY_REQUESTS, NGX_HTTP_UNAUTHORIZED, NGX_OK,
};
use ngx::http::Request;

use super::zone_of;
use crate::conf::{ext::ComplexValue, JwtLocConf};
use crate::ctx::{self, JwtCtx};
use crate::error::{Error, OrNoMemory};
use crate::headers;
use crate::limit::Refused;
use crate::log::{log_info, log_warn};
use crate::HttpAuthJwtModule;
use auth_jwt_core::authn::{log_safe, Denial, Verified};
use auth_jwt_core::challenge::{dpop_challenge, www_authenticate, Attributes, Challenge};
use auth_jwt_core::dpop::{server_nonce, DpopRules};
use auth_jwt_core::identity;
use auth_jwt_core::jwt::alg::Alg;
use auth_jwt_core::jwt::error::Status;
use auth_jwt_core::limit::{policy_header, ratelimit_header, LimitStatus, Shown};
use ngx::http::HttpModuleMainConf;

/// What the access check decided for one request. [`apply`] alone carries it out.
pub(super) enum Outcome {
    /// No usable key set (IdP never reached, or keys older than `max_stale`).
    NoKeys { open: bool },
    /// The revocation list is older than its `max_stale` under `on_stale=503`: answered as
    /// when no keys are available (503, `$jwt_status=no_keys`), with its own reason.
    RevocationsStale,
    /// The token passed; its identity claims are known to render safely.
    Admit(Rc<Verified>),
    /// Refused with 401 or 403.
    Deny(Refusal),
    /// The token passed, a rate limit refused it: 429.
    Limited(Refused, Rc<Verified>),
}

/// A refusal, as the variables, the log line and the challenge tell it.
pub(super) struct Refusal {
    pub(super) status: Status,
    /// `$jwt_error`, and the challenge's `error_description` for an invalid token.
    pub(super) reason: Cow<'static, str>,
    /// What the log line says, when it says more than `reason`.
    pub(super) detail: Option<String>,
    pub(super) challenge: Kind,
    pub(super) kid: Option<Rc<str>>,
    pub(super) alg: Option<Alg>,
    /// A token that verified but failed a requirement: its claims stay for the access log.
    pub(super) token: Option<Rc<Verified>>,
}

/// The challenge a refusal answers with.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// 401 with the realm alone: no token was sent.
    Missing,
    /// 401 `error="invalid_token"`.
    InvalidToken,
    /// 403 `error="insufficient_scope"`.
    InsufficientScope,
    /// 401 `DPoP algs="...", error="<error>"` (RFC 9449 section 7.1).
    Dpop { error: &'static str },
}

impl Refusal {
    pub(super) fn of(denial: Denial) -> Self {
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

/// Carries out what [`decide`] decided: the context for the variables, the headers, the
/// status code, the log line and the outcome counter.
pub(super) fn apply(
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
            // The limits passed (if any counted it) when the token was published for them.
            let limit = ctx::get(request.as_ref()).map_or(LimitStatus::None, |c| c.limit);
            if let LimitStatus::Passed(Some(shown)) = limit {
                ratelimit_fields(request, shown)?;
            }
            let ctx = JwtCtx {
                status: Status::Ok,
                error: String::new(),
                token: Some(token),
                limit,
            };
            ctx::put(request.as_mut(), ctx).or_no_memory()?;
            (Status::Ok, NGX_OK as ngx_int_t)
        }
        Outcome::NoKeys { open } => no_keys(request, lcf, open)?,
        Outcome::RevocationsStale => unavailable(request, "revocation list too stale")?,
        Outcome::Deny(refusal) => refuse(request, lcf, realm, refusal)?,
        Outcome::Limited(refused, token) => too_many(request, refused, token)?,
    };
    // An internal redirect checks again; the client's request is counted once.
    if let (Some(zone), false) = (zone_of(request), request.as_ref().internal() != 0) {
        zone.worker_counters().outcome(status);
    }
    Ok(rc)
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
    // Fail open lets the other access checks decide (`satisfy any` with `deny all` or
    // `auth_basic` still applies): NGX_OK would grant access under `satisfy any`.
    if open {
        let ctx = JwtCtx {
            status: Status::Bypass,
            error: "no keys available".into(),
            token: None,
            limit: LimitStatus::None,
        };
        ctx::put(request.as_mut(), ctx).or_no_memory()?;
        return Ok((Status::Bypass, NGX_DECLINED as ngx_int_t));
    }
    unavailable(request, "no keys available")
}

/// 503 with `Retry-After`: the module cannot decide now (`$jwt_status=no_keys`).
fn unavailable(request: &mut Request, reason: &'static str) -> Result<(Status, ngx_int_t), Error> {
    let ctx = JwtCtx {
        status: Status::NoKeys,
        error: reason.into(),
        token: None,
        limit: LimitStatus::None,
    };
    ctx::put(request.as_mut(), ctx).or_no_memory()?;
    log_denial(request, Status::NoKeys, &reason, None, None);
    headers::set_out(request.as_mut(), "Retry-After", RETRY_AFTER).or_no_memory()?;
    Ok((Status::NoKeys, NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t))
}

/// 429 with `Retry-After` and the RateLimit fields; the token's claims stay for the access
/// log. One `info` line per key per second at most.
fn too_many(
    request: &mut Request,
    refused: Refused,
    token: Rc<Verified>,
) -> Result<(Status, ngx_int_t), Error> {
    let mcf = HttpAuthJwtModule::main_conf(request).ok_or(Error::NoMemory)?;
    let conf = mcf.limits.get(refused.zone).ok_or(Error::NoMemory)?;
    let name = &conf.args.name;
    if refused.log {
        log_info!(
            request.log(),
            "rate limited by zone \"{name}\", retry after {} s",
            refused.retry_after
        );
    }
    let ctx = JwtCtx {
        status: Status::Ok,
        error: "rate limited".into(),
        token: Some(token),
        limit: LimitStatus::Rejected,
    };
    ctx::put(request.as_mut(), ctx).or_no_memory()?;
    let r = request.as_mut();
    let wait = refused.retry_after.to_string();
    headers::set_out(r, "Retry-After", &wait).or_no_memory()?;
    let policy = policy_header(name, &conf.args.policy);
    headers::set_out(r, "RateLimit-Policy", &policy).or_no_memory()?;
    let current = ratelimit_header(name, 0, refused.retry_after);
    headers::set_out(r, "RateLimit", &current).or_no_memory()?;
    Ok((Status::Ok, NGX_HTTP_TOO_MANY_REQUESTS as ngx_int_t))
}

/// `headers=always`: the RateLimit fields of a request the limits let through.
fn ratelimit_fields(request: &mut Request, shown: Shown) -> Result<(), Error> {
    let mcf = HttpAuthJwtModule::main_conf(request).ok_or(Error::NoMemory)?;
    let conf = mcf.limits.get(shown.zone).ok_or(Error::NoMemory)?;
    let name = &conf.args.name;
    let policy = policy_header(name, &conf.args.policy);
    let current = ratelimit_header(name, shown.remaining, shown.reset_s);
    let r = request.as_mut();
    headers::set_out(r, "RateLimit-Policy", &policy).or_no_memory()?;
    headers::set_out(r, "RateLimit", &current).or_no_memory()
}

/// Seconds a client is told to wait while no keys are available.
const RETRY_AFTER: &str = "5";

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
    if let (
        Kind::Dpop {
            error: "use_dpop_nonce",
        },
        Some(rules),
    ) = (challenge, &lcf.dpop)
    {
        if let Some(secret) = &rules.nonce_secret {
            let nonce = server_nonce(secret, crate::time::now(), rules.window, 0);
            headers::set_out(request.as_mut(), "DPoP-Nonce", &nonce).or_no_memory()?;
        }
    }
    let (value, code) = match challenge {
        Kind::Dpop { error } => (dpop_value(lcf, error, &reason), NGX_HTTP_UNAUTHORIZED),
        Kind::Missing => bearer_value(
            request,
            lcf,
            realm,
            Challenge::Missing,
            NGX_HTTP_UNAUTHORIZED,
        ),
        Kind::InvalidToken => bearer_value(
            request,
            lcf,
            realm,
            Challenge::InvalidToken(&reason),
            NGX_HTTP_UNAUTHORIZED,
        ),
        Kind::InsufficientScope => bearer_value(
            request,
            lcf,
            realm,
            Challenge::InsufficientScope,
            NGX_HTTP_FORBIDDEN,
        ),
    };
    headers::set_www_authenticate(request.as_mut(), &value).or_no_memory()?;
    let ctx = JwtCtx {
        status,
        error: reason.into_owned(),
        token,
        limit: LimitStatus::None,
    };
    ctx::put(request.as_mut(), ctx).or_no_memory()?;
    Ok((status, code as ngx_int_t))
}

/// RFC 6750's `Bearer realm="..."` challenge, with the location's attributes.
fn bearer_value(
    request: &Request,
    lcf: &JwtLocConf,
    realm: &ComplexValue,
    challenge: Challenge<'_>,
    code: u32,
) -> (String, u32) {
    let realm = request
        .get_complex_value(realm.as_ref())
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default();
    let attrs = Attributes {
        scope: lcf.scope.as_deref(),
        resource_metadata: lcf.resource_metadata.as_deref(),
    };
    (www_authenticate(&realm, challenge, attrs), code)
}

/// RFC 9449's `DPoP algs="..."` challenge, naming the algorithms a proof may use here.
fn dpop_value(lcf: &JwtLocConf, error: &str, reason: &str) -> String {
    let algs = lcf
        .dpop
        .as_ref()
        .map_or_else(|| DpopRules::default().algorithms, |rules| rules.algorithms);
    let names: Vec<&str> = algs.iter().map(Alg::name).collect();
    dpop_challenge(&names.join(" "), error, reason)
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
