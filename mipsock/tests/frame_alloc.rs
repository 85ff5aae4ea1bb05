//! A forged length prefix inside a frame body must not make the decoder allocate more than
//! the frame holds. Its own test binary: it counts allocations with a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mipsock::frame::{self, FrameError, HEADER_LEN, MAX_BODY};
use mipsock::{Body, Message, StateDump, StateItem};

/// The system allocator, remembering the largest single request while armed.
struct Largest;

static ARMED: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize) {
    if ARMED.load(Ordering::Relaxed) {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is the one System::alloc needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the one System::dealloc needs.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's contract is the one System::realloc needs.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// The largest allocation made while decoding `bytes`, and the result.
fn decode_measured(bytes: &[u8]) -> (usize, Result<Message, FrameError>) {
    LARGEST.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    let r = frame::decode(bytes);
    ARMED.store(false, Ordering::Relaxed);
    (LARGEST.load(Ordering::Relaxed), r)
}

#[test]
fn a_forged_item_count_allocates_no_more_than_the_frame() {
    // A StateDump with no items: its body ends with the item count, 0 (one octet).
    let empty = Message::new(Body::StateDump(StateDump {
        requester_pid: 1,
        items: vec![],
    }));
    let mut bytes = frame::encode(&empty).unwrap();
    assert_eq!(bytes.pop(), Some(0));
    // Claim as many items as octets follow (the most postcard believes), each a StateItem
    // (well over a hundred octets in memory), then fill the body with 0xff, which is no
    // item at all.
    let fill = MAX_BODY - (bytes.len() - HEADER_LEN) - 3;
    let mut n = fill;
    while n >= 0x80 {
        bytes.push(n as u8 | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
    bytes.resize(HEADER_LEN + MAX_BODY, 0xff);
    let body_len = (bytes.len() - HEADER_LEN) as u32;
    bytes[8..12].copy_from_slice(&body_len.to_be_bytes());
    assert!(std::mem::size_of::<StateItem>() > 64);

    let (largest, r) = decode_measured(&bytes);
    assert!(matches!(r, Err(FrameError::Body { .. })), "{r:?}");
    assert!(
        largest <= bytes.len(),
        "decoding a {}-octet frame allocated {largest} octets at once",
        bytes.len()
    );
}
