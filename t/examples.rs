//! Tests for auth_jwt: every example configuration in nginx-conf/ passes `nginx -t`.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::harness::keys;
use crate::harness::nginx::NGINX_BIN;
use crate::harness::prefix::module_path;

/// Key files the examples name, relative to their configuration directory.
fn write_keys(conf: &Path) {
    let dir = conf.join("keys");
    keys().write_to(&dir);
    fs::copy(dir.join("rsa.pem"), dir.join("demo.pem")).unwrap();
    fs::copy(dir.join("ec256.pem"), dir.join("legacy.pem")).unwrap();
}

#[test]
fn every_example_passes_nginx_t() {
    let examples: Vec<_> = fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/nginx-conf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    assert!(examples.len() >= 3, "examples: {examples:?}");
    for example in examples {
        let prefix = tempdir(&example);
        for sub in ["conf", "logs", "modules"] {
            fs::create_dir_all(prefix.join(sub)).unwrap();
        }
        fs::copy(&example, prefix.join("conf/nginx.conf")).unwrap();
        std::os::unix::fs::symlink(
            module_path(),
            prefix.join("modules/ngx_http_auth_jwt_module.so"),
        )
        .unwrap();
        write_keys(&prefix.join("conf"));
        let out = Command::new(NGINX_BIN)
            .arg("-p")
            .arg(&prefix)
            .args(["-c", "conf/nginx.conf", "-t", "-q"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: nginx -t failed:\n{stderr}",
            example.display()
        );
        assert!(
            !stderr.contains("[emerg]") && !stderr.contains("[warn]"),
            "{}: {stderr}",
            example.display()
        );
        fs::remove_dir_all(&prefix).unwrap();
    }
}

fn tempdir(example: &Path) -> std::path::PathBuf {
    let name = example.file_stem().unwrap().to_string_lossy();
    let dir = std::env::temp_dir().join(format!(
        "ngx-auth-jwt-example.{}.{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}
