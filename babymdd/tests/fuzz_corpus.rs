//! Runs the seed corpora of babymdd's fuzz targets (`fuzz/corpus/<target>` at the
//! workspace root) through the same checks the fuzzers make, so every seed — and every
//! crash input ever added there — stays fixed.
//!
//! The seeds are written by `write_seed_corpora` below
//! (`cargo test -p babymdd --test fuzz_corpus -- --ignored`): the messages our client
//! sends, a busybox udhcpd ACK, and scripts that take the client through a whole lease.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use babymdd::dhcp::client::{Client, ClientConfig};
use babymdd::dhcp::encode;
use proto::dhcp::{BOOTREPLY, DhcpRepr, MessageType};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
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
fn dhcp_message_corpus_passes_the_fuzz_checks() {
    let n = replay("dhcp_message", babymdd::fuzzing::dhcp_message);
    assert!(
        n >= 5,
        "expected the dhcp_message seed corpus, found {n} files"
    );
}

#[test]
fn dhcp_client_corpus_passes_the_fuzz_checks() {
    let n = replay("dhcp_client", babymdd::fuzzing::dhcp_client);
    assert!(
        n >= 5,
        "expected the dhcp_client seed corpus, found {n} files"
    );
}

#[test]
fn seeds_are_real_messages() {
    let data = std::fs::read(corpus("dhcp_message").join("udhcpd_ack")).unwrap();
    let m = DhcpRepr::parse_bytes(&data).unwrap();
    assert_eq!(m.message_type, Some(MessageType::Ack));
    assert_eq!(m.lease_time, Some(600));
}

const SERVER: [u8; 4] = [192, 168, 77, 1];
const ADDR: [u8; 4] = [192, 168, 77, 10];

/// A `dhcp_client` reply step: message type, yiaddr, server id, lease time and, if given,
/// T1 and T2, a /24 mask and a router.
fn reply(kind: u8, yiaddr: [u8; 4], lease: u32, times: Option<(u32, u32)>) -> Vec<u8> {
    let mut present = 0b11_0011u8;
    if times.is_some() {
        present |= 0b1100;
    }
    let mut s = vec![5, kind, present];
    s.extend_from_slice(&yiaddr);
    s.extend_from_slice(&SERVER);
    s.extend_from_slice(&lease.to_le_bytes());
    if let Some((t1, t2)) = times {
        s.extend_from_slice(&t1.to_le_bytes());
        s.extend_from_slice(&t2.to_le_bytes());
    }
    s.extend_from_slice(&[255, 255, 255, 0]);
    s.extend_from_slice(&SERVER);
    s
}

/// A `dhcp_client` step that lets `ms` milliseconds pass.
fn wait(ms: u32) -> Vec<u8> {
    let mut s = vec![2];
    s.extend_from_slice(&ms.to_le_bytes());
    s
}

/// Writes the seed corpora.
#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_seed_corpora() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };

    // dhcp_message: what our client sends in each state, and replies.
    let t0 = Instant::now();
    let mut c = Client::new(ClientConfig::new([2, 0, 0, 0, 0, 0x42], 7), t0);
    c.start(t0);
    let discover = c.poll_transmit().unwrap().payload;
    write("dhcp_message", "discover", &discover);
    let d = DhcpRepr::parse_bytes(&discover).unwrap();
    let answer = |t: MessageType, yiaddr: [u8; 4]| {
        let mut m = DhcpRepr::request(d.xid, d.chaddr, t);
        m.op = BOOTREPLY;
        m.broadcast = true;
        m.yiaddr = Ipv4Addr::from(yiaddr);
        m.server_id = Some(Ipv4Addr::from(SERVER));
        if t != MessageType::Nak {
            m.lease_time = Some(600);
            m.renewal_time = Some(300);
            m.rebinding_time = Some(525);
            m.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
            m.router = Some(Ipv4Addr::from(SERVER));
        }
        encode(&m).unwrap()
    };
    let offer = answer(MessageType::Offer, ADDR);
    write("dhcp_message", "offer", &offer);
    c.handle(t0, &offer);
    write(
        "dhcp_message",
        "request",
        &c.poll_transmit().unwrap().payload,
    );
    write("dhcp_message", "ack", &answer(MessageType::Ack, ADDR));
    write("dhcp_message", "nak", &answer(MessageType::Nak, [0; 4]));
    // busybox udhcpd's ACK (proto::dhcp's tests): pads, two routers, a DNS option.
    let mut b = vec![0u8; 240];
    b[0] = 2;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    b[10] = 0x80;
    b[16..20].copy_from_slice(&ADDR);
    b[28..34].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    b.extend_from_slice(&[53, 1, 5, 54, 4, 192, 168, 77, 1, 51, 4, 0, 0, 2, 88]);
    b.extend_from_slice(&[1, 4, 255, 255, 255, 0, 0, 0]);
    b.extend_from_slice(&[3, 8, 192, 168, 77, 1, 192, 168, 77, 2]);
    b.extend_from_slice(&[6, 4, 192, 168, 77, 53, 255]);
    write("dhcp_message", "udhcpd_ack", &b);
    let mut odd = b.clone();
    odd.truncate(250);
    odd.extend_from_slice(&[61, 7, 1, 2, 3, 4, 5, 6, 7, 55, 3, 1, 3, 51, 53, 2, 5, 5]);
    write("dhcp_message", "odd_options", &odd);

    // dhcp_client scripts (8 octets of seed, then steps).
    let seed = 7u64.to_le_bytes().to_vec();
    let script = |steps: &[Vec<u8>]| {
        let mut s = seed.clone();
        for st in steps {
            s.extend_from_slice(st);
        }
        s
    };
    let start = vec![0u8];
    let offer = reply(2, ADDR, 600, None);
    let ack = reply(5, ADDR, 600, None);
    let nak = reply(6, [0; 4], 0, None);
    let timer = vec![3u8];
    write(
        "dhcp_client",
        "bind",
        &script(&[start.clone(), offer.clone(), ack.clone()]),
    );
    write(
        "dhcp_client",
        "bind_renew_rebind_expire",
        &script(&[
            start.clone(),
            offer.clone(),
            reply(5, ADDR, 600, Some((300, 525))),
            timer.clone(),
            timer.clone(),
            ack.clone(),
            timer.clone(),
            timer.clone(),
            timer.clone(),
            timer.clone(),
            timer.clone(),
            timer.clone(),
        ]),
    );
    write(
        "dhcp_client",
        "renew_to_new_address",
        &script(&[
            start.clone(),
            offer.clone(),
            ack.clone(),
            timer.clone(),
            reply(5, [192, 168, 77, 11], 600, None),
        ]),
    );
    write(
        "dhcp_client",
        "naks",
        &script(&[
            start.clone(),
            offer.clone(),
            nak.clone(),
            offer.clone(),
            nak.clone(),
            timer.clone(),
            offer.clone(),
            ack.clone(),
            timer.clone(),
            nak.clone(),
        ]),
    );
    write(
        "dhcp_client",
        "retransmissions_and_stop",
        &script(&[
            start.clone(),
            wait(300),
            wait(600),
            offer.clone(),
            wait(1_000),
            wait(2_000),
            wait(4_000),
            wait(8_000),
            offer,
            ack,
            vec![1],
            wait(100_000),
            start,
        ]),
    );
    let mut raw = script(&[vec![0]]);
    raw.push(4);
    raw.extend_from_slice(&(b.len() as u16).to_le_bytes());
    raw.extend_from_slice(&b);
    write("dhcp_client", "raw_udhcpd_ack", &raw);
    write(
        "dhcp_client",
        "infinite_lease_zero_times",
        &script(&[
            vec![0],
            reply(2, ADDR, u32::MAX, None),
            reply(5, ADDR, u32::MAX, Some((0, 0))),
            timer.clone(),
            timer,
        ]),
    );
}
