//! Request and response header surgery on NGINX's lists: remove, add, challenge.

use core::ptr;

use nginx_sys::{
    ngx_hash_key, ngx_http_headers_in, ngx_http_request_t, ngx_list_part_t, ngx_list_push,
    ngx_pnalloc, ngx_pool_t, ngx_str_t, ngx_table_elt_t,
};

/// Removes every request header named `lowcase` (already lower-case).
///
/// Elements after a removed one move down in their list part; every pointer NGINX keeps into
/// the list (the `headers_in` fields such as `user_agent`, and the `next` links between
/// same-name headers) is moved with them, so `$http_user_agent` and friends stay right.
pub fn remove_in(r: &mut ngx_http_request_t, lowcase: &str) {
    let mut part: *mut ngx_list_part_t = &mut r.headers_in.headers.part;
    while !part.is_null() {
        // SAFETY: `part` walks the request's header list, whose parts are pool-allocated
        // arrays of `nelts` initialised `ngx_table_elt_t`.
        let p = unsafe { &mut *part };
        let elts = p.elts.cast::<ngx_table_elt_t>();
        let mut i = 0;
        while i < p.nelts {
            // SAFETY: `i < nelts`.
            let elt = unsafe { &*elts.add(i) };
            if !is_named(elt, lowcase) {
                i += 1;
                continue;
            }
            // SAFETY: `elts.add(i)` is an element of this list; see `unlink`.
            unsafe { unlink(r, elts, i, p.nelts) };
            p.nelts -= 1;
        }
        part = p.next;
    }
}

/// Whether a request header's name is `lowcase`.
fn is_named(elt: &ngx_table_elt_t, lowcase: &str) -> bool {
    if elt.key.len != lowcase.len() {
        return false;
    }
    let name = if elt.lowcase_key.is_null() {
        elt.key.data
    } else {
        elt.lowcase_key
    };
    // SAFETY: both `key.data` and, when set, `lowcase_key` hold `key.len` bytes.
    let name = unsafe { core::slice::from_raw_parts(name, elt.key.len) };
    name.eq_ignore_ascii_case(lowcase.as_bytes())
}

/// Drops element `i` of a part with `n` elements and repoints every reference to it or to
/// the elements that move down.
///
/// # Safety
/// `elts` must be the element array of a part of `r.headers_in.headers` holding `n > i`
/// initialised elements.
unsafe fn unlink(r: &mut ngx_http_request_t, elts: *mut ngx_table_elt_t, i: usize, n: usize) {
    // SAFETY: per the contract, `i < n`.
    let removed = unsafe { elts.add(i) };
    // SAFETY: as above.
    let successor = unsafe { (*removed).next };
    repoint(r, removed, successor);
    for k in i + 1..n {
        // SAFETY: `k < n`, so both addresses lie inside the part.
        let (from, to) = unsafe { (elts.add(k), elts.add(k - 1)) };
        // SAFETY: moving one initialised element down by one slot.
        unsafe { ptr::copy_nonoverlapping(from, to, 1) };
        repoint(r, from, to);
    }
}

/// Replaces every pointer to `from` NGINX keeps for this request's headers by `to`.
fn repoint(r: &mut ngx_http_request_t, from: *mut ngx_table_elt_t, to: *mut ngx_table_elt_t) {
    let base = ptr::addr_of_mut!(r.headers_in).cast::<u8>();
    // SAFETY: `ngx_http_headers_in` is NGINX's static table of known request headers, ended by
    // an entry with an empty name; a non-zero `offset` is that of an `ngx_table_elt_t *` field
    // of `ngx_http_headers_in_t`.
    unsafe {
        let mut known = ptr::addr_of!(ngx_http_headers_in).cast::<nginx_sys::ngx_http_header_t>();
        while (*known).name.len != 0 {
            if (*known).offset != 0 {
                let field = base.add((*known).offset).cast::<*mut ngx_table_elt_t>();
                if *field == from {
                    *field = to;
                }
            }
            known = known.add(1);
        }
    }
    let mut part: *mut ngx_list_part_t = &mut r.headers_in.headers.part;
    while !part.is_null() {
        // SAFETY: as in `remove_in`.
        let p = unsafe { &*part };
        let elts = p.elts.cast::<ngx_table_elt_t>();
        for k in 0..p.nelts {
            // SAFETY: `k < nelts`.
            let elt = unsafe { &mut *elts.add(k) };
            if elt.next == from {
                elt.next = to;
            }
        }
        part = p.next;
    }
}

/// Appends a request header for the upstream. `None` when the pool is exhausted.
pub fn add_in(r: &mut ngx_http_request_t, name: &str, lowcase: &str, value: &str) -> Option<()> {
    let pool = r.pool;
    // SAFETY: the request's header list was created by NGINX with `ngx_table_elt_t` elements.
    let h = unsafe { ngx_list_push(&mut r.headers_in.headers) }.cast::<ngx_table_elt_t>();
    if h.is_null() {
        return None;
    }
    let key = copy_str(pool, name)?;
    let lowcase_key = copy_str(pool, lowcase)?;
    // SAFETY: `h` is a fresh element of the list; every field is written here.
    unsafe {
        (*h).key = key;
        (*h).lowcase_key = lowcase_key.data;
        (*h).hash = ngx_hash_key(lowcase_key.data, lowcase_key.len);
        (*h).value = copy_str(pool, value)?;
        (*h).next = ptr::null_mut();
    }
    Some(())
}

/// Sets the response's `WWW-Authenticate` header. `None` when the pool is exhausted.
pub fn set_www_authenticate(r: &mut ngx_http_request_t, value: &str) -> Option<()> {
    let h = push_out(r, "WWW-Authenticate", value)?;
    r.headers_out.www_authenticate = h;
    Some(())
}

/// Adds a response header. `None` when the pool is exhausted.
pub fn set_out(r: &mut ngx_http_request_t, name: &'static str, value: &str) -> Option<()> {
    push_out(r, name, value).map(|_| ())
}

fn push_out(
    r: &mut ngx_http_request_t,
    name: &'static str,
    value: &str,
) -> Option<*mut ngx_table_elt_t> {
    let pool = r.pool;
    // SAFETY: the response header list was created by NGINX with `ngx_table_elt_t` elements.
    let h = unsafe { ngx_list_push(&mut r.headers_out.headers) }.cast::<ngx_table_elt_t>();
    if h.is_null() {
        return None;
    }
    let value = copy_str(pool, value)?;
    // SAFETY: `h` is a fresh element; every field is written before NGINX reads it. `name`
    // is static, so NGINX may keep pointing at it.
    unsafe {
        (*h).hash = 1;
        (*h).key = ngx_str_t {
            len: name.len(),
            data: name.as_ptr().cast_mut(),
        };
        (*h).lowcase_key = ptr::null_mut();
        (*h).value = value;
        (*h).next = ptr::null_mut();
    }
    Some(h)
}

/// Copies `s` into `pool` as an `ngx_str_t`.
pub fn copy_str(pool: *mut ngx_pool_t, s: &str) -> Option<ngx_str_t> {
    // SAFETY: `pool` is a live request pool; `ngx_pnalloc` returns NULL or `len` bytes.
    let data = unsafe { ngx_pnalloc(pool, s.len().max(1)) }.cast::<u8>();
    if data.is_null() {
        return None;
    }
    // SAFETY: `data` has room for `s.len()` bytes and does not overlap `s`.
    unsafe { ptr::copy_nonoverlapping(s.as_ptr(), data, s.len()) };
    Some(ngx_str_t { len: s.len(), data })
}
