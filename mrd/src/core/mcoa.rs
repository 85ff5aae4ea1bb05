//! Multiple care-of addresses, mobile router side (RFC 5648, issue 15).
//!
//! The movement detector lists its uplinks in every MD_INFO REREG: each interface's
//! usable care-of address. With `MrCoreConfig::multiple_coa`, every IPv6 uplink gets a
//! binding identifier (its interface's position among the egress interfaces, the first
//! 1), and the one transaction the core drives — the primary Binding Update List entry,
//! from the care-of address in use — becomes a bulk registration: a Binding Identifier
//! option per uplink with its care-of address in the option (§4.3), and the O flag, so
//! the home agent's bindings become exactly the listed ones and an uplink that went is
//! simply left out of the next BU. A change of the uplinks is a new transaction;
//! refreshes carry the current set.
//!
//! What stays as it was: an IPv4 care-of address is a single DSMIPv6 binding (RFC 5555)
//! and the bulk BU lists IPv6 uplinks only; a de-registration is the plain BU of lifetime
//! 0, which removes every binding of the home address; without uplinks (an older
//! movement detector) or with the care-of address in use not among them, the BU is the
//! plain one of RFC 6275.
//!
//! The BA: each Binding Identifier option carries its binding's status, 0 meaning the
//! BA's own; below 128 the binding is registered and announced with its own BUL_ADD
//! (`binding_id`), and a binding identifier announced before and not accepted now gets a
//! BUL_REMOVE. A home agent that answers a bulk BU without any Binding Identifier option
//! skipped an option it does not know (RFC 6275 §6.2.1): it registered the care-of
//! address in use as a plain binding, which is announced as such, and it gets plain BUs
//! from then on; so does one that refuses the BU as a whole with an MCoA status
//! (164-169). The RFC's text on the mobile node's side was not at hand when this was
//! written: that reading of a BA without the option is the RFC's recalled, not checked,
//! and individual registrations after a 168 (MCOA BULK REGISTRATION PROHIBITED) are not
//! done — the care-of address in use is registered alone.
//!
//! The O flag is bit 0x0040, which RFC 6602 later registered as PMIPv6's B
//! (protocol.md §2.1): it is set only beside Binding Identifier options.

use super::*;

/// The BA status of a binding identifier: its option's, 0 meaning the BA's (§4.3).
fn bid_status(ba: &BindingAck<'_>, bid: u16) -> Option<BaStatus> {
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
    /// The IPv6 uplinks of an MD_INFO REREG with their binding identifiers, sorted by
    /// them; none unless multiple care-of addresses are configured.
    pub(super) fn bid_uplinks(&self, md: &MdInfo) -> Vec<BidCoa> {
        if !self.cfg.multiple_coa {
            return Vec::new();
        }
        let mut v: Vec<BidCoa> = Vec::new();
        for u in &md.uplinks {
            // An IPv4 care-of address stays a single DSMIPv6 binding (RFC 5555).
            let CareOf::V6(coa) = u.coa else {
                continue;
            };
            if coa == self.cfg.home_address {
                continue;
            }
            if let Some(reason) = coa::refusal(&self.cfg, &u.coa) {
                warn!(%coa, ifname = %u.ifname, reason, "uplink refused as a care-of address");
                continue;
            }
            let Some(bid) = self.cfg.binding_id(&u.ifname) else {
                warn!(%coa, ifname = %u.ifname,
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
        match md.coa {
            Some(CareOf::V6(primary)) if !v.iter().any(|b| b.coa == primary) => {
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

    /// The bulk registration from `coa`: every uplink, when `coa` is one of them and the
    /// home agent is not known to refuse them; else none (a plain BU).
    pub(super) fn bulk_set(&self, coa: Ipv6Addr) -> Vec<BidCoa> {
        if !self.cfg.multiple_coa
            || self.bul.primary.mcoa == McoaSupport::Unsupported
            || !self.uplinks.iter().any(|b| b.coa == coa)
        {
            return Vec::new();
        }
        self.uplinks.clone()
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
            self.bul.primary.mcoa = McoaSupport::Supported;
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
    /// this home agent from now on, the first at once.
    pub(super) fn bulk_refused(&mut self, now: Instant, status: BaStatus) {
        let (name, rfc) = status.meaning();
        let code = u8::from(status);
        self.stats.refused += 1;
        self.stats.last_refusal = Some(code);
        warn!(ha = %self.bul.primary.home_agent, status = code, meaning = name, rfc,
            "the home agent refuses the bulk registration: the care-of address in use alone, \
             from now on");
        self.bul.primary.mcoa = McoaSupport::Unsupported;
        self.withdraw_bids(|e| e.announced_optimistic);
        if let Some(p) = &mut self.bul.primary.pending {
            p.bids.clear();
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
            let mut binding = self.binding_for(
                b.coa,
                b.ifindex,
                mnp_v4.to_vec(),
                registered.granted.as_secs(),
                Some((false, false)),
            );
            binding.binding_id = Some(b.bid);
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
        info!(hoa = %self.cfg.home_address, coa = %p.coa, %ha, seq = %ba.sequence,
            lifetime = registered.granted.as_secs(),
            accepted = ?accepted.iter().map(|b| (b.bid, b.coa)).collect::<Vec<_>>(),
            refused = p.bids.len() - accepted.len(),
            "bulk home registration acknowledged");
        self.withdraw_bids(|e| !accepted.iter().any(|b| Some(b.bid) == e.binding_id));
        self.withdraw_plain();
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
    fn bid_entry(&mut self, bid: u16) -> &mut BulEntry {
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
