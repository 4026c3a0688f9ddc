//! `nginx -t` results for configuration tests: did it fail, where, and why.

use std::path::PathBuf;

use super::logs::{matches, BAD_LOG};
use super::nginx::Nginx;

/// Result of `nginx -t`.
pub struct ConfigCheck {
    pub ok: bool,
    pub stderr: String,
    pub config: String,
    pub conf_path: PathBuf,
    /// Never started; holds the prefix for as long as the check lives.
    #[allow(
        dead_code,
        reason = "held for its Drop, which removes or keeps the prefix"
    )]
    pub(super) nginx: Nginx,
}

impl ConfigCheck {
    /// 1-based line of the first configuration line containing `needle`.
    pub fn line_of(&self, needle: &str) -> usize {
        self.config
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle:?} not in the configuration"))
    }

    /// Asserts `nginx -t` passed without `[emerg]`/`[alert]`/`[crit]`.
    pub fn assert_ok(&self) {
        assert!(
            self.ok && !BAD_LOG.iter().any(|b| self.stderr.contains(b)),
            "nginx -t failed:\n{}\n--- nginx.conf ---\n{}",
            self.stderr,
            numbered(&self.config)
        );
    }

    /// Asserts `nginx -t` failed with an `[emerg]` line that names the file and the line of
    /// the directive containing `at`, and contains every part of `message` (each may be a
    /// `matches` pattern). Returns that line.
    pub fn assert_emerg(&self, at: &str, message: &[&str]) -> String {
        self.emerg(at, message).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `assert_emerg` as a `Result`, for table-driven tests.
    pub fn emerg(&self, at: &str, message: &[&str]) -> Result<String, String> {
        let location = format!("in {}:{}", self.conf_path.display(), self.line_of(at));
        let context = || {
            format!(
                "stderr:\n{}--- nginx.conf ---\n{}",
                self.stderr,
                numbered(&self.config)
            )
        };
        if self.ok {
            return Err(format!(
                "nginx -t passed, expected an [emerg] {location}\n{}",
                context()
            ));
        }
        let Some(line) = self.stderr.lines().find(|l| l.contains("[emerg]")) else {
            return Err(format!("no [emerg] line\n{}", context()));
        };
        if !line.ends_with(&location) {
            return Err(format!(
                "[emerg] line does not end with {location:?}: {line}\n{}",
                context()
            ));
        }
        if let Some(part) = message.iter().find(|part| !matches(line, part)) {
            return Err(format!("[emerg] line lacks {part:?}: {line}"));
        }
        Ok(line.to_owned())
    }
}

/// The text with 1-based line numbers, for failure messages.
pub fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("{:4} {l}\n", i + 1))
        .collect()
}
