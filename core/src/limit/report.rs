//! The rate limits' part of the metrics and status pages.

use core::fmt::Write;

use serde_json::{json, Value};

use super::LimitTable;

/// One zone's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitReport {
    pub zone: String,
    pub allowed: u64,
    pub limited: u64,
    pub keys: u64,
    pub capacity: u64,
    pub evicted: u64,
    pub sync_failures: u64,
    /// `off`, `connecting`, `connected` or `down`.
    pub redis: &'static str,
}

impl LimitReport {
    /// The report of `zone`'s table; `redis` says whether it has `redis=`.
    pub fn of(zone: &str, t: &LimitTable<'_>, redis: bool) -> Self {
        Self {
            zone: zone.to_owned(),
            allowed: t.allowed(),
            limited: t.limited(),
            keys: t.tracked(),
            capacity: t.slots() as u64,
            evicted: t.evicted(),
            sync_failures: t.sync_failures(),
            redis: match (redis, t.redis_state()) {
                (false, _) => "off",
                (true, super::table::REDIS_UP) => "connected",
                (true, super::table::REDIS_DOWN) => "down",
                (true, _) => "connecting",
            },
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "zone": self.zone,
            "allowed": self.allowed,
            "limited": self.limited,
            "keys": self.keys,
            "capacity": self.capacity,
            "evicted": self.evicted,
            "sync_failures": self.sync_failures,
            "redis": self.redis,
        })
    }
}

/// Prometheus text for every zone.
pub fn prometheus(reports: &[LimitReport]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        return out;
    }
    let mut family =
        |name: &str, kind: &str, help: &str, rows: &mut dyn Iterator<Item = String>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for row in rows {
                let _ = writeln!(out, "{name}{row}");
            }
        };
    let z = |r: &LimitReport| r.zone.replace(['\\', '"', '\n'], "_");
    family(
        "nginx_auth_jwt_limit_requests_total",
        "counter",
        "Requests a rate limit decided, by zone and result.",
        &mut reports.iter().flat_map(|r| {
            [
                format!("{{zone=\"{}\",result=\"allowed\"}} {}", z(r), r.allowed),
                format!("{{zone=\"{}\",result=\"limited\"}} {}", z(r), r.limited),
            ]
        }),
    );
    for (name, kind, help, get) in [
        (
            "nginx_auth_jwt_limit_keys",
            "gauge",
            "Keys tracked in the zone's table.",
            (|r| r.keys) as fn(&LimitReport) -> u64,
        ),
        (
            "nginx_auth_jwt_limit_capacity",
            "gauge",
            "Keys the zone's table holds (size=).",
            |r| r.capacity,
        ),
        (
            "nginx_auth_jwt_limit_evictions_total",
            "counter",
            "Least recently used keys evicted for new ones.",
            |r| r.evicted,
        ),
        (
            "nginx_auth_jwt_limit_sync_failures_total",
            "counter",
            "Syncs with Redis that failed.",
            |r| r.sync_failures,
        ),
    ] {
        family(
            name,
            kind,
            help,
            &mut reports
                .iter()
                .map(|r| format!("{{zone=\"{}\"}} {}", z(r), get(r))),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text() {
        let r = LimitReport {
            zone: "api".into(),
            allowed: 3,
            limited: 2,
            keys: 1,
            capacity: 10,
            evicted: 0,
            sync_failures: 4,
            redis: "down",
        };
        let text = prometheus(std::slice::from_ref(&r));
        assert!(text
            .contains("nginx_auth_jwt_limit_requests_total{zone=\"api\",result=\"limited\"} 2\n"));
        assert!(text.contains("nginx_auth_jwt_limit_sync_failures_total{zone=\"api\"} 4\n"));
        assert_eq!(r.json()["redis"], "down");
        assert_eq!(prometheus(&[]), "");
    }
}
