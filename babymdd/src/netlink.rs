//! rtnetlink → [`Observation`]s, and the start-up sequence that loses no event.
//!
//! Start-up order (style.md): open a socket bound to the multicast groups (links, IPv4
//! and IPv6 addresses) **first**, then dump links, then addresses. Every change after the
//! bind is queued on the socket; every change before it is in the dump. Feeding the dump
//! and then the queued events to the detector as one batch converges on the kernel's
//! state, because each message carries the whole state of its object (a NEWADDR replayed
//! after a dump that already showed the address changes nothing, a DELADDR of an address
//! the dump never showed is a no-op).
//!
//! The types are rtnetlink's re-exports of netlink-packet-route, so there is one version
//! of them in the build.

use std::net::IpAddr;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, MulticastGroup};
use tracing::{debug, warn};

use crate::detector::{AddrFlags, AddrInfo, LinkInfo, Observation, Scope};

/// Receive buffer of the multicast socket. A burst of address events (a link with many
/// addresses going down) must not overflow it: an overflow loses events, and the kernel
/// only says so with ENOBUFS.
const RX_BUFFER: usize = 1 << 20;

/// Why watching the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening or binding the netlink socket.
    #[error("netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    /// A dump request failed.
    #[error("netlink dump of {what}: {source}")]
    Dump {
        /// Links or addresses.
        what: &'static str,
        /// rtnetlink's error (kernel errno inside).
        #[source]
        source: rtnetlink::Error,
    },
}

/// The observation a netlink message means, if it means anything to the detector.
pub fn observation(msg: &RouteNetlinkMessage) -> Option<Observation> {
    match msg {
        RouteNetlinkMessage::NewLink(l) => link_info(l).map(Observation::Link),
        RouteNetlinkMessage::DelLink(l) => Some(Observation::LinkRemoved {
            ifindex: l.header.index,
        }),
        RouteNetlinkMessage::NewAddress(a) => addr_info(a).map(Observation::AddrAdded),
        RouteNetlinkMessage::DelAddress(a) => addr_info(a).map(|a| Observation::AddrRemoved {
            ifindex: a.ifindex,
            addr: a.addr,
        }),
        _ => None,
    }
}

/// RTM_NEWLINK → [`LinkInfo`]. `None` without a name (never seen in practice).
pub fn link_info(l: &LinkMessage) -> Option<LinkInfo> {
    let name = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    let f = l.header.flags;
    Some(LinkInfo {
        ifindex: l.header.index,
        name,
        // Administratively up is not enough: a veth whose peer is down, or an unplugged
        // cable, has IFF_UP without IFF_LOWER_UP (carrier).
        up: f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp),
        loopback: f.contains(LinkFlags::Loopback),
    })
}

/// RTM_NEWADDR/DELADDR → [`AddrInfo`]. `None` for families other than IPv4/IPv6.
pub fn addr_info(a: &AddressMessage) -> Option<AddrInfo> {
    let mut address = None;
    let mut local = None;
    let mut flags32 = None;
    for attr in &a.attributes {
        match attr {
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Flags(f) => flags32 = Some(*f),
            _ => {}
        }
    }
    // IPv4: IFA_LOCAL is our address, IFA_ADDRESS the peer's on point-to-point links.
    // IPv6: IFA_ADDRESS (IFA_LOCAL only appears with a peer).
    let addr: IpAddr = match (local, address) {
        (Some(l @ IpAddr::V4(_)), _) => l,
        (_, Some(a)) => a,
        (Some(l), None) => l,
        (None, None) => return None,
    };
    // IFA_FLAGS (32 bits) supersedes the 8-bit header field when present.
    let flags = match flags32 {
        Some(f) => AddrFlags {
            tentative: f.contains(AddressFlags::Tentative),
            optimistic: f.contains(AddressFlags::Optimistic),
            dadfailed: f.contains(AddressFlags::Dadfailed),
            deprecated: f.contains(AddressFlags::Deprecated),
            homeaddress: f.contains(AddressFlags::Homeaddress),
        },
        None => {
            let f = a.header.flags;
            AddrFlags {
                tentative: f.contains(AddressHeaderFlags::Tentative),
                optimistic: f.contains(AddressHeaderFlags::Optimistic),
                dadfailed: f.contains(AddressHeaderFlags::Dadfailed),
                deprecated: f.contains(AddressHeaderFlags::Deprecated),
                homeaddress: f.contains(AddressHeaderFlags::Homeaddress),
            }
        }
    };
    let scope = match a.header.scope {
        AddressScope::Universe => Scope::Global,
        AddressScope::Site => Scope::Site,
        AddressScope::Link => Scope::Link,
        _ => Scope::Host,
    };
    Some(AddrInfo {
        ifindex: a.header.index,
        addr,
        prefix_len: a.header.prefix_len,
        flags,
        scope,
    })
}

/// A subscribed rtnetlink connection.
#[derive(Debug)]
pub struct Watcher {
    handle: Handle,
    events: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

impl Watcher {
    /// Subscribes, then dumps: returns the watcher and the kernel's current links and
    /// addresses (links first) as observations. Must run inside a tokio runtime.
    pub async fn start() -> Result<(Watcher, Vec<Observation>), NetlinkError> {
        let (mut conn, handle, events) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])?;
        if let Err(e) = conn.socket_mut().socket_mut().set_rx_buf_sz(RX_BUFFER) {
            warn!(error = %e, "could not enlarge the netlink receive buffer");
        }
        tokio::spawn(conn);

        let mut dump = Vec::new();
        let mut links = handle.link().get().execute();
        while let Some(l) = links.next().await {
            let l = l.map_err(|source| NetlinkError::Dump {
                what: "links",
                source,
            })?;
            dump.extend(link_info(&l).map(Observation::Link));
        }
        let mut addrs = handle.address().get().execute();
        while let Some(a) = addrs.next().await {
            let a = a.map_err(|source| NetlinkError::Dump {
                what: "addresses",
                source,
            })?;
            dump.extend(addr_info(&a).map(Observation::AddrAdded));
        }
        debug!(observations = dump.len(), "netlink dump done");
        Ok((Watcher { handle, events }, dump))
    }

    /// The handle, for more requests.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Waits for the next event, then takes every other one already queued, so the
    /// caller can decide once per burst. `None` when the socket is gone (overflow, or
    /// the connection task ended): the caller must not go on blind.
    pub async fn next_batch(&mut self) -> Option<Vec<Observation>> {
        let first = self.events.next().await?;
        let mut batch = Vec::new();
        push_event(&mut batch, first.0);
        while let Ok((msg, _)) = self.events.try_recv() {
            push_event(&mut batch, msg);
        }
        Some(batch)
    }

    /// Takes the events queued right now without waiting (used after the dump).
    pub fn queued(&mut self) -> Vec<Observation> {
        let mut batch = Vec::new();
        while let Ok((msg, _)) = self.events.try_recv() {
            push_event(&mut batch, msg);
        }
        batch
    }
}

fn push_event(batch: &mut Vec<Observation>, msg: NetlinkMessage<RouteNetlinkMessage>) {
    match msg.payload {
        NetlinkPayload::InnerMessage(m) => batch.extend(observation(&m)),
        NetlinkPayload::Error(e) => warn!(error = ?e, "netlink error on the event socket"),
        NetlinkPayload::Overrun(_) => warn!("netlink overrun: events lost"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::AddressFamily;
    use rtnetlink::packet_route::address::AddressHeader;
    use rtnetlink::packet_route::link::LinkHeader;

    fn addr_msg(
        family: AddressFamily,
        attrs: Vec<AddressAttribute>,
        scope: AddressScope,
    ) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header = AddressHeader {
            family,
            prefix_len: 64,
            flags: AddressHeaderFlags::Permanent,
            scope,
            index: 3,
        };
        m.attributes = attrs;
        m
    }

    #[test]
    fn ipv6_address_with_ifa_flags() {
        let m = addr_msg(
            AddressFamily::Inet6,
            vec![
                AddressAttribute::Address("2001:db8:a::5".parse().unwrap()),
                AddressAttribute::Flags(AddressFlags::Tentative | AddressFlags::Optimistic),
            ],
            AddressScope::Universe,
        );
        let a = addr_info(&m).unwrap();
        assert_eq!(a.addr, "2001:db8:a::5".parse::<IpAddr>().unwrap());
        assert_eq!(a.ifindex, 3);
        assert_eq!(a.prefix_len, 64);
        assert!(a.flags.tentative && a.flags.optimistic && !a.flags.deprecated);
        assert_eq!(a.scope, Scope::Global);
        assert_eq!(
            observation(&RouteNetlinkMessage::DelAddress(m)),
            Some(Observation::AddrRemoved {
                ifindex: 3,
                addr: "2001:db8:a::5".parse().unwrap()
            })
        );
    }

    #[test]
    fn ipv4_point_to_point_takes_local() {
        let m = addr_msg(
            AddressFamily::Inet,
            vec![
                AddressAttribute::Address("192.0.2.1".parse().unwrap()),
                AddressAttribute::Local("192.0.2.5".parse().unwrap()),
            ],
            AddressScope::Universe,
        );
        assert_eq!(
            addr_info(&m).unwrap().addr,
            "192.0.2.5".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn header_flags_when_no_ifa_flags() {
        let mut m = addr_msg(
            AddressFamily::Inet6,
            vec![AddressAttribute::Address("fe80::1".parse().unwrap())],
            AddressScope::Link,
        );
        m.header.flags = AddressHeaderFlags::Deprecated;
        let a = addr_info(&m).unwrap();
        assert!(a.flags.deprecated);
        assert_eq!(a.scope, Scope::Link);
    }

    #[test]
    fn link_up_needs_carrier() {
        let mut m = LinkMessage::default();
        m.header = LinkHeader {
            index: 2,
            flags: LinkFlags::Up | LinkFlags::Broadcast,
            ..Default::default()
        };
        m.attributes = vec![LinkAttribute::IfName("eth0".into())];
        assert!(!link_info(&m).unwrap().up);
        m.header.flags |= LinkFlags::LowerUp;
        let l = link_info(&m).unwrap();
        assert!(l.up && !l.loopback);
        assert_eq!(l.name, "eth0");
        assert_eq!(
            observation(&RouteNetlinkMessage::DelLink(m)),
            Some(Observation::LinkRemoved { ifindex: 2 })
        );
    }
}
