//! The body of mipsock's fuzz target (`fuzz/` at the workspace root), kept in the crate so
//! the seed corpus also runs as an ordinary test (`tests/fuzz_corpus.rs`). It panics only
//! on a bug: a decoder panic, or a broken invariant.

use crate::frame::{self, FrameDecoder, FrameError, MAX_FRAME};
use crate::message::Message;

/// Bus frame decoding: the octets as one datagram ([`frame::decode`], what every endpoint
/// runs on what it receives), and as a byte stream ([`FrameDecoder`]) fed whole and in
/// pieces.
///
/// Invariants: a decoded message encodes again and decodes to itself; the stream decoder
/// consumes octets with every result it gives and never holds a whole frame's worth
/// while asking for more; how the stream is cut does not change the messages found.
pub fn frame_decode(data: &[u8]) {
    if let Ok(msg) = frame::decode(data) {
        check_message(&msg);
    }
    let whole = stream(data, data.len());
    let step = data.first().map_or(1, |b| usize::from(b % 16) + 1);
    let pieces = stream(data, step);
    assert_eq!(
        whole, pieces,
        "the messages depend on how the stream is cut"
    );
}

/// A decoded message re-encodes and decodes to itself.
fn check_message(msg: &Message) {
    let bytes = frame::encode(msg).expect("a decoded message must encode");
    let again = frame::decode(&bytes).expect("an encoded message must decode");
    assert_eq!(&again, msg, "decode(encode(m)) != m");
}

/// The messages a [`FrameDecoder`] finds in `data` fed `step` octets at a time.
fn stream(data: &[u8], step: usize) -> Vec<Message> {
    let mut dec = FrameDecoder::new();
    let mut found = Vec::new();
    for chunk in data.chunks(step.max(1)) {
        dec.extend(chunk);
        loop {
            let before = dec.buffered();
            let Some(r) = dec.next_frame() else {
                break;
            };
            assert!(dec.buffered() < before, "a result without progress: {r:?}");
            match r {
                Ok(m) => {
                    check_message(&m);
                    found.push(m);
                }
                Err(FrameError::Skipped(n)) => assert!(n > 0),
                Err(_) => {}
            }
        }
        assert!(
            dec.buffered() < MAX_FRAME,
            "{} octets held waiting for more",
            dec.buffered()
        );
    }
    found
}
