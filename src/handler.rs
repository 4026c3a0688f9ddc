//! The access-phase handler: strip spoofable headers, then decide (request → token → keys →
//! claims → requirements: one [`Outcome`]) and apply the outcome (context, headers, status,
//! log line, counters).

use nginx_sys::{
    ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_ERROR, NGX_HTTP_INTERNAL_SERVER_ERROR,
};
use ngx::core::NgxStr;
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, Request};

use std::borrow::Cow;
use std::cell::Ref;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::conf::{ext::ComplexValue, JwtLocConf, Mode};
use crate::ctx::{self, JwtCtx};
use crate::error::{Error, OrNoMemory};
use crate::log::{boundary, log_debug};
use crate::zone::ZoneData;

mod outcome;
mod sender;

use self::outcome::{apply, Kind, Outcome, Refusal};
use crate::limit::{self, LimitZoneConf, Refused};
use crate::{headers, keyreq, revocation, state, time, variables, HttpAuthJwtModule};
use auth_jwt_core::authn::{self, Denial, Expect, KeySource, Lookup, Policy, Verified};
use auth_jwt_core::directive::{FailMode, RequireError, TokenType};
use auth_jwt_core::dpop::DpopPolicy;
use auth_jwt_core::identity;
use auth_jwt_core::jwt::claims::ClaimRules;
use auth_jwt_core::jwt::error::{Status, VerifyError};
use auth_jwt_core::limit::LimitStatus;

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
    let extra = match &lcf.key_requests {
        None => None,
        Some(_) => match keyreq::prepare(request, lcf, zone_of(request)) {
            keyreq::Prepared::Sources(sources) => Some(sources),
            keyreq::Prepared::Again(rc) => return rc,
        },
    };
    let applied = decide(request, lcf, token.as_ref(), extra)
        .and_then(|outcome| apply(request, lcf, realm, outcome));
    applied.unwrap_or(NGX_ERROR as ngx_int_t)
}

/// Request → token → keys → claims → requirements, top to bottom. Writes nothing the
/// client sees; the one exception is the request's context, which the requirements need
/// (they read the verified claims through `$jwt_claim_*` variables).
fn decide(
    request: &mut Request,
    lcf: &JwtLocConf,
    token_var: Option<&ComplexValue>,
    extra: Option<Vec<KeySource>>,
) -> Result<Outcome, Error> {
    let now = time::now();
    let sources = match extra {
        None => key_sources(lcf, now),
        Some(mut extra) => {
            extra.extend_from_slice(&key_sources(lcf, now));
            Sources::Owned(extra)
        }
    };
    // An encrypted token has no signature: its decryption keys come from files only.
    if sources.is_empty() && lcf.token_type() != TokenType::Encrypted {
        let open = lcf.fail_mode == Some(FailMode::Open);
        return Ok(Outcome::NoKeys { open });
    }
    let dpop_on = lcf
        .dpop
        .as_ref()
        .is_none_or(|d| d.policy != DpopPolicy::Off);
    let Some((raw, scheme)) = token_of(request, token_var, dpop_on) else {
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
            if denial.error == VerifyError::UnknownKid && lcf.key_requests.is_some() {
                keyreq::unknown_kid(request, lcf);
            }
            return Ok(Outcome::Deny(Refusal::of(denial)));
        }
    };
    if let Some(outcome) = revoked(request, &verified, now) {
        return Ok(outcome);
    }
    if let Some(outcome) = sender::mtls_refusal(request, lcf, &verified) {
        return Ok(outcome);
    }
    if let Some(outcome) = sender::dpop_refusal(request, lcf, &verified, raw, scheme, now) {
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
                alg: verified.alg,
                error: VerifyError::BadClaim(e.as_str()),
            })));
        }
    }
    if lcf.requires.is_none() && lcf.limits.is_none() {
        return Ok(Outcome::Admit(verified));
    }
    // The requirements' and limits' complex values read the claims through the variables,
    // which read the context: publish the verified token first.
    let ctx = JwtCtx {
        status: Status::Ok,
        error: String::new(),
        token: Some(Rc::clone(&verified)),
        limit: LimitStatus::None,
    };
    ctx::put(request.as_mut(), ctx).or_no_memory()?;
    for (n, req) in lcf.requires.iter().flatten().enumerate() {
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
            alg: verified.alg,
            token: Some(verified),
        }));
    }
    match limited(request, lcf, zone, &verified) {
        Err(refused) => return Ok(Outcome::Limited(refused, verified)),
        Ok(LimitStatus::None) => {}
        Ok(passed) => ctx::get_mut(request.as_mut()).or_no_memory()?.limit = passed,
    }
    Ok(Outcome::Admit(verified))
}

/// The rate limits, after the token passed every check: one hit per limit in the shared
/// zone, keyed by the configured value's hash.
fn limited(
    request: &Request,
    lcf: &JwtLocConf,
    zone: Option<&ZoneData>,
    token: &Verified,
) -> Result<LimitStatus, Refused> {
    let (Some(limits), Some(mcf), Some(zone)) = (
        lcf.limits.as_deref(),
        HttpAuthJwtModule::main_conf(request),
        zone,
    ) else {
        return Ok(LimitStatus::None);
    };
    let key_of = |conf: &LimitZoneConf| {
        let hash = |value: &[u8]| (!value.is_empty()).then(|| conf.hasher.hash(value));
        match &conf.claim {
            // Straight from the claims, rendered as the variable renders them (`sub` from the
            // scan, without the claims tree), without NGINX's script engine and a copy into the
            // pool. Even a claim that the variable would not show (a control character) is
            // counted, by its text: it never leaves the hash.
            Some(c) if variables::is_claim_var(request, c.index) => {
                hash(token.claim_text(&c.name)?.as_bytes())
            }
            _ => hash(request.get_complex_value(conf.key.as_ref())?.as_bytes()),
        }
    };
    limit::check(&zone.limits, &mcf.limits, limits, key_of, time::now_ms())
}

/// The revocation check, after verification and on cache hits alike: one lookup in the
/// shared zone, no lock, no allocation. A revoked token is denied (401); a revocation list
/// older than `max_stale` under `on_stale=503` answers as if there were no keys (503).
fn revoked(request: &Request, verified: &Rc<Verified>, now: i64) -> Option<Outcome> {
    let mcf = HttpAuthJwtModule::main_conf(request)?;
    let zone = &mcf.zone.get()?.revocations;
    if revocation::too_stale(zone, &mcf.revocation, now) {
        return Some(Outcome::RevocationsStale);
    }
    let why = revocation::check(zone, &mcf.revocation, verified, now)?;
    Some(Outcome::Deny(Refusal {
        status: Status::Revoked,
        reason: Cow::Borrowed("token revoked"),
        detail: Some(why.to_string()),
        challenge: Kind::InvalidToken,
        kid: verified.kid.clone(),
        alg: verified.alg,
        token: None,
    }))
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
    /// With `auth_jwt_key_request` sets: made per request.
    Owned(Vec<KeySource>),
}

impl core::ops::Deref for Sources<'_> {
    type Target = [KeySource];
    fn deref(&self) -> &[KeySource] {
        match self {
            Self::Files(files) => files,
            Self::Snapshot(snapshot) => snapshot,
            Self::Owned(sources) => sources,
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
        expect: match (lcf.token_type(), &lcf.decrypt) {
            (TokenType::Encrypted, Some(keys)) => Expect::Encrypted(keys),
            (TokenType::Nested, Some(keys)) => Expect::Nested(keys),
            // Merge refuses the other types without decryption keys.
            _ => Expect::Signed,
        },
    }
}

/// How the token came: which scheme of `Authorization`, or a configured variable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Bearer,
    Dpop,
    Variable,
}

/// The token from `token=$var`, or from `Authorization: Bearer <token>` (or `DPoP <token>`
/// unless `auth_jwt_dpop off`).
fn token_of<'r>(
    request: &'r Request,
    var: Option<&ComplexValue>,
    dpop: bool,
) -> Option<(&'r [u8], Scheme)> {
    let (token, scheme) = match var {
        Some(cv) => (
            request.get_complex_value(cv.as_ref())?.as_bytes(),
            Scheme::Variable,
        ),
        None => authorization(request, dpop)?,
    };
    (!token.is_empty()).then_some((token, scheme))
}

fn authorization(request: &Request, dpop: bool) -> Option<(&[u8], Scheme)> {
    let h = request.as_ref().headers_in.authorization;
    if h.is_null() {
        return None;
    }
    // SAFETY: a non-NULL `authorization` points at a parsed header of this request.
    let value = unsafe { NgxStr::from_ngx_str((*h).value) }.as_bytes();
    let (name, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    let scheme = if name.eq_ignore_ascii_case(b"Bearer") {
        Scheme::Bearer
    } else if dpop && name.eq_ignore_ascii_case(b"DPoP") {
        Scheme::Dpop
    } else {
        return None;
    };
    Some((rest.trim_ascii(), scheme))
}

/// `auth_jwt_require` semantics: the value is neither empty nor "0".
fn is_truthy(request: &Request, cv: &ComplexValue) -> bool {
    request
        .get_complex_value(cv.as_ref())
        .is_some_and(|v| !v.is_empty() && v.as_bytes() != b"0")
}
