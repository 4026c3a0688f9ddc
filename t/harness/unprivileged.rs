//! Running NGINX as root with `user nobody` workers: files only the master may read.

use std::fs;

/// A directory only root may enter, removed on drop.
pub struct RootOnlyDir(pub std::path::PathBuf);

impl RootOnlyDir {
    pub fn new(name: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("{name}.{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
        Self(dir)
    }
}

impl Drop for RootOnlyDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The primary group of `user`, by name (`user nobody;` alone would ask for a group named
/// `nobody`, which Debian does not have).
pub fn group_of(user: &str) -> String {
    let out = std::process::Command::new("id")
        .args(["-gn", user])
        .output()
        .expect("run id -gn");
    assert!(out.status.success(), "id -gn {user}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether this process is root, which a master needs to start `user nobody` workers; prints
/// why a test skips when it is not.
pub fn can_drop_privileges() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: the master must run as root to drop to `user nobody`");
    }
    root
}

/// The real uid of a process, from `/proc`.
pub fn uid_of(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("process status")
        .lines()
        .find_map(|l| l.strip_prefix("Uid:").map(str::to_owned))
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .expect("Uid line")
}
