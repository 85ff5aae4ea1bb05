//! Runs the seed corpus of mipsock's fuzz target (`fuzz/corpus/frame_decode` at the
//! workspace root) through the same checks the fuzzer makes, so every seed — and every
//! crash input ever added there — stays fixed.
//!
//! The seeds are frames of every message type, a stream of several frames with garbage
//! between them, and frames of other versions, written by `write_seed_corpus` below
//! (`cargo test -p mipsock --test fuzz_corpus -- --ignored`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use mipsock::frame::{self, HEADER_LEN};
use mipsock::{
    BeHint, Binding, Body, BuFlags, CareOf, CurrentCoa, Dad, DadOp, DataplaneReady, Encapsulation,
    Header, HomeHint, MdCommand, MdHint, MdInfo, Message, MhUdpIn, MhUdpOut, NodeType,
    NodetypeInfo, PacketBytes, RrHint, StateDump, StateEnd, StateItem,
};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/frame_decode")
}

#[test]
fn frame_decode_corpus_passes_the_fuzz_checks() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).expect("seed corpus directory") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        mipsock::fuzzing::frame_decode(&data);
        n += 1;
    }
    assert!(
        n >= 10,
        "expected the frame_decode seed corpus, found {n} files"
    );
}

#[test]
fn seeds_are_real_frames() {
    let data = std::fs::read(corpus().join("bc_add")).unwrap();
    let m = frame::decode(&data).unwrap();
    assert!(matches!(m.body, Body::BcAdd(_)));
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn binding() -> Binding {
    Binding {
        hoa: v6("2001:db8:1::100"),
        hoa_v4: Some(Ipv4Addr::new(192, 0, 2, 100)),
        coa: CareOf::V4 {
            addr: Ipv4Addr::new(203, 0, 113, 5),
            udp_port: Some(40000),
        },
        ha: v6("2001:db8:1::1"),
        ha_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        mnp_v6: vec!["2001:db8:100::/48".parse().unwrap()],
        mnp_v4: vec!["198.51.100.0/24".parse().unwrap()],
        encapsulation: Encapsulation::UdpIpv4 { ha_port: 4191 },
        lifetime: 400,
        binding_id: Some(7),
        flags: BuFlags::A | BuFlags::H | BuFlags::R | BuFlags::F,
        nat_detected: true,
        coa_ifindex: Some(3),
        flows: vec![proto::model::FlowBinding {
            fid: 1,
            priority: 10,
            selector: proto::flow::FlowSelector::Ipv4(proto::flow::Ipv4TrafficSelector {
                protocol: Some(proto::flow::SelectorRange {
                    start: 17,
                    end: None,
                }),
                ..Default::default()
            }),
            bids: vec![7, 8],
        }],
        bid_priority: 0,
    }
}

fn frame_of(body: Body) -> Vec<u8> {
    let mut m = Message::new(body);
    m.header = Header {
        seq: 7,
        errno: 0,
        pid: 4242,
        sender: "mrd".into(),
        serial: 9,
        sent_at_ns: 1_795_383_000_000_000_000,
    };
    frame::encode(&m).unwrap()
}

/// Writes the seed corpus.
#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seed_corpus() {
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, data: &[u8]| std::fs::write(dir.join(name), data).unwrap();
    let hoa = v6("2001:db8:1::100");
    let coa = CareOf::V6(v6("2001:db8:a::5"));
    let minimal = Binding {
        hoa_v4: None,
        coa,
        ha_v4: None,
        mnp_v6: vec![],
        mnp_v4: vec![],
        encapsulation: Encapsulation::InIpv6,
        binding_id: None,
        flags: BuFlags::default(),
        nat_detected: false,
        coa_ifindex: None,
        ..binding()
    };
    let bodies = [
        (
            "nodetype_info",
            Body::NodetypeInfo(NodetypeInfo {
                node_type: NodeType::HA | NodeType::MR,
                enable: true,
            }),
        ),
        ("bc_add", Body::BcAdd(binding())),
        ("bc_remove_minimal", Body::BcRemove(minimal.clone())),
        ("bc_flush", Body::BcFlush),
        ("bul_add", Body::BulAdd(binding())),
        (
            "md_info",
            Body::MdInfo(MdInfo {
                command: MdCommand::Rereg,
                hint: MdHint::Addr,
                hoa: Some(hoa),
                coa: Some(coa),
                coa2: Some(CareOf::V4 {
                    addr: Ipv4Addr::new(203, 0, 113, 5),
                    udp_port: None,
                }),
                ifindex: 3,
                uplinks: Vec::new(),
            }),
        ),
        (
            "home_hint",
            Body::HomeHint(HomeHint {
                ifindex: 2,
                prefix: "2001:db8:1::/64".parse().unwrap(),
            }),
        ),
        (
            "rr_hint",
            Body::RrHint(RrHint {
                hoa,
                peer: v6("2001:db8:c::1"),
            }),
        ),
        (
            "be_hint",
            Body::BeHint(BeHint {
                status: 1,
                peer: v6("2001:db8:c::1"),
                coa,
                hoa,
            }),
        ),
        (
            "dad",
            Body::Dad(Dad {
                op: DadOp::Do,
                ifindex: 4,
                addr: hoa,
            }),
        ),
        ("state_request", Body::StateRequest),
        (
            "state_dump",
            Body::StateDump(StateDump {
                requester_pid: 42,
                items: vec![
                    StateItem::Bul(binding()),
                    StateItem::Bc(minimal),
                    StateItem::CurrentCoa(CurrentCoa {
                        coa: Some(coa),
                        ifindex: 3,
                        at_home: false,
                    }),
                ],
            }),
        ),
        (
            "state_end",
            Body::StateEnd(StateEnd {
                requester_pid: 42,
                items: 3,
            }),
        ),
        (
            "mh_udp_in",
            Body::MhUdpIn(MhUdpIn {
                local: "192.0.2.1:4191".parse().unwrap(),
                peer: "198.51.100.7:40001".parse().unwrap(),
                packet: PacketBytes(vec![0x60, 0, 0, 0, 0, 8, 135, 64]),
            }),
        ),
        (
            "mh_udp_out",
            Body::MhUdpOut(MhUdpOut {
                peer: "198.51.100.7:40001".parse().unwrap(),
                packet: PacketBytes(vec![0x60, 0, 0, 0, 0, 0, 59, 64]),
                from: None,
            }),
        ),
        (
            "dataplane_ready",
            Body::DataplaneReady(DataplaneReady {
                hoa,
                removed: true,
                binding_id: None,
            }),
        ),
    ];
    let mut stream = Vec::new();
    for (name, body) in bodies {
        let f = frame_of(body);
        write(name, &f);
        stream.extend_from_slice(b"garbage MIP");
        stream.extend_from_slice(&f);
    }
    write("stream_with_garbage", &stream[..stream.len().min(2000)]);
    // A version 1 (bincode) frame and an unknown type: skipped, not fatal.
    let mut old = frame_of(Body::BcFlush);
    old[4] = frame::VERSION_BINCODE;
    write("version_1", &old);
    let mut unknown = frame_of(Body::BcFlush);
    unknown[5] = 0xee;
    write("unknown_type", &unknown);
    // A header claiming more than the limit.
    let mut long = frame_of(Body::StateRequest);
    long[8..12].copy_from_slice(&(frame::MAX_BODY as u32 + 1).to_be_bytes());
    write("too_long", &long[..HEADER_LEN]);
}
