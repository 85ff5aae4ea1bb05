//! mhio against the real kernel, in network namespaces joined by veth (root only).
//!
//! Each node is a namespace `nemo-mhio-<test>-<node>-<pid>-<n>` ([`tests::Netns`]), removed
//! by its Drop even when the test fails. Sockets are opened on a thread that has `setns(2)`-ed into the node's
//! namespace (a socket stays in the namespace it was created in) and then used from the
//! test's runtime. ICMP errors are counted in the node's `/proc/net/snmp6`.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::process::Command;
use std::time::Duration;

use mhio::{Error, NftGuard, ProxyNd, RawSender, Receiver};
use proto::ext::{ChecksumSource, MobilityPacketRepr};
use proto::mh::{BaFlags, BaStatus, BindingAck, BindingUpdate, BuFlags, MhRepr};
use proto::option::{MobilityOption, ParseConfig};
use proto::seq::{Lifetime, SequenceNumber};
use tokio::runtime::Handle;
use tokio::time::timeout;

use tests::{Netns, require_root, run};

const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xa);
const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xb);
const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x100);
/// How long to wait for a packet, or for an ICMP error that should not come.
const WAIT: Duration = Duration::from_millis(300);

/// What these tests need of a node beyond [`tests::Netns`].
trait Node {
    /// Runs `f` on a thread inside this namespace, with the runtime `rt` entered (so
    /// sockets made there register with it).
    fn enter<T: Send>(&self, rt: &Handle, f: impl FnOnce() -> T + Send) -> T;
    /// ICMPv6 counters from /proc/net/snmp6.
    fn icmp6(&self) -> BTreeMap<String, u64>;
    /// (Parameter Problems, all ICMPv6 error messages) sent so far. `Icmp6OutErrors` is
    /// not it: it counts ICMPv6 messages that failed to go out.
    fn errors(&self) -> (u64, u64);
}

impl Node for Netns {
    fn enter<T: Send>(&self, rt: &Handle, f: impl FnOnce() -> T + Send) -> T {
        self.within(|| {
            let _rt = rt.enter();
            f()
        })
    }

    fn icmp6(&self) -> BTreeMap<String, u64> {
        self.sh("cat /proc/net/snmp6")
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let (k, v) = (it.next()?, it.next()?);
                let n = v.parse().ok()?;
                k.starts_with("Icmp6Out").then(|| (k.to_owned(), n))
            })
            .collect()
    }

    fn errors(&self) -> (u64, u64) {
        let c = self.icmp6();
        let all = [
            "Icmp6OutDestUnreachs",
            "Icmp6OutPktTooBigs",
            "Icmp6OutTimeExcds",
            "Icmp6OutParmProblems",
        ]
        .iter()
        .map(|k| c[*k])
        .sum();
        (c["Icmp6OutParmProblems"], all)
    }
}

/// Mobile router (care-of address COA on `va`) and home agent (HA on `vb`) on one link.
fn pair(test: &str) -> (Netns, Netns) {
    let mr = Netns::new(&format!("mhio-{test}-mr"));
    let ha = Netns::new(&format!("mhio-{test}-ha"));
    run(
        "ip",
        &[
            "link",
            "add",
            "va",
            "netns",
            mr.name(),
            "type",
            "veth",
            "peer",
            "name",
            "vb",
            "netns",
            ha.name(),
        ],
    );
    mr.sh(&format!(
        "ip addr add {COA}/64 dev va nodad && ip link set va up"
    ));
    ha.sh(&format!(
        "ip addr add {HA}/64 dev vb nodad && ip link set vb up"
    ));
    // Resolve neighbours once so the first measured packet is not delayed by ND.
    mr.sh(&format!("ping -c1 -i0.2 -w5 {HA} >/dev/null"));
    (mr, ha)
}

fn binding_update(seq: u16) -> Vec<u8> {
    let bu = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(seq),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(100),
        options: vec![MobilityOption::AlternateCareOfAddress(COA)],
    });
    let mut buf = vec![0; bu.buffer_len()];
    bu.emit_to(&mut buf).unwrap();
    buf
}

fn binding_ack(seq: u16) -> Vec<u8> {
    let ba = MhRepr::BindingAck(BindingAck {
        status: BaStatus::Accepted,
        flags: BaFlags::R,
        sequence: SequenceNumber(seq),
        lifetime: Lifetime(100),
        options: vec![],
    });
    let mut buf = vec![0; ba.buffer_len()];
    ba.emit_to(&mut buf).unwrap();
    buf
}

/// Sends `mh` with `repr` from `tx`, receives it on `rx`, checks what arrived and returns
/// the MH; also checks that `rx_node` counted `expect_errors` more ICMPv6 Parameter Problems.
async fn exchange(
    tx: &RawSender,
    rx: &mut Receiver,
    rx_node: &Netns,
    repr: MobilityPacketRepr,
    mh: &[u8],
    expect_errors: u64,
) -> Vec<u8> {
    let (pp0, err0) = rx_node.errors();
    tx.send_mobility(&repr, mh).await.expect("send");
    let got = timeout(WAIT, rx.recv())
        .await
        .expect("nothing received on AF_PACKET")
        .expect("receive");
    assert_eq!(got.packet.src_addr, repr.src_addr);
    assert!(got.packet.hop_limit <= repr.hop_limit);
    assert_eq!(got.packet.dst_addr, repr.dst_addr);
    assert_eq!(got.packet.home_address, repr.home_address);
    assert_eq!(got.packet.rh2_home_address, repr.rh2_home_address);
    let expected_source = if repr.home_address.is_some() {
        ChecksumSource::HomeAddress
    } else {
        ChecksumSource::OnWireSource
    };
    assert_eq!(got.checksum, expected_source);
    let mh_got = got.packet.payload.to_vec();
    // Let any ICMP error the kernel would send go out before counting.
    tokio::time::sleep(WAIT).await;
    let (pp1, err1) = rx_node.errors();
    assert_eq!(
        (pp1 - pp0, err1 - err0),
        (expect_errors, expect_errors),
        "ICMPv6 Parameter Problems / errors sent by {}",
        rx_node.name()
    );
    mh_got
}

fn seq_of(mh: &[u8]) -> u16 {
    match MhRepr::parse_bytes(mh, ParseConfig::default()).unwrap() {
        MhRepr::BindingUpdate(bu) => bu.sequence.0,
        MhRepr::BindingAck(ba) => ba.sequence.0,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bu_with_hao_reaches_the_ha_without_icmp_errors_only_with_the_guard() {
    require_root();
    let rt = Handle::current();
    let (mr, ha) = pair("hao");
    let tx = mr.enter(&rt, || RawSender::new(Some("va"))).unwrap();
    let mut mr_rx = mr.enter(&rt, || Receiver::new(None)).unwrap();
    let mut rx = ha.enter(&rt, || Receiver::new(Some("vb"))).unwrap();
    assert!(matches!(
        ha.enter(&rt, || Receiver::new(Some("nonexistent0"))),
        Err(Error::NoSuchInterface { .. })
    ));
    let repr = MobilityPacketRepr {
        src_addr: COA,
        dst_addr: HA,
        hop_limit: 64,
        home_address: Some(HOA),
        rh2_home_address: None,
    };

    // Ordinary traffic does not pass the filter.
    mr.sh(&format!("ping -c1 -W1 {HA} >/dev/null"));

    // Without the guard the kernel drops the BU and answers with a Parameter Problem
    // (code 2, unrecognized option), though AF_PACKET still sees it.
    let mh = exchange(&tx, &mut rx, &ha, repr, &binding_update(1), 1).await;
    assert_eq!(seq_of(&mh), 1);

    // With the guard: none.
    let guard = ha.enter(&rt, || NftGuard::install("had")).unwrap();
    for seq in 2..5 {
        let mh = exchange(&tx, &mut rx, &ha, repr, &binding_update(seq), 0).await;
        assert_eq!(seq_of(&mh), seq);
    }
    // The kernel runs the BPF filter: after ordinary traffic the first frame is the BU
    // (Destination Options header first), not the echo request.
    mr.sh(&format!("ping -c2 -i0.2 -W1 {HA} >/dev/null"));
    tx.send_mobility(&repr, &binding_update(5)).await.unwrap();
    let frame = timeout(WAIT, rx.recv_frame()).await.unwrap().unwrap();
    assert_eq!(
        frame.bytes[6], 60,
        "first frame is not the BU: {:?}",
        frame.bytes
    );
    assert_eq!(
        frame.ifindex,
        ha.enter(&rt, || mhio::if_index("vb")).unwrap()
    );
    let counters = ha.sh("nft list table inet nemo-had");
    assert!(counters.contains("packets 4 "), "{counters}");
    ha.enter(&rt, || guard.remove()).unwrap();

    // The MR's own receiver saw neither its outgoing BUs nor the ICMP error.
    assert!(timeout(WAIT, mr_rx.recv_frame()).await.is_err());

    // Send errors name the destination.
    let nowhere: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
    let err = tx
        .send_mobility(
            &MobilityPacketRepr {
                dst_addr: nowhere,
                ..repr
            },
            &binding_update(9),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { dst, .. } if dst == nowhere),
        "{err}"
    );
    assert!(err.to_string().contains("2001:db8:ffff::1"));
    // Not an IPv6 packet, or a Payload Length that disagrees with the buffer.
    assert!(matches!(
        tx.send_packet(&[0x60; 10]).await,
        Err(Error::Packet(_))
    ));
    let mut short = vec![0u8; 48];
    short[0] = 0x60;
    short[5] = 16;
    assert!(matches!(
        tx.send_packet(&short).await,
        Err(Error::Packet(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ba_with_rh2_reaches_the_mr_without_icmp_errors_only_with_the_guard() {
    require_root();
    let rt = Handle::current();
    let (mr, ha) = pair("rh2");
    let tx = ha.enter(&rt, || RawSender::new(Some("vb"))).unwrap();
    let mut rx = mr.enter(&rt, || Receiver::new(None)).unwrap();
    let repr = MobilityPacketRepr {
        src_addr: HA,
        dst_addr: COA,
        hop_limit: 64,
        home_address: None,
        rh2_home_address: Some(HOA),
    };
    // Parameter Problem code 0 (erroneous header field) without the guard.
    let mh = exchange(&tx, &mut rx, &mr, repr, &binding_ack(7), 1).await;
    assert_eq!(seq_of(&mh), 7);
    let guard = mr.enter(&rt, || NftGuard::install("mrd")).unwrap();
    let mh = exchange(&tx, &mut rx, &mr, repr, &binding_ack(8), 0).await;
    assert_eq!(seq_of(&mh), 8);
    mr.enter(&rt, move || drop(guard));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_mh_draws_unrecognized_next_header_unless_guarded() {
    require_root();
    let rt = Handle::current();
    let (mr, ha) = pair("plain");
    let tx = mr.enter(&rt, || RawSender::new(Some("va"))).unwrap();
    let mut rx = ha.enter(&rt, || Receiver::new(Some("vb"))).unwrap();
    // An MR at home: source = HoA-like on-link address, no HAO.
    let repr = MobilityPacketRepr {
        src_addr: COA,
        dst_addr: HA,
        hop_limit: 64,
        home_address: None,
        rh2_home_address: None,
    };
    // No raw 135 socket anywhere: Parameter Problem code 1 (unrecognized Next Header).
    exchange(&tx, &mut rx, &ha, repr, &binding_update(1), 1).await;

    // The alternative (not used by the daemons): a raw 135 socket bound on the HA takes the
    // kernel's copy, so no error either; but then every MH is delivered twice.
    let raw135 = ha
        .enter(&rt, || {
            socket2::Socket::new(
                socket2::Domain::IPV6,
                socket2::Type::RAW,
                Some(socket2::Protocol::from(135)),
            )
        })
        .unwrap();
    exchange(&tx, &mut rx, &ha, repr, &binding_update(2), 0).await;
    drop(raw135);

    // The guard drops every MH to a local address after the AF_PACKET tap.
    let guard = ha.enter(&rt, || NftGuard::install("had")).unwrap();
    exchange(&tx, &mut rx, &ha, repr, &binding_update(3), 0).await;
    ha.enter(&rt, move || drop(guard));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_replaces_a_stale_table_and_is_removed_on_drop() {
    require_root();
    let rt = Handle::current();
    let node = Netns::new("mhio-guard-ha");
    let tables = || node.sh("nft list tables");
    // A crashed earlier run: its guard never ran Drop.
    node.enter(&rt, || std::mem::forget(NftGuard::install("had").unwrap()));
    assert!(tables().contains("table inet nemo-had"));
    let guard = node.enter(&rt, || NftGuard::install("had")).unwrap();
    assert_eq!(guard.table(), "nemo-had");
    assert_eq!(tables().matches("nemo-had").count(), 1);
    let ruleset = node.sh("nft list table inet nemo-had");
    assert_eq!(ruleset.matches(" drop ").count(), 2, "{ruleset}");
    // Another daemon's table is separate.
    let other = node.enter(&rt, || NftGuard::install("mrd")).unwrap();
    node.enter(&rt, move || drop(guard));
    let left = tables();
    assert!(!left.contains("nemo-had"), "{left}");
    assert!(left.contains("nemo-mrd"), "{left}");
    node.enter(&rt, move || other.remove()).unwrap();
    assert!(!tables().contains("nemo-"));
    // Removing what is already gone is success.
    node.enter(&rt, || NftGuard::remove_stale("had")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_nd_defends_the_hoa_on_the_home_link() {
    require_root();
    let rt = Handle::current();
    let ha = Netns::new("mhio-pnd-ha");
    let node = Netns::new("mhio-pnd-cn");
    run(
        "ip",
        &[
            "link",
            "add",
            "hh",
            "netns",
            ha.name(),
            "type",
            "veth",
            "peer",
            "name",
            "hn",
            "netns",
            node.name(),
        ],
    );
    let home_hoa = "2001:db8:10::100";
    ha.sh("ip link set hh address 02:00:00:00:00:01 && ip addr add 2001:db8:10::1/64 dev hh nodad && ip link set hh up");
    node.sh("ip addr add 2001:db8:10::2/64 dev hn nodad && ip link set hn up");
    node.sh("ping -c1 -i0.2 -w5 2001:db8:10::1 >/dev/null");
    // Until addrconf has finished on a freshly-up link the receiver drops multicast with
    // "no route" (Ip6InNoRoutes), unsolicited NAs included: wait for DAD to end on both.
    for (ns, dev) in [(&ha, "hh"), (&node, "hn")] {
        wait_for(|| {
            ns.sh(&format!("ip -6 addr show dev {dev} tentative"))
                .trim()
                .is_empty()
                .then_some(())
        })
        .await
        .expect("DAD did not finish");
    }
    let hoa: Ipv6Addr = home_hoa.parse().unwrap();

    // A neighbour still believes the MR's own MAC is the HoA's.
    node.sh(&format!(
        "ip -6 neigh replace {home_hoa} lladdr 02:00:00:00:00:99 dev hn nud stale"
    ));
    let pnd = ha.enter(&rt, || rt.block_on(ProxyNd::new("hh"))).unwrap();
    assert_eq!(pnd.mac(), [2, 0, 0, 0, 0, 1]);
    assert_eq!(ha.sh("sysctl -n net.ipv6.conf.hh.proxy_ndp").trim(), "1");
    assert_eq!(ha.sh("sysctl -n net.ipv6.neigh.hh.proxy_delay").trim(), "0");
    pnd.add(hoa, true).await.unwrap();
    assert!(ha.sh("ip -6 neigh show proxy").contains(home_hoa));

    // The unsolicited NA (Override, Router) moved the neighbour's entry to the HA.
    let entry = wait_for(|| {
        let e = node.sh(&format!("ip -6 neigh show {home_hoa} dev hn"));
        e.contains("02:00:00:00:00:01").then_some(e)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the unsolicited NA did not update the neighbour cache: {} / {}",
            node.sh("ip -6 neigh show dev hn; ip -6 addr show dev hn"),
            ha.sh("ip -6 addr show dev hh")
        )
    });
    assert!(entry.contains("router"), "{entry}");

    // A fresh Neighbour Solicitation is answered by the kernel's proxy.
    node.sh(&format!("ip -6 neigh flush {home_hoa} dev hn"));
    let _ = Command::new("ip")
        .args(["netns", "exec", node.name(), "ping", "-c1", "-W1", home_hoa])
        .output();
    wait_for(|| {
        node.sh(&format!("ip -6 neigh show {home_hoa} dev hn"))
            .contains("02:00:00:00:00:01")
            .then_some(())
    })
    .await
    .expect("the proxy did not answer the NS");
    let entry = node.sh(&format!("ip -6 neigh show {home_hoa} dev hn"));
    assert!(
        entry.contains("router"),
        "NTF_ROUTER on the proxy entry: {entry}"
    );

    pnd.remove(hoa).await.unwrap();
    assert!(!ha.sh("ip -6 neigh show proxy").contains(home_hoa));
    // Already gone is success.
    pnd.remove(hoa).await.unwrap();
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..80 {
        if let Some(v) = f() {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_on_a_router_lets_transit_mh_through() {
    require_root();
    let rt = Handle::current();
    // MR -- R -- HA: R is, say, a parent mobile router or the HA of another MR; its guard
    // must only drop MH addressed to R itself (nested mobility, RFC 3963 §1).
    let mr = Netns::new("mhio-transit-mr");
    let r = Netns::new("mhio-transit-r");
    let ha = Netns::new("mhio-transit-ha");
    let far_ha = Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 2);
    run(
        "ip",
        &[
            "link",
            "add",
            "va",
            "netns",
            mr.name(),
            "type",
            "veth",
            "peer",
            "name",
            "vb",
            "netns",
            r.name(),
        ],
    );
    run(
        "ip",
        &[
            "link",
            "add",
            "vc",
            "netns",
            r.name(),
            "type",
            "veth",
            "peer",
            "name",
            "vd",
            "netns",
            ha.name(),
        ],
    );
    mr.sh(&format!(
        "ip addr add {COA}/64 dev va nodad && ip link set va up && ip -6 route add default via {HA}"
    ));
    r.sh(&format!(
        "sysctl -qw net.ipv6.conf.all.forwarding=1 && ip addr add {HA}/64 dev vb nodad && \
         ip addr add 2001:db8:3::1/64 dev vc nodad && ip link set vb up && ip link set vc up"
    ));
    ha.sh(&format!(
        "ip addr add {far_ha}/64 dev vd nodad && ip link set vd up && \
         ip -6 route add default via 2001:db8:3::1"
    ));
    mr.sh(&format!("ping -c1 -i0.2 -w5 {far_ha} >/dev/null"));

    let tx = mr.enter(&rt, || RawSender::new(Some("va"))).unwrap();
    let mut rx = ha.enter(&rt, || Receiver::new(Some("vd"))).unwrap();
    let r_guard = r.enter(&rt, || NftGuard::install("mrd")).unwrap();
    let ha_guard = ha.enter(&rt, || NftGuard::install("had")).unwrap();
    let repr = MobilityPacketRepr {
        src_addr: COA,
        dst_addr: far_ha,
        hop_limit: 64,
        home_address: Some(HOA),
        rh2_home_address: None,
    };
    let (r_pp0, r_all0) = r.errors();
    let mh = exchange(&tx, &mut rx, &ha, repr, &binding_update(11), 0).await;
    assert_eq!(seq_of(&mh), 11);
    assert_eq!(r.errors(), (r_pp0, r_all0), "the router sent ICMPv6 errors");
    let r_rules = r.sh("nft list table inet nemo-mrd");
    assert_eq!(r_rules.matches("packets 0 ").count(), 2, "{r_rules}");
    r.enter(&rt, move || drop(r_guard));
    ha.enter(&rt, move || drop(ha_guard));
}
