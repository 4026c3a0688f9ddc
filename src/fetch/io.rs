//! The fetcher's sockets: every blocking step (name lookup, connect, TLS, send, receive) waits
//! in slices of at most [`SLICE`] and gives up as soon as the worker asks the thread to stop,
//! so that `exit_process` can always join the thread.

use core::ffi::c_int;
use core::{fmt, mem, ptr};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};
use ureq::{Error, Timeout};

/// Longest wait of one blocking step before the stop request is looked at again.
pub const SLICE: Duration = Duration::from_millis(100);

/// The worker's request that the thread end: a flag the I/O polls between slices, and a
/// condition variable that wakes the thread from its tick at once.
#[derive(Debug, Default)]
pub struct Stop {
    requested: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Stop {
    pub fn request(&self) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.requested.store(true, Ordering::Release);
        self.cv.notify_all();
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Sleeps for `d` unless a stop is requested; true when it was.
    pub fn wait(&self, d: Duration) -> bool {
        let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let (_guard, _) = self
            .cv
            .wait_timeout_while(guard, d, |()| !self.requested())
            .unwrap_or_else(|p| p.into_inner());
        self.requested()
    }
}

/// The error of a step cut short by a stop request.
fn stopped() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::Interrupted,
        "the worker is exiting",
    ))
}

/// When `timeout` runs out (None: never).
fn deadline(timeout: NextTimeout) -> Option<Instant> {
    (!timeout.after.is_not_happening()).then(|| Instant::now() + *timeout.after)
}

/// The next wait: at most [`SLICE`], at least 1 ms, never past `deadline`. Err when the stop
/// was requested or the deadline passed.
fn next_slice(stop: &Stop, deadline: Option<Instant>, reason: Timeout) -> Result<Duration, Error> {
    if stop.requested() {
        return Err(stopped());
    }
    let Some(deadline) = deadline else {
        return Ok(SLICE);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::Timeout(reason));
    }
    Ok(left.clamp(Duration::from_millis(1), SLICE))
}

fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Name lookup on a helper thread, waited for in slices. A lookup cut short leaves its helper
/// to finish on its own: it holds nothing but its own copy of the name.
#[derive(Debug)]
pub struct StopResolver {
    pub stop: Arc<Stop>,
}

impl Resolver for StopResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(Error::HostNotFound);
        };
        let name = DefaultResolver::host_and_port(scheme, authority).ok_or(Error::HostNotFound)?;
        let mut out = self.empty();
        // An address literal needs no lookup.
        if let Ok(addr) = name.parse::<SocketAddr>() {
            out.push(addr);
            return Ok(out);
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("auth_jwt resolve".into())
            .spawn(move || {
                let _ = tx.send(name.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
            })
            .map_err(Error::Io)?;
        let deadline = deadline(timeout);
        let addrs = loop {
            let slice = next_slice(&self.stop, deadline, timeout.reason)?;
            match rx.recv_timeout(slice) {
                Ok(result) => break result.map_err(Error::Io)?,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Error::HostNotFound),
            }
        };
        // ureq's address list holds 16.
        for addr in addrs.into_iter().take(16) {
            out.push(addr);
        }
        if out.is_empty() {
            return Err(Error::HostNotFound);
        }
        Ok(out)
    }
}

/// TCP connections whose connect, reads and writes wait in slices (TLS is chained on top).
#[derive(Debug)]
pub struct StopConnector {
    pub stop: Arc<Stop>,
}

impl Connector<()> for StopConnector {
    type Out = SliceTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<Self::Out>, Error> {
        let deadline = deadline(details.timeout);
        let reason = details.timeout.reason;
        let count = details.addrs.len();
        let mut last = Error::ConnectionFailed;
        for (i, addr) in details.addrs.iter().enumerate() {
            // Every address but the last gets half of what is left.
            let own = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                if i + 1 < count {
                    Instant::now() + left / 2
                } else {
                    d
                }
            });
            match connect(*addr, own, &self.stop, reason) {
                Ok(stream) => {
                    let config = details.config;
                    let buffers =
                        LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size());
                    return Ok(Some(SliceTransport {
                        stream,
                        buffers,
                        stop: Arc::clone(&self.stop),
                        read_timeout: None,
                        write_timeout: None,
                    }));
                }
                Err(e) if self.stop.requested() => return Err(e),
                Err(Error::Timeout(_)) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(Error::Timeout(reason));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// A non-blocking connect, polled in slices; the stream is blocking once connected.
fn connect(
    addr: SocketAddr,
    deadline: Option<Instant>,
    stop: &Stop,
    reason: Timeout,
) -> Result<TcpStream, Error> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(Error::Io(io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a new socket that nothing else owns; the stream closes it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a socket address of `len` bytes for the socket's family.
    let rc = unsafe { libc::connect(fd, ptr::from_ref(&storage).cast(), len) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(Error::Io(e));
        }
        loop {
            let slice = next_slice(stop, deadline, reason)?;
            let mut pfd = libc::pollfd {
                fd: stream.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, slice.as_millis() as c_int) };
            if n > 0 {
                break;
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(Error::Io(e));
                }
            }
        }
        if let Some(e) = stream.take_error().map_err(Error::Io)? {
            return Err(Error::Io(e));
        }
    }
    stream.set_nonblocking(false).map_err(Error::Io)?;
    stream.set_nodelay(true).map_err(Error::Io)?;
    Ok(stream)
}

/// `addr` as a C socket address, and its length.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid (empty) sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough and aligned for any socket address.
            unsafe { ptr::write(ptr::from_mut(&mut storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { ptr::write(ptr::from_mut(&mut storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A connected TCP stream whose reads and writes block at most one [`SLICE`] at a time.
pub struct SliceTransport {
    stream: TcpStream,
    buffers: LazyBuffers,
    stop: Arc<Stop>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl SliceTransport {
    fn set_timeout(&mut self, write: bool, slice: Duration) -> Result<(), Error> {
        type Setter = fn(&TcpStream, Option<Duration>) -> io::Result<()>;
        let (current, set): (_, Setter) = if write {
            (&mut self.write_timeout, TcpStream::set_write_timeout)
        } else {
            (&mut self.read_timeout, TcpStream::set_read_timeout)
        };
        if *current != Some(slice) {
            set(&self.stream, Some(slice)).map_err(Error::Io)?;
            *current = Some(slice);
        }
        Ok(())
    }
}

impl Transport for SliceTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let deadline = deadline(timeout);
        let mut sent = 0;
        while sent < amount {
            let slice = next_slice(&self.stop, deadline, timeout.reason)?;
            self.set_timeout(true, slice)?;
            let output = &self.buffers.output()[sent..amount];
            match self.stream.write(output) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let deadline = deadline(timeout);
        loop {
            let slice = next_slice(&self.stop, deadline, timeout.reason)?;
            self.set_timeout(false, slice)?;
            match self.stream.read(self.buffers.input_append_buf()) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Whether a pooled connection may be used again: open, with nothing unasked for waiting.
    fn is_open(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8];
        let idle =
            matches!(self.stream.read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        idle && self.stream.set_nonblocking(false).is_ok()
    }
}

impl fmt::Debug for SliceTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SliceTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    #[test]
    fn slices_never_pass_the_deadline_or_a_stop() {
        let stop = Stop::default();
        let far = Some(Instant::now() + Duration::from_secs(60));
        assert_eq!(next_slice(&stop, far, Timeout::Global).unwrap(), SLICE);
        assert_eq!(next_slice(&stop, None, Timeout::Global).unwrap(), SLICE);
        let near = Some(Instant::now() + Duration::from_millis(30));
        assert!(next_slice(&stop, near, Timeout::Global).unwrap() <= Duration::from_millis(30));
        let past = Some(Instant::now());
        assert!(matches!(
            next_slice(&stop, past, Timeout::Connect),
            Err(Error::Timeout(Timeout::Connect))
        ));
        stop.request();
        assert!(matches!(
            next_slice(&stop, far, Timeout::Global),
            Err(Error::Io(_))
        ));
        assert!(
            stop.wait(Duration::from_secs(60)),
            "a requested stop does not wait"
        );
    }

    #[test]
    fn a_stop_cuts_a_read_that_would_wait_for_ever() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(Stop::default());
        let stream = connect(addr, None, &stop, Timeout::Connect).unwrap();
        let _peer = listener.accept().unwrap();
        let mut t = SliceTransport {
            stream,
            buffers: LazyBuffers::new(1024, 1024),
            stop: Arc::clone(&stop),
            read_timeout: None,
            write_timeout: None,
        };
        let waker = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                stop.request();
            })
        };
        let start = Instant::now();
        let never = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            reason: Timeout::Global,
        };
        let e = t.await_input(never).unwrap_err();
        let took = start.elapsed();
        waker.join().unwrap();
        assert!(matches!(e, Error::Io(ref io) if io.kind() == io::ErrorKind::Interrupted));
        assert!(took < Duration::from_millis(200) + SLICE * 2, "{took:?}");
    }
}
