//! Passes what nginx-sys learned about the NGINX build to the module and its tests.

use std::env;

/// `(nginx_version, cfg)`: NGINX 1.23.0 linked same-name request headers with
/// `ngx_table_elt_t.next` and dropped the `cookies`/`x_forwarded_for` arrays (src/headers.rs).
const VERSION_CFGS: &[(u64, &str)] = &[(1_023_000, "nginx1_23_0")];

fn main() {
    for (var, cfg) in [
        ("DEP_NGINX_FEATURES", "ngx_feature"),
        ("DEP_NGINX_OS", "ngx_os"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        if let Ok(values) = env::var(var) {
            for value in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                println!("cargo::rustc-cfg={cfg}=\"{value}\"");
            }
        }
    }
    // Version cfgs, one per NGINX release whose ABI the module must follow (a field or a list
    // that changed shape): `cfg(nginx1_23_0)` holds for NGINX 1.23.0 and later.
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
    let number = env::var("DEP_NGINX_VERSION_NUMBER")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    for (since, cfg) in VERSION_CFGS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if number.is_some_and(|n| n >= *since) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    // The integration tests in t/ run the `nginx` binary from this directory.
    println!("cargo::rerun-if-env-changed=DEP_NGINX_BUILD_DIR");
    if let Ok(dir) = env::var("DEP_NGINX_BUILD_DIR") {
        println!("cargo::rustc-env=NGX_AUTH_JWT_BUILD_DIR={dir}");
    }
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION");
    if let Ok(v) = env::var("DEP_NGINX_VERSION") {
        println!("cargo::rustc-env=NGX_AUTH_JWT_NGINX_VERSION={v}");
    }
}
