//! From SHISA's configuration (`conf::MrConfig`) and the command line to the core's
//! [`MrCoreConfig`].

use std::io::Read;
use std::net::Ipv6Addr;

use proto::seq::{Lifetime, SequenceNumber};
use tracing::info;

use super::ShellError;
use crate::core::{MobilitySa, MrCoreConfig, RegistrationMode};

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
            return Err(ShellError::NoHomeAgent(format!(
                "no home-agent-address in {} and no -a on the command line",
                cfg.file
            )));
        }
    };
    let mut core = MrCoreConfig::new(cfg.home_address, home_agent);
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
    core.security = cfg.authentication.as_ref().map(|sa| MobilitySa {
        spi: sa.spi,
        key: sa.key.clone(),
        nai: sa.identifier.clone(),
        // conf's SAs always use RFC 4285 timestamps (SHISA's auth-database has no
        // other replay protection).
        use_timestamps: true,
    });
    core.optimistic = cfg.optimistic_handover;
    core.initial_sequence = random_sequence();
    Ok(core)
}
