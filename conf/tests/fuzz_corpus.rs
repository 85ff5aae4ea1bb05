//! Runs the seed corpora of conf's fuzz targets (`fuzz/corpus/<target>` at the workspace
//! root) through the same checks the fuzzers make, so every seed — and every crash input
//! ever added there — stays fixed.
//!
//! The seeds are the shipped samples (`etc/`), a SHISA user's files (`tests/fixtures/`) and
//! a few hostile files, written by `write_seed_corpora` below
//! (`cargo test -p conf --test fuzz_corpus -- --ignored`).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus(target: &str) -> PathBuf {
    root().join("fuzz/corpus").join(target)
}

/// Feeds every file of `target`'s corpus to `check`; returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = corpus(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        n += 1;
    }
    n
}

#[test]
fn daemon_conf_corpus_passes_the_fuzz_checks() {
    let n = replay("daemon_conf", conf::fuzzing::daemon_conf);
    assert!(
        n >= 8,
        "expected the daemon_conf seed corpus, found {n} files"
    );
}

#[test]
fn auth_database_corpus_passes_the_fuzz_checks() {
    let n = replay("auth_database", conf::fuzzing::auth_database);
    assert!(
        n >= 5,
        "expected the auth_database seed corpus, found {n} files"
    );
}

#[test]
fn prefix_table_corpus_passes_the_fuzz_checks() {
    let n = replay("prefix_table", conf::fuzzing::prefix_table);
    assert!(
        n >= 5,
        "expected the prefix_table seed corpus, found {n} files"
    );
}

#[test]
fn seeds_are_real_files() {
    let text = std::fs::read_to_string(corpus("auth_database").join("sample")).unwrap();
    let (db, _) = conf::AuthDatabase::parse_str(&text, "auth-database").unwrap();
    assert_eq!(db.len(), 3);
    let text = std::fs::read_to_string(corpus("daemon_conf").join("shisa_mrd")).unwrap();
    let doc = conf::grammar::Document::parse(&text, "mrd.conf").unwrap();
    assert_eq!(doc.statements.len(), 2);
}

/// Writes the seed corpora from the samples and fixtures, plus hostile variants.
#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_seed_corpora() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let read = |path: &str| std::fs::read(root().join(path)).unwrap();

    let had = read("etc/had.conf");
    let mrd = read("etc/mrd.conf");
    write("daemon_conf", "sample_had", &had);
    write("daemon_conf", "sample_mrd", &mrd);
    write(
        "daemon_conf",
        "shisa_had",
        &read("conf/tests/fixtures/shisa-had.conf"),
    );
    write(
        "daemon_conf",
        "shisa_mrd",
        &read("conf/tests/fixtures/shisa-mrd.conf"),
    );
    write(
        "daemon_conf",
        "inline_authentication",
        b"interface mip0 {\n\thome-address 2001:db8:1::100;\n\thome-agent-address 2001:db8:1::1;\n\
          \tmobile-network-prefix 2001:db8:100::/48;\n\tauthentication {\n\t\tspi 1000;\n\
          \t\tkey 0x6e656d6f2d73616d706c652d6b657931;\n\t\tidentifier \"mr1@example.org\";\n\t};\n};\n",
    );
    write(
        "daemon_conf",
        "ha_no_auth_prefixtable_rows",
        b"home-prefix 2001:db8:1::/64;\nauthentication none;\nprefixtable {\n\
          2001:db8:1::200 2001:db8:200:: 48 implicit\n2001:db8:1::200 198.51.100.0/28 implicit 7;\n};\n",
    );
    write(
        "daemon_conf",
        "deep_braces",
        format!("{}{}", "interface a {\n".repeat(12), "};\n".repeat(12)).as_bytes(),
    );
    write(
        "daemon_conf",
        "huge_numbers",
        b"debug 184467440737095516160;\nbinding-lifetime-max 4294967296;\nhome-registration-lifetime 0x10;\n",
    );
    write(
        "daemon_conf",
        "odd_text",
        "# caf\u{e9} \u{2028}\r\nhome-address \"2001:db8:1::100\\t\";\r\nkey '\u{1f600}\\n';\n"
            .as_bytes(),
    );
    let mut not_utf8 = mrd[..200].to_vec();
    not_utf8.extend_from_slice(b"\xc3\xa9\xff\xe2\x82");
    write("daemon_conf", "not_utf8", &not_utf8);

    write("auth_database", "sample", &read("etc/auth-database"));
    write(
        "auth_database",
        "shisa",
        &read("conf/tests/fixtures/shisa-authdata"),
    );
    write(
        "auth_database",
        "forms",
        b"2001:db8:1::101 0x3e9 \"sixteen-byte-key\" # trailing\n\
          mr3@example.org 1002 'a key given as text' 2001:db8:1::300\n\
          2001:db8:1::102 4294967295 0x000102030405060708090a0b0c0d0e0f mr4@example.org\n",
    );
    write(
        "auth_database",
        "errors",
        b"2001:db8::1 255 0x00112233445566778899aabbccddeeff\n192.0.2.1 1000 'k'\nx 99999999999 0x\n",
    );
    write(
        "auth_database",
        "escapes",
        b"a@b 300 \"\\\\\\\"\\n\\t0123456789abcdef\"\n",
    );

    write("prefix_table", "sample", &read("etc/prefixtable.cf"));
    write(
        "prefix_table",
        "forms",
        b"2001:db8:1::200 2001:db8:200:: 48 implicit\n2001:db8:1::200 2001:db8:200::/48 implicit 3;\n\
          2001:db8:1::300 10.0.0.0/8 explicit 65535\n",
    );
    write(
        "prefix_table",
        "overlaps",
        b"2001:db8:1::1 2001:db8::/32 explicit\n2001:db8:1::2 2001:db8:1::/48 explicit\n",
    );
    write(
        "prefix_table",
        "odd",
        b"2001:db8:1::1 2001:db8:ff::1/129 sometimes 70000 x;\n{ } ; 0.0.0.0/0 99999999999999999999\n",
    );
    write(
        "prefix_table",
        "blocks",
        b"2001:db8:1::1 { 2001:db8::/32 explicit; };\n",
    );
}
