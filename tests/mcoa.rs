//! Multiple Care-of Addresses (RFC 5648; issue 15) on the real home agent: `had` and
//! `nemonetd -h` with the sample configuration (RFC 4285 authentication required), and
//! Binding Updates with Binding Identifier options built byte by byte by scapy in the
//! mobile router's namespace — another implementation's encoding of the BID option, the
//! alignment, the MN-HA authenticator and the checksum — sent from its care-of address.
//!
//! * A bulk registration (BID 1 at the BU's own care-of address, BID 2 at a second one
//!   named in its option) is acknowledged with status 0 and a BID option per BID, status 0
//!   each, signed with the router's SA; `mipsock state` lists both bindings of the home
//!   address, each with its BID and care-of address.
//! * De-registering BID 2 leaves BID 1, and a de-registration naming an unknown BID draws
//!   167 (MCOA UNKNOWN COA) in its BID option and as the BA's status.
//! * Flow bindings (RFC 6089) in a bulk registration: the BA copies each Flow
//!   Identification option with its status (0, 131, 130; 132 for an unknown FID in a Flow
//!   Summary); `mipsock state` shows the accepted ones on each BID.
//!
//! Topology: [`tests::setup::home_topology`] (the home agent between its home link and the
//! router's access link), no mrd: scapy is the mobile router.

use std::net::Ipv6Addr;
use std::time::Duration;

use tests::setup::{self, HOA, HomeTopology, files, home_topology, log_of, mipsock_state};
use tests::{require_root, wait_until};

const HA: &str = "2001:db8:1::1";
const COA1: &str = "2001:db8:a::5";
const COA2: &str = "2001:db8:a::6";
/// The router's mobile network prefix (explicit in the sample prefix table).
const MNP: &str = "2001:db8:100::";
/// The sample auth-database's SA for HOA: SPI 1000, key "nemo-sample-key1".
const SPI: &str = "1000";
const KEY_HEX: &str = "6e656d6f2d73616d706c652d6b657931";
const LONG: Duration = Duration::from_secs(30);

/// Builds a Binding Update (A, H, R; Alternate CoA = source; the MNP; BID options;
/// RFC 4285 timestamp and MN-HA authenticator last), sends it from the care-of address
/// with a Home Address option, and prints the Binding Acknowledgement seen within 5 s:
/// `ba STATUS SEQ LIFETIME`, `bid BID STATUS` per BID option, `auth ok|bad|none`; `end`
/// last.
///
/// argv: ha hoa coa seq lifetime(4-s units) spi key-hex mnp bids [flows], where bids is
/// `1,2=2001:db8:a::6` (BID 1 without a care-of address, BID 2 with one; `1/10` gives BID 1
/// the BID-PRI 10, RFC 6089 §4.1, and the BA's line then ends `pri 10`), and flows
/// (RFC 6089, after the BID options) `fi,FID,PRI,BID:BID,SPORT;fs,FID:FID`: a Flow
/// Identification option with a Binding Reference (left out when empty) and an RFC 6088
/// IPv6 selector of UDP from SPORT (left out when empty), a Flow Summary option. The BA's
/// Flow Identification options print as `fi FID STATUS`.
const SCAPY: &str = r#"
import sys, time, hmac, hashlib, struct, socket
from scapy.all import *
conf.verb = 0
ha, hoa, coa, seq, lifetime, spi, key, mnp, bids = sys.argv[1:10]
flows = sys.argv[10] if len(sys.argv) > 10 else ""
seq, lifetime, spi, key = int(seq), int(lifetime), int(spi), bytes.fromhex(key)
a6 = lambda a: socket.inet_pton(socket.AF_INET6, a)

def align(buf, x, y):
    # RFC 6275 §6.2: the option's type octet at offset xn+y; Pad1 or PadN before it.
    pad = (y - len(buf)) % x
    if pad == 1:
        buf += b"\x00"
    elif pad > 1:
        buf += bytes([1, pad - 2]) + bytes(pad - 2)
    return buf

mh = bytearray([59, 0, 5, 0, 0, 0]) + struct.pack("!HHH", seq, 0xc400, lifetime)
mh = align(mh, 8, 6) + bytes([3, 16]) + a6(coa)                       # Alternate CoA
mh = align(mh, 8, 4) + bytes([6, 18, 0, 48]) + a6(mnp)                 # MNP /48
for b in bids.split(","):
    b, c = b.split("=") if "=" in b else (b, None)
    bid, pri = (b.split("/") + ["0"])[:2]                               # BID[/BID-PRI], RFC 6089 §4.1
    if c:
        mh = align(mh, 8, 2) + bytes([35, 20]) + struct.pack("!HBB", int(bid), 0, int(pri)) + a6(c)
    else:
        mh = align(mh, 2, 0) + bytes([35, 4]) + struct.pack("!HBB", int(bid), 0, int(pri))
for f in filter(None, flows.split(";")):
    kind, *a = f.split(",")
    if kind == "fs":                                                   # Flow Summary, 2n
        fids = b"".join(struct.pack("!H", int(x)) for x in a[0].split(":"))
        mh = align(mh, 2, 0) + bytes([44, len(fids)]) + fids
    else:                                                              # Flow Identification, 2n
        fid, pri, refs, sport = a
        subs = b""
        if refs:                                                       # Binding Reference
            ids = b"".join(struct.pack("!H", int(x)) for x in refs.split(":"))
            subs += bytes([2, len(ids)]) + ids
        if sport:                                                      # RFC 6088 IPv6 selector: I (source port), O (next header)
            ts = struct.pack("!IHB", (1 << 23) | (1 << 17), int(sport), 17)
            subs += bytes([3, 2 + len(ts), 2, 0]) + ts
        body = struct.pack("!HHBB", int(fid), int(pri), 0, 0) + subs
        mh = align(mh, 2, 0) + bytes([45, len(body)]) + body
now = time.time() + 2208988800                                         # NTP era 0
ts = (int(now) << 32) | int((now % 1) * (1 << 32))
mh = align(mh, 8, 2) + bytes([10, 8]) + struct.pack("!Q", ts)          # replay protection
mh = align(mh, 8, 5) + bytes([9, 17, 1]) + struct.pack("!I", spi)      # MN-HA, last
data_at = len(mh)
mh += bytes(12)
mh[1] = len(mh) // 8 - 1
assert len(mh) % 8 == 0

def mac(key, coa, hoa, mh_upto):
    m = bytearray(mh_upto)
    m[4:6] = b"\x00\x00"
    return hmac.new(key, a6(coa) + a6(hoa) + bytes(m), hashlib.sha1).digest()[:12]

mh[data_at:] = mac(key, coa, hoa, mh[:data_at])

def checksum(src, dst, data):
    # RFC 6275 §6.1.1: over the pseudo-header with the home address as source.
    p = a6(src) + a6(dst) + struct.pack("!I", len(data)) + b"\x00\x00\x00" + bytes([135]) + data
    if len(p) % 2:
        p += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(p) // 2), p))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

mh[4:6] = struct.pack("!H", checksum(hoa, ha, bytes(mh)))

def answer(p):
    return IPv6 in p and p[IPv6].src == ha and p[IPv6].dst == coa and IPv6ExtHdrRouting in p
sniffer = AsyncSniffer(iface="eth0", timeout=5, lfilter=answer)
sniffer.start()
time.sleep(0.3)
pkt = IPv6(src=coa, dst=ha) / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)], nh=135) / Raw(bytes(mh))
send(pkt, iface="eth0")
sniffer.join()
for p in sniffer.results:
    ba = bytes(p[IPv6ExtHdrRouting].payload)
    if len(ba) < 12 or ba[2] != 6:
        continue
    status, bseq, blife = ba[6], struct.unpack("!H", ba[8:10])[0], struct.unpack("!H", ba[10:12])[0]
    if bseq != seq:
        continue
    print("ba", status, bseq, blife, flush=True)
    at, auth = 12, "none"
    while at < len(ba):
        t = ba[at]
        if t == 0:
            at += 1
            continue
        l = ba[at + 1]
        d = ba[at + 2:at + 2 + l]
        if t == 35:
            pri = " pri %d" % (d[3] & 0x7f) if d[3] & 0x7f else ""
            print("bid", struct.unpack("!H", d[0:2])[0], d[2], flush=True) if not pri else \
                print("bid", struct.unpack("!H", d[0:2])[0], d[2], pri.strip(), flush=True)
        if t == 45:
            print("fi", struct.unpack("!H", d[0:2])[0], d[5], flush=True)
        if t == 9 and d[0] == 1:
            auth = "ok" if mac(key, coa, hoa, ba[:at + 7]) == d[5:17] else "bad"
        at += 2 + l
    print("auth", auth, flush=True)
    break
print("end", flush=True)
"#;

/// Sends one BU from `coa` and returns what the script printed.
fn bu(
    t: &HomeTopology,
    f: &setup::Files,
    coa: &str,
    seq: u16,
    lifetime: u16,
    bids: &str,
) -> String {
    bu_with_flows(t, f, coa, seq, lifetime, bids, "")
}

/// [`bu`] with flow binding options (the script's `flows` argument).
fn bu_with_flows(
    t: &HomeTopology,
    f: &setup::Files,
    coa: &str,
    seq: u16,
    lifetime: u16,
    bids: &str,
    flows: &str,
) -> String {
    let (seq, lifetime) = (seq.to_string(), lifetime.to_string());
    t.mr.scapy(
        f.dir.path(),
        "mcoa-bu.py",
        SCAPY,
        &[
            HA, HOA, coa, &seq, &lifetime, SPI, KEY_HEX, MNP, bids, flows,
        ],
    )
}

/// Every binding had's state lists for HOA, sorted by `key`.
fn bcs_of<K: Ord>(bus: &std::path::Path, key: impl Fn(&mipsock::Binding) -> K) -> Vec<K> {
    let out = mipsock_state(bus, &["--timeout-ms", "1500"]);
    let hoa: Ipv6Addr = HOA.parse().unwrap();
    let mut v: Vec<K> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == "had")
        .filter_map(|v| serde_json::from_value::<mipsock::StateItem>(v["item"].clone()).ok())
        .filter_map(|item| match item {
            mipsock::StateItem::Bc(b) if b.hoa == hoa => Some(key(&b)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// (BID, FIDs of its flow bindings) of every binding had's state lists for HOA.
fn flow_state(bus: &std::path::Path) -> Vec<(Option<u16>, Vec<u16>)> {
    bcs_of(bus, |b| {
        (b.binding_id, b.flows.iter().map(|f| f.fid).collect())
    })
}

/// (BID, care-of address) of every binding had's state lists for HOA.
fn state(bus: &std::path::Path) -> Vec<(Option<u16>, String)> {
    bcs_of(bus, |b| (b.binding_id, b.coa.to_string()))
}

/// The real had and nemonetd -h with the samples, the router's access link holding both
/// care-of addresses (namespaces tagged `tag`).
fn home_agent(tag: &str) -> (HomeTopology, setup::Files, (tests::Daemon, tests::Daemon)) {
    let t = home_topology(
        tag,
        "2001:db8:1::50/64",
        HOA,
        &["2001:db8:a::5/64", "2001:db8:a::6/64"],
    );
    let f = files(&[]);
    let daemons = setup::start_home_agent(&t.ha, &f, "up0");
    (t, f, daemons)
}

#[test]
fn bulk_registration_and_deregistration_of_one_bid() {
    require_root();
    let (t, f, _daemons) = home_agent("mcoa");
    let logs = || {
        ["had", "nemonetd-ha"]
            .iter()
            .map(|n| {
                format!(
                    "==== {n}\n{}",
                    log_of(&f.dir.path().join(format!("{n}.log")))
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Bulk registration: BID 1 at the BU's care-of address, BID 2 at the second one.
    let text = bu(&t, &f, COA1, 1, 60, &format!("1,2={COA2}"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["ba 0 1 60", "bid 1 0", "bid 2 0", "auth ok", "end"],
        "the BA of the bulk registration\n{}",
        logs()
    );
    let both = vec![(Some(1), COA1.to_string()), (Some(2), COA2.to_string())];
    assert!(
        wait_until(LONG, || state(&f.ha_bus) == both),
        "mipsock state lists {:?}, not both BIDs\n{}",
        state(&f.ha_bus),
        logs()
    );

    // De-registering BID 2 leaves BID 1.
    let text = bu(&t, &f, COA1, 2, 0, "2");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["ba 0 2 0", "bid 2 0", "auth ok", "end"],
        "the BA of BID 2's de-registration\n{}",
        logs()
    );
    let one = vec![(Some(1), COA1.to_string())];
    assert!(
        wait_until(LONG, || state(&f.ha_bus) == one),
        "mipsock state lists {:?} after BID 2 left\n{}",
        state(&f.ha_bus),
        logs()
    );

    // An unknown BID: 167 in its option and as the BA's status; BID 1 stays.
    let text = bu(&t, &f, COA1, 3, 0, "9");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["ba 167 3 0", "bid 9 167", "auth ok", "end"],
        "{}",
        logs()
    );
    assert_eq!(state(&f.ha_bus), one);
    let had = log_of(&f.dir.path().join("had.log"));
    assert!(had.contains("BID bindings registered"));
    // Every BA waited for the data plane to confirm each binding its BU changed (one
    // DATAPLANE_READY per BID), none went out on the timeout.
    assert!(
        !had.contains("did not confirm the binding change"),
        "{}",
        logs()
    );
}

/// Flow bindings (RFC 6089) in a bulk registration, from scapy: the BA copies each Flow
/// Identification option with its status after the BID options, inside the part the
/// MN-HA authenticator covers; `mipsock state` shows the accepted ones on every BID; a
/// Flow Summary keeps one, leaving out the other removes it, and an unknown FID in the
/// summary draws 132.
#[test]
fn flow_bindings_in_a_bulk_registration() {
    require_root();
    let (t, f, _daemons) = home_agent("mcoafl");
    let logs = || log_of(&f.dir.path().join("had.log"));
    // BID-PRIs 10 and 20 (RFC 6089 §4.1): the BA copies them (§5.3.5).
    let bids = format!("1/10,2/20={COA2}");
    // FID 7: voice from port 5060 through BID 2; FID 8: port 5004 through both (a copy
    // through each); FID 9 names BID 3, which the router does not hold: 131; FID 4 has no
    // Binding Reference: 130.
    let text = bu_with_flows(
        &t,
        &f,
        COA1,
        1,
        60,
        &bids,
        "fi,7,10,2,5060;fi,8,20,1:2,5004;fi,9,30,3,1;fi,4,40,,6000",
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "ba 0 1 60",
            "bid 1 0 pri 10",
            "bid 2 0 pri 20",
            "fi 7 0",
            "fi 8 0",
            "fi 9 131",
            "fi 4 130",
            "auth ok",
            "end"
        ],
        "the BA of a bulk registration with flow bindings\n{}",
        logs()
    );
    let both = vec![(Some(1), vec![7, 8]), (Some(2), vec![7, 8])];
    assert!(
        wait_until(LONG, || flow_state(&f.ha_bus) == both),
        "mipsock state lists {:?}\n{}",
        flow_state(&f.ha_bus),
        logs()
    );
    // had keeps each binding's BID-PRI and hands it to its data plane (RFC 6089 §5.1.1).
    let pris = || bcs_of(&f.ha_bus, |b| (b.binding_id, b.bid_priority));
    assert_eq!(pris(), [(Some(1), 10), (Some(2), 20)], "{}", logs());
    // A refresh keeping FID 7 by summary, naming an unknown FID 5: 132; FID 8 is gone.
    let text = bu_with_flows(&t, &f, COA1, 2, 60, &bids, "fs,7:5");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "ba 0 2 60",
            "bid 1 0 pri 10",
            "bid 2 0 pri 20",
            "fi 5 132",
            "auth ok",
            "end"
        ],
        "{}",
        logs()
    );
    let seven = vec![(Some(1), vec![7]), (Some(2), vec![7])];
    assert!(
        wait_until(LONG, || flow_state(&f.ha_bus) == seven),
        "mipsock state lists {:?}\n{}",
        flow_state(&f.ha_bus),
        logs()
    );
}
