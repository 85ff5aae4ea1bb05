//! The body of the `mh_parse` fuzz target, kept in the crate so the seed corpus also runs as
//! an ordinary test (`tests/fuzz_corpus.rs`) and the two cannot drift apart.

use crate::ext::{Walk, walk};
use crate::mh::MhRepr;
use crate::option::ParseConfig;

/// Feeds `data` to every parser a signalling daemon runs on untrusted input: the IPv6 walker
/// (as from AF_PACKET), the Mobility Header parser with and without SHISA's legacy option,
/// and the checksum check. Whatever parses must re-emit to the same meaning. Panics only on
/// a bug: a parser panic, or a parse/emit/parse round trip that changes the Repr.
pub fn mh_parse(data: &[u8]) {
    // The bytes as a whole IPv6 packet.
    if let Ok(Walk::Mobility(pkt)) = walk(data) {
        let _ = pkt.verify_checksum();
        check_mh(pkt.payload);
    }
    // The bytes as a bare Mobility Header.
    check_mh(data);
}

fn check_mh(mh: &[u8]) {
    for cfg in [
        ParseConfig::default(),
        ParseConfig {
            legacy_ipv4_mnp: true,
        },
    ] {
        let Ok(repr) = MhRepr::parse_bytes(mh, cfg) else {
            continue;
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit_to(&mut buf)
            .expect("a parsed Repr must emit into buffer_len() octets");
        let again = MhRepr::parse_bytes(&buf, cfg).expect("emitted MH must parse");
        assert_eq!(repr, again, "parse(emit(parse(x))) changed the message");
    }
}
