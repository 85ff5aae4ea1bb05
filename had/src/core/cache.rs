//! A binding cache entry, kept small: the key (HoA) lives in the map, prefixes in boxed
//! slices (no spare capacity), the timer key is the only time stored twice.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{Ipv4Net, Ipv6Net};
use proto::model::CareOf;

use crate::record::PersistedBinding;

/// One binding cache entry (RFC 6275 §9.1 conceptual data, RFC 3963 §6.1 prefixes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bce {
    pub coa: CareOf,
    /// When the binding ends.
    pub expires: Instant,
    /// The deadline under which the entry sits in `Ha::timers`; never later than `due`.
    pub timer: Instant,
    /// The next real deadline: BRR time, else `expires`.
    pub due: Instant,
    pub mnp_v6: Box<[Ipv6Net]>,
    pub mnp_v4: Box<[Ipv4Net]>,
    pub last_timestamp: Option<u64>,
    pub spi: Option<u32>,
    pub hoa_v4: Option<Ipv4Addr>,
    pub lifetime_secs: u32,
    pub flags: u16,
    pub sequence: u16,
    pub nat_detected: bool,
    /// The IPv4 CoA option of the last BU (DSMIPv6): the CoA of the RFC 4285 MAC, which
    /// differs from `coa` behind a NAT.
    pub coa_v4_option: Option<Ipv4Addr>,
    pub rh2: bool,
    pub brr_sent: bool,
}

impl Bce {
    pub fn persisted(&self, hoa: Ipv6Addr, now: Instant, wall: Duration) -> PersistedBinding {
        let remaining = self.expires.saturating_duration_since(now);
        PersistedBinding {
            hoa,
            coa: self.coa,
            flags: self.flags,
            sequence: self.sequence,
            lifetime_secs: self.lifetime_secs,
            expires_unix_ms: (wall + remaining).as_millis() as u64,
            mnp_v6: self.mnp_v6.to_vec(),
            mnp_v4: self.mnp_v4.to_vec(),
            hoa_v4: self.hoa_v4,
            spi: self.spi,
            last_timestamp: self.last_timestamp,
            nat_detected: self.nat_detected,
            rh2: self.rh2,
        }
    }

    pub fn from_persisted(p: &PersistedBinding, expires: Instant) -> Bce {
        Bce {
            coa: p.coa,
            expires,
            // No BRR after a restart: the MR's own refresh timer runs anyway.
            timer: expires,
            due: expires,
            mnp_v6: p.mnp_v6.clone().into_boxed_slice(),
            mnp_v4: p.mnp_v4.clone().into_boxed_slice(),
            last_timestamp: p.last_timestamp,
            spi: p.spi,
            hoa_v4: p.hoa_v4,
            lifetime_secs: p.lifetime_secs,
            flags: p.flags,
            sequence: p.sequence,
            nat_detected: p.nat_detected,
            coa_v4_option: None,
            rh2: p.rh2,
            brr_sent: true,
        }
    }
}
