//! The one place that reads NGINX's clock; everything below it takes `now` as an argument.

/// Seconds since the epoch from NGINX's cached time (updated once per event loop iteration).
pub fn now() -> i64 {
    // SAFETY: `ngx_cached_time` is set by `ngx_time_init()` before any module code runs and
    // always points at a valid `ngx_time_t` slot; the worker reads it from its own thread.
    unsafe { (*nginx_sys::ngx_cached_time).sec }
}

/// Milliseconds since the epoch from NGINX's cached time.
pub fn now_ms() -> u64 {
    // SAFETY: as in `now`.
    let t = unsafe { &*nginx_sys::ngx_cached_time };
    (t.sec.max(0) as u64) * 1000 + t.msec as u64
}
