//! Sender-constrained tokens on the request path: the certificate binding (RFC 8705), read
//! from the TLS connection or from the configured variable.

use std::borrow::Cow;
use std::rc::Rc;

use ngx::http::Request;

use super::outcome::{Kind, Outcome, Refusal};
use super::zone_of;
use crate::conf::JwtLocConf;
use auth_jwt_core::authn::Verified;
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
    if policy == MtlsPolicy::Off {
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
        alg: Some(verified.alg),
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
