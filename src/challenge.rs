//! RFC 6750 `WWW-Authenticate: Bearer` challenges.
#![forbid(unsafe_code)]

/// What the challenge tells the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge<'a> {
    /// No token was sent: only the realm (RFC 6750 section 3.1).
    Missing,
    /// The token was refused; the description is one of the module's fixed reasons.
    InvalidToken(&'a str),
    /// The token is valid but does not meet `auth_jwt_require ... error=403`.
    InsufficientScope,
}

/// Builds the header value, quoting the realm and description as RFC 9110 quoted-strings.
pub fn www_authenticate(realm: &str, challenge: Challenge<'_>) -> String {
    let mut out = String::with_capacity(64 + realm.len());
    out.push_str("Bearer realm=");
    push_quoted(&mut out, realm);
    match challenge {
        Challenge::Missing => {}
        Challenge::InvalidToken(description) => {
            out.push_str(", error=\"invalid_token\", error_description=");
            push_quoted(&mut out, description);
        }
        Challenge::InsufficientScope => out.push_str(", error=\"insufficient_scope\""),
    }
    out
}

fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            // Control characters never reach a header; realms are checked at load already.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let cases = [
            ("api", Challenge::Missing, r#"Bearer realm="api""#),
            (
                "api",
                Challenge::InvalidToken("token expired at 5"),
                r#"Bearer realm="api", error="invalid_token", error_description="token expired at 5""#,
            ),
            (
                "api",
                Challenge::InsufficientScope,
                r#"Bearer realm="api", error="insufficient_scope""#,
            ),
            (r#"a"b\c"#, Challenge::Missing, r#"Bearer realm="a\"b\\c""#),
            ("a\r\nb", Challenge::Missing, r#"Bearer realm="a  b""#),
        ];
        for (realm, challenge, want) in cases {
            assert_eq!(www_authenticate(realm, challenge), want);
        }
    }
}
