//! One blocking HTTPS GET with the fetcher's rules: verified TLS over the system OpenSSL,
//! explicit timeouts, no proxy from the environment, https only, bounded body.

use core::fmt;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::Agent;

use super::policy;

/// Largest JWKS or discovery document accepted.
pub const MAX_BODY: u64 = 1024 * 1024;

/// Why a fetch failed; each keeps the last good keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    Dns(String),
    Connect(String),
    Tls(String),
    Timeout,
    Status(u16),
    TooLarge,
    Io(String),
    /// The body arrived but is not a usable key set or discovery document.
    Invalid(String),
}

impl FetchError {
    /// Label for logs and metrics: `dns`, `connect`, `tls`, `timeout`, `http_5xx`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dns(_) => "dns",
            Self::Connect(_) => "connect",
            Self::Tls(_) => "tls",
            Self::Timeout => "timeout",
            Self::Status(s) if *s >= 500 => "http_5xx",
            Self::Status(_) => "http_4xx",
            Self::TooLarge => "too_large",
            Self::Io(_) => "io",
            Self::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(e) => write!(f, "name resolution failed: {e}"),
            Self::Connect(e) => write!(f, "connect failed: {e}"),
            Self::Tls(e) => write!(f, "TLS failed: {e}"),
            Self::Timeout => f.write_str("timed out"),
            Self::Status(s) => write!(f, "HTTP status {s}"),
            Self::TooLarge => write!(f, "response larger than {MAX_BODY} bytes"),
            Self::Io(e) => write!(f, "read failed: {e}"),
            Self::Invalid(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for FetchError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_failures_are_dns_errors() {
        let io = |m: &str| ureq::Error::Io(std::io::Error::other(m.to_owned()));
        let cases = [
            (
                "failed to lookup address information: Name or service not known",
                "dns",
            ),
            (
                "failed to lookup address information: Temporary failure in name resolution",
                "dns",
            ),
            ("connection reset by peer", "io"),
        ];
        for (message, kind) in cases {
            assert_eq!(classify(io(message)).kind(), kind, "{message}");
        }
        assert_eq!(classify(ureq::Error::HostNotFound).kind(), "dns");
    }
}

/// What a conditional GET returned.
#[derive(Debug)]
pub enum Fetched {
    Body {
        body: Vec<u8>,
        etag: Option<String>,
        max_age: Option<Duration>,
    },
    NotModified {
        max_age: Option<Duration>,
    },
}

/// An HTTPS client for one key source.
pub struct Client {
    agent: Agent,
}

impl Client {
    /// `ca_pem`: the `auth_jwt_trusted_certificate` bundle, else the system store.
    pub fn new(timeout: Duration, ca_pem: Option<&[u8]>) -> Result<Self, FetchError> {
        let roots = match ca_pem {
            Some(pem) => {
                let certs = ureq::tls::parse_pem(pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<Vec<Certificate<'static>>, _>>()
                    .map_err(|e| FetchError::Tls(e.to_string()))?;
                RootCerts::Specific(Arc::new(certs))
            }
            None => RootCerts::PlatformVerifier,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(roots)
            .build();
        let config = Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .https_only(true)
            .max_redirects(3)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout))
            .user_agent("ngx_http_auth_jwt_module")
            .build();
        Ok(Self {
            agent: config.into(),
        })
    }

    /// GET `url`, revalidating with `etag` when given.
    pub fn get(&self, url: &str, etag: Option<&str>) -> Result<Fetched, FetchError> {
        if !policy::is_https_url(url) {
            return Err(FetchError::Invalid(format!("\"{url}\" is not https")));
        }
        let mut req = self.agent.get(url).header("Accept", "application/json");
        if let Some(tag) = etag {
            req = req.header("If-None-Match", tag);
        }
        let mut resp = req.call().map_err(classify)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let max_age = header("cache-control").and_then(|cc| policy::max_age(&cc));
        match resp.status().as_u16() {
            304 if etag.is_some() => Ok(Fetched::NotModified { max_age }),
            200 => {
                let etag = header("etag");
                // ureq refuses a body that reaches its limit: one byte more lets exactly
                // MAX_BODY through, and the length check refuses anything over it.
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_BODY + 1)
                    .read_to_vec()
                    .map_err(classify)?;
                if body.len() as u64 > MAX_BODY {
                    return Err(FetchError::TooLarge);
                }
                Ok(Fetched::Body {
                    body,
                    etag,
                    max_age,
                })
            }
            status => Err(FetchError::Status(status)),
        }
    }
}

/// getaddrinfo's messages, as the standard library words them.
fn is_resolver_error(text: &str) -> bool {
    const RESOLVER: [&str; 4] = [
        "failed to lookup address information",
        "Name or service not known",
        "Temporary failure in name resolution",
        "No address associated with hostname",
    ];
    RESOLVER.iter().any(|m| text.contains(m))
}

fn classify(e: ureq::Error) -> FetchError {
    use ureq::Error as E;
    match e {
        E::Timeout(_) => FetchError::Timeout,
        E::HostNotFound => FetchError::Dns("host not found".into()),
        E::BodyExceedsLimit(_) => FetchError::TooLarge,
        E::ConnectionFailed => FetchError::Connect("connection failed".into()),
        E::Tls(msg) => FetchError::Tls(msg.into()),
        E::NativeTls(e) => FetchError::Tls(e.to_string()),
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => FetchError::Timeout,
            std::io::ErrorKind::ConnectionRefused => FetchError::Connect(io.to_string()),
            // ureq reports the resolver's failure as a plain I/O error.
            _ if is_resolver_error(&io.to_string()) => FetchError::Dns(io.to_string()),
            _ => FetchError::Io(io.to_string()),
        },
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("tls") || text.contains("certificate") {
                FetchError::Tls(text)
            } else {
                FetchError::Io(text)
            }
        }
    }
}
