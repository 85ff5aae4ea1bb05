//! What the core asks the shell to persist, and its byte encoding (pure, no I/O; the
//! framing, CRC and files live in [`crate::journal`]).
//!
//! Encoding: version octet, tag octet, then fixed big-endian fields. Every field is
//! length-checked on decode; a record that does not decode exactly is refused whole.
//!
//! RFC 5648 Binding Identifiers came later: a binding with a BID sets a flag bit that
//! older records never set and carries the BID after everything else, and the removal
//! of one has its own tag. Records written before MCoA decode unchanged, as bindings
//! without a BID (a had older than this one refuses a record with a BID, as damage).
//!
//! RFC 6089 flow bindings came later still: a record of a home address with flow
//! bindings has version 2 and carries them after everything else (a count, then per flow
//! its FID, FID-PRI, BIDs and the binary traffic selector as RFC 6088 lays it out, behind
//! its TS Format and length); a record without any is version 1, octet for octet as
//! before.
//!
//! RFC 6089's BID-PRI came with them: a binding whose BU gave one has version 3, the
//! flow bindings' part (its count possibly 0) and then the BID-PRI octet; the others are
//! written as before.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use mipsock::CareOf;
use proto::flow::{FlowSelector, TrafficSelector};
use proto::model::FlowBinding;
use thiserror::Error;

/// One binding as persisted: enough to rebuild the binding cache entry after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersistedBinding {
    /// IPv6 home address (the key, with `bid`).
    pub hoa: Ipv6Addr,
    /// RFC 5648 Binding Identifier; `None` for a binding registered without one.
    pub bid: Option<u16>,
    /// Care-of address.
    pub coa: CareOf,
    /// Flags of the accepted BU.
    pub flags: u16,
    /// Last accepted sequence number (RFC 6275 §9.5.1 window survives restarts).
    pub sequence: u16,
    /// Granted lifetime, seconds.
    pub lifetime_secs: u32,
    /// Absolute expiry, milliseconds since the UNIX epoch (wall clock: a restart loses the
    /// monotonic clock).
    pub expires_unix_ms: u64,
    /// Registered IPv6 mobile network prefixes.
    pub mnp_v6: Vec<Ipv6Net>,
    /// Registered IPv4 mobile network prefixes.
    pub mnp_v4: Vec<Ipv4Net>,
    /// Registered IPv4 home address (RFC 5555, P=0).
    pub hoa_v4: Option<Ipv4Addr>,
    /// SPI of the mobility SA that authenticated the binding (RFC 4285).
    pub spi: Option<u32>,
    /// Last accepted RFC 4285 timestamp (replay protection survives restarts).
    pub last_timestamp: Option<u64>,
    /// NAT detected between CoA and HA (RFC 5555 §4.1).
    pub nat_detected: bool,
    /// Whether BAs/BRRs carry a type 2 routing header (the BU had a HAO).
    pub rh2: bool,
    /// The home address's flow bindings (RFC 6089), shared like the prefixes.
    pub flows: Vec<FlowBinding>,
    /// The binding's BID-PRI (RFC 6089 §4.1); 0: none given.
    pub bid_pri: u8,
}

/// A journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JournalRecord {
    /// A binding was created or refreshed (acknowledged with status 0).
    Upsert(PersistedBinding),
    /// A binding was removed (deregistration or expiry).
    Remove {
        /// Its home address.
        hoa: Ipv6Addr,
        /// Its Binding Identifier (RFC 5648), if it had one.
        bid: Option<u16>,
    },
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Ran out of octets.
    #[error("record truncated")]
    Truncated,
    /// Octets left over after the record.
    #[error("trailing octets after record")]
    Trailing,
    /// Unknown version or tag, or an invalid field.
    #[error("invalid record: {0}")]
    Invalid(&'static str),
}

const VERSION: u8 = 1;
/// An upsert with flow bindings after everything else (RFC 6089): version 2, so a record
/// cut before them cannot pass for one without.
const VERSION_FLOWS: u8 = 2;
/// An upsert with a BID-PRI (RFC 6089 §4.1): version 3, the flow bindings' part (possibly
/// none), then the BID-PRI.
const VERSION_BID_PRI: u8 = 3;
const TAG_UPSERT: u8 = 1;
const TAG_REMOVE: u8 = 2;
/// The removal of a binding with a BID (RFC 5648).
const TAG_REMOVE_BID: u8 = 3;

const F_COA_V4: u8 = 0x01;
const F_COA_UDP: u8 = 0x02;
const F_HOA_V4: u8 = 0x04;
const F_SPI: u8 = 0x08;
const F_TS: u8 = 0x10;
const F_NAT: u8 = 0x20;
const F_RH2: u8 = 0x40;
/// A BID follows the IPv4 prefixes (RFC 5648).
const F_BID: u8 = 0x80;

impl JournalRecord {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let version = match self {
            JournalRecord::Upsert(b) if b.bid_pri != 0 => VERSION_BID_PRI,
            JournalRecord::Upsert(b) if !b.flows.is_empty() => VERSION_FLOWS,
            _ => VERSION,
        };
        out.push(version);
        match self {
            JournalRecord::Remove { hoa, bid: None } => {
                out.push(TAG_REMOVE);
                out.extend_from_slice(&hoa.octets());
            }
            JournalRecord::Remove {
                hoa,
                bid: Some(bid),
            } => {
                out.push(TAG_REMOVE_BID);
                out.extend_from_slice(&hoa.octets());
                out.extend_from_slice(&bid.to_be_bytes());
            }
            JournalRecord::Upsert(b) => {
                out.push(TAG_UPSERT);
                out.extend_from_slice(&b.hoa.octets());
                let mut f = 0u8;
                match b.coa {
                    CareOf::V6(_) => {}
                    CareOf::V4 { udp_port, .. } => {
                        f |= F_COA_V4;
                        if udp_port.is_some() {
                            f |= F_COA_UDP;
                        }
                    }
                }
                if b.hoa_v4.is_some() {
                    f |= F_HOA_V4;
                }
                if b.spi.is_some() {
                    f |= F_SPI;
                }
                if b.last_timestamp.is_some() {
                    f |= F_TS;
                }
                if b.nat_detected {
                    f |= F_NAT;
                }
                if b.rh2 {
                    f |= F_RH2;
                }
                if b.bid.is_some() {
                    f |= F_BID;
                }
                out.push(f);
                match b.coa {
                    CareOf::V6(a) => out.extend_from_slice(&a.octets()),
                    CareOf::V4 { addr, udp_port } => {
                        out.extend_from_slice(&addr.octets());
                        if let Some(p) = udp_port {
                            out.extend_from_slice(&p.to_be_bytes());
                        }
                    }
                }
                out.extend_from_slice(&b.flags.to_be_bytes());
                out.extend_from_slice(&b.sequence.to_be_bytes());
                out.extend_from_slice(&b.lifetime_secs.to_be_bytes());
                out.extend_from_slice(&b.expires_unix_ms.to_be_bytes());
                if let Some(a) = b.hoa_v4 {
                    out.extend_from_slice(&a.octets());
                }
                if let Some(s) = b.spi {
                    out.extend_from_slice(&s.to_be_bytes());
                }
                if let Some(t) = b.last_timestamp {
                    out.extend_from_slice(&t.to_be_bytes());
                }
                // Prefix counts are bounded by what fits in one MH (< 2048 octets).
                out.push(b.mnp_v6.len().min(255) as u8);
                for p in b.mnp_v6.iter().take(255) {
                    out.extend_from_slice(&p.addr().octets());
                    out.push(p.prefix_len());
                }
                out.push(b.mnp_v4.len().min(255) as u8);
                for p in b.mnp_v4.iter().take(255) {
                    out.extend_from_slice(&p.addr().octets());
                    out.push(p.prefix_len());
                }
                if let Some(bid) = b.bid {
                    out.extend_from_slice(&bid.to_be_bytes());
                }
                if version != VERSION {
                    encode_flows(&b.flows, out);
                }
                if version == VERSION_BID_PRI {
                    out.push(b.bid_pri);
                }
            }
        }
    }

    /// Decodes exactly one record from `data`.
    pub fn decode(data: &[u8]) -> Result<JournalRecord, DecodeError> {
        let mut r = Reader(data);
        let version = r.u8()?;
        if ![VERSION, VERSION_FLOWS, VERSION_BID_PRI].contains(&version) {
            return Err(DecodeError::Invalid("version"));
        }
        let rec = match r.u8()? {
            TAG_REMOVE => JournalRecord::Remove {
                hoa: r.v6()?,
                bid: None,
            },
            TAG_REMOVE_BID => JournalRecord::Remove {
                hoa: r.v6()?,
                bid: Some(r.u16()?),
            },
            TAG_UPSERT => {
                let hoa = r.v6()?;
                let f = r.u8()?;
                let coa = if f & F_COA_V4 != 0 {
                    let addr = r.v4()?;
                    let udp_port = if f & F_COA_UDP != 0 {
                        Some(r.u16()?)
                    } else {
                        None
                    };
                    CareOf::V4 { addr, udp_port }
                } else if f & F_COA_UDP != 0 {
                    return Err(DecodeError::Invalid("UDP port on an IPv6 CoA"));
                } else {
                    CareOf::V6(r.v6()?)
                };
                let flags = r.u16()?;
                let sequence = r.u16()?;
                let lifetime_secs = r.u32()?;
                let expires_unix_ms = r.u64()?;
                let hoa_v4 = if f & F_HOA_V4 != 0 {
                    Some(r.v4()?)
                } else {
                    None
                };
                let spi = if f & F_SPI != 0 { Some(r.u32()?) } else { None };
                let last_timestamp = if f & F_TS != 0 { Some(r.u64()?) } else { None };
                let n = r.u8()?;
                let mut mnp_v6 = Vec::with_capacity(n.into());
                for _ in 0..n {
                    let a = r.v6()?;
                    let l = r.u8()?;
                    mnp_v6.push(Ipv6Net::new(a, l).map_err(|_| DecodeError::Invalid("v6 len"))?);
                }
                let n = r.u8()?;
                let mut mnp_v4 = Vec::with_capacity(n.into());
                for _ in 0..n {
                    let a = r.v4()?;
                    let l = r.u8()?;
                    mnp_v4.push(Ipv4Net::new(a, l).map_err(|_| DecodeError::Invalid("v4 len"))?);
                }
                let bid = if f & F_BID != 0 { Some(r.u16()?) } else { None };
                let flows = match version {
                    VERSION_FLOWS => decode_flows(&mut r, false)?,
                    VERSION_BID_PRI => decode_flows(&mut r, true)?,
                    _ => Vec::new(),
                };
                let bid_pri = if version == VERSION_BID_PRI {
                    match r.u8()? {
                        p @ 1..=127 => p,
                        _ => return Err(DecodeError::Invalid("BID-PRI")),
                    }
                } else {
                    0
                };
                JournalRecord::Upsert(PersistedBinding {
                    hoa,
                    bid,
                    coa,
                    flags,
                    sequence,
                    lifetime_secs,
                    expires_unix_ms,
                    mnp_v6,
                    mnp_v4,
                    hoa_v4,
                    spi,
                    last_timestamp,
                    nat_detected: f & F_NAT != 0,
                    rh2: f & F_RH2 != 0,
                    flows,
                    bid_pri,
                })
            }
            _ => return Err(DecodeError::Invalid("tag")),
        };
        if !r.0.is_empty() {
            return Err(DecodeError::Trailing);
        }
        if version != VERSION && !matches!(rec, JournalRecord::Upsert(_)) {
            return Err(DecodeError::Invalid(
                "versions 2 and 3 are for upserts with flow bindings or a BID-PRI",
            ));
        }
        Ok(rec)
    }

    /// The home address the record is about.
    pub fn hoa(&self) -> Ipv6Addr {
        match self {
            JournalRecord::Upsert(b) => b.hoa,
            JournalRecord::Remove { hoa, .. } => *hoa,
        }
    }

    /// The binding the record is about: home address and Binding Identifier.
    pub fn key(&self) -> (Ipv6Addr, Option<u16>) {
        match self {
            JournalRecord::Upsert(b) => (b.hoa, b.bid),
            JournalRecord::Remove { hoa, bid } => (*hoa, *bid),
        }
    }
}

/// Flow bindings: count (16 bits), then each: FID, FID-PRI, BID count (8 bits), BIDs,
/// TS Format, selector length (8 bits), selector (RFC 6088). Counts are bounded by what
/// had keeps (`flow-bindings-max`, `mcoa-max-bindings`).
fn encode_flows(flows: &[FlowBinding], out: &mut Vec<u8>) {
    let flows = &flows[..flows.len().min(u16::MAX.into())];
    out.extend_from_slice(&(flows.len() as u16).to_be_bytes());
    for f in flows {
        out.extend_from_slice(&f.fid.to_be_bytes());
        out.extend_from_slice(&f.priority.to_be_bytes());
        let bids = &f.bids[..f.bids.len().min(255)];
        out.push(bids.len() as u8);
        for b in bids {
            out.extend_from_slice(&b.to_be_bytes());
        }
        let ts = f.selector.to_wire();
        let mut sel = vec![0u8; ts.buffer_len()];
        // A selector we hold was parsed or built from fields: it always emits, and is at
        // most 100 octets (RFC 6088 §3.2: every IPv6 field present).
        if ts.emit(&mut sel).is_err() || sel.len() > 255 {
            sel.clear();
        }
        out.push(ts.format().into());
        out.push(sel.len() as u8);
        out.extend_from_slice(&sel);
    }
}

/// `may_be_empty`: version 3's part, there for the BID-PRI after it.
fn decode_flows(r: &mut Reader<'_>, may_be_empty: bool) -> Result<Vec<FlowBinding>, DecodeError> {
    let n = r.u16()?;
    if n == 0 && !may_be_empty {
        return Err(DecodeError::Invalid(
            "version 2 record without flow bindings",
        ));
    }
    let mut flows = Vec::with_capacity(usize::from(n).min(1024));
    for _ in 0..n {
        let fid = r.u16()?;
        let priority = r.u16()?;
        let nb = r.u8()?;
        let mut bids = Vec::with_capacity(nb.into());
        for _ in 0..nb {
            bids.push(r.u16()?);
        }
        let format = r.u8()?;
        let len = usize::from(r.u8()?);
        if r.0.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (sel, rest) = r.0.split_at(len);
        r.0 = rest;
        let selector = TrafficSelector::parse(format, sel)
            .ok()
            .and_then(|ts| FlowSelector::from_wire(&ts))
            .ok_or(DecodeError::Invalid("flow binding selector"))?;
        flows.push(FlowBinding {
            fid,
            priority,
            selector,
            bids,
        });
    }
    Ok(flows)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        if self.0.len() < N {
            return Err(DecodeError::Truncated);
        }
        let (h, t) = self.0.split_at(N);
        self.0 = t;
        let mut a = [0u8; N];
        a.copy_from_slice(h);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take()?))
    }
    fn v4(&mut self) -> Result<Ipv4Addr, DecodeError> {
        Ok(Ipv4Addr::from(self.take::<4>()?))
    }
    fn v6(&mut self) -> Result<Ipv6Addr, DecodeError> {
        Ok(Ipv6Addr::from(self.take::<16>()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(i: u16) -> PersistedBinding {
        PersistedBinding {
            hoa: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i),
            bid: (i % 3 == 2).then_some(100 + i),
            coa: if i.is_multiple_of(2) {
                CareOf::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, i))
            } else {
                CareOf::V4 {
                    addr: Ipv4Addr::new(192, 0, 2, i as u8),
                    udp_port: Some(4000 + i),
                }
            },
            flags: 0xc400,
            sequence: i,
            lifetime_secs: 400,
            expires_unix_ms: 1_800_000_000_000 + u64::from(i),
            mnp_v6: vec!["2001:db8:100::/48".parse().unwrap()],
            mnp_v4: vec!["10.0.0.0/24".parse().unwrap()],
            hoa_v4: i.is_multiple_of(3).then_some(Ipv4Addr::new(10, 1, 0, 1)),
            spi: Some(300),
            last_timestamp: (i % 2 == 1).then_some(0xdead_beef_0000_0001),
            nat_detected: i % 2 == 1,
            rh2: true,
            flows: match i % 4 {
                0 => vec![FlowBinding {
                    fid: i + 1,
                    priority: 10,
                    selector: FlowSelector::Ipv6(proto::flow::Ipv6TrafficSelector {
                        source_address: Some(proto::flow::SelectorRange::new(
                            "2001:db8:c::".parse().unwrap(),
                            "2001:db8:c::ffff".parse().unwrap(),
                        )),
                        next_header: Some(proto::flow::SelectorRange::single(17)),
                        ..Default::default()
                    }),
                    bids: vec![1, 2],
                }],
                1 => vec![FlowBinding {
                    fid: 3,
                    priority: 1,
                    selector: FlowSelector::Ipv4(proto::flow::Ipv4TrafficSelector {
                        destination_port: Some(proto::flow::SelectorRange::single(5060)),
                        ..Default::default()
                    }),
                    bids: vec![2],
                }],
                _ => Vec::new(),
            },
            // Version 3 with and without flow bindings, beside versions 1 and 2.
            bid_pri: [0, 5, 127][usize::from(i % 3)],
        }
    }

    #[test]
    fn a_bid_pri_is_version_3_and_only_1_to_127_decode() {
        let mut with = sample(1);
        with.bid_pri = 9;
        with.flows.clear();
        let mut out = Vec::new();
        JournalRecord::Upsert(with.clone()).encode(&mut out);
        assert_eq!(out[0], 3);
        // The flow bindings' count (0), then the BID-PRI, last.
        assert_eq!(out[out.len() - 3..], [0, 0, 9]);
        assert_eq!(
            JournalRecord::decode(&out).unwrap(),
            JournalRecord::Upsert(with)
        );
        for bad in [0u8, 128, 255] {
            let mut b = out.clone();
            *b.last_mut().unwrap() = bad;
            assert_eq!(
                JournalRecord::decode(&b),
                Err(DecodeError::Invalid("BID-PRI")),
                "{bad}"
            );
        }
        // Cut before the BID-PRI: refused whole.
        assert!(JournalRecord::decode(&out[..out.len() - 1]).is_err());
        // Version 2 still needs flow bindings.
        let mut v2 = out[..out.len() - 1].to_vec();
        v2[0] = 2;
        assert!(JournalRecord::decode(&v2).is_err());
        // Without a BID-PRI, the octets of before.
        let mut plain = sample(3);
        plain.bid_pri = 0;
        plain.flows.clear();
        let mut out = Vec::new();
        JournalRecord::Upsert(plain).encode(&mut out);
        assert_eq!(out[0], 1);
    }

    #[test]
    fn round_trip() {
        for i in 0..7 {
            for rec in [
                JournalRecord::Upsert(sample(i)),
                JournalRecord::Remove {
                    hoa: sample(i).hoa,
                    bid: sample(i).bid,
                },
            ] {
                let mut v = Vec::new();
                rec.encode(&mut v);
                assert_eq!(JournalRecord::decode(&v), Ok(rec.clone()));
                for cut in 0..v.len() {
                    assert!(JournalRecord::decode(&v[..cut]).is_err());
                }
                v.push(0);
                assert_eq!(JournalRecord::decode(&v), Err(DecodeError::Trailing));
            }
        }
    }

    /// Records written before RFC 5648 support (no BID flag, tag 2 removals) still load,
    /// as bindings without a BID: these octets are what that version wrote.
    #[test]
    fn records_from_before_mcoa_load_without_a_bid() {
        let mut upsert = vec![1, 1];
        upsert.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100).octets());
        upsert.push(0x48); // F_SPI | F_RH2
        upsert.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 5).octets());
        upsert.extend_from_slice(&0xc400u16.to_be_bytes());
        upsert.extend_from_slice(&7u16.to_be_bytes());
        upsert.extend_from_slice(&400u32.to_be_bytes());
        upsert.extend_from_slice(&1_800_000_000_000u64.to_be_bytes());
        upsert.extend_from_slice(&1000u32.to_be_bytes());
        upsert.push(1);
        upsert.extend_from_slice(&"2001:db8:100::".parse::<Ipv6Addr>().unwrap().octets());
        upsert.push(48);
        upsert.push(0);
        let Ok(JournalRecord::Upsert(b)) = JournalRecord::decode(&upsert) else {
            panic!("an old record must load");
        };
        assert_eq!(b.bid, None);
        assert_eq!(b.sequence, 7);
        assert_eq!(b.spi, Some(1000));
        assert_eq!(
            b.mnp_v6,
            vec!["2001:db8:100::/48".parse::<Ipv6Net>().unwrap()]
        );
        // And it encodes back to the same octets.
        let mut again = Vec::new();
        JournalRecord::Upsert(b).encode(&mut again);
        assert_eq!(again, upsert);

        let mut remove = vec![1, 2];
        remove.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100).octets());
        assert_eq!(
            JournalRecord::decode(&remove),
            Ok(JournalRecord::Remove {
                hoa: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100),
                bid: None
            })
        );
    }

    #[test]
    fn bids_round_trip() {
        let mut b = sample(4);
        for bid in [None, Some(1), Some(0xffff)] {
            b.bid = bid;
            let rec = JournalRecord::Upsert(b.clone());
            let mut v = Vec::new();
            rec.encode(&mut v);
            assert_eq!(JournalRecord::decode(&v), Ok(rec.clone()));
            assert_eq!(rec.key(), (b.hoa, bid));
        }
    }
}
