//! Runs the seed corpus of had's fuzz target (`fuzz/corpus/journal_load` at the workspace
//! root) through the same checks the fuzzer makes, so every seed — and every crash input
//! ever added there — stays fixed.
//!
//! The seeds are journals written with `had::journal::frame`, whole, torn and damaged, by
//! `write_seed_corpus` below (`cargo test -p had --test fuzz_corpus -- --ignored`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use had::journal::{frame, load_image};
use had::record::{JournalRecord, PersistedBinding};
use mipsock::CareOf;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/journal_load")
}

#[test]
fn journal_load_corpus_passes_the_fuzz_checks() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).expect("seed corpus directory") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        had::fuzzing::journal_load(&data);
        n += 1;
    }
    assert!(
        n >= 5,
        "expected the journal_load seed corpus, found {n} files"
    );
}

#[test]
fn seeds_are_real_journals() {
    let data = std::fs::read(corpus().join("journal")).unwrap();
    let report = load_image(Path::new("journal"), &data, WALL).unwrap();
    assert_eq!(report.bindings.len(), 3);
    assert!(report.damaged.is_empty());
    // Written before RFC 5648 support: bindings without a BID.
    assert!(report.bindings.iter().all(|b| b.bid.is_none()));
    let data = std::fs::read(corpus().join("journal_mcoa")).unwrap();
    let report = load_image(Path::new("journal_mcoa"), &data, WALL).unwrap();
    let bids: Vec<_> = report.bindings.iter().map(|b| (b.hoa, b.bid)).collect();
    let hoa = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x500);
    assert_eq!(bids, [(hoa, Some(1)), (hoa, Some(2))]);
}

const WALL: Duration = Duration::from_secs(1_800_000_000);

fn binding(i: u16, v4: bool) -> PersistedBinding {
    PersistedBinding {
        hoa: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100 * i),
        bid: None,
        coa: if v4 {
            CareOf::V4 {
                addr: Ipv4Addr::new(192, 0, 2, i as u8),
                udp_port: Some(49152),
            }
        } else {
            CareOf::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, i))
        },
        flags: 0xc400,
        sequence: i,
        lifetime_secs: 400,
        expires_unix_ms: (WALL + Duration::from_secs(400)).as_millis() as u64,
        mnp_v6: vec!["2001:db8:100::/48".parse().unwrap()],
        mnp_v4: vec!["192.0.2.16/28".parse().unwrap()],
        hoa_v4: v4.then_some(Ipv4Addr::new(203, 0, 113, 100)),
        spi: Some(1000 + u32::from(i)),
        last_timestamp: Some(0xeb7a_0000_0000_0001),
        nat_detected: v4,
        rh2: !v4,
        flows: Vec::new(),
        bid_pri: 0,
    }
}

/// Writes the seed corpus.
#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seed_corpus() {
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, data: &[u8]| std::fs::write(dir.join(name), data).unwrap();
    let header = *b"HADJ\0\0\0\x01";

    let records = [
        JournalRecord::Upsert(binding(1, false)),
        JournalRecord::Upsert(binding(2, true)),
        JournalRecord::Upsert(binding(3, false)),
        JournalRecord::Remove {
            hoa: binding(2, true).hoa,
            bid: None,
        },
        JournalRecord::Upsert(binding(2, false)),
    ];
    let mut journal = header.to_vec();
    let mut starts = Vec::new();
    for r in &records {
        starts.push(journal.len());
        frame(r, &mut journal);
    }
    write("journal", &journal);
    write("torn_tail", &journal[..journal.len() - 5]);
    let mut flipped = journal.clone();
    flipped[starts[1] + 20] ^= 0x10;
    write("flipped_bit", &flipped);
    let mut garbage = journal.clone();
    garbage.splice(starts[2]..starts[2], [0xff; 37]);
    write("garbage_between_frames", &garbage);
    let mut expired = header.to_vec();
    let mut old = binding(4, true);
    old.expires_unix_ms = 1;
    frame(&JournalRecord::Upsert(old), &mut expired);
    write("expired", &expired);
    write("header_only", &header);
    write("foreign_file", b"not a journal at all");
    // One record's octets, as the record decoder sees them.
    let mut one = Vec::new();
    records[1].encode(&mut one);
    write("record_upsert_v4", &one);
    let mut one = Vec::new();
    records[3].encode(&mut one);
    write("record_remove", &one);
    // RFC 5648: one home address, bindings by BID, one of them removed.
    let with_bid = |bid: u16, v4: bool| {
        let mut b = binding(5, v4);
        b.bid = Some(bid);
        b
    };
    let mut mcoa = header.to_vec();
    for r in [
        JournalRecord::Upsert(with_bid(1, false)),
        JournalRecord::Upsert(with_bid(2, true)),
        JournalRecord::Upsert(with_bid(3, false)),
        JournalRecord::Remove {
            hoa: with_bid(3, false).hoa,
            bid: Some(3),
        },
    ] {
        frame(&r, &mut mcoa);
    }
    write("journal_mcoa", &mcoa);
}
