//! RFC 4285 MN-HA authentication of Binding Updates and Acknowledgements (RFC 4285 §5).
//!
//! ```text
//! MobilityData  = care-of address (16) | home address (16) | MH data
//!   MH data     = the Mobility Header from Payload Proto up to and including the SPI of
//!                 the MN-HA authentication option, checksum taken as zero
//! Authenticator = first 96 bits of HMAC-SHA1(key, MobilityData)      (RFC 4285 §5.1)
//! ```
//!
//! The care-of address is the registered one (the Alternate CoA value, else the IPv6
//! source); SHISA's HA uses the same (CoA, HoA) order. For an IPv4 CoA (DSMIPv6), which
//! RFC 4285 never anticipated, **this project** uses the IPv4-mapped form `::ffff:a.b.c.d`
//! (docs/notes.md §6); a peer with a different convention will fail to verify.
//!
//! Workflow: emit the message with an [`MobilityOption::Authentication`] option last whose
//! data is [`PLACEHOLDER`] (see [`mn_ha_option`]), call [`sign`], then fill the checksum.
//!
//! A node that signs or verifies many messages with one key keeps an [`MnHaKey`]: the
//! keyed HMAC state (key padded, ipad and opad blocks hashed) is derived once, and each MAC
//! starts from a copy of it ([`MnHaKey::sign`], [`MnHaKey::verify`]). The free functions
//! derive it on every call.
//!
//! [`MobilityOption::Authentication`]: crate::option::MobilityOption::Authentication

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::mh::{MhType, Packet};
use crate::option::{AUTH_SUBTYPE_MN_HA, AUTHENTICATOR_LEN, MobilityOption, raw_options};
use crate::{Error, Result};

type HmacSha1 = Hmac<Sha1>;

/// The timestamp window of RFC 4285 §6 ("close enough"), SHISA's and our default: 7 s.
pub const DEFAULT_TIMESTAMP_WINDOW: Duration = Duration::from_secs(7);

/// The replay protection of a mobility SA (RFC 4285 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplayProtection {
    /// Every BU carries a Mobility Message Replay Protection option with an NTP timestamp
    /// within `window` of the receiver's clock and later than the last accepted one (else
    /// BA 144; missing: 145); the BA echoes it.
    Timestamps {
        /// How far a timestamp may be from the receiver's clock.
        window: Duration,
    },
    /// Only the sequence number window protects against replay. A timestamp option, if
    /// sent, is still checked and echoed.
    SequenceOnly,
}

impl Default for ReplayProtection {
    fn default() -> Self {
        ReplayProtection::Timestamps {
            window: DEFAULT_TIMESTAMP_WINDOW,
        }
    }
}

/// A mobility security association (RFC 4285 §5.1): the SPI, the key of HMAC-SHA1-96
/// (MN-HA, subtype 1), the replay protection, and the identities it is bound to. The home
/// agent holds one per mobile router; the mobile router holds the one it shares with its
/// home agent.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MobilitySa {
    /// Mobility SPI (0-255 are reserved, RFC 4285 §5).
    pub spi: u32,
    /// Shared key (the configuration demands 16 octets or more).
    pub key: Vec<u8>,
    /// The home address this SA may register: the only one. `None` with an NAI: none at
    /// all. `None` together with `nai: None`: any home address no other SA names (a
    /// wildcard SA, for labs and benchmarks; the auth-database cannot express it). The
    /// mobile router does not use it.
    pub hoa: Option<Ipv6Addr>,
    /// The NAI (RFC 4283 MN-ID, subtype 1) this SA belongs to: the mobile router sends it,
    /// the home agent requires a BU's MN-ID option, if any, to carry this one.
    pub nai: Option<Vec<u8>>,
    /// Replay protection.
    pub replay: ReplayProtection,
}

impl MobilitySa {
    /// An SA for `spi` and `key`, bound to no identity, with timestamps in a 7 s window.
    pub fn new(spi: u32, key: Vec<u8>) -> Self {
        MobilitySa {
            spi,
            key,
            hoa: None,
            nai: None,
            replay: ReplayProtection::default(),
        }
    }

    /// Whether BUs carry (and BAs echo) RFC 4285 §6 timestamps.
    pub fn timestamps(&self) -> bool {
        matches!(self.replay, ReplayProtection::Timestamps { .. })
    }

    /// The timestamp window ([`DEFAULT_TIMESTAMP_WINDOW`] without timestamps: a timestamp
    /// sent anyway is checked against it).
    pub fn replay_window(&self) -> Duration {
        match self.replay {
            ReplayProtection::Timestamps { window } => window,
            ReplayProtection::SequenceOnly => DEFAULT_TIMESTAMP_WINDOW,
        }
    }
}

// Keys stay out of logs.
impl core::fmt::Debug for MobilitySa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MobilitySa")
            .field("spi", &self.spi)
            .field("key", &format_args!("<{} octets>", self.key.len()))
            .field("hoa", &self.hoa)
            .field("nai", &self.nai.as_deref().map(String::from_utf8_lossy))
            .field("replay", &self.replay)
            .finish()
    }
}

/// Zero authentication data to emit before [`sign`] fills it in.
pub const PLACEHOLDER: [u8; AUTHENTICATOR_LEN] = [0; AUTHENTICATOR_LEN];

/// An MN-HA authentication option with placeholder data, to be put last in a BU or BA.
pub fn mn_ha_option(spi: u32) -> MobilityOption<'static> {
    MobilityOption::Authentication {
        subtype: AUTH_SUBTYPE_MN_HA,
        spi,
        data: &PLACEHOLDER,
    }
}

/// The 16 octets that stand for a care-of address in MobilityData: an IPv6 address as is,
/// an IPv4 address IPv4-mapped (project convention, see the module docs).
pub fn care_of_octets(coa: IpAddr) -> [u8; 16] {
    match coa {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

/// Offset of the first option in a message of this type, for the types that carry options
/// after a fixed part this crate knows. A Home Agent Switch's depends on its address count
/// (RFC 5142 §4: octet 6); `mh` holds at least the common header.
fn options_offset(t: MhType, mh: &[u8]) -> Option<usize> {
    match t {
        MhType::BindingRefreshRequest => Some(8),
        MhType::BindingUpdate | MhType::BindingAck => Some(12),
        MhType::BindingError => Some(24),
        MhType::HomeAgentSwitch => mh.get(6).map(|&n| 8 + 16 * usize::from(n)),
        _ => None,
    }
}

/// Finds the last MN-HA authentication option and returns the MH offset just past its SPI
/// (where the authentication data starts) and the data length. The option must end exactly
/// at the end of the MH: anything after it would not be covered by the MAC (RFC 4285 §5).
/// Other options are only walked by length, never interpreted.
fn locate(mh: &[u8]) -> Result<(usize, usize)> {
    let p = Packet::new_checked(mh)?;
    let total = p.total_len();
    let start = options_offset(p.mh_type(), mh).ok_or(Error::Malformed("message type"))?;
    let region = mh.get(start..total).ok_or(Error::Truncated)?;
    let mut found = None;
    for opt in raw_options(region) {
        let (at, t, data) = opt?;
        if t == 9 && data.len() > 5 && data[0] == AUTH_SUBTYPE_MN_HA {
            found = Some((start + at, data.len()));
        }
    }
    let (at, len) = found.ok_or(Error::Malformed("no MN-HA authentication option"))?;
    if at + 2 + len != total {
        return Err(Error::Malformed("authentication option not last"));
    }
    // Type, Length, Subtype, SPI(4).
    Ok((at + 7, len - 5))
}

/// A mobility SA's key, prepared for HMAC-SHA1: the keyed state (RFC 2104 ipad and opad
/// blocks already hashed) from which every MAC starts, so signing or verifying costs only
/// the hashing of MobilityData. The key itself is not kept; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct MnHaKey {
    keyed: HmacSha1,
}

impl MnHaKey {
    /// Prepares `key` (any length: HMAC hashes keys longer than 64 octets first).
    pub fn new(key: &[u8]) -> MnHaKey {
        MnHaKey {
            keyed: <HmacSha1 as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length"),
        }
    }

    fn mac(&self, coa: IpAddr, hoa: &Ipv6Addr, mh_upto_spi: &[u8]) -> HmacSha1 {
        let mut m = self.keyed.clone();
        m.update(&care_of_octets(coa));
        m.update(&hoa.octets());
        // The checksum field (octets 4..6) counts as zero.
        m.update(&mh_upto_spi[..4]);
        m.update(&[0, 0]);
        m.update(&mh_upto_spi[6..]);
        m
    }

    /// Computes the 96-bit MN-HA authenticator for an emitted MH (its current
    /// authentication data is ignored).
    pub fn authenticator(
        &self,
        mh: &[u8],
        coa: IpAddr,
        hoa: &Ipv6Addr,
    ) -> Result<[u8; AUTHENTICATOR_LEN]> {
        let (data_at, _) = locate(mh)?;
        let full = self.mac(coa, hoa, &mh[..data_at]).finalize().into_bytes();
        let mut out = [0u8; AUTHENTICATOR_LEN];
        out.copy_from_slice(&full[..AUTHENTICATOR_LEN]);
        Ok(out)
    }

    /// Fills the authentication data of the last MN-HA authentication option of an
    /// emitted MH (BU or BA; also BRR, BE and Home Agent Switch). The option must be last,
    /// with exactly 12 octets of data (`BadLength` otherwise). Call before filling the
    /// checksum.
    pub fn sign(&self, mh: &mut [u8], coa: IpAddr, hoa: &Ipv6Addr) -> Result<()> {
        let (data_at, len) = locate(mh)?;
        if len != AUTHENTICATOR_LEN {
            return Err(Error::BadLength);
        }
        let full = self.mac(coa, hoa, &mh[..data_at]).finalize().into_bytes();
        mh[data_at..data_at + AUTHENTICATOR_LEN].copy_from_slice(&full[..AUTHENTICATOR_LEN]);
        Ok(())
    }

    /// Checks the MN-HA authenticator of a received MH in constant time: `Ok(true)` if it
    /// verifies, `Ok(false)` if not (answer a BU with BA 146, MIPV6-AUTH-FAIL). Errors mean
    /// the message cannot carry a valid authenticator at all: no MN-HA option, not last,
    /// data not 12 octets (`BadLength`), or an unparsable option walk.
    pub fn verify(&self, mh: &[u8], coa: IpAddr, hoa: &Ipv6Addr) -> Result<bool> {
        let (data_at, len) = locate(mh)?;
        if len != AUTHENTICATOR_LEN {
            return Err(Error::BadLength);
        }
        let tag = &mh[data_at..data_at + AUTHENTICATOR_LEN];
        Ok(self
            .mac(coa, hoa, &mh[..data_at])
            .verify_truncated_left(tag)
            .is_ok())
    }
}

impl std::fmt::Debug for MnHaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys (and states derived from them) stay out of logs.
        f.write_str("MnHaKey(<prepared HMAC-SHA1 key>)")
    }
}

/// [`MnHaKey::authenticator`] with a key prepared for this one call.
pub fn authenticator(
    mh: &[u8],
    coa: IpAddr,
    hoa: &Ipv6Addr,
    key: &[u8],
) -> Result<[u8; AUTHENTICATOR_LEN]> {
    MnHaKey::new(key).authenticator(mh, coa, hoa)
}

/// [`MnHaKey::sign`] with a key prepared for this one call.
pub fn sign(mh: &mut [u8], coa: IpAddr, hoa: &Ipv6Addr, key: &[u8]) -> Result<()> {
    MnHaKey::new(key).sign(mh, coa, hoa)
}

/// [`MnHaKey::verify`] with a key prepared for this one call.
pub fn verify(mh: &[u8], coa: IpAddr, hoa: &Ipv6Addr, key: &[u8]) -> Result<bool> {
    MnHaKey::new(key).verify(mh, coa, hoa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mh::{BindingAck, BindingUpdate, BuFlags, MhRepr};
    use crate::option::{MN_ID_SUBTYPE_NAI, ParseConfig};
    use crate::seq::{Lifetime, SequenceNumber};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn coa() -> Ipv6Addr {
        "2001:db8:1::2".parse().unwrap()
    }
    fn hoa() -> Ipv6Addr {
        "2001:db8:2::100".parse().unwrap()
    }

    /// Computed with python3 `hmac`/`hashlib` (HMAC-SHA1 over CoA | HoA | MH up to the
    /// SPI, checksum zero), key 00..0f, CoA 2001:db8:1::2, HoA 2001:db8:2::100.
    static SIGNED_BU: [u8; 72] = [
        0x3b, 0x08, 0x05, 0x00, 0x00, 0x00, 0x12, 0x34, 0xc4, 0x00, 0x00, 0x96, 0x01, 0x00, 0x03,
        0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x08, 0x10, 0x01, 0x6d, 0x72, 0x31, 0x40, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c,
        0x65, 0x2e, 0x6e, 0x65, 0x74, 0x01, 0x01, 0x00, 0x09, 0x11, 0x01, 0x00, 0x00, 0x01, 0x00,
        0x7d, 0x2b, 0xa0, 0x46, 0x8a, 0x13, 0x20, 0xfd, 0xec, 0x0f, 0x25, 0x1c,
    ];

    /// Same MH, CoA 198.51.100.7 taken as ::ffff:198.51.100.7 (python3).
    const MAC_V4_COA: [u8; 12] = [
        0x75, 0x76, 0x2f, 0xf8, 0xbb, 0x3b, 0xd2, 0x74, 0xbe, 0xa7, 0x6e, 0x22,
    ];

    fn bu() -> MhRepr<'static> {
        MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(0x1234),
            flags: BuFlags::A | BuFlags::H | BuFlags::R,
            lifetime: Lifetime(150),
            options: vec![
                MobilityOption::AlternateCareOfAddress(coa()),
                MobilityOption::MobileNodeIdentifier {
                    subtype: MN_ID_SUBTYPE_NAI,
                    identifier: b"mr1@example.net",
                },
                mn_ha_option(0x100),
            ],
        })
    }

    fn emitted(r: &MhRepr<'_>) -> Vec<u8> {
        let mut buf = vec![0xa5; r.buffer_len()];
        r.emit_to(&mut buf).unwrap();
        buf
    }

    #[test]
    fn sign_matches_independent_fixture() {
        let mut buf = emitted(&bu());
        assert_eq!(buf.len(), 72);
        assert_eq!(&buf[..60], &SIGNED_BU[..60]);
        sign(&mut buf, coa().into(), &hoa(), &KEY).unwrap();
        assert_eq!(buf, SIGNED_BU);
        assert_eq!(verify(&buf, coa().into(), &hoa(), &KEY), Ok(true));
        assert_eq!(
            authenticator(&buf, coa().into(), &hoa(), &KEY).unwrap(),
            SIGNED_BU[60..]
        );
    }

    #[test]
    fn prepared_key_matches_and_is_reusable() {
        let key = MnHaKey::new(&KEY);
        for _ in 0..3 {
            let mut buf = emitted(&bu());
            key.sign(&mut buf, coa().into(), &hoa()).unwrap();
            assert_eq!(buf, SIGNED_BU);
            assert_eq!(key.verify(&buf, coa().into(), &hoa()), Ok(true));
            assert_eq!(key.verify(&buf, coa().into(), &coa()), Ok(false));
        }
        assert_eq!(
            key.authenticator(
                &SIGNED_BU,
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
                &hoa()
            ),
            Ok(MAC_V4_COA)
        );
        // Keys longer than the SHA-1 block are hashed first (RFC 2104), both ways alike.
        let long = [0x5a; 100];
        let mut a = emitted(&bu());
        let mut b = a.clone();
        MnHaKey::new(&long)
            .sign(&mut a, coa().into(), &hoa())
            .unwrap();
        sign(&mut b, coa().into(), &hoa(), &long).unwrap();
        assert_eq!(a, b);
        assert_eq!(verify(&a, coa().into(), &hoa(), &long), Ok(true));
        // Nothing of the key in Debug.
        assert!(!format!("{key:?}").contains("00"));
    }

    #[test]
    fn checksum_does_not_matter_and_is_filled_after() {
        let mut buf = SIGNED_BU;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.fill_checksum(&hoa(), &"2001:db8:2::1".parse().unwrap());
        assert_ne!(p.checksum(), 0);
        assert_eq!(verify(&buf, coa().into(), &hoa(), &KEY), Ok(true));
        // And it parses back with the signed option.
        let r = MhRepr::parse_bytes(&buf, ParseConfig::new()).unwrap();
        assert_eq!(
            r.options().last(),
            Some(&MobilityOption::Authentication {
                subtype: AUTH_SUBTYPE_MN_HA,
                spi: 0x100,
                data: &SIGNED_BU[60..],
            })
        );
    }

    #[test]
    fn ipv4_care_of_address_is_mapped() {
        let v4 = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(authenticator(&SIGNED_BU, v4, &hoa(), &KEY), Ok(MAC_V4_COA));
        let mut buf = SIGNED_BU;
        sign(&mut buf, v4, &hoa(), &KEY).unwrap();
        assert_eq!(&buf[60..], &MAC_V4_COA);
        assert_eq!(verify(&buf, v4, &hoa(), &KEY), Ok(true));
        assert_eq!(verify(&buf, coa().into(), &hoa(), &KEY), Ok(false));
    }

    #[test]
    fn tampering_fails() {
        for i in 0..SIGNED_BU.len() {
            if (4..6).contains(&i) {
                continue; // checksum is excluded from the MAC
            }
            let mut buf = SIGNED_BU;
            buf[i] ^= 0x01;
            assert_ne!(
                verify(&buf, coa().into(), &hoa(), &KEY),
                Ok(true),
                "octet {i}"
            );
        }
        let mut key = KEY;
        key[0] = 1;
        assert_eq!(verify(&SIGNED_BU, coa().into(), &hoa(), &key), Ok(false));
        assert_eq!(verify(&SIGNED_BU, coa().into(), &coa(), &KEY), Ok(false));
    }

    #[test]
    fn structural_errors() {
        // No auth option.
        let r = MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(1),
            flags: BuFlags::A,
            lifetime: Lifetime(1),
            options: vec![],
        });
        let mut buf = emitted(&r);
        assert_eq!(
            sign(&mut buf, coa().into(), &hoa(), &KEY),
            Err(Error::Malformed("no MN-HA authentication option"))
        );
        // Auth option not last (trailing padding after it).
        let r = MhRepr::BindingAck(BindingAck {
            status: crate::mh::BaStatus::Accepted,
            flags: crate::mh::BaFlags::R,
            sequence: SequenceNumber(1),
            lifetime: Lifetime(1),
            options: vec![
                mn_ha_option(300),
                MobilityOption::Ipv4CareOfAddress(Ipv4Addr::LOCALHOST),
            ],
        });
        let mut buf = emitted(&r);
        assert_eq!(
            sign(&mut buf, coa().into(), &hoa(), &KEY),
            Err(Error::Malformed("authentication option not last"))
        );
        // Wrong authenticator length.
        let r = MhRepr::BindingAck(BindingAck {
            status: crate::mh::BaStatus::Accepted,
            flags: crate::mh::BaFlags::R,
            sequence: SequenceNumber(1),
            lifetime: Lifetime(1),
            options: vec![MobilityOption::Authentication {
                subtype: AUTH_SUBTYPE_MN_HA,
                spi: 300,
                data: &[0; 16],
            }],
        });
        let mut buf = emitted(&r);
        assert_eq!(
            sign(&mut buf, coa().into(), &hoa(), &KEY),
            Err(Error::BadLength)
        );
        assert_eq!(
            verify(&buf, coa().into(), &hoa(), &KEY),
            Err(Error::BadLength)
        );
        // Truncated MH.
        assert_eq!(
            verify(&SIGNED_BU[..70], coa().into(), &hoa(), &KEY),
            Err(Error::Truncated)
        );
        // Unknown MH type.
        let mut buf = SIGNED_BU;
        buf[2] = 1;
        assert_eq!(
            verify(&buf, coa().into(), &hoa(), &KEY),
            Err(Error::Malformed("message type"))
        );
    }

    #[test]
    fn mn_aaa_after_mn_ha_is_not_last() {
        // RFC 4285: MN-HA before MN-AAA; the MN-HA MAC then does not end the message.
        let r = MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(1),
            flags: BuFlags::A | BuFlags::H,
            lifetime: Lifetime(1),
            options: vec![
                mn_ha_option(300),
                MobilityOption::Authentication {
                    subtype: 2,
                    spi: 3,
                    data: &[0; 12],
                },
            ],
        });
        let mut buf = emitted(&r);
        assert_eq!(
            sign(&mut buf, coa().into(), &hoa(), &KEY),
            Err(Error::Malformed("authentication option not last"))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn sign_then_verify(
            opts in crate::option::strategies::option_list(false),
            spi in any::<u32>(),
            key in proptest::collection::vec(any::<u8>(), 1..40),
            flip in any::<prop::sample::Index>(),
        ) {
            let mut options: Vec<_> = opts
                .into_iter()
                .filter(|o| !matches!(o, MobilityOption::Authentication { .. } | MobilityOption::BindingAuthorizationData(_)))
                .collect();
            options.push(mn_ha_option(spi));
            let r = MhRepr::BindingUpdate(BindingUpdate {
                sequence: SequenceNumber(9),
                flags: BuFlags::A | BuFlags::H,
                lifetime: Lifetime(10),
                options,
            });
            let mut buf = emitted(&r);
            sign(&mut buf, coa().into(), &hoa(), &key).unwrap();
            prop_assert_eq!(verify(&buf, coa().into(), &hoa(), &key), Ok(true));
            let i = flip.index(buf.len());
            if !(4..6).contains(&i) {
                buf[i] ^= 0x80;
                prop_assert_ne!(verify(&buf, coa().into(), &hoa(), &key), Ok(true));
            }
        }
    }
}
