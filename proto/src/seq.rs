//! Numbers that carry time or order in Mobile IPv6 signalling: the 16-bit Binding Update
//! sequence number (RFC 6275 §9.5.1), the lifetime in 4-second units (RFC 6275 §6.1.7) and
//! the 64-bit NTP timestamp of RFC 4285's replay protection option (RFC 4285 §6).
//!
//! Nothing here reads a clock: callers pass the current time in.

use core::fmt;
use core::time::Duration;

/// A Binding Update sequence number, compared modulo 2^16 (RFC 6275 §9.5.1).
///
/// Deliberately not `PartialOrd`: serial-number order is not transitive, so "newer" is a
/// named method instead of `>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SequenceNumber(pub u16);

impl SequenceNumber {
    /// Wraps a raw value.
    pub const fn new(value: u16) -> Self {
        SequenceNumber(value)
    }

    /// The raw 16-bit value.
    pub const fn value(self) -> u16 {
        self.0
    }

    /// The following sequence number, wrapping from 65535 to 0. Every BU, including each
    /// retransmission, uses a new one (RFC 6275 §11.8).
    #[must_use]
    pub const fn next(self) -> Self {
        SequenceNumber(self.0.wrapping_add(1))
    }

    /// True if `self` is newer than `last` (RFC 6275 §9.5.1): `last` and the 32768 values
    /// before it, modulo 2^16, count as "less than or equal"; the 32767 values after it are
    /// newer. With `last = 15`, `0..=15` and `32783..=65535` are not newer.
    pub const fn is_newer_than(self, last: SequenceNumber) -> bool {
        let d = self.0.wrapping_sub(last.0);
        d != 0 && d < 0x8000
    }
}

impl From<u16> for SequenceNumber {
    fn from(v: u16) -> Self {
        SequenceNumber(v)
    }
}

impl From<SequenceNumber> for u16 {
    fn from(s: SequenceNumber) -> u16 {
        s.0
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A binding lifetime as carried in BU, BA and the Binding Refresh Advice option: a count
/// of 4-second units (RFC 6275 §6.1.7, §6.1.8, §6.2.4). Zero in a BU means de-registration.
///
/// Conversions from seconds round **down** to whole units (a binding never lasts longer
/// than was asked for or granted), except that a non-zero duration shorter than one unit
/// becomes one unit, so a short but non-zero lifetime never turns into a de-registration.
/// They saturate at 65535 units (262,140 s, about 72.8 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lifetime(pub u16);

impl Lifetime {
    /// Seconds per lifetime unit.
    pub const UNIT_SECS: u32 = 4;
    /// Zero: delete the binding (de-registration) in a BU.
    pub const ZERO: Lifetime = Lifetime(0);
    /// The longest representable lifetime, 65535 units = 262,140 s.
    pub const MAX: Lifetime = Lifetime(u16::MAX);

    /// From a raw count of 4-second units.
    pub const fn from_units(units: u16) -> Self {
        Lifetime(units)
    }

    /// The raw count of 4-second units.
    pub const fn units(self) -> u16 {
        self.0
    }

    /// From whole seconds: rounds down to a multiple of 4 s, but 1..=3 s gives one unit;
    /// saturates at [`Lifetime::MAX`].
    pub const fn from_secs(secs: u64) -> Self {
        if secs == 0 {
            return Lifetime::ZERO;
        }
        let units = secs / Self::UNIT_SECS as u64;
        if units == 0 {
            Lifetime(1)
        } else if units > u16::MAX as u64 {
            Lifetime::MAX
        } else {
            Lifetime(units as u16)
        }
    }

    /// From a `Duration`, with the rules of [`Lifetime::from_secs`]; a non-zero sub-second
    /// duration also gives one unit.
    pub const fn from_duration(d: Duration) -> Self {
        if d.is_zero() {
            Lifetime::ZERO
        } else if d.as_secs() == 0 {
            Lifetime(1)
        } else {
            Self::from_secs(d.as_secs())
        }
    }

    /// The lifetime in seconds (exact: units × 4).
    pub const fn as_secs(self) -> u32 {
        self.0 as u32 * Self::UNIT_SECS
    }

    /// The lifetime as a `Duration` (exact).
    pub const fn as_duration(self) -> Duration {
        Duration::from_secs(self.as_secs() as u64)
    }

    /// True for zero, which in a BU asks for de-registration (RFC 6275 §6.1.7).
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl From<Lifetime> for Duration {
    fn from(l: Lifetime) -> Duration {
        l.as_duration()
    }
}

impl From<Duration> for Lifetime {
    fn from(d: Duration) -> Lifetime {
        Lifetime::from_duration(d)
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.as_secs())
    }
}

/// Seconds from the NTP epoch (1900-01-01) to the UNIX epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp (RFC 5905 §6): upper 32 bits seconds since 1900, lower 32 bits
/// binary fraction of a second. The value of RFC 4285's Mobility Message Replay Protection
/// option (RFC 4285 §6).
///
/// The seconds field wraps on 2036-02-07 (NTP era 1). [`NtpTimestamp::to_unix`] resolves
/// the era as RFC 4330 §3 does: a seconds value with the top bit clear is taken to be in
/// era 1 (2036-2104), otherwise in era 0 (1968-2036).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// From seconds and fraction fields.
    pub const fn from_parts(seconds: u32, fraction: u32) -> Self {
        NtpTimestamp(((seconds as u64) << 32) | fraction as u64)
    }

    /// The seconds field (since 1900, modulo 2^32).
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The fraction field, in units of 2^-32 s.
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// From the time elapsed since the UNIX epoch, which the caller reads from its clock.
    /// The fraction is truncated (not rounded); RFC 4285 §6 suggests filling bits the clock
    /// cannot provide from a random source, which is left to the caller.
    pub const fn from_unix(since_epoch: Duration) -> Self {
        let secs = since_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS) as u32;
        let frac = ((since_epoch.subsec_nanos() as u64) << 32) / 1_000_000_000;
        NtpTimestamp::from_parts(secs, frac as u32)
    }

    /// Back to the time since the UNIX epoch (era resolved as described on the type), or
    /// `None` if the timestamp lies before 1970. The fraction is rounded down to whole
    /// nanoseconds.
    pub const fn to_unix(self) -> Option<Duration> {
        let secs = self.seconds() as u64;
        let ntp_secs = if secs & 0x8000_0000 == 0 {
            secs + (1u64 << 32)
        } else {
            secs
        };
        if ntp_secs < NTP_UNIX_OFFSET_SECS {
            return None;
        }
        let nanos = ((self.fraction() as u64) * 1_000_000_000) >> 32;
        Some(Duration::new(ntp_secs - NTP_UNIX_OFFSET_SECS, nanos as u32))
    }

    /// True if `self` lies within `window` of `now`, in either direction, computed on the
    /// 64-bit fixed-point values modulo 2^64 so it works across an era boundary. This is the
    /// "close enough" check of RFC 4285 §6 (default window 7 s).
    pub const fn is_within(self, now: NtpTimestamp, window: Duration) -> bool {
        let d = self.0.wrapping_sub(now.0) as i64;
        let dist = d.unsigned_abs();
        let w = NtpTimestamp::fixed_point(window);
        dist <= w
    }

    /// True if `self` is later than `other` in 64-bit serial arithmetic (for "larger than in
    /// any earlier accepted BU", RFC 4285 §6).
    pub const fn is_later_than(self, other: NtpTimestamp) -> bool {
        let d = self.0.wrapping_sub(other.0);
        d != 0 && d < (1u64 << 63)
    }

    /// A duration as 32.32 fixed point, saturating.
    const fn fixed_point(d: Duration) -> u64 {
        if d.as_secs() >= (1u64 << 32) {
            return u64::MAX;
        }
        (d.as_secs() << 32) | ((((d.subsec_nanos() as u64) << 32) / 1_000_000_000) as u32 as u64)
    }
}

impl From<u64> for NtpTimestamp {
    fn from(v: u64) -> Self {
        NtpTimestamp(v)
    }
}

impl From<NtpTimestamp> for u64 {
    fn from(t: NtpTimestamp) -> u64 {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6275_sequence_example() {
        let last = SequenceNumber(15);
        for s in (0..=15).chain(32783..=65535) {
            assert!(!SequenceNumber(s).is_newer_than(last), "{s}");
        }
        for s in 16..=32782 {
            assert!(SequenceNumber(s).is_newer_than(last), "{s}");
        }
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(SequenceNumber(65535).next(), SequenceNumber(0));
        assert!(SequenceNumber(0).is_newer_than(SequenceNumber(65535)));
        assert!(!SequenceNumber(65535).is_newer_than(SequenceNumber(0)));
        assert!(!SequenceNumber(7).is_newer_than(SequenceNumber(7)));
    }

    #[test]
    fn lifetime_conversions() {
        assert_eq!(Lifetime::from_secs(0), Lifetime::ZERO);
        assert!(Lifetime::ZERO.is_zero());
        assert_eq!(Lifetime::from_secs(1), Lifetime(1));
        assert_eq!(Lifetime::from_secs(3), Lifetime(1));
        assert_eq!(Lifetime::from_secs(4), Lifetime(1));
        assert_eq!(Lifetime::from_secs(7), Lifetime(1));
        assert_eq!(Lifetime::from_secs(8), Lifetime(2));
        assert_eq!(Lifetime::from_secs(262_140), Lifetime::MAX);
        assert_eq!(Lifetime::from_secs(u64::MAX), Lifetime::MAX);
        assert_eq!(
            Lifetime::from_duration(Duration::from_millis(1)),
            Lifetime(1)
        );
        assert_eq!(Lifetime::from_duration(Duration::ZERO), Lifetime::ZERO);
        assert_eq!(
            Lifetime::from_duration(Duration::from_millis(8999)),
            Lifetime(2)
        );
        assert_eq!(Lifetime(100).as_secs(), 400);
        assert_eq!(Lifetime::MAX.as_duration(), Duration::from_secs(262_140));
        assert_eq!(Duration::from(Lifetime(3)), Duration::from_secs(12));
        assert_eq!(Lifetime::from(Duration::from_secs(12)), Lifetime(3));
    }

    #[test]
    fn ntp_known_values() {
        // UNIX epoch is NTP second 2208988800 = 0x83AA7E80.
        let t = NtpTimestamp::from_unix(Duration::ZERO);
        assert_eq!(t.0, 0x83AA_7E80_0000_0000);
        assert_eq!(t.to_unix(), Some(Duration::ZERO));
        // Half a second is fraction 0x8000_0000.
        let t = NtpTimestamp::from_unix(Duration::from_millis(1500));
        assert_eq!(t, NtpTimestamp::from_parts(0x83AA_7E81, 0x8000_0000));
        assert_eq!(t.to_unix(), Some(Duration::from_millis(1500)));
        // Before 1970 (but in era 0).
        assert_eq!(NtpTimestamp::from_parts(0x8000_0000, 0).to_unix(), None);
    }

    #[test]
    fn ntp_era1() {
        // 2036-02-07T06:28:16Z is UNIX 2085978496, NTP seconds 0 of era 1.
        let unix = Duration::from_secs(2_085_978_496 + 10);
        let t = NtpTimestamp::from_unix(unix);
        assert_eq!(t.seconds(), 10);
        assert_eq!(t.to_unix(), Some(unix));
    }

    #[test]
    fn ntp_round_trip_nanos() {
        for ns in [0u32, 1, 999, 123_456_789, 999_999_999] {
            let d = Duration::new(1_700_000_000, ns);
            let back = NtpTimestamp::from_unix(d).to_unix().unwrap();
            // Two truncations lose at most 1 ns each.
            assert!(d - back <= Duration::from_nanos(2), "{ns}: {back:?}");
        }
    }

    #[test]
    fn ntp_window_and_order() {
        let now = NtpTimestamp::from_unix(Duration::from_secs(1_700_000_000));
        let w = Duration::from_secs(7);
        let later = NtpTimestamp::from_unix(Duration::from_secs(1_700_000_007));
        let too_late = NtpTimestamp::from_unix(Duration::from_millis(1_700_000_007_001));
        let earlier = NtpTimestamp::from_unix(Duration::from_secs(1_699_999_993));
        assert!(later.is_within(now, w));
        assert!(earlier.is_within(now, w));
        assert!(!too_late.is_within(now, w));
        assert!(later.is_later_than(now));
        assert!(!now.is_later_than(later));
        assert!(!now.is_later_than(now));
        // Across the era boundary.
        let a = NtpTimestamp::from_parts(u32::MAX, 0);
        let b = NtpTimestamp::from_parts(1, 0);
        assert!(b.is_later_than(a));
        assert!(b.is_within(a, Duration::from_secs(2)));
    }
}
