//! The default topology and the daemons in it.
//!
//! ```text
//!                     cn  2001:db8:c::100  198.51.100.100      ("the Internet")
//!                      |  2001:db8:c::/64  198.51.100.96/27
//!   ha ------- home ----- r (router) ----------- bridges, one per access network:
//!   eth0 2001:db8:1::1     |  acc-a   IPv6-only  2001:db8:a::/64   radvd
//!   203.0.113.1/26         |  acc-a2  IPv6-only  2001:db8:a2::/64  radvd (the "new link")
//!   (home link: the bridge |  acc-b   dual stack 2001:db8:b::/64   radvd, 198.51.100.128/26
//!   `home` in r, radvd     |
//!   2001:db8:1::/64; r is  |
//!   2001:db8:1::fe and     |
//!   203.0.113.62)          |
//!                          |-- nat (NAT router, masquerade random) 198.51.100.66/27
//!                          |     acc-n IPv4-only 192.0.2.128/26 ("private"), DHCP (udhcpd):
//!                          |     for DSMIPv6 (issue 7); the demo's last step moves eth1 there
//!                     mr-eth0 / mr-eth1: the ends of the MR's two egress links
//!                          |
//!   mr: eth0 (SLAAC), eth1 (SLAAC + 198.51.100.130), mip0 (home address 2001:db8:1::100)
//!       lan0 bridge 2001:db8:100:1::1/64 192.0.2.17/28   (the mobile network)
//!        |-- mnn   2001:db8:100:1::2  192.0.2.18          (dual stack)
//!        `-- mnn4  192.0.2.19                             (IPv4 only)
//! ```
//!
//! The MR's egress ends (`mr-eth0`, `mr-eth1`) live in `r` and are bridge ports: moving the
//! MR to another access network is moving its port to another bridge; unplugging is
//! setting the port down (the MR sees its carrier go). The home link is such a bridge too
//! (`home`, with the HA's port `home-ha`): [`Access::Home`] brings the MR home.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::net::{Namespaces, Ns, Proc, Result, err, veth, wait_until};

/// The CN's addresses.
pub const CN6: &str = "2001:db8:c::100";
/// The CN's IPv4 address.
pub const CN4: &str = "198.51.100.100";
/// The home agent.
pub const HA6: &str = "2001:db8:1::1";
/// The home agent's IPv4 address.
pub const HA4: &str = "203.0.113.1";
/// The MR's home address.
pub const HOA: &str = "2001:db8:1::100";
/// The MNPs (etc/mrd.conf).
pub const MNP6: &str = "2001:db8:100::/48";
/// The IPv4 MNP.
pub const MNP4: &str = "192.0.2.16/28";
/// The dual-stack MNN.
pub const MNN6: &str = "2001:db8:100:1::2";
/// The dual-stack MNN's IPv4 address.
pub const MNN4_OF_MNN: &str = "192.0.2.18";
/// The IPv4-only host on the mobile network.
pub const MNN4: &str = "192.0.2.19";

/// An access network the MR can attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// IPv6-only, radvd (2001:db8:a::/64).
    V6,
    /// A second IPv6-only network (2001:db8:a2::/64), the "new link" of a single-interface
    /// IPv6 -> IPv6 handover.
    V6b,
    /// Dual stack (2001:db8:b::/64 and 198.51.100.128/26).
    Dual,
    /// IPv4-only behind a NAT, DHCP (192.0.2.128/26 private): DSMIPv6, issue 7.
    Nat,
    /// The home link (2001:db8:1::/64 by radvd, 203.0.113.0/26), where the HA is: the MR
    /// comes home (RFC 6275 §11.5.5; issue 11).
    Home,
}

impl Access {
    /// The bridge in `r`.
    pub fn bridge(self) -> &'static str {
        match self {
            Access::V6 => "acc-a",
            Access::V6b => "acc-a2",
            Access::Dual => "acc-b",
            Access::Nat => "acc-n",
            Access::Home => "home",
        }
    }
    /// What every care-of address on this network contains (IPv6 prefix; the NAT
    /// network's DHCP pool 192.0.2.150-190).
    pub fn coa_prefix(self) -> &'static str {
        match self {
            Access::V6 => "2001:db8:a:",
            Access::V6b => "2001:db8:a2:",
            Access::Dual => "2001:db8:b:",
            Access::Nat => "192.0.2.1",
            Access::Home => "2001:db8:1:",
        }
    }
    /// The kind for report.json (`ipv6`, `dual`; `ipv4`, `ipv4-nat` arrive with issue 7).
    pub fn kind(self) -> &'static str {
        match self {
            Access::V6 | Access::V6b => "ipv6",
            Access::Dual => "dual",
            Access::Nat => "ipv4-nat",
            Access::Home => "home",
        }
    }
    /// By the name an operator types (`a`, `a2`, `b`, `nat`, `home`).
    pub fn named(name: &str) -> Option<Access> {
        Some(match name {
            "a" => Access::V6,
            "a2" => Access::V6b,
            "b" => Access::Dual,
            "nat" | "n" => Access::Nat,
            "home" => Access::Home,
            _ => return None,
        })
    }

    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            Access::V6 => "IPv6-only access network A (2001:db8:a::/64)",
            Access::V6b => "IPv6-only access network A2 (2001:db8:a2::/64)",
            Access::Dual => "dual-stack access network B (2001:db8:b::/64, 198.51.100.128/26)",
            Access::Nat => "IPv4-only access network N behind a NAT (192.0.2.128/26, DHCP)",
            Access::Home => "the home link (2001:db8:1::/64, 203.0.113.0/26)",
        }
    }
    fn router_addrs(self) -> &'static [&'static str] {
        match self {
            Access::V6 => &["2001:db8:a::1/64"],
            Access::V6b => &["2001:db8:a2::1/64"],
            Access::Dual => &["2001:db8:b::1/64", "198.51.100.129/26"],
            // The home link's addresses are set with the bridge (the HA is on it from the
            // start); the NAT network has its own router.
            Access::Nat | Access::Home => &[],
        }
    }
    fn radvd_prefix(self) -> &'static str {
        match self {
            Access::V6 => "2001:db8:a::/64",
            Access::V6b => "2001:db8:a2::/64",
            Access::Dual => "2001:db8:b::/64",
            Access::Nat => "",
            Access::Home => "2001:db8:1::/64",
        }
    }
    /// The access networks on the router's bridges (the NAT network has its own router).
    pub const ALL: [Access; 3] = [Access::V6, Access::V6b, Access::Dual];
}

/// Where the lab finds programs and writes files.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory of had, mrd, babymdd, nemonetd, mipsock.
    pub bin_dir: PathBuf,
    /// This program (for the helper subcommands run inside namespaces).
    pub self_exe: PathBuf,
    /// Configs, buses, logs.
    pub work: PathBuf,
    /// The workspace's etc/ (samples).
    pub etc: PathBuf,
    /// Print progress details.
    pub verbose: bool,
    /// DHCP on the NAT network by busybox udhcpc (with the lab's hook) instead of
    /// babymdd's own client (`babymdd --dhcp`).
    pub udhcpc: bool,
    /// Put the link emulator ([`crate::linkemu`]) with this profile on each of the MR's
    /// uplinks; `None`: plain veths (the "ideal" link without an emulator).
    pub link: Option<String>,
    /// Every uplink registered at once (RFC 5648): mrd.conf's
    /// `multiple-care-of-addresses yes;`, and both nemonetds duplicating the voice port
    /// ([`crate::multipath::VOICE_PORT`]) over every live path.
    pub mcoa: bool,
    /// Home agent redundancy (issue 13): 0 for the one plain home agent `ha`; 2 or 3 for
    /// that many members (`ha`, `ha2`, `ha3`) serving the home agent address together,
    /// elected through a 3-member etcd cluster on the home link ([`Lab::members`]).
    pub ha_members: usize,
}

/// An rc.d script run: its name, namespace and settings.
type RcRun = (String, Ns, Vec<(String, String)>);

/// The lab: namespaces, links, daemons.
#[derive(Debug)]
pub struct Lab {
    /// Namespaces and processes (teardown on drop).
    pub nss: Namespaces,
    /// Options.
    pub opts: Options,
    /// Nodes.
    pub cn: Ns,
    /// The router between the CN, the home link and the access networks.
    pub r: Ns,
    /// Home agent.
    pub ha: Ns,
    /// Mobile router.
    pub mr: Ns,
    /// Dual-stack MNN.
    pub mnn: Ns,
    /// IPv4-only MNN.
    pub mnn4: Ns,
    /// The NAT router of the IPv4-only access network (`acc-n`, DHCP).
    pub nat: Ns,
    /// Where each MR egress port is attached (`None`: unplugged), eth0 then eth1.
    pub attached: [Option<Access>; 2],
    /// Whether each egress port is plugged (carrier).
    pub plugged: [bool; 2],
    /// With [`Options::ha_members`]: every home agent member, `ha` first.
    pub members: Vec<Ns>,
    /// With [`Options::ha_members`]: the etcd cluster's hosts on the home link.
    pub etcd: Vec<Ns>,
    /// The rc.d scripts started, with their namespace and settings (to start them again).
    rc_runs: Vec<RcRun>,
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| crate::net::Error::Msg(format!("{}: {e}", path.display())))
}

/// A sample from etc/ with `(from, to)` replacements, each of which must apply.
pub fn sample(etc: &Path, name: &str, edits: &[(&str, &str)]) -> Result<String> {
    let path = etc.join(name);
    let mut text = std::fs::read_to_string(&path)
        .map_err(|e| crate::net::Error::Msg(format!("{}: {e}", path.display())))?;
    for (from, to) in edits {
        if !text.contains(from) {
            return err(format!("etc/{name} no longer contains {from:?}"));
        }
        text = text.replace(from, to);
    }
    Ok(text)
}

/// BCP 38 (RFC 2827) on the router `r`: a packet routed from an access network with a
/// source that is not on that network is dropped and counted, as an ISP's access router
/// does. So a mobile network's packet that left its router untunnelled goes nowhere (its
/// own counter, "mobile network untunnelled"), and no measurement can benefit from a
/// care-of address the router has already left ("BCP 38"). Frames bridged within an
/// access network (when the host's br_netfilter shows them to these hooks) are left
/// alone: only what is routed out of the network is filtered. The home link is not
/// filtered: at home the mobile router is a router there, with its mobile network
/// behind it. `nft list table inet nemo-lab-bcp38` in `r` shows the counters.
pub fn bcp38() -> String {
    let mut t = String::from(
        "table inet nemo-lab-bcp38 {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n",
    );
    let nets: [(&str, &[&str]); 4] = [
        ("acc-a", &["2001:db8:a::/64"]),
        ("acc-a2", &["2001:db8:a2::/64"]),
        ("acc-b", &["2001:db8:b::/64", "198.51.100.128/26"]),
        ("nat", &["198.51.100.64/27"]),
    ];
    for (dev, _) in &nets {
        t.push_str(&format!(
            "\t\tiifname \"{dev}\" oifname != \"{dev}\" jump from-{dev}\n"
        ));
    }
    t.push_str("\t}\n");
    for (dev, prefixes) in &nets {
        t.push_str(&format!("\tchain from-{dev} {{\n"));
        t.push_str(&format!(
            "\t\tip6 saddr {MNP6} counter drop comment \"mobile network untunnelled\"\n\t\tip saddr {MNP4} counter drop comment \"mobile network untunnelled\"\n"
        ));
        let (v6, v4): (Vec<&str>, Vec<&str>) = prefixes.iter().partition(|p| p.contains(':'));
        for (family, own) in [("ip6", v6), ("ip", v4)] {
            let nfproto = if family == "ip6" { "ipv6" } else { "ipv4" };
            match own.as_slice() {
                [] => t.push_str(&format!(
                    "\t\tmeta nfproto {nfproto} counter drop comment \"BCP 38: no {nfproto} on this network\"\n"
                )),
                own => t.push_str(&format!(
                    "\t\t{family} saddr != {{ {} }} counter drop comment \"BCP 38\"\n",
                    own.join(", ")
                )),
            }
        }
        t.push_str("\t}\n");
    }
    t.push_str("}\n");
    t
}

const RA_FAST: &str = "\tMinRtrAdvInterval 0.05;\n\tMaxRtrAdvInterval 0.15;\n\tMinDelayBetweenRAs 0.03;\n\tAdvIntervalOpt on;\n\tAdvRASolicitedUnicast on;\n\tAdvDefaultLifetime 600;\n";

impl Lab {
    /// Bus directory of a node.
    pub fn bus(&self, node: &str) -> PathBuf {
        self.opts.work.join(format!("bus-{node}"))
    }

    /// A binary of the workspace.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.opts.bin_dir.join(name)
    }

    /// The lab `nemo-lab up` left running, from its saved state: the same namespaces,
    /// attachments and settings; the processes it started are the state's to stop.
    pub fn attach(opts: Options, state: &crate::up::UpState) -> Lab {
        let nss = Namespaces::adopt(state);
        let ns = |node: &str| Ns {
            name: format!("{}-{node}", state.prefix),
            node: node.to_string(),
        };
        Lab {
            nss,
            opts,
            cn: ns("cn"),
            r: ns("r"),
            ha: ns("ha"),
            mr: ns("mr"),
            mnn: ns("mnn"),
            mnn4: ns("mnn4"),
            nat: ns("nat"),
            attached: state.attached,
            plugged: state.plugged,
            members: Vec::new(),
            etcd: Vec::new(),
            rc_runs: Vec::new(),
        }
    }

    /// Builds the namespaces, links, addresses and routes (no daemons yet). Both MR egress
    /// ports start unplugged: eth0 on A, eth1 on B.
    pub fn build(opts: Options) -> Result<Lab> {
        let mut nss = Namespaces::new();
        let cn = nss.add("cn")?;
        let r = nss.add("r")?;
        let ha = nss.add("ha")?;
        let mr = nss.add("mr")?;
        let mnn = nss.add("mnn")?;
        let mnn4 = nss.add("mnn4")?;
        let nat = nss.add("nat")?;
        let mut lab = Lab {
            nss,
            opts,
            cn,
            r,
            ha,
            mr,
            mnn,
            mnn4,
            nat,
            attached: [None, None],
            plugged: [false, false],
            members: Vec::new(),
            etcd: Vec::new(),
            rc_runs: Vec::new(),
        };
        lab.wire()?;
        if lab.opts.ha_members > 0 {
            lab.wire_redundancy()?;
        }
        Ok(lab)
    }

    /// An access network's bridge in `r`, with a spare port so the bridge keeps its
    /// carrier (and radvd its interface) when the MR leaves.
    fn access_bridge(r: &Ns, br: &str) -> Result<()> {
        r.ip(&[
            "link",
            "add",
            br,
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        let keep = format!("{br}-k");
        let keep_peer = format!("{br}-kp");
        r.ip(&[
            "link", "add", &keep, "type", "veth", "peer", "name", &keep_peer,
        ])?;
        r.ip(&["link", "set", &keep, "master", br])?;
        r.ip(&["link", "set", &keep, "up"])?;
        r.ip(&["link", "set", &keep_peer, "up"])?;
        r.ip(&["link", "set", br, "up"])?;
        Ok(())
    }

    fn wire(&mut self) -> Result<()> {
        let dad = [
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
        ];
        for ns in [
            &self.cn, &self.r, &self.ha, &self.mr, &self.mnn, &self.mnn4, &self.nat,
        ] {
            ns.sysctls(&dad)?;
        }
        let (cn, r, ha, mr, mnn, mnn4) =
            (&self.cn, &self.r, &self.ha, &self.mr, &self.mnn, &self.mnn4);
        veth(cn, "eth0", r, "cn")?;
        veth(ha, "eth0", r, "home-ha")?;
        veth(mr, "eth0", r, "mr-eth0")?;
        veth(mr, "eth1", r, "mr-eth1")?;
        veth(mnn, "eth0", mr, "lan-mnn")?;
        veth(mnn4, "eth0", mr, "lan-mnn4")?;
        // SHISA's mip0 holds the home address; this kernel has no dummy interfaces, so a
        // veth pair inside the MR.
        mr.ip(&[
            "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
        ])?;
        mr.ip(&["link", "set", "mip0", "up"])?;
        mr.ip(&["link", "set", "mip0p", "up"])?;

        // The router: forwarding, the CN link, the home link, one bridge per access network
        // (with a spare port so the bridge keeps its carrier, and radvd, when the MR leaves).
        r.sysctls(&[
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv4.ip_forward", "1"),
        ])?;
        let addr = |ns: &Ns, a: &str, dev: &str| -> Result<()> {
            if a.contains(':') {
                ns.ip(&["addr", "add", a, "dev", dev, "nodad"]).map(|_| ())
            } else {
                ns.ip(&["addr", "add", a, "dev", dev]).map(|_| ())
            }
        };
        addr(r, "2001:db8:c::1/64", "cn")?;
        addr(r, "198.51.100.97/27", "cn")?;
        // The home link: a bridge too, so that the MR's egress ports can join it; radvd
        // advertises the home prefix there (the MR at home autoconfigures an address in it,
        // babymdd's sign of being home, and takes r as its IPv6 default router).
        r.ip(&[
            "link",
            "add",
            "home",
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        r.ip(&["link", "set", "home-ha", "master", "home"])?;
        r.ip(&["link", "set", "home-ha", "up"])?;
        r.ip(&["link", "set", "home", "up"])?;
        addr(r, "2001:db8:1::fe/64", "home")?;
        addr(r, "203.0.113.62/26", "home")?;
        let mut radvd = String::from("# radvd on the access networks (generated by nemo-lab)\n");
        for acc in Access::ALL.into_iter().chain([Access::Home]) {
            let br = acc.bridge();
            if acc != Access::Home {
                Self::access_bridge(r, br)?;
            }
            for a in acc.router_addrs() {
                addr(r, a, br)?;
            }
            radvd.push_str(&format!(
                "interface {br} {{\n\tAdvSendAdvert on;\n{RA_FAST}\tprefix {} {{\n\t\tAdvOnLink on;\n\t\tAdvAutonomous on;\n\t}};\n}};\n",
                acc.radvd_prefix()
            ));
        }
        for p in ["mr-eth0", "mr-eth1"] {
            r.ip(&["link", "set", p, "down"])?;
        }
        if self.opts.link.is_some() {
            // mr-ethN <-> link emulator <-> emuNa ~ emuNb (the bridge port). Frames the
            // emulator forwards must fit the MTU: no GSO on the MR-facing ends.
            for i in 0..2 {
                let (a, b) = (format!("emu{i}a"), format!("emu{i}b"));
                r.ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])?;
                r.ip(&["link", "set", &a, "up"])?;
                r.sysctls(&[(&format!("net.ipv6.conf.{a}.disable_ipv6") as &str, "1")])?;
            }
            r.ip(&["link", "set", "emu0b", "master", Access::V6.bridge()])?;
            r.ip(&["link", "set", "emu1b", "master", Access::Dual.bridge()])?;
            r.ip(&["link", "set", "emu0b", "up"])?;
            r.ip(&["link", "set", "emu1b", "up"])?;
            for p in ["mr-eth0", "mr-eth1"] {
                r.sysctls(&[(&format!("net.ipv6.conf.{p}.disable_ipv6") as &str, "1")])?;
            }
        } else {
            r.ip(&["link", "set", "mr-eth0", "master", Access::V6.bridge()])?;
            r.ip(&["link", "set", "mr-eth1", "master", Access::Dual.bridge()])?;
        }
        self.attached = [Some(Access::V6), Some(Access::Dual)];
        // Routes to the mobile network prefixes go to the home agent (an ISP's static route;
        // BIRD/FRR could take had's protocol-110 routes instead).
        r.ip(&["-6", "route", "add", MNP6, "via", HA6])?;
        r.ip(&["route", "add", MNP4, "via", HA4])?;

        // CN.
        addr(cn, &format!("{CN6}/64"), "eth0")?;
        addr(cn, &format!("{CN4}/27"), "eth0")?;
        cn.ip(&["-6", "route", "add", "default", "via", "2001:db8:c::1"])?;
        cn.ip(&["route", "add", "default", "via", "198.51.100.97"])?;

        // HA: the home link; had turns on forwarding and proxy ND itself. A redundancy
        // member holds only its own addresses: the home agent's are the active member's
        // to take ([`Lab::wire_redundancy`]).
        if self.opts.ha_members == 0 {
            addr(ha, &format!("{HA6}/64"), "eth0")?;
            addr(ha, &format!("{HA4}/26"), "eth0")?;
            ha.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::fe"])?;
            ha.ip(&["route", "add", "default", "via", "203.0.113.62"])?;
            ha.sysctls(&[
                ("net.ipv6.conf.all.forwarding", "1"),
                ("net.ipv4.ip_forward", "1"),
            ])?;
        }

        // MR: a router that takes RAs on its egress links (accept_ra=2, docs/notes.md §3), no
        // DAD, and ignores routes of links without carrier (so a vertical handover leaves
        // through the other link at once).
        mr.sysctls(&[
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.ignore_routes_with_linkdown", "1"),
            ("net.ipv4.conf.all.ignore_routes_with_linkdown", "1"),
            ("net.ipv6.conf.eth0.accept_ra", "2"),
            ("net.ipv6.conf.eth1.accept_ra", "2"),
            ("net.ipv6.conf.eth0.accept_dad", "0"),
            ("net.ipv6.conf.eth1.accept_dad", "0"),
            ("net.ipv6.conf.eth0.ignore_routes_with_linkdown", "1"),
            ("net.ipv6.conf.eth1.ignore_routes_with_linkdown", "1"),
            ("net.ipv4.conf.eth0.ignore_routes_with_linkdown", "1"),
            ("net.ipv4.conf.eth1.ignore_routes_with_linkdown", "1"),
        ])?;
        addr(mr, &format!("{HOA}/128"), "mip0")?;
        // The dual-stack network's IPv4 address (static: DHCP arrives with issue 7).
        addr(mr, "198.51.100.130/26", "eth1")?;
        mr.ip(&[
            "route",
            "add",
            "default",
            "via",
            "198.51.100.129",
            "dev",
            "eth1",
        ])?;
        mr.ip(&[
            "link",
            "add",
            "lan0",
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        mr.ip(&["link", "set", "lan-mnn", "master", "lan0"])?;
        mr.ip(&["link", "set", "lan-mnn4", "master", "lan0"])?;
        mr.ip(&["link", "set", "lan0", "up"])?;
        addr(mr, "2001:db8:100:1::1/64", "lan0")?;
        addr(mr, "192.0.2.17/28", "lan0")?;

        // The IPv4-only access network behind a NAT (for DSMIPv6, issue 7): `nat` routes
        // between its `wan` (198.51.100.66/27 towards r) and the bridge acc-n
        // (192.0.2.129/26, "private"), masquerades with random ports, and serves DHCP.
        let nat = &self.nat;
        veth(nat, "wan", r, "nat")?;
        addr(r, "198.51.100.65/27", "nat")?;
        addr(nat, "198.51.100.66/27", "wan")?;
        nat.ip(&["route", "add", "default", "via", "198.51.100.65"])?;
        nat.sysctls(&[
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.disable_ipv6", "1"),
        ])?;
        nat.ip(&[
            "link",
            "add",
            "acc-n",
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
        ])?;
        nat.ip(&[
            "link", "add", "acc-n-k", "type", "veth", "peer", "name", "acc-n-kp",
        ])?;
        nat.ip(&["link", "set", "acc-n-k", "master", "acc-n"])?;
        for dev in ["acc-n-k", "acc-n-kp", "acc-n"] {
            nat.ip(&["link", "set", dev, "up"])?;
        }
        addr(nat, "192.0.2.129/26", "acc-n")?;
        let nft = self.opts.work.join("nat.nft");
        write(
            &nft,
            "table ip nemo-lab-nat {\n\tchain post {\n\t\ttype nat hook postrouting priority 100;\n\t\toifname \"wan\" masquerade random\n\t}\n}\n",
        )?;
        nat.exec("nft", &["-f", &nft.display().to_string()])?;
        // BCP 38 at the access routers (issue 16), as real ISPs filter.
        let filters = self.opts.work.join("bcp38.nft");
        write(&filters, &bcp38())?;
        r.exec("nft", &["-f", &filters.display().to_string()])?;

        // The mobile network's hosts.
        addr(mnn, &format!("{MNN6}/64"), "eth0")?;
        addr(mnn, &format!("{MNN4_OF_MNN}/28"), "eth0")?;
        mnn.ip(&["-6", "route", "add", "default", "via", "2001:db8:100:1::1"])?;
        mnn.ip(&["route", "add", "default", "via", "192.0.2.17"])?;
        addr(mnn4, &format!("{MNN4}/28"), "eth0")?;
        mnn4.ip(&["route", "add", "default", "via", "192.0.2.17"])?;
        mnn4.sysctls(&[("net.ipv6.conf.all.disable_ipv6", "1")])?;

        // Files: radvd, daemons' configs from the etc/ samples, one bus per node.
        let work = self.opts.work.clone();
        for node in ["ha", "mr", "cn"] {
            std::fs::create_dir_all(work.join(format!("bus-{node}")))?;
        }
        write(&work.join("radvd.conf"), &radvd)?;
        let auth = work.join("auth-database");
        std::fs::copy(self.opts.etc.join("auth-database"), &auth)?;
        let table = work.join("prefixtable.cf");
        std::fs::copy(self.opts.etc.join("prefixtable.cf"), &table)?;
        let journal = work.join("had.journal");
        let had = sample(
            &self.opts.etc,
            "had.conf",
            &[
                ("/etc/nemo/auth-database", &auth.display().to_string()),
                ("/etc/nemo/prefixtable.cf", &table.display().to_string()),
                ("/var/lib/nemo/had.journal", &journal.display().to_string()),
            ],
        )?;
        write(&work.join("had.conf"), &had)?;
        let egress = if self.opts.mcoa {
            // BIDs 1 and 2: the interfaces' positions in egress-interface. The voice flow
            // through both, a copy through each (RFC 6089 flow bindings in the BU: the
            // router tells the home agent): to the mobile network's port, and (the same
            // flow seen from the home agent) from the correspondent's.
            format!(
                "egress-interface eth0 eth1;\n\tmultiple-care-of-addresses yes;\n\
                 \t# nemo-lab multipath: the voice flows through both uplinks.\n\
                 \tflow-binding 1 {{ priority 10; via eth0 eth1; protocol udp; local-port {v}; family inet6; }};\n\
                 \tflow-binding 2 {{ priority 20; via eth0 eth1; protocol udp; port {v}; family inet6; }}",
                v = crate::multipath::VOICE_PORT
            )
        } else {
            "egress-interface eth0 eth1".to_string()
        };
        let mrd = sample(
            &self.opts.etc,
            "mrd.conf",
            &[
                ("/etc/nemo/auth-database", &auth.display().to_string()),
                ("egress-interface wlan0 eth1", &egress),
            ],
        )?;
        write(&work.join("mrd.conf"), &mrd)?;
        if self.opts.mcoa {
            write(
                &work.join("nemonetd.conf"),
                "# nemo-lab multipath: which flows go through both uplinks is the mobile router's\n\
                 # word (flow-binding in mrd.conf), sent to the home agent in its BUs (RFC 6089).\n",
            )?;
        }
        Ok(())
    }

    pub(crate) fn start(
        &mut self,
        ns: &Ns,
        name: &str,
        program: &Path,
        args: &[&str],
        ready: &str,
    ) -> Result<()> {
        let log = self.opts.work.join(format!("{name}.log"));
        let child = ns.spawn(program, args, &log)?;
        let mut p = Proc {
            name: name.to_string(),
            child,
            log,
        };
        if !ready.is_empty() {
            let ok = wait_until(Duration::from_secs(20), || {
                p.log_text().contains(ready) || !p.alive()
            })?;
            if !ok || !p.alive() {
                let text = p.log_text();
                self.nss.procs.push(p);
                return err(format!(
                    "{name} did not start (no {ready:?} in its log):\n{text}"
                ));
            }
        }
        self.nss.procs.push(p);
        Ok(())
    }

    /// radvd on the router, a `mipsock tap --json` on the MR's bus (event timestamps), then
    /// the daemons through etc/rc.d (SHISA's command lines): `nemo_ha` starts `had` and
    /// `nemonetd -h`, `nemo_mr` starts `nemonetd -m`, `mrd` and `babymdd`; each node its
    /// own mipsock bus, configs from the etc/ samples.
    pub fn start_daemons(&mut self) -> Result<()> {
        let w = self.opts.work.clone();
        let s = |p: PathBuf| p.display().to_string();
        let (r, ha, mr) = (self.r.clone(), self.ha.clone(), self.mr.clone());
        let radvd_conf = s(w.join("radvd.conf"));
        let radvd_pid = s(w.join("radvd.pid"));
        self.start(
            &r,
            "radvd",
            Path::new("radvd"),
            &["-n", "-m", "stderr", "-C", &radvd_conf, "-p", &radvd_pid],
            "",
        )?;
        let udhcpd = w.join("udhcpd.conf");
        write(
            &udhcpd,
            &format!(
                "# DHCP on the IPv4-only access network behind the NAT (generated by nemo-lab)\ninterface acc-n\nstart 192.0.2.150\nend 192.0.2.190\nlease_file {}\npidfile {}\noption subnet 255.255.255.192\noption router 192.0.2.129\noption lease 600\n",
                s(w.join("udhcpd.leases")),
                s(w.join("udhcpd.pid"))
            ),
        )?;
        std::fs::write(w.join("udhcpd.leases"), b"")?;
        let nat = self.nat.clone();
        self.start(
            &nat,
            "udhcpd",
            Path::new("busybox"),
            &["udhcpd", "-f", "-a", "0", &s(udhcpd)],
            "",
        )?;
        if let Some(profile) = self.opts.link.clone() {
            for i in 0..2 {
                self.set_link(i, &profile)?;
                let control = s(self.link_control(i));
                let (a, b, seed) = (format!("mr-eth{i}"), format!("emu{i}a"), i.to_string());
                self.helper(
                    &r,
                    &format!("link-emu-eth{i}"),
                    &[
                        "link-emu",
                        "--a",
                        &a,
                        "--b",
                        &b,
                        "--control",
                        &control,
                        "--seed",
                        &seed,
                    ],
                )?;
            }
        }
        let mr_bus = s(self.bus("mr"));
        self.start(
            &mr,
            "mipsock-tap-mr",
            &self.bin("mipsock"),
            &["-b", &mr_bus, "tap", "--json"],
            "",
        )?;
        let bin_dir = s(self.opts.bin_dir.clone());
        let conf = s(w.clone());
        let common = |node: &str| -> Vec<(String, String)> {
            vec![
                ("nemo_defaults".into(), "/dev/null".into()),
                ("nemo_bindir".into(), bin_dir.clone()),
                ("nemo_confdir".into(), conf.clone()),
                ("nemo_bus".into(), s(w.join(format!("bus-{node}")))),
                ("nemo_rundir".into(), s(w.join(node))),
                ("nemo_logdir".into(), s(w.join(node))),
            ]
        };
        let nemonetd_flags = if self.opts.mcoa {
            format!("-f -d -c {}", s(w.join("nemonetd.conf")))
        } else {
            "-f -d".into()
        };
        if self.opts.ha_members > 0 {
            self.start_redundancy(&nemonetd_flags)?;
        } else {
            let mut env = common("ha");
            env.push(("ha_ifname".into(), "eth0".into()));
            env.push(("had_flags".into(), "-f -d".into()));
            env.push(("nemonetd_flags".into(), nemonetd_flags.clone()));
            self.rc(&ha, "nemo_ha", &env)?;
            self.wait_log("ha", "had", "had ready")?;
            self.wait_log("ha", "nemonetd", "ready")?;
        }
        let mut env = common("mr");
        env.push(("mip_ifname".into(), "mip0".into()));
        env.push(("mr_egress_ifname".into(), "eth0".into()));
        env.push(("mrd_flags".into(), "-f -d".into()));
        env.push((
            "babymdd_flags".into(),
            if self.opts.udhcpc { "-d" } else { "-d --dhcp" }.into(),
        ));
        env.push(("nemonetd_flags".into(), nemonetd_flags));
        self.rc(&mr, "nemo_mr", &env)?;
        self.wait_log("mr", "nemonetd", "ready")?;
        self.wait_log("mr", "mrd", "mrd ready")?;
        Ok(())
    }

    /// A daemon's log (the rc.d scripts write `<node>/<daemon>.log`).
    pub fn log_path(&self, node: &str, daemon: &str) -> PathBuf {
        self.opts.work.join(node).join(format!("{daemon}.log"))
    }

    pub(crate) fn wait_log(&self, node: &str, daemon: &str, ready: &str) -> Result<()> {
        let path = self.log_path(node, daemon);
        let text = || std::fs::read_to_string(&path).unwrap_or_default();
        if !wait_until(Duration::from_secs(20), || text().contains(ready))? {
            return err(format!(
                "{daemon} on {node} did not start (no {ready:?} in {}):\n{}",
                path.display(),
                text()
            ));
        }
        Ok(())
    }

    /// Runs an rc.d script of etc/ (`nemo_ha`, `nemo_mr`) with `start` inside a namespace,
    /// the settings in its environment (as /etc/default/nemo would give them); its `stop`
    /// runs at teardown.
    pub(crate) fn rc(&mut self, ns: &Ns, script: &str, env: &[(String, String)]) -> Result<()> {
        std::fs::create_dir_all(self.opts.work.join(&ns.node))?;
        let mut stop = vec!["ip".to_string()];
        stop.extend(self.rc_command(ns, script, env));
        stop.push("stop".into());
        self.nss.stop_cmds.push(stop);
        self.rc_runs
            .push((script.to_string(), ns.clone(), env.to_vec()));
        self.rc_run(ns, script, env, "start")
    }

    /// `ip netns exec NS env SETTINGS... sh SCRIPT`.
    fn rc_command(&self, ns: &Ns, script: &str, env: &[(String, String)]) -> Vec<String> {
        let path = self.opts.etc.join("rc.d").join(script);
        let mut cmd = vec![
            "netns".to_string(),
            "exec".into(),
            ns.name.clone(),
            "env".into(),
        ];
        cmd.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.extend(["sh".into(), path.display().to_string()]);
        cmd
    }

    fn rc_run(&self, ns: &Ns, script: &str, env: &[(String, String)], verb: &str) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new("ip")
            .args(self.rc_command(ns, script, env))
            .arg(verb)
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .output()?;
        if !out.status.success() {
            return err(format!(
                "{script} {verb}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if self.opts.verbose {
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                println!("     {script}: {l}");
            }
        }
        Ok(())
    }

    /// `SCRIPT start` again, as an operator (or a supervisor) does after a crash: it starts
    /// the daemons of that script that are not running.
    pub fn rc_start_again(&self, script: &str) -> Result<()> {
        let Some((_, ns, env)) = self.rc_runs.iter().find(|r| r.0 == script) else {
            return err(format!("{script} was never started"));
        };
        self.rc_run(ns, script, env, "start")
    }

    /// [`Lab::rc_start_again`] on one node (each home agent member runs its own
    /// `nemo_ha`).
    pub fn rc_start_again_on(&self, node: &str, script: &str) -> Result<()> {
        let Some((_, ns, env)) = self
            .rc_runs
            .iter()
            .find(|r| r.0 == script && r.1.node == node)
        else {
            return err(format!("{script} was never started on {node}"));
        };
        self.rc_run(ns, script, env, "start")
    }

    /// The pid of a daemon started by an rc.d script (its pid file).
    pub fn daemon_pid(&self, node: &str, daemon: &str) -> Option<i32> {
        std::fs::read_to_string(self.opts.work.join(node).join(format!("{daemon}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Starts a helper subcommand of this program inside a namespace.
    pub fn helper(&mut self, ns: &Ns, name: &str, args: &[&str]) -> Result<()> {
        let exe = self.opts.self_exe.clone();
        self.start(ns, name, &exe, args, "")
    }

    /// The process called `name`.
    pub fn proc(&mut self, name: &str) -> Option<&mut Proc> {
        self.nss.procs.iter_mut().find(|p| p.name == name)
    }

    /// Waits for a process to exit by itself; its log.
    pub fn wait_proc(&mut self, name: &str, timeout: Duration) -> Result<String> {
        let Some(p) = self.proc(name) else {
            return err(format!("no process {name}"));
        };
        let ok = wait_until(timeout, || !p.alive())?;
        if !ok {
            p.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = p.child.wait();
        }
        Ok(p.log_text())
    }

    /// The port of egress link `i` that sits in an access network's bridge (and moves
    /// between them): the MR-facing veth end, or the emulator's far side.
    fn port(&self, i: usize) -> &'static str {
        if self.opts.link.is_some() {
            ["emu0b", "emu1b"][i]
        } else {
            ["mr-eth0", "mr-eth1"][i]
        }
    }

    /// The MR-facing end of egress link `i` in r: its carrier is the MR's.
    fn carrier_port(i: usize) -> &'static str {
        ["mr-eth0", "mr-eth1"][i]
    }

    /// The control file of egress link `i`'s emulator (a profile name).
    pub fn link_control(&self, i: usize) -> PathBuf {
        self.opts.work.join(format!("link-eth{i}.profile"))
    }

    /// Sets egress link `i`'s profile ([`crate::linkemu::Profile::NAMES`]); the emulator
    /// follows within 100 ms. An error without emulated links.
    pub fn set_link(&self, i: usize, profile: &str) -> Result<()> {
        if self.opts.link.is_none() {
            return err("the lab runs without link emulation (start it with --link PROFILE)");
        }
        if crate::linkemu::Profile::named(profile).is_none() {
            return err(format!(
                "unknown link profile {profile:?}; known: {}",
                crate::linkemu::Profile::NAMES.join(", ")
            ));
        }
        write(&self.link_control(i), &format!("{profile}\n"))
    }

    /// The namespace holding the far end of egress link `i`.
    fn port_ns(&self, i: usize) -> Ns {
        if self.attached[i] == Some(Access::Nat) {
            self.nat.clone()
        } else {
            self.r.clone()
        }
    }

    /// Plugs (carrier on) or unplugs (carrier off) the MR's egress link `i` (0: eth0).
    pub fn plug(&mut self, i: usize, up: bool) -> Result<()> {
        // The carrier the MR sees: the MR-facing end (in r, or in the NAT router's
        // namespace when that end itself moved there).
        let ns = if self.opts.link.is_some() {
            self.r.clone()
        } else {
            self.port_ns(i)
        };
        ns.ip(&[
            "link",
            "set",
            Self::carrier_port(i),
            if up { "up" } else { "down" },
        ])?;
        self.plugged[i] = up;
        Ok(())
    }

    /// Moves the MR's egress link `i` to another access network the way a WLAN interface
    /// re-associates: the MR's interface goes down (addresses and routes flushed; the DHCP
    /// client of the NAT network releases its lease), its port moves to the other bridge
    /// (into the NAT router's namespace for the NAT network), and the interface comes up
    /// again (RS, RA, SLAAC; or DHCP, with busybox udhcpc and the lab's own hook).
    pub fn move_link(&mut self, i: usize, to: Access) -> Result<()> {
        let ifname = ["eth0", "eth1"][i];
        let port = self.port(i);
        self.mr.ip(&["link", "set", ifname, "down"])?;
        if self.attached[i] == Some(Access::Nat) {
            let name = format!("udhcpc-{ifname}");
            if let Some(p) = self.proc(&name) {
                p.signal(nix::sys::signal::Signal::SIGKILL);
                let _ = p.child.wait();
            }
            self.nss.procs.retain(|p| p.name != name);
            self.mr.ip(&["-4", "addr", "flush", "dev", ifname])?;
            self.nat.ip(&["link", "set", port, "nomaster"])?;
            self.nat.ip(&["link", "set", port, "netns", &self.r.name])?;
        } else {
            self.r.ip(&["link", "set", port, "nomaster"])?;
        }
        if to == Access::Nat {
            // Network B's static IPv4 configuration does not belong on the new link.
            self.mr.ip(&["-4", "addr", "flush", "dev", ifname])?;
            self.r.ip(&["link", "set", port, "netns", &self.nat.name])?;
            self.nat.ip(&["link", "set", port, "master", "acc-n"])?;
            self.nat.ip(&["link", "set", port, "up"])?;
        } else {
            self.r.ip(&["link", "set", port, "master", to.bridge()])?;
            self.r.ip(&["link", "set", port, "up"])?;
        }
        self.mr.ip(&["link", "set", ifname, "up"])?;
        self.attached[i] = Some(to);
        self.plugged[i] = true;
        if to == Access::Nat && self.opts.udhcpc {
            self.dhcp_client(ifname)?;
        }
        Ok(())
    }

    fn dhcp_client(&mut self, ifname: &str) -> Result<()> {
        let hook = self.opts.work.join("udhcpc.hook");
        write(
            &hook,
            "#!/bin/sh\n# udhcpc hook of nemo-lab: default route, then address; nothing else (not resolv.conf).\n# The route goes first (onlink): babymdd takes an address as a care-of address the moment it\n# appears, and a BU sent before the default route exists is lost (see the README).\ncase \"$1\" in\ndeconfig) ip -4 addr flush dev \"$interface\" ;;\nbound|renew)\n\tip -4 addr flush dev \"$interface\"\n\tfor r in $router; do ip route replace default via \"$r\" dev \"$interface\" onlink; break; done\n\tip addr add \"$ip/$mask\" dev \"$interface\" ;;\nesac\nexit 0\n",
        )?;
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let mr = self.mr.clone();
        let h = hook.display().to_string();
        self.start(
            &mr,
            &format!("udhcpc-{ifname}"),
            Path::new("busybox"),
            &["udhcpc", "-f", "-i", ifname, "-s", &h],
            "",
        )
    }

    /// Moves the MR's eth1 onto the IPv4-only network behind the NAT ([`Lab::move_link`]);
    /// babymdd's DHCP client (or udhcpc) configures it.
    pub fn move_eth1_to_nat(&mut self) -> Result<()> {
        self.move_link(1, Access::Nat)
    }

    /// Where the MR is now (its preferred plugged link).
    pub fn current(&self) -> Option<Access> {
        (0..2)
            .find(|&i| self.plugged[i])
            .and_then(|i| self.attached[i])
    }
}

/// The second home agent on the home link (issue 14).
pub const HA2_6: &str = "2001:db8:1::2";
/// The mobile host's home address (etc/mnd.conf, SA 1001 of etc/auth-database).
pub const MH_HOA: &str = "2001:db8:1::200";

/// radvd on a home agent (RFC 6275 §7.1, §7.2, §7.4; RFC 3963 §4.1): H, the Home Agent
/// Information option with NEMO's R, the home agent's own address in a Prefix Information
/// option with R; not a default router (the home link's is r).
fn home_agent_radvd(own: &str, preference: i16) -> String {
    format!(
        "# radvd on a home agent (generated by nemo-lab)\ninterface eth0 {{\n\tAdvSendAdvert on;\n\tMinRtrAdvInterval 0.5;\n\tMaxRtrAdvInterval 1.5;\n\tAdvIntervalOpt on;\n\tAdvDefaultLifetime 0;\n\tAdvHomeAgentFlag on;\n\tAdvHomeAgentInfo on;\n\tAdvMobRtrSupportFlag on;\n\tHomeAgentPreference {preference};\n\tHomeAgentLifetime 600;\n\tprefix {own}/64 {{\n\t\tAdvOnLink on;\n\t\tAdvAutonomous on;\n\t\tAdvRouterAddr on;\n\t}};\n}};\n"
    )
}

impl Lab {
    /// Issue 14: both home agents announce themselves on the home link (radvd with the
    /// H bit), a second one (`ha2`, 2001:db8:1::2, preference 10, whose copy of the host's
    /// key is bound to another home address, so it refuses the host with 146) joins
    /// it through etc/rc.d/nemo_ha, and a mobile host (`mh`, SHISA's mnd, no home agent
    /// configured) starts on access network A2 through etc/rc.d/nemo_mr with
    /// `ipv6_mobile_nodetype=mobile_node`. Returns (ha2, mh).
    pub fn add_second_home_agent_and_mobile_host(&mut self) -> Result<(Ns, Ns)> {
        let w = self.opts.work.clone();
        let s = |p: PathBuf| p.display().to_string();
        let dad = [
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
        ];
        let ha2 = self.nss.add("ha2")?;
        let mh = self.nss.add("mh")?;
        ha2.sysctls(&dad)?;
        // The home link already carries RAs (the first home agent's radvd): ha2 is a router
        // and must not take them, or its own default route below collides with theirs.
        ha2.sysctls(&[
            ("net.ipv6.conf.all.accept_ra", "0"),
            ("net.ipv6.conf.default.accept_ra", "0"),
        ])?;
        mh.sysctls(&dad)?;
        let r = self.r.clone();
        veth(&ha2, "eth0", &r, "home-ha2")?;
        r.ip(&["link", "set", "home-ha2", "master", "home"])?;
        r.ip(&["link", "set", "home-ha2", "up"])?;
        ha2.ip(&[
            "addr",
            "add",
            &format!("{HA2_6}/64"),
            "dev",
            "eth0",
            "nodad",
        ])?;
        ha2.ip(&["addr", "add", "203.0.113.2/26", "dev", "eth0"])?;
        ha2.ip(&["-6", "route", "replace", "default", "via", "2001:db8:1::fe"])?;
        ha2.sysctls(&[
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv4.ip_forward", "1"),
        ])?;
        veth(&mh, "eth0", &r, "mh-eth0")?;
        r.ip(&["link", "set", "mh-eth0", "master", Access::V6b.bridge()])?;
        r.ip(&["link", "set", "mh-eth0", "up"])?;
        mh.ip(&[
            "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
        ])?;
        mh.ip(&["link", "set", "mip0", "up"])?;
        mh.ip(&["link", "set", "mip0p", "up"])?;
        mh.ip(&[
            "addr",
            "add",
            &format!("{MH_HOA}/128"),
            "dev",
            "mip0",
            "nodad",
        ])?;
        // RAs taken even with forwarding on (nemonetd -m turns it on).
        mh.sysctls(&[
            ("net.ipv6.conf.eth0.accept_ra", "2"),
            ("net.ipv6.conf.eth0.accept_dad", "0"),
        ])?;

        // Files: radvd for both home agents, ha2's had.conf, the host's mnd.conf.
        for (node, own, pref) in [("ha", HA6, 0), ("ha2", HA2_6, 10)] {
            write(
                &w.join(format!("radvd-{node}.conf")),
                &home_agent_radvd(own, pref),
            )?;
        }
        let table = w.join("prefixtable.cf");
        let ha2_conf = w.join("conf-ha2");
        std::fs::create_dir_all(&ha2_conf)?;
        let had2 = sample(
            &self.opts.etc,
            "had.conf",
            &[
                (
                    "home-agent-address 2001:db8:1::1;",
                    "home-agent-address 2001:db8:1::2;",
                ),
                (
                    "home-agent-ipv4-address 203.0.113.1;",
                    "home-agent-ipv4-address 203.0.113.2;",
                ),
                (
                    "/etc/nemo/auth-database",
                    &s(ha2_conf.join("auth-database")),
                ),
                ("/etc/nemo/prefixtable.cf", &s(table)),
                (
                    "/var/lib/nemo/had.journal",
                    &s(w.join("ha2").join("had.journal")),
                ),
                ("homelink-dad 1;", "homelink-dad 1;\n\tpreference 10;"),
            ],
        )?;
        write(&ha2_conf.join("had.conf"), &had2)?;
        // ha2 holds the host's key, but bound to another home address: its answer to the
        // host is an authenticated refusal (146, RFC 4285 §5), which the host acts on.
        let keys = sample(
            &self.opts.etc,
            "auth-database",
            &[("2001:db8:1::200   1001", "2001:db8:1::201   1001")],
        )?;
        write(&ha2_conf.join("auth-database"), &keys)?;
        let mh_conf = w.join("conf-mh");
        std::fs::create_dir_all(&mh_conf)?;
        let mnd = sample(
            &self.opts.etc,
            "mnd.conf",
            &[
                ("/etc/nemo/auth-database", &s(w.join("auth-database"))),
                ("egress-interface wlan0 eth1", "egress-interface eth0"),
                ("home-agent-address 2001:db8:1::1;", ""),
            ],
        )?;
        write(&mh_conf.join("mnd.conf"), &mnd)?;
        for node in ["ha2", "mh"] {
            std::fs::create_dir_all(w.join(format!("bus-{node}")))?;
        }

        for (ns, node) in [(self.ha.clone(), "ha"), (ha2.clone(), "ha2")] {
            let conf = s(w.join(format!("radvd-{node}.conf")));
            let pid = s(w.join(format!("radvd-{node}.pid")));
            self.start(
                &ns,
                &format!("radvd-{node}"),
                Path::new("radvd"),
                &["-n", "-m", "stderr", "-C", &conf, "-p", &pid],
                "",
            )?;
        }
        let bin_dir = s(self.opts.bin_dir.clone());
        let common = |node: &str, confdir: &Path| -> Vec<(String, String)> {
            vec![
                ("nemo_defaults".into(), "/dev/null".into()),
                ("nemo_bindir".into(), bin_dir.clone()),
                ("nemo_confdir".into(), s(confdir.to_path_buf())),
                ("nemo_bus".into(), s(w.join(format!("bus-{node}")))),
                ("nemo_rundir".into(), s(w.join(node))),
                ("nemo_logdir".into(), s(w.join(node))),
            ]
        };
        let mut env = common("ha2", &ha2_conf);
        env.push(("ha_ifname".into(), "eth0".into()));
        env.push(("had_flags".into(), "-f -d".into()));
        env.push(("nemonetd_flags".into(), "-f -d".into()));
        self.rc(&ha2, "nemo_ha", &env)?;
        self.wait_log("ha2", "had", "had ready")?;
        // Each home agent has heard the other's Router Advertisements before the host asks
        // either of them (RFC 6275 §10.5.1: a Reply lists what its home agents list holds).
        self.wait_log("ha2", "had", "home agent learnt from the home link")?;
        self.wait_log("ha", "had", "home agent learnt from the home link")?;
        let mut env = common("mh", &mh_conf);
        env.push(("ipv6_mobile_nodetype".into(), "mobile_node".into()));
        env.push(("mip_ifname".into(), "mip0".into()));
        env.push(("mr_egress_ifname".into(), "eth0".into()));
        env.push(("mnd_flags".into(), "-f -d".into()));
        env.push(("babymdd_flags".into(), "-d".into()));
        env.push(("nemonetd_flags".into(), "-f -d".into()));
        self.rc(&mh, "nemo_mr", &env)?;
        self.wait_log("mh", "nemonetd", "ready")?;
        self.wait_log("mh", "mnd", "mnd ready")?;
        Ok((ha2, mh))
    }
}

/// Home agent redundancy (issue 13): each member's own address on the home link (the
/// home agent address is the active member's, taken and released by had itself).
pub const MEMBER6: [&str; 3] = ["2001:db8:1::11", "2001:db8:1::12", "2001:db8:1::13"];
/// Each member's own IPv4 address on the home link.
pub const MEMBER4: [&str; 3] = ["203.0.113.11", "203.0.113.12", "203.0.113.13"];
/// The etcd cluster's hosts on the home link (client port 2379, peer port 2380).
pub const ETCD6: [&str; 3] = ["2001:db8:1::e1", "2001:db8:1::e2", "2001:db8:1::e3"];

impl Lab {
    /// The home agent member nodes' names: `ha`, `ha2`, `ha3`.
    pub fn member_node(i: usize) -> String {
        if i == 0 {
            "ha".into()
        } else {
            format!("ha{}", i + 1)
        }
    }

    /// The etcd cluster's client URLs (had's `binding-cache-etcd`).
    pub fn etcd_endpoints() -> Vec<String> {
        ETCD6.iter().map(|a| format!("http://[{a}]:2379")).collect()
    }

    /// The members beside `ha` (`ha2`, `ha3`) and three etcd hosts (`etcd1`..`etcd3`), each
    /// with a port in the home link's bridge. etcd sits on the home link, not on the
    /// router: the members reach it without crossing anything that a member's death
    /// touches, and one etcd host can die on its own.
    fn wire_redundancy(&mut self) -> Result<()> {
        let n = self.opts.ha_members;
        if !(2..=3).contains(&n) {
            return err(format!("{n} home agent members: 2 or 3"));
        }
        let dad = [
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
        ];
        let r = self.r.clone();
        let mut members = vec![self.ha.clone()];
        for i in 1..n {
            let node = Self::member_node(i);
            let ns = self.nss.add(&node)?;
            ns.sysctls(&dad)?;
            veth(&ns, "eth0", &r, &format!("home-{node}"))?;
            members.push(ns);
        }
        for (i, m) in members.iter().enumerate() {
            if i > 0 {
                r.ip(&["link", "set", &format!("home-{}", m.node), "master", "home"])?;
            }
            m.sysctls(&[
                ("net.ipv6.conf.all.forwarding", "1"),
                ("net.ipv4.ip_forward", "1"),
            ])?;
            self.member_network_up(m, i)?;
        }
        for (i, a) in ETCD6.iter().enumerate() {
            let node = format!("etcd{}", i + 1);
            let ns = self.nss.add(&node)?;
            ns.sysctls(&dad)?;
            let port = format!("home-{node}");
            veth(&ns, "eth0", &r, &port)?;
            r.ip(&["link", "set", &port, "master", "home"])?;
            ns.ip(&["addr", "add", &format!("{a}/64"), "dev", "eth0", "nodad"])?;
            self.etcd.push(ns);
        }
        self.members = members;
        Ok(())
    }

    /// Member `i`'s own addresses and default routes, as its boot configures them (again
    /// after its link was down: taking a link down flushes its IPv6 addresses and the
    /// routes through it).
    pub fn member_network_up(&self, m: &Ns, i: usize) -> Result<()> {
        m.ip(&["link", "set", "eth0", "up"])?;
        m.ip(&[
            "addr",
            "replace",
            &format!("{}/64", MEMBER6[i]),
            "dev",
            "eth0",
            "nodad",
        ])?;
        m.ip(&[
            "addr",
            "replace",
            &format!("{}/26", MEMBER4[i]),
            "dev",
            "eth0",
        ])?;
        m.ip(&["-6", "route", "replace", "default", "via", "2001:db8:1::fe"])?;
        m.ip(&["route", "replace", "default", "via", "203.0.113.62"])?;
        Ok(())
    }

    /// had.conf of member `node`: the sample's home agent, redundancy on, its own journal,
    /// the cache in the lab's etcd cluster.
    fn member_had_conf(&self, node: &str) -> Result<PathBuf> {
        let w = &self.opts.work;
        let s = |p: PathBuf| p.display().to_string();
        let etcd: Vec<String> = Self::etcd_endpoints()
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect();
        let text = sample(
            &self.opts.etc,
            "had.conf",
            &[
                ("/etc/nemo/auth-database", &s(w.join("auth-database"))),
                ("/etc/nemo/prefixtable.cf", &s(w.join("prefixtable.cf"))),
                (
                    "/var/lib/nemo/had.journal",
                    &s(w.join(node).join("had.journal")),
                ),
                (
                    "\tmcoa 1;",
                    &format!(
                        "\tmcoa 1;\n\n\t# Home agent redundancy (nemo-lab failover).\n\tredundancy yes;\n\tredundancy-member {node};\n\tbinding-cache-etcd {};",
                        etcd.join(" ")
                    ),
                ),
            ],
        )?;
        let dir = w.join(format!("conf-{node}"));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("had.conf");
        write(&path, &text)?;
        Ok(dir)
    }

    /// etcd on its three hosts (one cluster), then each member's `nemo_ha` (had, then
    /// nemonetd -h): `ha` first, alone, until it is the active one, so every run starts
    /// from the same place; the others then join as standbys.
    fn start_redundancy(&mut self, nemonetd_flags: &str) -> Result<()> {
        let w = self.opts.work.clone();
        let cluster = ETCD6
            .iter()
            .enumerate()
            .map(|(i, a)| format!("etcd{}=http://[{a}]:2380", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        for (i, ns) in self.etcd.clone().iter().enumerate() {
            let name = format!("etcd{}", i + 1);
            let client = format!("http://[{}]:2379", ETCD6[i]);
            let peer = format!("http://[{}]:2380", ETCD6[i]);
            let data = w.join(format!("{name}.data")).display().to_string();
            // Not waited for one by one: a member serves only once a quorum is up.
            self.start(
                ns,
                &name,
                Path::new("etcd"),
                &[
                    "--name",
                    &name,
                    "--data-dir",
                    &data,
                    "--listen-client-urls",
                    &client,
                    "--advertise-client-urls",
                    &client,
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                    "--initial-cluster",
                    &cluster,
                    "--initial-cluster-token",
                    "nemo-lab",
                ],
                "",
            )?;
        }
        for i in 0..ETCD6.len() {
            let log = w.join(format!("etcd{}.log", i + 1));
            let ready = wait_until(Duration::from_secs(30), || {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("ready to serve client requests")
            })?;
            if !ready {
                return err(format!(
                    "etcd{} did not serve (apt-get install etcd-server); its log: {}",
                    i + 1,
                    log.display()
                ));
            }
        }
        let bin_dir = self.opts.bin_dir.display().to_string();
        for (i, m) in self.members.clone().iter().enumerate() {
            let node = m.node.clone();
            let conf = self.member_had_conf(&node)?;
            let s = |p: PathBuf| p.display().to_string();
            let env: Vec<(String, String)> = vec![
                ("nemo_defaults".into(), "/dev/null".into()),
                ("nemo_bindir".into(), bin_dir.clone()),
                ("nemo_confdir".into(), s(conf)),
                ("nemo_bus".into(), s(self.bus(&node))),
                ("nemo_rundir".into(), s(w.join(&node))),
                ("nemo_logdir".into(), s(w.join(&node))),
                ("ha_ifname".into(), "eth0".into()),
                ("had_flags".into(), "-f -d".into()),
                ("nemonetd_flags".into(), nemonetd_flags.into()),
            ];
            std::fs::create_dir_all(self.bus(&node))?;
            self.rc(m, "nemo_ha", &env)?;
            self.wait_log(&node, "had", "had ready")?;
            self.wait_log(&node, "nemonetd", "ready")?;
            if i == 0 {
                self.wait_log(&node, "had", "active home agent: took over")?;
            }
        }
        Ok(())
    }
}
