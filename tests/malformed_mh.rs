//! The real `had` answers a malformed Mobility Header with an ICMPv6 Parameter Problem
//! (RFC 6275 §9.2), now that its nftables guard keeps the kernel from doing so:
//!
//! ```text
//!   mr (raw sender, tcpdump)                      ha (had, authentication none)
//!   eth0 2001:db8:a::5/64 ------------------------ eth0 2001:db8:1::1/64
//! ```
//!
//! One link, two prefixes, each side with an on-link route to the other's: the care-of
//! address is off the home prefix (had drops a BU whose CoA is another home-prefix address).
//!
//! Two BUs with a Home Address option (so the MH starts at octet 64: IPv6 40 + Destination
//! Options 24), checksums right: Payload Proto 6 must draw code 0 pointer 64, Header Len 0
//! code 0 pointer 65, both to the on-wire source (the CoA), each quoting the BU. A good BU
//! afterwards is still answered with a BA.

use std::net::Ipv6Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use proto::ext::{MobilityPacketRepr, emit_mobility_packet, mobility_packet_len};
use proto::mh::{BindingUpdate, BuFlags, MhRepr};
use proto::seq::{Lifetime, SequenceNumber};
use tests::{Daemon, Netns, bin, require_root, veth, wait_until};

const HA: &str = "2001:db8:1::1";
const COA: &str = "2001:db8:a::5";
const HOA: &str = "2001:db8:1::100";
const LONG: Duration = Duration::from_secs(30);

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A BU with HAO from COA for HOA, its MH changed by `mangle` (then re-checksummed by
/// `emit_mobility_packet`).
fn bu_packet(seq: u16, mangle: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let repr = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(seq),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(100),
        options: vec![proto::option::MobilityOption::AlternateCareOfAddress(addr(
            COA,
        ))],
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    mangle(&mut mh);
    let addressing = MobilityPacketRepr {
        src_addr: addr(COA),
        dst_addr: addr(HA),
        hop_limit: 64,
        home_address: Some(addr(HOA)),
        rh2_home_address: None,
    };
    let mut buf = vec![0; mobility_packet_len(&addressing, mh.len())];
    let n = emit_mobility_packet(&addressing, &mh, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Sends `packets` from inside `ns` on an IPPROTO_RAW socket (a thread joined with setns).
fn send_from(ns: &Netns, packets: Vec<Vec<u8>>) {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tx = mhio::RawSender::new(None).unwrap();
            for p in packets {
                tx.send_packet(&p).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    })
    .join()
    .unwrap();
}

/// (icmpv6 type, code, pointer, outer source, outer destination, quoted Payload Proto) per
/// Parameter Problem sent by the HA in the capture, decoded by tshark. (The MR side runs no
/// guard, so its kernel answers the BA's type 2 routing header with one of its own.)
fn icmp_errors(pcap: &Path) -> Vec<Vec<String>> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args([
            "-Y",
            "icmpv6.type == 4",
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args([
            "-e",
            "icmpv6.type",
            "-e",
            "icmpv6.code",
            "-e",
            "icmpv6.pointer",
        ])
        .args(["-e", "ipv6.src", "-e", "ipv6.dst", "-e", "mip6.proto"])
        .output()
        .expect("tshark (apt-get install tshark)");
    assert!(out.status.success(), "tshark: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            // Addresses repeat for the quoted packet: keep the outer ones.
            l.split('|')
                .map(|f| f.split(',').next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|r| r.get(3).map(String::as_str) == Some(HA))
        .collect()
}

#[test]
fn had_answers_malformed_mh_with_parameter_problem() {
    require_root();
    let ha = Netns::new("pp-ha");
    let mr = Netns::new("pp-mr");
    for ns in [&ha, &mr] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&ha, "eth0", &mr, "eth0");
    ha.ip(&["addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad"]);
    ha.ip(&["-6", "route", "add", "2001:db8:a::/64", "dev", "eth0"]);
    mr.ip(&["addr", "add", &format!("{COA}/64"), "dev", "eth0", "nodad"]);
    mr.ip(&["-6", "route", "add", "2001:db8:1::/64", "dev", "eth0"]);
    assert!(
        wait_until(LONG, || mr
            .try_exec("ping", &["-6", "-c", "1", "-W", "1", HA])
            .status
            .success()),
        "no path to the HA"
    );

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("had.conf");
    std::fs::write(
        &conf,
        format!(
            "interface eth0 {{\n\tbinding-cache-file {};\n\tauthentication none;\n\
             \tprefixtable {{\n\t\t{HOA} 2001:db8:100::/48 implicit;\n\t}};\n}};\n",
            dir.path().join("had.journal").display()
        ),
    )
    .unwrap();
    let bus = dir.path().join("bus");
    std::fs::create_dir(&bus).unwrap();

    let pcap = dir.path().join("mr.pcap");
    let dump_log = dir.path().join("tcpdump.log");
    let mut cmd = mr.command(Path::new("tcpdump"));
    cmd.args(["-i", "eth0", "-n", "-U", "-w"])
        .arg(&pcap)
        .arg("ip6");
    let mut tcpdump = Daemon::spawn("tcpdump", cmd, &dump_log);
    assert!(
        wait_until(LONG, || log_of(&dump_log).contains("listening on")),
        "tcpdump did not start (apt-get install tcpdump): {}",
        log_of(&dump_log)
    );

    let had_log = dir.path().join("had.log");
    let mut cmd = ha.command(&bin("had"));
    cmd.args(["-d", "-f", "-c"])
        .arg(&conf)
        .arg("-b")
        .arg(&bus)
        .arg("eth0");
    let _had = Daemon::spawn("had", cmd, &had_log);
    assert!(
        wait_until(LONG, || log_of(&had_log).contains("had ready")),
        "had did not start:\n{}",
        log_of(&had_log)
    );

    send_from(
        &mr,
        vec![
            bu_packet(1, |mh| mh[0] = 6),
            bu_packet(2, |mh| {
                mh.truncate(8);
                mh[1] = 0;
            }),
            bu_packet(3, |_| {}),
        ],
    );
    assert!(
        wait_until(LONG, || log_of(&had_log).contains("binding acknowledged")),
        "the good BU was not acknowledged:\n{}",
        log_of(&had_log)
    );
    std::thread::sleep(Duration::from_millis(500));
    tcpdump.signal("TERM");
    tcpdump.wait_exit(LONG);

    let errors = icmp_errors(&pcap);
    let row = |pointer: &str, proto: &str| {
        vec![
            "4".to_owned(),
            "0".to_owned(),
            pointer.to_owned(),
            HA.to_owned(),
            COA.to_owned(),
            proto.to_owned(),
        ]
    };
    assert_eq!(
        errors,
        vec![row("64", "6"), row("65", "59")],
        "Parameter Problems on the wire (type, code, pointer, src, dst, quoted Payload Proto)\n{}",
        log_of(&had_log)
    );
}
