//! Tests for auth_jwt: remote keys across workers and reloads (one fetch per node).

use super::*;

#[test]
fn four_workers_fetch_once_per_interval() {
    let idp = Idp::start();
    let nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=2s"), "", ""))
        .workers(4)
        .start();
    wait_keys_in_workers(&nginx, 0, &idp.jwks_url(), "1, kids [rsa-1]", 4);
    let first = idp.hits(JWKS_PATH)[0].at;
    let traffic = Traffic::start(nginx.port(), vec![token1()]);
    let window = Duration::from_secs(7);
    thread::sleep(window.saturating_sub(first.elapsed()));
    traffic.finish("four workers");
    let hits: Vec<Instant> = idp
        .hits(JWKS_PATH)
        .iter()
        .map(|h| h.at)
        .filter(|at| at.saturating_duration_since(first) <= window)
        .collect();
    // 7 s at one fetch per 2 s: the first fetch and 3 (at most 4) refreshes; four fetchers
    // each fetching would give about 16.
    let refreshes = hits.len() - 1;
    assert!(
        (3..=4).contains(&refreshes),
        "{refreshes} refreshes in {window:?} with refresh=2s: {:?}",
        hits.iter()
            .map(|h| h.saturating_duration_since(first))
            .collect::<Vec<_>>()
    );
    // Fetch times are scheduled in whole seconds: the first gap may be as short as 1 s.
    let gaps: Vec<Duration> = hits.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(900)),
        "fetches closer than the interval: {gaps:?}"
    );
    nginx.finish();
}

/// Pids among `pids` holding an established TCP connection to 127.0.0.1:`port`: what the
/// kernel's socket table shows through /proc and through `ss` (netlink), united.
fn pids_connected_to(port: u16, pids: &[u32]) -> Vec<u32> {
    let mut found = pids_in_proc_net_tcp(port, pids);
    for pid in pids_by_ss(port) {
        if pids.contains(&pid) && !found.contains(&pid) {
            found.push(pid);
        }
    }
    found
}

/// `ss -tnp`: the same table read through netlink's inet_diag dump, a second view for when
/// /proc/net/tcp's page-at-a-time text misses the line (ci5 on 2026-12-03, again under load).
fn pids_by_ss(port: u16) -> Vec<u32> {
    let out = std::process::Command::new("ss")
        .args([
            "-tnpH",
            "state",
            "established",
            "dst",
            &format!("127.0.0.1:{port}"),
        ])
        .output();
    let Ok(out) = out else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split("pid=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn pids_in_proc_net_tcp(port: u16, pids: &[u32]) -> Vec<u32> {
    let remote = format!("0100007F:{port:04X}");
    // /proc/net/tcp is not a snapshot: the kernel prints it a page at a time while sockets
    // come and go, so under load a line can be missed. Three reads, united.
    let inodes: HashSet<String> = (0..3)
        .flat_map(|_| {
            let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    (cols.len() > 9 && cols[2] == remote && cols[3] == "01")
                        .then(|| cols[9].to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    pids.iter()
        .copied()
        .filter(|pid| {
            let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            fds.filter_map(Result::ok).any(|fd| {
                fs::read_link(fd.path()).is_ok_and(|target| {
                    let t = target.to_string_lossy();
                    t.strip_prefix("socket:[")
                        .and_then(|rest| rest.strip_suffix(']'))
                        .is_some_and(|inode| inodes.contains(inode))
                })
            })
        })
        .collect()
}

/// Waits until `n` workers run and none of `gone` is among them.
fn wait_workers(nginx: &Nginx, n: usize, gone: &[u32]) {
    poll_until(Duration::from_secs(10), || {
        let pids = nginx.worker_pids();
        (pids.len() == n && pids.iter().all(|p| !gone.contains(p))).then_some(())
    })
    .unwrap_or_else(|| panic!("workers not replaced: {:?}", nginx.worker_pids()));
}

#[test]
fn killing_the_fetching_worker_hands_the_fetch_on() {
    let idp = Idp::start();
    let mut nginx = Nginx::http(&conf(&idp, &key_uri(&idp, "refresh=1s timeout=2s"), "", ""))
        .workers(3)
        .start();
    wait_keys_in_workers(&nginx, 0, &idp.jwks_url(), "1, kids [rsa-1]", 3);
    for round in 1..=2 {
        // Catch the fetcher in the act: the IdP hangs, so the fetching worker holds a
        // connection to it (and the fetch lease) for the whole timeout.
        idp.set_fault(Fault::Hang);
        let seen = idp.jwks_count();
        idp.wait_count(JWKS_PATH, seen + 1, Duration::from_secs(5))
            .unwrap();
        // Scanning /proc under load can miss one hung fetch; the fetcher retries every second.
        let fetching = poll_until(Duration::from_secs(15), || {
            let pids = pids_connected_to(idp.port(), &nginx.worker_pids());
            (pids.len() == 1).then(|| pids[0])
        })
        .unwrap_or_else(|| {
            let remote = format!(":{:04X}", idp.port());
            let tcp: Vec<String> = fs::read_to_string("/proc/net/tcp")
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&remote))
                .map(str::to_owned)
                .collect();
            panic!(
                "round {round}: no single worker connected to the IdP; workers {:?}, connected {:?}, hits {:?}\n{}",
                nginx.worker_pids(),
                pids_connected_to(idp.port(), &nginx.worker_pids()),
                idp.hits(JWKS_PATH),
                tcp.join("\n")
            )
        });
        Nginx::signal(fetching, "KILL");
        idp.set_fault(Fault::Ok);
        nginx.allow_log(&format!("{fetching} exited on signal 9"));
        wait_workers(&nginx, 3, &[fetching]);
        // Once the dead worker's lease runs out (timeout + 2 s), another worker fetches,
        // and the refresh goes on at its interval.
        let n = idp.jwks_count();
        idp.wait_count(JWKS_PATH, n + 1, Duration::from_secs(8))
            .unwrap_or_else(|e| panic!("round {round}: refresh stopped: {e}"));
        idp.wait_count(JWKS_PATH, n + 2, Duration::from_secs(4))
            .unwrap_or_else(|e| panic!("round {round}: refresh stopped: {e}"));
        let served = Traffic::start(nginx.port(), vec![token1()]);
        thread::sleep(Duration::from_millis(300));
        served.finish(&format!("round {round}"));
    }
    // Every worker at once: the new ones start from the zone's keys.
    let all = nginx.worker_pids();
    for &pid in &all {
        Nginx::signal(pid, "KILL");
        nginx.allow_log(&format!("{pid} exited on signal 9"));
    }
    wait_workers(&nginx, 3, &all);
    let n = idp.jwks_count();
    let traffic = Traffic::start(nginx.port(), vec![token1()]);
    idp.wait_count(JWKS_PATH, n + 2, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("after killing every worker: {e}"));
    traffic.finish("after killing every worker");
    nginx.finish();
}

#[test]
fn reload_under_traffic_fails_nothing_and_fetches_nothing() {
    let idp = Idp::start();
    let source = key_uri(&idp, "refresh=10m");
    let mut nginx = Nginx::http(&conf(&idp, &source, "", "")).workers(2).start();
    wait_keys_in_workers(&nginx, 0, &idp.jwks_url(), "1, kids [rsa-1]", 2);
    let traffic = Traffic::start(nginx.port(), vec![token1()]);
    thread::sleep(Duration::from_millis(200));
    let mark = nginx.log_mark();
    for _ in 0..2 {
        nginx.reload().expect("reload");
        thread::sleep(Duration::from_millis(300));
    }
    // The new workers' fetchers have run several ticks by now.
    thread::sleep(Duration::from_millis(700));
    let sent = traffic.finish("during two reloads");
    assert!(sent > 20, "only {sent} requests during the reloads");
    assert_eq!(
        idp.jwks_count(),
        1,
        "the reload made the fetcher fetch again: {:?}",
        idp.hits(JWKS_PATH)
    );
    nginx.assert_no_log(mark, "auth_jwt: fetch of");
    nginx.assert_no_log(mark, "no usable keys");
    nginx.finish();
}

#[test]
fn reload_with_another_key_uri_takes_effect() {
    let idp = Idp::start();
    let idp2 = Idp::start();
    idp2.set_keys(&[keys().rsa_other.jwk()]);
    // One bundle trusting both IdPs.
    let bundle = format!("{}{}", idp.ca_pem(), idp2.ca_pem());
    let template = |source: &str| {
        conf(&idp, source, "", "").replace(
            &idp.ca_file().display().to_string(),
            "{{prefix}}/bundle.pem",
        )
    };
    let mut nginx = Nginx::http(&template(&key_uri(&idp, "refresh=10m")))
        .file("bundle.pem", &bundle)
        .start();
    wait_accepted(&nginx, &token1(), KEYS_WAIT);
    nginx
        .reload_with(&template(&key_uri(&idp2, "refresh=10m")))
        .expect("reload");
    wait_accepted(&nginx, &token2(), KEYS_WAIT);
    nginx
        .check_rejected("/", "api", &token1(), "invalid", "no key matches kid")
        .unwrap();
    assert_eq!(idp2.jwks_count(), 1);
    assert_eq!(idp.jwks_count(), 1, "the old URI is not fetched any more");
    nginx.finish();
}
