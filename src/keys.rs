//! Remote key sources as a worker sees them: parsed keys published by the fetcher thread,
//! read by the request path without parsing anything.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::fetch::http::TrustedCa;
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
            args,
            ca: OnceLock::new(),
            slot: OnceLock::new(),
            published: Mutex::new(None),
            unknown_kids: Mutex::new(HashMap::new()),
            last_wake: AtomicI64::new(0),
            no_keys_logged: AtomicBool::new(false),
        }
    }

    pub fn url(&self) -> &str {
        &self.args.url
    }

    /// The issuer a discovery source binds its keys to.
    pub fn issuer(&self) -> Option<&str> {
        (self.kind == SourceKind::Discovery).then_some(self.args.url.as_str())
    }

    pub fn max_stale(&self) -> Duration {
        self.args.max_stale
    }

    /// Keys usable at `now`: published and not older than `max_stale`.
    pub fn current(&self, now: i64) -> Option<Arc<KeySet>> {
        let published = self.published()?;
        (now < published.stale_at).then(|| Arc::clone(&published.keys))
    }

    pub fn published(&self) -> Option<Arc<Published>> {
        self.lock_published().clone()
    }

    /// Replaces the published keys; returns the previous generation's kids.
    pub fn publish(&self, published: Published) -> Option<Vec<String>> {
        let old = self.lock_published().replace(Arc::new(published));
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

    #[test]
    fn keys_expire_after_max_stale() {
        let s = source();
        assert!(s.current(0).is_none());
        s.publish(Published {
            generation: 1,
            keys: Arc::new(KeySet::default()),
            stale_at: 150,
            kids: vec!["a".into()],
        });
        assert!(s.current(149).is_some());
        assert!(s.current(150).is_none());
        s.refresh_stale_at(300);
        assert!(s.current(299).is_some());
        let old = s.publish(Published {
            generation: 2,
            keys: Arc::new(KeySet::default()),
            stale_at: 400,
            kids: vec![],
        });
        assert_eq!(old, Some(vec!["a".to_string()]));
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
        assert_eq!(s.issuer(), Some("https://idp.example/jwks"));
    }
}
