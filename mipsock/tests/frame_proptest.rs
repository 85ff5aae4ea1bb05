//! Property tests of the frame decoder: random bytes never panic it, generated messages
//! round-trip, and a valid frame after garbage is still found.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use mipsock::frame::{self, FrameDecoder, FrameError, HEADER_LEN, MAX_FRAME};
use mipsock::{
    Binding, Body, BuFlags, CareOf, DataplaneBackend, DataplaneInfo, Encapsulation, Header,
    MdCommand, MdHint, MdInfo, Message, MhUdpOut, PacketBytes, StateDump, StateItem, UdpFrom,
    Uplink,
};
use proptest::prelude::*;

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn care_of() -> impl Strategy<Value = CareOf> {
    prop_oneof![
        v6().prop_map(CareOf::V6),
        (v4(), any::<Option<u16>>()).prop_map(|(addr, udp_port)| CareOf::V4 { addr, udp_port }),
    ]
}

fn binding() -> impl Strategy<Value = Binding> {
    (
        (
            v6(),
            proptest::option::of(v4()),
            care_of(),
            v6(),
            proptest::option::of(v4()),
        ),
        (
            proptest::collection::vec((v6(), 0u8..=128), 0..4),
            proptest::collection::vec((v4(), 0u8..=32), 0..4),
            prop_oneof![
                Just(Encapsulation::InIpv6),
                Just(Encapsulation::InIpv4),
                any::<u16>().prop_map(|ha_port| Encapsulation::UdpIpv4 { ha_port }),
            ],
        ),
        (
            any::<u32>(),
            any::<Option<u16>>(),
            any::<u16>(),
            any::<bool>(),
            any::<Option<u32>>(),
            any::<u8>(),
        ),
    )
        .prop_map(
            |(
                (hoa, hoa_v4, coa, ha, ha_v4),
                (p6, p4, encapsulation),
                (lifetime, binding_id, flags, nat_detected, coa_ifindex, bid_priority),
            )| Binding {
                hoa,
                hoa_v4,
                coa,
                ha,
                ha_v4,
                mnp_v6: p6
                    .into_iter()
                    .map(|(a, l)| Ipv6Net::new(a, l).unwrap())
                    .collect(),
                mnp_v4: p4
                    .into_iter()
                    .map(|(a, l)| Ipv4Net::new(a, l).unwrap())
                    .collect(),
                encapsulation,
                lifetime,
                binding_id,
                flags: BuFlags(flags),
                nat_detected,
                coa_ifindex,
                flows: Vec::new(),
                bid_priority,
            },
        )
}

fn md_info() -> impl Strategy<Value = MdInfo> {
    (
        prop_oneof![
            Just(MdCommand::Rereg),
            Just(MdCommand::Dereghome),
            Just(MdCommand::Deregforeign),
            Just(MdCommand::Scan)
        ],
        prop_oneof![Just(MdHint::Index), Just(MdHint::Addr), Just(MdHint::Home)],
        proptest::option::of(v6()),
        proptest::option::of(care_of()),
        proptest::option::of(care_of()),
        any::<u32>(),
        proptest::collection::vec(
            (care_of(), any::<u32>(), "[a-z0-9]{0,15}", any::<u32>()),
            0..4,
        ),
    )
        .prop_map(|(command, hint, hoa, coa, coa2, ifindex, ups)| MdInfo {
            command,
            hint,
            hoa,
            coa,
            coa2,
            ifindex,
            uplinks: ups
                .into_iter()
                .map(|(coa, ifindex, ifname, preference)| Uplink {
                    coa,
                    ifindex,
                    ifname,
                    preference,
                })
                .collect(),
        })
}

fn message() -> impl Strategy<Value = Message> {
    let body = prop_oneof![
        binding().prop_map(Body::BcAdd),
        binding().prop_map(Body::BulRemove),
        md_info().prop_map(Body::MdInfo),
        Just(Body::BulFlush),
        Just(Body::StateRequest),
        // MH_UDP_OUT with and without where it leaves from (the field left out then).
        (
            v4(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::option::of((v4(), any::<u32>())),
        )
            .prop_map(|(peer, port, packet, from)| Body::MhUdpOut(MhUdpOut {
                peer: std::net::SocketAddrV4::new(peer, port),
                packet: PacketBytes(packet),
                from: from.map(|(addr, ifindex)| UdpFrom { addr, ifindex }),
            })),
        (
            v6(),
            any::<Option<u16>>(),
            care_of(),
            any::<bool>(),
            any::<Option<(u32, u32)>>(),
        )
            .prop_map(|(hoa, binding_id, coa, path_up, capacity_kbps)| {
                Body::StateDump(StateDump {
                    requester_pid: 1,
                    items: vec![StateItem::Dataplane(DataplaneInfo {
                        hoa,
                        binding_id,
                        coa,
                        backend: DataplaneBackend::Tun,
                        path_up,
                        packets: None,
                        octets: None,
                        capacity_kbps,
                    })],
                })
            }),
        (
            any::<u32>(),
            proptest::collection::vec(binding().prop_map(StateItem::Bul), 0..5)
        )
            .prop_map(|(requester_pid, items)| Body::StateDump(StateDump {
                requester_pid,
                items
            })),
    ];
    (any::<(u32, u32, u32, u64, u64)>(), "[a-z]{0,12}", body).prop_map(
        |((seq, errno, pid, serial, sent_at_ns), sender, body)| Message {
            header: Header {
                seq,
                errno,
                pid,
                sender,
                serial,
                sent_at_ns,
            },
            body,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = frame::decode(&bytes);
        let mut d = FrameDecoder::new();
        d.extend(&bytes);
        while d.next_frame().is_some() {}
        // Whatever is left waits for the rest of one frame, never more.
        prop_assert!(d.buffered() <= MAX_FRAME);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        type_code in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = b"MIPS\x02".to_vec();
        bytes.push(type_code);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
        let _ = frame::decode(&bytes);
    }

    #[test]
    fn flipped_bytes_in_valid_frames_never_panic(
        msg in message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = frame::encode(&msg).unwrap();
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] ^= b;
        }
        let _ = frame::decode(&bytes);
    }

    #[test]
    fn messages_round_trip(msg in message()) {
        let bytes = frame::encode(&msg).unwrap();
        prop_assert_eq!(&frame::decode(&bytes).unwrap(), &msg);
        let json = serde_json::to_string(&msg).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Message>(&json).unwrap(), &msg);
    }

    #[test]
    fn valid_frames_after_garbage_are_found(
        // Garbage without 'M' cannot fake a magic; frames split at random points.
        garbage in proptest::collection::vec(any::<u8>().prop_filter("no M", |b| *b != b'M'), 0..64),
        msgs in proptest::collection::vec(message(), 1..4),
        chunk in 1usize..64,
    ) {
        let mut stream = garbage.clone();
        for m in &msgs {
            stream.extend(frame::encode(m).unwrap());
        }
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        let mut skipped = 0;
        for part in stream.chunks(chunk) {
            d.extend(part);
            while let Some(r) = d.next_frame() {
                match r {
                    Ok(m) => got.push(m),
                    Err(FrameError::Skipped(n)) => skipped += n,
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                }
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(skipped, garbage.len());
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn truncated_frames_are_rejected_cleanly(msg in message(), cut in any::<prop::sample::Index>()) {
        let bytes = frame::encode(&msg).unwrap();
        let n = cut.index(bytes.len());
        prop_assert!(frame::decode(&bytes[..n]).is_err());
        let mut d = FrameDecoder::new();
        d.extend(&bytes[..n]);
        // A prefix of a frame is never a message; the decoder waits for the rest.
        while let Some(r) = d.next_frame() {
            prop_assert!(r.is_err());
        }
        prop_assert!(n < HEADER_LEN || d.buffered() == n);
    }
}
