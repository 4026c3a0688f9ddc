//! Sender-constrained tokens on the request path: the certificate binding (RFC 8705), read
//! from the TLS connection or from the configured variable, and DPoP proofs (RFC 9449) with
//! their replay table in the shared zone.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use ngx::core::NgxStr;
use ngx::http::{HttpModuleMainConf, Request};

use super::outcome::{Kind, Outcome, Refusal};
use super::{zone_of, Scheme};
use crate::conf::JwtLocConf;
use crate::zone::ZoneData;
use crate::HttpAuthJwtModule;
use auth_jwt_core::authn::Verified;
use auth_jwt_core::dpop::jwk::KeyCache;
use auth_jwt_core::dpop::replay::{self, Seen};
use auth_jwt_core::dpop::{self, DpopError, DpopPolicy, DpopRules, ProofTarget};
use auth_jwt_core::jwt::error::Status;
use auth_jwt_core::mtls::{self, MtlsError, MtlsPolicy, MtlsVerdict};

/// The `auth_jwt_mtls` check of a verified token; `None` when it passes.
pub(super) fn mtls_refusal(
    request: &Request,
    lcf: &JwtLocConf,
    verified: &Rc<Verified>,
) -> Option<Outcome> {
    let conf = lcf.mtls.as_ref();
    let policy = conf.map_or(MtlsPolicy::Optional, |c| c.policy);
    // Only a token with `cnf` can be bound; one without passes unless a binding is required.
    if policy == MtlsPolicy::Off || (policy == MtlsPolicy::Optional && !verified.has_cnf()) {
        return None;
    }
    // The certificate is read only for a bound token (or to refuse an unbound one).
    let result = match mtls::binding(&verified.claims) {
        Ok(None) if policy == MtlsPolicy::Optional => return None,
        Err(e) => Err(e),
        Ok(_) => {
            let certificate = match conf.and_then(|c| c.certificate.as_ref()) {
                Some(cv) => match request.get_complex_value(cv.as_ref()) {
                    Some(text) if !text.is_empty() => {
                        mtls::certificate_from_text(text.as_bytes()).map(Some)
                    }
                    _ => Ok(None),
                },
                None => Ok(client_certificate(request)),
            };
            certificate.and_then(|der| mtls::check(policy, &verified.claims, der.as_deref()))
        }
    };
    let counters = zone_of(request).map(|z| z.worker_counters());
    let error = match result {
        Ok(MtlsVerdict::Bound) => {
            counters.inspect(|c| c.sender("mtls", "ok"));
            return None;
        }
        Ok(MtlsVerdict::Unbound) => return None,
        Err(e) => e,
    };
    counters.inspect(|c| c.sender("mtls", error.label()));
    Some(refusal(verified, error))
}

fn refusal(verified: &Rc<Verified>, error: MtlsError) -> Outcome {
    Outcome::Deny(Refusal {
        status: Status::Invalid,
        reason: Cow::Owned(error.to_string()),
        detail: None,
        challenge: Kind::InvalidToken,
        kid: verified.kid.clone(),
        alg: verified.alg,
        token: None,
    })
}

/// The DER of the connection's client certificate, when the client sent one over TLS.
/// NGINX has already refused a certificate that failed `ssl_verify_client on|optional`;
/// under `optional_no_ca` an unverified (self-signed) certificate reaches here, which
/// RFC 8705 section 3 allows: the binding, not the chain, proves possession.
#[cfg(ngx_feature = "http_ssl")]
fn client_certificate(request: &Request) -> Option<Vec<u8>> {
    use nginx_sys::{i2d_X509, SSL_get1_peer_certificate, X509_free};
    let c = request.as_ref().connection;
    // SAFETY: a request's `connection` is live for the request; `ssl` is NULL on plain
    // connections and otherwise NGINX's TLS state of this connection.
    let ssl = unsafe { c.as_ref()?.ssl.as_ref()? };
    // SAFETY: `ssl.connection` is the connection's `SSL`; the call returns a new reference
    // (or NULL), released below.
    let cert = unsafe { SSL_get1_peer_certificate(ssl.connection) };
    if cert.is_null() {
        return None;
    }
    // SAFETY: `cert` is a live X509; with a NULL output pointer `i2d_X509` only measures.
    let len = unsafe { i2d_X509(cert, core::ptr::null_mut()) };
    let mut der = vec![0u8; usize::try_from(len).unwrap_or(0)];
    let mut out = der.as_mut_ptr();
    let written = if der.is_empty() {
        0
    } else {
        // SAFETY: `der` has room for the `len` bytes `i2d_X509` writes at `out`.
        unsafe { i2d_X509(cert, &mut out) }
    };
    // SAFETY: the reference taken by `SSL_get1_peer_certificate` above.
    unsafe { X509_free(cert) };
    (written == len && len > 0).then_some(der)
}

/// NGINX built without TLS: no connection has a client certificate.
#[cfg(not(ngx_feature = "http_ssl"))]
fn client_certificate(_: &Request) -> Option<Vec<u8>> {
    None
}

/// The `auth_jwt_dpop` check of a verified token sent as `scheme`; `None` when it passes.
pub(super) fn dpop_refusal(
    request: &Request,
    lcf: &JwtLocConf,
    verified: &Rc<Verified>,
    token: &[u8],
    scheme: Scheme,
    now: i64,
) -> Option<Outcome> {
    // A bearer token without `cnf` passes `optional` (the default) with nothing to check.
    let policy = lcf.dpop.as_ref().map_or(DpopPolicy::Optional, |r| r.policy);
    let unbound_bearer = scheme != Scheme::Dpop && !verified.has_cnf();
    if policy == DpopPolicy::Off || (policy == DpopPolicy::Optional && unbound_bearer) {
        return None;
    }
    let default;
    let rules = match &lcf.dpop {
        Some(rules) => rules,
        None => {
            default = DpopRules::default();
            &default
        }
    };
    let zone = zone_of(request);
    let result = dpop_check(request, rules, verified, token, scheme, now, zone);
    let counters = zone.map(|z| z.worker_counters());
    match result {
        Ok(false) => None,
        Ok(true) => {
            counters.inspect(|c| c.sender("dpop", "ok"));
            None
        }
        Err(e) => {
            counters.inspect(|c| c.sender("dpop", e.label()));
            let challenge = match (scheme, e.is_proof_error()) {
                (Scheme::Dpop, _) if e == DpopError::UseNonce => Kind::Dpop {
                    error: "use_dpop_nonce",
                },
                (Scheme::Dpop, true) => Kind::Dpop {
                    error: "invalid_dpop_proof",
                },
                (Scheme::Dpop, false) => Kind::Dpop {
                    error: "invalid_token",
                },
                _ => Kind::InvalidToken,
            };
            Some(Outcome::Deny(Refusal {
                status: Status::Invalid,
                reason: Cow::Owned(e.to_string()),
                detail: None,
                challenge,
                kid: verified.kid.clone(),
                alg: verified.alg,
                token: None,
            }))
        }
    }
}

thread_local! {
    /// This worker's keys of earlier DPoP proofs, by thumbprint.
    static PROOF_KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

/// `Ok(true)`: a bound token with its proof; `Ok(false)`: an unbound token the policy lets
/// through as a bearer token.
fn dpop_check(
    request: &Request,
    rules: &DpopRules,
    verified: &Verified,
    token: &[u8],
    scheme: Scheme,
    now: i64,
    zone: Option<&ZoneData>,
) -> Result<bool, DpopError> {
    let Some(jkt) = dpop::binding(&verified.claims)? else {
        if rules.policy == DpopPolicy::Required || scheme == Scheme::Dpop {
            return Err(DpopError::Unbound);
        }
        return Ok(false);
    };
    if scheme != Scheme::Dpop {
        return Err(DpopError::Bearer);
    }
    let mut proofs = request
        .headers_in_iterator()
        .filter(|(name, _)| name.as_bytes().eq_ignore_ascii_case(b"dpop"))
        .map(|(_, value)| value.as_bytes());
    let proof = match (proofs.next(), proofs.next()) {
        (Some(proof), None) => proof,
        (None, _) => return Err(DpopError::Proof("missing")),
        (Some(_), Some(_)) => return Err(DpopError::Proof("sent more than once")),
    };
    let htu = htu(request, rules.origin.as_deref());
    let r = request.as_ref();
    // SAFETY: the request's method name, set by NGINX's parser.
    let method = unsafe { NgxStr::from_ngx_str(r.method_name) }.as_bytes();
    let target = ProofTarget {
        method,
        htu: &htu,
        token_sha256: verified.token_digest(token),
        now,
    };
    let proof = PROOF_KEYS
        .with_borrow_mut(|cache| dpop::check_proof_cached(proof, &target, jkt, rules, cache))?;
    let (expires, now) = (
        u32::try_from(proof.expires).unwrap_or(u32::MAX),
        u32::try_from(now).unwrap_or(0),
    );
    let Some(zone) = zone else {
        return Err(DpopError::Proof("not recorded: replay cache full"));
    };
    let replays = &zone.dpop_replay;
    match replay::record(replays.slots(), &proof.jti_digest, expires, now) {
        Seen::Fresh => {
            // Only while this configuration shares (a reload may have dropped Redis and left
            // the outbox in the zone, with nobody to empty it).
            let sharing =
                HttpAuthJwtModule::main_conf(request).is_some_and(|m| m.revocation.redis.is_some());
            if sharing {
                replays.share(&proof.jti_digest, expires);
            }
            Ok(true)
        }
        Seen::Replay => Err(DpopError::Replay),
        Seen::Full => Err(DpopError::Proof("not recorded: replay cache full")),
    }
}

/// `htu` as this request should carry it: the configured origin (or the scheme of the
/// connection and the `Host` header), then the path of the request line, without query.
fn htu(request: &Request, origin: Option<&str>) -> String {
    let r = request.as_ref();
    let uri = request.unparsed_uri().as_bytes();
    let path = uri.split(|&b| b == b'?').next().unwrap_or_default();
    let path = String::from_utf8_lossy(path);
    if let Some(origin) = origin {
        return format!("{origin}{path}");
    }
    let host = if r.headers_in.host.is_null() {
        Cow::Borrowed("")
    } else {
        // SAFETY: a non-NULL `host` points at a parsed header of this request.
        String::from_utf8_lossy(
            unsafe { NgxStr::from_ngx_str((*r.headers_in.host).value) }.as_bytes(),
        )
    };
    let scheme = if is_tls(request) { "https" } else { "http" };
    format!("{scheme}://{host}{path}")
}

#[cfg(ngx_feature = "http_ssl")]
fn is_tls(request: &Request) -> bool {
    // SAFETY: a request's `connection` is live for the request.
    unsafe { request.as_ref().connection.as_ref() }.is_some_and(|c| !c.ssl.is_null())
}

#[cfg(not(ngx_feature = "http_ssl"))]
fn is_tls(_: &Request) -> bool {
    false
}
