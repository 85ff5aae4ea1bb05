//! The daemons against a stranger on the path (issue 17): the real `had`, `mrd` and
//! `nemonetd -h` / `-m` in namespaces with the sample configurations (`authentication
//! required;`), and an attacker namespace that forges packets with another implementation's
//! bytes (built by `proto`, sent on a raw socket, its addresses spoofed).
//!
//! ```text
//!  mnn ──lan0── mr ──eth0── acc: rt :home ── ha (had, nemonetd -h)
//!  2001:db8:100::2          2001:db8:a::5    2001:db8:1::1 / 203.0.113.1
//!  192.0.2.18/28                 rt :cn ── cn 2001:db8:c::2 / 198.51.100.2
//!                                rt :atk ── atk 2001:db8:b::6 (forger)
//! ```
//!
//! * **Spoofed Binding Errors** (RFC 6275 §11.3.6): while the MNN pings the CN at 200
//!   packets/s in each family, the attacker sends 40 Binding Errors status 1 "from" the
//!   home agent to the MR's care-of address. Nothing from the mobile network leaves the MR
//!   untunnelled (a capture on the access link sees no outer source in the MNPs), the MR
//!   keeps its binding (no BUL_REMOVE, same CoA), the flows lose (almost) nothing, and
//!   mrd sends at most a few authenticated refreshes instead.
//! * **Path MTU with the sample addressing** (the LAN a /64 of the /48 MNP): 1500-octet
//!   pings both ways in both families. The MR's own Packet Too Big to the MNN (source:
//!   its LAN address, inside the MNP) must reach the MNN, not the tunnel.
//! * **A crashed nemonetd on the MR fails closed**: kill -9 while the MNN sends 200
//!   packets/s to the CN in each family, restart as the rc script does: nothing leaves
//!   the MR untunnelled, before, during or after the restart, and the flows come back.
//! * **Ingress filtering on the mobile network** (RFC 3963 §5.5, BCP 38): a host behind
//!   the MR sending from an address outside the mobile network prefixes, or from the
//!   MR's own address, gets nothing out: neither through the tunnel nor natively.
//! * **A flood of BUs for random home addresses** (`authentication none;`): 3,000 BUs
//!   for addresses nothing in the configuration names are refused (129); had's cache
//!   holds only the legitimate router, which still moves its binding right after.
//! * **An NAI-only SA cannot take over another router's home address** (RFC 4285 §5, RFC
//!   3963 §6.1.2): after mr1 (2001:db8:1::100) registers and de-registers, BUs signed with
//!   mr3's SA (`mr3@example.org`, tied to 2001:db8:1::300 in the sample auth-database) for
//!   2001:db8:1::100 get 146 and nothing is routed for mr1's prefixes; the same SA
//!   registers its own 2001:db8:1::300 (the forger is not simply broken).

use std::net::Ipv6Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mipsock::{Binding, CareOf, MdCommand, MdHint, MdInfo};
use proto::ext::{MobilityPacketRepr, emit_mobility_packet, mobility_packet_len};
use proto::mh::{BeStatus, BindingError, BindingUpdate, BuFlags, MhRepr};
use proto::option::MobilityOption;
use proto::option::ParseConfig;
use proto::seq::{Lifetime, SequenceNumber};
use tests::setup::{self, Files, files, log_of};
use tests::{Daemon, Netns, bin, require_root, veth, wait_until};

const HA: &str = "2001:db8:1::1";
const HOA: &str = "2001:db8:1::100";
const HOA3: &str = "2001:db8:1::300";
const COA: &str = "2001:db8:a::5";
const ATK: &str = "2001:db8:b::6";
const CN6: &str = "2001:db8:c::2";
const CN4: &str = "198.51.100.2";
const MNN6: &str = "2001:db8:100::2";
const MNP6: &str = "2001:db8:100::/48";
const MNP4: &str = "192.0.2.16/28";
/// mr3's SA in etc/auth-database: NAI, SPI 0x3ea, its key.
const MR3_NAI: &str = "mr3@example.org";
const MR3_SPI: u32 = 0x3ea;
const MR3_KEY: &[u8] = b"nemo-sample-key3";

const LONG: Duration = Duration::from_secs(30);

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

struct Lab {
    ha: Netns,
    rt: Netns,
    cn: Netns,
    mr: Netns,
    mnn: Netns,
    atk: Netns,
}

fn a(ns: &Netns, addr: &str, dev: &str) {
    ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
}

fn lab(tag: &str) -> Lab {
    let lab = Lab {
        ha: Netns::new(&format!("{tag}-ha")),
        rt: Netns::new(&format!("{tag}-rt")),
        cn: Netns::new(&format!("{tag}-cn")),
        mr: Netns::new(&format!("{tag}-mr")),
        mnn: Netns::new(&format!("{tag}-mnn")),
        atk: Netns::new(&format!("{tag}-atk")),
    };
    for ns in [&lab.ha, &lab.rt, &lab.cn, &lab.mr, &lab.mnn, &lab.atk] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&lab.ha, "eth0", &lab.rt, "home");
    veth(&lab.cn, "eth0", &lab.rt, "cn");
    veth(&lab.mr, "eth0", &lab.rt, "acc");
    veth(&lab.atk, "eth0", &lab.rt, "atk");
    veth(&lab.mnn, "eth0", &lab.mr, "lan0");
    a(&lab.ha, "2001:db8:1::1/64", "eth0");
    a(&lab.ha, "203.0.113.1/24", "eth0");
    a(&lab.rt, "2001:db8:1::fe/64", "home");
    a(&lab.rt, "203.0.113.254/24", "home");
    a(&lab.rt, "2001:db8:c::1/64", "cn");
    a(&lab.rt, "198.51.100.1/24", "cn");
    a(&lab.rt, "2001:db8:a::1/64", "acc");
    a(&lab.rt, "2001:db8:b::1/64", "atk");
    a(&lab.cn, "2001:db8:c::2/64", "eth0");
    a(&lab.cn, "198.51.100.2/24", "eth0");
    a(&lab.atk, "2001:db8:b::6/64", "eth0");
    a(&lab.mr, "2001:db8:a::5/64", "eth0");
    // The sample addressing: the LAN is one /64 of the /48 MNP.
    a(&lab.mr, "2001:db8:100::1/64", "lan0");
    a(&lab.mr, "192.0.2.17/28", "lan0");
    a(&lab.mnn, "2001:db8:100::2/64", "eth0");
    a(&lab.mnn, "192.0.2.18/28", "eth0");
    lab.mr.ip(&[
        "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
    ]);
    lab.mr.ip(&["link", "set", "mip0", "up"]);
    lab.mr.ip(&["link", "set", "mip0p", "up"]);
    a(&lab.mr, &format!("{HOA}/128"), "mip0");
    for ns in [&lab.rt, &lab.ha, &lab.mr] {
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        ns.sysctl("net.ipv4.ip_forward", "1");
    }
    let via = |ns: &Netns, args: &[&str]| {
        ns.ip(args);
    };
    via(
        &lab.ha,
        &["-6", "route", "add", "default", "via", "2001:db8:1::fe"],
    );
    via(
        &lab.ha,
        &["route", "add", "default", "via", "203.0.113.254"],
    );
    via(
        &lab.cn,
        &["-6", "route", "add", "default", "via", "2001:db8:c::1"],
    );
    via(&lab.cn, &["route", "add", "default", "via", "198.51.100.1"]);
    via(
        &lab.mr,
        &["-6", "route", "add", "default", "via", "2001:db8:a::1"],
    );
    via(
        &lab.atk,
        &["-6", "route", "add", "default", "via", "2001:db8:b::1"],
    );
    via(
        &lab.mnn,
        &["-6", "route", "add", "default", "via", "2001:db8:100::1"],
    );
    via(&lab.mnn, &["route", "add", "default", "via", "192.0.2.17"]);
    // The mobile networks are reachable through the HA only.
    via(&lab.rt, &["-6", "route", "add", MNP6, "via", HA]);
    via(
        &lab.rt,
        &["-6", "route", "add", "2001:db8:300::/48", "via", HA],
    );
    via(&lab.rt, &["route", "add", MNP4, "via", "203.0.113.1"]);
    for (ns, dst) in [(&lab.mr, HA), (&lab.atk, HA), (&lab.atk, COA)] {
        assert!(
            wait_until(LONG, || ping(ns, dst)),
            "no route from {} to {dst}",
            ns.name()
        );
    }
    lab
}

fn ping(ns: &Netns, dst: &str) -> bool {
    ns.try_exec("ping", &["-c", "1", "-W", "1", dst])
        .status
        .success()
}

fn spawn(ns: &Netns, f: &Files, name: &str, tag: &str, args: &[&str], ready: &str) -> Daemon {
    setup::spawn_in(ns, f, name, tag, args, ready)
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// had and `nemonetd -h` on the home agent.
fn start_ha(lab: &Lab, f: &Files) -> (Daemon, Daemon) {
    setup::start_home_agent(&lab.ha, f, "eth0")
}

/// mrd and `nemonetd -m` on the mobile router, then babymdd's part: MD_INFO REREG from
/// the care-of address on eth0.
fn start_mr(lab: &Lab, f: &Files) -> (Daemon, Daemon) {
    let nemonetd = setup::start_mr_dataplane(&lab.mr, f);
    let mrd = setup::start_mrd(&lab.mr, f);
    setup::inject_md_info(f, "rereg", HOA, Some((COA, lab.mr.ifindex("eth0"))));
    (mrd, nemonetd)
}

/// The binding `owner` (had: `Bc`, mrd: `Bul`) holds for `hoa`.
fn binding(bus: &Path, owner: &str, hoa: &str) -> Option<Binding> {
    setup::binding(bus, owner, Some(addr(hoa)))
}

fn logs(f: &Files) -> String {
    ["had", "mrd", "nemonetd-ha", "nemonetd-mr"]
        .iter()
        .map(|n| {
            format!(
                "==== {n}\n{}",
                log_of(&f.dir.path().join(format!("{n}.log")))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Binding Error status 1 for HOA "from" the home agent to the MR's care-of address,
/// with a type 2 routing header to the home address as the HA's own signalling has.
fn spoofed_be() -> Vec<u8> {
    let be = MhRepr::BindingError(BindingError {
        status: BeStatus::UnknownBindingForHomeAddressDestinationOption,
        home_address: addr(HOA),
        options: vec![],
    });
    let mut mh = vec![0; be.buffer_len()];
    be.emit_to(&mut mh).unwrap();
    let addressing = MobilityPacketRepr {
        src_addr: addr(HA),
        dst_addr: addr(COA),
        hop_limit: 64,
        home_address: None,
        rh2_home_address: Some(addr(HOA)),
    };
    let mut pkt = vec![0; mobility_packet_len(&addressing, mh.len())];
    let n = emit_mobility_packet(&addressing, &mh, &mut pkt).unwrap();
    pkt.truncate(n);
    pkt
}

/// Sends `packets` from inside `ns` on an IPPROTO_RAW socket, `gap` apart.
fn send_raw(ns: &Netns, packets: Vec<Vec<u8>>, gap: Duration) {
    ns.within(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tx = mhio::RawSender::new(None).unwrap();
            for p in packets {
                tx.send_packet(&p).await.unwrap();
                tokio::time::sleep(gap).await;
            }
        })
    })
}

/// Starts tcpdump on `ns`'s `ifname` writing `filter`'s packets to a pcap.
fn capture(ns: &Netns, f: &Files, ifname: &str, filter: &str) -> (Daemon, std::path::PathBuf) {
    let pcap = f.dir.path().join(format!("{ifname}.pcap"));
    let log = f.dir.path().join(format!("tcpdump-{ifname}.log"));
    let mut cmd = ns.command(Path::new("tcpdump"));
    cmd.args([
        "-i",
        ifname,
        "-U",
        "--immediate-mode",
        "-n",
        "-s",
        "128",
        "-w",
    ])
    .arg(&pcap)
    .arg(filter);
    let d = Daemon::spawn("tcpdump", cmd, &log);
    assert!(
        wait_until(Duration::from_secs(10), || log_of(&log)
            .contains("listening on")),
        "tcpdump did not start (apt-get install tcpdump): {}",
        log_of(&log)
    );
    (d, pcap)
}

/// The packets of a pcap, one summary line each.
fn pcap_lines(pcap: &Path) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(pcap)
        .output()
        .expect("tcpdump -r");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `ping -q` output: (transmitted, received).
fn ping_counts(out: &std::process::Output) -> (u32, u32) {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("ping said: {text}"));
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn spoofed_binding_errors_neither_cut_the_tunnel_nor_leak_the_network() {
    require_root();
    let lab = lab("sec-be");
    let f = files(&[]);
    let (_had, _nemonetd_ha) = start_ha(&lab, &f);
    let (_mrd, _nemonetd_mr) = start_mr(&lab, &f);
    let registered = |b: &Binding| b.coa == CareOf::V6(addr(COA));
    assert!(
        wait_until(LONG, || binding(&f.mr_bus, "mrd", HOA)
            .is_some_and(|b| registered(&b))),
        "no registration\n{}",
        logs(&f)
    );
    for dst in [CN6, CN4] {
        assert!(
            wait_until(LONG, || ping(&lab.mnn, dst)),
            "MNN cannot reach {dst} through the tunnel\n{}",
            logs(&f)
        );
    }
    let mrd_log = f.dir.path().join("mrd.log");
    let bus_before = log_of(&mrd_log).matches("Binding Update sent").count();

    // Anything on the access link whose outer source is in the mobile network left
    // the MR untunnelled.
    let (tcpdump, pcap) = capture(
        &lab.rt,
        &f,
        "acc",
        &format!("(ip6 and src net {MNP6}) or (ip and src net {MNP4})"),
    );
    let flows: Vec<_> = [CN6, CN4]
        .iter()
        .map(|dst| {
            let mut cmd = lab.mnn.command(Path::new("ping"));
            cmd.args(["-q", "-i", "0.005", "-c", "800", "-W", "2", dst]);
            cmd.stdout(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    send_raw(&lab.atk, vec![spoofed_be(); 40], Duration::from_millis(20));
    let results: Vec<_> = flows
        .into_iter()
        .map(|c| ping_counts(&c.wait_with_output().unwrap()))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    drop(tcpdump);

    let leaked = pcap_lines(&pcap);
    assert!(
        leaked.is_empty(),
        "{} packets of the mobile network left untunnelled, first: {:?}\n{}",
        leaked.len(),
        leaked.first(),
        logs(&f)
    );
    let mrd_text = log_of(&mrd_log);
    assert!(
        mrd_text.contains("Binding Error 1"),
        "mrd never saw the Binding Errors\n{}",
        logs(&f)
    );
    assert!(
        !mrd_text.contains("binding update list entry removed"),
        "mrd withdrew its binding\n{}",
        logs(&f)
    );
    assert!(
        binding(&f.mr_bus, "mrd", HOA).is_some_and(|b| registered(&b)),
        "mrd lost its binding\n{}",
        logs(&f)
    );
    assert!(
        binding(&f.ha_bus, "had", HOA).is_some_and(|b| registered(&b)),
        "had lost the binding\n{}",
        logs(&f)
    );
    // 40 BEs over 0.8 s: one refresh per second at most, not one BU per BE.
    let refreshes = mrd_text.matches("Binding Update sent").count() - bus_before;
    assert!(
        refreshes <= 3,
        "{refreshes} BUs for 40 Binding Errors\n{}",
        logs(&f)
    );
    for ((sent, got), dst) in results.iter().zip([CN6, CN4]) {
        eprintln!("flow to {dst}: {got}/{sent} answered");
        assert!(
            *got * 100 >= *sent * 97,
            "flow to {dst}: {got} of {sent} answered\n{}",
            logs(&f)
        );
    }
}

/// `ping -c N -i I -s SIZE DST` from `ns`: (transmitted, received).
fn pings(ns: &Netns, dst: &str, count: &str, interval: &str, size: &str) -> (u32, u32) {
    ping_counts(&ns.try_exec(
        "ping",
        &[
            "-q", "-c", count, "-i", interval, "-s", size, "-W", "2", dst,
        ],
    ))
}

/// Issue 17 defects 3 and 4.
#[test]
fn sample_addressing_pmtu_and_a_crashed_nemonetd_failing_closed() {
    require_root();
    let lab = lab("sec-mtu");
    let f = files(&[]);
    let (_had, _nemonetd_ha) = start_ha(&lab, &f);
    let (_mrd, mut nemonetd_mr) = start_mr(&lab, &f);
    assert!(
        wait_until(LONG, || binding(&f.mr_bus, "mrd", HOA)
            .is_some_and(|b| b.coa == CareOf::V6(addr(COA)))),
        "no registration\n{}",
        logs(&f)
    );
    for dst in [CN6, CN4] {
        assert!(
            wait_until(LONG, || ping(&lab.mnn, dst)),
            "MNN cannot reach {dst} through the tunnel\n{}",
            logs(&f)
        );
    }
    // 1500-octet packets (IPv6: 40 + 8 + 1452; IPv4: 20 + 8 + 1472), both ways. The
    // first ones draw a Packet Too Big / fragmentation needed from the tunnel's entry;
    // the senders then fragment.
    for (from, dst, size) in [
        (&lab.mnn, CN6, "1452"),
        (&lab.cn, MNN6, "1452"),
        (&lab.mnn, CN4, "1472"),
    ] {
        let (sent, got) = pings(from, dst, "8", "0.25", size);
        eprintln!("{} -> {dst}, {size} octets: {got}/{sent}", from.name());
        assert!(
            got >= 5,
            "{} -> {dst} with {size} octets: {got} of {sent} answered\n{}",
            from.name(),
            logs(&f)
        );
    }

    // kill -9 of the MR's nemonetd under a flow, restart: nothing leaves untunnelled.
    let (tcpdump, pcap) = capture(
        &lab.rt,
        &f,
        "acc",
        &format!("(ip6 and src net {MNP6}) or (ip and src net {MNP4})"),
    );
    let flows: Vec<_> = [CN6, CN4]
        .iter()
        .map(|dst| {
            let mut cmd = lab.mnn.command(Path::new("ping"));
            cmd.args(["-q", "-i", "0.005", "-c", "1200", "-W", "1", dst]);
            cmd.stdout(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    nemonetd_mr.signal("KILL");
    nemonetd_mr.wait_exit(LONG);
    std::thread::sleep(Duration::from_millis(1500));
    let mb = s(&f.mr_bus);
    let _restarted = spawn(
        &lab.mr,
        &f,
        "nemonetd",
        "nemonetd-mr-restarted",
        &["-d", "-f", "-m", "-b", &mb, "eth0"],
        " ready",
    );
    let results: Vec<_> = flows
        .into_iter()
        .map(|c| ping_counts(&c.wait_with_output().unwrap()))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    drop(tcpdump);
    let restarted_log = log_of(&f.dir.path().join("nemonetd-mr-restarted.log"));
    let leaked = pcap_lines(&pcap);
    assert!(
        leaked.is_empty(),
        "{} packets of the mobile network left untunnelled, first: {:?}\n{}\n{restarted_log}",
        leaked.len(),
        leaked.first(),
        logs(&f)
    );
    for ((sent, got), dst) in results.iter().zip([CN6, CN4]) {
        eprintln!("flow to {dst} over the crash: {got}/{sent} answered");
    }
    for dst in [CN6, CN4] {
        assert!(
            wait_until(LONG, || ping(&lab.mnn, dst)),
            "MNN cannot reach {dst} after nemonetd's restart\n{restarted_log}"
        );
    }
    // The restart kept the crashed run's rules (still wanted) and rebuilt the routes.
    assert!(restarted_log.contains("route installed"), "{restarted_log}");
}

/// A BU for `hoa` from the attacker's address, signed with mr3's SA and carrying its
/// NAI, built by mrd's core (so everything but the SA's right to `hoa` is right).
fn mr3_bu(hoa: &str, mnp: &str) -> Vec<u8> {
    let mut c = mrd::MrCoreConfig::new(addr(hoa), addr(HA));
    c.mnp_v6 = vec![mnp.parse().unwrap()];
    c.mode = mrd::RegistrationMode::Explicit;
    c.security = Some(mrd::MobilitySa {
        spi: MR3_SPI,
        key: MR3_KEY.to_vec(),
        nai: Some(MR3_NAI.as_bytes().to_vec()),
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
            hoa: Some(addr(hoa)),
            coa: Some(CareOf::V6(addr(ATK))),
            coa2: None,
            ifindex: 2,
            uplinks: Vec::new(),
        },
    );
    mr.poll_transmit().expect("a BU").to_packet()
}

/// In the attacker's namespace: sends each BU and returns the status of the BA that
/// answered it, if one came within 5 s.
fn send_bus(ns: &Netns, bus: Vec<Vec<u8>>) -> Vec<Option<u8>> {
    ns.within(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // The attacker's kernel must not answer the BA's RH2 with an ICMP error.
            let _guard = mhio::NftGuard::install("secatk").unwrap();
            let mut rx = mhio::Receiver::new(None).unwrap();
            let tx = mhio::RawSender::new(None).unwrap();
            let mut out = Vec::new();
            for bu in bus {
                tx.send_packet(&bu).await.unwrap();
                let answer = tokio::time::timeout(Duration::from_secs(5), async {
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
}

#[test]
fn an_nai_only_sa_cannot_take_over_another_routers_home_address() {
    require_root();
    let lab = lab("sec-nai");
    let f = files(&[]);
    let (mut had, _nemonetd_ha) = start_ha(&lab, &f);
    // Routes that carry the prefix somewhere (an ended binding's prefix stays as an
    // `unreachable` route, which routes nothing to anyone).
    let routes = |prefix: &str| {
        lab.ha
            .ip_text(&["-6", "route", "show", "table", "all", "proto", "110"])
            .lines()
            .filter(|l| l.contains(prefix) && !l.starts_with("unreachable"))
            .count()
    };
    // mr1 registers, then leaves (SIGTERM: de-registration).
    let (mut mrd, _nemonetd_mr) = start_mr(&lab, &f);
    assert!(
        wait_until(LONG, || binding(&f.ha_bus, "had", HOA).is_some()),
        "mr1 did not register\n{}",
        logs(&f)
    );
    assert!(
        wait_until(LONG, || routes("2001:db8:100::") > 0),
        "no route for mr1's prefix while it is registered\n{}",
        logs(&f)
    );
    mrd.signal("TERM");
    assert_eq!(mrd.wait_exit(LONG), Some(0), "{}", logs(&f));
    assert!(
        wait_until(LONG, || binding(&f.ha_bus, "had", HOA).is_none()),
        "mr1's binding outlived its de-registration\n{}",
        logs(&f)
    );
    assert!(wait_until(LONG, || routes("2001:db8:100::") == 0));

    // mr3's SA for mr1's free address (twice: the MAC is good, the right is not), then
    // for its own address.
    let answers = send_bus(
        &lab.atk,
        vec![
            mr3_bu(HOA, MNP6),
            mr3_bu(HOA, MNP6),
            mr3_bu(HOA3, "2001:db8:300::/48"),
        ],
    );
    assert_eq!(answers, vec![Some(146), Some(146), Some(0)], "{}", logs(&f));
    assert!(binding(&f.ha_bus, "had", HOA).is_none(), "{}", logs(&f));
    assert!(
        binding(&f.ha_bus, "had", HOA3).is_some(),
        "mr3 could not register its own address\n{}",
        logs(&f)
    );
    assert!(
        wait_until(LONG, || routes("2001:db8:300::") > 0),
        "no route for mr3's own prefix\n{}",
        logs(&f)
    );
    assert_eq!(
        routes("2001:db8:100::"),
        0,
        "mr1's prefix routed to the attacker\n{}",
        logs(&f)
    );
    assert!(
        log_of(&f.dir.path().join("had.log")).contains("MIPV6-AUTH-FAIL"),
        "{}",
        logs(&f)
    );
    had.signal("TERM");
    assert_eq!(had.wait_exit(LONG), Some(0), "{}", logs(&f));
}

/// An unauthenticated home registration for `hoa` from the attacker's address.
fn unauthenticated_bu(hoa: Ipv6Addr, seq: u16) -> Vec<u8> {
    let repr = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(seq),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime::from_secs(400),
        options: vec![MobilityOption::AlternateCareOfAddress(addr(ATK))],
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    let addressing = MobilityPacketRepr {
        src_addr: addr(ATK),
        dst_addr: addr(HA),
        hop_limit: 64,
        home_address: Some(hoa),
        rh2_home_address: None,
    };
    let mut pkt = vec![0; mobility_packet_len(&addressing, mh.len())];
    let n = emit_mobility_packet(&addressing, &mh, &mut pkt).unwrap();
    pkt.truncate(n);
    pkt
}

/// had's bindings, as `mipsock state` lists them.
fn had_bindings(f: &Files) -> Vec<Binding> {
    let out = tests::setup::mipsock_state(&f.ha_bus, &["--timeout-ms", "2000"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == "had")
        .filter_map(|v| match serde_json::from_value(v["item"].clone()).ok()? {
            mipsock::StateItem::Bc(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// Issue 17 defect 6.
#[test]
fn a_flood_of_bus_for_random_home_addresses_fills_nothing() {
    require_root();
    let lab = lab("sec-flood");
    let f = files(&[]);
    // The lab's way of running a home agent without keys.
    let had_conf = std::fs::read_to_string(&f.had_conf).unwrap();
    assert!(had_conf.contains("authentication required;"));
    std::fs::write(
        &f.had_conf,
        had_conf.replace("authentication required;", "authentication none;"),
    )
    .unwrap();
    let (_had, _nemonetd_ha) = start_ha(&lab, &f);
    let (_mrd, _nemonetd_mr) = start_mr(&lab, &f);
    assert!(
        wait_until(LONG, || binding(&f.ha_bus, "had", HOA).is_some()),
        "no registration\n{}",
        logs(&f)
    );
    let flood: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| {
            let hoa = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0xf1, (i >> 16) as u16, i as u16, 1);
            unauthenticated_bu(hoa, 1)
        })
        .collect();
    send_raw(&lab.atk, flood, Duration::ZERO);
    // had still answers: the MR moves to a second care-of address.
    lab.mr
        .ip(&["addr", "add", "2001:db8:a::6/64", "dev", "eth0", "nodad"]);
    let out = Command::new(bin("mipsock"))
        .arg("-b")
        .arg(&f.mr_bus)
        .args(["inject", "md-info", "--command", "rereg", "--hoa", HOA])
        .args(["--coa", "2001:db8:a::6", "--ifindex"])
        .arg(lab.mr.ifindex("eth0").to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "mipsock inject: {out:?}");
    assert!(
        wait_until(LONG, || binding(&f.ha_bus, "had", HOA)
            .is_some_and(|b| b.coa == CareOf::V6(addr("2001:db8:a::6")))),
        "had did not follow the legitimate router after the flood\n{}",
        logs(&f)
    );
    let held = had_bindings(&f);
    assert_eq!(held.len(), 1, "had holds {} bindings", held.len());
    let had_log = log_of(&f.dir.path().join("had.log"));
    // Warned once per power of two (12 for 3,000), not once each (debug lines aside).
    let warned = had_log.matches("named by no prefix table row").count();
    assert!((1..20).contains(&warned), "{warned} warnings\n{had_log}");
}

/// Issue 11 (RFC 3963 §5.5): ingress filtering on the mobile network's link.
#[test]
fn spoofed_sources_from_the_mobile_network_go_nowhere() {
    require_root();
    let lab = lab("sec-ingress");
    let f = files(&[]);
    let (_had, _nemonetd_ha) = start_ha(&lab, &f);
    let (_mrd, _nemonetd_mr) = start_mr(&lab, &f);
    assert!(
        wait_until(LONG, || ping(&lab.mnn, CN6) && ping(&lab.mnn, CN4)),
        "MNN cannot reach the CN through the tunnel\n{}",
        logs(&f)
    );
    // A foreign IPv6 source, a foreign IPv4 source and the MR's own LAN address, each
    // on the MNN's interface (nodad), used as the source of pings to the CN.
    let foreign6 = "2001:db8:dead::2";
    let foreign4 = "203.0.113.77";
    let mr_own = "2001:db8:100::1";
    lab.mnn.ip(&[
        "addr",
        "add",
        &format!("{foreign6}/128"),
        "dev",
        "eth0",
        "nodad",
    ]);
    lab.mnn
        .ip(&["addr", "add", &format!("{foreign4}/32"), "dev", "eth0"]);
    let (tcpdump, pcap) = capture(&lab.rt, &f, "acc", "ip6 or ip");
    let (cn_dump, cn_pcap) = capture(&lab.rt, &f, "cn", "ip6 or ip");
    for (src, dst) in [(foreign6, CN6), (foreign4, CN4)] {
        let out = lab
            .mnn
            .try_exec("ping", &["-c", "3", "-i", "0.2", "-W", "1", "-I", src, dst]);
        assert!(!out.status.success(), "a ping from {src} got an answer");
    }
    // The MR's own address, sent raw from the MNN (its kernel would not use an address
    // that is the MR's): an ICMPv6 Echo Request with the MR's LAN address as source.
    lab.mnn.scapy(
        f.dir.path(),
        "spoof.py",
        &format!(
            "from scapy.all import *\nconf.verb=0\nsend(IPv6(src='{mr_own}', dst='{CN6}')/ICMPv6EchoRequest(id=4242), count=3, inter=0.2)\n"
        ),
        &[],
    );
    // Legitimate traffic still flows.
    assert!(ping(&lab.mnn, CN6) && ping(&lab.mnn, CN4), "{}", logs(&f));
    std::thread::sleep(Duration::from_millis(300));
    drop(tcpdump);
    drop(cn_dump);
    for (where_, lines) in [
        ("uplink", pcap_lines(&pcap)),
        ("CN's link", pcap_lines(&cn_pcap)),
    ] {
        let leaked: Vec<&String> = lines
            .iter()
            .filter(|l| {
                l.contains(foreign6)
                    || l.contains(foreign4)
                    || (l.contains(&format!("{mr_own} >")) && l.contains("id 4242"))
            })
            .collect();
        assert!(
            leaked.is_empty(),
            "spoofed sources got out on the {where_}: {leaked:?}\n{}",
            logs(&f)
        );
    }
}
