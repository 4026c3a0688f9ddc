//! A real `redis-server` on a loopback port of its own, without persistence, and
//! `redis-cli` to drive it: for the revocation (and any other Redis-backed) tests. Plain, or
//! TLS only (a certificate from the test CA) with an ACL user in place of the default one.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::certs::{make_ca, make_leaf};

/// How a server is reached: TLS (its CA's PEM), an ACL user and password.
#[derive(Default, Clone)]
pub struct Secure {
    pub tls: bool,
    pub user: Option<(String, String)>,
}

/// A `redis-server` on a loopback port of its own, without persistence.
pub struct Redis {
    child: Child,
    pub port: u16,
    /// Its configuration file, certificates and key.
    dir: PathBuf,
    secure: Secure,
    /// The CA that signed the server's certificate, as PEM (TLS only).
    pub ca_pem: Option<String>,
}

/// Starts `redis-server` on `port` with a configuration file in `dir`.
fn spawn(dir: &Path, secure: &Secure, port: u16) -> Child {
    let mut conf = String::from("bind 127.0.0.1\nsave \"\"\nappendonly no\n");
    if secure.tls {
        let d = dir.display();
        conf.push_str(&format!(
            "port 0\ntls-port {}\ntls-cert-file {d}/cert.pem\ntls-key-file {d}/key.pem\n\
             tls-ca-cert-file {d}/ca.pem\ntls-auth-clients no\n",
            port
        ));
    } else {
        conf.push_str(&format!("port {}\n", port));
    }
    if let Some((user, password)) = &secure.user {
        conf.push_str(&format!(
            "user default off\nuser {user} on >{password} ~* &* +@all\n"
        ));
    }
    let path = dir.join("redis.conf");
    std::fs::write(&path, conf).expect("redis.conf");
    Command::new("redis-server")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server")
}

fn installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        eprintln!("skipped: redis-server is not installed");
    }
    found
}

impl Redis {
    pub fn start() -> Option<Redis> {
        Redis::start_with(Secure::default())
    }

    /// A server that speaks TLS only and/or knows only the given ACL user.
    pub fn start_with(secure: Secure) -> Option<Redis> {
        if !installed() {
            return None;
        }
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "auth-jwt-redis-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let ca_pem = secure.tls.then(|| {
            let (ca, ca_key) = make_ca("auth_jwt test Redis CA");
            let (leaf, key) = make_leaf(&ca, &ca_key);
            let pem = |b: Vec<u8>| String::from_utf8(b).expect("pem");
            std::fs::write(dir.join("cert.pem"), leaf.to_pem().expect("pem")).expect("cert");
            std::fs::write(
                dir.join("key.pem"),
                key.private_key_to_pem_pkcs8().expect("pem"),
            )
            .expect("key");
            let ca_pem = pem(ca.to_pem().expect("pem"));
            std::fs::write(dir.join("ca.pem"), &ca_pem).expect("ca");
            ca_pem
        });
        // Redis cannot bind port 0: take a free one, and try again if another test took it.
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let mut redis = Redis {
                child: spawn(&dir, &secure, port),
                port,
                dir: dir.clone(),
                secure: secure.clone(),
                ca_pem: ca_pem.clone(),
            };
            if redis.ready() {
                return Some(redis);
            }
            let _ = redis.child.kill();
            let _ = redis.child.wait();
        }
        panic!("redis-server did not start");
    }

    /// Waits (at most 2 s) for the server to answer; false when it exited or never did.
    fn ready(&mut self) -> bool {
        for _ in 0..100 {
            if self.cli(&["PING"]).trim() == "PONG" {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills the server (no persistence: its stream is gone) and starts an empty one on the
    /// same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(&self.dir, &self.secure, self.port);
        assert!(
            self.ready(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_command().args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `redis-cli` connected to this server (TLS, user and password as it needs).
    pub fn cli_command(&self) -> Command {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.secure.tls {
            cmd.arg("--tls")
                .arg("--cacert")
                .arg(self.dir.join("ca.pem"));
        }
        if let Some((user, password)) = &self.secure.user {
            cmd.args(["--user", user, "--pass", password, "--no-auth-warning"]);
        }
        cmd
    }

    pub fn xadd(&self, fields: &[&str]) {
        let mut args = vec!["XADD", "auth_jwt:revocations", "*"];
        args.extend_from_slice(fields);
        self.cli(&args);
    }

    /// `XADD ... jti <prefix>-<n> exp <exp>` for n in 0..count, through one `redis-cli`.
    pub fn xadd_jtis(&self, prefix: &str, count: usize, exp: i64) {
        use std::io::Write as _;
        let mut script = String::new();
        for n in 0..count {
            script.push_str(&format!(
                "XADD auth_jwt:revocations * jti {prefix}-{n} exp {exp}\n"
            ));
        }
        let mut cli = self
            .cli_command()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-cli");
        cli.stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write");
        assert!(cli.wait().expect("redis-cli").success());
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
