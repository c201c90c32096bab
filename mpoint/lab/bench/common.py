"""What every part of the benchmark shares: its sizes and limits, the row
names (the JSON keys as well), the group lists and small helpers."""
from __future__ import annotations

import gc
import math
import socket as _stdsocket
import struct
import sys
from typing import List, Optional, Sequence, Tuple

DEFAULT_COUNTS = (100, 1000, 10000, 20000)
QUICK_COUNTS = (100, 1000)
DEFAULT_REPEAT = 5            # runs per case (rounds), more for small counts (runs_for)
PER = 20                      # memberships per socket in the sharded cases
CASE_BUDGET_S = 10.0          # a case stops repeating once its runs took this long
WARM_UP_BELOW = 2000         # runs at most this many groups get an untimed run first
SHORT_RUNS = 10               # at most this many times --repeat runs for small counts
RECV_CAP = 10000              # the receive-rate part joins at most this many groups
RECV_PER_GROUP = 4            # datagrams queued per group before a drain
DELAY_WARMUP_S = 0.1          # the sender runs this long before the joins start
DELAY_DRAIN_S = 5.0           # the join-delay drain stops once this long passes with no group new
DELAY_DRAIN_MAX_S = 60.0      # ... and at the latest this long after joining
FD_SPARE = 64                 # descriptors kept free beside a case's sockets
MAX_COUNT = 100000

IP_MULTICAST_ALL = getattr(_stdsocket, "IP_MULTICAST_ALL", 49)       # Linux
IPV6_MULTICAST_ALL = getattr(_stdsocket, "IPV6_MULTICAST_ALL", 29)   # Linux >= 4.20
IP_PKTINFO = getattr(_stdsocket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(_stdsocket, "IPV6_RECVPKTINFO", 49)
SO_TIMESTAMPING = getattr(_stdsocket, "SO_TIMESTAMPING", 37)
# SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE: what a metadata batch asks
TIMESTAMPING_RX = (1 << 3) | (1 << 4)

PORTS = {"join": 32100, "leaf": 32101, "std": 32102, "delay": 32103,
         "recv_mp": 32104, "recv_c": 32105}

# Row names (the JSON keys as well).
C_ONE, C_PER, C_ONE_PER = "C, one socket", "C, 20 per socket", "C, 1 per socket, made in the loop"
C_LEAF = "C, 1 per socket, made beforehand"
MP_BATCH = "mpoint GroupSet.join_many"
MP_LEAF = "mpoint join_leaf per call"
MP_SOCK_LEAF = "mpoint socket()+join_leaf per call"
STD_ONE, STD_PER = "stdlib setsockopt, one socket", "stdlib setsockopt, 20 per socket"
JOIN_ROWS: Tuple[Tuple[str, Optional[str]], ...] = (
    (C_ONE, None), (C_PER, None), (C_ONE_PER, None), (C_LEAF, None),
    (MP_BATCH, C_PER), (MP_LEAF, C_LEAF), (MP_SOCK_LEAF, C_ONE_PER),
    (STD_ONE, C_ONE), (STD_PER, C_PER),
)
L_ONE_NEW, L_ONE_OLD = "C one socket, newest first", "C one socket, oldest first"
L_PER_NEW, L_PER_OLD = "C 20 per socket, newest first", "C 20 per socket, oldest first"
MP_LEAVE = "mpoint GroupSet.leave_many"
LEAVE_ROWS: Tuple[Tuple[str, Optional[str]], ...] = (
    (L_ONE_NEW, None), (L_ONE_OLD, L_ONE_NEW),
    (L_PER_NEW, None), (L_PER_OLD, L_PER_NEW), (MP_LEAVE, L_PER_NEW),
)
C_CLOSE_NEW = "C 20 per socket, newest socket first"
C_CLOSE_OLD = "C 20 per socket, oldest socket first"
MP_CLOSE = "mpoint GroupSet.close"
CLOSE_ROWS: Tuple[Tuple[str, Optional[str]], ...] = (
    (C_CLOSE_NEW, None), (C_CLOSE_OLD, C_CLOSE_NEW), (MP_CLOSE, C_CLOSE_NEW),
)
RECV_MP = "mpoint GroupSet.recv_batch"
RECV_C = "C recvmmsg + IP_PKTINFO + SO_TIMESTAMPING"
RECV_MP_SHARED = "mpoint GroupSet(shared_receiver=True)"
RECV_C_SHARED = "C recvmmsg, one receiver for all"
RECV_ROWS: Tuple[Tuple[str, Optional[str]], ...] = (
    (RECV_C, None), (RECV_MP, RECV_C), (RECV_C_SHARED, None), (RECV_MP_SHARED, RECV_C_SHARED))
PER_SOCKET_ROWS = (C_ONE_PER, C_LEAF, MP_LEAF, MP_SOCK_LEAF)   # one descriptor per group

Sample = Tuple[str, str, int]         # (table, row, elapsed ns)

# Rooted sessions (suite "rooted": mpoint.lab.bench.rooted).
SUITES = ("groups", "rooted-joins", "rooted-data", "send")
SUITE_ALIASES = {"rooted": ("rooted-joins", "rooted-data"), "all": SUITES}
ROOTED_LEAVES = 200           # leaves joining one root
ROOTED_CONCURRENCY = 100      # joins at once (threads, or in flight on one EventSet)
ROOTED_FANOUT = (1, 10, 100)  # leaves of the data-plane cases
ROOTED_REPEAT = 3             # rounds of the rooted cases
QUICK_ROOTED_LEAVES, QUICK_ROOTED_CONCURRENCY = 50, 25     # --quick
QUICK_ROOTED_FANOUT, QUICK_DATA_SECONDS = (1, 10), 0.2
TRANSPORTS = ("multicast", "unicast")
DATAGRAM_SIZE = 1024
DATA_SECONDS = 0.5            # how long the root sends in one data case
DATA_MAX_SENDS = 2_000_000    # ... and at most this many datagrams
RCVBUF = 1 << 20              # receive buffer of every receiver, mpoint's and plain
CASE_LIMIT_S = 60.0           # a case's process is killed after this long
MAX_LEAVES = 2000

RJ_STD_SEQ = "stdlib, one after another"
RJ_MP_SEQ = "mpoint join_leaf, one after another"
RJ_MP_SEQ_UNI = "mpoint join_leaf, unicast session"
RJ_STD_THREADS = "stdlib, from threads"
RJ_MP_THREADS = "mpoint join_leaf, from threads"
RJ_STD_SEL = "stdlib non-blocking, selectors"
RJ_MP_EVSET = "mpoint non-blocking, EventSet"
RJ_ASYNCIO = "asyncio open_connection"
RJ_UVLOOP = "uvloop open_connection"
ROOTED_JOIN_ROWS: Tuple[Tuple[str, Optional[str]], ...] = (
    (RJ_STD_SEQ, None), (RJ_MP_SEQ, RJ_STD_SEQ), (RJ_MP_SEQ_UNI, RJ_STD_SEQ),
    (RJ_STD_THREADS, None), (RJ_MP_THREADS, RJ_STD_THREADS),
    (RJ_STD_SEL, None), (RJ_MP_EVSET, RJ_STD_SEL), (RJ_ASYNCIO, RJ_STD_SEL),
    (RJ_UVLOOP, RJ_STD_SEL),
)
RD_STD = "stdlib sendto + recvfrom"
RD_MP_BATCH = "mpoint send_data + recv_batch"
RD_MP_DATA = "mpoint send_data + recv_data"
ROOTED_DATA_ROWS: Tuple[Tuple[str, Optional[str]], ...] = (
    (RD_STD, None), (RD_MP_BATCH, RD_STD), (RD_MP_DATA, RD_STD))


def progress(msg: str) -> None:
    print(f"  ... {msg}", file=sys.stderr, flush=True)


def family_name(family: int) -> str:
    return "IPv4" if family == _stdsocket.AF_INET else "IPv6"


def make_groups(family: int, count: int) -> List[str]:
    """``count`` distinct groups; the first n are the same for every count."""
    if family == _stdsocket.AF_INET:
        return [f"239.{78 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}" for i in range(count)]
    return [f"ff15::78:{i >> 16:x}:{i & 0xffff:x}" for i in range(count)]


def std_mreqs(family: int, groups: Sequence[str]) -> List[bytes]:
    """Pre-packed ip_mreq / ipv6_mreq values (interface: the system's choice)."""
    if family == _stdsocket.AF_INET:
        anyaddr = _stdsocket.inet_aton("0.0.0.0")
        return [_stdsocket.inet_aton(g) + anyaddr for g in groups]
    zero = struct.pack("@I", 0)
    return [_stdsocket.inet_pton(_stdsocket.AF_INET6, g) + zero for g in groups]


def join_option(family: int) -> Tuple[int, int]:
    if family == _stdsocket.AF_INET:
        return _stdsocket.IPPROTO_IP, _stdsocket.IP_ADD_MEMBERSHIP
    return _stdsocket.IPPROTO_IPV6, _stdsocket.IPV6_JOIN_GROUP


def any_address(family: int) -> str:
    return "0.0.0.0" if family == _stdsocket.AF_INET else "::"


class NoGC:
    """The collector off while a Python loop is timed (as timeit does)."""

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was:
            gc.enable()




def percentile(ordered: List[int], pct: float) -> int:
    """Nearest-rank percentile of a sorted, non-empty list."""
    k = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[k]
