//! Tests for auth_jwt: attacks on the token format, the algorithms and the keys.
//!
//! Every case must end in a 401 with `error="invalid_token"` (never a 5xx, never the
//! upstream), one `[info]` denial line with the reason, and no piece of the token in the log.

use std::io::Read as _;
use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;

use crate::harness::mint::{b64_decode, ecdsa_raw_to_der, Hash};
use crate::harness::{b64, keys, now, Failures, Jwt, Nginx, Signer};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        large_client_header_buffers 4 64k;

        location / {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            auth_jwt_key_file {{keys}}/enc.json;
            proxy_pass {{upstream}};
        }
        location /public/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/public.json;
            proxy_pass {{upstream}};
        }
        location /pem/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/rsa.pem;
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

/// One attack: the token, where it is sent, and the reason the denial line must give
/// ("" when the contract leaves the wording open).
struct Case {
    name: String,
    path: &'static str,
    token: String,
    reason: &'static str,
}

fn case(name: impl Into<String>, token: impl Into<String>, reason: &'static str) -> Case {
    Case { name: name.into(), path: "/", token: token.into(), reason }
}

fn at(path: &'static str, name: impl Into<String>, token: impl Into<String>, reason: &'static str) -> Case {
    Case { name: name.into(), path, token: token.into(), reason }
}

/// Starts NGINX, checks every case, reports all failures together.
fn run(cases: Vec<Case>) -> Nginx {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for c in &cases {
        f.check(&c.name, nginx.check_rejected(c.path, "api", &c.token, "invalid", c.reason));
    }
    f.assert();
    nginx
}

/// A token with its signature segment replaced by `sig`.
fn with_sig(jwt: &Jwt, sig: &[u8]) -> String {
    let [h, p, _] = jwt.segments();
    format!("{h}.{p}.{}", b64(sig))
}

/// The decoded signature of a freshly minted token.
fn sig_of(jwt: &Jwt) -> Vec<u8> {
    b64_decode(&jwt.segments()[2])
}

#[test]
fn alg_none_in_any_spelling() {
    let mut cases = Vec::new();
    for spelling in ["none", "None", "NONE", "nOnE"] {
        cases.push(case(format!("{spelling} unsigned"), Jwt::new("RS256").alg(spelling).unsigned().encode(), "algorithm none is not allowed"));
        cases.push(case(format!("{spelling} with signature"), Jwt::new("RS256").alg(spelling).encode(), "algorithm none is not allowed"));
        cases.push(case(
            format!("{spelling} without kid"),
            Jwt::new("HS256").alg(spelling).no_kid().unsigned().encode(),
            "algorithm none is not allowed",
        ));
    }
    cases.push(case("none at a PEM key", Jwt::new("RS256").alg("none").no_kid().unsigned().encode(), "algorithm none is not allowed"));
    cases.push(case("none with space", Jwt::new("RS256").alg("none ").unsigned().encode(), ""));
    cases.push(case("empty alg", Jwt::new("RS256").alg("").unsigned().encode(), ""));
    run(cases).finish();
}

#[test]
fn hmac_signed_with_the_public_key() {
    let k = keys();
    let jwk_text = serde_json::to_string(&k.rsa.jwk()).unwrap();
    let n = k.rsa.jwk()["n"].as_str().unwrap().to_owned();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("spki pem", k.rsa.spki_pem.clone().into_bytes()),
        ("pkcs1 pem", k.rsa.pkcs1_pem.clone().into_bytes()),
        ("spki pem trimmed", k.rsa.spki_pem.trim().as_bytes().to_vec()),
        ("spki der", k.rsa.spki_der.clone()),
        ("jwk json", jwk_text.into_bytes()),
        ("modulus text", n.into_bytes()),
    ];
    let mut cases = Vec::new();
    for (what, secret) in &secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            let jwt = Jwt::new(alg).hmac_secret(secret);
            cases.push(case(format!("{alg} {what} kid rsa-1"), jwt.clone().kid("rsa-1").encode(), "key type does not fit algorithm"));
            cases.push(case(format!("{alg} {what} no kid"), jwt.clone().no_kid().encode(), "signature verification failed"));
            cases.push(at("/public/", format!("{alg} {what} no kid, public keys"), jwt.clone().no_kid().encode(), "no key for algorithm"));
            cases.push(at("/pem/", format!("{alg} {what} no kid, pem"), jwt.no_kid().encode(), "no key for algorithm"));
        }
    }
    let ec_pem = Jwt::new("HS256").hmac_secret(k.p256.spki_pem.as_bytes());
    cases.push(case("HS256 with EC pem, kid ec256-1", ec_pem.kid("ec256-1").encode(), "key type does not fit algorithm"));
    let ed = Jwt::new("HS256").hmac_secret(k.ed.x);
    cases.push(case("HS256 with Ed25519 x, kid ed-1", ed.kid("ed-1").encode(), "key type does not fit algorithm"));
    run(cases).finish();
}

#[test]
fn ecdsa_signatures_out_of_range_or_in_der() {
    let k = keys();
    let mut cases = Vec::new();
    for key in [&k.p256, &k.p384, &k.p521] {
        let alg = key.alg();
        let jwt = Jwt::new(alg);
        let sig = sig_of(&jwt);
        let size = key.size();
        let (r, s) = sig.split_at(size);
        let n = key.order();
        let zero = vec![0u8; size];
        let ff = vec![0xffu8; size];
        let cat = |a: &[u8], b: &[u8]| [a, b].concat();
        let sigs: Vec<(&str, Vec<u8>)> = vec![
            ("r=s=0", cat(&zero, &zero)),
            ("r=0", cat(&zero, s)),
            ("s=0", cat(r, &zero)),
            ("r=n", cat(&n, s)),
            ("s=n", cat(r, &n)),
            ("r=s=n", cat(&n, &n)),
            ("r=s=ff..", cat(&ff, &ff)),
            ("der", ecdsa_raw_to_der(&sig)),
            ("one byte more", cat(&sig, &[0])),
            ("leading zero", cat(&[0], &sig)),
            ("one byte less", sig[..sig.len() - 1].to_vec()),
            ("r only", r.to_vec()),
            ("twice", cat(&sig, &sig)),
            ("one bit flipped", {
                let mut v = sig.clone();
                v[size / 2] ^= 1;
                v
            }),
        ];
        for (what, bad) in sigs {
            cases.push(case(format!("{alg} {what}"), with_sig(&jwt, &bad), "signature verification failed"));
        }
        cases.push(case(format!("{alg} der via minting"), jwt.clone().der_signature().encode(), "signature verification failed"));
    }
    run(cases).finish();
}

#[test]
fn signatures_of_the_wrong_length() {
    let mut cases = Vec::new();
    for alg in ["RS256", "PS256", "HS256", "HS512", "EdDSA"] {
        let jwt = Jwt::new(alg);
        let sig = sig_of(&jwt);
        let half = sig.len() / 2;
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", sig[..sig.len() - 1].to_vec()),
            ("half", sig[..half].to_vec()),
            ("extended", [sig.as_slice(), &[0]].concat()),
            ("leading zero", [&[0], sig.as_slice()].concat()),
            ("one byte", vec![sig[0]]),
            ("zeros", vec![0; sig.len()]),
        ];
        for (what, bad) in variants {
            cases.push(case(format!("{alg} {what}"), with_sig(&jwt, &bad), "signature verification failed"));
        }
        cases.push(case(format!("{alg} empty"), jwt.clone().unsigned().encode(), ""));
    }
    run(cases).finish();
}

#[test]
fn crit_and_key_reference_headers() {
    let k = keys();
    let attacker = k.rsa_other.jwk();
    let spy = TcpListener::bind("127.0.0.1:0").unwrap();
    spy.set_nonblocking(true).unwrap();
    let spy_url = format!("http://127.0.0.1:{}/jwks.json", spy.local_addr().unwrap().port());
    let forged = || Jwt::new("RS256").rsa_key(&k.rsa_other);
    let cases = vec![
        case("crit exp", Jwt::new("RS256").header("crit", json!(["exp"])).header("exp", json!(1)).encode(), "unsupported critical header"),
        case("crit b64", Jwt::new("RS256").header("crit", json!(["b64"])).header("b64", json!(false)).encode(), "unsupported critical header"),
        case("crit empty", Jwt::new("RS256").header("crit", json!([])).encode(), "unsupported critical header"),
        case("crit string", Jwt::new("ES256").header("crit", json!("x")).encode(), ""),
        case("jku, attacker key", forged().header("jku", json!(spy_url)).encode(), "header jku is not accepted"),
        case("jku, good key", Jwt::new("RS256").header("jku", json!(spy_url)).encode(), "header jku is not accepted"),
        case("x5u", forged().header("x5u", json!(spy_url)).encode(), "header x5u is not accepted"),
        case("jwk embedded, no kid", forged().no_kid().header("jwk", attacker.clone()).encode(), "header jwk is not accepted"),
        case("jwk embedded, kid", forged().header("jwk", attacker).encode(), "header jwk is not accepted"),
        case("x5c, attacker key", forged().no_kid().header("x5c", json!([b64(&k.rsa_other.spki_der)])).encode(), ""),
    ];
    let nginx = run(cases);
    // The module never fetched anything.
    std::thread::sleep(Duration::from_millis(100));
    match spy.accept() {
        Ok((mut conn, _)) => {
            let mut buf = [0u8; 512];
            let n = conn.read(&mut buf).unwrap_or(0);
            panic!("the module connected to the jku/x5u URL: {:?}", String::from_utf8_lossy(&buf[..n]));
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
    nginx.finish();
}

#[test]
fn kid_selects_exactly_one_key() {
    let k = keys();
    let mut cases = Vec::new();
    // Validly signed by rsa-1, but the kid names no published signing key.
    for kid in ["../../etc/passwd", "/etc/passwd", "..%2f..%2fetc%2fpasswd", "rsa-1/../rsa-1", "rsa-1\u{0}", "rsa-1 ", " rsa-1", "RSA-1", "rsa", "*"] {
        cases.push(case(format!("kid {kid:?}"), Jwt::new("RS256").kid(kid).encode(), "no key matches kid"));
    }
    // The kid names a key of a type that does not fit the algorithm.
    let mismatches = [
        ("ES256", "rsa-1", Jwt::new("ES256")),
        ("RS256", "ec256-1", Jwt::new("RS256")),
        ("RS256", "hs256", Jwt::new("RS256")),
        ("PS256", "ed-1", Jwt::new("PS256")),
        ("HS256", "ed-1", Jwt::new("HS256")),
        ("HS256", "rsa-1", Jwt::new("HS256")),
        ("ES384", "ec256-1", Jwt::new("ES384")),
        ("ES256", "ec521-1", Jwt::new("ES256")),
        ("EdDSA", "rsa-1", Jwt::new("EdDSA")),
        ("ES512", "ed-1", Jwt::new("ES512")),
    ];
    for (alg, kid, jwt) in mismatches {
        cases.push(case(format!("{alg} with kid {kid}"), jwt.kid(kid).encode(), "key type does not fit algorithm"));
    }
    // A JWKS key marked "use":"enc" never verifies, even with the right key material.
    cases.push(case("use=enc key", Jwt::new("RS256").kid("rsa-enc").encode(), ""));
    // Unpublished key under its own kid.
    cases.push(case("unknown kid", Jwt::new("RS256").rsa_key(&k.rsa_other).encode(), "no key matches kid"));
    for (what, kid) in [("number", json!(1)), ("null", json!(null)), ("object", json!({})), ("array", json!(["rsa-1"]))] {
        cases.push(case(format!("kid {what}"), Jwt::new("RS256").header("kid", kid).encode(), ""));
    }
    run(cases).finish();
}

#[test]
fn kid_cannot_inject_into_the_log() {
    let nginx = Nginx::http(CONF).start();
    let mark = nginx.log_mark();
    let kids = [
        "a\"b",
        "a\", alg=\"RS256",
        "x\r\nINJECTED-LINE [warn] 1#1: forged",
        "x\nINJECTED-LINE",
        "x\rINJECTED-LINE",
        "esc\u{1b}[31mred",
        "tab\there",
        "nul\u{0}byte",
        "\u{2028}line separator",
    ];
    let mut f = Failures::new();
    for kid in kids {
        let token = Jwt::new("RS256").kid(kid).encode();
        f.check(kid, nginx.check_rejected("/", "api", &token, "invalid", "no key matches kid"));
    }
    let long = "k".repeat(10_000);
    f.check("long kid", nginx.check_rejected("/", "api", &Jwt::new("RS256").kid(&long).encode(), "invalid", ""));
    f.assert();
    let log = nginx.log_since(mark);
    assert!(!log.contains('\r'), "raw CR in the error log:\n{log}");
    assert!(!log.contains('\u{1b}'), "raw ESC in the error log:\n{log}");
    assert!(!log.contains('\0'), "raw NUL in the error log");
    for line in log.lines() {
        assert!(!line.starts_with("INJECTED"), "log injection: {line:?}");
        assert!(line.len() < 4096, "unbounded log line ({} bytes)", line.len());
        assert!(!line.contains(&long), "the 10k kid was logged");
    }
    nginx.finish();
}

#[test]
fn tampered_tokens() {
    let mut cases = Vec::new();
    for alg in ["RS256", "PS384", "ES256", "ES512", "EdDSA", "HS256"] {
        let jwt = Jwt::new(alg);
        let [h, p, s] = jwt.segments();
        let admin = b64(serde_json::to_vec(&json!({"sub": "admin", "exp": now() + 600})).unwrap());
        let header_plus = jwt.clone().header("x", json!(1)).segments()[0].clone();
        let other = Jwt::new(alg).claim("sub", json!("admin")).segments();
        cases.push(case(format!("{alg} payload replaced"), format!("{h}.{admin}.{s}"), "signature verification failed"));
        cases.push(case(format!("{alg} header replaced"), format!("{header_plus}.{p}.{s}"), "signature verification failed"));
        cases.push(case(format!("{alg} signature of another token"), format!("{h}.{p}.{}", other[2]), "signature verification failed"));
        cases.push(case(format!("{alg} payload of another token"), format!("{h}.{}.{s}", other[1]), "signature verification failed"));
    }
    run(cases).finish();
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
    cases.push(case("standard alphabet signature", format!("{h}.{p}.{}", std_alphabet(&s)), ""));
    cases.push(case("padded signature", format!("{h}.{p}.{}", pad(&s)), ""));
    cases.push(case("padded header", format!("{}.{p}.{s}", pad(&h)), ""));
    cases.push(case("padded payload", format!("{h}.{}.{s}", pad(&p)), ""));
    cases.push(case("extra padding", format!("{h}.{p}.{s}=="), ""));
    cases.push(case("space in payload", format!("{h}.{} {}.{s}", &p[..5], &p[5..]), ""));
    cases.push(case("tab in signature", format!("{h}.{p}.{}\t{}", &s[..5], &s[5..]), ""));
    cases.push(case("percent-encoded", format!("{h}.{p}.{}%3D", s), ""));
    cases.push(case("non-ascii", format!("{h}.{p}.{}é", s), ""));
    cases.push(case("star", format!("{h}.{p}.*"), ""));
    if let Some(nc) = noncanonical(&s) {
        cases.push(case("non-canonical signature bits", format!("{h}.{p}.{nc}"), ""));
    }
    if let Some(nc) = noncanonical(&p) {
        cases.push(case("non-canonical payload bits", format!("{h}.{nc}.{s}"), ""));
    }
    if let Some(nc) = noncanonical(&h) {
        cases.push(case("non-canonical header bits", format!("{nc}.{p}.{s}"), ""));
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
        case("five segments", format!("{h}.{p}.{s}.{p}.{s}"), "encrypted tokens are not supported"),
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
        ("array of header", br#"[{"alg":"RS256","kid":"rsa-1"}]"#.to_vec()),
        ("string", b"\"RS256\"".to_vec()),
        ("number", b"1".to_vec()),
        ("null", b"null".to_vec()),
        ("true", b"true".to_vec()),
        ("empty", b"".to_vec()),
        ("truncated", br#"{"alg":"RS256","kid":"rsa-1""#.to_vec()),
        ("not utf-8", b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"x\":\"\xff\xfe\"}".to_vec()),
        ("bom", [b"\xef\xbb\xbf".as_slice(), good_header.as_bytes()].concat()),
        ("trailing text", format!("{good_header} x").into_bytes()),
        ("two objects", format!(r#"{good_header}{{"alg":"none"}}"#).into_bytes()),
        ("single quotes", b"{'alg':'RS256','kid':'rsa-1'}".to_vec()),
        ("comment", br#"{"alg":"RS256",/* c */"kid":"rsa-1"}"#.to_vec()),
        ("trailing comma", br#"{"alg":"RS256","kid":"rsa-1",}"#.to_vec()),
    ];
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("array", format!("[{good_payload}]").into_bytes()),
        ("string", format!("{:?}", good_payload).into_bytes()),
        ("number", exp.to_string().into_bytes()),
        ("null", b"null".to_vec()),
        ("true", b"true".to_vec()),
        ("empty", b"".to_vec()),
        ("truncated", good_payload[..good_payload.len() - 1].as_bytes().to_vec()),
        ("not utf-8", [format!(r#"{{"exp":{exp},"sub":""#).as_bytes(), b"\xff\xfe\"}"].concat()),
        ("bom", [b"\xef\xbb\xbf".as_slice(), good_payload.as_bytes()].concat()),
        ("trailing text", format!("{good_payload} x").into_bytes()),
        ("two objects", format!(r#"{good_payload}{{"sub":"admin"}}"#).into_bytes()),
        ("single quotes", format!("{{'sub':'alice','exp':{exp}}}").into_bytes()),
        ("comment", format!(r#"{{"sub":"alice",/* c */"exp":{exp}}}"#).into_bytes()),
        ("trailing comma", format!(r#"{{"sub":"alice","exp":{exp},}}"#).into_bytes()),
        ("lone surrogate", format!(r#"{{"sub":"\ud800","exp":{exp}}}"#).into_bytes()),
    ];
    let mut cases = Vec::new();
    for (what, bytes) in headers {
        cases.push(case(format!("header {what}"), Jwt::new("RS256").raw_header(bytes).raw_payload(&good_payload).encode(), ""));
    }
    for (what, bytes) in payloads {
        cases.push(case(format!("payload {what}"), Jwt::new("RS256").raw_header(good_header).raw_payload(bytes).encode(), ""));
    }
    cases.push(case("alg number", Jwt::new("RS256").header("alg", json!(256)).encode(), ""));
    cases.push(case("alg null", Jwt::new("RS256").header("alg", json!(null)).encode(), ""));
    cases.push(case("alg array", Jwt::new("RS256").header("alg", json!(["RS256"])).encode(), ""));
    cases.push(case("no alg", Jwt::new("RS256").remove_header("alg").encode(), ""));
    run(cases).finish();
}

#[test]
fn duplicate_members() {
    let exp = now() + 600;
    let cases = vec![
        case("header alg twice, none last", Jwt::new("RS256").raw_header(r#"{"alg":"RS256","kid":"rsa-1","alg":"none"}"#).encode(), ""),
        case("header alg twice, none first", Jwt::new("RS256").raw_header(r#"{"alg":"none","kid":"rsa-1","alg":"RS256"}"#).encode(), ""),
        case("header kid twice", Jwt::new("RS256").raw_header(r#"{"alg":"RS256","kid":"hs256","kid":"rsa-1"}"#).encode(), ""),
        case(
            "payload sub twice",
            Jwt::new("RS256").raw_payload(format!(r#"{{"sub":"alice","exp":{exp},"sub":"admin"}}"#)).encode(),
            "",
        ),
        case(
            "payload exp twice",
            Jwt::new("RS256").raw_payload(format!(r#"{{"sub":"alice","exp":1,"exp":{exp}}}"#)).encode(),
            "",
        ),
        case(
            "nested duplicate",
            Jwt::new("RS256").raw_payload(format!(r#"{{"sub":"a","exp":{exp},"org":{{"id":"a","id":"b"}}}}"#)).encode(),
            "",
        ),
        case(
            "escaped duplicate",
            Jwt::new("RS256").raw_payload(format!(r#"{{"sub":"alice","exp":{exp},"s\u0075b":"admin"}}"#)).encode(),
            "",
        ),
    ];
    run(cases).finish();
}

#[test]
fn deep_nesting_and_size_limits() {
    let exp = now() + 600;
    let arrays = format!(r#"{{"sub":"a","exp":{exp},"x":{}{}}}"#, "[".repeat(4000), "]".repeat(4000));
    let objects = format!(r#"{{"sub":"a","exp":{exp},"x":{}1{}}}"#, r#"{"a":"#.repeat(2000), "}".repeat(2000));
    let header = format!(r#"{{"alg":"RS256","kid":"rsa-1","x":{}{}}}"#, "[".repeat(1000), "]".repeat(1000));
    let big_claim = "x".repeat(20_000);
    let huge_claim = "y".repeat(44_000);
    let mid_claim = "z".repeat(1500);
    let cases = vec![
        case("4000 nested arrays", Jwt::new("RS256").raw_payload(&arrays).encode(), ""),
        case("2000 nested objects", Jwt::new("ES256").raw_payload(&objects).encode(), ""),
        case("1000 nested arrays in header", Jwt::new("RS256").raw_header(&header).encode(), ""),
        case("token over 16k", Jwt::new("RS256").claim("pad", json!(big_claim)).encode(), "token too large"),
        case("token near 60k", Jwt::new("EdDSA").claim("pad", json!(huge_claim)).encode(), "token too large"),
        at("/small/", "2k token over max_size 1k", Jwt::new("RS256").claim("pad", json!(mid_claim)).encode(), "token too large"),
    ];
    let nginx = run(cases);
    // Below the limit, a large token is fine.
    let ok = Jwt::new("RS256").claim("pad", json!("w".repeat(9000))).encode();
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
        cases.push(case(format!("exp {what}"), Jwt::new("RS256").claim("exp", value.clone()).encode(), ""));
        cases.push(case(format!("nbf {what}"), Jwt::new("RS256").claim("nbf", value).encode(), ""));
    }
    for (what, raw) in [
        ("exp 1e999", r#"{"sub":"a","exp":1e999}"#.to_owned()),
        ("exp -1e999", r#"{"sub":"a","exp":-1e999}"#.to_owned()),
        ("exp NaN", r#"{"sub":"a","exp":NaN}"#.to_owned()),
        ("exp Infinity", r#"{"sub":"a","exp":Infinity}"#.to_owned()),
        ("exp hex", r#"{"sub":"a","exp":0x7fffffff}"#.to_owned()),
        ("nbf 1e999", format!(r#"{{"sub":"a","exp":{exp},"nbf":1e999}}"#)),
        ("exp leading zero", format!(r#"{{"sub":"a","exp":0{exp}}}"#)),
        ("exp plus sign", format!(r#"{{"sub":"a","exp":+{exp}}}"#)),
    ] {
        cases.push(case(what, Jwt::new("RS256").raw_payload(raw).encode(), ""));
    }
    run(cases).finish();
}

#[test]
fn unsupported_algorithm_names() {
    let mut cases = Vec::new();
    for alg in ["RS1024", "HS1", "rs256", "Rs256", "ES256K", "Ed25519", "ED25519", "EdDSA ", "RSA-OAEP", "dir", "A128KW", "HS256\u{0}", "PS256 "] {
        cases.push(case(format!("alg {alg:?}"), Jwt::new("RS256").alg(alg).encode(), ""));
    }
    run(cases).finish();
}

/// Signed with a JOSE signer the header does not name: the signature must not verify.
#[test]
fn signer_does_not_match_alg() {
    let k = keys();
    let cases = vec![
        case("RS256 header, PS256 signature", Jwt::new("RS256").signer(Signer::RsaPss(Hash::Sha256, &k.rsa)).encode(), "signature verification failed"),
        case("PS256 header, RS256 signature", Jwt::new("PS256").signer(Signer::RsaPkcs1(Hash::Sha256, &k.rsa)).encode(), "signature verification failed"),
        case("RS384 header, RS256 signature", Jwt::new("RS384").signer(Signer::RsaPkcs1(Hash::Sha256, &k.rsa)).encode(), "signature verification failed"),
        case("HS512 header, HS256 signature", Jwt::new("HS512").kid("hs512").signer(Signer::Hmac(Hash::Sha256, k.hs512.secret.clone())).encode(), "signature verification failed"),
        case("PS256 salt 0", {
            let jwt = Jwt::new("PS256");
            let [h, p, _] = jwt.segments();
            let input = format!("{h}.{p}");
            use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
            let sk = rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(k.rsa.private.clone(), 0);
            let sig = sk.sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes()).to_vec();
            format!("{input}.{}", b64(sig))
        }, ""),
    ];
    run(cases).finish();
}
