//! The background fetcher: one thread per worker that keeps the zone's key sets fresh (one
//! fetch per URI per node per interval, elected through the zone) and publishes parsed keys
//! to its worker. It touches nothing of NGINX but the shared zone.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self::http::{Client, FetchError, Fetched};
use self::io::Stop;
use crate::background::{Background, JOIN_BOUND};
use crate::keys::{Published, RemoteSource, SourceKind};
use crate::zone::{SlotState, ZoneData};
use auth_jwt_core::jwks;
use auth_jwt_core::jwt::verify::KeySet;
use auth_jwt_core::refresh as policy;

pub(crate) mod http;
pub(crate) mod io;

/// How often the thread looks at the zone: the latency of an unknown-kid wake-up and of
/// picking up keys another worker fetched.
const TICK: Duration = Duration::from_millis(250);
/// The same while some source has no keys yet: requests are being refused meanwhile.
const TICK_WITHOUT_KEYS: Duration = Duration::from_millis(20);

/// `exit_process` waits [`JOIN_BOUND`] for the thread. Its longest blocking step is one
/// [`io::SLICE`] of I/O (then it sees the stop), plus the CPU of parsing at most one JWKS.
const _: () = assert!(io::SLICE.as_millis() * 5 <= JOIN_BOUND.as_millis());

/// Log lines from the thread, written by the worker's own event loop (NGINX's logging is
/// not for other threads).
static LOG: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

/// Queues a log line at an `NGX_LOG_*` level.
pub fn log(level: u32, line: String) {
    let mut q = LOG.lock().unwrap_or_else(|p| p.into_inner());
    // Bounded: if the event loop cannot keep up, drop lines rather than grow.
    if q.len() < 1024 {
        q.push((level, line));
    }
}

/// Takes the queued log lines.
pub fn drain_log() -> Vec<(u32, String)> {
    std::mem::take(&mut *LOG.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Seconds since the epoch from the system clock (the thread has no NGINX clock).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Starts the fetcher thread for `sources`.
pub fn start(
    sources: Vec<Arc<RemoteSource>>,
    zone: &'static ZoneData,
) -> std::io::Result<Background> {
    Background::spawn("auth_jwt fetch", move |stop| {
        Worker::new(sources, zone, stop).run()
    })
}

/// Copies the zone's newest key sets into `sources` (parsing each new generation once).
/// Used by the thread, and by the worker at start so that it never starts without the keys
/// its predecessors already had.
pub fn sync_all(sources: &[Arc<RemoteSource>], zone: &ZoneData) {
    for source in sources {
        sync(source, zone);
    }
}

fn sync(source: &RemoteSource, zone: &ZoneData) {
    let Some(&i) = source.slot.get() else {
        return;
    };
    let published = source.published();
    let (body, generation, fetched_at) = {
        let Some(st) = zone.slots[i].read() else {
            return;
        };
        if st.uri.as_str() != source.url() || st.generation == 0 {
            return;
        }
        let stale_at = st
            .fetched_at
            .saturating_add(source.max_stale().as_secs() as i64);
        if published
            .as_ref()
            .is_some_and(|p| p.generation == st.generation)
        {
            source.refresh_stale_at(stale_at);
            return;
        }
        (st.body(), st.generation, st.fetched_at)
    };
    // Parsed outside the lock; the body was validated before it was stored.
    let Ok(keys) = remote_keys(&body) else {
        return;
    };
    let kids: Vec<String> = keys.keys().iter().filter_map(|k| k.kid.clone()).collect();
    let stale_at = fetched_at.saturating_add(source.max_stale().as_secs() as i64);
    let old = source.publish(Published {
        generation,
        keys: Arc::new(keys),
        stale_at,
        kids: kids.clone(),
    });
    source.forget_unknown_kids();
    if old.as_ref() != Some(&kids) {
        log(
            nginx_sys::NGX_LOG_INFO,
            format!(
                "keys from \"{}\": generation {generation}, kids [{}]{}",
                source.url(),
                kids.join(", "),
                old.map(|o| format!(" (were [{}])", o.join(", ")))
                    .unwrap_or_default()
            ),
        );
    }
}

/// Parses a JWKS from the network: symmetric (`oct`) keys are dropped, since a published
/// secret lets anyone mint tokens; a set left without keys is refused.
pub fn remote_keys(body: &[u8]) -> Result<KeySet, String> {
    let parsed = jwks::parse_jwks(body).map_err(|e| format!("invalid JWKS: {e}"))?;
    let keys: Vec<_> = parsed
        .keys
        .keys()
        .iter()
        .filter(|k| k.kty() != "oct")
        .cloned()
        .collect();
    if keys.is_empty() {
        return Err("JWKS has no usable public keys".into());
    }
    Ok(KeySet::new(keys))
}

/// The thread's own state.
struct Worker {
    sources: Vec<Arc<RemoteSource>>,
    clients: Vec<Client>,
    zone: &'static ZoneData,
    stop: Arc<Stop>,
    pid: i32,
    rng: u64,
}

/// What the fetcher does with a slot this tick.
struct Plan {
    etag: Option<String>,
    jwks_uri: Option<String>,
}

impl Worker {
    fn new(sources: Vec<Arc<RemoteSource>>, zone: &'static ZoneData, stop: Arc<Stop>) -> Self {
        let clients = sources.iter().map(|s| client_for(s, &stop)).collect();
        let pid = std::process::id() as i32;
        let rng = (unix_now() as u64) ^ ((pid as u64) << 32) | 1;
        Self {
            sources,
            clients,
            zone,
            stop,
            pid,
            rng,
        }
    }

    fn run(mut self) {
        loop {
            for i in 0..self.sources.len() {
                if self.stop.requested() {
                    return;
                }
                if let Err(panic) = crate::log::catch("fetcher", || self.step(i, unix_now())) {
                    log(
                        nginx_sys::NGX_LOG_ALERT,
                        format!("bug: panic in the key fetcher: {panic}"),
                    );
                }
            }
            let missing = self.sources.iter().any(|s| s.published().is_none());
            let tick = if missing { TICK_WITHOUT_KEYS } else { TICK };
            if self.stop.wait(tick) {
                return;
            }
        }
    }

    fn step(&mut self, i: usize, now: i64) {
        let source = Arc::clone(&self.sources[i]);
        if let Some(plan) = self.plan(&source, now) {
            let outcome = fetch(&self.clients[i], &source, &plan);
            if self.stop.requested() {
                // Cut short by the exit, not the IdP's failure: no error, no backoff, and the
                // lease goes back so that the next worker fetches at once.
                self.release(&source);
                return;
            }
            let unit = self.random_unit();
            // Keys count from their arrival: a fetch slowed by a loaded machine or a slow IdP
            // must not shorten `max_stale` (t/remote/failures.rs saw 1.86 s of 3 s, taking
            // the time from before the fetch).
            self.record(&source, unix_now(), outcome, unit);
        }
        sync(&source, self.zone);
    }

    /// Takes the slot's lease when a fetch is due (scheduled, or woken by an unknown kid) and
    /// no other worker holds it.
    fn plan(&self, source: &RemoteSource, now: i64) -> Option<Plan> {
        let slot = &self.zone.slots[*source.slot.get()?];
        let mut st = slot.write()?;
        if st.uri.as_str() != source.url() {
            return None;
        }
        let wake = slot.wake.load(Ordering::Relaxed);
        let woken = wake > st.last_wake_fetch && now - st.last_wake_fetch >= policy::WAKE_INTERVAL;
        let leased = st.lease_until > now && st.lease_pid != self.pid;
        if leased || !(now >= st.next_fetch || woken) {
            return None;
        }
        if woken {
            st.last_wake_fetch = now;
        }
        let requests = if source.kind == SourceKind::Discovery {
            2
        } else {
            1
        };
        st.lease_pid = self.pid;
        st.lease_until = now + requests * source.args.timeout.as_secs() as i64 + 2;
        Some(Plan {
            etag: Some(st.etag.as_str().to_owned()).filter(|e| !e.is_empty() && st.generation > 0),
            jwks_uri: Some(st.jwks_uri.as_str().to_owned()).filter(|u| !u.is_empty()),
        })
    }

    fn release(&self, source: &RemoteSource) {
        let Some(&i) = source.slot.get() else {
            return;
        };
        let Some(mut st) = self.zone.slots[i].write() else {
            return;
        };
        if st.uri.as_str() == source.url() && st.lease_pid == self.pid {
            st.lease_until = 0;
        }
    }

    fn record(
        &self,
        source: &RemoteSource,
        now: i64,
        outcome: Result<Outcome, FetchError>,
        unit: f64,
    ) {
        let Some(&i) = source.slot.get() else {
            return;
        };
        let Some(mut st) = self.zone.slots[i].write() else {
            return;
        };
        if st.uri.as_str() != source.url() {
            return;
        }
        st.lease_until = 0;
        let refresh = source.args.refresh;
        match outcome.and_then(|o| store(&mut st, self.zone, o)) {
            Ok(max_age) => {
                if st.failures > 0 {
                    log(
                        nginx_sys::NGX_LOG_NOTICE,
                        format!(
                            "fetch of \"{}\" recovered after {} failures",
                            source.url(),
                            st.failures
                        ),
                    );
                }
                st.failures = 0;
                st.last_error.set("");
                st.fetched_at = now;
                st.next_fetch = now + policy::refresh_interval(max_age, refresh).as_secs() as i64;
            }
            Err(e) => {
                st.fetches_failed += 1;
                st.failures = st.failures.saturating_add(1);
                let text = e.to_string();
                if st.failures == 1 || st.last_error.as_str() != text {
                    let kept = if st.generation > 0 {
                        "keeping the last good keys"
                    } else {
                        "no keys yet"
                    };
                    log(
                        nginx_sys::NGX_LOG_WARN,
                        format!(
                            "fetch of \"{}\" failed ({}): {text}; {kept}",
                            source.url(),
                            e.kind()
                        ),
                    );
                }
                st.last_error.set(&text);
                let delay = policy::backoff(st.failures, refresh, unit);
                st.next_fetch = now + delay.as_secs().max(1) as i64;
            }
        }
    }

    /// xorshift64: jitter needs no cryptographic randomness.
    fn random_unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What one fetch brought.
enum Outcome {
    Fresh {
        body: Vec<u8>,
        etag: Option<String>,
        jwks_uri: Option<String>,
        key_count: usize,
        max_age: Option<Duration>,
    },
    NotModified {
        max_age: Option<Duration>,
    },
}

/// The source's client, with the trusted certificates loaded with the configuration (the
/// worker may not be allowed to read the file).
fn client_for(source: &RemoteSource, stop: &Arc<Stop>) -> Client {
    let ca = source.ca.get().and_then(Option::as_deref);
    Client::new(source.args.timeout, ca, stop)
}

/// Fetches (discovery document, then) the JWKS, and validates it before it may be stored.
fn fetch(client: &Client, source: &RemoteSource, plan: &Plan) -> Result<Outcome, FetchError> {
    let (jwks_uri, etag) = match source.kind {
        SourceKind::Jwks => (source.url().to_owned(), plan.etag.as_deref()),
        SourceKind::Discovery => {
            let doc_url = policy::discovery_url(source.url());
            let Fetched::Body { body, .. } = client.get(&doc_url, None)? else {
                return Err(FetchError::Invalid("unexpected 304 for discovery".into()));
            };
            let uri = policy::jwks_uri(&body, source.url())
                .map_err(|e| FetchError::Invalid(e.to_string()))?;
            // Revalidate only while the provider names the same JWKS.
            let same = plan.jwks_uri.as_deref() == Some(uri.as_str());
            let etag = if same { plan.etag.as_deref() } else { None };
            (uri, etag)
        }
    };
    match client.get(&jwks_uri, etag)? {
        Fetched::NotModified { max_age } => Ok(Outcome::NotModified { max_age }),
        Fetched::Body {
            body,
            etag,
            max_age,
        } => {
            let keys = remote_keys(&body).map_err(FetchError::Invalid)?;
            Ok(Outcome::Fresh {
                key_count: keys.len(),
                body,
                etag,
                jwks_uri: (source.kind == SourceKind::Discovery).then_some(jwks_uri),
                max_age,
            })
        }
    }
}

/// Writes a successful fetch into the slot; the new body replaces the old one only when it
/// differs, so an unchanged JWKS keeps its generation (workers keep their parsed keys).
fn store(
    st: &mut SlotState,
    zone: &ZoneData,
    outcome: Outcome,
) -> Result<Option<Duration>, FetchError> {
    match outcome {
        Outcome::NotModified { max_age } => {
            st.fetches_not_modified += 1;
            Ok(max_age)
        }
        Outcome::Fresh {
            body,
            etag,
            jwks_uri,
            key_count,
            max_age,
        } => {
            if st.body() != body {
                if !st.replace_body(zone, &body) {
                    return Err(FetchError::Invalid(
                        "auth_jwt_zone is too small for this JWKS".into(),
                    ));
                }
                st.generation += 1;
            }
            st.fetches_ok += 1;
            st.etag.set(etag.as_deref().unwrap_or_default());
            st.jwks_uri.set(jwks_uri.as_deref().unwrap_or_default());
            st.key_count = u32::try_from(key_count).unwrap_or(u32::MAX);
            Ok(max_age)
        }
    }
}
