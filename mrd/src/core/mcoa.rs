//! Multiple care-of addresses, mobile router side (RFC 5648, issue 15).
//!
//! The movement detector lists its uplinks in every MD_INFO REREG: each interface's
//! usable care-of address. With `MrCoreConfig::multiple_coa`, every uplink gets a
//! binding identifier (its interface's position among the egress interfaces, the first
//! 1), and the transaction the core drives — the primary Binding Update List entry, from
//! the care-of address in use — becomes a bulk registration: a Binding Identifier option
//! per IPv6 uplink with its care-of address in the option (§4.3), and the O flag, so
//! the home agent's bindings become exactly the listed ones and an uplink that went is
//! simply left out of the next BU. A change of the uplinks is a new transaction;
//! refreshes carry the current set.
//!
//! IPv4 care-of addresses (RFC 5648 §8.1, with RFC 5555): each registers first by a BU
//! of its own (`individual`), sent from it in UDP/IPv4 with its Binding Identifier option
//! holding the address and no IPv4 Care-of Address option, so the home agent sees the path
//! and any NAT in front of it. The bulk registration then lists it with its address, which
//! keeps it under the O flag (the home agent keeps its path and NAT mapping), and it keeps
//! refreshing itself over its own path at its NAT keepalive interval. When the care-of
//! address in use is itself an IPv4 one, the primary BU goes in UDP/IPv4 too and can list
//! only its own binding identifier, so it is an individual registration: it sets O only
//! when the home agent may hold something else than that binding (a plain binding, or
//! nothing of ours yet), and every other uplink registers by its own BUs.
//!
//! A home agent that refuses a bulk registration with 168 (MCOA BULK REGISTRATION
//! PROHIBITED) gets individual registrations alike: the primary BU lists the care-of
//! address in use alone, and every other uplink sends its own.
//!
//! What stays as it was: a de-registration is the plain BU of lifetime 0, which removes
//! every binding of the home address; without uplinks (an older movement detector) or
//! with the care-of address in use not among them, the BU is the plain one of RFC 6275.
//!
//! The BA: each Binding Identifier option carries its binding's status, 0 meaning the
//! BA's own; below 128 the binding is registered and announced with its own BUL_ADD
//! (`binding_id`), and a binding identifier announced before and not accepted now gets a
//! BUL_REMOVE. A home agent that answers a bulk BU without any Binding Identifier option
//! skipped an option it does not know (RFC 6275 §6.2.1): it registered the care-of
//! address in use as a plain binding, which is announced as such, and it gets plain BUs
//! from then on; so does one that refuses the BU as a whole with an MCoA status (164-167,
//! 169). The RFC's text on the mobile node's side was not at hand when this was written:
//! that reading of a BA without the option is the RFC's recalled, not checked.
//!
//! The O flag is bit 0x0040, which RFC 6602 later registered as PMIPv6's B
//! (protocol.md §2.1): it is set only beside Binding Identifier options.

use super::*;

/// The BA status of a binding identifier: its option's, 0 meaning the BA's (§4.3).
pub(super) fn bid_status(ba: &BindingAck<'_>, bid: u16) -> Option<BaStatus> {
    ba.options.iter().find_map(|o| match *o {
        MobilityOption::BindingIdentifier { bid: b, status, .. } if b == bid => {
            Some(if status == 0 {
                ba.status
            } else {
                BaStatus::from(status)
            })
        }
        _ => None,
    })
}

impl MrCore {
    /// The uplinks of an MD_INFO REREG with their binding identifiers, sorted by them;
    /// none unless multiple care-of addresses are configured. IPv4 ones are held
    /// IPv4-mapped, and only with an IPv4 address for the home agent to send to.
    pub(super) fn bid_uplinks(&self, md: &MdInfo) -> Vec<BidCoa> {
        if !self.cfg.multiple_coa {
            return Vec::new();
        }
        let mut v: Vec<BidCoa> = Vec::new();
        for u in &md.uplinks {
            let coa = match u.coa {
                CareOf::V6(coa) => coa,
                CareOf::V4 { addr, .. } if self.cfg.home_agent_v4.is_some() => {
                    addr.to_ipv6_mapped()
                }
                CareOf::V4 { addr, .. } => {
                    debug!(coa = %addr, ifname = %u.ifname,
                        "IPv4 uplink but no IPv4 address for the home agent configured: not registered");
                    continue;
                }
            };
            if coa == self.cfg.home_address {
                continue;
            }
            if let Some(reason) = coa::refusal(&self.cfg, &u.coa) {
                warn!(coa = %u.coa, ifname = %u.ifname, reason, "uplink refused as a care-of address");
                continue;
            }
            let Some(bid) = self.cfg.binding_id(&u.ifname) else {
                warn!(coa = %u.coa, ifname = %u.ifname,
                    "uplink on an interface that egress-interface does not list: no binding \
                     identifier, not registered");
                continue;
            };
            if v.iter().any(|b| b.bid == bid) {
                continue;
            }
            v.push(BidCoa {
                bid,
                coa,
                ifindex: u.ifindex,
            });
        }
        v.sort_by_key(|b| b.bid);
        let primary = match md.coa {
            Some(CareOf::V6(a)) => Some(a),
            Some(CareOf::V4 { addr, .. }) => Some(addr.to_ipv6_mapped()),
            None => None,
        };
        match primary {
            Some(primary) if !v.iter().any(|b| b.coa == primary) => {
                if md.uplinks.is_empty() {
                    debug!(%primary, "MD_INFO without uplinks: the care-of address in use alone");
                } else {
                    warn!(%primary, uplinks = ?v.iter().map(|b| (b.bid, b.coa)).collect::<Vec<_>>(),
                        "the care-of address in use is not among the uplinks: registered alone");
                }
            }
            _ => {}
        }
        v
    }

    /// Whether the primary BU from `coa` lists its own binding identifier alone: from an
    /// IPv4 care-of address (a BU in UDP/IPv4 holds one, RFC 5648 §8.1), or to a home
    /// agent that refused bulk registrations (168).
    pub(super) fn single_bid(&self, coa: &Ipv6Addr) -> bool {
        coa_v4(coa).is_some() || self.bul.primary.mcoa == McoaSupport::Individually
    }

    /// What the primary BU from `coa` registers: every IPv6 uplink (a bulk registration),
    /// or its own binding identifier alone (`single_bid`), when `coa` is one of the
    /// uplinks and the home agent is not known to refuse them; else none (a plain BU).
    pub(super) fn bulk_set(&self, coa: Ipv6Addr) -> Vec<BidCoa> {
        if !self.cfg.multiple_coa || self.bul.primary.mcoa == McoaSupport::Unsupported {
            return Vec::new();
        }
        let Some(own) = self.uplinks.iter().find(|b| b.coa == coa) else {
            return Vec::new();
        };
        if self.single_bid(&coa) {
            return vec![*own];
        }
        self.uplinks
            .iter()
            .filter(|b| coa_v4(&b.coa).is_none())
            .copied()
            .collect()
    }

    /// What a primary BU registering `bids` from `coa` lists besides, and whether it sets
    /// O: a bulk registration lists the IPv4 care-of addresses registered by BUs of their
    /// own, with their address, and sets O; an individual one lists nothing else and sets
    /// O only when the home agent may hold another binding than `bids` (a plain one, or
    /// none of ours yet): O would remove the bindings the other uplinks registered.
    pub(super) fn primary_extras(&self, coa: &Ipv6Addr, bids: &[BidCoa]) -> (Vec<BidCoa>, bool) {
        if bids.is_empty() {
            return (Vec::new(), false);
        }
        if self.single_bid(coa) {
            let holds_ours = self
                .bul
                .primary
                .registered
                .as_ref()
                .is_some_and(|r| r.bids.iter().map(|b| b.bid).eq(bids.iter().map(|b| b.bid)));
            return (Vec::new(), !holds_ours);
        }
        let kept = self
            .uplinks
            .iter()
            .filter(|u| coa_v4(&u.coa).is_some() && !bids.iter().any(|b| b.bid == u.bid))
            .filter(|u| {
                self.bul
                    .find(self.bul.primary.home_agent, Some(u.bid))
                    .and_then(|e| e.registered.as_ref())
                    .is_some_and(|r| r.coa == u.coa)
            })
            .copied()
            .collect();
        (kept, true)
    }

    /// A BA to a bulk registration: whether the home agent took it as one. A BA without
    /// any Binding Identifier option means it does not do multiple care-of addresses: it
    /// registered the care-of address in use alone, and gets plain BUs from now on.
    pub(super) fn bulk_answered(&mut self, ba: &BindingAck<'_>) -> bool {
        let answered = ba
            .options
            .iter()
            .any(|o| matches!(o, MobilityOption::BindingIdentifier { .. }));
        if answered {
            if self.bul.primary.mcoa != McoaSupport::Individually {
                self.bul.primary.mcoa = McoaSupport::Supported;
            }
        } else {
            if self.bul.primary.mcoa != McoaSupport::Unsupported {
                warn!(ha = %self.bul.primary.home_agent,
                    "the home agent answered the bulk registration without Binding Identifier \
                     options: it does not register several care-of addresses (RFC 5648); the \
                     care-of address in use alone, from now on");
            }
            self.bul.primary.mcoa = McoaSupport::Unsupported;
        }
        answered
    }

    /// A bulk registration refused as a whole with an MCoA status (164-169): plain BUs to
    /// this home agent from now on, the first at once; after a 168 to a BU of several
    /// binding identifiers, individual registrations instead.
    pub(super) fn bulk_refused(&mut self, now: Instant, status: BaStatus, listed: usize) {
        let (name, rfc) = status.meaning();
        let code = u8::from(status);
        self.stats.refused += 1;
        self.stats.last_refusal = Some(code);
        if status == BaStatus::McoaBulkRegistrationProhibited
            && listed > 1
            && self.bul.primary.mcoa != McoaSupport::Individually
        {
            warn!(ha = %self.bul.primary.home_agent, status = code, meaning = name, rfc,
                "the home agent refuses bulk registrations: each care-of address registers by \
                 a Binding Update of its own from now on");
            self.bul.primary.mcoa = McoaSupport::Individually;
        } else {
            warn!(ha = %self.bul.primary.home_agent, status = code, meaning = name, rfc,
                "the home agent refuses the bulk registration: the care-of address in use \
                 alone, from now on");
            self.bul.primary.mcoa = McoaSupport::Unsupported;
        }
        self.withdraw_bids(|e| e.announced_optimistic);
        let coa = self.bul.primary.pending.as_ref().map(|p| p.coa);
        let bids = coa.map(|c| self.bulk_set(c)).unwrap_or_default();
        if let Some(p) = &mut self.bul.primary.pending {
            p.bids = bids;
        }
        self.restart_transaction(now);
    }

    /// The bindings of an accepted bulk registration: a BUL_ADD per accepted binding
    /// identifier, then a BUL_REMOVE for each one announced before and not accepted now,
    /// and for the plain binding the BIDs replace (the O flag removed it at the HA).
    pub(super) fn announce_bulk(
        &mut self,
        ba: &BindingAck<'_>,
        p: &Pending,
        registered: &Registered,
        mnp_v4: &[Ipv4Net],
        ipv4: &Ipv4MnpOutcome,
        v4_encap: (bool, bool),
    ) {
        let ha = self.bul.primary.home_agent;
        let mut accepted = Vec::new();
        for b in &p.bids {
            match bid_status(ba, b.bid) {
                Some(st) if st.is_accepted() => accepted.push(*b),
                Some(st) => {
                    let (name, rfc) = st.meaning();
                    warn!(bid = b.bid, coa = %b.coa, status = u8::from(st), meaning = name, rfc,
                        "care-of address refused by the home agent");
                }
                None => warn!(bid = b.bid, coa = %b.coa,
                    "the BA has no Binding Identifier option for this care-of address: not registered"),
            }
        }
        for b in &accepted {
            // Only the care-of address in use can be an IPv4 one here: the BA's NAT
            // detection is its.
            let encap = if coa_v4(&b.coa).is_some() {
                v4_encap
            } else {
                (false, false)
            };
            let mut binding = self.binding_for(
                b.coa,
                b.ifindex,
                mnp_v4.to_vec(),
                registered.granted.as_secs(),
                Some(encap),
            );
            binding.binding_id = Some(b.bid);
            binding.bid_priority = self.cfg.bid_priority(b.bid);
            // What the home agent holds of our flow bindings, for the data plane to apply
            // to what it sends (RFC 6089 §4.3, seen from the mobile network).
            binding.flows = self.bul.primary.flows_accepted.clone();
            let entry = self.bid_entry(b.bid);
            entry.registered = Some(Registered {
                coa: b.coa,
                coa_ifindex: b.ifindex,
                bids: Vec::new(),
                ..registered.clone()
            });
            entry.announced = Some(binding.clone());
            entry.announced_optimistic = false;
            self.events.push_back(MrEvent::BulAdd {
                binding,
                optimistic: false,
                ipv4: ipv4.clone(),
            });
        }
        // The IPv4 care-of addresses listed to keep them: nothing to announce, unless the
        // home agent refused them.
        let kept_refused: Vec<u16> = p
            .kept
            .iter()
            .filter(|b| !bid_status(ba, b.bid).is_some_and(|s| s.is_accepted()))
            .map(|b| {
                warn!(bid = b.bid, coa = %b.coa,
                    "the home agent did not keep this IPv4 care-of address: it registers again \
                     by a Binding Update of its own");
                b.bid
            })
            .collect();
        info!(hoa = %self.cfg.home_address, coa = %p.coa, %ha, seq = %ba.sequence,
            lifetime = registered.granted.as_secs(),
            accepted = ?accepted.iter().map(|b| (b.bid, b.coa)).collect::<Vec<_>>(),
            refused = p.bids.len() - accepted.len(),
            kept = ?p.kept.iter().map(|b| b.bid).filter(|b| !kept_refused.contains(b)).collect::<Vec<_>>(),
            overwrite = p.overwrite,
            "bulk home registration acknowledged");
        let listed = |bid: u16| p.bids.iter().chain(&p.kept).any(|b| b.bid == bid);
        let overwrite = p.overwrite;
        // With O the home agent holds what the BU listed and nothing else; without, what
        // it refused goes and the other uplinks' own registrations stay.
        self.withdraw_bids(|e| {
            let Some(bid) = e.binding_id else {
                return false;
            };
            if accepted.iter().any(|b| b.bid == bid) {
                return false;
            }
            kept_refused.contains(&bid)
                || (listed(bid) && !p.kept.iter().any(|b| b.bid == bid))
                || (overwrite && !listed(bid))
        });
        self.withdraw_plain();
        self.individual_refused.clear();
    }

    /// Optimistic mode with a bulk registration: the care-of addresses not announced
    /// already, announced as the BU leaves.
    pub(super) fn announce_bulk_optimistic(&mut self, bids: &[BidCoa], mnp_v4: Vec<Ipv4Net>) {
        let ipv4 = if mnp_v4.is_empty() {
            Ipv4MnpOutcome::NotRequested
        } else {
            Ipv4MnpOutcome::Pending
        };
        for b in bids {
            let entry = self.bid_entry(b.bid);
            if entry
                .announced
                .as_ref()
                .is_some_and(|a| a.coa == CareOf::V6(b.coa))
            {
                continue;
            }
            let mut binding = self.binding_for(
                b.coa,
                b.ifindex,
                mnp_v4.clone(),
                self.cfg.lifetime.as_secs(),
                None,
            );
            binding.binding_id = Some(b.bid);
            binding.bid_priority = self.cfg.bid_priority(b.bid);
            // What the home agent holds of our flow bindings, for the data plane to apply
            // to what it sends (RFC 6089 §4.3, seen from the mobile network).
            binding.flows = self.bul.primary.flows_accepted.clone();
            info!(hoa = %binding.hoa, bid = b.bid, coa = %b.coa, "optimistic binding update list entry");
            let entry = self.bid_entry(b.bid);
            entry.announced = Some(binding.clone());
            entry.announced_optimistic = true;
            self.events.push_back(MrEvent::BulAdd {
                binding,
                optimistic: true,
                ipv4: ipv4.clone(),
            });
        }
    }

    /// The entry of binding identifier `bid` with the home agent in use, made if missing.
    pub(super) fn bid_entry(&mut self, bid: u16) -> &mut BulEntry {
        let ha = self.bul.primary.home_agent;
        if self.bul.bid_entry_mut(bid).is_none() {
            self.bul
                .insert(BulEntry::new(ha, Some(bid), SequenceNumber(0)));
        }
        self.bul.bid_entry_mut(bid).expect("inserted above")
    }

    /// BUL_REMOVE for the binding identifiers `which` selects; their entries go.
    pub(super) fn withdraw_bids(&mut self, which: impl FnMut(&BulEntry) -> bool) {
        for e in self.bul.take_bid_entries(which) {
            if let Some(mut b) = e.announced {
                b.lifetime = 0;
                info!(hoa = %b.hoa, bid = ?b.binding_id, coa = %b.coa,
                    "binding update list entry removed");
                self.events.push_back(MrEvent::BulRemove { binding: b });
            }
        }
    }
}
