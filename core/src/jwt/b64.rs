//! Strict base64url decoding (RFC 7515 §2): the URL-safe alphabet, no padding, no
//! whitespace, zero trailing bits, so every byte string has exactly one accepted encoding.
//!
//! Four characters become three bytes with four table loads and three ORs: each table holds a
//! character's six bits already shifted to its place in the group, and `INVALID` (a bit no
//! valid group sets) for bytes outside the alphabet, so one test per group refuses them. The
//! `base64` crate accepts and refuses the same inputs (a property test holds the two to each
//! other) with more instructions on a token's short segments (callgrind, per HS256 token of
//! `core/examples/verify_cost`: the 43-character signature 545 -> 332, the 230-character
//! payload with its allocation 1,812 -> 1,160).
#![forbid(unsafe_code)]

/// Set in a table entry of a byte outside the alphabet; valid entries use the low 24 bits.
const INVALID: u32 = 1 << 31;

/// The value of each base64url character, `None` outside the alphabet.
const fn sextet(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as u32),
        b'a'..=b'z' => Some((c - b'a') as u32 + 26),
        b'0'..=b'9' => Some((c - b'0') as u32 + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// `TABLES[k][c]`: character `c` as the `k`-th of a group of four, shifted into place.
const TABLES: [[u32; 256]; 4] = {
    let mut tables = [[INVALID; 256]; 4];
    let mut c = 0;
    while c < 256 {
        if let Some(v) = sextet(c as u8) {
            tables[0][c] = v << 18;
            tables[1][c] = v << 12;
            tables[2][c] = v << 6;
            tables[3][c] = v;
        }
        c += 1;
    }
    tables
};

/// How many bytes `len` characters encode; `None` for a length no encoding has.
pub const fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        0 => Some(len / 4 * 3),
        2 => Some(len / 4 * 3 + 1),
        3 => Some(len / 4 * 3 + 2),
        _ => None,
    }
}

/// The bytes `text` encodes, in a `Vec` from `malloc` (not `calloc`: glibc serves that
/// outside its thread cache, and the next large allocation then consolidates the fast bins).
#[expect(
    clippy::slow_vector_initialization,
    reason = "vec![0; n] is the calloc this avoids"
)]
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let n = decoded_len(text.len())?;
    let mut out = Vec::with_capacity(n);
    out.resize(n, 0);
    decode_to(text, &mut out)?;
    Some(out)
}

/// The bytes `text` encodes, written to the start of `out`; their count. `None` if `text` is
/// not strict base64url or `out` is too short (what it then holds is unspecified).
pub fn decode_to(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let [t0, t1, t2, t3] = &TABLES;
    let n = decoded_len(text.len())?;
    let out = out.get_mut(..n)?;
    let mut groups = text.chunks_exact(4);
    let mut bytes = out.chunks_exact_mut(3);
    for (g, o) in groups.by_ref().zip(bytes.by_ref()) {
        let w = t0[usize::from(g[0])]
            | t1[usize::from(g[1])]
            | t2[usize::from(g[2])]
            | t3[usize::from(g[3])];
        if w & INVALID != 0 {
            return None;
        }
        (o[0], o[1], o[2]) = ((w >> 16) as u8, (w >> 8) as u8, w as u8);
    }
    let rest = bytes.into_remainder();
    match (groups.remainder(), rest) {
        ([], []) => {}
        // Two characters hold one byte and four bits that must be zero.
        (&[a, b], [x]) => {
            let w = t0[usize::from(a)] | t1[usize::from(b)];
            if w & (INVALID | 0xffff) != 0 {
                return None;
            }
            *x = (w >> 16) as u8;
        }
        // Three hold two bytes and two bits that must be zero.
        (&[a, b, c], [x, y]) => {
            let w = t0[usize::from(a)] | t1[usize::from(b)] | t2[usize::from(c)];
            if w & (INVALID | 0xff) != 0 {
                return None;
            }
            (*x, *y) = ((w >> 16) as u8, (w >> 8) as u8);
        }
        _ => return None,
    }
    Some(n)
}

#[cfg(test)]
#[path = "b64_tests.rs"]
mod tests;
