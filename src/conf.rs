//! Directives: the command table, and the merge of one level into the next.

use core::ffi::{c_char, c_void};
use core::{mem, ptr};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_uint_t, NGX_CONF_1MORE, NGX_CONF_2MORE, NGX_CONF_FLAG,
    NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE12, NGX_HTTP_LMT_CONF, NGX_HTTP_LOC_CONF,
    NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_SRV_CONF,
    NGX_LOG_EMERG,
};
use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::{ngx_log_error, ngx_string};

use self::cmd::*;

mod cmd;
pub(crate) mod ext;
mod loc;
pub(crate) mod remote;
mod revocation;
mod srv;

pub use self::loc::{JwtLocConf, JwtMainConf, Mode};
pub use self::srv::JwtSrvConf;

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
pub static mut NGX_HTTP_AUTH_JWT_COMMANDS: [ngx_command_t; 26] = [
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
        cmd_set_list::<ISSUERS>,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_audience",
        ANY_LOC | NGX_CONF_1MORE,
        cmd_set_list::<AUDIENCES>,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
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
        remote::cmd_set_zone,
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
    command!(
        "auth_jwt_scope",
        ANY_LOC | NGX_CONF_1MORE,
        cmd_set_scope,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_resource_metadata",
        ANY_LOC | NGX_CONF_TAKE1,
        cmd_set_resource_metadata,
        NGX_HTTP_LOC_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_revocation_file",
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        revocation::cmd_set_file,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_revocation_redis",
        NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE,
        revocation::cmd_set_redis,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0
    ),
    command!(
        "auth_jwt_revocation_lifetime",
        NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1,
        revocation::cmd_set_lifetime,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0
    ),
    ngx_command_t::empty(),
];

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
                ngx_log_error!(NGX_LOG_EMERG, log, "{reason}");
                NGX_CONF_ERROR
            }
        }
    })
}
