//! Flow bindings (RFC 6089): the Flow Identification and Flow Summary mobility options, the
//! Flow Identification sub-options, and (in [`selector`]) the binary traffic selectors of
//! RFC 6088 with a matcher over inner packets.
//!
//! ```text
//! Flow Identification (type 45, 2n)         Flow Summary (type 44, 2n)
//! | 45 | Len | FID (16)        |            | 44 | Len | FID (16) | FID ... |
//! | FID-PRI (16) | Rsvd | Status |
//! | sub-options ...                         sub-option: | Type | Len | data ... |
//!
//! Binding Reference (2, 2n): | 2 | Len | BID (16) | BID ... |
//! Traffic Selector (3):      | 3 | Len | TS Format | Reserved | Traffic Selector ... |
//! ```
//!
//! There is no Action field: a flow binding is added by a Flow Identification option with a
//! FID the receiver does not have, modified by one with a FID it has, refreshed by listing
//! the FID in a Flow Summary option, and removed by leaving it out of the BU (RFC 6089 §5.2,
//! §5.3.2-§5.3.4). RFC 7109's Flow Binding Action sub-option (type 4) belongs to home-agent
//! initiated flow bindings and is kept here as an unknown sub-option.
//!
//! # Sources, field by field
//!
//! * Flow Identification layout (FID, FID-PRI, Reserved, Status, sub-options), its 2n
//!   alignment, FID 0 and FID-PRI 0 reserved, the Status values: RFC 6089 §4.2 and §8, read
//!   in the RFC's text as the tex2e/rfc-translater repository carries it
//!   (html/rfc6089.html, English column). Cross-checked with Pcap.Net
//!   (IpV6MobilityOptionFlowIdentification.cs: FID at 0, priority at 2, status at 5) and
//!   PyPCAPKit (const/mh/flow_id_status.py, generated from the IANA registry: 0, 128-133).
//! * Type numbers: §4.2 and §4.2.2 give 45 and 44, §8 lists the two the other way round.
//!   The IANA registry as three implementations copy it says 44 = Flow Summary and 45 =
//!   Flow Identification (PyPCAPKit const/mh/option.py, Wireshark's packet-mip6.c
//!   `MIP6_FS = 44, MIP6_FI = 45`, Pcap.Net `FlowSummary = 0x2C`): we use those.
//! * Sub-option TLV, Pad1, PadN, Binding Reference (type 2, 2n, one or more BIDs),
//!   Traffic Selector (type 3, TS Format, Reserved): RFC 6089 §4.2.1-§4.2.1.4; sub-option
//!   types 4 and 5 (RFC 7109) from PyPCAPKit's IANA-generated const/mh/flow_id_suboption.py.
//!   §4.2.1.2 says PadN's length "contains the value N" for N octets of padding, against
//!   §4.2.1's general rule (the length excludes Type and Length) and Pcap.Net's reading; we
//!   follow the general rule, which every TLV walker (ours included) relies on.
//! * Flow Summary: RFC 6089 §4.2.2 (one or more FIDs, 2n); Pcap.Net's
//!   IpV6MobilityOptionFlowSummary.cs agrees (at least one FID, even length).
//! * TS Format values: RFC 6088 §3 and §5 (1 IPv4, 2 IPv6), RFC 6089 §8 (0 reserved).
//! * The binary traffic selectors: see [`selector`].
//! * Not reachable from here: rfc-editor.org and the RFCs' errata pages (the search corpora
//!   return only the beginning of those pages). Wireshark 4.0.17, the tshark installed
//!   here, names options 44 and 45 but dissects neither (no fields in `tshark -G fields`),
//!   so `tests/external_tshark.rs` can check only their type, length and placement.
//!
//! # Alignment
//!
//! Sub-options are aligned like mobility options, on natural boundaries counted from the
//! start of the Mobility Header (§4.2.1): Binding Reference 2n, a binary Traffic Selector
//! 8n/4n/2n/none by the fields it carries (RFC 6088). The sub-options start 8 octets after
//! the option's Type, so a Flow Identification option we lay out from
//! [`FlowSubOptions::List`] asks for the largest alignment among its sub-options (at least
//! its own 2n) and pads inside itself relative to its own start, which keeps its octets the
//! same wherever it lands. A received option ([`FlowSubOptions::Wire`]) is re-emitted octet
//! for octet, as RFC 6089 §5.3.5 has a home agent copy each one into its BA, and asks for
//! the `xn+y` its sub-options' placement implies (8n+4 for an IPv6 selector 12 octets into
//! it), so the copy keeps them aligned.

pub mod selector;

use core::fmt;
use core::hash::{Hash, Hasher};

use crate::option::code_enum;
use crate::{Error, Result};

pub use selector::{
    FlowSelector, Ipv4TrafficSelector, Ipv6TrafficSelector, SelectorRange, TrafficSelector,
    TsFormat,
};

code_enum! {
    /// Status of a Flow Identification option (RFC 6089 §4.2, §8): meaningful in a BA only
    /// (a BU carries 0 and its receiver ignores it). 1-127 are unassigned success codes,
    /// 134-250 unassigned rejections, 251-255 experimental.
    pub enum FlowStatus(u8) {
        /// 0: Flow binding successful.
        Successful = 0,
        /// 128: Administratively prohibited (also a home agent refusing flow bindings at
        /// all, §5.3.5).
        AdministrativelyProhibited = 128,
        /// 129: Flow binding rejected, reason unspecified.
        RejectedReasonUnspecified = 129,
        /// 130: Flow identification mobility option malformed.
        OptionMalformed = 130,
        /// 131: BID not found.
        BidNotFound = 131,
        /// 132: FID not found (also a Flow Summary FID unknown to the receiver, §5.3.3).
        FidNotFound = 132,
        /// 133: Traffic selector format not supported.
        TsFormatNotSupported = 133,
    }
}

impl FlowStatus {
    /// True for 0-127 (RFC 6089 §8).
    pub fn is_success(self) -> bool {
        u8::from(self) < 128
    }

    /// Name and defining RFC of the status, for logs (RFC 6089 §8).
    pub fn meaning(self) -> (&'static str, &'static str) {
        match u8::from(self) {
            0 => ("Flow binding successful", "RFC 6089"),
            128 => ("Administratively prohibited", "RFC 6089"),
            129 => ("Flow binding rejected, reason unspecified", "RFC 6089"),
            130 => ("Flow identification mobility option malformed", "RFC 6089"),
            131 => ("BID not found", "RFC 6089"),
            132 => ("FID not found", "RFC 6089"),
            133 => ("Traffic selector format not supported", "RFC 6089"),
            1..=127 => ("Success (unassigned code)", "RFC 6089"),
            251..=255 => ("Reserved for experimental use", "RFC 6089"),
            _ => ("Rejected (unassigned code)", "RFC 6089"),
        }
    }
}

code_enum! {
    /// Flow Identification sub-option type (IANA "Flow Identification Sub-Options";
    /// RFC 6089 §4.2.1, §8).
    pub enum FlowSubOptionType(u8) {
        /// One octet of padding, no length (§4.2.1.1).
        Pad1 = 0,
        /// Padding of Length + 2 octets (§4.2.1.2).
        PadN = 1,
        /// BIDs the flow is bound to (§4.2.1.3).
        BindingReference = 2,
        /// The flow's traffic selector (§4.2.1.4).
        TrafficSelector = 3,
        /// RFC 7109 (home agent initiated flow bindings); not decoded here.
        FlowBindingAction = 4,
        /// RFC 7109; not decoded here.
        TargetCareOfAddress = 5,
    }
}

/// Octets of a Flow Identification option's data before its sub-options: FID, FID-PRI,
/// Reserved, Status (RFC 6089 §4.2).
pub const FLOW_ID_FIXED_LEN: usize = 6;

/// Offset of the first sub-option from the option's Type octet.
const SUB_OPTIONS_AT: usize = 2 + FLOW_ID_FIXED_LEN;

/// Largest value of a Length octet.
const MAX_DATA: usize = u8::MAX as usize;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// 16-bit identifiers: the BIDs of a Binding Reference sub-option or the FIDs of a Flow
/// Summary option. Parsing borrows the received octets; a sender lists values. Two lists
/// are equal when they hold the same values in the same order, however they are held.
#[derive(Clone, Copy)]
pub enum IdList<'a> {
    /// As received: big-endian, an even number of octets.
    Wire(&'a [u8]),
    /// To send.
    List(&'a [u16]),
}

impl<'a> IdList<'a> {
    /// Parses a field of one or more 16-bit identifiers (a Binding Reference's BIDs, a
    /// Flow Summary's FIDs).
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self> {
        if data.is_empty() || !data.len().is_multiple_of(2) {
            return Err(Error::BadLength);
        }
        Ok(IdList::Wire(data))
    }

    /// Number of identifiers.
    pub fn len(&self) -> usize {
        match self {
            IdList::Wire(b) => b.len() / 2,
            IdList::List(v) => v.len(),
        }
    }

    /// True when there is none (never for a parsed list).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The identifiers in order.
    pub fn iter(&self) -> IdIter<'a> {
        IdIter { list: *self, i: 0 }
    }

    /// Whether `id` is listed.
    pub fn contains(&self, id: u16) -> bool {
        self.iter().any(|x| x == id)
    }

    /// Octets on the wire.
    pub(crate) fn wire_len(&self) -> usize {
        2 * self.len()
    }

    /// At least one identifier, and whole ones.
    pub(crate) fn check_emit(&self) -> Result<()> {
        match self {
            _ if self.is_empty() => Err(Error::BadLength),
            IdList::Wire(b) if !b.len().is_multiple_of(2) => Err(Error::BadLength),
            _ => Ok(()),
        }
    }

    /// Writes the identifiers into `buf`, exactly `wire_len()` octets long.
    pub(crate) fn emit(&self, buf: &mut [u8]) {
        for (chunk, id) in buf.chunks_exact_mut(2).zip(self.iter()) {
            chunk.copy_from_slice(&id.to_be_bytes());
        }
    }
}

/// Iterator over an [`IdList`].
#[derive(Debug, Clone)]
pub struct IdIter<'a> {
    list: IdList<'a>,
    i: usize,
}

impl Iterator for IdIter<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        let id = match self.list {
            IdList::Wire(b) => b.get(2 * self.i..2 * self.i + 2).map(be16),
            IdList::List(v) => v.get(self.i).copied(),
        }?;
        self.i += 1;
        Some(id)
    }
}

impl PartialEq for IdList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for IdList<'_> {}

impl Hash for IdList<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.len().hash(state);
        self.iter().for_each(|id| id.hash(state));
    }
}

impl fmt::Debug for IdList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One Flow Identification sub-option other than padding (RFC 6089 §4.2.1). Variable data
/// borrows the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowSubOption<'a> {
    /// §4.2.1.3: the BIDs (RFC 5648) the flow is bound to, at least one.
    BindingReference(IdList<'a>),
    /// §4.2.1.4: the flow's traffic selector. The Reserved octet is sent as zero.
    TrafficSelector(TrafficSelector<'a>),
    /// Any other sub-option, kept as received (§4.2.1: unknown sub-options are skipped).
    Unknown {
        /// The Sub-Opt Type octet (never 0 or 1).
        sub_option_type: u8,
        /// The data after the Sub-Opt Len octet.
        data: &'a [u8],
    },
}

impl<'a> FlowSubOption<'a> {
    /// Parses one sub-option from its type and data (Pad1 and PadN are the walker's).
    pub fn parse(sub_option_type: u8, data: &'a [u8]) -> Result<Self> {
        Ok(match FlowSubOptionType::from(sub_option_type) {
            FlowSubOptionType::BindingReference => {
                FlowSubOption::BindingReference(IdList::parse(data)?)
            }
            FlowSubOptionType::TrafficSelector => {
                // TS Format, Reserved, then the selector.
                let [format, _reserved, selector @ ..] = data else {
                    return Err(Error::BadLength);
                };
                FlowSubOption::TrafficSelector(TrafficSelector::parse(*format, selector)?)
            }
            _ => FlowSubOption::Unknown {
                sub_option_type,
                data,
            },
        })
    }

    /// The Sub-Opt Type octet.
    pub fn sub_option_type(&self) -> u8 {
        match self {
            FlowSubOption::BindingReference(_) => 2,
            FlowSubOption::TrafficSelector(_) => 3,
            FlowSubOption::Unknown {
                sub_option_type, ..
            } => *sub_option_type,
        }
    }

    /// Value of the Sub-Opt Len octet (may exceed 255, which `emit` refuses).
    pub fn data_len(&self) -> usize {
        match self {
            FlowSubOption::BindingReference(ids) => ids.wire_len(),
            FlowSubOption::TrafficSelector(ts) => 2 + ts.buffer_len(),
            FlowSubOption::Unknown { data, .. } => data.len(),
        }
    }

    /// Octets on the wire, Type and Length included.
    pub fn wire_len(&self) -> usize {
        2 + self.data_len()
    }

    /// The `xn` alignment of the sub-option's Type octet: 2 for a Binding Reference
    /// (§4.2.1.3), RFC 6088's for a binary traffic selector, none otherwise.
    pub fn alignment(&self) -> usize {
        match self {
            FlowSubOption::BindingReference(_) => 2,
            FlowSubOption::TrafficSelector(ts) => ts.alignment(),
            FlowSubOption::Unknown { .. } => 1,
        }
    }

    /// Checks what `emit` cannot encode: over-long or empty data, an unknown sub-option
    /// with a pad type, a binary selector given as opaque octets.
    pub fn check_emit(&self) -> Result<()> {
        if self.data_len() > MAX_DATA {
            return Err(Error::BadLength);
        }
        match self {
            FlowSubOption::BindingReference(ids) => ids.check_emit(),
            FlowSubOption::TrafficSelector(ts) => ts.check_emit(),
            FlowSubOption::Unknown {
                sub_option_type, ..
            } if *sub_option_type <= 1 => {
                Err(Error::Malformed("unknown flow sub-option with a pad type"))
            }
            FlowSubOption::Unknown { .. } => Ok(()),
        }
    }

    /// Writes the sub-option into the first [`wire_len`](Self::wire_len) octets of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        self.check_emit()?;
        let buf = buf
            .get_mut(..self.wire_len())
            .ok_or(Error::BufferTooSmall)?;
        buf[0] = self.sub_option_type();
        buf[1] = self.data_len() as u8;
        let d = &mut buf[2..];
        match self {
            FlowSubOption::BindingReference(ids) => ids.emit(d),
            FlowSubOption::TrafficSelector(ts) => {
                d[0] = ts.format().into();
                d[1] = 0;
                ts.emit(&mut d[2..])?;
            }
            FlowSubOption::Unknown { data, .. } => d.copy_from_slice(data),
        }
        Ok(())
    }
}

/// The sub-options of a Flow Identification option: the received octets, walked on demand,
/// or a list to send. Equality and hashing go by the sub-options (padding aside) when both
/// sides are well formed, by the octets when both are not.
#[derive(Clone, Copy)]
pub enum FlowSubOptions<'a> {
    /// As received, padding included. May be malformed: [`FlowSubOptions::iter`] stops at
    /// the first error, so a home agent can answer status 130 for this option alone.
    Wire(&'a [u8]),
    /// To send; laid out with the padding their alignments need.
    List(&'a [FlowSubOption<'a>]),
}

impl<'a> FlowSubOptions<'a> {
    /// No sub-options.
    pub const NONE: FlowSubOptions<'static> = FlowSubOptions::List(&[]);

    /// The sub-options in order, padding skipped. A malformed region yields its error once
    /// and ends.
    pub fn iter(&self) -> SubOptionIter<'a> {
        SubOptionIter {
            subs: *self,
            pos: 0,
            failed: false,
        }
    }

    /// Ok when every sub-option parses (received) or can be emitted (to send).
    pub fn check(&self) -> Result<()> {
        match self {
            FlowSubOptions::Wire(_) => self.iter().try_for_each(|s| s.map(drop)),
            FlowSubOptions::List(list) => list.iter().try_for_each(FlowSubOption::check_emit),
        }
    }

    /// The first Traffic Selector sub-option's selector (RFC 6089 allows one), if any and
    /// if the sub-options before it parse.
    pub fn traffic_selector(&self) -> Option<TrafficSelector<'a>> {
        self.iter().map_while(Result::ok).find_map(|s| match s {
            FlowSubOption::TrafficSelector(ts) => Some(ts),
            _ => None,
        })
    }

    /// The first Binding Reference sub-option's BIDs (RFC 6089 allows one), as above.
    pub fn binding_ids(&self) -> Option<IdList<'a>> {
        self.iter().map_while(Result::ok).find_map(|s| match s {
            FlowSubOption::BindingReference(ids) => Some(ids),
            _ => None,
        })
    }

    /// The `(x, y)` alignment of the option's Type octet that puts every sub-option on
    /// its own: for a list (laid out from the option's start), the largest of theirs and
    /// at least 2n; for received octets, the one their placement implies, so that a copy
    /// in a BA keeps them aligned; 2n when they are malformed or were not aligned.
    fn alignment(&self) -> (usize, usize) {
        match self {
            FlowSubOptions::List(list) => {
                let x = list
                    .iter()
                    .map(FlowSubOption::alignment)
                    .fold(2, usize::max);
                (x, 0)
            }
            FlowSubOptions::Wire(_) => self.implied_alignment().unwrap_or((2, 0)),
        }
    }

    /// The option alignment under which every received sub-option is on its own, if one
    /// exists (the alignments are powers of two, so the largest decides and the others
    /// must agree with it).
    fn implied_alignment(&self) -> Option<(usize, usize)> {
        let (mut x, mut y) = (2, 0);
        let mut it = self.iter();
        while let Some(s) = it.next() {
            let s = s.ok()?;
            let xi = s.alignment();
            // Its Type octet, counted from the option's Type octet.
            let at = SUB_OPTIONS_AT + it.pos - s.wire_len();
            let need = at.wrapping_neg() & (xi - 1);
            if xi > x {
                if need & (x - 1) != y {
                    return None;
                }
                (x, y) = (xi, need);
            } else if y & (xi - 1) != need {
                return None;
            }
        }
        Some((x, y))
    }

    /// Octets of the region, padding included.
    fn wire_len(&self) -> usize {
        match self {
            FlowSubOptions::Wire(b) => b.len(),
            FlowSubOptions::List(list) => {
                let mut at = SUB_OPTIONS_AT;
                for s in list.iter() {
                    at += pad_to(at, s.alignment()) + s.wire_len();
                }
                at - SUB_OPTIONS_AT
            }
        }
    }

    /// Writes the region into `buf`, exactly `wire_len()` octets long.
    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        match self {
            FlowSubOptions::Wire(b) => buf.copy_from_slice(b),
            FlowSubOptions::List(list) => {
                let mut pos = 0;
                for s in list.iter() {
                    let pad = pad_to(SUB_OPTIONS_AT + pos, s.alignment());
                    write_pad(&mut buf[pos..pos + pad]);
                    pos += pad;
                    s.emit(&mut buf[pos..])?;
                    pos += s.wire_len();
                }
            }
        }
        Ok(())
    }
}

/// Octets to add at offset `at` (from the option's Type) to reach a multiple of `x`.
fn pad_to(at: usize, x: usize) -> usize {
    at.wrapping_neg() & (x - 1)
}

/// Pad1 or PadN sub-options filling `buf` (RFC 6089 §4.2.1.1-§4.2.1.2).
fn write_pad(buf: &mut [u8]) {
    match buf.len() {
        0 => {}
        1 => buf[0] = 0,
        n => {
            buf[0] = 1;
            buf[1] = (n - 2) as u8;
            buf[2..].fill(0);
        }
    }
}

/// Iterator over [`FlowSubOptions`], yielding `Result<FlowSubOption>`.
#[derive(Debug, Clone)]
pub struct SubOptionIter<'a> {
    subs: FlowSubOptions<'a>,
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for SubOptionIter<'a> {
    type Item = Result<FlowSubOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let region = match self.subs {
            FlowSubOptions::List(list) => {
                let s = list.get(self.pos)?;
                self.pos += 1;
                return Some(Ok(*s));
            }
            FlowSubOptions::Wire(region) => region,
        };
        while !self.failed {
            let rest = region.get(self.pos..).filter(|r| !r.is_empty())?;
            let r = match rest {
                [0, ..] => {
                    self.pos += 1;
                    continue;
                }
                [t, len, tail @ ..] => match tail.get(..usize::from(*len)) {
                    None => Err(Error::Truncated),
                    Some(data) => {
                        self.pos += 2 + data.len();
                        if *t == 1 {
                            continue;
                        }
                        FlowSubOption::parse(*t, data)
                    }
                },
                _ => Err(Error::Truncated),
            };
            self.failed = r.is_err();
            return Some(r);
        }
        None
    }
}

impl PartialEq for FlowSubOptions<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.check().is_ok(), other.check().is_ok()) {
            (true, true) => self.iter().eq(other.iter()),
            (false, false) => match (self, other) {
                (FlowSubOptions::Wire(a), FlowSubOptions::Wire(b)) => a == b,
                (FlowSubOptions::List(a), FlowSubOptions::List(b)) => a == b,
                _ => false,
            },
            _ => false,
        }
    }
}

impl Eq for FlowSubOptions<'_> {}

impl Hash for FlowSubOptions<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.check().is_ok() {
            self.iter().for_each(|s| s.ok().hash(state));
        } else {
            match self {
                FlowSubOptions::Wire(b) => b.hash(state),
                FlowSubOptions::List(list) => list.hash(state),
            }
        }
    }
}

impl fmt::Debug for FlowSubOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The Flow Identification mobility option (type 45; RFC 6089 §4.2), carried by BUs (to
/// add or modify a flow binding) and BAs (with its status). Reserved octets are sent as
/// zero and ignored on receipt.
///
/// FID 0 and FID-PRI 0 are reserved ("MUST NOT be used") but parse, so a home agent can
/// answer them with [`FlowStatus::OptionMalformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowIdentification<'a> {
    /// Flow identifier, chosen by the mobile node.
    pub fid: u16,
    /// Priority among overlapping flow bindings; lower is preferred, unique per node.
    pub fid_pri: u16,
    /// The outcome, in a BA; 0 in a BU.
    pub status: FlowStatus,
    /// Binding Reference, Traffic Selector and unknown sub-options.
    pub sub_options: FlowSubOptions<'a>,
}

impl<'a> FlowIdentification<'a> {
    /// Parses the option's data (after the Length octet). Only the fixed part must be
    /// whole; the sub-options are kept and walked on demand.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let Some((fixed, subs)) = data.split_at_checked(FLOW_ID_FIXED_LEN) else {
            return Err(Error::BadLength);
        };
        Ok(FlowIdentification {
            fid: be16(&fixed[0..2]),
            fid_pri: be16(&fixed[2..4]),
            status: FlowStatus::from(fixed[5]),
            sub_options: FlowSubOptions::Wire(subs),
        })
    }

    /// The flow's traffic selector, if the option carries one.
    pub fn traffic_selector(&self) -> Option<TrafficSelector<'a>> {
        self.sub_options.traffic_selector()
    }

    /// The BIDs the flow is bound to, if the option carries them.
    pub fn binding_ids(&self) -> Option<IdList<'a>> {
        self.sub_options.binding_ids()
    }

    /// Value of the option's Length octet (may exceed 255, which `emit` refuses).
    pub fn data_len(&self) -> usize {
        FLOW_ID_FIXED_LEN + self.sub_options.wire_len()
    }

    /// The `xn+y` alignment of the option's Type octet as `(x, y)`: 2n (§4.2), or more
    /// when its sub-options need more (see the module's "Alignment").
    pub fn alignment(&self) -> (usize, usize) {
        self.sub_options.alignment()
    }

    /// Checks what `emit` cannot encode: over-long data, or sub-options to send that
    /// cannot be emitted. Received sub-options, malformed or not, are copied as they are.
    pub fn check_emit(&self) -> Result<()> {
        if self.data_len() > MAX_DATA {
            return Err(Error::BadLength);
        }
        match self.sub_options {
            FlowSubOptions::Wire(_) => Ok(()),
            FlowSubOptions::List(_) => self.sub_options.check(),
        }
    }

    /// Writes the option's data (after the Length octet) into `d`, exactly `data_len()`
    /// octets long.
    pub(crate) fn emit_data(&self, d: &mut [u8]) -> Result<()> {
        d[0..2].copy_from_slice(&self.fid.to_be_bytes());
        d[2..4].copy_from_slice(&self.fid_pri.to_be_bytes());
        d[4] = 0;
        d[5] = self.status.into();
        self.sub_options.emit(&mut d[FLOW_ID_FIXED_LEN..])
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! proptest strategies for Flow Identification options, shared with option.rs.
    use super::selector::strategies::{ipv4_selector, ipv6_selector};
    use super::*;
    use proptest::prelude::*;

    fn leak<T>(v: Vec<T>) -> &'static [T] {
        Box::leak(v.into_boxed_slice())
    }

    pub fn ids() -> impl Strategy<Value = IdList<'static>> {
        proptest::collection::vec(any::<u16>(), 1..6).prop_map(|v| IdList::List(leak(v)))
    }

    pub fn sub_option() -> impl Strategy<Value = FlowSubOption<'static>> {
        prop_oneof![
            ids().prop_map(FlowSubOption::BindingReference),
            ipv4_selector()
                .prop_map(|ts| FlowSubOption::TrafficSelector(TrafficSelector::Ipv4(ts))),
            ipv6_selector()
                .prop_map(|ts| FlowSubOption::TrafficSelector(TrafficSelector::Ipv6(ts))),
            (
                prop_oneof![Just(0u8), 3u8..=255],
                proptest::collection::vec(any::<u8>(), 0..12)
            )
                .prop_map(|(format, data)| FlowSubOption::TrafficSelector(
                    TrafficSelector::Other {
                        format,
                        data: leak(data)
                    }
                )),
            (4u8..=255, proptest::collection::vec(any::<u8>(), 0..12)).prop_map(
                |(sub_option_type, data)| FlowSubOption::Unknown {
                    sub_option_type,
                    data: leak(data)
                }
            ),
        ]
    }

    /// A Flow Identification option whose data fits in 255 octets.
    pub fn flow_identification() -> impl Strategy<Value = FlowIdentification<'static>> {
        (
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            proptest::collection::vec(sub_option(), 0..3),
        )
            .prop_map(|(fid, fid_pri, status, mut subs)| {
                let mut fi = FlowIdentification {
                    fid,
                    fid_pri,
                    status: FlowStatus::from(status),
                    sub_options: FlowSubOptions::NONE,
                };
                loop {
                    fi.sub_options = FlowSubOptions::List(leak(subs.clone()));
                    if fi.data_len() <= MAX_DATA {
                        return fi;
                    }
                    subs.pop();
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use proptest::prelude::*;

    const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);

    fn emitted(fi: &FlowIdentification<'_>) -> Vec<u8> {
        let mut buf = vec![0xa5; fi.data_len()];
        fi.emit_data(&mut buf).unwrap();
        buf
    }

    /// A new flow binding (RFC 6089 §5.2.2.1): FID 7, FID-PRI 10, BIDs 1 and 2, an IPv4
    /// selector for TCP to 192.0.2.20:443 (4n). Sub-options start 8 octets after the Type
    /// (a multiple of 4): the Binding Reference at +8 (6 octets), a PadN of 2 at +14, the
    /// Traffic Selector at +16.
    fn fixture_v4() -> (Vec<u8>, FlowIdentification<'static>) {
        const SUBS: &[FlowSubOption<'static>] = &[
            FlowSubOption::BindingReference(IdList::List(&[1, 2])),
            FlowSubOption::TrafficSelector(TrafficSelector::Ipv4(Ipv4TrafficSelector {
                source_address: None,
                destination_address: Some(SelectorRange::single(Ipv4Addr::new(192, 0, 2, 20))),
                spi: None,
                source_port: None,
                destination_port: Some(SelectorRange::single(443)),
                ds: None,
                protocol: Some(SelectorRange::single(6)),
            })),
        ];
        let mut b = vec![0x00, 0x07, 0x00, 0x0a, 0x00, 0x00];
        b.extend_from_slice(&[2, 4, 0x00, 0x01, 0x00, 0x02]);
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&[3, 13, 1, 0]);
        b.extend_from_slice(&[0x20, 0x88, 0, 0, 192, 0, 2, 20, 0x01, 0xbb, 6]);
        let fi = FlowIdentification {
            fid: 7,
            fid_pri: 10,
            status: FlowStatus::Successful,
            sub_options: FlowSubOptions::List(SUBS),
        };
        (b, fi)
    }

    /// A BA's copy with status 131 (BID not found), no sub-options.
    fn fixture_ba() -> (Vec<u8>, FlowIdentification<'static>) {
        let b = vec![0x01, 0x00, 0x00, 0x01, 0x00, 131];
        let fi = FlowIdentification {
            fid: 256,
            fid_pri: 1,
            status: FlowStatus::BidNotFound,
            sub_options: FlowSubOptions::NONE,
        };
        (b, fi)
    }

    /// An IPv6 selector with the home address (8n): the Binding Reference first at +8
    /// (4 octets), PadN of 4 at +12, the Traffic Selector at +16.
    fn fixture_v6() -> (Vec<u8>, FlowIdentification<'static>) {
        const SUBS: &[FlowSubOption<'static>] = &[
            FlowSubOption::BindingReference(IdList::List(&[3])),
            FlowSubOption::TrafficSelector(TrafficSelector::Ipv6(Ipv6TrafficSelector {
                source_address: None,
                destination_address: Some(SelectorRange::single(HOA)),
                spi: None,
                flow_label: None,
                source_port: None,
                destination_port: Some(SelectorRange::new(5060, 5061)),
                traffic_class: None,
                next_header: Some(SelectorRange::single(17)),
            })),
        ];
        let mut b = vec![0x00, 0x09, 0x00, 0x02, 0x00, 0x00];
        b.extend_from_slice(&[2, 2, 0x00, 0x03]);
        b.extend_from_slice(&[1, 2, 0, 0]);
        // C, K, L, O: 0x20, 0x30 | 0x02.
        b.extend_from_slice(&[3, 27, 2, 0, 0x20, 0x32, 0, 0]);
        b.extend_from_slice(&HOA.octets());
        b.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc5, 17]);
        let fi = FlowIdentification {
            fid: 9,
            fid_pri: 2,
            status: FlowStatus::Successful,
            sub_options: FlowSubOptions::List(SUBS),
        };
        (b, fi)
    }

    #[test]
    fn deconstruct_and_parse() {
        for (b, fi) in [fixture_v4(), fixture_ba(), fixture_v6()] {
            let parsed = FlowIdentification::parse(&b).unwrap();
            assert_eq!(parsed, fi, "{b:x?}");
            assert_eq!(parsed.sub_options.check(), Ok(()));
        }
        let (b, _) = fixture_v4();
        let fi = FlowIdentification::parse(&b).unwrap();
        assert_eq!(fi.binding_ids().unwrap().iter().collect::<Vec<_>>(), [1, 2]);
        let Some(TrafficSelector::Ipv4(ts)) = fi.traffic_selector() else {
            panic!("no IPv4 selector");
        };
        assert_eq!(ts.destination_port, Some(SelectorRange::single(443)));
        assert_eq!(
            FlowIdentification::parse(&b[..6])
                .unwrap()
                .traffic_selector(),
            None
        );
    }

    #[test]
    fn construct_and_emit() {
        for (b, fi) in [fixture_v4(), fixture_ba(), fixture_v6()] {
            assert_eq!(fi.data_len(), b.len(), "{fi:?}");
            assert_eq!(emitted(&fi), b, "{fi:?}");
        }
        assert_eq!(fixture_v4().1.alignment(), (4, 0));
        assert_eq!(fixture_ba().1.alignment(), (2, 0));
        assert_eq!(fixture_v6().1.alignment(), (8, 0));
        // Received, they still know where they must go.
        for (b, fi) in [fixture_v4(), fixture_ba(), fixture_v6()] {
            assert_eq!(
                FlowIdentification::parse(&b).unwrap().alignment(),
                fi.alignment()
            );
        }
    }

    #[test]
    fn received_sub_options_are_copied_as_they_are() {
        // Sub-options placed by another sender (a Pad1, the selector unaligned, an
        // unknown sub-option): equal to ours by meaning, re-emitted octet for octet.
        let mut b = vec![0x00, 0x07, 0x00, 0x0a, 0x00, 0x00, 0];
        b.extend_from_slice(&[
            3, 13, 1, 0x00, 0x20, 0x88, 0, 0, 192, 0, 2, 20, 0x01, 0xbb, 6,
        ]);
        b.extend_from_slice(&[200, 1, 0xee]);
        b.extend_from_slice(&[2, 4, 0x00, 0x01, 0x00, 0x02]);
        let fi = FlowIdentification::parse(&b).unwrap();
        let subs: Vec<_> = fi.sub_options.iter().collect::<Result<_>>().unwrap();
        assert_eq!(subs.len(), 3);
        assert_eq!(
            subs[1],
            FlowSubOption::Unknown {
                sub_option_type: 200,
                data: &[0xee]
            }
        );
        // The selector at +9 cannot be on a 4n boundary with the option on a 2n one.
        assert_eq!(fi.alignment(), (2, 0));
        assert_eq!(emitted(&fi), b);
        // A home agent's copy with a status (§5.3.5).
        let ba = FlowIdentification {
            status: FlowStatus::Successful,
            ..fi
        };
        assert_eq!(emitted(&ba)[6..], b[6..]);
        // Not equal to fixture_v4 (the unknown sub-option and the order differ) but equal
        // to the same list in the same order.
        assert_ne!(fi, fixture_v4().1);
        let list = FlowIdentification {
            sub_options: FlowSubOptions::List(&subs),
            ..fi
        };
        assert_eq!(fi, list);
    }

    /// Another sender's placement: the IPv6 selector right after a Binding Reference, at
    /// +12. It is on 8n when the option is at 8n+4, which a copy must then keep.
    #[test]
    fn received_alignment_is_implied_by_the_placement() {
        let (v6, _) = fixture_v6();
        let mut b = v6[..10].to_vec();
        b.extend_from_slice(&v6[14..]);
        let fi = FlowIdentification::parse(&b).unwrap();
        assert_eq!(fi.sub_options.check(), Ok(()));
        assert_eq!(fi, fixture_v6().1);
        assert_eq!(fi.alignment(), (8, 4));
        // A Binding Reference at an odd offset: no alignment fits, 2n.
        let odd = [0, 1, 0, 1, 0, 0, 0, 2, 2, 0, 1];
        assert_eq!(FlowIdentification::parse(&odd).unwrap().alignment(), (2, 0));
        // Malformed: 2n.
        let bad = [0, 1, 0, 1, 0, 0, 3, 9];
        assert_eq!(FlowIdentification::parse(&bad).unwrap().alignment(), (2, 0));
    }

    #[test]
    fn malformed_sub_options_still_parse() {
        // A Binding Reference of 3 octets, then a truncated TLV: the option parses (the
        // home agent answers 130 for it), its sub-options do not.
        let b = [0, 5, 0, 5, 0, 0, 2, 3, 0, 1, 0];
        let fi = FlowIdentification::parse(&b).unwrap();
        assert_eq!(fi.sub_options.check(), Err(Error::BadLength));
        let got: Vec<_> = fi.sub_options.iter().collect();
        assert_eq!(got, vec![Err(Error::BadLength)]);
        assert_eq!(fi.binding_ids(), None);
        assert_eq!(fi.check_emit(), Ok(()));
        assert_eq!(emitted(&fi), b);
        assert_eq!(FlowIdentification::parse(&emitted(&fi)).unwrap(), fi);
        let b2 = [0, 5, 0, 5, 0, 0, 3, 9, 1];
        let fi2 = FlowIdentification::parse(&b2).unwrap();
        assert_eq!(fi2.sub_options.check(), Err(Error::Truncated));
        assert_ne!(fi, fi2);
        // A binary selector that does not decode, an empty Binding Reference, a TS
        // sub-option without its TS Format and Reserved octets.
        for subs in [
            &[3, 6, 1, 0, 0x80, 0, 0, 0][..],
            &[2, 0][..],
            &[3, 1, 1][..],
            &[7][..],
        ] {
            let mut b = vec![0, 1, 0, 1, 0, 0];
            b.extend_from_slice(subs);
            let fi = FlowIdentification::parse(&b).unwrap();
            assert!(fi.sub_options.check().is_err(), "{subs:?}");
        }
        // The fixed part cut short.
        assert_eq!(
            FlowIdentification::parse(&[0, 1, 0, 1, 0]),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn padding_is_skipped() {
        let b = [0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 3, 0, 0, 0, 2, 2, 0, 9];
        let fi = FlowIdentification::parse(&b).unwrap();
        assert_eq!(
            fi.sub_options.iter().collect::<Vec<_>>(),
            vec![Ok(FlowSubOption::BindingReference(IdList::List(&[9])))]
        );
    }

    #[test]
    fn emit_refuses_unencodable() {
        let big = [0u8; 254];
        let bad: &[FlowSubOption<'_>] = &[
            FlowSubOption::BindingReference(IdList::List(&[])),
            FlowSubOption::BindingReference(IdList::Wire(&[1, 2, 3])),
            FlowSubOption::Unknown {
                sub_option_type: 1,
                data: &[],
            },
            FlowSubOption::TrafficSelector(TrafficSelector::Other {
                format: 1,
                data: &[],
            }),
            FlowSubOption::TrafficSelector(TrafficSelector::Other {
                format: 9,
                data: &big[..],
            }),
        ];
        for s in bad {
            let fi = FlowIdentification {
                fid: 1,
                fid_pri: 1,
                status: FlowStatus::Successful,
                sub_options: FlowSubOptions::List(core::slice::from_ref(s)),
            };
            assert!(fi.check_emit().is_err(), "{s:?}");
            let mut buf = [0u8; 300];
            assert!(s.emit(&mut buf).is_err(), "{s:?}");
        }
        let ok = FlowSubOption::BindingReference(IdList::List(&[1]));
        assert_eq!(ok.emit(&mut [0u8; 3]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn status_codes() {
        assert_eq!(u8::from(FlowStatus::Successful), 0);
        assert_eq!(u8::from(FlowStatus::AdministrativelyProhibited), 128);
        assert_eq!(u8::from(FlowStatus::RejectedReasonUnspecified), 129);
        assert_eq!(u8::from(FlowStatus::OptionMalformed), 130);
        assert_eq!(u8::from(FlowStatus::BidNotFound), 131);
        assert_eq!(u8::from(FlowStatus::FidNotFound), 132);
        assert_eq!(u8::from(FlowStatus::TsFormatNotSupported), 133);
        for s in 0..=255u8 {
            let st = FlowStatus::from(s);
            assert_eq!(u8::from(st), s);
            assert_eq!(st.is_success(), s < 128);
            assert!(!st.meaning().0.is_empty());
            assert_eq!(u8::from(FlowSubOptionType::from(s)), s);
            assert_eq!(u8::from(TsFormat::from(s)), s);
        }
        assert_eq!(FlowStatus::FidNotFound.meaning().0, "FID not found");
        assert_eq!(
            FlowStatus::from(200).meaning().0,
            "Rejected (unassigned code)"
        );
        assert_eq!(
            FlowSubOptionType::from(3),
            FlowSubOptionType::TrafficSelector
        );
        assert_eq!(TsFormat::from(2), TsFormat::Ipv6Binary);
        assert_eq!(TsFormat::from(0), TsFormat::Unknown(0));
    }

    #[test]
    fn id_lists() {
        let wire = IdList::parse(&[0, 1, 0xff, 0xff]).unwrap();
        assert_eq!(wire, IdList::List(&[1, 0xffff]));
        assert_eq!(wire.len(), 2);
        assert!(wire.contains(0xffff));
        assert!(!wire.contains(2));
        assert_eq!(format!("{wire:?}"), "[1, 65535]");
        assert_eq!(IdList::parse(&[]), Err(Error::BadLength));
        assert_eq!(IdList::parse(&[1, 2, 3]), Err(Error::BadLength));
    }

    proptest! {
        #[test]
        fn round_trip(fi in strategies::flow_identification()) {
            let b = emitted(&fi);
            let parsed = FlowIdentification::parse(&b).unwrap();
            prop_assert_eq!(parsed.sub_options.check(), Ok(()));
            prop_assert_eq!(parsed, fi);
            prop_assert_eq!(parsed.alignment(), fi.alignment());
            // Every sub-option on its alignment, counted from an option Type at 0 mod
            // the option's alignment.
            let mut pos = FLOW_ID_FIXED_LEN;
            while pos < b.len() {
                let t = b[pos];
                if t == 0 {
                    pos += 1;
                    continue;
                }
                let len = usize::from(b[pos + 1]);
                if t != 1 {
                    let s = FlowSubOption::parse(t, &b[pos + 2..pos + 2 + len]).unwrap();
                    prop_assert_eq!((2 + pos) % s.alignment(), 0, "{:?}", s);
                }
                pos += 2 + len;
            }
            // Re-emitting what was received gives the same octets.
            prop_assert_eq!(emitted(&parsed), b);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Ok(fi) = FlowIdentification::parse(&bytes) {
                let _ = fi.sub_options.check();
                let _ = fi.traffic_selector();
                let _ = fi.binding_ids();
                // Octet for octet, but the Reserved one, sent as zero.
                let mut want = bytes.clone();
                want[4] = 0;
                prop_assert_eq!(emitted(&fi), want);
                let again = FlowIdentification::parse(&bytes).unwrap();
                prop_assert_eq!(again, fi);
            }
        }
    }
}
