//! Remote key sources as a worker sees them: parsed keys published by the fetcher thread,
//! read by the request path without parsing anything.
#![forbid(unsafe_code)]

use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::fetch::http::TrustedCa;
use auth_jwt_core::authn::KeySource;
use auth_jwt_core::directive::SourceArgs;
use auth_jwt_core::jwt::verify::KeySet;
use auth_jwt_core::refresh::WAKE_INTERVAL;

/// What a remote source is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// `auth_jwt_key_uri`: a JWKS URL.
    Jwks,
    /// `auth_jwt_discovery`: an OpenID Provider; its keys verify only tokens from `issuer`.
    Discovery,
}

/// Keys parsed from one generation of a source's JWKS.
#[derive(Debug)]
pub struct Published {
    pub generation: u64,
    pub keys: Arc<KeySet>,
    /// After this time the keys are too old to use (`max_stale` after the last success).
    pub stale_at: i64,
    pub kids: Vec<String>,
}

/// One `auth_jwt_key_uri` or `auth_jwt_discovery` URL, shared by every location naming it.
#[derive(Debug)]
pub struct RemoteSource {
    pub kind: SourceKind,
    pub args: SourceArgs,
    /// `auth_jwt_trusted_certificate` in effect where the source was declared.
    pub ca: OnceLock<Option<Arc<TrustedCa>>>,
    /// The zone slot, claimed when the zone is initialised.
    pub slot: OnceLock<usize>,
    published: Mutex<Option<Arc<Published>>>,
    /// Bumped after every change of `published`: a worker's [`Snapshot`] holding another
    /// value is out of date.
    changes: AtomicU64,
    /// `args.url`, shared by the key sources that bind a discovery source's keys to it.
    issuer: Arc<str>,
    /// Unknown kids seen lately, with when: they do not wake the fetcher twice.
    unknown_kids: Mutex<HashMap<String, i64>>,
    last_wake: AtomicI64,
    /// Whether "no keys" has been logged since keys were last available.
    pub no_keys_logged: AtomicBool,
}

/// Most unknown kids remembered per source; beyond this the memory is cleared.
const MAX_UNKNOWN_KIDS: usize = 1024;

impl RemoteSource {
    pub fn new(kind: SourceKind, args: SourceArgs) -> Self {
        Self {
            kind,
            ca: OnceLock::new(),
            slot: OnceLock::new(),
            published: Mutex::new(None),
            changes: AtomicU64::new(0),
            issuer: Arc::from(args.url.as_str()),
            unknown_kids: Mutex::new(HashMap::new()),
            last_wake: AtomicI64::new(0),
            no_keys_logged: AtomicBool::new(false),
            args,
        }
    }

    pub fn url(&self) -> &str {
        &self.args.url
    }

    /// The issuer a discovery source binds its keys to.
    pub fn issuer(&self) -> Option<&Arc<str>> {
        (self.kind == SourceKind::Discovery).then_some(&self.issuer)
    }

    pub fn max_stale(&self) -> Duration {
        self.args.max_stale
    }

    pub fn published(&self) -> Option<Arc<Published>> {
        self.lock_published().clone()
    }

    /// Replaces the published keys; returns the previous generation's kids.
    pub fn publish(&self, published: Published) -> Option<Vec<String>> {
        let old = self.lock_published().replace(Arc::new(published));
        self.changes.fetch_add(1, Ordering::Release);
        old.map(|o| o.kids.clone())
    }

    /// Extends the life of the published keys after a revalidation (304).
    pub fn refresh_stale_at(&self, stale_at: i64) {
        let mut guard = self.lock_published();
        if let Some(p) = guard.as_ref() {
            if p.stale_at != stale_at {
                *guard = Some(Arc::new(Published {
                    generation: p.generation,
                    keys: Arc::clone(&p.keys),
                    stale_at,
                    kids: p.kids.clone(),
                }));
                self.changes.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Records an unknown `kid`; true when it should wake the fetcher: the kid was not seen
    /// in the last [`WAKE_INTERVAL`] seconds and this worker has not woken it that recently.
    pub fn should_wake(&self, kid: &str, now: i64) -> bool {
        let mut kids = self
            .unknown_kids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if kids.len() >= MAX_UNKNOWN_KIDS {
            kids.clear();
        }
        let seen = kids.insert(kid.to_owned(), now);
        if seen.is_some_and(|t| now - t < WAKE_INTERVAL) {
            return false;
        }
        let last = self.last_wake.load(Ordering::Relaxed);
        if now - last < WAKE_INTERVAL {
            return false;
        }
        self.last_wake.store(now, Ordering::Relaxed);
        true
    }

    /// Forgets unknown kids once new keys arrive: they may be known now.
    pub fn forget_unknown_kids(&self) {
        self.unknown_kids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    fn lock_published(&self) -> std::sync::MutexGuard<'_, Option<Arc<Published>>> {
        // A panic while holding this lock leaves valid data behind: keep using it.
        self.published
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A worker's view of a location's key sources (its key files, then the remote sets not too
/// stale), rebuilt only when a remote source changes or a set it holds goes stale: a request
/// borrows it, with no lock taken and nothing cloned or allocated.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `changes` of each remote source when this was built; empty before the first build.
    seen: Vec<u64>,
    /// When the first of the remote sets held goes stale.
    stale_at: i64,
    sources: Vec<KeySource>,
}

/// The per-location [`Snapshot`], behind the cell a location configuration holds (requests
/// of a worker are handled on one thread, one at a time).
#[derive(Debug, Default)]
pub struct SnapshotCell(RefCell<Snapshot>);

impl SnapshotCell {
    /// The key sources usable at `now`: `files` first, then the remote sets not older than
    /// their `max_stale`.
    pub fn get(
        &self,
        files: &[KeySource],
        remote: &[Arc<RemoteSource>],
        now: i64,
    ) -> Ref<'_, [KeySource]> {
        let fresh = {
            let snapshot = self.0.borrow();
            snapshot.seen.len() == remote.len()
                && now < snapshot.stale_at
                && remote
                    .iter()
                    .zip(&snapshot.seen)
                    .all(|(source, &seen)| source.changes.load(Ordering::Acquire) == seen)
        };
        if !fresh {
            *self.0.borrow_mut() = Snapshot::build(files, remote, now);
        }
        Ref::map(self.0.borrow(), |s| s.sources.as_slice())
    }
}

impl Snapshot {
    fn build(files: &[KeySource], remote: &[Arc<RemoteSource>], now: i64) -> Self {
        let mut snapshot = Self {
            seen: Vec::with_capacity(remote.len()),
            stale_at: i64::MAX,
            sources: files.to_vec(),
        };
        for source in remote {
            // Read before the keys: a publish in between makes the next request rebuild.
            snapshot.seen.push(source.changes.load(Ordering::Acquire));
            let Some(published) = source.published() else {
                continue;
            };
            if now >= published.stale_at {
                continue;
            }
            snapshot.stale_at = snapshot.stale_at.min(published.stale_at);
            snapshot.sources.push(KeySource {
                keys: Arc::clone(&published.keys),
                issuer: source.issuer().cloned(),
            });
            // Keys are back: the next outage is a new state change, logged again.
            source.no_keys_logged.store(false, Ordering::Relaxed);
        }
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> RemoteSource {
        let args = SourceArgs {
            url: "https://idp.example/jwks".into(),
            refresh: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
            max_stale: Duration::from_secs(100),
        };
        RemoteSource::new(SourceKind::Jwks, args)
    }

    fn published(generation: u64, stale_at: i64) -> Published {
        Published {
            generation,
            keys: Arc::new(KeySet::default()),
            stale_at,
            kids: vec!["a".into()],
        }
    }

    /// How many sets the snapshot holds at `now`.
    fn held(cell: &SnapshotCell, s: &Arc<RemoteSource>, now: i64) -> usize {
        cell.get(&[], std::slice::from_ref(s), now).len()
    }

    #[test]
    fn keys_expire_after_max_stale() {
        let s = Arc::new(source());
        let cell = SnapshotCell::default();
        assert_eq!(held(&cell, &s, 0), 0);
        s.publish(published(1, 150));
        assert_eq!(held(&cell, &s, 149), 1, "a publish is seen at once");
        assert_eq!(held(&cell, &s, 150), 0, "stale at max_stale");
        s.refresh_stale_at(300);
        assert_eq!(
            held(&cell, &s, 299),
            1,
            "a revalidation extends the keys' life"
        );
        let old = s.publish(published(2, 400));
        assert_eq!(old, Some(vec!["a".to_string()]));
    }

    #[test]
    fn the_snapshot_is_reused_until_a_source_changes() {
        let s = Arc::new(source());
        let cell = SnapshotCell::default();
        s.publish(published(1, 1000));
        let first = cell.get(&[], std::slice::from_ref(&s), 10).as_ptr();
        let again = cell.get(&[], std::slice::from_ref(&s), 20).as_ptr();
        assert_eq!(
            first, again,
            "unchanged: the same snapshot, nothing rebuilt"
        );
        let keys =
            |cell: &SnapshotCell| Arc::clone(&cell.get(&[], std::slice::from_ref(&s), 30)[0].keys);
        let before = keys(&cell);
        s.publish(published(2, 1000));
        assert!(
            !Arc::ptr_eq(&before, &keys(&cell)),
            "a new generation is picked up"
        );
    }

    #[test]
    fn discovery_keys_are_bound_to_their_issuer() {
        let mut args = source().args;
        args.url = "https://issuer.example".into();
        let s = Arc::new(RemoteSource::new(SourceKind::Discovery, args));
        s.publish(published(1, 1000));
        let cell = SnapshotCell::default();
        let sources = cell.get(&[], std::slice::from_ref(&s), 0);
        assert_eq!(sources[0].issuer.as_deref(), Some("https://issuer.example"));
    }

    #[test]
    fn unknown_kids_wake_at_most_every_interval() {
        let s = source();
        assert!(s.should_wake("k1", 1000));
        assert!(!s.should_wake("k1", 1001), "same kid: negatively cached");
        assert!(!s.should_wake("k2", 1001), "another kid: rate limited");
        assert!(s.should_wake("k3", 1000 + WAKE_INTERVAL));
        assert!(!s.should_wake("k1", 1000 + WAKE_INTERVAL + 1));
        s.forget_unknown_kids();
        assert!(s.should_wake("k1", 1000 + 2 * WAKE_INTERVAL));
    }

    #[test]
    fn discovery_binds_issuer() {
        let mut s = source();
        assert_eq!(s.issuer(), None);
        s.kind = SourceKind::Discovery;
        assert_eq!(s.issuer().map(|i| &**i), Some("https://idp.example/jwks"));
    }
}
