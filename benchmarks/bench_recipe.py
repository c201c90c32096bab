"""Per-group join recipes: one socket per group, the way a user writes it,
mpoint against the standard library, each case in a fresh kernel state.

Cases (µs per group; sockets stay open until the count is reached):
* stdlib recipe: socket.socket() + SO_REUSEADDR + bind((group, port)) +
  setsockopt(IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP) on lo (index looked up once).
* stdlib, cross-talk off: the recipe plus IP_MULTICAST_ALL 0 (IPv6: V6ONLY,
  IPV6_MULTICAST_ALL 0); its difference to the next case is what asking for
  metadata before the membership costs.
* stdlib, mpoint's meaning: the same plus the options mpoint sets for the
  same guarantees: cross-talk off (IP_MULTICAST_ALL / IPV6_MULTICAST_ALL 0),
  IPv6-only, and the receive metadata on before the membership (IP_PKTINFO /
  IPV6_RECVPKTINFO, SO_TIMESTAMPING).
* mpoint recipe: mpoint.socket() + SO_REUSEADDR + bind((group, port)) +
  join_leaf(..., JL_RECEIVER_ONLY, interface="lo").
* mpoint idiom: mpoint.socket().join_leaf((group, port), JL_RECEIVER_ONLY,
  interface="lo"), which binds the port itself (receiver-only: the group's
  address); and the same with the wildcard bind a user may make first.
* socket(): mpoint.socket() against socket.socket() alone, and against
  socket.socket() with the options mpoint.socket() sets (SO_REUSEADDR,
  cross-talk off, IPv6-only).

Every run is its own process in its own private network namespace (made by
mpoint.lab.netns), so no case meets groups another case left.  Ratios are the
median over rounds of each round's ratio.  Usage:
    python benchmarks/bench_recipe.py [--counts 100,1000,10000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from typing import Callable, Dict, List

PORT = 33000
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
TS_RX = (1 << 3) | (1 << 4)     # SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE


def groups(family: int, n: int) -> List[str]:
    if family == socket.AF_INET:
        return [f"239.88.{i // 250}.{i % 250 + 1}" for i in range(n)]
    return [f"ff15::88:{i:x}" for i in range(n)]


def stdlib(meaning: bool, metadata: bool = True) -> Callable[[int, List[str]], List[socket.socket]]:
    def run(family: int, gs: List[str]) -> List[socket.socket]:
        lo = socket.if_nametoindex("lo")
        out = []
        v4 = family == socket.AF_INET
        for g in gs:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if meaning:
                if v4:
                    s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
                else:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            s.bind((g, PORT))
            if meaning and metadata:
                if v4:
                    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                else:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
                s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TS_RX)
            if v4:
                mreqn = socket.inet_aton(g) + struct.pack("=4si", b"\0" * 4, lo)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            else:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                             socket.inet_pton(family, g) + struct.pack("=I", lo))
            out.append(s)
        return out
    return run


def mpoint_recipe(family: int, gs: List[str]) -> List[socket.socket]:
    import mpoint
    out = []
    for g in gs:
        s = mpoint.socket(family)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((g, PORT))
        s.join_leaf((g, PORT), flags=mpoint.JL_RECEIVER_ONLY, interface="lo")
        out.append(s)
    return out


def mpoint_idiom(family: int, gs: List[str]) -> List[socket.socket]:
    import mpoint
    join = mpoint.JL_RECEIVER_ONLY
    return [mpoint.socket(family).join_leaf((g, PORT), flags=join, interface="lo") for g in gs]


def mpoint_idiom_wildcard(family: int, gs: List[str]) -> List[socket.socket]:
    import mpoint
    out = []
    any_ = "0.0.0.0" if family == socket.AF_INET else "::"
    for g in gs:
        s = mpoint.socket(family)
        s.bind((any_, PORT))
        out.append(s.join_leaf((g, PORT), flags=mpoint.JL_RECEIVER_ONLY, interface="lo"))
    return out


def mpoint_socket(family: int, gs: List[str]) -> List[socket.socket]:
    import mpoint
    return [mpoint.socket(family) for _ in gs]


def std_socket(family: int, gs: List[str]) -> List[socket.socket]:
    return [socket.socket(family, socket.SOCK_DGRAM) for _ in gs]


def std_socket_options(family: int, gs: List[str]) -> List[socket.socket]:
    """socket.socket() and the options mpoint.socket() sets: SO_REUSEADDR,
    cross-talk off, IPv6-only."""
    out = []
    for _ in gs:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
        out.append(s)
    return out


CASES: Dict[str, Callable[[int, List[str]], List[socket.socket]]] = {
    "stdlib recipe": stdlib(False),
    "stdlib, cross-talk off": stdlib(True, metadata=False),
    "stdlib, mpoint's meaning": stdlib(True),
    "mpoint recipe": mpoint_recipe,
    "mpoint idiom (binds itself)": mpoint_idiom,
    "mpoint idiom, wildcard bind first": mpoint_idiom_wildcard,
    "socket.socket()": std_socket,
    "socket.socket() + mpoint's options": std_socket_options,
    "mpoint.socket()": mpoint_socket,
}
RATIOS = [("stdlib, mpoint's meaning", "stdlib, cross-talk off"),
          ("mpoint recipe", "stdlib recipe"), ("mpoint recipe", "stdlib, mpoint's meaning"),
          ("mpoint idiom (binds itself)", "stdlib, mpoint's meaning"),
          ("mpoint.socket()", "socket.socket()"),
          ("mpoint.socket()", "socket.socket() + mpoint's options")]


def child(case: str, family: int, count: int) -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from mpoint.lab import netns as _netns
    if _netns.for_benchmark("bench_recipe") is None:
        sys.exit(2)
    import mpoint  # noqa: F401  (imported before the clock starts, as in a user's program)
    gs = groups(family, count)
    t = time.perf_counter_ns()
    socks = CASES[case](family, gs)
    t = time.perf_counter_ns() - t
    for s in socks:
        s.close()
    print(json.dumps({"ns_per_group": t / count}))


def run_case(case: str, family: int, count: int) -> float:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", case,
                          "--family", str(family), "--count", str(count)],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"{case}: {out.stderr.strip()}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["ns_per_group"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="100,1000,10000")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--families", default="4,6")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--family", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.family, args.count)
        return 0
    results: Dict[str, Dict[str, Dict[str, List[float]]]] = {}
    for fam_name in args.families.split(","):
        family = socket.AF_INET if fam_name == "4" else socket.AF_INET6
        for count in [int(c) for c in args.counts.split(",")]:
            cell = results.setdefault(f"IPv{fam_name}", {}).setdefault(str(count), {})
            for _ in range(args.rounds):
                for case in CASES:            # interleaved: drift hits every case alike
                    cell.setdefault(case, []).append(run_case(case, family, count))
            print(f"\nIPv{fam_name}, {count} groups: µs per group (best), ratio (median of rounds)")
            for case, runs in cell.items():
                print(f"  {case:36s} {min(runs) / 1000:7.2f}")
            for a, b in RATIOS:
                ratio = statistics.median(x / y for x, y in zip(cell[a], cell[b]))
                print(f"  {a} / {b}: {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
