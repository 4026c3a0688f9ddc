//! Where an NGINX under test lives: its temp prefix, the module it loads, the ports it gets.

use std::collections::HashSet;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;

/// A listener on 127.0.0.1 at a port the kernel picked (port 0) and no other test in this
/// process has been given: how servers inside the test process (the mock IdP) bind.
pub fn listen_any() -> TcpListener {
    static TAKEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let taken = TAKEN.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if taken.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return listener;
        }
    }
    panic!("no free port after 1000 tries");
}

/// A port for a server that binds it itself (NGINX): free a moment ago and handed out once;
/// someone else may take it meanwhile, so its user retries on "Address already in use"
/// (`NginxBuilder::try_start`).
pub fn free_port() -> u16 {
    listen_any().local_addr().expect("local addr").port()
}

/// The temporary prefix of one NGINX: conf/, logs/, modules/, html/, keys/. Removed on drop
/// unless the test failed (or NGX_T_KEEP is set); then its path is printed.
pub struct Prefix {
    pub path: PathBuf,
    /// Keep the directory even when the test passes.
    pub keep: bool,
}

impl Prefix {
    pub(super) fn new() -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name: String = thread::current()
            .name()
            .unwrap_or("test")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "ngx-auth-jwt-t.{}.{seq}.{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        for sub in ["conf", "logs", "modules", "html"] {
            fs::create_dir_all(path.join(sub)).expect("create prefix dirs");
        }
        Self { path, keep: false }
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        if self.keep || thread::panicking() || std::env::var_os("NGX_T_KEEP").is_some() {
            let log = fs::read_to_string(self.path.join("logs/error.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "kept NGINX prefix for inspection: {}\n--- last lines of logs/error.log ---\n{}",
                self.path.display(),
                tail.join("\n")
            );
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The NGINX binary under test: `AUTH_JWT_T_NGINX` (e.g. Debian's `/usr/sbin/nginx`), else
/// the one the vendored build made.
pub fn nginx_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("AUTH_JWT_T_NGINX")
            .unwrap_or_else(|_| concat!(env!("NGX_AUTH_JWT_BUILD_DIR"), "/nginx").to_owned())
    })
}

/// `AUTH_JWT_T_MODULES`: a directory of `load_module` snippets, such as Debian's
/// `/etc/nginx/modules-enabled`, that the generated configurations `include` to load an
/// installed module (a package's), instead of `load_module` of the module this build made.
pub fn installed_modules() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("AUTH_JWT_T_MODULES").map(PathBuf::from))
        .as_deref()
}

/// The main-context line that loads the module under test.
pub fn load_line() -> String {
    match installed_modules() {
        Some(dir) => format!("include {}/*.conf;", dir.display()),
        None => "load_module modules/ngx_http_auth_jwt_module.so;".to_owned(),
    }
}

/// True, after printing why, when the module under test is an installed one: a test that
/// needs this build's module (its `test-panic` feature) cannot apply.
pub fn skip_with_installed_module(test: &str, why: &str) -> bool {
    let Some(dir) = installed_modules() else {
        return false;
    };
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: the module under test is the installed one ({}), {why}",
        dir.display()
    );
    true
}

/// The version of the NGINX under test (`nginx -v`), as (major, minor, patch).
pub fn nginx_version() -> (u32, u32, u32) {
    static VERSION: OnceLock<(u32, u32, u32)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let text = nginx_version_text();
        let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let mut next = || parts.next().unwrap_or(0);
        (next(), next(), next())
    })
}

/// `1.28.3`: what `nginx -v` reports after `nginx/`.
pub fn nginx_version_text() -> String {
    let out = Command::new(nginx_bin())
        .arg("-v")
        .output()
        .unwrap_or_else(|e| panic!("{} -v: {e}", nginx_bin()));
    let text = String::from_utf8_lossy(&out.stderr);
    text.trim()
        .rsplit_once("nginx/")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| panic!("unexpected nginx -v output {text:?}"))
}

/// The module built by cargo for this test executable's profile, built on first use so that
/// tests never run a stale module (`cargo test` does not build a cdylib for integration tests).
pub fn module_path() -> &'static Path {
    // A failed build is remembered: every test reports it without building again.
    static MODULE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let module = MODULE.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        // <target>/<profile>/deps/t-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or("test executable is not in <target>/<profile>/deps")?;
        if std::env::var_os("NGX_T_NO_BUILD").is_none() {
            build_module(profile_dir)?;
        }
        let so = profile_dir.join("libngx_http_auth_jwt_module.so");
        if !so.is_file() {
            return Err(format!(
                "module not found at {}: build it with `cargo build` (same profile and target dir as the tests)",
                so.display()
            ));
        }
        Ok(so)
    });
    match module {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// Prefixes of the variables cargo sets for one package's build or test run.
const PACKAGE_VARS: &[&str] = &[
    "CARGO_MANIFEST_",
    "CARGO_PKG_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "CARGO_CFG_",
    "DEP_",
];

fn build_module(profile_dir: &Path) -> Result<(), String> {
    let target_dir = profile_dir.parent().ok_or("no target dir")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--lib",
        // The module under test answers `X-Auth-Jwt-Test-Panic` with a panic (t/panic.rs).
        "--features",
        "test-panic",
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ])
    .arg("--target-dir")
    .arg(target_dir);
    if profile == "release" {
        cmd.arg("--release");
    }
    // `cargo test` runs this process with variables describing this package (OUT_DIR,
    // CARGO_MANIFEST_DIR, CARGO_PKG_*...). Build scripts watch some of them, so passing them
    // on would make this build and the next `cargo test` rebuild each other's dependencies.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "OUT_DIR" || PACKAGE_VARS.iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(&*name);
        }
    }
    let output = cmd
        .output()
        .map_err(|e| format!("run cargo build --lib: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo build --lib failed (set NGX_T_NO_BUILD=1 to use an existing module):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
