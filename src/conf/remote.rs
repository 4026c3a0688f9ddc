//! Remote key directives (`auth_jwt_key_uri`, `auth_jwt_discovery`,
//! `auth_jwt_trusted_certificate`) and the shared zone they need.

use core::ffi::c_void;
use core::ptr;
use std::sync::Arc;

use nginx_sys::{ngx_conf_t, ngx_int_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_str_t};
use ngx::http::HttpModule;

use super::directive::{directive, set_once, Cf};
use super::loc::{JwtLocConf, JwtMainConf, NGX_CONF_UNSET_SIZE};
use crate::error::Error;
use crate::fetch::http::TrustedCa;
use crate::keys::{RemoteSource, SourceKind};
use crate::{revocation, zone, HttpAuthJwtModule};
use auth_jwt_core::directive::parse_source;

/// Default `auth_jwt_zone` size.
const DEFAULT_ZONE_SIZE: usize = 16 * 1024 * 1024;
/// Smallest zone that holds the slot table and a few key sets.
const MIN_ZONE_SIZE: usize = 512 * 1024;

directive! {
    /// `auth_jwt_key_uri <url> [parameters]`.
    KeyUri(cf, lcf: JwtLocConf, args) {
        add_source(cf, lcf, SourceKind::Jwks, args)
    }
}

directive! {
    /// `auth_jwt_discovery <issuer> [parameters]`.
    Discovery(cf, lcf: JwtLocConf, args) {
        add_source(cf, lcf, SourceKind::Discovery, args)
    }
}

fn add_source(
    cf: &mut Cf,
    lcf: &mut JwtLocConf,
    kind: SourceKind,
    args: &[&str],
) -> Result<(), Error> {
    let source = register(cf.main_conf()?, kind, parse_source(args)?)?;
    let list = lcf.remote.get_or_insert_with(Vec::new);
    if list.iter().any(|s| Arc::ptr_eq(s, &source)) {
        return Err(Error::Duplicate);
    }
    list.push(source);
    Ok(())
}

/// One `RemoteSource` per URL for the whole configuration: every location naming it shares
/// its keys, and the node fetches it once.
fn register(
    mcf: &mut JwtMainConf,
    kind: SourceKind,
    args: auth_jwt_core::directive::SourceArgs,
) -> Result<Arc<RemoteSource>, Error> {
    if let Some(existing) = mcf.sources.iter().find(|s| s.url() == args.url) {
        if existing.kind != kind || existing.args != args {
            return Err(format!(
                "\"{}\" is already configured with other parameters",
                args.url
            )
            .into());
        }
        return Ok(Arc::clone(existing));
    }
    if mcf.sources.len() >= zone::MAX_SOURCES {
        return Err(format!("more than {} key URIs", zone::MAX_SOURCES).into());
    }
    let source = Arc::new(RemoteSource::new(kind, args));
    mcf.sources.push(Arc::clone(&source));
    Ok(source)
}

directive! {
    /// `auth_jwt_trusted_certificate <file>`: read here, by the master (workers run as
    /// `user` and may not read the file).
    TrustedCertificate(cf, lcf: JwtLocConf, args) {
        set_once(&mut lcf.trusted_certificate, || {
            TrustedCa::load(&cf.full_path(args[0])?).map(Arc::new).map_err(Error::from)
        })
    }
}

directive! {
    /// `auth_jwt_zone <size>`, at least [`MIN_ZONE_SIZE`].
    ZoneSize(cf, mcf: JwtMainConf, args) {
        if mcf.zone_size != NGX_CONF_UNSET_SIZE {
            return Err(Error::Duplicate);
        }
        let size = cf.parse_size(args[0])?;
        if size < MIN_ZONE_SIZE {
            return Err("zone size must be at least 512k".into());
        }
        mcf.zone_size = size;
        Ok(())
    }
}

/// Adds the shared zone (key sets and counters) from postconfiguration.
///
/// # Safety
/// `cf` must be the `http` block's configuration context.
pub unsafe fn add_zone(cf: *mut ngx_conf_t, mcf: &mut JwtMainConf) -> Result<(), ()> {
    let size = match mcf.zone_size {
        NGX_CONF_UNSET_SIZE => DEFAULT_ZONE_SIZE,
        size => size,
    } + crate::limit::zone_bytes(&mcf.limits);
    let mut name = ngx_str_t {
        len: "auth_jwt".len(),
        data: c"auth_jwt".as_ptr().cast_mut().cast(),
    };
    let module = ptr::from_ref(HttpAuthJwtModule::module()).cast_mut().cast();
    // SAFETY: `cf` is live; NGINX copies nothing from `name` it does not own (static data).
    let shm_zone = unsafe { ngx_shared_memory_add(cf, &mut name, size, module) };
    // SAFETY: a non-NULL zone is NGINX's, ours to set up until the cycle starts.
    let Some(shm_zone) = (unsafe { shm_zone.as_mut() }) else {
        return Err(());
    };
    shm_zone.init = Some(init_zone);
    shm_zone.data = ptr::from_mut(mcf).cast();
    Ok(())
}

/// Claims a zone slot for the sources of the new configuration.
extern "C" fn init_zone(shm_zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: NGINX passes the zone it is initialising.
    let log = unsafe { (*shm_zone).shm.log };
    crate::log::boundary("init_zone", log, nginx_sys::NGX_ERROR as ngx_int_t, || {
        // SAFETY: as above, with the previous cycle's data.
        unsafe { claim_slots(shm_zone, old) }
    })
}

/// Sets up the zone and claims a slot for the sources of the new configuration.
///
/// # Safety
/// As `init_zone`.
unsafe fn claim_slots(shm_zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    // SAFETY: `data` is the main configuration stored by `add_zone`; it lives as long as the
    // cycle being initialised.
    let mcf = unsafe { &*(*shm_zone).data.cast::<JwtMainConf>() };
    // SAFETY: as above.
    let (size, log) = unsafe { ((*shm_zone).shm.size, (*shm_zone).shm.log) };
    let urls: Vec<&str> = mcf.sources.iter().map(|s| s.url()).collect();
    // SAFETY: NGINX calls this hook with the zone and the previous cycle's data.
    unsafe {
        zone::init(shm_zone, old, &mcf.zone, |zone| {
            // Free or already held slots only: a source left without one takes over a slot
            // of a URI no longer configured once the cycle runs (worker::init_process).
            for source in &mcf.sources {
                if let Some(i) = zone.claim(source.url(), &urls, false) {
                    let _ = source.slot.set(i);
                }
            }
            let now = crate::fetch::unix_now();
            let rv = &mcf.revocation;
            let limits = crate::limit::init_zone(&zone.limits, &mcf.limits, |n| zone.alloc(n));
            let size = size - crate::limit::zone_bytes(&mcf.limits);
            let replay = || {
                zone.dpop_replay
                    .allocate(size, rv.redis.is_some(), |n| zone.alloc(n))
                    .then_some(())
                    .ok_or_else(|| {
                        "auth_jwt_zone is too small for the DPoP replay table".to_owned()
                    })
            };
            match limits
                .and_then(|()| {
                    revocation::init_zone(&zone.revocations, rv, size, |n| zone.alloc(n), now)
                })
                .and_then(|()| replay())
            {
                Ok(()) => true,
                Err(reason) => {
                    crate::log::log_emerg!(log, "{reason}");
                    false
                }
            }
        })
    }
}
