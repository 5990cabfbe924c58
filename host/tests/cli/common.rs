//! Running the `host` binary from the CLI tests. `HOST_BIN` overrides the binary (the
//! GPU bundle sets it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `host args`; fails the test if it takes more than ten seconds (a blocked open of
/// a FIFO, a read of a device). Returns success and stderr.
pub fn host(args: &[&str]) -> (bool, String) {
    let bin = std::env::var("HOST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_host").into());
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the host binary runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("{args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `host args` fails with one line, `error: ...` containing `expected`, and no panic.
pub fn assert_one_line_error(args: &[&str], expected: &str) {
    let (ok, stderr) = host(args);
    assert!(!ok, "{args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}
