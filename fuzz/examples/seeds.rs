//! Writes the committed seed corpus, `fuzz/seeds/<target>/`, from the fixed keys:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`. Seeds are small on purpose:
//! the fuzzer grows its own corpus (in `fuzz/corpus/`, not committed) from them.

use std::fs;
use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::x509::{X509Builder, X509NameBuilder};

use auth_jwt_core::jwt::alg::Alg;
use ngx_http_auth_jwt_module_fuzz::fixture::{self, b64, AUDIENCE, ISSUER, NOW};

/// RFC 7515 A.1 (HS256), A.2 (RS256), A.3 (ES256), A.4 (ES512) and RFC 8037 A.4 (Ed25519).
const RFC_TOKENS: [(&str, &str); 5] = [
    ("rfc7515-a1-hs256", "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
    ("rfc7515-a2-rs256", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"),
    ("rfc7515-a3-es256", "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"),
    ("rfc7515-a4-es512", "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn"),
    ("rfc8037-a4-eddsa", "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"),
];

/// RFC 7517 A.1: public keys (EC P-256 and RSA).
const RFC7517_A1: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"},{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}]}"#;

fn write(target: &str, name: &str, content: impl AsRef<[u8]>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir).expect("seed dir");
    fs::write(dir.join(name), content).expect("write seed");
}

fn main() {
    let fx = fixture::fixture();
    let payload = fixture::claims().to_string();

    // token: signed tokens for every algorithm, RFC vectors, and typical refusals.
    for (i, token) in fx.tokens.iter().enumerate() {
        write("token", &format!("signed-{i:02}"), token);
    }
    for (name, token) in RFC_TOKENS {
        write("token", name, token);
    }
    let h = |json: &str| b64(json.as_bytes());
    let p = b64(payload.as_bytes());
    for (name, token) in [
        ("alg-none", format!("{}.{p}.", h(r#"{"alg":"none"}"#))),
        (
            "unknown-kid",
            format!("{}.{p}.c2ln", h(r#"{"alg":"RS256","kid":"nope"}"#)),
        ),
        (
            "jku",
            format!("{}.{p}.c2ln", h(r#"{"alg":"RS256","jku":"https://x"}"#)),
        ),
        (
            "crit",
            format!("{}.{p}.c2ln", h(r#"{"alg":"ES256","crit":["b64"]}"#)),
        ),
        ("jwe", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".to_owned()),
        (
            "dup",
            format!("{}.{p}.c2ln", h(r#"{"alg":"HS256","alg":"none"}"#)),
        ),
    ] {
        write("token", name, token);
    }

    // token_signed: <alg byte><header>\0<payload>.
    for (i, alg) in Alg::ALL.into_iter().enumerate() {
        let header = format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, fx.kid_for(alg));
        let mut seed = vec![u8::try_from(i).expect("13 algorithms")];
        seed.extend(header.as_bytes());
        seed.push(0);
        seed.extend(payload.as_bytes());
        write("token_signed", &format!("{alg}"), seed);
    }
    let mut odd = vec![0u8];
    odd.extend(br#"{"alg":"HS256"}"#);
    odd.push(0);
    odd.extend(format!(r#"{{"exp":1e300,"nbf":-1.5,"iss":"{ISSUER}","aud":["{AUDIENCE}"],"x":"a\r\nb","n":[1,{{"o":null}}]}}"#).as_bytes());
    write("token_signed", "odd-claims", odd);

    // jwks: the fixture's own, RFC 7517's, single keys, and refusals.
    write("jwks", "fixture", &fx.jwks);
    write("jwks", "rfc7517-a1", RFC7517_A1);
    write(
        "jwks",
        "single-okp",
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    );
    write(
        "jwks",
        "oct-with-ops",
        r#"{"keys":[{"kty":"oct","k":"YSA2NC1ieXRlIEhTNTEyIHNlY3JldCwgYSA2NC1ieXRlIEhTNTEyIHNlY3JldCwgYSA2NC1ieXRlIHNlY3JldA","key_ops":["sign","verify"],"alg":"HS512"}]}"#,
    );
    write("jwks", "empty", r#"{"keys":[]}"#);
    write(
        "jwks",
        "bad-types",
        r#"{"keys":[{"kty":"RSA","n":7,"e":"AQAB"},{"kty":"EC","crv":"P-999"}]}"#,
    );

    // pem: public keys, a PKCS#1 RSA key, a certificate, EC parameters, a private key.
    let mut all = Vec::new();
    for (kid, pem) in fx.public_pems() {
        all.extend(&pem);
        write("pem", &format!("{kid}.pub"), pem);
    }
    write("pem", "all.pub", &all);
    let rsa = fx.private_key("rsa");
    let pkcs1 = rsa
        .rsa()
        .expect("rsa")
        .public_key_to_pem_pkcs1()
        .expect("pkcs1");
    write("pem", "rsa.pkcs1", pkcs1);
    write("pem", "certificate", certificate(fx.private_key("ec256")));
    write(
        "pem",
        "ec-params",
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
    );
    write(
        "pem",
        "private",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    );

    // discovery: <issuer>\n<document>.
    let doc = |issuer: &str, jwks: &str| {
        format!(
            r#"{{"issuer":"{issuer}","jwks_uri":"{jwks}","id_token_signing_alg_values_supported":["RS256"]}}"#
        )
    };
    write(
        "discovery",
        "ok",
        format!("{ISSUER}\n{}", doc(ISSUER, "https://idp.example/jwks")),
    );
    write(
        "discovery",
        "realm",
        format!(
            "https://idp.example/realms/a/\n{}",
            doc(
                "https://idp.example/realms/a/",
                "https://idp.example/realms/a/certs"
            )
        ),
    );
    write(
        "discovery",
        "other-issuer",
        format!(
            "{ISSUER}\n{}",
            doc("https://evil.example", "https://evil.example/jwks")
        ),
    );
    write(
        "discovery",
        "http-jwks",
        format!("{ISSUER}\n{}", doc(ISSUER, "http://idp.example/jwks")),
    );
    write(
        "discovery",
        "cache-control",
        "public, max-age=300, must-revalidate\n{}",
    );
    // Crashes found by fuzzing, replayed by every run (regression tests in fetch::policy).
    let mut nan_backoff = b"https".to_vec();
    nan_backoff.extend([0xff; 43]);
    write("discovery", "regress-nan-backoff", nan_backoff);
    write("discovery", "regress-empty-host", "https:////");

    // token: a payload segment that is not base64url, behind a good header: the payload is
    // decoded only after the signature check (found by fuzzing the oracle).
    let mut undecoded = format!("{}.eyJhdWQi", b64(br#"{"alg":"HS512"}"#)).into_bytes();
    undecoded.extend([0x81, 0xbe, 0x88]);
    undecoded.extend(b".pgJWIKnqWAP2QozIGMJ159QR2nBiSLzMTeCbL2");
    write("token", "regress-payload-undecoded", undecoded);

    // json: documents the strict parser sees.
    write("json", "claims", &payload);
    write("json", "jwks", &fx.jwks);
    write(
        "json",
        "numbers",
        r#"{"a":-0,"b":1e308,"c":18446744073709551615,"d":-9223372036854775808,"e":1.5e-400}"#,
    );
    write(
        "json",
        "escapes",
        r#"{"\u0061":"\ud83d\ude00","b":"\u0000\r\n","c":[{"d":{}}]}"#,
    );
    write("json", "nested", r#"{"a":[[[[[[[[[[1]]]]]]]]]]}"#);

    // conf_value: the arguments of one directive, one per line.
    for (name, args) in [
        ("auth_jwt", "api\ntoken=$cookie_auth"),
        ("auth_jwt_off", "off"),
        ("algorithms", "RS256\nES256\nEdDSA"),
        ("require", "$jwt_claim_admin\n$is_ok\nerror=403"),
        ("claim_set", "$jwt_org_id\norg\nid"),
        ("identity_header", "X-User-ID"),
        (
            "key_uri",
            "https://idp.example/jwks\nrefresh=1h30m\ntimeout=500ms\nmax_stale=2d",
        ),
        ("cache", "10000"),
        ("fail_mode", "open"),
        ("durations", "1w\n0\n99999999999999999999s\n1h1m1s1ms"),
    ] {
        write("conf_value", name, args);
    }
    println!("seeds written under {}/seeds", env!("CARGO_MANIFEST_DIR"));
}

/// A self-signed certificate for `key`.
fn certificate(key: &openssl::pkey::PKey<openssl::pkey::Private>) -> Vec<u8> {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "fuzz").expect("cn");
    let name = name.build();
    let mut b = X509Builder::new().expect("x509");
    b.set_version(2).expect("v3");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    let from = Asn1Time::from_unix(NOW - 86_400).expect("from");
    let until = Asn1Time::from_unix(NOW + 86_400).expect("until");
    b.set_not_before(&from).expect("from");
    b.set_not_after(&until).expect("until");
    b.sign(key, MessageDigest::sha256()).expect("sign");
    b.build().to_pem().expect("pem")
}
