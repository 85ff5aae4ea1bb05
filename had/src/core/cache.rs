//! A binding cache entry, kept small: the key (HoA) lives in the map, prefixes in boxed
//! slices (no spare capacity), the timer key is the only time stored twice.
//!
//! **Several care-of addresses per home address (RFC 5648).** An entry is one home
//! address: what the mobile router registers once for all its care-of addresses (the
//! sequence number, shared by every BID of a home address, RFC 5648 §4.3; the RFC 4285
//! replay state; flags, prefixes, IPv4 home address) plus its care-of bindings. Those are
//! either the one plain binding of RFC 6275 (no BID), or one per Binding Identifier; never
//! both (§6.2). The first care-of binding sits inline and the others in a boxed slice that
//! is empty (no allocation) without MCoA, so a plain binding costs what it did before
//! MCoA, and the map, the timer set and the proxy ND entry stay keyed by home address
//! alone: one timer per home address, due at its earliest care-of binding's deadline.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{Ipv4Net, Ipv6Net};
use proto::model::{CareOf, FlowBinding};
use smallvec::SmallVec;

use crate::record::PersistedBinding;

/// A binding's IPv6 mobile network prefixes: a router's usual one sits in the entry
/// itself. Every refresh compares them, and a separate allocation was one more cache
/// miss per BU at a fleet's size (and 32 octets of malloc's).
pub(crate) type MnpV6 = SmallVec<[Ipv6Net; 1]>;
/// A binding's IPv4 mobile network prefixes: up to three inline, in the room one heap
/// pointer and length take.
pub(crate) type MnpV4 = SmallVec<[Ipv4Net; 3]>;

/// One care-of binding of a home address: the plain one (`bid: None`), or the one of a
/// Binding Identifier (RFC 5648 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CareOfBinding {
    pub bid: Option<u16>,
    pub coa: CareOf,
    /// When the binding ends.
    pub expires: Instant,
    /// The next real deadline: BRR time, else `expires`.
    pub due: Instant,
    pub lifetime_secs: u32,
    pub nat_detected: bool,
    /// The IPv4 CoA option (or the BID option's IPv4 CoA) of the last BU (DSMIPv6): the
    /// CoA of the RFC 4285 MAC, which differs from `coa` behind a NAT.
    pub coa_v4_option: Option<Ipv4Addr>,
    pub rh2: bool,
    pub brr_sent: bool,
    /// The BID-PRI its last BU gave it (RFC 6089 §4.1); 0: none (RFC 5648's format, or a
    /// binding without a BID).
    pub bid_pri: u8,
}

/// One binding cache entry (RFC 6275 §9.1 conceptual data, RFC 3963 §6.1 prefixes,
/// RFC 5648 §4.1 care-of bindings by BID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bce {
    /// The care-of binding with the lowest BID (or the plain one).
    pub first: CareOfBinding,
    /// The others, by increasing BID; empty without MCoA.
    pub more: Box<[CareOfBinding]>,
    /// The deadline under which the entry sits in `Ha::timers`; never later than any care-of
    /// binding's `due`.
    pub timer: Instant,
    pub mnp_v6: MnpV6,
    pub mnp_v4: MnpV4,
    pub last_timestamp: Option<u64>,
    pub spi: Option<u32>,
    pub hoa_v4: Option<Ipv4Addr>,
    pub flags: u16,
    pub sequence: u16,
    /// The home address's flow bindings (RFC 6089 §4.3), by FID-PRI; empty (no
    /// allocation) without them.
    pub flows: Box<[FlowBinding]>,
}

impl Bce {
    /// Every care-of binding, by increasing BID.
    pub fn bindings(&self) -> impl Iterator<Item = &CareOfBinding> {
        std::iter::once(&self.first).chain(self.more.iter())
    }

    /// Every care-of binding, mutably.
    pub fn bindings_mut(&mut self) -> impl Iterator<Item = &mut CareOfBinding> {
        std::iter::once(&mut self.first).chain(self.more.iter_mut())
    }

    /// How many care-of bindings.
    pub fn count(&self) -> usize {
        1 + self.more.len()
    }

    /// Whether the entry holds BID bindings (RFC 5648), not the plain one.
    pub fn is_mcoa(&self) -> bool {
        self.first.bid.is_some()
    }

    /// The care-of binding of `bid` (`None`: the plain one).
    pub fn get(&self, bid: Option<u16>) -> Option<&CareOfBinding> {
        self.bindings().find(|c| c.bid == bid)
    }

    /// The earliest deadline of any care-of binding.
    pub fn due(&self) -> Instant {
        self.bindings()
            .map(|c| c.due)
            .min()
            .unwrap_or(self.first.due)
    }

    /// Adds `c` or replaces the binding with its BID, keeping the order.
    pub fn upsert(&mut self, c: CareOfBinding) {
        if self.first.bid == c.bid {
            self.first = c;
            return;
        }
        if let Some(slot) = self.more.iter_mut().find(|x| x.bid == c.bid) {
            *slot = c;
            return;
        }
        let mut all: Vec<CareOfBinding> = self.drain_all();
        all.push(c);
        self.set_all(all);
    }

    /// Removes the binding of `bid` unless it is the only one (the caller removes the
    /// whole entry then). Returns it.
    pub fn remove(&mut self, bid: Option<u16>) -> Option<CareOfBinding> {
        if self.more.is_empty() || self.get(bid).is_none() {
            return None;
        }
        let mut all = self.drain_all();
        let at = all.iter().position(|c| c.bid == bid)?;
        let removed = all.remove(at);
        self.set_all(all);
        Some(removed)
    }

    /// Replaces every care-of binding with `c`, returning the ones replaced (not `c`'s
    /// own BID).
    pub fn replace_all(&mut self, c: CareOfBinding) -> Vec<CareOfBinding> {
        let mut old = self.drain_all();
        old.retain(|x| x.bid != c.bid);
        self.first = c;
        old
    }

    /// Takes every binding out (leaving `first` as a stale copy until `set_all`).
    fn drain_all(&mut self) -> Vec<CareOfBinding> {
        let more = std::mem::take(&mut self.more).into_vec();
        std::iter::once(self.first.clone()).chain(more).collect()
    }

    /// Puts `all` (not empty) back, sorted by BID.
    fn set_all(&mut self, mut all: Vec<CareOfBinding>) {
        all.sort_by_key(|c| c.bid);
        let mut it = all.into_iter();
        if let Some(first) = it.next() {
            self.first = first;
        }
        self.more = it.collect();
    }

    /// The journal record of care-of binding `c` of this entry.
    pub fn persisted(
        &self,
        hoa: Ipv6Addr,
        c: &CareOfBinding,
        now: Instant,
        wall: Duration,
    ) -> PersistedBinding {
        let remaining = c.expires.saturating_duration_since(now);
        PersistedBinding {
            hoa,
            bid: c.bid,
            coa: c.coa,
            flags: self.flags,
            sequence: self.sequence,
            lifetime_secs: c.lifetime_secs,
            expires_unix_ms: (wall + remaining).as_millis() as u64,
            mnp_v6: self.mnp_v6.to_vec(),
            mnp_v4: self.mnp_v4.to_vec(),
            hoa_v4: self.hoa_v4,
            spi: self.spi,
            last_timestamp: self.last_timestamp,
            nat_detected: c.nat_detected,
            rh2: c.rh2,
            flows: self.flows.to_vec(),
            bid_pri: c.bid_pri,
        }
    }

    /// The records of every care-of binding.
    pub fn persisted_all(
        &self,
        hoa: Ipv6Addr,
        now: Instant,
        wall: Duration,
    ) -> impl Iterator<Item = PersistedBinding> + '_ {
        self.bindings()
            .map(move |c| self.persisted(hoa, c, now, wall))
    }

    /// A care-of binding from its record, expiring at `expires`.
    pub fn care_of_from_persisted(p: &PersistedBinding, expires: Instant) -> CareOfBinding {
        CareOfBinding {
            bid: p.bid,
            coa: p.coa,
            expires,
            // No BRR after a restart: the MR's own refresh timer runs anyway.
            due: expires,
            lifetime_secs: p.lifetime_secs,
            nat_detected: p.nat_detected,
            coa_v4_option: None,
            rh2: p.rh2,
            brr_sent: true,
            bid_pri: p.bid_pri,
        }
    }

    /// An entry from a record (its home-address-wide part) and that record's care-of
    /// binding.
    pub fn from_persisted(p: &PersistedBinding, expires: Instant) -> Bce {
        Bce {
            first: Self::care_of_from_persisted(p, expires),
            more: Box::new([]),
            timer: expires,
            mnp_v6: MnpV6::from_slice(&p.mnp_v6),
            mnp_v4: MnpV4::from_slice(&p.mnp_v4),
            last_timestamp: p.last_timestamp,
            spi: p.spi,
            hoa_v4: p.hoa_v4,
            flags: p.flags,
            sequence: p.sequence,
            flows: p.flows.clone().into_boxed_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cob(bid: Option<u16>, at: Instant, secs: u64) -> CareOfBinding {
        CareOfBinding {
            bid,
            coa: CareOf::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0xa,
                0,
                0,
                0,
                0,
                bid.unwrap_or(0),
            )),
            expires: at + Duration::from_secs(secs),
            due: at + Duration::from_secs(secs),
            lifetime_secs: secs as u32,
            nat_detected: false,
            coa_v4_option: None,
            rh2: true,
            brr_sent: false,
            bid_pri: 0,
        }
    }

    fn entry(first: CareOfBinding) -> Bce {
        Bce {
            timer: first.due,
            first,
            more: Box::new([]),
            mnp_v6: MnpV6::new(),
            mnp_v4: MnpV4::new(),
            last_timestamp: None,
            spi: None,
            hoa_v4: None,
            flags: 0,
            sequence: 1,
            flows: Box::new([]),
        }
    }

    #[test]
    fn care_of_bindings_stay_sorted_and_never_empty() {
        let t = Instant::now();
        let mut e = entry(cob(Some(5), t, 50));
        e.upsert(cob(Some(2), t, 20));
        e.upsert(cob(Some(9), t, 90));
        e.upsert(cob(Some(5), t, 55));
        let bids: Vec<_> = e.bindings().map(|c| c.bid).collect();
        assert_eq!(bids, [Some(2), Some(5), Some(9)]);
        assert_eq!(e.get(Some(5)).unwrap().lifetime_secs, 55);
        assert_eq!(e.due(), t + Duration::from_secs(20));
        assert!(e.is_mcoa());
        assert_eq!(e.remove(Some(2)).unwrap().bid, Some(2));
        assert_eq!(e.remove(Some(2)), None, "gone already");
        assert_eq!(e.remove(Some(9)).unwrap().bid, Some(9));
        // The last one stays: the caller removes the entry.
        assert_eq!(e.remove(Some(5)), None);
        assert_eq!(e.count(), 1);
        // A plain binding replaces every BID binding (RFC 5648 §6.2).
        e.upsert(cob(Some(7), t, 70));
        let old = e.replace_all(cob(None, t, 30));
        assert_eq!(old.len(), 2);
        assert!(!e.is_mcoa());
        assert_eq!(e.count(), 1);
        assert!(e.more.is_empty());
    }
}
