//! From SHISA's configuration (`conf::MrConfig`) and the command line to the core's
//! [`MrCoreConfig`].

use std::io::Read;
use std::net::Ipv6Addr;

use proto::seq::{Lifetime, SequenceNumber};
use tracing::info;

use super::ShellError;
use crate::core::{MrCoreConfig, RegistrationMode};

/// Every IPv6 address of interface `ifname` (`getifaddrs(3)`).
pub fn interface_addresses(ifname: &str) -> Vec<Ipv6Addr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter(|a| a.interface_name == ifname)
        .filter_map(|a| Some(a.address?.as_sockaddr_in6()?.ip()))
        .collect()
}

/// A random first sequence number (RFC 6275 §11.7.1 lets a fresh MR start anywhere; a
/// 135 resynchronises it anyway).
pub fn random_sequence() -> SequenceNumber {
    let mut b = [0u8; 2];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b = ((t.subsec_nanos() ^ std::process::id()) as u16).to_be_bytes();
    }
    SequenceNumber(u16::from_be_bytes(b))
}

/// Maps the configuration onto the core's. `ha_arg` is `-a` (SHISA's home agent address
/// option); it wins over `home-agent-address`.
/// Whether the node is a mobile host: `mobile-node-mode mobile-host;`, or started as mnd
/// (SHISA's mobile host daemon). mnd with mobile network prefixes is a configuration
/// error: a mobile host registers its home address alone.
pub fn node_mode(mut cfg: conf::MrConfig, mnd: bool) -> Result<conf::MrConfig, ShellError> {
    if mnd && !cfg.mobile_host {
        if let Some(p) = cfg.all_prefixes().first() {
            return Err(ShellError::Config(conf::ConfError::File {
                file: cfg.file.clone(),
                message: format!(
                    "mnd is the mobile host daemon and registers its home address alone, but \
                     the configuration has the mobile network prefix {p}: run mrd for a mobile router"
                ),
            }));
        }
        cfg.mobile_host = true;
    }
    if cfg.mobile_host {
        info!(hoa = %cfg.home_address, "a mobile host (SHISA's mnd): the home address alone, no R flag");
    }
    Ok(cfg)
}

pub fn core_config(
    cfg: &conf::MrConfig,
    ha_arg: Option<Ipv6Addr>,
) -> Result<MrCoreConfig, ShellError> {
    let home_agent = match (ha_arg, cfg.home_agent_address) {
        (Some(a), Some(c)) if a != c => {
            info!(cli = %a, config = %c, "home agent address from -a overrides the configuration");
            a
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            // SHISA's mrd had no home agent key: it found one by DHAAD (RFC 6275 §11.4.1).
            info!(config = %cfg.file,
                "no home-agent-address and no -a: the home agent is found by dynamic home agent address discovery");
            Ipv6Addr::UNSPECIFIED
        }
    };
    let mut core = MrCoreConfig::new(cfg.home_address, home_agent);
    core.mobile_router = !cfg.mobile_host;
    core.home_agent_v4 = cfg.home_agent_ipv4_address;
    core.mnp_v6 = cfg.mobile_network_prefixes.clone();
    core.mnp_v4 = cfg.ipv4_mobile_network_prefixes.clone();
    core.mode = match cfg.registration_mode {
        conf::RegistrationMode::Explicit => RegistrationMode::Explicit,
        conf::RegistrationMode::Implicit => RegistrationMode::Implicit,
    };
    core.lifetime = Lifetime::from_units(cfg.home_registration_lifetime);
    core.send_ipv4_mnps = cfg.ipv4_mnp_support;
    core.legacy_ipv4_mnp_option = cfg.legacy_ipv4_mnp_option;
    core.security = cfg.authentication.as_ref().map(conf::SaEntry::to_sa);
    core.optimistic = cfg.optimistic_handover;
    core.force_udp = cfg.force_udp_encapsulation;
    core.nat_keepalive_interval = cfg
        .nat_keepalive_interval
        .map(|s| std::time::Duration::from_secs(u64::from(s)));
    core.multiple_coa = cfg.multiple_care_of_addresses;
    core.egress_interfaces = cfg.egress_interfaces.clone();
    // `via` names egress interfaces (conf checked it): each stands for its BID.
    core.flow_bindings = cfg
        .flow_bindings
        .iter()
        .map(|f| proto::model::FlowBinding {
            fid: f.fid,
            priority: f.priority,
            selector: f.selector,
            bids: cfg.flow_bids(f),
        })
        .collect();
    core.bid_priorities = cfg
        .binding_priorities
        .iter()
        .filter_map(|(ifname, p)| Some((cfg.binding_id(ifname)?, *p)))
        .collect();
    core.initial_sequence = random_sequence();
    Ok(core)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn sample(name: &str) -> String {
        let etc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc");
        std::fs::read_to_string(etc.join(name))
            .unwrap()
            .replace("/etc/nemo/", &format!("{}/", etc.display()))
    }

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn the_sample_maps_onto_the_core() {
        let (cfg, _) =
            conf::MrConfig::parse_str_for(&sample("mrd.conf"), "mrd.conf", Some("mip0")).unwrap();
        let core = core_config(&cfg, None).unwrap();
        assert_eq!(core.home_address, a("2001:db8:1::100"));
        assert_eq!(core.home_agent, a("2001:db8:1::1"));
        assert_eq!(core.home_agent_v4, Some("203.0.113.1".parse().unwrap()));
        assert_eq!(core.mnp_v6, ["2001:db8:100::/48".parse().unwrap()]);
        assert_eq!(core.mnp_v4, ["192.0.2.16/28".parse().unwrap()]);
        assert_eq!(core.mode, RegistrationMode::Explicit);
        // SHISA's unit is the BU's: 150 x 4 s.
        assert_eq!(core.lifetime, Lifetime::from_secs(600));
        assert!(core.send_ipv4_mnps);
        assert!(!core.legacy_ipv4_mnp_option);
        assert!(!core.optimistic);
        let sa = core.security.as_ref().expect("SA from the auth-database");
        assert_eq!(
            (sa.spi, sa.key.as_slice()),
            (1000, &b"nemo-sample-key1"[..])
        );
        assert!(sa.timestamps());
        assert!(!core.multiple_coa);
        assert_eq!(core.egress_interfaces, ["wlan0", "eth1"]);
        crate::MrCore::new(core).unwrap();
        // The sample's commented line, as written: binding identifiers by position.
        let text = sample("mrd.conf").replace(
            "# multiple-care-of-addresses yes;",
            "multiple-care-of-addresses yes;",
        );
        let (cfg, _) = conf::MrConfig::parse_str_for(&text, "mrd.conf", Some("mip0")).unwrap();
        let core = core_config(&cfg, None).unwrap();
        assert!(core.multiple_coa);
        assert_eq!(
            (core.binding_id("wlan0"), core.binding_id("eth1")),
            (Some(1), Some(2))
        );
        assert!(core.flow_bindings.is_empty());
        crate::MrCore::new(core).unwrap();
        // The sample's commented flow binding, as written: `via` becomes BIDs.
        let text = text.replace("# flow-binding", "flow-binding");
        let (cfg, _) = conf::MrConfig::parse_str_for(&text, "mrd.conf", Some("mip0")).unwrap();
        let core = core_config(&cfg, None).unwrap();
        let [sip, voice] = core.flow_bindings.as_slice() else {
            panic!("{:?}", core.flow_bindings)
        };
        assert_eq!(
            (sip.fid, sip.priority, sip.bids.as_slice()),
            (1, 10, &[2, 1][..])
        );
        assert_eq!(
            (voice.fid, voice.priority, voice.bids.as_slice()),
            (2, 20, &[1][..])
        );
        crate::MrCore::new(core).unwrap();
    }

    const NO_HA: &str = "interface mip0 {\n\
        \thome-address 2001:db8:1::100;\n\
        \tmobile-network-prefix 2001:db8:100::/48;\n\
        \tauthentication none;\n\
        };\n";

    #[test]
    fn the_home_agent_comes_from_dash_a_or_discovery_when_the_config_has_none() {
        let (cfg, _) = conf::MrConfig::parse_str_for(NO_HA, "mrd.conf", Some("mip0")).unwrap();
        let core = core_config(&cfg, None).unwrap();
        assert!(core.home_agent.is_unspecified(), "found by DHAAD");
        assert!(crate::MrCore::new(core).unwrap().discovers_home_agent());
        let core = core_config(&cfg, Some(a("2001:db8:1::2"))).unwrap();
        assert_eq!(core.home_agent, a("2001:db8:1::2"));
        assert_eq!(core.security, None);
    }

    #[test]
    fn dash_a_overrides_the_config() {
        let (cfg, _) =
            conf::MrConfig::parse_str_for(&sample("mrd.conf"), "mrd.conf", Some("mip0")).unwrap();
        let core = core_config(&cfg, Some(a("2001:db8:1::2"))).unwrap();
        assert_eq!(core.home_agent, a("2001:db8:1::2"));
    }
}
