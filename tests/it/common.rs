//! Helpers shared by the integration tests.

use std::io::Write;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data-samples")
        .join(name)
}

/// The real binary.
pub fn bin() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("custvalue").expect("binary builds");
    cmd.env_remove("POLARS_MAX_THREADS");
    cmd
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Whether the tests run under CI (`CI` set, and not to `false` or `0`), where every
/// check must run: a missing tool is a failure there, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE"))
}

/// A check that cannot run here. Under CI this fails the test; elsewhere it prints a loud
/// `NOT CHECKED:` line naming what was not checked and why, and the test goes on without it.
#[track_caller]
pub fn not_checked(what: &str, why: &str) {
    let line = format!("NOT CHECKED: {what}: {why}");
    assert!(!under_ci(), "{line} (CI=true: every check must run)");
    // Straight to the process's stderr: the test harness captures `eprintln!` of a
    // passing test, and this line must be seen.
    let _ = writeln!(std::io::stderr(), "\n{line}\n");
}

/// The path of the first of `names` found on `PATH`; when none is, [`not_checked`] names
/// the check (`what`) and how to install the tool (`install`), and this returns `None`.
#[track_caller]
pub fn tool(names: &[&str], what: &str, install: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        not_checked(
            what,
            &format!("{} not found on PATH ({install})", names.join(" or ")),
        );
    }
    found
}
