//! Strict JSON without a tree: accepts and refuses exactly what [`super::json::parse_object`]
//! does (same errors, same order), and reports the top-level members as spans of the text.
//!
//! A token's header and payload are scanned once on the request path; the members the policy
//! needs (`alg`, `kid`, `exp`, `iss`, ...) are read from their spans, and the full
//! `serde_json` tree is built only when a variable or identity header asks for it
//! ([`super::json::LazyJson`]). The fuzz target `json` holds the two parsers to each other.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::json::{JsonError, Limits, NUMBER_TOKEN};
pub use super::scan_text::unescape;
use super::scan_text::{hex, plain_run, Key, Keys, Seen, LINEAR_KEYS};

/// What kind of JSON value a span holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    /// A string; `escaped` if its text holds a backslash escape.
    String {
        escaped: bool,
    },
    Number,
    Bool,
    Null,
}

/// A value's text: `start..end` in the scanned document, quotes included for strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

impl Span {
    /// The value's text in `doc`, the document it was scanned from.
    pub fn text<'a>(&self, doc: &'a str) -> &'a str {
        doc.get(self.start..self.end).unwrap_or("")
    }

    /// A string value, unescaped; `None` for any other kind.
    pub fn string<'a>(&self, doc: &'a str) -> Option<Cow<'a, str>> {
        match self.kind {
            Kind::String { escaped } => {
                let inner = doc.get(self.start + 1..self.end - 1)?;
                Some(if escaped {
                    Cow::Owned(unescape(inner))
                } else {
                    Cow::Borrowed(inner)
                })
            }
            _ => None,
        }
    }
}

/// serde_json refuses a document nested this deep (its recursion limit), whatever the limits.
const SERDE_NESTING: usize = 128;

/// Scans `doc` as one JSON object under `limits`, calling `member(key, value)` for each
/// top-level member (key unescaped, UTF-8) once its value has scanned.
pub fn scan_object(
    doc: &[u8],
    limits: Limits,
    mut member: impl FnMut(&[u8], Span),
) -> Result<(), JsonError> {
    let mut s = Scanner {
        b: doc,
        i: 0,
        limits,
        members: 0,
        keys: Keys::default(),
        top: Some(&mut member),
    };
    let kind = s.value(0)?;
    s.ws();
    if s.i != doc.len() {
        return Err(JsonError::Syntax);
    }
    if kind != Kind::Object {
        return Err(JsonError::NotObject);
    }
    Ok(())
}

/// The elements of a JSON array that [`scan_object`] accepted (`array` is its text).
pub fn array_items(array: &str) -> impl Iterator<Item = Span> + '_ {
    let mut s = Scanner {
        b: array.as_bytes(),
        i: 1,
        limits: Limits {
            max_depth: SERDE_NESTING,
            max_members: usize::MAX,
        },
        members: 0,
        keys: Keys::default(),
        top: None,
    };
    let mut first = true;
    std::iter::from_fn(move || {
        s.ws();
        match s.peek() {
            Some(b']') | None => return None,
            Some(b',') if !first => s.i += 1,
            _ => {}
        }
        first = false;
        s.span(1).ok()
    })
}

/// What is told of each top-level member.
type Visit<'f> = dyn FnMut(&[u8], Span) + 'f;

struct Scanner<'a, 'f> {
    b: &'a [u8],
    i: usize,
    limits: Limits,
    members: usize,
    /// Keys of the objects being scanned, innermost last.
    keys: Keys,
    /// Told of each top-level member.
    top: Option<&'f mut Visit<'f>>,
}

impl<'a> Scanner<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.peek() != Some(byte) {
            return Err(JsonError::Syntax);
        }
        self.i += 1;
        Ok(())
    }

    /// A value and where it is; `depth` is that of the enclosing container (0 at the top).
    #[inline(always)]
    fn span(&mut self, depth: usize) -> Result<Span, JsonError> {
        self.ws();
        let start = self.i;
        let kind = self.value(depth)?;
        Ok(Span {
            start,
            end: self.i,
            kind,
        })
    }

    /// A value; `depth` is that of the enclosing container (0 at the top). Returns its kind
    /// only, in registers: the hot path must not round-trip spans through memory.
    fn value(&mut self, depth: usize) -> Result<Kind, JsonError> {
        self.ws();
        match self.peek().ok_or(JsonError::Syntax)? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => Ok(Kind::String {
                escaped: self.string()?,
            }),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true", Kind::Bool),
            b'f' => self.literal(b"false", Kind::Bool),
            b'n' => self.literal(b"null", Kind::Null),
            _ => Err(JsonError::Syntax),
        }
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Result<Kind, JsonError> {
        if !self.b[self.i..].starts_with(word) {
            return Err(JsonError::Syntax);
        }
        self.i += word.len();
        Ok(kind)
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<Kind, JsonError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(JsonError::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Ok(Kind::Number)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), JsonError> {
        let start = self.i;
        self.digits();
        if self.i == start {
            return Err(JsonError::Syntax);
        }
        Ok(())
    }

    /// A string at `self.i` (its opening quote); returns whether it holds an escape. As
    /// serde_json: no raw control characters, valid escapes, paired surrogates, UTF-8.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, JsonError> {
        self.i += 1;
        let start = self.i;
        let (mut escaped, mut ascii) = (false, true);
        loop {
            self.i += plain_run(&self.b[self.i..]);
            let Some(&c) = self.b.get(self.i) else {
                return Err(JsonError::Syntax);
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0x80.. => ascii = false,
                _ => return Err(JsonError::Syntax),
            }
        }
        // Escapes are ASCII and decode to whole characters, so the raw text is UTF-8 exactly
        // when serde_json's unescaped one is.
        if !ascii && std::str::from_utf8(&self.b[start..self.i - 1]).is_err() {
            return Err(JsonError::Syntax);
        }
        Ok(escaped)
    }

    fn escape(&mut self) -> Result<(), JsonError> {
        let c = self.peek().ok_or(JsonError::Syntax)?;
        self.i += 1;
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => match self.hex4()? {
                0xdc00..=0xdfff => Err(JsonError::Syntax),
                0xd800..=0xdbff => {
                    self.eat(b'\\')?;
                    self.eat(b'u')?;
                    match self.hex4()? {
                        0xdc00..=0xdfff => Ok(()),
                        _ => Err(JsonError::Syntax),
                    }
                }
                _ => Ok(()),
            },
            _ => Err(JsonError::Syntax),
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.b.get(self.i..self.i + 4).ok_or(JsonError::Syntax)?;
        self.i += 4;
        hex(digits).ok_or(JsonError::Syntax)
    }

    fn nest(&self, depth: usize) -> Result<usize, JsonError> {
        if depth + 1 >= SERDE_NESTING {
            return Err(JsonError::Syntax);
        }
        Ok(depth + 1)
    }

    fn enter(&self, inner: usize) -> Result<(), JsonError> {
        if inner > self.limits.max_depth {
            return Err(JsonError::TooDeep);
        }
        Ok(())
    }

    fn count(&mut self) -> Result<(), JsonError> {
        self.members += 1;
        if self.members > self.limits.max_members {
            return Err(JsonError::TooManyMembers);
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<Kind, JsonError> {
        self.i += 1;
        let inner = self.nest(depth)?;
        self.enter(inner)?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Kind::Array);
        }
        loop {
            self.value(inner)?;
            self.count()?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Kind::Array);
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }

    /// The checks happen where `json.rs`'s visitor makes them: the reserved name of a first
    /// member before the depth, then per member its count, the reserved name, duplicates.
    fn object(&mut self, depth: usize) -> Result<Kind, JsonError> {
        self.i += 1;
        let inner = self.nest(depth)?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.enter(inner)?;
            return Ok(Kind::Object);
        }
        let mut key = self.key()?;
        if self.is_reserved(key) {
            return Err(JsonError::ReservedKey);
        }
        self.enter(inner)?;
        let base = self.keys.len;
        let mut sorted: Option<BTreeSet<Cow<'a, str>>> = None;
        let mut seen = Seen::default();
        loop {
            self.count()?;
            if self.is_reserved(key) {
                return Err(JsonError::ReservedKey);
            }
            if !seen.surely_new(key, self.keys.len - base)
                && self.is_duplicate(base, key, &mut sorted)
            {
                return Err(JsonError::DuplicateKey);
            }
            self.keys.push(key);
            self.ws();
            self.eat(b':')?;
            if depth == 0 {
                let value = self.span(inner)?;
                let raw = self.raw(key);
                let unescaped = key.escaped.then(|| self.unescaped(key));
                if let Some(top) = self.top.as_mut() {
                    match &unescaped {
                        Some(name) => top(name.as_bytes(), value),
                        None => top(raw, value),
                    }
                }
            } else {
                self.value(inner)?;
            }
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                    key = self.key()?;
                }
                Some(b'}') => {
                    self.i += 1;
                    self.keys.truncate(base);
                    return Ok(Kind::Object);
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }

    #[inline(always)]
    fn key(&mut self) -> Result<Key, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(JsonError::Syntax);
        }
        let start = self.i + 1;
        let escaped = self.string()?;
        let end = self.i - 1;
        // In registers: a `memcpy` into a buffer read back whole stalls store forwarding.
        let head = self.b[start..end]
            .iter()
            .take(8)
            .enumerate()
            .fold(0, |h, (i, &b)| h | u64::from(b) << (8 * i));
        Ok(Key {
            start,
            end,
            escaped,
            head,
        })
    }

    fn raw(&self, key: Key) -> &'a [u8] {
        &self.b[key.start..key.end]
    }

    fn unescaped(&self, key: Key) -> Cow<'a, str> {
        let text = std::str::from_utf8(self.raw(key)).unwrap_or("");
        if key.escaped {
            Cow::Owned(unescape(text))
        } else {
            Cow::Borrowed(text)
        }
    }

    #[inline(always)]
    fn is_reserved(&self, key: Key) -> bool {
        // An escape only lengthens a key's text.
        if key.end - key.start < NUMBER_TOKEN.len() {
            return false;
        }
        if key.escaped {
            self.unescaped(key) == NUMBER_TOKEN
        } else {
            self.raw(key) == NUMBER_TOKEN.as_bytes()
        }
    }

    /// Whether `key` names a member of the object whose keys start at `base` again.
    fn is_duplicate(
        &self,
        base: usize,
        key: Key,
        sorted: &mut Option<BTreeSet<Cow<'a, str>>>,
    ) -> bool {
        let keys = base..self.keys.len;
        if keys.len() < LINEAR_KEYS {
            return keys.into_iter().any(|i| self.same(self.keys.get(i), key));
        }
        let set =
            sorted.get_or_insert_with(|| keys.map(|i| self.unescaped(self.keys.get(i))).collect());
        !set.insert(self.unescaped(key))
    }

    fn same(&self, a: Key, b: Key) -> bool {
        if !a.escaped && !b.escaped {
            let len = a.end - a.start;
            len == b.end - b.start && a.head == b.head && (len <= 8 || self.raw(a) == self.raw(b))
        } else {
            self.unescaped(a) == self.unescaped(b)
        }
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
