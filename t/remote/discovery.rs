//! Tests for auth_jwt: OIDC discovery and the binding of keys to their issuer.

use super::*;

#[test]
fn discovery_binds_keys_to_the_issuer() {
    let idp = Idp::with_issuer_path("/realms/test");
    let issuer = idp.issuer();
    let source = format!("auth_jwt_discovery {issuer} refresh=10m;");
    let nginx = Nginx::http(&conf(&idp, &source, "", "")).start();
    let good = Jwt::new("RS256").claim("iss", json!(issuer)).encode();
    wait_accepted(&nginx, &good, KEYS_WAIT);
    assert_eq!(idp.count(&idp.discovery_path()), 1);
    assert_eq!(idp.jwks_count(), 1);
    wait_log(
        &nginx,
        0,
        &format!("[info] *auth_jwt: keys from \"{issuer}\": generation 1, kids [rsa-1]"),
        LOG_WAIT,
    );
    // The same key, another (or no) issuer: these keys do not vouch for it.
    let cases = [
        (
            "other issuer",
            Jwt::new("RS256").claim("iss", json!("https://evil.example/realms/test")),
        ),
        (
            "issuer prefix",
            Jwt::new("RS256").claim("iss", json!(format!("{issuer}/x"))),
        ),
        (
            "base URL",
            Jwt::new("RS256").claim("iss", json!(idp.base())),
        ),
        ("no issuer", Jwt::new("RS256")),
    ];
    let mut f = Failures::new();
    for (name, token) in cases {
        f.check(
            name,
            nginx.check_rejected(
                "/",
                "api",
                &token.encode(),
                "invalid",
                "issuer not accepted",
            ),
        );
    }
    f.assert();
    nginx.check_accepted("/", &good).unwrap();
    // Refused issuers are not unknown kids: no early fetch.
    assert_eq!(idp.jwks_count(), 1);
    nginx.finish();
}

#[test]
fn discovery_naming_another_issuer_gives_no_keys() {
    let idp = Idp::with_issuer_path("/realms/test");
    idp.set_discovery_issuer(Some("https://evil.example/realms/test"));
    let issuer = idp.issuer();
    let source = format!("auth_jwt_discovery {issuer} refresh=10m timeout=1s;");
    let nginx = Nginx::http(&conf(&idp, &source, "", "")).start();
    let token = Jwt::new("RS256").claim("iss", json!(issuer)).encode();
    wait_log(
        &nginx,
        0,
        &format!("[warn] *auth_jwt: fetch of \"{issuer}\" failed (invalid): discovery document names another issuer; no keys yet"),
        LOG_WAIT,
    );
    no_keys_503(&get(&nginx, &token)).unwrap();
    assert_eq!(
        idp.jwks_count(),
        0,
        "the JWKS of a refused provider was fetched"
    );
    nginx.finish();
}
