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
/// Every pointer NGINX keeps into the list is moved to the copy: the `headers_in` fields such
/// as `user_agent`, and the `next` links between same-name headers (NGINX 1.23 and later) or
/// the `cookies` and `x_forwarded_for` arrays (NGINX 1.22). Nothing is touched when no header
/// matches, the usual case. `None` when memory is exhausted.
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
    // Copy the kept elements; `moved[i]` is the new address of the list's i-th old element,
    // NULL for a removed one. The old parts stay as they are (and allocated in the pool)
    // until the list is pointed at the copy, at the end.
    let mut moved = Vec::new();
    moved.try_reserve_exact(total).ok()?;
    let mut w = 0;
    // SAFETY: as above; the list's shape does not change until the loop is done.
    for elt in unsafe { elements(list) } {
        // SAFETY: `elt` is an initialised element of the old parts; `fresh` has room for
        // `kept <= capacity` elements, written in order.
        unsafe {
            if names.iter().any(|n| is_named(&*elt, n)) {
                moved.push(ptr::null_mut());
            } else {
                let to = fresh.add(w);
                ptr::copy_nonoverlapping(elt, to, 1);
                moved.push(to);
                w += 1;
            }
        }
    }
    let relocation = Relocation {
        first: list.part,
        moved,
    };
    let base = ptr::addr_of_mut!(r.headers_in).cast::<u8>();
    // SAFETY: `ngx_http_headers_in` is NGINX's static table of known request headers, ended
    // by an entry with an empty name; a non-zero `offset` is that of a field of
    // `ngx_http_headers_in_t` holding pointers into the old list (see `relocate_field`).
    unsafe {
        let mut known = ptr::addr_of!(ngx_http_headers_in).cast::<nginx_sys::ngx_http_header_t>();
        while (*known).name.len != 0 {
            if (*known).offset != 0 {
                relocation.relocate_field(base, (*known).offset, kept);
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

/// Where each element of a header list that `strip` is rebuilding went.
struct Relocation {
    /// A copy of the list's first old part (the others stay in place, unchanged).
    first: ngx_list_part_t,
    /// The new address of the i-th old element (in list order), NULL for a removed one.
    moved: Vec<*mut ngx_table_elt_t>,
}

impl Relocation {
    /// The new address of `p`: NULL for a removed element; `p` itself when it does not point
    /// into the old list (then it stays valid as it is).
    fn forward(&self, p: *mut ngx_table_elt_t) -> *mut ngx_table_elt_t {
        let mut part: *const ngx_list_part_t = &self.first;
        let mut index = 0;
        // SAFETY: `part` walks the old parts, unchanged while `self` lives.
        while let Some(pt) = unsafe { part.as_ref() } {
            let first = pt.elts.cast::<ngx_table_elt_t>();
            // Address arithmetic only: nothing is read through `p` here.
            let offset = (p as usize).wrapping_sub(first as usize) / size_of::<ngx_table_elt_t>();
            if p as usize >= first as usize && offset < pt.nelts {
                return self.moved[index + offset];
            }
            index += pt.nelts;
            part = pt.next;
        }
        p
    }

    /// Moves the pointers of the `headers_in` field at `offset` to the rebuilt list: an
    /// `ngx_table_elt_t *` heading a chain of same-name headers linked by `next` (at most
    /// `kept` long; the elements of one chain share a name, so all are kept or all removed).
    ///
    /// # Safety
    /// `base + offset` is a field of the request's `ngx_http_headers_in_t` named by NGINX's
    /// `ngx_http_headers_in` table, whose pointers are NULL or point at elements of the old
    /// list or its copies.
    #[cfg(nginx1_23_0)]
    unsafe fn relocate_field(&self, base: *mut u8, offset: usize, kept: usize) {
        // SAFETY: per the contract, an `ngx_table_elt_t *` field; the elements it leads to
        // are copies `forward` made, each with the `next` copied from its old element.
        unsafe {
            let field = base.add(offset).cast::<*mut ngx_table_elt_t>();
            *field = self.forward(*field);
            let mut h = *field;
            for _ in 0..kept {
                let Some(copy) = h.as_mut() else { break };
                copy.next = self.forward(copy.next);
                h = copy.next;
            }
        }
    }

    /// As above for NGINX 1.22: a field is one `ngx_table_elt_t *`, except `cookies` and
    /// `x_forwarded_for`, arrays of `ngx_table_elt_t *` in which a removed element's entry
    /// is dropped.
    ///
    /// # Safety
    /// As above.
    #[cfg(not(nginx1_23_0))]
    unsafe fn relocate_field(&self, base: *mut u8, offset: usize, _kept: usize) {
        use core::mem::offset_of;
        use nginx_sys::{ngx_array_t, ngx_http_headers_in_t};
        let arrays = [
            Some(offset_of!(ngx_http_headers_in_t, cookies)),
            #[cfg(ngx_feature = "http_x_forwarded_for")]
            Some(offset_of!(ngx_http_headers_in_t, x_forwarded_for)),
            None,
        ];
        // SAFETY: per the contract: an `ngx_array_t` of `ngx_table_elt_t *` at the offsets
        // of the two array fields (its `elts` NULL while empty), an `ngx_table_elt_t *` at
        // any other.
        unsafe {
            if !arrays.contains(&Some(offset)) {
                let field = base.add(offset).cast::<*mut ngx_table_elt_t>();
                *field = self.forward(*field);
                return;
            }
            let array = &mut *base.add(offset).cast::<ngx_array_t>();
            let entries = array.elts.cast::<*mut ngx_table_elt_t>();
            let mut w = 0;
            for i in 0..array.nelts {
                let to = self.forward(*entries.add(i));
                if !to.is_null() {
                    *entries.add(w) = to;
                    w += 1;
                }
            }
            array.nelts = w;
        }
    }
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
    #[cfg(nginx1_23_0)]
    {
        h.next = ptr::null_mut();
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
        #[cfg(nginx1_23_0)]
        {
            (*h).next = ptr::null_mut();
        }
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
