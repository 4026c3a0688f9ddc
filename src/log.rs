//! Logging: one macro per level, all through NGINX's log with the prefix `auth_jwt: `.
//!
//! Levels follow the house rules: `emerg` for configuration and zone failures (in a
//! directive, [`log_conf!`] adds NGINX's `in "x" directive in file:line`), `error` for an
//! unusable key set, `warn` for fetch state changes, `info` for denials and key rotations,
//! `alert` for bugs (a caught panic), `debug` for the per-request flow. Every macro checks
//! the level before it formats anything, and `log_debug!` compiles to nothing unless NGINX
//! was built `--with-debug`. Nothing here ever receives a token or a secret.

/// Logs at `level` (an `NGX_LOG_*` value) to an `*mut ngx_log_t`.
macro_rules! log_at {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ::ngx::ngx_log_error!($level, $log, "auth_jwt: {}", format_args!($($arg)+))
    };
}

macro_rules! log_alert {
    ($log:expr, $($arg:tt)+) => { $crate::log::log_at!(::nginx_sys::NGX_LOG_ALERT, $log, $($arg)+) };
}

macro_rules! log_emerg {
    ($log:expr, $($arg:tt)+) => { $crate::log::log_at!(::nginx_sys::NGX_LOG_EMERG, $log, $($arg)+) };
}

macro_rules! log_info {
    ($log:expr, $($arg:tt)+) => { $crate::log::log_at!(::nginx_sys::NGX_LOG_INFO, $log, $($arg)+) };
}

macro_rules! log_warn {
    ($log:expr, $($arg:tt)+) => { $crate::log::log_at!(::nginx_sys::NGX_LOG_WARN, $log, $($arg)+) };
}

/// `debug_http` lines: the request path's flow. Free without `--with-debug`.
macro_rules! log_debug {
    ($log:expr, $($arg:tt)+) => {
        ::ngx::ngx_log_debug!(
            mask: ::ngx::log::DebugMask::Http,
            $log,
            "auth_jwt: {}",
            format_args!($($arg)+)
        )
    };
}

/// A line about the directive being parsed (`cf`: its `*mut ngx_conf_t`); NGINX appends
/// ` in <file>:<line>`.
macro_rules! log_conf {
    ($level:expr, $cf:expr, $($arg:tt)+) => {
        ::ngx::ngx_conf_log_error!($level, $cf, $($arg)+)
    };
}

pub(crate) use {log_alert, log_at, log_conf, log_debug, log_emerg, log_info, log_warn};

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    /// The last panic's message and place, kept by the hook for the `alert` line.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the default panic hook (which writes to stderr) by one that keeps the message
/// for [`contain`] to log; installed once per process.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let text = info.to_string().replace('\n', " ");
            LAST_PANIC.with_borrow_mut(|last| *last = Some(text));
        }));
    });
}

/// Runs `f`, turning a panic into the panic's message (see [`install_panic_hook`]); a bug
/// must never unwind into NGINX. `site` names the boundary: in `test-panic` builds, the
/// environment variable `AUTH_JWT_TEST_PANIC=<site>` makes it panic, which t/panic.rs uses to
/// prove each one.
pub fn catch<T>(site: &'static str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        #[cfg(feature = "test-panic")]
        if std::env::var("AUTH_JWT_TEST_PANIC").is_ok_and(|v| v == site) {
            panic!("auth_jwt test-panic trigger at {site}");
        }
        let _ = site;
        f()
    }))
    .map_err(|_| {
        LAST_PANIC
            .with_borrow_mut(Option::take)
            .unwrap_or_else(|| "unknown panic".into())
    })
}

/// The boundary of every function NGINX calls (hooks, handlers, variable handlers, timers,
/// zone set-up): runs `f` under [`catch`], turning a panic into an `alert` line and
/// `fallback`, so that the worker keeps serving.
pub fn boundary<T>(
    site: &'static str,
    log: *mut nginx_sys::ngx_log_t,
    fallback: T,
    f: impl FnOnce() -> T,
) -> T {
    catch(site, f).unwrap_or_else(|panic| {
        log_alert!(log, "bug: panic caught at the NGINX boundary: {panic}");
        fallback
    })
}
