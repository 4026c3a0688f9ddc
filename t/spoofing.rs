//! Tests for auth_jwt: a client's copy of an identity header never reaches the upstream.
//!
//! Whatever the number, position, case or `-`/`_` spelling of the copies, across the parts of
//! NGINX's header list, with or without a token, over HTTP/1.1 and HTTP/2, in every location
//! form (auth off, nested levels, subrequests, variables evaluated before the access phase),
//! the upstream sees the module's value or nothing.

use serde_json::json;

use crate::harness::expect::{status, upstream};
use crate::harness::{Failures, Jwt, Nginx, Request, Response};

const CONF: &str = r#"
    # The upstream for these tests: it accepts `_` in names, so every spelling is reported.
    server {
        listen 127.0.0.1:{{port2}};
        underscores_in_headers on;
        auth_jwt off;
        location / {
            default_type text/plain;
            return 200 "echo: upstream\nx-user-id: $http_x_user_id\nx-user-email: $http_x_user_email\nx-test: $http_x_test\ncookie: $http_cookie\nuser-agent: $http_user_agent\n";
        }
    }

    server {
        listen 127.0.0.1:{{port}};
        {{listen_h2}}
        underscores_in_headers on;
        auth_jwt_key_file {{keys}}/jwks.json;

        location / {
            auth_jwt "api";
            auth_jwt_identity_header X-User-Id sub;
            proxy_pass http://127.0.0.1:{{port2}};
        }
        location /open/ {
            auth_jwt off;
            auth_jwt_identity_header X-User-Id sub;
            proxy_pass http://127.0.0.1:{{port2}};
        }
        location /nested/ {
            auth_jwt "api";
            auth_jwt_identity_header X-User-Id sub;
            proxy_pass http://127.0.0.1:{{port2}};
            location /nested/inner/ {
                auth_jwt_identity_header X-User-Email email;
                proxy_pass http://127.0.0.1:{{port2}};
            }
        }
        location /early/ {
            auth_jwt "api";
            auth_jwt_identity_header X-User-Id sub;
            set $early $http_x_user_id;
            proxy_set_header X-Test $early;
            proxy_pass http://127.0.0.1:{{port2}};
        }
        location /redirect/ {
            auth_jwt "api";
            auth_jwt_identity_header X-User-Id sub;
            try_files /nonexistent @checked;
        }
        location @checked {
            auth_jwt "api";
            auth_jwt_identity_header X-User-Id sub;
            proxy_pass http://127.0.0.1:{{port2}};
        }
        location /redirect-open/ {
            auth_jwt "api";
            auth_jwt_identity_header X-User-Id sub;
            try_files /nonexistent @unchecked;
        }
        location @unchecked {
            auth_jwt off;
            proxy_pass http://127.0.0.1:{{port2}};
        }
        location /plain/ {
            proxy_pass http://127.0.0.1:{{port2}};
        }
        location = /page.html {
            ssi on;
            root {{prefix}}/html;
        }
    }
"#;

/// A page whose SSI include makes a subrequest to a protected location.
const PAGE: &str = "page\n<!--# include virtual=\"/nested/inner/x\" -->\n";

fn start() -> Nginx {
    Nginx::http(CONF).file("html/page.html", PAGE).start()
}

fn token() -> String {
    Jwt::new("RS256")
        .claims(json!({"sub": "alice", "email": "alice@example.com"}))
        .encode()
}

/// How the client's copies are laid out among the filler headers.
#[derive(Clone, Copy, Debug)]
enum Layout {
    AfterFillers,
    BeforeFillers,
    Interleaved,
}

/// The spellings a client may use for `X-User-Id`.
const SPELLINGS: &[&str] = &[
    "X-User-Id",
    "x-user-id",
    "X-USER-ID",
    "X_User_Id",
    "x_user_id",
];

/// Headers for `fillers` harmless headers and `copies` client copies of `X-User-Id` (and
/// `X-User-Email`), ended by one more harmless header so that the copies are never last.
fn spoofed(fillers: usize, copies: usize, layout: Layout) -> Vec<(String, String)> {
    let filler = |i: usize| (format!("X-Filler-{i}"), format!("f{i}"));
    let copy = |i: usize| {
        let name = SPELLINGS[i % SPELLINGS.len()];
        let name = if i % 7 == 3 {
            name.replace("User-Id", "User-Email")
                .replace("User_Id", "User_Email")
                .replace("USER-ID", "USER-EMAIL")
                .replace("user-id", "user-email")
                .replace("user_id", "user_email")
        } else {
            name.to_owned()
        };
        (name, format!("admin{i}"))
    };
    let mut out = Vec::new();
    match layout {
        Layout::AfterFillers => {
            out.extend((0..fillers).map(filler));
            out.extend((0..copies).map(copy));
        }
        Layout::BeforeFillers => {
            out.extend((0..copies).map(copy));
            out.extend((0..fillers).map(filler));
        }
        Layout::Interleaved => {
            for i in 0..fillers.max(copies) {
                if i < copies {
                    out.push(copy(i));
                }
                if i < fillers {
                    out.push(filler(i));
                }
            }
        }
    }
    // Known headers around the copies: their fields and same-name chains must survive.
    out.insert(out.len() / 2, ("Cookie".into(), "a=1".into()));
    out.push(("User-Agent".into(), "agent".into()));
    out.push(("Cookie".into(), "b=2".into()));
    out.push(("X-Last".into(), "last".into()));
    out
}

/// The upstream saw `X-User-Id: want_id` and `X-User-Email: want_email` exactly.
fn saw(resp: &Response, want_id: &str, want_email: &str) -> Result<(), String> {
    upstream(resp)?;
    for (name, want) in [("x-user-id", want_id), ("x-user-email", want_email)] {
        let got = resp.echo(name);
        if got.as_deref() != Some(want) {
            return Err(format!("upstream saw {name} {got:?}, want {want:?}"));
        }
    }
    Ok(())
}

/// Like `saw`, and the known headers that `spoofed` sends reached the upstream intact.
fn saw_with_known(resp: &Response, want_id: &str, want_email: &str) -> Result<(), String> {
    saw(resp, want_id, want_email)?;
    for (name, want) in [("cookie", "a=1; b=2"), ("user-agent", "agent")] {
        let got = resp.echo(name);
        if got.as_deref() != Some(want) {
            return Err(format!("upstream saw {name} {got:?}, want {want:?}"));
        }
    }
    Ok(())
}

/// (path, with a token, X-User-Id and X-User-Email the upstream must see)
const CASES: &[(&str, bool, &str, &str)] = &[
    ("/", true, "alice", ""),
    ("/open/", false, "", ""),
    ("/open/", true, "", ""),
    ("/nested/x", true, "alice", ""),
    ("/nested/inner/x", true, "", "alice@example.com"),
    ("/plain/", false, "", ""),
    // After an internal redirect the module's value is set once, by the location that
    // checked last, or kept from the one that checked.
    ("/redirect/", true, "alice", ""),
    ("/redirect-open/", true, "alice", ""),
];

fn request(
    nginx: &Nginx,
    path: &str,
    token: Option<&str>,
    headers: &[(String, String)],
) -> Request {
    request_to(nginx.port(), path, token, headers)
}

/// A bare request over cleartext HTTP/2 (`{{port3}}`).
fn h2(nginx: &Nginx, path: &str) -> Request {
    Request::new(nginx.extra_port(3), "GET", path)
}

/// As `request`, to a given port (`{{port3}}` is the cleartext HTTP/2 listener).
fn request_to(port: u16, path: &str, token: Option<&str>, headers: &[(String, String)]) -> Request {
    let mut req = Request::new(port, "GET", path);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    match token {
        Some(t) => req.bearer(t),
        None => req,
    }
}

#[test]
fn copies_never_reach_the_upstream_across_list_parts_http1() {
    let nginx = start();
    let token = token();
    let mut f = Failures::new();
    // NGINX's header list grows in parts of 20 elements: 0..45 fillers put the copies at and
    // across every part boundary of the first three parts.
    for &(path, with_token, id, email) in CASES {
        for fillers in 0..45 {
            for copies in [1, 2, 20, 21] {
                for layout in [
                    Layout::AfterFillers,
                    Layout::BeforeFillers,
                    Layout::Interleaved,
                ] {
                    let headers = spoofed(fillers, copies, layout);
                    let t = with_token.then_some(token.as_str());
                    let resp = request(&nginx, path, t, &headers).send();
                    f.check(
                        &format!("{path} token={with_token} fillers={fillers} copies={copies} {layout:?}"),
                        saw_with_known(&resp, id, email),
                    );
                }
            }
        }
    }
    f.assert();
    nginx.finish();
}

#[test]
fn copies_never_reach_the_upstream_across_list_parts_http2() {
    let nginx = start();
    let token = token();
    let mut f = Failures::new();
    for &(path, with_token, id, email) in CASES {
        for fillers in [0, 15, 16, 17, 18, 19, 20, 36, 37, 38, 39, 40] {
            for copies in [1, 20, 21] {
                let headers = spoofed(fillers, copies, Layout::AfterFillers);
                let t = with_token.then_some(token.as_str());
                let resp = request_to(nginx.extra_port(3), path, t, &headers).send_h2();
                f.check(
                    &format!("h2 {path} token={with_token} fillers={fillers} copies={copies}"),
                    saw_with_known(&resp, id, email),
                );
            }
        }
    }
    f.assert();
    nginx.finish();
}

#[test]
fn thousands_of_copies_are_all_removed() {
    let nginx = start();
    let token = token();
    let mut f = Failures::new();
    // 990 copies (about 17 KB, 50 list parts): as many as Debian's NGINX takes, which
    // refuses a request of more than 1000 header lines (a Debian patch; upstream NGINX is
    // bounded only by large_client_header_buffers).
    let copies: Vec<(String, String)> = (0..990)
        .map(|i| (SPELLINGS[i % SPELLINGS.len()].to_owned(), format!("a{i}")))
        .chain([("X-Last".to_owned(), "last".to_owned())])
        .collect();
    for (path, t, id) in [("/", Some(token.as_str()), "alice"), ("/open/", None, "")] {
        let resp = request(&nginx, path, t, &copies).send();
        f.check(&format!("{path} http/1.1"), saw(&resp, id, ""));
        let resp = request_to(nginx.extra_port(3), path, t, &copies[900..]).send_h2();
        f.check(&format!("{path} h2"), saw(&resp, id, ""));
    }
    // Refused requests pay the same single pass (and still answer 401).
    let resp = request(&nginx, "/", None, &copies).send();
    f.check("401", status(&resp, 401));
    f.assert();
    nginx.finish();
}

/// A variable evaluated in the rewrite phase, before the access phase, never sees a copy.
#[test]
fn variables_evaluated_early_never_see_a_copy() {
    let nginx = start();
    let token = token();
    let mut f = Failures::new();
    for (what, resp) in [
        (
            "http/1.1",
            nginx
                .get("/early/")
                .header("X-User-Id", "mallory")
                .bearer(&token)
                .send(),
        ),
        (
            "h2",
            h2(&nginx, "/early/")
                .header("x-user-id", "mallory")
                .bearer(&token)
                .send_h2(),
        ),
    ] {
        f.check(what, saw(&resp, "alice", ""));
        f.check(
            what,
            match resp.echo("x-test") {
                Some(v) if v.is_empty() => Ok(()),
                other => Err(format!("early variable held {other:?}")),
            },
        );
    }
    f.assert();
    nginx.finish();
}

/// A subrequest skips the access phase (NGINX's rule, as for auth_basic), but it shares the
/// parent's headers: the client's copy must already be gone.
#[test]
fn subrequests_never_carry_a_copy() {
    let nginx = start();
    let mut f = Failures::new();
    for (what, resp) in [
        (
            "http/1.1",
            nginx
                .get("/page.html")
                .header("X-User-Id", "mallory")
                .header("X-User-Email", "mallory@evil")
                .send(),
        ),
        (
            "h2",
            h2(&nginx, "/page.html")
                .header("x-user-id", "mallory")
                .header("x_user_email", "mallory@evil")
                .send_h2(),
        ),
    ] {
        let body = resp.text();
        f.check(
            what,
            if resp.status == 200 && body.contains("echo: upstream") && !body.contains("mallory") {
                Ok(())
            } else {
                Err(resp.summary())
            },
        );
    }
    f.assert();
    nginx.finish();
}

const KNOWN: &str = r#"
    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        location / {
            auth_jwt "api";
            auth_jwt_identity_header X-Forwarded-For sub;
            auth_jwt_identity_header User-Agent email;
            proxy_set_header X-Front "$http_x_forwarded_for|$http_user_agent|$http_cookie|$http_accept";
            proxy_pass {{upstream}};
        }
    }
"#;

/// Identity headers that NGINX knows by name (it keeps pointers to them in `headers_in`:
/// single fields, same-name chains, and NGINX 1.22's `cookies`/`x_forwarded_for` arrays).
/// After the client's copies are removed, NGINX's own variables see neither them nor a
/// dangling element, and the kept known headers (`Cookie`, `Accept`) are still found.
#[test]
fn known_headers_are_removed_from_nginx_s_own_fields() {
    let nginx = Nginx::http(KNOWN)
        .echo_header("user-agent")
        .echo_header("x-forwarded-for")
        .echo_header("x-front")
        .start();
    let resp = nginx
        .get("/")
        .header("X-Forwarded-For", "10.6.6.6")
        .header("Cookie", "c=1")
        .header("User-Agent", "mallory-agent")
        .header("x-forwarded-for", "10.7.7.7")
        .header("Accept", "text/plain")
        .header("Cookie", "d=2")
        .bearer(&token())
        .send();
    let mut f = Failures::new();
    f.check("status", upstream(&resp));
    for (name, want) in [
        ("x-forwarded-for", "alice"),
        ("user-agent", "alice@example.com"),
        ("cookie", "c=1; d=2"),
        ("x-front", "||c=1; d=2|text/plain"),
    ] {
        let got = resp.echo(name);
        f.check(
            name,
            if got.as_deref() == Some(want) {
                Ok(())
            } else {
                Err(format!("{name}: {got:?}, expected {want:?}"))
            },
        );
    }
    f.assert();
    nginx.finish();
}
