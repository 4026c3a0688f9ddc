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

/// Optional challenge attributes a location configures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// RFC 6750 `scope`: the scopes the resource needs (`auth_jwt_scope`).
    pub scope: Option<&'a str>,
    /// RFC 9728 `resource_metadata`: the URL of the protected resource's metadata
    /// (`auth_jwt_resource_metadata`), from which OAuth clients such as MCP clients find
    /// the authorization server.
    pub resource_metadata: Option<&'a str>,
}

/// Builds the header value, quoting every value as an RFC 9110 quoted-string.
pub fn www_authenticate(realm: &str, challenge: Challenge<'_>, attrs: Attributes<'_>) -> String {
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
    if let Some(scope) = attrs.scope {
        out.push_str(", scope=");
        push_quoted(&mut out, scope);
    }
    if let Some(url) = attrs.resource_metadata {
        out.push_str(", resource_metadata=");
        push_quoted(&mut out, url);
    }
    out
}

/// RFC 9449 section 7.1: `DPoP algs="...", error="<error>", error_description="..."`, for a
/// refused proof (`invalid_dpop_proof`) or a DPoP request whose token was refused
/// (`invalid_token`).
pub fn dpop_challenge(algs: &str, error: &str, description: &str) -> String {
    let mut out = String::with_capacity(64 + algs.len() + description.len());
    out.push_str("DPoP algs=");
    push_quoted(&mut out, algs);
    out.push_str(", error=");
    push_quoted(&mut out, error);
    out.push_str(", error_description=");
    push_quoted(&mut out, description);
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
            assert_eq!(
                www_authenticate(realm, challenge, Attributes::default()),
                want
            );
        }
        let attrs = Attributes {
            scope: Some("orders:read orders:write"),
            resource_metadata: Some("https://api.example/.well-known/oauth-protected-resource"),
        };
        assert_eq!(
            dpop_challenge("ES256 EdDSA", "invalid_dpop_proof", "DPoP proof 'x'"),
            r#"DPoP algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="DPoP proof 'x'""#
        );
        assert_eq!(
            www_authenticate("api", Challenge::InsufficientScope, attrs),
            r#"Bearer realm="api", error="insufficient_scope", scope="orders:read orders:write", resource_metadata="https://api.example/.well-known/oauth-protected-resource""#
        );
    }
}
