//! The rate limits' sync thread: one per worker, of which the one holding a zone's lease (the
//! node's elected sync) adds the node's unsynced hits to Redis every `sync=` in one pipelined
//! round trip (`INCRBY` + `PEXPIRE` per key and window, `GET` for active keys with none) and
//! folds the cluster totals back into the table. Redis down: the node limits alone, logged
//! once per state change, and the next sync tries again. It touches nothing of NGINX but the
//! shared zone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nginx_sys::{NGX_LOG_NOTICE, NGX_LOG_WARN};
use redis::Value;

use super::{LimitZoneConf, LimitZones};
use crate::background::Background;
use crate::fetch::{log, unix_now};
use crate::revocation::redis::{connect, Conn};
use crate::revocation::RedisSource;
use auth_jwt_core::limit::table::{REDIS_DOWN, REDIS_UP};
use auth_jwt_core::limit::{redis_key, SyncItem};

/// How long a zone's lease holds without renewal.
const LEASE: i64 = 3;
/// Longest sleep between two looks, so that a stop is seen soon.
const TICK: Duration = Duration::from_millis(250);

struct Zone {
    index: usize,
    name: String,
    window_ms: u64,
    sync: Duration,
    /// The `nodes=` hint (1: none), for the estimate of the other nodes' unseen hits.
    nodes: u32,
    redis: Arc<RedisSource>,
    conn: Option<Conn>,
    next: Instant,
}

/// Starts the sync thread if a zone has `redis=`; None otherwise.
pub fn start(
    confs: &[LimitZoneConf],
    zones: &'static LimitZones,
) -> std::io::Result<Option<Background>> {
    let mut list: Vec<Zone> = confs
        .iter()
        .enumerate()
        .filter_map(|(index, c)| {
            Some(Zone {
                index,
                name: c.args.name.clone(),
                window_ms: c.args.policy.window_ms,
                sync: c.args.sync,
                nodes: c.args.nodes.unwrap_or(1),
                redis: Arc::clone(c.redis.as_ref()?),
                conn: None,
                next: Instant::now(),
            })
        })
        .collect();
    if list.is_empty() {
        return Ok(None);
    }
    let pid = std::process::id();
    Background::spawn("auth_jwt limit", move |stop| {
        let mut items = Vec::new();
        while !stop.requested() {
            let now = Instant::now();
            for z in &mut list {
                if z.next <= now {
                    z.next = now + z.sync;
                    let _ = crate::log::catch("limit sync", || step(z, zones, pid, &mut items));
                }
            }
            let next = list.iter().map(|z| z.next).min().unwrap_or(now + TICK);
            stop.wait(next.saturating_duration_since(Instant::now()).min(TICK));
        }
    })
    .map(Some)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn step(z: &mut Zone, zones: &LimitZones, pid: u32, items: &mut Vec<SyncItem>) {
    let table = zones.table(z.index);
    let now = unix_now();
    if !table.try_lock(pid, now, now + LEASE) {
        z.conn = None;
        return;
    }
    let now = now_ms();
    items.clear();
    table.drain(now, z.window_ms, items);
    if items.is_empty() {
        return;
    }
    match round_trip(z, items) {
        Ok(totals) => {
            for (item, total) in items.iter().zip(totals) {
                table.fold(item, total, now, z.window_ms, z.nodes);
            }
            if table.set_redis_state(REDIS_UP) {
                log(
                    NGX_LOG_NOTICE,
                    format!(
                        "auth_jwt_limit_zone \"{}\": synced with {}",
                        z.name, z.redis.args.url
                    ),
                );
            }
        }
        Err(e) => {
            z.conn = None;
            if table.set_redis_state(REDIS_DOWN) {
                log(
                    NGX_LOG_WARN,
                    format!(
                        "auth_jwt_limit_zone \"{}\": Redis {} unreachable, limiting alone: {e}",
                        z.name, z.redis.args.url
                    ),
                );
            }
        }
    }
}

/// One pipeline for every item; the cluster total of each, in order.
fn round_trip(z: &mut Zone, items: &[SyncItem]) -> Result<Vec<u64>, String> {
    let conn = match &mut z.conn {
        Some(c) => c,
        None => z.conn.insert(connect(&z.redis, z.redis.args.timeout)?),
    };
    let mut pipe = redis::pipe();
    let ttl = 2 * z.window_ms + 1000;
    for it in items {
        let key = redis_key(&z.name, it.key, it.window);
        if it.delta > 0 {
            pipe.cmd("INCRBY").arg(&key).arg(it.delta);
            pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
        } else {
            pipe.cmd("GET").arg(&key);
        }
    }
    let replies = conn.pipeline(&pipe)?;
    if replies.len() != items.len() {
        return Err(format!(
            "{} replies for {} commands",
            replies.len(),
            items.len()
        ));
    }
    Ok(replies.iter().map(total).collect())
}

fn total(v: &Value) -> u64 {
    match v {
        Value::Int(n) => (*n).max(0) as u64,
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}
