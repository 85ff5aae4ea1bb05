//! The `mipsock` command: watch the bus (`tap`), put a message on it (`inject`), ask the
//! daemons for their state (`state`). What SHISA's `msockwatch` and `md` tools did.

use std::io::{self, BufRead, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use serde::Serialize;

use crate::endpoint::{Endpoint, EndpointOptions, Event, Stats, bus_dir_from_env};
use crate::message::{
    BeHint, Binding, Body, BuFlags, CareOf, Dad, DadOp, Encapsulation, HaSwitch, HomeHint,
    MdCommand, MdHint, MdInfo, Message, MessageType, NodeType, NodetypeInfo, RrHint, Uplink,
};
use crate::{AsyncEndpoint, text};

/// The mobility socket bus: SHISA's AF_MOBILITY for Linux.
///
/// Every message put on a bus reaches every endpoint on it (mrd, had, babymdd, nemonetd,
/// taps). A bus is a directory of Unix sockets; pick it with --bus-dir, $MIPSOCK_DIR, or
/// --bus (under /run/mipsock).
#[derive(Debug, Parser)]
#[command(name = "mipsock", version)]
pub struct Cli {
    /// Bus directory (default: /run/mipsock/<BUS>).
    #[arg(short = 'b', long, env = "MIPSOCK_DIR", global = true)]
    pub bus_dir: Option<PathBuf>,
    /// Bus name, used when no directory is given.
    #[arg(long, default_value = "default", global = true)]
    pub bus: String,
    /// Group (name or gid) allowed to use the bus; default: root only.
    #[arg(long, global = true)]
    pub group: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every message on the bus, one line each, with a timestamp.
    ///
    /// Lines look like `2026-11-22T21:30:00.123456Z md_info seq=0 from=babymdd[812]
    /// command=rereg hint=addr hoa=2001:db8:1::100 coa=2001:db8:a::5 ifindex=3`. Frames
    /// that are not valid messages are shown as `skipped garbage: ...` or
    /// `skipped unknown: ...`. A `ready` line on stderr says the tap is listening; on exit
    /// (Ctrl-C, SIGTERM, --count reached) its counters go to stderr.
    Tap(TapArgs),
    /// Put one message on the bus, given as arguments or as JSON on stdin.
    ///
    /// Example: `mipsock inject md-info --command rereg --hoa 2001:db8:1::100
    /// --coa 2001:db8:a::5 --ifindex 3`. JSON (`--json`) takes the form `mipsock tap
    /// --json` prints, one message per line or concatenated:
    /// `{"body":{"md_info":{"command":"rereg","coa":"192.0.2.5:4191","ifindex":3}}}`.
    Inject(InjectArgs),
    /// Ask every daemon for its state (BUL, binding cache, current CoA) and print it.
    ///
    /// Prints `no answer` when no daemon answers within the timeout; exits 0 either way.
    State(StateArgs),
}

/// `mipsock tap`.
#[derive(Debug, Args)]
pub struct TapArgs {
    /// One JSON object per line (replayable with `mipsock inject --json`).
    #[arg(long)]
    pub json: bool,
    /// Show only these message types (md_info, bul-add, MIPM_BC_ADD, ...): `--type A B` or
    /// `--type A --type B`.
    #[arg(long = "type", value_name = "TYPE", num_args = 1..)]
    pub types: Vec<MessageType>,
    /// Exit after this many lines.
    #[arg(long)]
    pub count: Option<u64>,
    /// Also print the counters to stderr every SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub stats_every: Option<u64>,
    /// Endpoint name on the bus.
    #[arg(long, default_value = "tap")]
    pub name: String,
}

/// `mipsock inject`.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// Read JSON messages from stdin instead of arguments.
    #[arg(long, conflicts_with = "raw_hex")]
    pub json: bool,
    /// Send these hex octets as a raw frame, unchecked (to test garbage handling).
    #[arg(long, value_name = "HEX")]
    pub raw_hex: Option<String>,
    /// Correlation number of the (first) message.
    #[arg(long, default_value_t = 0, global = true)]
    pub seq: u32,
    /// errno field.
    #[arg(long, default_value_t = 0, global = true)]
    pub errno: u32,
    /// Send the message this many times, seq counting up (load tests).
    #[arg(long, default_value_t = 1, global = true)]
    pub count: u64,
    /// Print the send counters (per peer: delivered, dropped) to stderr at the end.
    #[arg(long, global = true)]
    pub stats: bool,
    /// Endpoint name on the bus.
    #[arg(long, default_value = "inject", global = true)]
    pub name: String,
    #[command(subcommand)]
    pub message: Option<InjectMessage>,
}

/// `mipsock state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// How long to wait for answers.
    #[arg(long, default_value_t = 500)]
    pub timeout_ms: u64,
    /// Stop as soon as this many owners have answered completely.
    #[arg(long)]
    pub expect: Option<usize>,
    /// One JSON object per item.
    #[arg(long)]
    pub json: bool,
}

/// A message given on the command line.
#[derive(Debug, Subcommand)]
pub enum InjectMessage {
    /// MIPM_NODETYPE_INFO: announce or withdraw roles.
    NodetypeInfo {
        /// Roles: cn, ha, mn, mr joined with `|` (e.g. `ha|mr`).
        #[arg(long)]
        node_type: NodeType,
        /// Withdraw instead of announce.
        #[arg(long)]
        disable: bool,
    },
    /// MIPM_BC_ADD: a binding cache entry was installed.
    BcAdd(BindingArgs),
    /// MIPM_BC_REMOVE: a binding cache entry was removed.
    BcRemove(BindingArgs),
    /// MIPM_BC_FLUSH.
    BcFlush,
    /// MIPM_BUL_ADD: a binding update list entry was added.
    BulAdd(BindingArgs),
    /// MIPM_BUL_REMOVE.
    BulRemove(BindingArgs),
    /// MIPM_BUL_FLUSH.
    BulFlush,
    /// MIPM_MD_INFO: a movement detection verdict (what SHISA's `md` tool sent).
    MdInfo {
        /// rereg (new CoA), dereghome (back home), deregforeign, scan.
        #[arg(long, value_enum)]
        command: MdCommandArg,
        /// What the verdict is based on.
        #[arg(long, value_enum, default_value = "addr")]
        hint: MdHintArg,
        /// Home address (default: all).
        #[arg(long)]
        hoa: Option<Ipv6Addr>,
        /// Care-of address: IPv6, IPv4, or IPv4:port.
        #[arg(long)]
        coa: Option<CareOf>,
        /// Second care-of address.
        #[arg(long)]
        coa2: Option<CareOf>,
        /// Interface index of the CoA.
        #[arg(long, default_value_t = 0)]
        ifindex: u32,
        /// An interface's usable care-of address, `COA@IFNAME` (repeat for each; RFC
        /// 5648, multiple care-of addresses). The interface index is looked up here (0
        /// when this host has no such interface); the order gives the preference.
        #[arg(long = "uplink", value_name = "COA@IFNAME", value_parser = parse_uplink)]
        uplinks: Vec<(CareOf, String)>,
    },
    /// MIPM_HOME_HINT: a home prefix was advertised on an interface.
    HomeHint {
        /// Interface index.
        #[arg(long)]
        ifindex: u32,
        /// Home prefix, e.g. 2001:db8:1::/64.
        #[arg(long)]
        prefix: ipnet::Ipv6Net,
    },
    /// MIPM_RR_HINT.
    RrHint {
        /// Home address.
        #[arg(long)]
        hoa: Ipv6Addr,
        /// Correspondent.
        #[arg(long)]
        peer: Ipv6Addr,
    },
    /// MIPM_BE_HINT.
    BeHint {
        /// Binding Error status (1: unknown HAO binding, 2: unknown MH type).
        #[arg(long)]
        status: u8,
        /// Source of the offending packet.
        #[arg(long)]
        peer: Ipv6Addr,
        /// Care-of address.
        #[arg(long)]
        coa: CareOf,
        /// Home address.
        #[arg(long)]
        hoa: Ipv6Addr,
    },
    /// MIPM_DAD: a DAD request or result.
    Dad {
        /// do, stop, linklocal (requests) or success, fail (results).
        #[arg(long, value_enum)]
        op: DadOpArg,
        /// Interface index.
        #[arg(long)]
        ifindex: u32,
        /// Address under test.
        #[arg(long)]
        addr: Ipv6Addr,
    },
    /// Ask the owners for their state (answers show up on taps; `mipsock state` collects
    /// them for you).
    StateRequest,
    /// Ask had to send a Home Agent Switch (RFC 5142): the mobile routers and nodes
    /// registered there move to another home agent.
    ///
    /// Example: `mipsock inject ha-switch --hoa 2001:db8:1::100 --to 2001:db8:1::2`.
    /// Without --hoa every binding gets one; without --to had lists the other home agents
    /// it learnt from the home link, and sends nothing if it knows none.
    HaSwitch {
        /// Only the binding of this home address.
        #[arg(long)]
        hoa: Option<Ipv6Addr>,
        /// A home agent to list, most preferred first (repeat for several).
        #[arg(long = "to", value_name = "HA")]
        to: Vec<Ipv6Addr>,
    },
}

/// Fields of a BC/BUL entry.
#[derive(Debug, Args)]
pub struct BindingArgs {
    /// IPv6 home address.
    #[arg(long)]
    pub hoa: Ipv6Addr,
    /// IPv4 home address.
    #[arg(long)]
    pub hoa_v4: Option<Ipv4Addr>,
    /// Care-of address: IPv6, IPv4, or IPv4:port (UDP-encapsulated).
    #[arg(long)]
    pub coa: CareOf,
    /// Home agent IPv6 address.
    #[arg(long)]
    pub ha: Ipv6Addr,
    /// Home agent IPv4 address.
    #[arg(long)]
    pub ha_v4: Option<Ipv4Addr>,
    /// Mobile network prefix, IPv6 or IPv4; repeatable.
    #[arg(long = "mnp")]
    pub mnps: Vec<IpNet>,
    /// Encapsulation (default: from the CoA's family and port).
    #[arg(long, value_enum)]
    pub encap: Option<EncapArg>,
    /// Home agent UDP port for udp-ipv4.
    #[arg(long, default_value_t = 4191)]
    pub ha_port: u16,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 0)]
    pub lifetime: u32,
    /// Binding identifier (RFC 5648).
    #[arg(long)]
    pub bid: Option<u16>,
    /// BU flags, e.g. `A|H|R`.
    #[arg(long, default_value = "none")]
    pub flags: BuFlags,
    /// A NAT was detected.
    #[arg(long)]
    pub nat: bool,
    /// Interface of the CoA.
    #[arg(long)]
    pub coa_ifindex: Option<u32>,
}

/// `--command` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MdCommandArg {
    /// New care-of address: re-register.
    Rereg,
    /// Back on the home link: deregister.
    Dereghome,
    /// Deregister a foreign care-of address.
    Deregforeign,
    /// Scan for a better attachment.
    Scan,
}

/// `--hint` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MdHintArg {
    /// Based on an interface.
    Index,
    /// Based on an address.
    Addr,
    /// At home.
    Home,
}

/// `--op` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DadOpArg {
    /// Start DAD.
    Do,
    /// Stop DAD.
    Stop,
    /// DAD of the link-local address.
    Linklocal,
    /// DAD succeeded.
    Success,
    /// DAD found a duplicate.
    Fail,
}

/// `--encap` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EncapArg {
    /// IPv6 outer header.
    InIpv6,
    /// IPv4 outer header.
    InIpv4,
    /// IPv4 + UDP outer headers.
    UdpIpv4,
}

/// Errors of the command, collapsed for the user by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the bus.
    #[error(transparent)]
    Bus(#[from] crate::Error),
    /// Bad JSON input.
    #[error("bad JSON message on stdin: {0}")]
    Json(#[from] serde_json::Error),
    /// Bad --raw-hex.
    #[error("bad --raw-hex: {0}")]
    Hex(String),
    /// Unknown group.
    #[error("unknown group {0:?}")]
    Group(String),
    /// Two message sources at once.
    #[error("give the message either as arguments, or with --json, or with --raw-hex: not several")]
    TwoSources,
    /// Nothing to inject.
    #[error(
        "nothing to inject: give a message type (see `mipsock inject --help`), --json or --raw-hex"
    )]
    NoMessage,
    /// Output failed (e.g. the pipe closed).
    #[error("output: {0}")]
    Io(#[from] io::Error),
}

impl InjectMessage {
    /// The body this command line describes.
    pub fn into_body(self) -> Body {
        match self {
            InjectMessage::NodetypeInfo { node_type, disable } => {
                Body::NodetypeInfo(NodetypeInfo {
                    node_type,
                    enable: !disable,
                })
            }
            InjectMessage::BcAdd(b) => Body::BcAdd(b.into_binding()),
            InjectMessage::BcRemove(b) => Body::BcRemove(b.into_binding()),
            InjectMessage::BcFlush => Body::BcFlush,
            InjectMessage::BulAdd(b) => Body::BulAdd(b.into_binding()),
            InjectMessage::BulRemove(b) => Body::BulRemove(b.into_binding()),
            InjectMessage::BulFlush => Body::BulFlush,
            InjectMessage::MdInfo {
                command,
                hint,
                hoa,
                coa,
                coa2,
                ifindex,
                uplinks,
            } => Body::MdInfo(MdInfo {
                command: match command {
                    MdCommandArg::Rereg => MdCommand::Rereg,
                    MdCommandArg::Dereghome => MdCommand::Dereghome,
                    MdCommandArg::Deregforeign => MdCommand::Deregforeign,
                    MdCommandArg::Scan => MdCommand::Scan,
                },
                hint: match hint {
                    MdHintArg::Index => MdHint::Index,
                    MdHintArg::Addr => MdHint::Addr,
                    MdHintArg::Home => MdHint::Home,
                },
                hoa,
                coa,
                coa2,
                ifindex,
                uplinks: uplinks
                    .into_iter()
                    .enumerate()
                    .map(|(i, (coa, ifname))| Uplink {
                        coa,
                        ifindex: nix::net::if_::if_nametoindex(ifname.as_str()).unwrap_or(0),
                        ifname,
                        preference: i as u32,
                    })
                    .collect(),
            }),
            InjectMessage::HomeHint { ifindex, prefix } => {
                Body::HomeHint(HomeHint { ifindex, prefix })
            }
            InjectMessage::RrHint { hoa, peer } => Body::RrHint(RrHint { hoa, peer }),
            InjectMessage::BeHint {
                status,
                peer,
                coa,
                hoa,
            } => Body::BeHint(BeHint {
                status,
                peer,
                coa,
                hoa,
            }),
            InjectMessage::Dad { op, ifindex, addr } => Body::Dad(Dad {
                op: match op {
                    DadOpArg::Do => DadOp::Do,
                    DadOpArg::Stop => DadOp::Stop,
                    DadOpArg::Linklocal => DadOp::Linklocal,
                    DadOpArg::Success => DadOp::Success,
                    DadOpArg::Fail => DadOp::Fail,
                },
                ifindex,
                addr,
            }),
            InjectMessage::StateRequest => Body::StateRequest,
            InjectMessage::HaSwitch { hoa, to } => Body::HaSwitch(HaSwitch {
                hoa,
                home_agents: to,
            }),
        }
    }
}

impl BindingArgs {
    /// The binding these arguments describe.
    pub fn into_binding(self) -> Binding {
        let encapsulation = match (self.encap, self.coa) {
            (Some(EncapArg::InIpv6), _) => Encapsulation::InIpv6,
            (Some(EncapArg::InIpv4), _) => Encapsulation::InIpv4,
            (Some(EncapArg::UdpIpv4), _) => Encapsulation::UdpIpv4 {
                ha_port: self.ha_port,
            },
            (None, CareOf::V6(_)) => Encapsulation::InIpv6,
            (None, CareOf::V4 { udp_port: None, .. }) => Encapsulation::InIpv4,
            (
                None,
                CareOf::V4 {
                    udp_port: Some(_), ..
                },
            ) => Encapsulation::UdpIpv4 {
                ha_port: self.ha_port,
            },
        };
        let (mut mnp_v6, mut mnp_v4) = (Vec::new(), Vec::new());
        for net in self.mnps {
            match net {
                IpNet::V6(n) => mnp_v6.push(n),
                IpNet::V4(n) => mnp_v4.push(n),
            }
        }
        Binding {
            hoa: self.hoa,
            hoa_v4: self.hoa_v4,
            coa: self.coa,
            ha: self.ha,
            ha_v4: self.ha_v4,
            mnp_v6,
            mnp_v4,
            encapsulation,
            lifetime: self.lifetime,
            binding_id: self.bid,
            flags: self.flags,
            nat_detected: self.nat,
            coa_ifindex: self.coa_ifindex,
            flows: Vec::new(),
            bid_priority: 0,
        }
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let dir = cli
        .bus_dir
        .clone()
        .unwrap_or_else(|| bus_dir_from_env(&cli.bus));
    let opts = EndpointOptions {
        group: cli.group.as_deref().map(resolve_group).transpose()?,
        ..EndpointOptions::default()
    };
    match cli.command {
        Command::Tap(args) => tap(dir, opts, args),
        Command::Inject(args) => inject(dir, opts, args),
        Command::State(args) => state(dir, opts, args),
    }
}

fn resolve_group(g: &str) -> Result<u32, CliError> {
    if let Ok(gid) = g.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(g) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        _ => Err(CliError::Group(g.to_string())),
    }
}

/// A `mipsock tap --json` line: the message plus the time it was seen.
#[derive(Serialize)]
struct TapLine<'a> {
    ts: String,
    #[serde(flatten)]
    message: &'a Message,
}

#[derive(Serialize)]
struct SkipLine {
    ts: String,
    skipped: String,
}

fn stats_line(s: &Stats) -> String {
    let mut line = format!(
        "stats sent={} delivered={} dropped={} received={} garbage={} unknown={} missed={} stale_removed={}",
        s.sent, s.delivered, s.dropped, s.received, s.garbage, s.unknown, s.missed, s.stale_removed
    );
    for p in &s.peers {
        line.push_str(&format!(
            " peer={} delivered={} dropped={}",
            p.socket, p.delivered, p.dropped
        ));
    }
    line
}

fn tap(dir: PathBuf, opts: EndpointOptions, args: TapArgs) -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let ep = AsyncEndpoint::open(&dir, &args.name, opts)?;
        eprintln!("ready: tapping {}", ep.endpoint().socket_path().display());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut shown = 0u64;
        // Without --stats-every the tick never fires (a day is as good as never here).
        let period = Duration::from_secs(args.stats_every.unwrap_or(86_400).max(1));
        let mut stats_tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let stdout = io::stdout();
        let result: Result<(), CliError> = loop {
            if args.count.is_some_and(|c| shown >= c) {
                break Ok(());
            }
            let ev = tokio::select! {
                ev = ep.recv_event() => ev?,
                _ = stats_tick.tick() => {
                    eprintln!("{}", stats_line(&ep.stats()));
                    continue;
                }
                _ = tokio::signal::ctrl_c() => break Ok(()),
                _ = term.recv() => break Ok(()),
            };
            let ts = text::timestamp(SystemTime::now());
            let line = match &ev {
                Event::Message(m)
                    if args.types.is_empty() || args.types.contains(&m.message_type()) =>
                {
                    if args.json {
                        serde_json::to_string(&TapLine { ts, message: m })?
                    } else {
                        format!("{ts} {}", text::message_line(m))
                    }
                }
                Event::Message(_) => continue,
                Event::Skipped(e) => {
                    if args.json {
                        serde_json::to_string(&SkipLine {
                            ts,
                            skipped: text::skipped_line(e),
                        })?
                    } else {
                        format!("{ts} {}", text::skipped_line(e))
                    }
                }
            };
            shown += 1;
            let mut out = stdout.lock();
            if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                break Err(e.into());
            }
        };
        eprintln!("{}", stats_line(&ep.stats()));
        result
    })
}

fn inject(dir: PathBuf, opts: EndpointOptions, args: InjectArgs) -> Result<(), CliError> {
    if args.message.is_some() && (args.json || args.raw_hex.is_some()) {
        return Err(CliError::TwoSources);
    }
    let mut messages = Vec::new();
    if args.json {
        let stdin = io::stdin();
        let mut text = String::new();
        for line in stdin.lock().lines() {
            text.push_str(&line?);
            text.push('\n');
        }
        for m in serde_json::Deserializer::from_str(&text).into_iter::<Message>() {
            messages.push(m?);
        }
    }
    let raw = match &args.raw_hex {
        Some(hex) => Some(parse_hex(hex)?),
        None => None,
    };
    if let Some(m) = args.message {
        let mut msg = Message::new(m.into_body()).with_seq(args.seq);
        msg.header.errno = args.errno;
        messages.push(msg);
    }
    if messages.is_empty() && raw.is_none() {
        return Err(CliError::NoMessage);
    }
    let ep = Endpoint::open(&dir, &args.name, opts)?;
    if let Some(raw) = raw {
        for _ in 0..args.count {
            ep.send_raw(&raw);
        }
    }
    for msg in &mut messages {
        let base = msg.header.seq;
        for i in 0..args.count {
            msg.header.seq = base.wrapping_add(i as u32);
            ep.send(msg)?;
        }
    }
    if args.stats {
        eprintln!("{}", stats_line(&ep.stats()));
    }
    Ok(())
}

/// `COA@IFNAME`: an uplink of `inject md-info`.
fn parse_uplink(s: &str) -> Result<(CareOf, String), String> {
    let (coa, ifname) = s
        .rsplit_once('@')
        .ok_or_else(|| format!("expected COA@IFNAME, found {s:?}"))?;
    if ifname.is_empty() {
        return Err(format!("no interface name in {s:?}"));
    }
    Ok((coa.parse()?, ifname.to_string()))
}

fn parse_hex(s: &str) -> Result<Vec<u8>, CliError> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if !s.len().is_multiple_of(2) {
        return Err(CliError::Hex(format!(
            "odd number of hex digits ({})",
            s.len()
        )));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|e| CliError::Hex(format!("{:?}: {e}", &s[i..i + 2])))
        })
        .collect()
}

#[derive(Serialize)]
struct StateLine<'a> {
    owner: &'a str,
    pid: u32,
    item: &'a crate::message::StateItem,
}

fn state(dir: PathBuf, opts: EndpointOptions, args: StateArgs) -> Result<(), CliError> {
    let ep = Endpoint::open(&dir, "state", opts)?;
    let answer = ep.request_state(Duration::from_millis(args.timeout_ms), args.expect)?;
    let mut out = io::stdout().lock();
    if answer.owners.is_empty() {
        writeln!(out, "no answer")?;
        return Ok(());
    }
    for owner in &answer.owners {
        if args.json {
            for item in &owner.items {
                let line = StateLine {
                    owner: &owner.sender,
                    pid: owner.pid,
                    item,
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            }
            continue;
        }
        let status = match (owner.complete, owner.errno) {
            (false, _) => " (incomplete: no state_end before the timeout)".to_string(),
            (true, 0) => String::new(),
            (true, e) => format!(" (errno {e})"),
        };
        writeln!(
            out,
            "{}[{}]: {} item(s){status}",
            owner.sender,
            owner.pid,
            owner.items.len()
        )?;
        for item in &owner.items {
            writeln!(out, "  {}", text::state_item_line(item))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn md_info_from_the_command_line() {
        let cli = Cli::try_parse_from([
            "mipsock",
            "inject",
            "md-info",
            "--command",
            "rereg",
            "--hoa",
            "2001:db8:1::100",
            "--coa",
            "192.0.2.5:4191",
            "--ifindex",
            "3",
            "--uplink",
            "2001:db8:a::5@lo",
            "--uplink",
            "192.0.2.5:4191@no-such-if0",
        ])
        .unwrap();
        let Command::Inject(args) = cli.command else {
            panic!("not inject")
        };
        let body = args.message.unwrap().into_body();
        let Body::MdInfo(md) = body else {
            panic!("not md_info")
        };
        assert_eq!(md.command, MdCommand::Rereg);
        assert_eq!(
            md.coa,
            Some(CareOf::V4 {
                addr: Ipv4Addr::new(192, 0, 2, 5),
                udp_port: Some(4191)
            })
        );
        assert_eq!(md.ifindex, 3);
        // Uplinks in the order given (the preference), interfaces looked up here.
        let ups: Vec<(String, &str, u32)> = md
            .uplinks
            .iter()
            .map(|u| (u.coa.to_string(), u.ifname.as_str(), u.preference))
            .collect();
        assert_eq!(
            ups,
            [
                ("2001:db8:a::5".to_string(), "lo", 0),
                ("192.0.2.5:4191".to_string(), "no-such-if0", 1)
            ]
        );
        assert_eq!(md.uplinks[1].ifindex, 0, "unknown here");
        assert!(parse_uplink("2001:db8:a::5").is_err());
        assert!(parse_uplink("2001:db8:a::5@").is_err());
        assert!(parse_uplink("nope@eth0").is_err());
    }

    #[test]
    fn ha_switch_from_the_command_line() {
        let body = |argv: &[&str]| {
            let cli = Cli::try_parse_from(argv).unwrap();
            let Command::Inject(args) = cli.command else {
                panic!("not inject")
            };
            args.message.unwrap().into_body()
        };
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(
            body(&[
                "mipsock",
                "inject",
                "ha-switch",
                "--hoa",
                "2001:db8:1::100",
                "--to",
                "2001:db8:1::2",
                "--to",
                "2001:db8:7::1",
            ]),
            Body::HaSwitch(HaSwitch {
                hoa: Some(a("2001:db8:1::100")),
                home_agents: vec![a("2001:db8:1::2"), a("2001:db8:7::1")],
            })
        );
        assert_eq!(
            body(&["mipsock", "inject", "ha-switch"]),
            Body::HaSwitch(HaSwitch::default())
        );
        // And as JSON, fields optional.
        let m: Message = serde_json::from_str(r#"{"body":{"ha_switch":{}}}"#).unwrap();
        assert_eq!(m.body, Body::HaSwitch(HaSwitch::default()));
    }

    #[test]
    fn binding_from_the_command_line_splits_families() {
        let cli = Cli::try_parse_from([
            "mipsock",
            "inject",
            "bul-add",
            "--hoa",
            "2001:db8:1::100",
            "--coa",
            "2001:db8:a::5",
            "--ha",
            "2001:db8:1::1",
            "--mnp",
            "2001:db8:100::/48",
            "--mnp",
            "198.51.100.0/24",
            "--flags",
            "A|H|R",
            "--lifetime",
            "400",
        ])
        .unwrap();
        let Command::Inject(args) = cli.command else {
            panic!("not inject")
        };
        let Body::BulAdd(b) = args.message.unwrap().into_body() else {
            panic!("not bul_add")
        };
        assert_eq!(b.mnp_v6, vec!["2001:db8:100::/48".parse().unwrap()]);
        assert_eq!(b.mnp_v4, vec!["198.51.100.0/24".parse().unwrap()]);
        assert_eq!(b.encapsulation, Encapsulation::InIpv6);
        assert_eq!(b.flags, BuFlags::A | BuFlags::H | BuFlags::R);
    }

    #[test]
    fn tap_type_filters_take_several_spellings() {
        let cli = Cli::try_parse_from([
            "mipsock",
            "tap",
            "--type",
            "md-info",
            "MIPM_BUL_ADD",
            "--type",
            "dad",
        ])
        .unwrap();
        let Command::Tap(args) = cli.command else {
            panic!("not tap")
        };
        assert_eq!(
            args.types,
            vec![MessageType::MdInfo, MessageType::BulAdd, MessageType::Dad]
        );
        assert!(Cli::try_parse_from(["mipsock", "tap", "--type", "nope"]).is_err());
    }

    #[test]
    fn hex() {
        assert_eq!(
            parse_hex("de ad:BE ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
