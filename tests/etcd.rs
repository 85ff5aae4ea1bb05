//! had's binding cache in etcd (issue 13), with a real etcd (Debian's etcd-server) started
//! by the test in the home agent's namespace, the real had, nemonetd -h and mrd:
//!
//! * a registration is in etcd (one key per binding) before its BA;
//! * after `kill -9` of had, a had started again with its journal gone restores the binding
//!   from etcd, with no new registration from the mobile router;
//! * with etcd gone, a move is not acknowledged and had says why.
//!
//! ```text
//!   hl eth0 ──── eth0 2001:db8:1::1  ha (had --etcd, nemonetd -h, etcd on 127.0.0.1)
//!                up0  2001:db8:a::1 ──── eth0 2001:db8:a::5  mr (mrd)
//! ```

use std::path::Path;
use std::time::Duration;

use tests::setup::{
    HOA, HomeTopology, binding, etcd_member, files, home_topology, inject_md_info, log_of,
    spawn_in, start_home_agent_with, start_mrd,
};
use tests::{Daemon, Netns, require_root, wait_until};

const ETCD: &str = "http://127.0.0.1:23791";

fn etcdctl(ns: &Netns, args: &[&str]) -> String {
    let mut full = vec!["--endpoints", ETCD];
    full.extend_from_slice(args);
    let out = ns.try_exec("etcdctl", &full);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn start_etcd(ns: &Netns, dir: &Path) -> Daemon {
    let peer = "http://127.0.0.1:23801";
    etcd_member(ns, dir, "etcd", ETCD, peer, &format!("etcd={peer}"), true).0
}

#[test]
fn bindings_outlive_had_in_etcd() {
    require_root();
    let HomeTopology { ha, hl: _hl, mr } = home_topology(
        "et",
        "2001:db8:1::50/64",
        HOA,
        &["2001:db8:a::5/64", "2001:db8:a::6/64"],
    );
    let f = files(&[]);
    let mut etcd = start_etcd(&ha, f.dir.path());
    let (mut had, _nemonetd) = start_home_agent_with(&ha, &f, "up0", &["--etcd", ETCD], &[]);
    let _mrd = start_mrd(&mr, &f);
    let logs = || {
        ["had", "mrd", "nemonetd-ha", "etcd"]
            .iter()
            .map(|n| {
                format!(
                    "==== {n}\n{}",
                    log_of(&f.dir.path().join(format!("{n}.log")))
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    inject_md_info(
        &f,
        "rereg",
        HOA,
        Some(("2001:db8:a::5", mr.ifindex("eth0"))),
    );
    let hoa = HOA.parse().unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || binding(
            &f.ha_bus,
            "had",
            Some(hoa)
        )
        .is_some()),
        "no registration\n{}",
        logs()
    );
    let keys = etcdctl(&ha, &["get", "--prefix", "/nemo/had/", "--keys-only"]);
    assert!(
        keys.contains(&format!("/nemo/had/2001:db8:1::1/bc/{HOA}")),
        "the binding is in etcd: {keys}"
    );

    // kill -9, the journal gone: the binding comes back from etcd alone.
    had.signal("KILL");
    had.wait_exit(Duration::from_secs(5));
    std::fs::remove_file(f.dir.path().join("had.journal")).unwrap();
    let bus_args: Vec<String> = vec![
        "-d".into(),
        "-f".into(),
        "-c".into(),
        f.had_conf.to_str().unwrap().into(),
        "-b".into(),
        f.ha_bus.to_str().unwrap().into(),
        "--etcd".into(),
        ETCD.into(),
        "eth0".into(),
    ];
    let args: Vec<&str> = bus_args.iter().map(String::as_str).collect();
    let _had2 = spawn_in(&ha, &f, "had", "had2", &args, "had ready");
    let restored = binding(&f.ha_bus, "had", Some(hoa)).expect("restored from etcd");
    assert_eq!(restored.coa.to_string(), "2001:db8:a::5");
    assert!(
        log_of(&f.dir.path().join("had2.log")).contains("binding cache restored from etcd"),
        "{}",
        log_of(&f.dir.path().join("had2.log"))
    );

    // etcd gone: a move is not acknowledged, and had says why.
    etcd.signal("KILL");
    etcd.wait_exit(Duration::from_secs(5));
    inject_md_info(
        &f,
        "rereg",
        HOA,
        Some(("2001:db8:a::6", mr.ifindex("eth0"))),
    );
    assert!(
        wait_until(Duration::from_secs(10), || log_of(
            &f.dir.path().join("had2.log")
        )
        .contains("not stored in etcd: acknowledgements withheld")),
        "{}",
        log_of(&f.dir.path().join("had2.log"))
    );
    let mrd = log_of(&f.dir.path().join("mrd.log"));
    assert!(
        !mrd.contains("home registration acknowledged hoa=2001:db8:1::100 coa=2001:db8:a::6"),
        "a move acknowledged without the store: {mrd}"
    );
}

/// Three etcd members: losing one changes nothing (a move is acknowledged and stored);
/// losing a second (no quorum) withholds the next acknowledgement while the binding
/// stays.
#[test]
fn one_of_three_etcd_members_lost_changes_nothing() {
    require_root();
    let HomeTopology { ha, hl: _hl, mr } = home_topology(
        "e3",
        "2001:db8:1::50/64",
        HOA,
        &["2001:db8:a::5/64", "2001:db8:a::6/64", "2001:db8:a::7/64"],
    );
    let f = files(&[]);
    let m = |i: u16| {
        (
            format!("e{i}"),
            format!("http://127.0.0.1:{}", 23810 + i),
            format!("http://127.0.0.1:{}", 23820 + i),
        )
    };
    let cluster = (0..3)
        .map(|i| {
            let (n, _, p) = m(i);
            format!("{n}={p}")
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut members: Vec<(Daemon, std::path::PathBuf)> = (0..3)
        .map(|i| {
            let (n, c, p) = m(i);
            etcd_member(&ha, f.dir.path(), &n, &c, &p, &cluster, false)
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || members.iter().all(
            |(_, log)| log_of(log).contains("ready to serve client requests")
        )),
        "the etcd cluster did not form:\n{}",
        members
            .iter()
            .map(|(_, l)| log_of(l))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let endpoints: Vec<String> = (0..3).map(|i| m(i).1).collect();
    let mut had_args = Vec::new();
    for e in &endpoints {
        had_args.push("--etcd");
        had_args.push(e.as_str());
    }
    let (_had, _nemonetd) = start_home_agent_with(&ha, &f, "up0", &had_args, &[]);
    let _mrd = start_mrd(&mr, &f);
    let logs = || {
        ["had", "mrd"]
            .iter()
            .map(|n| {
                format!(
                    "==== {n}\n{}",
                    log_of(&f.dir.path().join(format!("{n}.log")))
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let acked = |coa: &str| {
        log_of(&f.dir.path().join("mrd.log")).lines().any(|l| {
            l.contains("home registration acknowledged") && l.contains(&format!("coa={coa} "))
        })
    };
    let eth0 = mr.ifindex("eth0");
    inject_md_info(&f, "rereg", HOA, Some(("2001:db8:a::5", eth0)));
    assert!(
        wait_until(Duration::from_secs(30), || acked("2001:db8:a::5")),
        "no registration\n{}",
        logs()
    );
    // One member down: nothing changes.
    members[0].0.signal("KILL");
    members[0].0.wait_exit(Duration::from_secs(5));
    inject_md_info(&f, "rereg", HOA, Some(("2001:db8:a::6", eth0)));
    assert!(
        wait_until(Duration::from_secs(15), || acked("2001:db8:a::6")),
        "a move with two of three members was not acknowledged\n{}",
        logs()
    );
    let out = ha.try_exec(
        "etcdctl",
        &[
            "--endpoints",
            &endpoints[1],
            "get",
            "--prefix",
            "/nemo/had/",
        ],
    );
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "the binding is in the surviving members: {out:?}"
    );
    // A second one down: no quorum, no acknowledgement, the binding kept.
    members[1].0.signal("KILL");
    members[1].0.wait_exit(Duration::from_secs(5));
    inject_md_info(&f, "rereg", HOA, Some(("2001:db8:a::7", eth0)));
    assert!(
        wait_until(Duration::from_secs(15), || log_of(
            &f.dir.path().join("had.log")
        )
        .contains("not stored in etcd: acknowledgements withheld")),
        "{}",
        logs()
    );
    assert!(
        !acked("2001:db8:a::7"),
        "acknowledged without a quorum\n{}",
        logs()
    );
    // had stays responsive (it does not wait on the store each time) and keeps the binding.
    assert!(
        wait_until(Duration::from_secs(10), || binding(
            &f.ha_bus,
            "had",
            Some(HOA.parse().unwrap())
        )
        .is_some()),
        "{}",
        logs()
    );
}
