//! Per-identity rate limits: the directive values, the sliding-window rule, the Redis-down
//! fallback, and the refusal's header texts. The counters' shared-memory table is `table`.
//!
//! A window is one second (`r/s`) or one minute (`r/m`). A key's count is estimated the way
//! NGINX Plus and Cloudflare slide two fixed windows: `cur + prev × (time left in the window
//! / window)`, rounded up, so that a client cannot send twice its quota across a boundary. A
//! node's `cur` is the cluster total it last read from Redis plus its own unsynced hits; a
//! request is allowed while that estimate + 1 stays within `rate + burst`.

use std::time::Duration;

use crate::directive::{parse_duration, ConfError};

pub mod report;
#[cfg(test)]
mod sim;
pub mod table;
#[cfg(test)]
mod tests;

pub use table::{Decision, LimitTable, SyncItem};

/// Largest `rate + burst`: a count fits in 20 bits of the packed state word.
pub const MAX_LIMIT: u32 = 1_000_000;
/// Default `sync=`.
pub const DEFAULT_SYNC: Duration = Duration::from_millis(200);
/// Default `size=`: 1 MiB (21,840 keys).
pub const DEFAULT_SIZE: usize = 1 << 20;
/// Smallest `size=`.
pub const MIN_SIZE: usize = 32 << 10;

/// The unit of `rate=`, which is also the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
}

impl Per {
    pub fn window_ms(self) -> u64 {
        match self {
            Self::Second => 1000,
            Self::Minute => 60_000,
        }
    }
}

/// `$jwt_limit_status`: what the request's rate limits said, as `$limit_req_status` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitStatus {
    /// No limit counted the request (none configured, the token refused before the limits,
    /// or every key empty): the variable is not found (empty, `-` in an access log).
    #[default]
    None,
    /// Counted by every limit that applies, refused by none; with the RateLimit fields to
    /// show when a zone has `headers=always`.
    Passed(Option<Shown>),
    /// Refused with 429.
    Rejected,
}

impl LimitStatus {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Passed(_) => Some("PASSED"),
            Self::Rejected => Some("REJECTED"),
        }
    }
}

/// The RateLimit fields of a request a limit let through: the zone (its index), what
/// remains after this request and the seconds until the window resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    pub zone: usize,
    pub remaining: u32,
    pub reset_s: u32,
}

impl Shown {
    /// Of several zones, the one with the least remaining (the first on a tie).
    pub fn tighter(a: Option<Self>, b: Self) -> Self {
        match a {
            Some(a) if a.remaining <= b.remaining => a,
            _ => b,
        }
    }
}

/// What the window rule needs of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `rate=`'s count per window.
    pub quota: u32,
    pub burst: u32,
    pub window_ms: u64,
}

impl Policy {
    /// Requests allowed per window, cluster-wide.
    pub fn limit(&self) -> u32 {
        self.quota + self.burst
    }

    /// The limit this node applies alone (Redis down or not configured): the whole limit, or
    /// its share with a `nodes=` hint (rounded up, at least 1).
    pub fn alone(&self, nodes: Option<u32>) -> u32 {
        match nodes {
            Some(n) if n > 1 => self.limit().div_ceil(n).max(1),
            _ => self.limit(),
        }
    }
}

/// Arguments of `auth_jwt_limit_zone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitZoneArgs {
    pub name: String,
    /// The complex value's text, e.g. `$jwt_claim_sub`.
    pub key: String,
    pub policy: Policy,
    pub size: usize,
    /// The `redis=` URL as written (parsed by `revocation::redis_url`).
    pub redis: Option<String>,
    pub sync: Duration,
    pub nodes: Option<u32>,
    /// `headers=always`: the RateLimit fields on the responses the zone lets through too.
    pub headers_always: bool,
}

/// Parses `rate=`'s value: `<N>r/s` or `<N>r/m`.
pub fn parse_rate(v: &str) -> Result<(u32, Per), ConfError> {
    let bad = || ConfError::InvalidValue(format!("rate={v}"));
    let (n, per) = if let Some(n) = v.strip_suffix("r/s") {
        (n, Per::Second)
    } else if let Some(n) = v.strip_suffix("r/m") {
        (n, Per::Minute)
    } else {
        return Err(bad());
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match n.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok((n, per)),
        _ => Err(bad()),
    }
}

/// Parses an NGINX size: bytes, or `k`/`m` suffixed.
pub fn parse_size(v: &str) -> Result<usize, ConfError> {
    let bad = || ConfError::InvalidValue(format!("size={v}"));
    let (digits, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1usize << 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
        _ => (v, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: usize = digits.parse().map_err(|_| bad())?;
    n.checked_mul(mult).ok_or_else(bad)
}

/// Parses `auth_jwt_limit_zone <name> key=$v rate=N r/s|r/m [burst=] [size=] [redis=]
/// [sync=] [nodes=] [headers=always]`.
pub fn parse_limit_zone(args: &[&str]) -> Result<LimitZoneArgs, ConfError> {
    let Some((name, rest)) = args.split_first() else {
        return Err(ConfError::Other("a zone name is required".into()));
    };
    if name.is_empty() || name.contains('=') || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfError::InvalidValue((*name).into()));
    }
    let (mut key, mut rate, mut burst, mut size) = (None, None, 0u32, DEFAULT_SIZE);
    let (mut redis, mut sync, mut nodes, mut headers_always) = (None, DEFAULT_SYNC, None, false);
    for arg in rest {
        let bad = || ConfError::InvalidValue((*arg).into());
        let (k, v) = arg.split_once('=').ok_or_else(bad)?;
        match k {
            "key" if v.starts_with('$') && v.len() > 1 => key = Some(v.to_owned()),
            "key" => return Err(ConfError::NotVariable(v.into())),
            "rate" => rate = Some(parse_rate(v)?),
            "burst" => burst = v.parse().map_err(|_| bad())?,
            "size" => size = parse_size(v)?,
            "redis" if v.starts_with("redis://") || v.starts_with("rediss://") => {
                redis = Some(v.to_owned());
            }
            "sync" => {
                sync = parse_duration(v)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(bad)?
            }
            "nodes" => nodes = Some(v.parse().ok().filter(|n| *n >= 1).ok_or_else(bad)?),
            "headers" if v == "always" => headers_always = true,
            _ => return Err(bad()),
        }
    }
    let key = key.ok_or_else(|| ConfError::Other("key= is required".into()))?;
    let (quota, per) = rate.ok_or_else(|| ConfError::Other("rate= is required".into()))?;
    if u64::from(quota) + u64::from(burst) > u64::from(MAX_LIMIT) {
        return Err(ConfError::Other(format!(
            "rate + burst must not exceed {MAX_LIMIT} per window"
        )));
    }
    if size < MIN_SIZE {
        return Err(ConfError::Other(format!(
            "size={size} is too small, at least {}k",
            MIN_SIZE >> 10
        )));
    }
    if sync > Duration::from_millis(per.window_ms()) {
        return Err(ConfError::Other(
            "sync= must not be longer than the rate's window".into(),
        ));
    }
    Ok(LimitZoneArgs {
        name: (*name).to_owned(),
        key,
        policy: Policy {
            quota,
            burst,
            window_ms: per.window_ms(),
        },
        size,
        redis,
        sync,
        nodes,
        headers_always,
    })
}

/// A key's counts: the window they belong to, hits in it, and hits in the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub window: u64,
    pub cur: u32,
    pub prev: u32,
}

impl Counts {
    /// The counts seen from `window` (at or after `self.window`).
    pub fn at(self, window: u64) -> Self {
        match window.wrapping_sub(self.window) {
            0 => self,
            1 => Self {
                window,
                cur: 0,
                prev: self.cur,
            },
            _ => Self {
                window,
                cur: 0,
                prev: 0,
            },
        }
    }

    /// The sliding estimate `elapsed_ms` into the window, rounded up.
    pub fn estimate(&self, elapsed_ms: u64, window_ms: u64) -> u64 {
        let left = window_ms.saturating_sub(elapsed_ms);
        u64::from(self.cur) + (u64::from(self.prev) * left).div_ceil(window_ms)
    }
}

/// The window rule at `now_ms` against `limit`: allowed (with what remains after this one),
/// or refused with the seconds until a request would pass.
pub fn decide(c: Counts, now_ms: u64, window_ms: u64, limit: u32) -> Decision {
    let c = c.at(now_ms / window_ms);
    let elapsed = now_ms % window_ms;
    let est = c.estimate(elapsed, window_ms);
    let limit = u64::from(limit);
    if est < limit {
        return Decision::Allow {
            remaining: (limit - est - 1) as u32,
            reset_s: reset_secs(window_ms - elapsed),
        };
    }
    Decision::Limit {
        retry_after: retry_after(c, elapsed, window_ms, limit),
    }
}

fn reset_secs(ms: u64) -> u32 {
    ms.div_ceil(1000).max(1) as u32
}

/// Seconds until the estimate leaves room for one request (at least 1).
fn retry_after(c: Counts, elapsed: u64, w: u64, limit: u64) -> u32 {
    let cur = u64::from(c.cur);
    let prev = u64::from(c.prev);
    let wait_ms = if cur < limit && prev > 0 {
        // In this window: prev × left / w <= limit - 1 - cur.
        let room = limit - 1 - cur;
        let left = room * w / prev;
        (w - elapsed).saturating_sub(left)
    } else {
        // In the next window, where cur becomes prev: cur × left / w <= limit - 1.
        let left = ((limit - 1) * w).checked_div(cur).unwrap_or(w);
        (w - elapsed) + w.saturating_sub(left).min(w)
    };
    reset_secs(wait_ms.max(1))
}

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): `"<zone>";q=<quota>;w=<s>`.
pub fn policy_header(name: &str, p: &Policy) -> String {
    format!("\"{name}\";q={};w={}", p.limit(), p.window_ms / 1000)
}

/// `RateLimit`: `"<zone>";r=<remaining>;t=<seconds to reset>`.
pub fn ratelimit_header(name: &str, remaining: u32, reset_s: u32) -> String {
    format!("\"{name}\";r={remaining};t={reset_s}")
}

/// The key's 64-bit identity, the same on every node (FNV-1a over the zone name, a zero
/// byte and the key's value), used in the table and in the Redis key.
pub fn key_hash(zone: &str, value: &[u8]) -> u64 {
    KeyHasher::new(zone).hash(value)
}

/// [`key_hash`] with the zone's part done once, at configuration load: the request path
/// hashes only the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHasher(u64);

impl KeyHasher {
    const PRIME: u64 = 0x0100_0000_01b3;

    pub fn new(zone: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in zone.as_bytes().iter().chain(&[0]) {
            h = (h ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        Self(h)
    }

    pub fn hash(self, value: &[u8]) -> u64 {
        let mut h = self.0;
        for &b in value {
            h = (h ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        h.max(1)
    }
}

/// The claim a `key=` reads when it is exactly one `$jwt_claim_<name>` (or
/// `${jwt_claim_<name>}`): the name as NGINX looks it up, lower-cased. Such a key is read
/// straight from the verified claims, not through NGINX's script engine and variable slot.
pub fn claim_key(key: &str) -> Option<String> {
    let name = key.strip_prefix('$')?;
    let name = match name.strip_prefix('{') {
        Some(braced) => braced.strip_suffix('}')?,
        None => name,
    };
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if !name.bytes().all(is_name) {
        return None;
    }
    let name = name.to_ascii_lowercase();
    let claim = name.strip_prefix("jwt_claim_")?;
    (!claim.is_empty()).then(|| claim.to_owned())
}

/// The Redis key for one key's window.
pub fn redis_key(zone: &str, hash: u64, window: u64) -> String {
    format!("auth_jwt:limit:{zone}:{hash:016x}:{window}")
}
