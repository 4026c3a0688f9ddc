//! Tests for auth_jwt: the 13 signature algorithms, with JWKS and PEM keys.

use serde_json::json;

use crate::harness::keys::jwks;
use crate::harness::mint::default_signer;
use crate::harness::{keys, Failures, Jwt, Nginx, ALL_ALGS};

const CONF: &str = r#"
    server {
        listen 127.0.0.1:{{port}};

        location /jwks/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            proxy_pass {{upstream}};
        }
        location /rsa-pem/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/rsa.pem;
            proxy_pass {{upstream}};
        }
        location /rsa-pkcs1/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/rsa_pkcs1.pem;
            proxy_pass {{upstream}};
        }
        location /ec256-pem/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/ec256.pem;
            proxy_pass {{upstream}};
        }
        location /ec384-pem/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/ec384.pem;
            proxy_pass {{upstream}};
        }
        location /ec521-pem/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/ec521.pem;
            proxy_pass {{upstream}};
        }
        location /ed-pem/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/ed.pem;
            proxy_pass {{upstream}};
        }
        location /all-pem/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/all.pem;
            proxy_pass {{upstream}};
        }
        location /two-files/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/rsa.json;
            auth_jwt_key_file {{keys}}/ec256.json;
            proxy_pass {{upstream}};
        }
        location /allow/ {
            auth_jwt "api";
            auth_jwt_key_file {{keys}}/jwks.json;
            auth_jwt_algorithms RS256 ES256;
            proxy_pass {{upstream}};
        }
    }
"#;

#[test]
fn every_algorithm_verifies_with_jwks_by_kid() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for alg in ALL_ALGS {
        f.check(alg, nginx.check_accepted("/jwks/", &Jwt::new(alg).encode()));
    }
    f.assert();
    nginx.finish();
}

#[test]
fn every_algorithm_verifies_with_jwks_without_kid() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for alg in ALL_ALGS {
        f.check(
            alg,
            nginx.check_accepted("/jwks/", &Jwt::new(alg).no_kid().encode()),
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn pem_keys_verify_their_algorithms() {
    let nginx = Nginx::http(CONF).start();
    let table: &[(&str, &[&str])] = &[
        (
            "/rsa-pem/",
            &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        ),
        ("/rsa-pkcs1/", &["RS256", "PS512"]),
        ("/ec256-pem/", &["ES256"]),
        ("/ec384-pem/", &["ES384"]),
        ("/ec521-pem/", &["ES512"]),
        ("/ed-pem/", &["EdDSA"]),
        (
            "/all-pem/",
            &["RS256", "PS384", "ES256", "ES384", "ES512", "EdDSA"],
        ),
    ];
    let mut f = Failures::new();
    for (path, algs) in table {
        for alg in *algs {
            // PEM keys have no kid: tokens without kid try every key that fits.
            f.check(
                &format!("{path} {alg}"),
                nginx.check_accepted(path, &Jwt::new(alg).no_kid().encode()),
            );
        }
    }
    f.assert();
    nginx.finish();
}

#[test]
fn pem_keys_do_not_verify_other_algorithms() {
    let nginx = Nginx::http(CONF).start();
    let table: &[(&str, &[&str])] = &[
        ("/rsa-pem/", &["ES256", "EdDSA", "HS256"]),
        ("/ec256-pem/", &["ES384", "ES512", "RS256", "HS256"]),
        ("/ec384-pem/", &["ES256", "ES512"]),
        ("/ec521-pem/", &["ES256", "ES384"]),
        ("/ed-pem/", &["ES256", "RS256", "HS512"]),
    ];
    let mut f = Failures::new();
    for (path, algs) in table {
        for alg in *algs {
            let token = Jwt::new(alg).no_kid().encode();
            f.check(
                &format!("{path} {alg}"),
                nginx.check_rejected(path, "api", &token, "invalid", "no key for algorithm"),
            );
        }
    }
    f.assert();
    nginx.finish();
}

#[test]
fn a_key_that_did_not_sign_fails_for_every_algorithm() {
    let nginx = Nginx::http(CONF).start();
    let k = keys();
    let mut f = Failures::new();
    for alg in ALL_ALGS {
        // Signed by an unpublished key, but naming the published key's kid.
        let good = Jwt::new(alg);
        let token = match alg {
            "HS256" | "HS384" | "HS512" => good.hmac_key(&k.hs_other),
            "ES256" => good.ec_key(&k.p256_other),
            "ES384" => good.ec_key(&k.p384_other),
            "ES512" => good.ec_key(&k.p521_other),
            "EdDSA" => good.ed_key(&k.ed_other),
            _ => good.rsa_key(&k.rsa_other),
        }
        .kid(default_signer(alg).expect("known alg").1);
        let kid = default_signer(alg).expect("known alg").1;
        let reason = format!("signature verification failed, kid=\"{kid}\", alg=\"{alg}\"");
        f.check(
            alg,
            nginx.check_rejected("/jwks/", "api", &token.encode(), "invalid", &reason),
        );
        let no_kid = token.no_kid().encode();
        f.check(
            &format!("{alg} without kid"),
            nginx.check_rejected(
                "/jwks/",
                "api",
                &no_kid,
                "invalid",
                "signature verification failed, kid=\"-\"",
            ),
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn allow_list_limits_algorithms() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    for alg in ["RS256", "ES256"] {
        f.check(
            alg,
            nginx.check_accepted("/allow/", &Jwt::new(alg).encode()),
        );
    }
    for alg in ["HS256", "RS384", "PS256", "ES384", "ES512", "EdDSA"] {
        let reason = format!("algorithm {alg} is not allowed");
        f.check(
            alg,
            nginx.check_rejected(
                "/allow/",
                "api",
                &Jwt::new(alg).encode(),
                "invalid",
                &reason,
            ),
        );
    }
    f.assert();
    nginx.finish();
}

#[test]
fn several_key_files_add_up() {
    let nginx = Nginx::http(CONF).start();
    let mut f = Failures::new();
    f.check(
        "RS256",
        nginx.check_accepted("/two-files/", &Jwt::new("RS256").encode()),
    );
    f.check(
        "ES256",
        nginx.check_accepted("/two-files/", &Jwt::new("ES256").encode()),
    );
    let ed = Jwt::new("EdDSA").encode();
    f.check(
        "EdDSA",
        nginx.check_rejected("/two-files/", "api", &ed, "invalid", "no key matches kid"),
    );
    f.assert();
    nginx.finish();
}

#[test]
fn jwk_alg_and_use_members_bind_the_key() {
    let k = keys();
    let mut bound = k.rsa.jwk();
    bound["kid"] = json!("bound");
    bound["alg"] = json!("RS256");
    bound["use"] = json!("sig");
    bound["key_ops"] = json!(["verify"]);
    let mut ec = k.p384.jwk();
    ec["alg"] = json!("ES384");
    let nginx = Nginx::http(
        r#"
    server {
        listen 127.0.0.1:{{port}};
        location / {
            auth_jwt "api";
            auth_jwt_key_file {{prefix}}/conf/bound.json;
            proxy_pass {{upstream}};
        }
    }"#,
    )
    .file("conf/bound.json", jwks(&[bound, ec]))
    .start();
    let mut f = Failures::new();
    f.check(
        "RS256",
        nginx.check_accepted("/", &Jwt::new("RS256").kid("bound").encode()),
    );
    f.check(
        "ES384",
        nginx.check_accepted("/", &Jwt::new("ES384").encode()),
    );
    for alg in ["RS384", "PS256"] {
        let token = Jwt::new(alg).kid("bound").encode();
        f.check(
            alg,
            nginx.check_rejected(
                "/",
                "api",
                &token,
                "invalid",
                "key type does not fit algorithm",
            ),
        );
    }
    f.assert();
    nginx.finish();
}
