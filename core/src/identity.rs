//! Renders claims as text for variables and identity headers, refusing what could inject.
#![forbid(unsafe_code)]

use core::fmt;

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Longest identity header value passed to the upstream, in bytes.
pub const MAX_HEADER_VALUE: usize = 4096;

/// Why a claim cannot become a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// The rendered value holds a control character (CR, LF, NUL, TAB, DEL, ...).
    ControlCharacter,
    /// The rendered value is longer than [`MAX_HEADER_VALUE`].
    TooLong,
}

impl IdentityError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ControlCharacter => "identity claim holds a control character",
            Self::TooLong => "identity claim is too long",
        }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Follows `path` from the top of a JSON object: `["org", "id"]` is `{"org": {"id": ...}}`.
pub fn lookup<'a>(root: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(root.get(first)?, |v, name| v.as_object()?.get(name))
}

/// Text of a claim as NGINX Plus renders it: strings as they are, arrays joined with commas,
/// objects as compact JSON, `null` as the empty string.
/// A string claim is borrowed, not copied.
pub fn render(value: &Value) -> Cow<'_, str> {
    Cow::Owned(match value {
        Value::String(s) => return Cow::Borrowed(s),
        Value::Null => return Cow::Borrowed(""),
        Value::Array(items) => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match item {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
            }
            out
        }
        other => other.to_string(),
    })
}

/// Renders a claim for an identity header; refuses control characters and over-long values
/// rather than mangling them, so the upstream never sees a truncated or injected identity.
pub fn header_value(value: &Value) -> Result<Cow<'_, str>, IdentityError> {
    let text = render(value);
    if text.len() > MAX_HEADER_VALUE {
        return Err(IdentityError::TooLong);
    }
    if text.bytes().any(|b| b.is_ascii_control()) {
        return Err(IdentityError::ControlCharacter);
    }
    Ok(text)
}

/// A header name as the module compares it: lower case, with `_` read as `-` (NGINX passes
/// `X_User_Id` on with `underscores_in_headers on`, and many upstreams read it as `X-User-Id`).
pub fn fold_name(name: &str) -> String {
    name.bytes().map(|b| char::from(fold(b))).collect()
}

/// One byte of a header name, folded as [`fold_name`] does.
pub fn fold(b: u8) -> u8 {
    match b {
        b'_' => b'-',
        b => b.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_fold_case_and_underscores() {
        for (name, want) in [
            ("X-User-Id", "x-user-id"),
            ("X_USER_ID", "x-user-id"),
            ("x_user-Id", "x-user-id"),
            ("Authorization", "authorization"),
        ] {
            assert_eq!(super::fold_name(name), want, "{name}");
        }
    }

    use serde_json::json;

    use super::*;
    use crate::jwt::json::{parse_object, Limits};

    #[test]
    fn renders_like_plus() {
        let cases = [
            (json!("alice"), "alice"),
            (json!(42), "42"),
            (json!(1.5), "1.5"),
            (json!(true), "true"),
            (json!(null), ""),
            (json!(["a", "b", 3]), "a,b,3"),
            (json!([{"x": 1}, "y"]), "{\"x\":1},y"),
            (json!({"b": [1, 2]}), "{\"b\":[1,2]}"),
        ];
        for (value, want) in cases {
            assert_eq!(render(&value), want, "{value}");
        }
    }

    /// Numbers render as the token wrote them: an integer past 2^64 is not rounded to a float
    /// that another subject shares, and `1.0`, `-0`, `1e400` keep their spelling (but for
    /// the exponent's `e+`/`e-`).
    #[test]
    fn numbers_render_as_their_json_text() {
        let cases = [
            ("18446744073709551615", "18446744073709551615"),
            ("18446744073709551616", "18446744073709551616"),
            ("18446744073709551617", "18446744073709551617"),
            ("-9223372036854775809", "-9223372036854775809"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("42", "42"),
            ("-7", "-7"),
            ("1.0", "1.0"),
            ("-0", "-0"),
            ("-0.0", "-0.0"),
            ("0.1", "0.1"),
            // serde_json writes an exponent as `e` and a sign, the one change it makes.
            ("1e3", "1e+3"),
            ("1E+2", "1e+2"),
            ("1E-2", "1e-2"),
            ("1e400", "1e+400"),
            ("1e-400", "1e-400"),
            ("[18446744073709551616,2.50]", "18446744073709551616,2.50"),
            (
                r#"{"id":18446744073709551617}"#,
                r#"{"id":18446744073709551617}"#,
            ),
        ];
        let limits = Limits {
            max_depth: 4,
            max_members: 16,
        };
        for (json, want) in cases {
            let doc = format!(r#"{{"sub":{json}}}"#);
            let claims = parse_object(doc.as_bytes(), limits).unwrap();
            assert_eq!(render(&claims["sub"]), want, "{json}");
            assert_eq!(header_value(&claims["sub"]).as_deref(), Ok(want), "{json}");
        }
    }

    #[test]
    fn nested_lookup() {
        let claims = json!({"sub": "u1", "org": {"id": "o7", "deep": {"x": [1]}}});
        let claims = claims.as_object().unwrap();
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(lookup(claims, &path(&["sub"])), Some(&json!("u1")));
        assert_eq!(lookup(claims, &path(&["org", "id"])), Some(&json!("o7")));
        assert_eq!(
            lookup(claims, &path(&["org", "deep", "x"])),
            Some(&json!([1]))
        );
        assert_eq!(lookup(claims, &path(&["sub", "x"])), None);
        assert_eq!(lookup(claims, &path(&["nope"])), None);
        assert_eq!(lookup(claims, &[]), None);
    }

    #[test]
    fn header_values_refuse_injection() {
        for bad in ["a\r\nX-Admin: 1", "a\nb", "a\0b", "a\tb", "a\x7fb"] {
            assert_eq!(
                header_value(&json!(bad)),
                Err(IdentityError::ControlCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(
            header_value(&json!(["ok", "x\ny"])),
            Err(IdentityError::ControlCharacter)
        );
        // JSON escapes keep object renderings on one line.
        assert_eq!(
            header_value(&json!({"a": "x\ny"})),
            Ok("{\"a\":\"x\\ny\"}".into())
        );
        assert_eq!(header_value(&json!("ünïcode")), Ok("ünïcode".into()));
        let long = "x".repeat(MAX_HEADER_VALUE + 1);
        assert_eq!(header_value(&json!(long)), Err(IdentityError::TooLong));
        let exact = "x".repeat(MAX_HEADER_VALUE);
        assert_eq!(
            header_value(&json!(exact)).map(|s| s.len()),
            Ok(MAX_HEADER_VALUE)
        );
    }
}
