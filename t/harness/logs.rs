//! Error-log reading for tests: marks, waiting for a line, patterns, and the final scan.

use std::thread;
use std::time::{Duration, Instant};

use super::nginx::Nginx;
pub use super::text::matches;

/// How long to wait for an expected log line.
const LOG_WAIT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);

impl Nginx {
    /// Error-log lines containing `text` no longer fail the final log scan.
    pub fn allow_log(&mut self, text: &str) {
        self.spec.allowed.push(text.to_owned());
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
