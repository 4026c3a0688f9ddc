//! A Prometheus server (Debian's `prometheus` package) on a loopback port, for the metrics tests.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::Request;
use super::nginx::Nginx;
use super::poll_until;
use super::prefix::free_port;

/// A tool from Debian's `prometheus` package; fails the test when it is not installed.
pub(crate) fn prometheus_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found in PATH or /usr/bin: install the Debian package `prometheus` \
                 (apt-get install -y prometheus; scripts/test installs it)"
            )
        })
}

/// A Prometheus server on a loopback port, scraping one target every second; killed on drop.
pub(crate) struct Prometheus {
    pub(crate) child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
}

pub(crate) const JOB: &str = "nginx_auth_jwt";

impl Prometheus {
    /// Starts Prometheus and waits (bounded) until it is ready.
    pub(crate) fn start(target: u16) -> Self {
        let bin = prometheus_tool("prometheus");
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "ngx-auth-jwt-prometheus.{}.{port}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("data")).expect("prometheus dir");
            fs::write(
                dir.join("prometheus.yml"),
                format!(
                    "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: {JOB}\n    metrics_path: /metrics\n    \
                     static_configs:\n      - targets: [\"127.0.0.1:{target}\"]\n"
                ),
            )
            .expect("prometheus.yml");
            let log = fs::File::create(dir.join("prometheus.log")).expect("prometheus.log");
            let child = Command::new(&bin)
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
            let mut prom = Self {
                child: Some(child),
                port,
                dir,
            };
            match prom.wait_ready(Duration::from_secs(15)) {
                Ok(()) => return prom,
                Err(e) => last = e,
            }
        }
        panic!("Prometheus did not start: {last}");
    }

    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            let ready = Request::new(self.port, "GET", "/-/ready").try_send();
            if ready.is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after {timeout:?}:\n{}", self.log()));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET <path>` of the HTTP API; its `data` member.
    pub(crate) fn api(&self, path: &str) -> Result<Value, String> {
        let resp = Request::new(self.port, "GET", path).try_send()?;
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("{path}: {e}: {}", resp.summary()))?;
        if resp.status != 200 || v["status"] != "success" {
            return Err(format!("{path}: {}", resp.summary()));
        }
        Ok(v["data"].clone())
    }

    /// An instant query (the expression is a plain metric name): series labels → value.
    pub(crate) fn query(&self, metric: &str) -> Result<BTreeMap<String, f64>, String> {
        let data = self.api(&format!("/api/v1/query?query={metric}"))?;
        let mut out = BTreeMap::new();
        for r in data["result"].as_array().ok_or("no result array")? {
            let m = &r["metric"];
            if m["job"] != JOB {
                continue;
            }
            let labels: Vec<String> = m
                .as_object()
                .ok_or("metric is not an object")?
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "__name__" | "job" | "instance"))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad value in {r}"))?;
            out.insert(labels.join(","), value);
        }
        Ok(out)
    }

    /// Polls until `metric` has exactly `want`; the last answer in the error.
    pub(crate) fn wait_for(&self, metric: &str, want: &BTreeMap<String, f64>) {
        let mut last = Err(String::from("not asked"));
        let found = poll_until(Duration::from_secs(10), || {
            last = self.query(metric);
            (last.as_ref() == Ok(want)).then_some(())
        });
        assert!(
            found.is_some(),
            "Prometheus has {metric} = {last:?}, want {want:?}\n--- prometheus.log ---\n{}",
            self.log()
        );
    }

    /// SIGTERM, and a clean exit within a bound.
    pub(crate) fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        Nginx::signal(child.id(), "TERM");
        let stopped = poll_until(Duration::from_secs(10), || child.try_wait().ok().flatten());
        let Some(status) = stopped else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Prometheus did not stop within 10s:\n{}", self.log());
        };
        assert!(
            status.success(),
            "Prometheus exited with {status}:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("kept Prometheus directory: {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
