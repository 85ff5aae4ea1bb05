//! How the mobile router reacts to a refused registration. What each status means (name
//! and defining RFC, for logs) is the status type's own: `BaStatus::meaning`.

use proto::mh::BaStatus;

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
