//! The DPoP replay sharing: one thread per worker, of which the one whose worker holds the
//! lease (the node's elected sync) runs two loops with a connection each. The sender looks
//! at the outbox every 10 ms (no Redis call while it is empty) and sends what it holds to the
//! stream `auth_jwt:dpop` in one pipelined round trip of `XADD`s; the receiver waits on the
//! stream (`XREAD BLOCK` from the last id, which Redis answers as soon as an entry comes) and
//! adds the other nodes' proofs to the replay table. Redis down: replays are still refused on
//! the node, logged once per state change. It touches nothing of NGINX but the shared zone.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nginx_sys::{NGX_LOG_NOTICE, NGX_LOG_WARN};

use super::{ReplayZone, STREAM};
use crate::background::Background;
use crate::fetch::io::Stop;
use crate::fetch::{log, unix_now};
use crate::revocation::redis::{connect, Conn, Id};
use crate::revocation::{RedisSource, CONN_CONNECTING, CONN_DOWN, CONN_UP};
use auth_jwt_core::dpop::replay;
use auth_jwt_core::dpop::share::{Pop, Shared, MAX_AHEAD};
use auth_jwt_core::lease::try_lease;
use auth_jwt_core::refresh::backoff;

/// How long the owner's lease holds without renewal.
const LEASE: i64 = 3;
/// How often a thread that does not own the lease looks whether it may.
const IDLE: Duration = Duration::from_millis(500);
/// How often the sender looks at the outbox: the longest a proof waits there.
const POLL: Duration = Duration::from_millis(10);
/// `XREAD BLOCK` of the receiver: an entry ends it at once; its timeout only bounds how soon
/// a stop is seen (Redis ends a timed-out block at its next tick, up to 100 ms later).
const BLOCK: Duration = Duration::from_millis(250);
/// Proofs sent in one round trip at most (more go in the next one).
const BATCH: usize = 1000;
/// The stream is trimmed to about this many entries (`MAXLEN ~`).
const MAXLEN: u64 = 100_000;
/// A claimed outbox cell still unfilled after this long is given up on (a killed worker).
const STALL: Duration = Duration::from_secs(1);
/// Longest wait between two reconnection attempts.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Starts the sharing thread (every worker runs one; the lease holder does the work).
pub fn start(redis: Arc<RedisSource>, zone: &'static ReplayZone) -> std::io::Result<Background> {
    Background::spawn("auth_jwt dpop", move |stop| {
        let node = format!("{:016x}", zone.node.load(Ordering::Relaxed));
        let shared = Ctx {
            redis,
            zone,
            stop,
            pid: std::process::id(),
        };
        std::thread::scope(|s| {
            let receiver = std::thread::Builder::new()
                .name("auth_jwt dpop r".into())
                .spawn_scoped(s, || run(&shared, Receiver::new(node.clone())));
            if receiver.is_err() {
                log(
                    nginx_sys::NGX_LOG_ALERT,
                    "cannot start the DPoP replay receiver".into(),
                );
            }
            run(&shared, Sender::new(node.clone()));
        });
    })
}

/// What both loops of a worker share.
struct Ctx {
    redis: Arc<RedisSource>,
    zone: &'static ReplayZone,
    stop: Arc<Stop>,
    pid: u32,
}

/// One loop's connection, with its backoff.
struct Link {
    conn: Option<Conn>,
    failures: u32,
    next_try: Instant,
    rng: u64,
}

impl Link {
    fn new() -> Self {
        Self {
            conn: None,
            failures: 0,
            next_try: Instant::now(),
            rng: (unix_now() as u64) ^ (u64::from(std::process::id()) << 32) | 1,
        }
    }

    /// The connection, connecting if its backoff allows; None to try later.
    fn get(&mut self, sh: &Ctx) -> Option<&mut Conn> {
        if self.conn.is_none() {
            let wait = self.next_try.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                sh.stop.wait(wait.min(IDLE));
                return None;
            }
            let _ = sh.zone.connection.compare_exchange(
                0,
                CONN_CONNECTING,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            match connect(&sh.redis, sh.redis.args.timeout) {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.failures = 0;
                    if sh.zone.connection.swap(CONN_UP, Ordering::Relaxed) == CONN_DOWN {
                        log(
                            NGX_LOG_NOTICE,
                            format!(
                                "DPoP replay sharing with \"{}\" recovered",
                                sh.redis.args.url
                            ),
                        );
                    }
                }
                Err(e) => {
                    self.failed(sh, e);
                    return None;
                }
            }
        }
        self.conn.as_mut()
    }

    /// A failed connection or round trip: logged when the node's sharing goes down.
    fn failed(&mut self, sh: &Ctx, text: String) {
        self.conn = None;
        if sh.stop.requested() {
            return;
        }
        sh.zone.failures.fetch_add(1, Ordering::Relaxed);
        self.failures = self.failures.saturating_add(1);
        if sh.zone.connection.swap(CONN_DOWN, Ordering::Relaxed) != CONN_DOWN {
            log(
                NGX_LOG_WARN,
                format!(
                    "DPoP replay sharing with \"{}\" failed: {text}; replays are refused on this node alone",
                    sh.redis.args.url
                ),
            );
        }
        // xorshift64: jitter needs no cryptographic randomness.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        self.next_try = Instant::now() + backoff(self.failures, MAX_RETRY, unit);
    }
}

/// One of the two loops.
trait Role {
    /// Becoming the node's sharing (again).
    fn elected(&mut self, now: i64);
    /// Giving it up: the connection goes.
    fn deposed(&mut self);
    fn step(&mut self, sh: &Ctx);
}

fn run(sh: &Ctx, mut role: impl Role) {
    let mut owner = false;
    while !sh.stop.requested() {
        let now = unix_now();
        if !try_lease(&sh.zone.lease, sh.pid, now, now + LEASE) {
            if owner {
                role.deposed();
                owner = false;
            }
            sh.stop.wait(IDLE);
            continue;
        }
        if !owner {
            role.elected(now);
            owner = true;
        }
        if let Err(panic) = crate::log::catch("dpop replay sharing", || role.step(sh)) {
            log(
                nginx_sys::NGX_LOG_ALERT,
                format!("bug: panic in the DPoP replay sharing: {panic}"),
            );
            role.deposed();
            sh.stop.wait(IDLE);
        }
    }
    // Let another worker take over at once rather than after the lease.
    let held = sh.zone.lease.load(Ordering::Acquire);
    if owner && (held >> 32) as u32 == sh.pid {
        let _ = sh
            .zone
            .lease
            .compare_exchange(held, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Sends the outbox's proofs.
struct Sender {
    node: String,
    link: Link,
    /// Proofs taken from the outbox and not yet sent (kept over a failed round trip).
    batch: Vec<Shared>,
    busy_since: Option<Instant>,
}

impl Sender {
    fn new(node: String) -> Self {
        Self {
            node,
            link: Link::new(),
            batch: Vec::new(),
            busy_since: None,
        }
    }

    /// Moves what the outbox holds into the batch (expired proofs are not worth sending).
    fn fill_batch(&mut self, sh: &Ctx, now: u32) {
        self.batch.retain(|e| e.expires > now);
        let outbox = sh.zone.outbox();
        while self.batch.len() < BATCH {
            match outbox.pop() {
                Pop::Entry(e) => {
                    self.busy_since = None;
                    if e.expires > now {
                        self.batch.push(e);
                    }
                }
                Pop::Busy => {
                    let since = *self.busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < STALL {
                        break;
                    }
                    outbox.skip();
                    self.busy_since = None;
                }
                Pop::Empty => break,
            }
        }
    }
}

impl Role for Sender {
    fn elected(&mut self, _: i64) {}

    fn deposed(&mut self) {
        self.link.conn = None;
    }

    fn step(&mut self, sh: &Ctx) {
        self.fill_batch(sh, u32::try_from(unix_now()).unwrap_or(0));
        if self.batch.is_empty() {
            sh.stop.wait(POLL);
            return;
        }
        let Some(conn) = self.link.get(sh) else {
            return;
        };
        let mut pipe = redis::pipe();
        for e in &self.batch {
            pipe.cmd("XADD")
                .arg(STREAM)
                .arg("MAXLEN")
                .arg("~")
                .arg(MAXLEN)
                .arg("*")
                .arg("n")
                .arg(&self.node)
                .arg("k")
                .arg(e.key_hex())
                .arg("e")
                .arg(e.expires)
                .ignore();
        }
        // An idle stream goes away once every proof in it has expired.
        pipe.cmd("PEXPIRE")
            .arg(STREAM)
            .arg(u64::from(MAX_AHEAD) * 1000)
            .ignore();
        match conn.pipeline(&pipe) {
            Ok(_) => {
                let sent = self.batch.len() as u64;
                sh.zone.sent.fetch_add(sent, Ordering::Relaxed);
                self.batch.clear();
            }
            Err(e) => self.link.failed(sh, e),
        }
    }
}

/// Adds the other nodes' proofs to the replay table.
struct Receiver {
    node: String,
    link: Link,
    /// Last stream id read.
    last: Id,
}

impl Receiver {
    fn new(node: String) -> Self {
        Self {
            node,
            link: Link::new(),
            last: (0, 0),
        }
    }
}

impl Role for Receiver {
    fn elected(&mut self, now: i64) {
        // A new owner reads what the stream holds of proofs still live: up to twice the
        // longest window back.
        self.link.conn = None;
        let back = u64::from(MAX_AHEAD) * 1000;
        self.last = ((now.max(0) as u64 * 1000).saturating_sub(back), 0);
    }

    fn deposed(&mut self) {
        self.link.conn = None;
    }

    fn step(&mut self, sh: &Ctx) {
        let Some(conn) = self.link.get(sh) else {
            return;
        };
        let entries = match conn.read_from(STREAM, self.last, BLOCK) {
            Ok(entries) => entries,
            Err(e) => return self.link.failed(sh, e),
        };
        let now = u32::try_from(unix_now()).unwrap_or(0);
        let slots = sh.zone.slots();
        for entry in &entries {
            self.last = self.last.max(entry.id);
            let Ok(fields) = &entry.fields else {
                continue;
            };
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or("", |(_, v)| v.as_str())
            };
            if field("n") == self.node {
                continue;
            }
            if let Some(s) = Shared::parse(field("k"), field("e"), now) {
                replay::record(slots, &s.digest(), s.expires, now);
                sh.zone.received.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
