//! Tests for auth_jwt: what a rate limit counts by. A key of exactly one `$jwt_claim_<name>`
//! is read from the verified claims, not through NGINX's complex value: it must count as the
//! variable would (rendered arrays and numbers, absent claims not limited), as a key through
//! NGINX's complex value does (`$jwt_claim_tenant$jwt_claim_none`), except that a claim the
//! variable cannot show is still counted; and a `map` of the same name must still win.

use serde_json::{json, Value};

use super::sub;
use crate::harness::{Failures, Jwt, Nginx};

const CONF: &str = r#"
    map $http_x_user $jwt_claim_user {
        default $http_x_user;
    }
    auth_jwt_limit_zone by_tenant key=$jwt_claim_tenant rate=2r/m size=64k;
    auth_jwt_limit_zone by_tenant_cv key=$jwt_claim_tenant$jwt_claim_none rate=2r/m size=64k;
    auth_jwt_limit_zone by_user key=${jwt_claim_user} rate=2r/m size=64k;

    server {
        listen 127.0.0.1:{{port}};
        auth_jwt_key_file {{keys}}/jwks.json;
        auth_jwt "api";

        location /tenant/ {
            auth_jwt_limit by_tenant;
            proxy_pass {{upstream}};
        }
        location /tenant-cv/ {
            auth_jwt_limit by_tenant_cv;
            proxy_pass {{upstream}};
        }
        location /user/ {
            auth_jwt_limit by_user;
            proxy_pass {{upstream}};
        }
    }
"#;

fn tenant(value: Value) -> String {
    Jwt::new("RS256")
        .claim("sub", json!("someone"))
        .claim("tenant", value)
        .encode()
}

/// Statuses of `n` requests to `path`, each with the next of `tokens` (cycling).
fn statuses(nginx: &Nginx, path: &str, tokens: &[&str], n: usize) -> Vec<u16> {
    (0..n)
        .map(|i| {
            nginx
                .get(path)
                .bearer(tokens[i % tokens.len()])
                .send()
                .status
        })
        .collect()
}

#[test]
fn a_claim_key_counts_what_the_variable_shows() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    // The variable shows an array as its items joined by commas, a number as its digits:
    // tokens whose claims show the same text share one count, in both kinds of key.
    let (array, joined) = (tenant(json!(["a", "b"])), tenant(json!("a,b")));
    let (number, digits) = (tenant(json!(42)), tenant(json!("42")));
    for path in ["/tenant/", "/tenant-cv/"] {
        for (what, tokens) in [("array", [&array, &joined]), ("number", [&number, &digits])] {
            let got = statuses(&nginx, path, &[tokens[0], tokens[1]], 3);
            f.check(
                &format!("{path} {what}: one count"),
                (got == [200, 200, 429])
                    .then_some(())
                    .ok_or(format!("{got:?}")),
            );
        }
    }
    // No claim: not limited, either way.
    let none = sub("nobody");
    for path in ["/tenant/", "/tenant-cv/"] {
        let got = statuses(&nginx, path, &[&none], 4);
        f.check(
            &format!("{path} absent: not limited"),
            (got == [200; 4]).then_some(()).ok_or(format!("{got:?}")),
        );
    }
    // A claim the variable refuses to show (a control character) shows nothing, so a key
    // through the complex value is empty and not limited; but a claim key is counted by the
    // claim's text, or a client able to put a control character in its own claim (a display
    // name, say) would escape the limit.
    let unsafe_text = tenant(json!("x\u{1}y"));
    for (path, want) in [
        ("/tenant/", vec![200, 200, 429, 429]),
        ("/tenant-cv/", vec![200; 4]),
    ] {
        let got = statuses(&nginx, path, &[&unsafe_text], 4);
        f.check(
            &format!("{path} control character"),
            (got == want).then_some(()).ok_or(format!("{got:?}")),
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn a_map_of_the_same_name_wins_over_the_claim() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    // `$jwt_claim_user` is the map's: keyed by the X-User header, not by a `user` claim.
    let token = Jwt::new("RS256")
        .claim("sub", json!("dave"))
        .claim("user", json!("u1"))
        .encode();
    let by_header = |user: &str| {
        nginx
            .get("/user/")
            .bearer(&token)
            .header("X-User", user)
            .send()
            .status
    };
    let got: Vec<u16> = ["p", "p", "p", "q"].iter().map(|u| by_header(u)).collect();
    f.check(
        "counted per X-User",
        (got == [200, 200, 429, 200])
            .then_some(())
            .ok_or(format!("{got:?}")),
    );
    f.assert();
    nginx.finish();
}

/// Distinct keys past the table's size: the table stays within `size=` (32k: 681 keys of 48
/// bytes), the least recently used are evicted and counted. (1,000,000 keys run through a
/// 1 MiB table in the core's `million_keys_stay_in_the_table`.)
#[test]
fn distinct_keys_stay_within_size() {
    let conf = r#"
        auth_jwt_limit_zone many key=$arg_u rate=5r/m size=32k;
        server {
            listen 127.0.0.1:{{port}};
            auth_jwt_key_file {{keys}}/jwks.json;
            location / {
                auth_jwt "api";
                auth_jwt_limit many;
                proxy_pass {{upstream}};
            }
            location = /metrics {
                auth_jwt_metrics;
            }
        }
    "#;
    let nginx = Nginx::http(conf).start();
    let token = sub("erin");
    let keys = 2000u64;
    let mut f = Failures::new();
    let other: Vec<u16> = (0..keys)
        .map(|n| nginx.get(&format!("/?u=k{n}")).bearer(&token).send().status)
        .filter(|s| *s != 200)
        .collect();
    f.check(
        "all allowed",
        other.is_empty().then_some(()).ok_or(format!("{other:?}")),
    );
    let metrics = nginx.get("/metrics").send().text();
    let value = |name: &str| -> u64 {
        let prefix = format!("{name}{{zone=\"many\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let capacity = value("nginx_auth_jwt_limit_capacity");
    let held = value("nginx_auth_jwt_limit_keys");
    let evicted = value("nginx_auth_jwt_limit_evictions_total");
    // A slot stays free only when every key whose 8 slots cover it found another one first.
    f.check(
        "within size=, the rest evicted and counted",
        (capacity == 681
            && held <= capacity
            && held * 100 >= capacity * 95
            && held + evicted == keys)
            .then_some(())
            .ok_or(format!(
                "capacity {capacity}, keys {held}, evicted {evicted}"
            )),
    );
    f.assert();
    nginx.finish();
}
