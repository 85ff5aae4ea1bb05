//! The shell's persistence contract end to end: the core's Persist events are journaled
//! and synced before the BA goes out, so a `kill -9` right after the BA loses nothing.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use had::journal::{Journal, load};
use had::{
    ChecksumState, Ha, HaCoreConfig, HaEvent, PrefixMode, PrefixTableRow, ReceivedSignal, Transmit,
};
use proto::mh::{BaStatus, BindingUpdate, BuFlags, MhRepr, Packet};
use proto::option::MobilityOption;
use proto::seq::{Lifetime, SequenceNumber};

const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 5);
const WALL0: Duration = Duration::from_secs(1_800_000_000);

fn cfg() -> HaCoreConfig {
    let mut c = HaCoreConfig::new(vec!["2001:db8:1::/64".parse().unwrap()], HA);
    c.prefix_table = vec![
        PrefixTableRow {
            hoa: HOA,
            prefix: "2001:db8:100::/48".parse().unwrap(),
            mode: PrefixMode::Implicit,
        },
        PrefixTableRow {
            hoa: HOA,
            prefix: "10.1.0.0/24".parse().unwrap(),
            mode: PrefixMode::Implicit,
        },
    ];
    c
}

fn bu(seq: u16, lifetime: u16) -> Vec<u8> {
    let repr = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(seq),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(lifetime),
        options: vec![MobilityOption::AlternateCareOfAddress(COA)],
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&HOA, &HA);
    mh
}

/// One turn of the shell's loop: handle, journal + sync the Persist events, then send.
fn turn(ha: &mut Ha, j: &mut Journal, now: Instant, wall: Duration, mh: &[u8]) -> Vec<Transmit> {
    ha.handle_packet(
        now,
        wall,
        &ReceivedSignal {
            src: COA,
            dst: HA,
            home_address: Some(HOA),
            mh,
            checksum: ChecksumState::Unverified,
            ifindex: 2,
            udp_v4: None,
        },
    );
    while let Some(ev) = ha.poll_event() {
        if let HaEvent::Persist(r) = ev {
            j.append(&r);
        }
    }
    j.sync().unwrap();
    std::iter::from_fn(|| ha.poll_transmit()).collect()
}

#[test]
fn kill_after_ba_keeps_the_binding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("had.journal");
    let t0 = Instant::now();
    {
        let (mut j, rep) = Journal::open(&path, WALL0).unwrap();
        assert!(rep.bindings.is_empty());
        let mut ha = Ha::new(cfg()).unwrap();
        let tx = turn(&mut ha, &mut j, t0, WALL0, &bu(10, 100));
        assert!(
            matches!(tx[0].repr().unwrap(), MhRepr::BindingAck(b) if b.status == BaStatus::Accepted)
        );
        // kill -9: nothing else runs, no compaction, no clean shutdown.
        std::mem::forget(ha);
        std::mem::forget(j);
    }
    // Restart 60 s later (monotonic clock restarts too).
    let t1 = Instant::now();
    let wall = WALL0 + Duration::from_secs(60);
    let (mut j, rep) = Journal::open(&path, wall).unwrap();
    assert_eq!(rep.bindings.len(), 1);
    let mut ha = Ha::new(cfg()).unwrap();
    assert_eq!(ha.restore(t1, wall, rep.bindings), 1);
    let ev: Vec<_> = std::iter::from_fn(|| ha.poll_event()).collect();
    let b = ev
        .iter()
        .find_map(|e| match e {
            HaEvent::BcAdd(b) => Some(b),
            _ => None,
        })
        .unwrap();
    assert_eq!(b.lifetime, 340);
    assert_eq!(
        b.mnp_v4,
        vec!["10.1.0.0/24".parse::<ipnet::Ipv4Net>().unwrap()]
    );
    // The sequence number survived: a replay of seq 10 is out of window.
    let tx = turn(&mut ha, &mut j, t1, wall, &bu(10, 100));
    assert!(
        matches!(tx[0].repr().unwrap(), MhRepr::BindingAck(b) if b.status == BaStatus::SequenceNumberOutOfWindow)
    );
    // Deregistration is journaled too.
    let tx = turn(&mut ha, &mut j, t1, wall, &bu(11, 0));
    assert!(
        matches!(tx[0].repr().unwrap(), MhRepr::BindingAck(b) if b.status == BaStatus::Accepted)
    );
    assert!(load(&path, wall).unwrap().bindings.is_empty());
    // Compaction from the core's snapshot keeps exactly the live set.
    turn(&mut ha, &mut j, t1, wall, &bu(12, 100));
    j.compact(&ha.snapshot(t1, wall)).unwrap();
    assert_eq!(load(&path, wall).unwrap().bindings, ha.snapshot(t1, wall));
}
