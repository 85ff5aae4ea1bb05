//! Binding Update building and sending (RFC 6275 §11.7.1, §11.8 MAX_UPDATE_RATE; RFC
//! 3963 §5.1 MNP options; RFC 5555 §3.1 IPv4 options and UDP; RFC 5648 §4.2-4.3 Binding
//! Identifier options and the O flag; RFC 4285 §4-6 options), and the binding announced
//! to the data plane for it.

use super::*;

impl MrCore {
    /// The bus view of a binding; `encap` = (udp, nat) from the BA for an IPv4 CoA
    /// (`None` before any BA: UDP, the format the BU itself used).
    pub(super) fn binding_for(
        &self,
        coa: Ipv6Addr,
        ifindex: u32,
        mnp_v4: Vec<Ipv4Net>,
        life: u32,
        encap: Option<(bool, bool)>,
    ) -> Binding {
        let flags = self.bu_flags_from(&coa);
        let (coa, encapsulation, nat_detected) = match coa_v4(&coa) {
            None => (CareOf::V6(coa), Encapsulation::InIpv6, false),
            Some(addr) => {
                let (udp, nat) = encap.unwrap_or((true, false));
                if udp {
                    (
                        CareOf::V4 {
                            addr,
                            udp_port: Some(self.udp_local_port.unwrap_or(0)),
                        },
                        Encapsulation::UdpIpv4 {
                            ha_port: proto::DSMIP_UDP_PORT,
                        },
                        nat,
                    )
                } else {
                    (
                        CareOf::V4 {
                            addr,
                            udp_port: None,
                        },
                        Encapsulation::InIpv4,
                        false,
                    )
                }
            }
        };
        Binding {
            hoa: self.cfg.home_address,
            hoa_v4: None,
            coa,
            ha: self.bul.primary.home_agent,
            ha_v4: self.cfg.home_agent_v4,
            mnp_v6: self.cfg.mnp_v6.clone(),
            mnp_v4,
            encapsulation,
            lifetime: life,
            binding_id: None,
            flags,
            nat_detected,
            coa_ifindex: (ifindex != 0).then_some(ifindex),
            flows: Vec::new(),
            bid_priority: 0,
        }
    }

    pub(super) fn bu_flags(&self) -> BuFlags {
        flags_for(&self.cfg, false)
    }

    /// Flags of a BU from `coa`: F (RFC 5555 §3.1.3) only from an IPv4 CoA when forced.
    pub(super) fn bu_flags_from(&self, coa: &Ipv6Addr) -> BuFlags {
        if self.cfg.force_udp && coa_v4(coa).is_some() {
            self.bu_flags() | BuFlags::F
        } else {
            self.bu_flags()
        }
    }

    pub(super) fn wall_clock(&self, now: Instant) -> Duration {
        let base = match self.wall_anchor {
            Some((i, w)) => w + now.saturating_duration_since(i),
            None => Duration::ZERO,
        };
        let off = Duration::from_secs(self.clock_offset_secs.unsigned_abs());
        if self.clock_offset_secs >= 0 {
            base + off
        } else {
            base.saturating_sub(off)
        }
    }

    pub(super) fn next_timestamp(&mut self, now: Instant) -> NtpTimestamp {
        if self.wall_anchor.is_none() && self.last_timestamp.is_none() {
            // The HA will answer 144 and we resynchronise, but the shell forgot something.
            warn!("RFC 4285 timestamps requested but no wall clock given (set_wall_clock)");
        }
        let mut ts = NtpTimestamp::from_unix(self.wall_clock(now));
        // RFC 4285 §6: later than any earlier one, even within one clock tick.
        if let Some(last) = self.last_timestamp
            && !ts.is_later_than(last)
        {
            ts = NtpTimestamp(last.0.wrapping_add(1));
        }
        self.last_timestamp = Some(ts);
        ts
    }

    pub(super) fn send_bu(&mut self, now: Instant) {
        // RFC 6275 §11.7.1: not beyond the home prefix's remaining valid lifetime.
        let prefix_left = self.home_prefix_valid_left(now);
        let seq = self.bul.primary.last_seq.next();
        let ts = match &self.cfg.security {
            Some(sa) if sa.timestamps() => Some(self.next_timestamp(now)),
            _ => None,
        };
        let send_v4 = self.sends_ipv4_mnps();
        let mcoa_refused = self.bul.primary.mcoa == McoaSupport::Unsupported;
        let (kept, overwrite) = match &self.bul.primary.pending {
            Some(p) if p.kind == BuKind::Register && !mcoa_refused => {
                self.primary_extras(&p.coa, &p.bids)
            }
            _ => (Vec::new(), false),
        };
        // The uplinks' own registrations this BU would undo at the home agent: all of
        // them for a plain BU or a de-registration, the new ones for one with O.
        let plain = self
            .bul
            .primary
            .pending
            .as_ref()
            .is_none_or(|p| p.kind == BuKind::Deregister || p.bids.is_empty() || mcoa_refused);
        if plain || overwrite {
            self.cancel_individual(plain);
        }
        // RFC 6089: flow bindings ride on the BUs with Binding Identifier options (see
        // `flows`), restricted to the BIDs the home agent holds once this BU is applied;
        // the options borrow these, which outlive them.
        let flows = match &self.bul.primary.pending {
            Some(p) if p.kind == BuKind::Register && !mcoa_refused && !p.bids.is_empty() => {
                let mut bids: Vec<u16> = p.bids.iter().chain(&kept).map(|b| b.bid).collect();
                if !overwrite {
                    bids.extend(self.individually_registered());
                }
                self.flows_for(&bids)
            }
            _ => flows::FlowsSent::default(),
        };
        let flow_subs = flows.sub_options();
        let flow_fids = flows.summary_fids();
        let Some(p) = &mut self.bul.primary.pending else {
            return;
        };
        if mcoa_refused {
            p.bids.clear();
        }
        let cfg = &self.cfg;
        let hoa = cfg.home_address;
        let register = p.kind == BuKind::Register;
        let lifetime = if register {
            registration_lifetime(cfg, prefix_left)
        } else {
            Lifetime::ZERO
        };
        let mut options: Vec<MobilityOption<'_>> = Vec::new();
        let v4_coa = coa_v4(&p.coa).filter(|_| !p.at_home);
        if let Some(a) = v4_coa {
            // RFC 5555 §3.1.2, §4.2: from an IPv4 CoA, no Alternate CoA (nor HAO); RFC
            // 5648 §8.1: beside a Binding Identifier option, which holds the address, no
            // IPv4 Care-of Address option either.
            if p.bids.is_empty() {
                options.push(MobilityOption::Ipv4CareOfAddress(a));
            }
        } else if !p.at_home {
            // RFC 6275 §11.7.1: mandatory in home registrations from a CoA. A bulk
            // registration keeps it: the BU's own care-of address, one of those listed.
            options.push(MobilityOption::AlternateCareOfAddress(p.coa));
        }
        // RFC 5648 §4.3: a bulk registration lists every care-of address, each in its
        // Binding Identifier option (status 0, H clear: no simultaneous home binding);
        // the IPv4 ones it keeps after them.
        options.extend(
            p.bids
                .iter()
                .chain(&kept)
                .map(|b| bid_option(b, cfg.bid_priority(b.bid))),
        );
        let v4_sent = if register {
            prefix_options(cfg, send_v4, &mut options)
        } else {
            Vec::new()
        };
        // RFC 6089 §5.2: every flow binding in every BU, new or changed ones identified,
        // the others summarised.
        options.extend(flows::flow_options(&flows, &flow_subs, &flow_fids));
        security_options(cfg, ts, &mut options);
        let mut flags = flags_for(cfg, v4_coa.is_some());
        // RFC 5648 §4.2: O, the listed bindings replace every other one (0x0040, only
        // beside Binding Identifier options: RFC 6602 took the bit for PMIPv6's B).
        flags.set(BuFlags::O, overwrite && !p.bids.is_empty());
        let repr = MhRepr::BindingUpdate(BindingUpdate {
            sequence: seq,
            flags,
            lifetime,
            options,
        });
        let Some(mh) = signed_mh(&repr, self.mn_ha_key.as_ref(), &p.coa, &hoa) else {
            return;
        };
        let (addressing, udp_v4) = bu_addressing(
            cfg,
            self.bul.primary.home_agent,
            &p.coa,
            v4_coa.is_some(),
            p.at_home,
        );
        book_sent(cfg, &mut self.stats, p, now, seq, ts);
        p.v4_sent = v4_sent;
        if flows != flows::FlowsSent::default() {
            debug!(identified = ?flows.identified.iter().map(|f| f.fid).collect::<Vec<_>>(),
                summarised = ?flow_fids, "flow binding options sent");
        }
        p.flows_sent = flows;
        p.kept = kept;
        p.overwrite = flags.contains(BuFlags::O);
        debug!(seq = %seq, kind = ?p.kind, coa = %p.coa, attempt = p.transmissions,
            bids = ?p.bids.iter().map(|b| b.bid).collect::<Vec<_>>(),
            next_ms = (p.next_tx - now).as_millis() as u64, "Binding Update sent");
        self.bul.primary.last_seq = seq;
        self.send_log.push_back(now);
        self.transmits.push_back(Transmit {
            addressing,
            mh,
            sequence: seq,
            lifetime,
            kind: p.kind,
            udp_v4,
            udp_from: udp_v4.and(v4_coa),
            ifindex: p.coa_ifindex,
        });
        // Optimistic mode: announce the new binding as the BU leaves, unless it only
        // refreshes the one already announced.
        let optimistic = self.cfg.optimistic && register && !p.optimistic_announced;
        if optimistic && !p.bids.is_empty() {
            p.optimistic_announced = true;
            let (bids, v4) = (p.bids.clone(), p.v4_sent.clone());
            self.announce_bulk_optimistic(&bids, v4);
            return;
        }
        let already = self
            .bul
            .primary
            .registered
            .as_ref()
            .is_some_and(|r| r.coa == p.coa);
        if optimistic && !already {
            p.optimistic_announced = true;
            let (coa, ifx, v4) = (p.coa, p.coa_ifindex, p.v4_sent.clone());
            let ipv4 = if v4.is_empty() {
                Ipv4MnpOutcome::NotRequested
            } else {
                Ipv4MnpOutcome::Pending
            };
            let b = self.binding_for(coa, ifx, v4, self.cfg.lifetime.as_secs(), None);
            info!(hoa = %b.hoa, coa = %coa, "optimistic binding update list entry");
            self.announce(b, true, ipv4);
        }
    }
}

impl MrCore {
    /// Whether BUs to the home agent in use list the IPv4 mobile network prefixes: some
    /// configured, sending them on, and the home agent not known to ignore them.
    pub(super) fn sends_ipv4_mnps(&self) -> bool {
        self.cfg.send_ipv4_mnps
            && self.bul.primary.ipv4_support != Ipv4Support::Unsupported
            && !self.cfg.mnp_v4.is_empty()
    }
}

/// Books a BU of transaction `p` as sent at `now` with sequence number `seq` and RFC
/// 4285 timestamp `ts`: its count (and the counters'), and when the next leaves (RFC 6275
/// §11.8's back-off).
pub(super) fn book_sent(
    cfg: &MrCoreConfig,
    stats: &mut MrStats,
    p: &mut Pending,
    now: Instant,
    seq: SequenceNumber,
    ts: Option<NtpTimestamp>,
) {
    p.transmissions += 1;
    stats.bu_sent += 1;
    if p.transmissions > 1 {
        stats.bu_retransmitted += 1;
    }
    p.sequence = seq;
    p.last_sent = Some(now);
    p.timestamp = ts;
    p.next_tx = now + MrCore::retransmission_timeout(cfg, p.transmissions, p.first_registration);
}

/// A BU's Mobility Header, emitted and, with an SA, signed over the care-of address `coa`
/// (RFC 4285 §5; an IPv4 one IPv4-mapped) and the home address; `None` (logged) if it
/// cannot be.
pub(super) fn signed_mh(
    repr: &MhRepr<'_>,
    key: Option<&auth::MnHaKey>,
    coa: &Ipv6Addr,
    hoa: &Ipv6Addr,
) -> Option<Vec<u8>> {
    let mut mh = vec![0u8; repr.buffer_len()];
    if let Err(e) = repr.emit_to(&mut mh) {
        error!(error = %e, "cannot build the Binding Update");
        return None;
    }
    if let Some(key) = key
        && let Err(e) = key.sign(&mut mh, IpAddr::V6(*coa), hoa)
    {
        error!(error = %e, "cannot sign the Binding Update");
        return None;
    }
    Some(mh)
}

/// The addressing of a BU from `coa` to home agent `ha`, and the UDP/IPv4 destination
/// when it goes encapsulated: from an IPv4 care-of address (`from_v4`, with the home
/// agent's IPv4 address configured), in UDP/IPv4 to its port 4191, inner source the home
/// address, no HAO (RFC 5555 §4.2); from the home link, source the home address, no HAO
/// (RFC 6275 §11.5.4); else from the care-of address with the home address in a HAO.
pub(super) fn bu_addressing(
    cfg: &MrCoreConfig,
    ha: Ipv6Addr,
    coa: &Ipv6Addr,
    from_v4: bool,
    at_home: bool,
) -> (MobilityPacketRepr, Option<SocketAddrV4>) {
    let hoa = cfg.home_address;
    let udp_v4 = cfg
        .home_agent_v4
        .filter(|_| from_v4)
        .map(|ha4| SocketAddrV4::new(ha4, proto::DSMIP_UDP_PORT));
    let (src_addr, home_address) = if udp_v4.is_some() || at_home {
        (hoa, None)
    } else {
        (*coa, Some(hoa))
    };
    let addressing = MobilityPacketRepr {
        src_addr,
        dst_addr: ha,
        hop_limit: cfg.hop_limit,
        home_address,
        rh2_home_address: None,
    };
    (addressing, udp_v4)
}

/// The lifetime a registration asks for: the configured one, not beyond the home prefix's
/// remaining valid lifetime `prefix_left` (RFC 6275 §11.7.1).
pub(super) fn registration_lifetime(cfg: &MrCoreConfig, prefix_left: Option<Duration>) -> Lifetime {
    match prefix_left {
        Some(left) => cfg
            .lifetime
            .min(Lifetime::from_secs(left.as_secs()))
            .max(Lifetime(1)),
        None => cfg.lifetime,
    }
}

/// The prefix options of a registration, appended to `out`: in explicit mode every IPv6
/// mobile network prefix (RFC 3963 §5.2: in every BU, the home agent drops what is not
/// listed), and with `send_v4` every IPv4 one (RFC 5555 §3.1.1, §4.4.2: an IPv4 Home
/// Address option with P=1, or SHISA's option). Returns the IPv4 ones listed.
pub(super) fn prefix_options<'c>(
    cfg: &'c MrCoreConfig,
    send_v4: bool,
    out: &mut Vec<MobilityOption<'c>>,
) -> Vec<Ipv4Net> {
    if cfg.mode == RegistrationMode::Explicit {
        out.extend(
            cfg.mnp_v6
                .iter()
                .map(|n| MobilityOption::MobileNetworkPrefix {
                    prefix_len: n.prefix_len(),
                    prefix: n.network(),
                }),
        );
    }
    if !send_v4 {
        return Vec::new();
    }
    for n in &cfg.mnp_v4 {
        out.push(if cfg.legacy_ipv4_mnp_option {
            MobilityOption::LegacyIpv4Mnp {
                prefix_len: n.prefix_len(),
                prefix: n.network(),
            }
        } else {
            MobilityOption::Ipv4HomeAddress {
                prefix_len: n.prefix_len(),
                p: true,
                address: n.network(),
            }
        });
    }
    cfg.mnp_v4.clone()
}

/// RFC 4285 §4, §8, appended to `out`: MN-ID, then replay protection, then the MN-HA
/// authentication option, last.
pub(super) fn security_options<'c>(
    cfg: &'c MrCoreConfig,
    ts: Option<NtpTimestamp>,
    out: &mut Vec<MobilityOption<'c>>,
) {
    let Some(sa) = &cfg.security else {
        return;
    };
    if let Some(nai) = &sa.nai {
        out.push(MobilityOption::MobileNodeIdentifier {
            subtype: MN_ID_SUBTYPE_NAI,
            identifier: nai,
        });
    }
    if let Some(ts) = ts {
        out.push(MobilityOption::ReplayProtection { timestamp: ts.0 });
    }
    out.push(auth::mn_ha_option(sa.spi));
}

/// The Binding Identifier option of a care-of address in a BU (RFC 5648 §4.3): status 0,
/// H clear (no simultaneous home binding), the address in it, IPv4 ones as such, and its
/// BID-PRI (RFC 6089 §4.1, §5.2.1: a mobile node doing flow bindings never sends 0).
pub(super) fn bid_option<'a>(b: &BidCoa, bid_pri: u8) -> MobilityOption<'a> {
    MobilityOption::BindingIdentifier {
        bid: b.bid,
        status: 0,
        h: false,
        coa: Some(match coa_v4(&b.coa) {
            Some(a) => IpAddr::V4(a),
            None => IpAddr::V6(b.coa),
        }),
        bid_pri,
    }
}

/// The flags of a home registration (RFC 6275 §11.7.1, RFC 3963 §5.1): A and H; R for a
/// mobile router (kept on deregistration too, where the HA ignores it, RFC 3963 §6.2); L
/// when the home address shares its interface identifier with our link-local; F from an
/// IPv4 care-of address when UDP encapsulation is forced (RFC 5555 §3.1.3).
pub(super) fn flags_for(cfg: &MrCoreConfig, from_v4: bool) -> BuFlags {
    let mut flags = BuFlags::A | BuFlags::H;
    flags.set(BuFlags::R, cfg.mobile_router);
    flags.set(BuFlags::L, cfg.link_local_compat);
    flags.set(BuFlags::F, cfg.force_udp && from_v4);
    flags
}
