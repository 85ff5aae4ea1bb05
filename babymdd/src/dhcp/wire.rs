//! DHCPv4 messages (RFC 2131 §2, options RFC 2132): the fixed BOOTP header and the few
//! options a care-of address needs. Parse into a [`Message`], emit from one.
//!
//! Options we do not know are skipped; DNS servers, domain names and the like are never
//! even requested, so nothing here can touch the host's resolver configuration.

use std::net::Ipv4Addr;

/// BOOTREQUEST (client → server).
pub const BOOTREQUEST: u8 = 1;
/// BOOTREPLY (server → client).
pub const BOOTREPLY: u8 = 2;
/// Server port.
pub const SERVER_PORT: u16 = 67;
/// Client port.
pub const CLIENT_PORT: u16 = 68;
/// RFC 2131 §3: the options field starts with this cookie.
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Fixed header up to and including the magic cookie.
const HEADER_LEN: usize = 240;
/// RFC 1542 §3.2.1: some relays and servers drop BOOTP messages shorter than 300 octets.
const MIN_LEN: usize = 300;
/// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
const FLAG_BROADCAST: u16 = 0x8000;

mod field {
    use std::ops::Range;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const MAGIC: Range<usize> = 236..240;
}

/// Option codes (RFC 2132).
pub mod opt {
    /// Pad.
    pub const PAD: u8 = 0;
    /// Subnet Mask (§3.3).
    pub const SUBNET_MASK: u8 = 1;
    /// Router (§3.5).
    pub const ROUTER: u8 = 3;
    /// Requested IP Address (§9.1).
    pub const REQUESTED_IP: u8 = 50;
    /// IP Address Lease Time (§9.2).
    pub const LEASE_TIME: u8 = 51;
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
    /// End.
    pub const END: u8 = 255;
}

/// DHCP Message Type (RFC 2132 §9.6). Unknown values are kept, never a parse error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1
    Discover,
    /// 2
    Offer,
    /// 3
    Request,
    /// 4
    Decline,
    /// 5
    Ack,
    /// 6
    Nak,
    /// 7
    Release,
    /// 8
    Inform,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            v => MessageType::Unknown(v),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Unknown(v) => v,
        }
    }
}

/// Why a datagram is not a DHCP message we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the fixed header.
    #[error("truncated DHCP message ({0} octets)")]
    Truncated(usize),
    /// Not Ethernet (htype 1, hlen 6).
    #[error("not an Ethernet DHCP message")]
    NotEthernet,
    /// The magic cookie is missing (a plain BOOTP message).
    #[error("no DHCP magic cookie")]
    NoMagic,
    /// An option runs past the end.
    #[error("malformed DHCP option {0}")]
    BadOption(u8),
}

/// A DHCP message: header fields and the options we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// [`BOOTREQUEST`] or [`BOOTREPLY`].
    pub op: u8,
    /// Transaction ID.
    pub xid: u32,
    /// Seconds since the client began acquisition or renewal.
    pub secs: u16,
    /// Ask the server to broadcast its reply (we cannot receive unicast before we have
    /// the address; RFC 2131 §4.1).
    pub broadcast: bool,
    /// Client's address (only when it has one: BOUND, RENEWING, REBINDING).
    pub ciaddr: Ipv4Addr,
    /// "Your" address: the one offered or acknowledged.
    pub yiaddr: Ipv4Addr,
    /// Next server (unused).
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
    /// Option 3 (the first router; the others are ignored).
    pub router: Option<Ipv4Addr>,
    /// Option 55.
    pub parameter_request_list: Vec<u8>,
    /// Option 61.
    pub client_id: Option<Vec<u8>>,
}

impl Message {
    /// An empty BOOTREQUEST from `chaddr`.
    pub fn request(xid: u32, chaddr: [u8; 6], message_type: MessageType) -> Message {
        Message {
            op: BOOTREQUEST,
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
        }
    }

    /// Parses a UDP payload.
    pub fn parse(b: &[u8]) -> Result<Message, WireError> {
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated(b.len()));
        }
        if b[field::HTYPE] != 1 || b[field::HLEN] != 6 {
            return Err(WireError::NotEthernet);
        }
        if b[field::MAGIC] != MAGIC {
            return Err(WireError::NoMagic);
        }
        let v4 = |r: std::ops::Range<usize>| {
            Ipv4Addr::new(b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3])
        };
        let mut chaddr = [0; 6];
        chaddr.copy_from_slice(&b[field::CHADDR][..6]);
        let mut m = Message {
            op: b[field::OP],
            xid: u32::from_be_bytes(b[field::XID].try_into().unwrap_or_default()),
            secs: u16::from_be_bytes(b[field::SECS].try_into().unwrap_or_default()),
            broadcast: u16::from_be_bytes(b[field::FLAGS].try_into().unwrap_or_default())
                & FLAG_BROADCAST
                != 0,
            ciaddr: v4(field::CIADDR),
            yiaddr: v4(field::YIADDR),
            siaddr: v4(field::SIADDR),
            giaddr: v4(field::GIADDR),
            chaddr,
            ..Message::request(0, [0; 6], MessageType::Unknown(0))
        };
        m.message_type = None;
        let mut i = HEADER_LEN;
        while i < b.len() {
            let code = b[i];
            match code {
                opt::PAD => {
                    i += 1;
                    continue;
                }
                opt::END => break,
                _ => {}
            }
            let len = *b.get(i + 1).ok_or(WireError::BadOption(code))? as usize;
            let data = b
                .get(i + 2..i + 2 + len)
                .ok_or(WireError::BadOption(code))?;
            i += 2 + len;
            let addr = || -> Option<Ipv4Addr> {
                (data.len() >= 4).then(|| Ipv4Addr::new(data[0], data[1], data[2], data[3]))
            };
            let secs = || -> Option<u32> {
                (data.len() == 4).then(|| u32::from_be_bytes([data[0], data[1], data[2], data[3]]))
            };
            match code {
                opt::MESSAGE_TYPE if len == 1 => m.message_type = Some(data[0].into()),
                opt::SERVER_ID => m.server_id = addr(),
                opt::REQUESTED_IP => m.requested_ip = addr(),
                opt::LEASE_TIME => m.lease_time = secs(),
                opt::RENEWAL_TIME => m.renewal_time = secs(),
                opt::REBINDING_TIME => m.rebinding_time = secs(),
                opt::SUBNET_MASK => m.subnet_mask = addr(),
                opt::ROUTER => m.router = addr(),
                opt::PARAMETER_REQUEST_LIST => m.parameter_request_list = data.to_vec(),
                opt::CLIENT_ID => m.client_id = Some(data.to_vec()),
                _ => {}
            }
        }
        Ok(m)
    }

    /// The UDP payload: every octet written, padded to 300 octets.
    pub fn emit(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[field::OP] = self.op;
        b[field::HTYPE] = 1;
        b[field::HLEN] = 6;
        b[field::XID].copy_from_slice(&self.xid.to_be_bytes());
        b[field::SECS].copy_from_slice(&self.secs.to_be_bytes());
        let flags = if self.broadcast { FLAG_BROADCAST } else { 0 };
        b[field::FLAGS].copy_from_slice(&flags.to_be_bytes());
        b[field::CIADDR].copy_from_slice(&self.ciaddr.octets());
        b[field::YIADDR].copy_from_slice(&self.yiaddr.octets());
        b[field::SIADDR].copy_from_slice(&self.siaddr.octets());
        b[field::GIADDR].copy_from_slice(&self.giaddr.octets());
        b[field::CHADDR][..6].copy_from_slice(&self.chaddr);
        b[field::MAGIC].copy_from_slice(&MAGIC);
        let mut put = |code: u8, data: &[u8]| {
            b.push(code);
            b.push(data.len() as u8);
            b.extend_from_slice(data);
        };
        if let Some(t) = self.message_type {
            put(opt::MESSAGE_TYPE, &[t.into()]);
        }
        if let Some(id) = &self.client_id {
            put(opt::CLIENT_ID, id);
        }
        if let Some(a) = self.requested_ip {
            put(opt::REQUESTED_IP, &a.octets());
        }
        if let Some(a) = self.server_id {
            put(opt::SERVER_ID, &a.octets());
        }
        if let Some(s) = self.lease_time {
            put(opt::LEASE_TIME, &s.to_be_bytes());
        }
        if let Some(s) = self.renewal_time {
            put(opt::RENEWAL_TIME, &s.to_be_bytes());
        }
        if let Some(s) = self.rebinding_time {
            put(opt::REBINDING_TIME, &s.to_be_bytes());
        }
        if let Some(a) = self.subnet_mask {
            put(opt::SUBNET_MASK, &a.octets());
        }
        if let Some(a) = self.router {
            put(opt::ROUTER, &a.octets());
        }
        if !self.parameter_request_list.is_empty() {
            put(opt::PARAMETER_REQUEST_LIST, &self.parameter_request_list);
        }
        b.push(opt::END);
        if b.len() < MIN_LEN {
            b.resize(MIN_LEN, 0);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DHCPACK as busybox udhcpd sends it (header, cookie, options), truncated to the
    /// options: 192.168.77.10 for 01:02:03:04:05:06, server .1, lease 600 s.
    fn ack_bytes() -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = 2;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        b[10] = 0x80;
        b[16..20].copy_from_slice(&[192, 168, 77, 10]);
        b[28..34].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        b[236..240].copy_from_slice(&MAGIC);
        b.extend_from_slice(&[53, 1, 5]);
        b.extend_from_slice(&[54, 4, 192, 168, 77, 1]);
        b.extend_from_slice(&[51, 4, 0, 0, 2, 88]);
        b.extend_from_slice(&[1, 4, 255, 255, 255, 0]);
        b.extend_from_slice(&[0, 0]); // pads
        b.extend_from_slice(&[3, 8, 192, 168, 77, 1, 192, 168, 77, 2]);
        b.extend_from_slice(&[6, 4, 192, 168, 77, 53]); // DNS: ignored
        b.push(255);
        b
    }

    #[test]
    fn parse_ack() {
        let m = Message::parse(&ack_bytes()).unwrap();
        assert_eq!(m.op, BOOTREPLY);
        assert_eq!(m.xid, 0xdeadbeef);
        assert!(m.broadcast);
        assert_eq!(m.yiaddr, Ipv4Addr::new(192, 168, 77, 10));
        assert_eq!(m.chaddr, [1, 2, 3, 4, 5, 6]);
        assert_eq!(m.message_type, Some(MessageType::Ack));
        assert_eq!(m.server_id, Some(Ipv4Addr::new(192, 168, 77, 1)));
        assert_eq!(m.lease_time, Some(600));
        assert_eq!(m.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(m.router, Some(Ipv4Addr::new(192, 168, 77, 1)));
        assert_eq!(m.renewal_time, None);
    }

    #[test]
    fn emit_parse_roundtrip_and_layout() {
        let mut m = Message::request(
            0x01020304,
            [0xa, 0xb, 0xc, 0xd, 0xe, 0xf],
            MessageType::Request,
        );
        m.broadcast = true;
        m.secs = 3;
        m.requested_ip = Some(Ipv4Addr::new(10, 0, 0, 7));
        m.server_id = Some(Ipv4Addr::new(10, 0, 0, 1));
        m.client_id = Some(vec![1, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf]);
        m.parameter_request_list = vec![1, 3, 51, 54, 58, 59];
        let b = m.emit();
        assert_eq!(b.len(), 300);
        assert_eq!(&b[..4], &[1, 1, 6, 0]);
        assert_eq!(&b[4..8], &[1, 2, 3, 4]);
        assert_eq!(&b[8..12], &[0, 3, 0x80, 0]);
        assert_eq!(&b[236..243], &[99, 130, 83, 99, 53, 1, 3]);
        assert_eq!(Message::parse(&b).unwrap(), m);
    }

    #[test]
    fn malformed() {
        assert_eq!(Message::parse(&[0; 100]), Err(WireError::Truncated(100)));
        let mut b = ack_bytes();
        b[236] = 0;
        assert_eq!(Message::parse(&b), Err(WireError::NoMagic));
        let mut b = ack_bytes();
        b.truncate(b.len() - 4); // inside the DNS option, END gone
        assert_eq!(Message::parse(&b), Err(WireError::BadOption(6)));
        let mut b = ack_bytes();
        b[1] = 6;
        assert_eq!(Message::parse(&b), Err(WireError::NotEthernet));
    }
}
