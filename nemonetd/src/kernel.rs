//! The kernel data plane (issue 12): bindings with an IPv6 outer header (an IPv6 care-of
//! address, no UDP) are encapsulated and decapsulated by the kernel, without ip6_tunnel,
//! sit or ipip (this kernel has none), and without a packet crossing to user space. The
//! TUN data plane ([`crate::dataplane`]) keeps the IPv4 outer headers (RFC 5555, UDP
//! behind NATs) and every binding when the kernel path cannot be set up.
//!
//! How (measured in `../shared/linux-notes.md`, "A kernel fast path without ip6_tunnel"):
//!
//! * **Encapsulation**, one of two ways ([`KernelMethod`], `kernel-encapsulation`):
//!   * BPF ([`crate::bpf`]): a tcx program at the ingress of `peer` (below) writes the
//!     outer header from a longest-prefix map whose entries stand in for the SRv6 routes
//!     ([`crate::netops::LwEncap::BpfMap`]). It needs Linux 6.6, not SRv6.
//!   * SRv6 *reduced* encapsulation with one segment writes no segment routing header:
//!     what leaves is a plain RFC 2473 IPv6-in-IPv6 (next header 41) or IPv4-in-IPv6 (4)
//!     packet to the far end. Its source is the namespace's SRv6 tunnel source
//!     (`ip sr tunsrc`), set to our end point (the HA address; the MR's CoA).
//! * **A veth pair in place of the TUN device** (`dev` / `peer` of
//!   [`KernelRoutes`]): the routes of the mobile network point at `dev` exactly as they
//!   point at the TUN device, and `dev` has the tunnel's MTU. The kernel therefore checks
//!   every forwarded packet against the tunnel MTU and sends Packet Too Big /
//!   fragmentation needed to its source, or fragments IPv4 without DF, before it reaches
//!   the encapsulation. (A forwarded packet that meets the SRv6 route directly is never
//!   checked against its MTU: the inner packet is encapsulated whatever its size and the
//!   outer one dropped, a black hole measured with the probe.) What is routed into `dev`
//!   arrives on `peer`, where `iif PEER lookup ENCAP` finds the SRv6 route.
//! * **Decapsulation**: a rule before the local table's, `to LOCAL ipproto 41|4`, leads
//!   to an End.DX6 / End.DX4 route that strips the outer header and sends the inner packet
//!   to a next hop behind `peer` (with BPF: a plain route out of `peer`, whose egress
//!   program strips it), so it arrives on `dev` like a packet from the TUN device
//!   and is routed by the whole rule set (End.DX6 towards `::` refuses local delivery:
//!   a ping to the MR's own address would be lost). The local rule moves from priority 0
//!   to [`crate::routes::KPRIO_LOCAL`]; [`restore_local_rule`] puts it back, at exit and
//!   at the next start after a crash.
//! * **Ingress filtering** (RFC 3963 §6.3, what [`crate::dataplane::peers`] does for the
//!   TUN path). With BPF, the decapsulation program checks the same things itself, in its
//!   maps (no nftables table, no process per change: [`Filter::apply_bpf`]). With SRv6,
//!   an nftables table at the raw prerouting hook sees the outer packet with
//!   the inner headers behind it: the outer source must be a live binding's far end, the
//!   inner source (read at its fixed offset behind the 40-octet outer header) inside that
//!   router's prefixes, and neither inner address link-scope; everything else is dropped
//!   and counted (named counters, [`Filter::counters`]). Changes are per binding (one
//!   chain per far end, one map element), so a fleet costs no rebuild per change.
//!
//! The routes and rules themselves are part of each binding's desired state
//! ([`crate::routes::desired`], reconciled like the TUN path's); this module owns what is
//! not a route: the veth pair, its sysctls, the local rule, the filter, the tunnel source.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::time::Instant;

use ipnet::IpNet;
use mipsock::Binding;
use tracing::{info, warn};

use crate::dataplane::peers::MOVE_GRACE;
use crate::netops::{LwEncap, NetOps, RouteSpec, RtNetOps};
use crate::routes::{
    BindingKey, KERNEL_NH6, KernelMethod, KernelRoutes, Mode, RouteConfig, kernel_decapsulates,
    kernel_ends,
};

/// The nftables table of the ingress filter.
pub const NFT_TABLE: &str = "nemonetd";

/// The locally administered MAC address both ends of the veth pair carry: with ARP off a
/// neighbour entry takes the device's own address, and the frame must then be for the
/// other end, or the kernel drops it as addressed to another host.
pub(crate) const VETH_MAC: [u8; 6] = [0x02, 0x6e, 0x65, 0x6d, 0x6f, 0x6b];

/// The peer side's MTU: anything the host side may send, GSO super-packets included.
const PEER_MTU: u32 = 65535;

/// Which data plane carries bindings with an IPv6 outer header (`dataplane` /
/// `--dataplane`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// The kernel's when it can be set up here (probed at start), else the TUN device's;
    /// on a mobile router the kernel's with the BPF encapsulation only (SRv6's handovers
    /// are slower than TUN's).
    Auto,
    /// Always the kernel's: nemonetd does not start without it.
    Kernel,
    /// Always the TUN device's.
    Tun,
}

/// A configuration file's word for one of a [`clap::ValueEnum`]'s values, by the names
/// the command line takes, so that the file and the flags cannot drift apart.
fn value_of<T: clap::ValueEnum>(s: &str) -> Result<T, String> {
    T::from_str(s, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_owned())
            .collect();
        format!("{s:?}: one of {}", names.join(", "))
    })
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        value_of(s)
    }
}

/// How the kernel data plane encapsulates (`kernel-encapsulation` /
/// `--kernel-encapsulation`): [`crate::routes::KernelMethod`], or the first that works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EncapChoice {
    /// BPF where the kernel takes the programs (tcx, Linux 6.6), else SRv6.
    #[default]
    Auto,
    /// Two tcx programs on the veth pair ([`crate::bpf`]).
    Bpf,
    /// SRv6 lightweight tunnels (`CONFIG_IPV6_SEG6_LWTUNNEL`).
    Srv6,
}

impl std::str::FromStr for EncapChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        value_of(s)
    }
}

/// The veth pair's names for a TUN device name: `NAMEk` (host side) and `NAMEkx`.
/// `None` when they would not fit the kernel's 15 characters.
pub fn veth_names(tun: &str) -> Option<(String, String)> {
    (tun.len() + 2 <= 15).then(|| (format!("{tun}k"), format!("{tun}kx")))
}

/// Runs an nftables script as one transaction (`nft -f -`): all of it or nothing.
///
/// Through the `nft` program rather than netlink: the nf_tables netlink API is a bytecode
/// assembler, which `nft` is, and the Rust bindings to libnftnl are thin unsafe wrappers;
/// a script is also what an operator can read in the debug log and replay by hand.
async fn nft(script: &str) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS` (iproute2), for the one setting rtnetlink does not carry: the SRv6
/// tunnel source lives in the SEG6 generic netlink family.
async fn ip(args: &[&str]) -> Result<(), String> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn sysctl(path: &str, value: &str) -> Result<(), String> {
    let p = format!("/proc/sys/net/{path}");
    std::fs::write(&p, value).map_err(|e| format!("{p}: {e}"))
}

/// Deletes the filter's table whether or not it exists (the add makes the delete succeed).
fn delete_table_script() -> String {
    let t = NFT_TABLE;
    format!("table ip6 {t} {{}}\ndelete table ip6 {t}\n")
}

/// The filter's base (next headers by number: nft's names come from /etc/protocols, where
/// "ipip" is 94, not 4): counters, the set of our end points, the map of far ends, and the
/// chains. Created in one transaction with the deletion of a previous run's table.
pub fn filter_base_script() -> String {
    delete_table_script()
        + &format!(
            "table ip6 {t} {{
  counter spoofed_inner {{}}
  counter no_binding {{}}
  counter link_scope {{}}
  set locals {{ type ipv6_addr; }}
  map peers {{ type ipv6_addr : verdict; }}
  map sent {{ type ipv6_addr : counter; }}
  chain tunnel {{
    ip6 nexthdr 41 @nh,384,10 0x3fa counter name link_scope drop
    ip6 nexthdr 41 @nh,512,10 0x3fa counter name link_scope drop
    ip6 nexthdr 41 @nh,512,16 0xff02 counter name link_scope drop
    ip6 nexthdr 4 @nh,416,16 0xa9fe counter name link_scope drop
    ip6 nexthdr 4 @nh,448,16 0xa9fe counter name link_scope drop
    ip6 saddr vmap @peers
    counter name no_binding drop
  }}
  chain prerouting {{
    type filter hook prerouting priority raw; policy accept;
    ip6 nexthdr {{ 41, 4 }} ip6 daddr @locals jump tunnel
  }}
  chain postrouting {{
    type filter hook postrouting priority filter; policy accept;
    ip6 nexthdr {{ 41, 4 }} ip6 saddr @locals counter name ip6 daddr map @sent
  }}
}}
",
            t = NFT_TABLE
        )
}

/// The BPF path's crash guard. After a crash the programs are gone (tcx links die with
/// the process) but the decapsulation rules stay: a tunnel packet to one of our end
/// points would leave through the pair's far side unstripped, come back in on `dev` as
/// the same packet, and go round again until its hop limit ran out (63 passes each). This
/// table, which outlives the process, drops it on its first return. It hooks the ingress
/// of `dev` alone (netdev family), so only what arrives through the pair passes it, not
/// every packet of the namespace; while the programs run, nothing arrives there that is
/// still a tunnel packet to us (what they cannot take apart they drop). The next start
/// replaces it (or `remove_leftovers` removes it).
pub fn guard_base_script(dev: &str) -> String {
    delete_guard_script()
        + &format!(
            "table netdev {t} {{
  counter crash_guard {{}}
  set locals {{ type ipv6_addr; }}
  chain ingress {{
    type filter hook ingress device \"{dev}\" priority 0; policy accept;
    ip6 nexthdr {{ 41, 4 }} ip6 daddr @locals counter name crash_guard drop
  }}
}}
",
            t = NFT_TABLE
        )
}

/// Deletes the crash guard's table whether or not it exists.
fn delete_guard_script() -> String {
    let t = NFT_TABLE;
    format!("table netdev {t} {{}}\ndelete table netdev {t}\n")
}

/// The script bringing the crash guard's set from `had` to `want`.
fn guard_set_script(had: &BTreeSet<Ipv6Addr>, want: &BTreeSet<Ipv6Addr>) -> String {
    let t = NFT_TABLE;
    let mut s = String::new();
    for l in want.difference(had) {
        let _ = writeln!(s, "add element netdev {t} locals {{ {l} }}");
    }
    for l in had.difference(want) {
        let _ = writeln!(s, "delete element netdev {t} locals {{ {l} }}");
    }
    s
}

/// The match of an inner source inside `net`: the prefix's leading bits at the inner
/// header's source field (octet 48 for IPv6 inside, 52 for IPv4 inside: behind the
/// 40-octet outer header).
pub fn inner_source_match(net: &IpNet) -> String {
    let len = u32::from(net.prefix_len());
    match net.trunc() {
        IpNet::V6(_) if len == 0 => "ip6 nexthdr 41".into(),
        IpNet::V4(_) if len == 0 => "ip6 nexthdr 4".into(),
        IpNet::V6(n) => {
            let v = u128::from(n.network()) >> (128 - len);
            format!("ip6 nexthdr 41 @nh,384,{len} {v:#x}")
        }
        IpNet::V4(n) => {
            let v = u32::from(n.network()) >> (32 - len);
            format!("ip6 nexthdr 4 @nh,416,{len} {v:#x}")
        }
    }
}

fn chain_name(remote: Ipv6Addr) -> String {
    format!("p_{:032x}", u128::from(remote))
}

/// The counter of what a far end sent us and the filter accepted (per binding on the
/// kernel path: it counts nothing per binding itself).
fn received_counter(remote: Ipv6Addr) -> String {
    format!("r_{:032x}", u128::from(remote))
}

/// The counter of what we sent a far end (the `sent` map, in postrouting).
fn sent_counter(remote: Ipv6Addr) -> String {
    format!("t_{:032x}", u128::from(remote))
}

/// The far end a per-binding counter's name stands for, and whether it counts received
/// (`r_`) or sent (`t_`) packets.
fn counter_far_end(name: &str) -> Option<(Ipv6Addr, bool)> {
    let (received, hex) = if let Some(h) = name.strip_prefix("r_") {
        (true, h)
    } else {
        (false, name.strip_prefix("t_")?)
    };
    if hex.len() != 32 {
        return None;
    }
    Some((
        Ipv6Addr::from(u128::from_str_radix(hex, 16).ok()?),
        received,
    ))
}

/// One far end's chain: its bindings' inner sources accepted, the rest dropped and
/// counted. `None` for the sources: anything (the MR trusts its home agent's inner
/// sources, the Internet's). `to_tun`: what is accepted is marked for the TUN device
/// ([`crate::routes::TUN_RECEIVE_MARK`]) instead of the kernel's decapsulation.
pub fn peer_chain_script(
    remote: Ipv6Addr,
    sources: Option<&BTreeSet<IpNet>>,
    to_tun: bool,
) -> String {
    let t = NFT_TABLE;
    let c = chain_name(remote);
    let r = received_counter(remote);
    let mut s = format!(
        "add counter ip6 {t} {r}\nadd counter ip6 {t} {}\nadd chain ip6 {t} {c}\nflush chain ip6 {t} {c}\n",
        sent_counter(remote)
    );
    let accept = if to_tun {
        format!(
            "counter name {r} meta mark set meta mark or {:#x} accept",
            crate::routes::TUN_RECEIVE_MARK
        )
    } else {
        format!("counter name {r} accept")
    };
    match sources {
        None => {
            let _ = writeln!(s, "add rule ip6 {t} {c} {accept}");
        }
        Some(sources) => {
            for net in sources {
                let _ = writeln!(
                    s,
                    "add rule ip6 {t} {c} {} {accept}",
                    inner_source_match(net)
                );
            }
            let _ = writeln!(s, "add rule ip6 {t} {c} counter name spoofed_inner drop");
        }
    }
    s
}

/// What the filter holds for one binding.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    local: Ipv6Addr,
    remote: Ipv6Addr,
    sources: BTreeSet<IpNet>,
    /// The far end before a move, still accepted for [`MOVE_GRACE`] (HA).
    previous: Option<Ipv6Addr>,
    /// Received through the TUN device (a binding sent through it).
    to_tun: bool,
}

/// Far ends, the inner sources each may send and whether the TUN device receives them,
/// over `entries` (a previous far end in its grace time included).
fn by_remote(entries: &BTreeMap<BindingKey, Entry>) -> BTreeMap<Ipv6Addr, (BTreeSet<IpNet>, bool)> {
    let mut m: BTreeMap<Ipv6Addr, (BTreeSet<IpNet>, bool)> = BTreeMap::new();
    for e in entries.values() {
        for r in std::iter::once(e.remote).chain(e.previous) {
            let (sources, to_tun) = m.entry(r).or_default();
            sources.extend(e.sources.iter().copied());
            *to_tun |= e.to_tun;
        }
    }
    m
}

/// The ingress filter's state, as installed.
#[derive(Debug, Default)]
pub struct Filter {
    entries: BTreeMap<BindingKey, Entry>,
    /// Far ends with a chain and a map element.
    remotes: BTreeSet<Ipv6Addr>,
    /// Our end points in the `locals` set.
    locals: BTreeSet<Ipv6Addr>,
}

impl Filter {
    /// The script that brings the filter from what it holds to `entries`; updates the
    /// record as if it succeeded.
    fn plan(&mut self, mode: Mode, entries: BTreeMap<BindingKey, Entry>) -> String {
        let t = NFT_TABLE;
        let mut s = String::new();
        let by_remote = by_remote(&entries);
        let old_by_remote = self::by_remote(&self.entries);
        let locals: BTreeSet<Ipv6Addr> = entries.values().map(|e| e.local).collect();
        // Up: chains and elements of new far ends, then our end points.
        for (remote, entry @ (sources, to_tun)) in &by_remote {
            if old_by_remote.get(remote) != Some(entry) {
                let sources = (mode == Mode::HomeAgent).then_some(sources);
                s.push_str(&peer_chain_script(*remote, sources, *to_tun));
            }
            if !self.remotes.contains(remote) {
                let _ = writeln!(
                    s,
                    "add element ip6 {t} peers {{ {remote} : jump {} }}",
                    chain_name(*remote)
                );
                let _ = writeln!(
                    s,
                    "add element ip6 {t} sent {{ {remote} : \"{}\" }}",
                    sent_counter(*remote)
                );
            }
        }
        for l in locals.difference(&self.locals) {
            let _ = writeln!(s, "add element ip6 {t} locals {{ {l} }}");
        }
        // Down: our old end points, old far ends' elements, then their chains.
        for l in self.locals.difference(&locals) {
            let _ = writeln!(s, "delete element ip6 {t} locals {{ {l} }}");
        }
        for remote in &self.remotes {
            if !by_remote.contains_key(remote) {
                let _ = writeln!(s, "delete element ip6 {t} peers {{ {remote} }}");
                let _ = writeln!(s, "delete element ip6 {t} sent {{ {remote} }}");
                let _ = writeln!(s, "delete chain ip6 {t} {}", chain_name(*remote));
                let _ = writeln!(s, "delete counter ip6 {t} {}", received_counter(*remote));
                let _ = writeln!(s, "delete counter ip6 {t} {}", sent_counter(*remote));
            }
        }
        self.entries = entries;
        self.remotes = by_remote.into_keys().collect();
        self.locals = locals;
        s
    }

    /// Brings the BPF programs' filter maps from what they hold to `entries`, far end by
    /// far end: new far ends and prefixes first, then the ones that went. Stops at the
    /// first refusal (the caller starts over from an empty record).
    fn apply_bpf(
        &mut self,
        mode: Mode,
        entries: BTreeMap<BindingKey, Entry>,
        t: &crate::bpf::Tunnel,
    ) -> std::io::Result<()> {
        let by_remote = by_remote(&entries);
        let old = self::by_remote(&self.entries);
        let none = BTreeSet::new();
        for (remote, entry @ (sources, to_tun)) in &by_remote {
            let before = old.get(remote);
            if before == Some(entry) {
                continue;
            }
            let any_source = mode == Mode::MobileRouter;
            if before.is_none_or(|(_, was_tun)| was_tun != to_tun) {
                t.far_end_set(
                    *remote,
                    crate::bpf::FarEndPolicy {
                        any_source,
                        to_tun: *to_tun,
                    },
                )?;
            }
            if !any_source {
                let had = before.map_or(&none, |(s, _)| s);
                for net in sources.difference(had) {
                    t.source_add(*remote, net)?;
                }
                for net in had.difference(sources) {
                    t.source_remove(*remote, net)?;
                }
            }
        }
        for (remote, (sources, _)) in &old {
            if !by_remote.contains_key(remote) {
                t.far_end_remove(*remote)?;
                for net in sources {
                    t.source_remove(*remote, net)?;
                }
            }
        }
        // Our end points, for the uplinks' program: added before their far ends could
        // send (above), removed after.
        let locals: BTreeSet<Ipv6Addr> = entries.values().map(|e| e.local).collect();
        for l in locals.difference(&self.locals) {
            t.local_add(*l)?;
        }
        for l in self.locals.difference(&locals) {
            t.local_remove(*l)?;
        }
        self.locals = locals;
        self.entries = entries;
        self.remotes = by_remote.into_keys().collect();
        Ok(())
    }
}

/// The kernel data plane of a running nemonetd.
#[derive(Debug)]
pub struct KernelPlane {
    routes: KernelRoutes,
    mode: Mode,
    filter: Filter,
    /// The SRv6 tunnel source as we set it.
    tunsrc: Option<Ipv6Addr>,
    /// The BPF programs, attached to the pair's far side (dropping them detaches them).
    bpf: Option<crate::bpf::Tunnel>,
    /// Devices that refused the uplink program (not asked again while they exist).
    refused_uplinks: BTreeSet<u32>,
    /// Our end points when the uplinks were last looked at ([`KernelPlane::end_points_moved`]).
    uplinks_for: BTreeSet<Ipv6Addr>,
    /// HA: bindings that moved, with their previous far end and until when it is still
    /// accepted ([`MOVE_GRACE`]: what the router sent from its old care-of address before
    /// the Binding Acknowledgement reached it is not lost).
    graces: BTreeMap<BindingKey, (Ipv6Addr, Instant)>,
    /// BPF: the crash guard's set's writer ([`GuardWriter`]); `None` without the guard.
    guard: Option<GuardWriter>,
}

/// Writes the crash guard's set of our end points ([`guard_base_script`]) from a task of
/// its own: an `nft` process takes 10-20 ms, and inline it sat in every handover before
/// the encapsulation switched to the new care-of address and, at a home agent, before
/// had's BA was relayed (`nemo-lab handover`: IPv6 -> IPv6 32.5 -> 15 ms). The event loop
/// only hands over the set it wants; the task writes the latest, one `nft` at a time. The
/// guard matters only after a crash, so a write that fails is logged and the next change
/// writes the whole set again.
#[derive(Debug)]
struct GuardWriter {
    want: tokio::sync::watch::Sender<BTreeSet<Ipv6Addr>>,
    task: tokio::task::JoinHandle<()>,
}

impl GuardWriter {
    fn start() -> GuardWriter {
        let (want, mut rx) = tokio::sync::watch::channel(BTreeSet::new());
        let task = tokio::spawn(async move {
            // What the set holds, as far as our writes succeeded (`None`: unknown).
            let mut had: Option<BTreeSet<Ipv6Addr>> = Some(BTreeSet::new());
            while rx.changed().await.is_ok() {
                let want = rx.borrow_and_update().clone();
                // Should the set hold something else than we think, written whole.
                let whole = format!("flush set netdev {NFT_TABLE} locals\n")
                    + &guard_set_script(&BTreeSet::new(), &want);
                let script = match &had {
                    Some(h) => guard_set_script(h, &want),
                    None => whole.clone(),
                };
                if script.is_empty() {
                    continue;
                }
                let mut result = nft(&script).await;
                if result.is_err() && had.is_some() {
                    result = nft(&whole).await;
                }
                match result {
                    Ok(()) => had = Some(want),
                    Err(e) => {
                        warn!(error = %e, "crash guard's end points not updated; written whole at the next change");
                        had = None;
                    }
                }
            }
        });
        GuardWriter { want, task }
    }

    /// The set to hold from now on; written soon after.
    fn set(&self, locals: &BTreeSet<Ipv6Addr>) {
        self.want.send_if_modified(|w| {
            let changed = w != locals;
            if changed {
                w.clone_from(locals);
            }
            changed
        });
    }

    /// Ends the task once the write under way (if any) is done.
    async fn stop(self) {
        drop(self.want);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.task).await;
    }
}

/// Puts the local table's rule back at priority 0 if we moved it (ours at
/// [`crate::routes::KPRIO_LOCAL`] exists): at exit, and at start after a crash left it
/// moved. Nothing happens where we did not move it.
pub async fn restore_local_rule(net: &mut RtNetOps) -> Result<bool, String> {
    net.local_rule_restore().await.map_err(|e| e.to_string())
}

/// Removes what a kernel data plane of a crashed run left, when this run does without
/// one: the veth pair (its routes go with it) and the filter. The local rule is put back by
/// [`restore_local_rule`] at every start.
pub async fn remove_leftovers(net: &mut RtNetOps, tun: &str) {
    if let Some((dev, _)) = veth_names(tun)
        && let Err(e) = net.link_delete(&dev).await
    {
        warn!(error = %e, "a previous run's veth pair not removed");
    }
    let _ = nft(&delete_table_script()).await;
    let _ = nft(&delete_guard_script()).await;
}

impl KernelPlane {
    /// Sets up the veth pair, probes SRv6 encapsulation and decapsulation, creates the
    /// filter and moves the local rule. Whatever fails, what was set up is taken down
    /// again and the reason returned (the caller falls back to the TUN device, or stops).
    pub async fn start(
        net: &mut RtNetOps,
        routes: KernelRoutes,
        mode: Mode,
        mtu: u32,
        encapsulation: EncapChoice,
    ) -> Result<KernelPlane, String> {
        let mut plane = KernelPlane {
            routes,
            mode,
            filter: Filter::default(),
            tunsrc: None,
            bpf: None,
            refused_uplinks: BTreeSet::new(),
            uplinks_for: BTreeSet::new(),
            graces: BTreeMap::new(),
            guard: None,
        };
        match plane.setup(net, mtu, encapsulation).await {
            Ok(()) => Ok(plane),
            Err(e) => {
                plane.stop(net).await;
                Err(e)
            }
        }
    }

    async fn setup(
        &mut self,
        net: &mut RtNetOps,
        mtu: u32,
        encapsulation: EncapChoice,
    ) -> Result<(), String> {
        let k = self.routes.clone();
        // Decapsulated packets are forwarded from the egress interface to the pair: a node
        // that does not forward (a mobile host) keeps the TUN device rather than turn
        // into a router on its access link.
        if std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding")
            .is_ok_and(|v| v.trim() == "0")
        {
            return Err(
                "IPv6 forwarding is off here (a mobile host): decapsulated packets \
                 are forwarded from the egress interface"
                    .into(),
            );
        }
        net.veth_recreate(&k.dev, &k.peer, VETH_MAC)
            .await
            .map_err(|e| e.to_string())?;
        for (dev, forwarding) in [(&k.dev, "1"), (&k.peer, "1")] {
            // No link-local address (nothing to speak ND with), no router solicitations,
            // forwarding as the rest of the router; IPv4: our own addresses may come back
            // through the pair (the MR's replies from its MNP address), no reverse-path
            // filter (the mobile network's sources are routed the other way), and no
            // redirects (a hairpin between two mobile routers at the HA is normal).
            sysctl(&format!("ipv6/conf/{dev}/addr_gen_mode"), "1")?;
            sysctl(&format!("ipv6/conf/{dev}/forwarding"), forwarding)?;
            sysctl(&format!("ipv4/conf/{dev}/forwarding"), forwarding)?;
            sysctl(&format!("ipv4/conf/{dev}/accept_local"), "1")?;
            sysctl(&format!("ipv4/conf/{dev}/rp_filter"), "0")?;
            sysctl(&format!("ipv4/conf/{dev}/send_redirects"), "0")?;
        }
        net.link_set(&k.peer, Some(true), Some(PEER_MTU))
            .await
            .map_err(|e| e.to_string())?;
        net.link_set(&k.dev, Some(true), Some(mtu))
            .await
            .map_err(|e| e.to_string())?;
        self.routes.method = self.encapsulation(net, encapsulation).await?;
        match self.routes.method {
            // BPF's filter is in its decapsulation program's maps.
            KernelMethod::Srv6 => nft(&filter_base_script()).await?,
            KernelMethod::Bpf => match nft(&guard_base_script(&k.dev)).await {
                Ok(()) => self.guard = Some(GuardWriter::start()),
                Err(e) => warn!(error = %e,
                    "crash guard not set up: after a crash, tunnel packets to us would go \
                     round the veth pair until their hop limit ends, until the next start"),
            },
        }
        net.local_rule_move().await.map_err(|e| e.to_string())?;
        self.attach_uplinks(net).await;
        let how = match self.routes.method {
            KernelMethod::Srv6 => "SRv6 encapsulation, seg6local decapsulation",
            KernelMethod::Bpf => {
                "BPF encapsulation and decapsulation with the ingress filter (tcx programs on the peer)"
            }
        };
        info!(dev = %k.dev, peer = %k.peer, table = k.table, mtu, encapsulation = %self.routes.method,
            "kernel data plane set up ({how})");
        Ok(())
    }

    /// Sets up the encapsulation `choice` asks for: BPF (the programs loaded and attached
    /// to the pair's far side) or SRv6 (probed: a kernel without
    /// CONFIG_IPV6_SEG6_LWTUNNEL refuses its routes), `auto` the first that works.
    async fn encapsulation(
        &mut self,
        net: &mut RtNetOps,
        choice: EncapChoice,
    ) -> Result<KernelMethod, String> {
        let k = self.routes.clone();
        let mut why_not_bpf = None;
        if choice != EncapChoice::Srv6 {
            let attached = match (net.link_index(&k.peer).await, net.link_index(&k.dev).await) {
                (Ok(peer), Ok(dev)) => {
                    crate::bpf::Tunnel::attach(peer, dev).map_err(|e| e.to_string())
                }
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            };
            match attached {
                Ok(t) => {
                    net.set_bpf_encap(Some(t.encap()));
                    self.bpf = Some(t);
                    return Ok(KernelMethod::Bpf);
                }
                Err(e) if choice == EncapChoice::Bpf => return Err(format!("BPF: {e}")),
                Err(e) => why_not_bpf = Some(e),
            }
        }
        let probe = Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0x6f);
        for (table, encap) in [
            (k.table, LwEncap::Seg6Red(probe, k.hop_limit)),
            (k.decap6_table(), LwEncap::EndDx6(KERNEL_NH6)),
        ] {
            let mut r = RouteSpec::dev(table, IpNet::V6(probe.into()), &k.peer);
            r.encap = Some(encap);
            if let Err(e) = net.route_replace(&r).await {
                return Err(match why_not_bpf {
                    Some(b) => format!("BPF: {b}; SRv6 probe ({encap}): {e}"),
                    None => format!("SRv6 probe ({encap}): {e}"),
                });
            }
            let _ = net.route_del(&r).await;
        }
        if let Some(b) = why_not_bpf {
            info!(reason = %b, "BPF encapsulation unavailable: SRv6 instead");
        }
        Ok(KernelMethod::Srv6)
    }

    /// The kernel data plane's routes and devices.
    pub fn routes(&self) -> &KernelRoutes {
        &self.routes
    }

    /// Brings the filter and the tunnel source to the bindings `bindings` (all the live
    /// ones; those whose packets the kernel does not decapsulate are skipped: a binding
    /// sent through TUN, RFC 5648's, is still received here).
    pub async fn sync<'a>(
        &mut self,
        cfg: &RouteConfig,
        bindings: impl Iterator<Item = &'a Binding>,
        now: Instant,
    ) -> Result<(), String> {
        let mut entries = BTreeMap::new();
        for b in bindings {
            if let Some((local, remote)) = kernel_decapsulates(cfg, b) {
                let key = crate::routes::key(b);
                let sources = crate::routes::sources(b).into_iter().collect();
                if let Some(was) = self.filter.entries.get(&key)
                    && was.remote != remote
                    && self.mode == Mode::HomeAgent
                {
                    self.graces.insert(key, (was.remote, now + MOVE_GRACE));
                }
                let previous = self
                    .graces
                    .get(&key)
                    .filter(|(p, until)| *until > now && *p != remote)
                    .map(|(p, _)| *p);
                entries.insert(
                    key,
                    Entry {
                        local,
                        remote,
                        sources,
                        previous,
                        to_tun: kernel_ends(cfg, b).is_none(),
                    },
                );
            }
        }
        self.graces
            .retain(|k, (_, until)| *until > now && entries.contains_key(k));
        // The SRv6 encapsulation's source is the namespace's; BPF's is in each entry.
        let tunsrc = cfg
            .kernel
            .as_ref()
            .filter(|k| k.method == KernelMethod::Srv6)
            .and_then(|k| k.source);
        if let Some(t) = &self.bpf {
            if let Err(e) = self.filter.apply_bpf(self.mode, entries, t) {
                // Rebuild from scratch next time rather than trust a half-known state.
                self.filter = Filter::default();
                return Err(format!("BPF filter: {e}"));
            }
            if let Some(g) = &self.guard {
                g.set(&self.filter.locals);
            }
            return Ok(());
        }
        let script = self.filter.plan(self.mode, entries);
        if !script.is_empty() {
            tracing::debug!(%script, "ingress filter change");
            if let Err(e) = nft(&script).await {
                // Rebuild from scratch next time rather than trust a half-known state.
                self.filter = Filter::default();
                let _ = nft(&filter_base_script()).await;
                return Err(e);
            }
        }
        if let Some(src) = tunsrc
            && self.tunsrc != Some(src)
        {
            ip(&["sr", "tunsrc", "set", &src.to_string()]).await?;
            info!(%src, "SRv6 tunnel source set");
            self.tunsrc = Some(src);
        }
        Ok(())
    }

    /// BPF: attaches the uplink program ([`crate::bpf::Tunnel::uplink_attach`]) to the
    /// ingress of every Ethernet device of the namespace but the pair's (those that
    /// appeared since the last call), and forgets the devices that went away. A device
    /// that refuses it keeps the path through the pair, which serves every device.
    pub async fn attach_uplinks(&mut self, net: &RtNetOps) {
        let Some(t) = &mut self.bpf else { return };
        let links = match net.ether_links().await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "devices not listed; uplinks keep the path through the pair");
                return;
            }
        };
        t.uplinks_retain(|i| links.iter().any(|(j, _)| *j == i));
        self.refused_uplinks
            .retain(|i| links.iter().any(|(j, _)| j == i));
        for (index, name) in links {
            if name == self.routes.dev
                || name == self.routes.peer
                || self.refused_uplinks.contains(&index)
            {
                continue;
            }
            match t.uplink_attach(index) {
                Ok(true) => info!(uplink = %name,
                    "tunnel packets to our end points decapsulated at this device's ingress"),
                Ok(false) => {}
                Err(e) => {
                    warn!(uplink = %name, error = %e,
                        "uplink program not attached; this device's tunnel packets go through the pair");
                    self.refused_uplinks.insert(index);
                }
            }
        }
    }

    /// After a [`KernelPlane::sync`]: [`KernelPlane::attach_uplinks`] when our end points
    /// changed since it last ran (a care-of address on a device whose appearance was not
    /// heard of: the kernel's notifications may be lost in a storm), not on every binding
    /// change (a home agent's end point stays while its bindings come and go).
    pub async fn end_points_moved(&mut self, net: &RtNetOps) {
        if self.bpf.is_none() || self.filter.locals == self.uplinks_for {
            return;
        }
        self.uplinks_for = self.filter.locals.clone();
        self.attach_uplinks(net).await;
    }

    /// When the next previous far end's grace time ends ([`KernelPlane::sync`] then
    /// removes it).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.graces.values().map(|(_, until)| *until).min()
    }

    /// The filter's counters: the drops (spoofed inner source, no binding, link scope)
    /// and, per far end, the packets sent to it and received from it.
    pub async fn counters(&self) -> Option<KernelCounters> {
        if let Some(t) = &self.bpf {
            let d = t.drops();
            let far_ends = self
                .filter
                .remotes
                .iter()
                .filter_map(|&r| {
                    let c = t.far_end_counts(r)?;
                    Some((
                        r,
                        FarEndCounts {
                            sent_packets: c.sent.0,
                            sent_octets: c.sent.1,
                            received_packets: c.received.0,
                            received_octets: c.received.1,
                        },
                    ))
                })
                .collect();
            return Some(KernelCounters {
                drops: (d.spoofed_inner, d.no_binding, d.link_scope),
                refused: (d.encap_refused, d.decap_refused),
                malformed: d.malformed,
                far_ends,
            });
        }
        let out = tokio::process::Command::new("nft")
            .args(["list", "counters", "table", "ip6", NFT_TABLE])
            .output()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        KernelCounters::from_nft(&text)
    }

    /// Takes down what [`KernelPlane::start`] set up (the routes and rules go with the
    /// bindings, before this): the local rule back first, then the filter, the pair and
    /// the tunnel source. Failures are logged; the next start cleans up too.
    pub async fn stop(&mut self, net: &mut RtNetOps) {
        match restore_local_rule(net).await {
            Ok(true) => info!("local table rule back at priority 0"),
            Ok(false) => {}
            Err(e) => warn!(error = %e, "local table rule not restored"),
        }
        if self.bpf.is_none()
            && let Err(e) = nft(&delete_table_script()).await
        {
            warn!(error = %e, "ingress filter not removed");
        }
        if let Some(g) = self.guard.take() {
            g.stop().await;
            if let Err(e) = nft(&delete_guard_script()).await {
                warn!(error = %e, "crash guard not removed");
            }
        }
        net.set_bpf_encap(None);
        self.bpf = None;
        if let Err(e) = net.link_delete(&self.routes.dev).await {
            warn!(error = %e, "veth pair not removed");
        }
        if self.tunsrc.take().is_some()
            && let Err(e) = ip(&["sr", "tunsrc", "set", "::"]).await
        {
            warn!(error = %e, "SRv6 tunnel source not reset");
        }
    }
}

/// What the kernel data plane's filter counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Drops: (spoofed inner source, no binding, link scope).
    pub drops: (u64, u64, u64),
    /// Packets the BPF programs dropped because the kernel would not add or strip the
    /// outer header: (encapsulation, decapsulation).
    pub refused: (u64, u64),
    /// Tunnel packets to our end point the BPF decapsulation could not take apart.
    pub malformed: u64,
    /// Per far end: what was sent to it and received from it (and accepted).
    pub far_ends: BTreeMap<Ipv6Addr, FarEndCounts>,
}

/// One far end's traffic on the kernel path, as the filter counted it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FarEndCounts {
    /// Packets sent to it.
    pub sent_packets: u64,
    /// Their inner octets.
    pub sent_octets: u64,
    /// Packets received from it and accepted.
    pub received_packets: u64,
    /// Their inner octets.
    pub received_octets: u64,
}

/// The outer header the filter's counters include: the kernel's reduced SRv6
/// encapsulation with one segment adds a bare IPv6 header (no SRH, linux-notes), so a
/// tunnel packet's inner octets are its length less 40.
const OUTER_HEADER: u64 = 40;

impl KernelCounters {
    /// Reads `nft list counters` output of our table: the drops and every far end's
    /// counters (`None` without the three drop counters).
    pub fn from_nft(text: &str) -> Option<KernelCounters> {
        let drops = parse_counters(text)?;
        let mut far_ends: BTreeMap<Ipv6Addr, FarEndCounts> = BTreeMap::new();
        for (name, packets, bytes) in named_counters(text) {
            if let Some((remote, received)) = counter_far_end(&name) {
                let e = far_ends.entry(remote).or_default();
                let inner = bytes.saturating_sub(OUTER_HEADER.saturating_mul(packets));
                if received {
                    (e.received_packets, e.received_octets) = (packets, inner);
                } else {
                    (e.sent_packets, e.sent_octets) = (packets, inner);
                }
            }
        }
        Some(KernelCounters {
            drops,
            refused: (0, 0),
            malformed: 0,
            far_ends,
        })
    }
}

/// Every named counter in `nft list counters` output, with its packets and bytes.
pub fn named_counters(text: &str) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("counter ") {
            name = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some(rest) = l.strip_prefix("packets ")
            && let Some(n) = name.take()
        {
            // "packets N bytes M"
            let mut w = rest.split_whitespace();
            let packets = w.next().and_then(|p| p.parse().ok());
            let bytes = match (w.next(), w.next()) {
                (Some("bytes"), Some(b)) => b.parse().ok(),
                _ => Some(0),
            };
            if let (Some(p), Some(b)) = (packets, bytes) {
                out.push((n, p, b));
            }
        }
    }
    out
}

/// Reads `nft list counters` output: the packets of our three named counters.
pub fn parse_counters(text: &str) -> Option<(u64, u64, u64)> {
    let found: BTreeMap<String, u64> = named_counters(text)
        .into_iter()
        .map(|(n, p, _)| (n, p))
        .collect();
    Some((
        *found.get("spoofed_inner")?,
        *found.get("no_binding")?,
        *found.get("link_scope")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn inner_sources_match_the_prefix_bits_behind_the_outer_header() {
        assert_eq!(
            inner_source_match(&net("2001:db8:100::/64")),
            "ip6 nexthdr 41 @nh,384,64 0x20010db801000000"
        );
        assert_eq!(
            inner_source_match(&net("2001:db8:100::1/128")),
            "ip6 nexthdr 41 @nh,384,128 0x20010db8010000000000000000000001"
        );
        assert_eq!(
            inner_source_match(&net("198.51.100.0/24")),
            "ip6 nexthdr 4 @nh,416,24 0xc63364"
        );
        // Host bits beyond the prefix are ignored, not matched.
        assert_eq!(
            inner_source_match(&net("2001:db8:100::5/56")),
            "ip6 nexthdr 41 @nh,384,56 0x20010db8010000"
        );
        assert_eq!(inner_source_match(&net("::/0")), "ip6 nexthdr 41");
    }

    /// The BPF filter's maps follow the entries: far ends and their prefixes come and go,
    /// and a far end's counters are readable while it is known. On the loopback device of
    /// a network namespace of the test's own thread (root; skipped without tcx).
    #[test]
    fn the_bpf_filter_follows_the_entries() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let Ok(t) = crate::bpf::Tunnel::attach(1, 1) else {
                eprintln!("skipped: no tcx here");
                return;
            };
            let mut f = Filter::default();
            let (coa1, coa2) = (COA1.parse().unwrap(), COA2.parse().unwrap());
            let k1 = ("2001:db8:1::1".parse().unwrap(), None);
            f.apply_bpf(
                Mode::HomeAgent,
                [(k1, entry(coa1, "2001:db8:100::/64"))].into(),
                &t,
            )
            .unwrap();
            assert!(t.far_end_counts(coa1).is_some());
            // The router moves: the old far end goes, with its prefix.
            f.apply_bpf(
                Mode::HomeAgent,
                [(k1, entry(coa2, "2001:db8:100::/64"))].into(),
                &t,
            )
            .unwrap();
            assert!(t.far_end_counts(coa1).is_none());
            assert_eq!(
                t.far_end_counts(coa2),
                Some(crate::bpf::FarEndCounts::default())
            );
            assert_eq!(f.remotes, [coa2].into());
            f.apply_bpf(Mode::HomeAgent, BTreeMap::new(), &t).unwrap();
            assert!(t.far_end_counts(coa2).is_none());
            assert_eq!(t.drops(), crate::bpf::Drops::default());
        })
        .join()
        .unwrap();
    }

    /// The home agent and two routers' care-of addresses of the filter tests.
    const HA: &str = "2001:db8:a::1";
    const COA1: &str = "2001:db8:a::2";
    const COA2: &str = "2001:db8:b::2";

    /// A home agent's filter entry: far end `remote`, inner sources in `p`.
    fn entry(remote: Ipv6Addr, p: &str) -> Entry {
        Entry {
            local: HA.parse().unwrap(),
            remote,
            sources: [net(p)].into_iter().collect(),
            previous: None,
            to_tun: false,
        }
    }

    #[test]
    fn filter_changes_are_per_far_end() {
        let mut f = Filter::default();
        let (coa1, coa2): (Ipv6Addr, Ipv6Addr) = (COA1.parse().unwrap(), COA2.parse().unwrap());
        let k1 = ("2001:db8:1::1".parse().unwrap(), None);
        let k2 = ("2001:db8:2::1".parse().unwrap(), None);
        let s = f.plan(
            Mode::HomeAgent,
            [(k1, entry(coa1, "2001:db8:100::/64"))].into(),
        );
        assert!(s.contains("add element ip6 nemonetd peers { 2001:db8:a::2 : jump p_"));
        assert!(s.contains("add element ip6 nemonetd locals { 2001:db8:a::1 }"));
        assert!(s.contains("counter name spoofed_inner drop"));
        // Its packets counted both ways, per far end.
        let hex = "20010db8000a00000000000000000002";
        assert!(
            s.contains(&format!("add counter ip6 nemonetd r_{hex}")),
            "{s}"
        );
        assert!(s.contains(&format!("counter name r_{hex} accept")), "{s}");
        assert!(
            s.contains(&format!(
                "add element ip6 nemonetd sent {{ 2001:db8:a::2 : \"t_{hex}\" }}"
            )),
            "{s}"
        );
        // Same again: nothing to do.
        let same = f.plan(
            Mode::HomeAgent,
            [(k1, entry(coa1, "2001:db8:100::/64"))].into(),
        );
        assert_eq!(same, "");
        // A second router: only its chain and element.
        let s = f.plan(
            Mode::HomeAgent,
            [
                (k1, entry(coa1, "2001:db8:100::/64")),
                (k2, entry(coa2, "2001:db8:200::/64")),
            ]
            .into(),
        );
        assert!(!s.contains("2001:db8:a::2"), "{s}");
        assert!(s.contains("2001:db8:b::2"), "{s}");
        assert!(!s.contains("locals"), "{s}");
        // The first moves: its old far end goes, the new one comes, the other stays.
        let s = f.plan(
            Mode::HomeAgent,
            [
                (
                    k1,
                    entry("2001:db8:c::2".parse().unwrap(), "2001:db8:100::/64"),
                ),
                (k2, entry(coa2, "2001:db8:200::/64")),
            ]
            .into(),
        );
        assert!(s.contains("delete element ip6 nemonetd peers { 2001:db8:a::2 }"));
        assert!(s.contains("add element ip6 nemonetd peers { 2001:db8:c::2"));
        assert!(!s.contains("2001:db8:b::2"), "{s}");
        // All gone: elements, chains and our end point.
        let s = f.plan(Mode::HomeAgent, BTreeMap::new());
        assert_eq!(s.matches("delete chain").count(), 2, "{s}");
        assert_eq!(s.matches("delete counter").count(), 4, "{s}");
        assert_eq!(
            s.matches("delete element ip6 nemonetd sent").count(),
            2,
            "{s}"
        );
        assert!(s.contains("delete element ip6 nemonetd locals { 2001:db8:a::1 }"));
    }

    #[test]
    fn a_moved_routers_previous_far_end_is_accepted_during_its_grace() {
        let mut f = Filter::default();
        let ha: Ipv6Addr = "2001:db8:a::1".parse().unwrap();
        let key = ("2001:db8:1::1".parse().unwrap(), None);
        let entry = |remote: &str, previous: Option<&str>| Entry {
            local: ha,
            remote: remote.parse().unwrap(),
            sources: [net("2001:db8:100::/64")].into_iter().collect(),
            previous: previous.map(|p| p.parse().unwrap()),
            to_tun: false,
        };
        f.plan(
            Mode::HomeAgent,
            [(key, entry("2001:db8:a::2", None))].into(),
        );
        // Moved: the new far end comes, the old one stays, with the same sources.
        let s = f.plan(
            Mode::HomeAgent,
            [(key, entry("2001:db8:b::2", Some("2001:db8:a::2")))].into(),
        );
        assert!(
            s.contains("add element ip6 nemonetd peers { 2001:db8:b::2"),
            "{s}"
        );
        assert!(!s.contains("delete"), "{s}");
        // The grace is over: the old one goes.
        let s = f.plan(
            Mode::HomeAgent,
            [(key, entry("2001:db8:b::2", None))].into(),
        );
        assert!(
            s.contains("delete element ip6 nemonetd peers { 2001:db8:a::2 }"),
            "{s}"
        );
        assert!(!s.contains("add element"), "{s}");
    }

    #[test]
    fn the_mobile_router_accepts_any_inner_source_from_its_home_agent() {
        let mut f = Filter::default();
        let coa: Ipv6Addr = "2001:db8:a::2".parse().unwrap();
        let ha: Ipv6Addr = "2001:db8:a::1".parse().unwrap();
        let s = f.plan(
            Mode::MobileRouter,
            [(
                ("2001:db8:1::1".parse().unwrap(), None),
                Entry {
                    local: coa,
                    remote: ha,
                    sources: [net("2001:db8:100::/64")].into_iter().collect(),
                    previous: None,
                    to_tun: false,
                },
            )]
            .into(),
        );
        assert!(s.contains(" accept\n"), "{s}");
        assert!(!s.contains("spoofed_inner"), "{s}");
    }

    /// RFC 5648 bindings are sent through TUN; their far ends' packets, decapsulated by the
    /// kernel otherwise, are marked for the TUN device, after the same inner-source check.
    #[test]
    fn far_ends_of_tun_bindings_are_marked_for_the_tun_device() {
        let mut f = Filter::default();
        let ha: Ipv6Addr = "2001:db8:a::1".parse().unwrap();
        let entry = |remote: &str, to_tun| Entry {
            local: ha,
            remote: remote.parse().unwrap(),
            sources: [net("2001:db8:100::/64")].into_iter().collect(),
            previous: None,
            to_tun,
        };
        let k = |bid| ("2001:db8:1::1".parse().unwrap(), Some(bid));
        let s = f.plan(
            Mode::HomeAgent,
            [
                (k(1), entry("2001:db8:a::2", true)),
                (k(2), entry("2001:db8:b::2", true)),
            ]
            .into(),
        );
        assert_eq!(
            s.matches("@nh,384,64 0x20010db801000000 counter name r_")
                .count(),
            2,
            "{s}"
        );
        assert_eq!(
            s.matches(" meta mark set meta mark or 0x400000 accept")
                .count(),
            2,
            "{s}"
        );
        assert_eq!(s.matches("spoofed_inner drop").count(), 2, "{s}");
        // The same far end now carried by the kernel: its chain is rewritten, unmarked.
        let s = f.plan(
            Mode::HomeAgent,
            [
                (k(1), entry("2001:db8:a::2", false)),
                (k(2), entry("2001:db8:b::2", true)),
            ]
            .into(),
        );
        assert!(
            s.contains("flush chain ip6 nemonetd p_20010db8000a00000000000000000002"),
            "{s}"
        );
        assert!(!s.contains("p_20010db8000b"), "{s}");
        assert!(!s.contains("mark"), "{s}");
    }

    #[test]
    fn counters_are_read_from_nft_output() {
        let text = "table ip6 nemonetd {\n\tcounter spoofed_inner {\n\t\tpackets 3 bytes 312\n\t}\n\tcounter no_binding {\n\t\tpackets 0 bytes 0\n\t}\n\tcounter link_scope {\n\t\tpackets 7 bytes 1\n\t}\n}\n";
        assert_eq!(parse_counters(text), Some((3, 0, 7)));
        assert_eq!(parse_counters(""), None);
        let named = named_counters(
            "table ip6 nemonetd {\n\tcounter r_20010db8000a00000000000000000002 {\n\t\tpackets 12 bytes 1200\n\t}\n\tcounter t_20010db8000a00000000000000000002 {\n\t\tpackets 9 bytes 900\n\t}\n}\n",
        );
        assert_eq!(named.len(), 2);
        let far: Ipv6Addr = "2001:db8:a::2".parse().unwrap();
        assert_eq!(counter_far_end(&named[0].0), Some((far, true)));
        assert_eq!(counter_far_end(&named[1].0), Some((far, false)));
        assert_eq!((named[0].1, named[1].1), (12, 9));
        assert_eq!((named[0].2, named[1].2), (1200, 900));
        assert_eq!(counter_far_end("spoofed_inner"), None);
        assert_eq!(counter_far_end("r_12"), None);
        // With the drop counters, the far end's inner octets: 40 per outer header off.
        let all = format!(
            "{}{}",
            text.trim_end().trim_end_matches('}'),
            "\tcounter r_20010db8000a00000000000000000002 {\n\t\tpackets 12 bytes 1200\n\t}\n\tcounter t_20010db8000a00000000000000000002 {\n\t\tpackets 9 bytes 900\n\t}\n}\n"
        );
        let c = KernelCounters::from_nft(&all).unwrap();
        assert_eq!(c.drops, (3, 0, 7));
        assert_eq!(
            c.far_ends[&far],
            FarEndCounts {
                sent_packets: 9,
                sent_octets: 900 - 9 * 40,
                received_packets: 12,
                received_octets: 1200 - 12 * 40,
            }
        );
        assert_eq!(KernelCounters::from_nft(""), None);
    }

    #[test]
    fn veth_names_fit_the_kernel() {
        assert_eq!(
            veth_names("nemo0"),
            Some(("nemo0k".into(), "nemo0kx".into()))
        );
        assert_eq!(
            veth_names("abcdefghijklm"),
            Some(("abcdefghijklmk".into(), "abcdefghijklmkx".into()))
        );
        assert_eq!(veth_names("abcdefghijklmn"), None);
    }
}
