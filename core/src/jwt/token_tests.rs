//! Tests of compact JWS parsing: segments, base64url, header and payload rules.
use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The header, then the payload, as `authn` reads them (with the signature check between).
fn parse_all(text: &[u8]) -> Result<Payload, VerifyError> {
    parse(text)?.payload()
}

fn b64(s: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn jws(header: &str, payload: &str) -> String {
    format!(
        "{}.{}.c2ln",
        b64(header.as_bytes()),
        b64(payload.as_bytes())
    )
}

const HS: &str = r#"{"alg":"HS256"}"#;
const CLAIMS: &str = r#"{"sub":"a"}"#;

#[test]
fn parses_a_token() {
    let text = jws(
        r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#,
        r#"{"sub":"a","n":[1]}"#,
    );
    let token = parse(text.as_bytes()).unwrap();
    assert_eq!(token.alg, Alg::ES256);
    assert_eq!(token.kid.as_deref(), Some("k1"));
    assert_eq!(token.header["typ"], "JWT");
    let payload = token.payload().unwrap();
    assert_eq!(payload.claims["sub"], "a");
    assert_eq!(payload.json(), r#"{"sub":"a","n":[1]}"#);
    assert_eq!(*token.signature, *b"sig");
    let dot = text.rfind('.').unwrap();
    assert_eq!(token.signing_input, &text.as_bytes()[..dot]);
    assert!(!format!("{token:?}").contains("sub"));
}

#[test]
fn accepts_every_alg_and_long_kid() {
    for alg in Alg::ALL {
        let text = jws(&format!(r#"{{"alg":"{alg}"}}"#), CLAIMS);
        assert_eq!(parse(text.as_bytes()).unwrap().alg, alg);
    }
    let kid = "k".repeat(MAX_KID_LEN);
    let text = jws(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#), CLAIMS);
    assert_eq!(*parse(text.as_bytes()).unwrap().kid.unwrap(), kid);
}

#[test]
fn rejects_bad_structure_and_encoding() {
    let h = b64(HS.as_bytes());
    let p = b64(CLAIMS.as_bytes());
    let m = VerifyError::Malformed;
    let segments = m("expected 3 segments");
    let cases: Vec<(String, VerifyError)> = vec![
        (String::new(), segments),
        (h.clone(), segments),
        (format!("{h}.{p}"), segments),
        (format!("{h}.{p}.c2ln.c2ln"), segments),
        (format!("{h}.{p}.a.b.c.d"), segments),
        ("....".into(), VerifyError::Encrypted),
        (format!("{h}.{p}.a.b.c"), VerifyError::Encrypted),
        ("..".into(), m("empty header")),
        (format!(".{p}.c2ln"), m("empty header")),
        (format!("{h}..c2ln"), m("empty payload")),
        (format!("{h}.{p}."), m("empty signature")),
        (format!("{h}=.{p}.c2ln"), m("bad base64url in header")),
        (format!("{h}.{p}=.c2ln"), m("bad base64url in payload")),
        (format!("{h}.{p}.c2ln===="), m("bad base64url in signature")),
        (format!("{h}.{p}.c2ln="), m("bad base64url in signature")),
        (format!("{h}.{p}.c2+n"), m("bad base64url in signature")),
        (format!("{h}.{p}.c2/n"), m("bad base64url in signature")),
        (format!("{h}.{p}.c2 n"), m("bad base64url in signature")),
        (format!("{h}.{p}.c2ln\n"), m("bad base64url in signature")),
        (format!("{h}.{p}. c2ln"), m("bad base64url in signature")),
        (format!("{h}.{p}.c2l\tn"), m("bad base64url in signature")),
        (format!("{h} .{p}.c2ln"), m("bad base64url in header")),
        (format!("{h}.{p}.A"), m("bad base64url in signature")),
        (format!("{h}.{p}.AB"), m("bad base64url in signature")),
        (format!("{h}.{p}.AAB"), m("bad base64url in signature")),
        (format!("{h}.{p}.c2l%"), m("bad base64url in signature")),
        (
            format!("{h}.{p}.c2l\u{e9}"),
            m("bad base64url in signature"),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_all(text.as_bytes()).unwrap_err(),
            expected,
            "{text:?}"
        );
    }
    let canonical = format!("{h}.{p}.AA");
    assert_eq!(*parse(canonical.as_bytes()).unwrap().signature, [0]);
    assert_eq!(
        *parse(format!("{h}.{p}.AAA").as_bytes()).unwrap().signature,
        [0, 0]
    );
}

/// Signatures of every length around the stack buffer's read back as decoded, and a bad
/// encoding is refused on either side of it.
#[test]
fn signatures_of_any_length() {
    let (h, p) = (b64(br#"{"alg":"HS256"}"#), b64(CLAIMS.as_bytes()));
    for len in 1..=300 {
        let sig: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let text = format!("{h}.{p}.{}", b64(&sig));
        assert_eq!(*parse(text.as_bytes()).unwrap().signature, *sig, "{len}");
        let bad = format!("{text}=");
        assert_eq!(
            parse(bad.as_bytes()).err(),
            Some(VerifyError::Malformed("bad base64url in signature")),
            "{len}"
        );
    }
}

#[test]
fn rejects_bad_headers() {
    let m = VerifyError::Malformed;
    let long_kid = format!(
        r#"{{"alg":"HS256","kid":"{}"}}"#,
        "k".repeat(MAX_KID_LEN + 1)
    );
    let deep = format!(
        r#"{{"alg":"HS256","x":{}1{}}}"#,
        "[".repeat(8),
        "]".repeat(8)
    );
    let wide = format!(
        r#"{{"alg":"HS256",{}}}"#,
        (0..64)
            .map(|i| format!(r#""h{i}":0"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: Vec<(&str, VerifyError)> = vec![
        (r#"{"alg":"none"}"#, VerifyError::AlgNone),
        (r#"{"alg":"None"}"#, VerifyError::AlgNone),
        (r#"{"alg":"NONE"}"#, VerifyError::AlgNone),
        (r#"{"alg":"nOnE"}"#, VerifyError::AlgNone),
        (r#"{"alg":"n\u006fne"}"#, VerifyError::AlgNone),
        (r#"{"alg":"none ","kid":"x"}"#, VerifyError::UnsupportedAlg),
        (r#"{"alg":"hs256"}"#, VerifyError::UnsupportedAlg),
        (r#"{"alg":"ES256K"}"#, VerifyError::UnsupportedAlg),
        (r#"{"alg":"RSA-OAEP"}"#, VerifyError::UnsupportedAlg),
        (r#"{"alg":""}"#, VerifyError::UnsupportedAlg),
        (r#"{"typ":"JWT"}"#, m("header has no alg")),
        (r#"{"alg":null}"#, m("alg is not a string")),
        (r#"{"alg":256}"#, m("alg is not a string")),
        (r#"{"alg":["HS256"]}"#, m("alg is not a string")),
        (
            r#"{"alg":"HS256","alg":"none"}"#,
            m("duplicate member in header"),
        ),
        (
            r#"{"alg":"HS256","x":{"a":1,"a":2}}"#,
            m("duplicate member in header"),
        ),
        (
            r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            VerifyError::CritUnsupported,
        ),
        (r#"{"alg":"HS256","crit":[]}"#, VerifyError::CritUnsupported),
        (
            r#"{"alg":"RS256","jku":"https://evil"}"#,
            VerifyError::KeyReferenceHeader("jku"),
        ),
        (
            r#"{"alg":"RS256","x5u":"https://evil"}"#,
            VerifyError::KeyReferenceHeader("x5u"),
        ),
        (
            r#"{"alg":"RS256","jwk":{"kty":"oct"}}"#,
            VerifyError::KeyReferenceHeader("jwk"),
        ),
        (r#"{"alg":"HS256","kid":7}"#, m("kid is not a string")),
        (r#"{"alg":"HS256","kid":null}"#, m("kid is not a string")),
        (long_kid.as_str(), m("kid is too long")),
        (deep.as_str(), m("header is nested too deeply")),
        (wide.as_str(), m("header has too many members")),
        (r#"["alg","HS256"]"#, m("header is not a json object")),
        (r#""HS256""#, m("header is not a json object")),
        (r#"{"alg":"HS256""#, m("header is not valid json")),
        ("{\"alg\":\"HS256\"}\u{0}", m("header is not valid json")),
    ];
    for (header, expected) in cases {
        let text = jws(header, CLAIMS);
        assert_eq!(parse(text.as_bytes()).unwrap_err(), expected, "{header}");
    }
    let raw = format!(
        "{}.{}.c2ln",
        b64(b"{\"alg\":\"HS\xff\"}"),
        b64(CLAIMS.as_bytes())
    );
    assert_eq!(
        parse(raw.as_bytes()).unwrap_err(),
        m("header is not valid json")
    );
}

#[test]
fn rejects_bad_payloads() {
    let m = VerifyError::Malformed;
    let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(16), "]".repeat(16));
    let wide = format!("[{}]", vec!["0"; 1025].join(","));
    let wide = format!(r#"{{"x":{wide}}}"#);
    let cases: Vec<(&[u8], VerifyError)> = vec![
        (b"[]", m("payload is not a json object")),
        (b"\"sub\"", m("payload is not a json object")),
        (b"42", m("payload is not a json object")),
        (
            b"{\"exp\":1,\"exp\":99999999999}",
            m("duplicate member in payload"),
        ),
        (
            b"{\"a\":[{\"b\":1,\"b\":1}]}",
            m("duplicate member in payload"),
        ),
        (
            br#"{"sub":{"$serde_json::private::Number":"1"}}"#,
            m("reserved member name in payload"),
        ),
        (b"{\"sub\":\"a\"", m("payload is not valid json")),
        (b"{\"sub\":\"\xff\"}", m("payload is not utf-8")),
        (b"\xfe\xff", m("payload is not utf-8")),
        (deep.as_bytes(), m("payload is nested too deeply")),
        (wide.as_bytes(), m("payload has too many members")),
    ];
    for (payload, expected) in cases {
        let text = format!("{}.{}.c2ln", b64(HS.as_bytes()), b64(payload));
        // The payload is read only when asked for, after the signature check.
        assert!(parse(text.as_bytes()).is_ok());
        assert_eq!(
            parse_all(text.as_bytes()).unwrap_err(),
            expected,
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn counts_dots() {
    for len in 0..40 {
        for at in 0..len {
            let mut t = vec![b'a'; len];
            t[at] = b'.';
            t[len - 1 - at / 2] = b'.';
            let want = t.iter().filter(|&&b| b == b'.').count();
            assert_eq!(dots(&t), want, "{len} {at}");
            t.iter_mut().for_each(|b| *b ^= 0x80);
            assert_eq!(dots(&t), 0);
        }
    }
    assert_eq!(dots(&[b'.'; 33]), 33);
    for len in 1..40 {
        for at in 0..len {
            let mut t = vec![b'a'; len];
            t[at] = b'.';
            if at + 3 < len {
                t[at + 3] = b'.';
            }
            assert_eq!(find_dot(&t), Some(at), "{len} {at}");
        }
        assert_eq!(find_dot(&vec![b'a'; len]), None);
    }
    assert_eq!(dots(b"\x2e\xae\x2f\x2d.\x00\xff\xd1"), 2);
}

#[test]
fn header_errors_come_before_payload_and_signature() {
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"not json"));
    assert_eq!(parse(none.as_bytes()).unwrap_err(), VerifyError::AlgNone);
}
