//! Binding Acknowledgement (MH type 6; RFC 6275 §6.1.8, RFC 3963 §4.2) and its status
//! codes (docs/notes.md §8).

use crate::option::{MobilityOption, ParseConfig, code_enum, parse_options};
use crate::seq::{Lifetime, SequenceNumber};
use crate::{Error, Result};

code_enum! {
    /// Binding Acknowledgement status (IANA registry; names from the defining RFCs).
    /// Values below 128 mean the BU was accepted.
    pub enum BaStatus(u8) {
        /// 0: Binding Update accepted (RFC 6275).
        Accepted = 0,
        /// 1: Accepted but prefix discovery necessary (RFC 6275).
        AcceptedPrefixDiscoveryNecessary = 1,
        /// 2: GRE_KEY_OPTION_NOT_REQUIRED (RFC 5845).
        GreKeyOptionNotRequired = 2,
        /// 3: GRE_TUNNELING_BUT_TLV_HEADER_NOT_SUPPORTED (RFC 5845).
        GreTunnelingButTlvHeaderNotSupported = 3,
        /// 4: MCOA NOTCOMPLETE (RFC 5648).
        McoaNotComplete = 4,
        /// 5: MCOA RETURNHOME WO/NDP (RFC 5648).
        McoaReturnHomeWoNdp = 5,
        /// 6: PBU_ACCEPTED_TB_IGNORED_SETTINGSMISMATCH (RFC 6058).
        PbuAcceptedTbIgnoredSettingsMismatch = 6,
        /// 128: Reason unspecified (RFC 6275).
        ReasonUnspecified = 128,
        /// 129: Administratively prohibited (RFC 6275).
        AdministrativelyProhibited = 129,
        /// 130: Insufficient resources (RFC 6275).
        InsufficientResources = 130,
        /// 131: Home registration not supported (RFC 6275).
        HomeRegistrationNotSupported = 131,
        /// 132: Not home subnet (RFC 6275).
        NotHomeSubnet = 132,
        /// 133: Not home agent for this mobile node (RFC 6275).
        NotHomeAgentForThisMobileNode = 133,
        /// 134: Duplicate Address Detection failed (RFC 6275).
        DuplicateAddressDetectionFailed = 134,
        /// 135: Sequence number out of window (RFC 6275); the BA carries the last accepted
        /// sequence number.
        SequenceNumberOutOfWindow = 135,
        /// 136: Expired home nonce index (RFC 6275).
        ExpiredHomeNonceIndex = 136,
        /// 137: Expired care-of nonce index (RFC 6275).
        ExpiredCareOfNonceIndex = 137,
        /// 138: Expired nonces (RFC 6275).
        ExpiredNonces = 138,
        /// 139: Registration type change disallowed (RFC 6275; also an R-flag change,
        /// RFC 3963).
        RegistrationTypeChangeDisallowed = 139,
        /// 140: Mobile Router Operation not permitted (RFC 3963).
        MobileRouterOperationNotPermitted = 140,
        /// 141: Invalid Prefix (RFC 3963).
        InvalidPrefix = 141,
        /// 142: Not Authorized for Prefix (RFC 3963).
        NotAuthorizedForPrefix = 142,
        /// 143: Forwarding Setup failed (prefixes missing) (RFC 3963).
        ForwardingSetupFailed = 143,
        /// 144: MIPV6-ID-MISMATCH (RFC 4285). RFC 5555 §4.4.2 also uses 144 for "F flag
        /// refused" (docs/notes.md §8).
        Mipv6IdMismatch = 144,
        /// 145: MIPV6-MESG-ID-REQD (RFC 4285).
        Mipv6MesgIdReqd = 145,
        /// 146: MIPV6-AUTH-FAIL (RFC 4285).
        Mipv6AuthFail = 146,
        /// 147: Permanent home keygen token unavailable (RFC 4866).
        PermanentHomeKeygenTokenUnavailable = 147,
        /// 148: CGA and signature verification failed (RFC 4866).
        CgaAndSignatureVerificationFailed = 148,
        /// 149: Permanent home keygen token exists (RFC 4866).
        PermanentHomeKeygenTokenExists = 149,
        /// 150: Non-null home nonce index expected (RFC 4866).
        NonNullHomeNonceIndexExpected = 150,
        /// 151: SERVICE_AUTHORIZATION_FAILED (RFC 5149).
        ServiceAuthorizationFailed = 151,
        /// 152: PROXY_REG_NOT_ENABLED (RFC 5213).
        ProxyRegNotEnabled = 152,
        /// 153: NOT_LMA_FOR_THIS_MOBILE_NODE (RFC 5213).
        NotLmaForThisMobileNode = 153,
        /// 154: MAG_NOT_AUTHORIZED_FOR_PROXY_REG (RFC 5213).
        MagNotAuthorizedForProxyReg = 154,
        /// 155: NOT_AUTHORIZED_FOR_HOME_NETWORK_PREFIX (RFC 5213).
        NotAuthorizedForHomeNetworkPrefix = 155,
        /// 156: TIMESTAMP_MISMATCH (RFC 5213).
        TimestampMismatch = 156,
        /// 157: TIMESTAMP_LOWER_THAN_PREV_ACCEPTED (RFC 5213).
        TimestampLowerThanPrevAccepted = 157,
        /// 158: MISSING_HOME_NETWORK_PREFIX_OPTION (RFC 5213).
        MissingHomeNetworkPrefixOption = 158,
        /// 159: BCE_PBU_PREFIX_SET_DO_NOT_MATCH (RFC 5213).
        BcePbuPrefixSetDoNotMatch = 159,
        /// 160: MISSING_MN_IDENTIFIER_OPTION (RFC 5213).
        MissingMnIdentifierOption = 160,
        /// 161: MISSING_HANDOFF_INDICATOR_OPTION (RFC 5213).
        MissingHandoffIndicatorOption = 161,
        /// 162: MISSING_ACCESS_TECH_TYPE_OPTION (RFC 5213).
        MissingAccessTechTypeOption = 162,
        /// 163: GRE_KEY_OPTION_REQUIRED (RFC 5845).
        GreKeyOptionRequired = 163,
        /// 164: MCOA MALFORMED (RFC 5648).
        McoaMalformed = 164,
        /// 165: MCOA NON-MCOA BINDING EXISTS (RFC 5648).
        McoaNonMcoaBindingExists = 165,
        /// 166: MCOA PROHIBITED (RFC 5648).
        McoaProhibited = 166,
        /// 167: MCOA UNKNOWN COA (RFC 5648).
        McoaUnknownCoa = 167,
        /// 168: MCOA BULK REGISTRATION PROHIBITED (RFC 5648).
        McoaBulkRegistrationProhibited = 168,
        /// 169: MCOA SIMULTANEOUS HOME AND FOREIGN PROHIBITED (RFC 5648).
        McoaSimultaneousHomeAndForeignProhibited = 169,
        /// 170: NOT_AUTHORIZED_FOR_IPV4_MOBILITY_SERVICE (RFC 5844).
        NotAuthorizedForIpv4MobilityService = 170,
        /// 171: NOT_AUTHORIZED_FOR_IPV4_HOME_ADDRESS (RFC 5844).
        NotAuthorizedForIpv4HomeAddress = 171,
        /// 172: NOT_AUTHORIZED_FOR_IPV6_MOBILITY_SERVICE (RFC 5844).
        NotAuthorizedForIpv6MobilityService = 172,
        /// 173: MULTIPLE_IPV4_HOME_ADDRESS_ASSIGNMENT_NOT_SUPPORTED (RFC 5844).
        MultipleIpv4HomeAddressAssignmentNotSupported = 173,
        /// 174: Invalid Care-of Address (RFC 6275).
        InvalidCareOfAddress = 174,
        /// 175: INVALID_MOBILE_NODE_GROUP_IDENTIFIER (RFC 6602).
        InvalidMobileNodeGroupIdentifier = 175,
        /// 176: REINIT_SA_WITH_HAC (RFC 6618).
        ReinitSaWithHac = 176,
        /// 177: NOT_AUTHORIZED_FOR_DELEGATED_MNP (RFC 7148).
        NotAuthorizedForDelegatedMnp = 177,
        /// 178: REQUESTED_DMNP_IN_USE (RFC 7148).
        RequestedDmnpInUse = 178,
    }
}

impl BaStatus {
    /// True for codes below 128 (RFC 6275 §6.1.8).
    pub fn is_accepted(self) -> bool {
        u8::from(self) < 128
    }
}

/// The 8-bit flags field of a Binding Acknowledgement (docs/notes.md §8). Bits without a
/// name are kept as received.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BaFlags(pub u8);

impl BaFlags {
    /// K: key management mobility capability (RFC 6275).
    pub const K: BaFlags = BaFlags(0x80);
    /// R: the HA supports mobile routers (RFC 3963); set only if the BU had R.
    pub const R: BaFlags = BaFlags(0x40);
    /// P: proxy registration (RFC 5213).
    pub const P: BaFlags = BaFlags(0x20);
    /// T: TLV-header format (RFC 5845).
    pub const T: BaFlags = BaFlags(0x10);
    /// B: bulk binding update (RFC 6602).
    pub const B: BaFlags = BaFlags(0x08);
    /// The bits no flag above defines.
    pub const RESERVED: u8 = 0x07;

    /// K: the IKE SA can follow the CoA.
    pub const fn key_management(self) -> bool {
        self.contains(Self::K)
    }
    /// R: mobile router support confirmed.
    pub const fn mobile_router(self) -> bool {
        self.contains(Self::R)
    }
    /// P: proxy registration.
    pub const fn proxy(self) -> bool {
        self.contains(Self::P)
    }
    /// T: TLV-header format.
    pub const fn tlv_header(self) -> bool {
        self.contains(Self::T)
    }
    /// B: bulk binding update.
    pub const fn bulk(self) -> bool {
        self.contains(Self::B)
    }
}

super::flags::flags_newtype!(
    BaFlags,
    u8,
    &[
        (0x80, "K"),
        (0x40, "R"),
        (0x20, "P"),
        (0x10, "T"),
        (0x08, "B")
    ],
    4
);

impl BaStatus {
    /// Name and defining RFC of the status, for logs (IANA registry names; docs/notes.md
    /// §8). One table for every daemon, so had and mrd say the same thing.
    pub fn meaning(self) -> (&'static str, &'static str) {
        match u8::from(self) {
            0 => ("Binding Update accepted", "RFC 6275"),
            1 => ("Accepted but prefix discovery necessary", "RFC 6275"),
            2 => ("GRE key option not required", "RFC 5845"),
            3 => ("GRE tunnelling but TLV header not supported", "RFC 5845"),
            4 => ("MCOA NOTCOMPLETE", "RFC 5648"),
            5 => ("MCOA RETURNHOME WO/NDP", "RFC 5648"),
            6 => ("PBU accepted, TB ignored, settings mismatch", "RFC 6058"),
            128 => ("Reason unspecified", "RFC 6275"),
            129 => ("Administratively prohibited", "RFC 6275"),
            130 => ("Insufficient resources", "RFC 6275"),
            131 => ("Home registration not supported", "RFC 6275"),
            132 => ("Not home subnet", "RFC 6275"),
            133 => ("Not home agent for this mobile node", "RFC 6275"),
            134 => ("Duplicate Address Detection failed", "RFC 6275"),
            135 => ("Sequence number out of window", "RFC 6275"),
            136 => ("Expired home nonce index", "RFC 6275"),
            137 => ("Expired care-of nonce index", "RFC 6275"),
            138 => ("Expired nonces", "RFC 6275"),
            139 => ("Registration type change disallowed", "RFC 6275"),
            140 => ("Mobile Router Operation not permitted", "RFC 3963"),
            141 => ("Invalid Prefix", "RFC 3963"),
            142 => ("Not Authorized for Prefix", "RFC 3963"),
            143 => ("Forwarding Setup failed (prefixes missing)", "RFC 3963"),
            144 => ("MIPV6-ID-MISMATCH", "RFC 4285"),
            145 => ("MIPV6-MESG-ID-REQD", "RFC 4285"),
            146 => ("MIPV6-AUTH-FAIL", "RFC 4285"),
            147 => ("Permanent home keygen token unavailable", "RFC 4866"),
            148 => ("CGA and signature verification failed", "RFC 4866"),
            149 => ("Permanent home keygen token exists", "RFC 4866"),
            150 => ("Non-null home nonce index expected", "RFC 4866"),
            151 => ("Service authorization failed", "RFC 5149"),
            152..=162 => ("Proxy Mobile IPv6 status", "RFC 5213"),
            163 => ("GRE key option required", "RFC 5845"),
            164 => ("MCOA MALFORMED", "RFC 5648"),
            165 => ("MCOA NON-MCOA BINDING EXISTS", "RFC 5648"),
            166 => ("MCOA PROHIBITED", "RFC 5648"),
            167 => ("MCOA UNKNOWN COA", "RFC 5648"),
            168 => ("MCOA BULK REGISTRATION PROHIBITED", "RFC 5648"),
            169 => ("MCOA SIMULTANEOUS HOME AND FOREIGN PROHIBITED", "RFC 5648"),
            170..=173 => ("Proxy Mobile IPv6 IPv4 status", "RFC 5844"),
            174 => ("Invalid Care-of Address", "RFC 6275"),
            175 => ("Invalid mobile node group identifier", "RFC 6602"),
            176 => ("REINIT_SA_WITH_HAC", "RFC 6618"),
            177 => ("Not authorized for delegated MNP", "RFC 7148"),
            178 => ("Requested DMNP in use", "RFC 7148"),
            s if s < 128 => ("Accepted (unassigned code)", "IANA"),
            _ => ("Rejected (unassigned code)", "IANA"),
        }
    }
}

/// A Binding Acknowledgement (RFC 6275 §6.1.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindingAck<'a> {
    /// Status.
    pub status: BaStatus,
    /// Flags.
    pub flags: BaFlags,
    /// Sequence number copied from the BU (the last accepted one for status 135).
    pub sequence: SequenceNumber,
    /// Granted lifetime (undefined on rejection).
    pub lifetime: Lifetime,
    /// Mobility options without padding, in wire order.
    pub options: Vec<MobilityOption<'a>>,
}

impl<'a> BindingAck<'a> {
    /// Octets of the fixed part after the common MH header (RFC 6275 §6.1.8).
    pub const FIXED_LEN: usize = 6;

    /// Parses the message data (MH octets 6 up to the Header Len boundary).
    pub(crate) fn parse_data(data: &'a [u8], cfg: ParseConfig) -> Result<Self> {
        let fixed = data.get(..Self::FIXED_LEN).ok_or(Error::Truncated)?;
        Ok(BindingAck {
            status: BaStatus::from(fixed[0]),
            flags: BaFlags(fixed[1]),
            sequence: SequenceNumber(u16::from_be_bytes([fixed[2], fixed[3]])),
            lifetime: Lifetime(u16::from_be_bytes([fixed[4], fixed[5]])),
            options: parse_options(&data[Self::FIXED_LEN..], cfg)?,
        })
    }

    /// Writes the fixed part into `fixed` (exactly [`Self::FIXED_LEN`] octets).
    pub(crate) fn emit_fixed(&self, fixed: &mut [u8]) {
        fixed[0] = self.status.into();
        fixed[1] = self.flags.0;
        fixed[2..4].copy_from_slice(&self.sequence.0.to_be_bytes());
        fixed[4..6].copy_from_slice(&self.lifetime.0.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(BaStatus::from(v)), v);
            assert_eq!(BaStatus::from(v).is_accepted(), v < 128);
        }
        assert_eq!(BaStatus::from(0), BaStatus::Accepted);
        assert_eq!(BaStatus::from(135), BaStatus::SequenceNumberOutOfWindow);
        assert_eq!(BaStatus::from(143), BaStatus::ForwardingSetupFailed);
        assert_eq!(BaStatus::from(146), BaStatus::Mipv6AuthFail);
        assert_eq!(BaStatus::from(174), BaStatus::InvalidCareOfAddress);
        assert_eq!(BaStatus::from(178), BaStatus::RequestedDmnpInUse);
        assert_eq!(BaStatus::from(179), BaStatus::Unknown(179));
        assert_eq!(BaStatus::from(7), BaStatus::Unknown(7));
        // Every code from 128 to 178 has a name.
        for v in 128..=178u8 {
            assert!(!matches!(BaStatus::from(v), BaStatus::Unknown(_)), "{v}");
        }
    }

    #[test]
    fn flags() {
        let f = BaFlags::K | BaFlags::R;
        assert_eq!(f.bits(), 0xc0);
        assert!(f.key_management() && f.mobile_router());
        assert!(!f.proxy() && !f.tlv_header() && !f.bulk());
        assert_eq!(format!("{f:?}"), "BaFlags(K|R)");
        assert_eq!(format!("{:?}", BaFlags(0x0b)), "BaFlags(B|0x03)");
        let mut g = BaFlags::empty();
        g.set(BaFlags::P, true);
        g |= BaFlags::T;
        assert_eq!(g, BaFlags(0x30));
        g.set(BaFlags::P, false);
        assert_eq!(g & BaFlags::T, BaFlags::T);
        assert!(BaFlags::B.bulk());
    }
}
