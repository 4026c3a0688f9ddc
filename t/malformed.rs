//! Tests for auth_jwt: malformed tokens: base64, segments, JSON shapes, duplicates, size, claim types.
//!
//! Every case must end in a 401 with `error="invalid_token"` (never a 5xx, never the
//! upstream), one `[info]` denial line, and no piece of the token in the log.

use serde_json::json;

use crate::harness::expect::{at, case, Case};
use crate::harness::{now, Jwt, Nginx};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        large_client_header_buffers 4 64k;

        location / {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            proxy_pass {{upstream}};
        }
        location /small/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            auth_jwt_max_size 1k;
            proxy_pass {{upstream}};
        }
    }
"#;

/// Starts NGINX, checks every case, reports all failures together.
fn run(cases: Vec<Case>) -> Nginx {
    let nginx = Nginx::http(CONF).start();
    nginx.rejects_all("api", &cases);
    nginx
}

/// Changes the last character of a base64url segment so that its unused low bits are set:
/// lax decoders give the same bytes, strict ones refuse it.
fn noncanonical(segment: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let unused_bits = match segment.len() % 4 {
        2 => 4,
        3 => 2,
        _ => return None,
    };
    let last = *segment.as_bytes().last()?;
    let value = ALPHABET.iter().position(|&c| c == last)?;
    let changed = value | 1;
    debug_assert!(unused_bits > 0);
    if changed == value {
        return None;
    }
    let mut out = segment[..segment.len() - 1].to_owned();
    out.push(ALPHABET[changed] as char);
    Some(out)
}

#[test]
fn base64_that_is_not_strict_base64url() {
    let mut cases = Vec::new();
    // A token whose segments hold '-' or '_', so that the standard alphabet differs.
    let jwt = (0..50)
        .map(|i| Jwt::new("RS256").claim("n", json!(i)))
        .find(|j| {
            let [h, p, s] = j.segments();
            s.contains(['-', '_']) && s.len() % 4 != 0 && (h.len() % 4 != 0 || p.len() % 4 != 0)
        })
        .expect("a token with - or _ in its signature");
    let [h, p, s] = jwt.segments();
    let std_alphabet = |x: &str| x.replace('-', "+").replace('_', "/");
    let pad = |x: &str| format!("{x}{}", "=".repeat((4 - x.len() % 4) % 4));
    cases.push(case(
        "standard alphabet signature",
        format!("{h}.{p}.{}", std_alphabet(&s)),
        "",
    ));
    cases.push(case("padded signature", format!("{h}.{p}.{}", pad(&s)), ""));
    cases.push(case("padded header", format!("{}.{p}.{s}", pad(&h)), ""));
    cases.push(case("padded payload", format!("{h}.{}.{s}", pad(&p)), ""));
    cases.push(case("extra padding", format!("{h}.{p}.{s}=="), ""));
    cases.push(case(
        "space in payload",
        format!("{h}.{} {}.{s}", &p[..5], &p[5..]),
        "",
    ));
    cases.push(case(
        "tab in signature",
        format!("{h}.{p}.{}\t{}", &s[..5], &s[5..]),
        "",
    ));
    cases.push(case("percent-encoded", format!("{h}.{p}.{}%3D", s), ""));
    cases.push(case("non-ascii", format!("{h}.{p}.{}é", s), ""));
    cases.push(case("star", format!("{h}.{p}.*"), ""));
    if let Some(nc) = noncanonical(&s) {
        cases.push(case(
            "non-canonical signature bits",
            format!("{h}.{p}.{nc}"),
            "",
        ));
    }
    if let Some(nc) = noncanonical(&p) {
        cases.push(case(
            "non-canonical payload bits",
            format!("{h}.{nc}.{s}"),
            "",
        ));
    }
    if let Some(nc) = noncanonical(&h) {
        cases.push(case(
            "non-canonical header bits",
            format!("{nc}.{p}.{s}"),
            "",
        ));
    }
    run(cases).finish();
}

#[test]
fn wrong_number_of_segments() {
    let jwt = Jwt::new("ES256");
    let [h, p, s] = jwt.segments();
    let t = jwt.encode();
    let cases = vec![
        case("one segment", "eyJhbGciOiJSUzI1NiJ9", ""),
        case("two segments", format!("{h}.{p}"), ""),
        case("two segments, trailing dot", format!("{h}.{p}."), ""),
        case("four segments", format!("{t}.{s}"), ""),
        case("trailing dot", format!("{t}."), ""),
        case("leading dot", format!(".{t}"), ""),
        case(
            "five segments",
            format!("{h}.{p}.{s}.{p}.{s}"),
            "encrypted tokens are not supported",
        ),
        case("six segments", format!("{t}.{t}"), ""),
        case("dots only", "..", ""),
        case("four dots", "....", ""),
        case("empty header", format!(".{p}.{s}"), ""),
        case("empty payload", format!("{h}..{s}"), ""),
        case("dots only, three", "...", ""),
    ];
    run(cases).finish();
}

#[test]
fn json_that_is_not_an_object() {
    let exp = now() + 600;
    let good_header = r#"{"alg":"RS256","kid":"rsa-1"}"#;
    let good_payload = format!(r#"{{"sub":"alice","exp":{exp}}}"#);
    let headers: Vec<(&str, Vec<u8>)> = vec![
        ("array", b"[]".to_vec()),
        (
            "array of header",
            br#"[{"alg":"RS256","kid":"rsa-1"}]"#.to_vec(),
        ),
        ("string", b"\"RS256\"".to_vec()),
        ("number", b"1".to_vec()),
        ("null", b"null".to_vec()),
        ("true", b"true".to_vec()),
        ("empty", b"".to_vec()),
        ("truncated", br#"{"alg":"RS256","kid":"rsa-1""#.to_vec()),
        (
            "not utf-8",
            b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"x\":\"\xff\xfe\"}".to_vec(),
        ),
        (
            "bom",
            [b"\xef\xbb\xbf".as_slice(), good_header.as_bytes()].concat(),
        ),
        ("trailing text", format!("{good_header} x").into_bytes()),
        (
            "two objects",
            format!(r#"{good_header}{{"alg":"none"}}"#).into_bytes(),
        ),
        ("single quotes", b"{'alg':'RS256','kid':'rsa-1'}".to_vec()),
        (
            "comment",
            br#"{"alg":"RS256",/* c */"kid":"rsa-1"}"#.to_vec(),
        ),
        (
            "trailing comma",
            br#"{"alg":"RS256","kid":"rsa-1",}"#.to_vec(),
        ),
    ];
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("array", format!("[{good_payload}]").into_bytes()),
        ("string", format!("{:?}", good_payload).into_bytes()),
        ("number", exp.to_string().into_bytes()),
        ("null", b"null".to_vec()),
        ("true", b"true".to_vec()),
        ("empty", b"".to_vec()),
        (
            "truncated",
            good_payload.as_bytes()[..good_payload.len() - 1].to_vec(),
        ),
        (
            "not utf-8",
            [
                format!(r#"{{"exp":{exp},"sub":""#).as_bytes(),
                b"\xff\xfe\"}",
            ]
            .concat(),
        ),
        (
            "bom",
            [b"\xef\xbb\xbf".as_slice(), good_payload.as_bytes()].concat(),
        ),
        ("trailing text", format!("{good_payload} x").into_bytes()),
        (
            "two objects",
            format!(r#"{good_payload}{{"sub":"admin"}}"#).into_bytes(),
        ),
        (
            "single quotes",
            format!("{{'sub':'alice','exp':{exp}}}").into_bytes(),
        ),
        (
            "comment",
            format!(r#"{{"sub":"alice",/* c */"exp":{exp}}}"#).into_bytes(),
        ),
        (
            "trailing comma",
            format!(r#"{{"sub":"alice","exp":{exp},}}"#).into_bytes(),
        ),
        (
            "lone surrogate",
            format!(r#"{{"sub":"\ud800","exp":{exp}}}"#).into_bytes(),
        ),
    ];
    let mut cases = Vec::new();
    for (what, bytes) in headers {
        cases.push(case(
            format!("header {what}"),
            Jwt::new("RS256")
                .raw_header(bytes)
                .raw_payload(&good_payload)
                .encode(),
            "",
        ));
    }
    for (what, bytes) in payloads {
        cases.push(case(
            format!("payload {what}"),
            Jwt::new("RS256")
                .raw_header(good_header)
                .raw_payload(bytes)
                .encode(),
            "",
        ));
    }
    cases.push(case(
        "alg number",
        Jwt::new("RS256").header("alg", json!(256)).encode(),
        "",
    ));
    cases.push(case(
        "alg null",
        Jwt::new("RS256").header("alg", json!(null)).encode(),
        "",
    ));
    cases.push(case(
        "alg array",
        Jwt::new("RS256").header("alg", json!(["RS256"])).encode(),
        "",
    ));
    cases.push(case(
        "no alg",
        Jwt::new("RS256").remove_header("alg").encode(),
        "",
    ));
    run(cases).finish();
}

#[test]
fn duplicate_members() {
    let exp = now() + 600;
    let cases = vec![
        case(
            "header alg twice, none last",
            Jwt::new("RS256")
                .raw_header(r#"{"alg":"RS256","kid":"rsa-1","alg":"none"}"#)
                .encode(),
            "",
        ),
        case(
            "header alg twice, none first",
            Jwt::new("RS256")
                .raw_header(r#"{"alg":"none","kid":"rsa-1","alg":"RS256"}"#)
                .encode(),
            "",
        ),
        case(
            "header kid twice",
            Jwt::new("RS256")
                .raw_header(r#"{"alg":"RS256","kid":"hs256","kid":"rsa-1"}"#)
                .encode(),
            "",
        ),
        case(
            "payload sub twice",
            Jwt::new("RS256")
                .raw_payload(format!(r#"{{"sub":"alice","exp":{exp},"sub":"admin"}}"#))
                .encode(),
            "",
        ),
        case(
            "payload exp twice",
            Jwt::new("RS256")
                .raw_payload(format!(r#"{{"sub":"alice","exp":1,"exp":{exp}}}"#))
                .encode(),
            "",
        ),
        case(
            "nested duplicate",
            Jwt::new("RS256")
                .raw_payload(format!(
                    r#"{{"sub":"a","exp":{exp},"org":{{"id":"a","id":"b"}}}}"#
                ))
                .encode(),
            "",
        ),
        case(
            "escaped duplicate",
            Jwt::new("RS256")
                .raw_payload(format!(
                    r#"{{"sub":"alice","exp":{exp},"s\u0075b":"admin"}}"#
                ))
                .encode(),
            "",
        ),
    ];
    run(cases).finish();
}

#[test]
fn deep_nesting_and_size_limits() {
    let exp = now() + 600;
    let arrays = format!(
        r#"{{"sub":"a","exp":{exp},"x":{}{}}}"#,
        "[".repeat(4000),
        "]".repeat(4000)
    );
    let objects = format!(
        r#"{{"sub":"a","exp":{exp},"x":{}1{}}}"#,
        r#"{"a":"#.repeat(2000),
        "}".repeat(2000)
    );
    let header = format!(
        r#"{{"alg":"RS256","kid":"rsa-1","x":{}{}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let big_claim = "x".repeat(20_000);
    let huge_claim = "y".repeat(44_000);
    let mid_claim = "z".repeat(1500);
    let cases = vec![
        case(
            "4000 nested arrays",
            Jwt::new("RS256").raw_payload(&arrays).encode(),
            "",
        ),
        case(
            "2000 nested objects",
            Jwt::new("ES256").raw_payload(&objects).encode(),
            "",
        ),
        case(
            "1000 nested arrays in header",
            Jwt::new("RS256").raw_header(&header).encode(),
            "",
        ),
        case(
            "token over 16k",
            Jwt::new("RS256").claim("pad", json!(big_claim)).encode(),
            "token too large",
        ),
        case(
            "token near 60k",
            Jwt::new("EdDSA").claim("pad", json!(huge_claim)).encode(),
            "token too large",
        ),
        at(
            "/small/",
            "2k token over max_size 1k",
            Jwt::new("RS256").claim("pad", json!(mid_claim)).encode(),
            "token too large",
        ),
    ];
    let nginx = run(cases);
    // Below the limit, a large token is fine.
    let ok = Jwt::new("RS256")
        .claim("pad", json!("w".repeat(9000)))
        .encode();
    nginx.check_accepted("/", &ok).unwrap();
    nginx.finish();
}

#[test]
fn claims_of_the_wrong_type() {
    let exp = now() + 600;
    let mut cases = Vec::new();
    for (what, value) in [
        ("string", json!(exp.to_string())),
        ("true", json!(true)),
        ("null", json!(null)),
        ("array", json!([exp])),
        ("object", json!({"v": exp})),
        ("empty string", json!("")),
    ] {
        cases.push(case(
            format!("exp {what}"),
            Jwt::new("RS256").claim("exp", value.clone()).encode(),
            "",
        ));
        cases.push(case(
            format!("nbf {what}"),
            Jwt::new("RS256").claim("nbf", value).encode(),
            "",
        ));
    }
    for (what, raw) in [
        ("exp 1e999", r#"{"sub":"a","exp":1e999}"#.to_owned()),
        ("exp -1e999", r#"{"sub":"a","exp":-1e999}"#.to_owned()),
        ("exp NaN", r#"{"sub":"a","exp":NaN}"#.to_owned()),
        ("exp Infinity", r#"{"sub":"a","exp":Infinity}"#.to_owned()),
        ("exp hex", r#"{"sub":"a","exp":0x7fffffff}"#.to_owned()),
        (
            "nbf 1e999",
            format!(r#"{{"sub":"a","exp":{exp},"nbf":1e999}}"#),
        ),
        ("exp leading zero", format!(r#"{{"sub":"a","exp":0{exp}}}"#)),
        ("exp plus sign", format!(r#"{{"sub":"a","exp":+{exp}}}"#)),
    ] {
        cases.push(case(what, Jwt::new("RS256").raw_payload(raw).encode(), ""));
    }
    run(cases).finish();
}
