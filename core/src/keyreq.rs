//! `auth_jwt_key_request`: when a worker fetches a key set by subrequest, who waits, and how
//! long fetched keys serve (pure: every function takes `now`).
#![forbid(unsafe_code)]

use std::sync::Arc;

use crate::jwt::verify::KeySet;

/// Least time between two refetches that unknown `kid`s cause.
pub const KID_REFETCH_INTERVAL: i64 = 30;
/// A subrequest older than this is taken as lost (its request went away): another may start.
pub const IN_FLIGHT_LIMIT: i64 = 30;
/// After a failed fetch, requests that find no keys get 503 for this long before one of them
/// tries again (Retry-After).
pub const RETRY_AFTER: i64 = 5;

/// What a request does about one key-request URI.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Use the keys held (there may be none: then the location has no keys, 503).
    Use,
    /// Start the subrequest: this request fetches for the worker.
    Fetch,
    /// Another request of this worker is fetching: wait for it.
    Wait,
}

/// One URI's key set in one worker.
#[derive(Debug, Default)]
pub struct KeyRequest {
    keys: Option<Arc<KeySet>>,
    /// When `keys` were fetched (here or by another worker, through the zone).
    fetched_at: i64,
    /// When the subrequest in flight started.
    in_flight: Option<i64>,
    /// Last failed fetch.
    failed_at: Option<i64>,
    /// An unknown `kid` asked for fresh keys.
    stale: bool,
    last_kid_refetch: i64,
}

impl KeyRequest {
    /// The keys, if any fetch ever succeeded (a failed fetch keeps them).
    pub fn keys(&self) -> Option<&Arc<KeySet>> {
        self.keys.as_ref()
    }

    pub fn fetched_at(&self) -> i64 {
        self.fetched_at
    }

    /// Whether keys fetched at `fetched_at` still serve under `auth_jwt_key_cache cache`
    /// (seconds). With 0 (NGINX Plus's default) requests fetch anew, but those that waited
    /// for a fetch, and its own request, use it: keys serve through the second after the one
    /// they arrived in.
    pub fn fresh(&self, now: i64, cache: i64) -> bool {
        self.keys.is_some() && !self.stale && now <= self.fetched_at.saturating_add(cache.max(1))
    }

    /// What a request arriving at `now` does.
    pub fn plan(&mut self, now: i64, cache: i64) -> Plan {
        if self.fresh(now, cache) {
            return Plan::Use;
        }
        if let Some(started) = self.in_flight {
            if now - started < IN_FLIGHT_LIMIT {
                return Plan::Wait;
            }
        }
        // Without keys after a failure, answer 503 for a while instead of a fetch per request.
        if self.keys.is_none() && self.failed_at.is_some_and(|t| now - t < RETRY_AFTER) {
            return Plan::Use;
        }
        self.in_flight = Some(now);
        Plan::Fetch
    }

    /// The subrequest ended: with a key set, or `None` when it failed (the old keys stay).
    pub fn done(&mut self, now: i64, keys: Option<KeySet>) {
        self.in_flight = None;
        match keys {
            Some(keys) => {
                self.keys = Some(Arc::new(keys));
                self.fetched_at = now;
                self.stale = false;
                self.failed_at = None;
            }
            None => {
                self.failed_at = Some(now);
                // Keep serving the old keys: the next refetch waits out the cache again.
                if self.keys.is_some() {
                    self.fetched_at = now;
                    self.stale = false;
                }
            }
        }
    }

    /// Keys another worker fetched (from the shared zone), if newer than ours.
    pub fn adopt(&mut self, fetched_at: i64, keys: KeySet) {
        if fetched_at > self.fetched_at || self.keys.is_none() {
            self.keys = Some(Arc::new(keys));
            self.fetched_at = fetched_at;
            self.stale = false;
        }
    }

    /// A token named a `kid` these keys lack: refetch, at most once per
    /// [`KID_REFETCH_INTERVAL`]. Returns whether it will.
    pub fn unknown_kid(&mut self, now: i64) -> bool {
        if now - self.last_kid_refetch < KID_REFETCH_INTERVAL {
            return false;
        }
        self.last_kid_refetch = now;
        self.stale = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fetch_at_a_time_then_the_cache() {
        let mut k = KeyRequest::default();
        assert_eq!(k.plan(100, 3600), Plan::Fetch);
        assert_eq!(k.plan(100, 3600), Plan::Wait);
        assert_eq!(k.plan(129, 3600), Plan::Wait);
        k.done(101, Some(KeySet::default()));
        assert_eq!(k.plan(102, 3600), Plan::Use);
        assert_eq!(k.plan(3701, 3600), Plan::Use);
        assert_eq!(k.plan(3702, 3600), Plan::Fetch);
        // A lost subrequest is given up after IN_FLIGHT_LIMIT.
        assert_eq!(k.plan(3702 + IN_FLIGHT_LIMIT, 3600), Plan::Fetch);
    }

    #[test]
    fn cache_zero_fetches_again_after_the_next_second() {
        let mut k = KeyRequest::default();
        assert_eq!(k.plan(100, 0), Plan::Fetch);
        k.done(100, Some(KeySet::default()));
        // The fetching request and its waiters resume now or in the next second.
        assert_eq!(k.plan(101, 0), Plan::Use);
        assert_eq!(k.plan(102, 0), Plan::Fetch);
    }

    #[test]
    fn failures_keep_the_keys_and_pace_the_retries() {
        let mut k = KeyRequest::default();
        assert_eq!(k.plan(100, 60), Plan::Fetch);
        k.done(100, None);
        assert!(k.keys().is_none());
        assert_eq!(k.plan(101, 60), Plan::Use); // no keys: 503
        assert_eq!(k.plan(100 + RETRY_AFTER, 60), Plan::Fetch);
        k.done(106, Some(KeySet::default()));
        assert_eq!(k.plan(200, 60), Plan::Fetch);
        k.done(200, None);
        assert!(k.keys().is_some());
        assert_eq!(k.plan(201, 60), Plan::Use);
    }

    #[test]
    fn unknown_kids_refetch_once_per_interval() {
        let mut k = KeyRequest::default();
        k.plan(100, 3600);
        k.done(100, Some(KeySet::default()));
        assert!(k.unknown_kid(110));
        assert_eq!(k.plan(111, 3600), Plan::Fetch);
        k.done(111, Some(KeySet::default()));
        assert!(!k.unknown_kid(120));
        assert_eq!(k.plan(121, 3600), Plan::Use);
        assert!(k.unknown_kid(110 + KID_REFETCH_INTERVAL));
    }

    #[test]
    fn keys_from_other_workers_are_adopted_when_newer() {
        let mut k = KeyRequest::default();
        k.adopt(50, KeySet::default());
        assert!(k.fresh(60, 3600));
        let first = Arc::clone(k.keys().unwrap());
        k.adopt(40, KeySet::default());
        assert!(Arc::ptr_eq(&first, k.keys().unwrap()));
    }
}
