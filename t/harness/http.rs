//! A minimal raw HTTP/1.1 client over `TcpStream`: requests exactly as written, loopback only.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Read timeout for one response; the whole exchange is bounded by twice this.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses larger than this are a test bug (or a module bug): stop reading.
const MAX_RESPONSE: usize = 8 << 20;

/// First line of every echo upstream response body.
pub const ECHO_MARK: &str = "echo: upstream\n";

/// A request to send to 127.0.0.1. Headers go out exactly as given, in order, duplicates and
/// odd values included; `Host: localhost` is added unless a `Host` header is given, and
/// `Connection: close` is always added last.
#[derive(Clone, Debug)]
pub struct Request {
    port: u16,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    /// A request line `<method> <target> HTTP/1.1` for port `port`.
    pub fn new(port: u16, method: &str, target: &str) -> Self {
        Self {
            port,
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header line `name: value` (no validation: CR, LF, anything goes out as given).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A body, with its `Content-Length`.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = Some(body.as_ref().to_vec());
        self
    }

    /// The first header of that name given to this request (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The bytes that go on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            out.extend_from_slice(b"Host: localhost\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if let Some(body) = &self.body {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        if let Some(body) = &self.body {
            out.extend_from_slice(body);
        }
        out
    }

    /// Sends the request and reads the whole response; panics on transport failure.
    pub fn send(&self) -> Response {
        self.try_send().unwrap_or_else(|e| {
            panic!("{} {} on port {}: {e}", self.method, self.target, self.port)
        })
    }

    /// Sends the request and reads the whole response.
    pub fn try_send(&self) -> Result<Response, String> {
        send_raw(
            self.port,
            &self.to_bytes(),
            self.method.eq_ignore_ascii_case("HEAD"),
        )
    }
}

impl Request {
    /// Sends the request over HTTP/2 (cleartext, prior knowledge) with curl, which lower-cases
    /// the names; the body and `Connection: close` are not sent.
    pub fn send_h2(&self) -> Response {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "-i", "--http2-prior-knowledge", "--max-time", "10"])
            .args(["-X", &self.method]);
        if self.header_value("host").is_none() {
            cmd.args(["-H", "Host: localhost"]);
        }
        for (name, value) in &self.headers {
            // curl sends `name;` as a header with an empty value.
            let arg = if value.is_empty() {
                format!("{name};")
            } else {
                format!("{name}: {value}")
            };
            cmd.args(["-H", &arg]);
        }
        cmd.arg(format!("http://127.0.0.1:{}{}", self.port, self.target));
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("curl (HTTP/2): {e}"));
        assert!(
            out.status.success(),
            "curl (HTTP/2) {} {}: {}",
            self.method,
            self.target,
            lossy(&out.stderr)
        );
        Response::parse(&out.stdout, self.method.eq_ignore_ascii_case("HEAD"))
            .unwrap_or_else(|e| panic!("HTTP/2 {} {}: {e}", self.method, self.target))
    }
}

/// Sends raw bytes to 127.0.0.1:`port` and parses what comes back up to EOF.
pub fn send_raw(port: u16, bytes: &[u8], head: bool) -> Result<Response, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream =
        TcpStream::connect_timeout(&addr, READ_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(READ_TIMEOUT))
        .map_err(|e| e.to_string())?;
    // NGINX may answer and close before it has read everything (e.g. a 400): still read the answer.
    let write_error = stream.write_all(bytes).err();
    let deadline = Instant::now() + 2 * READ_TIMEOUT;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "response not complete after {:?}: {:?}",
                2 * READ_TIMEOUT,
                lossy(&raw)
            ));
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_RESPONSE {
                    return Err(format!("response larger than {MAX_RESPONSE} bytes"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => {
                return Err(format!(
                    "read: {e} (write error: {write_error:?}, got {:?})",
                    lossy(&raw)
                ))
            }
        }
    }
    if raw.is_empty() {
        return Err(format!(
            "connection closed without a response (write error: {write_error:?})"
        ));
    }
    Response::parse(&raw, head)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A parsed response: status, headers in order (names as sent), decoded body.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8], head: bool) -> Result<Self, String> {
        let end = find(raw, b"\r\n\r\n")
            .ok_or_else(|| format!("no end of headers in {:?}", lossy(raw)))?;
        let head_text =
            std::str::from_utf8(&raw[..end]).map_err(|_| "response head is not UTF-8")?;
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") && version != "HTTP/2" {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = Self {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        let rest = &raw[end + 4..];
        if head || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        response.body = if chunked {
            dechunk(rest)?
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad content-length {len:?}"))?;
            if rest.len() < len {
                return Err(format!("body has {} of {len} bytes", rest.len()));
            }
            rest[..len].to_vec()
        } else {
            rest.to_vec()
        };
        Ok(response)
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name (case-insensitive), in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        lossy(&self.body)
    }

    /// `WWW-Authenticate`, or "" when absent.
    pub fn challenge(&self) -> &str {
        self.header("www-authenticate").unwrap_or("")
    }

    /// True when the echo upstream produced this response (see `ECHO_MARK`).
    pub fn is_from_upstream(&self) -> bool {
        self.status == 200 && self.text().starts_with(ECHO_MARK)
    }

    /// A request header as the echo upstream saw it: `Some("")` when absent or empty, `None`
    /// when the echo upstream does not report that header (or did not answer).
    pub fn echo(&self, name: &str) -> Option<String> {
        if !self.is_from_upstream() {
            return None;
        }
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        self.text()
            .lines()
            .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
    }

    /// One-line summary for assertion messages.
    pub fn summary(&self) -> String {
        let body = self.text();
        let body: String = body.chars().take(300).collect();
        format!(
            "{} {} www-authenticate={:?} body={:?}",
            self.status,
            self.reason,
            self.header("www-authenticate"),
            body
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    // At most one chunk per input byte: a bound for the loop.
    for _ in 0..=data.len() {
        let eol = find(data, b"\r\n").ok_or("chunk size line without CRLF")?;
        let line = std::str::from_utf8(&data[..eol]).map_err(|_| "chunk size not UTF-8")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    Err("chunked body without a last chunk".into())
}
