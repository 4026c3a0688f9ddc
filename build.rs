//! Passes what nginx-sys learned about the NGINX build to the module and its tests.

use std::env;

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
