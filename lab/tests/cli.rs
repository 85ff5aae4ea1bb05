//! The command line without a lab: help, and the refusal to run without root.

use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_nemo-lab");

#[test]
fn help_names_the_two_experiments() {
    let out = Command::new(EXE).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("demo") && text.contains("handover"), "{text}");
}

#[test]
fn refuses_to_run_without_root() {
    // As nobody (setpriv from util-linux); skipped where we are not root to begin with or
    // setpriv is missing.
    let root = nix::unistd::Uid::effective().is_root();
    let Ok(out) = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            EXE,
            "demo",
        ])
        .output()
    else {
        eprintln!("setpriv missing: skipped");
        return;
    };
    if !root {
        let out = Command::new(EXE).arg("demo").output().unwrap();
        assert_eq!(out.status.code(), Some(77));
        return;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains("needs root"), "{err}");
}
