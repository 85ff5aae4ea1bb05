//! Binding Update processing (RFC 6275 §9.5.1, §10.3.1, §10.3.2; RFC 3963 §6; RFC 5555
//! §4.4, §5.7; RFC 4285 §4-6), in the order of docs/notes.md §7:
//!
//! 1. care-of address (Alternate CoA, IPv6 source, or RFC 5555 IPv4 CoA) and sanity: a CoA
//!    that is not unicast, is one of ours, is on the home link but not the HoA, or lies in
//!    the router's own prefixes is silently dropped (§9.5.1) and counted (`invalid_coa`);
//! 2. RFC 4285: MN-HA option required (else silent drop), SPI known (else silent drop),
//!    MAC and SA/HoA/NAI match (146), timestamps (145 missing, 144 stale);
//! 3. H/R flags (140; H=0 without R is a correspondent registration, not ours: drop);
//!    home agent for anything at all (131); HoA in a served prefix (132);
//! 4. sequence number window (135 with the last accepted number);
//! 5. deregistration (lifetime 0 or CoA = HoA; 133 without a binding);
//! 6. R-flag change (139);
//! 7. IPv6 MNPs, explicit (141/142) or implicit (143), IPv4 HoA options (one IPv4 Address
//!    Acknowledgement each), Shima's implicit IPv4 MNPs, SHISA's legacy option;
//! 8. a new home address is checked on the home link first (proxy DAD, 134 when
//!    defended); create/refresh the entry: Persist, BcAdd, ProxyNdAdd events, then the BA.
//!
//! A BU with Binding Identifier options (RFC 5648) leaves this order after step 4 for
//! [`super::mcoa`]: its own checks (164-169), then steps 6 to 8 per BID.
//!
//! Each step is a method (or, where it needs no state, a pure function tested below)
//! returning [`Step`]: go on, or [`Stop`] with a silent drop, a refusal (the BA's status),
//! or an answer already given. Nothing changes state before step 8 (or the removal of
//! step 5), so a forged, replayed or refused BU changes nothing.

use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{Ipv4Net, Ipv6Net};
use proto::auth::MnHaKey;
use proto::ext::MobilityPacketRepr;
use proto::mh::{BaFlags, BaStatus, BindingAck, BindingUpdate, BuFlags, MhRepr};
use proto::model::CareOf;
use proto::option::{AUTH_SUBTYPE_MN_HA, Ipv4AckStatus, MobilityOption, NAT_REFRESH_NONE};
use proto::seq::{Lifetime, NtpTimestamp, SequenceNumber};
use tracing::{debug, info, warn};

use super::{
    Bce, CareOfBinding, Ha, HaEvent, HoaPolicy, MnpV4, MnpV6, ReceivedSignal, UdpV4Path,
    binding_of, care_of_for_mac, proxy_nd_of,
};
use crate::config::{Ipv4MnpSupport, MobilitySa, PrefixMode};
use crate::record::JournalRecord;

/// What every BA for this BU shares.
pub(super) struct Reply<'a> {
    addressing: MobilityPacketRepr,
    udp_v4: Option<UdpV4Path>,
    ifindex: u32,
    sequence: SequenceNumber,
    r: bool,
    /// RFC 4285: the BA mirrors the MN-ID option.
    mn_id: Option<MobilityOption<'a>>,
    /// RFC 4285 §6: timestamp to echo.
    timestamp: Option<u64>,
    /// SPI and key of the SA that signs the BA (MN-HA option last).
    sa: Option<(u32, MnHaKey)>,
    coa_mac: IpAddr,
    hoa: Ipv6Addr,
    /// NAT Detection option for a BU that arrived in UDP/IPv4 (RFC 5555 §4.1).
    nat: Option<MobilityOption<'static>>,
    /// RFC 5648: the BU's Binding Identifiers, in its order, with their per-BID status
    /// (0 until a step refuses one) and BID-PRI; each goes back in the BA (§6.2; the
    /// BID-PRI as sent, RFC 6089 §5.3.5).
    pub(super) bids: Vec<(u16, u8, u8)>,
}

/// Outcome of the IPv4 part.
#[derive(Default)]
struct V4Result {
    acks: Vec<MobilityOption<'static>>,
    mnp: Vec<Ipv4Net>,
    hoa_v4: Option<Ipv4Addr>,
    /// A BA status forced by SHISA's legacy option (no per-option status there).
    status: Option<BaStatus>,
}

/// Why a Binding Update goes no further than a step.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// Silently discarded (RFC 6275 §9.5.1 and RFC 4285 §4 list when); the step counted
    /// and logged it.
    Dropped,
    /// Refused: a BA with this status and these IPv4 Address Acknowledgements.
    Refused(BaStatus, Vec<MobilityOption<'static>>),
    /// The step answered itself (a de-registration) or the BU waits (proxy DAD).
    Handled,
}

/// A step's verdict: go on (with what it found), or stop.
pub(super) type Step<T = ()> = Result<T, Stop>;

pub(super) fn refuse(status: BaStatus) -> Stop {
    Stop::Refused(status, Vec::new())
}

/// What the steps know about the BU being processed, filled in as they go.
pub(super) struct Incoming<'a> {
    pub(super) hoa: Ipv6Addr,
    pub(super) flags: BuFlags,
    pub(super) seq: SequenceNumber,
    /// The BU's care-of address (Alternate CoA, source, or the UDP/IPv4 outer source);
    /// with RFC 5648, a BID option may name another.
    pub(super) coa: CareOf,
    pub(super) nat_detected: bool,
    /// The IPv4 Care-of Address option (RFC 5555 §3.1.5), or the IPv4 care-of address of
    /// a BID option (RFC 5648 §8.1): the MR's own address, behind a NAT not the one the
    /// BU came from.
    pub(super) v4_coa_option: Option<Ipv4Addr>,
    /// The binding cache entry for the HoA, if any: sequence, flags, owner SPI.
    pub(super) existing: Option<(SequenceNumber, u16, Option<u32>)>,
    /// The Replay Protection option's timestamp (RFC 4285 §6).
    pub(super) timestamp: Option<u64>,
    /// The SPI that authenticated the BU (step 2).
    pub(super) spi: Option<u32>,
    /// What the BA needs, whatever the verdict.
    pub(super) reply: Reply<'a>,
}

/// The mobile network prefixes step 7 grants.
pub(super) struct Prefixes {
    pub(super) v6: Vec<Ipv6Net>,
    v4: V4Result,
}

impl Prefixes {
    /// The IPv4 Address Acknowledgements for the BA.
    pub(super) fn take_acks(&mut self) -> Vec<MobilityOption<'static>> {
        std::mem::take(&mut self.v4.acks)
    }
    /// The IPv4 mobile network prefixes and IPv4 home address granted.
    pub(super) fn v4(&self) -> (&[Ipv4Net], Option<Ipv4Addr>) {
        (&self.v4.mnp, self.v4.hoa_v4)
    }
}

impl Ha {
    /// Processes a Binding Update for `hoa` (RFC 6275 §9.5.1, §10.3.1, §10.3.2; RFC 3963
    /// §6.2), step by step in the module's order; the first step that stops decides the
    /// answer.
    pub(crate) fn process_bu(
        &mut self,
        now: Instant,
        wall: Duration,
        signal: &ReceivedSignal<'_>,
        hoa: Ipv6Addr,
        policy: Option<HoaPolicy>,
        bu: &BindingUpdate<'_>,
    ) {
        let policy = policy.as_ref();
        let Ok(mut b) = self.care_of_step(signal, hoa, policy, bu) else {
            return;
        };
        match self.bu_steps(now, wall, signal, policy, bu, &mut b) {
            Ok(()) | Err(Stop::Dropped | Stop::Handled) => {}
            Err(Stop::Refused(status, acks)) => self.reject_with(&b.reply, status, acks),
        }
    }

    /// Steps 2 to 8, once the care-of address is known and the BA addressable.
    fn bu_steps<'a>(
        &mut self,
        now: Instant,
        wall: Duration,
        signal: &ReceivedSignal<'_>,
        policy: Option<&HoaPolicy>,
        bu: &BindingUpdate<'a>,
        b: &mut Incoming<'a>,
    ) -> Step {
        self.authenticate(wall, signal, bu, b)?;
        self.home_registration_step(policy, b)?;
        if let Err(last) = sequence_in_window(b.existing.map(|e| e.0), b.seq) {
            b.reply.sequence = last;
            info!(hoa = %b.hoa, seq = b.seq.0, last = last.0, "binding update sequence number out of window");
            return Err(refuse(BaStatus::SequenceNumberOutOfWindow));
        }
        if !b.reply.bids.is_empty() {
            // RFC 5648 §6.2: validated as any BU so far, then the BID options decide.
            return self.mcoa_steps(now, wall, signal, policy, bu, b);
        }
        let at_home = matches!(b.coa, CareOf::V6(c) if c == b.hoa);
        if bu.lifetime.is_zero() || at_home {
            return self.deregistration_step(now, b);
        }
        self.room_step(b)?;
        if r_flag_changed(b.existing.map(|e| e.1), b.flags) {
            return Err(refuse(BaStatus::RegistrationTypeChangeDisallowed));
        }
        let prefixes = self.prefix_step(policy, bu, b.flags)?;
        self.proxy_dad_step(now, signal, b)?;
        self.register(now, wall, signal, bu, b, prefixes);
        Ok(())
    }

    /// Step 1: the care-of address (RFC 6275 §9.5.1; RFC 5555 §4.1 for an IPv4 CoA) and
    /// what the BA needs. Every failure here is a silent drop.
    fn care_of_step<'a>(
        &mut self,
        signal: &ReceivedSignal<'_>,
        hoa: Ipv6Addr,
        policy: Option<&HoaPolicy>,
        bu: &BindingUpdate<'a>,
    ) -> Step<Incoming<'a>> {
        let flags = bu.flags;
        let seq = bu.sequence;
        let mut nat_detected = false;
        let mut nat_opt = None;
        let mut v4_coa_option = None;
        let coa = if let Some(path) = signal.udp_v4 {
            // RFC 5648 §8.1: with MCoA the BID option carries the IPv4 CoA instead of the
            // IPv4 CoA option (both together are refused later, 164).
            let v4_option = bu
                .options
                .iter()
                .find_map(|o| match o {
                    MobilityOption::Ipv4CareOfAddress(a) => Some(*a),
                    _ => None,
                })
                .or_else(|| {
                    bu.options.iter().find_map(|o| match o {
                        MobilityOption::BindingIdentifier {
                            coa: Some(IpAddr::V4(a)),
                            ..
                        } => Some(*a),
                        _ => None,
                    })
                });
            nat_detected = v4_option.is_some_and(|a| a != *path.peer.ip());
            v4_coa_option = v4_option;
            let udp = nat_detected || flags.force_udp();
            nat_opt = Some(MobilityOption::NatDetection {
                f: udp,
                refresh_time: if nat_detected {
                    self.cfg.nat_keepalive_secs
                } else {
                    NAT_REFRESH_NONE
                },
            });
            CareOf::V4 {
                addr: *path.peer.ip(),
                udp_port: udp.then_some(path.peer.port()),
            }
        } else {
            let acoa = bu.options.iter().find_map(|o| match o {
                MobilityOption::AlternateCareOfAddress(a) => Some(*a),
                _ => None,
            });
            CareOf::V6(acoa.unwrap_or(signal.src))
        };
        if !valid_unicast(&hoa) {
            self.stats.dropped_other += 1;
            debug!(hoa = %hoa, coa = %coa, "binding update with a non-unicast home address dropped");
            return Err(Stop::Dropped);
        }
        if let Some(reason) = self.coa_refusal(&coa, hoa, signal, policy, bu) {
            // RFC 6275 §9.5.1: a BU with an invalid care-of address is silently discarded;
            // RFC 3963 has no status for a CoA inside the router's own prefixes either.
            self.stats.invalid_coa += 1;
            // Unauthenticated so far: once per power of two, or a flood is a log flood.
            if self.stats.invalid_coa.is_power_of_two() {
                info!(hoa = %hoa, coa = %coa, seq = seq.0, reason, dropped = self.stats.invalid_coa,
                    "binding update with an invalid care-of address dropped");
            } else {
                debug!(hoa = %hoa, coa = %coa, reason, "invalid care-of address dropped");
            }
            return Err(Stop::Dropped);
        }
        // RFC 6275 §9.5.1: a home registration must not carry Nonce Indices (SHISA drops).
        if flags.home_registration()
            && bu
                .options
                .iter()
                .any(|o| matches!(o, MobilityOption::NonceIndices { .. }))
        {
            self.stats.dropped_other += 1;
            debug!(hoa = %hoa, "home registration with nonce indices dropped");
            return Err(Stop::Dropped);
        }
        // RFC 4285's MAC covers the CoA the MR knows: behind a NAT that is its own IPv4
        // CoA (the option), not the NAT's address it cannot see (docs/notes.md §6).
        let coa_mac = v4_coa_option.map_or_else(|| care_of_for_mac(&coa), IpAddr::V4);
        let existing = self
            .cache
            .get(&hoa)
            .map(|e| (SequenceNumber(e.sequence), e.flags, e.spi));
        let mn_id = bu
            .options
            .iter()
            .find(|o| matches!(o, MobilityOption::MobileNodeIdentifier { .. }))
            .copied();
        let timestamp = bu.options.iter().find_map(|o| match o {
            MobilityOption::ReplayProtection { timestamp } => Some(*timestamp),
            _ => None,
        });
        // RFC 6275 §9.5.4: the BA goes to the BU's source, with an RH2 when it had a HAO.
        let addressing = match signal.udp_v4 {
            // RFC 5555 §4.2: inside UDP/IPv4, addressed to the HoA, no RH2.
            Some(_) => MobilityPacketRepr {
                src_addr: self.reply_source(signal),
                dst_addr: hoa,
                hop_limit: self.cfg.hop_limit,
                home_address: None,
                rh2_home_address: None,
            },
            None => MobilityPacketRepr {
                src_addr: self.reply_source(signal),
                dst_addr: signal.src,
                hop_limit: self.cfg.hop_limit,
                home_address: None,
                rh2_home_address: signal.home_address,
            },
        };
        Ok(Incoming {
            hoa,
            flags,
            seq,
            coa,
            nat_detected,
            v4_coa_option,
            existing,
            timestamp,
            spi: None,
            reply: Reply {
                addressing,
                udp_v4: signal.udp_v4,
                ifindex: signal.ifindex,
                sequence: seq,
                r: flags.mobile_router() && self.cfg.mobile_router_support,
                mn_id,
                timestamp,
                sa: None,
                coa_mac,
                hoa,
                nat: nat_opt,
                bids: bu
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        MobilityOption::BindingIdentifier { bid, bid_pri, .. } => {
                            Some((*bid, 0, *bid_pri))
                        }
                        _ => None,
                    })
                    .collect(),
            },
        })
    }

    /// Step 2: RFC 4285 authentication, before anything else is believed: the MN-HA option
    /// last and its SPI known (else a silent drop, §4), the MAC and the SA's identities
    /// (146), then the timestamp (145 missing, 144 stale, §6).
    fn authenticate(
        &mut self,
        wall: Duration,
        signal: &ReceivedSignal<'_>,
        bu: &BindingUpdate<'_>,
        b: &mut Incoming<'_>,
    ) -> Step {
        if !matches!(self.cfg.auth, crate::config::AuthPolicy::Required(_)) {
            return Ok(());
        }
        let hoa = b.hoa;
        let spi = match bu.options.last() {
            Some(MobilityOption::Authentication {
                subtype: AUTH_SUBTYPE_MN_HA,
                spi,
                ..
            }) => *spi,
            _ => {
                self.stats.no_auth_option += 1;
                if self.stats.no_auth_option.is_power_of_two() {
                    info!(hoa = %hoa, src = %signal.src, seq = b.seq.0, dropped = self.stats.no_auth_option,
                        "binding update without MN-HA authentication dropped");
                }
                return Err(Stop::Dropped);
            }
        };
        let Some(sa) = self.sas.get(&spi) else {
            self.stats.unknown_spi += 1;
            if self.stats.unknown_spi.is_power_of_two() {
                info!(hoa = %hoa, src = %signal.src, spi, dropped = self.stats.unknown_spi,
                    "binding update with unknown SPI dropped");
            }
            return Err(Stop::Dropped);
        };
        let mac_ok = matches!(sa.key.verify(signal.mh, b.reply.coa_mac, &hoa), Ok(true));
        let owner = b.existing.and_then(|e| e.2);
        let covers = sa_covers(
            sa,
            &hoa,
            b.reply.mn_id,
            owner,
            self.named_hoas.contains(&hoa),
        );
        let required = sa.timestamps();
        let window = sa.replay_window();
        b.reply.sa = Some((spi, sa.key.clone()));
        if !mac_ok || !covers {
            self.stats.auth_failed += 1;
            // Both are 146 (RFC 4285 §4, §5); the log says which, since the fixes differ.
            let reason = if !mac_ok {
                "the authenticator did not verify (a key differing from the router's, or \
                 the BU altered)"
            } else {
                "the authenticator verified, but this SA is not the one for this home \
                 address or NAI (RFC 4285 §5)"
            };
            warn!(hoa = %hoa, coa = %b.coa, spi, mac_ok, covers, reason,
                "binding update failed authentication (146)");
            return Err(refuse(BaStatus::Mipv6AuthFail));
        }
        b.spi = Some(spi);
        let Some(ts) = b.timestamp else {
            if required {
                self.stats.replay_rejected += 1;
                info!(hoa = %hoa, spi, "binding update without replay protection refused");
                return Err(refuse(BaStatus::Mipv6MesgIdReqd));
            }
            return Ok(());
        };
        let ha_now = NtpTimestamp::from_unix(wall);
        let last = b
            .existing
            .and(self.cache.get(&hoa))
            .and_then(|e| e.last_timestamp)
            .or_else(|| self.replay_floor.get(&hoa).map(|(t, _)| *t));
        if let Err(echo) = timestamp_fresh(NtpTimestamp(ts), ha_now, window, last) {
            self.stats.replay_rejected += 1;
            warn!(hoa = %hoa, spi, timestamp = ts, "binding update timestamp stale or replayed");
            b.reply.timestamp = Some(echo);
            return Err(refuse(BaStatus::Mipv6IdMismatch));
        }
        Ok(())
    }

    /// Step 3: a home registration (H; R needs H, RFC 3963 §6.1) of a home address this
    /// home agent serves (131, 132) and knows (129 for an unlisted one, unless accepted).
    fn home_registration_step(&mut self, policy: Option<&HoaPolicy>, b: &Incoming<'_>) -> Step {
        let (hoa, flags) = (b.hoa, b.flags);
        if !flags.home_registration() {
            if flags.mobile_router() {
                // RFC 3963 §6.1: NEMO has no route optimisation; R requires H.
                return Err(refuse(BaStatus::MobileRouterOperationNotPermitted));
            }
            if b.existing.is_some() {
                // RFC 6275 §9.5.1: a non-home registration for a home address we hold a
                // home registration for changes the registration type: 139, never a
                // silent drop.
                info!(hoa = %hoa, "correspondent registration for a home-registered address refused (139)");
                return Err(refuse(BaStatus::RegistrationTypeChangeDisallowed));
            }
            // A correspondent registration; we do no route optimisation and such a BU
            // lacks a Binding Authorization Data option we could check (§9.5.1).
            self.stats.dropped_other += 1;
            debug!(hoa = %hoa, "correspondent registration dropped (no route optimisation)");
            return Err(Stop::Dropped);
        }
        if flags.mobile_router() && !self.cfg.mobile_router_support {
            return Err(refuse(BaStatus::MobileRouterOperationNotPermitted));
        }
        if self.cfg.home_prefixes.is_empty() {
            return Err(refuse(BaStatus::HomeRegistrationNotSupported));
        }
        if !self.serves(&hoa) {
            return Err(refuse(BaStatus::NotHomeSubnet));
        }
        if !self.cfg.accept_unlisted_home_addresses
            && policy.is_none()
            && !self.named_hoas.contains(&hoa)
        {
            self.stats.unlisted_home_address += 1;
            // Once per power of two: a flood must not become a log flood.
            if self.stats.unlisted_home_address.is_power_of_two() {
                warn!(hoa = %hoa, refused = self.stats.unlisted_home_address,
                    "home address named by no prefix table row and no SA: refused (129; \
                     'unlisted-home-addresses accept;' allows it)");
            } else {
                debug!(hoa = %hoa, "unlisted home address refused (129)");
            }
            return Err(refuse(BaStatus::AdministrativelyProhibited));
        }
        Ok(())
    }

    /// Step 5: de-registration (RFC 6275 §10.3.2, RFC 3963 §6.2 step 4): lifetime 0 or the
    /// home address as care-of address. 133 without a binding.
    fn deregistration_step(&mut self, now: Instant, b: &Incoming<'_>) -> Step {
        if b.existing.is_none() {
            return Err(refuse(BaStatus::NotHomeAgentForThisMobileNode));
        }
        // RFC 5648 §6.2: a de-registration without a BID option removes every binding of
        // the home address, BID bindings included.
        self.remove_home_address(now, b);
        self.stats.deregistered += 1;
        info!(hoa = %b.hoa, coa = %b.coa, seq = b.seq.0, "binding deregistered");
        self.send_ba(
            &b.reply,
            BaStatus::Accepted,
            Lifetime::ZERO,
            Vec::new(),
            Vec::new(),
        );
        Err(Stop::Handled)
    }

    /// Removes every binding of `b.hoa` for an accepted de-registration: events, the
    /// at-home form of BC_REMOVE, the replay floor.
    pub(super) fn remove_home_address(&mut self, now: Instant, b: &Incoming<'_>) {
        let from = self.events.len();
        self.remove_binding(now, b.hoa);
        if matches!(b.coa, CareOf::V6(c) if c == b.hoa) {
            // From the home link (RFC 6275 §11.5.5): the router is home, and its mobile
            // network with it. BC_REMOVE says so (CoA = HoA, the home link's interface),
            // so the data plane routes the prefixes to it there instead of dropping them
            // (RFC 3963 §6.2 leaves routing at home to the operator; issue 11). With
            // RFC 5648 BIDs, each of them says so.
            let home_ifindex = self.cfg.home_ifindex;
            for e in self.events.iter_mut().skip(from) {
                if let HaEvent::BcRemove(removed) = e {
                    removed.coa = CareOf::V6(b.hoa);
                    removed.coa_ifindex = (home_ifindex != 0).then_some(home_ifindex);
                }
            }
        }
        if let Some(ts) = b.timestamp {
            // A replay of an older BU must not recreate the binding (RFC 4285 §6).
            let window = self.replay_window(b.spi);
            self.replay_floor.insert(b.hoa, (ts, now + window));
        }
    }

    /// A new binding needs room (RFC 6275 §9.5.1: 130, Insufficient resources).
    pub(super) fn room_step(&mut self, b: &Incoming<'_>) -> Step {
        if b.existing.is_some() || self.cache.len() < self.cfg.max_bindings {
            return Ok(());
        }
        self.stats.cache_full += 1;
        if self.stats.cache_full.is_power_of_two() {
            warn!(hoa = %b.hoa, max_bindings = self.cfg.max_bindings, refused = self.stats.cache_full,
                "binding cache full: new registrations refused (130); raise max-bindings?");
        }
        Err(refuse(BaStatus::InsufficientResources))
    }

    /// Step 7: the mobile network prefixes. IPv6 explicit (RFC 3963 §6.1.2: all listed
    /// or none, 141/142) or implicit (§6.1.1: from the prefix table, 143 when there is
    /// nothing), then the IPv4 part (RFC 5555, Shima, SHISA's legacy option).
    pub(super) fn prefix_step(
        &self,
        policy: Option<&HoaPolicy>,
        bu: &BindingUpdate<'_>,
        flags: BuFlags,
    ) -> Step<Prefixes> {
        let explicit = bu
            .options
            .iter()
            .any(|o| matches!(o, MobilityOption::MobileNetworkPrefix { .. }));
        let mut v6 = Ok(Vec::new());
        if flags.mobile_router() {
            if explicit {
                v6 = explicit_mnps(bu, policy);
            } else if let Some(p) = policy {
                v6 = Ok(p
                    .v6
                    .iter()
                    .filter(|(_, m)| *m == PrefixMode::Implicit)
                    .map(|(n, _)| *n)
                    .collect());
            }
        }
        let mut v4 = self.ipv4_part(policy, flags.mobile_router(), bu);
        let status = match (&v6, v4.status) {
            (Err(s), _) => *s,
            (Ok(_), Some(s)) => s,
            (Ok(v6), None)
                if flags.mobile_router() && !explicit && v6.is_empty() && v4.mnp.is_empty() =>
            {
                // RFC 3963 §6.1.1: implicit mode and nothing configured for this MR.
                BaStatus::ForwardingSetupFailed
            }
            (Ok(_), None) => BaStatus::Accepted,
        };
        match v6 {
            Ok(v6) if status == BaStatus::Accepted => Ok(Prefixes { v6, v4 }),
            _ => {
                // Nothing was registered: no IPv4 acknowledgement may claim success.
                for a in &mut v4.acks {
                    if let MobilityOption::Ipv4AddressAck {
                        status, prefix_len, ..
                    } = a
                        && status.is_success()
                    {
                        *status = Ipv4AckStatus::ReasonUnspecified;
                        *prefix_len = 0;
                    }
                }
                Err(Stop::Refused(status, v4.acks))
            }
        }
    }

    /// Step 8a: a new home address is first checked on the home link (proxy DAD, RFC 6275
    /// §10.3.1): the BU waits, whole, for the verdict; a defended address gets 134.
    pub(super) fn proxy_dad_step(
        &mut self,
        now: Instant,
        signal: &ReceivedSignal<'_>,
        b: &Incoming<'_>,
    ) -> Step {
        let Some(dad_time) = self.cfg.proxy_dad else {
            return Ok(());
        };
        if b.existing.is_some() {
            return Ok(());
        }
        let hoa = b.hoa;
        match self.dad_verdict.filter(|(h, _)| *h == hoa).map(|v| v.1) {
            Some(super::DadVerdict::Clear) => return Ok(()),
            Some(super::DadVerdict::Defended) => {
                self.stats.dad_defended += 1;
                return Err(refuse(BaStatus::DuplicateAddressDetectionFailed));
            }
            None => {}
        }
        let link_local = b.flags.link_local_compat().then(|| {
            let mut ll = [0u8; 16];
            ll[0] = 0xfe;
            ll[1] = 0x80;
            ll[8..].copy_from_slice(&hoa.octets()[8..]);
            Ipv6Addr::from(ll)
        });
        let targets: Vec<Ipv6Addr> = std::iter::once(hoa).chain(link_local).collect();
        if let Some(p) = self.dad.get_mut(&hoa) {
            // A retransmission while DAD runs: the newest BU is the one answered when it
            // ends.
            p.src = signal.src;
            p.dst = signal.dst;
            p.home_address = signal.home_address;
            p.mh = signal.mh.to_vec();
            p.ifindex = signal.ifindex;
            p.udp_v4 = signal.udp_v4;
            p.targets = targets;
            return Err(Stop::Handled);
        }
        if self.dad.len() >= super::MAX_DAD_PENDING {
            return Err(refuse(BaStatus::InsufficientResources));
        }
        self.stats.dad_started += 1;
        debug!(%hoa, ?targets, "proxy DAD started");
        self.events.push_back(HaEvent::ProxyDadStart {
            hoa,
            targets: targets.clone(),
        });
        self.dad.insert(
            hoa,
            super::DadPending {
                deadline: now + dad_time,
                targets,
                src: signal.src,
                dst: signal.dst,
                home_address: signal.home_address,
                mh: signal.mh.to_vec(),
                ifindex: signal.ifindex,
                udp_v4: signal.udp_v4,
            },
        );
        Err(Stop::Handled)
    }

    /// The lifetime granted for a BU asking `requested` (RFC 6275 §10.3.1: never above
    /// the request, the configured maximum, or the home prefix's remaining valid lifetime),
    /// its expiry and its BRR time.
    pub(super) fn grant(
        &self,
        now: Instant,
        hoa: &Ipv6Addr,
        requested: Lifetime,
    ) -> (Lifetime, Instant, Instant) {
        let mut max = Lifetime::from_secs(self.cfg.max_lifetime.as_secs());
        // Known when the home link's Router Advertisements named the prefix.
        if let Some(left) = self.home_link.valid_left(now, hoa) {
            max = max.min(Lifetime::from_secs(u64::from(left)));
        }
        let granted = requested.min(max).max(Lifetime(1));
        let expires = now + granted.as_duration();
        let due = match self.cfg.brr {
            Some(brr) if brr.before_expiry < granted.as_duration() => expires - brr.before_expiry,
            _ => expires,
        };
        (granted, expires, due)
    }

    /// Step 8: create or refresh the entry (RFC 6275 §10.3.1): Persist, BcAdd and, for a
    /// new one, ProxyNdAdd events, then the BA. A BU without a BID option replaces any
    /// BID bindings of the home address (RFC 5648 §6.2): each gets its Persist(Remove)
    /// and BcRemove first.
    fn register<'a>(
        &mut self,
        now: Instant,
        wall: Duration,
        signal: &ReceivedSignal<'_>,
        bu: &BindingUpdate<'a>,
        b: &Incoming<'a>,
        prefixes: Prefixes,
    ) {
        let Prefixes { v6: mnp_v6, v4 } = prefixes;
        let hoa = b.hoa;
        let (granted, expires, due) = self.grant(now, &hoa, bu.lifetime);
        let care_of = CareOfBinding {
            bid: None,
            coa: b.coa,
            expires,
            due,
            lifetime_secs: granted.as_secs(),
            nat_detected: b.nat_detected,
            coa_v4_option: b.v4_coa_option,
            rh2: signal.home_address.is_some(),
            brr_sent: false,
            bid_pri: 0,
        };
        let Ha {
            cache,
            extra_bindings,
            timers,
            events,
            cfg,
            replay_floor,
            ..
        } = self;
        if !replay_floor.is_empty() {
            replay_floor.remove(&hoa);
        }
        let new;
        let bce: &Bce = match cache.entry(hoa) {
            Entry::Occupied(o) => {
                new = false;
                let e = o.into_mut();
                if e.is_mcoa() {
                    // RFC 5648 §6.2: the plain binding replaces every BID binding. Their
                    // removals go first, with the entry's data as it was.
                    for c in e.bindings() {
                        events
                            .push_back(HaEvent::Persist(JournalRecord::Remove { hoa, bid: c.bid }));
                        let mut gone = binding_of(cfg, &hoa, e, c, now);
                        gone.lifetime = 0;
                        events.push_back(HaEvent::BcRemove(gone));
                    }
                    info!(hoa = %hoa, bids = e.count(), "binding without a BID replaces the BID bindings (RFC 5648 §6.2)");
                    *extra_bindings -= e.count() - 1;
                    e.replace_all(care_of);
                    // Flow bindings point at BIDs; none is left (RFC 6089 §4.3).
                    e.flows = Box::new([]);
                } else {
                    e.first = care_of;
                }
                // Unchanged in the usual refresh.
                if *e.mnp_v6 != *mnp_v6 {
                    e.mnp_v6 = MnpV6::from_slice(&mnp_v6);
                }
                if *e.mnp_v4 != *v4.mnp {
                    e.mnp_v4 = MnpV4::from_slice(&v4.mnp);
                }
                if b.timestamp.is_some() {
                    e.last_timestamp = b.timestamp;
                }
                e.spi = b.spi;
                e.hoa_v4 = v4.hoa_v4;
                e.flags = b.flags.bits();
                e.sequence = b.seq.0;
                // Timers are lazy: a later deadline is picked up when the scheduled one
                // fires; only an earlier one needs moving in the set.
                if due < e.timer {
                    timers.remove(&(e.timer, hoa));
                    timers.insert((due, hoa));
                    e.timer = due;
                }
                e
            }
            Entry::Vacant(v) => {
                new = true;
                timers.insert((due, hoa));
                v.insert(Bce {
                    first: care_of,
                    more: Box::new([]),
                    timer: due,
                    mnp_v6: MnpV6::from_slice(&mnp_v6),
                    mnp_v4: MnpV4::from_slice(&v4.mnp),
                    last_timestamp: b.timestamp,
                    spi: b.spi,
                    hoa_v4: v4.hoa_v4,
                    flags: b.flags.bits(),
                    sequence: b.seq.0,
                    flows: Box::new([]),
                })
            }
        };
        // Persist first: the shell writes and syncs it before the BA leaves.
        events.push_back(HaEvent::Persist(JournalRecord::Upsert(
            bce.persisted(hoa, &bce.first, now, wall),
        )));
        events.push_back(HaEvent::BcAdd(binding_of(cfg, &hoa, bce, &bce.first, now)));
        if new {
            events.push_back(HaEvent::ProxyNdAdd(proxy_nd_of(cfg, &hoa, bce)));
        }
        info!(
            hoa = %hoa,
            coa = %b.coa,
            seq = b.seq.0,
            lifetime = granted.as_secs(),
            mnp_v6 = bce.mnp_v6.len(),
            mnp_v4 = bce.mnp_v4.len(),
            new,
            "binding registered"
        );
        self.stats.accepted += 1;
        // A plain binding has no BID for a flow binding to name (RFC 6089 §5.3.2.1: 131;
        // a summarized FID is unknown: 132).
        let flows = super::flows::flow_step(&self.cfg.mcoa, &[], &[], &bu.options);
        self.send_ba(
            &b.reply,
            BaStatus::Accepted,
            granted,
            v4.acks,
            flows.replies,
        );
    }
    /// Why `coa` cannot be the care-of address of this BU, if it cannot (step 1).
    ///
    /// RFC 6275 §9.5.1: not multicast, unspecified or loopback (nor link-local or
    /// IPv4-mapped, docs/notes.md §6). Beyond the RFC's list, an address that would make
    /// the tunnel end where it starts: one of the home agent's own addresses; an address
    /// inside a home prefix other than the home address itself (a CoA on the home link
    /// equal to the HoA is the de-registration of RFC 6275 §11.5.4, anything else there is
    /// not a care-of address, §3); an address inside the router's own mobile network
    /// prefixes (RFC 3963 §6: the home agent tunnels those prefixes to this CoA, a loop), from
    /// the prefix table or from the BU's own prefix options. None has a BA status: dropped
    /// and counted.
    pub(super) fn coa_refusal(
        &self,
        coa: &CareOf,
        hoa: Ipv6Addr,
        signal: &ReceivedSignal<'_>,
        policy: Option<&HoaPolicy>,
        bu: &BindingUpdate<'_>,
    ) -> Option<&'static str> {
        match *coa {
            CareOf::V6(a) => {
                if !valid_unicast(&a) {
                    return Some("not a global unicast address (RFC 6275 §9.5.1)");
                }
                let received_on = (!signal.dst.is_multicast() && !signal.dst.is_unspecified())
                    .then_some(signal.dst);
                if a == self.cfg.ha_address || Some(a) == received_on {
                    return Some("the home agent's own address");
                }
                if a != hoa && self.serves(&a) {
                    return Some(
                        "inside a home prefix: on the home link only the home address itself \
                         (de-registration) may be the care-of address",
                    );
                }
                let in_table = policy.is_some_and(|p| p.v6.iter().any(|(n, _)| n.contains(&a)));
                let in_bu = bu.options.iter().any(|o| match *o {
                    MobilityOption::MobileNetworkPrefix { prefix_len, prefix } => {
                        valid_v6_prefix(prefix, prefix_len).is_some_and(|n| n.contains(&a))
                    }
                    _ => false,
                });
                if in_table || in_bu {
                    return Some("inside the router's own mobile network prefix (RFC 3963 §6)");
                }
            }
            CareOf::V4 { addr, .. } => {
                if !valid_v4(addr) {
                    return Some("not a unicast IPv4 address (RFC 6275 §9.5.1, RFC 5555 §4.1)");
                }
                let local = signal.udp_v4.map(|p| *p.local.ip());
                if Some(addr) == self.cfg.ha_address_v4 || Some(addr) == local {
                    return Some("the home agent's own IPv4 address");
                }
                let in_table = policy.is_some_and(|p| p.v4.iter().any(|(n, _)| n.contains(&addr)));
                let in_bu = bu.options.iter().any(|o| {
                    let (len, net) = match *o {
                        MobilityOption::Ipv4HomeAddress {
                            prefix_len,
                            p: true,
                            address,
                        } => (prefix_len, address),
                        MobilityOption::LegacyIpv4Mnp { prefix_len, prefix } => {
                            (prefix_len, prefix)
                        }
                        _ => return false,
                    };
                    // Length 0 or 0.0.0.0 (a request for allocation, or invalid) covers
                    // nothing of the router's.
                    len > 0
                        && valid_v4(net)
                        && Ipv4Net::new(net, len).is_ok_and(|n| n.contains(&addr))
                });
                if in_table || in_bu {
                    return Some(
                        "inside the router's own IPv4 mobile network prefix (RFC 5555 §3.1.1)",
                    );
                }
            }
        }
        None
    }

    /// The IPv4 part of a registration: RFC 5555 IPv4 HoA options (one acknowledgement
    /// each, in order), Shima's implicit IPv4 MNPs, SHISA's legacy option.
    fn ipv4_part(&self, policy: Option<&HoaPolicy>, mr: bool, bu: &BindingUpdate<'_>) -> V4Result {
        let mut out = V4Result::default();
        let has_v4_options = bu.options.iter().any(|o| {
            matches!(
                o,
                MobilityOption::Ipv4HomeAddress { .. } | MobilityOption::LegacyIpv4Mnp { .. }
            )
        });
        match self.cfg.ipv4_mnp {
            Ipv4MnpSupport::Unsupported => return out,
            Ipv4MnpSupport::Prohibited => {
                for o in &bu.options {
                    if let MobilityOption::Ipv4HomeAddress { address, .. } = *o {
                        out.acks
                            .push(ack(Ipv4AckStatus::AdministrativelyProhibited, 0, address));
                    }
                }
                return out;
            }
            Ipv4MnpSupport::Enabled => {}
        }
        if !has_v4_options {
            // Shima's first method: IPv4 MNPs configured for the HoA, no option needed.
            // Otherwise a BU without IPv4 options drops the IPv4 part (RFC 5555 §5.7).
            if let (true, Some(p)) = (mr, policy) {
                out.mnp.extend(
                    p.v4.iter()
                        .filter(|(_, m)| *m == PrefixMode::Implicit)
                        .map(|(n, _)| *n),
                );
            }
            return out;
        }
        let rows: &[(Ipv4Net, PrefixMode)] = policy.map_or(&[], |p| &p.v4);
        for o in &bu.options {
            match *o {
                MobilityOption::Ipv4HomeAddress {
                    prefix_len,
                    p: true,
                    address,
                } => {
                    // A mobile network prefix (RFC 5555 §4.4.2).
                    if address.is_unspecified() {
                        // Allocation: the first configured prefix not yet handed out.
                        match rows.iter().map(|(n, _)| *n).find(|n| !out.mnp.contains(n)) {
                            Some(n) => {
                                out.mnp.push(n);
                                out.acks.push(ack(
                                    Ipv4AckStatus::Success,
                                    n.prefix_len(),
                                    n.addr(),
                                ));
                            }
                            None => out.acks.push(ack(
                                Ipv4AckStatus::DynamicIpv4HomeAddressAssignmentNotAvailable,
                                0,
                                address,
                            )),
                        }
                        continue;
                    }
                    let status = match Ipv4Net::new(address, prefix_len) {
                        Err(_) => Ipv4AckStatus::InvalidIpv4Address,
                        Ok(_) if !valid_v4(address) => Ipv4AckStatus::InvalidIpv4Address,
                        Ok(n) if n.trunc().addr() != address => {
                            Ipv4AckStatus::IncorrectIpv4HomeAddress
                        }
                        Ok(n) if !rows.iter().any(|(r, _)| r.contains(&n)) => {
                            Ipv4AckStatus::PrefixAllocationUnauthorized
                        }
                        Ok(n) => {
                            if !out.mnp.contains(&n) {
                                out.mnp.push(n);
                            }
                            Ipv4AckStatus::Success
                        }
                    };
                    let len = if status.is_success() { prefix_len } else { 0 };
                    out.acks.push(ack(status, len, address));
                }
                MobilityOption::Ipv4HomeAddress {
                    p: false, address, ..
                } => {
                    // An IPv4 home address (RFC 5555 §3.1.1), static only.
                    let status = if address.is_unspecified() {
                        Ipv4AckStatus::DynamicIpv4HomeAddressAssignmentNotAvailable
                    } else if !valid_v4(address) {
                        Ipv4AckStatus::InvalidIpv4Address
                    } else if !rows.iter().any(|(r, _)| r.contains(&address)) {
                        Ipv4AckStatus::IncorrectIpv4HomeAddress
                    } else if out.hoa_v4.is_some_and(|a| a != address) {
                        // One IPv4 home address per binding.
                        Ipv4AckStatus::AdministrativelyProhibited
                    } else {
                        out.hoa_v4 = Some(address);
                        Ipv4AckStatus::Success
                    };
                    let len = if status.is_success() { 32 } else { 0 };
                    out.acks.push(ack(status, len, address));
                }
                MobilityOption::LegacyIpv4Mnp { prefix_len, prefix } if mr => {
                    // SHISA's option has no status of its own: all or nothing, like the
                    // RFC 3963 MNP option (141/142).
                    if out.status.is_some() {
                        continue;
                    }
                    match Ipv4Net::new(prefix, prefix_len) {
                        Ok(n)
                            if prefix_len > 0 && valid_v4(prefix) && n.trunc().addr() == prefix =>
                        {
                            if !rows.iter().any(|(r, _)| r.contains(&n)) {
                                out.status = Some(BaStatus::NotAuthorizedForPrefix);
                            } else if !out.mnp.contains(&n) {
                                out.mnp.push(n);
                            }
                        }
                        _ => out.status = Some(BaStatus::InvalidPrefix),
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn reply_source(&self, signal: &ReceivedSignal<'_>) -> Ipv6Addr {
        if signal.dst.is_multicast() || signal.dst.is_unspecified() {
            self.cfg.ha_address
        } else {
            signal.dst
        }
    }

    pub(super) fn reject_with(
        &mut self,
        reply: &Reply<'_>,
        status: BaStatus,
        acks: Vec<MobilityOption<'static>>,
    ) {
        self.stats.rejected += 1;
        *self
            .stats
            .refused_by_status
            .entry(u8::from(status))
            .or_default() += 1;
        info!(hoa = %reply.hoa, seq = reply.sequence.0, status = u8::from(status), "binding update refused");
        self.send_ba(reply, status, Lifetime::ZERO, acks, Vec::new());
    }

    /// `flows`: the Flow Identification copies of an accepted BU (RFC 6089 §5.3.5), after
    /// the BID options they refer to.
    pub(super) fn send_ba<'o>(
        &mut self,
        reply: &Reply<'o>,
        status: BaStatus,
        lifetime: Lifetime,
        acks: Vec<MobilityOption<'o>>,
        flows: Vec<MobilityOption<'o>>,
    ) {
        // IPv4 Address Acknowledgements before any BID option (RFC 5648 §8, protocol.md
        // §4.14).
        let mut options: Vec<MobilityOption<'_>> = acks;
        // RFC 5648 §6.2: one BID option per BID of the BU, without its CoA, with its own
        // status; a refusal of the whole BU is every BID's status.
        let refused = u8::from(status) >= 128;
        for &(bid, st, bid_pri) in &reply.bids {
            let st = if st == 0 && refused {
                u8::from(status)
            } else {
                st
            };
            // RFC 6089 §5.3.5: the BID-PRI as the BU sent it.
            options.push(MobilityOption::BindingIdentifier {
                bid,
                status: st,
                h: false,
                coa: None,
                bid_pri,
            });
        }
        options.extend(flows);
        if let Some(n) = reply.nat {
            options.push(n);
        }
        if let Some(m) = reply.mn_id {
            options.push(m);
        }
        if let Some(ts) = reply.timestamp {
            options.push(MobilityOption::ReplayProtection { timestamp: ts });
        }
        if let Some((spi, _)) = &reply.sa {
            options.push(proto::auth::mn_ha_option(*spi));
        }
        // RFC 3963 §6.2: R only when the BU had R and the HA does NEMO (not on 140).
        let r = reply.r && status != BaStatus::MobileRouterOperationNotPermitted;
        let repr = MhRepr::BindingAck(BindingAck {
            status,
            flags: if r { BaFlags::R } else { BaFlags::empty() },
            sequence: reply.sequence,
            lifetime,
            options,
        });
        let sign = reply
            .sa
            .as_ref()
            .map(|(_, key)| (key, reply.coa_mac, reply.hoa));
        self.queue_mh(
            &repr,
            reply.addressing,
            reply.udp_v4,
            sign,
            Some(reply.ifindex),
        );
    }
}

/// Step 4 (RFC 6275 §9.5.1): a BU for an existing binding must carry a sequence number
/// newer than the last accepted one (modulo 2^16, §9.5.1); any number starts a new
/// binding. `Err` carries the last accepted number, which the 135 BA returns.
fn sequence_in_window(
    last: Option<SequenceNumber>,
    seq: SequenceNumber,
) -> Result<(), SequenceNumber> {
    match last {
        Some(last) if !seq.is_newer_than(last) => Err(last),
        _ => Ok(()),
    }
}

/// Step 6 (RFC 3963 §6.2 step 3): the R flag of an existing binding may not change (139).
pub(super) fn r_flag_changed(old_flags: Option<u16>, flags: BuFlags) -> bool {
    old_flags.is_some_and(|old| BuFlags(old).mobile_router() != flags.mobile_router())
}

/// Step 2's replay check (RFC 4285 §6): a timestamp within `window` of the home agent's
/// clock and later than the last one accepted for the home address. `Err` is the
/// timestamp for the 144 BA: our clock's seconds in the high 32 bits, the BU's low 32
/// bits, so the mobile router can resynchronise.
fn timestamp_fresh(
    ts: NtpTimestamp,
    ha_now: NtpTimestamp,
    window: Duration,
    last: Option<u64>,
) -> Result<(), u64> {
    if ts.is_within(ha_now, window) && last.is_none_or(|l| ts.is_later_than(NtpTimestamp(l))) {
        Ok(())
    } else {
        Err((u64::from(ha_now.seconds()) << 32) | (ts.0 & 0xffff_ffff))
    }
}

/// Step 7, explicit mode (RFC 3963 §6.1.2): every Mobile Network Prefix option valid
/// (else 141) and inside a prefix table row of this home address (else 142); all or none.
fn explicit_mnps(
    bu: &BindingUpdate<'_>,
    policy: Option<&HoaPolicy>,
) -> Result<Vec<Ipv6Net>, BaStatus> {
    let mut out: Vec<Ipv6Net> = Vec::new();
    for o in &bu.options {
        let MobilityOption::MobileNetworkPrefix { prefix_len, prefix } = *o else {
            continue;
        };
        let net = valid_v6_prefix(prefix, prefix_len).ok_or(BaStatus::InvalidPrefix)?;
        if !policy.is_some_and(|p| p.v6.iter().any(|(r, _)| r.contains(&net))) {
            return Err(BaStatus::NotAuthorizedForPrefix);
        }
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

fn ack(status: Ipv4AckStatus, prefix_len: u8, address: Ipv4Addr) -> MobilityOption<'static> {
    MobilityOption::Ipv4AddressAck {
        status,
        prefix_len,
        address,
    }
}

/// Does the SA cover this HoA / NAI? A home address (and its prefixes) belongs to the SA the
/// configuration ties it to (RFC 4285 §5, RFC 3963 §6.1.2): an SA bound to the HoA covers
/// it (and, when it also names an NAI, a MN-ID option in the BU must match); an SA bound
/// only to an NAI covers no home address at all, since nothing ties one to it. An SA bound
/// to neither (a wildcard, built only through the core's API for labs and benchmarks)
/// covers a home address no SA names (`named`), and may not take over a binding another SA
/// created (`owner`).
fn sa_covers(
    sa: &MobilitySa,
    hoa: &Ipv6Addr,
    mn_id: Option<MobilityOption<'_>>,
    owner: Option<u32>,
    named: bool,
) -> bool {
    let nai = match mn_id {
        Some(MobilityOption::MobileNodeIdentifier { identifier, .. }) => Some(identifier),
        _ => None,
    };
    if let (Some(want), Some(got)) = (&sa.nai, nai)
        && want.as_slice() != got
    {
        return false;
    }
    match (&sa.hoa, &sa.nai) {
        (Some(h), _) => h == hoa,
        (None, Some(_)) => false,
        (None, None) => !named && owner.is_none_or(|o| o == sa.spi),
    }
}

/// A unicast address usable as HoA or CoA (RFC 6275 §9.5.1): not multicast, unspecified,
/// loopback, link-local or IPv4-mapped (docs/notes.md §6).
pub(crate) fn valid_unicast(a: &Ipv6Addr) -> bool {
    proto::model::unusable_v6(*a).is_none()
}

/// An IPv4 unicast address or prefix usable as home address / MNP (not 0/8, 127/8,
/// 169.254/16, 224/4 or 240/4: [`proto::model::unusable_v4`]).
fn valid_v4(a: Ipv4Addr) -> bool {
    proto::model::unusable_v4(a).is_none()
}

/// RFC 3963 §6.2: 141 for a prefix we cannot forward: length 0 or > 128, multicast,
/// link-local, loopback, unspecified, IPv4-mapped. Host bits are cleared.
fn valid_v6_prefix(prefix: Ipv6Addr, len: u8) -> Option<Ipv6Net> {
    if len == 0 || len > 128 || !valid_unicast(&prefix) {
        return None;
    }
    Ipv6Net::new(prefix, len).ok().map(|n| n.trunc())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn sequence_window_is_modulo_2_16() {
        let s = SequenceNumber;
        assert_eq!(sequence_in_window(None, s(7)), Ok(()));
        assert_eq!(sequence_in_window(Some(s(7)), s(8)), Ok(()));
        assert_eq!(sequence_in_window(Some(s(7)), s(7)), Err(s(7)));
        assert_eq!(sequence_in_window(Some(s(7)), s(6)), Err(s(7)));
        // RFC 6275 §9.5.1: 0 follows 65535; half the space back is old.
        assert_eq!(sequence_in_window(Some(s(65535)), s(0)), Ok(()));
        assert_eq!(sequence_in_window(Some(s(0)), s(40000)), Err(s(0)));
    }

    #[test]
    fn r_flag_may_not_change_on_a_binding() {
        let hr = (BuFlags::A | BuFlags::H | BuFlags::R).bits();
        let h = (BuFlags::A | BuFlags::H).bits();
        assert!(!r_flag_changed(None, BuFlags::H));
        assert!(!r_flag_changed(Some(hr), BuFlags::H | BuFlags::R));
        assert!(r_flag_changed(Some(hr), BuFlags::H));
        assert!(r_flag_changed(Some(h), BuFlags::H | BuFlags::R));
    }

    #[test]
    fn timestamps_in_window_and_later_than_the_last() {
        let now = NtpTimestamp::from_unix(Duration::from_secs(1_000_000));
        let w = Duration::from_secs(7);
        let at = |secs: u64| NtpTimestamp::from_unix(Duration::from_secs(secs));
        assert_eq!(timestamp_fresh(at(1_000_003), now, w, None), Ok(()));
        assert_eq!(timestamp_fresh(at(999_995), now, w, None), Ok(()));
        let stale = at(999_000);
        let echo = timestamp_fresh(stale, now, w, None).unwrap_err();
        // Our seconds high, the BU's low 32 bits (RFC 4285 §6).
        assert_eq!(echo >> 32, u64::from(now.seconds()));
        assert_eq!(echo & 0xffff_ffff, stale.0 & 0xffff_ffff);
        // A replay of the last accepted timestamp, or an older one, is refused.
        let last = at(1_000_001).0;
        assert!(timestamp_fresh(at(1_000_001), now, w, Some(last)).is_err());
        assert!(timestamp_fresh(at(1_000_000), now, w, Some(last)).is_err());
        assert_eq!(timestamp_fresh(at(1_000_002), now, w, Some(last)), Ok(()));
    }

    fn bu_with(options: Vec<MobilityOption<'static>>) -> BindingUpdate<'static> {
        BindingUpdate {
            sequence: SequenceNumber(1),
            flags: BuFlags::A | BuFlags::H | BuFlags::R,
            lifetime: Lifetime(100),
            options,
        }
    }

    fn mnp(p: &str) -> MobilityOption<'static> {
        let n: Ipv6Net = p.parse().unwrap();
        MobilityOption::MobileNetworkPrefix {
            prefix_len: n.prefix_len(),
            prefix: n.addr(),
        }
    }

    #[test]
    fn explicit_prefixes_all_or_none() {
        let policy = HoaPolicy {
            v6: smallvec::smallvec![("2001:db8:100::/40".parse().unwrap(), PrefixMode::Explicit)],
            v4: smallvec::smallvec![(
                Ipv4Net::new(Ipv4Addr::new(198, 51, 100, 0), 24).unwrap(),
                PrefixMode::Explicit,
            )],
            legacy_ipv4_mnp: false,
        };
        let ok = bu_with(vec![mnp("2001:db8:100::/48"), mnp("2001:db8:100::/48")]);
        assert_eq!(
            explicit_mnps(&ok, Some(&policy)),
            Ok(vec!["2001:db8:100::/48".parse().unwrap()])
        );
        // Host bits are cleared, not refused.
        let host = bu_with(vec![mnp("2001:db8:100::1/48")]);
        assert_eq!(
            explicit_mnps(&host, Some(&policy)),
            Ok(vec!["2001:db8:100::/48".parse().unwrap()])
        );
        let outside = bu_with(vec![mnp("2001:db8:100::/48"), mnp("2001:db8:200::/48")]);
        assert_eq!(
            explicit_mnps(&outside, Some(&policy)),
            Err(BaStatus::NotAuthorizedForPrefix)
        );
        assert_eq!(
            explicit_mnps(&ok, None),
            Err(BaStatus::NotAuthorizedForPrefix)
        );
        let multicast = bu_with(vec![mnp("ff0e::/16")]);
        assert_eq!(
            explicit_mnps(&multicast, Some(&policy)),
            Err(BaStatus::InvalidPrefix)
        );
        let zero = bu_with(vec![MobilityOption::MobileNetworkPrefix {
            prefix_len: 0,
            prefix: "2001:db8:100::".parse().unwrap(),
        }]);
        assert_eq!(
            explicit_mnps(&zero, Some(&policy)),
            Err(BaStatus::InvalidPrefix)
        );
    }
}
