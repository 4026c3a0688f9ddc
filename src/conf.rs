//! Directives: the command table, and the merge of one level into the next.

use core::ffi::{c_char, c_void};
use core::{mem, ptr};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_uint_t, NGX_CONF_1MORE, NGX_CONF_2MORE, NGX_CONF_FLAG,
    NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE12, NGX_HTTP_LMT_CONF, NGX_HTTP_LOC_CONF,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_SRV_CONF,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ngx_string;

use self::directive::{Directive, Level};
use crate::log::log_emerg;

mod cmd;
pub(crate) mod directive;
pub(crate) mod ext;
mod loc;
pub(crate) mod remote;
mod revocation;
mod sender;
mod srv;

pub use self::loc::{JwtLocConf, JwtMainConf, Mode};
pub use self::srv::JwtSrvConf;

const ANY_LOC: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

/// One row of the table: a directive body (its level gives the `conf` offset), or one of
/// NGINX's slot setters writing a field.
macro_rules! command {
    ($name:literal, $type:expr, slot $kind:ident, $conf:ty, $field:ident) => {
        ngx_command_t {
            name: ngx_string!($name),
            type_: ($type) as ngx_uint_t,
            set: Some(directive::slot::<{ directive::$kind }>),
            conf: <$conf as Level>::OFFSET,
            offset: mem::offset_of!($conf, $field),
            post: ptr::null_mut(),
        }
    };
    ($name:literal, $type:expr, $body:ty) => {
        ngx_command_t {
            name: ngx_string!($name),
            type_: ($type) as ngx_uint_t,
            set: Some(directive::handler::<$body>),
            conf: <<$body as Directive>::Conf as Level>::OFFSET,
            offset: 0,
            post: ptr::null_mut(),
        }
    };
}

/// The directive table; `lib.rs` points the module at it.
pub static mut NGX_HTTP_AUTH_JWT_COMMANDS: [ngx_command_t; NCOMMANDS] = [
    command!(
        "auth_jwt",
        ANY_LOC | NGX_HTTP_LMT_CONF | NGX_CONF_TAKE12,
        cmd::AuthJwt
    ),
    command!(
        "auth_jwt_key_file",
        ANY_LOC | NGX_HTTP_LMT_CONF | NGX_CONF_TAKE1,
        cmd::KeyFile
    ),
    command!(
        "auth_jwt_type",
        ANY_LOC | NGX_HTTP_LMT_CONF | NGX_CONF_TAKE1,
        cmd::TokenTypeSet
    ),
    command!(
        "auth_jwt_key_request",
        ANY_LOC | NGX_HTTP_LMT_CONF | NGX_CONF_TAKE1,
        cmd::KeyRequest
    ),
    command!("auth_jwt_key_cache", ANY_LOC | NGX_CONF_TAKE1, slot SEC, JwtLocConf, key_cache),
    command!("auth_jwt_leeway", ANY_LOC | NGX_CONF_TAKE1, slot SEC, JwtLocConf, leeway),
    command!("auth_jwt_require_exp", ANY_LOC | NGX_CONF_FLAG, slot FLAG, JwtLocConf, require_exp),
    command!("auth_jwt_max_size", ANY_LOC | NGX_CONF_TAKE1, slot SIZE, JwtLocConf, max_size),
    command!("auth_jwt_issuer", ANY_LOC | NGX_CONF_1MORE, cmd::Issuers),
    command!(
        "auth_jwt_audience",
        ANY_LOC | NGX_CONF_1MORE,
        cmd::Audiences
    ),
    command!(
        "auth_jwt_algorithms",
        ANY_LOC | NGX_CONF_1MORE,
        cmd::Algorithms
    ),
    command!(
        "auth_jwt_require",
        ANY_LOC | NGX_HTTP_LMT_CONF | NGX_CONF_1MORE,
        cmd::Require
    ),
    command!(
        "auth_jwt_identity_header",
        ANY_LOC | NGX_CONF_2MORE,
        cmd::IdentityHeaderName
    ),
    command!(
        "auth_jwt_claim_set",
        NGX_HTTP_MAIN_CONF | NGX_CONF_2MORE,
        cmd::ClaimSet
    ),
    command!(
        "auth_jwt_header_set",
        NGX_HTTP_MAIN_CONF | NGX_CONF_2MORE,
        cmd::HeaderSet
    ),
    command!(
        "auth_jwt_cache",
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        cmd::Cache
    ),
    command!("auth_jwt_key_uri", ANY_LOC | NGX_CONF_1MORE, remote::KeyUri),
    command!(
        "auth_jwt_discovery",
        ANY_LOC | NGX_CONF_1MORE,
        remote::Discovery
    ),
    command!(
        "auth_jwt_trusted_certificate",
        ANY_LOC | NGX_CONF_TAKE1,
        remote::TrustedCertificate
    ),
    command!(
        "auth_jwt_fail_mode",
        ANY_LOC | NGX_CONF_TAKE1,
        cmd::FailModeSet
    ),
    command!(
        "auth_jwt_zone",
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        remote::ZoneSize
    ),
    command!(
        "auth_jwt_metrics",
        NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
        crate::report::Metrics
    ),
    command!(
        "auth_jwt_status",
        NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
        crate::report::StatusPage
    ),
    command!("auth_jwt_scope", ANY_LOC | NGX_CONF_1MORE, cmd::Scope),
    command!(
        "auth_jwt_resource_metadata",
        ANY_LOC | NGX_CONF_TAKE1,
        cmd::ResourceMetadata
    ),
    command!(
        "auth_jwt_revocation_file",
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        revocation::RevocationFile
    ),
    command!(
        "auth_jwt_revocation_redis",
        NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE,
        revocation::RevocationRedis
    ),
    command!(
        "auth_jwt_revocation_lifetime",
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        revocation::RevocationLifetime
    ),
    command!("auth_jwt_mtls", ANY_LOC | NGX_CONF_TAKE12, sender::Mtls),
    command!("auth_jwt_dpop", ANY_LOC | NGX_CONF_1MORE, sender::Dpop),
    ngx_command_t::empty(),
];

/// Directives, and the table's closing empty row.
const NCOMMANDS: usize = 31;

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
    // SAFETY: `cf->log` is the cycle's log during configuration.
    let log = unsafe { (*cf).log };
    crate::log::boundary("merge_loc_conf", log, NGX_CONF_ERROR, || {
        match conf.merge(prev) {
            Ok(()) => NGX_CONF_OK,
            Err(reason) => {
                log_emerg!(log, "{reason}");
                NGX_CONF_ERROR
            }
        }
    })
}
