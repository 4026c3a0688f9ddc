//! The revocation part of the status page and of the Prometheus exposition.

use core::fmt::Write;

use serde_json::{json, Value};

use super::Kind;

/// What the zone knows about revocations, gathered by the module.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RevocationReport {
    /// Entries per kind, in `Kind::ALL` order.
    pub entries: [u64; 3],
    pub capacity: u64,
    /// The Redis URL without its password, and the stream; empty without Redis.
    pub redis: String,
    pub stream: String,
    /// `connected`, `connecting`, `down`, or `off`.
    pub connection: &'static str,
    /// Last successful contact with Redis (seconds since the epoch; 0: never).
    pub synced_at: i64,
    /// Time of the newest applied stream entry (its id's milliseconds), 0 when none.
    pub newest_entry_ms: i64,
    pub last_id: String,
    pub file: String,
    pub file_loaded_at: i64,
    pub last_error: String,
    pub sync_failures: u64,
    pub malformed: u64,
    pub table_full: u64,
    pub resyncs: u64,
    pub last_resync_ms: u64,
}

impl RevocationReport {
    /// Seconds since the last sync (`None`: never synced).
    pub fn since_sync(&self, now: i64) -> Option<i64> {
        (self.synced_at > 0).then(|| (now - self.synced_at).max(0))
    }

    /// The status page's `revocations` object.
    pub fn json(&self, now: i64) -> Value {
        let by_kind: serde_json::Map<String, Value> = Kind::ALL
            .iter()
            .zip(self.entries)
            .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
            .collect();
        json!({
            "entries": by_kind,
            "capacity": self.capacity,
            "redis": (!self.redis.is_empty()).then(|| json!({
                "url": self.redis,
                "stream": self.stream,
                "connection": self.connection,
                "last_sync": (self.synced_at > 0).then_some(self.synced_at),
                "seconds_since_sync": self.since_sync(now),
                "last_id": (!self.last_id.is_empty()).then_some(&self.last_id),
                "lag_seconds": (self.newest_entry_ms > 0 && self.synced_at > 0)
                    .then(|| (self.synced_at - self.newest_entry_ms / 1000).max(0)),
                "resyncs": self.resyncs,
                "last_resync_ms": self.last_resync_ms,
            })),
            "file": (!self.file.is_empty()).then(|| json!({
                "path": self.file,
                "loaded_at": (self.file_loaded_at > 0).then_some(self.file_loaded_at),
            })),
            "last_error": (!self.last_error.is_empty()).then_some(&self.last_error),
            "sync_failures": self.sync_failures,
            "malformed_entries": self.malformed,
            "table_full": self.table_full,
        })
    }

    /// Prometheus lines, appended to the module's exposition.
    pub fn prometheus(&self, now: i64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP nginx_auth_jwt_revocations Revocations held in the shared zone, by kind."
        );
        let _ = writeln!(out, "# TYPE nginx_auth_jwt_revocations gauge");
        for (k, n) in Kind::ALL.iter().zip(self.entries) {
            let _ = writeln!(
                out,
                "nginx_auth_jwt_revocations{{kind=\"{}\"}} {n}",
                k.as_str()
            );
        }
        let mut one = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        one(
            "nginx_auth_jwt_revocation_capacity",
            "gauge",
            "Most revocations the shared zone holds.",
            self.capacity.to_string(),
        );
        one(
            "nginx_auth_jwt_revocation_sync_failures_total",
            "counter",
            "Failed attempts to read revocations from Redis.",
            self.sync_failures.to_string(),
        );
        one(
            "nginx_auth_jwt_revocation_malformed_total",
            "counter",
            "Revocation entries refused as malformed.",
            self.malformed.to_string(),
        );
        one(
            "nginx_auth_jwt_revocation_table_full_total",
            "counter",
            "Revocations not stored because the table was full.",
            self.table_full.to_string(),
        );
        if !self.redis.is_empty() {
            one(
                "nginx_auth_jwt_revocation_connected",
                "gauge",
                "1 while the node's Redis connection is up.",
                u8::from(self.connection == "connected").to_string(),
            );
            // Never synced: NaN, so that an alert on a large value does not stay silent
            // only because the node never had a sync.
            let since = self.since_sync(now).map_or("NaN".into(), |s| s.to_string());
            one(
                "nginx_auth_jwt_revocation_seconds_since_sync",
                "gauge",
                "Seconds since the last successful read from Redis.",
                since,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_render() {
        let r = RevocationReport {
            entries: [1, 2, 3],
            capacity: 100,
            redis: "redis://h:1/0".into(),
            stream: "s".into(),
            connection: "connected",
            synced_at: 1000,
            newest_entry_ms: 998_500,
            ..Default::default()
        };
        let text = r.prometheus(1010);
        assert!(
            text.contains("nginx_auth_jwt_revocations{kind=\"sub\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("nginx_auth_jwt_revocation_seconds_since_sync 10\n"));
        assert!(text.contains("nginx_auth_jwt_revocation_connected 1\n"));
        let j = r.json(1010);
        assert_eq!(j["entries"]["kid"], 3);
        assert_eq!(j["redis"]["lag_seconds"], 2);
        assert_eq!(j["file"], Value::Null);
        let never = RevocationReport {
            redis: "x".into(),
            ..Default::default()
        };
        assert!(never.prometheus(5).contains("seconds_since_sync NaN"));
        assert!(!RevocationReport::default()
            .prometheus(5)
            .contains("since_sync"));
    }
}
