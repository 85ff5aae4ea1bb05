use std::sync::Arc;

use mipsock::{Binding, BuFlags, CareOf, Encapsulation as BindingEncap};
use proto::icmpv6::Icmpv6Packet;

use super::*;
use crate::dataplane::peers::Peer;
use crate::routes::Mode;

const HA: &str = "2001:db8:1::1";
const COA: &str = "2001:db8:a::5";
const CN6: &str = "2001:db8:c::2";
const MNN6: &str = "2001:db8:100:1::2";
const CN4: &str = "203.0.113.2";
const MNN4: &str = "198.51.100.2";

fn snapshot(mode: Mode) -> Snapshot {
    let b = Binding {
        hoa: "2001:db8:1::100".parse().unwrap(),
        hoa_v4: None,
        coa: CareOf::V6(COA.parse().unwrap()),
        ha: HA.parse().unwrap(),
        ha_v4: None,
        mnp_v6: vec!["2001:db8:100::/48".parse().unwrap()],
        mnp_v4: vec!["198.51.100.0/24".parse().unwrap()],
        encapsulation: BindingEncap::InIpv6,
        lifetime: 600,
        binding_id: None,
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: false,
        coa_ifindex: None,
        flows: Vec::new(),
        bid_priority: 0,
    };
    Snapshot::build(mode, vec![Arc::new(Peer::new(mode, &b).unwrap())])
}

/// An inner IPv6 packet of `len` octets (UDP), `src` -> `dst`.
fn inner6(src: &str, dst: &str, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[6] = 17;
    p[7] = 63;
    p[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
    p
}

/// An inner IPv4 datagram of `len` octets (UDP), DF as given.
fn inner4(src: &str, dst: &str, len: usize, df: bool) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = if df { 0x40 } else { 0 };
    p[8] = 63;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.parse::<Ipv4Addr>().unwrap().octets());
    p[16..20].copy_from_slice(&dst.parse::<Ipv4Addr>().unwrap().octets());
    p
}

/// The tunnel packet `from` -> `to` around `inner`, as a router quotes it: cut at 1232
/// octets (RFC 4443 §2.4(c)).
fn tunnel(from: &str, to: &str, inner: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(inner.len() as u16).to_be_bytes());
    p[6] = if inner[0] >> 4 == 6 { 41 } else { 4 };
    p[7] = 1;
    p[8..24].copy_from_slice(&from.parse::<Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&to.parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(inner);
    p.truncate(1232);
    p
}

/// The ICMPv6 error a router sends about `invoking`.
fn error(msg_type: Icmpv6Type, code: u8, param: u32, invoking: &[u8]) -> Vec<u8> {
    let repr = Icmpv6Repr::Error(ErrorMessage {
        msg_type,
        code,
        param,
        invoking,
    });
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]))
        .unwrap();
    out
}

#[test]
fn packet_too_big_on_the_tunnel_path_reaches_the_ipv6_sender_with_room_for_the_tunnel() {
    let s = snapshot(Mode::HomeAgent);
    let original = inner6(CN6, MNN6, 1460);
    let icmp = error(
        Icmpv6Type::PacketTooBig,
        0,
        1400,
        &tunnel(HA, COA, &original),
    );
    let Ok(Report::V6 { to, message }) = report(&icmp, &s) else {
        panic!("{:?}", report(&icmp, &s))
    };
    assert_eq!(to, CN6.parse::<Ipv6Addr>().unwrap());
    let Icmpv6Repr::Error(e) = message else {
        panic!("{message:?}")
    };
    assert_eq!(
        (e.msg_type, e.code, e.param),
        (Icmpv6Type::PacketTooBig, 0, 1360)
    );
    // The invoking packet is the original one, as much as the quote kept.
    assert_eq!(e.invoking, &original[..1232 - 40]);
    // Never below the IPv6 minimum MTU.
    let icmp = error(
        Icmpv6Type::PacketTooBig,
        0,
        1300,
        &tunnel(HA, COA, &original),
    );
    let Ok(Report::V6 {
        message: Icmpv6Repr::Error(e),
        ..
    }) = report(&icmp, &s)
    else {
        panic!()
    };
    assert_eq!(e.param, 1280);
}

#[test]
fn other_errors_on_the_tunnel_path_are_address_unreachable() {
    let s = snapshot(Mode::HomeAgent);
    let original = inner6(CN6, MNN6, 200);
    for (t, code) in [
        (Icmpv6Type::TimeExceeded, 0),
        (Icmpv6Type::DestinationUnreachable, 3),
        (Icmpv6Type::ParameterProblem, 0),
    ] {
        let icmp = error(t, code, 0, &tunnel(HA, COA, &original));
        let Ok(Report::V6 {
            to,
            message: Icmpv6Repr::Error(e),
        }) = report(&icmp, &s)
        else {
            panic!("{t:?}")
        };
        assert_eq!(to, CN6.parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            (e.msg_type, e.code),
            (Icmpv6Type::DestinationUnreachable, 3),
            "{t:?}"
        );
        assert_eq!(e.invoking, &original[..]);
    }
}

#[test]
fn ipv4_senders_get_icmpv4_and_fragmentable_datagrams_nothing() {
    let s = snapshot(Mode::HomeAgent);
    let df = inner4(CN4, MNN4, 1460, true);
    let icmp = error(Icmpv6Type::PacketTooBig, 0, 1400, &tunnel(HA, COA, &df));
    let Ok(Report::V4 { to, message }) = report(&icmp, &s) else {
        panic!("{:?}", report(&icmp, &s))
    };
    assert_eq!(to, CN4.parse::<Ipv4Addr>().unwrap());
    assert_eq!((message.msg_type, message.code, message.rest), (3, 4, 1360));
    let may_fragment = inner4(CN4, MNN4, 1460, false);
    let icmp = error(
        Icmpv6Type::PacketTooBig,
        0,
        1400,
        &tunnel(HA, COA, &may_fragment),
    );
    assert_eq!(report(&icmp, &s), Err(NotRelayed::Fragmentable));
    let icmp = error(
        Icmpv6Type::TimeExceeded,
        0,
        0,
        &tunnel(HA, COA, &may_fragment),
    );
    let Ok(Report::V4 { message, .. }) = report(&icmp, &s) else {
        panic!()
    };
    assert_eq!((message.msg_type, message.code), (3, 1));
}

#[test]
fn the_mobile_router_reports_to_its_hosts() {
    // MR side: the tunnel goes from the CoA to the HA; a host of the mobile network sent.
    let s = snapshot(Mode::MobileRouter);
    let original = inner6(MNN6, CN6, 1460);
    let icmp = error(
        Icmpv6Type::PacketTooBig,
        0,
        1400,
        &tunnel(COA, HA, &original),
    );
    let Ok(Report::V6 { to, .. }) = report(&icmp, &s) else {
        panic!("{:?}", report(&icmp, &s))
    };
    assert_eq!(to, MNN6.parse::<Ipv6Addr>().unwrap());
}

#[test]
fn forged_stale_or_unreportable_errors_are_not_relayed() {
    let s = snapshot(Mode::HomeAgent);
    let original = inner6(CN6, MNN6, 200);
    // Another tunnel end than the binding's CoA: forged, or about an old care-of address.
    let icmp = error(
        Icmpv6Type::TimeExceeded,
        0,
        0,
        &tunnel(HA, "2001:db8:b::9", &original),
    );
    assert_eq!(report(&icmp, &s), Err(NotRelayed::NoBinding));
    // An inner destination we do not tunnel for (a third party as "sender").
    let third = inner6("2001:db8:666::1", "2001:db8:777::1", 200);
    let icmp = error(Icmpv6Type::TimeExceeded, 0, 0, &tunnel(HA, COA, &third));
    assert_eq!(report(&icmp, &s), Err(NotRelayed::NoBinding));
    // Not about a tunnel packet (next header 17 after the quoted IPv6 header).
    let mut udp = tunnel(HA, COA, &original);
    udp[6] = 17;
    let icmp = error(Icmpv6Type::TimeExceeded, 0, 0, &udp);
    assert_eq!(report(&icmp, &s), Err(NotRelayed::NotTunnelError));
    // Not an error at all (an Echo Request).
    assert_eq!(
        report(&[128, 0, 0, 0, 0, 1, 0, 1], &s),
        Err(NotRelayed::NotTunnelError)
    );
    // A quote too short for the inner header.
    let short = tunnel(HA, COA, &original[..20]);
    let icmp = error(Icmpv6Type::TimeExceeded, 0, 0, &short);
    assert_eq!(report(&icmp, &s), Err(NotRelayed::Truncated));
    // About an ICMPv6 error the sender sent: no error about an error.
    let mut err = inner6(CN6, MNN6, 200);
    err[6] = 58;
    err[40] = 1;
    let icmp = error(Icmpv6Type::TimeExceeded, 0, 0, &tunnel(HA, COA, &err));
    assert_eq!(report(&icmp, &s), Err(NotRelayed::NotReportable));
    // From a link-scope source.
    let ll = inner6("fe80::1", MNN6, 200);
    let icmp = error(Icmpv6Type::TimeExceeded, 0, 0, &tunnel(HA, COA, &ll));
    assert_eq!(report(&icmp, &s), Err(NotRelayed::NotReportable));
    // Truncated input never panics.
    let icmp = error(
        Icmpv6Type::PacketTooBig,
        0,
        1400,
        &tunnel(HA, COA, &original),
    );
    for n in 0..icmp.len() {
        let _ = report(&icmp[..n], &s);
    }
}

const HA4: &str = "192.0.2.1";
const COA4: &str = "192.0.2.77";

/// The home agent's table with one router registered by an IPv4 care-of address, its
/// tunnel IP in IPv4 or (`udp_port`) UDP.
fn snapshot_v4(udp_port: Option<u16>) -> Snapshot {
    let b = Binding {
        hoa: "2001:db8:1::100".parse().unwrap(),
        hoa_v4: None,
        coa: CareOf::V4 {
            addr: COA4.parse().unwrap(),
            udp_port,
        },
        ha: HA.parse().unwrap(),
        ha_v4: Some(HA4.parse().unwrap()),
        mnp_v6: vec!["2001:db8:100::/48".parse().unwrap()],
        mnp_v4: vec!["198.51.100.0/24".parse().unwrap()],
        encapsulation: match udp_port {
            Some(_) => BindingEncap::UdpIpv4 { ha_port: 4191 },
            None => BindingEncap::InIpv4,
        },
        lifetime: 600,
        binding_id: None,
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: udp_port.is_some(),
        coa_ifindex: None,
        flows: Vec::new(),
        bid_priority: 0,
    };
    let mode = Mode::HomeAgent;
    Snapshot::build(mode, vec![Arc::new(Peer::new(mode, &b).unwrap())])
}

/// The IPv4 tunnel packet `from` -> `to` around `inner` (UDP to `udp_port` when given),
/// quoted by a router after `quote` octets.
fn tunnel4(from: &str, to: &str, udp_port: Option<u16>, inner: &[u8], quote: usize) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    let outer = 20 + udp_port.map_or(0, |_| 8);
    p[2..4].copy_from_slice(&((outer + inner.len()) as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = match (udp_port, inner[0] >> 4) {
        (Some(_), _) => 17,
        (None, 6) => 41,
        (None, _) => 4,
    };
    p[12..16].copy_from_slice(&from.parse::<Ipv4Addr>().unwrap().octets());
    p[16..20].copy_from_slice(&to.parse::<Ipv4Addr>().unwrap().octets());
    if let Some(port) = udp_port {
        p.extend_from_slice(&4191u16.to_be_bytes());
        p.extend_from_slice(&port.to_be_bytes());
        p.extend_from_slice(&((8 + inner.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
    }
    p.extend_from_slice(inner);
    p.truncate(quote);
    p
}

/// The ICMPv4 error a router sends about `invoking`.
fn error4(msg_type: u8, code: u8, mtu: u16, invoking: &[u8]) -> Vec<u8> {
    let e = icmpv4::ErrorMessage {
        msg_type,
        code,
        rest: u32::from(mtu),
        invoking,
    };
    let mut out = vec![0u8; e.buffer_len()];
    e.emit(&mut out).unwrap();
    out
}

fn frag_needed(mtu: u16, invoking: &[u8]) -> Vec<u8> {
    error4(
        icmpv4::DESTINATION_UNREACHABLE,
        icmpv4::CODE_FRAGMENTATION_NEEDED,
        mtu,
        invoking,
    )
}

/// "Fragmentation needed" about an IPv4 tunnel packet reaches the original sender of
/// either family with the MTU left after the outer headers (20, or 28 with UDP), and
/// Time Exceeded as unreachable.
#[test]
fn fragmentation_needed_on_an_ipv4_tunnel_path_reaches_the_sender() {
    for udp_port in [None, Some(1024)] {
        let s = snapshot_v4(udp_port);
        let outer = if udp_port.is_some() { 28 } else { 20 };
        let original = inner4(CN4, MNN4, 1460, true);
        let icmp = frag_needed(1400, &tunnel4(HA4, COA4, udp_port, &original, 548));
        let Ok(Report::V4 { to, message }) = report_v4(&icmp, &s) else {
            panic!("{udp_port:?}: {:?}", report_v4(&icmp, &s))
        };
        assert_eq!(to, CN4.parse::<Ipv4Addr>().unwrap());
        assert_eq!(message.code, icmpv4::CODE_FRAGMENTATION_NEEDED);
        assert_eq!(message.rest, 1400 - outer);
        assert_eq!(message.invoking, &original[..548 - outer as usize]);

        let original = inner6(CN6, MNN6, 1460);
        let icmp = frag_needed(1400, &tunnel4(HA4, COA4, udp_port, &original, 548));
        let Ok(Report::V6 {
            to,
            message: Icmpv6Repr::Error(e),
        }) = report_v4(&icmp, &s)
        else {
            panic!("{:?}", report_v4(&icmp, &s))
        };
        assert_eq!(to, CN6.parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            (e.msg_type, e.param),
            (Icmpv6Type::PacketTooBig, 1400 - outer)
        );

        let icmp = error4(
            icmpv4::TIME_EXCEEDED,
            0,
            0,
            &tunnel4(HA4, COA4, udp_port, &original, 548),
        );
        let Ok(Report::V6 {
            message: Icmpv6Repr::Error(e),
            ..
        }) = report_v4(&icmp, &s)
        else {
            panic!()
        };
        assert_eq!(e.msg_type, Icmpv6Type::DestinationUnreachable);
    }
}

/// A router from before RFC 1191 says MTU 0: the plateau below the tunnel packet's
/// length (RFC 1191 §7) stands in for it.
#[test]
fn a_next_hop_mtu_of_zero_is_the_plateau_below() {
    let s = snapshot_v4(None);
    let original = inner4(CN4, MNN4, 1460, true);
    let icmp = frag_needed(0, &tunnel4(HA4, COA4, None, &original, 548));
    let Ok(Report::V4 { message, .. }) = report_v4(&icmp, &s) else {
        panic!()
    };
    assert_eq!(message.rest, 1006 - 20);
}

/// Nothing is reported from a quote too short to find the inner sender (RFC 792's eight
/// octets), about another tunnel end, about UDP that is no tunnel of ours, or from a
/// message that is no error.
#[test]
fn icmpv4_errors_not_about_our_tunnels_are_not_relayed() {
    let s = snapshot_v4(None);
    let original = inner4(CN4, MNN4, 1460, true);
    let short = frag_needed(1400, &tunnel4(HA4, COA4, None, &original, 28));
    assert_eq!(report_v4(&short, &s), Err(NotRelayed::Truncated));
    let other = frag_needed(1400, &tunnel4(HA4, "192.0.2.99", None, &original, 548));
    assert_eq!(report_v4(&other, &s), Err(NotRelayed::NoBinding));
    let udp = frag_needed(1400, &tunnel4(HA4, COA4, Some(53), &original, 548));
    assert_eq!(report_v4(&udp, &s), Err(NotRelayed::NoBinding));
    let mut echo = frag_needed(1400, &tunnel4(HA4, COA4, None, &original, 548));
    echo[0] = 8;
    assert_eq!(report_v4(&echo, &s), Err(NotRelayed::NotTunnelError));
    for n in [0, 4, 8, 20] {
        let _ = report_v4(&short[..n], &s);
    }
}
