//! The real `had` and `mrd` in network namespaces: dual-stack home registration end to end.
//!
//! ```text
//!   mr (mrd)                   ar (router)                    ha (had)
//!   mip0: HoA 2001:db8:1::100
//!   eth0 2001:db8:a::5/64 ---- foreign 2001:db8:a::1/64
//!                              home    2001:db8:1::fe/64 ---- eth0 2001:db8:1::1/64 (home link)
//!                              atk     2001:db8:b::1/64 ----- eth0 2001:db8:b::6/64  atk (forger)
//! ```
//!
//! Configurations come from the samples in `etc/` (same addresses), with the test's paths;
//! had's home agent address and home prefix are left out so it takes them from `eth0`
//! (SHISA's way). One mipsock bus directory per node. Shown:
//! * an injected MD_INFO REREG registers one IPv6 and one IPv4 MNP: had's binding cache and
//!   mrd's binding update list (`mipsock state`) hold both prefix lists; the MR has a
//!   link-local address with the home address's interface identifier, so its BU carries L
//!   and had defends that link-local address too (RFC 6275 §11.7.1, §10.4.1);
//! * on the foreign link (tcpdump, decoded by tshark) the BU carries the HAO, the R flag,
//!   the MNP option and an IPv4 Home Address option with P=1, and the BA status 0 with an
//!   IPv4 Address Acknowledgement 0;
//! * a BU forged from a third namespace with the right SPI and a wrong key gets 146
//!   (MIPV6-AUTH-FAIL), one with an unknown SPI gets nothing (RFC 4285: dropped), and the
//!   binding does not change;
//! * SIGHUP with a broken configuration: both daemons report it and keep running, bindings
//!   intact;
//! * `kill -9 had` and a restart keep the binding (state, and BC_ADD re-announced);
//! * SIGTERM: mrd deregisters and exits 0, had exits 0, both guard tables are gone;
//! * no ICMPv6 error counted in any namespace, none on the wire.

use std::net::Ipv6Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipnet::{Ipv4Net, Ipv6Net};
use mipsock::{Binding, CareOf, MdCommand, MdHint, MdInfo, StateItem};
use proto::mh::MhRepr;
use proto::option::ParseConfig;
use tests::setup::{Files, files, log_of, mipsock_state, spawn_ready};
use tests::{Daemon, Netns, bin, require_root, veth, wait_until};

const HA: &str = "2001:db8:1::1";
const HOA: &str = "2001:db8:1::100";
const COA: &str = "2001:db8:a::5";
const FORGER_COA: &str = "2001:db8:b::6";
const MNP6: &str = "2001:db8:100::/48";
const MNP4: &str = "192.0.2.16/28";
/// The SPI of HOA's SA in etc/auth-database.
const SPI: u32 = 1000;

const LONG: Duration = Duration::from_secs(30);

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The four namespaces, linked and routed.
struct Lab {
    ha: Netns,
    ar: Netns,
    mr: Netns,
    atk: Netns,
}

fn lab() -> Lab {
    let lab = Lab {
        ha: Netns::new("reg-ha"),
        ar: Netns::new("reg-ar"),
        mr: Netns::new("reg-mr"),
        atk: Netns::new("reg-atk"),
    };
    for ns in [&lab.ha, &lab.ar, &lab.mr, &lab.atk] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&lab.ha, "eth0", &lab.ar, "home");
    veth(&lab.mr, "eth0", &lab.ar, "foreign");
    veth(&lab.atk, "eth0", &lab.ar, "atk");
    // The mobile interface, SHISA's mip0, holding the home address (the kernel here has no
    // dummy interfaces: a veth pair inside the namespace).
    lab.mr.ip(&[
        "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
    ]);
    lab.mr.ip(&["link", "set", "mip0", "up"]);
    lab.mr.ip(&["link", "set", "mip0p", "up"]);
    let a = |ns: &Netns, a: &str, dev: &str| ns.ip(&["addr", "add", a, "dev", dev, "nodad"]);
    a(&lab.ha, "2001:db8:1::1/64", "eth0");
    a(&lab.ar, "2001:db8:1::fe/64", "home");
    a(&lab.ar, "2001:db8:a::1/64", "foreign");
    a(&lab.ar, "2001:db8:b::1/64", "atk");
    a(&lab.mr, "2001:db8:a::5/64", "eth0");
    a(&lab.mr, "2001:db8:1::100/128", "mip0");
    // A link-local address with the home address's interface identifier: mrd sets L
    // (RFC 6275 §11.7.1) and had defends fe80::100 on the home link too.
    a(&lab.mr, "fe80::100/64", "mip0");
    a(&lab.atk, "2001:db8:b::6/64", "eth0");
    lab.ar.sysctl("net.ipv6.conf.all.forwarding", "1");
    lab.ha
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:1::fe"]);
    lab.mr
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:a::1"]);
    lab.atk
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:b::1"]);
    // Paths work before any daemon starts (and neighbours are resolved).
    for (ns, dst) in [(&lab.mr, HA), (&lab.atk, HA)] {
        assert!(
            wait_until(LONG, || ns
                .try_exec("ping", &["-6", "-c", "1", "-W", "1", dst])
                .status
                .success()),
            "no route from {} to {dst}",
            ns.name()
        );
    }
    lab
}

fn start_had(lab: &Lab, f: &Files, log: &str) -> Daemon {
    let mut cmd = lab.ha.command(&bin("had"));
    cmd.args(["-d", "-f", "-c"])
        .arg(&f.had_conf)
        .arg("-b")
        .arg(&f.ha_bus)
        .arg("eth0");
    spawn_ready("had", cmd, &f.dir.path().join(log), "had ready", LONG)
}

fn start_mrd(lab: &Lab, f: &Files) -> Daemon {
    let mut cmd = lab.mr.command(&bin("mrd"));
    cmd.args(["-d", "-f", "-c"])
        .arg(&f.mrd_conf)
        .arg("-b")
        .arg(&f.mr_bus)
        .arg("mip0");
    spawn_ready("mrd", cmd, &f.dir.path().join("mrd.log"), "mrd ready", LONG)
}

/// `mipsock state --json` on a bus: (owner, item) pairs.
fn state(bus: &Path) -> Vec<(String, StateItem)> {
    let out = mipsock_state(bus, &["--timeout-ms", "2000", "--expect", "1"]);
    assert!(out.status.success(), "mipsock state: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["owner"].as_str().unwrap_or_default().to_string(),
                serde_json::from_value(v["item"].clone()).unwrap(),
            )
        })
        .collect()
}

/// had's binding of HOA (`StateItem::Bc`).
fn bc(f: &Files) -> Option<Binding> {
    state(&f.ha_bus).into_iter().find_map(|(o, i)| match i {
        StateItem::Bc(b) if o == "had" && b.hoa == addr(HOA) => Some(b),
        _ => None,
    })
}

/// mrd's binding update list entry (`StateItem::Bul`).
fn bul(f: &Files) -> Option<Binding> {
    state(&f.mr_bus).into_iter().find_map(|(o, i)| match i {
        StateItem::Bul(b) if o == "mrd" && b.hoa == addr(HOA) => Some(b),
        _ => None,
    })
}

fn registered(b: &Binding) -> bool {
    let mnp6: Ipv6Net = MNP6.parse().unwrap();
    let mnp4: Ipv4Net = MNP4.parse().unwrap();
    b.coa == CareOf::V6(addr(COA)) && b.mnp_v6 == [mnp6] && b.mnp_v4 == [mnp4]
}

/// ICMPv6 errors sent by a namespace (and failed ICMPv6 sends), from /proc/net/snmp6.
fn icmp_errors(ns: &Netns) -> u64 {
    [
        "Icmp6OutErrors",
        "Icmp6OutDestUnreachs",
        "Icmp6OutPktTooBigs",
        "Icmp6OutTimeExcds",
        "Icmp6OutParmProblems",
    ]
    .iter()
    .map(|c| ns.snmp6(c))
    .sum()
}

/// A Binding Update for HOA from the forger's address, signed with `(spi, key)`: built by
/// mrd's core, so everything but the key is right.
fn forged_bu(spi: u32, key: &[u8]) -> Vec<u8> {
    let mut c = mrd::MrCoreConfig::new(addr(HOA), addr(HA));
    c.mnp_v6 = vec![MNP6.parse().unwrap()];
    c.mnp_v4 = vec![MNP4.parse().unwrap()];
    c.security = Some(mrd::MobilitySa {
        spi,
        key: key.to_vec(),
        nai: None,
        hoa: None,
        replay: Default::default(),
    });
    let mut mr = mrd::MrCore::new(c).unwrap();
    let now = Instant::now();
    mr.set_wall_clock(now, SystemTime::now().duration_since(UNIX_EPOCH).unwrap());
    mr.handle_md_info(
        now,
        &MdInfo {
            command: MdCommand::Rereg,
            hint: MdHint::Addr,
            hoa: Some(addr(HOA)),
            coa: Some(CareOf::V6(addr(FORGER_COA))),
            coa2: None,
            ifindex: 2,
            uplinks: Vec::new(),
        },
    );
    mr.poll_transmit().expect("a BU").to_packet()
}

/// Runs in `ns` (a thread joined to it with setns): guard, receiver, sender; sends each
/// forged BU and returns the status of the BA that answered it within its wait, if any.
fn forge(ns: &Netns, attempts: Vec<(u32, &'static [u8], Duration)>) -> Vec<Option<u8>> {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // The forger's kernel must not answer the BA's RH2 with an ICMP error either.
            let _guard = mhio::NftGuard::install("forger").unwrap();
            let mut rx = mhio::Receiver::new(None).unwrap();
            let tx = mhio::RawSender::new(None).unwrap();
            let mut out = Vec::new();
            for (spi, key, wait) in attempts {
                tx.send_packet(&forged_bu(spi, key)).await.unwrap();
                let answer = tokio::time::timeout(wait, async {
                    loop {
                        let r = rx.recv().await.unwrap();
                        if let Ok(MhRepr::BindingAck(ba)) =
                            MhRepr::parse_bytes(r.packet.payload, ParseConfig::new())
                        {
                            return u8::from(ba.status);
                        }
                    }
                })
                .await;
                out.push(answer.ok());
            }
            out
        })
    })
    .join()
    .unwrap()
}

/// tshark's decode of the Mobility Header packets of a capture: one map field → values
/// per packet.
fn mh_packets(pcap: &Path) -> Vec<std::collections::BTreeMap<String, Vec<String>>> {
    let fields = [
        "ipv6.src",
        "ipv6.dst",
        "ipv6.opt.mipv6.home_address",
        "ipv6.routing.mipv6.home_address",
        "mip6.mhtype",
        "mip6.bu.lifetime",
        "mip6.bu.h_flag",
        "mip6.bu.l_flag",
        "mip6.nemo.bu.r_flag",
        "mip6.nemo.mnp.mnp",
        "mip6.nemo.mnp.pfl",
        "mip6.ipv4ha.p_flag",
        "mip6.ipv4ha.ha",
        "mip6.ipv4ha.preflen",
        "mip6.auth.mobility_spi",
        "mip6.ba.status",
        "mip6.ipv4aa.sts",
        "icmpv6.type",
    ];
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap).args(["-T", "json"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark (apt-get install tshark)");
    assert!(out.status.success(), "tshark: {out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["_source"]["layers"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let vals = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect();
                    (k.clone(), vals)
                })
                .collect()
        })
        .collect()
}

fn one(p: &std::collections::BTreeMap<String, Vec<String>>, field: &str) -> String {
    p.get(field)
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default()
}

#[test]
fn dual_stack_registration_forgery_restart_no_icmp_errors() {
    require_root();
    let lab = lab();
    let f = files(&[]);
    let all = [&lab.ha, &lab.ar, &lab.mr, &lab.atk];
    let icmp_before: Vec<u64> = all.iter().map(|ns| icmp_errors(ns)).collect();

    // Capture on the foreign link from the start.
    let pcap = f.dir.path().join("foreign.pcap");
    let dump_log = f.dir.path().join("tcpdump.log");
    let mut cmd = lab.mr.command(Path::new("tcpdump"));
    cmd.args(["-i", "eth0", "-n", "-U", "-w"])
        .arg(&pcap)
        .arg("ip6");
    let mut tcpdump = Daemon::spawn("tcpdump", cmd, &dump_log);
    assert!(
        wait_until(LONG, || log_of(&dump_log).contains("listening on")),
        "tcpdump did not start (apt-get install tcpdump): {}",
        log_of(&dump_log)
    );

    let mut had = start_had(&lab, &f, "had.log");
    let mut mrd = start_mrd(&lab, &f);
    let had_log = f.dir.path().join("had.log");
    let mrd_log = f.dir.path().join("mrd.log");
    let logs = || {
        format!(
            "--- had.log\n{}\n--- mrd.log\n{}",
            log_of(&had_log),
            log_of(&mrd_log)
        )
    };

    // babymdd's part: MD_INFO REREG with the CoA on eth0.
    let ifindex =
        String::from_utf8_lossy(&lab.mr.exec("cat", &["/sys/class/net/eth0/ifindex"]).stdout)
            .trim()
            .to_string();
    let out = Command::new(bin("mipsock"))
        .arg("-b")
        .arg(&f.mr_bus)
        .args([
            "inject",
            "md-info",
            "--command",
            "rereg",
            "--hoa",
            HOA,
            "--coa",
            COA,
            "--ifindex",
            &ifindex,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "mipsock inject: {out:?}");

    // Both sides hold both prefix lists.
    assert!(
        wait_until(LONG, || bc(&f).is_some_and(|b| registered(&b))),
        "had's binding cache: {:?}\n{}",
        state(&f.ha_bus),
        logs()
    );
    assert!(
        wait_until(LONG, || bul(&f).is_some_and(|b| registered(&b))),
        "mrd's binding update list: {:?}\n{}",
        state(&f.mr_bus),
        logs()
    );
    let before_forgery = bc(&f).unwrap();
    assert_eq!(before_forgery.ha, addr(HA), "HA address from eth0");
    // The home address is defended on the home link, by had itself (tests/proxy_nd.rs
    // checks the answers on the wire), its link-local form too (L); no kernel proxy entry.
    let defended = log_of(&had_log)
        .lines()
        .find(|l| l.contains("defended on the home link") && l.contains(HOA))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        defended.contains("fe80::100"),
        "L: the link-local address defended too: {defended:?}"
    );
    let proxies = lab.ha.ip_text(&["-6", "neigh", "show", "proxy"]);
    assert!(!proxies.contains(HOA), "kernel proxy entries: {proxies}");

    // Forgeries from a third namespace: the right SPI with a wrong key is refused with
    // 146; an unknown SPI is dropped without an answer (RFC 4285 §4).
    let answers = forge(
        &lab.atk,
        vec![
            (SPI, b"not-the-shared-key", LONG),
            (4242, b"whatever-key-4242", Duration::from_secs(3)),
        ],
    );
    assert_eq!(answers, vec![Some(146), None], "{}", logs());
    let after = bc(&f).expect("binding still there");
    assert_eq!(after.coa, before_forgery.coa, "forgery moved the binding");
    assert_eq!(after.mnp_v6, before_forgery.mnp_v6);
    assert_eq!(after.mnp_v4, before_forgery.mnp_v4);
    assert!(log_of(&had_log).contains("MIPV6-AUTH-FAIL"), "{}", logs());

    // SIGHUP with a broken configuration: reported, the running one kept, binding intact;
    // with the good one again: unchanged.
    for (daemon, conf, log, bus_has) in [
        (
            &had,
            &f.had_conf,
            &had_log,
            &bc as &dyn Fn(&Files) -> Option<Binding>,
        ),
        (&mrd, &f.mrd_conf, &mrd_log, &bul),
    ] {
        let good = std::fs::read_to_string(conf).unwrap();
        std::fs::write(
            conf,
            format!(
                "{good}
no-such-key 1;
"
            ),
        )
        .unwrap();
        daemon.signal("HUP");
        assert!(
            wait_until(LONG, || log_of(log).contains("configuration not reloaded")),
            "{}: {}",
            daemon.name(),
            log_of(log)
        );
        std::fs::write(conf, &good).unwrap();
        daemon.signal("HUP");
        assert!(
            wait_until(LONG, || log_of(log).contains("configuration unchanged")),
            "{}: {}",
            daemon.name(),
            log_of(log)
        );
        assert!(bus_has(&f).is_some_and(|b| registered(&b)), "{}", logs());
    }

    // kill -9 had, restart: the binding comes back from the journal and is re-announced.
    had.signal("KILL");
    had.wait_exit(LONG);
    let tap_log = f.dir.path().join("tap.log");
    let mut cmd = Command::new(bin("mipsock"));
    cmd.arg("-b")
        .arg(&f.ha_bus)
        .args(["tap", "--json", "--type", "bc_add"]);
    let _tap = Daemon::spawn("tap", cmd, &tap_log);
    assert!(
        wait_until(LONG, || log_of(&tap_log).contains("ready")),
        "tap: {}",
        log_of(&tap_log)
    );
    let mut had = start_had(&lab, &f, "had-restarted.log");
    let had2_log = f.dir.path().join("had-restarted.log");
    assert!(
        log_of(&had2_log).contains("binding restored"),
        "{}",
        log_of(&had2_log)
    );
    assert!(
        wait_until(LONG, || bc(&f).is_some_and(|b| registered(&b))),
        "binding lost over kill -9: {:?}\n{}",
        state(&f.ha_bus),
        log_of(&had2_log)
    );
    assert!(
        wait_until(LONG, || log_of(&tap_log).contains(HOA)),
        "no BC_ADD re-announced: {}",
        log_of(&tap_log)
    );

    // SIGTERM: mrd deregisters (had's cache empties), both exit 0, guards are gone.
    mrd.signal("TERM");
    assert_eq!(mrd.wait_exit(LONG), Some(0), "{}", log_of(&mrd_log));
    assert!(
        log_of(&mrd_log).contains("deregistration acknowledged"),
        "{}",
        log_of(&mrd_log)
    );
    assert!(
        wait_until(LONG, || bc(&f).is_none()),
        "binding still in had after mrd's deregistration"
    );
    had.signal("TERM");
    assert_eq!(had.wait_exit(LONG), Some(0), "{}", log_of(&had2_log));
    for ns in [&lab.ha, &lab.mr] {
        let tables =
            String::from_utf8_lossy(&ns.exec("nft", &["list", "tables"]).stdout).into_owned();
        assert!(!tables.contains("nemo-"), "{}: {tables}", ns.name());
    }

    // The wire, as tshark reads it.
    tcpdump.signal("TERM");
    tcpdump.wait_exit(LONG);
    let packets = mh_packets(&pcap);
    let bus: Vec<_> = packets
        .iter()
        .filter(|p| one(p, "mip6.mhtype") == "5" && one(p, "mip6.bu.lifetime") != "0")
        .collect();
    let bu = bus.first().expect("a registration BU on the foreign link");
    assert_eq!(one(bu, "ipv6.src"), COA);
    assert_eq!(one(bu, "ipv6.dst"), HA);
    assert_eq!(one(bu, "ipv6.opt.mipv6.home_address"), HOA, "HAO");
    assert_eq!(one(bu, "mip6.bu.h_flag"), "1");
    assert_eq!(one(bu, "mip6.bu.l_flag"), "1", "L flag");
    assert_eq!(one(bu, "mip6.nemo.bu.r_flag"), "1", "R flag");
    assert_eq!(one(bu, "mip6.nemo.mnp.mnp"), "2001:db8:100::", "MNP option");
    assert_eq!(one(bu, "mip6.nemo.mnp.pfl"), "48");
    assert_eq!(one(bu, "mip6.ipv4ha.p_flag"), "1", "IPv4 HoA option P=1");
    assert_eq!(one(bu, "mip6.ipv4ha.ha"), "192.0.2.16");
    assert_eq!(one(bu, "mip6.ipv4ha.preflen"), "28");
    assert_eq!(one(bu, "mip6.auth.mobility_spi"), SPI.to_string());
    let ba = packets
        .iter()
        .find(|p| one(p, "mip6.mhtype") == "6")
        .expect("a BA on the foreign link");
    assert_eq!(one(ba, "ipv6.src"), HA);
    assert_eq!(one(ba, "ipv6.dst"), COA);
    assert_eq!(one(ba, "ipv6.routing.mipv6.home_address"), HOA, "RH2");
    assert_eq!(one(ba, "mip6.ba.status"), "0");
    assert_eq!(
        one(ba, "mip6.ipv4aa.sts"),
        "0",
        "IPv4 Address Acknowledgement"
    );
    let icmp_errors_on_wire: Vec<_> = packets
        .iter()
        .filter(|p| {
            one(p, "icmpv6.type")
                .parse::<u8>()
                .is_ok_and(|t| (1..=4).contains(&t))
        })
        .collect();
    assert!(
        icmp_errors_on_wire.is_empty(),
        "ICMPv6 errors on the foreign link: {icmp_errors_on_wire:?}"
    );

    let icmp_after: Vec<u64> = all.iter().map(|ns| icmp_errors(ns)).collect();
    assert_eq!(
        icmp_before, icmp_after,
        "ICMPv6 errors sent (ha, ar, mr, atk)"
    );
}

/// A broken configuration stops either daemon before it touches the network: exit status
/// 78 (EX_CONFIG) and the file, line and what was expected on stderr.
#[test]
fn broken_configuration_exits_78_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (daemon, ifname, text) in [
        (
            "had",
            "eth0",
            "interface eth0 {\n\thome-prefix 2001:db8:1::/64;\n\tbinding-lifetime-max 100\n};\n",
        ),
        (
            "mrd",
            "mip0",
            "interface mip0 {\n\thome-adress 2001:db8:1::100;\n};\n",
        ),
    ] {
        let conf = dir.path().join(format!("{daemon}.conf"));
        std::fs::write(&conf, text).unwrap();
        let out = Command::new(bin(daemon))
            .arg("-c")
            .arg(&conf)
            .arg("-b")
            .arg(dir.path())
            .arg(ifname)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{daemon}: {stderr}");
        let line = format!("{daemon}.conf:{}:", if daemon == "had" { 4 } else { 2 });
        assert!(stderr.contains(&line), "{daemon}: {stderr}");
    }
}

/// `had --check` and `mrd --check` (like `nginx -t`): the samples pass with a summary and
/// exit 0; a broken file exits 78 naming the file and line; nothing is touched (no
/// journal written, nothing on the bus, no nftables table), and no root is needed for it.
#[test]
fn check_flags_validate_the_configuration_and_touch_nothing() {
    let f = files(&[]);
    let journal = f.dir.path().join("had.journal");
    for (daemon, conf, ifname) in [("had", &f.had_conf, "lo"), ("mrd", &f.mrd_conf, "mip0")] {
        let out = Command::new(bin(daemon))
            .args(["--check", "-c"])
            .arg(conf)
            .arg("-b")
            .arg(f.dir.path().join("no-such-bus"))
            .arg(ifname)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // had's sample leaves the home agent address and prefixes to the interface, which
        // `lo` does not have: had refuses; mrd's sample is complete.
        if daemon == "mrd" {
            assert_eq!(out.status.code(), Some(0), "{daemon}: {stdout}{stderr}");
            assert!(stdout.contains("configuration OK"), "{stdout}");
        } else {
            assert_eq!(out.status.code(), Some(78), "{daemon}: {stdout}{stderr}");
        }
        let broken = f.dir.path().join(format!("{daemon}-broken.conf"));
        let text = std::fs::read_to_string(conf).unwrap();
        std::fs::write(&broken, format!("{text}\nno-such-key 1;\n")).unwrap();
        let out = Command::new(bin(daemon))
            .args(["--check", "-c"])
            .arg(&broken)
            .arg(ifname)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{daemon}: {stderr}");
        assert!(
            stderr.contains(&format!("{daemon}-broken.conf:")) && stderr.contains("no-such-key"),
            "{daemon}: {stderr}"
        );
    }
    // With the home agent address and prefix given, had's sample passes too.
    let text = std::fs::read_to_string(&f.had_conf).unwrap();
    let full = f.dir.path().join("had-full.conf");
    std::fs::write(
        &full,
        text.replacen(
            "interface eth0 {\n",
            "interface eth0 {\n\thome-agent-address 2001:db8:1::1;\n\thome-prefix 2001:db8:1::/64;\n",
            1,
        ),
    )
    .unwrap();
    let out = Command::new(bin("had"))
        .args(["--check", "-c"])
        .arg(&full)
        .arg("eth0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 mobility SAs"), "{stdout}");
    assert!(!journal.exists(), "--check wrote the journal");
    assert!(
        !f.dir.path().join("no-such-bus").exists(),
        "--check made a bus"
    );
}
