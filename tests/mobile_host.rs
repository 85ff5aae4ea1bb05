//! A mobile host (SHISA's mnd; RFC 6275 without RFC 3963's R; issue 14), black-box: the
//! real `mnd` with the sample `etc/mnd.conf`, `nemonetd -m` beside it, and the real home
//! agent (`had`, `nemonetd -h`) with the sample configuration.
//!
//! * mnd registers its home address alone: the home agent's binding has no R flag and no
//!   prefixes; the mobile node announces itself as an MN on its bus.
//! * The host's own traffic from its home address reaches a node on the home link through
//!   the tunnel, and the answers come back (the home agent defends the home address).
//! * mnd refuses a configuration with mobile network prefixes (exit 78, the file named).
//!
//! ```text
//!   hl  eth0 2001:db8:1::50 ──── eth0 2001:db8:1::1  ha (had, nemonetd -h)
//!                                up0  2001:db8:a::1 ──── eth0 2001:db8:a::5  mn (mnd, nemonetd -m)
//!                                                        mip0 2001:db8:1::200 (home address)
//! ```

use std::time::Duration;

use tests::setup::{HomeTopology, home_topology};
use tests::setup::{
    binding, files, inject_md_info, log_of, sample, spawn_in, start_home_agent, start_mr_dataplane,
};
use tests::{bin, require_root, wait_until};

const HOA: &str = "2001:db8:1::200";
const COA: &str = "2001:db8:a::5";
const HL: &str = "2001:db8:1::50";

#[test]
fn a_mobile_host_registers_its_home_address_and_reaches_its_home_link() {
    require_root();
    let HomeTopology { ha, hl, mr: mn } =
        home_topology("mh", &format!("{HL}/64"), HOA, &[&format!("{COA}/64")]);
    hl.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"]);
    ha.sysctl("net.ipv6.conf.all.forwarding", "1");

    let f = files(&[]);
    let auth = f.dir.path().join("auth-database").display().to_string();
    let mnd_conf = f.dir.path().join("mnd.conf");
    std::fs::write(
        &mnd_conf,
        sample(
            "mnd.conf",
            &[
                ("/etc/nemo/auth-database", &auth),
                ("egress-interface wlan0 eth1", "egress-interface eth0"),
            ],
            &[],
        ),
    )
    .unwrap();
    let (_had, _nemonetd_ha) = start_home_agent(&ha, &f, "up0");
    let _nemonetd_mn = start_mr_dataplane(&mn, &f);
    let conf = mnd_conf.to_str().unwrap();
    let bus = f.mr_bus.to_str().unwrap();
    let _mnd = spawn_in(
        &mn,
        &f,
        "mnd",
        "mnd",
        &["-d", "-f", "-c", conf, "-b", bus, "mip0"],
        "mnd ready",
    );
    let logs = || {
        ["had", "mnd", "nemonetd-ha", "nemonetd-mr"]
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
    inject_md_info(&f, "rereg", HOA, Some((COA, mn.ifindex("eth0"))));
    let hoa = HOA.parse().unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || binding(
            &f.ha_bus,
            "had",
            Some(hoa)
        )
        .is_some()),
        "no binding at the home agent\n{}",
        logs()
    );
    let b = binding(&f.ha_bus, "had", Some(hoa)).unwrap();
    assert!(
        !b.flags.mobile_router(),
        "a mobile host's binding has no R: {b:?}"
    );
    assert!(b.flags.home_registration(), "{b:?}");
    assert!(b.mnp_v6.is_empty() && b.mnp_v4.is_empty(), "{b:?}");
    assert_eq!(b.coa.to_string(), COA);
    let mn_state = binding(&f.mr_bus, "mnd", Some(hoa));
    assert!(
        mn_state.is_some(),
        "the host's binding update list on its bus\n{}",
        logs()
    );

    // The host's own traffic, from its home address, through the tunnel and back.
    let ok = wait_until(Duration::from_secs(10), || {
        mn.try_exec("ping", &["-6", "-c", "1", "-W", "1", "-I", HOA, HL])
            .status
            .success()
    });
    assert!(
        ok,
        "no ping from the home address to the home link\n{}",
        logs()
    );
    let mnd_log = log_of(&f.dir.path().join("mnd.log"));
    assert!(mnd_log.contains("a mobile host"), "{mnd_log}");

    // mnd with a mobile router's configuration: refused, the file named.
    let out = mn
        .command(&bin("mnd"))
        .args(["--check", "-c"])
        .arg(f.mrd_conf.to_str().unwrap())
        .arg("mip0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mrd.conf") && err.contains("run mrd for a mobile router"),
        "{err}"
    );
}

/// SHISA's rc setting picks the daemon: `ipv6_mobile_nodetype=mobile_node` runs mnd (with
/// mnd.conf), the default mrd; anything else is a configuration error (78).
#[test]
fn the_rc_script_runs_mnd_for_a_mobile_node() {
    let script = tests::workspace_root().join("etc/rc.d/nemo_mr");
    let status = |nodetype: Option<&str>| {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg(&script)
            .arg("status")
            .env("nemo_defaults", "/dev/null")
            .env("nemo_rundir", "/nonexistent/nemo-test");
        if let Some(t) = nodetype {
            cmd.env("ipv6_mobile_nodetype", t);
        }
        cmd.output().unwrap()
    };
    let out = status(Some("mobile_node"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mnd not running") && !text.contains("mrd"),
        "{text}"
    );
    let text = String::from_utf8_lossy(&status(None).stdout).to_string();
    assert!(
        text.contains("mrd not running") && !text.contains("mnd"),
        "{text}"
    );
    let out = status(Some("boat"));
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'boat'"));
}
