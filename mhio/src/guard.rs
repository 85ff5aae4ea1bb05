//! The nftables guard: keeps the kernel from answering Mobility Header traffic with ICMPv6
//! errors, because the daemon reads that traffic on AF_PACKET instead.
//!
//! Measured on this kernel (docs/notes.md §1, and `tests/netns.rs`): without
//! `IPV6_MIP6` the stack drops a packet with a Home Address option (Parameter Problem code
//! 2), a type 2 routing header (code 0), and a plain MH when no raw 135 socket is bound
//! (code 1, unrecognized Next Header). The guard drops all three in a `prerouting` chain at
//! priority `raw`, which runs after the AF_PACKET tap, so the daemon still gets them and
//! the kernel never sees them.
//!
//! Only packets to a local address are dropped (`fib daddr type local`): a mobile router or
//! home agent forwards other nodes' MH (nested mobility) untouched.
//!
//! The rules live in `table inet nemo-<daemon>`, owned by the daemon: installing replaces
//! any table left by a crashed previous run (`kill -9` skips `Drop`), and dropping the guard
//! deletes the table. The `nft` binary is driven through `nft -f -` (one atomic
//! transaction), which keeps this crate free of a netlink nftables encoder; it needs the
//! `nftables` package.
//!
//! A home agent also answers traffic that carries a Home Address option itself (RFC 6275
//! §9.3.1: processed for a live binding, Binding Error 1 without one), so its guard
//! ([`GuardScope::home_address_option`]) drops packets whose first header is Destination
//! Options with a HAO at octet 46, where every implementation we know puts it (the same
//! test as the receiver's filter, `crate::bpf::HAO_TYPE_OFFSET`). A HAO elsewhere still
//! draws the kernel's Parameter Problem; dropping every Destination Options header would
//! hide too much.

use std::io::Write;
use std::process::{Command, Stdio};

use tracing::{info, warn};

use crate::{Error, Result};

const NFT_MISSING: &str = "; install it: apt-get install nftables";
const NFT_FAILED: &str =
    "; needs root (CAP_NET_ADMIN) and a kernel with nf_tables, fib and exthdr support";

/// What a guard drops besides Mobility Header and type 2 routing header packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GuardScope {
    /// Packets to us with a Home Address option, whatever their upper layer (the home
    /// agent's; a mobile router leaves them to the kernel).
    pub home_address_option: bool,
    /// Neighbour Discovery in transit (the home agent's): a unicast solicitation for a
    /// defended home address would otherwise be forwarded into the binding's tunnel, where
    /// no node takes it (RFC 4861 §7.1.1: hop limit 255 only). The home agent answers it
    /// from its AF_PACKET receiver instead.
    pub forwarded_nd: bool,
}

/// The installed guard; the table is deleted when this is dropped.
#[derive(Debug)]
pub struct NftGuard {
    table: String,
    removed: bool,
}

impl NftGuard {
    /// Name of the table for `daemon` (e.g. "had" → `nemo-had`).
    pub fn table_name(daemon: &str) -> String {
        format!("nemo-{daemon}")
    }

    /// The ruleset [`NftGuard::install`] loads, as an `nft -f` script.
    pub fn script(daemon: &str) -> String {
        Self::script_with(daemon, GuardScope::default())
    }

    /// The ruleset [`NftGuard::install_with`] loads for `scope`.
    pub fn script_with(daemon: &str, scope: GuardScope) -> String {
        let t = Self::table_name(daemon);
        let hao = if scope.home_address_option {
            format!(
                "\t\tmeta nfproto ipv6 ip6 nexthdr 60 @nh,{},8 {} fib daddr type local counter drop comment \"HAO to us: answered from AF_PACKET\"\n",
                crate::bpf::HAO_TYPE_OFFSET * 8,
                crate::bpf::HAO_TYPE
            )
        } else {
            String::new()
        };
        let forward = if scope.forwarded_nd {
            "\tchain forward {\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tmeta nfproto ipv6 icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } counter drop comment \"ND never crosses a router\"\n\
             \t}\n"
        } else {
            ""
        };
        // "table" then "delete table" makes the delete succeed whether or not a stale table
        // exists; the whole script is one transaction.
        format!(
            "table inet {t}\n\
             delete table inet {t}\n\
             table inet {t} {{\n\
             \tchain prerouting {{\n\
             \t\ttype filter hook prerouting priority raw; policy accept;\n\
             \t\tmeta nfproto ipv6 meta l4proto 135 fib daddr type local counter drop comment \"MH to us: read on AF_PACKET\"\n\
             \t\tmeta nfproto ipv6 rt type 2 fib daddr type local counter drop comment \"RH2 to us: read on AF_PACKET\"\n\
             {hao}\
             \t}}\n\
             {forward}\
             }}\n"
        )
    }

    /// Installs (or re-installs) the guard table for `daemon`, e.g. "had" or "mrd".
    ///
    /// # Errors
    /// [`Error::Nft`] naming the step and how to fix it.
    pub fn install(daemon: &str) -> Result<Self> {
        Self::install_with(daemon, GuardScope::default())
    }

    /// Installs the guard of `daemon` with the rules of `scope` too.
    ///
    /// # Errors
    /// [`Error::Nft`] naming the step and how to fix it.
    pub fn install_with(daemon: &str, scope: GuardScope) -> Result<Self> {
        let table = Self::table_name(daemon);
        nft(
            &Self::script_with(daemon, scope),
            &format!("installing table inet {table}"),
        )?;
        info!(table = %table, "nftables guard installed");
        Ok(NftGuard {
            table,
            removed: false,
        })
    }

    /// The table this guard owns.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Deletes the table now, reporting failure (dropping does the same but can only log).
    ///
    /// # Errors
    /// [`Error::Nft`].
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        remove_table(&self.table)
    }

    /// Deletes the guard table of `daemon` if one exists (for cleanup tools); absent is
    /// success.
    ///
    /// # Errors
    /// [`Error::Nft`].
    pub fn remove_stale(daemon: &str) -> Result<()> {
        remove_table(&Self::table_name(daemon))
    }
}

impl Drop for NftGuard {
    fn drop(&mut self) {
        if !self.removed {
            match remove_table(&self.table) {
                Ok(()) => info!(table = %self.table, "nftables guard removed"),
                Err(e) => warn!(error = %e, "nftables guard not removed"),
            }
        }
    }
}

fn remove_table(table: &str) -> Result<()> {
    // Same idiom: the delete of an already-gone table is success.
    nft(
        &format!("table inet {table}\ndelete table inet {table}\n"),
        &format!("deleting table inet {table}"),
    )
}

/// Runs `nft -f -` with `script` on stdin.
fn nft(script: &str, what: &str) -> Result<()> {
    let err = |detail: String, hint| Error::Nft {
        what: what.to_owned(),
        detail,
        hint,
    };
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                NFT_MISSING
            } else {
                ""
            };
            err(format!("running nft: {e}"), hint)
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(|e| err(format!("writing to nft: {e}"), ""))?;
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for nft: {e}"), ""))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(err(
            format!(
                "{} ({})",
                String::from_utf8_lossy(&out.stderr).trim(),
                out.status
            ),
            NFT_FAILED,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_replaces_and_names_the_table() {
        let s = NftGuard::script("had");
        assert!(s.starts_with("table inet nemo-had\ndelete table inet nemo-had\n"));
        assert!(s.contains("priority raw"));
        assert!(s.contains("meta l4proto 135 fib daddr type local"));
        assert!(s.contains("rt type 2 fib daddr type local"));
        assert!(!s.contains("nexthdr 60"));
        let ha = NftGuard::script_with(
            "had",
            GuardScope {
                home_address_option: true,
                forwarded_nd: false,
            },
        );
        assert!(ha.contains("ip6 nexthdr 60 @nh,368,8 201 fib daddr type local"));
        assert!(ha.ends_with("\t}\n}\n"), "{ha}");
        assert!(!ha.contains("hook forward"));
        let ha = NftGuard::script_with(
            "had",
            GuardScope {
                home_address_option: true,
                forwarded_nd: true,
            },
        );
        assert!(ha.contains("hook forward priority filter"));
        assert!(ha.contains("nd-neighbor-solicit"));
        assert!(ha.ends_with("\t}\n}\n"), "{ha}");
    }
}
