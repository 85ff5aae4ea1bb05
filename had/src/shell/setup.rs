//! From SHISA's configuration (`conf::HaConfig`) and the home interface to the core's
//! [`HaCoreConfig`]: plain mapping, plus SHISA's rule that a missing home agent address or
//! home prefix list comes from the home interface's global addresses.

use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::Ipv6Net;
use tracing::{info, warn};

use super::ShellError;
use crate::config::{
    AuthPolicy, BrrConfig, HaCoreConfig, Ipv4MnpSupport, MobilitySa, PrefixMode, PrefixTableRow,
    ReplayProtection,
};

/// Binding Refresh Requests go out this long before a binding expires (RFC 6275 §10.3.1
/// leaves it to the HA; a BRR needs a round trip and the MR's BU another one).
pub const BRR_BEFORE_EXPIRY: Duration = Duration::from_secs(10);

/// The global (not link-local, not multicast) IPv6 addresses of `ifname`, with their
/// prefix lengths, from `getifaddrs(3)`.
pub fn interface_addresses(ifname: &str) -> Vec<Ipv6Net> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter(|a| a.interface_name == ifname)
        .filter_map(|a| {
            let ip = a.address?.as_sockaddr_in6()?.ip();
            let len = a
                .netmask
                .and_then(|m| m.as_sockaddr_in6().map(|m| m.ip()))
                .map_or(128, |m| u128::from(m).leading_ones() as u8);
            let global = !ip.is_loopback()
                && !ip.is_unspecified()
                && !ip.is_multicast()
                && !ip.is_unicast_link_local();
            global.then(|| Ipv6Net::new(ip, len).ok()).flatten()
        })
        .collect()
}

/// Every IPv6 address configured on this host (any interface).
pub fn local_addresses() -> Vec<Ipv6Addr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| Some(a.address?.as_sockaddr_in6()?.ip()))
        .collect()
}

/// Maps the configuration read for `homeif` (index `home_ifindex`) onto the core's.
/// `if_addrs` are the home interface's global addresses (used only when the configuration
/// leaves the home agent address or the home prefixes out).
pub fn core_config(
    cfg: &conf::HaConfig,
    homeif: &str,
    home_ifindex: u32,
    if_addrs: &[Ipv6Net],
) -> Result<HaCoreConfig, ShellError> {
    let home_prefixes: Vec<Ipv6Net> = if cfg.home_prefixes.is_empty() {
        let mut v: Vec<Ipv6Net> = if_addrs.iter().map(Ipv6Net::trunc).collect();
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err(ShellError::NoHomeAddress(format!(
                "no home-prefix in {} and {homeif} has no global IPv6 address to take one from",
                cfg.file
            )));
        }
        info!(ifname = homeif, prefixes = ?v, "home prefixes taken from the home interface");
        v
    } else {
        cfg.home_prefixes.clone()
    };
    let ha_address = match cfg.home_agent_address {
        Some(a) => a,
        None => {
            let a = if_addrs
                .iter()
                .map(|n| n.addr())
                .find(|a| home_prefixes.iter().any(|p| p.contains(a)))
                .ok_or_else(|| {
                    ShellError::NoHomeAddress(format!(
                        "no home-agent-address in {} and {homeif} has no address on a home prefix",
                        cfg.file
                    ))
                })?;
            info!(ifname = homeif, ha = %a, "home agent address taken from the home interface");
            a
        }
    };
    if !if_addrs.iter().any(|n| n.addr() == ha_address) {
        warn!(ha = %ha_address, ifname = homeif,
            "the home agent address is not configured on the home interface; BUs to it will not reach this host");
    }

    let mut core = HaCoreConfig::new(home_prefixes, ha_address);
    core.ha_address_v4 = cfg.home_agent_ipv4_address;
    core.home_ifindex = home_ifindex;
    core.max_lifetime = cfg.binding_lifetime_max;
    core.prefix_table = cfg
        .prefix_table
        .entries
        .iter()
        .map(|e| PrefixTableRow {
            hoa: e.home_address,
            prefix: e.prefix,
            mode: match e.mode {
                conf::RegistrationMode::Implicit => PrefixMode::Implicit,
                conf::RegistrationMode::Explicit => PrefixMode::Explicit,
            },
        })
        .collect();
    // SHISA's `ipv4-mnp-support 0`: behave like an HA without IPv4 support (no IPv4 Address
    // Acknowledgement), which tells the MR to carry on with IPv6 only (RFC 5555 §3.2.1).
    core.ipv4_mnp = if cfg.ipv4_mnp_support {
        Ipv4MnpSupport::Enabled
    } else {
        Ipv4MnpSupport::Unsupported
    };
    core.legacy_ipv4_mnp_hoas = cfg.legacy_ipv4_mnp_option.clone();
    core.auth = match &cfg.authentication {
        conf::HaAuthentication::None => AuthPolicy::Disabled,
        conf::HaAuthentication::Required(db) => AuthPolicy::Required(
            db.entries()
                .iter()
                .map(|sa| MobilitySa {
                    spi: sa.spi,
                    key: sa.key.clone(),
                    hoa: sa.home_address,
                    nai: sa.identifier.as_ref().map(|n| n.as_bytes().to_vec()),
                    replay: ReplayProtection::Timestamps {
                        window: sa.replay_window(),
                    },
                })
                .collect(),
        ),
    };
    core.brr = cfg.binding_refresh_request.then_some(BrrConfig {
        before_expiry: BRR_BEFORE_EXPIRY,
    });
    Ok(core)
}
