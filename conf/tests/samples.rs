//! Every shipped sample (`etc/`) and a SHISA user's files load, and agree with each other.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conf::{AuthDatabase, HaAuthentication, HaConfig, MrConfig, RegistrationMode};
use ipnet::IpNet;

fn etc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The samples name their installed paths (/etc/nemo/...); read them from etc/ instead.
fn sample(name: &str) -> (String, String) {
    let path = etc().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let dir = format!("{}/", etc().display());
    (text.replace("/etc/nemo/", &dir), path.display().to_string())
}

fn hoa() -> Ipv6Addr {
    "2001:db8:1::100".parse().unwrap()
}

#[test]
fn sample_auth_database() {
    let (db, warnings) = AuthDatabase::from_file(etc().join("auth-database")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(db.len(), 3);
    assert_eq!(db.by_home_address(hoa()).unwrap().spi, 1000);
    let mr3 = db.by_identifier("mr3@example.org").unwrap();
    assert_eq!(mr3.spi, 1002);
    assert_eq!(mr3.home_address, Some("2001:db8:1::300".parse().unwrap()));
    assert!(db.entries().iter().all(|e| e.key.len() == 16));
}

#[test]
fn sample_prefixtable_file_and_had_conf() {
    let (text, file) = sample("had.conf");
    let (ha, warnings) = HaConfig::parse_str_for(&text, &file, Some("eth0")).unwrap();
    let messages: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    // Every home address of the sample prefix table has its SA (mr3's by NAI).
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(ha.interface.as_deref(), Some("eth0"));
    assert_eq!(
        ha.home_agent_address,
        Some("2001:db8:1::1".parse().unwrap())
    );
    assert_eq!(ha.home_prefixes, vec!["2001:db8:1::/64".parse().unwrap()]);
    assert_eq!(ha.binding_lifetime_max, Duration::from_secs(3600));
    assert_eq!(ha.prefix_table.entries.len(), 5);
    let mr2: Ipv6Addr = "2001:db8:1::200".parse().unwrap();
    let rows: Vec<_> = ha.prefix_table.for_home_address(mr2).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.mode == RegistrationMode::Implicit));
    assert_eq!(rows[1].prefix, "198.51.100.0/28".parse::<IpNet>().unwrap());
    let HaAuthentication::Required(db) = &ha.authentication else {
        panic!("the sample requires authentication");
    };
    assert_eq!(db.len(), 3);
}

#[test]
fn sample_mrd_conf_matches_had_conf() {
    let (text, file) = sample("mrd.conf");
    let (mr, warnings) = MrConfig::parse_str_for(&text, &file, Some("mip0")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(mr.home_address, hoa());
    assert_eq!(
        mr.mobile_network_prefixes,
        vec!["2001:db8:100::/48".parse().unwrap()]
    );
    assert_eq!(
        mr.ipv4_mobile_network_prefixes,
        vec!["192.0.2.16/28".parse().unwrap()]
    );
    assert_eq!(mr.lifetime(), Duration::from_secs(600));
    assert_eq!(mr.egress_interfaces, vec!["wlan0", "eth1"]);
    assert!(!mr.legacy_ipv4_mnp_option && !mr.optimistic_handover);
    assert!(!mr.multiple_care_of_addresses);
    // The commented multiple-care-of-addresses line works as written.
    let mcoa = text.replace(
        "# multiple-care-of-addresses yes;",
        "multiple-care-of-addresses yes;",
    );
    assert_ne!(mcoa, text);
    let (mr2, _) = MrConfig::parse_str_for(&mcoa, &file, Some("mip0")).unwrap();
    assert!(mr2.multiple_care_of_addresses);
    assert_eq!(
        (mr2.binding_id("wlan0"), mr2.binding_id("eth1")),
        (Some(1), Some(2))
    );

    let (text, file) = sample("had.conf");
    let (ha, _) = HaConfig::parse_str(&text, &file).unwrap();
    // The MR's home agent is this HA, its HoA on a served home prefix, every prefix
    // authorised for it, and both hold the same key under the same SPI.
    assert_eq!(mr.home_agent_address, ha.home_agent_address);
    assert!(ha.is_home_address(mr.home_address));
    for p in mr.all_prefixes() {
        let row = ha
            .prefix_table
            .authorizes(mr.home_address, &p)
            .expect("authorised");
        assert_eq!(row.mode, mr.registration_mode);
    }
    let HaAuthentication::Required(db) = &ha.authentication else {
        panic!("required");
    };
    let mine = mr.authentication.as_ref().unwrap();
    let theirs = db.by_spi(mine.spi).unwrap();
    assert_eq!(mine.key, theirs.key);
    assert_eq!(theirs.home_address, Some(mr.home_address));
}

#[test]
fn samples_use_documentation_addresses_only() {
    let doc4: [IpNet; 3] = [
        "192.0.2.0/24".parse().unwrap(),
        "198.51.100.0/24".parse().unwrap(),
        "203.0.113.0/24".parse().unwrap(),
    ];
    let doc6: IpNet = "2001:db8::/32".parse().unwrap();
    for name in [
        "mrd.conf",
        "mnd.conf",
        "had.conf",
        "prefixtable.cf",
        "auth-database",
    ] {
        let text = std::fs::read_to_string(etc().join(name)).unwrap();
        for word in text.split(|c: char| c.is_whitespace() || c == ';') {
            let addr = word.split('/').next().unwrap();
            if let Ok(a) = addr.parse::<std::net::IpAddr>() {
                let ok = match a {
                    std::net::IpAddr::V6(_) => doc6.contains(&a),
                    std::net::IpAddr::V4(_) => doc4.iter().any(|n| n.contains(&a)),
                };
                assert!(ok, "{name}: {word} is not a documentation address");
            }
        }
    }
}

#[test]
fn sample_mnd_conf_is_a_mobile_host_of_had_conf() {
    let (text, file) = sample("mnd.conf");
    let (mn, warnings) = MrConfig::parse_str_for(&text, &file, Some("mip0")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(mn.mobile_host);
    assert!(mn.all_prefixes().is_empty());
    let (text, file) = sample("had.conf");
    let (ha, _) = HaConfig::parse_str(&text, &file).unwrap();
    assert!(ha.is_home_address(mn.home_address));
    let HaAuthentication::Required(db) = &ha.authentication else {
        panic!("required");
    };
    let mine = mn.authentication.as_ref().unwrap();
    let theirs = db.by_spi(mine.spi).unwrap();
    assert_eq!(mine.key, theirs.key);
    assert_eq!(theirs.home_address, Some(mn.home_address));
}

#[test]
fn shisa_users_mrd_conf_loads() {
    let (mr, warnings) =
        MrConfig::from_file_for(fixtures().join("shisa-mrd.conf"), Some("mip0")).unwrap();
    assert_eq!(mr.debug, 1);
    assert_eq!(mr.home_address, hoa());
    assert_eq!(mr.home_registration_lifetime, 10);
    assert_eq!(mr.lifetime(), Duration::from_secs(40));
    assert_eq!(mr.home_agent_address, None); // SHISA's mrd -a, or discovery
    // No home agent is no longer a warning: mrd discovers one (RFC 6275 §11.4.1).
    assert!(
        !warnings
            .iter()
            .any(|w| w.to_string().contains("home-agent-address"))
    );
    assert_eq!(mr.all_prefixes().len(), 2);
    assert_eq!(mr.authentication.as_ref().unwrap().spi, 1000);
    let messages: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    for expected in [
        "'command-port'",
        "repeated",
        "binding identifiers",
        "'static-tunnel'",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected}: {messages:#?}"
        );
    }
}

#[test]
fn shisa_users_had_conf_loads() {
    let (ha, warnings) =
        HaConfig::from_file_for(fixtures().join("shisa-had.conf"), Some("eth0")).unwrap();
    assert!(ha.home_prefixes.is_empty()); // taken from eth0, as SHISA does
    assert_eq!(ha.prefix_table.entries.len(), 2);
    assert!(matches!(ha.authentication, HaAuthentication::Required(ref db) if db.len() == 2));
    // SHISA's homelink-dad key is honoured now (proxy DAD), not warned about.
    assert!(ha.homelink_dad);
    // SHISA's preference is this home agent's place in DHAAD Replies now.
    assert_eq!(ha.home_agent_preference, 10);
    let messages: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    for expected in [
        "'command-port'",
        "without ';'",
        "'static-tunnel'",
        "without dummy addresses",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected}: {messages:#?}"
        );
    }
    // Every warning names the file and, when about a statement, its line.
    assert!(messages.iter().all(|m| m.contains("shisa-had.conf")));
}

#[test]
fn missing_files_are_named() {
    let e = HaConfig::from_file("/nonexistent/had.conf")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/had.conf: "), "{e}");
    let e = HaConfig::parse_str("auth-database /nonexistent/authdata;\n", "had.conf")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/authdata: "), "{e}");
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for &(pos, op, c) in edits {
            if chars.is_empty() {
                chars.push(c);
                continue;
            }
            let i = pos % chars.len();
            match op % 3 {
                0 => {
                    chars.remove(i);
                }
                1 => chars.insert(i, c),
                _ => chars[i] = c,
            }
        }
        chars.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Damaged samples are refused or accepted, never a panic; a refusal points inside
        /// the text.
        #[test]
        fn damaged_samples_never_panic(
            edits in proptest::collection::vec(
                (any::<usize>(), any::<u8>(), prop_oneof![
                    Just(';'), Just('{'), Just('}'), Just('#'), Just('"'), Just('/'),
                    Just(':'), Just('\n'), Just(' '), Just('1'), Just('x'), Just('-'),
                ]),
                1..6,
            )
        ) {
            for name in ["mrd.conf", "had.conf"] {
                let (text, file) = sample(name);
                let bad = mutate(&text, &edits);
                let lines = bad.split('\n').count() as u32;
                let r = if name == "mrd.conf" {
                    MrConfig::parse_str(&bad, &file).map(|_| ())
                } else {
                    HaConfig::parse_str(&bad, &file).map(|_| ())
                };
                if let Err(conf::ConfError::At { line, .. }) = r {
                    // Errors may point into the auth-database or prefixtable.cf too.
                    prop_assert!(line >= 1 && line <= lines.max(12));
                }
            }
            let text = std::fs::read_to_string(etc().join("auth-database")).unwrap();
            let _ = AuthDatabase::parse_str(&mutate(&text, &edits), "auth-database");
        }
    }
}
