//! What Binding Acknowledgement and IPv4 Address Acknowledgement statuses mean, for logs
//! (name and defining RFC, docs/notes.md §8), and how the mobile router reacts.

use proto::mh::BaStatus;
use proto::option::Ipv4AckStatus;

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

/// What the mobile router does after its home registration is refused (RFC 6275
/// §11.7.3, RFC 3963 §5.3, RFC 4285 §8). 135 and 144 never get here: they resynchronise
/// the sequence number or the clock and resend at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reaction {
    /// A condition that may pass (128-130, a busy or unhappy HA; codes that do not apply
    /// to a home registration): the same BU again with the §11.8 back-off, up to
    /// MAX_BINDACK_TIMEOUT between BUs.
    Retry,
    /// 139: the HA holds a binding of the other registration type for our home address
    /// (a mobile node's, without R; RFC 3963 §6.2). A de-registration removes it whatever
    /// its type; then the MR registers afresh. Once: a second 139 stops.
    DeregisterThenRegister,
    /// Retrying the same BU with this HA cannot help (wrong HA, our address defended on
    /// the home link, prefixes or keys that do not match its configuration): no further
    /// BU to this HA until the configuration changes (SIGHUP) — RFC 3963 §5.3 for
    /// 140-143 in either registration mode, RFC 4285 §8 for 146.
    Stop,
}

/// The reaction to a refused home registration; `timestamps`: our BUs carry RFC 4285
/// replay protection.
pub fn reaction(status: BaStatus, timestamps: bool) -> Reaction {
    match u8::from(status) {
        131..=134 | 140..=143 | 146 => Reaction::Stop,
        // We send no timestamps but the HA wants them: only the configuration can help.
        145 if !timestamps => Reaction::Stop,
        139 => Reaction::DeregisterThenRegister,
        _ => Reaction::Retry,
    }
}

/// What an operator should check after a refusal that stops the registration.
pub fn advice(status: BaStatus) -> &'static str {
    match u8::from(status) {
        131 => "this home agent takes no home registrations: check home-agent-address",
        132 => "the home address is outside the home agent's home prefixes: check home-address",
        133 => "this home agent does not serve our home address: check home-agent-address",
        134 => {
            "another node defends our home address on the home link (proxy DAD failed): \
             check home-address"
        }
        139 => "the home agent keeps a binding of another registration type for our home address",
        140 => "the home agent does not let this node act as a mobile router",
        141 => "a mobile network prefix we register is invalid: check mobile-network-prefix",
        142 => "the home agent's prefix table does not give us these mobile network prefixes",
        143 => "the home agent has no mobile network prefix for us (implicit mode)",
        145 => "the home agent requires RFC 4285 replay protection (timestamps)",
        146 => {
            "authentication failed: check spi and key against the home agent's auth-database, \
             and that its entry for that SPI names our home address (or identifier)"
        }
        _ => "see the status's RFC",
    }
}
