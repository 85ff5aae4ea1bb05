//! The Binding Update List (RFC 6275 §11.1): what the mobile router sent and was granted,
//! one entry per home agent and binding identifier (RFC 5648 §5.1). The core registers
//! through one entry, [`BindingUpdateList::primary`] (its home agent, no binding
//! identifier), which holds the transaction, the sequence number and the plain binding.
//! With multiple care-of addresses (RFC 5648) the primary's transaction is a bulk
//! registration, and each binding identifier the home agent accepted has an entry of its
//! own in [`BindingUpdateList::others`]: its care-of address, lifetime and what the data
//! plane was told.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ipnet::Ipv4Net;
use proto::model::{Binding, FlowBinding};
use proto::seq::{Lifetime, NtpTimestamp, SequenceNumber};

use super::flows::{FlowSupport, FlowsSent};
use super::{BuKind, StopReason};

/// Whether the HA registers IPv4 MNPs, as learnt from its BAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv4Support {
    /// No BA to a BU with IPv4 options seen yet.
    Unknown,
    /// The HA answered IPv4 options with IPv4 Address Acknowledgements.
    Supported,
    /// A BA carried none (RFC 5555 §3.2.1): IPv4 options are no longer sent to this HA.
    Unsupported,
}

/// Whether the HA registers several care-of addresses (RFC 5648), as learnt from its BAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum McoaSupport {
    /// No BA to a BU with Binding Identifier options seen yet.
    Unknown,
    /// The HA answered with Binding Identifier options.
    Supported,
    /// A BA to a BU with them carried none (the HA skipped an option it does not know,
    /// RFC 6275 §6.2.1), or refused them as a whole (164-167, 169): this HA gets the
    /// care-of address in use alone, in plain BUs.
    Unsupported,
    /// The HA refused a bulk registration with 168 (MCOA BULK REGISTRATION PROHIBITED):
    /// every care-of address registers by a BU of its own, one Binding Identifier option
    /// each (RFC 5648 §5.3's individual registration).
    Individually,
}

/// A care-of address registered under a binding identifier (RFC 5648 §4.3): one uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BidCoa {
    /// The binding identifier: the interface's position among the egress interfaces.
    pub(crate) bid: u16,
    /// The care-of address; an IPv4 one (RFC 5648 §8.1) IPv4-mapped, the core's form.
    pub(crate) coa: Ipv6Addr,
    /// Its interface.
    pub(crate) ifindex: u32,
}

/// The binding the HA holds, as acknowledged.
///
/// Care-of addresses are kept as `Ipv6Addr` inside the core; an IPv4 CoA (DSMIPv6, RFC
/// 5555) is held IPv4-mapped (`::ffff:a.b.c.d`), which is also its form in the RFC 4285
/// MAC (`proto::auth`). It never reaches the wire in that form (docs/notes.md §6): the BU
/// carries it in an IPv4 CoA option and the bus as `CareOf::V4`.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub(crate) coa: Ipv6Addr,
    pub(crate) coa_ifindex: u32,
    pub(crate) granted: Lifetime,
    pub(crate) expires_at: Instant,
    pub(crate) refresh_at: Instant,
    /// The care-of addresses of the acknowledged bulk registration, as sent (RFC 5648);
    /// empty for a plain registration.
    pub(crate) bids: Vec<BidCoa>,
}

/// The outstanding BU transaction (one at a time: a new one replaces the old, RFC 6275
/// §11.7.1 "a move while a BU is outstanding replaces it").
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) kind: BuKind,
    /// Deregistration from the home link: source HoA, no HAO, no Alternate CoA.
    pub(crate) at_home: bool,
    /// CoA this BU registers (the HoA when deregistering at home).
    pub(crate) coa: Ipv6Addr,
    pub(crate) coa_ifindex: u32,
    /// Sequence number of the last BU sent for this transaction.
    pub(crate) sequence: SequenceNumber,
    /// BUs sent so far in this transaction (reset by a 135/144 resynchronisation).
    pub(crate) transmissions: u32,
    /// The HA holds no binding for us: the first timeout covers its DAD (RFC 6275 §11.8).
    pub(crate) first_registration: bool,
    /// When to send the next BU of this transaction.
    pub(crate) next_tx: Instant,
    /// When the last BU left: the granted lifetime counts from here (docs/notes.md §5).
    pub(crate) last_sent: Option<Instant>,
    /// RFC 4285 timestamp of the last BU.
    pub(crate) timestamp: Option<NtpTimestamp>,
    /// IPv4 MNPs listed in the last BU.
    pub(crate) v4_sent: Vec<Ipv4Net>,
    /// Optimistic BUL_ADD already announced for this transaction.
    pub(crate) optimistic_announced: bool,
    /// A de-registration after a 139: register again once it is acknowledged.
    pub(crate) then_register: bool,
    /// A de-registration from a discovered home agent without NEMO: register with the next
    /// one discovery listed once it is acknowledged (or given up).
    pub(crate) then_next_home_agent: bool,
    /// This registration follows a 139 recovery: another 139 stops.
    pub(crate) after_type_change: bool,
    /// When the transaction began (the movement, or the refresh): its BA measures how
    /// long the router waited for its binding.
    pub(crate) started: Instant,
    /// A bulk registration (RFC 5648 §5.3): a Binding Identifier option per care-of
    /// address, `coa` among them, and the O flag. Empty: a plain BU.
    pub(crate) bids: Vec<BidCoa>,
    /// The flow binding options of the last BU sent (RFC 6089): what its BA answers.
    pub(crate) flows_sent: FlowsSent,
    /// IPv4 care-of addresses registered by BUs of their own and listed in this bulk
    /// registration with their address, so that its O flag keeps them (the home agent
    /// keeps their path and NAT mapping, RFC 5648 §8.1): neither announced nor changed by
    /// its BA unless refused.
    pub(crate) kept: Vec<BidCoa>,
    /// The last BU set the O flag: the home agent holds nothing but what it listed.
    pub(crate) overwrite: bool,
}

/// One Binding Update List entry (RFC 6275 §11.1): the home agent, the sequence number
/// space, the binding granted, the transaction outstanding, and what the data plane was
/// told.
#[derive(Debug, Clone)]
pub(crate) struct BulEntry {
    /// The home agent this entry registers with.
    pub(crate) home_agent: Ipv6Addr,
    /// The binding identifier (RFC 5648), when the entry is one of several care-of
    /// addresses.
    pub(crate) binding_id: Option<u16>,
    /// Last sequence number sent; the next BU uses its successor (§11.1: per entry).
    pub(crate) last_seq: SequenceNumber,
    pub(crate) registered: Option<Registered>,
    pub(crate) pending: Option<Pending>,
    /// What the last BUL_ADD announced (state dumps, BUL_REMOVE).
    pub(crate) announced: Option<Binding>,
    /// That announcement was optimistic: no BA has confirmed it yet.
    pub(crate) announced_optimistic: bool,
    /// Whether this home agent registers IPv4 MNPs.
    pub(crate) ipv4_support: Ipv4Support,
    /// No more BUs to this home agent (a refusal retrying cannot mend).
    pub(crate) stopped: Option<StopReason>,
    /// The IPv4 CoA offered beside an IPv6 one (MD_INFO `coa2`): the fallback when the
    /// IPv6 registration gets no BA (docs/notes.md §6).
    pub(crate) alt_v4: Option<(Ipv4Addr, u32)>,
    /// When a Binding Error 1 last made us refresh (BE_REFRESH_HOLDDOWN).
    pub(crate) be_refresh_at: Option<Instant>,
    /// Whether this home agent registers several care-of addresses.
    pub(crate) mcoa: McoaSupport,
    /// The flow bindings this home agent accepted (RFC 6089), with the BIDs sent: the
    /// next bulk BU refreshes these by FID alone (Flow Summary).
    pub(crate) flows_accepted: Vec<FlowBinding>,
    /// Whether this home agent does flow bindings.
    pub(crate) flow_support: FlowSupport,
}

impl BulEntry {
    /// A fresh entry: nothing sent, nothing granted; the first BU uses `initial_sequence`.
    pub(crate) fn new(
        home_agent: Ipv6Addr,
        binding_id: Option<u16>,
        initial_sequence: SequenceNumber,
    ) -> Self {
        BulEntry {
            home_agent,
            binding_id,
            last_seq: SequenceNumber(initial_sequence.0.wrapping_sub(1)),
            registered: None,
            pending: None,
            announced: None,
            announced_optimistic: false,
            ipv4_support: Ipv4Support::Unknown,
            stopped: None,
            alt_v4: None,
            be_refresh_at: None,
            mcoa: McoaSupport::Unknown,
            flows_accepted: Vec::new(),
            flow_support: FlowSupport::Unknown,
        }
    }

    /// The announced binding with its remaining lifetime at `now`.
    pub(crate) fn binding_at(&self, now: Instant) -> Option<Binding> {
        let mut b = self.announced.clone()?;
        if let Some(r) = &self.registered {
            b.lifetime = r.expires_at.saturating_duration_since(now).as_secs() as u32;
        }
        Some(b)
    }
}

/// The entries: the primary one the core drives, and any others.
#[derive(Debug, Clone)]
pub(crate) struct BindingUpdateList {
    /// The configured home agent, no binding identifier.
    pub(crate) primary: BulEntry,
    /// Entries for other home agents or binding identifiers (none are created yet).
    pub(crate) others: Vec<BulEntry>,
}

impl BindingUpdateList {
    /// A list holding the primary entry only.
    pub(crate) fn new(primary: BulEntry) -> Self {
        BindingUpdateList {
            primary,
            others: Vec::new(),
        }
    }

    /// Every entry, the primary first.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &BulEntry> {
        std::iter::once(&self.primary).chain(&self.others)
    }

    /// The entry for a home agent and binding identifier.
    pub(crate) fn find(&self, home_agent: Ipv6Addr, binding_id: Option<u16>) -> Option<&BulEntry> {
        self.entries()
            .find(|e| e.home_agent == home_agent && e.binding_id == binding_id)
    }

    /// Adds an entry for another home agent or binding identifier; `false` (and nothing
    /// added) when the list already holds one for that pair.
    pub(crate) fn insert(&mut self, entry: BulEntry) -> bool {
        if self.find(entry.home_agent, entry.binding_id).is_some() {
            return false;
        }
        self.others.push(entry);
        true
    }

    /// The entry of binding identifier `bid` with the primary's home agent.
    pub(crate) fn bid_entry_mut(&mut self, bid: u16) -> Option<&mut BulEntry> {
        let ha = self.primary.home_agent;
        self.others
            .iter_mut()
            .find(|e| e.home_agent == ha && e.binding_id == Some(bid))
    }

    /// Takes the entries of binding identifiers out of the list (any home agent).
    pub(crate) fn take_bid_entries(
        &mut self,
        mut which: impl FnMut(&BulEntry) -> bool,
    ) -> Vec<BulEntry> {
        let (taken, kept) = std::mem::take(&mut self.others)
            .into_iter()
            .partition(|e| e.binding_id.is_some() && which(e));
        self.others = kept;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_home_agent_and_binding_identifier() {
        let ha1: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let ha2: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
        let mut bul = BindingUpdateList::new(BulEntry::new(ha1, None, SequenceNumber(0)));
        // The first BU of an entry carries the initial sequence number.
        assert_eq!(bul.primary.last_seq, SequenceNumber(65535));
        assert!(!bul.insert(BulEntry::new(ha1, None, SequenceNumber(9))));
        assert!(bul.insert(BulEntry::new(ha1, Some(1), SequenceNumber(9))));
        assert!(bul.insert(BulEntry::new(ha2, None, SequenceNumber(9))));
        assert!(!bul.insert(BulEntry::new(ha2, None, SequenceNumber(1))));
        assert_eq!(bul.entries().count(), 3);
        assert_eq!(bul.find(ha1, Some(1)).unwrap().last_seq, SequenceNumber(8));
        assert!(bul.find(ha2, Some(1)).is_none());
        // Nothing announced: no binding to report.
        assert!(bul.primary.binding_at(Instant::now()).is_none());
    }
}
