//! Tests for auth_jwt: every example configuration in nginx-conf/ passes `nginx -t`.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::harness::keys;
use crate::harness::prefix::{installed_modules, load_line, module_path, nginx_bin, nginx_version};

/// Key files the examples name, relative to their configuration directory.
fn write_keys(conf: &Path) {
    let dir = conf.join("keys");
    keys().write_to(&dir);
    fs::copy(dir.join("rsa.pem"), dir.join("demo.pem")).unwrap();
    fs::copy(dir.join("ec256.pem"), dir.join("legacy.pem")).unwrap();
    // TLS files of the production example: any valid certificate and key will do for -t.
    let tls = conf.join("tls");
    fs::create_dir_all(&tls).unwrap();
    let (cert, key) = self_signed();
    for name in ["server", "gateway-client"] {
        fs::write(tls.join(format!("{name}.pem")), &cert).unwrap();
        fs::write(tls.join(format!("{name}.key")), &key).unwrap();
    }
    fs::write(tls.join("upstream-ca.pem"), &cert).unwrap();
}

/// A self-signed P-256 certificate and its key, in PEM.
fn self_signed() -> (Vec<u8>, Vec<u8>) {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509NameBuilder, X509};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "example").unwrap();
    let name = name.build();
    let mut x = X509::builder().unwrap();
    x.set_version(2).unwrap();
    x.set_subject_name(&name).unwrap();
    x.set_issuer_name(&name).unwrap();
    x.set_pubkey(&key).unwrap();
    x.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    x.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    x.sign(&key, MessageDigest::sha256()).unwrap();
    (
        x.build().to_pem().unwrap(),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
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
        let conf = fs::read_to_string(&example).unwrap();
        fs::write(prefix.join("conf/nginx.conf"), for_nginx_under_test(&conf)).unwrap();
        if installed_modules().is_none() {
            std::os::unix::fs::symlink(
                module_path(),
                prefix.join("modules/ngx_http_auth_jwt_module.so"),
            )
            .unwrap();
        }
        write_keys(&prefix.join("conf"));
        let out = Command::new(nginx_bin())
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

/// An example as the NGINX under test takes it: its `load_module` line replaced by the one
/// that loads the module under test, and, before NGINX 1.25.1, `http2 on;` written the old
/// way, as a parameter of the server's `listen` lines (the edit README gives for 1.22).
fn for_nginx_under_test(conf: &str) -> String {
    let conf = conf.replace(
        "load_module modules/ngx_http_auth_jwt_module.so;",
        &load_line(),
    );
    if nginx_version() >= (1, 25, 1) {
        return conf;
    }
    let mut lines: Vec<String> = Vec::new();
    for line in conf.lines() {
        if !line.trim_start().starts_with("http2 on;") {
            lines.push(line.to_owned());
            continue;
        }
        // The `listen` lines of this server come before it, after its `server {`.
        for prev in lines.iter_mut().rev() {
            if prev.trim_start().starts_with("server") {
                break;
            }
            if prev.trim_start().starts_with("listen ") {
                *prev = prev.replacen(';', " http2;", 1);
            }
        }
    }
    lines.join("\n") + "\n"
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
