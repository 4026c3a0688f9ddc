//! Pure parsers for directive arguments: every check a directive makes, without NGINX.
#![forbid(unsafe_code)]

use core::fmt;
use std::time::Duration;

use crate::jwt::alg::{Alg, AlgSet};

/// Why a directive's arguments were refused; worded to follow NGINX's own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfError {
    /// `invalid value "x"`.
    InvalidValue(String),
    /// `"x" must be a variable ($name)`.
    NotVariable(String),
    /// `unknown algorithm "x"`.
    UnknownAlg(String),
    /// `algorithm "none" can never be allowed`.
    AlgNone,
    /// `invalid header name "x"`.
    HeaderName(String),
    /// `header "x" cannot carry an identity`.
    ReservedHeader(String),
    /// Free-form reason, already worded.
    Other(String),
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidValue(v) => write!(f, "invalid value \"{v}\""),
            Self::NotVariable(v) => write!(f, "\"{v}\" must be a variable, such as $name"),
            Self::UnknownAlg(v) => write!(f, "unknown algorithm \"{v}\""),
            Self::AlgNone => f.write_str("algorithm \"none\" can never be allowed"),
            Self::HeaderName(v) => write!(f, "invalid header name \"{v}\""),
            Self::ReservedHeader(v) => write!(f, "header \"{v}\" cannot carry an identity"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for ConfError {}

/// Arguments of `auth_jwt`.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthJwtArgs<'a> {
    /// `auth_jwt off;`
    Off,
    /// `auth_jwt <realm> [token=$var];` The realm may contain variables.
    On {
        realm: &'a str,
        token: Option<&'a str>,
    },
}

/// Parses `auth_jwt off` | `auth_jwt <realm> [token=$variable]`.
pub fn parse_auth_jwt<'a>(args: &[&'a str]) -> Result<AuthJwtArgs<'a>, ConfError> {
    match args {
        ["off"] => Ok(AuthJwtArgs::Off),
        [realm] => Ok(AuthJwtArgs::On {
            realm: check_realm(realm)?,
            token: None,
        }),
        [realm, param] => {
            let Some(var) = param.strip_prefix("token=") else {
                return Err(ConfError::InvalidValue((*param).into()));
            };
            if !var.starts_with('$') || var.len() < 2 {
                return Err(ConfError::NotVariable(var.into()));
            }
            Ok(AuthJwtArgs::On {
                realm: check_realm(realm)?,
                token: Some(var),
            })
        }
        _ => Err(ConfError::Other("invalid number of arguments".into())),
    }
}

/// Whether a `token=` value reads the query string, which NGINX writes into its log lines
/// (`$request_uri`, `$args`, `$query_string`, `$arg_*`, braced or not).
pub fn token_in_query(value: &str) -> bool {
    value.split('$').skip(1).any(|var| {
        let name = var.strip_prefix('{').unwrap_or(var);
        let end = name
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(name.len());
        let name = &name[..end];
        matches!(name, "args" | "query_string" | "request_uri") || name.starts_with("arg_")
    })
}

fn check_realm(realm: &str) -> Result<&str, ConfError> {
    if realm.bytes().any(|b| b.is_ascii_control()) {
        return Err(ConfError::Other(
            "realm must not contain control characters".into(),
        ));
    }
    Ok(realm)
}

/// Parses the allow-list of `auth_jwt_algorithms`.
pub fn parse_algorithms(args: &[&str]) -> Result<AlgSet, ConfError> {
    let mut set = AlgSet::empty();
    for name in args {
        if name.eq_ignore_ascii_case("none") {
            return Err(ConfError::AlgNone);
        }
        let alg = Alg::from_name(name).ok_or_else(|| ConfError::UnknownAlg((*name).into()))?;
        set.insert(alg);
    }
    Ok(set)
}

/// The status an unmet `auth_jwt_require` answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequireError {
    Unauthorized,
    Forbidden,
}

/// Splits `auth_jwt_require $v ... [error=401|403]` into its values and its error code.
pub fn parse_require<'a>(args: &[&'a str]) -> Result<(Vec<&'a str>, RequireError), ConfError> {
    let (values, error) = match args.split_last() {
        Some((last, rest)) if last.starts_with("error=") => {
            let code = match &last["error=".len()..] {
                "401" => RequireError::Unauthorized,
                "403" => RequireError::Forbidden,
                _ => return Err(ConfError::InvalidValue((*last).into())),
            };
            (rest, code)
        }
        _ => (args, RequireError::Unauthorized),
    };
    if values.is_empty() {
        return Err(ConfError::Other("no values to require".into()));
    }
    if let Some(v) = values.iter().find(|v| !v.contains('$')) {
        return Err(ConfError::NotVariable((*v).into()));
    }
    Ok((values.to_vec(), error))
}

/// Checks a `$name` argument and returns the name without `$`.
pub fn parse_variable_name(arg: &str) -> Result<&str, ConfError> {
    match arg.strip_prefix('$') {
        Some(name)
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Ok(name)
        }
        _ => Err(ConfError::NotVariable(arg.into())),
    }
}

/// Checks a claim or header path (`auth_jwt_claim_set $v name [nested ...]`).
pub fn parse_path(args: &[&str]) -> Result<Vec<String>, ConfError> {
    if args.is_empty() {
        return Err(ConfError::Other("claim name is missing".into()));
    }
    if let Some(bad) = args.iter().find(|a| a.is_empty()) {
        return Err(ConfError::InvalidValue((*bad).into()));
    }
    Ok(args.iter().map(|a| (*a).to_owned()).collect())
}

/// Request headers that frame or route the request: an identity may not be written there.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "authorization",
    "proxy-authorization",
    "cookie",
];

/// Checks an identity header name (an RFC 9110 token) and returns it lower-cased.
pub fn parse_header_name(name: &str) -> Result<String, ConfError> {
    const TCHAR: &[u8] = b"!#$%&'*+-.^_`|~";
    let valid = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || TCHAR.contains(&b));
    if !valid {
        return Err(ConfError::HeaderName(name.into()));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(ConfError::ReservedHeader(name.into()));
    }
    Ok(lower)
}

/// Parses an NGINX time such as `500ms`, `30s`, `10m`, `1h30m`, `2d` (a bare number is
/// seconds).
pub fn parse_duration(text: &str) -> Result<Duration, ConfError> {
    let bad = || ConfError::InvalidValue(text.into());
    if text.is_empty() {
        return Err(bad());
    }
    let (mut total, mut rest) = (Duration::ZERO, text);
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "" | "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86400),
            "w" => Duration::from_secs(7 * 86400),
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = unit
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Parameters of `auth_jwt_key_uri` and `auth_jwt_discovery`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceArgs {
    pub url: String,
    pub refresh: Duration,
    pub timeout: Duration,
    pub max_stale: Duration,
}

/// Longest key URI or discovery issuer: the shared zone keeps each in a slot of this many
/// bytes, and a longer one would never match its slot again (no keys, ever).
pub const MAX_URL_LEN: usize = 1024;

/// Parses `<https-url> [refresh=<time>] [timeout=<time>] [max_stale=<time>]`.
pub fn parse_source(args: &[&str]) -> Result<SourceArgs, ConfError> {
    let (url, params) = args
        .split_first()
        .ok_or_else(|| ConfError::Other("url is missing".into()))?;
    if !crate::refresh::is_https_url(url) {
        return Err(ConfError::Other(format!(
            "\"{url}\" is not an https:// URL"
        )));
    }
    if url.len() > MAX_URL_LEN {
        return Err(ConfError::Other(format!(
            "URL is longer than {MAX_URL_LEN} bytes"
        )));
    }
    let mut source = SourceArgs {
        url: (*url).to_owned(),
        refresh: Duration::from_secs(600),
        timeout: Duration::from_secs(5),
        max_stale: Duration::from_secs(86400),
    };
    for param in params {
        let (name, value) = param
            .split_once('=')
            .ok_or_else(|| ConfError::InvalidValue((*param).into()))?;
        let d = parse_duration(value).map_err(|_| ConfError::InvalidValue((*param).into()))?;
        let field = match name {
            "refresh" => &mut source.refresh,
            "timeout" => &mut source.timeout,
            "max_stale" => &mut source.max_stale,
            _ => return Err(ConfError::InvalidValue((*param).into())),
        };
        *field = d;
    }
    if source.refresh < Duration::from_secs(1) || source.timeout < Duration::from_millis(100) {
        return Err(ConfError::Other(
            "refresh must be at least 1s and timeout at least 100ms".into(),
        ));
    }
    Ok(source)
}

/// What a location does while it has no usable keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// 503 with `Retry-After`.
    Closed,
    /// Pass the request on unauthenticated, identity headers stripped.
    Open,
}

/// Parses `auth_jwt_fail_mode closed | open`.
pub fn parse_fail_mode(arg: &str) -> Result<FailMode, ConfError> {
    match arg {
        "closed" => Ok(FailMode::Closed),
        "open" => Ok(FailMode::Open),
        _ => Err(ConfError::InvalidValue(arg.into())),
    }
}

/// `auth_jwt_type`: which kind of token a location expects (NGINX Plus's meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// A JWS (RFC 7515).
    Signed,
    /// A JWE (RFC 7516) whose plaintext is the claims.
    Encrypted,
    /// A JWE whose plaintext is a JWS (`cty` `JWT`, RFC 7519 §5.2): signed, then encrypted.
    Nested,
}

/// Parses `auth_jwt_type signed | encrypted | nested`.
pub fn parse_token_type(arg: &str) -> Result<TokenType, ConfError> {
    match arg {
        "signed" => Ok(TokenType::Signed),
        "encrypted" => Ok(TokenType::Encrypted),
        "nested" => Ok(TokenType::Nested),
        _ => Err(ConfError::InvalidValue(arg.into())),
    }
}

/// Parses `auth_jwt_scope <scope> ...` (RFC 6749 scope tokens) into the space-separated list.
pub fn parse_scope(args: &[&str]) -> Result<String, ConfError> {
    let token = |s: &&str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b == b'!' || (b'#'..=b'[').contains(&b) || (b']'..=b'~').contains(&b))
    };
    match args.iter().find(|s| !token(s)) {
        Some(bad) => Err(ConfError::InvalidValue((*bad).into())),
        None if args.is_empty() => Err(ConfError::Other("scope is missing".into())),
        None => Ok(args.join(" ")),
    }
}

/// Parses `auth_jwt_resource_metadata <https-url>` (RFC 9728).
pub fn parse_resource_metadata(arg: &str) -> Result<String, ConfError> {
    if !crate::refresh::is_https_url(arg) || arg.contains('"') || arg.contains('\\') {
        return Err(ConfError::Other(format!(
            "\"{arg}\" is not an https:// URL"
        )));
    }
    Ok(arg.to_owned())
}

/// Largest `auth_jwt_cache` accepted.
pub const MAX_CACHE_ENTRIES: usize = 1_000_000;

/// Parses `auth_jwt_cache <entries> | off`; `off` is 0 entries.
pub fn parse_cache(arg: &str) -> Result<usize, ConfError> {
    if arg == "off" {
        return Ok(0);
    }
    match arg.parse::<usize>() {
        Ok(n) if (1..=MAX_CACHE_ENTRIES).contains(&n) && !arg.starts_with('+') => Ok(n),
        _ => Err(ConfError::InvalidValue(arg.into())),
    }
}

#[cfg(test)]
#[path = "directive_tests.rs"]
mod tests;
