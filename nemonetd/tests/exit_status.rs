//! nemonetd's exit status for a configuration it cannot use: 78 (EX_CONFIG), naming the
//! file and line, like had and mrd (tests/registration.rs
//! `broken_configuration_exits_78_naming_file_and_line`). No namespace, no root: every case
//! stops before nemonetd touches the system.

use std::process::{Command, Output};

fn nemonetd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nemonetd"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn configuration_and_command_line_errors_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().display().to_string();
    let conf = |name: &str, text: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let syntax = conf("syntax.conf", b"tunnel-name nemo0;\nroute-table 100\n");
    let value = conf("value.conf", b"# nemonetd\nudp-port 70000;\n");
    let latin1 = conf("latin1.conf", b"tunnel-name nemo0;\n# caf\xe9\n");
    let missing = dir.path().join("missing.conf").display().to_string();
    let cases: [(&[&str], &str); 6] = [
        (&["-c", &syntax], "syntax.conf:2:14: expected ';'"),
        (
            &["-c", &value],
            "value.conf:2:1: 'udp-port' needs a number up to 65535",
        ),
        (&["-c", &latin1], "latin1.conf:2:6: octet 0xe9 is not UTF-8"),
        (&["-c", &missing], "missing.conf: No such file"),
        (
            &["--tun-name", "a-name-too-long-for-linux"],
            "longer than 15 octets",
        ),
        (
            &["--rule-priority", "4294967295"],
            "rule-priority 4294967295",
        ),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["-f", "-m", "-b", &bus];
        argv.extend_from_slice(args);
        argv.push("eth0");
        let out = nemonetd(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{argv:?}: {stderr}");
        assert!(stderr.contains(expected), "{argv:?}: {stderr}");
    }
}

#[test]
fn a_usage_error_is_clap_s_2() {
    // Neither -m nor -h: the command line cannot even be parsed.
    let out = nemonetd(&["eth0"]);
    assert_eq!(out.status.code(), Some(2));
}
