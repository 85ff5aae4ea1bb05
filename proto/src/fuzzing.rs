//! The bodies of proto's fuzz targets (`fuzz/` at the workspace root), kept in the crate so
//! the seed corpora also run as ordinary tests (`tests/fuzz_corpus.rs`) and the two cannot
//! drift apart. Each function panics only on a bug: a parser panic, or a broken invariant.

use crate::encap::{self, DecapOutcome, Decapsulated, Ecn, EncapOutcome, EncapParams};
use crate::ext::{IPV6_HEADER_LEN, Walk, emit_mobility_packet, mobility_packet_len, walk};
use crate::mh::MhRepr;
use crate::option::ParseConfig;
use crate::{IPPROTO_MH, checksum};

/// Feeds `data` to every parser a signalling daemon runs on untrusted input: the IPv6 walker
/// (as from AF_PACKET), the Mobility Header parser with and without SHISA's legacy option,
/// and the checksum check. Whatever parses must re-emit to the same meaning. Panics only on
/// a bug: a parser panic, or a parse/emit/parse round trip that changes the Repr.
pub fn mh_parse(data: &[u8]) {
    // The bytes as a whole IPv6 packet.
    if let Ok(Walk::Mobility(pkt)) = walk(data) {
        let _ = pkt.verify_checksum();
        check_mh(pkt.payload);
    }
    // The bytes as a bare Mobility Header.
    check_mh(data);
}

fn check_mh(mh: &[u8]) {
    for cfg in [
        ParseConfig::default(),
        ParseConfig {
            legacy_ipv4_mnp: true,
        },
    ] {
        let Ok(repr) = MhRepr::parse_bytes(mh, cfg) else {
            continue;
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit_to(&mut buf)
            .expect("a parsed Repr must emit into buffer_len() octets");
        let again = MhRepr::parse_bytes(&buf, cfg).expect("emitted MH must parse");
        assert_eq!(repr, again, "parse(emit(parse(x))) changed the message");
    }
}

/// The signalling packet walker ([`walk`]) on bytes as read from AF_PACKET.
///
/// Invariants: the upper layer it points at lies within the buffer, after the IPv6 header,
/// and is exactly `payload`; a Mobility Header is `(Header Len + 1) * 8` octets. A walked
/// MH, rebuilt with the same addressing by [`emit_mobility_packet`], walks back to the same
/// addressing and MH, and its checksum verifies.
pub fn signalling_walk(data: &[u8]) {
    let Ok(w) = walk(data) else {
        return;
    };
    let p = w.packet();
    let r = p.payload_range.clone();
    assert!(
        IPV6_HEADER_LEN <= r.start && r.start <= r.end && r.end <= data.len(),
        "payload range {r:?} outside a {}-octet buffer",
        data.len()
    );
    assert_eq!(&data[r], p.payload, "payload is not the payload range");
    let _ = p.verify_checksum();
    let Walk::Mobility(p) = w else {
        return;
    };
    assert_eq!(p.upper_layer, IPPROTO_MH);
    let mh = p.payload;
    assert!(
        mh.len() >= 8 && mh.len() == (usize::from(mh[1]) + 1) * 8,
        "a walked MH of {} octets with Header Len {}",
        mh.len(),
        mh[1]
    );
    check_mh(mh);

    // Rebuild the packet as a sender would, and walk it again.
    let repr = p.repr();
    let mut out = vec![0u8; mobility_packet_len(&repr, mh.len())];
    let n = emit_mobility_packet(&repr, mh, &mut out).expect("a walked MH must re-emit");
    assert_eq!(n, out.len());
    let Ok(Walk::Mobility(again)) = walk(&out) else {
        panic!("an emitted mobility packet does not walk to its MH");
    };
    assert_eq!(again.repr(), repr, "addressing changed by emit + walk");
    assert_eq!(again.payload.len(), mh.len());
    assert_eq!(again.payload[..4], mh[..4]);
    assert_eq!(
        again.payload[6..],
        mh[6..],
        "MH changed beyond its checksum"
    );
    again
        .verify_checksum()
        .expect("the checksum emit_mobility_packet fills in must verify");
}

/// Tunnel decapsulation ([`encap::decapsulate`] of a whole outer packet, and
/// [`encap::decapsulate_inner`] / [`encap::forward_inner`] of the bytes as an inner packet).
///
/// Invariants: the inner packet lies within the input and has the length its own header
/// gives; nothing outside it is written, and inside it only the ECN bits (and the IPv4
/// header checksum) change. Re-encapsulating the inner packet in the same outer header and
/// decapsulating again gives the same outer header and the same inner packet.
pub fn decapsulate(data: &[u8]) {
    let mut buf = data.to_vec();
    if let Ok(outcome) = encap::decapsulate(&mut buf) {
        let d = match &outcome {
            DecapOutcome::Forward(d) | DecapOutcome::Drop(d) => d,
        };
        let r = d.inner_range.clone();
        assert!(
            r.start <= r.end && r.end <= data.len(),
            "inner range {r:?} outside a {}-octet buffer",
            data.len()
        );
        assert_eq!(r.len(), d.inner.len, "inner range is not the inner length");
        assert_eq!(buf[..r.start], data[..r.start], "outer header written");
        assert_eq!(
            buf[r.end..],
            data[r.end..],
            "octets after the inner packet written"
        );
        assert_only_ecn_changed(&data[r.clone()], &buf[r.clone()], d);
        if let DecapOutcome::Forward(d) = &outcome {
            reencapsulate(&buf[r], d);
        }
    }

    for bits in 0..4 {
        let mut inner = data.to_vec();
        if let Ok(DecapOutcome::Forward(i) | DecapOutcome::Drop(i)) =
            encap::decapsulate_inner(Ecn::from_bits(bits), &mut inner)
        {
            assert!(i.len <= data.len());
            assert_eq!(
                inner[i.len..],
                data[i.len..],
                "octets after the packet written"
            );
        }
    }
    let mut inner = data.to_vec();
    if let Ok(encap::ForwardOutcome::Forward(i)) = encap::forward_inner(&mut inner, true) {
        assert!(i.len <= data.len());
        assert_eq!(
            inner[i.len..],
            data[i.len..],
            "octets after the packet written"
        );
    }
}

/// Decapsulation may rewrite the inner ECN field and, for IPv4, the header checksum: no
/// other octet.
fn assert_only_ecn_changed(before: &[u8], after: &[u8], d: &Decapsulated) {
    let mut before = before.to_vec();
    let mut after = after.to_vec();
    match encap::IpVersion::of(&after).expect("decapsulated packet has a version") {
        encap::IpVersion::V6 => {
            assert_eq!((after[1] >> 4) & 3, d.inner.ecn.bits());
            before[1] &= 0xcf;
            after[1] &= 0xcf;
        }
        encap::IpVersion::V4 => {
            assert_eq!(after[1] & 3, d.inner.ecn.bits());
            // The incremental update keeps a correct checksum correct.
            let ihl = usize::from(before[0] & 0x0f) * 4;
            if checksum::ipv4_header(&before[..ihl]) == 0 {
                assert_eq!(
                    checksum::ipv4_header(&after[..ihl]),
                    0,
                    "IPv4 checksum broken"
                );
            }
            before[1] &= 0xfc;
            after[1] &= 0xfc;
            before[10..12].fill(0);
            after[10..12].fill(0);
        }
    }
    assert_eq!(
        before, after,
        "decapsulation changed more than the ECN field"
    );
}

fn reencapsulate(inner: &[u8], d: &Decapsulated) {
    let overhead = d.outer.overhead();
    let mut buf = vec![0u8; overhead + inner.len()];
    buf[overhead..].copy_from_slice(inner);
    let params = EncapParams {
        decrement_inner: false,
        ..EncapParams::default()
    };
    let range = match encap::encapsulate(&d.outer, &params, &mut buf, overhead) {
        Ok(EncapOutcome::Encapsulated(range)) => range,
        other => panic!("a decapsulated packet does not encapsulate again: {other:?}"),
    };
    assert_eq!(range, 0..buf.len());
    let again = match encap::decapsulate(&mut buf) {
        Ok(DecapOutcome::Forward(again)) => again,
        other => panic!("a re-encapsulated packet does not decapsulate: {other:?}"),
    };
    assert_eq!(
        again.outer, d.outer,
        "outer header changed by the round trip"
    );
    assert_eq!(
        again.inner, d.inner,
        "inner packet facts changed by the round trip"
    );
    assert_eq!(
        &buf[again.inner_range], inner,
        "inner packet changed by the round trip"
    );
}

/// Every ICMPv6 message a daemon reads from the network (errors, Echo, Neighbor Discovery,
/// DHAAD and Mobile Prefix Discovery) through [`crate::icmpv6::Icmpv6Repr`]: whatever
/// parses re-emits into `buffer_len()` octets and parses back to the same meaning (an
/// error's quote is cut at the minimum MTU, so only the messages that fit compare whole).
/// Panics only on a bug.
pub fn icmpv6_parse(data: &[u8]) {
    use crate::icmpv6::{Icmpv6Packet, Icmpv6Repr, MAX_INVOKING_LEN};
    let Ok(repr) = Icmpv6Repr::parse_bytes(data) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]))
        .expect("a parsed Repr must emit into buffer_len() octets");
    let again = Icmpv6Repr::parse_bytes(&buf).expect("an emitted message must parse");
    let cut = matches!(&repr, Icmpv6Repr::Error(e) if e.invoking.len() > MAX_INVOKING_LEN);
    if !cut {
        assert_eq!(repr, again, "parse(emit(parse(x))) changed the message");
    }
    assert_eq!(repr.msg_type(), again.msg_type());
}

/// RFC 6088's binary traffic selectors and their matcher ([`crate::flow::TrafficSelector`]).
/// The first octet is a TS Format, the second how many of the following octets are the
/// Traffic Selector field; the rest is an inner packet to match.
///
/// Invariants: a selector that parses re-emits into `buffer_len()` octets and parses back to
/// itself, with the alignment its flags give; matching any octets returns; a selector with
/// no field matches exactly the packets of its IP version whose header (and IPv6 payload
/// length) fits in the buffer.
pub fn traffic_selector(data: &[u8]) {
    use crate::ext::{Ipv4Header, Ipv6Header};
    use crate::flow::{Ipv4TrafficSelector, Ipv6TrafficSelector, TrafficSelector};
    let [format, len, rest @ ..] = data else {
        return;
    };
    let (selector, packet) = rest.split_at(usize::from(*len).min(rest.len()));
    if let Ok(ts) = TrafficSelector::parse(*format, selector) {
        let mut buf = vec![0u8; ts.buffer_len()];
        ts.emit(&mut buf)
            .expect("a parsed selector must emit into buffer_len() octets");
        let again = TrafficSelector::parse(*format, &buf).expect("an emitted selector must parse");
        assert_eq!(ts, again, "parse(emit(parse(x))) changed the selector");
        assert!(matches!(ts.alignment(), 1 | 2 | 4 | 8));
        let _ = ts.matches(packet);
    }
    let v4 = Ipv4Header::new_checked(packet).is_ok_and(|h| h.version() == 4);
    let v6 = Ipv6Header::new_checked(packet).is_ok_and(|h| h.version() == 6);
    assert_eq!(Ipv4TrafficSelector::default().matches(packet), v4);
    assert_eq!(Ipv6TrafficSelector::default().matches(packet), v6);
}
