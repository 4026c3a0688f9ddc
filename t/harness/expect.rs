//! Expectations: what accepted and refused requests look like, and the log line of a denial.

use super::http::{Request, Response};
use super::nginx::Nginx;

/// Collects failures of table-driven checks and reports them all at once.
#[derive(Default)]
#[must_use = "call assert() at the end"]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `result` under `case` if it is an error.
    pub fn check<T>(&mut self, case: &str, result: Result<T, String>) {
        if let Err(e) = result {
            self.0.push(format!("[{case}] {e}"));
        }
    }

    /// Panics listing every failed case.
    pub fn assert(self) {
        assert!(
            self.0.is_empty(),
            "{} case(s) failed:\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

/// One token that must be refused: where it is sent, and the reason its denial line must
/// give (a `matches` pattern; "" when the contract leaves the wording open).
pub struct Case {
    pub name: String,
    pub path: &'static str,
    pub token: String,
    pub reason: &'static str,
}

/// A case sent to `/`.
pub fn case(name: impl Into<String>, token: impl Into<String>, reason: &'static str) -> Case {
    at("/", name, token, reason)
}

/// A case sent to `path`.
pub fn at(
    path: &'static str,
    name: impl Into<String>,
    token: impl Into<String>,
    reason: &'static str,
) -> Case {
    Case {
        name: name.into(),
        path,
        token: token.into(),
        reason,
    }
}

/// 200 from the echo upstream.
pub fn upstream(resp: &Response) -> Result<(), String> {
    if resp.is_from_upstream() {
        Ok(())
    } else {
        Err(format!(
            "expected 200 from the upstream, got {}",
            resp.summary()
        ))
    }
}

/// Claim values holding a control character, with a name for each: none may reach a header
/// or a variable (CR/LF would split a request or a response).
pub const CONTROL_VALUES: &[(&str, &str)] = &[
    ("crlf", "alice\r\nX-Evil: 1"),
    ("lf", "alice\nX-Evil: 1"),
    ("cr", "alice\rX-Evil: 1"),
    ("nul", "alice\u{0}admin"),
    ("tab", "alice\tx"),
    ("esc", "alice\u{1b}[2J"),
    ("del", "alice\u{7f}"),
];

/// The response has status `want`.
pub fn status(resp: &Response, want: u16) -> Result<(), String> {
    if resp.status == want {
        Ok(())
    } else {
        Err(format!("expected {want}, got {}", resp.summary()))
    }
}

/// 401 with `WWW-Authenticate: Bearer realm="<realm>"` and nothing else (no token presented).
pub fn missing(resp: &Response, realm: &str) -> Result<(), String> {
    let want = format!("Bearer realm=\"{realm}\"");
    if resp.status == 401 && resp.challenge() == want {
        Ok(())
    } else {
        Err(format!(
            "expected 401 with {want:?}, got {}",
            resp.summary()
        ))
    }
}

/// 401 with `WWW-Authenticate: Bearer realm="<realm>", error="invalid_token", error_description=...`.
pub fn invalid(resp: &Response, realm: &str) -> Result<(), String> {
    let c = resp.challenge();
    let ok = resp.status == 401
        && c.starts_with(&format!("Bearer realm=\"{realm}\""))
        && c.contains("error=\"invalid_token\"")
        && c.contains("error_description=\"");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected 401 invalid_token for realm {realm:?}, got {}",
            resp.summary()
        ))
    }
}

/// 403 with `WWW-Authenticate: Bearer realm="<realm>", error="insufficient_scope"`.
pub fn insufficient_scope(resp: &Response, realm: &str) -> Result<(), String> {
    let c = resp.challenge();
    let ok = resp.status == 403
        && c.starts_with(&format!("Bearer realm=\"{realm}\""))
        && c.contains("error=\"insufficient_scope\"");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected 403 insufficient_scope for realm {realm:?}, got {}",
            resp.summary()
        ))
    }
}

/// Every one of `lines` is in `text` (a metrics page, say).
pub fn lines_in(text: &str, lines: &[&str]) -> Result<(), String> {
    match lines.iter().find(|l| !text.contains(*l)) {
        Some(line) => Err(format!("no {line:?} in\n{text}")),
        None => Ok(()),
    }
}

/// Never a 5xx for anything a client sends.
pub fn not_5xx(resp: &Response) -> Result<(), String> {
    if resp.status >= 500 {
        Err(format!(
            "server error for a client mistake: {}",
            resp.summary()
        ))
    } else {
        Ok(())
    }
}

impl Nginx {
    /// Exactly one `[info] ... auth_jwt: rejected (<status>): <reason>` line after `mark`
    /// (`reason` is a `nginx::matches` pattern, "" for any); returns it.
    pub fn denial_line(&self, mark: usize, status: &str, reason: &str) -> Result<String, String> {
        let pattern = format!("[info] *auth_jwt: rejected ({status}): {reason}");
        let line = self.wait_log(mark, &pattern)?;
        let all = self.log_lines(mark, "auth_jwt: rejected");
        if all.len() != 1 {
            return Err(format!(
                "expected one denial line, got {}:\n{}",
                all.len(),
                all.join("\n")
            ));
        }
        Ok(line)
    }

    /// Sends `token` as `Authorization: Bearer` to `target` and expects a 401 invalid_token
    /// for `realm`, one denial line with `status` (`invalid`, `expired`...) and `reason`
    /// (a `matches` pattern), and no piece of the token in the log.
    pub fn check_rejected(
        &self,
        target: &str,
        realm: &str,
        token: &str,
        status: &str,
        reason: &str,
    ) -> Result<(), String> {
        let line = self.rejects(self.get(target).bearer(token), realm, status, reason)?;
        let _ = line;
        Ok(())
    }

    /// Sends `req` and expects a 401 invalid_token for `realm` and one denial line with
    /// `status` and `reason`; the log must hold no piece of the bearer token. Returns the line.
    pub fn rejects(
        &self,
        req: Request,
        realm: &str,
        status: &str,
        reason: &str,
    ) -> Result<String, String> {
        let mark = self.log_mark();
        let resp = req.try_send()?;
        not_5xx(&resp)?;
        invalid(&resp, realm)?;
        let line = self.denial_line(mark, status, reason)?;
        if let Some(token) = req.header_value("authorization").and_then(|v| v.get(7..)) {
            no_token_in(&self.log_since(mark), token)?;
        }
        Ok(line)
    }

    /// `check_rejected` (status `invalid`) for every case; reports all failures together.
    pub fn rejects_all(&self, realm: &str, cases: &[Case]) {
        let mut f = Failures::new();
        for c in cases {
            f.check(
                &c.name,
                self.check_rejected(c.path, realm, &c.token, "invalid", c.reason),
            );
        }
        f.assert();
    }

    /// Sends `token` as `Authorization: Bearer` to `target` and expects the upstream's 200.
    pub fn check_accepted(&self, target: &str, token: &str) -> Result<Response, String> {
        self.accepts(self.get(target).bearer(token))
    }

    /// Sends `req` and expects the upstream's 200 (the error shows the log of the request).
    pub fn accepts(&self, req: Request) -> Result<Response, String> {
        let mark = self.log_mark();
        let resp = req.try_send()?;
        upstream(&resp).map_err(|e| format!("{e}\nlog:\n{}", self.log_since(mark)))?;
        Ok(resp)
    }
}

/// The log must hold no signature and no payload of a token (pieces shorter than 16
/// characters are too common to look for).
pub fn no_token_in(log: &str, token: &str) -> Result<(), String> {
    for piece in token.split('.').skip(1) {
        if piece.len() >= 16 && log.contains(piece) {
            return Err(format!(
                "the log contains part of the token ({}...)",
                &piece[..16]
            ));
        }
    }
    Ok(())
}
