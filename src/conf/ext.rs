//! Small helpers over `ngx_conf_t`: arguments as text, NGINX-worded errors, complex values.

use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_conf_full_name, ngx_conf_t, ngx_http_compile_complex_value,
    ngx_http_compile_complex_value_t, ngx_http_complex_value_t, ngx_str_t, NGX_OK,
};

/// A compiled `ngx_http_complex_value_t`, allocated in the configuration pool.
#[derive(Debug, Clone, Copy)]
pub struct ComplexValue(NonNull<ngx_http_complex_value_t>);

impl ComplexValue {
    pub fn as_ref(&self) -> &ngx_http_complex_value_t {
        // SAFETY: the pointer came from the configuration pool, which outlives every request
        // and configuration structure that holds a `ComplexValue`.
        unsafe { self.0.as_ref() }
    }
}

/// The directive's arguments after its name, as UTF-8 text.
///
/// # Safety
/// `cf` must be the `ngx_conf_t` NGINX passed to a directive handler.
pub unsafe fn args<'a>(cf: *mut ngx_conf_t) -> Result<(&'a str, Vec<&'a str>), String> {
    // SAFETY: NGINX fills `cf->args` with at least the directive name before calling a handler;
    // the strings live in the configuration pool for the whole configuration cycle.
    let all: &[ngx_str_t] = unsafe { (*(*cf).args).as_slice() };
    let mut texts = Vec::with_capacity(all.len());
    for arg in all {
        let text = arg
            .to_str()
            .map_err(|_| "argument is not valid UTF-8".to_owned())?;
        texts.push(text);
    }
    let name = texts.remove(0);
    Ok((name, texts))
}

/// Compiles `value` (which may hold `$variables`) into a complex value.
///
/// # Safety
/// `cf` must be a live `ngx_conf_t` during configuration parsing.
pub unsafe fn complex_value(cf: *mut ngx_conf_t, value: &str) -> Option<ComplexValue> {
    // SAFETY: `cf->pool` is the configuration pool; allocations live as long as the cycle.
    let pool = unsafe { (*cf).pool };
    // SAFETY: as above.
    let cv =
        unsafe { ngx::core::Pool::from_ngx_pool(pool) }.calloc_type::<ngx_http_complex_value_t>();
    let mut source = ngx_str_t {
        len: value.len(),
        // SAFETY: copying `value` into the pool so that NGINX may keep pointers into it.
        data: unsafe { copy_to_pool(pool, value.as_bytes()) }?,
    };
    if cv.is_null() {
        return None;
    }
    let mut ccv = ngx_http_compile_complex_value_t {
        cf,
        value: &mut source,
        complex_value: cv,
        // SAFETY: all-zero is the initial state NGINX itself gives this C struct.
        ..unsafe { core::mem::zeroed() }
    };
    // SAFETY: `ccv` is initialised above; `cv` is zeroed pool memory.
    let rc = unsafe { ngx_http_compile_complex_value(&mut ccv) };
    (rc == NGX_OK as isize).then_some(())?;
    NonNull::new(cv).map(ComplexValue)
}

/// Resolves `path` against the configuration prefix, as NGINX does for file arguments.
///
/// # Safety
/// `cf` must be a live `ngx_conf_t` during configuration parsing.
pub unsafe fn full_path(cf: *mut ngx_conf_t, path: &str) -> Option<String> {
    // SAFETY: as above; `ngx_conf_full_name` allocates the result from `cycle->pool`.
    let pool = unsafe { (*cf).pool };
    let mut name = ngx_str_t {
        len: path.len(),
        // SAFETY: as above.
        data: unsafe { copy_to_pool(pool, path.as_bytes()) }?,
    };
    // SAFETY: `cf->cycle` is the cycle being configured.
    if unsafe { ngx_conf_full_name((*cf).cycle, &mut name, 1) } != NGX_OK as isize {
        return None;
    }
    name.to_str().ok().map(str::to_owned)
}

/// Copies `bytes` into `pool`; `None` when the pool is out of memory.
///
/// # Safety
/// `pool` must be a live NGINX pool.
unsafe fn copy_to_pool(pool: *mut nginx_sys::ngx_pool_t, bytes: &[u8]) -> Option<*mut u8> {
    // SAFETY: per the contract.
    let p = unsafe { ngx::core::Pool::from_ngx_pool(pool) }
        .alloc_unaligned(bytes.len().max(1))
        .cast::<u8>();
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` has room for `bytes.len()` bytes and does not overlap `bytes`.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    Some(p)
}
