//! # mipsock — SHISA's mobility socket (AF_MOBILITY) for Linux, in user space
//!
//! SHISA's daemons (`mrd`, `had`, `babymdd`, `nemonetd`) talk over AF_MOBILITY, a kernel
//! broadcast socket: every message written by one reaches every other. Linux has none;
//! this crate is its emulation, a *bus*, plus the typed messages
//! ([`message`], SHISA's `MIPM_*` set with what SHISA lacked) and the `mipsock` CLI (tap,
//! inject, state).
//!
//! ## Design
//!
//! * **Broker-less.** A bus is a directory (default `/run/mipsock/<bus>`, or
//!   `$MIPSOCK_DIR`, or the CLI's `--bus-dir`). Each [`Endpoint`] binds a listening socket
//!   `<name>.<pid>.<n>.sock` there; a send goes to every other socket in the directory. No
//!   endpoint is special: any daemon may start, stop or crash in any order, and a tap can
//!   attach at any time.
//! * **`SOCK_SEQPACKET` connections, not datagrams** (see [`endpoint`] for the kernel
//!   reasons): a writer keeps one connection per peer and sends with `MSG_DONTWAIT`. A full
//!   connection (slow or stalled reader) returns EAGAIN: that message is dropped for that
//!   reader only and counted ([`Stats::dropped`], per peer in [`Stats::peers`]); the writer
//!   never blocks. Readers see drops as gaps in the sender's serial ([`Stats::missed`]).
//! * **Peer discovery** re-lists the directory only when its mtime changes (or changed
//!   within the last 100 ms, as timestamps are coarse), so a send costs one `fstat` plus
//!   one `send` per peer.
//! * **Crashes**: a socket file whose owner died refuses connections; the next sender (or
//!   the next endpoint to open) removes it. Readers notice a closed connection as EOF.
//! * **Permissions**: directory 0770, sockets 0660, optionally owned by a group
//!   ([`EndpointOptions::group`]): only root or that group may write.
//! * **Framing** ([`frame`]): fixed 12-octet header (magic `MIPS`, version, type code, body
//!   length) + postcard body (version 2). Unknown versions or types are skipped and
//!   counted; version 1, the bincode body of older releases, is also warned about, as both
//!   ends need upgrading; garbage is logged and dropped; the bus keeps working. The same frames work on byte streams
//!   ([`frame::FrameDecoder`], resynchronising on the magic).
//! * **State dumps**: [`Body::StateRequest`] asks every owner (mrd: BUL, had: binding
//!   cache, babymdd: current CoA) to answer with [`Endpoint::reply_state`]; a restarted
//!   daemon or `mipsock state` calls [`Endpoint::request_state`].
//! * **Async**: [`AsyncEndpoint`] for tokio daemons.
//!
//! ```no_run
//! use mipsock::{Body, CareOf, Endpoint, EndpointOptions, MdCommand, MdInfo, Message};
//! let ep = Endpoint::open("/run/mipsock/default", "babymdd", EndpointOptions::default())?;
//! ep.send(&Message::new(Body::MdInfo(MdInfo {
//!     command: MdCommand::Rereg,
//!     hint: Default::default(),
//!     hoa: Some("2001:db8:1::100".parse().unwrap()),
//!     coa: Some(CareOf::V6("2001:db8:a::5".parse().unwrap())),
//!     coa2: None,
//!     ifindex: 3,
//!     uplinks: Vec::new(),
//! })))?;
//! # Ok::<(), mipsock::Error>(())
//! ```

pub mod asynch;
pub mod cli;
pub mod endpoint;
pub mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod message;
pub mod text;

pub use asynch::AsyncEndpoint;
pub use endpoint::{
    Endpoint, EndpointOptions, Event, MAX_INBOUND, OwnerState, PeerStats, SendReport, StateAnswer,
    Stats, bus_dir_from_env,
};
pub use error::{Error, Result};
pub use message::{
    BeHint, Binding, Body, BuFlags, CareOf, CurrentCoa, Dad, DadOp, DataplaneBackend,
    DataplaneInfo, DataplaneReady, Encapsulation, HaSwitch, Header, HomeAgentInfo, HomeAgentOrigin,
    HomeHint, MdCommand, MdHint, MdInfo, Message, MessageType, MhUdpIn, MhUdpOut, NodeType,
    NodetypeInfo, PacketBytes, RrHint, StateDump, StateEnd, StateItem, UdpFrom, Uplink,
};
