//! `auth_jwt_key_request`: key sets fetched by a subrequest through the user's own location,
//! one subrequest in flight per URI per worker, the others waiting on a timer; the result is
//! kept per worker and shared with the other workers through the zone.

use core::ffi::c_void;
use core::ptr;
use std::cell::RefCell;
use std::collections::HashMap;

use nginx_sys::{
    ngx_add_timer, ngx_handle_read_event, ngx_handle_write_event, ngx_http_block_reading,
    ngx_http_core_run_phases, ngx_http_finalize_request, ngx_http_post_subrequest_t,
    ngx_http_request_t, ngx_http_subrequest, ngx_http_test_reading, ngx_int_t, ngx_palloc,
    ngx_pcalloc, ngx_pnalloc, ngx_str_t, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_SUBREQUEST_IN_MEMORY, NGX_HTTP_SUBREQUEST_WAITED, NGX_OK,
};
use ngx::http::Request;

use crate::conf::JwtLocConf;
use crate::fetch;
use crate::log::{boundary, log_info, log_warn};
use crate::time;
use crate::zone::ZoneData;
use auth_jwt_core::authn::KeySource;
use auth_jwt_core::keyreq::{KeyRequest, Plan};

/// How often a waiting request looks whether the fetch it waits for is done.
const WAIT_MS: usize = 20;
/// Most URIs a worker keeps keys for (URIs with variables could name any number): past
/// it the table starts afresh.
const MAX_URIS: usize = 256;
/// Prefix of the zone slots that share subrequest results between workers.
const ZONE_PREFIX: &str = "auth_jwt_key_request:";

thread_local! {
    /// This worker's key sets by evaluated URI.
    static STATE: RefCell<HashMap<String, (KeyRequest, Option<usize>)>> = RefCell::default();
}

/// What `done` receives: the URI, and whether it has already run for this subrequest
/// (NGINX calls it again when it finalizes an error page of the same subrequest).
struct PostData {
    uri: ngx_str_t,
    seen: bool,
}

/// What the access handler does next.
pub enum Prepared {
    /// The key sets of every `auth_jwt_key_request` (those that have keys).
    Sources(Vec<KeySource>),
    /// A subrequest was started, or the request waits for one: return this to NGINX.
    Again(ngx_int_t),
}

/// Looks at every `auth_jwt_key_request` of the location; starts or waits for a fetch when
/// one is due.
pub fn prepare(request: &mut Request, lcf: &JwtLocConf, zone: Option<&ZoneData>) -> Prepared {
    let now = time::now();
    let cache = lcf.key_cache.max(0);
    let mut sources = Vec::new();
    for cv in lcf.key_requests.iter().flatten() {
        let Some(uri) = request.get_complex_value(cv.as_ref()) else {
            continue;
        };
        let uri = uri.to_string();
        let plan = STATE.with_borrow_mut(|map| {
            if map.len() >= MAX_URIS && !map.contains_key(&uri) {
                map.clear();
            }
            let (state, slot) = map.entry(uri.clone()).or_default();
            if !state.fresh(now, cache) {
                if let Some(zone) = zone {
                    adopt_from_zone(zone, &uri, state, slot, now, cache);
                }
            }
            let plan = state.plan(now, cache);
            if let (Plan::Use, Some(keys)) = (&plan, state.keys()) {
                sources.push(KeySource {
                    keys: std::sync::Arc::clone(keys),
                    issuer: None,
                });
            }
            plan
        });
        match plan {
            Plan::Use => {}
            Plan::Fetch => {
                // SAFETY: `request` is the live main request of this access phase.
                let rc = unsafe { start(ptr::from_mut(request.as_mut()), &uri) };
                return Prepared::Again(rc);
            }
            Plan::Wait => {
                // SAFETY: as above.
                return Prepared::Again(unsafe { wait(ptr::from_mut(request.as_mut())) });
            }
        }
    }
    Prepared::Sources(sources)
}

/// An unknown `kid` in a token checked against subrequest keys: refetch (rate-limited).
pub fn unknown_kid(request: &Request, lcf: &JwtLocConf) {
    let now = time::now();
    for cv in lcf.key_requests.iter().flatten() {
        let Some(uri) = request.get_complex_value(cv.as_ref()) else {
            continue;
        };
        let uri = uri.to_string();
        STATE.with_borrow_mut(|map| {
            if let Some((state, _)) = map.get_mut(&uri) {
                state.unknown_kid(now);
            }
        });
    }
}

/// Keys a worker stored in the zone for `uri`, if newer than this worker's.
fn adopt_from_zone(
    zone: &ZoneData,
    uri: &str,
    state: &mut KeyRequest,
    slot: &mut Option<usize>,
    now: i64,
    cache: i64,
) {
    let key = format!("{ZONE_PREFIX}{uri}");
    if slot.is_none() {
        *slot = zone.claim(&key, &[], false);
    }
    let Some(st) = slot.and_then(|i| zone.slots[i].read()) else {
        return;
    };
    if st.uri.as_str() != key || st.fetched_at <= state.fetched_at() {
        return;
    }
    if now > st.fetched_at.saturating_add(cache.max(1)) {
        return;
    }
    let (fetched_at, body) = (st.fetched_at, st.body());
    drop(st);
    if let Ok(keys) = fetch::remote_keys(&body) {
        state.adopt(fetched_at, keys);
    }
}

/// Stores a fetched body for the other workers.
fn share(zone: &ZoneData, uri: &str, slot: &mut Option<usize>, body: &[u8], now: i64) {
    let key = format!("{ZONE_PREFIX}{uri}");
    if slot.is_none() {
        *slot = zone.claim(&key, &[], false);
    }
    let Some(i) = *slot else {
        return;
    };
    let Some(mut st) = zone.slots[i].write() else {
        return;
    };
    if st.uri.as_str() == key && st.replace_body(zone, body) {
        st.fetched_at = now;
        st.generation += 1;
    }
}

/// Starts the subrequest to `uri` (its `?args` split off), in memory, waited for.
///
/// # Safety
/// `r` is the live main request in its access phase.
unsafe fn start(r: *mut ngx_http_request_t, uri: &str) -> ngx_int_t {
    let error = NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
    // SAFETY: `r` is live; its pool outlives the subrequest.
    let pool = unsafe { (*r).pool };
    let Some(key) = pool_str(pool, uri.as_bytes()) else {
        return error;
    };
    let (path, args) = uri.split_once('?').unwrap_or((uri, ""));
    let (Some(mut path), Some(mut args)) = (
        pool_str(pool, path.as_bytes()),
        pool_str(pool, args.as_bytes()),
    ) else {
        return error;
    };
    // SAFETY: a zeroed allocation from the live pool, sized for the struct.
    let ps = unsafe { ngx_pcalloc(pool, core::mem::size_of::<ngx_http_post_subrequest_t>()) }
        .cast::<ngx_http_post_subrequest_t>();
    let key_ptr = pool_box(
        pool,
        PostData {
            uri: key,
            seen: false,
        },
    );
    if ps.is_null() || key_ptr.is_null() {
        return error;
    }
    // SAFETY: `ps` is a valid, exclusively owned allocation.
    unsafe {
        (*ps).handler = Some(done);
        (*ps).data = key_ptr.cast();
    }
    let mut sr = ptr::null_mut();
    let flags = NGX_HTTP_SUBREQUEST_IN_MEMORY | NGX_HTTP_SUBREQUEST_WAITED;
    let args_ptr = if args.len == 0 {
        ptr::null_mut()
    } else {
        ptr::from_mut(&mut args)
    };
    // SAFETY: `r` is live; the strings and `ps` are in its pool.
    let rc = unsafe { ngx_http_subrequest(r, &mut path, args_ptr, &mut sr, ps, flags as _) };
    if rc != NGX_OK as ngx_int_t {
        STATE.with_borrow_mut(|map| {
            if let Some((state, _)) = map.get_mut(uri) {
                state.done(time::now(), None);
            }
        });
        return error;
    }
    nginx_sys::NGX_AGAIN as ngx_int_t
}

/// Parks the request: it looks again in [`WAIT_MS`] (NGINX's `limit_req` delay pattern; a
/// client that goes away meanwhile is noticed by `ngx_http_test_reading`).
///
/// # Safety
/// `r` is the live main request in its access phase.
unsafe fn wait(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: `r` and its connection are live.
    unsafe {
        (*r).read_event_handler = Some(ngx_http_test_reading);
        (*r).write_event_handler = Some(resume);
        let wev = (*(*r).connection).write;
        (*wev).set_delayed(1);
        ngx_add_timer(wev, WAIT_MS as _);
    }
    nginx_sys::NGX_AGAIN as ngx_int_t
}

/// The timer of a waiting request fired: run its phases again (the access handler looks
/// again).
///
/// # Safety
/// NGINX calls it with a live request.
unsafe extern "C" fn resume(r: *mut ngx_http_request_t) {
    // SAFETY: NGINX passes a live request whose connection (and its log) is live.
    let log = unsafe { (*(*r).connection).log };
    // SAFETY: as above, for the whole call.
    boundary("key_request wait", log, (), || unsafe { resume_phases(r) });
}

/// The body of [`resume`].
///
/// # Safety
/// `r` is a live request.
unsafe fn resume_phases(r: *mut ngx_http_request_t) {
    // SAFETY: `r` and its connection are live.
    unsafe {
        let wev = (*(*r).connection).write;
        if (*wev).delayed() != 0 {
            if ngx_handle_write_event(wev, 0) != NGX_OK as ngx_int_t {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
            }
            return;
        }
        if ngx_handle_read_event((*(*r).connection).read, 0) != NGX_OK as ngx_int_t {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
            return;
        }
        (*r).read_event_handler = Some(ngx_http_block_reading);
        (*r).write_event_handler = Some(ngx_http_core_run_phases);
        ngx_http_core_run_phases(r);
    }
}

/// The subrequest ended: its in-memory body is the key set (status 200 and a JWKS), else
/// the fetch failed and the old keys stay.
///
/// # Safety
/// NGINX calls it with the finished subrequest and the `data` given in [`start`].
unsafe extern "C" fn done(
    sr: *mut ngx_http_request_t,
    data: *mut c_void,
    rc: ngx_int_t,
) -> ngx_int_t {
    // SAFETY: NGINX passes the live subrequest; its connection's log is live.
    let log = unsafe { (*(*sr).connection).log };
    boundary("key_request", log, rc, || {
        // SAFETY: `data` is the `PostData` made by `start` in the parent's pool, used by
        // this subrequest only.
        let post = unsafe { &mut *data.cast::<PostData>() };
        if core::mem::replace(&mut post.seen, true) {
            return rc;
        }
        let uri = String::from_utf8_lossy(post.uri.as_bytes()).into_owned();
        // SAFETY: `sr` is live.
        let status = unsafe { (*sr).headers_out.status };
        // SAFETY: the in-memory body, when present, is one buffer in `sr->out` (NGINX's
        // postpone filter), alive in the subrequest's pool.
        let body = unsafe {
            let out = (*sr).out;
            if out.is_null() || (*out).buf.is_null() {
                Vec::new()
            } else {
                let b = (*out).buf;
                let len = (*b).last.offset_from((*b).pos).max(0) as usize;
                core::slice::from_raw_parts((*b).pos, len).to_vec()
            }
        };
        let now = time::now();
        // As from `auth_jwt_key_uri`: secrets (`oct`) from a response are never used.
        let parsed = if rc == NGX_OK as ngx_int_t && status == 200 {
            fetch::remote_keys(&body)
        } else {
            Err(format!("status {status}"))
        };
        // SAFETY: the parent of a subrequest made by `start` is the main request, whose
        // configuration is this module's.
        let zone = unsafe { zone_of((*sr).main) };
        STATE.with_borrow_mut(|map| {
            let (state, slot) = map.entry(uri.clone()).or_default();
            match parsed {
                Ok(keys) => {
                    // A line when the set changes size (first fetch, rotation), not per fetch.
                    if state.keys().map(|k| k.len()) != Some(keys.len()) {
                        log_info!(log, "keys from subrequest \"{uri}\": {} keys", keys.len());
                    }
                    state.done(now, Some(keys));
                    if let Some(zone) = zone {
                        share(zone, &uri, slot, &body, now);
                    }
                }
                Err(e) => {
                    log_warn!(
                        log,
                        "key request \"{uri}\" failed: {e}; keeping the last good keys"
                    );
                    state.done(now, None);
                }
            }
        });
        rc
    })
}

/// The zone of the request's configuration.
///
/// # Safety
/// `r` is a live request.
unsafe fn zone_of(r: *mut ngx_http_request_t) -> Option<&'static ZoneData> {
    use ngx::http::HttpModuleMainConf;
    // SAFETY: `r` is live.
    let request = unsafe { Request::from_ngx_http_request(r) };
    crate::HttpAuthJwtModule::main_conf(request)?.zone.get()
}

/// `bytes` copied into `pool` as an `ngx_str_t`.
fn pool_str(pool: *mut nginx_sys::ngx_pool_t, bytes: &[u8]) -> Option<ngx_str_t> {
    if bytes.is_empty() {
        return Some(ngx_str_t::default());
    }
    // SAFETY: `pool` is a live pool; the allocation has room for `bytes`.
    let p = unsafe { ngx_pnalloc(pool, bytes.len()) }.cast::<u8>();
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` has room for `bytes.len()` bytes.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    Some(ngx_str_t {
        len: bytes.len(),
        data: p,
    })
}

/// `v` moved into `pool` (plain data: the pool frees it without dropping).
fn pool_box(pool: *mut nginx_sys::ngx_pool_t, v: PostData) -> *mut PostData {
    // SAFETY: `pool` is a live pool; `ngx_palloc` aligns the allocation to a pointer, which
    // is all `PostData` needs.
    let p = unsafe { ngx_palloc(pool, core::mem::size_of::<PostData>()) }.cast::<PostData>();
    if !p.is_null() {
        // SAFETY: `p` is a fresh allocation sized and aligned for a `PostData`.
        unsafe { p.write(v) };
    }
    p
}
