//! Helpers shared by the external-truth tests: a pcap writer and runners for tshark and
//! scapy. The tools are installed by `.ci/run`; a missing tool fails the test with a message
//! saying what to install, because a skipped external check would prove nothing.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// LINKTYPE_RAW: each record is a bare IPv4 or IPv6 packet, told apart by its first nibble.
const LINKTYPE_RAW: u32 = 101;

/// Writes `packets` as a classic pcap file (microsecond timestamps, one second apart).
pub fn write_pcap(path: &Path, packets: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        out.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).expect("write pcap");
}

fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: `apt-get install {package}` (.ci/run does this)"
    );
}

/// Runs tshark over a pcap and returns, per packet, the values of `fields` (each field may
/// occur several times in one packet, e.g. one MNP option after another).
pub fn tshark_fields(
    pcap: &Path,
    decode_as: &[&str],
    fields: &[&str],
) -> Vec<std::collections::BTreeMap<String, Vec<String>>> {
    require("tshark", "tshark");
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(pcap).arg("-T").arg("json");
    // Judge IPv4 and UDP checksums (…checksum.status: 0 = bad, 1 = good, 2 = unverified, 3 = not present).
    cmd.args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ]);
    for d in decode_as {
        cmd.arg("-d").arg(d);
    }
    for f in fields {
        cmd.arg("-e").arg(f);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tshark json");
    json.as_array()
        .expect("array of packets")
        .iter()
        .map(|pkt| {
            let layers = &pkt["_source"]["layers"];
            let mut m = std::collections::BTreeMap::new();
            if let Some(obj) = layers.as_object() {
                for (k, v) in obj {
                    let vals = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|x| x.as_str().unwrap_or_default().to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    m.insert(k.clone(), vals);
                }
            }
            m
        })
        .collect()
}

/// Runs tshark over a pcap and returns its PDML (every field with its position, size and
/// octets: what `-T json` leaves out for options it does not dissect).
pub fn tshark_pdml(pcap: &Path, decode_as: &[&str]) -> String {
    require("tshark", "tshark");
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(pcap).arg("-T").arg("pdml");
    for d in decode_as {
        cmd.arg("-d").arg(d);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// Runs a Python script under Debian's python3 (which has python3-scapy; a pyenv python on
/// PATH may not) and returns its stdout.
pub fn run_scapy(script: &Path) -> String {
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .arg(script)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "scapy script failed (is python3-scapy installed? `apt-get install python3-scapy`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}
