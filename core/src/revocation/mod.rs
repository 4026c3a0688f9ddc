//! Token revocation: what a revocation says (by `jti`, by subject issued before a time, by
//! `kid`), how one is read from a Redis Stream entry or a JSON file, and how a verified token
//! is checked against the lock-free table in `table`.

use core::cell::Cell;
use core::fmt;

pub mod file;
pub mod redis_url;
pub mod report;
pub mod table;

#[cfg(test)]
mod clean_tests;
#[cfg(test)]
mod tests;

pub use self::table::{Insert, Stamp, Table};

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jti,
    Sub,
    Kid,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Jti, Kind::Sub, Kind::Kid];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Sub => "sub",
            Kind::Kid => "kid",
        }
    }

    /// The tag kept in a table key's low bits (never 0, the empty key).
    fn tag(self) -> u64 {
        match self {
            Kind::Jti => 1,
            Kind::Sub => 2,
            Kind::Kid => 3,
        }
    }

    fn from_tag(tag: u64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.tag() == tag & 3)
    }
}

/// One revocation, as read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The one token with this `jti`, until `exp` (its own expiry; after it the token is
    /// refused as expired anyway).
    Jti { jti: String, exp: Option<i64> },
    /// Every token of `sub` (under `iss` when given) issued before `before` (`iat < before`;
    /// a token without `iat` counts as issued before).
    Sub {
        sub: String,
        iss: Option<String>,
        before: i64,
    },
    /// Every token whose header names this `kid`, until `exp` when given, else for good.
    Kid { kid: String, exp: Option<i64> },
}

/// Why a stream entry or a file entry is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// No `jti`, `sub` or `kid` field, or more than one of them.
    NoKind,
    /// A field this format does not have.
    UnknownField(String),
    /// A field given twice.
    Duplicate(&'static str),
    /// A time that is not a whole number of seconds since the epoch.
    BadTime(&'static str),
    /// A `sub` revocation without `before`.
    MissingBefore,
    /// An empty or overlong value.
    BadValue(&'static str),
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::NoKind => f.write_str("needs exactly one of the fields jti, sub, kid"),
            EntryError::UnknownField(name) => {
                write!(f, "unknown field \"{}\"", crate::authn::log_safe(name))
            }
            EntryError::Duplicate(name) => write!(f, "field \"{name}\" given twice"),
            EntryError::BadTime(name) => {
                write!(
                    f,
                    "field \"{name}\" is not a time in seconds since the epoch"
                )
            }
            EntryError::MissingBefore => f.write_str("a sub revocation needs \"before\""),
            EntryError::BadValue(name) => {
                write!(
                    f,
                    "field \"{name}\" is empty or longer than {MAX_VALUE} bytes"
                )
            }
        }
    }
}

/// Longest `jti`, `sub`, `iss` or `kid` value accepted.
pub const MAX_VALUE: usize = 1024;

/// Parses one entry from its field/value pairs (a Redis Stream entry, or a file object's
/// members with numbers written as text).
pub fn parse_entry<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Revocation, EntryError> {
    let (mut jti, mut sub, mut kid, mut iss, mut exp, mut before) =
        (None, None, None, None, None, None);
    for (name, value) in fields {
        let (slot, key): (&mut Option<&str>, &'static str) = match name {
            "jti" => (&mut jti, "jti"),
            "sub" => (&mut sub, "sub"),
            "kid" => (&mut kid, "kid"),
            "iss" => (&mut iss, "iss"),
            "exp" => (&mut exp, "exp"),
            "before" => (&mut before, "before"),
            other => return Err(EntryError::UnknownField(other.to_owned())),
        };
        if slot.replace(value).is_some() {
            return Err(EntryError::Duplicate(key));
        }
    }
    let value = |v: &str, name: &'static str| {
        if v.is_empty() || v.len() > MAX_VALUE {
            Err(EntryError::BadValue(name))
        } else {
            Ok(v.to_owned())
        }
    };
    let time = |v: Option<&str>, name: &'static str| {
        v.map(|t| {
            t.parse::<i64>()
                .ok()
                .filter(|t| (0..=i64::from(u32::MAX)).contains(t))
                .ok_or(EntryError::BadTime(name))
        })
        .transpose()
    };
    let exp = time(exp, "exp")?;
    let before = time(before, "before")?;
    match (jti, sub, kid) {
        (Some(j), None, None) if iss.is_none() && before.is_none() => Ok(Revocation::Jti {
            jti: value(j, "jti")?,
            exp,
        }),
        (None, Some(s), None) if exp.is_none() => Ok(Revocation::Sub {
            sub: value(s, "sub")?,
            iss: iss.map(|i| value(i, "iss")).transpose()?,
            before: before.ok_or(EntryError::MissingBefore)?,
        }),
        (None, None, Some(k)) if iss.is_none() && before.is_none() => Ok(Revocation::Kid {
            kid: value(k, "kid")?,
            exp,
        }),
        (Some(_), None, None) | (None, None, Some(_)) => {
            Err(EntryError::UnknownField(if iss.is_some() {
                "iss".into()
            } else {
                "before".into()
            }))
        }
        (None, Some(_), None) => Err(EntryError::UnknownField("exp".into())),
        _ => Err(EntryError::NoKind),
    }
}

/// A table entry: its key (a hash tagged with the kind) and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: u64,
    /// Until when the entry holds (seconds since the epoch; 0: for good).
    pub until: u32,
    /// For `Sub`: tokens issued before this time are refused.
    pub before: u32,
}

impl Entry {
    pub fn kind(&self) -> Kind {
        Kind::from_tag(self.key).unwrap_or(Kind::Jti)
    }

    pub(crate) fn meta(&self) -> u64 {
        (u64::from(self.until) << 32) | u64::from(self.before)
    }

    pub(crate) fn from_parts(key: u64, meta: u64) -> Self {
        Self {
            key,
            until: (meta >> 32) as u32,
            before: meta as u32,
        }
    }

    /// Whether the entry still holds at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.until == 0 || i64::from(self.until) > now
    }
}

fn clamp_time(t: i64) -> u32 {
    t.clamp(1, i64::from(u32::MAX)) as u32
}

impl Revocation {
    pub fn kind(&self) -> Kind {
        match self {
            Revocation::Jti { .. } => Kind::Jti,
            Revocation::Sub { .. } => Kind::Sub,
            Revocation::Kid { .. } => Kind::Kid,
        }
    }

    /// The table entry, given `lifetime`, the longest token lifetime (seconds): a `jti` without
    /// `exp` holds that long from `now`, a `sub` revocation that long after `before` (every
    /// token issued before it has expired by then).
    pub fn entry(&self, now: i64, lifetime: i64) -> Entry {
        match self {
            Revocation::Jti { jti, exp } => Entry {
                key: key(Kind::Jti, "", jti),
                until: clamp_time(exp.unwrap_or(now.saturating_add(lifetime))),
                before: 0,
            },
            Revocation::Sub { sub, iss, before } => Entry {
                key: key(Kind::Sub, iss.as_deref().unwrap_or_default(), sub),
                until: clamp_time(before.saturating_add(lifetime)),
                before: clamp_time(*before),
            },
            Revocation::Kid { kid, exp } => Entry {
                key: key(Kind::Kid, "", kid),
                until: exp.map_or(0, clamp_time),
                before: 0,
            },
        }
    }
}

/// The table key of a value: FNV-1a over the kind, the scope (issuer) and the value, mixed
/// (murmur3's finaliser), tagged with the kind in the two low bits, so never 0.
pub fn key(kind: Kind, scope: &str, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&[kind.tag() as u8]);
    eat(&(scope.len() as u64).to_le_bytes());
    eat(scope.as_bytes());
    eat(value.as_bytes());
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h & !3) | kind.tag()
}

/// What a verified token offers to the check: borrowed from its claims, nothing copied.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub jti: Option<&'a str>,
    pub sub: Option<&'a str>,
    pub iss: Option<&'a str>,
    pub iat: Option<i64>,
    pub kid: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// The facts of a token's header `kid` and claims.
    pub fn of(
        kid: Option<&'a str>,
        claims: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        Self {
            jti: text("jti"),
            sub: text("sub"),
            iss: text("iss"),
            iat: claims.get("iat").and_then(|v| {
                v.as_i64().or_else(|| {
                    v.as_f64()
                        .filter(|f| f.is_finite())
                        .map(|f| f.floor() as i64)
                })
            }),
            kid,
        }
    }
}

/// Why a token is revoked, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    pub kind: Kind,
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Jti => f.write_str("token revoked (jti)"),
            Kind::Sub => f.write_str("token revoked (sub issued before the revocation)"),
            Kind::Kid => f.write_str("token revoked (kid)"),
        }
    }
}

/// A token's table keys, hashed once from its [`Facts`]: a cached token keeps its probe, so
/// that each later request costs only the table lookups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    kid: Option<u64>,
    jti: Option<u64>,
    /// `sub` under the token's `iss`, and under any issuer.
    sub_scoped: Option<u64>,
    sub: Option<u64>,
    iat: Option<i64>,
}

impl Probe {
    pub fn of(facts: &Facts<'_>) -> Self {
        Self {
            kid: facts.kid.map(|kid| key(Kind::Kid, "", kid)),
            jti: facts.jti.map(|jti| key(Kind::Jti, "", jti)),
            sub_scoped: facts
                .sub
                .zip(facts.iss)
                .map(|(sub, iss)| key(Kind::Sub, iss, sub)),
            sub: facts.sub.map(|sub| key(Kind::Sub, "", sub)),
            iat: facts.iat,
        }
    }
}

/// A token's last check that found nothing, with the table's [`Stamp`] before it and its
/// time: while the stamp holds, a check at that time or later finds nothing either (entries
/// only expire), and costs two loads from the table's first cache line instead of the lookups.
/// Kept with a cached token, in one worker.
#[derive(Debug, Default)]
pub struct Clean(Cell<Option<(Stamp, i64)>>);

/// [`check_probe`] for a token that keeps its [`Clean`] memo.
pub fn check_remembered(
    table: &Table<'_>,
    probe: &Probe,
    clean: &Clean,
    now: i64,
) -> Option<Revoked> {
    if table.is_empty() {
        return None;
    }
    let stamp = table.stamp();
    if let (Some(stamp), Some((seen, at))) = (stamp, clean.0.get()) {
        if stamp == seen && now >= at {
            return None;
        }
    }
    let revoked = check_probe(table, probe, now);
    if revoked.is_none() {
        clean.0.set(stamp.map(|stamp| (stamp, now)));
    }
    revoked
}

/// Checks a token against the table at `now`: its `kid`, its `jti`, and its `sub` under its
/// `iss` and under any issuer. No allocation, no lock.
pub fn check(table: &Table<'_>, facts: &Facts<'_>, now: i64) -> Option<Revoked> {
    check_probe(table, &Probe::of(facts), now)
}

/// [`check`] with the keys hashed already.
pub fn check_probe(table: &Table<'_>, probe: &Probe, now: i64) -> Option<Revoked> {
    if table.is_empty() {
        return None;
    }
    // A kind the table holds none of costs no probe (its count shares the header's line).
    let hit = |kind, key: Option<u64>| {
        key.filter(|_| table.count(kind) > 0)
            .and_then(|k| table.get(k, now))
    };
    if hit(Kind::Kid, probe.kid).is_some() {
        return Some(Revoked { kind: Kind::Kid });
    }
    if hit(Kind::Jti, probe.jti).is_some() {
        return Some(Revoked { kind: Kind::Jti });
    }
    let sub = |key| hit(Kind::Sub, key);
    for e in sub(probe.sub_scoped).into_iter().chain(sub(probe.sub)) {
        if probe.iat.is_none_or(|iat| iat < i64::from(e.before)) {
            return Some(Revoked { kind: Kind::Sub });
        }
    }
    None
}
