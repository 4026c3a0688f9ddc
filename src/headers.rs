//! Request and response header surgery on NGINX's lists: remove, add, challenge.

use core::ptr;

use auth_jwt_core::identity;

use nginx_sys::{
    ngx_hash_key, ngx_http_headers_in, ngx_http_request_t, ngx_list_part_t, ngx_list_push,
    ngx_list_t, ngx_palloc, ngx_pnalloc, ngx_pool_t, ngx_str_t, ngx_table_elt_t,
};

/// Removes every request header whose name is one of `names` (each as
/// [`identity::fold_name`] gives
/// it: lower case, `_` read as `-`), in one pass, however many copies a client sent.
///
/// The kept headers are copied into one fresh part, so the list never holds an empty part
/// after the first: NGINX's own walkers (proxy, fastcgi, grpc) read `elts[0]` of a part
/// without checking `nelts`, and would send a stale removed header from an emptied part.
/// Every pointer NGINX keeps into the list (the `headers_in` fields such as `user_agent`,
/// and the `next` links between same-name headers) is moved to the copy. Nothing is touched
/// when no header matches, the usual case. `None` when the pool is exhausted.
pub fn strip(r: &mut ngx_http_request_t, names: &[String]) -> Option<()> {
    if names.is_empty() {
        return Some(());
    }
    let list = &mut r.headers_in.headers;
    let (mut total, mut kept) = (0, 0);
    // SAFETY: the request's header list, as NGINX built it.
    for elt in unsafe { elements(list) } {
        total += 1;
        // SAFETY: `elements` yields initialised elements of the request's header list.
        if !names.iter().any(|n| is_named(unsafe { &*elt }, n)) {
            kept += 1;
        }
    }
    if kept == total {
        return Some(());
    }
    let capacity = kept.max(list.nalloc);
    // SAFETY: `r.pool` is the request's live pool; the result is NULL or room for
    // `capacity` elements, suitably aligned (ngx_palloc aligns to NGX_ALIGNMENT).
    let fresh = unsafe { ngx_palloc(r.pool, capacity * size_of::<ngx_table_elt_t>()) }
        .cast::<ngx_table_elt_t>();
    if fresh.is_null() {
        return None;
    }
    // Copy the kept elements, then turn each old element's `next` into a forwarding
    // pointer: its new address, or NULL for a removed one.
    let mut w = 0;
    // SAFETY: as above; the list's shape does not change until the loop is done.
    for elt in unsafe { elements(list) } {
        // SAFETY: `elt` is an initialised element of the old parts, which stay allocated in
        // the pool; `fresh` has room for `kept <= capacity` elements, written in order.
        unsafe {
            if names.iter().any(|n| is_named(&*elt, n)) {
                (*elt).next = ptr::null_mut();
            } else {
                ptr::copy_nonoverlapping(elt, fresh.add(w), 1);
                (*elt).next = fresh.add(w);
                w += 1;
            }
        }
    }
    // Only known headers have a meaningful `next` (NGINX leaves it unset on the others):
    // follow each known field's chain of same-name headers and translate its links. The
    // elements of one chain share a name, so they are all kept or all removed.
    let base = ptr::addr_of_mut!(r.headers_in).cast::<u8>();
    // SAFETY: `ngx_http_headers_in` is NGINX's static table of known request headers, ended by
    // an entry with an empty name; a non-zero `offset` is that of an `ngx_table_elt_t *` field
    // of `ngx_http_headers_in_t`, NULL or the head of a chain of old elements.
    unsafe {
        let mut known = ptr::addr_of!(ngx_http_headers_in).cast::<nginx_sys::ngx_http_header_t>();
        while (*known).name.len != 0 {
            if (*known).offset != 0 {
                let field = base.add((*known).offset).cast::<*mut ngx_table_elt_t>();
                *field = forward(*field);
                let mut h = *field;
                // A chain holds at most every kept element once.
                for _ in 0..kept {
                    let Some(copy) = h.as_mut() else { break };
                    copy.next = forward(copy.next);
                    h = copy.next;
                }
            }
            known = known.add(1);
        }
    }
    let list = &mut r.headers_in.headers;
    list.part.elts = fresh.cast();
    list.part.nelts = kept;
    list.part.next = ptr::null_mut();
    list.nalloc = capacity;
    list.last = ptr::addr_of_mut!(list.part);
    Some(())
}

/// Where an old element of a list that `strip` rebuilt now lives.
///
/// # Safety
/// `p` is NULL or an old element whose `next` `strip` replaced by its forwarding address.
unsafe fn forward(p: *mut ngx_table_elt_t) -> *mut ngx_table_elt_t {
    if p.is_null() {
        return p;
    }
    // SAFETY: per the contract.
    unsafe { (*p).next }
}

/// The elements of a header list, part by part.
///
/// # Safety
/// `list` must be an NGINX list of `ngx_table_elt_t` (parts of `nelts` initialised elements),
/// whose parts stay as they are while the iterator lives.
unsafe fn elements(list: &mut ngx_list_t) -> impl Iterator<Item = *mut ngx_table_elt_t> {
    let mut part: *mut ngx_list_part_t = &mut list.part;
    let mut i = 0;
    core::iter::from_fn(move || loop {
        // SAFETY: `part` walks the list's parts, per the contract.
        let p = unsafe { part.as_mut() }?;
        if i < p.nelts {
            i += 1;
            // SAFETY: `i - 1 < nelts`.
            return Some(unsafe { p.elts.cast::<ngx_table_elt_t>().add(i - 1) });
        }
        part = p.next;
        i = 0;
    })
}

/// Whether a request header's name folds to `folded` (see [`identity::fold_name`]).
fn is_named(elt: &ngx_table_elt_t, folded: &str) -> bool {
    if elt.key.len != folded.len() {
        return false;
    }
    // SAFETY: `key.data` holds `key.len` bytes.
    let name = unsafe { core::slice::from_raw_parts(elt.key.data, elt.key.len) };
    name.iter()
        .zip(folded.bytes())
        .all(|(&a, b)| identity::fold(a) == b)
}

/// Appends a request header for the upstream. `None` when the pool is exhausted.
pub fn add_in(r: &mut ngx_http_request_t, name: &str, lowcase: &str, value: &str) -> Option<()> {
    let pool = r.pool;
    // Copied before the element is pushed, so that a full pool never leaves an element with
    // unset fields in the list.
    // SAFETY: the request's pool lives as long as the request.
    let (key, lowcase_key, value) = unsafe {
        (
            copy_str(pool, name)?,
            copy_str(pool, lowcase)?,
            copy_str(pool, value)?,
        )
    };
    // SAFETY: the request's header list was created by NGINX with `ngx_table_elt_t` elements.
    let h = unsafe { ngx_list_push(&mut r.headers_in.headers) }.cast::<ngx_table_elt_t>();
    // SAFETY: a non-NULL `h` is a fresh element of the list; every field is written here.
    let h = unsafe { h.as_mut() }?;
    h.key = key;
    h.lowcase_key = lowcase_key.data;
    // SAFETY: `lowcase_key` holds `len` bytes.
    h.hash = unsafe { ngx_hash_key(lowcase_key.data, lowcase_key.len) };
    h.value = value;
    h.next = ptr::null_mut();
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
    // Copied first: a full pool never leaves an element with unset fields in the list.
    // SAFETY: the request's pool lives as long as the request.
    let value = unsafe { copy_str(r.pool, value) }?;
    // SAFETY: the response header list was created by NGINX with `ngx_table_elt_t` elements.
    let h = unsafe { ngx_list_push(&mut r.headers_out.headers) }.cast::<ngx_table_elt_t>();
    if h.is_null() {
        return None;
    }
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
///
/// # Safety
/// `pool` must be a live NGINX pool.
pub unsafe fn copy_str(pool: *mut ngx_pool_t, s: &str) -> Option<ngx_str_t> {
    // SAFETY: per the contract; `ngx_pnalloc` returns NULL or `len` bytes.
    let data = unsafe { ngx_pnalloc(pool, s.len().max(1)) }.cast::<u8>();
    if data.is_null() {
        return None;
    }
    // SAFETY: `data` has room for `s.len()` bytes and does not overlap `s`.
    unsafe { ptr::copy_nonoverlapping(s.as_ptr(), data, s.len()) };
    Some(ngx_str_t { len: s.len(), data })
}
