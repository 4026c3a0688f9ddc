//! Strict JSON (`jwt::json::parse_object`) under the limits the module uses, checked against
//! serde_json itself; and identity rendering of every value it yields.
//! Invariants:
//! - no panic, no stack exhaustion, whatever the nesting;
//! - an accepted document is within its depth and member limits and equals what serde_json
//!   makes of it (numbers as their text: both sides use `arbitrary_precision`); a document
//!   serde_json accepts as an object is refused only for a limit, a duplicate member or the
//!   reserved member name, and one it refuses is refused;
//! - `header_value` passes no control character and nothing over 4096 bytes;
//! - `scan::scan_object` (the request path's parser, which builds no tree) answers exactly as
//!   `parse_object`, same error included, and its member spans read back as the map's values.
#![no_main]

use auth_jwt_core::jwt::json::{parse_object, JsonError, Limits};
use auth_jwt_core::jwt::scan::{array_items, scan_object, Span};
use libfuzzer_sys::fuzz_target;
use ngx_http_auth_jwt_module_fuzz::fixture;
use serde_json::Value;

/// The limits of token headers, token payloads, JWKS documents, and a tight one.
const LIMITS: [Limits; 4] = [
    Limits {
        max_depth: 8,
        max_members: 64,
    },
    Limits {
        max_depth: 16,
        max_members: 1024,
    },
    Limits {
        max_depth: 16,
        max_members: 64 * 256,
    },
    Limits {
        max_depth: 2,
        max_members: 4,
    },
];

/// (depth, members) as `Limits` counts them.
fn measure(value: &Value) -> (usize, usize) {
    match value {
        Value::Array(items) => items.iter().fold((1, items.len()), |(d, m), v| {
            let (vd, vm) = measure(v);
            (d.max(vd + 1), m + vm)
        }),
        Value::Object(map) => map.values().fold((1, map.len()), |(d, m), v| {
            let (vd, vm) = measure(v);
            (d.max(vd + 1), m + vm)
        }),
        _ => (0, 0),
    }
}

/// The scanner agrees with `parse_object` under `limits`.
fn check_scan(
    data: &[u8],
    limits: Limits,
    parsed: &Result<serde_json::Map<String, Value>, JsonError>,
) {
    let mut members: Vec<(Vec<u8>, Span)> = Vec::new();
    let scanned = scan_object(data, limits, |k, v| members.push((k.to_vec(), v)));
    assert_eq!(
        scanned,
        parsed.as_ref().map(|_| ()).map_err(|e| *e),
        "{limits:?}"
    );
    let Ok(map) = parsed else {
        return;
    };
    let text = std::str::from_utf8(data).expect("an accepted document is utf-8");
    assert_eq!(members.len(), map.len());
    for (key, span) in members {
        let key = String::from_utf8(key).expect("member names are utf-8");
        let value = &map[&key];
        let own: Value = serde_json::from_str(span.text(text)).expect("a span is json");
        assert_eq!(&own, value, "{key}");
        match value {
            Value::String(s) => assert_eq!(span.string(text).as_deref(), Some(s.as_str())),
            _ => assert!(span.string(text).is_none()),
        }
        if let Value::Array(items) = value {
            let array = span.text(text);
            let spans: Vec<Span> = array_items(array).collect();
            assert_eq!(spans.len(), items.len());
            for (s, item) in spans.iter().zip(items) {
                let v: Value = serde_json::from_str(s.text(array)).expect("an item is json");
                assert_eq!(&v, item);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // serde_json's own recursion limit (128) keeps the reference parser safe.
    let reference = serde_json::from_slice::<Value>(data);
    for limits in LIMITS {
        let parsed = parse_object(data, limits);
        check_scan(data, limits, &parsed);
        match parsed {
            Ok(map) => {
                let value = Value::Object(map);
                let (depth, members) = measure(&value);
                assert!(depth <= limits.max_depth, "{depth} > {limits:?}");
                assert!(members <= limits.max_members, "{members} > {limits:?}");
                let reference = reference.as_ref().expect("serde_json accepts it too");
                assert_eq!(&value, reference);
                if let Value::Object(map) = &value {
                    for v in map.values() {
                        fixture::check_identity(v);
                    }
                }
            }
            Err(JsonError::Syntax) => {
                // serde_json may accept what exceeds a limit only as a limit error, never
                // as a syntax error... unless serde_json's own nesting limit refused it.
                if let Ok(Value::Object(_)) = &reference {
                    panic!("valid json object refused as a syntax error under {limits:?}");
                }
            }
            Err(JsonError::NotObject) => {
                assert!(matches!(&reference, Ok(v) if !v.is_object()));
            }
            // serde_json reads a member named its number marker as a number; we refuse it.
            Err(
                JsonError::DuplicateKey
                | JsonError::TooDeep
                | JsonError::TooManyMembers
                | JsonError::ReservedKey,
            ) => {}
        }
    }
});
