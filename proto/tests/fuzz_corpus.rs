//! Runs the fuzz target's seed corpus (`fuzz/corpus/mh_parse`) through the same checks the
//! fuzzer makes, so every seed — and every crash input ever added there — stays fixed.

use std::path::Path;

#[test]
fn seed_corpus_passes_the_fuzz_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mh_parse");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        proto::fuzzing::mh_parse(&data);
        n += 1;
    }
    assert!(
        n >= 10,
        "expected the seed corpus in {}, found {n} files",
        dir.display()
    );
}

#[test]
fn seeds_are_real_messages() {
    // The seeds are worth something only if they parse: spot-check the worked example of
    // our worked example (explicit NEMO BU with an IPv4 MNP).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mh_parse");
    let data = std::fs::read(dir.join("worked_example_bu")).unwrap();
    let repr = proto::mh::MhRepr::parse_bytes(&data, Default::default()).expect("parses");
    assert_eq!(repr.mh_type(), proto::mh::MhType::from(5));
    assert_eq!(repr.options().len(), 3);
}
