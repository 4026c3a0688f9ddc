//! The revocation table's edges: a stream that went back (ids lower than the last seen), and
//! a full table — logged at `error` and counted, never a crash, never a silent drop.

use std::time::{Duration, Instant};

use super::{status, token, until_status, wait_log, CONF as FILE_CONF};
use crate::harness::mint::now;
use crate::harness::redis::Redis;
use crate::harness::Nginx;

const CONF: &str = r#"
    auth_jwt_zone 512k;
    auth_jwt_revocation_redis redis://127.0.0.1:{{redis}} timeout=1s;
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        location / {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
        location = /status {
            auth_jwt_status;
        }
        location = /metrics {
            auth_jwt_metrics;
        }
    }
"#;

fn revocations(nginx: &Nginx) -> serde_json::Value {
    let page = nginx.get("/status").send().text();
    let page: serde_json::Value = serde_json::from_str(&page).expect("status JSON");
    page["revocations"].clone()
}

/// A stream deleted and made again with ids below the last one seen: `XREAD` from the last id
/// would never see them; the node notices, syncs the whole stream, and keeps what it held.
#[test]
fn a_stream_recreated_with_lower_ids_is_synced_again_and_nothing_held_is_lost() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let conf = CONF.replace("{{redis}}", &redis.port.to_string());
    let nginx = Nginx::http(&conf).allow_log("went back").start();
    let t0 = now();
    let (first, second) = (
        token("before-del", "bob", t0),
        token("after-del", "bob", t0),
    );
    until_status(&nginx, &first, 200);
    redis.xadd(&["jti", "before-del", "exp", &(t0 + 600).to_string()]);
    until_status(&nginx, &first, 401);
    redis.cli(&["DEL", "auth_jwt:revocations"]);
    redis.cli(&[
        "XADD",
        "auth_jwt:revocations",
        "1-1",
        "jti",
        "after-del",
        "exp",
        &(t0 + 600).to_string(),
    ]);
    let took = until_status(&nginx, &second, 401);
    eprintln!("recreated stream resynced in {took:?}");
    let log = wait_log(&nginx, "went back");
    assert!(
        log.contains("revocation stream \"auth_jwt:revocations\" went back (recreated, or Redis restarted without persistence): full sync; the 1 revocations held stay"),
        "{log}"
    );
    assert_eq!(status(&nginx, &first), 401, "a held revocation was lost");
    assert_eq!(revocations(&nginx)["redis"]["last_id"], "1-1");
    nginx.finish();
}

#[test]
fn a_full_table_is_logged_at_error_and_counted_and_what_fits_still_holds() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let conf = CONF.replace("{{redis}}", &redis.port.to_string());
    let nginx = Nginx::http(&conf)
        .allow_log("revocation table full")
        .start();
    let capacity = revocations(&nginx)["capacity"].as_u64().expect("capacity") as usize;
    // A quarter of the 512k zone, 16 bytes a slot, full at 7/8 (README's arithmetic).
    assert_eq!(capacity, 512 * 1024 / 4 / 16 * 7 / 8, "capacity");
    let over = 50;
    let t0 = now();
    redis.xadd_jtis("fill", capacity + over, t0 + 600);
    let log = wait_log(&nginx, "revocation table full");
    let full: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("revocation table full"))
        .collect();
    assert!(!full.is_empty(), "nothing logged for a full table");
    assert!(full[0].contains("[error]"), "{}", full[0]);
    let want = format!("revocation table full (capacity {capacity}): entry ");
    assert!(
        full[0].contains(&want) && full[0].contains("not stored; raise auth_jwt_zone"),
        "{}",
        full[0]
    );
    // Every refused entry is named and counted: none dropped silently.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rev = loop {
        let rev = revocations(&nginx);
        if rev["table_full"].as_u64() >= Some(over as u64) || Instant::now() > deadline {
            break rev;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rev["table_full"], over as u64, "{rev}");
    assert_eq!(rev["entries"]["jti"], capacity as u64, "{rev}");
    let log = nginx.error_log();
    let named = log
        .lines()
        .filter(|l| l.contains("revocation table full") && l.contains("not stored"))
        .count();
    assert_eq!(named, over, "one line per entry not stored");
    let metrics = nginx.get("/metrics").send().text();
    assert!(
        metrics.contains(&format!(
            "nginx_auth_jwt_revocation_table_full_total {over}\n"
        )),
        "{metrics}"
    );
    // What fits still holds, and the node goes on serving.
    assert_eq!(status(&nginx, &token("fill-0", "bob", t0)), 401);
    assert_eq!(status(&nginx, &token("not-revoked", "bob", t0)), 200);
    nginx.finish();
}

/// A revocation file larger than the table fails the configuration test, naming the file.
#[test]
fn a_revocation_file_larger_than_the_table_fails_the_configuration_test() {
    let entries: Vec<String> = (0..20_000)
        .map(|n| format!(r#"{{"jti": "f-{n}", "exp": {}}}"#, now() + 600))
        .collect();
    let conf = format!("    auth_jwt_zone 512k;{FILE_CONF}");
    let out = Nginx::http(&conf)
        .file("revoked.json", format!("[{}]", entries.join(",")))
        .try_start()
        .err()
        .unwrap_or_default();
    assert!(
        out.contains("do not fit in the table") && out.contains("raise auth_jwt_zone"),
        "{out}"
    );
}
