//! NGINX under test: config templates, the echo upstream, start/stop/reload, `nginx -t`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::config::{Mode, NginxBuilder, Ports};
use super::http::Request;
use super::keys::keys;
use super::prefix::{installed_modules, module_path, nginx_bin, Prefix};
use super::text::{numbered, BAD_LOG};

const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 5;
const POLL: Duration = Duration::from_millis(20);

impl NginxBuilder {
    /// Starts NGINX; panics with its stderr and error log when it does not come up.
    pub fn start(self) -> Nginx {
        match self.try_start() {
            Ok(nginx) => nginx,
            Err(e) => panic!("NGINX did not start: {e}"),
        }
    }

    /// Starts NGINX, retrying with fresh ports when a port was taken meanwhile.
    pub fn try_start(self) -> Result<Nginx, String> {
        let prefix = Prefix::new();
        let mut nginx = Nginx {
            prefix,
            ports: Ports::default(),
            spec: self,
            config: String::new(),
            child: None,
            finished: false,
        };
        nginx.write_static_files();
        let mut last_error = String::new();
        for attempt in 1..=START_ATTEMPTS {
            nginx.ports = Ports::allocate(&nginx.spec.template);
            nginx.config = nginx.render(&nginx.spec.template.clone());
            nginx.write_config();
            match nginx.spawn_and_wait() {
                Ok(()) => return Ok(nginx),
                Err(StartFailure::PortTaken(e)) => {
                    last_error = e;
                    let old = nginx.prefix.path.join("logs/error.log");
                    let _ = fs::rename(&old, old.with_extension(format!("log.attempt{attempt}")));
                }
                Err(StartFailure::Other(e)) => {
                    // Nothing to scan: the failure is the result. Keep the prefix to look at.
                    nginx.finished = true;
                    nginx.prefix.keep = true;
                    return Err(format!("{e}\nprefix kept: {}", nginx.prefix.path.display()));
                }
            }
        }
        nginx.finished = true;
        nginx.prefix.keep = true;
        Err(format!(
            "ports kept being taken, {START_ATTEMPTS} attempts: {last_error}"
        ))
    }
}

enum StartFailure {
    PortTaken(String),
    Other(String),
}

/// A running NGINX (master + workers, `daemon off`), stopped and checked on drop.
pub struct Nginx {
    pub(super) prefix: Prefix,
    pub(super) ports: Ports,
    pub(super) spec: NginxBuilder,
    pub(super) config: String,
    pub(super) child: Option<Child>,
    pub(super) finished: bool,
}

impl Nginx {
    /// An NGINX whose `http { }` holds `body` plus the echo upstream server.
    ///
    /// Placeholders: `{{port}}`, `{{port2}}`, `{{port3}}`, `{{upstream_port}}`, `{{upstream}}`
    /// (= `http://127.0.0.1:<upstream_port>`), `{{prefix}}`, `{{keys}}` (directory of the
    /// standard key files, see `Keys::write_to`).
    pub fn http(body: &str) -> NginxBuilder {
        NginxBuilder::new(body, Mode::Http)
    }

    /// An NGINX whose configuration after the harness's main-context lines (`daemon`, `pid`,
    /// `error_log`, `worker_processes`, `load_module`) is `template`, which must have `events`
    /// and `http`; `{{echo_server}}` expands to the echo upstream server block.
    pub fn main(template: &str) -> NginxBuilder {
        NginxBuilder::new(template, Mode::Main)
    }

    /// The main port (`{{port}}`).
    pub fn port(&self) -> u16 {
        self.ports.port
    }

    /// The echo upstream's port (`{{upstream_port}}`).
    pub fn upstream_port(&self) -> u16 {
        self.ports.upstream
    }

    /// `{{port2}}` (n = 2) or `{{port3}}` (n = 3).
    pub fn extra_port(&self, n: usize) -> u16 {
        *self
            .ports
            .extra
            .get(n - 2)
            .expect("template does not use that port")
    }

    /// The prefix directory.
    pub fn prefix(&self) -> &Path {
        &self.prefix.path
    }

    /// The rendered `conf/nginx.conf`.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// `GET <target>` to the main port.
    pub fn get(&self, target: &str) -> Request {
        Request::new(self.port(), "GET", target)
    }

    /// `<method> <target>` to the main port.
    pub fn request(&self, method: &str, target: &str) -> Request {
        Request::new(self.port(), method, target)
    }

    pub(super) fn write_static_files(&self) {
        let dir = &self.prefix.path;
        fs::write(dir.join("html/index.html"), "index\n").expect("write index.html");
        if self.spec.module && installed_modules().is_none() {
            let module = module_path();
            let link = dir.join("modules/ngx_http_auth_jwt_module.so");
            if std::os::unix::fs::symlink(module, &link).is_err() {
                fs::copy(module, &link).expect("copy module");
            }
        }
        if self.spec.template.contains("{{keys}}") {
            keys().write_to(&dir.join("keys"));
        }
        for (rel, content) in &self.spec.files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).expect("create file dir");
            }
            fs::write(&path, content).expect("write test file");
        }
    }

    pub(super) fn write_config(&self) {
        fs::write(self.prefix.path.join("conf/nginx.conf"), &self.config)
            .expect("write nginx.conf");
    }

    /// Renders a template (of this NGINX's mode) with this NGINX's ports and paths.
    pub(super) fn render(&self, template: &str) -> String {
        self.spec.render(template, &self.ports, &self.prefix.path)
    }

    fn nginx_args(&self) -> Vec<String> {
        vec![
            "-p".into(),
            format!("{}/", self.prefix.path.display()),
            "-c".into(),
            "conf/nginx.conf".into(),
            "-e".into(),
            "logs/error.log".into(),
        ]
    }

    /// Runs the NGINX binary with extra arguments to completion (bounded); returns (exit code, stderr).
    pub(super) fn run_nginx(&self, extra: &[&str], timeout: Duration) -> (Option<i32>, String) {
        let out_path = self.prefix.path.join("logs/cmd.stderr");
        let err = File::create(&out_path).expect("create cmd.stderr");
        let mut child = Command::new(nginx_bin())
            .args(extra)
            .args(self.nginx_args())
            .envs(self.spec.env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null())
            .stdout(err.try_clone().expect("dup"))
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", nginx_bin()));
        let status = wait_child(&mut child, timeout);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let stderr = fs::read_to_string(&out_path).unwrap_or_default();
        (status.and_then(|s| s.code()), stderr)
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        let logs = self.prefix.path.join("logs");
        let _ = fs::remove_file(logs.join("nginx.pid"));
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(logs.join("stderr"))
            .expect("stderr file");
        let child = Command::new(nginx_bin())
            .args(self.nginx_args())
            .envs(self.spec.env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("dup"))
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", nginx_bin()));
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                let why = format!(
                    "nginx exited with {status} at start-up\n--- stderr ---\n{}\n--- error.log ---\n{}\n--- nginx.conf ---\n{}",
                    fs::read_to_string(logs.join("stderr")).unwrap_or_default(),
                    self.error_log(),
                    numbered(&self.config)
                );
                return Err(if why.contains("Address already in use") {
                    StartFailure::PortTaken(why)
                } else {
                    StartFailure::Other(why)
                });
            }
            let pid_ok = fs::read_to_string(logs.join("nginx.pid"))
                .is_ok_and(|s| s.trim() == pid.to_string());
            if pid_ok
                && self.worker_pids().len() >= self.spec.workers as usize
                && self
                    .ports
                    .all()
                    .iter()
                    .all(|&p| !self.config.contains(&p.to_string()) || accepts(p))
            {
                return Ok(());
            }
            thread::sleep(POLL);
        }
        self.kill_all();
        Err(StartFailure::Other(format!(
            "nginx not ready after {START_TIMEOUT:?}\n--- error.log ---\n{}",
            self.error_log()
        )))
    }

    /// The master's pid.
    pub fn master_pid(&self) -> u32 {
        self.child.as_ref().expect("nginx is running").id()
    }

    /// Pids of the current (not shutting down) worker processes.
    pub fn worker_pids(&self) -> Vec<u32> {
        let Some(child) = &self.child else {
            return Vec::new();
        };
        children_of(child.id())
            .into_iter()
            .filter(|(_, cmd)| {
                cmd.starts_with("nginx: worker process") && !cmd.contains("shutting down")
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    fn all_children(&self) -> Vec<u32> {
        self.child
            .as_ref()
            .map(|c| children_of(c.id()).into_iter().map(|(p, _)| p).collect())
            .unwrap_or_default()
    }

    /// Sends a signal (name as for kill(1): QUIT, HUP, TERM, KILL, USR1...) to a process.
    pub fn signal(pid: u32, sig: &str) {
        let _ = Command::new("kill")
            .args(["-s", sig, &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// Reloads with a new template (same mode, same ports); see `reload`.
    pub fn reload_with(&mut self, template: &str) -> Result<(), String> {
        let keys_dir = self.prefix.path.join("keys");
        if template.contains("{{keys}}") && !keys_dir.is_dir() {
            keys().write_to(&keys_dir);
        }
        self.spec.template = template.to_owned();
        self.config = self.render(template);
        self.write_config();
        self.reload()
    }

    /// SIGHUP, then waits (bounded) until a full set of new workers runs and the old ones are
    /// gone. Err when the master refuses the configuration (its `[emerg]` is returned).
    pub fn reload(&mut self) -> Result<(), String> {
        let old: HashSet<u32> = self.all_children().into_iter().collect();
        let mark = self.log_mark();
        Self::signal(self.master_pid(), "HUP");
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        while Instant::now() < deadline {
            let since = self.log_since(mark);
            if let Some(line) = since.lines().find(|l| l.contains("[emerg]")) {
                return Err(line.to_owned());
            }
            let current = self.worker_pids();
            let fresh = current.iter().all(|p| !old.contains(p))
                && current.len() >= self.spec.workers as usize;
            let old_gone = self.all_children().iter().all(|p| !old.contains(p));
            if fresh && old_gone {
                return Ok(());
            }
            thread::sleep(POLL);
        }
        Err(format!(
            "reload not done after {RELOAD_TIMEOUT:?}\n{}",
            self.log_since(mark)
        ))
    }

    /// Graceful stop: SIGQUIT, then SIGKILL to master and workers after a bound.
    pub fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let pid = child.id();
        let workers = children_of(pid);
        Self::signal(pid, "QUIT");
        if wait_child(child, STOP_TIMEOUT).is_none() {
            eprintln!("nginx {pid} did not quit in {STOP_TIMEOUT:?}: killing it");
            self.kill_all();
        }
        self.child = None;
        for (worker, _) in workers {
            if fs::read_to_string(format!("/proc/{worker}/cmdline"))
                .is_ok_and(|c| c.starts_with("nginx"))
            {
                Self::signal(worker, "KILL");
            }
        }
    }

    fn kill_all(&mut self) {
        if let Some(mut child) = self.child.take() {
            for (pid, _) in children_of(child.id()) {
                Self::signal(pid, "KILL");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops NGINX and fails the test if the error log (or stderr) has `[alert]`, `[crit]`,
    /// `[emerg]` or `panicked` outside the allowed lines. Drop does the same.
    pub fn finish(mut self) {
        self.finish_inner();
    }

    fn finish_inner(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.stop();
        let problems = self.log_problems();
        assert!(
            problems.is_empty(),
            "error.log of {} has problems:\n{}",
            self.prefix.path.display(),
            problems.join("\n")
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if thread::panicking() {
            self.finished = true;
            self.stop();
            eprintln!("--- nginx.conf ---\n{}", numbered(&self.config));
        } else {
            self.finish_inner();
        }
    }
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// (pid, cmdline) of the processes whose parent is `ppid`, from /proc.
fn children_of(ppid: u32) -> Vec<(u32, String)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let after = &stat[stat.rfind(')')? + 1..];
            let parent: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            if parent != ppid {
                return None;
            }
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .trim()
                .to_owned();
            Some((pid, cmd))
        })
        .collect()
}

/// The logs of a running (or finished) NGINX; waiting for lines is `harness::logs`.
impl Nginx {
    /// Lines of error.log and stderr that fail a test.
    pub fn log_problems(&self) -> Vec<String> {
        let stderr = fs::read_to_string(self.prefix.path.join("logs/stderr")).unwrap_or_default();
        let log = self.error_log();
        log.lines()
            .chain(stderr.lines())
            .filter(|l| BAD_LOG.iter().any(|bad| l.contains(bad)))
            .filter(|l| !self.spec.allowed.iter().any(|a| l.contains(a.as_str())))
            .map(str::to_owned)
            .collect()
    }
    /// The whole error log.
    pub fn error_log(&self) -> String {
        let bytes = fs::read(self.prefix.path.join("logs/error.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
    /// A file under logs/ (e.g. an access log), "" when absent.
    pub fn log_file(&self, name: &str) -> String {
        let bytes = fs::read(self.prefix.path.join("logs").join(name)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
    /// Current length of the error log, to read only what comes after.
    pub fn log_mark(&self) -> usize {
        fs::metadata(self.prefix.path.join("logs/error.log"))
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    }
    /// Error log written since `mark`.
    pub fn log_since(&self, mark: usize) -> String {
        let bytes = fs::read(self.prefix.path.join("logs/error.log")).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(mark..).unwrap_or_default()).into_owned()
    }
}
