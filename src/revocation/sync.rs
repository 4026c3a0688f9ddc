//! The revocation sync thread: one per worker, of which the one holding the table's writer
//! lock (the node's elected owner) reads the revocation file when it changes and follows the
//! Redis stream (full sync at start, after a reconnect and when the stream went back; then a
//! blocking `XREAD` from the last id). It touches nothing of NGINX but the shared zone.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nginx_sys::{NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_NOTICE, NGX_LOG_WARN};

use super::redis::{self, Conn, Id, StreamEntry};
use super::{FileSource, RedisSource, RevocationConf, RevocationZone};
use super::{CONN_CONNECTING, CONN_DOWN, CONN_UP};
use crate::background::Background;
use crate::fetch::io::Stop;
use crate::fetch::{log, unix_now};
use auth_jwt_core::refresh::backoff;
use auth_jwt_core::revocation::file::{parse_file, MAX_FILE};
use auth_jwt_core::revocation::{parse_entry, Insert, Revocation};

/// How long the owner's claim on the table holds without renewal; another worker's thread
/// takes over after it (a killed owner).
const LEASE: i64 = 5;
/// How often a thread that does not own the table looks whether it may.
const IDLE: Duration = Duration::from_millis(500);
/// `XREAD BLOCK`: short enough to see a stop request within `JOIN_BOUND`.
const BLOCK: Duration = Duration::from_millis(250);
/// How often the file's size and time are looked at.
const FILE_CHECK: Duration = Duration::from_secs(1);
/// How often expired entries are swept, and the stream checked for having gone back.
const SWEEP_EVERY: i64 = 10;
const RECREATE_CHECK: Duration = Duration::from_secs(2);
/// Longest wait between two reconnection attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The thread of one worker. Dropped, it still stops and joins the thread.
/// Starts the sync thread (every worker runs one; the lease holder does the work).
pub fn start(conf: &RevocationConf, zone: &'static RevocationZone) -> std::io::Result<Background> {
    let file = conf.file.clone();
    let redis = conf.redis.clone();
    let lifetime = conf.lifetime_secs();
    Background::spawn("auth_jwt revoke", move |stop| {
        let mut state = Thread {
            file,
            redis,
            lifetime,
            zone,
            stop,
            pid: std::process::id(),
            owner: false,
            conn: None,
            failures: 0,
            last_error: String::new(),
            next_try: Instant::now(),
            file_seen: None,
            file_checked: None,
            file_list: Vec::new(),
            last_sweep: 0,
            recreate_checked: Instant::now(),
            rng: (unix_now() as u64) ^ (u64::from(std::process::id()) << 32) | 1,
        };
        state.run();
    })
}

struct Thread {
    file: Option<Arc<FileSource>>,
    redis: Option<Arc<RedisSource>>,
    lifetime: i64,
    zone: &'static RevocationZone,
    stop: Arc<Stop>,
    pid: u32,
    owner: bool,
    conn: Option<Conn>,
    failures: u32,
    last_error: String,
    next_try: Instant,
    /// The file's (modification time, length) last read, good or bad.
    file_seen: Option<(i64, u64)>,
    file_checked: Option<Instant>,
    /// The last good list, to lift what an edit removed.
    file_list: Vec<Revocation>,
    last_sweep: i64,
    recreate_checked: Instant,
    rng: u64,
}

impl Thread {
    fn run(&mut self) {
        while !self.stop.requested() {
            if let Err(panic) = crate::log::catch("revocation", || self.step()) {
                log(
                    nginx_sys::NGX_LOG_ALERT,
                    format!("bug: panic in the revocation sync: {panic}"),
                );
                self.conn = None;
                self.stop.wait(IDLE);
            }
        }
        if self.owner {
            self.zone.table().unlock(self.pid);
        }
    }

    fn step(&mut self) {
        let now = unix_now();
        let table = self.zone.table();
        if !table.try_lock(self.pid, now, now + LEASE) {
            if self.owner {
                log(
                    NGX_LOG_NOTICE,
                    "revocation sync: another worker took over".into(),
                );
            }
            self.owner = false;
            self.conn = None;
            self.stop.wait(IDLE);
            return;
        }
        if !self.owner {
            // A new owner starts from scratch: full sync, file read again.
            self.owner = true;
            self.conn = None;
            self.file_seen = None;
        }
        if now - self.last_sweep >= SWEEP_EVERY {
            table.sweep(now);
            self.last_sweep = now;
        }
        if self.file.is_some() {
            self.file_step(now);
        }
        if self.redis.is_some() {
            self.redis_step();
        } else {
            self.stop.wait(IDLE);
        }
    }

    fn renew(&self) {
        let now = unix_now();
        self.zone.table().try_lock(self.pid, now, now + LEASE);
    }

    fn file_step(&mut self, now: i64) {
        let Some(file) = self.file.clone() else {
            return;
        };
        if self.file_checked.is_some_and(|t| t.elapsed() < FILE_CHECK) {
            return;
        }
        self.file_checked = Some(Instant::now());
        let seen = std::fs::metadata(&file.path).map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.len())
        });
        let seen = match seen {
            Ok(s) => s,
            Err(e) => {
                if self.file_seen != Some((-1, 0)) {
                    self.file_seen = Some((-1, 0));
                    log(
                        NGX_LOG_WARN,
                        format!(
                            "revocation file \"{}\" not read: {e}; keeping the last good list",
                            file.path
                        ),
                    );
                }
                return;
            }
        };
        if self.file_seen == Some(seen) {
            return;
        }
        self.file_seen = Some(seen);
        let list = read_file(&file.path).and_then(|b| parse_file(&b));
        let list = match list {
            Ok(list) => list,
            Err(reason) => {
                log(
                    NGX_LOG_WARN,
                    format!(
                        "revocation file \"{}\" not reloaded: {reason}; keeping the last good list",
                        file.path
                    ),
                );
                self.set_error(&reason);
                return;
            }
        };
        let table = self.zone.table();
        let new_keys: Vec<u64> = list
            .iter()
            .map(|r| r.entry(now, self.lifetime).key)
            .collect();
        let lifted = self
            .file_list
            .iter()
            .map(|r| r.entry(now, self.lifetime).key)
            .filter(|k| !new_keys.contains(k))
            .filter(|k| table.remove(*k))
            .count();
        let full = list
            .iter()
            .filter(|r| self.zone.store(r, now, self.lifetime) == Insert::Full)
            .count();
        if full > 0 {
            log(
                NGX_LOG_ERR,
                format!(
                    "revocation table full (capacity {}): {full} revocations of \"{}\" not stored; raise auth_jwt_zone",
                    table.capacity(),
                    file.path
                ),
            );
        }
        log(
            NGX_LOG_INFO,
            format!(
                "revocation file \"{}\" loaded: {} revocations, {lifted} lifted",
                file.path,
                list.len()
            ),
        );
        self.file_list = list;
        if let Some(mut st) = self.zone.write() {
            st.file_loaded_at = now;
        }
    }

    fn redis_step(&mut self) {
        let Some(src) = self.redis.clone() else {
            return;
        };
        if self.conn.is_none() {
            let wait = self.next_try.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                self.stop.wait(wait.min(BLOCK));
                return;
            }
            if self.failures == 0 {
                self.zone
                    .connection
                    .store(CONN_CONNECTING, Ordering::Relaxed);
            }
            let result = redis::connect(&src, src.args.timeout).and_then(|mut conn| {
                self.full_sync(&mut conn, &src, "start or reconnect")?;
                Ok(conn)
            });
            match result {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.recovered(&src);
                }
                Err(e) => self.failed(&src, e),
            }
            return;
        }
        let result = self.follow(&src);
        if let Err(e) = result {
            self.conn = None;
            self.failed(&src, e);
        }
    }

    /// Waits on the stream and applies what comes; looks now and then whether it went back.
    fn follow(&mut self, src: &RedisSource) -> Result<(), String> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let last = self.last_id();
        if self.recreate_checked.elapsed() >= RECREATE_CHECK {
            self.recreate_checked = Instant::now();
            let newest = conn.newest()?;
            if last != (0, 0) && newest.is_none_or(|n| n < last) {
                log(
                    NGX_LOG_WARN,
                    format!(
                        "revocation stream \"{}\" went back (recreated, or Redis restarted without persistence): full sync; the {} revocations held stay",
                        src.args.stream,
                        self.zone.table().len()
                    ),
                );
                self.full_sync(&mut conn, src, "stream went back")?;
                self.conn = Some(conn);
                return Ok(());
            }
        }
        let entries = conn.read(last, BLOCK)?;
        self.apply_all(&entries, src);
        self.synced();
        self.conn = Some(conn);
        Ok(())
    }

    /// Reads the whole stream in pages. The entries held stay (a trimmed or lost stream
    /// never lifts a revocation); the last id becomes the stream's newest.
    fn full_sync(&mut self, conn: &mut Conn, src: &RedisSource, why: &str) -> Result<(), String> {
        let started = Instant::now();
        let mut after: Option<Id> = None;
        let mut count = 0usize;
        loop {
            if self.stop.requested() {
                return Err("the worker is exiting".into());
            }
            let page = conn.range(after)?;
            count += page.len();
            self.apply_all(&page, src);
            self.renew();
            match page.last() {
                Some(e) if page.len() == redis::PAGE => after = Some(e.id),
                _ => break,
            }
        }
        let newest = conn.newest()?.unwrap_or((0, 0));
        let took = started.elapsed();
        if let Some(mut st) = self.zone.write() {
            st.last_id = newest;
            st.resyncs += 1;
            st.last_resync_ms = took.as_millis() as u64;
        }
        self.recreate_checked = Instant::now();
        self.synced();
        log(
            NGX_LOG_INFO,
            format!(
                "revocations: full sync of \"{}\" ({why}): {count} entries in {} ms, {} held",
                src.args.stream,
                took.as_millis(),
                self.zone.table().len()
            ),
        );
        Ok(())
    }

    fn apply_all(&self, entries: &[StreamEntry], src: &RedisSource) {
        let now = unix_now();
        let mut last = None;
        for e in entries {
            self.apply(e, src, now);
            last = Some(e.id);
        }
        if let (Some(id), Some(mut st)) = (last, self.zone.write()) {
            st.last_id = st.last_id.max(id);
        }
    }

    fn apply(&self, e: &StreamEntry, src: &RedisSource, now: i64) {
        let parsed = e.fields.clone().map_err(str::to_owned).and_then(|f| {
            parse_entry(f.iter().map(|(n, v)| (n.as_str(), v.as_str()))).map_err(|e| e.to_string())
        });
        let id = format!("{}-{}", e.id.0, e.id.1);
        match parsed {
            Err(reason) => {
                self.zone.malformed.fetch_add(1, Ordering::Relaxed);
                log(
                    NGX_LOG_WARN,
                    format!(
                        "revocation entry {id} in \"{}\" refused: {reason}",
                        src.args.stream
                    ),
                );
            }
            Ok(r) => {
                if self.zone.store(&r, now, self.lifetime) == Insert::Full {
                    log(
                        NGX_LOG_ERR,
                        format!(
                            "revocation table full (capacity {}): entry {id} ({}) not stored; raise auth_jwt_zone",
                            self.zone.table().capacity(),
                            r.kind().as_str()
                        ),
                    );
                }
            }
        }
    }

    fn last_id(&self) -> Id {
        self.zone.read().map_or((0, 0), |st| st.last_id)
    }

    fn synced(&self) {
        self.zone.synced_at.store(unix_now(), Ordering::Relaxed);
    }

    fn set_error(&self, text: &str) {
        if let Some(mut st) = self.zone.write() {
            st.last_error.set(text);
        }
    }

    fn recovered(&mut self, src: &RedisSource) {
        if self.failures > 0 {
            log(
                NGX_LOG_NOTICE,
                format!(
                    "revocation sync with \"{}\" recovered after {} failures",
                    src.args.url, self.failures
                ),
            );
        }
        self.failures = 0;
        self.last_error.clear();
        self.set_error("");
        self.zone.connection.store(CONN_UP, Ordering::Relaxed);
    }

    fn failed(&mut self, src: &RedisSource, text: String) {
        if self.stop.requested() {
            return;
        }
        self.zone.sync_failures.fetch_add(1, Ordering::Relaxed);
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 || self.last_error != text {
            log(
                NGX_LOG_WARN,
                format!(
                    "revocation sync with \"{}\" failed: {text}; keeping the last {} revocations",
                    src.args.url,
                    self.zone.table().len()
                ),
            );
        }
        self.set_error(&text);
        self.last_error = text;
        self.zone.connection.store(CONN_DOWN, Ordering::Relaxed);
        let delay = backoff(self.failures, MAX_RETRY, self.random_unit());
        self.next_try = Instant::now() + delay;
    }

    /// xorshift64: jitter needs no cryptographic randomness.
    fn random_unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    Ok(bytes)
}

/// Reads and parses the file at configuration load (`nginx -t` checks it).
pub fn load_file(path: &str) -> Result<Vec<Revocation>, String> {
    read_file(path)
        .and_then(|b| parse_file(&b))
        .map_err(|e| format!("\"{path}\": {e}"))
}
