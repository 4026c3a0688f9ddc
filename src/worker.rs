//! Worker process hooks: start the fetcher thread after fork, write its log lines from the
//! event loop, stop it on exit.

use core::ptr;
use std::sync::Mutex;

use nginx_sys::{
    ngx_cycle_t, ngx_event_t, ngx_exiting, ngx_int_t, ngx_log_t, ngx_quit, ngx_terminate,
    NGX_ERROR, NGX_LOG_ALERT, NGX_LOG_INFO, NGX_OK,
};
use ngx::http::HttpModuleMainConf;

use crate::background::Background;
use crate::fetch;
use crate::log::{self, log_alert, log_at};
use crate::revocation::sync;
use crate::HttpAuthJwtModule;

/// This worker's fetcher, if its configuration has remote keys.
static FETCHER: Mutex<Option<Background>> = Mutex::new(None);
/// This worker's revocation sync thread, if its configuration has revocation sources.
static REVOKER: Mutex<Option<Background>> = Mutex::new(None);
/// This worker's rate-limit sync thread, if a limit zone has `redis=`.
static LIMITER: Mutex<Option<Background>> = Mutex::new(None);
/// This worker's DPoP replay sharing thread, with `auth_jwt_revocation_redis`.
static SHARER: Mutex<Option<Background>> = Mutex::new(None);

/// How often the event loop writes the fetcher's queued log lines.
const LOG_INTERVAL_MS: usize = 1000;

/// `init_process`: publish the keys already in the zone (a reload starts warm), then start
/// the fetcher with every signal blocked, so that NGINX's handlers run on the main thread only.
///
/// # Safety
/// NGINX calls it once in each new worker with the worker's cycle.
pub unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: NGINX passes the live cycle.
    let cycle = unsafe { &*cycle };
    // A bug here must not make the master respawn workers in a loop: the worker serves on
    // without remote keys (their locations fail closed or open as configured).
    log::boundary("init_process", cycle.log, NGX_OK as ngx_int_t, || {
        start(cycle)
    })
}

/// Starts the key fetcher and the revocation sync this configuration needs, and the timer
/// that writes their log lines.
fn start(cycle: &ngx_cycle_t) -> ngx_int_t {
    let Some(mcf) = HttpAuthJwtModule::main_conf(cycle) else {
        return NGX_OK as ngx_int_t;
    };
    let Some(zone) = mcf.zone.get() else {
        return NGX_OK as ngx_int_t;
    };
    if !mcf.sources.is_empty() && start_fetcher(cycle, mcf, zone) != NGX_OK as ngx_int_t {
        return NGX_ERROR as ngx_int_t;
    }
    if mcf.revocation.enabled() {
        match with_signals_blocked(|| sync::start(&mcf.revocation, &zone.revocations)) {
            Ok(s) => *REVOKER.lock().unwrap_or_else(|p| p.into_inner()) = Some(s),
            Err(e) => {
                log_alert!(cycle.log, "cannot start the revocation sync: {e}");
                return NGX_ERROR as ngx_int_t;
            }
        }
    }
    if let Some(redis) = &mcf.revocation.redis {
        let redis = std::sync::Arc::clone(redis);
        match with_signals_blocked(|| crate::replay::sync::start(redis, &zone.dpop_replay)) {
            Ok(s) => *SHARER.lock().unwrap_or_else(|p| p.into_inner()) = Some(s),
            Err(e) => {
                log_alert!(cycle.log, "cannot start the DPoP replay sharing: {e}");
                return NGX_ERROR as ngx_int_t;
            }
        }
    }
    match with_signals_blocked(|| crate::limit::sync::start(&mcf.limits, &zone.limits)) {
        Ok(s) => *LIMITER.lock().unwrap_or_else(|p| p.into_inner()) = s,
        Err(e) => {
            log_alert!(cycle.log, "cannot start the rate-limit sync: {e}");
            return NGX_ERROR as ngx_int_t;
        }
    }
    let limiter = LIMITER.lock().is_ok_and(|l| l.is_some());
    if !mcf.sources.is_empty() || mcf.revocation.enabled() || limiter {
        // SAFETY: the cycle's log outlives the worker's event loop.
        unsafe { start_log_timer(cycle.log) };
    }
    NGX_OK as ngx_int_t
}

/// Publishes the zone's keys, claims the slots left to claim, starts the fetcher.
fn start_fetcher(
    cycle: &ngx_cycle_t,
    mcf: &crate::conf::JwtMainConf,
    zone: &'static crate::zone::ZoneData,
) -> ngx_int_t {
    // The cycle has committed: sources the zone had no free slot for take over the slot of
    // a URI this configuration no longer names.
    let urls: Vec<&str> = mcf.sources.iter().map(|s| s.url()).collect();
    for source in mcf.sources.iter().filter(|s| s.slot.get().is_none()) {
        match zone.claim(source.url(), &urls, true) {
            Some(i) => {
                let _ = source.slot.set(i);
            }
            None => {
                log_alert!(cycle.log, "no zone slot for \"{}\"", source.url());
            }
        }
    }
    fetch::sync_all(&mcf.sources, zone);
    let started = with_signals_blocked(|| fetch::start(mcf.sources.clone(), zone));
    match started {
        Ok(fetcher) => *FETCHER.lock().unwrap_or_else(|p| p.into_inner()) = Some(fetcher),
        Err(e) => {
            log_alert!(cycle.log, "cannot start the key fetcher: {e}");
            return NGX_ERROR as ngx_int_t;
        }
    }
    NGX_OK as ngx_int_t
}

/// `exit_process`: stop and join the fetcher (bounded) and write what it left in the queue.
///
/// # Safety
/// NGINX calls it once as the worker exits.
pub unsafe extern "C" fn exit_process(cycle: *mut ngx_cycle_t) {
    // SAFETY: NGINX passes the live cycle.
    let log = unsafe { (*cycle).log };
    // Taken before the boundary: should anything in it panic, unwinding drops the fetcher,
    // which still stops and joins its thread (a static would keep it running).
    let fetcher = FETCHER.lock().unwrap_or_else(|p| p.into_inner()).take();
    let revoker = REVOKER.lock().unwrap_or_else(|p| p.into_inner()).take();
    let limiter = LIMITER.lock().unwrap_or_else(|p| p.into_inner()).take();
    let sharer = SHARER.lock().unwrap_or_else(|p| p.into_inner()).take();
    log::boundary("exit_process", log, (), move || {
        if let Some(sharer) = sharer {
            if let Err(bound) = sharer.stop() {
                let line = format!("DPoP replay sharing still running after {bound:?}");
                fetch::log(NGX_LOG_ALERT, line);
            }
        }
        if let Some(limiter) = limiter {
            if let Err(bound) = limiter.stop() {
                let line = format!("rate-limit sync still running after {bound:?}");
                fetch::log(NGX_LOG_ALERT, line);
            }
        }
        if let Some(revoker) = revoker {
            if let Err(bound) = revoker.stop() {
                let line = format!("revocation sync still running after {bound:?}");
                fetch::log(NGX_LOG_ALERT, line);
            }
        }
        if let Some(fetcher) = fetcher {
            let line = match fetcher.stop() {
                Ok(took) => (NGX_LOG_INFO, format!("key fetcher joined in {took:?}")),
                Err(bound) => (
                    NGX_LOG_ALERT,
                    format!("key fetcher still running after {bound:?}"),
                ),
            };
            fetch::log(line.0, line.1);
        }
        write_log(log);
    });
}

fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain libc calls on local, initialised signal sets; the previous mask is
    // restored for this (the main) thread right after the new thread inherited the blocked one.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let result = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        result
    }
}

fn write_log(log: *mut ngx_log_t) {
    for (level, line) in fetch::drain_log() {
        log_at!(level as usize, log, "{line}");
    }
}

/// # Safety
/// `log` must outlive the worker's event loop.
unsafe fn start_log_timer(log: *mut ngx_log_t) {
    // SAFETY: a zeroed event is NGINX's idle state; it lives for the rest of the process.
    let ev: &'static mut ngx_event_t = Box::leak(Box::new(unsafe { core::mem::zeroed() }));
    ev.handler = Some(on_log_timer);
    ev.log = log;
    ev.data = log.cast();
    // A cancelable timer does not hold up a graceful shutdown.
    ev.set_cancelable(1);
    // SAFETY: `ev` is initialised and never freed.
    unsafe { nginx_sys::ngx_add_timer(ev, LOG_INTERVAL_MS as _) };
}

extern "C" fn on_log_timer(ev: *mut ngx_event_t) {
    // SAFETY: NGINX passes the event set up in `start_log_timer`.
    let ev = unsafe { &mut *ev };
    log::boundary("log_timer", ev.log, (), || write_log(ev.data.cast()));
    // SAFETY: NGINX's process-state flags, read on the worker's main thread.
    let stopping = unsafe { ngx_exiting != 0 || ngx_quit != 0 || ngx_terminate != 0 };
    if !stopping {
        // SAFETY: as in `start_log_timer`.
        unsafe { nginx_sys::ngx_add_timer(ev, LOG_INTERVAL_MS as _) };
    }
}
