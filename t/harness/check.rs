//! `nginx -t` results for configuration tests: did it fail, where, and why.

use std::path::PathBuf;

use super::config::{NginxBuilder, Ports};
use super::nginx::{Nginx, CHECK_TIMEOUT};
use super::prefix::Prefix;
use super::text::{matches, numbered, BAD_LOG};

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

impl NginxBuilder {
    /// Runs `nginx -t` on the rendered configuration.
    pub fn check(self) -> ConfigCheck {
        let prefix = Prefix::new();
        let mut nginx = Nginx {
            prefix,
            ports: Ports::allocate(&self.template),
            spec: self,
            config: String::new(),
            child: None,
            finished: true,
        };
        nginx.write_static_files();
        nginx.config = nginx.render(&nginx.spec.template.clone());
        nginx.write_config();
        let (code, stderr) = nginx.run_nginx(&["-t"], CHECK_TIMEOUT);
        let conf_path = nginx.prefix.path.join("conf/nginx.conf");
        let config = nginx.config.clone();
        let check = ConfigCheck {
            ok: code == Some(0),
            stderr,
            config,
            conf_path,
            nginx,
        };
        // A test that makes the module panic on purpose checks the message itself.
        let panics_on_purpose = check
            .nginx
            .spec
            .env
            .iter()
            .any(|(n, _)| n == "AUTH_JWT_TEST_PANIC");
        assert!(
            panics_on_purpose || !check.stderr.contains("panicked"),
            "nginx -t panicked:\n{}\nconfiguration:\n{}",
            check.stderr,
            numbered(&check.config)
        );
        check
    }
}
