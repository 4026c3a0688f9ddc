//! NGINX module statics and hooks for ngx_http_auth_jwt_module.

use core::ffi::{c_char, c_void};
use core::ptr;

use nginx_sys::{
    ngx_array_push, ngx_conf_t, ngx_http_handler_pt, ngx_http_module_t, ngx_http_phases,
    ngx_http_phases_NGX_HTTP_ACCESS_PHASE, ngx_http_phases_NGX_HTTP_POST_READ_PHASE, ngx_int_t,
    ngx_module_t, NGX_ERROR, NGX_HTTP_MODULE, NGX_OK,
};
use ngx::http::{
    HttpModule, HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, NgxHttpCoreModule,
};

mod background;
mod conf;
mod ctx;
mod error;
mod fetch;
mod handler;
mod headers;
mod keyreq;
mod keys;
mod limit;
mod log;
mod replay;
mod report;
mod revocation;
mod state;
mod time;
mod variables;
mod worker;
mod zone;

/// The type through which ngx's traits reach this module's configuration.
pub struct HttpAuthJwtModule;

impl HttpModule for HttpAuthJwtModule {
    fn module() -> &'static ngx_module_t {
        module()
    }

    unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        log::install_panic_hook();
        // SAFETY: NGINX calls this with the `http` block's live configuration context.
        let log = unsafe { (*cf).log };
        log::boundary("preconfiguration", log, NGX_ERROR as ngx_int_t, || {
            // SAFETY: as above.
            match unsafe { variables::register(cf) } {
                Some(()) => NGX_OK as ngx_int_t,
                None => NGX_ERROR as ngx_int_t,
            }
        })
    }

    unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
        // SAFETY: NGINX calls this with the `http` block's live configuration context.
        let cf = unsafe { &mut *cf };
        log::boundary(
            "postconfiguration",
            cf.log,
            NGX_ERROR as ngx_int_t,
            || match install(cf) {
                Some(()) => NGX_OK as ngx_int_t,
                None => NGX_ERROR as ngx_int_t,
            },
        )
    }
}

/// postconfiguration: the phase handlers, and the shared zone.
fn install(cf: &mut ngx_conf_t) -> Option<()> {
    let cmcf = NgxHttpCoreModule::main_conf_mut(cf)?;
    // Client copies of identity headers go before any phase, variable or subrequest can see
    // them; the token is checked in the access phase.
    for (phase, handler) in [
        (
            ngx_http_phases_NGX_HTTP_POST_READ_PHASE,
            handler::strip_handler as Handler,
        ),
        (
            ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
            handler::access_handler,
        ),
    ] {
        add_handler(cmcf, phase, handler)?;
    }
    let mcf = HttpAuthJwtModule::main_conf_mut(cf)?;
    // SAFETY: `cf` is the `http` block's context, as postconfiguration is called with.
    unsafe { conf::remote::add_zone(cf, mcf) }.ok()
}

type Handler = unsafe extern "C" fn(*mut nginx_sys::ngx_http_request_t) -> ngx_int_t;

/// Appends `handler` to a phase's handler array (NGINX runs the array backwards: a module
/// loaded later runs first).
fn add_handler(
    cmcf: &mut nginx_sys::ngx_http_core_main_conf_t,
    phase: ngx_http_phases,
    handler: Handler,
) -> Option<()> {
    let phase = &mut cmcf.phases[phase as usize];
    // SAFETY: a phase's handler array holds `ngx_http_handler_pt` elements.
    let h = unsafe { ngx_array_push(&mut phase.handlers) }.cast::<ngx_http_handler_pt>();
    // SAFETY: a non-NULL `h` is the freshly pushed, uninitialised slot.
    unsafe { h.as_mut() }?.replace(handler);
    Some(())
}

// SAFETY: `JwtSrvConf` is what `create_srv_conf` below allocates for this module.
unsafe impl HttpModuleServerConf for HttpAuthJwtModule {
    type ServerConf = conf::JwtSrvConf;
}

// SAFETY: `JwtMainConf` is what `create_main_conf` below allocates for this module.
unsafe impl HttpModuleMainConf for HttpAuthJwtModule {
    type MainConf = conf::JwtMainConf;
}

// SAFETY: `JwtLocConf` is what `create_loc_conf` below allocates for this module.
unsafe impl HttpModuleLocationConf for HttpAuthJwtModule {
    type LocationConf = conf::JwtLocConf;
}

/// The module's `ngx_module_t`, for code that needs its context index.
pub(crate) fn module() -> &'static ngx_module_t {
    // SAFETY: NGINX writes the module's indices once, before any request or configuration
    // callback runs; afterwards the static is only read.
    unsafe { &*ptr::addr_of!(ngx_http_auth_jwt_module) }
}

static NGX_HTTP_AUTH_JWT_MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(HttpAuthJwtModule::preconfiguration),
    postconfiguration: Some(HttpAuthJwtModule::postconfiguration),
    create_main_conf: Some(HttpAuthJwtModule::create_main_conf),
    init_main_conf: None,
    create_srv_conf: Some(HttpAuthJwtModule::create_srv_conf),
    merge_srv_conf: Some(merge_srv_conf),
    create_loc_conf: Some(HttpAuthJwtModule::create_loc_conf),
    merge_loc_conf: Some(merge_loc_conf),
};

unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    prev: *mut c_void,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: NGINX passes two location configurations created by this module.
    unsafe { conf::merge_loc_conf(cf, prev, conf) }
}

unsafe extern "C" fn merge_srv_conf(
    cf: *mut ngx_conf_t,
    prev: *mut c_void,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: NGINX passes two server configurations created by this module, at different
    // addresses.
    let (prev, conf) = unsafe {
        (
            &*prev.cast::<conf::JwtSrvConf>(),
            &mut *conf.cast::<conf::JwtSrvConf>(),
        )
    };
    // SAFETY: NGINX passes its live configuration context.
    let log = unsafe { (*cf).log };
    log::boundary("merge_srv_conf", log, ngx::core::NGX_CONF_ERROR, || {
        conf.merge(prev);
        ngx::core::NGX_CONF_OK
    })
}

#[cfg(feature = "export-modules")]
ngx::ngx_modules!(ngx_http_auth_jwt_module);

/// The module NGINX loads: `load_module modules/ngx_http_auth_jwt_module.so;`.
#[cfg_attr(not(test), used)]
#[allow(non_upper_case_globals)]
#[cfg_attr(not(feature = "export-modules"), no_mangle)]
pub static mut ngx_http_auth_jwt_module: ngx_module_t = ngx_module_t {
    ctx: ptr::addr_of!(NGX_HTTP_AUTH_JWT_MODULE_CTX) as _,
    commands: ptr::addr_of_mut!(conf::NGX_HTTP_AUTH_JWT_COMMANDS).cast(),
    type_: NGX_HTTP_MODULE as _,
    init_process: Some(worker::init_process),
    exit_process: Some(worker::exit_process),
    ..ngx_module_t::default()
};
