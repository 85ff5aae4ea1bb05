//! Framing: a fixed 12-octet header, then a postcard body.
//!
//! ```text
//!  0      4       5      6          8              12
//!  +------+-------+------+----------+---------------+--------------------------------------+
//!  | MIPS | ver=2 | type | reserved | body len (BE) | postcard(Header) ++ postcard(payload) |
//!  +------+-------+------+----------+---------------+--------------------------------------+
//! ```
//!
//! The fixed header never changes between format versions, so a reader always knows how
//! long a frame is and can skip one it does not understand (unknown version or type):
//! that is what lets daemons of different releases share a bus. The same frames work on a
//! byte stream ([`FrameDecoder`]), where the magic lets the decoder resynchronise after
//! garbage.
//!
//! Version 1 was the same header with a bincode-2 body (mipsock before the move to
//! postcard); such frames are refused as [`FrameError::LegacyBincode`], counted as unknown.

use postcard::de_flavors::{Flavor, Slice};

use crate::message::{
    BeHint, Binding, Body, Dad, Header, HomeHint, MdInfo, Message, MessageType, NodetypeInfo,
    RrHint, StateDump, StateEnd,
};
use crate::message::{DataplaneReady, HaSwitch, MhUdpIn, MhUdpOut};

/// Frame magic.
pub const MAGIC: [u8; 4] = *b"MIPS";
/// The body format version this crate writes and reads: 2, postcard.
pub const VERSION: u8 = 2;
/// The version of frames whose body was bincode-2 (mipsock before postcard).
pub const VERSION_BINCODE: u8 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Largest body accepted. Bodies stay well under a socket buffer; large state dumps are
/// split into several [`Body::StateDump`] messages by [`crate::Endpoint::reply_state`].
pub const MAX_BODY: usize = 60 * 1024;
/// Largest frame.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_BODY;

/// postcard's slice input, minus its size hint. postcard answers a sequence's length
/// prefix with "that many elements" whenever that many octets remain, and serde then
/// reserves up to 1 MiB for them at once; but an element can be several times larger in
/// memory than its smallest encoding (a [`crate::StateItem`] can be 3 octets), so a forged
/// count in a [`MAX_BODY`] frame could reserve far more than the frame. Reporting no size
/// turns that into no reservation: vectors grow only as elements actually decode, each of
/// which consumes input.
struct Unhinted<'de>(Slice<'de>);

impl<'de> Flavor<'de> for Unhinted<'de> {
    type Remainder = &'de [u8];
    type Source = &'de [u8];

    fn pop(&mut self) -> postcard::Result<u8> {
        self.0.pop()
    }

    fn size_hint(&self) -> Option<usize> {
        // Some(0), not None: postcard takes None as "trust the length prefix".
        Some(0)
    }

    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'de [u8]> {
        self.0.try_take_n(ct)
    }

    fn finalize(self) -> postcard::Result<&'de [u8]> {
        self.0.finalize()
    }
}

/// Decodes one `T` from the start of `input`; returns it and the octets it used.
fn take<'de, T: serde::Deserialize<'de>>(input: &'de [u8]) -> postcard::Result<(T, usize)> {
    let mut de = postcard::Deserializer::from_flavor(Unhinted(Slice::new(input)));
    let value = T::deserialize(&mut de)?;
    let rest = de.finalize()?;
    Ok((value, input.len() - rest.len()))
}

/// Appends the postcard encoding of `value` to `out`.
fn put<T: serde::Serialize>(value: &T, out: &mut Vec<u8>) -> postcard::Result<()> {
    postcard::to_io(value, out).map(|_| ())
}

/// Why a frame could not be turned into a message.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Does not start with the magic: not ours.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// Shorter than a fixed header.
    #[error("short frame: {0} octets, header needs {HEADER_LEN}")]
    Short(usize),
    /// Header length and datagram length disagree.
    #[error("length mismatch: header says {header} body octets, datagram has {actual}")]
    LengthMismatch {
        /// Body length in the header.
        header: usize,
        /// Body octets present.
        actual: usize,
    },
    /// Body length over [`MAX_BODY`].
    #[error("body length {0} over the limit {MAX_BODY}")]
    TooLong(usize),
    /// A format version this crate does not read (skipped, not fatal).
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// Version 1: a bincode body from an older mipsock (skipped and counted as unknown,
    /// like any other version, but it has a known cause and a known fix).
    #[error(
        "format version {VERSION_BINCODE} (bincode body) from an older mipsock: this one reads \
         version {VERSION} (postcard); upgrade both ends of the bus"
    )]
    LegacyBincode,
    /// A message type this crate does not know (skipped, not fatal).
    #[error("unknown message type code {0}")]
    UnknownType(u8),
    /// The body does not decode as the type says.
    #[error("bad {kind} body: {source}")]
    Body {
        /// The type from the header.
        kind: MessageType,
        /// What postcard said.
        #[source]
        source: postcard::Error,
    },
    /// The body decoded but left octets unread.
    #[error("{kind} body has {extra} trailing octets")]
    Trailing {
        /// The type from the header.
        kind: MessageType,
        /// Octets left over.
        extra: usize,
    },
    /// Octets skipped by the stream decoder while looking for the next magic.
    #[error("skipped {0} octets of garbage")]
    Skipped(usize),
}

impl FrameError {
    /// True for frames that are well-formed but from a newer (or other) version of the
    /// bus: counted as `unknown`, not as garbage.
    pub fn is_unknown(&self) -> bool {
        matches!(
            self,
            FrameError::UnknownVersion(_) | FrameError::LegacyBincode | FrameError::UnknownType(_)
        )
    }
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// postcard failed (it does not for our types, but the API says it may).
    #[error("postcard: {0}")]
    Postcard(#[from] postcard::Error),
    /// The body would exceed [`MAX_BODY`].
    #[error("message body of {0} octets over the limit {MAX_BODY}")]
    TooLong(usize),
}

/// Appends the frame for `header` + `body` to `out`.
pub fn encode_into(out: &mut Vec<u8>, header: &Header, body: &Body) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(body.message_type().code());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    put(header, out)?;
    match body {
        Body::NodetypeInfo(p) => put(p, out)?,
        Body::BcAdd(p) | Body::BcRemove(p) | Body::BulAdd(p) | Body::BulRemove(p) => put(p, out)?,
        Body::MdInfo(p) => put(p, out)?,
        Body::HomeHint(p) => put(p, out)?,
        Body::RrHint(p) => put(p, out)?,
        Body::BeHint(p) => put(p, out)?,
        Body::Dad(p) => put(p, out)?,
        Body::StateDump(p) => put(p, out)?,
        Body::StateEnd(p) => put(p, out)?,
        Body::MhUdpIn(p) => put(p, out)?,
        Body::MhUdpOut(p) => put(p, out)?,
        Body::DataplaneReady(p) => put(p, out)?,
        Body::HaSwitch(p) => put(p, out)?,
        Body::BcFlush | Body::BulFlush | Body::StateRequest | Body::GapNotice => {}
    };
    let body_len = out.len() - start - HEADER_LEN;
    if body_len > MAX_BODY {
        out.truncate(start);
        return Err(EncodeError::TooLong(body_len));
    }
    out[start + 8..start + 12].copy_from_slice(&(body_len as u32).to_be_bytes());
    Ok(())
}

/// The frame for `msg`.
pub fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(128);
    encode_into(&mut out, &msg.header, &msg.body)?;
    Ok(out)
}

/// The parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Format version.
    pub version: u8,
    /// Type code.
    pub type_code: u8,
    /// Body length.
    pub body_len: usize,
}

/// Parses the fixed header at the start of `buf` (needs [`HEADER_LEN`] octets).
pub fn parse_header(buf: &[u8]) -> Result<FixedHeader, FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Short(buf.len()));
    }
    let magic: [u8; 4] = buf[0..4].try_into().expect("4 octets");
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    let body_len = u32::from_be_bytes(buf[8..12].try_into().expect("4 octets")) as usize;
    if body_len > MAX_BODY {
        return Err(FrameError::TooLong(body_len));
    }
    Ok(FixedHeader {
        version: buf[4],
        type_code: buf[5],
        body_len,
    })
}

/// The length of the frame starting at `data`, read from its fixed header (`None` when
/// there is no valid header). A datagram may carry several frames back to back
/// ([`crate::Endpoint::send_batch`]).
pub fn frame_len(data: &[u8]) -> Option<usize> {
    parse_header(data).ok().map(|fh| HEADER_LEN + fh.body_len)
}

/// Decodes one whole frame (a datagram or a frame cut from a stream). Unknown versions
/// and types are reported as such, so callers can count and skip them.
pub fn decode(frame: &[u8]) -> Result<Message, FrameError> {
    let fh = parse_header(frame)?;
    let actual = frame.len() - HEADER_LEN;
    if actual != fh.body_len {
        return Err(FrameError::LengthMismatch {
            header: fh.body_len,
            actual,
        });
    }
    match fh.version {
        VERSION => {}
        VERSION_BINCODE => return Err(FrameError::LegacyBincode),
        v => return Err(FrameError::UnknownVersion(v)),
    }
    let kind = MessageType::from_code(fh.type_code).ok_or(FrameError::UnknownType(fh.type_code))?;
    decode_body(kind, &frame[HEADER_LEN..])
}

fn decode_body(kind: MessageType, body: &[u8]) -> Result<Message, FrameError> {
    let err = |source| FrameError::Body { kind, source };
    let (header, mut used): (Header, usize) = take(body).map_err(err)?;
    let rest = &body[used..];
    // Decodes the payload type `$t` and wraps it in the body variant.
    macro_rules! payload {
        ($t:ty, $wrap:expr) => {{
            let (p, n): ($t, usize) = take(rest).map_err(err)?;
            used += n;
            $wrap(p)
        }};
    }
    let body_value = match kind {
        MessageType::NodetypeInfo => payload!(NodetypeInfo, Body::NodetypeInfo),
        MessageType::BcAdd => payload!(Binding, Body::BcAdd),
        MessageType::BcRemove => payload!(Binding, Body::BcRemove),
        MessageType::BcFlush => Body::BcFlush,
        MessageType::BulAdd => payload!(Binding, Body::BulAdd),
        MessageType::BulRemove => payload!(Binding, Body::BulRemove),
        MessageType::BulFlush => Body::BulFlush,
        MessageType::MdInfo => {
            let (p, n) = take_md_info(rest).map_err(err)?;
            used += n;
            Body::MdInfo(p)
        }
        MessageType::HomeHint => payload!(HomeHint, Body::HomeHint),
        MessageType::RrHint => payload!(RrHint, Body::RrHint),
        MessageType::BeHint => payload!(BeHint, Body::BeHint),
        MessageType::Dad => payload!(Dad, Body::Dad),
        MessageType::StateRequest => Body::StateRequest,
        MessageType::StateDump => payload!(StateDump, Body::StateDump),
        MessageType::StateEnd => payload!(StateEnd, Body::StateEnd),
        MessageType::MhUdpIn => payload!(MhUdpIn, Body::MhUdpIn),
        MessageType::MhUdpOut => {
            let (p, n) = take_mh_udp_out(rest).map_err(err)?;
            used += n;
            Body::MhUdpOut(p)
        }
        MessageType::DataplaneReady => payload!(DataplaneReady, Body::DataplaneReady),
        MessageType::HaSwitch => payload!(HaSwitch, Body::HaSwitch),
        MessageType::GapNotice => Body::GapNotice,
    };
    if used != body.len() {
        return Err(FrameError::Trailing {
            kind,
            extra: body.len() - used,
        });
    }
    Ok(Message {
        header,
        body: body_value,
    })
}

/// MD_INFO as written before `uplinks` (and as written now when there are none: the
/// field is left out when empty).
#[derive(serde::Deserialize)]
struct MdInfoWithoutUplinks {
    command: crate::message::MdCommand,
    hint: crate::message::MdHint,
    hoa: Option<std::net::Ipv6Addr>,
    coa: Option<crate::message::CareOf>,
    coa2: Option<crate::message::CareOf>,
    ifindex: u32,
}

/// Decodes an MD_INFO payload: a body that ends where `uplinks` would start has none
/// (postcard stores no field names, so a missing last field is the end of the input).
fn take_md_info(input: &[u8]) -> postcard::Result<(MdInfo, usize)> {
    match take::<MdInfo>(input) {
        Err(postcard::Error::DeserializeUnexpectedEnd) => {
            let (m, n) = take::<MdInfoWithoutUplinks>(input)?;
            let md = MdInfo {
                command: m.command,
                hint: m.hint,
                hoa: m.hoa,
                coa: m.coa,
                coa2: m.coa2,
                ifindex: m.ifindex,
                uplinks: Vec::new(),
            };
            Ok((md, n))
        }
        other => other,
    }
}

/// MH_UDP_OUT as written before `from` (and as written now without one).
#[derive(serde::Deserialize)]
struct MhUdpOutWithoutFrom {
    peer: std::net::SocketAddrV4,
    packet: crate::message::PacketBytes,
}

/// Decodes an MH_UDP_OUT payload: a body that ends where `from` would start has none.
fn take_mh_udp_out(input: &[u8]) -> postcard::Result<(MhUdpOut, usize)> {
    match take::<MhUdpOut>(input) {
        Err(postcard::Error::DeserializeUnexpectedEnd) => {
            let (m, n) = take::<MhUdpOutWithoutFrom>(input)?;
            let out = MhUdpOut {
                peer: m.peer,
                packet: m.packet,
                from: None,
            };
            Ok((out, n))
        }
        other => other,
    }
}

/// Cuts frames out of a byte stream (a pipe, a file of captured frames, a future TCP
/// bridge). Feed bytes with [`FrameDecoder::extend`], take results with
/// [`FrameDecoder::next_frame`] until it returns `None`.
///
/// Garbage before a frame is skipped up to the next magic and reported once as
/// [`FrameError::Skipped`]; a header with an impossible length is skipped by one octet so
/// the search resumes inside it. A frame of unknown version or type is consumed whole and
/// reported, so the next frame is still found.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Octets held, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next message, the next error, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Message, FrameError>> {
        if self.buf.is_empty() {
            return None;
        }
        // Resynchronise: the frame must start with the magic.
        let start = find_magic_start(&self.buf);
        if start > 0 {
            self.buf.drain(..start);
            return Some(Err(FrameError::Skipped(start)));
        }
        if self.buf.len() < HEADER_LEN {
            return None;
        }
        let fh = match parse_header(&self.buf) {
            Ok(fh) => fh,
            Err(e) => {
                // An impossible length: this "magic" was garbage; look further on.
                self.buf.drain(..1);
                return Some(Err(e));
            }
        };
        let total = HEADER_LEN + fh.body_len;
        if self.buf.len() < total {
            return None;
        }
        let frame: Vec<u8> = self.buf.drain(..total).collect();
        Some(decode(&frame))
    }
}

/// Index of the first position that may start a frame: a full magic, or a magic prefix at
/// the very end of the buffer (the rest may still arrive). `buf.len()` if none.
fn find_magic_start(buf: &[u8]) -> usize {
    (0..buf.len())
        .find(|&i| {
            let tail = &buf[i..];
            let n = tail.len().min(MAGIC.len());
            tail[..n] == MAGIC[..n]
        })
        .unwrap_or(buf.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn binding() -> Binding {
        Binding {
            hoa: v6("2001:db8:1::100"),
            hoa_v4: Some(Ipv4Addr::new(192, 0, 2, 100)),
            coa: CareOf::V4 {
                addr: Ipv4Addr::new(203, 0, 113, 5),
                udp_port: Some(40000),
            },
            ha: v6("2001:db8:1::1"),
            ha_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
            mnp_v6: vec![
                "2001:db8:100::/48".parse().unwrap(),
                "2001:db8:200::/56".parse().unwrap(),
            ],
            mnp_v4: vec!["198.51.100.0/24".parse().unwrap()],
            encapsulation: Encapsulation::UdpIpv4 { ha_port: 4191 },
            lifetime: 400,
            binding_id: Some(7),
            flags: BuFlags::A | BuFlags::H | BuFlags::R | BuFlags::F,
            nat_detected: true,
            coa_ifindex: Some(3),
            flows: Vec::new(),
            bid_priority: 0,
        }
    }

    fn minimal_binding() -> Binding {
        Binding {
            hoa: v6("2001:db8:1::100"),
            hoa_v4: None,
            coa: CareOf::V6(v6("2001:db8:a::5")),
            ha: v6("2001:db8:1::1"),
            ha_v4: None,
            mnp_v6: vec![],
            mnp_v4: vec![],
            encapsulation: Encapsulation::InIpv6,
            lifetime: 0,
            binding_id: None,
            flags: BuFlags::default(),
            nat_detected: false,
            coa_ifindex: None,
            flows: Vec::new(),
            bid_priority: 0,
        }
    }

    /// At least one message of every type, with optional fields both set and unset.
    pub(crate) fn samples() -> Vec<Message> {
        let bodies = vec![
            Body::NodetypeInfo(NodetypeInfo {
                node_type: NodeType::HA | NodeType::MR,
                enable: true,
            }),
            Body::NodetypeInfo(NodetypeInfo {
                node_type: NodeType(0),
                enable: false,
            }),
            Body::BcAdd(binding()),
            Body::BcAdd(minimal_binding()),
            Body::BcRemove(binding()),
            Body::BcFlush,
            Body::BulAdd(binding()),
            Body::BulAdd(Binding {
                encapsulation: Encapsulation::InIpv4,
                ..minimal_binding()
            }),
            Body::BulRemove(minimal_binding()),
            Body::BulFlush,
            Body::MdInfo(MdInfo {
                command: MdCommand::Rereg,
                hint: MdHint::Addr,
                hoa: Some(v6("2001:db8:1::100")),
                coa: Some(CareOf::V6(v6("2001:db8:a::5"))),
                coa2: Some(CareOf::V4 {
                    addr: Ipv4Addr::new(203, 0, 113, 5),
                    udp_port: None,
                }),
                ifindex: 3,
                uplinks: vec![
                    Uplink {
                        coa: CareOf::V6(v6("2001:db8:a::5")),
                        ifindex: 3,
                        ifname: "eth0".into(),
                        preference: 0,
                    },
                    Uplink {
                        coa: CareOf::V4 {
                            addr: Ipv4Addr::new(203, 0, 113, 5),
                            udp_port: None,
                        },
                        ifindex: 4,
                        ifname: "wwan0".into(),
                        preference: 1,
                    },
                ],
            }),
            Body::MdInfo(MdInfo {
                command: MdCommand::Dereghome,
                hint: MdHint::Home,
                hoa: Some(v6("2001:db8:1::100")),
                coa: Some(CareOf::V6(v6("2001:db8:1::100"))),
                coa2: None,
                ifindex: 2,
                uplinks: Vec::new(),
            }),
            Body::MdInfo(MdInfo {
                command: MdCommand::Scan,
                hint: MdHint::Index,
                hoa: None,
                coa: None,
                coa2: None,
                ifindex: 0,
                uplinks: Vec::new(),
            }),
            Body::HomeHint(HomeHint {
                ifindex: 2,
                prefix: "2001:db8:1::/64".parse().unwrap(),
            }),
            Body::RrHint(RrHint {
                hoa: v6("2001:db8:1::100"),
                peer: v6("2001:db8:c::1"),
            }),
            Body::BeHint(BeHint {
                status: 1,
                peer: v6("2001:db8:c::1"),
                coa: CareOf::V6(v6("2001:db8:a::5")),
                hoa: v6("2001:db8:1::100"),
            }),
            Body::Dad(Dad {
                op: DadOp::Do,
                ifindex: 4,
                addr: v6("2001:db8:1::100"),
            }),
            Body::Dad(Dad {
                op: DadOp::Fail,
                ifindex: 4,
                addr: v6("2001:db8:1::100"),
            }),
            Body::StateRequest,
            Body::GapNotice,
            Body::StateDump(StateDump {
                requester_pid: 42,
                items: vec![
                    StateItem::Bul(binding()),
                    StateItem::Bc(minimal_binding()),
                    StateItem::CurrentCoa(CurrentCoa {
                        coa: Some(CareOf::V6(v6("2001:db8:a::5"))),
                        ifindex: 3,
                        at_home: false,
                    }),
                    StateItem::NodeType(NodetypeInfo {
                        node_type: NodeType::MR,
                        enable: true,
                    }),
                    StateItem::HomeAgent(crate::message::HomeAgentInfo {
                        address: v6("2001:db8:1::2"),
                        preference: -3,
                        lifetime: 600,
                        mobile_router: true,
                        origin: crate::message::HomeAgentOrigin::RouterAdvertisement,
                        in_use: false,
                    }),
                    StateItem::Dataplane(crate::message::DataplaneInfo {
                        hoa: v6("2001:db8:1::100"),
                        binding_id: Some(2),
                        coa: CareOf::V6(v6("2001:db8:a::5")),
                        backend: crate::message::DataplaneBackend::Kernel,
                        path_up: true,
                        packets: None,
                        octets: None,
                        capacity_kbps: Some((20_000, 8_000)),
                    }),
                    StateItem::Dataplane(crate::message::DataplaneInfo {
                        hoa: v6("2001:db8:1::100"),
                        binding_id: None,
                        coa: CareOf::V4 {
                            addr: std::net::Ipv4Addr::new(198, 51, 100, 7),
                            udp_port: Some(4191),
                        },
                        backend: crate::message::DataplaneBackend::Tun,
                        path_up: false,
                        packets: Some((10, 12)),
                        octets: Some((1000, 1400)),
                        capacity_kbps: None,
                    }),
                ],
            }),
            Body::StateEnd(StateEnd {
                requester_pid: 42,
                items: 7,
            }),
            Body::MhUdpIn(crate::message::MhUdpIn {
                local: "192.0.2.1:4191".parse().unwrap(),
                peer: "198.51.100.7:40001".parse().unwrap(),
                packet: crate::message::PacketBytes(vec![0x60, 0, 0, 0, 0, 8, 135, 64]),
            }),
            Body::MhUdpOut(crate::message::MhUdpOut {
                peer: "198.51.100.7:40001".parse().unwrap(),
                packet: crate::message::PacketBytes(vec![0x60, 0, 0, 0, 0, 0, 59, 64]),
                from: None,
            }),
            Body::MhUdpOut(crate::message::MhUdpOut {
                peer: "198.51.100.7:4191".parse().unwrap(),
                packet: crate::message::PacketBytes(vec![0x60, 0, 0, 0, 0, 0, 59, 64]),
                from: Some(crate::message::UdpFrom {
                    addr: "192.0.2.9".parse().unwrap(),
                    ifindex: 7,
                }),
            }),
            Body::DataplaneReady(DataplaneReady {
                hoa: "2001:db8:1::100".parse().unwrap(),
                removed: true,
                binding_id: Some(2),
            }),
            Body::HaSwitch(HaSwitch {
                hoa: Some("2001:db8:1::100".parse().unwrap()),
                home_agents: vec!["2001:db8:1::2".parse().unwrap()],
            }),
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Message {
                header: Header {
                    seq: i as u32 * 1000,
                    errno: i as u32 % 3,
                    pid: 4242,
                    sender: "mrd".into(),
                    serial: i as u64 + 1,
                    sent_at_ns: 1_795_383_000_000_000_000 + i as u64,
                },
                body,
            })
            .collect()
    }

    #[test]
    fn samples_cover_every_type() {
        let s = samples();
        for t in MessageType::ALL {
            assert!(s.iter().any(|m| m.message_type() == t), "no sample for {t}");
            assert_eq!(MessageType::from_code(t.code()), Some(t));
            assert_eq!(t.name().parse::<MessageType>().unwrap(), t);
            let shisa = format!("MIPM_{}", t.name().to_uppercase());
            assert_eq!(shisa.parse::<MessageType>().unwrap(), t);
        }
        assert!("nonsense".parse::<MessageType>().is_err());
    }

    #[test]
    fn every_message_round_trips_through_postcard_frames() {
        for msg in samples() {
            let frame = encode(&msg).unwrap();
            let fh = parse_header(&frame).unwrap();
            assert_eq!(fh.type_code, msg.message_type().code());
            assert_eq!(fh.body_len + HEADER_LEN, frame.len());
            assert_eq!(decode(&frame).unwrap(), msg, "{}", msg.message_type());
        }
    }

    #[test]
    fn every_message_round_trips_through_json() {
        for msg in samples() {
            let json = serde_json::to_string(&msg).unwrap();
            let back: Message = serde_json::from_str(&json).unwrap();
            assert_eq!(back, msg, "{json}");
        }
    }

    #[test]
    fn text_lines_show_every_field() {
        for msg in samples() {
            let line = crate::text::message_line(&msg);
            assert!(line.starts_with(msg.message_type().name()), "{line}");
            let v = serde_json::to_value(&msg.body).unwrap();
            if let serde_json::Value::Object(map) = v {
                for inner in map.values() {
                    if let serde_json::Value::Object(fields) = inner {
                        for (k, val) in fields {
                            if !val.is_null() {
                                assert!(line.contains(k.as_str()), "{k} missing in {line}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn json_input_is_friendly_and_errors_name_the_field() {
        let m: Message = serde_json::from_str(
            r#"{"body":{"md_info":{"command":"rereg","coa":"192.0.2.5:4191","ifindex":3}}}"#,
        )
        .unwrap();
        assert_eq!(m.header, Header::default());
        let Body::MdInfo(md) = m.body else { panic!() };
        assert_eq!(
            md.coa,
            Some(CareOf::V4 {
                addr: Ipv4Addr::new(192, 0, 2, 5),
                udp_port: Some(4191)
            })
        );
        let err = serde_json::from_str::<Message>(
            "{\"body\":{\"md_info\":{\n\"command\":\"rereg\",\"coaa\":\"x\"}}}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("coaa") && err.contains("line 2"), "{err}");
        let err = serde_json::from_str::<Message>(
            r#"{"body":{"md_info":{"command":"rereg","coa":"nope"}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bad care-of address"), "{err}");
        let m: Message = serde_json::from_str(r#"{"body":"bc_flush"}"#).unwrap();
        assert_eq!(m.body, Body::BcFlush);
    }

    #[test]
    fn unknown_version_and_type_are_skippable_not_garbage() {
        let mut frame = encode(&samples()[0]).unwrap();
        frame[4] = 9;
        let e = decode(&frame).unwrap_err();
        assert!(matches!(e, FrameError::UnknownVersion(9)) && e.is_unknown());
        frame[4] = VERSION;
        frame[5] = 200;
        let e = decode(&frame).unwrap_err();
        assert!(matches!(e, FrameError::UnknownType(200)) && e.is_unknown());
    }

    #[test]
    fn bincode_frames_of_older_releases_are_refused_with_the_reason() {
        // A BcFlush as the bincode mipsock wrote it (its frame::encode, run on the last
        // commit before postcard): header seq 0, errno 0, pid 4242 (bincode's fb 92 10),
        // sender "mrd", serial 1, sent_at_ns 0; no payload.
        let old = b"MIPS\x01\x05\0\0\0\0\0\x0b\x00\x00\xfb\x92\x10\x03mrd\x01\x00";
        let e = decode(old).unwrap_err();
        assert!(
            matches!(e, FrameError::LegacyBincode) && e.is_unknown(),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.contains("older mipsock")
                && text.contains("bincode")
                && text.contains("upgrade both ends"),
            "{text}"
        );
        // The stream decoder consumes it whole and finds the next frame.
        let mut d = FrameDecoder::new();
        d.extend(old);
        let next = encode(&samples()[5]).unwrap();
        d.extend(&next);
        assert!(matches!(
            d.next_frame(),
            Some(Err(FrameError::LegacyBincode))
        ));
        assert_eq!(d.next_frame().unwrap().unwrap(), samples()[5]);
    }

    /// The octets of a sample, so a change of encoding cannot pass unnoticed: postcard
    /// varints, little-endian order within them, length-prefixed strings and sequences.
    #[test]
    fn a_frame_is_these_octets() {
        let msg = Message {
            header: Header {
                seq: 300,
                errno: 0,
                pid: 4242,
                sender: "mrd".into(),
                serial: 1,
                sent_at_ns: 0,
            },
            body: Body::Dad(Dad {
                op: DadOp::Fail,
                ifindex: 4,
                addr: v6("2001:db8::1"),
            }),
        };
        #[rustfmt::skip]
        let want: &[u8] = &[
            b'M', b'I', b'P', b'S', 2, MessageType::Dad.code(), 0, 0, 0, 0, 0, 29,
            // Header: seq 300 (varint ac 02), errno 0, pid 4242 (92 21), "mrd", serial 1,
            // sent_at_ns 0.
            0xac, 0x02, 0x00, 0x92, 0x21, 3, b'm', b'r', b'd', 0x01, 0x00,
            // Dad: op Fail (serde's variant index 4, not the discriminant 129), ifindex 4,
            // the 16 address octets.
            0x04, 0x04,
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        ];
        assert_eq!(encode(&msg).unwrap(), want);
        assert_eq!(decode(want).unwrap(), msg);
    }

    /// An MD_INFO without uplinks is the same octets as before the field existed, so
    /// movement detectors and routers of either release read each other's; one with
    /// uplinks appends them.
    #[test]
    fn md_info_uplinks_are_appended_and_optional() {
        let header = Header {
            seq: 1,
            errno: 0,
            pid: 7,
            sender: "md".into(),
            serial: 1,
            sent_at_ns: 0,
        };
        let mut md = MdInfo {
            command: MdCommand::Rereg,
            hint: MdHint::Addr,
            hoa: None,
            coa: Some(CareOf::V6(v6("2001:db8::5"))),
            coa2: None,
            ifindex: 3,
            uplinks: Vec::new(),
        };
        let frame = encode(&Message {
            header: header.clone(),
            body: Body::MdInfo(md.clone()),
        })
        .unwrap();
        #[rustfmt::skip]
        let before: &[u8] = &[
            // command Rereg (variant 0), hint Addr (1), hoa None, coa Some(V6), 16 octets,
            // coa2 None, ifindex 3.
            0x00, 0x01, 0x00, 0x01, 0x00,
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,
            0x00, 0x03,
        ];
        assert!(frame.ends_with(before), "{frame:02x?}");
        assert_eq!(decode(&frame).unwrap().body, Body::MdInfo(md.clone()));
        md.uplinks.push(Uplink {
            coa: CareOf::V6(v6("2001:db8::5")),
            ifindex: 3,
            ifname: "eth0".into(),
            preference: 0,
        });
        let with = encode(&Message {
            header,
            body: Body::MdInfo(md.clone()),
        })
        .unwrap();
        // One uplink: count 1, CareOf::V6 and its address, ifindex, "eth0", preference.
        assert_eq!(with.len(), frame.len() + 1 + 17 + 1 + 5 + 1);
        assert_eq!(&with[..frame.len()][HEADER_LEN..], &frame[HEADER_LEN..]);
        assert_eq!(decode(&with).unwrap().body, Body::MdInfo(md));
        // Cut inside the uplinks: not an MD_INFO without them, but a broken body.
        let mut cut = with[..with.len() - 3].to_vec();
        let n = (cut.len() - HEADER_LEN) as u32;
        cut[8..12].copy_from_slice(&n.to_be_bytes());
        assert!(decode(&cut).is_err());
    }

    #[test]
    fn broken_frames_are_garbage() {
        let frame = encode(&samples()[2]).unwrap();
        assert!(matches!(decode(&frame[..5]), Err(FrameError::Short(5))));
        assert!(matches!(
            decode(&frame[..frame.len() - 1]),
            Err(FrameError::LengthMismatch { .. })
        ));
        let mut bad = frame.clone();
        bad[0] = b'X';
        assert!(matches!(decode(&bad), Err(FrameError::BadMagic(_))));
        // A body cut short but with a matching length: postcard must fail cleanly.
        let mut cut = frame[..frame.len() - 3].to_vec();
        let n = (cut.len() - HEADER_LEN) as u32;
        cut[8..12].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(decode(&cut), Err(FrameError::Body { .. })));
        // Extra octets after a valid body.
        let mut long = frame.clone();
        long.push(0);
        let n = (long.len() - HEADER_LEN) as u32;
        long[8..12].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(
            decode(&long),
            Err(FrameError::Trailing { extra: 1, .. })
        ));
        for e in [FrameError::Short(1), FrameError::Skipped(3)] {
            assert!(!e.is_unknown());
        }
    }

    #[test]
    fn stream_decoder_resyncs_after_garbage_and_skips_unknown() {
        let msgs = samples();
        let mut unknown = encode(&msgs[1]).unwrap();
        unknown[5] = 250;
        let mut stream = b"junk!".to_vec();
        stream.extend(encode(&msgs[0]).unwrap());
        stream.extend(&unknown);
        stream.extend(b"MIP");
        stream.extend(encode(&msgs[3]).unwrap());
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        // Byte by byte: frames split anywhere must still come out whole.
        for b in stream {
            d.extend(&[b]);
            while let Some(r) = d.next_frame() {
                got.push(r);
            }
        }
        let oks: Vec<&Message> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(oks, vec![&msgs[0], &msgs[3]]);
        assert!(
            got.iter()
                .any(|r| matches!(r, Err(FrameError::UnknownType(250))))
        );
        assert!(got.iter().any(|r| matches!(r, Err(FrameError::Skipped(_)))));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn bit_sets_print_and_parse() {
        let f = BuFlags::A | BuFlags::H | BuFlags(0x0001);
        assert_eq!(f.to_string(), "A|H|0x1");
        assert_eq!("A|H|0x1".parse::<BuFlags>().unwrap(), f);
        assert_eq!("none".parse::<BuFlags>().unwrap(), BuFlags(0));
        assert!("Q".parse::<BuFlags>().is_err());
        assert_eq!((NodeType::HA | NodeType::MR).to_string(), "ha|mr");
        assert_eq!("mr|cn".parse::<NodeType>().unwrap(), NodeType(0x09));
        assert!(NodeType(0x0a).contains(NodeType::MR));
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let items = vec![StateItem::Bul(binding()); 2000];
        let msg = Message::new(Body::StateDump(StateDump {
            requester_pid: 1,
            items,
        }));
        assert!(matches!(encode(&msg), Err(EncodeError::TooLong(_))));
    }
}
