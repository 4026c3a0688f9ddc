//! Error-log reading for tests: marks, waiting for a line, patterns, and the final scan.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use super::nginx::Nginx;

/// Log markers that fail a test unless allowed.
pub const BAD_LOG: &[&str] = &["[alert]", "[crit]", "[emerg]", "panicked"];

/// How long to wait for an expected log line.
const LOG_WAIT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);

impl Nginx {
    /// Error-log lines containing `text` no longer fail the final log scan.
    pub fn allow_log(&mut self, text: &str) {
        self.spec.allowed.push(text.to_owned());
    }

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

    /// Waits (bounded) for an error-log line after `mark` matching `pattern` (see `matches`).
    pub fn wait_log(&self, mark: usize, pattern: &str) -> Result<String, String> {
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            let since = self.log_since(mark);
            if let Some(line) = since.lines().find(|l| matches(l, pattern)) {
                return Ok(line.to_owned());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no error.log line matching {pattern:?}; log since mark:\n{since}"
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// Like `wait_log`, panicking when the line does not come.
    pub fn assert_log(&self, mark: usize, pattern: &str) -> String {
        self.wait_log(mark, pattern)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Asserts no error-log line after `mark` matches `pattern`.
    pub fn assert_no_log(&self, mark: usize, pattern: &str) {
        let since = self.log_since(mark);
        if let Some(line) = since.lines().find(|l| matches(l, pattern)) {
            panic!("unexpected error.log line matching {pattern:?}: {line}");
        }
    }

    /// Error-log lines after `mark` matching `pattern`.
    pub fn log_lines(&self, mark: usize, pattern: &str) -> Vec<String> {
        self.log_since(mark)
            .lines()
            .filter(|l| matches(l, pattern))
            .map(str::to_owned)
            .collect()
    }
}

/// Does `line` match `pattern`? `*` in a pattern matches any run of characters; without `*`
/// it is a plain substring test. The pattern may match anywhere in the line.
pub fn matches(line: &str, pattern: &str) -> bool {
    let mut rest = line;
    for piece in pattern.split('*') {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}
