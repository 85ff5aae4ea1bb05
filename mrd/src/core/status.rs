//! What Binding Acknowledgement and IPv4 Address Acknowledgement statuses mean, for logs
//! (name and defining RFC, protocol.md §2.3 and §4.11), and how the mobile router reacts.

use proto::mh::BaStatus;
use proto::option::Ipv4AckStatus;

use super::config::RegistrationMode;

/// Name and defining RFC of a Binding Acknowledgement status.
pub fn ba_status_meaning(status: BaStatus) -> (&'static str, &'static str) {
    match u8::from(status) {
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

/// Name and defining RFC of an IPv4 Address Acknowledgement status (RFC 5555 §3.2.1).
pub fn ipv4_ack_status_meaning(status: Ipv4AckStatus) -> (&'static str, &'static str) {
    match u8::from(status) {
        0 => ("Success", "RFC 5555"),
        128 => ("Failure, reason unspecified", "RFC 5555"),
        129 => ("Administratively prohibited", "RFC 5555"),
        130 => ("Incorrect IPv4 home address", "RFC 5555"),
        131 => ("Invalid IPv4 address", "RFC 5555"),
        132 => (
            "Dynamic IPv4 home address assignment not available",
            "RFC 5555",
        ),
        133 => ("Prefix allocation unauthorized", "RFC 5555"),
        s if s < 128 => ("Success (unassigned code)", "RFC 5555"),
        _ => ("Failure (unassigned code)", "RFC 5555"),
    }
}

/// True if a refusal means retrying the same BU cannot help, so the MR stops
/// (protocol.md §2.3; RFC 3963 §5.3; RFC 4285 §8):
///
/// * 140: the HA does not let this node be a mobile router (no other HA known here);
/// * 146: the HA cannot authenticate us; RFC 4285 says to stop sending BUs to it;
/// * explicit mode: 141/142, the prefixes we list are invalid or not ours;
/// * implicit mode: 143, the HA has no prefixes for us.
///
/// The codes a mode does not expect (143 in explicit, 141/142 in implicit mode) are the
/// HA's protocol errors: logged and retried with back-off like any other refusal.
pub fn is_fatal(status: BaStatus, mode: RegistrationMode) -> bool {
    match u8::from(status) {
        140 | 146 => true,
        141 | 142 => mode == RegistrationMode::Explicit,
        143 => mode == RegistrationMode::Implicit,
        _ => false,
    }
}
