//! DHCPv4 messages (RFC 2131 §2, options RFC 2132), for the client that obtains IPv4
//! care-of addresses (DSMIPv6, RFC 5555).
//!
//! ```text
//!  0      1      2      3      4              8      10     12             16
//! +------+------+------+------+--------------+------+------+--------------+
//! |  op  | htype| hlen | hops |     xid      | secs | flags|    ciaddr    |
//! +------+------+------+------+--------------+------+------+--------------+
//! | yiaddr (16) | siaddr (20) | giaddr (24) | chaddr (28, 16) | sname (44, 64) |
//! | file (108, 128) | magic cookie (236) | options (240) ... End |
//! ```
//!
//! [`DhcpRepr`] names the options a care-of address needs and keeps every other option
//! ([`DhcpRepr::other_options`]), so a message re-emits with them. Option Overload
//! (option 52, RFC 2132 §9.3) is not followed: options in `sname`/`file` are not read, and
//! option 52 itself is kept like any other. A named option whose length is wrong for it is
//! ignored (RFC 2131 §4: a client uses what it understands).
//!
//! Owned, not borrowing: the client builds and keeps messages across timer events.

use std::net::Ipv4Addr;

use crate::option::code_enum;
use crate::{Error, Result};

/// BOOTREQUEST (client → server).
pub const BOOTREQUEST: u8 = 1;
/// BOOTREPLY (server → client).
pub const BOOTREPLY: u8 = 2;
/// Server port (RFC 2131 §4.1).
pub const SERVER_PORT: u16 = 67;
/// Client port.
pub const CLIENT_PORT: u16 = 68;
/// The options field starts with this cookie (RFC 2131 §3, RFC 2132 §2).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// The fixed header up to and including the magic cookie.
pub const HEADER_LEN: usize = 240;
/// RFC 1542 §3.2.1: some relays and servers drop BOOTP messages shorter than 300 octets,
/// so [`DhcpRepr::emit`] pads to this.
pub const MIN_LEN: usize = 300;
/// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
pub const FLAG_BROADCAST: u16 = 0x8000;
/// `htype` of Ethernet (RFC 1700, "ARP hardware types").
pub const HTYPE_ETHERNET: u8 = 1;
/// `hlen` of Ethernet.
pub const HLEN_ETHERNET: u8 = 6;

mod field {
    use core::ops::Range;

    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC: Range<usize> = 236..240;
    pub const OPTIONS: usize = 240;
}

/// Option codes (RFC 2132).
pub mod opt {
    /// Pad (§3.1).
    pub const PAD: u8 = 0;
    /// Subnet Mask (§3.3).
    pub const SUBNET_MASK: u8 = 1;
    /// Router (§3.5).
    pub const ROUTER: u8 = 3;
    /// Requested IP Address (§9.1).
    pub const REQUESTED_IP: u8 = 50;
    /// IP Address Lease Time (§9.2).
    pub const LEASE_TIME: u8 = 51;
    /// Option Overload (§9.3): not followed, kept as an other option.
    pub const OVERLOAD: u8 = 52;
    /// DHCP Message Type (§9.6).
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server Identifier (§9.7).
    pub const SERVER_ID: u8 = 54;
    /// Parameter Request List (§9.8).
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Renewal (T1) Time Value (§9.11).
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) Time Value (§9.12).
    pub const REBINDING_TIME: u8 = 59;
    /// Client-identifier (§9.14).
    pub const CLIENT_ID: u8 = 61;
    /// End (§3.2).
    pub const END: u8 = 255;
}

code_enum! {
    /// DHCP Message Type (RFC 2132 §9.6).
    pub enum MessageType(u8) {
        /// DHCPDISCOVER.
        Discover = 1,
        /// DHCPOFFER.
        Offer = 2,
        /// DHCPREQUEST.
        Request = 3,
        /// DHCPDECLINE.
        Decline = 4,
        /// DHCPACK.
        Ack = 5,
        /// DHCPNAK.
        Nak = 6,
        /// DHCPRELEASE.
        Release = 7,
        /// DHCPINFORM.
        Inform = 8,
    }
}

/// A view over a DHCP message (the UDP payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DhcpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        DhcpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the fixed header and the cookie are there.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn addr_at(&self, r: core::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[r];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// op: [`BOOTREQUEST`] or [`BOOTREPLY`].
    pub fn op(&self) -> u8 {
        self.buffer.as_ref()[field::OP]
    }

    /// htype: hardware address type.
    pub fn htype(&self) -> u8 {
        self.buffer.as_ref()[field::HTYPE]
    }

    /// hlen: hardware address length.
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// hops: relay agents passed.
    pub fn hops(&self) -> u8 {
        self.buffer.as_ref()[field::HOPS]
    }

    /// xid: transaction ID.
    pub fn xid(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::XID];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// secs: seconds since the client began the exchange.
    pub fn secs(&self) -> u16 {
        self.u16_at(field::SECS)
    }

    /// flags (only [`FLAG_BROADCAST`] is defined).
    pub fn flags(&self) -> u16 {
        self.u16_at(field::FLAGS)
    }

    /// ciaddr: the client's address, when it has one.
    pub fn ciaddr(&self) -> Ipv4Addr {
        self.addr_at(field::CIADDR)
    }

    /// yiaddr: "your" address.
    pub fn yiaddr(&self) -> Ipv4Addr {
        self.addr_at(field::YIADDR)
    }

    /// siaddr: next server.
    pub fn siaddr(&self) -> Ipv4Addr {
        self.addr_at(field::SIADDR)
    }

    /// giaddr: relay agent.
    pub fn giaddr(&self) -> Ipv4Addr {
        self.addr_at(field::GIADDR)
    }

    /// chaddr: the 16-octet client hardware address field (`hlen` of it used).
    pub fn chaddr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::CHADDR]
    }

    /// sname: server host name, or options under Option Overload.
    pub fn sname(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SNAME]
    }

    /// file: boot file name, or options under Option Overload.
    pub fn file(&self) -> &[u8] {
        &self.buffer.as_ref()[field::FILE]
    }

    /// Whether the magic cookie is there (a DHCP message, not plain BOOTP).
    pub fn has_magic_cookie(&self) -> bool {
        self.buffer.as_ref()[field::MAGIC] == MAGIC_COOKIE
    }

    /// The options field, after the cookie.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DhcpPacket<T> {
    /// Sets op.
    pub fn set_op(&mut self, op: u8) {
        self.buffer.as_mut()[field::OP] = op;
    }

    /// Sets htype and hlen.
    pub fn set_hardware(&mut self, htype: u8, hlen: u8) {
        self.buffer.as_mut()[field::HTYPE] = htype;
        self.buffer.as_mut()[field::HLEN] = hlen;
    }

    /// Sets hops.
    pub fn set_hops(&mut self, hops: u8) {
        self.buffer.as_mut()[field::HOPS] = hops;
    }

    /// Sets xid.
    pub fn set_xid(&mut self, xid: u32) {
        self.buffer.as_mut()[field::XID].copy_from_slice(&xid.to_be_bytes());
    }

    /// Sets secs.
    pub fn set_secs(&mut self, secs: u16) {
        self.buffer.as_mut()[field::SECS].copy_from_slice(&secs.to_be_bytes());
    }

    /// Sets flags.
    pub fn set_flags(&mut self, flags: u16) {
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&flags.to_be_bytes());
    }

    /// Sets ciaddr.
    pub fn set_ciaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::CIADDR].copy_from_slice(&a.octets());
    }

    /// Sets yiaddr.
    pub fn set_yiaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::YIADDR].copy_from_slice(&a.octets());
    }

    /// Sets siaddr.
    pub fn set_siaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SIADDR].copy_from_slice(&a.octets());
    }

    /// Sets giaddr.
    pub fn set_giaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::GIADDR].copy_from_slice(&a.octets());
    }

    /// Sets chaddr: `addr` then zeros to 16 octets (at most 16 of `addr` are used).
    pub fn set_chaddr(&mut self, addr: &[u8]) {
        let f = &mut self.buffer.as_mut()[field::CHADDR];
        f.fill(0);
        let n = addr.len().min(f.len());
        f[..n].copy_from_slice(&addr[..n]);
    }

    /// Zeroes sname and file.
    pub fn clear_sname_file(&mut self) {
        self.buffer.as_mut()[field::SNAME.start..field::FILE.end].fill(0);
    }

    /// Writes the magic cookie.
    pub fn set_magic_cookie(&mut self) {
        self.buffer.as_mut()[field::MAGIC].copy_from_slice(&MAGIC_COOKIE);
    }

    /// The options field, after the cookie.
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::OPTIONS..]
    }
}

/// An option [`DhcpRepr`] does not name (or Option Overload), kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DhcpOption {
    /// Code.
    pub code: u8,
    /// The octets after Len (at most 255 to be emitted).
    pub data: Vec<u8>,
}

/// The meaning of a DHCP message: header fields and options. Ethernet only (htype 1,
/// hlen 6); `sname` and `file` are neither kept nor sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DhcpRepr {
    /// [`BOOTREQUEST`] or [`BOOTREPLY`].
    pub op: u8,
    /// Relay agents passed (a client sends 0).
    pub hops: u8,
    /// Transaction ID.
    pub xid: u32,
    /// Seconds since the client began acquisition or renewal.
    pub secs: u16,
    /// The broadcast flag: ask the server to broadcast its reply (a client cannot receive
    /// unicast before it has the address; RFC 2131 §4.1). Other flag bits are sent as
    /// zero and ignored.
    pub broadcast: bool,
    /// Client's address (only when it has one: BOUND, RENEWING, REBINDING).
    pub ciaddr: Ipv4Addr,
    /// "Your" address: the one offered or acknowledged.
    pub yiaddr: Ipv4Addr,
    /// Next server.
    pub siaddr: Ipv4Addr,
    /// Relay agent.
    pub giaddr: Ipv4Addr,
    /// Client hardware address (Ethernet).
    pub chaddr: [u8; 6],
    /// Option 53.
    pub message_type: Option<MessageType>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 51, seconds (`u32::MAX` = infinite).
    pub lease_time: Option<u32>,
    /// Option 58, seconds.
    pub renewal_time: Option<u32>,
    /// Option 59, seconds.
    pub rebinding_time: Option<u32>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3 (the first router; the others are not kept).
    pub router: Option<Ipv4Addr>,
    /// Option 55 (empty: not sent).
    pub parameter_request_list: Vec<u8>,
    /// Option 61.
    pub client_id: Option<Vec<u8>>,
    /// Every other option, in the order received; emitted after the named ones.
    pub other_options: Vec<DhcpOption>,
}

impl DhcpRepr {
    /// A BOOTREQUEST from `chaddr` carrying `message_type` and nothing else.
    pub fn request(xid: u32, chaddr: [u8; 6], message_type: MessageType) -> DhcpRepr {
        DhcpRepr {
            op: BOOTREQUEST,
            hops: 0,
            xid,
            secs: 0,
            broadcast: false,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            message_type: Some(message_type),
            server_id: None,
            requested_ip: None,
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            subnet_mask: None,
            router: None,
            parameter_request_list: Vec::new(),
            client_id: None,
            other_options: Vec::new(),
        }
    }

    /// Parses a message.
    ///
    /// # Errors
    /// [`Error::Truncated`] for a short header or an option running past the end;
    /// [`Error::Malformed`] for a hardware type other than Ethernet or a missing cookie
    /// (plain BOOTP).
    pub fn parse<T: AsRef<[u8]>>(packet: &DhcpPacket<T>) -> Result<DhcpRepr> {
        packet.check_len()?;
        if packet.htype() != HTYPE_ETHERNET || packet.hlen() != HLEN_ETHERNET {
            return Err(Error::Malformed("DHCP htype/hlen (not Ethernet)"));
        }
        if !packet.has_magic_cookie() {
            return Err(Error::Malformed("DHCP magic cookie"));
        }
        let mut chaddr = [0; 6];
        chaddr.copy_from_slice(&packet.chaddr()[..6]);
        let mut m = DhcpRepr {
            op: packet.op(),
            hops: packet.hops(),
            xid: packet.xid(),
            secs: packet.secs(),
            broadcast: packet.flags() & FLAG_BROADCAST != 0,
            ciaddr: packet.ciaddr(),
            yiaddr: packet.yiaddr(),
            siaddr: packet.siaddr(),
            giaddr: packet.giaddr(),
            message_type: None,
            ..DhcpRepr::request(0, chaddr, MessageType::Discover)
        };
        let b = packet.options();
        let mut i = 0;
        while let Some(&code) = b.get(i) {
            match code {
                opt::PAD => {
                    i += 1;
                    continue;
                }
                opt::END => break,
                _ => {}
            }
            let len = usize::from(*b.get(i + 1).ok_or(Error::Truncated)?);
            let data = b.get(i + 2..i + 2 + len).ok_or(Error::Truncated)?;
            i += 2 + len;
            let addr = || -> Option<Ipv4Addr> {
                (data.len() >= 4).then(|| Ipv4Addr::new(data[0], data[1], data[2], data[3]))
            };
            let secs = || -> Option<u32> {
                (data.len() == 4).then(|| u32::from_be_bytes([data[0], data[1], data[2], data[3]]))
            };
            match code {
                opt::MESSAGE_TYPE => {
                    if let [t] = data {
                        m.message_type = Some(MessageType::from(*t));
                    }
                }
                opt::SERVER_ID => m.server_id = addr(),
                opt::REQUESTED_IP => m.requested_ip = addr(),
                opt::LEASE_TIME => m.lease_time = secs(),
                opt::RENEWAL_TIME => m.renewal_time = secs(),
                opt::REBINDING_TIME => m.rebinding_time = secs(),
                opt::SUBNET_MASK => m.subnet_mask = addr(),
                opt::ROUTER => m.router = addr(),
                opt::PARAMETER_REQUEST_LIST => m.parameter_request_list = data.to_vec(),
                opt::CLIENT_ID => m.client_id = Some(data.to_vec()),
                _ => m.other_options.push(DhcpOption {
                    code,
                    data: data.to_vec(),
                }),
            }
        }
        Ok(m)
    }

    /// [`parse`](Self::parse) of a UDP payload.
    pub fn parse_bytes(bytes: &[u8]) -> Result<DhcpRepr> {
        Self::parse(&DhcpPacket::new_unchecked(bytes))
    }

    /// The options in the order [`emit`](Self::emit) writes them: (code, data).
    fn options(&self) -> impl Iterator<Item = (u8, std::borrow::Cow<'_, [u8]>)> {
        use std::borrow::Cow;
        let addr = |code, a: Option<Ipv4Addr>| a.map(|a| (code, Cow::Owned(a.octets().to_vec())));
        let secs = |code, s: Option<u32>| s.map(|s| (code, Cow::Owned(s.to_be_bytes().to_vec())));
        [
            self.message_type
                .map(|t| (opt::MESSAGE_TYPE, Cow::Owned(vec![u8::from(t)]))),
            self.client_id
                .as_deref()
                .map(|id| (opt::CLIENT_ID, Cow::Borrowed(id))),
            addr(opt::REQUESTED_IP, self.requested_ip),
            addr(opt::SERVER_ID, self.server_id),
            secs(opt::LEASE_TIME, self.lease_time),
            secs(opt::RENEWAL_TIME, self.renewal_time),
            secs(opt::REBINDING_TIME, self.rebinding_time),
            addr(opt::SUBNET_MASK, self.subnet_mask),
            addr(opt::ROUTER, self.router),
            (!self.parameter_request_list.is_empty()).then(|| {
                (
                    opt::PARAMETER_REQUEST_LIST,
                    Cow::Borrowed(&self.parameter_request_list[..]),
                )
            }),
        ]
        .into_iter()
        .flatten()
        .chain(
            self.other_options
                .iter()
                .map(|o| (o.code, Cow::Borrowed(&o.data[..]))),
        )
    }

    /// Octets [`emit`](Self::emit) writes: header, options, End, padded to [`MIN_LEN`].
    pub fn buffer_len(&self) -> usize {
        let options: usize = self.options().map(|(_, d)| 2 + d.len()).sum();
        (HEADER_LEN + options + 1).max(MIN_LEN)
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len) octets:
    /// every octet written (sname, file and padding zero).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] for a short buffer; [`Error::BadLength`] for an option
    /// longer than 255 octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut DhcpPacket<T>) -> Result<()> {
        let len = self.buffer_len();
        let buf = packet
            .buffer
            .as_mut()
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)?;
        if self.options().any(|(_, d)| d.len() > 255) {
            return Err(Error::BadLength);
        }
        buf.fill(0);
        let mut p = DhcpPacket::new_unchecked(buf);
        p.set_op(self.op);
        p.set_hardware(HTYPE_ETHERNET, HLEN_ETHERNET);
        p.set_hops(self.hops);
        p.set_xid(self.xid);
        p.set_secs(self.secs);
        p.set_flags(if self.broadcast { FLAG_BROADCAST } else { 0 });
        p.set_ciaddr(self.ciaddr);
        p.set_yiaddr(self.yiaddr);
        p.set_siaddr(self.siaddr);
        p.set_giaddr(self.giaddr);
        p.set_chaddr(&self.chaddr);
        p.set_magic_cookie();
        let out = p.options_mut();
        let mut i = 0;
        for (code, data) in self.options() {
            out[i] = code;
            out[i + 1] = data.len() as u8;
            out[i + 2..i + 2 + data.len()].copy_from_slice(&data);
            i += 2 + data.len();
        }
        out[i] = opt::END;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
