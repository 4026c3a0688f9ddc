//! Tests of the directive-value parsers.

#[test]
fn token_variables_in_the_query_string_are_recognised() {
    for (value, want) in [
        ("$arg_access_token", true),
        ("${arg_t}", true),
        ("$args", true),
        ("$query_string", true),
        ("$request_uri", true),
        ("x$cookie_a$arg_b", true),
        ("$cookie_session", false),
        ("$http_x_token", false),
        ("$argument", false),
        ("$args_x", false),
        ("$jwt", false),
    ] {
        assert_eq!(super::token_in_query(value), want, "{value}");
    }
}

use super::*;

#[test]
fn auth_jwt_args() {
    let cases: &[(&[&str], Result<AuthJwtArgs, ConfError>)] = &[
        (&["off"], Ok(AuthJwtArgs::Off)),
        (
            &["api"],
            Ok(AuthJwtArgs::On {
                realm: "api",
                token: None,
            }),
        ),
        (
            &["api", "token=$cookie_auth"],
            Ok(AuthJwtArgs::On {
                realm: "api",
                token: Some("$cookie_auth"),
            }),
        ),
        (
            &["api", "token=cookie"],
            Err(ConfError::NotVariable("cookie".into())),
        ),
        (&["api", "token=$"], Err(ConfError::NotVariable("$".into()))),
        (
            &["api", "tok=$x"],
            Err(ConfError::InvalidValue("tok=$x".into())),
        ),
        (
            &["a\nb"],
            Err(ConfError::Other(
                "realm must not contain control characters".into(),
            )),
        ),
        (
            &["a", "b", "c"],
            Err(ConfError::Other("invalid number of arguments".into())),
        ),
    ];
    for (args, want) in cases {
        assert_eq!(&parse_auth_jwt(args), want, "{args:?}");
    }
}

#[test]
fn algorithms() {
    let set = parse_algorithms(&["RS256", "ES256"]).unwrap();
    assert!(set.contains(Alg::RS256) && set.contains(Alg::ES256));
    assert!(!set.contains(Alg::HS256));
    for none in ["none", "None", "NONE"] {
        assert_eq!(parse_algorithms(&["RS256", none]), Err(ConfError::AlgNone));
    }
    assert_eq!(
        parse_algorithms(&["rs256"]),
        Err(ConfError::UnknownAlg("rs256".into()))
    );
}

#[test]
fn require() {
    assert_eq!(
        parse_require(&["$a", "$b"]),
        Ok((vec!["$a", "$b"], RequireError::Unauthorized))
    );
    assert_eq!(
        parse_require(&["$a", "error=403"]),
        Ok((vec!["$a"], RequireError::Forbidden))
    );
    assert_eq!(
        parse_require(&["$a", "error=401"]),
        Ok((vec!["$a"], RequireError::Unauthorized))
    );
    assert_eq!(
        parse_require(&["$a", "error=500"]),
        Err(ConfError::InvalidValue("error=500".into()))
    );
    assert!(parse_require(&["error=403"]).is_err());
    assert_eq!(
        parse_require(&["literal"]),
        Err(ConfError::NotVariable("literal".into()))
    );
}

#[test]
fn variable_names() {
    assert_eq!(parse_variable_name("$jwt_sub"), Ok("jwt_sub"));
    for bad in ["jwt", "$", "$a-b", "$a b", ""] {
        assert!(parse_variable_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn header_names() {
    assert_eq!(parse_header_name("X-User-ID"), Ok("x-user-id".into()));
    for bad in ["", "X User", "X:User", "X\r\nY", "Ü"] {
        assert_eq!(
            parse_header_name(bad),
            Err(ConfError::HeaderName(bad.into()))
        );
    }
    for reserved in [
        "Host",
        "Content-Length",
        "Authorization",
        "Transfer-Encoding",
    ] {
        assert_eq!(
            parse_header_name(reserved),
            Err(ConfError::ReservedHeader(reserved.into()))
        );
    }
}

#[test]
fn cache_sizes() {
    assert_eq!(parse_cache("off"), Ok(0));
    assert_eq!(parse_cache("1"), Ok(1));
    assert_eq!(parse_cache("1000000"), Ok(1_000_000));
    for bad in ["0", "-1", "+5", "1000001", "1k", "on", ""] {
        assert_eq!(
            parse_cache(bad),
            Err(ConfError::InvalidValue(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn durations() {
    let ok = [
        ("0", 0),
        ("30", 30_000),
        ("500ms", 500),
        ("10m", 600_000),
        ("1h30m", 5_400_000),
        ("2d", 172_800_000),
        ("1w", 604_800_000),
    ];
    for (text, ms) in ok {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
    for bad in [
        "",
        "m",
        "10x",
        "-1s",
        "1.5s",
        "99999999999999999999s",
        "5 s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn sources() {
    let s = parse_source(&["https://idp/jwks", "refresh=1m", "max_stale=1h"]).unwrap();
    assert_eq!(s.url, "https://idp/jwks");
    assert_eq!(s.refresh, Duration::from_secs(60));
    assert_eq!(s.timeout, Duration::from_secs(5));
    assert_eq!(s.max_stale, Duration::from_secs(3600));
    let bad: &[&[&str]] = &[
        &[],
        &["http://idp/jwks"],
        &["https://idp/jwks", "refresh"],
        &["https://idp/jwks", "refresh=soon"],
        &["https://idp/jwks", "retries=3"],
        &["https://idp/jwks", "refresh=0s"],
        &["https://idp/jwks", "timeout=1ms"],
    ];
    for args in bad {
        assert!(parse_source(args).is_err(), "{args:?}");
    }
    // Regression: a URL longer than a zone slot passed, and its keys never arrived.
    let at = format!("https://idp/{}", "x".repeat(MAX_URL_LEN - 12));
    assert_eq!(parse_source(&[&at]).map(|s| s.url.len()), Ok(MAX_URL_LEN));
    let over = format!("{at}x");
    assert_eq!(
        parse_source(&[&over]),
        Err(ConfError::Other("URL is longer than 1024 bytes".into()))
    );
    assert_eq!(parse_fail_mode("open"), Ok(FailMode::Open));
    assert!(parse_fail_mode("on").is_err());
}

#[test]
fn challenge_attributes() {
    assert_eq!(
        parse_scope(&["orders:read", "orders:write"]),
        Ok("orders:read orders:write".into())
    );
    for bad in ["a\"b", "a\\b", "a b", ""] {
        assert!(parse_scope(&[bad]).is_err(), "{bad:?}");
    }
    assert!(parse_scope(&[]).is_err());
    assert!(
        parse_resource_metadata("https://api.example/.well-known/oauth-protected-resource").is_ok()
    );
    for bad in ["http://api.example/", "https://a\"b", "https://"] {
        assert!(parse_resource_metadata(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn paths() {
    assert_eq!(parse_path(&["a", "b"]), Ok(vec!["a".into(), "b".into()]));
    assert!(parse_path(&[]).is_err());
    assert!(parse_path(&["a", ""]).is_err());
}

#[test]
fn token_types() {
    use super::{parse_token_type, TokenType};
    assert_eq!(parse_token_type("signed"), Ok(TokenType::Signed));
    assert_eq!(parse_token_type("encrypted"), Ok(TokenType::Encrypted));
    assert_eq!(parse_token_type("nested"), Ok(TokenType::Nested));
    for bad in ["jwe", "Signed", ""] {
        assert!(parse_token_type(bad).is_err(), "{bad}");
    }
}
