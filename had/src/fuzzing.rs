//! The body of had's fuzz target (`fuzz/` at the workspace root), kept in the crate so the
//! seed corpus also runs as an ordinary test (`tests/fuzz_corpus.rs`). It panics only on a
//! bug: a loader panic, or a broken invariant.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::journal::{self, JournalError, file_header, frame, load_image, parse};
use crate::record::JournalRecord;

/// The wall clock the fuzzed journals are loaded at (2027-01-15).
const WALL: Duration = Duration::from_secs(1_800_000_000);

/// The binding-cache journal loader on a damaged file: the octets as a whole file, the
/// octets after a good file header (so they are frames), the octets cut into frames with
/// good CRCs (so they reach the record decoder), and the octets as one record.
///
/// Invariants: a journal loads whatever is in it, never panics; the good frames and the
/// damaged stretches cover the file exactly, in order; the records read, framed again,
/// load back with no damage; the live set is sorted, unique and unexpired; a record that
/// decodes encodes to exactly its octets.
pub fn journal_load(data: &[u8]) {
    let path = Path::new("fuzz.journal");
    match load_image(path, data, WALL) {
        // An empty file is an empty journal (had creates it so).
        Ok(report) if data.is_empty() => assert_eq!(report, Default::default()),
        Ok(_) => check_image(data),
        Err(JournalError::NotAJournal(_)) => {
            assert!(
                data.len() < 8 || data[..8] != file_header(),
                "our header refused"
            );
        }
        Err(e) => panic!("loading octets failed with {e}"),
    }

    let mut image = file_header().to_vec();
    image.extend_from_slice(data);
    check_image(&image);

    // Octets cut into frames: a length octet, then that many octets of record.
    let mut image = file_header().to_vec();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (payload, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        push_frame(&mut image, payload);
    }
    check_image(&image);

    if let Ok(rec) = JournalRecord::decode(data) {
        let mut out = Vec::new();
        rec.encode(&mut out);
        assert_eq!(out, data, "encode(decode(x)) != x");
    }
}

/// A frame with a correct length and CRC around any payload (`journal::frame` takes a
/// record, not octets).
fn push_frame(image: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_be_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    image.extend_from_slice(&len);
    image.extend_from_slice(&h.finalize().to_be_bytes());
    image.extend_from_slice(payload);
}

/// `image` starts with a good header: check what loading it finds.
fn check_image(image: &[u8]) {
    let (records, damaged) = parse(image);
    // Frames of the records read, and the damaged stretches, tile the file after its header.
    let mut good = 0u64;
    for r in &records {
        let mut out = Vec::new();
        frame(r, &mut out);
        good += out.len() as u64;
    }
    let mut end = 8u64;
    for d in &damaged {
        assert!(d.offset >= end, "damaged stretches overlap or go backwards");
        assert!(d.skipped > 0, "an empty damaged stretch at {}", d.offset);
        end = d.offset + d.skipped;
    }
    assert!(end <= image.len() as u64, "a damaged stretch past the end");
    let skipped: u64 = damaged.iter().map(|d| d.skipped).sum();
    assert_eq!(
        good + skipped,
        image.len() as u64 - 8,
        "good frames and damaged stretches do not cover the file"
    );

    // What was read, written again, reads back whole.
    let mut again = file_header().to_vec();
    for r in &records {
        frame(r, &mut again);
    }
    let (records2, damaged2) = parse(&again);
    assert_eq!(records2, records, "records changed by frame + parse");
    assert!(damaged2.is_empty(), "our own frames reported damaged");

    let report = load_image(Path::new("fuzz.journal"), image, WALL).expect("our header");
    assert_eq!(report.records, records.len());
    assert_eq!(report.damaged, damaged);
    let wall_ms = WALL.as_millis() as u64;
    assert!(
        report
            .bindings
            .is_sorted_by(|a, b| (a.hoa, a.bid) < (b.hoa, b.bid)),
        "unsorted or repeated"
    );
    assert!(
        report.bindings.iter().all(|b| b.expires_unix_ms > wall_ms),
        "expired binding"
    );
    let (live, expired) = journal::fold(records.clone(), WALL);
    assert_eq!(live, report.bindings);
    assert_eq!(expired, report.expired);
    // Every live binding is the last record of its home address and BID (RFC 5648), and
    // an Upsert.
    let mut seen = HashSet::new();
    for r in records.iter().rev() {
        if seen.insert(r.key())
            && let JournalRecord::Upsert(b) = r
            && b.expires_unix_ms > wall_ms
        {
            assert!(live.contains(b), "the last Upsert of {} is not live", b.hoa);
        }
    }
    assert_eq!(live.len() + expired, count_upserted_last(&records));
}

/// Bindings (home address and BID) whose last record is an Upsert.
fn count_upserted_last(records: &[JournalRecord]) -> usize {
    let mut seen = HashSet::new();
    records
        .iter()
        .rev()
        .filter(|r| seen.insert(r.key()) && matches!(r, JournalRecord::Upsert(_)))
        .count()
}
