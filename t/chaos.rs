//! Tests for auth_jwt: chaos under load (reloads, a failing IdP, killed workers, kid floods).
//!
//! Each test runs paced wrk traffic (keepalive connections, a Lua script that counts
//! statuses) against NGINX on loopback while something breaks, asserts what the module
//! promises, and prints its figures to stderr (uncaptured, so `scripts/test` shows them):
//! `chaos: <test>: requests ...`. The tests take turns (one lock), and the load is paced
//! (one request per connection per millisecond at most) so that the rest of the suite,
//! running beside them, keeps its timing.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use crate::harness::idp::{Fault, Idp};
use crate::harness::poll_until;
use crate::harness::{b64, keys, now, Jwt, Nginx};

/// `@HTTP@`: module directives for `http { }`; `@AUTH@`: those of `location /`.
const CONF: &str = r#"
    @HTTP@
    # The echo upstream runs in this same NGINX: a worker killed while it serves the upstream
    # side of a request resets that connection. Listed twice, the request is retried on a new
    # connection (proxy_next_upstream error) instead of answering 502; the module's own
    # answers (401, 500, 503) are never retried.
    upstream echo {
        server 127.0.0.1:{{upstream_port}} max_fails=0;
        server 127.0.0.1:{{upstream_port}} max_fails=0;
    }
    server {
        listen 127.0.0.1:{{port}} reuseport;
        location / {
            @AUTH@
            proxy_pass http://echo;
        }
    }
"#;

/// The wrk script: paced requests with bearer tokens from a file, statuses counted per
/// thread and summed in `done` into one `STATUS` line.
const WRK_LUA: &str = r#"
local tokens, n, pace = {}, 0, 1
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    pace = tonumber(args[1])
    for line in io.lines(args[2]) do
        n = n + 1
        tokens[n] = line
    end
    i = math.random(n)
    s2xx, s401, s5xx, other = 0, 0, 0, 0
end

function request()
    i = i % n + 1
    return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end

function delay()
    return pace
end

function response(status, headers, body)
    if status >= 200 and status < 300 then
        s2xx = s2xx + 1
    elseif status == 401 then
        s401 = s401 + 1
    elseif status >= 500 then
        s5xx = s5xx + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local t = { s2xx = 0, s401 = 0, s5xx = 0, other = 0 }
    for _, thread in ipairs(threads) do
        for k in pairs(t) do
            t[k] = t[k] + thread:get(k)
        end
    end
    io.write(string.format(
        "STATUS requests=%d 2xx=%d 401=%d 5xx=%d other=%d connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, t.s2xx, t.s401, t.s5xx, t.other, summary.errors.connect,
        summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"#;

/// Connections per wrk run, and the pause (ms) each makes between its requests.
const CONNECTIONS: u32 = 8;
const PACE_MS: u32 = 1;
/// How long keys may take to arrive from the mock IdP.
const KEYS_WAIT: Duration = Duration::from_secs(8);

/// One chaos test at a time: each measures, and each loads the machine.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prints a figure line where `cargo test` does not capture it.
fn figure(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "chaos: {line}");
}

fn conf(http: &str, auth: &str) -> String {
    CONF.replace("@HTTP@", http).replace("@AUTH@", auth)
}

/// The module's directives for a key URI on `idp`, in `http` and `location`.
fn remote(idp: &Idp, params: &str) -> String {
    conf(
        &format!(
            "auth_jwt_zone 1m;\n    auth_jwt_trusted_certificate {};",
            idp.ca_file().display()
        ),
        &format!(
            "auth_jwt \"api\";\n            auth_jwt_key_uri {} {params};",
            idp.jwks_url()
        ),
    )
}

/// Waits until every worker answers `token` from the upstream (each request may reach any
/// worker: a run of successes in a row stands for all of them).
fn wait_accepted(nginx: &Nginx, token: &str) {
    let mut streak = 0;
    poll_until(KEYS_WAIT, || {
        let ok = nginx.get("/").bearer(token).send().is_from_upstream();
        streak = if ok { streak + 1 } else { 0 };
        (streak >= 20).then_some(())
    })
    .unwrap_or_else(|| panic!("keys never arrived:\n{}", nginx.error_log()));
}

/// What one wrk run counted.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    ok: u64,
    unauthorized: u64,
    server_errors: u64,
    other: u64,
    connect: u64,
    read: u64,
    write: u64,
    timeout: u64,
}

impl Counts {
    fn parse(out: &str) -> Option<Self> {
        let line = out.lines().find(|l| l.starts_with("STATUS "))?;
        let get = |name: &str| -> Option<u64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
                .parse()
                .ok()
        };
        Some(Self {
            requests: get("requests")?,
            ok: get("2xx")?,
            unauthorized: get("401")?,
            server_errors: get("5xx")?,
            other: get("other")?,
            connect: get("connect")?,
            read: get("read")?,
            write: get("write")?,
            timeout: get("timeout")?,
        })
    }

    /// Requests answered with anything but 2xx.
    fn non_2xx(&self) -> u64 {
        self.unauthorized + self.server_errors + self.other
    }

    /// Socket-level failures seen by the client.
    fn socket_errors(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }

    fn summary(&self) -> String {
        format!(
            "{} requests, {} 2xx, {} 401, {} 5xx, {} other; socket errors: {} connect, {} read, {} write, {} timeout",
            self.requests,
            self.ok,
            self.unauthorized,
            self.server_errors,
            self.other,
            self.connect,
            self.read,
            self.write,
            self.timeout
        )
    }
}

/// A wrk process sending paced traffic until stopped.
struct Wrk {
    child: Child,
    out: PathBuf,
}

impl Wrk {
    /// Starts wrk against `127.0.0.1:<port>/` with `tokens` (cycled), for at most 60 s.
    fn start(dir: &Path, port: u16, name: &str, tokens: &[String], pace_ms: u32) -> Self {
        let script = dir.join("chaos.lua");
        fs::write(&script, WRK_LUA).expect("write wrk script");
        let token_file = dir.join(format!("{name}.tokens"));
        fs::write(&token_file, tokens.join("\n") + "\n").expect("write tokens");
        let out = dir.join(format!("{name}.wrk"));
        let child = Command::new("wrk")
            .args(["-t", "2", "-c", &CONNECTIONS.to_string(), "-d", "60s"])
            .args(["--timeout", "5s", "-s"])
            .arg(&script)
            .arg(format!("http://127.0.0.1:{port}/"))
            .arg("--")
            .arg(pace_ms.to_string())
            .arg(&token_file)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("wrk output"))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run wrk ({e}): install it (apt-get install wrk; scripts/test does)")
            });
        Self { child, out }
    }

    /// Stops wrk (SIGINT: it prints its summary) and returns what it counted.
    fn stop(mut self) -> Counts {
        Nginx::signal(self.child.id(), "INT");
        let status = self.child.wait().expect("wait for wrk");
        let out = fs::read_to_string(&self.out).unwrap_or_default();
        Counts::parse(&out).unwrap_or_else(|| panic!("wrk ({status}) printed no counts:\n{out}"))
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident set size of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// 20 reloads of the module during steady traffic answer every request 2xx; plain NGINX
/// beside it, with the same configuration less auth_jwt, takes the same reloads under the
/// same traffic, and the module adds no client-side failures to what plain NGINX shows
/// (a keepalive connection that an old worker closes just as the client reuses it).
#[test]
fn twenty_reloads_under_traffic_fail_no_request() {
    let _turn = turn();
    const RELOADS: usize = 20;
    let idp = Idp::start();
    let mut module = Nginx::http(&remote(&idp, "refresh=10m")).workers(2).start();
    let mut plain = Nginx::http(&conf("", ""))
        .workers(2)
        .without_module()
        .start();
    let token = Jwt::new("RS256").exp_in(3600).encode();
    wait_accepted(&module, &token);
    let fetches = idp.jwks_count();

    let started = Instant::now();
    let wrk_module = Wrk::start(
        module.prefix(),
        module.port(),
        "module",
        std::slice::from_ref(&token),
        PACE_MS,
    );
    let wrk_plain = Wrk::start(
        plain.prefix(),
        plain.port(),
        "plain",
        std::slice::from_ref(&token),
        PACE_MS,
    );
    thread::sleep(Duration::from_millis(300));
    for _ in 0..RELOADS {
        module.reload().expect("reload module");
        plain.reload().expect("reload plain NGINX");
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(300));
    let (m, p) = (wrk_module.stop(), wrk_plain.stop());
    let secs = started.elapsed().as_secs_f64();

    figure(&format!(
        "{RELOADS} reloads in {secs:.1} s: module: {}; plain NGINX: {}",
        m.summary(),
        p.summary()
    ));
    assert!(m.requests > 2000, "too little traffic: {}", m.summary());
    assert_eq!(m.non_2xx(), 0, "module answered non-2xx: {}", m.summary());
    assert_eq!(
        p.non_2xx(),
        0,
        "plain NGINX answered non-2xx: {}",
        p.summary()
    );
    // Socket errors come from NGINX's keepalive handling, module or not: the module may not
    // add any beyond chance. Both see the same reloads; allow the noise of small counts.
    let rate = |c: &Counts| c.socket_errors() as f64 / c.requests.max(1) as f64;
    assert!(
        m.socket_errors() <= 3 || rate(&m) <= 3.0 * rate(&p),
        "the module adds client failures: module {}; plain {}",
        m.summary(),
        p.summary()
    );
    assert_eq!(m.timeout + m.connect, 0, "{}", m.summary());
    // Keys survived every reload in the shared zone: nothing was fetched again.
    assert_eq!(idp.jwks_count(), fetches, "reloads made the fetcher fetch");
    module.finish();
    plain.finish();
}

/// The IdP goes down, slow, 500, garbage, and rotates its keys (keeping the old one), twice
/// over, while clients send valid tokens: stale keys keep every answer a 2xx, and the
/// rotated keys arrive.
#[test]
fn a_failing_idp_fails_no_valid_token() {
    let _turn = turn();
    let k = keys();
    let idp = Idp::start();
    let nginx = Nginx::http(&remote(&idp, "refresh=1s timeout=1s max_stale=1h"))
        .workers(2)
        .start();
    let token = Jwt::new("RS256").exp_in(3600).encode();
    wait_accepted(&nginx, &token);

    let phases: [(&str, Fault, Option<Vec<serde_json::Value>>); 10] = [
        ("down (connection reset)", Fault::Reset, None),
        (
            "slow (3 s, over the 1 s timeout)",
            Fault::Slow(Duration::from_secs(3)),
            None,
        ),
        ("500", Fault::Status(500), None),
        ("garbage", Fault::Garbage, None),
        (
            "rotated to rsa-1 + rsa-2",
            Fault::Ok,
            Some(vec![k.rsa.jwk(), k.rsa_other.jwk()]),
        ),
        ("down (no answer)", Fault::Hang, None),
        (
            "slow (300 ms, within the timeout)",
            Fault::Slow(Duration::from_millis(300)),
            None,
        ),
        ("503", Fault::Status(503), None),
        ("garbage", Fault::Garbage, None),
        (
            "rotated to rsa-1 + ec256-1",
            Fault::Ok,
            Some(vec![k.rsa.jwk(), k.p256.jwk()]),
        ),
    ];
    let started = Instant::now();
    let wrk = Wrk::start(
        nginx.prefix(),
        nginx.port(),
        "idp",
        std::slice::from_ref(&token),
        PACE_MS,
    );
    let mut seen = Vec::new();
    for (name, fault, jwks) in phases {
        if let Some(jwks) = jwks {
            idp.set_keys(&jwks);
        }
        idp.set_fault(fault);
        let before = idp.jwks_count();
        // Each phase lasts until the fetcher has met it (refresh and backoff are 1 s).
        let met = poll_until(Duration::from_secs(5), || {
            (idp.jwks_count() > before).then_some(())
        });
        seen.push(format!(
            "{name}{}",
            if met.is_some() { "" } else { " (not fetched)" }
        ));
        thread::sleep(Duration::from_millis(300));
    }
    let counts = wrk.stop();
    let secs = started.elapsed().as_secs_f64();
    idp.set_fault(Fault::Ok);
    figure(&format!(
        "IdP chaos in {secs:.1} s ({} JWKS requests; phases: {}): {}",
        idp.jwks_count(),
        seen.join(", "),
        counts.summary()
    ));
    assert!(
        counts.requests > 2000,
        "too little traffic: {}",
        counts.summary()
    );
    assert_eq!(
        counts.server_errors,
        0,
        "5xx for valid tokens: {}",
        counts.summary()
    );
    assert_eq!(
        counts.non_2xx(),
        0,
        "valid tokens refused: {}",
        counts.summary()
    );
    assert_eq!(counts.socket_errors(), 0, "{}", counts.summary());
    // The last rotation was taken up: a token of its new key verifies.
    wait_accepted(&nginx, &Jwt::new("ES256").exp_in(3600).encode());
    nginx.finish();
}

/// kill -9 of workers during traffic: the master starts new ones, they take the keys from
/// the shared zone without fetching, and service goes on. Requests in flight on a killed
/// worker's connections are lost with it (client socket errors); no request gets an error
/// status.
#[test]
fn killed_workers_are_replaced_and_service_continues() {
    let _turn = turn();
    const KILLS: usize = 4;
    let idp = Idp::start();
    let nginx = Nginx::http(&remote(&idp, "refresh=10m"))
        .workers(2)
        .allow_log("exited on signal 9")
        .start();
    let token = Jwt::new("RS256").exp_in(3600).encode();
    wait_accepted(&nginx, &token);
    let master = nginx.master_pid();

    let started = Instant::now();
    let wrk = Wrk::start(
        nginx.prefix(),
        nginx.port(),
        "kill",
        std::slice::from_ref(&token),
        PACE_MS,
    );
    let mut killed = Vec::new();
    for i in 0..KILLS {
        thread::sleep(Duration::from_millis(500));
        let workers = nginx.worker_pids();
        let victim = workers[i % workers.len()];
        Nginx::signal(victim, "KILL");
        killed.push(victim);
        poll_until(Duration::from_secs(5), || {
            let now = nginx.worker_pids();
            (now.len() == 2 && now.iter().all(|p| !killed.contains(p))).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "no new worker after killing {victim}: {:?}",
                nginx.worker_pids()
            )
        });
    }
    thread::sleep(Duration::from_millis(500));
    let counts = wrk.stop();
    let secs = started.elapsed().as_secs_f64();
    figure(&format!(
        "{KILLS} workers killed (-9) in {secs:.1} s, {} JWKS fetches: {}",
        idp.jwks_count(),
        counts.summary()
    ));
    assert_eq!(nginx.master_pid(), master);
    assert!(
        counts.requests > 1000,
        "too little traffic: {}",
        counts.summary()
    );
    assert_eq!(counts.non_2xx(), 0, "error statuses: {}", counts.summary());
    // Service continues on the new workers.
    for _ in 0..50 {
        let resp = nginx.get("/").bearer(&token).send();
        assert!(resp.is_from_upstream(), "{}", resp.summary());
    }
    let new: HashSet<u32> = nginx.worker_pids().into_iter().collect();
    assert!(killed.iter().all(|p| !new.contains(p)));
    // New workers found the keys in the shared zone: no fetch for them.
    assert_eq!(idp.jwks_count(), 1, "respawned workers fetched again");
    nginx.finish();
}

/// A flood of tokens whose kids nobody published: every one gets 401, the fetcher is woken
/// at most once per 30 s (once here), valid tokens still pass, and worker memory stays flat
/// (unknown kids are negatively cached in a bounded set).
#[test]
fn a_flood_of_unknown_kids_fetches_at_most_once() {
    let _turn = turn();
    let idp = Idp::start();
    let nginx = Nginx::http(&remote(&idp, "refresh=10m")).workers(2).start();
    let valid = Jwt::new("RS256").exp_in(3600).encode();
    wait_accepted(&nginx, &valid);
    let fetches = idp.jwks_count();
    let workers = nginx.worker_pids();
    let rss = || -> u64 { workers.iter().map(|&p| rss_kib(p)).sum() };
    let rss_start = rss();

    let mut rng = rand::thread_rng();
    let payload = b64(json!({"sub": "mallory", "exp": now() + 3600}).to_string());
    let tokens: Vec<String> = (0..20_000)
        .map(|_| {
            let kid: String = (0..24)
                .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]))
                .collect();
            let header = b64(json!({"alg": "RS256", "kid": kid}).to_string());
            format!("{header}.{payload}.{}", b64([7u8; 256]))
        })
        .collect();
    let started = Instant::now();
    let wrk = Wrk::start(nginx.prefix(), nginx.port(), "kids", &tokens, PACE_MS);
    // Warm-up: buffers and allocator arenas grow to their working size.
    thread::sleep(Duration::from_millis(1500));
    let rss_before = rss();
    thread::sleep(Duration::from_millis(2500));
    // A valid token passes in the middle of the flood.
    let during = nginx.get("/").bearer(&valid).send();
    thread::sleep(Duration::from_secs(1));
    let rss_after = rss();
    let counts = wrk.stop();
    let secs = started.elapsed().as_secs_f64();
    let woken = idp.jwks_count() - fetches;
    figure(&format!(
        "random-kid flood in {secs:.1} s: {}; JWKS fetches caused: {woken}; RSS of the 2 workers: {rss_start} KiB idle, {rss_before} KiB after 1.5 s, {rss_after} KiB at the end",
        counts.summary(),
    ));
    assert!(during.is_from_upstream(), "{}", during.summary());
    assert!(
        counts.requests > 2000,
        "too little traffic: {}",
        counts.summary()
    );
    assert_eq!(counts.unauthorized, counts.requests, "{}", counts.summary());
    assert!(woken <= 1, "{woken} fetches within {secs:.1} s");
    // Past warm-up, tens of thousands of new kids add nothing that lasts.
    assert!(
        rss_after < rss_before + 2 * 1024,
        "worker RSS grew from {rss_before} to {rss_after} KiB during the flood"
    );
    nginx.finish();
}
