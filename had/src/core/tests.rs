//! Virtual-time tests of the core. BUs are built with `proto` exactly as an MR builds them
//! (emit, `proto::auth::sign`, checksum over HoA -> HA).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proto::mh::{BaFlags, BaStatus, BeStatus, BindingUpdate, BuFlags, MhRepr, MhType, Packet};
use proto::model::CareOf;
use proto::option::{Ipv4AckStatus, MN_ID_SUBTYPE_NAI, MobilityOption, ParseConfig};
use proto::seq::{Lifetime, NtpTimestamp, SequenceNumber};

use super::*;
use crate::config::*;

const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// Implicit v6 + explicit v6 + explicit v4 192.0.2.0/24 (+ P=0 HoA inside it).
const HOA1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
/// Implicit v6 + implicit v4 10.2.0.0/24 (Shima's first method).
const HOA2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x200);
/// Legacy type-11 enabled; explicit v6 and v4.
const HOA3: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x300);
/// In the home prefix, nothing in the prefix table.
const HOA4: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x400);
const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 5);
const COA2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 7);
const KEY1: &[u8] = b"hoa1-secret-key!";
const KEY2: &[u8] = b"hoa2-secret-key!";
const KEY3: &[u8] = b"mr3-secret-key!!";
const WALL0: Duration = Duration::from_secs(1_800_000_000);

fn row(hoa: Ipv6Addr, p: &str, mode: PrefixMode) -> PrefixTableRow {
    PrefixTableRow {
        hoa,
        prefix: p.parse::<IpNet>().unwrap(),
        mode,
    }
}

fn cfg() -> HaCoreConfig {
    let mut c = HaCoreConfig::new(vec!["2001:db8:1::/64".parse().unwrap()], HA);
    c.home_ifindex = 2;
    c.max_lifetime = Duration::from_secs(1000);
    c.prefix_table = vec![
        row(HOA1, "2001:db8:100::/48", PrefixMode::Implicit),
        row(HOA1, "2001:db8:200::/48", PrefixMode::Explicit),
        row(HOA1, "192.0.2.0/24", PrefixMode::Explicit),
        row(HOA1, "198.51.100.0/28", PrefixMode::Explicit),
        row(HOA2, "2001:db8:300::/48", PrefixMode::Implicit),
        row(HOA2, "10.2.0.0/24", PrefixMode::Implicit),
        row(HOA3, "2001:db8:400::/48", PrefixMode::Explicit),
        row(HOA3, "10.3.0.0/24", PrefixMode::Explicit),
    ];
    c.legacy_ipv4_mnp_hoas = vec![HOA3];
    c
}

fn sa(spi: u32, key: &[u8], hoa: Option<Ipv6Addr>, nai: Option<&[u8]>) -> MobilitySa {
    MobilitySa {
        spi,
        key: key.to_vec(),
        hoa,
        nai: nai.map(<[u8]>::to_vec),
        replay: ReplayProtection::default(),
    }
}

fn auth_cfg() -> HaCoreConfig {
    let mut c = cfg();
    c.auth = AuthPolicy::Required(vec![
        sa(1000, KEY1, Some(HOA1), None),
        sa(1001, KEY2, Some(HOA2), Some(b"mr2@example.net")),
    ]);
    c
}

/// A BU as an MR would build it.
#[derive(Clone)]
struct Bu {
    seq: u16,
    flags: BuFlags,
    lifetime: u16,
    hoa: Ipv6Addr,
    coa: Ipv6Addr,
    /// HAO present (MR away); else the BU is sent from the HoA (at home).
    hao: bool,
    options: Vec<MobilityOption<'static>>,
    nai: Option<&'static [u8]>,
    timestamp: Option<u64>,
    auth: Option<(u32, &'static [u8])>,
}

impl Bu {
    fn new(hoa: Ipv6Addr, seq: u16) -> Bu {
        Bu {
            seq,
            flags: BuFlags::A | BuFlags::H | BuFlags::R,
            lifetime: 100,
            hoa,
            coa: COA,
            hao: true,
            options: vec![],
            nai: None,
            timestamp: None,
            auth: None,
        }
    }
    fn opt(mut self, o: MobilityOption<'static>) -> Bu {
        self.options.push(o);
        self
    }
    fn mnp(self, p: &str) -> Bu {
        let n: Ipv6Net = p.parse().unwrap();
        self.opt(MobilityOption::MobileNetworkPrefix {
            prefix_len: n.prefix_len(),
            prefix: n.addr(),
        })
    }
    fn v4(self, p: &str, pflag: bool) -> Bu {
        let n: Ipv4Net = p.parse().unwrap();
        self.opt(MobilityOption::Ipv4HomeAddress {
            prefix_len: n.prefix_len(),
            p: pflag,
            address: n.addr(),
        })
    }
    fn signed(mut self, spi: u32, key: &'static [u8], wall: Duration) -> Bu {
        self.auth = Some((spi, key));
        self.timestamp = Some(NtpTimestamp::from_unix(wall).0);
        self
    }

    /// Bytes: options as an MR orders them (ACoA, prefixes, MN-ID, replay, MN-HA last).
    fn bytes(&self) -> Vec<u8> {
        let mut options = Vec::new();
        if self.hao {
            options.push(MobilityOption::AlternateCareOfAddress(self.coa));
        }
        options.extend(self.options.iter().copied());
        if let Some(nai) = self.nai {
            options.push(MobilityOption::MobileNodeIdentifier {
                subtype: MN_ID_SUBTYPE_NAI,
                identifier: nai,
            });
        }
        if let Some(ts) = self.timestamp {
            options.push(MobilityOption::ReplayProtection { timestamp: ts });
        }
        if let Some((spi, _)) = self.auth {
            options.push(proto::auth::mn_ha_option(spi));
        }
        let repr = MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(self.seq),
            flags: self.flags,
            lifetime: Lifetime(self.lifetime),
            options,
        });
        let mut mh = vec![0; repr.buffer_len()];
        repr.emit_to(&mut mh).unwrap();
        if let Some((_, key)) = self.auth {
            let coa = if self.hao { self.coa } else { self.hoa };
            proto::auth::sign(&mut mh, coa.into(), &self.hoa, key).unwrap();
        }
        Packet::new_unchecked(&mut mh[..]).fill_checksum(&self.hoa, &HA);
        mh
    }
}

struct Env {
    ha: Ha,
    t0: Instant,
    now: Instant,
}

impl Env {
    fn new(c: HaCoreConfig) -> Env {
        let t0 = Instant::now();
        Env {
            ha: Ha::new(c).unwrap(),
            t0,
            now: t0,
        }
    }
    fn wall(&self) -> Duration {
        WALL0 + (self.now - self.t0)
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.ha.handle_timeout(self.now);
    }
    fn send_raw(&mut self, bu: &Bu, mh: &[u8]) {
        let src = if bu.hao { bu.coa } else { bu.hoa };
        let sig = ReceivedSignal {
            src,
            dst: HA,
            home_address: bu.hao.then_some(bu.hoa),
            mh,
            checksum: ChecksumState::Unverified,
            ifindex: 3,
            udp_v4: None,
        };
        let wall = self.wall();
        self.ha.handle_packet(self.now, wall, &sig);
    }
    fn send(&mut self, bu: &Bu) {
        let mh = bu.bytes();
        self.send_raw(bu, &mh);
    }
    /// Sends and returns the one BA that must come back.
    fn ba(&mut self, bu: &Bu) -> Transmit {
        self.send(bu);
        let tx = self.ha.poll_transmit().expect("a BA");
        assert!(self.ha.poll_transmit().is_none());
        tx
    }
    fn events(&mut self) -> Vec<HaEvent> {
        // Checks the O(1) binding count against a walk (a debug assertion inside).
        let _ = self.ha.binding_count();
        std::iter::from_fn(|| self.ha.poll_event()).collect()
    }
}

fn ba_of(tx: &Transmit) -> proto::mh::BindingAck<'_> {
    match tx.repr().unwrap() {
        MhRepr::BindingAck(b) => b,
        other => panic!("not a BA: {other:?}"),
    }
}

/// `e`'s bindings as a restart finds them: snapshot, journal frames, loaded back (and
/// checked to be the same).
fn through_the_journal(e: &Env) -> Vec<crate::record::PersistedBinding> {
    let snap = e.ha.snapshot(e.now, e.wall());
    let mut image = crate::journal::file_header().to_vec();
    for b in &snap {
        crate::journal::frame(&JournalRecord::Upsert(b.clone()), &mut image);
    }
    let report = crate::journal::load_image(std::path::Path::new("j"), &image, e.wall()).unwrap();
    assert_eq!(report.bindings, snap);
    report.bindings
}

/// A BID option for a BU: `coa` in the option, or none (the BU's own CoA).
fn bid(bid: u16, coa: Option<Ipv6Addr>) -> MobilityOption<'static> {
    MobilityOption::BindingIdentifier {
        bid,
        status: 0,
        h: false,
        coa: coa.map(Into::into),
        bid_pri: 0,
    }
}

fn status(tx: &Transmit) -> BaStatus {
    ba_of(tx).status
}

fn acks(tx: &Transmit) -> Vec<(Ipv4AckStatus, u8, Ipv4Addr)> {
    ba_of(tx)
        .options
        .iter()
        .filter_map(|o| match *o {
            MobilityOption::Ipv4AddressAck {
                status,
                prefix_len,
                address,
            } => Some((status, prefix_len, address)),
            _ => None,
        })
        .collect()
}

fn bc_add(ev: &[HaEvent]) -> &proto::model::Binding {
    ev.iter()
        .find_map(|e| match e {
            HaEvent::BcAdd(b) => Some(b),
            _ => None,
        })
        .expect("BcAdd")
}

fn nets6(v: &[&str]) -> Vec<Ipv6Net> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

fn nets4(v: &[&str]) -> Vec<Ipv4Net> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

// ---------- registration basics ----------

#[test]
fn first_registration_implicit() {
    let mut e = Env::new(cfg());
    let tx = e.ba(&Bu::new(HOA1, 7));
    let ba = ba_of(&tx);
    assert_eq!(ba.status, BaStatus::Accepted);
    assert_eq!(ba.flags, BaFlags::R);
    assert_eq!(ba.sequence, SequenceNumber(7));
    assert_eq!(ba.lifetime, Lifetime(100));
    // RFC 6275 §9.5.4: to the on-wire source with an RH2 carrying the HoA.
    assert_eq!(tx.addressing.dst_addr, COA);
    assert_eq!(tx.addressing.src_addr, HA);
    assert_eq!(tx.addressing.rh2_home_address, Some(HOA1));
    assert!(
        Packet::new_checked(&tx.mh[..])
            .unwrap()
            .verify_checksum(&HA, &HOA1)
    );
    let ev = e.events();
    // Persist comes first, before anything is announced (and before the BA is sent).
    assert!(matches!(&ev[0], HaEvent::Persist(JournalRecord::Upsert(b)) if b.hoa == HOA1));
    let b = bc_add(&ev);
    assert_eq!(b.hoa, HOA1);
    assert_eq!(b.coa, CareOf::V6(COA));
    assert_eq!(b.mnp_v6, nets6(&["2001:db8:100::/48"]));
    assert!(b.mnp_v4.is_empty());
    assert_eq!(b.lifetime, 400);
    assert!(ev.iter().any(
        |e| matches!(e, HaEvent::ProxyNdAdd(p) if p.hoa == HOA1 && p.router && p.ifindex == 2)
    ));
    // The packet builds.
    assert_eq!(tx.to_ipv6_packet().len(), 40 + 24 + tx.mh.len());
    // Refresh: no new proxy ND.
    e.ba(&Bu::new(HOA1, 8));
    let ev = e.events();
    assert!(!ev.iter().any(|e| matches!(e, HaEvent::ProxyNdAdd(_))));
    assert_eq!(e.ha.len(), 1);
}

#[test]
fn lifetime_clamped_to_maximum() {
    let mut e = Env::new(cfg());
    let mut bu = Bu::new(HOA1, 1);
    bu.lifetime = u16::MAX;
    let tx = e.ba(&bu);
    assert_eq!(ba_of(&tx).lifetime, Lifetime(250)); // 1000 s
    assert_eq!(bc_add(&e.events()).lifetime, 1000);
}

#[test]
fn explicit_mode_authorised() {
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA1, 1)
        .mnp("2001:db8:200:5::/64")
        .mnp("2001:db8:100::/48");
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    assert_eq!(
        bc_add(&e.events()).mnp_v6,
        nets6(&["2001:db8:200:5::/64", "2001:db8:100::/48"])
    );
    // A refresh listing fewer prefixes stops forwarding the others (RFC 3963 §6.2).
    let bu = Bu::new(HOA1, 2).mnp("2001:db8:200:5::/64");
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    assert_eq!(bc_add(&e.events()).mnp_v6, nets6(&["2001:db8:200:5::/64"]));
}

#[test]
fn invalid_prefix_141() {
    for p in ["fe80::/64", "ff0e::/16", "::/0", "2001:db8:200::/0"] {
        let mut e = Env::new(cfg());
        let tx = e.ba(&Bu::new(HOA1, 1).mnp("2001:db8:200:1::/64").mnp(p));
        assert_eq!(status(&tx), BaStatus::InvalidPrefix, "{p}");
        assert!(e.events().is_empty());
        assert!(e.ha.is_empty());
    }
    // Prefix length 129 cannot be emitted by proto: patch it on the wire.
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA1, 1).mnp("2001:db8:200:1::/64");
    let mut mh = bu.bytes();
    // ACoA at 12..32 (with padding at 12), MNP type octet at 36, prefix length at 39.
    assert_eq!(mh[36], 6);
    mh[39] = 129;
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&HOA1, &HA);
    e.send_raw(&bu, &mh);
    assert_eq!(
        status(&e.ha.poll_transmit().unwrap()),
        BaStatus::InvalidPrefix
    );
    assert!(e.ha.is_empty());
}

#[test]
fn not_authorised_prefix_142() {
    let mut e = Env::new(cfg());
    let tx = e.ba(&Bu::new(HOA1, 1)
        .mnp("2001:db8:200::/48")
        .mnp("2001:db8:999::/48"));
    assert_eq!(status(&tx), BaStatus::NotAuthorizedForPrefix);
    assert_eq!(ba_of(&tx).lifetime, Lifetime::ZERO);
    // Shorter than the authorised row: not inside it. (Not 2001:db8::/32, which holds the
    // care-of address: such a BU is dropped, care_of_address_inside_the_routers_own_...)
    let tx = e.ba(&Bu::new(HOA1, 2).mnp("2001:db8:100::/40"));
    assert_eq!(status(&tx), BaStatus::NotAuthorizedForPrefix);
    // Another MR's prefix.
    let tx = e.ba(&Bu::new(HOA1, 3).mnp("2001:db8:300::/48"));
    assert_eq!(status(&tx), BaStatus::NotAuthorizedForPrefix);
    assert!(e.events().is_empty());
    assert!(e.ha.is_empty());
}

#[test]
fn implicit_without_prefixes_143() {
    let mut e = Env::new(cfg());
    let tx = e.ba(&Bu::new(HOA4, 1));
    assert_eq!(status(&tx), BaStatus::ForwardingSetupFailed);
    assert!(e.ha.is_empty());
    // A plain mobile node (R=0) needs no prefixes.
    let mut bu = Bu::new(HOA4, 2);
    bu.flags = BuFlags::A | BuFlags::H;
    let tx = e.ba(&bu);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(ba_of(&tx).flags, BaFlags::empty());
}

#[test]
fn mobile_router_checks_140() {
    let mut e = Env::new(cfg());
    let mut bu = Bu::new(HOA1, 1);
    bu.flags = BuFlags::A | BuFlags::R; // R without H
    let tx = e.ba(&bu);
    assert_eq!(status(&tx), BaStatus::MobileRouterOperationNotPermitted);
    assert_eq!(ba_of(&tx).flags, BaFlags::empty());
    let mut c = cfg();
    c.mobile_router_support = false;
    let mut e = Env::new(c);
    let tx = e.ba(&Bu::new(HOA1, 1));
    assert_eq!(status(&tx), BaStatus::MobileRouterOperationNotPermitted);
    assert!(e.ha.is_empty());
    // H=0 and R=0: a correspondent registration, silently dropped.
    let mut bu = Bu::new(HOA1, 1);
    bu.flags = BuFlags::A;
    e.send(&bu);
    assert!(e.ha.poll_transmit().is_none());
}

#[test]
fn home_subnet_checks_131_132() {
    let mut e = Env::new(HaCoreConfig::new(vec![], HA));
    assert_eq!(
        status(&e.ba(&Bu::new(HOA1, 1))),
        BaStatus::HomeRegistrationNotSupported
    );
    let mut e = Env::new(cfg());
    let outside: Ipv6Addr = "2001:db8:2::100".parse().unwrap();
    assert_eq!(status(&e.ba(&Bu::new(outside, 1))), BaStatus::NotHomeSubnet);
    assert!(e.ha.is_empty());
}

#[test]
fn ba_sent_regardless_of_a_flag_and_without_rh2_at_home() {
    let mut e = Env::new(cfg());
    let mut bu = Bu::new(HOA1, 1);
    bu.flags = BuFlags::H | BuFlags::R;
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    // BU from the HoA without HAO and a non-HoA CoA via ACoA is not possible; a BU sent
    // from the HoA itself is a deregistration (CoA = HoA): BA to the HoA, no RH2.
    let mut bu = Bu::new(HOA1, 2);
    bu.hao = false;
    let tx = e.ba(&bu);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(ba_of(&tx).lifetime, Lifetime::ZERO);
    assert_eq!(tx.addressing.dst_addr, HOA1);
    assert_eq!(tx.addressing.rh2_home_address, None);
    assert!(e.ha.is_empty());
}

/// Issue 11: the de-registration from the home link (CoA = HoA) says so in BC_REMOVE: the
/// home address as care-of address and the home link's interface, for the data plane's
/// routes at home; one from a care-of address keeps that care-of address.
#[test]
fn bc_remove_from_the_home_link_carries_the_home_address_and_home_interface() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1));
    e.events();
    let mut bu = Bu::new(HOA1, 2);
    bu.hao = false;
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    let ev = e.events();
    let Some(HaEvent::BcRemove(b)) = ev.iter().find(|e| matches!(e, HaEvent::BcRemove(_))) else {
        panic!("no BC_REMOVE: {ev:?}")
    };
    assert_eq!(b.coa, CareOf::V6(HOA1));
    assert_eq!(b.coa_ifindex, Some(2));
    assert_eq!(b.lifetime, 0);
    assert_eq!(b.mnp_v6, nets6(&["2001:db8:100::/48"]));

    e.ba(&Bu::new(HOA1, 3));
    e.events();
    let mut bu = Bu::new(HOA1, 4);
    bu.lifetime = 0;
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    let ev = e.events();
    let Some(HaEvent::BcRemove(b)) = ev.iter().find(|e| matches!(e, HaEvent::BcRemove(_))) else {
        panic!("no BC_REMOVE: {ev:?}")
    };
    assert_ne!(b.coa, CareOf::V6(HOA1));
    assert_eq!(b.coa_ifindex, None);
}

// ---------- sequence numbers ----------

#[test]
fn sequence_window_135() {
    let mut e = Env::new(cfg());
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 100))), BaStatus::Accepted);
    e.events();
    for old in [100, 99, 0, 100u16.wrapping_sub(32768)] {
        let tx = e.ba(&Bu::new(HOA1, old));
        assert_eq!(status(&tx), BaStatus::SequenceNumberOutOfWindow, "{old}");
        // The BA carries the last accepted sequence number.
        assert_eq!(ba_of(&tx).sequence, SequenceNumber(100));
    }
    assert!(e.events().is_empty());
    // 32767 ahead is newer.
    assert_eq!(
        status(&e.ba(&Bu::new(HOA1, 100 + 32767))),
        BaStatus::Accepted
    );
}

#[test]
fn sequence_wraps_at_65535() {
    let mut e = Env::new(cfg());
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 65534))), BaStatus::Accepted);
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 65535))), BaStatus::Accepted);
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 0))), BaStatus::Accepted);
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 1))), BaStatus::Accepted);
    let tx = e.ba(&Bu::new(HOA1, 65535));
    assert_eq!(status(&tx), BaStatus::SequenceNumberOutOfWindow);
    assert_eq!(ba_of(&tx).sequence, SequenceNumber(1));
}

#[test]
fn r_flag_change_139() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1));
    e.events();
    let mut bu = Bu::new(HOA1, 2);
    bu.flags = BuFlags::A | BuFlags::H;
    assert_eq!(
        status(&e.ba(&bu)),
        BaStatus::RegistrationTypeChangeDisallowed
    );
    assert!(e.events().is_empty());
    // Ignored for a deregistration.
    bu.seq = 3;
    bu.lifetime = 0;
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    assert!(e.ha.is_empty());
}

/// RFC 6275 §9.5.1 (issue 11): a BU without H for a home address with a home
/// registration changes the registration type: 139, not a silent drop; the binding stays.
#[test]
fn correspondent_registration_over_a_home_registration_139() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1));
    e.events();
    let mut bu = Bu::new(HOA1, 2);
    bu.flags = BuFlags::A;
    assert_eq!(
        status(&e.ba(&bu)),
        BaStatus::RegistrationTypeChangeDisallowed
    );
    assert!(e.events().is_empty());
    assert_eq!(e.ha.len(), 1);
    // Without a binding it stays a correspondent registration we do not do: dropped.
    let mut bu = Bu::new(HOA2, 1);
    bu.flags = BuFlags::A;
    e.send(&bu);
    assert!(e.ha.poll_transmit().is_none());
}

// ---------- deregistration and expiry ----------

#[test]
fn deregistration_lifetime_zero() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1));
    e.events();
    let mut bu = Bu::new(HOA1, 2);
    bu.lifetime = 0;
    let tx = e.ba(&bu);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(ba_of(&tx).lifetime, Lifetime::ZERO);
    let ev = e.events();
    assert!(
        matches!(ev[0], HaEvent::Persist(JournalRecord::Remove { hoa, bid: None }) if hoa == HOA1)
    );
    assert!(
        matches!(&ev[1], HaEvent::BcRemove(b) if b.hoa == HOA1 && b.mnp_v6 == nets6(&["2001:db8:100::/48"]))
    );
    assert!(matches!(ev[2], HaEvent::ProxyNdRemove(p) if p.hoa == HOA1));
    assert!(e.ha.is_empty());
    assert_eq!(e.ha.poll_timeout(), None);
    // Again, without a binding: 133 (RFC 6275 §10.3.2).
    bu.seq = 3;
    assert_eq!(status(&e.ba(&bu)), BaStatus::NotHomeAgentForThisMobileNode);
}

#[test]
fn expiry_removes_binding() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1)); // 400 s
    e.events();
    assert_eq!(e.ha.poll_timeout(), Some(e.t0 + Duration::from_secs(400)));
    e.advance(Duration::from_secs(399));
    assert_eq!(e.ha.len(), 1);
    assert_eq!(
        e.ha.binding(e.now, &HOA1).unwrap().lifetime,
        1,
        "remaining lifetime"
    );
    e.advance(Duration::from_secs(1));
    assert!(e.ha.is_empty());
    let ev = e.events();
    assert!(matches!(
        ev[0],
        HaEvent::Persist(JournalRecord::Remove { .. })
    ));
    assert!(matches!(&ev[1], HaEvent::BcRemove(b) if b.lifetime == 0));
    assert_eq!(e.ha.stats().expired, 1);
    // A refresh pushes expiry out.
    e.ba(&Bu::new(HOA1, 2));
    e.advance(Duration::from_secs(300));
    e.ba(&Bu::new(HOA1, 3));
    e.advance(Duration::from_secs(300));
    assert_eq!(e.ha.len(), 1);
    e.advance(Duration::from_secs(100));
    assert!(e.ha.is_empty());
}

// ---------- Binding Error, BRR ----------

#[test]
fn binding_error_for_unknown_mh_type_rate_limited() {
    let mut e = Env::new(cfg());
    // A Home Test Init (type 1) with a HAO: we do no route optimisation.
    let mut mh = vec![59u8, 1, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&HOA1, &HA);
    let bu = Bu::new(HOA1, 1);
    for _ in 0..25 {
        e.send_raw(&bu, &mh);
    }
    let txs: Vec<_> = std::iter::from_fn(|| e.ha.poll_transmit()).collect();
    assert_eq!(txs.len(), 10, "rate limit: burst of 10");
    let tx = &txs[0];
    // To the on-wire source, no RH2 (RFC 6275 §9.3.3), HoA from the HAO.
    assert_eq!(tx.addressing.dst_addr, COA);
    assert_eq!(tx.addressing.rh2_home_address, None);
    match tx.repr().unwrap() {
        MhRepr::BindingError(be) => {
            assert_eq!(be.status, BeStatus::UnrecognizedMhType);
            assert_eq!(be.home_address, HOA1);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(e.ha.stats().binding_errors_limited, 15);
    e.advance(Duration::from_millis(500));
    for _ in 0..25 {
        e.send_raw(&bu, &mh);
    }
    assert_eq!(std::iter::from_fn(|| e.ha.poll_transmit()).count(), 5);
    // Unknown type 200, no HAO: home address ::.
    let mut mh = vec![59u8, 0, 200, 0, 0, 0, 0, 0];
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&COA, &HA);
    e.advance(Duration::from_secs(1));
    let mut b = bu.clone();
    b.hao = false;
    b.hoa = COA;
    e.send_raw(&b, &mh);
    let tx = e.ha.poll_transmit().unwrap();
    match tx.repr().unwrap() {
        MhRepr::BindingError(be) => assert_eq!(be.home_address, Ipv6Addr::UNSPECIFIED),
        r => panic!("{r:?}"),
    }
}

#[test]
fn bad_checksum_and_garbage_dropped() {
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA1, 1);
    let mut mh = bu.bytes();
    mh[5] ^= 1;
    e.send_raw(&bu, &mh);
    assert!(e.ha.poll_transmit().is_none());
    assert_eq!(e.ha.stats().bad_checksum, 1);
    e.send_raw(&bu, &[59, 9, 5]);
    assert_eq!(e.ha.stats().malformed, 1);
    // A checksum over the on-wire source (Linux raw sockets) is accepted.
    let mut mh = bu.bytes();
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&COA, &HA);
    e.send_raw(&bu, &mh);
    assert_eq!(status(&e.ha.poll_transmit().unwrap()), BaStatus::Accepted);
    // BA/BRR/BE received by an HA are ignored, no Binding Error.
    let mut ba = vec![59u8, 1, 6, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 0, 0];
    Packet::new_unchecked(&mut ba[..]).fill_checksum(&HOA1, &HA);
    e.send_raw(&bu, &ba);
    assert!(e.ha.poll_transmit().is_none());
}

#[test]
fn binding_refresh_request_before_expiry() {
    let mut c = auth_cfg();
    c.brr = Some(BrrConfig {
        before_expiry: Duration::from_secs(60),
    });
    let mut e = Env::new(c);
    let bu = Bu::new(HOA1, 1).signed(1000, KEY1, e.wall());
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    assert_eq!(e.ha.poll_timeout(), Some(e.t0 + Duration::from_secs(340)));
    e.advance(Duration::from_secs(339));
    assert!(e.ha.poll_transmit().is_none());
    e.advance(Duration::from_secs(1));
    let tx = e.ha.poll_transmit().expect("BRR");
    assert!(matches!(
        tx.repr().unwrap(),
        MhRepr::BindingRefreshRequest(_)
    ));
    assert_eq!(tx.addressing.dst_addr, COA);
    assert_eq!(tx.addressing.rh2_home_address, Some(HOA1));
    // Signed with the binding's SA.
    assert!(proto::auth::verify(&tx.mh, COA.into(), &HOA1, KEY1).unwrap());
    assert_eq!(e.ha.poll_timeout(), Some(e.t0 + Duration::from_secs(400)));
    // Only once.
    e.advance(Duration::from_secs(59));
    assert!(e.ha.poll_transmit().is_none());
    e.advance(Duration::from_secs(1));
    assert!(e.ha.is_empty());
    // Short lifetimes get no BRR.
    let mut bu = Bu::new(HOA1, 2).signed(1000, KEY1, e.wall());
    bu.lifetime = 10; // 40 s < 60 s
    e.ba(&bu);
    assert_eq!(
        e.ha.poll_timeout().unwrap(),
        e.now + Duration::from_secs(40)
    );
}

// ---------- IPv4 ----------

#[test]
fn ipv4_mnp_authorised_and_unauthorised_133() {
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA1, 1)
        .mnp("2001:db8:200::/48")
        .v4("192.0.2.0/24", true)
        .v4("10.9.0.0/24", true)
        .v4("198.51.100.0/28", true);
    let tx = e.ba(&bu);
    // BA status reflects the IPv6 registration.
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(
        acks(&tx),
        vec![
            (Ipv4AckStatus::Success, 24, Ipv4Addr::new(192, 0, 2, 0)),
            (
                Ipv4AckStatus::PrefixAllocationUnauthorized,
                0,
                Ipv4Addr::new(10, 9, 0, 0)
            ),
            (Ipv4AckStatus::Success, 28, Ipv4Addr::new(198, 51, 100, 0)),
        ]
    );
    let b = bc_add(&e.events()).clone();
    assert_eq!(b.mnp_v6, nets6(&["2001:db8:200::/48"]));
    assert_eq!(b.mnp_v4, nets4(&["192.0.2.0/24", "198.51.100.0/28"]));
    // RFC 5555 §5.7: a refresh without IPv4 options drops the IPv4 part.
    let tx = e.ba(&Bu::new(HOA1, 2).mnp("2001:db8:200::/48"));
    assert!(acks(&tx).is_empty());
    let b = bc_add(&e.events()).clone();
    assert!(b.mnp_v4.is_empty());
    assert_eq!(b.mnp_v6, nets6(&["2001:db8:200::/48"]));
}

#[test]
fn ipv4_invalid_incorrect_dynamic_and_home_address() {
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA1, 1)
        .v4("224.0.0.0/24", true) // multicast: 131
        .v4("192.0.2.5/24", true) // host bits set: 130
        .v4("0.0.0.0/24", true) // allocate: first configured
        .v4("192.0.2.77/32", false) // IPv4 home address inside the row
        .v4("203.0.113.1/32", false); // not provisioned: 130
    let tx = e.ba(&bu);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(
        acks(&tx),
        vec![
            (
                Ipv4AckStatus::InvalidIpv4Address,
                0,
                Ipv4Addr::new(224, 0, 0, 0)
            ),
            (
                Ipv4AckStatus::IncorrectIpv4HomeAddress,
                0,
                Ipv4Addr::new(192, 0, 2, 5)
            ),
            (Ipv4AckStatus::Success, 24, Ipv4Addr::new(192, 0, 2, 0)),
            (Ipv4AckStatus::Success, 32, Ipv4Addr::new(192, 0, 2, 77)),
            (
                Ipv4AckStatus::IncorrectIpv4HomeAddress,
                0,
                Ipv4Addr::new(203, 0, 113, 1)
            ),
        ]
    );
    let b = bc_add(&e.events()).clone();
    assert_eq!(b.hoa_v4, Some(Ipv4Addr::new(192, 0, 2, 77)));
    assert_eq!(b.mnp_v4, nets4(&["192.0.2.0/24"]));
    // Nothing left to allocate for an MR without IPv4 rows: 132.
    let tx = e.ba(&Bu::new(HOA4, 1)
        .mnp("2001:db8:200::/48")
        .v4("0.0.0.0/24", true));
    assert_eq!(status(&tx), BaStatus::NotAuthorizedForPrefix);
    assert_eq!(
        acks(&tx)[0].0,
        Ipv4AckStatus::DynamicIpv4HomeAddressAssignmentNotAvailable
    );
}

#[test]
fn ipv4_acks_fail_when_the_registration_fails() {
    let mut e = Env::new(cfg());
    let tx = e.ba(&Bu::new(HOA1, 1)
        .mnp("2001:db8:999::/48")
        .v4("192.0.2.0/24", true));
    assert_eq!(status(&tx), BaStatus::NotAuthorizedForPrefix);
    assert_eq!(acks(&tx)[0].0, Ipv4AckStatus::ReasonUnspecified);
    assert!(e.ha.is_empty());
}

#[test]
fn ha_without_ipv4_support() {
    let mut c = cfg();
    c.ipv4_mnp = Ipv4MnpSupport::Prohibited;
    let mut e = Env::new(c);
    let tx = e.ba(&Bu::new(HOA1, 1).v4("192.0.2.0/24", true));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(
        acks(&tx),
        vec![(
            Ipv4AckStatus::AdministrativelyProhibited,
            0,
            Ipv4Addr::new(192, 0, 2, 0)
        )]
    );
    assert!(bc_add(&e.events()).mnp_v4.is_empty());

    let mut c = cfg();
    c.ipv4_mnp = Ipv4MnpSupport::Unsupported;
    let mut e = Env::new(c);
    let tx = e.ba(&Bu::new(HOA1, 1).v4("192.0.2.0/24", true));
    assert_eq!(status(&tx), BaStatus::Accepted);
    // No acknowledgement at all: the MR concludes IPv6 only (RFC 5555 §3.2.1).
    assert!(acks(&tx).is_empty());
    assert!(bc_add(&e.events()).mnp_v4.is_empty());
    // Implicit IPv4 rows are not installed either.
    e.ba(&Bu::new(HOA2, 1));
    assert!(bc_add(&e.events()).mnp_v4.is_empty());
}

#[test]
fn shima_first_method_implicit_ipv4() {
    let mut e = Env::new(cfg());
    let tx = e.ba(&Bu::new(HOA2, 1));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert!(acks(&tx).is_empty());
    let b = bc_add(&e.events()).clone();
    assert_eq!(b.mnp_v6, nets6(&["2001:db8:300::/48"]));
    assert_eq!(b.mnp_v4, nets4(&["10.2.0.0/24"]));
    // Explicit IPv4 options replace the implicit set.
    let tx = e.ba(&Bu::new(HOA2, 2).v4("10.2.0.128/25", true));
    assert_eq!(acks(&tx)[0].0, Ipv4AckStatus::Success);
    assert_eq!(bc_add(&e.events()).mnp_v4, nets4(&["10.2.0.128/25"]));
}

#[test]
fn legacy_type_11_only_when_configured() {
    let legacy = |p: &str| {
        let n: Ipv4Net = p.parse().unwrap();
        MobilityOption::LegacyIpv4Mnp {
            prefix_len: n.prefix_len(),
            prefix: n.addr(),
        }
    };
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA3, 1)
        .mnp("2001:db8:400::/48")
        .opt(legacy("10.3.0.0/24"));
    let tx = e.ba(&bu);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert!(acks(&tx).is_empty());
    assert_eq!(bc_add(&e.events()).mnp_v4, nets4(&["10.3.0.0/24"]));
    // Unauthorised legacy prefix: all or nothing, 142.
    let bu = Bu::new(HOA3, 2)
        .mnp("2001:db8:400::/48")
        .opt(legacy("10.99.0.0/24"));
    assert_eq!(status(&e.ba(&bu)), BaStatus::NotAuthorizedForPrefix);
    // Another HoA: type 11 is IANA's CGA Parameters Request, an unknown option, skipped.
    let mut c = cfg();
    c.prefix_table
        .push(row(HOA1, "10.3.0.0/24", PrefixMode::Explicit));
    let mut e = Env::new(c);
    let bu = Bu::new(HOA1, 1)
        .mnp("2001:db8:200::/48")
        .opt(legacy("10.3.0.0/24"));
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    assert!(bc_add(&e.events()).mnp_v4.is_empty());
    // The option did parse as legacy for HOA3 only.
    let mh = bu.bytes();
    assert!(matches!(
        MhRepr::parse_bytes(&mh, ParseConfig::new())
            .unwrap()
            .options()[2],
        MobilityOption::Unknown {
            option_type: 11,
            ..
        }
    ));
}

// ---------- RFC 4285 ----------

#[test]
fn authenticated_registration_mirrors_options() {
    let mut e = Env::new(auth_cfg());
    let mut bu = Bu::new(HOA2, 1).signed(1001, KEY2, e.wall());
    bu.nai = Some(b"mr2@example.net");
    let ts = bu.timestamp.unwrap();
    let tx = e.ba(&bu);
    let ba = ba_of(&tx);
    assert_eq!(ba.status, BaStatus::Accepted);
    let n = ba.options.len();
    assert!(matches!(
        ba.options[n - 1],
        MobilityOption::Authentication { spi: 1001, .. }
    ));
    assert_eq!(
        ba.options[n - 2],
        MobilityOption::ReplayProtection { timestamp: ts }
    );
    assert!(matches!(
        ba.options[n - 3],
        MobilityOption::MobileNodeIdentifier {
            identifier: b"mr2@example.net",
            ..
        }
    ));
    // Signed with (CoA, HoA) like the BU.
    assert!(proto::auth::verify(&tx.mh, COA.into(), &HOA2, KEY2).unwrap());
    assert!(!proto::auth::verify(&tx.mh, COA.into(), &HOA2, KEY1).unwrap());
    assert_eq!(e.ha.len(), 1);
}

fn assert_unchanged(e: &mut Env, len: usize) {
    assert!(e.events().is_empty(), "no event");
    assert_eq!(e.ha.len(), len);
}

#[test]
fn forged_and_wrong_key_146() {
    let mut e = Env::new(auth_cfg());
    // Wrong key.
    let bu = Bu::new(HOA1, 1).signed(1000, KEY2, e.wall());
    let tx = e.ba(&bu);
    assert_eq!(status(&tx), BaStatus::Mipv6AuthFail);
    assert_unchanged(&mut e, 0);
    // The 146 is itself signed with the SA, so the MR can trust it.
    assert!(proto::auth::verify(&tx.mh, COA.into(), &HOA1, KEY1).unwrap());
    // Forged: a valid BU with a flipped bit.
    let good = Bu::new(HOA1, 2).signed(1000, KEY1, e.wall());
    let mut mh = good.bytes();
    mh[11] ^= 0x01; // lifetime
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&HOA1, &HA);
    e.send_raw(&good, &mh);
    assert_eq!(
        status(&e.ha.poll_transmit().unwrap()),
        BaStatus::Mipv6AuthFail
    );
    assert_unchanged(&mut e, 0);
    // An SA bound to another HoA (valid MAC, wrong owner).
    let bu = Bu::new(HOA2, 3).signed(1000, KEY1, e.wall());
    assert_eq!(status(&e.ba(&bu)), BaStatus::Mipv6AuthFail);
    // SA bound to an NAI, BU with another NAI.
    let mut bu = Bu::new(HOA2, 3).signed(1001, KEY2, e.wall());
    bu.nai = Some(b"intruder@example.net");
    assert_eq!(status(&e.ba(&bu)), BaStatus::Mipv6AuthFail);
    assert_unchanged(&mut e, 0);
    assert_eq!(e.ha.stats().auth_failed, 4);
    // Counted by status for the metrics too.
    assert_eq!(
        e.ha.stats().refused_by_status,
        std::collections::BTreeMap::from([(146, 4)])
    );
    assert!(e.ha.is_empty());
    // An NAI-bound SA cannot take over a binding another SA owns.
    e.ba(&Bu::new(HOA1, 5).signed(1000, KEY1, e.wall()));
    e.events();
    let mut bu = Bu::new(HOA1, 6).signed(1001, KEY2, e.wall());
    bu.nai = Some(b"mr2@example.net");
    assert_eq!(status(&e.ba(&bu)), BaStatus::Mipv6AuthFail);
    assert_unchanged(&mut e, 1);
    let mut bu = Bu::new(HOA1, 7);
    bu.lifetime = 0;
    let bu = bu.signed(1000, KEY1, e.wall());
    e.ba(&bu);
    e.events();
    e.advance(Duration::from_millis(10));
    // A forged BU against an existing binding changes nothing either.
    e.ba(&Bu::new(HOA1, 10).signed(1000, KEY1, e.wall()));
    e.events();
    let mut forged = Bu::new(HOA1, 11).signed(1000, KEY2, e.wall());
    forged.coa = COA2;
    assert_eq!(status(&e.ba(&forged)), BaStatus::Mipv6AuthFail);
    assert_unchanged(&mut e, 1);
    assert_eq!(e.ha.binding(e.now, &HOA1).unwrap().coa, CareOf::V6(COA));
}

#[test]
fn missing_option_and_unknown_spi_dropped() {
    let mut e = Env::new(auth_cfg());
    e.send(&Bu::new(HOA1, 1));
    assert!(e.ha.poll_transmit().is_none());
    assert_eq!(e.ha.stats().no_auth_option, 1);
    e.send(&Bu::new(HOA1, 1).signed(4242, KEY1, e.wall()));
    assert!(e.ha.poll_transmit().is_none());
    assert_eq!(e.ha.stats().unknown_spi, 1);
    assert_unchanged(&mut e, 0);
}

#[test]
fn replayed_and_stale_timestamps_144() {
    let mut e = Env::new(auth_cfg());
    let first = Bu::new(HOA1, 1).signed(1000, KEY1, e.wall());
    assert_eq!(status(&e.ba(&first)), BaStatus::Accepted);
    e.events();
    e.advance(Duration::from_secs(1));
    // Replayed verbatim: sequence is stale, but the timestamp check comes first (§6).
    let tx = e.ba(&first);
    assert_eq!(status(&tx), BaStatus::Mipv6IdMismatch);
    // Echo rule: low 32 bits echoed, high 32 bits from the HA clock.
    let ts = first.timestamp.unwrap();
    let echoed = ba_of(&tx)
        .options
        .iter()
        .find_map(|o| match o {
            MobilityOption::ReplayProtection { timestamp } => Some(*timestamp),
            _ => None,
        })
        .unwrap();
    assert_eq!(echoed & 0xffff_ffff, ts & 0xffff_ffff);
    assert_eq!(
        (echoed >> 32) as u32,
        NtpTimestamp::from_unix(e.wall()).seconds()
    );
    assert!(proto::auth::verify(&tx.mh, COA.into(), &HOA1, KEY1).unwrap());
    assert_unchanged(&mut e, 1);
    // A new sequence number with an old timestamp (replay with a modified seq would need
    // the key; this is an MR with a clock 10 s behind).
    let mut stale = Bu::new(HOA1, 2).signed(1000, KEY1, e.wall());
    stale.timestamp = Some(NtpTimestamp::from_unix(e.wall() - Duration::from_secs(10)).0);
    assert_eq!(status(&e.ba(&stale)), BaStatus::Mipv6IdMismatch);
    // 8 s ahead: outside the 7 s window too.
    stale.timestamp = Some(NtpTimestamp::from_unix(e.wall() + Duration::from_secs(8)).0);
    assert_eq!(status(&e.ba(&stale)), BaStatus::Mipv6IdMismatch);
    assert_unchanged(&mut e, 1);
    assert_eq!(e.ha.stats().replay_rejected, 3);
    // Within 5 s: fine.
    // Behind our clock but within the window and later than the last accepted: fine.
    stale.timestamp = Some(NtpTimestamp::from_unix(e.wall() - Duration::from_millis(500)).0);
    assert_eq!(status(&e.ba(&stale)), BaStatus::Accepted);
}

#[test]
fn replay_after_deregistration_does_not_resurrect() {
    let mut e = Env::new(auth_cfg());
    let reg = Bu::new(HOA1, 1).signed(1000, KEY1, e.wall());
    e.ba(&reg);
    e.advance(Duration::from_millis(100));
    let mut dereg = Bu::new(HOA1, 2).signed(1000, KEY1, e.wall());
    dereg.lifetime = 0;
    assert_eq!(status(&e.ba(&dereg)), BaStatus::Accepted);
    assert!(e.ha.is_empty());
    e.events();
    e.advance(Duration::from_millis(100));
    // No binding, so any sequence number would do: the timestamp floor saves us.
    assert_eq!(status(&e.ba(&reg)), BaStatus::Mipv6IdMismatch);
    assert_unchanged(&mut e, 0);
    // Once the window has passed the stale timestamp fails the window check anyway.
    e.advance(Duration::from_secs(8));
    assert_eq!(status(&e.ba(&reg)), BaStatus::Mipv6IdMismatch);
    assert_eq!(e.ha.poll_timeout(), None);
}

#[test]
fn missing_timestamp_145() {
    let mut e = Env::new(auth_cfg());
    let mut bu = Bu::new(HOA1, 1).signed(1000, KEY1, e.wall());
    bu.timestamp = None;
    assert_eq!(status(&e.ba(&bu)), BaStatus::Mipv6MesgIdReqd);
    assert_unchanged(&mut e, 0);
    // With a sequence-only SA it is accepted.
    let mut c = auth_cfg();
    if let AuthPolicy::Required(v) = &mut c.auth {
        v[0].replay = ReplayProtection::SequenceOnly;
    }
    let mut e = Env::new(c);
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
}

// ---------- persistence, state ----------

#[test]
fn snapshot_restore_reannounces_with_remaining_lifetime() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1).v4("192.0.2.0/24", true)); // 400 s
    let mut short = Bu::new(HOA2, 5);
    short.lifetime = 10; // 40 s
    e.ba(&short);
    e.advance(Duration::from_secs(30));
    let snap = e.ha.snapshot(e.now, e.wall());
    assert_eq!(snap.len(), 2);
    // Also what the journal saw.
    let persisted: Vec<_> = e
        .events()
        .into_iter()
        .filter_map(|ev| match ev {
            HaEvent::Persist(JournalRecord::Upsert(b)) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(persisted.len(), 2);
    // Restart 30 s later: the 40 s binding expired 20 s ago.
    let mut e2 = Env::new(cfg());
    let wall = e.wall() + Duration::from_secs(30);
    let n = e2.ha.restore(e2.now, wall, snap);
    assert_eq!(n, 1);
    let ev = e2.events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, HaEvent::ProxyNdAdd(p) if p.hoa == HOA1))
    );
    let b = bc_add(&ev);
    assert_eq!(b.hoa, HOA1);
    assert_eq!(b.lifetime, 340);
    assert_eq!(b.mnp_v4, nets4(&["192.0.2.0/24"]));
    // The sequence window survived the restart.
    assert_eq!(
        status(&e2.ba(&Bu::new(HOA1, 1))),
        BaStatus::SequenceNumberOutOfWindow
    );
    assert_eq!(
        e2.ha.poll_timeout(),
        Some(e2.now + Duration::from_secs(340))
    );
}

#[test]
fn state_dump_one_item_per_binding() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA2, 1));
    e.ba(&Bu::new(HOA1, 1).mnp("2001:db8:200::/48"));
    e.advance(Duration::from_secs(10));
    let items = e.ha.handle_state_request(e.now);
    assert_eq!(items.len(), 2);
    {
        let b = &items[0];
        assert_eq!(b.hoa, HOA1);
        assert_eq!(b.lifetime, 390);
        assert_eq!(b.ha, HA);
        assert_eq!(b.mnp_v6, nets6(&["2001:db8:200::/48"]));
    }
}

/// Issue 17 defect 2: an SA keyed only by an NAI took over a home address nobody held at
/// that moment, with that address's prefixes. A home address belongs to the SA that names
/// it (RFC 4285 §5, RFC 3963 §6.1.2).
#[test]
fn nai_only_sa_takes_over_no_home_address() {
    let mut c = auth_cfg();
    if let AuthPolicy::Required(v) = &mut c.auth {
        v.push(sa(1002, KEY3, None, Some(b"mr3@example.org")));
    }
    let mut e = Env::new(c);
    // HOA1's own router registers, then leaves.
    e.ba(&Bu::new(HOA1, 1).signed(1000, KEY1, e.wall()));
    e.events();
    e.advance(Duration::from_millis(10));
    let mut bye = Bu::new(HOA1, 2);
    bye.lifetime = 0;
    assert_eq!(
        status(&e.ba(&bye.signed(1000, KEY1, e.wall()))),
        BaStatus::Accepted
    );
    e.events();
    assert!(e.ha.is_empty());
    let failed = e.ha.stats().auth_failed;
    // The NAI-only SA, with its own valid MAC and MN-ID, for the freed address, for an
    // address of another NAI's SA, and for one nobody names: refused every time.
    for (n, hoa) in [HOA1, HOA2, HOA4].into_iter().enumerate() {
        e.advance(Duration::from_millis(10));
        let mut bu = Bu::new(hoa, 10 + n as u16).signed(1002, KEY3, e.wall());
        bu.nai = Some(b"mr3@example.org");
        assert_eq!(status(&e.ba(&bu)), BaStatus::Mipv6AuthFail, "{hoa}");
        assert_unchanged(&mut e, 0);
    }
    assert_eq!(e.ha.stats().auth_failed, failed + 3);
    // Tied to an address by the configuration, the same NAI registers that one.
    let mut c = auth_cfg();
    if let AuthPolicy::Required(v) = &mut c.auth {
        v.push(sa(1002, KEY3, Some(HOA4), Some(b"mr3@example.org")));
    }
    c.prefix_table
        .push(row(HOA4, "2001:db8:500::/48", PrefixMode::Implicit));
    let mut e = Env::new(c);
    let mut bu = Bu::new(HOA4, 1).signed(1002, KEY3, e.wall());
    bu.nai = Some(b"mr3@example.org");
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    // A wildcard SA (no HoA, no NAI) covers no address another SA names.
    let mut c = cfg();
    c.auth = AuthPolicy::Required(vec![
        sa(1000, KEY1, Some(HOA1), None),
        sa(1009, KEY3, None, None),
    ]);
    let mut e = Env::new(c);
    assert_eq!(
        status(&e.ba(&Bu::new(HOA1, 1).signed(1009, KEY3, e.wall()))),
        BaStatus::Mipv6AuthFail
    );
    assert_eq!(
        status(&e.ba(&Bu::new(HOA2, 1).signed(1009, KEY3, e.wall()))),
        BaStatus::Accepted
    );
}

#[test]
fn config_errors() {
    let mut c = auth_cfg();
    if let AuthPolicy::Required(v) = &mut c.auth {
        v.push(sa(1000, b"x", None, None));
    }
    assert_eq!(Ha::new(c).unwrap_err(), ConfigError::DuplicateSpi(1000));
    let mut c = cfg();
    c.prefix_table.push(row(
        "2001:db8:9::1".parse().unwrap(),
        "10.0.0.0/8",
        PrefixMode::Explicit,
    ));
    assert!(matches!(
        Ha::new(c),
        Err(ConfigError::HoaOutsideHomePrefix(_))
    ));
}

#[test]
fn mh_type_constant_sanity() {
    assert_eq!(u8::from(MhType::BindingUpdate), 5);
}

// ---------- DSMIPv6: BU from an IPv4 care-of address ----------

#[test]
fn ipv4_care_of_address_over_udp_with_nat_detection() {
    use std::net::SocketAddrV4;
    let mut c = auth_cfg();
    c.ha_address_v4 = Some(Ipv4Addr::new(203, 0, 113, 1));
    let mut e = Env::new(c);
    let outer = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 200), 40000);
    let local = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4191);
    let send = |e: &mut Env, seq: u16, v4coa: Ipv4Addr| {
        // RFC 5555 §4.2: no HAO, source = HoA, IPv4 CoA option; MAC over the mapped CoA.
        let mut bu = Bu::new(HOA1, seq).signed(1000, KEY1, e.wall());
        bu.hao = false;
        bu = bu.opt(MobilityOption::Ipv4CareOfAddress(v4coa));
        let mut mh = bu.bytes();
        // Signed over the IPv4 CoA the MR knows (the option), not the NAT's address.
        proto::auth::sign(&mut mh, v4coa.into(), &HOA1, KEY1).unwrap();
        Packet::new_unchecked(&mut mh[..]).fill_checksum(&HOA1, &HA);
        let sig = ReceivedSignal {
            src: HOA1,
            dst: HA,
            home_address: None,
            mh: &mh,
            checksum: ChecksumState::Unverified,
            ifindex: 3,
            udp_v4: Some(UdpV4Path { peer: outer, local }),
        };
        let wall = e.wall();
        e.ha.handle_packet(e.now, wall, &sig);
        e.ha.poll_transmit().expect("BA")
    };
    // Behind a NAT: the option says 10.0.0.5, the outer source is 198.51.100.200 (outside
    // HOA1's own 198.51.100.0/28).
    let tx = send(&mut e, 1, Ipv4Addr::new(10, 0, 0, 5));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(tx.udp_v4, Some(UdpV4Path { peer: outer, local }));
    assert_eq!(tx.addressing.dst_addr, HOA1);
    assert_eq!(tx.addressing.rh2_home_address, None);
    assert!(ba_of(&tx).options.iter().any(|o| matches!(
        o,
        MobilityOption::NatDetection {
            f: true,
            refresh_time: 110
        }
    )));
    assert!(proto::auth::verify(&tx.mh, Ipv4Addr::new(10, 0, 0, 5).into(), &HOA1, KEY1).unwrap());
    let b = bc_add(&e.events()).clone();
    assert_eq!(
        b.coa,
        CareOf::V4 {
            addr: *outer.ip(),
            udp_port: Some(40000)
        }
    );
    assert!(b.nat_detected);
    assert_eq!(
        b.encapsulation,
        proto::model::Encapsulation::UdpIpv4 { ha_port: 4191 }
    );
    assert_eq!(b.ha_v4, Some(Ipv4Addr::new(203, 0, 113, 1)));
    // No NAT: plain IPv4-in-IPv4, Refresh = "none needed".
    e.advance(Duration::from_millis(10));
    let tx = send(&mut e, 2, *outer.ip());
    assert!(ba_of(&tx).options.iter().any(|o| matches!(
        o,
        MobilityOption::NatDetection {
            f: false,
            refresh_time: proto::option::NAT_REFRESH_NONE
        }
    )));
    let b = bc_add(&e.events()).clone();
    assert_eq!(
        b.coa,
        CareOf::V4 {
            addr: *outer.ip(),
            udp_port: None
        }
    );
    assert_eq!(b.encapsulation, proto::model::Encapsulation::InIpv4);
}

#[test]
fn nat_rebinding_followed_only_on_an_authenticated_bu() {
    use std::net::SocketAddrV4;
    let mut c = auth_cfg();
    c.ha_address_v4 = Some(Ipv4Addr::new(203, 0, 113, 1));
    c.nat_keepalive_secs = 25;
    let mut e = Env::new(c);
    let local = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4191);
    let v4coa = Ipv4Addr::new(10, 0, 0, 5);
    let send = |e: &mut Env, seq: u16, peer: SocketAddrV4, key: &[u8]| {
        let mut bu = Bu::new(HOA1, seq).signed(1000, KEY1, e.wall());
        bu.hao = false;
        bu = bu.opt(MobilityOption::Ipv4CareOfAddress(v4coa));
        let mut mh = bu.bytes();
        proto::auth::sign(&mut mh, v4coa.into(), &HOA1, key).unwrap();
        Packet::new_unchecked(&mut mh[..]).fill_checksum(&HOA1, &HA);
        let sig = ReceivedSignal {
            src: HOA1,
            dst: HA,
            home_address: None,
            mh: &mh,
            checksum: ChecksumState::Unverified,
            ifindex: 3,
            udp_v4: Some(UdpV4Path { peer, local }),
        };
        let wall = e.wall();
        e.ha.handle_packet(e.now, wall, &sig);
        e.ha.poll_transmit()
    };
    let first = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 200), 40000);
    let rebound = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 200), 41234);
    assert!(send(&mut e, 1, first, KEY1).is_some());
    let b = bc_add(&e.events()).clone();
    assert_eq!(
        b.coa,
        CareOf::V4 {
            addr: *first.ip(),
            udp_port: Some(40000)
        }
    );
    // A forged BU (wrong key) from a new mapping moves nothing.
    e.advance(Duration::from_millis(10));
    if let Some(tx) = send(&mut e, 2, rebound, b"not the key at all") {
        assert_ne!(status(&tx), BaStatus::Accepted);
    }
    assert!(!e.events().iter().any(|ev| matches!(ev, HaEvent::BcAdd(_))));
    // The MR's next keepalive BU after the NAT rebinding: the binding follows it.
    e.advance(Duration::from_millis(10));
    let tx = send(&mut e, 3, rebound, KEY1).expect("BA");
    assert_eq!(tx.udp_v4.unwrap().peer, rebound);
    // The configured keepalive goes out as the Refresh time (nat-keepalive-interval).
    assert!(ba_of(&tx).options.iter().any(|o| matches!(
        o,
        MobilityOption::NatDetection {
            f: true,
            refresh_time: 25
        }
    )));
    let b = bc_add(&e.events()).clone();
    assert_eq!(
        b.coa,
        CareOf::V4 {
            addr: *rebound.ip(),
            udp_port: Some(41234)
        }
    );
}

#[test]
fn link_local_defended_with_l_flag() {
    let mut e = Env::new(cfg());
    let mut bu = Bu::new(HOA1, 1);
    bu.flags |= BuFlags::L;
    e.ba(&bu);
    let ev = e.events();
    let p = ev
        .iter()
        .find_map(|e| match e {
            HaEvent::ProxyNdAdd(p) => Some(*p),
            _ => None,
        })
        .unwrap();
    assert_eq!(p.link_local, Some("fe80::100".parse().unwrap()));
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever arrives, the core neither panics nor registers anything without a
        /// valid MAC (auth required here, random octets cannot carry one).
        #[test]
        fn random_octets_never_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..160),
            t in 0u8..20,
            hao in any::<bool>(),
        ) {
            if bytes.len() >= 8 {
                bytes[0] = 59;
                bytes[1] = (bytes.len() / 8 - 1) as u8;
                bytes[2] = t;
            }
            let mut e = Env::new(auth_cfg());
            let sig = ReceivedSignal {
                src: COA,
                dst: HA,
                home_address: hao.then_some(HOA3),
                mh: &bytes,
                checksum: ChecksumState::Verified,
                ifindex: 1,
                udp_v4: None,
            };
            e.ha.handle_packet(e.now, WALL0, &sig);
            prop_assert!(e.ha.is_empty());
            while let Some(tx) = e.ha.poll_transmit() {
                prop_assert!(tx.repr().is_ok());
            }
        }

        /// Acceptance follows RFC 6275 serial arithmetic from any starting point.
        #[test]
        fn sequence_acceptance_is_serial_arithmetic(first in any::<u16>(), next in any::<u16>()) {
            let mut e = Env::new(cfg());
            prop_assert_eq!(status(&e.ba(&Bu::new(HOA1, first))), BaStatus::Accepted);
            let want = if SequenceNumber(next).is_newer_than(SequenceNumber(first)) {
                BaStatus::Accepted
            } else {
                BaStatus::SequenceNumberOutOfWindow
            };
            prop_assert_eq!(status(&e.ba(&Bu::new(HOA1, next))), want);
        }
    }
}

/// A copy of `bu`'s bytes with `f` applied, checksum refilled (RFC 6275 §9.2 checks the
/// checksum first: these must pass it to reach the field checks).
fn mangled(bu: &Bu, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut mh = bu.bytes();
    f(&mut mh);
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&bu.hoa, &HA);
    mh
}

#[test]
fn payload_proto_not_59_gets_parameter_problem_at_octet_0() {
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA1, 1);
    e.send_raw(&bu, &mangled(&bu, |mh| mh[0] = 6));
    assert!(e.ha.poll_transmit().is_none(), "no BA, no BE");
    assert_eq!(
        e.ha.poll_icmp_error(),
        Some(ParameterProblem {
            src: HA,
            dst: COA, // on-wire source, not the HoA (§9.2: no binding cache lookup)
            code: 0,
            mh_pointer: 0,
            ifindex: 3,
        })
    );
    assert!(e.ha.poll_icmp_error().is_none());
    assert_eq!(e.ha.len(), 0);
    assert_eq!(e.ha.stats().parameter_problems, 1);
    assert_eq!(e.ha.stats().malformed, 1);
}

#[test]
fn header_len_below_minimum_gets_parameter_problem_at_octet_1() {
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA1, 1).opt(MobilityOption::PadN(0));
    // Header Len 0 (8 octets) for a BU, whose minimum is 1.
    let mh = mangled(&bu, |mh| {
        mh.truncate(8);
        mh[1] = 0;
    });
    e.send_raw(&bu, &mh);
    assert!(e.ha.poll_transmit().is_none());
    let pp = e.ha.poll_icmp_error().expect("parameter problem");
    assert_eq!((pp.code, pp.mh_pointer, pp.dst), (0, 1, COA));
    // The shell adds the MH's offset: IPv6 (40) + Destination Options with HAO (24).
    assert_eq!(pp.pointer(64), 65);
    assert_eq!(e.ha.len(), 0);
}

#[test]
fn parameter_problems_are_rate_limited_and_never_to_or_from_multicast() {
    let mut c = cfg();
    c.binding_error_rate = 2;
    let mut e = Env::new(c);
    let bu = Bu::new(HOA1, 1);
    let bad = mangled(&bu, |mh| mh[0] = 17);
    for _ in 0..5 {
        e.send_raw(&bu, &bad);
    }
    assert_eq!(e.ha.stats().parameter_problems, 2);
    assert_eq!(e.ha.stats().parameter_problems_limited, 3);
    while e.ha.poll_icmp_error().is_some() {}
    // The bucket refills at the configured rate.
    e.advance(Duration::from_secs(1));
    e.send_raw(&bu, &bad);
    assert!(e.ha.poll_icmp_error().is_some());
    // Sent to a multicast address: no error (RFC 4443 §2.4(e)).
    e.advance(Duration::from_secs(1));
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let mut mh = bu.bytes();
    mh[0] = 17;
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&HOA1, &all_nodes);
    let sig = ReceivedSignal {
        src: COA,
        dst: all_nodes,
        home_address: Some(HOA1),
        mh: &mh,
        checksum: ChecksumState::Unverified,
        ifindex: 3,
        udp_v4: None,
    };
    let wall = e.wall();
    e.ha.handle_packet(e.now, wall, &sig);
    assert!(e.ha.poll_icmp_error().is_none());
}

#[test]
fn bad_checksum_beats_bad_payload_proto() {
    // §9.2 order: the checksum first, silently.
    let mut e = Env::new(cfg());
    let bu = Bu::new(HOA1, 1);
    let mut mh = mangled(&bu, |mh| mh[0] = 6);
    mh[4] ^= 0xff;
    e.send_raw(&bu, &mh);
    assert!(e.ha.poll_icmp_error().is_none());
    assert_eq!(e.ha.stats().bad_checksum, 1);
}

/// Issue 17 defect 6: with `authentication none;` 30,000 BUs for random home addresses
/// made 16,731 bindings. The cache is capped (130 beyond `max_bindings`, refreshes and
/// de-registrations still served), and home addresses nothing names are refused (129).
#[test]
fn binding_cap_and_unlisted_home_addresses() {
    let mut c = cfg();
    c.max_bindings = 2;
    c.accept_unlisted_home_addresses = false;
    let mut e = Env::new(c);
    // HOA1 and HOA2 are in the prefix table; HOA4 is not, nor named by an SA.
    assert_eq!(
        status(&e.ba(&Bu::new(HOA4, 1))),
        BaStatus::AdministrativelyProhibited
    );
    assert_eq!(e.ha.stats().unlisted_home_address, 1);
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 1))), BaStatus::Accepted);
    assert_eq!(status(&e.ba(&Bu::new(HOA2, 1))), BaStatus::Accepted);
    e.events();
    // Full: HOA3 (listed) is refused; the others refresh.
    let mut b3 = Bu::new(HOA3, 1);
    b3.options = vec![MobilityOption::MobileNetworkPrefix {
        prefix_len: 48,
        prefix: "2001:db8:400::".parse().unwrap(),
    }];
    assert_eq!(status(&e.ba(&b3)), BaStatus::InsufficientResources);
    assert!(e.events().is_empty());
    assert_eq!(e.ha.stats().cache_full, 1);
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 2))), BaStatus::Accepted);
    // A de-registration makes room.
    let mut bye = Bu::new(HOA2, 2);
    bye.lifetime = 0;
    assert_eq!(status(&e.ba(&bye)), BaStatus::Accepted);
    b3.seq = 2;
    assert_eq!(status(&e.ba(&b3)), BaStatus::Accepted);
    assert_eq!(e.ha.len(), 2);
    // An address an SA names needs no prefix table row.
    let mut c = auth_cfg();
    c.accept_unlisted_home_addresses = false;
    c.prefix_table.clear();
    let mut e = Env::new(c);
    let tx = e.ba(&Bu::new(HOA1, 1).signed(1000, KEY1, e.wall()));
    assert_ne!(status(&tx), BaStatus::AdministrativelyProhibited);
}

// ---------- care-of address validation (RFC 6275 §9.5.1, issue 17) ----------

/// Sends `bu` (away from home, HAO) and says whether anything came back; a drop must leave
/// no BA, no event and no binding change.
fn dropped(e: &mut Env, bu: &Bu) -> bool {
    let before = (e.ha.len(), e.ha.stats().invalid_coa);
    e.send(bu);
    let silent = e.ha.poll_transmit().is_none() && e.events().is_empty();
    silent && e.ha.len() == before.0 && e.ha.stats().invalid_coa == before.1 + 1
}

/// A BU for `hoa` from the IPv4 care-of address `peer` in UDP/IPv4, unauthenticated (RFC
/// 5555 §4.2: no HAO, source = HoA, the IPv4 Care-of Address option).
fn send_udp(e: &mut Env, mut bu: Bu, peer: std::net::SocketAddrV4) -> Option<Transmit> {
    let local = std::net::SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4191);
    bu.hao = false;
    let hoa = bu.hoa;
    let mh = bu
        .opt(MobilityOption::Ipv4CareOfAddress(*peer.ip()))
        .bytes();
    let sig = ReceivedSignal {
        src: hoa,
        dst: HA,
        home_address: None,
        mh: &mh,
        checksum: ChecksumState::Unverified,
        ifindex: 3,
        udp_v4: Some(UdpV4Path { peer, local }),
    };
    let wall = e.wall();
    e.ha.handle_packet(e.now, wall, &sig);
    e.ha.poll_transmit()
}

#[test]
fn non_unicast_care_of_addresses_dropped_and_counted() {
    let mut e = Env::new(cfg());
    for coa in ["ff02::1", "::", "::1", "fe80::5", "::ffff:192.0.2.1"] {
        let mut bu = Bu::new(HOA1, 1);
        bu.coa = coa.parse().unwrap();
        assert!(dropped(&mut e, &bu), "{coa}");
    }
    assert_eq!(e.ha.stats().invalid_coa, 5);
    assert_eq!(e.ha.stats().rejected, 0);
}

#[test]
fn care_of_address_of_the_home_agent_itself_dropped() {
    let mut c = cfg();
    c.ha_address_v4 = Some(Ipv4Addr::new(203, 0, 113, 1));
    let mut e = Env::new(c);
    // The configured home agent address.
    let mut bu = Bu::new(HOA1, 1);
    bu.coa = HA;
    assert!(dropped(&mut e, &bu));
    // Another address of ours, outside the home prefix: the one the BU was sent to.
    let upstream: Ipv6Addr = "2001:db8:f::1".parse().unwrap();
    let mut bu = Bu::new(HOA1, 2);
    bu.coa = upstream;
    let mh = bu.bytes();
    let mut mh2 = mh.clone();
    Packet::new_unchecked(&mut mh2[..]).fill_checksum(&HOA1, &upstream);
    let sig = ReceivedSignal {
        src: upstream,
        dst: upstream,
        home_address: Some(HOA1),
        mh: &mh2,
        checksum: ChecksumState::Unverified,
        ifindex: 3,
        udp_v4: None,
    };
    let wall = e.wall();
    e.ha.handle_packet(e.now, wall, &sig);
    assert!(e.ha.poll_transmit().is_none());
    assert_eq!(e.ha.stats().invalid_coa, 2);
    // The home agent's IPv4 address as an IPv4 care-of address.
    let own_v4 = std::net::SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4191);
    assert!(send_udp(&mut e, Bu::new(HOA4, 3), own_v4).is_none());
    assert_eq!(e.ha.stats().invalid_coa, 3);
    assert!(e.ha.is_empty());
}

#[test]
fn care_of_address_on_the_home_link_must_be_the_home_address() {
    let mut e = Env::new(cfg());
    // Another address of the home prefix is no care-of address, to register or to
    // de-register from.
    let mut bu = Bu::new(HOA1, 1);
    bu.coa = "2001:db8:1::5".parse().unwrap();
    assert!(dropped(&mut e, &bu));
    // HOA2's home address as HOA1's care-of address.
    bu.coa = HOA2;
    assert!(dropped(&mut e, &bu));
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 2))), BaStatus::Accepted);
    e.events();
    let mut bu = Bu::new(HOA1, 3);
    bu.coa = "2001:db8:1::5".parse().unwrap();
    bu.lifetime = 0;
    assert!(dropped(&mut e, &bu));
    assert_eq!(e.ha.len(), 1);
    // Back home: the care-of address is the home address, the de-registration still works.
    let mut bu = Bu::new(HOA1, 4);
    bu.hao = false;
    bu.coa = HOA1;
    let tx = e.ba(&bu);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(ba_of(&tx).lifetime, Lifetime::ZERO);
    assert!(e.ha.is_empty());
    assert_eq!(e.ha.stats().deregistered, 1);
}

#[test]
fn care_of_address_inside_the_routers_own_prefixes_dropped() {
    let mut e = Env::new(cfg());
    // IPv6, from the prefix table (implicit and explicit rows alike).
    for coa in ["2001:db8:100::5", "2001:db8:200:1::9"] {
        let mut bu = Bu::new(HOA1, 1);
        bu.coa = coa.parse().unwrap();
        assert!(dropped(&mut e, &bu), "{coa}");
    }
    // IPv6, from the BU's own Mobile Network Prefix option (HOA4 has no table rows: the
    // old code answered 142).
    let mut bu = Bu::new(HOA4, 1).mnp("2001:db8:999::/48");
    bu.coa = "2001:db8:999::1".parse().unwrap();
    assert!(dropped(&mut e, &bu));
    // IPv4, from the prefix table and from the BU's IPv4 Home Address option (P=1).
    let peer = |a: [u8; 4]| std::net::SocketAddrV4::new(Ipv4Addr::from(a), 40000);
    assert!(send_udp(&mut e, Bu::new(HOA1, 2), peer([192, 0, 2, 77])).is_none());
    assert!(send_udp(&mut e, Bu::new(HOA1, 3), peer([198, 51, 100, 3])).is_none());
    let bu = Bu::new(HOA4, 2).v4("10.9.0.0/24", true);
    assert!(send_udp(&mut e, bu, peer([10, 9, 0, 1])).is_none());
    assert_eq!(e.ha.stats().invalid_coa, 6);
    assert!(e.ha.is_empty());
    // Another router's prefix is a care-of address like any (nested mobile networks).
    let mut bu = Bu::new(HOA1, 4);
    bu.coa = "2001:db8:300::5".parse().unwrap();
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    // A dynamic allocation request (P=1, 0.0.0.0) covers no address of the router's.
    let bu = Bu::new(HOA1, 5).opt(MobilityOption::Ipv4HomeAddress {
        prefix_len: 24,
        p: true,
        address: Ipv4Addr::UNSPECIFIED,
    });
    let tx = send_udp(&mut e, bu, peer([198, 51, 100, 200])).expect("BA");
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(e.ha.stats().invalid_coa, 6);
}

// ---------- what a 146 says (issue 17 item 9) ----------

/// The events logged while `f` runs, each as its fields (`message=...` first).
fn logs_of(f: impl FnOnce()) -> Vec<String> {
    use std::fmt::Write;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};

    struct Line(String);
    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            let _ = write!(self.0, "{}={value} ", field.name());
        }
    }
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut line = Line(String::new());
            event.record(&mut line);
            self.0.lock().unwrap().push(line.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::with_default(Capture(Arc::clone(&lines)), f);
    lines.lock().unwrap().clone()
}

#[test]
fn a_146_log_says_whether_the_mac_or_the_sa_failed() {
    let mut e = Env::new(auth_cfg());
    let failure = |e: &mut Env, bu: &Bu| {
        let logs = logs_of(|| {
            assert_eq!(status(&e.ba(bu)), BaStatus::Mipv6AuthFail);
        });
        logs.into_iter()
            .find(|l| l.contains("binding update failed authentication"))
            .expect("a log line for the 146")
    };
    // The wrong key: the MAC does not verify.
    let bu = Bu::new(HOA1, 1).signed(1000, KEY2, e.wall());
    let line = failure(&mut e, &bu);
    assert!(line.contains("mac_ok=false"), "{line}");
    assert!(
        line.contains("reason=the authenticator did not verify"),
        "{line}"
    );
    // The right key of another home address's SA: the MAC verifies, the SA does not cover
    // HOA2 (the old line said only mac_ok=true, and the shell "did not verify").
    let bu = Bu::new(HOA2, 1).signed(1000, KEY1, e.wall());
    let line = failure(&mut e, &bu);
    assert!(line.contains("mac_ok=true"), "{line}");
    assert!(line.contains("covers=false"), "{line}");
    assert!(
        line.contains("reason=the authenticator verified, but this SA is not the one"),
        "{line}"
    );
    assert!(!line.contains("did not verify"), "{line}");
}

// ---------- proxy DAD (RFC 6275 §10.3.1, issue 11) ----------

fn dad_cfg() -> HaCoreConfig {
    let mut c = cfg();
    c.proxy_dad = Some(Duration::from_secs(1));
    c
}

/// The first BA for a new home address waits for proxy DAD; a retransmission meanwhile is
/// the one answered; nothing is installed before the verdict.
#[test]
fn proxy_dad_before_the_first_ba() {
    let mut e = Env::new(dad_cfg());
    e.send(&Bu::new(HOA1, 1));
    assert!(e.ha.poll_transmit().is_none(), "no BA before DAD");
    let ev = e.events();
    assert_eq!(
        ev,
        vec![HaEvent::ProxyDadStart {
            hoa: HOA1,
            targets: vec![HOA1]
        }]
    );
    assert!(e.ha.is_empty(), "nothing installed during DAD");
    assert_eq!(e.ha.poll_timeout(), Some(e.now + Duration::from_secs(1)));
    // The MR retransmits (1.5 s later it would; 0.5 s here): still nothing.
    e.now += Duration::from_millis(500);
    e.send(&Bu::new(HOA1, 2));
    assert!(e.ha.poll_transmit().is_none());
    assert!(e.events().is_empty(), "one DAD per address");
    e.now += Duration::from_millis(500);
    let wall = e.wall();
    e.ha.handle_dad_timeouts(e.now, wall);
    let tx = e.ha.poll_transmit().expect("the BA after DAD");
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(
        ba_of(&tx).sequence,
        SequenceNumber(2),
        "the newest BU answered"
    );
    assert!(e.events().iter().any(|ev| matches!(ev, HaEvent::BcAdd(_))));
    assert_eq!(e.ha.len(), 1);
    assert_eq!(e.ha.stats().dad_started, 1);
    // A refresh of the binding needs no DAD.
    e.now += Duration::from_secs(1);
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 3))), BaStatus::Accepted);
}

/// A Neighbour Advertisement for the address during DAD: 134, nothing installed; with L,
/// the link-local address is checked too.
#[test]
fn proxy_dad_defended_address_134() {
    let mut e = Env::new(dad_cfg());
    let mut bu = Bu::new(HOA1, 1);
    bu.flags |= BuFlags::L;
    e.send(&bu);
    let ll: Ipv6Addr = "fe80::100".parse().unwrap();
    assert_eq!(
        e.events(),
        vec![HaEvent::ProxyDadStart {
            hoa: HOA1,
            targets: vec![HOA1, ll]
        }]
    );
    // An NA for an address nobody is checking changes nothing.
    let wall = e.wall();
    e.ha.handle_dad_defended(e.now, wall, HOA2);
    assert!(e.ha.poll_transmit().is_none());
    e.ha.handle_dad_defended(e.now, wall, ll);
    let tx = e.ha.poll_transmit().expect("a BA 134");
    assert_eq!(status(&tx), BaStatus::DuplicateAddressDetectionFailed);
    assert!(e.events().is_empty(), "no binding, no proxy ND, no journal");
    assert!(e.ha.is_empty());
    assert_eq!(e.ha.stats().dad_defended, 1);
    // The timer has nothing left to do.
    e.now += Duration::from_secs(2);
    let wall = e.wall();
    e.ha.handle_dad_timeouts(e.now, wall);
    assert!(e.ha.poll_transmit().is_none());
}

fn hao_signal<'a>(src: Ipv6Addr, hoa: Ipv6Addr, upper: u8, payload: &'a [u8]) -> HaoSignal<'a> {
    HaoSignal {
        src,
        dst: HA,
        home_address: hoa,
        upper_layer: upper,
        payload,
        ifindex: 3,
    }
}

/// RFC 6275 §9.3.1: traffic with a Home Address option from the care-of address of a live
/// binding is processed as from the home address (an Echo Request answered with an Echo
/// Reply through an RH2, §6.4); without such a binding, Binding Error 1 and nothing else.
#[test]
fn home_address_option_on_ordinary_traffic() {
    let mut e = Env::new(cfg());
    // Echo Request: id 0x4242, seq 3, data.
    let echo = [128u8, 0, 0, 0, 0x42, 0x42, 0, 3, 1, 2, 3, 4];
    // No binding yet: BE 1 to the on-wire source, naming the home address.
    e.ha.handle_hao_packet(e.now, &hao_signal(COA, HOA1, 58, &echo));
    assert!(e.ha.poll_icmp_reply().is_none());
    let tx = e.ha.poll_transmit().expect("binding error");
    assert_eq!(tx.addressing.dst_addr, COA);
    assert_eq!(tx.addressing.rh2_home_address, None);
    match tx.repr().unwrap() {
        MhRepr::BindingError(be) => {
            assert_eq!(
                be.status,
                BeStatus::UnknownBindingForHomeAddressDestinationOption
            );
            assert_eq!(be.home_address, HOA1);
        }
        r => panic!("{r:?}"),
    }
    // Registered from COA.
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 1))), BaStatus::Accepted);
    e.events();
    // From the bound care-of address: an Echo Reply to it with an RH2 to the home address.
    e.ha.handle_hao_packet(e.now, &hao_signal(COA, HOA1, 58, &echo));
    assert!(e.ha.poll_transmit().is_none(), "no binding error");
    let reply = e.ha.poll_icmp_reply().expect("echo reply");
    let proto::ext::Walk::Other(p) = proto::ext::walk(&reply).unwrap() else {
        panic!("not ICMPv6")
    };
    assert_eq!((p.src_addr, p.dst_addr), (HA, COA));
    assert_eq!(p.rh2_home_address, Some(HOA1));
    assert_eq!(p.upper_layer, 58);
    assert_eq!(p.payload[0], 129, "Echo Reply");
    assert_eq!(
        &p.payload[4..],
        &echo[4..],
        "identifier, sequence and data echoed"
    );
    assert!(p.verify_checksum().is_ok(), "checksum over HA -> HoA");
    // From another care-of address than the binding's: BE 1, no reply.
    e.ha.handle_hao_packet(e.now, &hao_signal(COA2, HOA1, 58, &echo));
    assert!(e.ha.poll_icmp_reply().is_none());
    assert!(e.ha.poll_transmit().is_some());
    // Other traffic from the bound care-of address: counted, neither answered nor refused.
    e.ha.handle_hao_packet(e.now, &hao_signal(COA, HOA1, 17, &[0; 8]));
    assert!(e.ha.poll_icmp_reply().is_none());
    assert!(e.ha.poll_transmit().is_none());
    let s = e.ha.stats();
    assert_eq!(
        (s.hao_received, s.hao_unbound, s.hao_not_delivered),
        (4, 2, 1)
    );
}

/// The ICMPv6 message inside a queued answer, with its addressing.
fn icmp_answer(packet: &[u8]) -> (Ipv6Addr, Ipv6Addr, Option<Ipv6Addr>, Vec<u8>) {
    let proto::ext::Walk::Other(p) = proto::ext::walk(packet).unwrap() else {
        panic!("not ICMPv6")
    };
    assert_eq!(p.upper_layer, 58);
    assert!(p.verify_checksum().is_ok(), "checksum");
    (
        p.src_addr,
        p.dst_addr,
        p.rh2_home_address,
        p.payload.to_vec(),
    )
}

/// RFC 6275 §10.5: a Home Agent Address Discovery Request to the Home-Agents anycast
/// address of a served prefix is answered from the home agent's address to the source,
/// with the home agents list (this one and those learnt from home-link RAs, §10.5.1),
/// most preferred first; R (RFC 3963 §7.1) keeps only home agents serving mobile routers.
#[test]
fn home_agent_address_discovery() {
    use proto::icmpv6::{
        HaInfoFlags, HaadFlags, HaadRequest, HomeAgentInformation, NdOption, PrefixFlags,
        PrefixInformation, RaFlags, RouterAdvertisement,
    };
    let mut c = cfg();
    c.home_agent_preference = 5;
    let mut e = Env::new(c);
    let anycast: Ipv6Addr = "2001:db8:1:0:fdff:ffff:ffff:fffe".parse().unwrap();
    let other_ha: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    let plain_ha: Ipv6Addr = "2001:db8:1::3".parse().unwrap();
    let ra = |preference: i16, r: bool, global: Ipv6Addr| RouterAdvertisement {
        flags: RaFlags::H,
        router_lifetime: 1800,
        options: vec![
            NdOption::HomeAgentInformation(HomeAgentInformation {
                flags: if r {
                    HaInfoFlags::R
                } else {
                    HaInfoFlags::empty()
                },
                preference,
                lifetime: 600,
            }),
            NdOption::PrefixInformation(PrefixInformation {
                prefix_len: 64,
                flags: PrefixFlags::L | PrefixFlags::A | PrefixFlags::R,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: global,
            }),
        ],
        ..Default::default()
    };
    // Learnt on the home link (ifindex 2) only.
    e.ha.handle_router_advertisement(
        e.now,
        "fe80::2".parse().unwrap(),
        2,
        &ra(10, true, other_ha),
    );
    e.ha.handle_router_advertisement(
        e.now,
        "fe80::3".parse().unwrap(),
        2,
        &ra(20, false, plain_ha),
    );
    e.ha.handle_router_advertisement(
        e.now,
        "fe80::9".parse().unwrap(),
        7,
        &ra(99, true, "2001:db8:1::9".parse().unwrap()),
    );
    let ask = |e: &mut Env, r: bool, dst: Ipv6Addr| {
        let mut flags = HaadFlags::empty();
        flags.set(HaadFlags::R, r);
        e.ha.handle_haad_request(
            e.now,
            COA,
            dst,
            &HaadRequest {
                identifier: 0x77,
                flags,
            },
        );
        e.ha.poll_icmp_reply()
    };
    let (src, dst, rh2, icmp) = icmp_answer(&ask(&mut e, true, anycast).expect("reply"));
    assert_eq!((src, dst, rh2), (HA, COA, None));
    let Icmpv6Repr::HaadReply(reply) = Icmpv6Repr::parse_bytes(&icmp).unwrap() else {
        panic!("not a reply")
    };
    assert_eq!(reply.identifier, 0x77);
    assert!(reply.flags.mobile_router());
    assert_eq!(
        reply.home_agents,
        vec![other_ha, HA],
        "R: only MR-capable, by preference"
    );
    let (_, _, _, icmp) = icmp_answer(&ask(&mut e, false, anycast).expect("reply"));
    let Icmpv6Repr::HaadReply(reply) = Icmpv6Repr::parse_bytes(&icmp).unwrap() else {
        panic!("not a reply")
    };
    assert!(!reply.flags.mobile_router());
    assert_eq!(reply.home_agents, vec![plain_ha, other_ha, HA]);
    // To our unicast address, or the anycast address of a prefix we do not serve: dropped.
    assert!(ask(&mut e, true, HA).is_none());
    assert!(
        ask(
            &mut e,
            true,
            "2001:db8:9:0:fdff:ffff:ffff:fffe".parse().unwrap()
        )
        .is_none()
    );
    // After the learnt Home Agent Lifetime (600 s) only this home agent remains.
    e.now += Duration::from_secs(601);
    let (_, _, _, icmp) = icmp_answer(&ask(&mut e, true, anycast).expect("reply"));
    let Icmpv6Repr::HaadReply(reply) = Icmpv6Repr::parse_bytes(&icmp).unwrap() else {
        panic!("not a reply")
    };
    assert_eq!(reply.home_agents, vec![HA]);
    let s = e.ha.stats();
    assert_eq!(
        (
            s.router_advertisements,
            s.haad_requests,
            s.discovery_dropped
        ),
        (2, 5, 2)
    );
    assert_eq!(e.ha.home_agents_list(e.now).len(), 1);
}

/// A request costs 48 octets and its answer up to 1280: answers are rate-limited (a burst
/// of `discovery_reply_rate`, then that many per second).
#[test]
fn discovery_answers_are_rate_limited() {
    use proto::icmpv6::{HaadFlags, HaadRequest};
    let mut c = cfg();
    c.discovery_reply_rate = 3;
    let mut e = Env::new(c);
    let anycast: Ipv6Addr = "2001:db8:1:0:fdff:ffff:ffff:fffe".parse().unwrap();
    let request = HaadRequest {
        identifier: 1,
        flags: HaadFlags::R,
    };
    let mut answered = 0;
    for _ in 0..10 {
        e.ha.handle_haad_request(e.now, COA, anycast, &request);
        answered += usize::from(e.ha.poll_icmp_reply().is_some());
    }
    assert_eq!(answered, 3);
    assert_eq!(e.ha.stats().discovery_dropped, 7);
    e.now += Duration::from_secs(1);
    e.ha.handle_haad_request(e.now, COA, anycast, &request);
    assert!(e.ha.poll_icmp_reply().is_some(), "refilled after a second");
    // Multicast or unspecified sources never get an answer.
    e.now += Duration::from_secs(5);
    for src in [Ipv6Addr::UNSPECIFIED, "ff02::1".parse().unwrap()] {
        e.ha.handle_haad_request(e.now, src, anycast, &request);
        assert!(e.ha.poll_icmp_reply().is_none());
    }
}

/// RFC 6275 §10.6.2: a Mobile Prefix Solicitation from a registered mobile node (Home
/// Address option, from the binding's care-of address) is answered to the care-of address
/// with an RH2 for the home address, carrying the home prefixes with the lifetimes the
/// home link advertises (counting down), and the Identifier copied.
#[test]
fn mobile_prefix_discovery() {
    use proto::icmpv6::{NdOption, PrefixFlags, PrefixInformation, RaFlags, RouterAdvertisement};
    let mut e = Env::new(cfg());
    let mps = [146u8, 0, 0, 0, 0x12, 0x34, 0, 0];
    // Not registered: Binding Error 1, no advertisement.
    e.ha.handle_hao_packet(e.now, &hao_signal(COA, HOA1, 58, &mps));
    assert!(e.ha.poll_icmp_reply().is_none());
    assert!(e.ha.poll_transmit().is_some());
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 1))), BaStatus::Accepted);
    e.events();
    // Nothing heard from the home link yet: RFC 4861's default lifetimes.
    e.ha.handle_hao_packet(e.now, &hao_signal(COA, HOA1, 58, &mps));
    let (src, dst, rh2, icmp) = icmp_answer(&e.ha.poll_icmp_reply().expect("advertisement"));
    assert_eq!((src, dst, rh2), (HA, COA, Some(HOA1)));
    let Icmpv6Repr::MobilePrefixAdvertisement(mpa) = Icmpv6Repr::parse_bytes(&icmp).unwrap() else {
        panic!("not an MPA")
    };
    assert_eq!(mpa.identifier, 0x1234);
    let prefix = |mpa: &proto::icmpv6::MobilePrefixAdvertisement<'_>| match mpa.options[..] {
        [NdOption::PrefixInformation(p)] => p,
        ref o => panic!("{o:?}"),
    };
    let p = prefix(&mpa);
    assert_eq!(
        (p.prefix, p.prefix_len),
        ("2001:db8:1::".parse().unwrap(), 64)
    );
    assert_eq!(
        (p.valid_lifetime, p.preferred_lifetime),
        (2_592_000, 604_800)
    );
    // The home link's router advertises the prefix (and M): those values, counting down.
    e.ha.handle_router_advertisement(
        e.now,
        "fe80::1".parse().unwrap(),
        2,
        &RouterAdvertisement {
            flags: RaFlags::M,
            router_lifetime: 1800,
            options: vec![NdOption::PrefixInformation(PrefixInformation {
                prefix_len: 64,
                flags: PrefixFlags::L | PrefixFlags::A,
                valid_lifetime: 7200,
                preferred_lifetime: 3600,
                prefix: "2001:db8:1::".parse().unwrap(),
            })],
            ..Default::default()
        },
    );
    e.now += Duration::from_secs(100);
    e.ha.handle_hao_packet(e.now, &hao_signal(COA, HOA1, 58, &mps));
    let (_, _, _, icmp) = icmp_answer(&e.ha.poll_icmp_reply().expect("advertisement"));
    let Icmpv6Repr::MobilePrefixAdvertisement(mpa) = Icmpv6Repr::parse_bytes(&icmp).unwrap() else {
        panic!("not an MPA")
    };
    assert_eq!(mpa.flags, proto::icmpv6::MpaFlags::M);
    let p = prefix(&mpa);
    assert_eq!((p.valid_lifetime, p.preferred_lifetime), (7100, 3500));
    assert_eq!(p.flags, PrefixFlags::L | PrefixFlags::A);
    assert_eq!(e.ha.stats().mobile_prefix_solicitations, 2);
}

/// RFC 6275 §10.3.1 (TAHI HA_2_1_9): the granted lifetime is no longer than the home
/// prefix's remaining valid lifetime, as the home link's Router Advertisements give it.
#[test]
fn granted_lifetime_capped_by_the_home_prefix_valid_lifetime() {
    use proto::icmpv6::{NdOption, PrefixFlags, PrefixInformation, RouterAdvertisement};
    let mut e = Env::new(cfg());
    e.ha.handle_router_advertisement(
        e.now,
        "fe80::1".parse().unwrap(),
        2,
        &RouterAdvertisement {
            router_lifetime: 1800,
            options: vec![NdOption::PrefixInformation(PrefixInformation {
                prefix_len: 64,
                flags: PrefixFlags::L | PrefixFlags::A,
                valid_lifetime: 600,
                preferred_lifetime: 300,
                prefix: "2001:db8:1::".parse().unwrap(),
            })],
            ..Default::default()
        },
    );
    e.now += Duration::from_secs(200);
    let mut bu = Bu::new(HOA1, 1);
    bu.lifetime = u16::MAX;
    let tx = e.ba(&bu);
    // 400 s left of the prefix's 600 (the configured cap is 1000 s).
    assert_eq!(ba_of(&tx).lifetime, Lifetime(100));
}

/// RFC 6275 §10.6.2: when the home prefixes change, every mobile node registered from an
/// IPv6 care-of address gets an unsolicited advertisement through an RH2.
#[test]
fn unsolicited_prefix_advertisements_to_every_registered_node() {
    let mut e = Env::new(cfg());
    assert_eq!(e.ha.advertise_prefixes(e.now), 0);
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 1))), BaStatus::Accepted);
    e.events();
    assert_eq!(e.ha.advertise_prefixes(e.now), 1);
    let (src, dst, rh2, icmp) = icmp_answer(&e.ha.poll_icmp_reply().expect("advertisement"));
    assert_eq!((src, dst, rh2), (HA, COA, Some(HOA1)));
    assert!(matches!(
        Icmpv6Repr::parse_bytes(&icmp).unwrap(),
        Icmpv6Repr::MobilePrefixAdvertisement(_)
    ));
    assert!(e.ha.poll_icmp_reply().is_none());
}

// ---------- Home Agent Switch (RFC 5142) ----------

fn has_of(tx: &Transmit) -> proto::mh::HomeAgentSwitch<'_> {
    match tx.repr().unwrap() {
        MhRepr::HomeAgentSwitch(m) => m,
        other => panic!("not a Home Agent Switch: {other:?}"),
    }
}

/// A home agent on the home link, as its Router Advertisement announces it.
fn learn_home_agent(e: &mut Env, link_local: &str, global: Ipv6Addr, preference: i16, r: bool) {
    use proto::icmpv6::{
        HaInfoFlags, HomeAgentInformation, NdOption, PrefixFlags, PrefixInformation, RaFlags,
        RouterAdvertisement,
    };
    let ra = RouterAdvertisement {
        flags: RaFlags::H,
        router_lifetime: 1800,
        options: vec![
            NdOption::HomeAgentInformation(HomeAgentInformation {
                flags: if r {
                    HaInfoFlags::R
                } else {
                    HaInfoFlags::empty()
                },
                preference,
                lifetime: 600,
            }),
            NdOption::PrefixInformation(PrefixInformation {
                prefix_len: 64,
                flags: PrefixFlags::L | PrefixFlags::A | PrefixFlags::R,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: global,
            }),
        ],
        ..Default::default()
    };
    e.ha.handle_router_advertisement(e.now, link_local.parse().unwrap(), 2, &ra);
}

/// RFC 5142 §5.1: to the care-of address through an RH2, the addresses the operator gave
/// (this home agent's own left out), signed with the binding's SA like its BAs.
#[test]
fn home_agent_switch_to_one_authenticated_binding() {
    let mut e = Env::new(auth_cfg());
    let bu = Bu::new(HOA1, 1).signed(1000, KEY1, e.wall());
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    e.events();
    let other: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    let third: Ipv6Addr = "2001:db8:9::1".parse().unwrap();
    assert_eq!(
        e.ha.send_home_agent_switch(e.now, e.wall(), Some(HOA1), &[other, HA, third]),
        1
    );
    let tx = e.ha.poll_transmit().expect("HAS");
    assert!(e.ha.poll_transmit().is_none());
    assert_eq!(tx.addressing.src_addr, HA);
    assert_eq!(tx.addressing.dst_addr, COA);
    assert_eq!(tx.addressing.rh2_home_address, Some(HOA1));
    assert_eq!(tx.udp_v4, None);
    let m = has_of(&tx);
    assert_eq!(m.home_agents, [other, third]);
    assert!(matches!(
        m.options.last(),
        Some(MobilityOption::Authentication { spi: 1000, .. })
    ));
    // RFC 4285 §6: the SA uses timestamps, so the HAS carries ours, before the
    // authenticator that covers it (a captured HAS cannot be replayed later).
    let ts = m.options.iter().find_map(|o| match o {
        MobilityOption::ReplayProtection { timestamp } => Some(*timestamp),
        _ => None,
    });
    assert_eq!(ts, Some(NtpTimestamp::from_unix(e.wall()).0));
    assert!(proto::auth::verify(&tx.mh, COA.into(), &HOA1, KEY1).unwrap());
    assert!(!proto::auth::verify(&tx.mh, COA.into(), &HOA1, KEY2).unwrap());
    // The checksum covers HA -> HoA (the RH2's address), as for a BA.
    assert!(
        Packet::new_checked(&tx.mh[..])
            .unwrap()
            .verify_checksum(&HA, &HOA1)
    );
    assert_eq!(e.ha.stats().home_agent_switches_sent, 1);
    // The binding stays until the router de-registers or it expires.
    assert!(e.ha.binding(e.now, &HOA1).is_some());
    assert!(e.events().is_empty());
}

/// Without addresses from the operator, the other home agents of the home link, as a
/// discovery Reply orders them: preference first, and for a mobile router only those
/// serving mobile routers (RFC 3963 §7.1). Every binding when no home address is named.
#[test]
fn home_agent_switch_to_every_binding_from_the_home_agents_list() {
    let mut e = Env::new(cfg());
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 1))), BaStatus::Accepted);
    let mut mn = Bu::new(HOA4, 1);
    mn.flags = BuFlags::A | BuFlags::H;
    mn.coa = COA2;
    assert_eq!(status(&e.ba(&mn)), BaStatus::Accepted);
    e.events();
    // Nobody else known: nothing sent (an empty list would send them discovering us).
    assert_eq!(e.ha.send_home_agent_switch(e.now, e.wall(), None, &[]), 0);
    assert!(e.ha.poll_transmit().is_none());
    let mr_ha: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    let plain_ha: Ipv6Addr = "2001:db8:1::3".parse().unwrap();
    learn_home_agent(&mut e, "fe80::2", mr_ha, 10, true);
    learn_home_agent(&mut e, "fe80::3", plain_ha, 20, false);
    assert_eq!(e.ha.send_home_agent_switch(e.now, e.wall(), None, &[]), 2);
    let sent: Vec<Transmit> = std::iter::from_fn(|| e.ha.poll_transmit()).collect();
    assert_eq!(sent.len(), 2);
    let to = |hoa: Ipv6Addr| {
        sent.iter()
            .find(|t| t.addressing.rh2_home_address == Some(hoa))
            .expect("one per binding")
    };
    // The mobile router: only the home agent serving mobile routers.
    assert_eq!(to(HOA1).addressing.dst_addr, COA);
    assert_eq!(has_of(to(HOA1)).home_agents, [mr_ha]);
    // The mobile node: every other home agent, highest preference first.
    assert_eq!(to(HOA4).addressing.dst_addr, COA2);
    assert_eq!(has_of(to(HOA4)).home_agents, [plain_ha, mr_ha]);
    // Unauthenticated binding, unsigned message.
    assert!(has_of(to(HOA1)).options.is_empty());
    // An unknown home address: nothing.
    assert_eq!(
        e.ha.send_home_agent_switch(e.now, e.wall(), Some(HOA2), &[mr_ha]),
        0
    );
    assert!(e.ha.poll_transmit().is_none());
}

/// RFC 5142 §5.2: the switch is sent again until the node leaves, after 1 s, the wait
/// doubling up to 32 s (RFC 6275 §13's INITIAL and MAX_BINDACK_TIMEOUT), each copy with
/// a fresh timestamp; the copy after the 32 s wait is the last.
#[test]
fn home_agent_switch_is_retransmitted_with_back_off_until_the_last() {
    let mut e = Env::new(auth_cfg());
    let bu = Bu::new(HOA1, 1).signed(1000, KEY1, e.wall());
    assert_eq!(status(&e.ba(&bu)), BaStatus::Accepted);
    e.events();
    let other: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    assert_eq!(
        e.ha.send_home_agent_switch(e.now, e.wall(), Some(HOA1), &[other]),
        1
    );
    let first = e.ha.poll_transmit().expect("HAS");
    let t0 = e.now;
    let mut sent_at = Vec::new();
    let mut stamps = vec![has_timestamp(&first)];
    // Step through 80 s of virtual time, 100 ms at a time.
    for _ in 0..800 {
        e.now += Duration::from_millis(100);
        let wall = e.wall();
        e.ha.handle_switch_timeouts(e.now, wall);
        while let Some(tx) = e.ha.poll_transmit() {
            let m = has_of(&tx);
            assert_eq!(m.home_agents, [other]);
            assert!(proto::auth::verify(&tx.mh, COA.into(), &HOA1, KEY1).unwrap());
            sent_at.push((e.now - t0).as_millis() as u64);
            stamps.push(has_timestamp(&tx));
        }
    }
    // Waits of 1, 2, 4, 8, 16 and 32 s.
    assert_eq!(sent_at, [1000, 3000, 7000, 15000, 31000, 63000]);
    assert!(
        stamps.windows(2).all(|w| w[1] > w[0]),
        "fresh timestamps: {stamps:?}"
    );
    assert_eq!(e.ha.stats().home_agent_switches_sent, 7);
    assert_eq!(e.ha.stats().home_agent_switches_retransmitted, 6);
    assert!(e.ha.switches.is_empty());
}

fn has_timestamp(tx: &Transmit) -> u64 {
    has_of(tx)
        .options
        .iter()
        .find_map(|o| match o {
            MobilityOption::ReplayProtection { timestamp } => Some(*timestamp),
            _ => None,
        })
        .expect("a timestamp")
}

/// The retransmissions stop when the node de-registers (it moved to the new home agent)
/// and when it answers with a Binding Error 2 (RFC 5142 §5.3: it does not know the
/// message). A Binding Error with another status changes nothing.
#[test]
fn home_agent_switch_retransmission_stops_when_the_node_leaves_or_cannot_understand() {
    let other: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1));
    e.events();
    assert_eq!(
        e.ha.send_home_agent_switch(e.now, e.wall(), Some(HOA1), &[other]),
        1
    );
    e.ha.poll_transmit().expect("HAS");
    let mut bye = Bu::new(HOA1, 2);
    bye.lifetime = 0;
    assert_eq!(status(&e.ba(&bye)), BaStatus::Accepted);
    assert!(e.ha.switches.is_empty());
    e.now += Duration::from_secs(2);
    let wall = e.wall();
    e.ha.handle_switch_timeouts(e.now, wall);
    assert!(e.ha.poll_transmit().is_none());

    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1));
    assert_eq!(
        e.ha.send_home_agent_switch(e.now, e.wall(), Some(HOA1), &[other]),
        1
    );
    e.ha.poll_transmit().expect("HAS");
    let be = |status: BeStatus| {
        let repr = MhRepr::BindingError(proto::mh::BindingError {
            status,
            home_address: HOA1,
            options: vec![],
        });
        let mut mh = vec![0; repr.buffer_len()];
        repr.emit_to(&mut mh).unwrap();
        Packet::new_unchecked(&mut mh[..]).fill_checksum(&HOA1, &HA);
        mh
    };
    e.send_raw(
        &Bu::new(HOA1, 1),
        &be(BeStatus::UnknownBindingForHomeAddressDestinationOption),
    );
    assert_eq!(
        e.ha.switches.len(),
        1,
        "status 1 is not a refusal of the message"
    );
    e.send_raw(&Bu::new(HOA1, 1), &be(BeStatus::UnrecognizedMhType));
    assert!(e.ha.switches.is_empty());
    assert!(
        e.ha.poll_transmit().is_none(),
        "no answer to a Binding Error"
    );
    e.now += Duration::from_secs(2);
    let wall = e.wall();
    e.ha.handle_switch_timeouts(e.now, wall);
    assert!(e.ha.poll_transmit().is_none());
    // The binding stays.
    assert!(e.ha.binding(e.now, &HOA1).is_some());
}

/// A Home Agent Switch sent to a home agent is not for it: dropped, no Binding Error 2
/// (the type is known).
#[test]
fn home_agent_switch_received_is_ignored() {
    let mut e = Env::new(cfg());
    let repr = MhRepr::HomeAgentSwitch(proto::mh::HomeAgentSwitch {
        home_agents: vec![HA],
        options: vec![],
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&COA, &HA);
    e.send_raw(&Bu::new(HOA1, 1), &mh);
    assert!(e.ha.poll_transmit().is_none());
    assert_eq!(e.ha.stats().binding_errors, 0);
    assert_eq!(e.ha.stats().malformed, 0);
}

mod abuse;
mod flows;
mod mcoa;
