//! A real `redis-server` on a loopback port of its own, without persistence, and
//! `redis-cli` to drive it: for the revocation (and any other Redis-backed) tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` on a loopback port of its own, without persistence.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: redis-server is not installed");
            return None;
        }
        // Redis cannot bind port 0: take a free one, and try again if another test took it.
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut redis = Redis { child, port };
            for _ in 0..100 {
                if redis.cli(&["PING"]).trim() == "PONG" {
                    return Some(redis);
                }
                if redis.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = redis.child.kill();
        }
        panic!("redis-server did not start");
    }

    /// Kills the server (no persistence: its stream is gone) and starts an empty one on the
    /// same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        for _ in 0..100 {
            if self.cli(&["PING"]).trim() == "PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn xadd(&self, fields: &[&str]) {
        let mut args = vec!["XADD", "auth_jwt:revocations", "*"];
        args.extend_from_slice(fields);
        self.cli(&args);
    }

    /// `cmdstat_<name>` calls from `INFO commandstats`.
    pub fn calls(&self, name: &str) -> u64 {
        let info = self.cli(&["INFO", "commandstats"]);
        let line = info
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")));
        line.and_then(|l| l.split("calls=").nth(1))
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
