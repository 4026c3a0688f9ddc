//! Directives: the command table, the configuration structures and their merge.

use core::ffi::{c_char, c_void, CStr};
use core::{mem, ptr};
use std::sync::Arc;

use nginx_sys::{
    ngx_command_t, ngx_conf_set_flag_slot, ngx_conf_set_sec_slot, ngx_conf_set_size_slot,
    ngx_conf_t, ngx_flag_t, ngx_uint_t, time_t, NGX_CONF_1MORE, NGX_CONF_2MORE, NGX_CONF_FLAG,
    NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE12, NGX_CONF_UNSET, NGX_HTTP_LMT_CONF,
    NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET,
    NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::HttpModuleMainConf;
use ngx::{ngx_log_error, ngx_string};

use self::ext::{args, complex_value, fail, full_path, ComplexValue};
use self::value::{
    parse_algorithms, parse_auth_jwt, parse_cache, parse_fail_mode, parse_header_name, parse_path,
    parse_require, parse_variable_name, AuthJwtArgs, FailMode, RequireError,
};
use crate::jwks;
use crate::jwt::alg::AlgSet;
use crate::jwt::verify::KeySet;
use crate::keys::RemoteSource;
use crate::metrics::FileReport;
use crate::HttpAuthJwtModule;

pub mod ext;
pub mod remote;
pub mod value;

/// Default `auth_jwt_max_size`.
const DEFAULT_MAX_SIZE: usize = 16 * 1024;
/// Largest key file read at start-up.
const MAX_KEY_FILE: u64 = 1024 * 1024;
const NGX_CONF_UNSET_SIZE: usize = usize::MAX;

/// Where a JSON value for a `auth_jwt_claim_set`/`auth_jwt_header_set` variable comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Claims,
    Header,
}

/// A variable defined by `auth_jwt_claim_set` or `auth_jwt_header_set`.
#[derive(Debug)]
pub struct PathVar {
    pub source: Source,
    pub path: Vec<String>,
}

/// Default `auth_jwt_cache` size, per worker.
const DEFAULT_CACHE_ENTRIES: usize = 1024;

/// `http`-level configuration.
#[derive(Debug)]
pub struct JwtMainConf {
    /// `auth_jwt_cache`: `None` until set, `Some(0)` for `off`.
    pub cache: Option<usize>,
    /// Every remote key source of the configuration, once each.
    pub sources: Vec<Arc<RemoteSource>>,
    /// `auth_jwt_zone` size (`NGX_CONF_UNSET_SIZE` until set).
    pub zone_size: usize,
    /// Every `auth_jwt_key_file`, for the status page.
    pub files: Vec<FileReport>,
    /// Boxed so that the address handed to NGINX as variable data never moves.
    #[allow(clippy::vec_box)]
    pub vars: Vec<Box<PathVar>>,
}

impl Default for JwtMainConf {
    fn default() -> Self {
        Self {
            cache: None,
            sources: Vec::new(),
            zone_size: NGX_CONF_UNSET_SIZE,
            files: Vec::new(),
            vars: Vec::new(),
        }
    }
}

impl JwtMainConf {
    /// Entries of each worker's verified-token cache; 0 when off.
    pub fn cache_entries(&self) -> usize {
        self.cache.unwrap_or(DEFAULT_CACHE_ENTRIES)
    }
}

/// `auth_jwt` state of a location.
#[derive(Debug, Clone)]
pub enum Mode {
    Off,
    On {
        realm: ComplexValue,
        token: Option<ComplexValue>,
        /// `file:line` of the directive, for errors found at merge time.
        declared_at: String,
    },
}

/// One `auth_jwt_require` directive.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub values: Vec<ComplexValue>,
    pub error: RequireError,
}

/// One `auth_jwt_identity_header` directive.
#[derive(Debug, Clone)]
pub struct IdentityHeader {
    pub name: String,
    pub lowcase: String,
    pub claim: Vec<String>,
}

/// `http`/`server`/`location`/`limit_except` configuration. `None` and the NGINX `UNSET`
/// values mean "inherit" until merge.
#[derive(Debug)]
pub struct JwtLocConf {
    pub mode: Option<Mode>,
    pub keys: Option<Arc<KeySet>>,
    pub leeway: time_t,
    pub require_exp: ngx_flag_t,
    pub max_size: usize,
    pub issuers: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub algorithms: Option<AlgSet>,
    pub requires: Option<Vec<Requirement>>,
    pub identity: Option<Vec<IdentityHeader>>,
    /// `auth_jwt_key_uri` and `auth_jwt_discovery` sources.
    pub remote: Option<Vec<Arc<RemoteSource>>>,
    /// `auth_jwt_trusted_certificate`, resolved to a full path.
    pub trusted_certificate: Option<String>,
    pub fail_mode: Option<FailMode>,
}

impl Default for JwtLocConf {
    fn default() -> Self {
        Self {
            mode: None,
            keys: None,
            leeway: NGX_CONF_UNSET as time_t,
            require_exp: NGX_CONF_UNSET as ngx_flag_t,
            max_size: NGX_CONF_UNSET_SIZE,
            issuers: None,
            audiences: None,
            algorithms: None,
            requires: None,
            identity: None,
            remote: None,
            trusted_certificate: None,
            fail_mode: None,
        }
    }
}

impl JwtLocConf {
    /// Fills what this level left unset from the enclosing level and applies defaults.
    pub fn merge(&mut self, prev: &Self) -> Result<(), String> {
        fn inherit<T: Clone>(this: &mut Option<T>, prev: &Option<T>) {
            if this.is_none() {
                this.clone_from(prev);
            }
        }
        inherit(&mut self.mode, &prev.mode);
        inherit(&mut self.keys, &prev.keys);
        inherit(&mut self.issuers, &prev.issuers);
        inherit(&mut self.audiences, &prev.audiences);
        inherit(&mut self.algorithms, &prev.algorithms);
        inherit(&mut self.requires, &prev.requires);
        inherit(&mut self.identity, &prev.identity);
        inherit(&mut self.remote, &prev.remote);
        inherit(&mut self.trusted_certificate, &prev.trusted_certificate);
        inherit(&mut self.fail_mode, &prev.fail_mode);
        for source in self.remote.iter().flatten() {
            let ca = source
                .ca_file
                .get_or_init(|| self.trusted_certificate.clone());
            if *ca != self.trusted_certificate {
                return Err(format!(
                    "\"{}\" is used with different \"auth_jwt_trusted_certificate\" values",
                    source.url()
                ));
            }
        }
        let unset = |v: i64| v == NGX_CONF_UNSET as i64;
        if unset(self.leeway) {
            self.leeway = if unset(prev.leeway) { 0 } else { prev.leeway };
        }
        if unset(self.require_exp as i64) {
            self.require_exp = if unset(prev.require_exp as i64) {
                1
            } else {
                prev.require_exp
            };
        }
        if self.max_size == NGX_CONF_UNSET_SIZE {
            self.max_size = match prev.max_size {
                NGX_CONF_UNSET_SIZE => DEFAULT_MAX_SIZE,
                size => size,
            };
        }
        let no_files = self.keys.as_ref().is_none_or(|k| k.is_empty());
        let no_remote = self.remote.as_ref().is_none_or(Vec::is_empty);
        match &self.mode {
            Some(Mode::On { declared_at, .. }) if no_files && no_remote => Err(format!(
                "\"auth_jwt\" in {declared_at} has no keys: add \"auth_jwt_key_file\", \"auth_jwt_key_uri\" or \"auth_jwt_discovery\" at its level or above"
            )),
            _ => Ok(()),
        }
    }

    /// The algorithms a token may use here.
    pub fn algorithms(&self) -> AlgSet {
        self.algorithms.unwrap_or_else(AlgSet::all)
    }
}

const ANY_LOC: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

macro_rules! command {
    ($name:literal, $type:expr, $set:expr, $conf:expr, $offset:expr) => {
        ngx_command_t {
            name: ngx_string!($name),
            type_: ($type) as ngx_uint_t,
            set: Some($set),
            conf: $conf,
            offset: $offset,
            post: ptr::null_mut(),
        }
    };
}

/// The directive table; `lib.rs` points the module at it.
pub static mut NGX_HTTP_AUTH_JWT_COMMANDS: [ngx_command_t; 21] = [
    command!(
        "auth_jwt",
        ANY_LOC | NGX_HTTP_LMT_CONF | NGX_CONF_TAKE12,
        cmd_set_auth_jwt,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_key_file",
        ANY_LOC | NGX_HTTP_LMT_CONF | NGX_CONF_TAKE1,
        cmd_add_key_file,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_leeway",
        ANY_LOC | NGX_CONF_TAKE1,
        cmd_slot::<SEC>,
        NGX_HTTP_LOC_CONF_OFFSET,
        mem::offset_of!(JwtLocConf, leeway)
    ),
    command!(
        "auth_jwt_require_exp",
        ANY_LOC | NGX_CONF_FLAG,
        cmd_slot::<FLAG>,
        NGX_HTTP_LOC_CONF_OFFSET,
        mem::offset_of!(JwtLocConf, require_exp)
    ),
    command!(
        "auth_jwt_max_size",
        ANY_LOC | NGX_CONF_TAKE1,
        cmd_slot::<SIZE>,
        NGX_HTTP_LOC_CONF_OFFSET,
        mem::offset_of!(JwtLocConf, max_size)
    ),
    command!(
        "auth_jwt_issuer",
        ANY_LOC | NGX_CONF_1MORE,
        cmd_set_list,
        NGX_HTTP_LOC_CONF_OFFSET,
        mem::offset_of!(JwtLocConf, issuers)
    ),
    command!(
        "auth_jwt_audience",
        ANY_LOC | NGX_CONF_1MORE,
        cmd_set_list,
        NGX_HTTP_LOC_CONF_OFFSET,
        mem::offset_of!(JwtLocConf, audiences)
    ),
    command!(
        "auth_jwt_algorithms",
        ANY_LOC | NGX_CONF_1MORE,
        cmd_set_algorithms,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_require",
        ANY_LOC | NGX_HTTP_LMT_CONF | NGX_CONF_1MORE,
        cmd_add_require,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_identity_header",
        ANY_LOC | NGX_CONF_2MORE,
        cmd_add_identity_header,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_claim_set",
        NGX_HTTP_MAIN_CONF | NGX_CONF_2MORE,
        cmd_add_path_var::<CLAIMS>,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_header_set",
        NGX_HTTP_MAIN_CONF | NGX_CONF_2MORE,
        cmd_add_path_var::<HEADER>,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_cache",
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        cmd_set_cache,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_key_uri",
        ANY_LOC | NGX_CONF_1MORE,
        remote::cmd_add_source::<JWKS>,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_discovery",
        ANY_LOC | NGX_CONF_1MORE,
        remote::cmd_add_source::<DISCOVERY>,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_trusted_certificate",
        ANY_LOC | NGX_CONF_TAKE1,
        remote::cmd_set_trusted_certificate,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_fail_mode",
        ANY_LOC | NGX_CONF_TAKE1,
        cmd_set_fail_mode,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_zone",
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        cmd_slot::<SIZE>,
        NGX_HTTP_MAIN_CONF_OFFSET,
        mem::offset_of!(JwtMainConf, zone_size)
    ),
    command!(
        "auth_jwt_metrics",
        NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
        crate::report::cmd_set_metrics,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_status",
        NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
        crate::report::cmd_set_status,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    ngx_command_t::empty(),
];

const SEC: u8 = 0;
const FLAG: u8 = 1;
const SIZE: u8 = 2;
const JWKS: bool = false;
const DISCOVERY: bool = true;
const CLAIMS: bool = true;
const HEADER: bool = false;

/// NGINX's slot setters, with their errors reworded in the module's one style.
extern "C" fn cmd_slot<const KIND: u8>(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: NGINX calls this with the directive's own `cf`, `cmd` and the location
    // configuration at `cmd->offset`, as the slot setters require.
    let rv = unsafe {
        match KIND {
            SEC => ngx_conf_set_sec_slot(cf, cmd, conf),
            FLAG => ngx_conf_set_flag_slot(cf, cmd, conf),
            _ => ngx_conf_set_size_slot(cf, cmd, conf),
        }
    };
    if rv.is_null() {
        return NGX_CONF_OK;
    }
    if rv == NGX_CONF_ERROR {
        // The setter has logged its own message.
        return rv;
    }
    // SAFETY: any other result of a slot setter is a static NUL-terminated string.
    let reason = unsafe { CStr::from_ptr(rv) }.to_string_lossy();
    // SAFETY: `cf` is the directive's context, as above.
    match unsafe { args(cf) } {
        Ok((name, args)) if reason == "invalid value" => {
            let value = args.first().copied().unwrap_or_default();
            fail(cf, name, format_args!("invalid value \"{value}\""))
        }
        Ok((name, _)) => fail(cf, name, reason),
        Err(e) => fail(cf, "auth_jwt", e),
    }
}

/// Sets a directive's value once per level; a second one is NGINX's "is duplicate".
pub(crate) fn set_once<T, E: core::fmt::Display>(
    field: &mut Option<T>,
    parse: impl FnOnce() -> Result<T, E>,
) -> Result<(), String> {
    if field.is_some() {
        return Err("is duplicate".into());
    }
    *field = Some(parse().map_err(|e| e.to_string())?);
    Ok(())
}

/// Turns the directive handler's body into NGINX's return convention.
fn finish(cf: *mut ngx_conf_t, name: &str, result: Result<(), String>) -> *mut c_char {
    match result {
        Ok(()) => NGX_CONF_OK,
        Err(reason) => fail(cf, name, reason),
    }
}

/// Runs `body` with the directive's name, arguments and typed configuration.
///
/// # Safety
/// `conf` must point at a `T` allocated by this module's create_*_conf.
pub(crate) unsafe fn with_conf<T>(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
    body: impl FnOnce(&mut T, &[&str]) -> Result<(), String>,
) -> *mut c_char {
    // SAFETY: the caller guarantees `cf` is the directive's context.
    let (name, args) = match unsafe { args(cf) } {
        Ok(a) => a,
        Err(e) => return fail(cf, "auth_jwt", e),
    };
    // SAFETY: the caller guarantees `conf` points at a live `T`.
    let conf = unsafe { &mut *conf.cast::<T>() };
    let result = crate::log::catch(|| body(conf, &args))
        .unwrap_or_else(|panic| Err(format!("bug: panic while parsing: {panic}")));
    finish(cf, name, result)
}

extern "C" fn cmd_set_auth_jwt(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            if lcf.mode.is_some() {
                return Err("is duplicate".into());
            }
            lcf.mode = Some(match parse_auth_jwt(args).map_err(|e| e.to_string())? {
                AuthJwtArgs::Off => Mode::Off,
                AuthJwtArgs::On { realm, token } => Mode::On {
                    realm: complex_value(cf, realm).ok_or("invalid realm")?,
                    token: match token {
                        Some(t) => Some(complex_value(cf, t).ok_or("invalid token variable")?),
                        None => None,
                    },
                    declared_at: conf_position(cf),
                },
            });
            Ok(())
        })
    }
}

extern "C" fn cmd_add_key_file(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            let path = full_path(cf, args[0]).ok_or("cannot resolve path")?;
            let parsed = read_key_file(&path).map_err(|e| format!("\"{path}\": {e}"))?;
            for skipped in &parsed.skipped {
                ngx_log_error!(
                    nginx_sys::NGX_LOG_WARN,
                    (*cf).log,
                    "auth_jwt: \"{path}\": key not used: {skipped}"
                );
            }
            if let Some(mcf) = HttpAuthJwtModule::main_conf_mut(&*cf) {
                let keys = parsed.keys.keys();
                mcf.files.push(FileReport {
                    path: path.clone(),
                    kids: keys.iter().filter_map(|k| k.kid.clone()).collect(),
                    algorithms: parsed.keys.algorithms().iter().map(|a| a.name()).collect(),
                });
            }
            match &mut lcf.keys {
                None => lcf.keys = Some(Arc::new(parsed.keys)),
                // Unique while this level is parsed: merge has not shared it yet.
                Some(keys) => Arc::get_mut(keys)
                    .ok_or("key set already shared")?
                    .extend(parsed.keys),
            }
            Ok(())
        })
    }
}

fn read_key_file(path: &str) -> Result<jwks::Parsed, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err("file is larger than 1 MiB".into());
    }
    let parsed = jwks::parse_key_file(&bytes).map_err(|e| e.to_string())?;
    if parsed.keys.is_empty() {
        return Err("no usable keys".into());
    }
    Ok(parsed)
}

extern "C" fn cmd_set_list(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: `cmd->offset` names an `Option<Vec<String>>` field of the JwtLocConf at `conf`.
    unsafe {
        let field = conf.byte_add((*cmd).offset).cast::<Option<Vec<String>>>();
        with_conf(cf, conf, |_: &mut JwtLocConf, args| {
            set_once(&mut *field, || {
                Ok::<_, String>(args.iter().map(|a| (*a).to_owned()).collect())
            })
        })
    }
}

extern "C" fn cmd_set_algorithms(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            set_once(&mut lcf.algorithms, || parse_algorithms(args))
        })
    }
}

extern "C" fn cmd_add_require(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            let (values, error) = parse_require(args).map_err(|e| e.to_string())?;
            let values = values
                .into_iter()
                .map(|v| complex_value(cf, v).ok_or_else(|| format!("invalid value \"{v}\"")))
                .collect::<Result<_, _>>()?;
            lcf.requires
                .get_or_insert_with(Vec::new)
                .push(Requirement { values, error });
            Ok(())
        })
    }
}

extern "C" fn cmd_add_identity_header(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            let lowcase = parse_header_name(args[0]).map_err(|e| e.to_string())?;
            let claim = parse_path(&args[1..]).map_err(|e| e.to_string())?;
            let headers = lcf.identity.get_or_insert_with(Vec::new);
            if headers.iter().any(|h| h.lowcase == lowcase) {
                return Err(format!("header \"{}\" is duplicate", args[0]));
            }
            headers.push(IdentityHeader {
                name: args[0].to_owned(),
                lowcase,
                claim,
            });
            Ok(())
        })
    }
}

extern "C" fn cmd_add_path_var<const FROM_CLAIMS: bool>(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_MAIN_CONF_OFFSET, so `conf` is a JwtMainConf.
    unsafe {
        with_conf(cf, conf, |mcf: &mut JwtMainConf, args| {
            let name = parse_variable_name(args[0]).map_err(|e| e.to_string())?;
            let source = if FROM_CLAIMS {
                Source::Claims
            } else {
                Source::Header
            };
            let var = Box::new(PathVar {
                source,
                path: parse_path(&args[1..]).map_err(|e| e.to_string())?,
            });
            crate::variables::add_path_var(cf, name, &var).ok_or("cannot add variable")?;
            mcf.vars.push(var);
            Ok(())
        })
    }
}

extern "C" fn cmd_set_fail_mode(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_LOC_CONF_OFFSET, so `conf` is a JwtLocConf.
    unsafe {
        with_conf(cf, conf, |lcf: &mut JwtLocConf, args| {
            set_once(&mut lcf.fail_mode, || parse_fail_mode(args[0]))
        })
    }
}

extern "C" fn cmd_set_cache(
    cf: *mut ngx_conf_t,
    _: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: registered with NGX_HTTP_MAIN_CONF_OFFSET, so `conf` is a JwtMainConf.
    unsafe {
        with_conf(cf, conf, |mcf: &mut JwtMainConf, args| {
            set_once(&mut mcf.cache, || parse_cache(args[0]))
        })
    }
}

/// `file:line` of the directive being parsed.
fn conf_position(cf: *mut ngx_conf_t) -> String {
    // SAFETY: during parsing `cf->conf_file` is the file being read.
    unsafe {
        let file = &*(*cf).conf_file;
        format!("{}:{}", file.file.name.to_str().unwrap_or("?"), file.line)
    }
}

/// Merges a location level and logs why it failed, which ngx 0.5.1's default merge does not.
///
/// # Safety
/// Called by NGINX with two `JwtLocConf` made by this module's create_loc_conf.
pub unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    prev: *mut c_void,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: see the function's contract.
    let (prev, conf) = unsafe { (&*prev.cast::<JwtLocConf>(), &mut *conf.cast::<JwtLocConf>()) };
    match conf.merge(prev) {
        Ok(()) => NGX_CONF_OK,
        Err(reason) => {
            // SAFETY: `cf->log` is the cycle's log during configuration.
            ngx_log_error!(NGX_LOG_EMERG, unsafe { (*cf).log }, "{reason}");
            NGX_CONF_ERROR
        }
    }
}
