//! The movement detector: a pure state machine (no sockets, no clock).
//!
//! The shell ([`crate::netlink`], [`crate::run`]) turns rtnetlink messages into
//! [`Observation`]s and feeds them with the current time; the detector keeps its own copy of
//! the watched links and their addresses and decides, in [`Detector::decide`], which care-of
//! address the mobile router should use. Decisions come out as [`Output`]s (MD_INFO for the
//! bus, Router Solicitations to send) pulled with [`Detector::poll_output`]; the one timer
//! it needs (the hold-down) is pulled with [`Detector::poll_timeout`] and fired with
//! [`Detector::handle_timeout`]. This is the quinn-proto shape, so a recorded sequence of
//! netlink events replays in a unit test in microseconds.
//!
//! ## Selection
//!
//! 1. **At home** wins: an IPv6 address inside a home prefix (default: the home address's
//!    /64, as SHISA compares), or a HOME_HINT, on an up egress link → DEREGHOME
//!    (RFC 6275 §11.5.4).
//! 2. Otherwise the best *usable* address on an up watched link: IPv6 before IPv4
//!    (IPv6 needs no UDP encapsulation and no NAT traversal), then the interface's
//!    preference (lower is better, SHISA's priority: the order on the command line), then
//!    the address already in use (no pointless switch between two addresses of one link),
//!    then the longest-stable address. IPv6 is usable when global scope and neither
//!    tentative (DAD still running), dadfailed, deprecated (RFC 4862 §5.5.4: not for new
//!    communication, and a binding is new communication) nor flagged as a home address.
//! 3. **Hysteresis**: losing the current CoA (address gone or unusable, link down) switches
//!    at once, because every BU from a dead address is wasted. Moving *away from a CoA that
//!    still works* to a better one waits until the better one has been usable, on an up
//!    link, for [`DetectorConfig::hold_down`]: a flapping preferred link then costs no
//!    signalling at all until it settles.
//!
//! Only decisions that change the selection produce MD_INFO; [`Detector::resend`] (SIGHUP)
//! repeats the current one, as SHISA's babymdd does.
//!
//! ## Uplinks (RFC 5648)
//!
//! Every REREG also lists the *uplinks*: for each up watched interface its best usable
//! care-of address (IPv6 before IPv4, then the address in use, then the longest-stable),
//! home-prefix addresses left out, the selected care-of address on its own interface.
//! A mobile router registering several care-of addresses at once makes each a binding.
//! With [`DetectorConfig::multiple_coa`], a change of the uplinks alone (a second
//! interface comes up or loses its address, the selection staying) is a REREG of its own,
//! with the same care-of address; without it, nothing is sent for it, as before.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::Ipv6Net;
use mipsock::{CareOf, CurrentCoa, MdCommand, MdHint, MdInfo, Uplink};
use tracing::{debug, info};

/// Default hold-down before leaving a working care-of address for a better one.
pub const DEFAULT_HOLD_DOWN: Duration = Duration::from_secs(2);

/// One egress interface to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedInterface {
    /// Interface name (`eth0`); matched against link names, so an interface may appear
    /// after babymdd started (a USB modem) and its index may change.
    pub name: String,
    /// Lower is preferred (SHISA's priority; route metrics read the same way).
    pub preference: u32,
}

/// What the detector needs to know that netlink does not tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Egress interfaces. Empty: every interface except loopback and the mip interface,
    /// with the interface index as preference (SHISA's behaviour without arguments).
    pub interfaces: Vec<WatchedInterface>,
    /// SHISA's `-h` interface: home addresses live there; it is never an egress.
    pub mip_interface: Option<String>,
    /// The home address. `None`: learnt from the first global IPv6 address on the mip
    /// interface (SHISA takes it from there).
    pub home_address: Option<Ipv6Addr>,
    /// Home prefixes. Empty: the home address's /64.
    pub home_prefixes: Vec<Ipv6Net>,
    /// How long a better address must have been usable before we leave a CoA that still
    /// works.
    pub hold_down: Duration,
    /// Treat optimistic addresses (RFC 4429, Linux `optimistic_dad`) as usable although
    /// the kernel still flags them tentative. Off by default: a collision found later
    /// would leave the binding on someone else's address.
    pub accept_optimistic: bool,
    /// The mobile router registers several care-of addresses (RFC 5648, mrd.conf's
    /// `multiple-care-of-addresses`): a change of the uplinks alone is reported too.
    pub multiple_coa: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            interfaces: Vec::new(),
            mip_interface: None,
            home_address: None,
            home_prefixes: Vec::new(),
            hold_down: DEFAULT_HOLD_DOWN,
            accept_optimistic: false,
            multiple_coa: false,
        }
    }
}

/// Address flags the detector cares about (IFA_F_*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddrFlags {
    /// DAD still running (IFA_F_TENTATIVE).
    pub tentative: bool,
    /// Optimistic DAD (IFA_F_OPTIMISTIC).
    pub optimistic: bool,
    /// DAD found a duplicate (IFA_F_DADFAILED).
    pub dadfailed: bool,
    /// Preferred lifetime over (IFA_F_DEPRECATED).
    pub deprecated: bool,
    /// A Mobile IPv6 home address (IFA_F_HOMEADDRESS).
    pub homeaddress: bool,
}

/// Address scope as the kernel reports it (`ifa_scope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// RT_SCOPE_UNIVERSE.
    #[default]
    Global,
    /// RT_SCOPE_SITE.
    Site,
    /// RT_SCOPE_LINK.
    Link,
    /// RT_SCOPE_HOST and anything else.
    Host,
}

/// A link as RTM_NEWLINK describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// Administratively up *and* carrier (IFF_UP and IFF_LOWER_UP).
    pub up: bool,
    /// IFF_LOOPBACK: never an egress.
    pub loopback: bool,
}

/// An address as RTM_NEWADDR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// Interface index.
    pub ifindex: u32,
    /// The address (IFA_LOCAL for IPv4, IFA_ADDRESS for IPv6).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Flags.
    pub flags: AddrFlags,
    /// Scope.
    pub scope: Scope,
}

/// One thing the shell saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// RTM_NEWLINK (dump or event): the link's current state.
    Link(LinkInfo),
    /// RTM_DELLINK.
    LinkRemoved {
        /// Interface index.
        ifindex: u32,
    },
    /// RTM_NEWADDR (dump or event; also sent when flags change, e.g. DAD done).
    AddrAdded(AddrInfo),
    /// RTM_DELADDR.
    AddrRemoved {
        /// Interface index.
        ifindex: u32,
        /// The address.
        addr: IpAddr,
    },
    /// MIPM_HOME_HINT from the bus: a router advertisement carried a home prefix.
    HomeHint {
        /// Interface the RA arrived on.
        ifindex: u32,
        /// The prefix advertised.
        prefix: Ipv6Net,
    },
}

/// What the detector wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Broadcast this MD_INFO on the bus.
    MdInfo(MdInfo),
    /// Send a Router Solicitation on this interface (RFC 4861 §6.3.7), so a new link's
    /// router answers now rather than at its next periodic RA.
    SendRouterSolicitation {
        /// Interface index.
        ifindex: u32,
    },
}

/// The detector's current verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// No usable care-of address and not at home.
    Detached,
    /// Away from home, using this care-of address.
    Foreign {
        /// The care-of address.
        coa: IpAddr,
        /// Its interface.
        ifindex: u32,
    },
    /// On the home link.
    Home {
        /// The interface attached to the home link.
        ifindex: u32,
        /// Our address on the home link, if any (the home address or one autoconfigured
        /// from a home prefix); `None` when only a HOME_HINT told us.
        addr: Option<Ipv6Addr>,
    },
}

#[derive(Debug, Clone)]
struct AddrState {
    info: AddrInfo,
    /// Since when the address has been usable as a care-of address, on an up link
    /// (reset when it stops being so).
    usable_since: Option<Instant>,
    /// Since when the address has been assigned (DAD done), on an up link: enough for a
    /// home-prefix address to say "at home", whatever else it is flagged.
    valid_since: Option<Instant>,
}

impl AddrState {
    /// Updates the two timestamps after a change of the address or of its link.
    fn refresh(&mut self, cfg: &DetectorConfig, link_up: bool, now: Instant) {
        let f = self.info.flags;
        let valid = link_up && !f.tentative && !f.dadfailed;
        self.valid_since = if valid {
            self.valid_since.or(Some(now))
        } else {
            None
        };
        let usable = link_up && self_usable(cfg, &self.info);
        self.usable_since = if usable {
            self.usable_since.or(Some(now))
        } else {
            None
        };
    }
}

#[derive(Debug, Clone)]
struct LinkState {
    name: String,
    up: bool,
    loopback: bool,
    /// Since when the link has been up.
    up_since: Option<Instant>,
    addrs: BTreeMap<IpAddr, AddrState>,
    /// Home prefixes seen in RAs (HOME_HINT) since the link came up.
    home_hints: Vec<Ipv6Net>,
    /// The link came up and we owe it a Router Solicitation. It goes out as soon as the
    /// link has a usable link-local address: Linux refuses (EADDRNOTAVAIL) to send from
    /// the unspecified address while the link-local address is tentative (measured), so
    /// "at once" means "when DAD of the link-local address is done", ~1 s without
    /// `accept_dad=0`.
    rs_pending: bool,
}

/// A ranked candidate; `Ord` puts the best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// 0 = IPv6, 1 = IPv4.
    family: u8,
    preference: u32,
    /// 0 = the address in use, 1 = another.
    not_current: u8,
    stable_since: Instant,
    addr: IpAddr,
}

/// The movement detector. See the module documentation.
#[derive(Debug)]
pub struct Detector {
    cfg: DetectorConfig,
    links: BTreeMap<u32, LinkState>,
    selection: Selection,
    /// The home address learnt from the mip interface, when not configured.
    learnt_hoa: Option<Ipv6Addr>,
    outputs: VecDeque<Output>,
    /// When the hold-down of a better candidate ends, if one is waiting.
    timer: Option<Instant>,
    /// The uplinks of the last REREG sent.
    announced_uplinks: Vec<Uplink>,
}

fn is_global_v6(a: &Ipv6Addr) -> bool {
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || a.is_unicast_link_local()
        || a.to_ipv4_mapped().is_some())
}

fn is_global_v4(a: &Ipv4Addr) -> bool {
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast())
}

impl Detector {
    /// A detector that has seen nothing yet.
    pub fn new(cfg: DetectorConfig) -> Self {
        Detector {
            cfg,
            links: BTreeMap::new(),
            selection: Selection::Detached,
            learnt_hoa: None,
            outputs: VecDeque::new(),
            timer: None,
            announced_uplinks: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// The current verdict.
    pub fn selection(&self) -> Selection {
        self.selection
    }

    /// The home address in use (configured or learnt).
    pub fn home_address(&self) -> Option<Ipv6Addr> {
        self.cfg.home_address.or(self.learnt_hoa)
    }

    /// The current verdict as babymdd's answer to a state request.
    pub fn current_coa(&self) -> CurrentCoa {
        match self.selection {
            Selection::Detached => CurrentCoa {
                coa: None,
                ifindex: 0,
                at_home: false,
            },
            Selection::Foreign { coa, ifindex } => CurrentCoa {
                coa: Some(care_of(coa)),
                ifindex,
                at_home: false,
            },
            Selection::Home { ifindex, .. } => CurrentCoa {
                coa: None,
                ifindex,
                at_home: true,
            },
        }
    }

    /// Feeds one observation and decides. To feed a batch (the start-up dump, or every
    /// message read in one wake-up), call [`Detector::observe`] for each and
    /// [`Detector::decide`] once, so transient states inside the batch never reach mrd.
    pub fn handle(&mut self, now: Instant, obs: Observation) {
        self.observe(now, obs);
        self.decide(now);
    }

    /// Records an observation without deciding.
    pub fn observe(&mut self, now: Instant, obs: Observation) {
        match obs {
            Observation::Link(l) => self.observe_link(now, l),
            Observation::LinkRemoved { ifindex } => {
                if let Some(l) = self.links.remove(&ifindex) {
                    debug!(ifindex, name = %l.name, "link removed");
                }
            }
            Observation::AddrAdded(a) => self.observe_addr(now, a),
            Observation::AddrRemoved { ifindex, addr } => {
                if let Some(l) = self.links.get_mut(&ifindex)
                    && l.addrs.remove(&addr).is_some()
                {
                    debug!(ifindex, %addr, "address removed");
                }
            }
            Observation::HomeHint { ifindex, prefix } => {
                // SHISA checks the hinted prefix against the home addresses; a hint for
                // someone else's home says nothing about ours.
                let ours = self.home_address().is_some_and(|h| prefix.contains(&h))
                    || self
                        .home_prefixes()
                        .iter()
                        .any(|p| p.contains(&prefix.network()) || prefix.contains(&p.network()));
                if !ours {
                    debug!(ifindex, %prefix, "home hint for another prefix ignored");
                } else if let Some(l) = self.links.get_mut(&ifindex)
                    && !l.home_hints.contains(&prefix)
                {
                    l.home_hints.push(prefix);
                }
            }
        }
    }

    fn observe_link(&mut self, now: Instant, info: LinkInfo) {
        let watched = self.is_watched(&info.name, info.loopback);
        let l = self.links.entry(info.ifindex).or_insert_with(|| LinkState {
            name: info.name.clone(),
            up: false,
            loopback: info.loopback,
            up_since: None,
            addrs: BTreeMap::new(),
            home_hints: Vec::new(),
            rs_pending: false,
        });
        l.name = info.name;
        l.loopback = info.loopback;
        if info.up && !l.up {
            l.up_since = Some(now);
            if watched {
                info!(ifindex = info.ifindex, name = %l.name, "link up");
                l.rs_pending = true;
            }
        } else if !info.up && l.up {
            if watched {
                info!(ifindex = info.ifindex, name = %l.name, "link down");
            }
            l.up_since = None;
            l.home_hints.clear();
            l.rs_pending = false;
        }
        l.up = info.up;
        for a in l.addrs.values_mut() {
            a.refresh(&self.cfg, info.up, now);
        }
    }

    fn observe_addr(&mut self, now: Instant, info: AddrInfo) {
        let ifindex = info.ifindex;
        let mip = self.cfg.mip_interface.clone();
        let Some(l) = self.links.get_mut(&ifindex) else {
            // Dumps list links before addresses, and the kernel announces a link before
            // its addresses; an address of an unknown link belongs to one we never saw.
            debug!(ifindex, addr = %info.addr, "address on an unknown link ignored");
            return;
        };
        if self.cfg.home_address.is_none()
            && self.learnt_hoa.is_none()
            && mip.as_deref() == Some(l.name.as_str())
            && let IpAddr::V6(a) = info.addr
            && info.scope == Scope::Global
            && is_global_v6(&a)
        {
            info!(hoa = %a, mip = %l.name, "home address taken from the mip interface");
            self.learnt_hoa = Some(a);
        }
        let up = l.up;
        let entry = l.addrs.entry(info.addr).or_insert(AddrState {
            info: info.clone(),
            usable_since: None,
            valid_since: None,
        });
        entry.info = info;
        entry.refresh(&self.cfg, up, now);
    }

    /// Whether a link with this name is an egress babymdd watches.
    pub fn is_watched(&self, name: &str, loopback: bool) -> bool {
        if self.cfg.mip_interface.as_deref() == Some(name) {
            return false;
        }
        if self.cfg.interfaces.is_empty() {
            !loopback
        } else {
            self.cfg.interfaces.iter().any(|w| w.name == name)
        }
    }

    /// The link's preference (lower is better).
    pub fn preference(&self, ifindex: u32, name: &str) -> u32 {
        self.cfg
            .interfaces
            .iter()
            .find(|w| w.name == name)
            .map_or(ifindex, |w| w.preference)
    }

    fn home_prefixes(&self) -> Vec<Ipv6Net> {
        if !self.cfg.home_prefixes.is_empty() {
            return self.cfg.home_prefixes.clone();
        }
        self.home_address()
            .map(|h| Ipv6Net::new(h, 64).expect("64 is a valid length").trunc())
            .into_iter()
            .collect()
    }

    fn in_home_prefix(&self, a: &Ipv6Addr) -> bool {
        self.home_prefixes().iter().any(|p| p.contains(a))
    }

    /// Is the node on the home link `ifindex`? With the time since when, and our address
    /// there (`None` when only a HOME_HINT says so).
    fn home_on(&self, ifindex: u32, prefixes: &[Ipv6Net]) -> Option<(Instant, Option<Ipv6Addr>)> {
        let l = self.links.get(&ifindex)?;
        if !l.up || !self.is_watched(&l.name, l.loopback) {
            return None;
        }
        let by_addr = l
            .addrs
            .values()
            .filter_map(|a| match (a.info.addr, a.valid_since) {
                (IpAddr::V6(v6), Some(since)) if prefixes.iter().any(|p| p.contains(&v6)) => {
                    Some((since, Some(v6)))
                }
                _ => None,
            })
            .min();
        by_addr.or_else(|| {
            (!l.home_hints.is_empty())
                .then_some(l.up_since)
                .flatten()
                .map(|since| (since, None))
        })
    }

    /// The most preferred home link, if the node is at home.
    fn home_link(&self) -> Option<(Rank, Selection)> {
        let prefixes = self.home_prefixes();
        let mut best: Option<(Rank, Selection)> = None;
        for (&ifindex, l) in &self.links {
            let Some((since, addr)) = self.home_on(ifindex, &prefixes) else {
                continue;
            };
            let current =
                matches!(self.selection, Selection::Home { ifindex: i, .. } if i == ifindex);
            let rank = Rank {
                family: 0,
                preference: self.preference(ifindex, &l.name),
                not_current: u8::from(!current),
                stable_since: since,
                addr: IpAddr::V6(addr.unwrap_or(Ipv6Addr::UNSPECIFIED)),
            };
            if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                best = Some((rank, Selection::Home { ifindex, addr }));
            }
        }
        best
    }

    /// The foreign candidates of one up, watched link, ranked (best first not implied).
    fn candidates<'a>(&'a self, ifindex: u32, l: &'a LinkState) -> impl Iterator<Item = Rank> + 'a {
        let hoa = self.home_address();
        let usable_link = l.up && self.is_watched(&l.name, l.loopback);
        let pref = self.preference(ifindex, &l.name);
        l.addrs
            .values()
            .filter(move |_| usable_link)
            .filter_map(move |a| {
                let since = a.usable_since?;
                let family = match a.info.addr {
                    IpAddr::V6(v6) => {
                        if Some(v6) == hoa || self.in_home_prefix(&v6) {
                            return None;
                        }
                        0
                    }
                    IpAddr::V4(_) => 1,
                };
                let current =
                    matches!(self.selection, Selection::Foreign { coa, .. } if coa == a.info.addr);
                Some(Rank {
                    family,
                    preference: pref,
                    not_current: u8::from(!current),
                    stable_since: since,
                    addr: a.info.addr,
                })
            })
    }

    /// The best foreign candidate of `family` (6 or 4), or of any family.
    fn best_foreign(&self, family: Option<u8>) -> Option<(Rank, Selection)> {
        let mut best: Option<(Rank, Selection)> = None;
        for (&ifindex, l) in &self.links {
            for rank in self.candidates(ifindex, l) {
                if family.is_some_and(|f| f != rank.family) {
                    continue;
                }
                if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                    best = Some((
                        rank,
                        Selection::Foreign {
                            coa: rank.addr,
                            ifindex,
                        },
                    ));
                }
            }
        }
        best
    }

    /// Every up watched interface's best care-of address, the most preferred interface
    /// first; none unless away from home. The selected care-of address is its
    /// interface's, also while an IPv6 address there waits out the hold-down, so the
    /// selection is always one of the uplinks.
    pub fn uplinks(&self) -> Vec<Uplink> {
        let Selection::Foreign {
            coa: selected,
            ifindex: selected_if,
        } = self.selection
        else {
            return Vec::new();
        };
        let mut v: Vec<Uplink> = self
            .links
            .iter()
            .filter_map(|(&ifindex, l)| {
                let best = self.candidates(ifindex, l).min()?;
                let addr = if ifindex == selected_if {
                    selected
                } else {
                    best.addr
                };
                Some(Uplink {
                    coa: care_of(addr),
                    ifindex,
                    ifname: l.name.clone(),
                    preference: best.preference,
                })
            })
            .collect();
        v.sort_by_key(|u| (u.preference, u.ifindex));
        v
    }

    /// Whether the current selection still holds, regardless of better ones.
    fn current_valid(&self) -> bool {
        match self.selection {
            Selection::Detached => false,
            Selection::Foreign { coa, ifindex } => self.links.get(&ifindex).is_some_and(|l| {
                l.up && l.addrs.get(&coa).is_some_and(|a| a.usable_since.is_some())
            }),
            Selection::Home { ifindex, .. } => {
                self.home_on(ifindex, &self.home_prefixes()).is_some()
            }
        }
    }

    /// Decides from what has been observed; queues MD_INFO when the selection changes
    /// (or, with [`DetectorConfig::multiple_coa`], the uplinks).
    pub fn decide(&mut self, now: Instant) {
        self.decide_selection(now);
        if self.cfg.multiple_coa
            && matches!(self.selection, Selection::Foreign { .. })
            && self.uplinks() != self.announced_uplinks
        {
            info!(uplinks = ?self.uplinks().iter().map(|u| (u.ifname.as_str(), u.coa.to_string())).collect::<Vec<_>>(),
                "uplinks changed");
            self.push_md_info();
        }
    }

    fn decide_selection(&mut self, now: Instant) {
        self.timer = None;
        let owed: Vec<u32> = self
            .links
            .iter()
            .filter(|(_, l)| l.up && l.rs_pending && has_usable_link_local(l))
            .map(|(&i, _)| i)
            .collect();
        for ifindex in owed {
            if let Some(l) = self.links.get_mut(&ifindex) {
                l.rs_pending = false;
                debug!(ifindex, name = %l.name, "soliciting routers");
            }
            self.outputs
                .push_back(Output::SendRouterSolicitation { ifindex });
        }
        let best = match self.home_link() {
            Some(h) => Some(h),
            None => self.best_foreign(None),
        };
        let current_valid = self.current_valid();
        let Some((rank, target)) = best else {
            if !current_valid && self.selection != Selection::Detached {
                info!(previous = ?self.selection, "no usable care-of address: detached");
                self.selection = Selection::Detached;
            }
            return;
        };
        if same_attachment(target, self.selection) {
            // Same link and address; refresh what we know (e.g. the home address was
            // learnt later) without telling anyone.
            self.selection = target;
            return;
        }
        if current_valid {
            let ready_at = rank.stable_since + self.cfg.hold_down;
            if now < ready_at {
                debug!(?target, current = ?self.selection, wait_ms = (ready_at - now).as_millis() as u64,
                    "better attachment: holding down");
                self.timer = Some(ready_at);
                return;
            }
        }
        self.switch_to(target);
    }

    fn switch_to(&mut self, target: Selection) {
        let previous = self.selection;
        self.selection = target;
        match target {
            Selection::Foreign { coa, ifindex } => {
                info!(%coa, ifindex, ?previous, "new care-of address");
            }
            Selection::Home { ifindex, addr } => {
                info!(ifindex, ?addr, ?previous, "returned home");
            }
            Selection::Detached => {}
        }
        self.push_md_info();
    }

    /// Queues the MD_INFO of the current selection, if any.
    fn push_md_info(&mut self) {
        if let Some(md) = self.md_info() {
            self.announced_uplinks = md.uplinks.clone();
            self.outputs.push_back(Output::MdInfo(md));
        }
    }

    /// The MD_INFO that announces the current selection; `None` when detached.
    pub fn md_info(&self) -> Option<MdInfo> {
        let hoa = self.home_address();
        match self.selection {
            Selection::Detached => None,
            Selection::Foreign { coa, ifindex } => {
                let other = match coa {
                    IpAddr::V6(_) => self.best_foreign(Some(1)),
                    IpAddr::V4(_) => None,
                };
                Some(MdInfo {
                    command: MdCommand::Rereg,
                    hint: MdHint::Addr,
                    hoa,
                    coa: Some(care_of(coa)),
                    coa2: other.and_then(|(_, s)| match s {
                        Selection::Foreign { coa, .. } => Some(care_of(coa)),
                        _ => None,
                    }),
                    ifindex,
                    uplinks: self.uplinks(),
                })
            }
            Selection::Home { ifindex, addr } => Some(MdInfo {
                command: MdCommand::Dereghome,
                hint: MdHint::Home,
                hoa,
                coa: addr.or(hoa).map(CareOf::V6),
                coa2: None,
                ifindex,
                uplinks: Vec::new(),
            }),
        }
    }

    /// Repeats the current verdict (SIGHUP, as SHISA's babymdd): a restarted mrd gets its
    /// initial condition. Nothing when detached.
    pub fn resend(&mut self) {
        self.push_md_info();
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Detector::handle_timeout`] should run next (the end of a hold-down).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// Runs the timer: re-decides.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer.is_some_and(|t| t <= now) {
            self.decide(now);
        }
    }
}

fn same_attachment(a: Selection, b: Selection) -> bool {
    match (a, b) {
        (Selection::Home { ifindex: x, .. }, Selection::Home { ifindex: y, .. }) => x == y,
        _ => a == b,
    }
}

fn has_usable_link_local(l: &LinkState) -> bool {
    l.addrs.values().any(|a| {
        matches!(a.info.addr, IpAddr::V6(v6) if v6.is_unicast_link_local())
            && !a.info.flags.tentative
            && !a.info.flags.dadfailed
    })
}

/// Whether an address could serve as a care-of address (interface state aside).
fn self_usable(cfg: &DetectorConfig, a: &AddrInfo) -> bool {
    let f = a.flags;
    if f.dadfailed || f.deprecated || f.homeaddress {
        return false;
    }
    if f.tentative && !(cfg.accept_optimistic && f.optimistic) {
        return false;
    }
    if a.scope != Scope::Global {
        return false;
    }
    match a.addr {
        IpAddr::V6(v6) => is_global_v6(&v6),
        IpAddr::V4(v4) => is_global_v4(&v4),
    }
}

fn care_of(a: IpAddr) -> CareOf {
    match a {
        IpAddr::V6(v6) => CareOf::V6(v6),
        IpAddr::V4(addr) => CareOf::V4 {
            addr,
            udp_port: None,
        },
    }
}

#[cfg(test)]
mod tests;
