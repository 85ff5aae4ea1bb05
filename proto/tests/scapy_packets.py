"""Packets built by scapy, another implementation of the Mobility Header, printed as
`name hex` lines for proto's tests to parse. Run by tests/external_scapy.rs under Debian's
python3 (package python3-scapy)."""

from scapy.layers.inet6 import (
    HAO,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6MH_BA,
    MIP6MH_BE,
    MIP6MH_BRR,
    MIP6MH_BU,
    MIP6OptAltCoA,
    MIP6OptBRAdvice,
    MIP6OptMNID,
    MIP6OptMobNetPrefix,
    MIP6OptReplayProtection,
)

HOA = "2001:db8:1::100"
COA = "2001:db8:a::5"
HA = "2001:db8:1::1"

packets = {}

# Home registration from a care-of address, explicit NEMO mode: HAO, Alternate CoA and two
# Mobile Network Prefix options. scapy's BU `flags` is a 7-bit field named by letters.
bu = MIP6MH_BU(seq=4242, mhtime=1000, flags="AHR", options=[
    MIP6OptAltCoA(acoa=COA),
    MIP6OptMobNetPrefix(plen=48, prefix="2001:db8:100::"),
    MIP6OptMobNetPrefix(plen=64, prefix="2001:db8:200:1::"),
])
packets["bu_hao_mnp"] = (
    IPv6(src=COA, dst=HA)
    / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
    / bu
)

# Binding Acknowledgement back to the care-of address with a type 2 routing header and a
# Binding Refresh Advice.
ba = MIP6MH_BA(status=0, seq=4242, mhtime=900, flags="R", options=[MIP6OptBRAdvice(rinter=450)])
packets["ba_rh2_bra"] = (
    IPv6(src=HA, dst=COA)
    / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
    / ba
)

# A rejected BA (Not Authorized for Prefix) with no options.
packets["ba_142"] = IPv6(src=HA, dst=COA) / IPv6ExtHdrRouting(
    type=2, segleft=1, addresses=[HOA]
) / MIP6MH_BA(status=142, seq=7, mhtime=0)

# Binding Error: unrecognized MH type.
packets["be_2"] = IPv6(src=HA, dst=COA) / MIP6MH_BE(status=2, ha="::")

# Binding Error: unknown binding for the Home Address option.
packets["be_1"] = IPv6(src=HA, dst=COA) / MIP6MH_BE(status=1, ha=HOA)

# Binding Refresh Request.
packets["brr"] = IPv6(src=HA, dst=HOA) / MIP6MH_BRR()

# A BU carrying a Mobile Node Identifier (NAI) and a replay-protection timestamp.
packets["bu_mnid_ts"] = IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(
    options=[HAO(hoa=HOA)]
) / MIP6MH_BU(seq=1, mhtime=25, flags="AH", options=[
    MIP6OptMNID(subtype=1, id=b"mr1@example.org"),
    MIP6OptReplayProtection(timestamp=0x0123456789ABCDEF),
])

for name, pkt in packets.items():
    print(name, bytes(pkt).hex())
