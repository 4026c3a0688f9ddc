//! `auth_jwt_revocation_redis` arguments: the `redis://` / `rediss://` URL and parameters.
//! No error message ever repeats a password.

use core::fmt;
use std::time::Duration;

use crate::directive::{parse_duration, ConfError};

/// Default stream key.
pub const DEFAULT_STREAM: &str = "auth_jwt:revocations";

/// What to do once the set is older than `max_stale` (no sync with Redis for that long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStale {
    /// Keep refusing what the last set refuses, let the rest through (the default).
    Serve,
    /// Answer 503 to every protected request until Redis is back.
    Refuse,
}

/// A parsed Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The URL without its password: safe for logs and the status page.
impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let user = match (&self.user, &self.password) {
            (Some(u), _) => format!("{u}@"),
            (None, Some(_)) => "default@".into(),
            (None, None) => String::new(),
        };
        write!(
            f,
            "{scheme}://{user}{}:{}/{}",
            self.host, self.port, self.db
        )
    }
}

/// `auth_jwt_revocation_redis` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisArgs {
    pub url: RedisUrl,
    pub stream: String,
    /// Connect and command time limit.
    pub timeout: Duration,
    /// How long a sync may be missing before `on_stale` applies.
    pub max_stale: Duration,
    pub on_stale: OnStale,
    /// `password_file=`: read by the master at configuration load.
    pub password_file: Option<String>,
    /// `trusted_certificate=`: CA bundle for `rediss://`.
    pub trusted_certificate: Option<String>,
}

fn bad(reason: &str) -> ConfError {
    ConfError::Other(reason.into())
}

/// Parses `redis://[user[:password]@]host[:port][/db]` (or `rediss://`).
pub fn parse_redis_url(url: &str) -> Result<RedisUrl, ConfError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("redis://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("rediss://") {
        (true, r)
    } else {
        return Err(bad("the URL must start with redis:// or rediss://"));
    };
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (Some(a), r),
        None => (None, rest),
    };
    let (user, password) = match auth {
        None => (None, None),
        Some(a) => {
            let (u, p) = match a.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (a, None),
            };
            let u = (!u.is_empty()).then(|| u.to_owned());
            let p = p.filter(|p| !p.is_empty()).map(str::to_owned);
            (u, p)
        }
    };
    let (hostport, db) = match rest.split_once('/') {
        Some((h, "")) => (h, 0),
        Some((h, d)) => (
            h,
            d.parse::<i64>()
                .ok()
                .filter(|d| (0..=1_000_000).contains(d))
                .ok_or_else(|| bad("the URL's database is not a number"))?,
        ),
        None => (rest, 0),
    };
    let port_of = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the URL's port is not a number from 1 to 65535"))
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, rest) = v6
            .split_once(']')
            .ok_or_else(|| bad("the URL has no valid host"))?;
        match rest.strip_prefix(':') {
            Some(p) => (h, port_of(p)?),
            None if rest.is_empty() => (h, 6379),
            None => return Err(bad("the URL has no valid host")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, port_of(p)?),
            None => (hostport, 6379),
        }
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_');
    if host.is_empty() || !host.chars().all(valid) {
        return Err(bad("the URL has no valid host"));
    }
    Ok(RedisUrl {
        tls,
        host: host.to_owned(),
        port,
        db,
        user,
        password,
    })
}

/// Parses the whole directive: the URL, then `name=value` parameters.
pub fn parse_redis_args(args: &[&str]) -> Result<RedisArgs, ConfError> {
    let (url, params) = args.split_first().ok_or_else(|| bad("url is missing"))?;
    let mut out = RedisArgs {
        url: parse_redis_url(url)?,
        stream: DEFAULT_STREAM.into(),
        timeout: Duration::from_secs(5),
        max_stale: Duration::from_secs(86400),
        on_stale: OnStale::Serve,
        password_file: None,
        trusted_certificate: None,
    };
    for param in params {
        let invalid = || ConfError::InvalidValue((*param).into());
        let (name, value) = param.split_once('=').ok_or_else(invalid)?;
        if value.is_empty() {
            return Err(invalid());
        }
        match name {
            "stream" => {
                if value.len() > 256 || value.chars().any(|c| c.is_control()) {
                    return Err(invalid());
                }
                out.stream = value.into();
            }
            "timeout" => out.timeout = parse_duration(value).map_err(|_| invalid())?,
            "max_stale" => out.max_stale = parse_duration(value).map_err(|_| invalid())?,
            "on_stale" => {
                out.on_stale = match value {
                    "serve" => OnStale::Serve,
                    "503" => OnStale::Refuse,
                    _ => return Err(invalid()),
                }
            }
            "password_file" => out.password_file = Some(value.into()),
            "trusted_certificate" => out.trusted_certificate = Some(value.into()),
            _ => return Err(invalid()),
        }
    }
    if out.timeout < Duration::from_millis(100) || out.timeout > Duration::from_secs(60) {
        return Err(bad("timeout must be from 100ms to 60s"));
    }
    if out.password_file.is_some() && out.url.password.is_some() {
        return Err(bad("a password in the URL and password_file= both given"));
    }
    if out.trusted_certificate.is_some() && !out.url.tls {
        return Err(bad("trusted_certificate= needs a rediss:// URL"));
    }
    Ok(out)
}

/// The password in a `password_file=`: its first line, without the line end.
pub fn password_from_file(text: &str) -> Result<String, ConfError> {
    let line = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    if line.is_empty() {
        return Err(bad("the password file is empty"));
    }
    Ok(line.to_owned())
}
