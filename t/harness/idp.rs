//! A mock identity provider: an HTTPS server on 127.0.0.1 in threads of the test process,
//! serving a JWKS and an OpenID discovery document, with faults that can be switched on at
//! any time, and a record of every request it got.
//!
//! TLS is real (OpenSSL): a test CA made when the IdP starts signs a server certificate for
//! `127.0.0.1` and `localhost`; the CA's PEM is written to a file for
//! `auth_jwt_trusted_certificate`. Every connection gets one response and is closed
//! (`Connection: close`), so each fetch is one request on one connection.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use openssl::ssl::{HandshakeError, SslAcceptor, SslMethod, SslStream};
use serde_json::{json, Value};

use super::certs::{make_ca, make_leaf};
use super::keys::{jwks, keys};
use super::prefix::listen_any;

/// The path of the JWKS; the discovery document's `jwks_uri` names it.
pub const JWKS_PATH: &str = "/jwks.json";
/// Appended to the issuer for the discovery document.
pub const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";
/// Size of the `Huge` body: over the module's 1 MiB limit.
pub const HUGE_SIZE: usize = (1 << 20) + (256 << 10);

/// Longest a connection waits for a request, or for the client to go away (`Hang`).
const CONN_BOUND: Duration = Duration::from_secs(30);
/// Largest request head read.
const MAX_HEAD: usize = 16 << 10;
/// How often blocked loops look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// What the IdP does with the next requests (every path alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Serve normally.
    Ok,
    /// Answer this status with a short text body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a JWKS padded to `HUGE_SIZE` bytes (a valid one, were it not too large).
    Huge,
    /// Wait this long, then serve normally.
    Slow(Duration),
    /// Read the request, then reset the connection (TCP RST) without answering.
    Reset,
    /// Read the request and never answer (until the client gives up).
    Hang,
}

/// One request the IdP received.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The request path, without the query.
    pub path: String,
    pub at: Instant,
    /// Status answered (0: none, for `Reset` and `Hang`).
    pub status: u16,
    pub if_none_match: Option<String>,
}

/// What the IdP serves; changed by the test at any time.
struct State {
    jwks: Vec<u8>,
    etag: bool,
    cache_control: Option<String>,
    fault: Fault,
    /// The `issuer` the discovery document names (default: the IdP's issuer).
    discovery_issuer: Option<String>,
    hits: Vec<Hit>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    base: String,
    issuer_path: String,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A running mock IdP; stopped (threads joined) on drop.
pub struct Idp {
    port: u16,
    shared: Arc<Shared>,
    ca_pem: String,
    dir: PathBuf,
    accept: Option<JoinHandle<()>>,
}

impl Idp {
    /// An IdP whose issuer is its base URL (`https://127.0.0.1:<port>`), serving the
    /// standard RSA key (`rsa-1`).
    pub fn start() -> Self {
        Self::with_issuer_path("")
    }

    /// An IdP whose issuer is `https://127.0.0.1:<port><path>` (e.g. `/realms/test`): the
    /// discovery document is at `<issuer>/.well-known/openid-configuration`.
    pub fn with_issuer_path(path: &str) -> Self {
        let (ca_cert, ca_key) = make_ca("auth_jwt test CA");
        let (cert, key) = make_leaf(&ca_cert, &ca_key);
        let mut acceptor =
            SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("ssl acceptor");
        acceptor.set_private_key(&key).expect("server key");
        acceptor.set_certificate(&cert).expect("server cert");
        acceptor.check_private_key().expect("key matches cert");
        let acceptor = Arc::new(acceptor.build());

        let listener = bind();
        let port = listener.local_addr().expect("local addr").port();
        let ca_pem = String::from_utf8(ca_cert.to_pem().expect("ca pem")).expect("pem is text");
        let dir =
            std::env::temp_dir().join(format!("ngx-auth-jwt-idp.{}.{port}", std::process::id()));
        fs::create_dir_all(&dir).expect("idp dir");
        fs::write(dir.join("ca.pem"), &ca_pem).expect("write ca.pem");

        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                jwks: jwks(&[keys().rsa.jwk()]).into_bytes(),
                etag: true,
                cache_control: None,
                fault: Fault::Ok,
                discovery_issuer: None,
                hits: Vec::new(),
            }),
            stop: AtomicBool::new(false),
            base: format!("https://127.0.0.1:{port}"),
            issuer_path: path.trim_end_matches('/').to_owned(),
            connections: Mutex::new(Vec::new()),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("idp:{port}"))
                .spawn(move || accept_loop(&listener, &acceptor, &shared))
                .expect("spawn idp")
        };
        Self {
            port,
            shared,
            ca_pem,
            dir,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.shared.base
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.base())
    }

    /// The issuer (base URL plus the issuer path).
    pub fn issuer(&self) -> String {
        format!("{}{}", self.base(), self.shared.issuer_path)
    }

    /// The path of the discovery document.
    pub fn discovery_path(&self) -> String {
        format!("{}{DISCOVERY_SUFFIX}", self.shared.issuer_path)
    }

    /// The test CA's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A file holding `ca_pem()`, for `auth_jwt_trusted_certificate`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Serves these JWKs as the key set.
    pub fn set_keys(&self, jwks_keys: &[Value]) {
        self.set_jwks_body(jwks(jwks_keys));
    }

    /// Serves these bytes as the JWKS.
    pub fn set_jwks_body(&self, body: impl Into<Vec<u8>>) {
        self.shared.lock().jwks = body.into();
    }

    /// The strong ETag of the JWKS being served.
    pub fn etag(&self) -> String {
        etag_of(&self.shared.lock().jwks)
    }

    /// Sends an ETag (and answers `If-None-Match` with 304) or not; on by default.
    pub fn set_etag(&self, on: bool) {
        self.shared.lock().etag = on;
    }

    /// A `Cache-Control` header on JWKS responses, or none (the default).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.shared.lock().cache_control = value.map(str::to_owned);
    }

    /// The `issuer` the discovery document names; `None`: the real one.
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        self.shared.lock().discovery_issuer = issuer.map(str::to_owned);
    }

    /// What the following requests get.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().fault = fault;
    }

    /// Every request received for `path`, in order.
    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.shared
            .lock()
            .hits
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// Number of requests received for `path` (304s and faults included).
    pub fn count(&self, path: &str) -> usize {
        self.shared
            .lock()
            .hits
            .iter()
            .filter(|h| h.path == path)
            .count()
    }

    /// Number of JWKS requests.
    pub fn jwks_count(&self) -> usize {
        self.count(JWKS_PATH)
    }

    /// Waits (bounded) until `path` got at least `n` requests; returns when the n-th came.
    pub fn wait_count(&self, path: &str, n: usize, timeout: Duration) -> Result<Instant, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let hits = self.hits(path);
            if let Some(hit) = hits.get(n.saturating_sub(1)) {
                return Ok(hit.at);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{path} got {} requests, not {n}, in {timeout:?}",
                    hits.len()
                ));
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let connections = std::mem::take(
            &mut *self
                .shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for c in connections {
            let _ = c.join();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A strong ETag from the body's SHA-256.
pub fn etag_of(body: &[u8]) -> String {
    let digest = openssl::sha::sha256(body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Port 0, kept bound: no window in which another process could take the port, and the
/// harness never hands it to an NGINX.
fn bind() -> TcpListener {
    let listener = listen_any();
    listener.set_nonblocking(true).expect("nonblocking");
    listener
}

fn accept_loop(listener: &TcpListener, acceptor: &Arc<SslAcceptor>, shared: &Arc<Shared>) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                let (acceptor, conn_shared) = (Arc::clone(acceptor), Arc::clone(shared));
                let handle = thread::spawn(move || serve(stream, &acceptor, &conn_shared));
                let mut conns = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
                conns.retain(|h| !h.is_finished());
                conns.push(handle);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(5)),
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// A parsed request head.
struct Head {
    path: String,
    if_none_match: Option<String>,
}

fn serve(stream: TcpStream, acceptor: &SslAcceptor, shared: &Shared) {
    let deadline = Instant::now() + CONN_BOUND;
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL * 5));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut handshake = acceptor.accept(stream);
    let mut tls = loop {
        match handshake {
            Ok(tls) => break tls,
            Err(HandshakeError::WouldBlock(mid))
                if !shared.stopping() && Instant::now() < deadline =>
            {
                handshake = mid.handshake();
            }
            // The client refused our certificate, went away, or we are stopping.
            Err(_) => return,
        }
    };
    let Some(head) = read_head(&mut tls, shared, deadline) else {
        return;
    };
    let (fault, response) = respond(&head, shared);
    let status = match fault {
        Fault::Reset | Fault::Hang => 0,
        _ => response.status,
    };
    shared.lock().hits.push(Hit {
        path: head.path.clone(),
        at: Instant::now(),
        status,
        if_none_match: head.if_none_match.clone(),
    });
    match fault {
        Fault::Reset => {
            reset(tls.get_ref());
            return;
        }
        Fault::Hang => {
            wait_for_close(&mut tls, shared, deadline);
            return;
        }
        Fault::Slow(delay) => {
            let until = Instant::now() + delay;
            while Instant::now() < until && !shared.stopping() {
                thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
            }
        }
        _ => {}
    }
    // The client may have given up (timeout, size limit): write errors are expected then.
    let _ = tls.write_all(&response.head());
    if !response.body.is_empty() {
        for chunk in response.body.chunks(64 << 10) {
            if tls.write_all(chunk).is_err() {
                return;
            }
        }
    }
    let _ = tls.flush();
    let _ = tls.shutdown();
}

/// Reads up to the end of the request head; None when the client goes away first.
fn read_head(tls: &mut SslStream<TcpStream>, shared: &Shared, deadline: Instant) -> Option<Head> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        if shared.stopping() || Instant::now() > deadline || raw.len() > MAX_HEAD {
            return None;
        }
        match tls.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let mut lines = text.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?.to_owned();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let if_none_match = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("if-none-match")
            .then(|| value.trim().to_owned())
    });
    Some(Head {
        path,
        if_none_match,
    })
}

/// A response to send.
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: body.into(),
        }
    }

    fn head(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            304 => "Not Modified",
            404 => "Not Found",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.status != 304 {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// The fault in effect and the response for `head` (unless the fault sends none).
fn respond(head: &Head, shared: &Shared) -> (Fault, Response) {
    let st = shared.lock();
    let fault = st.fault;
    let response = match fault {
        Fault::Status(status) => Response::new(status, "text/plain", "IdP fault injected\n"),
        Fault::Garbage => Response::new(
            200,
            "application/json",
            "<html><body>502 Bad Gateway</body></html>\n{\"keys\":[",
        ),
        Fault::Huge => {
            let mut doc: Value = serde_json::from_slice(&st.jwks).unwrap_or(json!({"keys": []}));
            let pad = HUGE_SIZE.saturating_sub(st.jwks.len());
            doc["padding"] = json!("x".repeat(pad));
            Response::new(200, "application/json", doc.to_string())
        }
        Fault::Ok | Fault::Slow(_) | Fault::Reset | Fault::Hang => normal(head, &st, shared),
    };
    (fault, response)
}

fn normal(head: &Head, st: &State, shared: &Shared) -> Response {
    let discovery = format!("{}{DISCOVERY_SUFFIX}", shared.issuer_path);
    if head.path == JWKS_PATH {
        let etag = etag_of(&st.jwks);
        let mut response = if st.etag && head.if_none_match.as_deref() == Some(etag.as_str()) {
            Response::new(304, "application/json", Vec::new())
        } else {
            Response::new(200, "application/json", st.jwks.clone())
        };
        if st.etag {
            response.headers.push(("ETag", etag));
        }
        if let Some(cc) = &st.cache_control {
            response.headers.push(("Cache-Control", cc.clone()));
        }
        response
    } else if head.path == discovery {
        let issuer = st
            .discovery_issuer
            .clone()
            .unwrap_or_else(|| format!("{}{}", shared.base, shared.issuer_path));
        let doc = json!({
            "issuer": issuer,
            "jwks_uri": format!("{}{JWKS_PATH}", shared.base),
            "authorization_endpoint": format!("{}/auth", shared.base),
            "token_endpoint": format!("{}/token", shared.base),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        Response::new(200, "application/json", doc.to_string())
    } else {
        Response::new(404, "text/plain", "not found\n")
    }
}

/// Closes with a TCP RST (SO_LINGER 0) instead of a FIN.
fn reset(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor owned by `stream`, and a `linger` value of the size
    // given; the call only sets a socket option.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // Dropping the stream (by the caller) closes the socket: with linger 0, that is a RST.
}

/// Holds the connection open without answering until the client closes it.
fn wait_for_close(tls: &mut SslStream<TcpStream>, shared: &Shared, deadline: Instant) {
    let mut buf = [0u8; 1024];
    while !shared.stopping() && Instant::now() < deadline {
        match tls.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}
