//! Issue 7 item 30, through the binary: what fuzzing found in the state
//! loader stays refused the way a user sees it.
//!
//! Every `fuzz/regressions/state/*` file decodes as a state file but does not
//! hold together (ids out of range, impossible times); before the fix, a
//! watch resumed from one panicked. Now `strictly watch --state FILE` refuses
//! it before contacting any cluster: one line, exit 2, the file untouched.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn state_regressions() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/state");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn issue_7_30_inconsistent_state_files_are_refused() {
    let files = state_regressions();
    assert!(!files.is_empty(), "no state regressions to replay");
    for file in files {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.bin");
        std::fs::copy(&file, &path).unwrap();
        let before = std::fs::read(&path).unwrap();
        let out = Command::cargo_bin("strictly")
            .unwrap()
            .args(["watch", "-n", "istioinaction", "--state"])
            .arg(&path)
            .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", file.display());
        assert!(
            stderr.starts_with("strictly: error: --state ")
                && stderr.contains("corrupt state file"),
            "{}: {stderr}",
            file.display()
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file was changed"
        );
    }
}
