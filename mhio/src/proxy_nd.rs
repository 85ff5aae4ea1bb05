//! Proxy Neighbour Discovery for the home agent: defending a registered home address on
//! the home link (RFC 6275 §10.4.1; RFC 3963 §6 for mobile routers).
//!
//! The kernel answers Neighbour Solicitations for a proxied address itself once
//! (docs/notes.md §3):
//! * `net.ipv6.conf.<if>.proxy_ndp = 1` and forwarding on (the kernel proxies only on a
//!   forwarding interface, `ndisc_recv_ns`), and `net.ipv6.conf.all.proxy_ndp = 1` for
//!   unicast solicitations, which reach ND through the forwarding path (`ip6_forward`);
//! * `net.ipv6.neigh.<if>.proxy_delay = 0` (the default delays answers by up to 0.8 s);
//! * a proxy neighbour entry (`NTF_PROXY`, what `ip -6 neigh add proxy HOA dev IF` makes).
//!
//! On registration the HA also multicasts an unsolicited Neighbour Advertisement for the
//! HoA so that home-link caches that still point at the mobile router's own MAC move to the
//! HA's (RFC 6275 §10.4.1; RFC 4861 §7.2.6): Override set, Solicited clear, Router set for a
//! mobile router (docs/notes.md §10, "defend the HoA with proxy ND, NA with Router flag set
//! when R=1"), target link-layer address = the home interface's MAC, hop limit 255, to
//! ff02::1. On deregistration only the proxy entry goes; no NA is needed (the returning
//! mobile router advertises itself).

use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};

use futures::TryStreamExt;
use proto::icmpv6::{Icmpv6Packet, Icmpv6Repr, NaFlags, NdOption, NeighborAdvertisement};
use rtnetlink::Handle;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tracing::{debug, info};

use crate::{Error, Result, if_index};

/// Length of the advertisement [`neighbour_advertisement`] builds: the fixed part and one
/// Ethernet Target Link-Layer Address option (RFC 4861 §4.4, §4.6.1).
pub const NA_LEN: usize = 32;
/// RFC 4861 §7.1.2: receivers drop ND messages whose hop limit is not 255.
const ND_HOP_LIMIT: u32 = proto::icmpv6::ND_HOP_LIMIT as u32;

/// Builds an unsolicited Neighbour Advertisement for `target` (RFC 4861 §4.4): Override set,
/// Solicited clear, Router as given, one Target Link-Layer Address option with `mac`. The
/// checksum is left zero: the kernel fills it on an ICMPv6 raw socket (RFC 3542 §3.1).
pub fn neighbour_advertisement(target: Ipv6Addr, mac: [u8; 6], router: bool) -> [u8; NA_LEN] {
    let mut flags = NaFlags::O;
    flags.set(NaFlags::R, router);
    advertisement(target, mac, flags)
}

/// The answer to a solicitation for a defended `target` (RFC 4861 §7.2.4, §7.2.8):
/// Solicited set unless it goes to all nodes (an answer to DAD), Override clear (a proxy's
/// answer must not override the owner's own), Router as given, our `mac` as the Target
/// Link-Layer Address. Checksum zero, as [`neighbour_advertisement`].
pub fn solicited_advertisement(
    target: Ipv6Addr,
    mac: [u8; 6],
    router: bool,
    to_all_nodes: bool,
) -> [u8; NA_LEN] {
    let mut flags = NaFlags::default();
    flags.set(NaFlags::S, !to_all_nodes);
    flags.set(NaFlags::R, router);
    advertisement(target, mac, flags)
}

fn advertisement(target: Ipv6Addr, mac: [u8; 6], flags: NaFlags) -> [u8; NA_LEN] {
    let repr = Icmpv6Repr::NeighborAdvertisement(NeighborAdvertisement {
        flags,
        target,
        options: vec![NdOption::TargetLinkLayerAddress(&mac)],
    });
    let mut na = [0u8; NA_LEN];
    // Cannot fail: this message is exactly NA_LEN octets (the layout test checks).
    let emitted = repr.emit(&mut Icmpv6Packet::new_unchecked(&mut na[..]));
    debug_assert!(emitted.is_ok() && repr.buffer_len() == NA_LEN);
    na
}

/// The interface holding `addr` as an on-link address (prefix shorter than /128): the
/// home link for a mobile router back home. (name, index, MAC).
pub fn link_holding(addr: Ipv6Addr) -> Option<(String, u32, [u8; 6])> {
    let name = nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        let ip = a.address?.as_sockaddr_in6()?.ip();
        let len: u32 = a
            .netmask?
            .as_sockaddr_in6()?
            .ip()
            .octets()
            .iter()
            .map(|b| b.count_ones())
            .sum();
        (ip == addr && len < 128).then_some(a.interface_name)
    })?;
    let index = crate::if_index(&name).ok()?;
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    let mut mac = [0u8; 6];
    let parts: Vec<u8> = text
        .trim()
        .split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    if parts.len() != 6 {
        return None;
    }
    mac.copy_from_slice(&parts);
    Some((name, index, mac))
}

/// Multicasts one unsolicited Neighbour Advertisement for `addr` from `addr` itself on
/// `ifname` (a node announcing its own address: RFC 4861 §7.2.6, Override set), to all
/// nodes, hop limit 255.
///
/// # Errors
/// [`Error::Socket`] for the socket, or the send error naming ff02::1.
pub fn announce_own_address(
    ifname: &str,
    ifindex: u32,
    addr: Ipv6Addr,
    mac: [u8; 6],
    router: bool,
) -> Result<()> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
        .map_err(|e| Error::socket("opening a raw ICMPv6 socket (needs CAP_NET_RAW)", e))?;
    let setup = |what: &str, r: std::io::Result<()>| {
        r.map_err(|e| Error::socket(format!("{what} on the ICMPv6 socket"), e))
    };
    setup("SO_BINDTODEVICE", s.bind_device(Some(ifname.as_bytes())))?;
    setup(
        "bind to the home address",
        s.bind(&SockAddr::from(SocketAddrV6::new(addr, 0, 0, 0))),
    )?;
    setup("IPV6_MULTICAST_IF", s.set_multicast_if_v6(ifindex))?;
    setup(
        "IPV6_MULTICAST_HOPS 255",
        s.set_multicast_hops_v6(ND_HOP_LIMIT),
    )?;
    let na = neighbour_advertisement(addr, mac, router);
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    s.send_to(&na, &SockAddr::from(SocketAddrV6::new(dst, 0, 0, ifindex)))
        .map_err(|e| Error::send(dst, na.len(), e))?;
    Ok(())
}

/// Writes one sysctl under /proc/sys (in the caller's network namespace).
pub fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| Error::Sysctl {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })?;
    debug!(path, value, "sysctl set");
    Ok(())
}

/// Proxy ND on one home interface.
#[derive(Debug)]
pub struct ProxyNd {
    handle: Handle,
    ifname: String,
    ifindex: u32,
    mac: [u8; 6],
    na_socket: Socket,
    /// Receives the home link's ICMPv6 for proxy DAD (Neighbour Advertisements).
    dad_socket: tokio::io::unix::AsyncFd<Socket>,
}

impl ProxyNd {
    /// Opens an rtnetlink connection (spawned on the current tokio runtime), looks up the
    /// home interface's index and MAC, sets the sysctls (module docs) and opens the raw
    /// ICMPv6 socket for advertisements.
    ///
    /// # Errors
    /// [`Error::NoSuchInterface`], [`Error::Sysctl`], [`Error::Netlink`], [`Error::Socket`].
    pub async fn new(home_if: &str) -> Result<Self> {
        let ifindex = if_index(home_if)?;
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| Error::socket("opening an rtnetlink socket", e))?;
        tokio::spawn(conn);
        let mac = link_mac(&handle, home_if, ifindex).await?;

        write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
        write_sysctl(
            &format!("/proc/sys/net/ipv6/conf/{home_if}/forwarding"),
            "1",
        )?;
        write_sysctl(&format!("/proc/sys/net/ipv6/conf/{home_if}/proxy_ndp"), "1")?;
        // A unicast NS to a proxied address is routed (to the binding's tunnel route)
        // before neighbour discovery sees it; the forwarding path hands it to ND only when
        // the *all* setting is on (`ip6_forward`). Without it the neighbour's unicast
        // solicitations went unanswered, and into the tunnel.
        write_sysctl("/proc/sys/net/ipv6/conf/all/proxy_ndp", "1")?;
        write_sysctl(
            &format!("/proc/sys/net/ipv6/neigh/{home_if}/proxy_delay"),
            "0",
        )?;

        let na_socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(|e| Error::socket("opening a raw ICMPv6 socket (needs CAP_NET_RAW)", e))?;
        let setup = |what: &str, r: std::io::Result<()>| {
            r.map_err(|e| Error::socket(format!("{what} on the ICMPv6 socket"), e))
        };
        setup(
            "IPV6_MULTICAST_HOPS 255",
            na_socket.set_multicast_hops_v6(ND_HOP_LIMIT),
        )?;
        setup(
            "IPV6_UNICAST_HOPS 255",
            na_socket.set_unicast_hops_v6(ND_HOP_LIMIT),
        )?;
        setup("IPV6_MULTICAST_IF", na_socket.set_multicast_if_v6(ifindex))?;
        setup(
            "IPV6_MULTICAST_LOOP off",
            na_socket.set_multicast_loop_v6(false),
        )?;
        setup(
            "SO_BINDTODEVICE",
            na_socket.bind_device(Some(home_if.as_bytes())),
        )?;
        // Send-only: the socket is never read, so keep whatever ICMPv6 it is handed small.
        setup("SO_RCVBUF", na_socket.set_recv_buffer_size(0))?;
        setup("O_NONBLOCK", na_socket.set_nonblocking(true))?;
        // Proxy DAD (RFC 6275 §10.3.1) listens for the answer of a node that holds an
        // address being checked: a Neighbour Advertisement, on the home link only.
        let dad_socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(|e| Error::socket("opening a raw ICMPv6 socket (needs CAP_NET_RAW)", e))?;
        dad_socket
            .bind_device(Some(home_if.as_bytes()))
            .map_err(|e| Error::socket("SO_BINDTODEVICE on the ICMPv6 socket", e))?;
        dad_socket
            .set_nonblocking(true)
            .map_err(|e| Error::socket("O_NONBLOCK on the ICMPv6 socket", e))?;
        let dad_socket = crate::register(dad_socket, "ICMPv6 (proxy DAD)")?;
        info!(ifname = home_if, ifindex, "proxy ND ready");
        Ok(ProxyNd {
            handle,
            ifname: home_if.to_owned(),
            ifindex,
            mac,
            na_socket,
            dad_socket,
        })
    }

    /// The next Neighbour Advertisement seen on the home link: (target, source). Other
    /// ICMPv6 is read and skipped.
    ///
    /// # Errors
    /// [`Error::Socket`] when the socket fails.
    pub async fn recv_advertisement(&self) -> Result<(Ipv6Addr, Ipv6Addr)> {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 1500];
        loop {
            let mut guard = self
                .dad_socket
                .readable()
                .await
                .map_err(|e| Error::socket("waiting on the ICMPv6 socket", e))?;
            let r = guard.try_io(|s| {
                nix::sys::socket::recvfrom::<nix::sys::socket::SockaddrIn6>(
                    s.get_ref().as_raw_fd(),
                    &mut buf,
                )
                .map_err(std::io::Error::from)
            });
            match r {
                Ok(Ok((n, from))) => {
                    let src = from.map(|a| a.ip());
                    if let (Some(target), Some(src)) =
                        (crate::icmp::advertised_target(&buf[..n]), src)
                    {
                        return Ok((target, src));
                    }
                }
                Ok(Err(e)) => return Err(Error::socket("receiving on the ICMPv6 socket", e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// The home interface's link-layer address, as advertised.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The home interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Starts defending `hoa`: adds (or replaces) the proxy entry, then sends one unsolicited
    /// NA (`router` for a mobile router). With `router` the entry also carries `NTF_ROUTER`,
    /// so the kernel's own answers to solicitations set the Router flag too (`ndisc_recv_ns`
    /// takes it from the proxy entry); RFC 4861 §7.2.6 allows repeating the unsolicited NA
    /// (up to 3 times, [`ProxyNd::send_unsolicited_na`]).
    ///
    /// # Errors
    /// [`Error::Netlink`], or the send errors of [`ProxyNd::send_unsolicited_na`].
    pub async fn add(&self, hoa: Ipv6Addr, router: bool) -> Result<()> {
        self.handle
            .neighbours()
            .add(self.ifindex, IpAddr::V6(hoa))
            .flags(if router {
                NeighbourFlags::Proxy | NeighbourFlags::Router
            } else {
                NeighbourFlags::Proxy
            })
            .replace()
            .execute()
            .await
            .map_err(|source| Error::Netlink {
                what: format!("adding proxy neighbour {hoa} on {}", self.ifname),
                source,
            })?;
        info!(%hoa, ifname = %self.ifname, "proxy ND entry added");
        self.send_unsolicited_na(hoa, router)
    }

    /// Stops defending `hoa`: deletes the proxy entry. Already gone is success.
    ///
    /// # Errors
    /// [`Error::Netlink`].
    pub async fn remove(&self, hoa: Ipv6Addr) -> Result<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.ifindex = self.ifindex;
        msg.header.flags = NeighbourFlags::Proxy;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet6(
                hoa,
            )));
        match self.handle.neighbours().del(msg).execute().await {
            Ok(()) => {
                info!(%hoa, ifname = %self.ifname, "proxy ND entry removed");
                Ok(())
            }
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code().abs() == nix::libc::ENOENT => {
                debug!(%hoa, "proxy ND entry already gone");
                Ok(())
            }
            Err(source) => Err(Error::Netlink {
                what: format!("deleting proxy neighbour {hoa} on {}", self.ifname),
                source,
            }),
        }
    }

    /// Adds `addr/prefix_len` to the home interface (or renews it), without DAD, valid and
    /// preferred for `lifetime` (whole seconds, at least 1): a home agent address held
    /// while leading (issue 13). The lifetime makes the kernel drop it by itself when the
    /// holder dies without stepping down; the holder renews it well before.
    ///
    /// # Errors
    /// [`Error::Netlink`].
    pub async fn hold_address(
        &self,
        addr: IpAddr,
        prefix_len: u8,
        lifetime: std::time::Duration,
    ) -> Result<()> {
        use rtnetlink::packet_route::address::{
            AddressAttribute, AddressFlags, AddressHeaderFlags, CacheInfo,
        };
        let secs = u32::try_from(lifetime.as_secs().max(1)).unwrap_or(u32::MAX);
        let mut req = self
            .handle
            .address()
            .add(self.ifindex, addr, prefix_len)
            .replace();
        let msg = req.message_mut();
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        let mut cache = CacheInfo::default();
        cache.ifa_preferred = secs;
        cache.ifa_valid = secs;
        msg.attributes.push(AddressAttribute::CacheInfo(cache));
        req.execute().await.map_err(|source| Error::Netlink {
            what: format!("adding address {addr}/{prefix_len} on {}", self.ifname),
            source,
        })
    }

    /// Removes `addr/prefix_len` from the home interface. Already gone is success.
    ///
    /// # Errors
    /// [`Error::Netlink`].
    pub async fn release_address(&self, addr: IpAddr, prefix_len: u8) -> Result<bool> {
        let msg = self
            .handle
            .address()
            .add(self.ifindex, addr, prefix_len)
            .message_mut()
            .clone();
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(e))
                if matches!(
                    e.raw_code().abs(),
                    nix::libc::EADDRNOTAVAIL | nix::libc::ENOENT | nix::libc::ENODEV
                ) =>
            {
                Ok(false)
            }
            Err(source) => Err(Error::Netlink {
                what: format!("deleting address {addr}/{prefix_len} on {}", self.ifname),
                source,
            }),
        }
    }

    /// The proxy neighbour entries on the home interface (what a had that died left).
    ///
    /// # Errors
    /// [`Error::Netlink`].
    pub async fn proxy_entries(&self) -> Result<Vec<Ipv6Addr>> {
        let mut dump = self
            .handle
            .neighbours()
            .get()
            .proxies()
            .set_address_family(AddressFamily::Inet6)
            .execute();
        let mut out = Vec::new();
        while let Some(msg) = dump.try_next().await.map_err(|source| Error::Netlink {
            what: format!("listing proxy neighbours on {}", self.ifname),
            source,
        })? {
            if msg.header.ifindex != self.ifindex {
                continue;
            }
            for a in &msg.attributes {
                if let NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) = a {
                    out.push(*ip);
                }
            }
        }
        Ok(out)
    }

    /// Answers `s`, a solicitation for an address we defend (`router`: a mobile
    /// router's), from this interface's link-layer address.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`], [`Error::Unreachable`] or [`Error::Send`].
    pub fn answer(&self, s: &crate::Solicitation, router: bool) -> Result<()> {
        let to = s.answer_to();
        let na = solicited_advertisement(s.target, self.mac, router, to.is_multicast());
        let addr = SockAddr::from(SocketAddrV6::new(to, 0, 0, self.ifindex));
        self.na_socket
            .send_to(&na, &addr)
            .map_err(|e| Error::send(to, na.len(), e))?;
        debug!(target = %s.target, %to, router, "solicitation answered");
        Ok(())
    }

    /// Multicasts one unsolicited NA for `hoa` to all nodes on the home link (ff02::1).
    ///
    /// # Errors
    /// [`Error::PermissionDenied`], [`Error::Unreachable`] or [`Error::Send`], naming ff02::1.
    pub fn send_unsolicited_na(&self, hoa: Ipv6Addr, router: bool) -> Result<()> {
        let na = neighbour_advertisement(hoa, self.mac, router);
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let addr = SockAddr::from(SocketAddrV6::new(dst, 0, 0, self.ifindex));
        self.na_socket
            .send_to(&na, &addr)
            .map_err(|e| Error::send(dst, na.len(), e))?;
        debug!(%hoa, router, ifname = %self.ifname, "unsolicited NA sent");
        Ok(())
    }
}

async fn link_mac(handle: &Handle, name: &str, ifindex: u32) -> Result<[u8; 6]> {
    let no_mac = |detail: String| Error::NoSuchInterface {
        name: name.to_owned(),
        detail,
    };
    let mut links = handle.link().get().match_index(ifindex).execute();
    let link = links
        .try_next()
        .await
        .map_err(|source| Error::Netlink {
            what: format!("getting link {name}"),
            source,
        })?
        .ok_or_else(|| no_mac("no RTM_NEWLINK answer".into()))?;
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
            _ => None,
        })
        .ok_or_else(|| no_mac("no 6-octet link-layer address (not Ethernet-like)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_layout() {
        let hoa: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        let mac = [0x02, 0, 0, 0, 0, 0x0a];
        let na = neighbour_advertisement(hoa, mac, true);
        assert_eq!(na[0], 136);
        assert_eq!(na[1], 0);
        assert_eq!(&na[2..4], &[0, 0]);
        assert_eq!(na[4], 0xa0, "R and O set, S clear");
        assert_eq!(&na[5..8], &[0, 0, 0]);
        assert_eq!(&na[8..24], &hoa.octets());
        assert_eq!(&na[24..26], &[2, 1]);
        assert_eq!(&na[26..], &mac);
        assert_eq!(neighbour_advertisement(hoa, mac, false)[4], 0x20);
    }
}
