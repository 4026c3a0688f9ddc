//! Tests for auth_jwt: several worker processes, reloads, and a worker that dies.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Failures, Jwt, Nginx, Request};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}} reuseport;
        auth_jwt_key_file {{keys}}/rsa.json;
        KEYS
        location / {
            auth_jwt "api";
            proxy_pass {{upstream}};
        }
    }
"#;

fn conf(extra_keys: &str) -> String {
    CONF.replace("KEYS", extra_keys)
}

/// Pid of the process that wrote an error-log line: "2024/01/01 00:00:00 [info] 123#123: ...".
fn pid_of(line: &str) -> Option<u32> {
    line.split("] ").nth(1)?.split('#').next()?.parse().ok()
}

#[test]
fn every_worker_verifies() {
    let nginx = Nginx::http(&conf("")).workers(2).start();
    assert_eq!(nginx.worker_pids().len(), 2);
    let good = Jwt::new("RS256").encode();
    let bad = Jwt::new("RS256").exp_in(-10).encode();
    let mark = nginx.log_mark();
    let mut f = Failures::new();
    // With reuseport, each connection lands on a worker chosen by its source port.
    for i in 0..60 {
        f.check(
            &format!("good {i}"),
            nginx.check_accepted("/", &good).map(|_| ()),
        );
        let resp = nginx.get("/").bearer(&bad).send();
        f.check(
            &format!("bad {i}"),
            if resp.status == 401 {
                Ok(())
            } else {
                Err(resp.summary())
            },
        );
    }
    f.assert();
    let lines = nginx.log_lines(mark, "auth_jwt: rejected (expired)");
    assert_eq!(lines.len(), 60, "one denial line per refused request");
    let pids: HashSet<u32> = lines.iter().filter_map(|l| pid_of(l)).collect();
    assert!(
        pids.len() >= 2,
        "denials came from only {pids:?}: is every worker checking?"
    );
    nginx.finish();
}

#[test]
fn parallel_clients_on_four_workers() {
    let nginx = Nginx::http(&conf("")).workers(4).start();
    let port = nginx.port();
    let good = Jwt::new("RS256").encode();
    let bad = Jwt::new("RS256").kid("nope").encode();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (good, bad) = (good.clone(), bad.clone());
            thread::spawn(move || {
                let mut errors = Vec::new();
                for i in 0..40 {
                    let ok = Request::new(port, "GET", "/").bearer(&good).send();
                    if !ok.is_from_upstream() {
                        errors.push(format!("thread {t} good {i}: {}", ok.summary()));
                    }
                    let no = Request::new(port, "GET", "/").bearer(&bad).send();
                    if no.status != 401 {
                        errors.push(format!("thread {t} bad {i}: {}", no.summary()));
                    }
                }
                errors
            })
        })
        .collect();
    let errors: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    nginx.finish();
}

#[test]
fn reload_applies_new_keys_without_failing_requests() {
    let mut nginx = Nginx::http(&conf("")).workers(2).start();
    let rs = Jwt::new("RS256").encode();
    let es = Jwt::new("ES256").encode();
    nginx.check_accepted("/", &rs).unwrap();
    nginx
        .check_rejected("/", "api", &es, "invalid", "no key matches kid")
        .unwrap();

    // Valid requests keep flowing during the reload; none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let port = nginx.port();
    let client = {
        let (stop, rs) = (stop.clone(), rs.clone());
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let (mut sent, mut errors) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && sent < 5000 {
                sent += 1;
                match Request::new(port, "GET", "/").bearer(&rs).try_send() {
                    Ok(r) if r.is_from_upstream() => {}
                    Ok(r) => errors.push(r.summary()),
                    Err(e) => errors.push(e),
                }
            }
            (sent, errors)
        })
    };
    thread::sleep(Duration::from_millis(200));
    let before = nginx.worker_pids();
    nginx
        .reload_with(&conf("auth_jwt_key_file {{keys}}/ec256.json;"))
        .expect("reload");
    let after = nginx.worker_pids();
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (sent, errors) = client.join().expect("client thread");
    assert!(sent > 0);
    assert!(
        errors.is_empty(),
        "{} of {sent} requests failed during the reload:\n{}",
        errors.len(),
        errors.join("\n")
    );

    nginx.check_accepted("/", &es).unwrap();
    nginx.check_accepted("/", &rs).unwrap();
    nginx.finish();
}

#[test]
fn refused_reload_keeps_the_running_configuration() {
    let mut nginx = Nginx::http(&conf("")).workers(2).start();
    let rs = Jwt::new("RS256").encode();
    let err = nginx
        .reload_with(&conf("auth_jwt_key_file {{prefix}}/missing.json;"))
        .unwrap_err();
    assert!(err.contains("missing.json"), "{err}");
    nginx.check_accepted("/", &rs).unwrap();
    assert_eq!(nginx.worker_pids().len(), 2);
    nginx.allow_log("missing.json");
    nginx.finish();
}

/// A reload that fails after NGINX made the new cycle's shared zone (a changed
/// `auth_jwt_zone` size, then a `listen` on a busy port) must leave nothing of that cycle
/// behind: NGINX frees its zone, and a worker respawned afterwards uses the running one.
#[test]
fn a_failed_reload_with_a_new_zone_leaves_respawned_workers_working() {
    let mut nginx = Nginx::http(&conf("")).workers(2).start();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let failing = conf("").replace(
        "server {",
        &format!("auth_jwt_zone 2m;\n    server {{\n        listen 127.0.0.1:{port};"),
    );
    let err = nginx.reload_with(&failing).unwrap_err();
    assert!(err.contains("Address already in use"), "{err}");
    let victims = nginx.worker_pids();
    for &victim in &victims {
        Nginx::signal(victim, "KILL");
    }
    let replaced = crate::harness::poll_until(Duration::from_secs(10), || {
        let pids = nginx.worker_pids();
        (pids.len() == 2 && pids.iter().all(|p| !victims.contains(p))).then_some(())
    });
    assert!(
        replaced.is_some(),
        "workers not replaced: {:?}",
        nginx.worker_pids()
    );
    let mut f = Failures::new();
    for i in 0..20 {
        f.check(
            &format!("good {i}"),
            nginx
                .check_accepted("/", &Jwt::new("RS256").encode())
                .map(|_| ()),
        );
    }
    f.assert();
    let log = nginx.error_log();
    assert!(!log.contains("signal 11"), "{log}");
    nginx.allow_log("Address already in use");
    nginx.allow_log("still could not bind()");
    for victim in victims {
        nginx.allow_log(&format!("{victim} exited on signal 9"));
    }
    nginx.finish();
}

#[test]
fn a_killed_worker_is_replaced_and_the_new_one_verifies() {
    let mut nginx = Nginx::http(&conf("")).workers(2).start();
    let victim = nginx.worker_pids()[0];
    Nginx::signal(victim, "KILL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let pids = nginx.worker_pids();
        if pids.len() == 2 && !pids.contains(&victim) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let pids = nginx.worker_pids();
    assert!(
        pids.len() == 2 && !pids.contains(&victim),
        "worker not replaced: {pids:?}"
    );
    let mut f = Failures::new();
    for i in 0..20 {
        f.check(
            &format!("good {i}"),
            nginx
                .check_accepted("/", &Jwt::new("RS256").encode())
                .map(|_| ()),
        );
        f.check(
            &format!("bad {i}"),
            nginx.check_rejected("/", "api", "x.y.z", "invalid", ""),
        );
    }
    f.assert();
    // NGINX reports the killed worker at [alert]: expected here.
    nginx.allow_log(&format!("{victim} exited on signal 9"));
    nginx.finish();
}
