//! From SHISA's configuration (`conf::HaConfig`) and the home interface to the core's
//! [`HaCoreConfig`]: plain mapping, plus SHISA's rule that a missing home agent address or
//! home prefix list comes from the home interface's global addresses.

use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::Ipv6Net;
use tracing::{info, warn};

use super::ShellError;
use crate::config::{
    AuthPolicy, BrrConfig, HaCoreConfig, Ipv4MnpSupport, McoaConfig, PrefixMode, PrefixTableRow,
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
    // A redundant member holds the address only while active.
    if cfg.redundancy.is_none() && !if_addrs.iter().any(|n| n.addr() == ha_address) {
        warn!(ha = %ha_address, ifname = homeif,
            "the home agent address is not configured on the home interface; BUs to it will not reach this host");
    }

    let mut core = HaCoreConfig::new(home_prefixes, ha_address);
    core.ha_address_v4 = cfg.home_agent_ipv4_address;
    core.nat_keepalive_secs =
        u32::try_from(cfg.nat_keepalive_interval.as_secs()).unwrap_or(u32::MAX);
    core.home_ifindex = home_ifindex;
    core.max_lifetime = cfg.binding_lifetime_max;
    core.max_bindings = cfg.max_bindings as usize;
    core.accept_unlisted_home_addresses = cfg.accept_unlisted_home_addresses;
    // RFC 6275 §10.3.1: RetransTimer (1 s) x DupAddrDetectTransmits (1).
    core.proxy_dad = cfg.homelink_dad.then_some(Duration::from_secs(1));
    core.home_agent_preference = cfg.home_agent_preference;
    core.mcoa = McoaConfig {
        enabled: cfg.mcoa,
        bulk_registration: cfg.mcoa_bulk_registration,
        max_bindings_per_home_address: cfg.mcoa_max_bindings as usize,
        flow_bindings: cfg.flow_bindings,
        flow_bindings_max: cfg.flow_bindings_max as usize,
    };
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
        conf::HaAuthentication::Required(db) => {
            AuthPolicy::Required(db.entries().iter().map(conf::SaEntry::to_sa).collect())
        }
    };
    core.brr = cfg.binding_refresh_request.then_some(BrrConfig {
        before_expiry: BRR_BEFORE_EXPIRY,
    });
    Ok(core)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ipnet::IpNet;
    use proto::auth::ReplayProtection;

    use super::*;

    /// A sample from etc/, its installed paths pointing at etc/.
    fn sample(name: &str) -> String {
        let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc");
        std::fs::read_to_string(etc.join(name))
            .unwrap()
            .replace("/etc/nemo/", &format!("{}/", etc.display()))
    }

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    #[test]
    fn the_sample_maps_onto_the_core() {
        let (cfg, _) =
            conf::HaConfig::parse_str_for(&sample("had.conf"), "had.conf", Some("eth0")).unwrap();
        let core = core_config(&cfg, "eth0", 7, &[]).unwrap();
        assert_eq!(
            core.ha_address,
            "2001:db8:1::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(core.home_prefixes, [net("2001:db8:1::/64")]);
        assert_eq!(core.ha_address_v4, Some("203.0.113.1".parse().unwrap()));
        assert_eq!(core.home_ifindex, 7);
        assert_eq!(core.max_lifetime, Duration::from_secs(3600));
        assert_eq!(core.prefix_table.len(), cfg.prefix_table.entries.len());
        assert!(
            core.prefix_table
                .iter()
                .any(|r| r.hoa == "2001:db8:1::100".parse::<Ipv6Addr>().unwrap()
                    && r.prefix == "192.0.2.16/28".parse::<IpNet>().unwrap()
                    && r.mode == PrefixMode::Explicit)
        );
        assert!(
            core.prefix_table
                .iter()
                .any(|r| r.mode == PrefixMode::Implicit)
        );
        assert_eq!(core.ipv4_mnp, Ipv4MnpSupport::Enabled);
        assert_eq!(core.mcoa, McoaConfig::default());
        assert_eq!(core.brr, None);
        let AuthPolicy::Required(sas) = &core.auth else {
            panic!("authentication required in the sample")
        };
        assert_eq!(sas.len(), 3);
        let mr1 = sas.iter().find(|s| s.spi == 1000).unwrap();
        assert_eq!(mr1.hoa, Some("2001:db8:1::100".parse().unwrap()));
        assert_eq!(mr1.key, b"nemo-sample-key1");
        assert_eq!(
            mr1.replay,
            ReplayProtection::Timestamps {
                window: Duration::from_secs(7)
            }
        );
        let mr3 = sas.iter().find(|s| s.spi == 0x3ea).unwrap();
        assert_eq!(mr3.nai.as_deref(), Some(&b"mr3@example.org"[..]));
        crate::Ha::new(core).unwrap();
    }

    const BARE: &str = "interface eth0 {\n\
        \tauthentication none;\n\
        \tipv4-mnp-support 0;\n\
        \tbinding-refresh-request yes;\n\
        \tprefixtable { 2001:db8:1::100 2001:db8:100::/48 explicit; };\n\
        };\n";

    #[test]
    fn home_agent_address_and_prefixes_come_from_the_interface() {
        let (cfg, _) = conf::HaConfig::parse_str_for(BARE, "had.conf", Some("eth0")).unwrap();
        let if_addrs = [net("2001:db8:9::7/64"), net("2001:db8:1::1/64")];
        let core = core_config(&cfg, "eth0", 3, &if_addrs).unwrap();
        assert_eq!(
            core.home_prefixes,
            [net("2001:db8:1::/64"), net("2001:db8:9::/64")]
        );
        // The first address that lies on a home prefix; both do, in interface order.
        assert_eq!(
            core.ha_address,
            "2001:db8:9::7".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(core.auth, AuthPolicy::Disabled);
        assert_eq!(core.ipv4_mnp, Ipv4MnpSupport::Unsupported);
        assert_eq!(
            core.brr,
            Some(BrrConfig {
                before_expiry: BRR_BEFORE_EXPIRY
            })
        );
        crate::Ha::new(core).unwrap();
    }

    #[test]
    fn no_address_anywhere_is_a_configuration_error() {
        let (cfg, _) = conf::HaConfig::parse_str_for(BARE, "had.conf", Some("eth0")).unwrap();
        let e = core_config(&cfg, "eth0", 3, &[]).unwrap_err();
        assert!(matches!(e, ShellError::NoHomeAddress(_)), "{e}");
        assert!(e.to_string().contains("eth0"), "{e}");
        assert_eq!(e.exit_code(), std::process::ExitCode::from(78));
    }

    #[test]
    fn interface_addresses_of_loopback_are_not_global() {
        assert!(interface_addresses("lo").is_empty());
        assert!(interface_addresses("no-such-interface").is_empty());
    }
}
