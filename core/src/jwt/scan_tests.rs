//! The scanner against `parse_object`: same verdicts, same errors, members as serde reads them.
use serde_json::Value;

use super::*;
use crate::jwt::json::parse_object;

const LIMITS: Limits = Limits {
    max_depth: 4,
    max_members: 8,
};

/// Scans `doc` and checks it against `parse_object`: the same result, and for an accepted
/// document each top-level member's span reads back as serde_json's value.
pub(crate) fn agree(doc: &[u8], limits: Limits) -> Result<(), JsonError> {
    let mut members = Vec::new();
    let scanned = scan_object(doc, limits, |k, v| {
        members.push((String::from_utf8(k.to_vec()).unwrap(), v))
    });
    let parsed = parse_object(doc, limits);
    let shown = String::from_utf8_lossy(doc);
    assert_eq!(
        scanned,
        parsed.as_ref().map(|_| ()).map_err(|e| *e),
        "{shown}"
    );
    if let Ok(map) = parsed {
        let text = std::str::from_utf8(doc).expect("accepted documents are utf-8");
        assert_eq!(members.len(), map.len(), "{shown}");
        for (key, span) in members {
            let value = &map[&key];
            let own: Value = serde_json::from_str(span.text(text)).unwrap();
            assert_eq!(&own, value, "{shown}: {key}");
            if let Value::String(s) = value {
                assert_eq!(span.string(text).as_deref(), Some(s.as_str()), "{shown}");
            } else {
                assert_eq!(span.string(text), None);
            }
            if let Value::Array(items) = value {
                let spans: Vec<Span> = array_items(span.text(text)).collect();
                assert_eq!(spans.len(), items.len(), "{shown}");
                for (s, item) in spans.iter().zip(items) {
                    let v: Value = serde_json::from_str(s.text(span.text(text))).unwrap();
                    assert_eq!(&v, item);
                }
            }
        }
    }
    scanned
}

#[test]
fn agrees_with_parse_object() {
    let many = format!(
        "{{{}}}",
        (0..9)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let bomb = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let obj_bomb = "{\"a\":".repeat(50_000);
    let cases: &[&[u8]] = &[
        b"{}",
        b" \t\r\n{ } \n",
        br#"{"a":1,"b":"x","c":null,"d":true,"e":1.5,"f":-0}"#,
        br#"{"a":{"b":{"c":[]}}}"#,
        br#"{"a":[1,2,3,4,5,6,7]}"#,
        br#"{"n":18446744073709551615,"m":-9223372036854775808}"#,
        br#"{"big":1e308,"tiny":1e-400,"huge":1e400,"e":1E+2,"f":0e0,"g":-0.0e-0}"#,
        br#"{"a":1,"b":{"$serde_json::private::Numbe":"5"}}"#,
        br#"{"\u00e9":"\u00e9","e":2}"#,
        br#"{"A":1,"a":2}"#,
        br#"{"s":"a\"b\\c\/d\be\ff\ng\rh\ti","u":"\ud83d\ude00\u0000x"}"#,
        "{\"ü\":\"ünï\u{7f}\",\"k\":\"\u{10ffff}\"}".as_bytes(),
        br#"{"aud":["a","b\n",1,[2],{"x":[]}],"x":[ ]}"#,
        b"",
        b"   ",
        b"{",
        b"{}{}",
        b"{} x",
        b"{\"a\":1,}",
        b"{\"a\":[1,]}",
        b"{\"a\":[,1]}",
        b"{,}",
        b"{'a':1}",
        b"{a:1}",
        b"{\"a\" 1}",
        b"{\"a\":NaN}",
        b"{\"a\":Infinity}",
        b"{\"a\":1.}",
        b"{\"a\":.5}",
        b"{\"a\":1e}",
        b"{\"a\":1e+}",
        b"{\"a\":+1}",
        b"{\"a\":-}",
        b"{\"a\":01}",
        b"{\"a\":-01}",
        b"{\"a\":tru}",
        b"{\"a\":truex}",
        b"{\"a\":nul}",
        b"{\"a\":1}/*c*/",
        b"\xef\xbb\xbf{}",
        b"{\"a\":\"\xff\"}",
        b"{\"a\xc3\":1}",
        b"{\"a\":\"\\ud800\"}",
        b"{\"a\":\"\\ud800\\u0041\"}",
        b"{\"a\":\"\\udc00\"}",
        b"{\"a\":\"\\u12\"}",
        b"{\"a\":\"\\u12g4\"}",
        b"{\"a\":\"\\x\"}",
        b"{\"a\":\"x\ny\"}",
        b"{\"a\":1}\0",
        b"[]",
        b"[{}]",
        b"\"{}\"",
        b"1",
        b"null",
        b"true",
        br#"{"a":1,"a":1}"#,
        br#"{"a":1,"\u0061":2}"#,
        "{\"\\u00e9\":1,\"\u{e9}\":2}".as_bytes(),
        br#"{"x":{"b":1,"b":2}}"#,
        br#"{"x":[{"c":{"d":1,"d":1}}]}"#,
        br#"{"a":1,"a""#,
        br#"{"a":{"b":{"c":{"d":{}}}}}"#,
        br#"{"a":{"b":{"c":{}}}}"#,
        br#"{"a":{"b":{"c":{"d":x}}}}"#,
        br#"{"a":[[[[1]]]]}"#,
        br#"{"a":[[[[x"#,
        br#"[[[[[1]]]]]"#,
        many.as_bytes(),
        br#"{"a":[1,2,3,4,5,6,7,8]}"#,
        br#"{"a":[1,2,3,4,5,6,7,x]}"#,
        br#"{"a":[1,2,3,4,5,6,7],"b":"#,
        bomb.as_bytes(),
        obj_bomb.as_bytes(),
        br#"{"$serde_json::private::Number":"5"}"#,
        br#"{"$serde_json::private::Number""#,
        br#"{"a":{"$serde_json::private::Number":"5"}}"#,
        br#"{"a":{"\u0024serde_json::private::Number":"5"}}"#,
        br#"{"a":{"$serde_json::private::Number":5}}"#,
        br#"{"a":{"$serde_json::private::Number":{}}}"#,
        br#"{"a":{"b":1,"$serde_json::private::Number":"5"}}"#,
        br#"{"a":{"b":{"c":{"$serde_json::private::Number":1}}}}"#,
    ];
    for &doc in cases {
        let _ = agree(doc, LIMITS);
        for limits in [
            Limits {
                max_depth: 1,
                max_members: 1,
            },
            Limits {
                max_depth: 200,
                max_members: 1 << 20,
            },
        ] {
            let _ = agree(doc, limits);
        }
    }
}

/// Objects past the linear duplicate check go through the sorted set, escapes included.
#[test]
fn wide_objects() {
    let limits = Limits {
        max_depth: 4,
        max_members: 4096,
    };
    let keys: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
    let doc = format!("{{{}}}", keys.join(","));
    assert_eq!(agree(doc.as_bytes(), limits), Ok(()));
    for dup in [r#""k7":0"#, r#""\u006b99":0"#, r#""k0":0"#] {
        let doc = format!("{{{},{dup}}}", keys.join(","));
        assert_eq!(agree(doc.as_bytes(), limits), Err(JsonError::DuplicateKey));
    }
    // Each key again, wherever the sorted set took over from the filter.
    for i in 0..keys.len() {
        let doc = format!("{{{},\"k{i}\":0}}", keys.join(","));
        assert_eq!(
            agree(doc.as_bytes(), limits),
            Err(JsonError::DuplicateKey),
            "k{i}"
        );
    }
    let doc = format!("{{{},\"\\u006b100\":1}}", keys.join(","));
    assert_eq!(agree(doc.as_bytes(), limits), Ok(()));
}

/// Every key of objects of 1 to 20 keys, repeated as it is or escaped, after its first
/// spelling as it is or escaped: the duplicate filter (`Seen`) and the sorted set past
/// `LINEAR_KEYS` find each one; keys alike in length and first eight bytes are not confused.
#[test]
fn duplicates_at_every_position() {
    let limits = Limits {
        max_depth: 4,
        max_members: 64,
    };
    let name = |i: usize| format!("{}{i}", ["k", "longerkey", "longerkez"][i % 3]);
    let escaped = |name: &str| format!("\\u{:04x}{}", name.as_bytes()[0], &name[1..]);
    for n in 1..=20 {
        for first_escaped in [None, Some(0), Some(n - 1)] {
            let members: Vec<String> = (0..n)
                .map(|i| {
                    let k = if first_escaped == Some(i) {
                        escaped(&name(i))
                    } else {
                        name(i)
                    };
                    format!("\"{k}\":{i}")
                })
                .collect();
            let doc = format!("{{{}}}", members.join(","));
            assert_eq!(agree(doc.as_bytes(), limits), Ok(()), "{doc}");
            for i in 0..n {
                for again in [name(i), escaped(&name(i))] {
                    let doc = format!("{{{},\"{again}\":0}}", members.join(","));
                    assert_eq!(
                        agree(doc.as_bytes(), limits),
                        Err(JsonError::DuplicateKey),
                        "{doc}"
                    );
                }
            }
        }
    }
}

#[test]
fn unescapes_like_serde() {
    for text in [
        r#""plain""#,
        r#""\"\\\/\b\f\n\r\t""#,
        r#""\u0041\u00e9\u20ac\ud83d\ude00\uDBFF\uDFFF""#,
        r#""x\u0000y""#,
        "\"ünï\\u00fc\"",
    ] {
        let doc = format!("{{\"s\":{text}}}");
        assert_eq!(agree(doc.as_bytes(), LIMITS), Ok(()), "{text}");
    }
}

mod properties {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Pieces of JSON, right and wrong, that random sequences of make documents of.
    const PIECES: &[&[u8]] = &[
        b"{",
        b"{",
        b"}",
        b"}",
        b"[",
        b"]",
        b",",
        b",",
        b":",
        b":",
        b" ",
        b"\n",
        b"\"a\"",
        b"\"b\"",
        b"\"a\"",
        b"\"\\u0061\"",
        b"\"\\\"\"",
        b"\"\\ud83d\\ude00\"",
        b"\"\\ud800\"",
        b"\"\\udc00\"",
        b"\"\xc3\xa9\"",
        b"\"\\u00e9\"",
        b"\"\xff\"",
        b"\"\x01\"",
        b"\"\\q\"",
        b"\"$serde_json::private::Number\"",
        b"0",
        b"-0",
        b"12",
        b"1e5",
        b"1.5E-3",
        b"1.",
        b"01",
        b"-",
        b"true",
        b"false",
        b"null",
        b"nul",
        b"\"",
        b"\\",
    ];

    fn doc() -> impl Strategy<Value = Vec<u8>> {
        vec(0..PIECES.len(), 0..24).prop_map(|picks| {
            let mut doc = b"{".to_vec();
            for i in picks {
                doc.extend_from_slice(PIECES[i]);
            }
            doc
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever the bytes, the scanner answers as `parse_object`, error included.
        #[test]
        fn scanner_agrees_with_parse_object(doc in doc(), depth in 1usize..5, members in 0usize..8) {
            let _ = agree(&doc, Limits { max_depth: depth, max_members: members });
            let _ = agree(&doc, Limits { max_depth: 16, max_members: 1024 });
        }

        /// Valid documents (serialized values, keys possibly repeated) agree too.
        #[test]
        fn valid_documents_agree(keys in vec("[ab$\u{e9}\\\\\"]{0,3}", 0..8), nums in vec(any::<i64>(), 8)) {
            let members: Vec<String> = keys
                .iter()
                .zip(&nums)
                .map(|(k, n)| format!("{}:[{n},{}]", serde_json::to_string(k).unwrap(), serde_json::to_string(k).unwrap()))
                .collect();
            let doc = format!("{{{}}}", members.join(","));
            let _ = agree(doc.as_bytes(), Limits { max_depth: 2, max_members: 64 });
        }
    }
}
