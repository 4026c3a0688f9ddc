//! Tests for auth_jwt: configuration errors found by `nginx -t`, with file, line and reason.

use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::VerifyingKey;
use serde_json::json;

use crate::harness::check::ConfigCheck;
use crate::harness::keys::jwks;
use crate::harness::mint::b64;
use crate::harness::{keys, Failures, Nginx};

/// `HTTP` goes in `http { }`, `SERVER` in the server, `LOCATION` in `location /`.
const TEMPLATE: &str = r#"
    HTTP
    server {
        listen 127.0.0.1:{{port}};
        SERVER
        location / {
            proxy_pass {{upstream}};
            LOCATION
        }
    }
"#;

fn conf(http: &str, server: &str, location: &str) -> String {
    TEMPLATE
        .replace("HTTP", http)
        .replace("SERVER", server)
        .replace("LOCATION", location)
}

fn check_location(directives: &str) -> ConfigCheck {
    Nginx::http(&conf("", "", directives)).check()
}

/// A key file the module must refuse, with what the `[emerg]` line must say.
struct BadKeyFile {
    name: &'static str,
    content: String,
    parts: &'static [&'static str],
}

#[test]
fn bad_key_files_fail_with_file_line_and_reason() {
    let k = keys();
    let mut bad_point = k.p256.jwk();
    bad_point["y"] = bad_point["x"].clone();
    let mut short_x = k.p256.jwk();
    short_x["x"] = json!("AAAA");
    let mut bad_n = k.rsa.jwk();
    bad_n["n"] = json!("not+base64/url==");
    let mut no_k = k.hs256.jwk();
    no_k["k"] = json!("");
    let mut mismatched_alg = k.rsa.jwk();
    mismatched_alg["alg"] = json!("ES256");
    let mut short_k = k.hs256.jwk();
    short_k["k"] = json!(b64([7u8; 31]));
    let mut hs512_short_k = k.hs256.jwk();
    hs512_short_k["alg"] = json!("HS512");
    // Ed25519 points anyone can forge signatures for: the identity, and the order-4 point 0.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut identity_x = k.ed.jwk();
    identity_x["x"] = json!(b64(identity));
    let order4_pem = VerifyingKey::from_bytes(&[0; 32])
        .expect("ed25519-dalek decodes small-order points")
        .to_public_key_pem(Default::default())
        .expect("pem");
    // y = 2^255 - 1, above the field prime.
    let mut non_canonical_x = k.ed.jwk();
    non_canonical_x["x"] = json!(b64([[0xff; 31].as_slice(), &[0x7f]].concat()));
    let cases = [
        BadKeyFile {
            name: "empty.json",
            content: String::new(),
            parts: &[],
        },
        BadKeyFile {
            name: "garbage.json",
            content: "this is not a key\n".into(),
            parts: &[],
        },
        BadKeyFile {
            name: "truncated.json",
            content: r#"{"keys":[{"kty":"RSA","#.into(),
            parts: &[],
        },
        BadKeyFile {
            name: "not_object.json",
            content: "[1,2,3]".into(),
            parts: &[],
        },
        BadKeyFile {
            name: "bad_point.json",
            content: jwks(&[bad_point]),
            parts: &[],
        },
        BadKeyFile {
            name: "short_x.json",
            content: jwks(&[short_x]),
            parts: &[],
        },
        BadKeyFile {
            name: "bad_n.json",
            content: jwks(&[bad_n]),
            parts: &[],
        },
        BadKeyFile {
            name: "empty_k.json",
            content: jwks(&[no_k]),
            parts: &[],
        },
        BadKeyFile {
            name: "short_k.json",
            content: jwks(&[short_k]),
            parts: &["key 1", "hmac secret is shorter than 32 bytes"],
        },
        BadKeyFile {
            name: "hs512_short_k.json",
            content: jwks(&[hs512_short_k]),
            parts: &["hmac secret is shorter than its alg's hash output"],
        },
        BadKeyFile {
            name: "alg_mismatch.json",
            content: jwks(&[mismatched_alg]),
            parts: &[],
        },
        BadKeyFile {
            name: "weak_rsa.json",
            content: jwks(&[k.rsa_1024.jwk()]),
            parts: &[],
        },
        BadKeyFile {
            name: "weak_rsa.pem",
            content: k.rsa_1024.spki_pem.clone(),
            parts: &[],
        },
        BadKeyFile {
            name: "ed25519_identity.json",
            content: jwks(&[identity_x]),
            parts: &["ed25519 public key is a small-order point"],
        },
        BadKeyFile {
            name: "ed25519_order4.pem",
            content: order4_pem,
            parts: &["pem block 1", "ed25519 public key is a small-order point"],
        },
        BadKeyFile {
            name: "ed25519_non_canonical.json",
            content: jwks(&[non_canonical_x]),
            parts: &["ed25519 public key is not a canonical encoding"],
        },
        BadKeyFile {
            name: "private.pem",
            content: k.rsa.private_pem.clone(),
            parts: &["private"],
        },
        BadKeyFile {
            name: "broken.pem",
            content: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
            parts: &[],
        },
    ];
    let mut f = Failures::new();
    for case in &cases {
        let directive = format!("auth_jwt_key_file {{{{prefix}}}}/conf/{};", case.name);
        let check = Nginx::http(&conf(
            "",
            "",
            &format!("auth_jwt \"api\";\n            {directive}"),
        ))
        .file(&format!("conf/{}", case.name), &case.content)
        .check();
        let mut parts = vec!["auth_jwt_key_file", case.name];
        parts.extend_from_slice(case.parts);
        f.check(case.name, check.emerg(case.name, &parts));
    }
    f.assert();
}

#[test]
fn missing_key_file_fails_with_its_path() {
    let check = check_location(
        "auth_jwt \"api\";\n            auth_jwt_key_file {{prefix}}/conf/nope.json;",
    );
    check.assert_emerg("nope.json", &["nope.json"]);
}

#[test]
fn key_file_errors_in_included_files_name_that_file() {
    let check = Nginx::http(&conf(
        "",
        "include {{prefix}}/conf/jwt.conf;",
        "auth_jwt \"api\";",
    ))
    .file(
        "conf/jwt.conf",
        "\n\nauth_jwt_key_file /nonexistent/keys.json;\n",
    )
    .check();
    let line = check
        .stderr
        .lines()
        .find(|l| l.contains("[emerg]"))
        .unwrap_or_default()
        .to_owned();
    assert!(!check.ok, "nginx -t passed:\n{}", check.stderr);
    assert!(
        line.ends_with("conf/jwt.conf:3"),
        "{line}\n{}",
        check.stderr
    );
}

/// Directive values the module must refuse: (case, directives in `location /`, needle on the
/// offending line, parts of the message).
const BAD_VALUES: &[(&str, &str, &str, &[&str])] = &[
    (
        "auth_jwt without args",
        "auth_jwt;",
        "auth_jwt;",
        &["invalid number of arguments", "\"auth_jwt\""],
    ),
    (
        "auth_jwt extra arg",
        "auth_jwt \"api\" bogus=1;",
        "bogus=1",
        &["auth_jwt"],
    ),
    (
        "auth_jwt token not a var",
        "auth_jwt \"api\" token=plain;",
        "token=plain",
        &["auth_jwt"],
    ),
    (
        "auth_jwt empty token",
        "auth_jwt \"api\" token=;",
        "token=;",
        &["auth_jwt"],
    ),
    (
        "auth_jwt duplicate",
        "auth_jwt \"a\";\n auth_jwt \"b\";",
        "auth_jwt \"b\"",
        &["auth_jwt", "duplicate"],
    ),
    (
        "algorithms none",
        "auth_jwt_algorithms none;",
        "auth_jwt_algorithms",
        &["none"],
    ),
    (
        "algorithms None",
        "auth_jwt_algorithms RS256 None;",
        "auth_jwt_algorithms",
        &["auth_jwt_algorithms"],
    ),
    (
        "algorithms unknown",
        "auth_jwt_algorithms XY999;",
        "auth_jwt_algorithms",
        &["XY999"],
    ),
    (
        "algorithms lowercase",
        "auth_jwt_algorithms rs256;",
        "auth_jwt_algorithms",
        &["rs256"],
    ),
    (
        "algorithms empty",
        "auth_jwt_algorithms;",
        "auth_jwt_algorithms",
        &["invalid number of arguments"],
    ),
    (
        "leeway text",
        "auth_jwt_leeway abc;",
        "auth_jwt_leeway",
        &["auth_jwt_leeway"],
    ),
    (
        "leeway negative",
        "auth_jwt_leeway -5s;",
        "auth_jwt_leeway",
        &["auth_jwt_leeway"],
    ),
    (
        "leeway duplicate",
        "auth_jwt_leeway 1s;\n auth_jwt_leeway 2s;",
        "auth_jwt_leeway 2s",
        &["duplicate"],
    ),
    (
        "require_exp value",
        "auth_jwt_require_exp maybe;",
        "auth_jwt_require_exp",
        &["auth_jwt_require_exp"],
    ),
    (
        "max_size text",
        "auth_jwt_max_size huge;",
        "auth_jwt_max_size",
        &["auth_jwt_max_size"],
    ),
    (
        "require without args",
        "auth_jwt_require;",
        "auth_jwt_require;",
        &["invalid number of arguments"],
    ),
    (
        "require error=500",
        "auth_jwt_require $jwt_claim_sub error=500;",
        "error=500",
        &["auth_jwt_require"],
    ),
    (
        "require only error",
        "auth_jwt_require error=403;",
        "error=403",
        &["auth_jwt_require"],
    ),
    (
        "issuer without args",
        "auth_jwt_issuer;",
        "auth_jwt_issuer",
        &["invalid number of arguments"],
    ),
    (
        "audience without args",
        "auth_jwt_audience;",
        "auth_jwt_audience",
        &["invalid number of arguments"],
    ),
    (
        "identity header one arg",
        "auth_jwt_identity_header X-User;",
        "X-User",
        &["invalid number of arguments"],
    ),
    (
        "identity header bad name",
        "auth_jwt_identity_header \"X User\" sub;",
        "X User",
        &["auth_jwt_identity_header"],
    ),
    (
        "identity header colon",
        "auth_jwt_identity_header X-User: sub;",
        "X-User:",
        &["auth_jwt_identity_header"],
    ),
    (
        "claim_set in location",
        "auth_jwt_claim_set $v sub;",
        "auth_jwt_claim_set",
        &["not allowed here"],
    ),
    (
        "header_set in location",
        "auth_jwt_header_set $v kid;",
        "auth_jwt_header_set",
        &["not allowed here"],
    ),
    (
        "key_file without args",
        "auth_jwt_key_file;",
        "auth_jwt_key_file",
        &["invalid number of arguments"],
    ),
];

#[test]
fn bad_directive_values_fail_with_file_and_line() {
    let mut f = Failures::new();
    for (case, directives, at, parts) in BAD_VALUES {
        let check = check_location(directives);
        f.check(case, check.emerg(at, parts));
    }
    f.assert();
}

#[test]
fn http_only_directives_are_refused_in_server() {
    let mut f = Failures::new();
    for directive in ["auth_jwt_claim_set $v sub;", "auth_jwt_header_set $v kid;"] {
        let check = Nginx::http(&conf("", directive, "")).check();
        f.check(directive, check.emerg(directive, &["not allowed here"]));
    }
    for (case, directive) in [
        ("claim_set without $", "auth_jwt_claim_set v sub;"),
        ("claim_set without claim", "auth_jwt_claim_set $v;"),
        ("header_set without header", "auth_jwt_header_set $v;"),
    ] {
        let check = Nginx::http(&conf(directive, "", "")).check();
        f.check(case, check.emerg(directive, &[]));
    }
    f.assert();
}

#[test]
fn every_directive_in_its_contexts_passes() {
    let http = r#"
    auth_jwt_claim_set $jwt_tenant org id;
    auth_jwt_claim_set $jwt_email email;
    auth_jwt_header_set $jwt_typ typ;
    auth_jwt_key_file {{keys}}/hmac.json;
    auth_jwt_leeway 5s;
    auth_jwt_max_size 8k;
    map $jwt_claim_role $is_admin { admin 1; default 0; }
    auth_jwt off;"#;
    let server = r#"
        auth_jwt "server" token=$cookie_jwt;
        auth_jwt_key_file {{keys}}/jwks.json;
        auth_jwt_key_file {{keys}}/all.pem;
        auth_jwt_issuer https://idp.example https://other.example;
        auth_jwt_audience api://one api://two;
        auth_jwt_algorithms RS256 ES256 EdDSA HS256;
        auth_jwt_require_exp on;
        auth_jwt_identity_header X-User-Id sub;"#;
    let location = r#"
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/rsa_pkcs1.pem;
            auth_jwt_leeway 1m;
            auth_jwt_require_exp off;
            auth_jwt_max_size 32k;
            auth_jwt_require $is_admin $jwt_tenant error=403;
            auth_jwt_identity_header X-Tenant org id;
            auth_jwt_identity_header X-User-Email email;
            limit_except GET {
                auth_jwt "write";
            }"#;
    Nginx::http(&conf(http, server, location))
        .check()
        .assert_ok();
}

#[test]
fn every_key_file_format_passes() {
    let mut f = Failures::new();
    for file in [
        "jwks.json",
        "public.json",
        "hmac.json",
        "rsa.json",
        "ec256.json",
        "ec384.json",
        "ec521.json",
        "ed.json",
        "rsa.pem",
        "rsa_pkcs1.pem",
        "ec256.pem",
        "ec384.pem",
        "ec521.pem",
        "ed.pem",
        "all.pem",
    ] {
        let check = check_location(&format!(
            "auth_jwt \"api\";\n auth_jwt_key_file {{{{keys}}}}/{file};"
        ));
        let result = if check.ok {
            Ok(())
        } else {
            Err(check.stderr.clone())
        };
        f.check(file, result);
    }
    // A single JWK object, without the "keys" array.
    let single = serde_json::to_string(&keys().p256.jwk()).unwrap();
    let check = Nginx::http(&conf(
        "",
        "",
        "auth_jwt \"api\";\n auth_jwt_key_file {{prefix}}/conf/single.json;",
    ))
    .file("conf/single.json", single)
    .check();
    f.check(
        "single jwk",
        if check.ok {
            Ok(())
        } else {
            Err(check.stderr.clone())
        },
    );
    f.assert();
}

#[test]
fn unknown_directive_is_not_swallowed() {
    check_location("auth_jwt_bogus on;")
        .assert_emerg("auth_jwt_bogus", &["unknown directive \"auth_jwt_bogus\""]);
}

/// A token in the query string lands in NGINX's own log lines (the request line of the
/// access log and the `request:` part of every error-log line, the module's denials too):
/// `nginx -t` says so, once per directive, and stays a warning.
#[test]
fn a_token_from_the_query_string_is_warned_about() {
    let mut f = Failures::new();
    for (token, warned) in [
        ("token=$arg_access_token", true),
        ("token=$args", true),
        ("token=$query_string", true),
        ("token=$request_uri", true),
        ("token=${arg_t}", true),
        ("token=$cookie_session", false),
        ("token=$http_x_token", false),
        ("", false),
    ] {
        let check = check_location(&format!(
            "auth_jwt \"api\" {token};\n auth_jwt_key_file {{{{keys}}}}/jwks.json;"
        ));
        let warning = check
            .stderr
            .lines()
            .filter(|l| l.contains("[warn]") && l.contains("query string"))
            .count();
        f.check(
            token,
            match (check.ok, warning, warned) {
                (true, 1, true) | (true, 0, false) => Ok(()),
                _ => Err(check.stderr.clone()),
            },
        );
    }
    f.assert();
}
