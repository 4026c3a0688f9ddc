//! When to fetch again, and what the IdP's answers mean: refresh, backoff, discovery.
#![forbid(unsafe_code)]

use core::fmt;
use std::time::Duration;

use serde_json::Value;

/// Shortest refresh a `Cache-Control: max-age` may ask for, unless the configured `refresh`
/// is shorter still.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(30);
/// First retry after a failed fetch; doubles per failure up to [`MAX_BACKOFF`] or `refresh`.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Unknown `kid`s wake the fetcher at most this often per key URI.
pub const WAKE_INTERVAL: i64 = 30;

/// The next refresh after a successful fetch: the IdP's `max-age` when it asks for a
/// refresh sooner than configured (but not sooner than [`MIN_MAX_AGE`]), else `refresh`.
pub fn refresh_interval(max_age: Option<Duration>, refresh: Duration) -> Duration {
    match max_age {
        Some(age) => age.max(MIN_MAX_AGE).min(refresh),
        None => refresh,
    }
}

/// Delay before retry number `failures` (1 after the first failure): exponential from
/// [`FIRST_BACKOFF`], capped by `refresh` and [`MAX_BACKOFF`], then scaled by `jitter` in
/// `[0.8, 1.2)` (pass a uniform `unit` in `[0, 1)`) so that nodes do not retry in step.
/// Any `unit` is safe: out of range it is clamped, and NaN means no jitter.
pub fn backoff(failures: u32, refresh: Duration, unit: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = FIRST_BACKOFF
        .saturating_mul(1 << exp)
        .min(MAX_BACKOFF)
        .min(refresh.max(FIRST_BACKOFF));
    // `clamp` passes NaN through, and `mul_f64` panics on it.
    let unit = if unit.is_nan() {
        0.5
    } else {
        unit.clamp(0.0, 1.0)
    };
    base.mul_f64(0.8 + 0.4 * unit)
}

/// `max-age` from a `Cache-Control` header; `None` for `no-cache`/`no-store` or when absent.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.to_ascii_lowercase().as_str() {
            "no-cache" | "no-store" => return None,
            "max-age" => age = value.trim_matches('"').parse::<u64>().ok(),
            _ => {}
        }
    }
    age.map(Duration::from_secs)
}

/// Why an OpenID Provider's discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    Json,
    IssuerMismatch,
    NoJwksUri,
    JwksUriNotHttps,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "discovery document is not valid JSON",
            Self::IssuerMismatch => "discovery document names another issuer",
            Self::NoJwksUri => "discovery document has no jwks_uri",
            Self::JwksUriNotHttps => "discovery jwks_uri is not https",
        })
    }
}

impl std::error::Error for DiscoveryError {}

/// The `jwks_uri` of a discovery document, which must name `issuer` exactly (OpenID
/// Connect Discovery 1.0, section 4.3) and point at an `https` URL.
pub fn jwks_uri(document: &[u8], issuer: &str) -> Result<String, DiscoveryError> {
    let doc: Value = serde_json::from_slice(document).map_err(|_| DiscoveryError::Json)?;
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(DiscoveryError::IssuerMismatch);
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or(DiscoveryError::NoJwksUri)?
        .to_owned();
    if !is_https_url(&uri) {
        return Err(DiscoveryError::JwksUriNotHttps);
    }
    Ok(uri)
}

/// `<issuer>/.well-known/openid-configuration`, without doubling a trailing slash.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// An absolute `https://host...` URL without whitespace or control characters; the host
/// may not be empty (`https:///path`, `https://?x`).
pub fn is_https_url(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        && url
            .as_bytes()
            .get(8)
            .is_some_and(|b| !matches!(b, b'/' | b'?' | b'#'))
        && !url.bytes().any(|b| b.is_ascii_control() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn refresh_follows_max_age_within_bounds() {
        assert_eq!(refresh_interval(None, S(600)), S(600));
        assert_eq!(refresh_interval(Some(S(120)), S(600)), S(120));
        assert_eq!(refresh_interval(Some(S(0)), S(600)), S(30));
        assert_eq!(refresh_interval(Some(S(86400)), S(600)), S(600));
        // A configured refresh below the floor wins (tests and impatient operators).
        assert_eq!(refresh_interval(Some(S(0)), S(2)), S(2));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mid = 0.5; // jitter factor 1.0
        let cases = [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)];
        for (failures, secs) in cases {
            assert_eq!(backoff(failures, S(3600), mid), S(secs), "{failures}");
        }
        assert_eq!(backoff(10, S(60), mid), S(60));
        assert_eq!(backoff(1, S(3600), 0.0), Duration::from_millis(800));
        assert!(backoff(1, S(3600), 0.999) < Duration::from_millis(1200));
        assert_eq!(backoff(u32::MAX, S(3600), 2.0), Duration::from_secs(360));
    }

    /// Regression (found by fuzz/fuzz_targets/discovery.rs): a NaN `unit` made `mul_f64`
    /// panic. The fetcher passes a uniform value, but the function promises any input.
    #[test]
    fn backoff_takes_any_unit() {
        let refresh = Duration::from_millis(4_294_967_155);
        for unit in [
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e308,
        ] {
            let delay = backoff(1_886_680_168, refresh, unit);
            assert!((S(240)..=S(360)).contains(&delay), "{unit}: {delay:?}");
        }
        assert_eq!(backoff(3, S(3600), f64::NAN), S(4));
    }

    #[test]
    fn cache_control() {
        let cases = [
            ("max-age=300", Some(S(300))),
            ("public, max-age=60, must-revalidate", Some(S(60))),
            ("Max-Age=\"5\"", Some(S(5))),
            ("no-store", None),
            ("max-age=60, no-cache", None),
            ("max-age=-1", None),
            ("max-age=abc", None),
            ("", None),
        ];
        for (header, want) in cases {
            assert_eq!(max_age(header), want, "{header}");
        }
    }

    #[test]
    fn discovery_documents() {
        let iss = "https://idp.example.com/realms/a";
        let ok = br#"{"issuer":"https://idp.example.com/realms/a","jwks_uri":"https://idp.example.com/certs"}"#;
        assert_eq!(jwks_uri(ok, iss).unwrap(), "https://idp.example.com/certs");
        let cases: [(&[u8], DiscoveryError); 5] = [
            (b"not json", DiscoveryError::Json),
            (
                br#"{"issuer":"https://evil.example.com","jwks_uri":"https://x/"}"#,
                DiscoveryError::IssuerMismatch,
            ),
            (
                br#"{"jwks_uri":"https://x/"}"#,
                DiscoveryError::IssuerMismatch,
            ),
            (
                br#"{"issuer":"https://idp.example.com/realms/a"}"#,
                DiscoveryError::NoJwksUri,
            ),
            (
                br#"{"issuer":"https://idp.example.com/realms/a","jwks_uri":"http://x/"}"#,
                DiscoveryError::JwksUriNotHttps,
            ),
        ];
        for (doc, want) in cases {
            assert_eq!(jwks_uri(doc, iss), Err(want));
        }
        assert_eq!(
            discovery_url("https://a.example/"),
            "https://a.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn https_urls() {
        for good in ["https://a", "HTTPS://idp.example.com/jwks?x=1"] {
            assert!(is_https_url(good), "{good}");
        }
        for bad in [
            "http://a",
            "https://",
            "https://a b",
            "https://a\r\n",
            "ftp://a",
            "",
        ] {
            assert!(!is_https_url(bad), "{bad}");
        }
    }

    /// Regression (found by fuzz/fuzz_targets/discovery.rs): `https:////` passed as an
    /// issuer, and its discovery URL, `https:/.well-known/openid-configuration`, was not an
    /// https URL at all. An empty host is refused now, and an https issuer always gives an
    /// https discovery URL.
    #[test]
    fn https_urls_need_a_host() {
        for bad in ["https:////", "https:///jwks", "https://?x", "https://#f"] {
            assert!(!is_https_url(bad), "{bad}");
        }
        for issuer in [
            "https://a",
            "https://a/",
            "https://a///",
            "https://a/realms/x/",
        ] {
            assert!(is_https_url(issuer));
            assert!(is_https_url(&discovery_url(issuer)), "{issuer}");
        }
    }
}
