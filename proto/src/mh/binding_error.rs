//! Binding Error (MH type 7; RFC 6275 §6.1.9) and Binding Refresh Request (MH type 0;
//! RFC 6275 §6.1.2).

use std::net::Ipv6Addr;

use crate::option::{MobilityOption, ParseConfig, code_enum, parse_options};
use crate::{Error, Result};

code_enum! {
    /// Binding Error status (RFC 6275 §6.1.9).
    pub enum BeStatus(u8) {
        /// 1: Unknown binding for Home Address destination option.
        UnknownBindingForHomeAddressDestinationOption = 1,
        /// 2: Unrecognized MH Type value.
        UnrecognizedMhType = 2,
    }
}

impl BeStatus {
    /// Name and defining RFC of the status, for logs.
    pub fn meaning(self) -> (&'static str, &'static str) {
        match u8::from(self) {
            1 => (
                "Unknown binding for Home Address destination option",
                "RFC 6275",
            ),
            2 => ("Unrecognized MH Type value", "RFC 6275"),
            _ => ("unassigned status", "IANA"),
        }
    }
}

/// A Binding Error (RFC 6275 §6.1.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindingError<'a> {
    /// Status.
    pub status: BeStatus,
    /// The home address from the offending packet's Home Address option, or `::`.
    pub home_address: Ipv6Addr,
    /// Mobility options without padding (none are defined; unknown ones are kept).
    pub options: Vec<MobilityOption<'a>>,
}

impl<'a> BindingError<'a> {
    /// Octets of the fixed part after the common MH header: Status, Reserved, Home Address.
    pub const FIXED_LEN: usize = 18;

    /// Parses the message data (MH octets 6 up to the Header Len boundary).
    pub(crate) fn parse_data(data: &'a [u8], cfg: ParseConfig) -> Result<Self> {
        let fixed = data.get(..Self::FIXED_LEN).ok_or(Error::Truncated)?;
        let mut hoa = [0u8; 16];
        hoa.copy_from_slice(&fixed[2..18]);
        Ok(BindingError {
            status: BeStatus::from(fixed[0]),
            home_address: Ipv6Addr::from(hoa),
            options: parse_options(&data[Self::FIXED_LEN..], cfg)?,
        })
    }

    /// Writes the fixed part into `fixed` (exactly [`Self::FIXED_LEN`] octets).
    pub(crate) fn emit_fixed(&self, fixed: &mut [u8]) {
        fixed[0] = self.status.into();
        fixed[1] = 0;
        fixed[2..18].copy_from_slice(&self.home_address.octets());
    }
}

/// A Binding Refresh Request (RFC 6275 §6.1.2): only options after a reserved field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct BindingRefreshRequest<'a> {
    /// Mobility options without padding (e.g. Binding Identifier, RFC 5648).
    pub options: Vec<MobilityOption<'a>>,
}

impl<'a> BindingRefreshRequest<'a> {
    /// Octets of the fixed part after the common MH header: Reserved (16 bits).
    pub const FIXED_LEN: usize = 2;

    /// Parses the message data (MH octets 6 up to the Header Len boundary).
    pub(crate) fn parse_data(data: &'a [u8], cfg: ParseConfig) -> Result<Self> {
        let opts = data.get(Self::FIXED_LEN..).ok_or(Error::Truncated)?;
        Ok(BindingRefreshRequest {
            options: parse_options(opts, cfg)?,
        })
    }

    /// Writes the fixed part into `fixed` (exactly [`Self::FIXED_LEN`] octets).
    pub(crate) fn emit_fixed(&self, fixed: &mut [u8]) {
        fixed.fill(0);
    }
}
