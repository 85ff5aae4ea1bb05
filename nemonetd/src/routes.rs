//! Route logic: binding events in, [`NetOps`] calls out.
//!
//! Each binding has a *desired* kernel state ([`desired`], a pure function of the binding,
//! the configuration and two lookups). The manager installs the union over all live
//! bindings and only the difference to what is installed: a refresh changes nothing, a
//! move (new CoA) changes nothing but the outer address in the data plane, and a removal
//! deletes exactly what no other binding still needs (two bindings may share the tunnel
//! defaults).
//!
//! Order: on the way up addresses, then routes, then rules (a rule must not divert traffic
//! into a table that is still empty); on the way down the reverse.
//!
//! Mobile router (RFC 3963 §5), rule priorities from P (the `PRIO_*` offsets):
//! * P: `iif LINK from OWN blackhole` on every mobile-network link (an interface where the
//!   MR holds an address inside an MNP) for every address of the MR there and its home
//!   addresses: a packet arriving with the MR's own address as source is spoofed.
//! * P+1: `to MNP lookup main suppress_prefixlength LEN-1` for every IPv6 and IPv4 MNP of
//!   length LEN: a main-table route inside the mobile network (the link of an MNN, a
//!   subnet behind an internal router) wins before the tunnel rule, whatever the source.
//!   Without it the MR's own ICMPv6 Packet Too Big to an MNN (source: its address on the
//!   mobile network) would go up the tunnel and loop. Routes of length LEN-1 or shorter
//!   (the default route among them) are ignored, so nothing for the mobile network leaves
//!   natively. With an IPv4 CoA, also `to HA-v4 lookup main`: the outer packets stay out
//!   of the tunnel.
//! * P+2: `from MNP lookup T` for every IPv6 and IPv4 MNP, and `from HoA` (and the IPv4
//!   HoA): the mobile network's traffic goes into the tunnel whatever its destination
//!   (reverse tunnelling, RFC 3963 §5.5).
//! * P+3: `iif LINK blackhole` on every mobile-network link, both families: a source outside
//!   the mobile network prefixes is neither tunnelled nor forwarded natively (RFC 3963
//!   §5.5 ingress filtering, BCP 38). Dropped silently: an ICMP error to a forged source
//!   would itself go up the tunnel.
//! * In T: `::/0 dev TUN`, `0.0.0.0/0 dev TUN src <MR's MNP-side IPv4>`, and behind them
//!   (a larger metric) `unreachable` defaults in both families. When the TUN device goes
//!   away with a crashed nemonetd its routes go with it, but the rules stay: the
//!   unreachable defaults then keep the mobile network's packets from falling through to
//!   the main table and leaving untunnelled (fail closed, until the restart flushes and
//!   rebuilds everything).
//! * The MR's own IPv4 traffic (no IPv4 at all in an IPv6-only visited network): P+4
//!   `lookup main suppress_prefixlength 0` (every main-table route but the default) and P+5
//!   `lookup T` for IPv4, so it leaves through the tunnel with the MNP-side source (the
//!   unnumbered IPv4 tunnel Shima's BSD implementation lacked).
//! * The HoA (and IPv4 HoA) as addresses on the TUN device.
//!
//! Home agent (RFC 3963 §6.2): `MNP dev TUN` for every IPv6 and IPv4 MNP, the HoA/128 and
//! the IPv4 HoA/32, in the configured table (main by default, where a routing daemon
//! exports them from).
//!
//! **At home** ([`desired_at_home`]): a removal whose care-of address is the home address,
//! with the home link's interface in `coa_ifindex`, is a router back on its home link
//! (RFC 6275 §11.5.5; RFC 3963 §6.2, which leaves the prefixes' routing at home to the
//! operator). Its state is replaced, not dropped: on the HA `MNP via HoA dev HOMELINK`
//! (IPv4 MNPs and the IPv4 HoA `via inet6 HoA`), so the mobile network stays reachable,
//! natively, through its router on the home link; on the MR the home address on the home
//! link (HoA/64, no DAD: the HA defended it until now, RFC 6275 §11.5.5) and an IPv4
//! default `via inet6 HA dev HOMELINK` (the HA routes the IPv4 MNPs for the Internet; the
//! home link's RAs say nothing about IPv4). The next BC_ADD / BUL_ADD for that home
//! address (the router away again) replaces it with the tunnel state.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mipsock::{Binding, CareOf};
use tracing::{info, warn};

use crate::netops::{
    Family, LwEncap, NetOps, NetOpsError, RouteKey, RouteSpec, RuleSpec, TABLE_MAIN,
};
use proto::{IPPROTO_IPIP, IPPROTO_IPV6};

/// Which side we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `-m`: mobile router, reacting to BUL_ADD/BUL_REMOVE.
    MobileRouter,
    /// `-h`: home agent, reacting to BC_ADD/BC_REMOVE.
    HomeAgent,
}

/// What the route logic needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Side.
    pub mode: Mode,
    /// The TUN device.
    pub tun: String,
    /// MR: the policy table T; HA: the table the MNP routes go to.
    pub table: u32,
    /// MR: priority P of the first rule; we use P..=P+[`RULE_PRIORITY_SPAN`]-1.
    pub rule_priority: u32,
    /// MR: send the MR's own IPv4 traffic through the tunnel (rules P+1, P+2).
    pub ipv4_own_traffic: bool,
    /// The kernel data plane's devices and tables, when it runs ([`crate::kernel`]):
    /// bindings with an IPv6 outer header use it instead of the TUN device.
    pub kernel: Option<KernelRoutes>,
}

/// Where the kernel data plane ([`crate::kernel`]) sits in the routing: a veth pair whose
/// host side takes the place of the TUN device, and three tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoutes {
    /// The host side of the veth pair: routes into the tunnel point here, as they point at
    /// the TUN device for the other bindings; its MTU is the tunnel's.
    pub dev: String,
    /// The other side: what is routed into `dev` arrives here and is encapsulated (rule
    /// `iif PEER lookup TABLE`); decapsulated packets leave here and arrive on `dev`.
    pub peer: String,
    /// The encapsulation table (one SRv6 route per destination); `table + 1` and
    /// `table + 2` hold the IPv6 and IPv4 decapsulation routes.
    pub table: u32,
    /// The outer hop limit (`tunnel-hop-limit`).
    pub hop_limit: u8,
    /// How the kernel puts on and takes off the outer header.
    pub method: KernelMethod,
    /// The tunnel source of the kernel's encapsulation: one per network namespace
    /// (`ip sr tunsrc`), so only the bindings whose local end point it is take the kernel
    /// path (a HA with two home agent addresses serves the second's through the TUN
    /// device). Set by the daemon from the first binding ([`kernel_candidate`]).
    pub source: Option<Ipv6Addr>,
    /// The mobile router's way out for its outer packets: the default router of the
    /// care-of address's interface (gateway, device). Without it they follow the main
    /// table's default route, which moves to a new uplink as soon as that one comes up,
    /// before the care-of address does: packets from the old care-of address then leave
    /// by the wrong link (measured: a 2 s gap). Set by the daemon from the binding's
    /// interface.
    pub outer: Option<(Ipv6Addr, String)>,
}

/// How the kernel data plane encapsulates and decapsulates (`kernel-encapsulation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelMethod {
    /// SRv6 routes: reduced encapsulation, End.DX6 / End.DX4 (a kernel with
    /// `CONFIG_IPV6_SEG6_LWTUNNEL`).
    #[default]
    Srv6,
    /// Two tcx programs on the veth pair's far side ([`crate::bpf`], Linux 6.6): the
    /// encapsulation table's entries live in their map, and the decapsulation routes are
    /// plain routes out of the far side, where the egress program strips the outer header.
    Bpf,
}

impl std::fmt::Display for KernelMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KernelMethod::Srv6 => "srv6",
            KernelMethod::Bpf => "bpf",
        })
    }
}

impl KernelRoutes {
    /// The table of the End.DX6 routes (IPv6 inside).
    pub fn decap6_table(&self) -> u32 {
        self.table + 1
    }

    /// The table of the End.DX4 routes (IPv4 inside).
    pub fn decap4_table(&self) -> u32 {
        self.table + 2
    }

    /// The table of the mobile router's outer route ([`KernelRoutes::outer`]).
    pub fn outer_table(&self) -> u32 {
        self.table + 3
    }
}

/// Kernel data plane rule priorities. They must come before the local table's rule, which
/// [`crate::kernel`] moves from 0 to [`KPRIO_LOCAL`]: a tunnelled packet to one of our
/// addresses would otherwise be delivered locally (and refused: no ip6_tunnel here)
/// instead of being decapsulated.
/// 0: `to LOCAL ipproto 41|4 lookup DECAP`: decapsulation.
pub const KPRIO_DECAP: u32 = 0;
/// The firewall mark bit the kernel data plane's filter sets on tunnel packets the TUN
/// device is to receive (the far ends of bindings sent through TUN: RFC 5648's, which
/// need the user-space path's per-path liveness); the decapsulation rules match only
/// packets without it, so those are delivered to the raw sockets as without the kernel
/// path. One bit, so that other marks on the host keep their meaning.
pub const TUN_RECEIVE_MARK: u32 = 0x0040_0000;
/// 1: `lookup local`, moved here from 0.
pub const KPRIO_LOCAL: u32 = 1;
/// 2: `to NH lookup ENCAP`: the next hop behind the veth pair for decapsulated packets.
pub const KPRIO_NEXTHOP: u32 = 2;
/// 3: `iif PEER from LOCAL lookup main` (the home agent) or `lookup OUTER` (a mobile
/// router with [`KernelRoutes::outer`]): an encapsulated packet leaves by the main table or
/// by its care-of address's interface (it would otherwise match the encapsulation table
/// again).
pub const KPRIO_OUTER: u32 = 3;
/// 4: `iif PEER lookup ENCAP`: what the host routed into the tunnel gets its outer header.
pub const KPRIO_ENCAP: u32 = 4;

/// The next hop decapsulated IPv6 packets are sent to, behind the veth pair: an address of
/// the discard-only prefix 100::/64 (RFC 6666), which nobody else routes.
pub const KERNEL_NH6: Ipv6Addr = Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0x6e);
/// The same for IPv4: the IPv4 dummy address 192.0.0.8 (RFC 7600).
pub const KERNEL_NH4: Ipv4Addr = Ipv4Addr::new(192, 0, 0, 8);

/// Whether a binding goes through the kernel data plane: an IPv6 outer header (IPv6
/// care-of address, no UDP), away from home, and its local end point the kernel's tunnel
/// source. Its (local, remote) tunnel end points.
pub fn kernel_ends(cfg: &RouteConfig, b: &Binding) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let ends = kernel_candidate(cfg, b)?;
    let source = cfg.kernel.as_ref()?.source;
    (source == Some(ends.0)).then_some(ends)
}

/// Whether a binding could take the kernel data plane, whatever the tunnel source: its
/// (local, remote) end points.
pub fn kernel_candidate(cfg: &RouteConfig, b: &Binding) -> Option<(Ipv6Addr, Ipv6Addr)> {
    // Several care-of addresses of one home address (RFC 5648) share its prefixes: the
    // kernel's routes would need one multipath route with an encapsulation per path; TUN
    // picks the path per flow. A binding with an identifier is sent through TUN.
    if b.binding_id.is_some() {
        return None;
    }
    ipv6_outer_ends(cfg, b)
}

/// Whether what the far end of `b` sends reaches the kernel data plane's filter (an IPv6
/// outer header to the kernel's tunnel source, whichever data plane sends towards it: the
/// decapsulation rule matches the destination, not the binding): its (local, remote) end
/// points. The filter must know every such far end; those of bindings sent through TUN it
/// marks for the TUN device ([`TUN_RECEIVE_MARK`]).
pub fn kernel_decapsulates(cfg: &RouteConfig, b: &Binding) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let ends = ipv6_outer_ends(cfg, b)?;
    let source = cfg.kernel.as_ref()?.source;
    (source == Some(ends.0)).then_some(ends)
}

/// The (local, remote) end points of a binding with an IPv6 outer header, away from home,
/// when the kernel data plane is configured.
fn ipv6_outer_ends(cfg: &RouteConfig, b: &Binding) -> Option<(Ipv6Addr, Ipv6Addr)> {
    cfg.kernel.as_ref()?;
    let CareOf::V6(coa) = b.coa else {
        return None;
    };
    if b.encapsulation != mipsock::Encapsulation::InIpv6 || at_home(b) {
        return None;
    }
    Some(match cfg.mode {
        Mode::HomeAgent => (b.ha, coa),
        Mode::MobileRouter => (coa, b.ha),
    })
}

/// The device a binding's routes point at: the kernel data plane's or the TUN device.
pub fn tunnel_dev<'a>(cfg: &'a RouteConfig, b: &Binding) -> &'a str {
    match (&cfg.kernel, kernel_ends(cfg, b)) {
        (Some(k), Some(_)) => &k.dev,
        _ => &cfg.tun,
    }
}

/// What every binding of the kernel data plane with local end point `local` needs,
/// whatever its prefixes (shared by all the bindings with that end point).
fn kernel_common(k: &KernelRoutes, local: Ipv6Addr, s: &mut KernelState) {
    let any6 = IpNet::V6(Ipv6Net::default());
    let any4 = IpNet::V4(Ipv4Net::default());
    let mut route = |table: u32, dst: IpNet, encap: Option<LwEncap>, metric: Option<u32>| {
        let mut r = RouteSpec::dev(table, dst, &k.peer);
        r.encap = encap;
        r.metric = metric;
        s.routes.insert(r);
    };
    let bpf = k.method == KernelMethod::Bpf;
    // SRv6: End.DX6 / End.DX4 strip the outer header and hand the inner packet to a next
    // hop behind the pair. BPF: a plain route sends the tunnel packet out of the far side,
    // whose egress program strips it.
    route(
        k.decap6_table(),
        host6(local),
        (!bpf).then_some(LwEncap::EndDx6(KERNEL_NH6)),
        None,
    );
    route(
        k.decap4_table(),
        host6(local),
        (!bpf).then_some(LwEncap::EndDx4(KERNEL_NH4)),
        None,
    );
    if !bpf {
        route(k.table, host6(KERNEL_NH6), None, None);
        route(k.table, host4(KERNEL_NH4), None, None);
    }
    // Fail closed: a destination the encapsulation table does not know is not sent on by
    // the main table (which may route it back into the veth pair).
    s.routes
        .insert(RouteSpec::unreachable(k.table, any6, FAIL_CLOSED_METRIC));
    s.routes
        .insert(RouteSpec::unreachable(k.table, any4, FAIL_CLOSED_METRIC));
    let rule = RuleSpec::lookup;
    for (proto, table) in [
        (IPPROTO_IPV6, k.decap6_table()),
        (IPPROTO_IPIP, k.decap4_table()),
    ] {
        let mut r = rule(Family::V6, KPRIO_DECAP, table);
        r.to = Some(host6(local));
        r.ipproto = Some(proto);
        r.fwmark = Some((0, TUN_RECEIVE_MARK));
        s.rules.insert(r);
    }
    if !bpf {
        let mut r = rule(Family::V6, KPRIO_NEXTHOP, k.table);
        r.to = Some(host6(KERNEL_NH6));
        s.rules.insert(r);
        let mut r = rule(Family::V4, KPRIO_NEXTHOP, k.table);
        r.to = Some(host4(KERNEL_NH4));
        s.rules.insert(r);
    }
    let outer_table = match &k.outer {
        Some((gateway, dev)) => {
            let mut r = RouteSpec::dev(k.outer_table(), IpNet::V6(Ipv6Net::default()), dev);
            r.via = Some(IpAddr::V6(*gateway));
            s.routes.insert(r);
            k.outer_table()
        }
        None => TABLE_MAIN,
    };
    let mut r = rule(Family::V6, KPRIO_OUTER, outer_table);
    r.iif = Some(k.peer.clone());
    r.from = Some(host6(local));
    s.rules.insert(r);
    for family in [Family::V6, Family::V4] {
        let mut r = rule(family, KPRIO_ENCAP, k.table);
        r.iif = Some(k.peer.clone());
        s.rules.insert(r);
    }
}

/// How many rule priorities from [`RouteConfig::rule_priority`] are ours (flushed at start).
pub const RULE_PRIORITY_SPAN: u32 = 10;

impl RouteConfig {
    /// Our rule priorities.
    pub fn rule_priorities(&self) -> std::ops::RangeInclusive<u32> {
        self.rule_priority..=self.rule_priority + RULE_PRIORITY_SPAN - 1
    }
}

/// Kernel objects, ordered so that plans and tests are deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelState {
    /// Addresses on devices.
    pub addrs: BTreeSet<(String, IpNet)>,
    /// Routes.
    pub routes: BTreeSet<RouteSpec>,
    /// Policy rules.
    pub rules: BTreeSet<RuleSpec>,
}

impl KernelState {
    fn extend(&mut self, other: &KernelState) {
        self.addrs.extend(other.addrs.iter().cloned());
        self.routes.extend(other.routes.iter().cloned());
        self.rules.extend(other.rules.iter().cloned());
    }

    /// Whether nothing is in it.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty() && self.routes.is_empty() && self.rules.is_empty()
    }
}

/// MR rule priorities, as offsets from [`RouteConfig::rule_priority`] (P).
/// P: a mobile-network link's packet with one of the MR's own addresses as source: dropped.
pub const PRIO_SPOOFED_OWN: u32 = 0;
/// P+1: `to MNP lookup main suppress_prefixlength LEN-1` (and `to HA-v4 lookup main`).
pub const PRIO_INSIDE: u32 = 1;
/// P+2: `from MNP/HoA lookup T`: into the tunnel.
pub const PRIO_TUNNEL: u32 = 2;
/// P+3: anything else from a mobile-network link: dropped (RFC 3963 §5.5).
pub const PRIO_INGRESS: u32 = 3;
/// P+4: the MR's own IPv4 traffic: main table without its default.
pub const PRIO_OWN_V4_MAIN: u32 = 4;
/// P+5: the MR's own IPv4 traffic: the tunnel.
pub const PRIO_OWN_V4_TUNNEL: u32 = 5;

/// The metric of the MR's fail-closed `unreachable` defaults in T: behind the tunnel's.
pub const FAIL_CLOSED_METRIC: u32 = 0x7fff_ffff;

/// The metric of the MR's IPv4 default route at home (through the HA, [`desired_at_home`]):
/// ahead of babymdd's DHCP defaults (1000 + the link's preference), so the home link wins
/// at home as it does for movement detection, and behind an operator's own (metric 0).
pub const HOME_V4_METRIC: u32 = 100;

/// The prefix length of the home address on the home link: the home subnet prefix, /64 as
/// SLAAC and babymdd's default home prefix assume (RFC 4291 §2.5.1).
pub const HOME_PREFIX_LEN: u8 = 64;

/// Whether a binding event is about a router at home: the home address as its care-of
/// address (RFC 6275 §11.5.5, the de-registration from the home link).
pub fn at_home(b: &Binding) -> bool {
    matches!(b.coa, CareOf::V6(c) if c == b.hoa)
}

/// Facts from the kernel the desired state depends on (looked up before [`desired`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// The MR's own address inside its IPv4 MNPs (source for its own IPv4 traffic).
    pub mnp_v4_source: Option<Ipv4Addr>,
    /// The MR's addresses inside its MNPs, with their interfaces: the mobile network's
    /// links, where ingress filtering applies.
    pub mnp_links: Vec<(String, IpAddr)>,
}

/// A binding's identity: the HoA and, with multiple CoAs (RFC 5648), the binding id.
pub type BindingKey = (Ipv6Addr, Option<u16>);

/// The key of a binding.
pub fn key(b: &Binding) -> BindingKey {
    (b.hoa, b.binding_id)
}

fn host6(a: Ipv6Addr) -> IpNet {
    IpNet::V6(Ipv6Net::new(a, 128).expect("/128 is valid"))
}

fn host4(a: Ipv4Addr) -> IpNet {
    IpNet::V4(Ipv4Net::new(a, 32).expect("/32 is valid"))
}

/// Every source prefix of a binding's mobile network: MNPs, HoA, IPv4 MNPs, IPv4 HoA.
pub fn sources(b: &Binding) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = b.mnp_v6.iter().map(|p| IpNet::V6(p.trunc())).collect();
    v.push(host6(b.hoa));
    v.extend(b.mnp_v4.iter().map(|p| IpNet::V4(p.trunc())));
    v.extend(b.hoa_v4.map(host4));
    v
}

/// The kernel state one binding needs.
pub fn desired(cfg: &RouteConfig, b: &Binding, lookups: &Lookups) -> KernelState {
    let mut s = KernelState::default();
    let tun = tunnel_dev(cfg, b);
    // What every kernel binding of one local end point shares ([`kernel_common`]) is not
    // part of it: [`RouteManager::reconcile`] adds it once per end point, so a fleet's
    // reconcile does not go over ten shared objects per binding.
    let kernel = cfg.kernel.as_ref().zip(kernel_ends(cfg, b));
    // The kernel data plane's encapsulation route towards the far end.
    let encap_route = |dst: IpNet| {
        kernel.map(|(k, (local, remote))| {
            let mut r = RouteSpec::dev(k.table, dst, &k.peer);
            r.encap = Some(match k.method {
                KernelMethod::Srv6 => LwEncap::Seg6Red(remote, k.hop_limit),
                KernelMethod::Bpf => LwEncap::BpfMap {
                    local,
                    remote,
                    hop_limit: k.hop_limit,
                },
            });
            r
        })
    };
    match cfg.mode {
        Mode::HomeAgent => {
            for dst in sources(b) {
                s.routes.extend(encap_route(dst));
                s.routes.insert(RouteSpec::dev(cfg.table, dst, tun));
            }
        }
        Mode::MobileRouter => {
            let t = cfg.table;
            let p = cfg.rule_priority;
            let mnps: Vec<IpNet> = b
                .mnp_v6
                .iter()
                .map(|n| IpNet::V6(n.trunc()))
                .chain(b.mnp_v4.iter().map(|n| IpNet::V4(n.trunc())))
                .filter(|n| n.prefix_len() > 0)
                .collect();
            // RFC 3963 §5.5 ingress filtering on the mobile network's links: a packet that
            // arrives there claiming one of the MR's own addresses as its source (P), or a
            // source outside the mobile network prefixes (P+3, after the tunnel rules let
            // the mobile network's own traffic through), is neither tunnelled nor forwarded.
            let links: BTreeSet<&str> = lookups.mnp_links.iter().map(|(l, _)| l.as_str()).collect();
            let own: Vec<IpNet> = lookups
                .mnp_links
                .iter()
                .map(|(_, a)| match a {
                    IpAddr::V6(a) => host6(*a),
                    IpAddr::V4(a) => host4(*a),
                })
                .chain(std::iter::once(host6(b.hoa)))
                .chain(b.hoa_v4.map(host4))
                .collect();
            for link in &links {
                for a in &own {
                    s.rules.insert(RuleSpec::blackhole(
                        Family::of(a),
                        link,
                        Some(*a),
                        p + PRIO_SPOOFED_OWN,
                    ));
                }
                for family in [Family::V6, Family::V4] {
                    s.rules
                        .insert(RuleSpec::blackhole(family, link, None, p + PRIO_INGRESS));
                }
            }
            for mnp in &mnps {
                s.rules.insert(RuleSpec {
                    to: Some(*mnp),
                    suppress_prefixlen: Some(u32::from(mnp.prefix_len()) - 1),
                    ..RuleSpec::lookup(Family::of(mnp), p + PRIO_INSIDE, TABLE_MAIN)
                });
            }
            for src in sources(b) {
                s.rules.insert(RuleSpec::from(src, t, p + PRIO_TUNNEL));
            }
            let any6 = IpNet::V6(Ipv6Net::default());
            let any4 = IpNet::V4(Ipv4Net::default());
            let has_v4 = !b.mnp_v4.is_empty() || b.hoa_v4.is_some();
            s.routes.extend(encap_route(any6));
            if has_v4 {
                s.routes.extend(encap_route(any4));
            }
            s.addrs.insert((tun.to_owned(), host6(b.hoa)));
            if let Some(v4) = b.hoa_v4 {
                s.addrs.insert((tun.to_owned(), host4(v4)));
            }
            s.routes.insert(RouteSpec::dev(t, any6, tun));
            s.routes
                .insert(RouteSpec::unreachable(t, any6, FAIL_CLOSED_METRIC));
            let v4_source = lookups.mnp_v4_source.or(b.hoa_v4);
            if has_v4 {
                let mut default4 = RouteSpec::dev(t, any4, tun);
                default4.pref_src = v4_source.map(IpAddr::V4);
                s.routes.insert(default4);
                s.routes
                    .insert(RouteSpec::unreachable(t, any4, FAIL_CLOSED_METRIC));
            }
            if has_v4 && cfg.ipv4_own_traffic && v4_source.is_some() {
                // Whatever the CoA: the first BU after a move to an IPv4 CoA (in UDP to
                // the HA's IPv4 address) must not take the tunnel of the old binding.
                if let Some(ha4) = b.ha_v4 {
                    s.rules.insert(RuleSpec {
                        to: Some(host4(ha4)),
                        ..RuleSpec::lookup(Family::V4, p + PRIO_INSIDE, TABLE_MAIN)
                    });
                }
                s.rules.insert(RuleSpec {
                    suppress_prefixlen: Some(0),
                    ..RuleSpec::lookup(Family::V4, p + PRIO_OWN_V4_MAIN, TABLE_MAIN)
                });
                s.rules
                    .insert(RuleSpec::lookup(Family::V4, p + PRIO_OWN_V4_TUNNEL, t));
            }
        }
    }
    s
}

/// The kernel state of a router back on its home link `home` (the interface named by the
/// removal's `coa_ifindex`): see the module documentation. Everything in the main table
/// on the MR (no policy rules at home: the mobile network's packets are routed like any
/// others), in the configured table on the HA.
pub fn desired_at_home(cfg: &RouteConfig, b: &Binding, home: &str) -> KernelState {
    let mut s = KernelState::default();
    let via = |table: u32, dst: IpNet, gw: Ipv6Addr, metric: Option<u32>| RouteSpec {
        table,
        dst,
        src: None,
        dev: home.to_owned(),
        via: Some(IpAddr::V6(gw)),
        pref_src: None,
        unreachable: false,
        metric,
        encap: None,
    };
    match cfg.mode {
        Mode::HomeAgent => {
            // Every source prefix of the binding but the home address itself, which the
            // home link's own prefix route covers.
            for dst in sources(b).into_iter().filter(|n| *n != host6(b.hoa)) {
                s.routes.insert(via(cfg.table, dst, b.hoa, None));
            }
        }
        Mode::MobileRouter => {
            let hoa = Ipv6Net::new(b.hoa, HOME_PREFIX_LEN).expect("/64 is valid");
            s.addrs.insert((home.to_owned(), IpNet::V6(hoa)));
            if let Some(v4) = b.hoa_v4 {
                s.addrs.insert((home.to_owned(), host4(v4)));
            }
            if !b.mnp_v4.is_empty() || b.hoa_v4.is_some() {
                let any4 = IpNet::V4(Ipv4Net::default());
                s.routes
                    .insert(via(TABLE_MAIN, any4, b.ha, Some(HOME_V4_METRIC)));
            }
        }
    }
    s
}

/// What the home agent keeps for a mobile network whose binding ended away from home: an
/// `unreachable` route per prefix, with the tunnel route's key (table, prefix, no metric)
/// so a new registration replaces it in place. A packet for that network is answered at
/// once with ICMP Destination Unreachable (no route) instead of following the home agent's
/// default route back into the Internet, or waiting on neighbour discovery (issue 11:
/// RFC 6275 §10.4.2's "no binding"). The home address itself stays on the home link's
/// prefix route. Nothing on the mobile router (its tunnel table fails closed already).
pub fn desired_unbound(cfg: &RouteConfig, b: &Binding) -> KernelState {
    let mut s = KernelState::default();
    if cfg.mode == Mode::HomeAgent {
        for dst in sources(b).into_iter().filter(|n| *n != host6(b.hoa)) {
            s.routes.insert(RouteSpec {
                table: cfg.table,
                dst,
                src: None,
                dev: String::new(),
                via: None,
                pref_src: None,
                unreachable: true,
                metric: None,
                encap: None,
            });
        }
    }
    s
}

/// Installs and removes the kernel state of bindings through a [`NetOps`].
#[derive(Debug)]
pub struct RouteManager<N> {
    cfg: RouteConfig,
    net: N,
    bindings: BTreeMap<BindingKey, (Binding, KernelState)>,
    /// Mobile networks whose binding ended away from home ([`desired_unbound`]): kept
    /// until the router registers again or a flush.
    unbound: BTreeMap<BindingKey, KernelState>,
    /// What the kernel holds (as far as our requests succeeded).
    installed: KernelState,
    /// Routes of ours a previous run left (found at start, by protocol): taken over by a
    /// replace until the leftovers are flushed ([`RouteManager::adopt`]).
    adoptable: BTreeSet<(u32, IpNet, Option<IpNet>)>,
    /// Routes we wanted but found someone else's route in the way of (same key), warned
    /// about once each: never replaced, tried again at each reconcile.
    foreign: BTreeSet<RouteKey>,
    /// A batch of events is being applied: [`RouteManager::add`] and
    /// [`RouteManager::remove`] only record, and the caller reconciles once at the end
    /// (each reconcile goes over every binding: once per event would make a burst of n
    /// registrations cost n² at a fleet's home agent).
    deferred: bool,
}

impl<N: NetOps> RouteManager<N> {
    /// A manager with nothing installed.
    pub fn new(cfg: RouteConfig, net: N) -> Self {
        RouteManager {
            cfg,
            net,
            bindings: BTreeMap::new(),
            unbound: BTreeMap::new(),
            installed: KernelState::default(),
            adoptable: BTreeSet::new(),
            foreign: BTreeSet::new(),
            deferred: false,
        }
    }

    /// The routes of ours (protocol 110) a previous run left, as found at start: the
    /// bindings' routes replace them seamlessly, where any other route in the way is left
    /// alone. `None` once the leftovers are flushed.
    pub fn adopt(&mut self, keys: Option<BTreeSet<(u32, IpNet, Option<IpNet>)>>) {
        self.adoptable = keys.unwrap_or_default();
    }

    /// The NetOps underneath (tests inspect the fake's calls).
    pub fn net(&mut self) -> &mut N {
        &mut self.net
    }

    /// The configuration.
    pub fn config(&self) -> &RouteConfig {
        &self.cfg
    }

    /// Sets the kernel data plane's tunnel source ([`KernelRoutes::source`]); the
    /// bindings added from now on are placed by it.
    pub fn set_kernel_source(&mut self, source: Option<Ipv6Addr>) {
        if let Some(k) = &mut self.cfg.kernel {
            k.source = source;
        }
    }

    /// Sets the mobile router's outer route ([`KernelRoutes::outer`]); applied with the
    /// next change or [`RouteManager::reconcile`].
    pub fn set_kernel_outer(&mut self, outer: Option<(Ipv6Addr, String)>) {
        if let Some(k) = &mut self.cfg.kernel {
            k.outer = outer;
        }
    }

    /// The live binding with this key.
    pub fn binding(&self, key: &BindingKey) -> Option<&Binding> {
        self.bindings.get(key).map(|(b, _)| b)
    }

    /// The live bindings.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values().map(|(b, _)| b)
    }

    /// What we believe is installed.
    pub fn installed(&self) -> &KernelState {
        &self.installed
    }

    async fn lookups(&mut self, b: &Binding) -> Lookups {
        let mut l = Lookups::default();
        if self.cfg.mode != Mode::MobileRouter {
            return l;
        }
        let mnps = b
            .mnp_v6
            .iter()
            .map(|n| IpNet::V6(n.trunc()))
            .chain(b.mnp_v4.iter().map(|n| IpNet::V4(n.trunc())));
        for mnp in mnps {
            match self.net.addrs_in(mnp).await {
                Ok(found) => l.mnp_links.extend(found),
                Err(e) => warn!(%mnp, error = %e, "address lookup failed"),
            }
        }
        // The tunnel devices are no mobile-network links, whatever addresses they hold.
        let kernel_dev = self.cfg.kernel.as_ref().map(|k| k.dev.as_str());
        l.mnp_links
            .retain(|(dev, _)| *dev != self.cfg.tun && Some(dev.as_str()) != kernel_dev);
        for mnp in &b.mnp_v4 {
            match self.net.local_addr_in(IpNet::V4(mnp.trunc())).await {
                Ok(Some(IpAddr::V4(a))) => {
                    l.mnp_v4_source = Some(a);
                    break;
                }
                Ok(_) => {}
                Err(e) => warn!(%mnp, error = %e, "address lookup failed"),
            }
        }
        l
    }

    /// The kernel deleted a route of ours (someone's `ip route flush`, a device that went):
    /// if we believed it installed and a binding still wants it, it is put back.
    pub async fn route_gone(
        &mut self,
        gone: (u32, IpNet, Option<IpNet>, Option<u32>, bool),
    ) -> Result<(), NetOpsError> {
        let (table, dst, src, metric, unreachable) = gone;
        let before = self.installed.routes.len();
        self.installed.routes.retain(|r| {
            !((r.table, r.dst, r.src) == (table, dst, src)
                && r.unreachable == unreachable
                && r.metric.is_none_or(|m| Some(m) == metric))
        });
        if self.installed.routes.len() == before {
            return Ok(());
        }
        warn!(%dst, table, "a route of ours was deleted from outside; putting it back");
        self.reconcile().await
    }

    /// The kernel deleted a rule of ours: as [`RouteManager::route_gone`].
    pub async fn rule_gone(&mut self, gone: &RuleSpec) -> Result<(), NetOpsError> {
        if !self.installed.rules.remove(gone) {
            return Ok(());
        }
        warn!(rule = %gone, "a rule of ours was deleted from outside; putting it back");
        self.reconcile().await
    }

    /// Starts (`true`) or ends a batch of events: see the `deferred` field. Ending it does
    /// not reconcile; the caller does.
    pub fn defer(&mut self, on: bool) {
        self.deferred = on;
    }

    async fn reconcile_unless_deferred(&mut self) -> Result<(), NetOpsError> {
        if self.deferred {
            Ok(())
        } else {
            self.reconcile().await
        }
    }

    /// BUL_ADD / BC_ADD: a new, refreshed or moved binding.
    pub async fn add(&mut self, b: &Binding) -> Result<(), NetOpsError> {
        let lookups = self.lookups(b).await;
        let want = desired(&self.cfg, b, &lookups);
        self.unbound.remove(&key(b));
        self.bindings.insert(key(b), (b.clone(), want));
        self.reconcile_unless_deferred().await
    }

    /// BUL_REMOVE / BC_REMOVE: removes what only this binding needed. Unknown bindings are
    /// fine (a removal after our restart, or a duplicate). A router back home (care-of
    /// address = home address, the home link in `coa_ifindex`) gets its at-home state
    /// instead ([`desired_at_home`]), kept until its next BUL_ADD / BC_ADD or a flush.
    pub async fn remove(&mut self, b: &Binding) -> Result<(), NetOpsError> {
        if at_home(b) {
            match self.home_link(b).await {
                Some(home) => {
                    let want = desired_at_home(&self.cfg, b, &home);
                    info!(hoa = %b.hoa, home_link = %home, "at home: native routes on the home link");
                    self.unbound.remove(&key(b));
                    self.bindings.insert(key(b), (b.clone(), want));
                    return self.reconcile_unless_deferred().await;
                }
                None => warn!(hoa = %b.hoa, ifindex = ?b.coa_ifindex,
                    "back home, but the home link's interface is unknown: no native routes"),
            }
        }
        self.bindings.remove(&key(b));
        let unbound = desired_unbound(&self.cfg, b);
        if !unbound.is_empty() {
            self.unbound.insert(key(b), unbound);
        }
        self.reconcile_unless_deferred().await
    }

    async fn home_link(&mut self, b: &Binding) -> Option<String> {
        let index = b.coa_ifindex.filter(|&i| i != 0)?;
        match self.net.link_name(index).await {
            Ok(name) => name,
            Err(e) => {
                warn!(index, error = %e, "interface lookup failed");
                None
            }
        }
    }

    /// BUL_FLUSH / BC_FLUSH and shutdown: removes every binding's state.
    pub async fn remove_all(&mut self) -> Result<(), NetOpsError> {
        self.bindings.clear();
        self.unbound.clear();
        self.reconcile().await
    }

    /// Brings the kernel to the union of the bindings' desired states. Keeps going after a
    /// failure; returns the first. Failed additions are retried at the next event, failed
    /// deletions too (they stay in `installed`).
    pub async fn reconcile(&mut self) -> Result<(), NetOpsError> {
        let mut want = KernelState::default();
        for (_, s) in self.bindings.values() {
            want.extend(s);
        }
        // The kernel data plane's shared state, once per local end point in use (from the
        // configuration as it is now: its tunnel source and the MR's outer route).
        if let Some(k) = &self.cfg.kernel {
            let locals: BTreeSet<Ipv6Addr> = self
                .bindings
                .values()
                .filter_map(|(b, _)| kernel_ends(&self.cfg, b).map(|(local, _)| local))
                .collect();
            for local in locals {
                kernel_common(k, local, &mut want);
            }
        }
        // The kernel holds one route per key: when two bindings ask for one key with
        // different routes (a prefix two home addresses claim, a BID back home beside its
        // home address's plain binding), the first in order is the one wanted. Both kept
        // would leave what we believe installed apart from the kernel.
        let mut keys = BTreeSet::new();
        want.routes.retain(|r| keys.insert(r.key()));
        // An ended binding's unreachable routes, where no live binding routes the prefix.
        for s in self.unbound.values() {
            for r in &s.routes {
                if keys.insert(r.key()) {
                    want.routes.insert(r.clone());
                }
            }
        }
        let mut first_error: Option<NetOpsError> = None;
        // A route in the way of ours: reported once, but a failure still (tried again).
        let mut foreign_error: Option<NetOpsError> = None;
        let mut note = |r: Result<(), NetOpsError>| match r {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "kernel request failed");
                first_error.get_or_insert(e);
                false
            }
        };
        // Up: addresses, routes, rules.
        for a in want
            .addrs
            .difference(&self.installed.addrs)
            .cloned()
            .collect::<Vec<_>>()
        {
            if note(self.net.addr_add(&a.0, a.1).await) {
                info!(dev = %a.0, addr = %a.1, "address added");
                self.installed.addrs.insert(a);
            }
        }
        // Keys of what we installed: one lookup per route, not a walk over a fleet's routes.
        let mut installed_keys: BTreeSet<RouteKey> =
            self.installed.routes.iter().map(RouteSpec::key).collect();
        for r in want
            .routes
            .difference(&self.installed.routes)
            .cloned()
            .collect::<Vec<_>>()
        {
            // A route of ours with the same key (a changed route: an ended binding's
            // unreachable one, another source) is replaced; anything else is created,
            // never over someone else's route: an operator's static route, a connected
            // one, would be overwritten, then deleted with ours at teardown.
            let ours = installed_keys.contains(&r.key())
                || self.adoptable.contains(&(r.table, r.dst, r.src));
            let result = if ours {
                self.net.route_replace(&r).await
            } else {
                self.net.route_add(&r).await
            };
            match result {
                Err(e) if !ours && e.errno == Some(crate::netops::EEXIST) => {
                    let key = r.key();
                    if self.foreign.insert(key) {
                        warn!(route = %r, "route not installed: the kernel holds a route with the same destination, table and metric that nemonetd did not make; it is left alone (remove it, and the binding's route follows at the next event)");
                    }
                    foreign_error.get_or_insert(e);
                }
                other => {
                    if note(other) {
                        info!(route = %r, "route installed");
                        self.foreign.remove(&r.key());
                        installed_keys.insert(r.key());
                        self.installed.routes.insert(r);
                    }
                }
            }
        }
        for r in want
            .rules
            .difference(&self.installed.rules)
            .cloned()
            .collect::<Vec<_>>()
        {
            if note(self.net.rule_add(&r).await) {
                info!(rule = %r, "rule installed");
                self.installed.rules.insert(r);
            }
        }
        // Down: rules, routes, addresses.
        for r in self
            .installed
            .rules
            .difference(&want.rules)
            .cloned()
            .collect::<Vec<_>>()
        {
            if note(self.net.rule_del(&r).await) {
                info!(rule = %r, "rule removed");
                self.installed.rules.remove(&r);
            }
        }
        // Keys whose wanted route is installed: an installed route of such a key that is
        // no longer wanted was replaced in place (its replacement went in).
        let replacements: BTreeSet<RouteKey> = want
            .routes
            .iter()
            .filter(|w| self.installed.routes.contains(*w))
            .map(RouteSpec::key)
            .collect();
        for r in self
            .installed
            .routes
            .difference(&want.routes)
            .cloned()
            .collect::<Vec<_>>()
        {
            // Replaced above by a route with the same key (e.g. a new preferred source): a
            // delete now would remove the replacement. Only if the replace went through:
            // after a failed one the old route is still there, and still ours to delete.
            let replaced = replacements.contains(&r.key());
            if replaced || note(self.net.route_del(&r).await) {
                info!(route = %r, "route removed");
                self.installed.routes.remove(&r);
            }
        }
        for a in self
            .installed
            .addrs
            .difference(&want.addrs)
            .cloned()
            .collect::<Vec<_>>()
        {
            if note(self.net.addr_del(&a.0, a.1).await) {
                info!(dev = %a.0, addr = %a.1, "address removed");
                self.installed.addrs.remove(&a);
            }
        }
        match first_error.or(foreign_error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
