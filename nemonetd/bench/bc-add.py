#!/usr/bin/env python3
# N BC_ADD messages for `mipsock inject --json`, one binding each (its own IPv6 CoA on the
# home link 2001:db8:a::/64, HoA and /64 MNP), for the benchmarks at fleet size.
#
#   bc-add.py N [HOA_PREFIX MNP_BASE]    e.g. bc-add.py 1000 2001:db8:2 0x1000
import json
import sys

n = int(sys.argv[1])
hoa = sys.argv[2] if len(sys.argv) > 2 else "2001:db8:1"
base = int(sys.argv[3], 0) if len(sys.argv) > 3 else 0x100
for i in range(n):
    hi, lo = divmod(i, 65536)
    b = {"hoa": f"{hoa}::{hi:x}:{lo:x}", "hoa_v4": None, "coa": f"2001:db8:a::1:{hi:x}:{lo:x}",
         "ha": "2001:db8:a::1", "ha_v4": None, "mnp_v6": [f"2001:db8:{base + hi:x}:{lo:x}::/64"],
         "mnp_v4": [], "encapsulation": "in_ipv6", "lifetime": 600, "binding_id": None,
         "flags": "A|H|R", "nat_detected": False, "coa_ifindex": None}
    print(json.dumps({"body": {"bc_add": b}}))
