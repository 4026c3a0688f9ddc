//! The one `extern "C"` shell of every directive, and what a directive body may ask of NGINX.
//!
//! A directive is a table row (`conf.rs`), a pure parser (`auth_jwt_core::directive`) and a
//! body: `fn set(&Cf, &mut Conf, args) -> Result<(), Error>`, declared with [`directive!`].
//! The row takes the configuration offset from the body's `Conf` type, so a body can never be
//! handed another level's structure.

use core::ffi::{c_char, c_void, CStr};
use core::fmt;

use nginx_sys::{
    ngx_command_t, ngx_conf_set_flag_slot, ngx_conf_set_sec_slot, ngx_conf_set_size_slot,
    ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_get_variable_index, ngx_http_request_t, ngx_int_t,
    ngx_parse_size, ngx_str_t, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF_OFFSET, NGX_LOG_EMERG,
    NGX_LOG_WARN,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::{
    HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, NgxHttpCoreModule,
};

use super::ext::{self, ComplexValue};
use super::loc::{JwtLocConf, JwtMainConf};
use super::srv::JwtSrvConf;
use crate::error::{Error, OrNoMemory};
use crate::log::{boundary, log_conf};
use crate::variables::PathVar;
use crate::HttpAuthJwtModule;

/// A configuration structure a directive writes, and where NGINX keeps it.
pub trait Level {
    /// The `conf` field of the directive's table row.
    const OFFSET: usize;
}

impl Level for JwtLocConf {
    const OFFSET: usize = NGX_HTTP_LOC_CONF_OFFSET;
}

impl Level for JwtMainConf {
    const OFFSET: usize = NGX_HTTP_MAIN_CONF_OFFSET;
}

/// A directive's body; its table row points at [`handler::<Self>`](handler).
pub trait Directive {
    type Conf: Level;
    fn set(cf: &mut Cf, conf: &mut Self::Conf, args: &[&str]) -> Result<(), Error>;
}

/// Declares a unit type implementing [`Directive`] with the given body.
macro_rules! directive {
    ($(#[$doc:meta])* $name:ident($cf:pat, $conf:tt: $ty:ty, $args:pat) $body:block) => {
        $(#[$doc])*
        pub struct $name;

        impl $crate::conf::directive::Directive for $name {
            type Conf = $ty;
            fn set(
                $cf: &mut $crate::conf::directive::Cf,
                $conf: &mut $ty,
                $args: &[&str],
            ) -> Result<(), $crate::error::Error> $body
        }
    };
}
pub(crate) use directive;

/// The directive handler NGINX calls for every custom directive: converts NGINX's pointers
/// once, runs the body behind the panic boundary, and turns its error into NGINX's
/// `[emerg] <reason> in "<directive>" directive in <file>:<line>`.
///
/// # Safety
/// NGINX calls it with the live configuration context and, at the row's offset, the
/// `D::Conf` that this module's create_*_conf made.
pub unsafe extern "C" fn handler<D: Directive>(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: NGINX calls directive handlers with a live configuration context.
    let log = unsafe { (*cf).log };
    boundary("directive", log, NGX_CONF_ERROR, || {
        // SAFETY: as above; the arguments live in the configuration pool.
        let (name, args) = match unsafe { ext::args(cf) } {
            Ok(parsed) => parsed,
            // SAFETY: as above.
            Err(e) => return unsafe { fail(cf, "auth_jwt", &Error::Refused(e)) },
        };
        // SAFETY: the table row registers this handler with `D::Conf::OFFSET`, so `conf` is
        // NGINX's `D::Conf` for this level, not otherwise borrowed during the call.
        let conf = unsafe { &mut *conf.cast::<D::Conf>() };
        match D::set(&mut Cf(cf), conf, &args) {
            Ok(()) => NGX_CONF_OK,
            Err(Error::Logged) => NGX_CONF_ERROR,
            // SAFETY: as above.
            Err(e) => unsafe { fail(cf, name, &e) },
        }
    })
}

/// `[emerg] <reason> in "<directive>" directive` (NGINX appends the file and line).
///
/// # Safety
/// `cf` must be the live configuration context of the directive being parsed.
unsafe fn fail(cf: *mut ngx_conf_t, directive: &str, reason: &Error) -> *mut c_char {
    log_conf!(NGX_LOG_EMERG, cf, "{reason} in \"{directive}\" directive");
    NGX_CONF_ERROR
}

/// The handler of a directive whose value is a plain time, flag or size: NGINX's setter, with its errors reworded in the
/// module's one style.
///
/// # Safety
/// As NGINX's slot setters: `cmd->offset` is a field of `conf` of the setter's type.
pub unsafe extern "C" fn slot<const KIND: u8>(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: NGINX calls directive handlers with a live configuration context.
    let log = unsafe { (*cf).log };
    boundary("directive", log, NGX_CONF_ERROR, || {
        // SAFETY: per the contract.
        match unsafe { set_slot(KIND, cf, cmd, conf) } {
            Ok(()) => NGX_CONF_OK,
            Err(Error::Logged) => NGX_CONF_ERROR,
            Err(e) => {
                // SAFETY: as above.
                let name = unsafe { ext::args(cf) }.map_or("auth_jwt", |(name, _)| name);
                // SAFETY: as above.
                unsafe { fail(cf, name, &e) }
            }
        }
    })
}

/// The `KIND` of [`slot`]: NGINX's setter for a time in seconds, a flag, or a size.
pub const SEC: u8 = 0;
pub const FLAG: u8 = 1;
pub const SIZE: u8 = 2;

/// # Safety
/// As [`slot`]'s.
unsafe fn set_slot(
    kind: u8,
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> Result<(), Error> {
    // SAFETY: per the contract.
    let rv = unsafe {
        match kind {
            SEC => ngx_conf_set_sec_slot(cf, cmd, conf),
            FLAG => ngx_conf_set_flag_slot(cf, cmd, conf),
            _ => ngx_conf_set_size_slot(cf, cmd, conf),
        }
    };
    if rv.is_null() {
        return Ok(());
    }
    if rv == NGX_CONF_ERROR {
        return Err(Error::Logged);
    }
    // SAFETY: any other result of a slot setter is a static NUL-terminated string.
    let reason = unsafe { CStr::from_ptr(rv) }.to_string_lossy();
    if reason == "invalid value" {
        // SAFETY: `cf` is the directive's context.
        let value = unsafe { ext::args(cf) }
            .ok()
            .and_then(|(_, args)| args.first().copied())
            .unwrap_or_default();
        return Err(Error::Refused(format!("invalid value \"{value}\"")));
    }
    Err(Error::Refused(reason.into_owned()))
}

/// Sets a directive's value once per level; a second one is NGINX's "is duplicate".
pub fn set_once<T, E: Into<Error>>(
    field: &mut Option<T>,
    parse: impl FnOnce() -> Result<T, E>,
) -> Result<(), Error> {
    if field.is_some() {
        return Err(Error::Duplicate);
    }
    *field = Some(parse().map_err(Into::into)?);
    Ok(())
}

/// The configuration context of the directive being parsed, for the duration of its body.
pub struct Cf(*mut ngx_conf_t);

impl Cf {
    /// Compiles `value` (which may hold `$variables`) into a complex value.
    pub fn complex_value(&self, value: &str, what: &str) -> Result<ComplexValue, Error> {
        // SAFETY: `self.0` is the live context of the directive being parsed.
        unsafe { ext::complex_value(self.0, value) }
            .ok_or_else(|| Error::Refused(format!("invalid {what} \"{value}\"")))
    }

    /// The index of variable `$name` (NGINX adds it to the indexed variables if need be).
    pub fn variable_index(&self, name: &str) -> Result<usize, Error> {
        let mut name = ngx_str_t {
            len: name.len(),
            data: name.as_ptr().cast_mut(),
        };
        // SAFETY: as above; NGINX copies the name into the configuration pool.
        let index = unsafe { ngx_http_get_variable_index(self.0, &mut name) };
        usize::try_from(index).map_err(|_| Error::NoMemory)
    }

    /// `path` resolved against the configuration prefix, as NGINX does for file arguments.
    pub fn full_path(&self, path: &str) -> Result<String, Error> {
        // SAFETY: as above.
        unsafe { ext::full_path(self.0, path) }.ok_or_else(|| "cannot resolve path".into())
    }

    /// A size in NGINX's syntax (`512k`, `16m`), read by NGINX's own parser.
    pub fn parse_size(&self, value: &str) -> Result<usize, Error> {
        let mut text = ngx_str_t {
            len: value.len(),
            data: value.as_ptr().cast_mut(),
        };
        // SAFETY: `ngx_parse_size` only reads `len` bytes at `data`.
        let size = unsafe { ngx_parse_size(&mut text) };
        usize::try_from(size).map_err(|_| Error::Refused(format!("invalid value \"{value}\"")))
    }

    /// `file:line` of the directive being parsed.
    pub fn position(&self) -> String {
        // SAFETY: during parsing `cf->conf_file` is the file being read.
        let file = unsafe { &*(*self.0).conf_file };
        format!("{}:{}", file.file.name.to_str().unwrap_or("?"), file.line)
    }

    /// A `[warn]` about the directive being parsed (NGINX appends the file and line).
    pub fn warn(&self, message: fmt::Arguments<'_>) {
        log_conf!(NGX_LOG_WARN, self.0, "{message}");
    }

    /// The module's `http`-level configuration. Only for directives of another level:
    /// a `JwtMainConf` directive has it as its own `conf`.
    pub fn main_conf(&mut self) -> Result<&mut JwtMainConf, Error> {
        // SAFETY: as above; the main configuration is not the body's `conf` (see above) and
        // nothing else borrows it while a directive is parsed.
        HttpAuthJwtModule::main_conf_mut(unsafe { &*self.0 }).ok_or(Error::NoMemory)
    }

    /// The configuration of the enclosing `server` (inside a location, its server's).
    pub fn server_conf(&mut self) -> Result<&mut JwtSrvConf, Error> {
        // SAFETY: during parsing `cf->ctx` is the enclosing block's context; its `srv_conf`
        // is the server's, which is not the body's `conf` (a location's or http's).
        unsafe { (*self.0).ctx.cast::<ngx_http_conf_ctx_t>().as_ref() }
            .and_then(HttpAuthJwtModule::server_conf_mut)
            .ok_or(Error::NoMemory)
    }

    /// Makes the enclosing location a content handler (`auth_jwt_metrics`, `auth_jwt_status`).
    pub fn set_content_handler(
        &self,
        handler: unsafe extern "C" fn(*mut ngx_http_request_t) -> ngx_int_t,
    ) -> Result<(), Error> {
        // SAFETY: as above.
        let clcf = NgxHttpCoreModule::location_conf_mut(unsafe { &*self.0 }).or_no_memory()?;
        clcf.handler = Some(handler);
        Ok(())
    }

    /// Adds `$name` reading `var`, which must stay at its address for the cycle.
    pub fn add_path_var(&self, name: &str, var: &PathVar) -> Result<(), Error> {
        // SAFETY: as above; the caller keeps `var` boxed in the main configuration.
        unsafe { crate::variables::add_path_var(self.0, name, var) }.or_no_memory()
    }
}
