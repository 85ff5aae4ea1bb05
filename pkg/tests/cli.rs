//! The `nemo-pkg` binary as an operator (or a packaging script) runs it. Besides what it
//! checks, this test makes cargo build the binary, which the workspace's Debian-package
//! test (tests/deb.rs) starts.

use std::fs;
use std::process::Command;

fn nemo_pkg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nemo-pkg"))
}

#[test]
fn man_writes_one_page_per_program_from_its_own_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = nemo_pkg().arg("man").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6 man pages");
    for page in [
        "had.8",
        "mrd.8",
        "mnd.8",
        "babymdd.8",
        "nemonetd.8",
        "mipsock.1",
    ] {
        let text = fs::read_to_string(dir.path().join(page)).unwrap();
        let name = page.split('.').next().unwrap();
        assert!(text.starts_with(".ie"), "{page} is roff: {text:.80}");
        assert!(text.contains(".TH"), "{page} has a title line");
        assert!(text.contains(name), "{page} names its program");
    }
    // had's page carries an option had's --help documents.
    let had = fs::read_to_string(dir.path().join("had.8")).unwrap();
    assert!(had.contains("metrics"), "had.8 documents --metrics");
}

#[test]
fn completions_complete_each_programs_options() {
    let dir = tempfile::tempdir().unwrap();
    let out = nemo_pkg()
        .arg("completions")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for prog in ["had", "mrd", "mnd", "babymdd", "nemonetd", "mipsock"] {
        let text = fs::read_to_string(dir.path().join(prog)).unwrap();
        assert!(text.contains("complete -F"), "{prog}: a bash completion");
        assert!(text.contains("--help"), "{prog}: completes --help");
    }
}

#[test]
fn deb_without_the_binaries_names_what_is_missing_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-binaries");
    fs::create_dir_all(&empty).unwrap();
    let out = nemo_pkg()
        .args(["deb", "--arch", "amd64", "--out"])
        .arg(dir.path().join("out"))
        .arg("--bin-dir")
        .arg(&empty)
        .arg("--etc")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../etc"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("nemo-pkg: "), "{err}");
    assert!(
        err.contains("no-binaries"),
        "the error names the directory: {err}"
    );
}

#[test]
fn a_missing_subcommand_is_a_usage_error() {
    let out = nemo_pkg().output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
