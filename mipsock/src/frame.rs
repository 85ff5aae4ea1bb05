//! Framing: a fixed 12-octet header, then a bincode-2 body.
//!
//! ```text
//!  0      4       5      6          8              12
//!  +------+-------+------+----------+---------------+----------------------------+
//!  | MIPS | ver=1 | type | reserved | body len (BE) | bincode(Header) ++ bincode(payload) |
//!  +------+-------+------+----------+---------------+----------------------------+
//! ```
//!
//! The fixed header never changes between format versions, so a reader always knows how
//! long a frame is and can skip one it does not understand (unknown version or type):
//! that is what lets daemons of different releases share a bus. The same frames work on a
//! byte stream ([`FrameDecoder`]), where the magic lets the decoder resynchronise after
//! garbage.

use bincode::config::{Config, standard};

use crate::message::{
    BeHint, Binding, Body, Dad, Header, HomeHint, MdInfo, Message, MessageType, NodetypeInfo,
    RrHint, StateDump, StateEnd,
};

/// Frame magic.
pub const MAGIC: [u8; 4] = *b"MIPS";
/// The body format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Largest body accepted. Bodies stay well under a socket buffer; large state dumps are
/// split into several [`Body::StateDump`] messages by [`crate::Endpoint::reply_state`].
pub const MAX_BODY: usize = 60 * 1024;
/// Largest frame.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_BODY;

/// bincode configuration: varint integers, and a byte limit so a forged length prefix
/// inside the body can never make the decoder allocate more than a frame.
fn config() -> impl Config {
    standard().with_limit::<MAX_BODY>()
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
    /// A message type this crate does not know (skipped, not fatal).
    #[error("unknown message type code {0}")]
    UnknownType(u8),
    /// The body does not decode as the type says.
    #[error("bad {kind} body: {source}")]
    Body {
        /// The type from the header.
        kind: MessageType,
        /// What bincode said.
        #[source]
        source: bincode::error::DecodeError,
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
            FrameError::UnknownVersion(_) | FrameError::UnknownType(_)
        )
    }
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// bincode failed (it does not for our types, but the API says it may).
    #[error("bincode: {0}")]
    Bincode(#[from] bincode::error::EncodeError),
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
    bincode::serde::encode_into_std_write(header, out, config())?;
    let cfg = config();
    let w = &mut *out;
    match body {
        Body::NodetypeInfo(p) => bincode::serde::encode_into_std_write(p, w, cfg)?,
        Body::BcAdd(p) | Body::BcRemove(p) | Body::BulAdd(p) | Body::BulRemove(p) => {
            bincode::serde::encode_into_std_write(p, w, cfg)?
        }
        Body::MdInfo(p) => bincode::serde::encode_into_std_write(p, w, cfg)?,
        Body::HomeHint(p) => bincode::serde::encode_into_std_write(p, w, cfg)?,
        Body::RrHint(p) => bincode::serde::encode_into_std_write(p, w, cfg)?,
        Body::BeHint(p) => bincode::serde::encode_into_std_write(p, w, cfg)?,
        Body::Dad(p) => bincode::serde::encode_into_std_write(p, w, cfg)?,
        Body::StateDump(p) => bincode::serde::encode_into_std_write(p, w, cfg)?,
        Body::StateEnd(p) => bincode::serde::encode_into_std_write(p, w, cfg)?,
        Body::BcFlush | Body::BulFlush | Body::StateRequest => 0,
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
    if fh.version != VERSION {
        return Err(FrameError::UnknownVersion(fh.version));
    }
    let kind = MessageType::from_code(fh.type_code).ok_or(FrameError::UnknownType(fh.type_code))?;
    decode_body(kind, &frame[HEADER_LEN..])
}

fn decode_body(kind: MessageType, body: &[u8]) -> Result<Message, FrameError> {
    let err = |source| FrameError::Body { kind, source };
    let (header, mut used): (Header, usize) =
        bincode::serde::decode_from_slice(body, config()).map_err(err)?;
    let rest = &body[used..];
    // Decodes the payload type `$t` and wraps it in the body variant.
    macro_rules! payload {
        ($t:ty, $wrap:expr) => {{
            let (p, n): ($t, usize) =
                bincode::serde::decode_from_slice(rest, config()).map_err(err)?;
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
        MessageType::MdInfo => payload!(MdInfo, Body::MdInfo),
        MessageType::HomeHint => payload!(HomeHint, Body::HomeHint),
        MessageType::RrHint => payload!(RrHint, Body::RrHint),
        MessageType::BeHint => payload!(BeHint, Body::BeHint),
        MessageType::Dad => payload!(Dad, Body::Dad),
        MessageType::StateRequest => Body::StateRequest,
        MessageType::StateDump => payload!(StateDump, Body::StateDump),
        MessageType::StateEnd => payload!(StateEnd, Body::StateEnd),
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
