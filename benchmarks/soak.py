"""Soak: groups and sockets joining, receiving and leaving for a long time,
with descriptors, memory and every datagram accounted for.

    python benchmarks/soak.py [--minutes 60] [--groups 20000] [--sockets 10000]

Inside a private network namespace it makes itself (mpoint.lab.netns):
* a GroupSet on one port holds ``--groups`` groups; each cycle it leaves 2% of
  them and joins them again (churn);
* ``--sockets`` one-group mpoint sockets on another port, all in one EventSet;
  each cycle 2% are closed and replaced by new ones (new descriptors, new joins);
* each cycle a plain sender sends one sequenced datagram to every one of 1,000
  groups of the set and 1,000 of the sockets that the churn leaves alone
  (``mpoint.sequence_header``), paced so that no receive buffer overruns, and
  the receivers drain them with ``GroupSet.recv_batch`` and ``EventSet.wait`` +
  ``recv_batch``.
Every SAMPLE_S seconds a line: elapsed, cycles, open descriptors, RSS, sent,
received, lost, and the kernel's UDP receive-buffer overruns (/proc/net/snmp
RcvbufErrors; a datagram lost while it grew is an overrun, not mpoint's).
At the end: growth of descriptors and RSS after the warm-up (the first
WARMUP_S), and lost datagrams outside overruns.  ``--json FILE`` keeps every
sample.  Not run by CI (an hour); the README has its figures.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import time
from typing import Any, Dict, List

SAMPLE_S = 30.0
WARMUP_S = 300.0
PORT_SET, PORT_SOCKS = 41000, 41001
PROBES = 1000                   # groups of each kind sent to per cycle
CHURN = 0.02


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rcvbuf_errors() -> int:
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--groups", type=int, default=20000)
    ap.add_argument("--sockets", type=int, default=10000)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from mpoint.lab import netns
    prepared = netns.for_benchmark("soak")
    if prepared is None:
        return 2
    import mpoint
    from mpoint import FD, JL_RECEIVER_ONLY, EventSet, GroupSet, RecvBatch, sequence_header

    rng = random.Random(1)
    set_groups = [f"239.{90 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"
                  for i in range(args.groups)]
    sock_groups = [f"239.{110 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"
                   for i in range(args.sockets)]
    gs = GroupSet(PORT_SET)
    res = gs.join_many(set_groups)
    assert not res.failed, next(iter(res.failed.items()))
    evset = EventSet()
    socks: Dict[str, Any] = {}

    def open_sock(g: str) -> None:
        s = mpoint.socket().join_leaf((g, PORT_SOCKS), flags=JL_RECEIVER_ONLY)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        evset.register(s, FD.READ)
        socks[g] = s

    for g in sock_groups:
        open_sock(g)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    batch = RecvBatch(256, 256)
    seq = 0
    sent = received = 0
    samples: List[Dict[str, Any]] = []
    start = time.monotonic()
    end = start + args.minutes * 60
    next_sample = start
    overrun0 = rcvbuf_errors()
    cycles = 0
    print(f"soak: {args.groups} groups in a GroupSet ({gs.sockets} sockets), {args.sockets} "
          f"sockets in an EventSet, {args.minutes:g} min", flush=True)
    while time.monotonic() < end:
        cycles += 1
        # Churn: leave and rejoin 2% of the set; replace 2% of the sockets.
        churned = rng.sample(set_groups, int(len(set_groups) * CHURN))
        gs.leave_many(churned)
        again = gs.join_many(churned)
        assert not again.failed, next(iter(again.failed.items()))
        replaced = set(rng.sample(sock_groups, int(len(sock_groups) * CHURN)))
        for g in replaced:
            socks.pop(g).close()
            open_sock(g)
        # Traffic to groups joined throughout this cycle's sending.
        probes_set = rng.sample(set_groups, PROBES)
        probes_socks = rng.sample(sock_groups, PROBES)
        want = 0
        for i, g in enumerate(probes_set + probes_socks):
            port = PORT_SET if i < PROBES else PORT_SOCKS
            seq += 1
            tx.sendto(sequence_header(seq) + b"soak", (g, port))
            want += 1
            if i % 100 == 99:
                time.sleep(0.002)       # paced: receive buffers never fill
        sent += want
        got = 0
        deadline = time.monotonic() + 5.0
        while got < want and time.monotonic() < deadline:
            got += gs.recv_batch(batch, 0)
            for ne in evset.wait(0.01):
                got += ne.sock.recv_batch(batch, 0)
        received += got
        now = time.monotonic()
        if now >= next_sample or now >= end:
            sample = {"s": round(now - start, 1), "cycles": cycles, "fds": open_fds(),
                      "rss": rss_bytes(), "sent": sent, "received": received,
                      "lost": sent - received, "overruns": rcvbuf_errors() - overrun0}
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            next_sample = now + SAMPLE_S
    late = [s for s in samples if s["s"] >= min(WARMUP_S, samples[-1]["s"] / 2)]
    first, last = late[0], late[-1]
    summary = {
        "minutes": round((samples[-1]["s"]) / 60, 1), "cycles": cycles,
        "fds_after_warmup": [first["fds"], last["fds"]],
        "rss_mib_after_warmup": [round(first["rss"] / 2**20, 1), round(last["rss"] / 2**20, 1)],
        "sent": sent, "received": received, "lost": sent - received,
        "overruns": samples[-1]["overruns"],
    }
    print("soak summary: " + json.dumps(summary), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"samples": samples, "summary": summary}, f, indent=1)
    gs.close()
    evset.close()
    for s in socks.values():
        s.close()
    lost_outside = summary["lost"] - summary["overruns"]
    grew = last["fds"] > first["fds"] or last["rss"] > first["rss"] * 1.05
    return 1 if lost_outside > 0 or grew else 0


if __name__ == "__main__":
    sys.exit(main())
