//! `auth_jwt_metrics` and `auth_jwt_status`: content handlers that report from the shared
//! zone (counters of every worker) and from this worker's view of the key sets.

use nginx_sys::{
    ngx_chain_t, ngx_http_request_t, ngx_int_t, NGX_ERROR, NGX_HTTP_GET, NGX_HTTP_HEAD,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_OK,
};
use ngx::core::Buffer;
use ngx::http::{HttpModuleMainConf, Request};

use crate::conf::directive::directive;
use crate::conf::JwtLocConf;

use crate::headers::copy_str;
use crate::keys::{RemoteSource, SourceKind};
use crate::log::boundary;
use crate::{state, time, zone, HttpAuthJwtModule};
use auth_jwt_core::dpop::share::ShareReport;
use auth_jwt_core::limit::report as limit_report;
use auth_jwt_core::metrics::{self, SourceReport, StatusReport};
use auth_jwt_core::revocation::report::RevocationReport;

directive! {
    /// `auth_jwt_metrics;` in a location.
    Metrics(cf, _: JwtLocConf, _) {
        cf.set_content_handler(metrics_handler)
    }
}

directive! {
    /// `auth_jwt_status;` in a location.
    StatusPage(cf, _: JwtLocConf, _) {
        cf.set_content_handler(status_handler)
    }
}

unsafe extern "C" fn metrics_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: NGINX passes a live request.
    unsafe {
        respond(r, |request, zone, now, sources| {
            let mut body = metrics::prometheus(&zone.counters(), sources, now);
            if let Some(rv) = revocation_report(request, zone) {
                body.push_str(&rv.prometheus(now));
            }
            body.push_str(&limit_report::prometheus(&limit_reports(request, zone)));
            if let Some(share) = share_report(request, zone) {
                body.push_str(&share.prometheus());
            }
            ("text/plain; version=0.0.4; charset=utf-8", body)
        })
    }
}

unsafe extern "C" fn status_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: NGINX passes a live request.
    unsafe {
        respond(r, |request, zone, now, sources| {
            let counters = zone.counters();
            let mcf = HttpAuthJwtModule::main_conf(request);
            // The configured size: a worker's cache is sized on its first check.
            let capacity = mcf.map_or(0, |m| m.cache_entries());
            let (entries, _) = state::cache_fill();
            let body = metrics::status_json(&StatusReport {
                module_version: env!("CARGO_PKG_VERSION"),
                nginx_version: nginx_sys::NGINX_VERSION.to_str().unwrap_or_default(),
                now,
                counters: &counters,
                sources,
                files: mcf.map_or(&[][..], |m| &m.files),
                cache_entries: entries,
                cache_capacity: capacity,
                revocations: revocation_report(request, zone).map(|r| r.json(now)),
                limits: limit_reports(request, zone)
                    .iter()
                    .map(|r| r.json())
                    .collect(),
                dpop_replay: share_report(request, zone).map(|r| r.json()),
            });
            ("application/json", body)
        })
    }
}

/// The rate limits' part of both pages, one report per zone.
fn limit_reports(request: &Request, zone: &zone::ZoneData) -> Vec<limit_report::LimitReport> {
    let Some(mcf) = HttpAuthJwtModule::main_conf(request) else {
        return Vec::new();
    };
    mcf.limits
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let table = zone.limits.table(i);
            limit_report::LimitReport::of(&c.args.name, &table, c.redis.is_some())
        })
        .collect()
}

/// The revocation part of both pages, when the configuration revokes.
fn revocation_report(request: &Request, zone: &zone::ZoneData) -> Option<RevocationReport> {
    let mcf = HttpAuthJwtModule::main_conf(request)?;
    let conf = &mcf.revocation;
    conf.enabled().then(|| zone.revocations.report(conf))
}

/// The DPoP replay sharing's part of both pages, when the node shares through Redis.
fn share_report(request: &Request, zone: &zone::ZoneData) -> Option<ShareReport> {
    let mcf = HttpAuthJwtModule::main_conf(request)?;
    Some(zone.dpop_replay.report(mcf.revocation.redis.as_ref()?))
}

/// Gathers what both pages show, lets `render` write the body, and serves it; a panic is
/// contained, a missing zone answers 503.
///
/// # Safety
/// `r` must be a live request.
unsafe fn respond(
    r: *mut ngx_http_request_t,
    render: impl FnOnce(&Request, &zone::ZoneData, i64, &[SourceReport]) -> (&'static str, String),
) -> ngx_int_t {
    // SAFETY: per the contract.
    let request = unsafe { Request::from_ngx_http_request(r) };
    let log = request.log();
    boundary(
        "report",
        log,
        NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t,
        || {
            let Some(zone) = HttpAuthJwtModule::main_conf(request).and_then(|m| m.zone.get())
            else {
                return NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t;
            };
            let now = time::now();
            let sources = source_reports(request, now);
            let (content_type, body) = render(request, zone, now, &sources);
            serve(request, content_type, &body)
        },
    )
}

/// Each remote source as the zone holds it, with the keys this worker publishes.
fn source_reports(request: &Request, now: i64) -> Vec<SourceReport> {
    let Some(mcf) = HttpAuthJwtModule::main_conf(request) else {
        return Vec::new();
    };
    let Some(zone) = mcf.zone.get() else {
        return Vec::new();
    };
    mcf.sources
        .iter()
        .map(|source| report(source, zone, now))
        .collect()
}

fn report(source: &RemoteSource, zone: &zone::ZoneData, now: i64) -> SourceReport {
    let published = source.published();
    let (kids, algorithms, stale_at) = match &published {
        Some(p) if p.stale_at > now => (
            p.kids.clone(),
            p.keys.algorithms().iter().map(|a| a.name()).collect(),
            p.stale_at,
        ),
        Some(p) => (Vec::new(), Vec::new(), p.stale_at),
        None => (Vec::new(), Vec::new(), 0),
    };
    let mut r = SourceReport {
        url: source.url().to_owned(),
        kind: match source.kind {
            SourceKind::Jwks => "jwks_uri",
            SourceKind::Discovery => "discovery",
        },
        jwks_uri: String::new(),
        fetches_ok: 0,
        fetches_not_modified: 0,
        fetches_failed: 0,
        last_success: 0,
        next_fetch: 0,
        stale_at,
        generation: published.as_ref().map_or(0, |p| p.generation),
        failures: 0,
        last_error: String::new(),
        kids,
        algorithms,
    };
    if let Some(&i) = source.slot.get() {
        let st = zone.slots[i].read();
        if let Some(st) = st.filter(|st| st.uri.as_str() == source.url()) {
            r.jwks_uri = st.jwks_uri.as_str().to_owned();
            r.fetches_ok = st.fetches_ok;
            r.fetches_not_modified = st.fetches_not_modified;
            r.fetches_failed = st.fetches_failed;
            r.last_success = st.fetched_at;
            r.next_fetch = st.next_fetch;
            r.failures = st.failures;
            r.last_error = st.last_error.as_str().to_owned();
        }
    }
    r
}

/// Sends `body` as a complete 200 response.
fn serve(request: &mut Request, content_type: &'static str, body: &str) -> ngx_int_t {
    let r: &mut ngx_http_request_t = request.as_mut();
    if r.method as u32 & (NGX_HTTP_GET | NGX_HTTP_HEAD) == 0 {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    if request.discard_request_body() != ngx::core::Status::NGX_OK {
        return NGX_ERROR as ngx_int_t;
    }
    let r: &mut ngx_http_request_t = request.as_mut();
    // SAFETY: the request's pool lives as long as the request.
    let Some(ct) = (unsafe { copy_str(r.pool, content_type) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    r.headers_out.status = 200;
    r.headers_out.content_type_len = ct.len;
    r.headers_out.content_type = ct;
    r.headers_out.content_length_n = body.len() as i64;
    let rc = request.send_header();
    if rc.0 == NGX_ERROR as ngx_int_t || rc.0 > NGX_OK as ngx_int_t || request.header_only() {
        return rc.0;
    }
    let pool = request.pool();
    let Some(mut buf) = pool.create_buffer_from_str(body) else {
        return NGX_ERROR as ngx_int_t;
    };
    buf.set_last_buf(request.is_main());
    buf.set_last_in_chain(true);
    let chain = pool.calloc_type::<ngx_chain_t>();
    // SAFETY: `chain` is NULL or a zeroed chain link from the request pool.
    let Some(link) = (unsafe { chain.as_mut() }) else {
        return NGX_ERROR as ngx_int_t;
    };
    link.buf = buf.as_ngx_buf_mut();
    request.output_filter(link).0
}
