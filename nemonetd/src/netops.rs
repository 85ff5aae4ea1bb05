//! Kernel state through rtnetlink, behind a small trait so the route logic can be tested
//! with a fake that records calls (style.md: "a NetOps trait over rtnetlink").
//!
//! Everything we install carries [`RTPROT_NEMO`] (routes and policy rules), so a routing
//! daemon (BIRD `protocol kernel { learn; }` with a `krt_source = 110` filter, FRR
//! `redistribute kernel` with a route-map on the protocol) can export the mobile network
//! prefixes, and a restart — even after a crash — flushes exactly ours
//! ([`NetOps::flush_ours`]).
//!
//! A delete of something already gone is success: teardown runs after crashes, after the
//! TUN device vanished (taking its routes with it), and twice on SIGTERM races.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::IpProtocol;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteLwEnCapType, RouteLwTunnelEncap, RouteMessage,
    RouteMetric, RouteProtocol, RouteScope, RouteSeg6IpTunnel, RouteSeg6LocalTunnel, RouteType,
    Seg6Header, Seg6LocalAction, Seg6Mode,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, LinkUnspec, RouteMessageBuilder};

use tracing::debug;

use crate::routes::KernelState;

/// Our route protocol number (`proto 110` in `ip route`, 0x6e = 'n' for NEMO).
///
/// Chosen because it is unassigned in the kernel's `rtnetlink.h` (RTPROT_* stop at 99 for
/// daemons, then 186-192 for FRR's BGP/IS-IS/OSPF/RIP/EIGRP) and absent from iproute2's
/// `/etc/iproute2/rt_protos` on our machines (checked: 0-18, 42, 99, 186-192 are taken).
/// Operators can name it with `echo "110 nemo" > /etc/iproute2/rt_protos.d/nemo.conf`.
pub const RTPROT_NEMO: u8 = 110;

/// The main routing table (`RT_TABLE_MAIN`).
pub const TABLE_MAIN: u32 = 254;

/// The local routing table (`RT_TABLE_LOCAL`): our addresses.
pub const TABLE_LOCAL: u32 = 255;

/// IP family of a rule (a rule without prefixes still needs one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// AF_INET.
    V4,
    /// AF_INET6.
    V6,
}

impl Family {
    /// Family of a prefix.
    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
}

/// What identifies a route in the kernel: table, destination, source, metric.
pub type RouteKey = (u32, IpNet, Option<IpNet>, Option<u32>);

/// A route as we install it (`ip route replace [unreachable] DST [from SRC] [dev DEV]
/// [via GW] [src PREF] table TABLE [metric M] proto 110`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteSpec {
    /// Routing table.
    pub table: u32,
    /// Destination prefix; its family is the route's family.
    pub dst: IpNet,
    /// Source prefix (IPv6 source-specific routing); `None` for any source.
    pub src: Option<IpNet>,
    /// Output device by name (resolved to an index at install time); empty for an
    /// unreachable route.
    pub dev: String,
    /// Gateway; `None` for an on-link (device) route.
    pub via: Option<IpAddr>,
    /// Preferred source address for locally originated packets (`src` in `ip route`).
    pub pref_src: Option<IpAddr>,
    /// An `unreachable` route: no device, the kernel answers with ICMP Destination
    /// Unreachable. It outlives every device, which is the point (fail closed).
    pub unreachable: bool,
    /// Route metric (`metric` in `ip route`); `None` for the kernel's default.
    pub metric: Option<u32>,
    /// A lightweight tunnel on the route (the kernel data plane, [`crate::kernel`]).
    pub encap: Option<LwEncap>,
}

/// The lightweight tunnels of the kernel data plane ([`crate::kernel`]): SRv6 reduced
/// encapsulation with one segment, which on the wire is RFC 2473 IPv6-in-IPv6 or
/// IPv4-in-IPv6 (no segment routing header), and the two decapsulations of seg6local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LwEncap {
    /// `encap seg6 mode encap.red segs SEGMENT hoplimit H`: an outer IPv6 header to
    /// SEGMENT (the tunnel's far end), next header 41 or 4 after the inner packet's family,
    /// hop limit H (the encapsulation takes the route's hoplimit metric).
    Seg6Red(Ipv6Addr, u8),
    /// `encap seg6local action End.DX6 nh6 NH`: strip the outer header and forward the
    /// inner IPv6 packet to NH.
    EndDx6(Ipv6Addr),
    /// `encap seg6local action End.DX4 nh4 NH`: the same for an inner IPv4 packet.
    EndDx4(Ipv4Addr),
    /// Not a kernel route: an entry of the BPF encapsulation program's map
    /// ([`crate::bpf::EncapMap`]), which puts an outer IPv6 header from LOCAL to REMOTE
    /// with hop limit H on what is routed to the destination. Reconciled like the routes it
    /// stands in for; `ip route` does not show it.
    BpfMap {
        /// Our end point (the outer source).
        local: Ipv6Addr,
        /// The far end (the outer destination).
        remote: Ipv6Addr,
        /// The outer hop limit.
        hop_limit: u8,
    },
}

impl fmt::Display for LwEncap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LwEncap::Seg6Red(a, h) => write!(f, "encap seg6 mode encap.red segs {a} hoplimit {h}"),
            LwEncap::EndDx6(a) => write!(f, "encap seg6local action End.DX6 nh6 {a}"),
            LwEncap::EndDx4(a) => write!(f, "encap seg6local action End.DX4 nh4 {a}"),
            LwEncap::BpfMap {
                local,
                remote,
                hop_limit,
            } => write!(
                f,
                "encap bpf-map (tcx program, not a kernel route) {local} -> {remote} hoplimit {hop_limit}"
            ),
        }
    }
}

impl RouteSpec {
    /// An on-link route `dst dev DEV table TABLE`.
    pub fn dev(table: u32, dst: IpNet, dev: &str) -> RouteSpec {
        RouteSpec {
            table,
            dst,
            src: None,
            dev: dev.to_owned(),
            via: None,
            pref_src: None,
            unreachable: false,
            metric: None,
            encap: None,
        }
    }

    /// `unreachable DST table TABLE metric METRIC`.
    pub fn unreachable(table: u32, dst: IpNet, metric: u32) -> RouteSpec {
        RouteSpec {
            table,
            dst,
            src: None,
            dev: String::new(),
            via: None,
            pref_src: None,
            unreachable: true,
            metric: Some(metric),
            encap: None,
        }
    }

    /// What identifies the route in the kernel: two specs with the same key are one route
    /// (a replace of one overwrites the other).
    pub fn key(&self) -> RouteKey {
        (self.table, self.dst, self.src, self.metric)
    }
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unreachable {
            write!(f, "unreachable ")?;
        }
        write!(f, "{}", self.dst)?;
        if let Some(e) = self.encap {
            write!(f, " {e}")?;
        }
        if let Some(s) = self.src {
            write!(f, " from {s}")?;
        }
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if !self.unreachable {
            write!(f, " dev {}", self.dev)?;
        }
        write!(f, " table {}", self.table)?;
        if let Some(p) = self.pref_src {
            write!(f, " src {p}")?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

/// A policy rule (`ip rule add [iif DEV] [from SRC] [to DST] lookup TABLE|blackhole
/// [suppress_prefixlength N] priority PRIO proto 110`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleSpec {
    /// Family; must agree with `from`/`to`.
    pub family: Family,
    /// Priority (lower is consulted first).
    pub priority: u32,
    /// Source selector.
    pub from: Option<IpNet>,
    /// Destination selector.
    pub to: Option<IpNet>,
    /// Table to look up (ignored with `blackhole`).
    pub table: u32,
    /// Ignore routes of this prefix length or shorter found by the lookup (0: ignore
    /// default routes, the wg-quick trick).
    pub suppress_prefixlen: Option<u32>,
    /// Input interface selector (`iif`): packets that arrived on it (not locally sent).
    pub iif: Option<String>,
    /// `blackhole` instead of a lookup: the packet is dropped silently (no ICMP error
    /// that would itself need routing, towards an address that may be forged).
    pub blackhole: bool,
    /// IP protocol selector (`ipproto`): the kernel data plane's decapsulation rules match
    /// 41 and 4.
    pub ipproto: Option<u8>,
    /// Firewall mark selector (`fwmark MARK/MASK`): the kernel data plane's decapsulation
    /// rules leave alone what its filter marked for the TUN device.
    pub fwmark: Option<(u32, u32)>,
}

impl RuleSpec {
    /// `lookup TABLE priority PRIO` in `family`, no selector: the others are set on it.
    pub fn lookup(family: Family, priority: u32, table: u32) -> RuleSpec {
        RuleSpec {
            family,
            priority,
            from: None,
            to: None,
            table,
            suppress_prefixlen: None,
            iif: None,
            blackhole: false,
            ipproto: None,
            fwmark: None,
        }
    }

    /// `from SRC lookup TABLE priority PRIO`.
    pub fn from(src: IpNet, table: u32, priority: u32) -> RuleSpec {
        RuleSpec {
            from: Some(src),
            ..RuleSpec::lookup(Family::of(&src), priority, table)
        }
    }

    /// `iif DEV [from SRC] blackhole priority PRIO`.
    pub fn blackhole(family: Family, iif: &str, from: Option<IpNet>, priority: u32) -> RuleSpec {
        RuleSpec {
            family,
            priority,
            from,
            to: None,
            table: 0,
            suppress_prefixlen: None,
            iif: Some(iif.to_owned()),
            blackhole: true,
            ipproto: None,
            fwmark: None,
        }
    }
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} prio {}", self.family, self.priority)?;
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(s) = self.from {
            write!(f, " from {s}")?;
        }
        if let Some(d) = self.to {
            write!(f, " to {d}")?;
        }
        if let Some(p) = self.ipproto {
            write!(f, " ipproto {p}")?;
        }
        if let Some((mark, mask)) = self.fwmark {
            write!(f, " fwmark {mark:#x}/{mask:#x}")?;
        }
        if self.blackhole {
            write!(f, " blackhole")?;
        } else {
            write!(f, " lookup {}", self.table)?;
        }
        if let Some(n) = self.suppress_prefixlen {
            write!(f, " suppress_prefixlength {n}")?;
        }
        Ok(())
    }
}

/// A failed kernel request.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {message}")]
pub struct NetOpsError {
    /// What we asked for (`route replace ...`).
    pub op: String,
    /// The kernel's errno, when the kernel answered.
    pub errno: Option<i32>,
    /// The error text.
    pub message: String,
}

impl NetOpsError {
    fn new(op: impl Into<String>, message: impl Into<String>) -> Self {
        NetOpsError {
            op: op.into(),
            errno: None,
            message: message.into(),
        }
    }

    fn from_rtnl(op: impl Into<String>, e: rtnetlink::Error) -> Self {
        let errno = match &e {
            rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
            _ => None,
        };
        let message = match errno {
            Some(n) => std::io::Error::from_raw_os_error(n).to_string(),
            None => e.to_string(),
        };
        NetOpsError {
            op: op.into(),
            errno,
            message,
        }
    }
}

/// Result of a kernel request.
pub type Result<T> = std::result::Result<T, NetOpsError>;

/// Kernel network state operations nemonetd needs. Deletes of absent objects succeed; adds
/// of present ones succeed (rules, addresses) or replace (routes).
#[allow(async_fn_in_trait)] // used through generics only, never `dyn`; no Send bound needed
pub trait NetOps {
    /// `ip route replace` (create or overwrite).
    async fn route_replace(&mut self, route: &RouteSpec) -> Result<()>;
    /// `ip route add`: creates the route, and never touches one already there with the
    /// same key ([`RouteSpec::key`]): that is an error (`EEXIST`), for the caller to tell
    /// a route of ours from someone else's.
    async fn route_add(&mut self, route: &RouteSpec) -> Result<()>;
    /// The keys (table, destination, source) of every route with protocol
    /// [`RTPROT_NEMO`]: ours, or a previous run's.
    async fn our_route_keys(&mut self) -> Result<BTreeSet<(u32, IpNet, Option<IpNet>)>>;
    /// `ip route del`; absent is success.
    async fn route_del(&mut self, route: &RouteSpec) -> Result<()>;
    /// `ip rule add`; present is success.
    async fn rule_add(&mut self, rule: &RuleSpec) -> Result<()>;
    /// `ip rule del`; absent is success.
    async fn rule_del(&mut self, rule: &RuleSpec) -> Result<()>;
    /// `ip link set DEV [up|down] [mtu N]`.
    async fn link_set(&mut self, dev: &str, up: Option<bool>, mtu: Option<u32>) -> Result<()>;
    /// The MTU of a device.
    async fn link_mtu(&mut self, dev: &str) -> Result<u32>;
    /// `ip addr add ADDR dev DEV` (IPv6 without DAD); present is success.
    async fn addr_add(&mut self, dev: &str, addr: IpNet) -> Result<()>;
    /// `ip addr del ADDR dev DEV`; absent is success.
    async fn addr_del(&mut self, dev: &str, addr: IpNet) -> Result<()>;
    /// A local address inside `prefix` (the MR's address on its mobile network), if any.
    async fn local_addr_in(&mut self, prefix: IpNet) -> Result<Option<IpAddr>>;
    /// Every local address inside `prefix`, with the name of its interface (the MR's
    /// mobile network links).
    async fn addrs_in(&mut self, prefix: IpNet) -> Result<Vec<(String, IpAddr)>>;
    /// The name of the interface with index `index`; `None` when there is none (the home
    /// link of a binding at home is named by index on the bus).
    async fn link_name(&mut self, index: u32) -> Result<Option<String>>;
    /// Deletes every route with protocol [`RTPROT_NEMO`] (all tables, both families) and
    /// every rule with protocol [`RTPROT_NEMO`] or a priority in `rule_priorities`
    /// looking up `table`, except those `keep` holds (routes by [`RouteSpec::key`] and
    /// kind, rules exactly). Returns how many objects were deleted.
    async fn flush_ours(
        &mut self,
        rule_priorities: RangeInclusive<u32>,
        table: u32,
        keep: &KernelState,
    ) -> Result<usize>;
}

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
/// The kernel's "File exists".
pub(crate) const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

/// Our own "no such device" (a link lookup by name that found nothing), with the errno the
/// kernel would give, so callers treat it like the kernel's.
fn no_device(dev: &str) -> NetOpsError {
    NetOpsError {
        op: format!("link {dev}"),
        errno: Some(ENODEV),
        message: "no such device".into(),
    }
}

fn gone(e: &NetOpsError) -> bool {
    matches!(e.errno, Some(ENOENT | ESRCH | ENODEV | EADDRNOTAVAIL))
}

/// A change in the kernel that nemonetd reconciles (issue 10: watch, don't assume the
/// state read at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEvent {
    /// A route of ours (protocol 110) was deleted: (table, dst, src, metric, unreachable).
    RouteGone(u32, IpNet, Option<IpNet>, Option<u32>, bool),
    /// A rule of ours (protocol 110) was deleted.
    RuleGone(RuleSpec),
    /// A link's MTU, as the kernel announced it.
    LinkMtu(String, u32),
    /// An IPv6 default route of the main table came or went (not ours): a mobile
    /// router's kernel path follows its care-of interface's default router.
    DefaultRoute6,
}

/// A stream of [`KernelEvent`]s: route, rule and link notifications from rtnetlink's
/// multicast groups, the others filtered out. Must be called inside a tokio runtime.
pub fn kernel_events() -> std::io::Result<tokio::sync::mpsc::Receiver<KernelEvent>> {
    use rtnetlink::MulticastGroup;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage;
    let (conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
        MulticastGroup::Ipv4Rule,
        MulticastGroup::Ipv6Rule,
    ])?;
    tokio::spawn(conn);
    // Bounded: a storm of kernel notifications costs this much and no more; a lost one is
    // recovered at the next binding event's reconcile.
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let ev = match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(m))
                    if m.header.protocol == RouteProtocol::Other(RTPROT_NEMO) =>
                {
                    dumped_route(&m).map(|(t, d, s, me, u)| KernelEvent::RouteGone(t, d, s, me, u))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRule(m))
                    if m.attributes
                        .contains(&RuleAttribute::Protocol(RouteProtocol::Other(RTPROT_NEMO))) =>
                {
                    rule_spec_of(&m).map(KernelEvent::RuleGone)
                }
                NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewRoute(m) | RouteNetlinkMessage::DelRoute(m),
                ) if m.header.address_family == AddressFamily::Inet6
                    && m.header.destination_prefix_length == 0
                    && m.header.protocol != RouteProtocol::Other(RTPROT_NEMO)
                    && route_table(&m) == TABLE_MAIN =>
                {
                    Some(KernelEvent::DefaultRoute6)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                    let name = m.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    });
                    let mtu = m.attributes.iter().find_map(|a| match a {
                        LinkAttribute::Mtu(n) => Some(*n),
                        _ => None,
                    });
                    name.zip(mtu).map(|(n, m)| KernelEvent::LinkMtu(n, m))
                }
                _ => None,
            };
            if let Some(ev) = ev
                && tx.try_send(ev).is_err()
                && tx.is_closed()
            {
                return;
            }
        }
    });
    Ok(rx)
}

/// The real thing: an rtnetlink connection (spawned on the current tokio runtime).
#[derive(Debug, Clone)]
pub struct RtNetOps {
    handle: Handle,
    /// The BPF encapsulation map, where the kernel data plane uses BPF: routes with a
    /// [`LwEncap::BpfMap`] are entries of it.
    bpf: Option<std::sync::Arc<crate::bpf::EncapMap>>,
}

impl RtNetOps {
    /// Opens a netlink connection and spawns its driver task.
    pub fn new() -> std::io::Result<RtNetOps> {
        let (conn, handle, _messages) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(RtNetOps { handle, bpf: None })
    }

    /// Routes with [`LwEncap::BpfMap`] go to `map` from now on (`None`: they fail).
    pub fn set_bpf_encap(&mut self, map: Option<std::sync::Arc<crate::bpf::EncapMap>>) {
        self.bpf = map;
    }

    /// A [`LwEncap::BpfMap`] route's entry added (`add`) or removed; `None` for any other
    /// route.
    fn bpf_route(&self, route: &RouteSpec, add: bool) -> Option<Result<()>> {
        let Some(LwEncap::BpfMap {
            local,
            remote,
            hop_limit,
        }) = route.encap
        else {
            return None;
        };
        let op = format!("route {} {route}", if add { "replace" } else { "del" });
        let Some(map) = &self.bpf else {
            return Some(Err(NetOpsError::new(op, "no BPF data plane")));
        };
        let r = if add {
            map.insert(&route.dst, local, remote, hop_limit)
        } else {
            map.remove(&route.dst)
        };
        Some(r.map_err(|e| NetOpsError {
            op,
            errno: e.raw_os_error(),
            message: e.to_string(),
        }))
    }

    /// The index of the device `dev`.
    pub async fn link_index(&self, dev: &str) -> Result<u32> {
        self.ifindex(dev).await
    }

    /// Every Ethernet device of the namespace, up or not: (index, name).
    pub async fn ether_links(&self) -> Result<Vec<(u32, String)>> {
        use rtnetlink::packet_route::link::LinkLayerType;
        let mut dump = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(link) = dump
            .try_next()
            .await
            .map_err(|e| NetOpsError::from_rtnl("link dump", e))?
        {
            if link.header.link_layer_type != LinkLayerType::Ether {
                continue;
            }
            let name = link.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            });
            out.push((link.header.index, name.unwrap_or_default()));
        }
        Ok(out)
    }

    async fn ifindex(&self, dev: &str) -> Result<u32> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(dev.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) => Err(no_device(dev)),
            Err(e) => Err(NetOpsError::from_rtnl(format!("link {dev}"), e)),
        }
    }

    async fn route_message(&self, r: &RouteSpec) -> Result<RouteMessage> {
        let op = || format!("route {r}");
        fn bad<E: fmt::Display>(op: String) -> impl FnOnce(E) -> NetOpsError {
            move |e| NetOpsError::new(op, e.to_string())
        }
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(r.dst.addr(), r.dst.prefix_len())
            .map_err(bad(op()))?
            .table_id(r.table)
            .protocol(RouteProtocol::Other(RTPROT_NEMO))
            .kind(if r.unreachable {
                RouteType::Unreachable
            } else {
                RouteType::Unicast
            });
        if let Some(m) = r.metric {
            b = b.priority(m);
        }
        if let Some(src) = r.src {
            b = b
                .source_prefix(src.addr(), src.prefix_len())
                .map_err(bad(op()))?;
        }
        if let Some(via) = r.via {
            b = b.gateway(via).map_err(bad(op()))?;
        }
        if let Some(p) = r.pref_src {
            b = b.pref_source(p).map_err(bad(op()))?;
        }
        // iproute2 gives IPv4 device routes link scope; the kernel accepts a preferred source
        // on them and uses the route for neighbours on that device only.
        if r.unreachable {
            return Ok(b.build());
        }
        if r.via.is_none() && r.dst.addr().is_ipv4() {
            b = b.scope(RouteScope::Link);
        }
        let index = self.ifindex(&r.dev).await?;
        let mut m = b.output_interface(index).build();
        if let Some(e) = r.encap {
            let (kind, encap) = lw_encap(e);
            m.attributes.push(RouteAttribute::Encap(encap));
            m.attributes.push(RouteAttribute::EncapType(kind));
            if let LwEncap::Seg6Red(_, hop_limit) = e {
                m.attributes
                    .push(RouteAttribute::Metrics(vec![RouteMetric::Hoplimit(
                        u32::from(hop_limit),
                    )]));
            }
        }
        Ok(m)
    }

    /// Creates the veth pair `dev`/`peer` (deleting one left by a previous run), both ends
    /// with the MAC address `mac` and ARP off ([`crate::kernel`]).
    pub async fn veth_recreate(&mut self, dev: &str, peer: &str, mac: [u8; 6]) -> Result<()> {
        self.link_delete(dev).await?;
        self.link_delete(peer).await?;
        self.handle
            .link()
            .add(rtnetlink::LinkVeth::new(dev, peer).build())
            .execute()
            .await
            .map_err(|e| {
                NetOpsError::from_rtnl(format!("link add {dev} type veth peer {peer}"), e)
            })?;
        for name in [dev, peer] {
            let index = self.ifindex(name).await?;
            let msg = LinkUnspec::new_with_index(index)
                .address(mac.to_vec())
                .arp(false)
                .build();
            self.handle
                .link()
                .set(msg)
                .execute()
                .await
                .map_err(|e| NetOpsError::from_rtnl(format!("link set {name} address"), e))?;
        }
        Ok(())
    }

    /// Deletes a link by name; a missing one is success.
    pub async fn link_delete(&mut self, dev: &str) -> Result<()> {
        let index = match self.ifindex(dev).await {
            Ok(i) => i,
            Err(e) if e.errno == Some(ENODEV) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetOpsError::from_rtnl(format!("link del {dev}"), e);
                if gone(&e) { Ok(()) } else { Err(e) }
            }
        }
    }

    /// The IPv6 rules that look up the local table: (priority, ours).
    async fn local_rules(&self) -> Result<Vec<(u32, bool)>> {
        let mut v = Vec::new();
        for m in self.dump_rules(IpVersion::V6).await? {
            let Some(r) = rule_spec_of(&m) else { continue };
            if r.table != TABLE_LOCAL || r.blackhole {
                continue;
            }
            let ours = m.attributes.iter().any(|a| {
                matches!(a, RuleAttribute::Protocol(RouteProtocol::Other(p)) if *p == RTPROT_NEMO)
            });
            v.push((r.priority, ours));
        }
        Ok(v)
    }

    fn local_rule(priority: u32, ours: bool) -> RuleMessage {
        let mut m = RuleMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.action = RuleAction::ToTable;
        m.header.table = TABLE_LOCAL as u8;
        m.attributes.push(RuleAttribute::Table(TABLE_LOCAL));
        m.attributes.push(RuleAttribute::Priority(priority));
        m.attributes.push(RuleAttribute::Protocol(if ours {
            RouteProtocol::Other(RTPROT_NEMO)
        } else {
            RouteProtocol::Kernel
        }));
        m
    }

    async fn rule_request(&self, add: bool, m: RuleMessage, what: String) -> Result<()> {
        let r = if add {
            let mut req = self.handle.rule().add();
            *req.message_mut() = m;
            req.execute().await
        } else {
            self.handle.rule().del(m).execute().await
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetOpsError::from_rtnl(what, e);
                if (add && e.errno == Some(EEXIST)) || (!add && gone(&e)) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Moves the IPv6 local-table rule from priority 0 to
    /// [`crate::routes::KPRIO_LOCAL`] (ours, protocol 110), so the kernel data plane's
    /// decapsulation rules at 0 come first. The new rule is added before the old one
    /// goes: local delivery never lapses.
    pub async fn local_rule_move(&mut self) -> Result<()> {
        let prio = crate::routes::KPRIO_LOCAL;
        self.rule_request(
            true,
            Self::local_rule(prio, true),
            format!("rule add pref {prio} lookup local"),
        )
        .await?;
        for (p, ours) in self.local_rules().await? {
            if p == 0 && !ours {
                self.rule_request(
                    false,
                    Self::local_rule(0, false),
                    "rule del pref 0 lookup local".into(),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Undoes [`RtNetOps::local_rule_move`] where it was done (our rule exists): the rule
    /// at priority 0 comes back first, then ours goes. Whether anything was done.
    pub async fn local_rule_restore(&mut self) -> Result<bool> {
        let rules = self.local_rules().await?;
        if !rules.iter().any(|(_, ours)| *ours) {
            return Ok(false);
        }
        if !rules.iter().any(|(p, ours)| *p == 0 && !ours) {
            self.rule_request(
                true,
                Self::local_rule(0, false),
                "rule add pref 0 lookup local".into(),
            )
            .await?;
        }
        for (p, ours) in rules {
            if ours {
                self.rule_request(
                    false,
                    Self::local_rule(p, true),
                    format!("rule del pref {p} lookup local"),
                )
                .await?;
            }
        }
        Ok(true)
    }

    fn rule_message(r: &RuleSpec) -> RuleMessage {
        let mut m = RuleMessage::default();
        m.header.family = match r.family {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        };
        if r.blackhole {
            m.header.action = RuleAction::Blackhole;
        } else {
            m.header.action = RuleAction::ToTable;
            // Tables above 255 only fit the attribute; the header field then says "unspec".
            m.header.table = u8::try_from(r.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
            m.attributes.push(RuleAttribute::Table(r.table));
        }
        if let Some(i) = &r.iif {
            m.attributes.push(RuleAttribute::Iifname(i.clone()));
        }
        m.attributes.push(RuleAttribute::Priority(r.priority));
        m.attributes
            .push(RuleAttribute::Protocol(RouteProtocol::Other(RTPROT_NEMO)));
        if let Some(src) = r.from {
            m.header.src_len = src.prefix_len();
            m.attributes.push(RuleAttribute::Source(src.addr()));
        }
        if let Some(dst) = r.to {
            m.header.dst_len = dst.prefix_len();
            m.attributes.push(RuleAttribute::Destination(dst.addr()));
        }
        if let Some(n) = r.suppress_prefixlen {
            m.attributes.push(RuleAttribute::SuppressPrefixLen(n));
        }
        if let Some(p) = r.ipproto {
            m.attributes
                .push(RuleAttribute::IpProtocol(IpProtocol::from(p)));
        }
        if let Some((mark, mask)) = r.fwmark {
            m.attributes.push(RuleAttribute::FwMark(mark));
            m.attributes.push(RuleAttribute::FwMask(mask));
        }
        m
    }

    async fn dump_routes(&self, version: IpVersion) -> Result<Vec<RouteMessage>> {
        let msg = match version {
            IpVersion::V4 => RouteMessageBuilder::<Ipv4Addr>::new().build(),
            IpVersion::V6 => RouteMessageBuilder::<Ipv6Addr>::new().build(),
        };
        self.handle
            .route()
            .get(msg)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetOpsError::from_rtnl("route dump", e))
    }

    /// The IPv6 default router of interface `ifindex` in the main table (the route of
    /// lowest metric through it): where a mobile router's outer packets from that
    /// interface's care-of address go (issue 12). `None` without one.
    pub async fn default_gateway6(&self, ifindex: u32) -> Result<Option<Ipv6Addr>> {
        let mut best: Option<(u32, Ipv6Addr)> = None;
        for m in self.dump_routes(IpVersion::V6).await? {
            if route_table(&m) != TABLE_MAIN || m.header.destination_prefix_length != 0 {
                continue;
            }
            let (mut oif, mut gw, mut metric) = (None, None, 0);
            for a in &m.attributes {
                match a {
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gw = Some(*g),
                    RouteAttribute::Priority(p) => metric = *p,
                    _ => {}
                }
            }
            if let (Some(i), Some(g)) = (oif, gw)
                && i == ifindex
                && best.is_none_or(|(m, _)| metric < m)
            {
                best = Some((metric, g));
            }
        }
        Ok(best.map(|(_, g)| g))
    }

    async fn dump_rules(&self, version: IpVersion) -> Result<Vec<RuleMessage>> {
        self.handle
            .rule()
            .get(version)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetOpsError::from_rtnl("rule dump", e))
    }
}

/// The netlink attributes of a lightweight tunnel.
fn lw_encap(e: LwEncap) -> (RouteLwEnCapType, Vec<RouteLwTunnelEncap>) {
    match e {
        LwEncap::Seg6Red(segment, _) => (
            RouteLwEnCapType::Seg6,
            vec![RouteLwTunnelEncap::Seg6(RouteSeg6IpTunnel::Seg6({
                let mut h = Seg6Header::default();
                // SEG6_IPTUN_MODE_ENCAP_RED (the kernel's uapi seg6_iptunnel.h): with one
                // segment no segment routing header is written at all.
                h.mode = Seg6Mode::Other(3);
                h.segments = vec![segment];
                h
            }))],
        ),
        LwEncap::EndDx6(nh) => (
            RouteLwEnCapType::Seg6Local,
            vec![
                RouteLwTunnelEncap::Seg6Local(RouteSeg6LocalTunnel::Action(
                    Seg6LocalAction::EndDx6,
                )),
                RouteLwTunnelEncap::Seg6Local(RouteSeg6LocalTunnel::Nh6(nh)),
            ],
        ),
        LwEncap::EndDx4(nh) => (
            RouteLwEnCapType::Seg6Local,
            vec![
                RouteLwTunnelEncap::Seg6Local(RouteSeg6LocalTunnel::Action(
                    Seg6LocalAction::EndDx4,
                )),
                RouteLwTunnelEncap::Seg6Local(RouteSeg6LocalTunnel::Nh4(nh)),
            ],
        ),
        // Never a kernel route: RtNetOps::bpf_route takes these before a message is built.
        LwEncap::BpfMap { .. } => (RouteLwEnCapType::Bpf, Vec::new()),
    }
}

/// (table, destination, source, metric, unreachable) of a dumped route.
type DumpedRoute = (u32, IpNet, Option<IpNet>, Option<u32>, bool);

fn route_text(m: &RouteMessage) -> String {
    match dumped_route(m) {
        Some((table, dst, src, metric, unreachable)) => format!(
            "{}{dst}{} table {table}{}",
            if unreachable { "unreachable " } else { "" },
            src.map(|s| format!(" from {s}")).unwrap_or_default(),
            metric.map(|m| format!(" metric {m}")).unwrap_or_default()
        ),
        None => "?".into(),
    }
}

/// Whether a dumped route is one `keep` holds: same table, destination, source and kind,
/// and the same metric where the spec names one (the kernel fills in its default).
fn route_kept(m: &RouteMessage, keep: &KernelState) -> bool {
    let Some((table, dst, src, metric, unreachable)) = dumped_route(m) else {
        return false;
    };
    keep.routes.iter().any(|r| {
        (r.table, r.dst, r.src) == (table, dst, src)
            && r.unreachable == unreachable
            && r.metric.is_none_or(|want| metric == Some(want))
    })
}

fn dumped_route(m: &RouteMessage) -> Option<DumpedRoute> {
    let net = |a: Option<IpAddr>, len: u8, family_v4: bool| {
        let a = a.unwrap_or(if family_v4 {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
        IpNet::new(a, len).ok()
    };
    let v4 = m.header.address_family == AddressFamily::Inet;
    let (mut dst, mut src, mut metric) = (None, None, None);
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = route_address(d),
            RouteAttribute::Source(s) => src = route_address(s),
            RouteAttribute::Priority(p) => metric = Some(*p),
            _ => {}
        }
    }
    let dst = net(dst, m.header.destination_prefix_length, v4)?;
    let src = match m.header.source_prefix_length {
        0 => None,
        len => net(src, len, v4),
    };
    let unreachable = m.header.kind == RouteType::Unreachable;
    Some((route_table(m), dst, src, metric, unreachable))
}

fn route_address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A dumped rule as the spec we would have installed it from.
fn rule_spec_of(m: &RuleMessage) -> Option<RuleSpec> {
    let family = match m.header.family {
        AddressFamily::Inet => Family::V4,
        AddressFamily::Inet6 => Family::V6,
        _ => return None,
    };
    let blackhole = m.header.action == RuleAction::Blackhole;
    let mut r = RuleSpec {
        family,
        priority: 0,
        from: None,
        to: None,
        table: if blackhole {
            0
        } else {
            u32::from(m.header.table)
        },
        suppress_prefixlen: None,
        iif: None,
        blackhole,
        ipproto: None,
        fwmark: None,
    };
    let (mut mark, mut mask) = (0, None);
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => r.priority = *p,
            RuleAttribute::Table(t) if !blackhole => r.table = *t,
            RuleAttribute::Iifname(i) => r.iif = Some(i.clone()),
            RuleAttribute::Source(ip) => r.from = IpNet::new(*ip, m.header.src_len).ok(),
            RuleAttribute::Destination(ip) => r.to = IpNet::new(*ip, m.header.dst_len).ok(),
            // The kernel reports "not set" as -1.
            RuleAttribute::SuppressPrefixLen(n) if *n != u32::MAX => {
                r.suppress_prefixlen = Some(*n)
            }
            RuleAttribute::IpProtocol(p) => r.ipproto = Some(u8::from(*p)),
            // A mark of 0 is not reported, only its mask.
            RuleAttribute::FwMark(v) => mark = *v,
            RuleAttribute::FwMask(v) => mask = Some(*v),
            _ => {}
        }
    }
    r.fwmark = mask.map(|mask| (mark, mask));
    Some(r)
}

fn route_table(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

impl NetOps for RtNetOps {
    async fn route_replace(&mut self, route: &RouteSpec) -> Result<()> {
        if let Some(r) = self.bpf_route(route, true) {
            return r;
        }
        let msg = self.route_message(route).await?;
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| NetOpsError::from_rtnl(format!("route replace {route}"), e))
    }

    async fn route_add(&mut self, route: &RouteSpec) -> Result<()> {
        if let Some(r) = self.bpf_route(route, true) {
            return r;
        }
        let msg = self.route_message(route).await?;
        // rtnetlink's add is NLM_F_CREATE | NLM_F_EXCL: EEXIST when the key is taken.
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(|e| NetOpsError::from_rtnl(format!("route add {route}"), e))
    }

    async fn our_route_keys(&mut self) -> Result<BTreeSet<(u32, IpNet, Option<IpNet>)>> {
        let mut keys = BTreeSet::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            for m in self.dump_routes(version).await? {
                if m.header.protocol == RouteProtocol::Other(RTPROT_NEMO)
                    && let Some((table, dst, src, _, _)) = dumped_route(&m)
                {
                    keys.insert((table, dst, src));
                }
            }
        }
        Ok(keys)
    }

    async fn route_del(&mut self, route: &RouteSpec) -> Result<()> {
        if let Some(r) = self.bpf_route(route, false) {
            return r;
        }
        let msg = match self.route_message(route).await {
            Ok(m) => m,
            // The device is gone, and its routes with it.
            Err(e) if e.errno == Some(ENODEV) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetOpsError::from_rtnl(format!("route del {route}"), e);
                if gone(&e) { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn rule_add(&mut self, rule: &RuleSpec) -> Result<()> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = Self::rule_message(rule);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetOpsError::from_rtnl(format!("rule add {rule}"), e);
                if e.errno == Some(EEXIST) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn rule_del(&mut self, rule: &RuleSpec) -> Result<()> {
        match self
            .handle
            .rule()
            .del(Self::rule_message(rule))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetOpsError::from_rtnl(format!("rule del {rule}"), e);
                if gone(&e) { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn link_set(&mut self, dev: &str, up: Option<bool>, mtu: Option<u32>) -> Result<()> {
        let index = self.ifindex(dev).await?;
        let mut b = LinkUnspec::new_with_index(index);
        match up {
            Some(true) => b = b.up(),
            Some(false) => b = b.down(),
            None => {}
        }
        if let Some(mtu) = mtu {
            b = b.mtu(mtu);
        }
        self.handle
            .link()
            .set(b.build())
            .execute()
            .await
            .map_err(|e| NetOpsError::from_rtnl(format!("link set {dev}"), e))
    }

    async fn link_mtu(&mut self, dev: &str) -> Result<u32> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(dev.to_owned())
            .execute();
        let link = links
            .try_next()
            .await
            .map_err(|e| NetOpsError::from_rtnl(format!("link {dev}"), e))?
            .ok_or_else(|| no_device(dev))?;
        link.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            })
            .ok_or_else(|| NetOpsError::new(format!("link {dev}"), "no MTU attribute"))
    }

    async fn addr_add(&mut self, dev: &str, addr: IpNet) -> Result<()> {
        let index = self.ifindex(dev).await?;
        let mut req = self
            .handle
            .address()
            .add(index, addr.addr(), addr.prefix_len());
        if addr.addr().is_ipv6() {
            // A home address on the tunnel has no neighbours to detect duplicates with.
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetOpsError::from_rtnl(format!("addr add {addr} dev {dev}"), e);
                if e.errno == Some(EEXIST) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn addr_del(&mut self, dev: &str, addr: IpNet) -> Result<()> {
        let index = match self.ifindex(dev).await {
            Ok(i) => i,
            Err(e) if e.errno == Some(ENODEV) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut m = AddressMessage::default();
        m.header.family = match addr {
            IpNet::V4(_) => AddressFamily::Inet,
            IpNet::V6(_) => AddressFamily::Inet6,
        };
        m.header.prefix_len = addr.prefix_len();
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(addr.addr()));
        m.attributes.push(AddressAttribute::Address(addr.addr()));
        match self.handle.address().del(m).execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetOpsError::from_rtnl(format!("addr del {addr} dev {dev}"), e);
                if gone(&e) { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn addrs_in(&mut self, prefix: IpNet) -> Result<Vec<(String, IpAddr)>> {
        let mut found = Vec::new();
        let mut addrs = self.handle.address().get().execute();
        while let Some(m) = addrs
            .try_next()
            .await
            .map_err(|e| NetOpsError::from_rtnl("addr dump", e))?
        {
            for a in &m.attributes {
                if let AddressAttribute::Local(ip) | AddressAttribute::Address(ip) = a
                    && prefix.contains(ip)
                {
                    found.push((m.header.index, *ip));
                    break;
                }
            }
        }
        let mut out = Vec::new();
        for (index, ip) in found {
            let mut links = self.handle.link().get().match_index(index).execute();
            if let Ok(Some(link)) = links.try_next().await
                && let Some(name) = link.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
            {
                out.push((name, ip));
            }
        }
        Ok(out)
    }

    async fn local_addr_in(&mut self, prefix: IpNet) -> Result<Option<IpAddr>> {
        let mut addrs = self.handle.address().get().execute();
        while let Some(m) = addrs
            .try_next()
            .await
            .map_err(|e| NetOpsError::from_rtnl("addr dump", e))?
        {
            for a in &m.attributes {
                if let AddressAttribute::Local(ip) | AddressAttribute::Address(ip) = a
                    && prefix.contains(ip)
                {
                    return Ok(Some(*ip));
                }
            }
        }
        Ok(None)
    }

    async fn link_name(&mut self, index: u32) -> Result<Option<String>> {
        let mut links = self.handle.link().get().match_index(index).execute();
        match links.try_next().await {
            Ok(link) => Ok(link.and_then(|l| {
                l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                })
            })),
            Err(e) => {
                let e = NetOpsError::from_rtnl(format!("link index {index}"), e);
                if gone(&e) { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn flush_ours(
        &mut self,
        rule_priorities: RangeInclusive<u32>,
        table: u32,
        keep: &KernelState,
    ) -> Result<usize> {
        let mut deleted = 0;
        let mut first_error = None;
        for version in [IpVersion::V4, IpVersion::V6] {
            for m in self.dump_routes(version.clone()).await? {
                if m.header.protocol != RouteProtocol::Other(RTPROT_NEMO) {
                    continue;
                }
                if route_kept(&m, keep) {
                    continue;
                }
                let text = format!("route flush table {}", route_table(&m));
                let what = route_text(&m);
                match self.handle.route().del(m).execute().await {
                    Ok(()) => {
                        debug!(route = %what, "route of ours removed");
                        deleted += 1
                    }
                    Err(e) => {
                        let e = NetOpsError::from_rtnl(text, e);
                        if !gone(&e) {
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
            for m in self.dump_rules(version).await? {
                let mut ours = false;
                let mut priority = 0;
                let mut rule_table = u32::from(m.header.table);
                for a in &m.attributes {
                    match a {
                        RuleAttribute::Protocol(RouteProtocol::Other(p)) if *p == RTPROT_NEMO => {
                            ours = true
                        }
                        RuleAttribute::Priority(p) => priority = *p,
                        RuleAttribute::Table(t) => rule_table = *t,
                        _ => {}
                    }
                }
                // Rules from a version that did not set the protocol: recognised by our
                // priority range and table.
                ours |= rule_priorities.contains(&priority) && rule_table == table;
                // The local table's rule, moved by the kernel data plane: put back by
                // crate::kernel::restore_local_rule, never simply deleted.
                ours &= rule_table != TABLE_LOCAL;
                if !ours || rule_spec_of(&m).is_some_and(|r| keep.rules.contains(&r)) {
                    continue;
                }
                let what = rule_spec_of(&m).map(|r| r.to_string());
                match self.handle.rule().del(m).execute().await {
                    Ok(()) => {
                        debug!(rule = ?what, "rule of ours removed");
                        deleted += 1
                    }
                    Err(e) => {
                        let e = NetOpsError::from_rtnl(format!("rule flush prio {priority}"), e);
                        if !gone(&e) {
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }
}

/// One recorded call of [`FakeNetOps`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `route_replace`.
    RouteReplace(RouteSpec),
    /// `route_add`.
    RouteAdd(RouteSpec),
    /// `route_del`.
    RouteDel(RouteSpec),
    /// `rule_add`.
    RuleAdd(RuleSpec),
    /// `rule_del`.
    RuleDel(RuleSpec),
    /// `link_set`.
    LinkSet(String, Option<bool>, Option<u32>),
    /// `addr_add`.
    AddrAdd(String, IpNet),
    /// `addr_del`.
    AddrDel(String, IpNet),
    /// `flush_ours`.
    Flush,
}

/// A NetOps that records calls and answers lookups from maps, for unit tests.
#[derive(Debug, Clone, Default)]
pub struct FakeNetOps {
    /// Every mutating call, in order.
    pub calls: Vec<Call>,
    /// Answers for [`NetOps::local_addr_in`].
    pub local: Vec<IpAddr>,
    /// Answers for [`NetOps::addrs_in`]: (interface, address).
    pub ifaddrs: Vec<(String, IpAddr)>,
    /// Answers for [`NetOps::link_mtu`] (default 1500).
    pub mtu: HashMap<String, u32>,
    /// Answers for [`NetOps::link_name`]: index to name.
    pub links: HashMap<u32, String>,
    /// Make every mutating call fail with this errno (to test error paths).
    pub fail_with: Option<i32>,
    /// Routes (table, destination, source) someone else holds: [`NetOps::route_add`]
    /// fails with EEXIST for them.
    pub taken: BTreeSet<(u32, IpNet, Option<IpNet>)>,
    /// Answers for [`NetOps::our_route_keys`].
    pub ours: BTreeSet<(u32, IpNet, Option<IpNet>)>,
}

impl FakeNetOps {
    /// Takes the recorded calls, leaving the list empty.
    pub fn take(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls)
    }

    fn record(&mut self, call: Call) -> Result<()> {
        let text = format!("{call:?}");
        self.calls.push(call);
        match self.fail_with {
            Some(errno) => Err(NetOpsError {
                op: text,
                errno: Some(errno),
                message: std::io::Error::from_raw_os_error(errno).to_string(),
            }),
            None => Ok(()),
        }
    }
}

impl NetOps for FakeNetOps {
    async fn route_replace(&mut self, route: &RouteSpec) -> Result<()> {
        self.record(Call::RouteReplace(route.clone()))
    }
    async fn route_add(&mut self, route: &RouteSpec) -> Result<()> {
        let exists = self.taken.contains(&(route.table, route.dst, route.src));
        self.record(Call::RouteAdd(route.clone()))?;
        if exists {
            return Err(NetOpsError {
                op: format!("route add {route}"),
                errno: Some(EEXIST),
                message: "File exists".into(),
            });
        }
        Ok(())
    }
    async fn our_route_keys(&mut self) -> Result<BTreeSet<(u32, IpNet, Option<IpNet>)>> {
        Ok(self.ours.clone())
    }
    async fn route_del(&mut self, route: &RouteSpec) -> Result<()> {
        self.record(Call::RouteDel(route.clone()))
    }
    async fn rule_add(&mut self, rule: &RuleSpec) -> Result<()> {
        self.record(Call::RuleAdd(rule.clone()))
    }
    async fn rule_del(&mut self, rule: &RuleSpec) -> Result<()> {
        self.record(Call::RuleDel(rule.clone()))
    }
    async fn link_set(&mut self, dev: &str, up: Option<bool>, mtu: Option<u32>) -> Result<()> {
        self.record(Call::LinkSet(dev.to_owned(), up, mtu))
    }
    async fn link_mtu(&mut self, dev: &str) -> Result<u32> {
        Ok(self.mtu.get(dev).copied().unwrap_or(1500))
    }
    async fn addr_add(&mut self, dev: &str, addr: IpNet) -> Result<()> {
        self.record(Call::AddrAdd(dev.to_owned(), addr))
    }
    async fn addr_del(&mut self, dev: &str, addr: IpNet) -> Result<()> {
        self.record(Call::AddrDel(dev.to_owned(), addr))
    }
    async fn local_addr_in(&mut self, prefix: IpNet) -> Result<Option<IpAddr>> {
        Ok(self.local.iter().copied().find(|a| prefix.contains(a)))
    }
    async fn addrs_in(&mut self, prefix: IpNet) -> Result<Vec<(String, IpAddr)>> {
        Ok(self
            .ifaddrs
            .iter()
            .filter(|(_, a)| prefix.contains(a))
            .cloned()
            .collect())
    }
    async fn link_name(&mut self, index: u32) -> Result<Option<String>> {
        Ok(self.links.get(&index).cloned())
    }
    async fn flush_ours(
        &mut self,
        _: RangeInclusive<u32>,
        _: u32,
        _: &KernelState,
    ) -> Result<usize> {
        self.record(Call::Flush).map(|()| 0)
    }
}
