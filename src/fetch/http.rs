//! One blocking HTTPS GET with the fetcher's rules: verified TLS over the system OpenSSL,
//! explicit timeouts, no proxy from the environment, https only, bounded body, and every
//! blocking step cut short by a stop request (`io`).

use core::fmt;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::transport::{Connector, NativeTlsConnector};
use ureq::Agent;

use super::io::{Stop, StopConnector, StopResolver};
use auth_jwt_core::refresh;

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

    fn self_signed_pem() -> Vec<u8> {
        use openssl::{asn1::Asn1Time, ec, hash::MessageDigest, nid::Nid, pkey::PKey, x509};
        let group = ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(ec::EcKey::generate(&group).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "ca").unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build().to_pem().unwrap()
    }

    #[test]
    fn trusted_certificates_are_parsed_at_load() {
        let cert = self_signed_pem();
        let two = [cert.clone(), cert.clone()].concat();
        let key = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
        let with_key = [key.to_vec(), cert.clone()].concat();
        let cases: [(&[u8], Result<usize, &str>); 6] = [
            (&cert, Ok(1)),
            (&two, Ok(2)),
            (&with_key, Ok(1)),
            (key, Err("\"ca.pem\": no certificates")),
            (b"not pem at all\n", Err("\"ca.pem\": no certificates")),
            (
                b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
                Err("\"ca.pem\": not a PEM certificate bundle"),
            ),
        ];
        for (i, (pem, want)) in cases.into_iter().enumerate() {
            let got = TrustedCa::parse("ca.pem", pem).map(|ca| ca.count());
            match (got, want) {
                (Ok(n), Ok(m)) => assert_eq!(n, m, "case {i}"),
                (Err(e), Err(prefix)) => assert!(e.starts_with(prefix), "case {i}: {e}"),
                (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
            }
        }
        let a = TrustedCa::parse("ca.pem", &cert).unwrap();
        assert_eq!(a, TrustedCa::parse("ca.pem", &cert).unwrap());
        assert_ne!(a, TrustedCa::parse("other.pem", &cert).unwrap());
        assert_ne!(a, TrustedCa::parse("ca.pem", &two).unwrap());
    }
}

/// Largest `auth_jwt_trusted_certificate` file read.
pub const MAX_CA_FILE: u64 = 1024 * 1024;

/// An `auth_jwt_trusted_certificate` bundle, read and parsed with the configuration: by the
/// master, which may read files (a root-only directory) that the workers cannot.
pub struct TrustedCa {
    pub path: String,
    certs: Arc<Vec<Certificate<'static>>>,
}

impl TrustedCa {
    /// Reads and parses the bundle at `path`.
    pub fn load(path: &str) -> Result<Self, String> {
        use std::io::Read;
        let mut pem = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut pem))
            .map_err(|e| format!("\"{path}\": {e}"))?;
        if pem.len() as u64 > MAX_CA_FILE {
            return Err(format!("\"{path}\": larger than {MAX_CA_FILE} bytes"));
        }
        Self::parse(path, &pem)
    }

    /// Parses PEM certificates as the fetcher will use them (other PEM items are skipped),
    /// each also checked by OpenSSL, which verifies the IdP with them.
    pub fn parse(path: &str, pem: &[u8]) -> Result<Self, String> {
        let invalid =
            |e: &dyn fmt::Display| format!("\"{path}\": not a PEM certificate bundle: {e}");
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(pem) {
            match item.map_err(|e| invalid(&e))? {
                ureq::tls::PemItem::Certificate(c) => certs.push(c),
                _ => continue,
            }
        }
        if certs.is_empty() {
            return Err(format!("\"{path}\": no certificates"));
        }
        for (i, cert) in certs.iter().enumerate() {
            openssl::x509::X509::from_der(cert.der())
                .map_err(|e| invalid(&format!("certificate {}: {e}", i + 1)))?;
        }
        Ok(Self {
            path: path.to_owned(),
            certs: Arc::new(certs),
        })
    }

    /// Number of certificates in the bundle.
    pub fn count(&self) -> usize {
        self.certs.len()
    }
}

/// Same file, same certificates.
impl PartialEq for TrustedCa {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.certs.len() == other.certs.len()
            && self
                .certs
                .iter()
                .zip(other.certs.iter())
                .all(|(a, b)| a.der() == b.der())
    }
}

impl fmt::Debug for TrustedCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedCa")
            .field("path", &self.path)
            .field("certs", &self.certs.len())
            .finish()
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
    /// `ca`: the `auth_jwt_trusted_certificate` bundle, else the system store. Nothing is read
    /// from disk here: the bundle was loaded with the configuration.
    /// `stop`: once requested, any step in flight ends within one `io::SLICE`.
    pub fn new(timeout: Duration, ca: Option<&TrustedCa>, stop: &Arc<Stop>) -> Self {
        let roots = match ca {
            Some(ca) => RootCerts::Specific(Arc::clone(&ca.certs)),
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
        // Our TCP (connect, reads and writes in slices), then TLS over it.
        let connector = StopConnector {
            stop: Arc::clone(stop),
        }
        .chain(NativeTlsConnector::default());
        let resolver = StopResolver {
            stop: Arc::clone(stop),
        };
        Self {
            agent: Agent::with_parts(config, connector, resolver),
        }
    }

    /// GET `url`, revalidating with `etag` when given.
    pub fn get(&self, url: &str, etag: Option<&str>) -> Result<Fetched, FetchError> {
        if !refresh::is_https_url(url) {
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
        let max_age = header("cache-control").and_then(|cc| refresh::max_age(&cc));
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
