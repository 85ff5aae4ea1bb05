//! The Debian package (issue 16): `nemo-pkg deb` builds it from the binaries built here;
//! its contents and control fields are checked with `dpkg-deb`, it is unpacked into a
//! scratch directory (the machine's /usr and /etc stay untouched) and the unpacked `had
//! --check` passes on the unpacked sample configuration.

use std::process::Command;

use tests::{bin, have, workspace_root};

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_package_installs_what_an_operator_needs_and_starts_nothing() {
    if !have("dpkg-deb") {
        eprintln!("skipped: dpkg-deb not installed (not a Debian system)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = bin("had").parent().unwrap().to_path_buf();
    let deb = run(
        bin("nemo-pkg").to_str().unwrap(),
        &[
            "deb",
            "--out",
            dir.path().to_str().unwrap(),
            "--bin-dir",
            bin_dir.to_str().unwrap(),
            "--etc",
            workspace_root().join("etc").to_str().unwrap(),
            // Debug binaries: compressing them would take most of a minute.
            "--compression",
            "none",
        ],
    );
    let deb = deb.trim();
    let contents = run("dpkg-deb", &["-c", deb]);
    for path in [
        "./usr/sbin/had",
        "./usr/sbin/mrd",
        "./usr/sbin/mnd",
        "./usr/share/man/man8/mnd.8",
        "./etc/nemo/mnd.conf",
        "./usr/sbin/babymdd",
        "./usr/sbin/nemonetd",
        "./usr/bin/mipsock",
        "./etc/nemo/had.conf",
        "./etc/nemo/mrd.conf",
        "./etc/nemo/auth-database",
        "./etc/nemo/prefixtable.cf",
        "./lib/systemd/system/had.service",
        "./lib/systemd/system/nemonetd-mr.service",
        "./usr/share/nemo/rc.d/nemo_ha",
        "./usr/share/man/man8/had.8",
        "./usr/share/man/man1/mipsock.1",
        "./usr/share/bash-completion/completions/mrd",
    ] {
        assert!(
            contents.contains(path),
            "{path} not in the package:\n{contents}"
        );
    }
    assert!(
        contents.contains("root/root"),
        "files owned by root: {contents}"
    );
    let info = run("dpkg-deb", &["-I", deb]);
    for field in [
        "Package: nemo",
        "Depends: nftables, iproute2",
        "conffiles",
        "postinst",
    ] {
        assert!(
            info.contains(field),
            "{field} not in the control area:\n{info}"
        );
    }
    // The maintainer script creates the state directory and starts nothing.
    let control = dir.path().join("control");
    run("dpkg-deb", &["-e", deb, control.to_str().unwrap()]);
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("/var/lib/nemo"), "{postinst}");
    for forbidden in ["systemctl", "invoke-rc.d", "deb-systemd-invoke", "service "] {
        assert!(
            !postinst.contains(forbidden),
            "postinst starts something: {postinst}"
        );
    }
    // Unpacked into a scratch root: its had checks its sample (paths rewritten into it).
    let root = dir.path().join("root");
    run("dpkg-deb", &["-x", deb, root.to_str().unwrap()]);
    let conf = std::fs::read_to_string(root.join("etc/nemo/had.conf")).unwrap();
    let conf = conf.replace("/etc/nemo/", &format!("{}/etc/nemo/", root.display()));
    let checked = root.join("etc/nemo/had-scratch.conf");
    std::fs::write(&checked, conf).unwrap();
    let out = Command::new(root.join("usr/sbin/had"))
        .args(["--check", "-c", checked.to_str().unwrap(), "eth0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "unpacked had --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configuration OK"),
        "{out:?}"
    );
    // The man page says what --help says.
    let man = std::fs::read_to_string(root.join("usr/share/man/man8/had.8")).unwrap();
    assert!(
        man.contains("\\-\\-check") || man.contains("--check"),
        "{man}"
    );
}
