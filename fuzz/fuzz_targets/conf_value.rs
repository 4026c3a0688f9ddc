//! Every directive-value parser of `auth_jwt_core::directive`, on the arguments of one directive
//! (newline-separated, as NGINX would hand them over after unquoting).
//! Invariants: no panic; what a parser accepts satisfies what the handler relies on (realms
//! and challenges without control characters, `none` never allowed, https key URIs,
//! bounded cache sizes, header names that are RFC 9110 tokens); every error renders.
#![no_main]

use std::time::Duration;

use auth_jwt_core::challenge::{www_authenticate, Attributes, Challenge};
use auth_jwt_core::directive::{self, AuthJwtArgs, MAX_CACHE_ENTRIES};
use auth_jwt_core::refresh::is_https_url;
use libfuzzer_sys::fuzz_target;

fn no_controls(s: &str) -> bool {
    !s.bytes().any(|b| b.is_ascii_control())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split('\n').collect();
    let args = &args[..args.len().min(16)];

    match directive::parse_auth_jwt(args) {
        Ok(AuthJwtArgs::On { realm, token }) => {
            assert!(no_controls(realm));
            assert!(token.is_none_or(|t| t.starts_with('$') && t.len() >= 2));
            for challenge in [
                Challenge::Missing,
                Challenge::InvalidToken(realm),
                Challenge::InsufficientScope,
            ] {
                let header = www_authenticate(realm, challenge, Attributes::default());
                assert!(header.starts_with("Bearer realm=\""));
                assert!(no_controls(&header), "{header:?}");
            }
        }
        Ok(AuthJwtArgs::Off) => assert_eq!(args, ["off"]),
        Err(e) => drop(e.to_string()),
    }
    // Whatever the realm (variables can make one at run time), a challenge has no CR/LF.
    let attrs = Attributes {
        scope: Some(&text),
        resource_metadata: Some(&text),
    };
    let header = www_authenticate(&text, Challenge::InvalidToken(&text), attrs);
    assert!(no_controls(&header), "{header:?}");

    match directive::parse_algorithms(args) {
        Ok(set) => {
            assert!(!args.iter().any(|a| a.eq_ignore_ascii_case("none")));
            assert!(set.iter().count() <= args.len());
        }
        Err(e) => drop(e.to_string()),
    }
    match directive::parse_require(args) {
        Ok((values, _)) => assert!(!values.is_empty() && values.iter().all(|v| v.contains('$'))),
        Err(e) => drop(e.to_string()),
    }
    match directive::parse_path(args) {
        Ok(path) => assert!(path.iter().all(|p| !p.is_empty())),
        Err(e) => drop(e.to_string()),
    }
    match directive::parse_scope(args) {
        // A scope never carries what would break out of the challenge's quoted-string.
        Ok(scope) => assert!(!scope.contains('"') && !scope.contains('\\') && !scope.is_empty()),
        Err(e) => drop(e.to_string()),
    }
    match directive::parse_source(args) {
        Ok(source) => {
            assert!(is_https_url(&source.url));
            assert!(source.refresh >= Duration::from_secs(1));
            assert!(source.timeout >= Duration::from_millis(100));
        }
        Err(e) => drop(e.to_string()),
    }

    for arg in args {
        match directive::parse_variable_name(arg) {
            Ok(name) => assert_eq!(&arg[1..], name),
            Err(e) => drop(e.to_string()),
        }
        match directive::parse_header_name(arg) {
            Ok(lower) => {
                assert_eq!(lower, arg.to_ascii_lowercase());
                assert!(!lower.is_empty() && lower.len() <= 256);
                assert!(lower.bytes().all(|b| b.is_ascii_graphic()));
                assert!(!lower.contains(':'));
            }
            Err(e) => drop(e.to_string()),
        }
        match directive::parse_duration(arg) {
            Ok(d) => {
                if arg.bytes().all(|b| b.is_ascii_digit()) {
                    assert_eq!(Some(d.as_secs()), arg.parse::<u64>().ok());
                }
            }
            Err(e) => drop(e.to_string()),
        }
        match directive::parse_fail_mode(arg) {
            Ok(_) => assert!(*arg == "open" || *arg == "closed"),
            Err(e) => drop(e.to_string()),
        }
        match directive::parse_resource_metadata(arg) {
            Ok(url) => assert!(
                url.starts_with("https://")
                    || url.starts_with("HTTPS://")
                    || url[..8].eq_ignore_ascii_case("https://")
            ),
            Err(e) => drop(e.to_string()),
        }
        match directive::parse_cache(arg) {
            Ok(0) => assert_eq!(*arg, "off"),
            Ok(n) => assert!(n <= MAX_CACHE_ENTRIES),
            Err(e) => drop(e.to_string()),
        }
    }
});
