//! The systemd units in etc/systemd (issue 16): each one `systemd-analyze verify`s clean
//! with its ExecStart pointed at the binaries built here, and `systemd-analyze security`
//! rates its exposure at most [`MAX_EXPOSURE`] (it was 9.6, "UNSAFE", before the units
//! limited capabilities to what each daemon uses and locked the rest of the system away).
//! Not a run under systemd: this environment has no systemd as init.

use std::process::Command;

use tests::{bin, have, workspace_root};

/// The exposure level each unit must stay at or under (measured 3.0 for all five on
/// 2026-12-03 with systemd 252).
const MAX_EXPOSURE: f64 = 3.5;

const UNITS: [&str; 5] = [
    "had.service",
    "mrd.service",
    "babymdd.service",
    "nemonetd-ha.service",
    "nemonetd-mr.service",
];

/// The unit's text with `/usr/sbin/NAME` replaced by the built binary.
fn with_built_binaries(text: &str) -> String {
    let mut out = text.to_string();
    for name in ["had", "mrd", "babymdd", "nemonetd"] {
        out = out.replace(
            &format!("/usr/sbin/{name} "),
            &format!("{} ", bin(name).display()),
        );
    }
    out
}

#[test]
fn units_verify_and_expose_little() {
    if !have("systemd-analyze") {
        // .ci/run installs it (package systemd); a developer machine without it skips.
        eprintln!("skipped: systemd-analyze not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in UNITS {
        let text = std::fs::read_to_string(workspace_root().join("etc/systemd").join(unit))
            .unwrap_or_else(|e| panic!("{unit}: {e}"));
        assert!(
            text.contains("CapabilityBoundingSet=") && text.contains("RestartPreventExitStatus=78"),
            "{unit}: least privilege and no restart loop on a configuration error"
        );
        let path = dir.path().join(unit);
        std::fs::write(&path, with_built_binaries(&text)).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !said.contains(unit),
            "{unit}: systemd-analyze verify: {said}"
        );
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let level: f64 = text
            .lines()
            .find_map(|l| {
                l.split_once("Overall exposure level for ")?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{unit}: no exposure level in {text}"));
        assert!(
            level <= MAX_EXPOSURE,
            "{unit}: exposure {level} above {MAX_EXPOSURE}:\n{text}"
        );
    }
}
