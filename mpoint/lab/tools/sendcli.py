"""``python -m mpoint send GROUP[+N]``: sends numbered datagrams round-robin
over the groups with send_batch, at an exact rate (the socket's token
bucket, ext/sendcalls.pxi), for a bounded count or duration.

Payload formats:
  mpoint  mpoint's sequence header (b"mpSQ" + 64-bit big-endian number,
          mpoint.groupset.sequence_header), one sequence per group, so that
          ``mpoint join`` counts gaps, duplicates and reordering;
  iperf2  iperf 2's UDP datagram header (iperf 2.1.8 include/payloads.h,
          struct UDP_datagram: uint32 id, uint32 tv_sec, uint32 tv_usec,
          uint32 id2 = the id's upper 32 bits, all network order), the rest
          zero (client_hdr flags 0: no test exchange).  As iperf's client
          does (iperf 2.1.8 src/Client.cpp, Client::FinishTrafficActions),
          each group's stream ends with one datagram whose id is the negated
          next id, which ``iperf -s -u`` takes as the end; to a multicast
          group iperf sends it once (no FIN handshake, AwaitServerFinPacket
          is for unicast only), and so does this."""
from __future__ import annotations

import argparse
import re
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Callable, Dict, Optional, TextIO

if TYPE_CHECKING:
    from mpoint import MultipointSocket

from . import args as _args
from .place import settle

DEFAULT_COUNT = 100                  # per group, when neither --count nor --duration
DEFAULT_RATE = "1M"                  # iperf 2's UDP default: 1 Mbit/s
# 65535 minus the IP and UDP headers
UDP_MAX: Dict[int, int] = {int(socket.AF_INET): 65507, int(socket.AF_INET6): 65527}
MPOINT_HEADER = 12
IPERF2_HEADER = 16
IPERF2_MIN = 24                      # the header and a zero client_hdr flags word
BATCH = 32                           # most datagrams per send_batch call (one group)
ROUND_S = 0.005                      # shaped: a round over all groups takes about this

HELP = ("send numbered datagrams round-robin to GROUP[+N] at an exact rate; on loopback "
        "inside a private network namespace unless --interface names one")
RATE_HELP = ("a plain number: datagrams per second per group (e.g. 100); with a unit, "
             "bits per second of UDP payload for all groups together: 500k, 10M, 1G "
             "(decimal, as iperf). 0: as fast as the socket sends. Default "
             f"{DEFAULT_RATE}. Shaped by the socket's token bucket (bucket: one round of "
             "datagrams), so the long-run rate is exact")

_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgG]?)(?:bps|bit/s|b/s)?\s*$")
_UNIT = {"k": 1e3, "m": 1e6, "g": 1e9}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("group", metavar="GROUP[+N]",
                   help="a multicast group, +N for N more consecutive groups")
    p.add_argument("--rate", default=DEFAULT_RATE, help=RATE_HELP)
    p.add_argument("--size", type=int, default=1470,
                   help="UDP payload bytes per datagram (default 1470, as iperf 2)")
    p.add_argument("--ttl", type=int, default=1,
                   help="multicast scope (TTL / hop limit), default 1: this link only")
    p.add_argument("--interface", help="send on this real interface (name or index); "
                                       "without it: a private network namespace")
    p.add_argument("--port", type=int, default=_args.DEFAULT_PORT,
                   help=f"UDP port (default {_args.DEFAULT_PORT})")
    p.add_argument("--count", type=int,
                   help=f"datagrams per group (default {DEFAULT_COUNT} without --duration)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--format", choices=("mpoint", "iperf2"), default="mpoint",
                   help="payload header: mpoint's sequence header (default) or iperf 2's")


def parse_rate(text: str, groups: int, size: int) -> float:
    """--rate -> payload bytes per second for all groups (0: unlimited)."""
    m = _RATE.match(text)
    if m is None:
        raise _args.BadArgument(f"--rate {text!r}: a number >= 0, optionally with k, M or G "
                                "(bits per second)")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit or text.strip().lower().endswith(("bps", "bit/s", "b/s")):
        return value * _UNIT.get(unit, 1.0) / 8
    return value * groups * size


class Plan:
    """The checked arguments."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.family, self.groups = _args.groups(ns.group)
        self.ifindex = _args.interface(ns.interface)
        self.interface: Optional[str] = ns.interface
        self.port = _args.port(ns.port)
        self.format: str = ns.format
        least = MPOINT_HEADER if ns.format == "mpoint" else IPERF2_MIN
        if not least <= ns.size <= UDP_MAX[self.family]:
            raise _args.BadArgument(f"--size {ns.size}: must be {least}..{UDP_MAX[self.family]} "
                                    f"bytes (the {ns.format} header .. the UDP maximum)")
        self.size: int = ns.size
        if not 0 <= ns.ttl <= 255:
            raise _args.BadArgument(f"--ttl {ns.ttl}: must be 0..255")
        self.ttl: int = ns.ttl
        if ns.count is not None and ns.count < 1:
            raise _args.BadArgument(f"--count {ns.count}: must be >= 1")
        _args.positive(ns.duration, "--duration")
        self.count: Optional[int] = (ns.count if ns.count is not None or ns.duration is not None
                                     else DEFAULT_COUNT)
        self.duration: Optional[float] = ns.duration
        self.bytes_per_s = parse_rate(ns.rate, len(self.groups), self.size)
        if self.bytes_per_s >= 2 ** 63:
            raise _args.BadArgument(f"--rate {ns.rate}: too large")


def payload_maker(fmt: str, size: int) -> Callable[[int, bool], bytes]:
    """(sequence number, final) -> one datagram's payload."""
    pad = bytes(size - (MPOINT_HEADER if fmt == "mpoint" else IPERF2_HEADER))
    if fmt == "mpoint":
        return lambda seq, final: b"mpSQ" + seq.to_bytes(8, "big") + pad

    def iperf2(seq: int, final: bool) -> bytes:
        t = time.time()
        low = (-seq if final else seq) & 0xFFFFFFFF
        high = ((-seq if final else seq) >> 32) & 0xFFFFFFFF
        return struct.pack("!IIII", low, int(t), int(t % 1 * 1e6), high) + pad
    return iperf2


def open_socket(plan: Plan) -> "MultipointSocket":
    import mpoint
    from mpoint import _core
    sock = mpoint.socket(plan.family)
    try:
        sock.multicast_scope = plan.ttl
        if plan.ifindex is not None:
            if plan.family == socket.AF_INET:     # struct ip_mreqn: any address, this index
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                struct.pack("=4s4si", bytes(4), bytes(4), plan.ifindex))
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, plan.ifindex)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        if plan.bytes_per_s > 0:
            bucket = plan.size * len(plan.groups)   # one round: bursts stay short
            _core.sock_set_shaper(sock, max(1, round(plan.bytes_per_s)), bucket)
    except BaseException:
        sock.close()
        raise
    return sock


def send(plan: Plan, out: TextIO) -> int:
    """Sends; returns how many datagrams went (every group, FINs included)."""
    make = payload_maker(plan.format, plan.size)
    dests = [(g, plan.port) for g in plan.groups]
    seq = [0] * len(dests)
    sent = 0
    batch = BATCH       # shaped: few per group and round, so every group sees the rate
    if plan.bytes_per_s > 0:
        per_group = plan.bytes_per_s / plan.size / len(dests)
        batch = max(1, min(BATCH, int(per_group * ROUND_S)))
    sock = open_socket(plan)
    start = time.monotonic()
    end = None if plan.duration is None else start + plan.duration
    try:
        try:
            while True:
                if end is not None and time.monotonic() >= end:
                    break
                busy = False
                for i, d in enumerate(dests):
                    n = batch if plan.count is None else min(batch, plan.count - seq[i])
                    if n <= 0:
                        continue
                    busy = True
                    sent += sock.send_batch([make(s, False) for s in range(seq[i], seq[i] + n)],
                                            d)
                    seq[i] += n
                if not busy:
                    break
        except KeyboardInterrupt:
            pass
        if plan.format == "iperf2":
            for i, d in enumerate(dests):
                sent += sock.send_batch([make(seq[i], True)], d)
        elapsed = time.monotonic() - start
    finally:
        sock.close()
    per = ", ".join(str(s) for s in seq[:4]) + (", ..." if len(seq) > 4 else "")
    rate = sum(seq) / elapsed if elapsed > 0 else 0.0
    out.write(f"sent {sum(seq)} datagrams of {plan.size} bytes to {len(dests)} groups "
              f"(per group: {per}) in {elapsed:.3f} s: {rate:.0f} datagrams/s, "
              f"{rate * plan.size * 8 / 1e6:.3f} Mbit/s of payload"
              + (f"; plus {sent - sum(seq)} iperf 2 FIN datagram(s)" if sent > sum(seq) else "")
              + "\n")
    out.flush()
    return sent


def run(ns: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        plan = Plan(ns)
        settle("mpoint send", plan.interface)
        send(plan, out)
    except _args.BadArgument as exc:
        print(f"mpoint send: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mpoint send: {exc}", file=sys.stderr)
        return 2
    return 0


