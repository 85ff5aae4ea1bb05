//! Binding Update processing (RFC 6275 §9.5.1, §10.3.1; RFC 3963 §6; RFC 5555 §4.4;
//! RFC 4285 §4-6).

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use proto::mh::BindingUpdate;

use super::{Ha, ReceivedSignal};

impl Ha {
    pub(crate) fn process_bu(
        &mut self,
        _now: Instant,
        _wall: Duration,
        _signal: &ReceivedSignal<'_>,
        _mh: &[u8],
        _hoa: Ipv6Addr,
        _bu: &BindingUpdate<'_>,
    ) {
    }
}
