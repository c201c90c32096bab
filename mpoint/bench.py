"""``python -m mpoint bench``: the high-rate join benchmark.

What joining, leaving and closing thousands of groups costs with mpoint,
against plain C loops (``mpoint._core.reference_*``) and the standard
library, measured in one run:

1. Join rate: us per join and joins/s for 100 ... 20,000 groups, with the
   ratio to a named C reference (setsockopt(MCAST_JOIN_GROUP) in a C loop;
   the C figures include making, binding and registering their sockets).
2. Leave and close: us per group, newest first and oldest first.  The
   GroupSet repeats the C reference's sequence on a new set: join_many,
   leave_many, join_many again, close (each phase timed alone).
3. Join delay (RFC 3918): while a C sender sends to every group in turn
   (in 250 ms chunks, until the drain is done), ``GroupSet.join_many``
   joins them all; first datagram minus join, per group.
4. Receive rate over the joined set: ns per datagram against a C recvmmsg
   drain of the same socket layout.

Every time is the best of ``--repeat`` runs.  Cases run in rounds (each
case once per round); a ratio is the median over the rounds of the row's
run divided by its reference's run of the same round, so that a slow spell
of the machine, which moves both, does not move the ratio.  Runs of up to
WARM_UP_BELOW groups, and every run of the sharded cases (20 per socket,
GroupSet), follow an untimed run of the same case (warm, as a case's
back-to-back runs would be).  Counts up to 1,000 get up to
SHORT_RUNS times more runs (a 100-group join lasts ~0.3 ms: its best of 3
is noise); a case that has used CASE_BUDGET_S seconds stops repeating
early.  The JSON has every run, its round, and how long each case took.  The garbage collector is off
while a Python loop is timed, as in ``timeit``.

The command moves itself into a private network namespace first
(mpoint._netns) and refuses, with exit code 2 and the reason, where it
cannot; everything runs in this process and its threads.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import socket as _stdsocket
import statistics
import struct
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _netns

__all__ = ["main", "run", "add_arguments", "DESCRIPTION"]

DESCRIPTION = ("The high-rate join benchmark: join, leave and close rates, join delay and "
               "receive rate of mpoint against plain C loops, in a private network namespace.")

DEFAULT_COUNTS = (100, 1000, 10000, 20000)
QUICK_COUNTS = (100, 1000)
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
C_ONE, C_PER, C_ONE_PER = "C, one socket", "C, 20 per socket", "C, 1 per socket"
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


def _join_option(family: int) -> Tuple[int, int]:
    if family == _stdsocket.AF_INET:
        return _stdsocket.IPPROTO_IP, _stdsocket.IP_ADD_MEMBERSHIP
    return _stdsocket.IPPROTO_IPV6, _stdsocket.IPV6_JOIN_GROUP


def _any(family: int) -> str:
    return "0.0.0.0" if family == _stdsocket.AF_INET else "::"


class _NoGC:
    """The collector off while a Python loop is timed (as timeit does)."""

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was:
            gc.enable()


# -- 1 + 2: join, leave and close runs ----------------------------------------------
# Each returns the samples it measured (measure_joins runs them in rounds).

def c_joins(family: int, groups: List[str], per: int, newest: bool) -> List[Sample]:
    """reference_joins: make sockets + join (timed), leave, rejoin, close."""
    from . import _core
    # The sharded C layout is a GroupSet shard's, receive timestamps included.
    join, leave, close = _core.reference_joins(family, PORTS["join"], groups, per, newest,
                                               per == PER)
    order = "newest" if newest else "oldest"
    if per == 0:
        return [("join", C_ONE, join), ("leave", f"C one socket, {order} first", leave)]
    if per == 1:
        return [("join", C_ONE_PER, join)]
    return [("join", C_PER, join), ("leave", f"C 20 per socket, {order} first", leave),
            ("close", f"C 20 per socket, {order} socket first", close)]


def c_leaf_joins(family: int, groups: List[str]) -> List[Sample]:
    """reference_leaf_joins: sockets made first (not timed), then metadata
    options + bind to the group + join on each (timed) -- what join_leaf does
    per receiver-only call on an unbound socket."""
    from . import _core
    return [("join", C_LEAF, _core.reference_leaf_joins(family, PORTS["leaf"], groups))]


def mp_groupset(family: int, groups: List[str], info: Dict[str, Any]) -> List[Sample]:
    """The C reference's sequence on a new GroupSet: join_many (timed),
    leave_many in join order (timed), join_many again, close (timed)."""
    from .groupset import GroupSet
    gs = GroupSet(PORTS["join"], family=family)
    try:
        with _NoGC():
            t0 = time.perf_counter_ns()
            res = gs.join_many(groups)
            t1 = time.perf_counter_ns()
        info.setdefault("joined", []).append(len(res.joined))
        info.setdefault("failed", []).append(len(res.failed))
        info.setdefault("sockets", []).append(gs.sockets)
        if res.failed:
            first = next(iter(res.failed.items()))
            info.setdefault("errors", []).append(f"{len(res.failed)} failed, e.g. {first}")
        with _NoGC():
            t2 = time.perf_counter_ns()
            gone = gs.leave_many(groups)
            t3 = time.perf_counter_ns()
        info.setdefault("left", []).append(len(gone.left))
        again = gs.join_many(groups)
        info.setdefault("rejoined", []).append(len(again.joined))
        with _NoGC():
            t4 = time.perf_counter_ns()
            gs.close()
            t5 = time.perf_counter_ns()
    finally:
        gs.close()
    return [("join", MP_BATCH, t1 - t0), ("leave", MP_LEAVE, t3 - t2),
            ("close", MP_CLOSE, t5 - t4)]


def mp_join_leaf(family: int, groups: List[str], create: bool) -> List[Sample]:
    """One group per multipoint socket: join_leaf in a Python loop; with
    ``create`` the loop makes each socket too."""
    from . import JL_RECEIVER_ONLY
    from . import socket as mp_socket
    port, flags = PORTS["leaf"], JL_RECEIVER_ONLY
    socks: List[Any] = []
    try:
        if create:
            append = socks.append
            with _NoGC():
                t = time.perf_counter_ns()
                for g in groups:
                    append(mp_socket(family).join_leaf((g, port), flags=flags))
                t = time.perf_counter_ns() - t
            return [("join", MP_SOCK_LEAF, t)]
        socks.extend(mp_socket(family) for _ in groups)
        with _NoGC():
            t = time.perf_counter_ns()
            for s, g in zip(socks, groups):
                s.join_leaf((g, port), flags=flags)
            t = time.perf_counter_ns() - t
        return [("join", MP_LEAF, t)]
    finally:
        for s in reversed(socks):       # newest first: the kernel's cheap end
            s.close()


def std_setsockopt(family: int, groups: List[str], per: int) -> List[Sample]:
    """Plain sockets (SO_REUSEADDR, bound to the port) and setsockopt in a
    Python loop; making and binding the sockets is timed."""
    row = STD_PER if per else STD_ONE
    mreqs = std_mreqs(family, groups)
    level, option = _join_option(family)
    per = per or max(1, len(mreqs))
    shards = [mreqs[i:i + per] for i in range(0, len(mreqs), per)]
    addr = (_any(family), PORTS["std"])
    socks: List[_stdsocket.socket] = []
    try:
        with _NoGC():
            t = time.perf_counter_ns()
            for shard in shards:
                s = _stdsocket.socket(family, _stdsocket.SOCK_DGRAM)
                socks.append(s)
                s.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
                s.bind(addr)
                setsockopt = s.setsockopt
                for mreq in shard:
                    setsockopt(level, option, mreq)
            t = time.perf_counter_ns() - t
    finally:
        for s in reversed(socks):       # newest first: the kernel's cheap end
            s.close()
    return [("join", row, t)]


def measure_joins(family: int, count: int, repeat: int, hard_limit: Optional[int],
                  one_socket_skip: Optional[str], timings: Dict[str, float]
                  ) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Tables 1 and 2 for one family and count: {table: {row: entry}}.
    ``timings`` receives the seconds each case took, all runs together."""
    groups = make_groups(family, count)
    tables: Dict[str, Dict[str, Dict[str, Any]]] = {
        "join": {name: {"runs_ns": []} for name, _ in JOIN_ROWS},
        "leave": {name: {"runs_ns": []} for name, _ in LEAVE_ROWS},
        "close": {name: {"runs_ns": []} for name, _ in CLOSE_ROWS},
    }
    gs_info = tables["join"][MP_BATCH]
    # (name, run, rows, sharded): a sharded case is cheap at any count (see below).
    runs: List[Tuple[str, Callable[[], List[Sample]], Tuple[str, ...], bool]] = [
        ("C one socket, newest", lambda: c_joins(family, groups, 0, True),
         (C_ONE, L_ONE_NEW), False),
        ("C one socket, oldest", lambda: c_joins(family, groups, 0, False),
         (C_ONE, L_ONE_OLD), False),
        ("C 20 per socket, newest", lambda: c_joins(family, groups, PER, True),
         (C_PER, L_PER_NEW, C_CLOSE_NEW), True),
        ("C 20 per socket, oldest", lambda: c_joins(family, groups, PER, False),
         (C_PER, L_PER_OLD, C_CLOSE_OLD), True),
        ("C 1 per socket", lambda: c_joins(family, groups, 1, True), (C_ONE_PER,), False),
        ("C 1 per socket, made first", lambda: c_leaf_joins(family, groups), (C_LEAF,), False),
        ("GroupSet", lambda: mp_groupset(family, groups, gs_info),
         (MP_BATCH, MP_LEAVE, MP_CLOSE), True),
        ("join_leaf", lambda: mp_join_leaf(family, groups, False), (MP_LEAF,), False),
        ("socket()+join_leaf", lambda: mp_join_leaf(family, groups, True), (MP_SOCK_LEAF,),
         False),
        ("stdlib one socket", lambda: std_setsockopt(family, groups, 0), (STD_ONE,), False),
        ("stdlib 20 per socket", lambda: std_setsockopt(family, groups, PER), (STD_PER,),
         True),
    ]
    need = count + FD_SPARE
    skipped: Dict[str, str] = {}
    if hard_limit is not None and hard_limit < need:
        for row in PER_SOCKET_ROWS:
            skipped[row] = f"needs {need} descriptors (RLIMIT_NOFILE hard limit {hard_limit})"
    if one_socket_skip is not None:
        for row in (C_ONE, L_ONE_NEW, L_ONE_OLD, STD_ONE):
            skipped[row] = one_socket_skip
    spent: Dict[str, float] = {}
    tag = f"{count:>6} {family_name(family)}"
    # Rounds: every case runs once per round, so that a slow spell of the
    # machine falls on all of them alike, and a row's ratio is the median of
    # its ratios to the reference within each round.  A short run is warmed
    # by an untimed one just before it (run cold, the slower side is also
    # the colder one, and short ratios drift by 0.3-0.5x).  Every timed run
    # so follows a run that left as many groups as it joins: the kernel keeps
    # groups left in the last second or so on a list that each join walks
    # (IGMPv3/MLDv2 state-change reports still to send), so a run straight
    # after a large leave pays for it, the more the further back in that list
    # its groups are.  A warm-up run of the same case leaves them in the order
    # its own joins look for them (cheap); a long run also waits SETTLE_S
    # for the list to empty (see REPORT_INTERVAL_MS).  The sharded cases
    # (the batch join and its reference among them) are warmed at every
    # count, so that each follows itself: run alone that way, GroupSet and
    # C at 20 per socket join 20,000 IPv4 groups at the same 8.2-8.5 us,
    # yet here, following other cases (one that left and closed oldest
    # first), their 9-round medians read 1.16x and 1.19x at 10,000 and
    # 20,000; warmed, 1.08x and 1.07x.
    long_run = count > WARM_UP_BELOW
    for r in range(runs_for(count, repeat)):
        for key, run, rows, sharded in runs:
            if all(row in skipped for row in rows):
                continue
            if r and spent.get(key, 0.0) > CASE_BUDGET_S:
                continue                    # slow case: its first runs must do
            t = time.monotonic()
            try:
                if long_run:
                    time.sleep(SETTLE_S)    # see REPORT_INTERVAL_MS
                if sharded or not long_run:
                    run()
                    if long_run:
                        time.sleep(SETTLE_S)
                gc.collect()                # before every case alike, outside its timing
                samples = run()
            except OSError as exc:
                progress(f"{tag} {key}: failed: {exc}")
                for row in rows:
                    for entries in tables.values():
                        if row in entries:
                            entries[row].setdefault("errors", []).append(str(exc))
                spent[key] = math.inf           # do not repeat a failing case
                continue
            spent[key] = spent.get(key, 0.0) + time.monotonic() - t
            for table, row, ns in samples:
                if row in skipped:
                    continue
                tables[table][row]["runs_ns"].append(ns)
                tables[table][row].setdefault("rounds", []).append(r)
                what = "us/join" if table == "join" else f"us/group ({table})"
                progress(f"{tag} {row} {ns / count / 1e3:.2f} {what}")
    timings.update({key: round(v, 3) for key, v in spent.items()})
    for kind, kind_rows in (("join", JOIN_ROWS), ("leave", LEAVE_ROWS), ("close", CLOSE_ROWS)):
        for name, ref in kind_rows:
            entry = tables[kind][name]
            if name in skipped:
                entry["skipped"] = skipped[name]
            _summarise(entry, count, ref, tables[kind],
                       per_what="join" if kind == "join" else "group")
    return tables


def runs_for(count: int, repeat: int) -> int:
    """Runs per case: ``repeat``, times up to SHORT_RUNS for counts whose runs
    last well under a millisecond or two (their best of 3 is still noise)."""
    return repeat * max(1, min(SHORT_RUNS, 2000 // max(1, count)))


def _summarise(entry: Dict[str, Any], count: int, ref: Optional[str],
               table: Dict[str, Dict[str, Any]], per_what: str) -> None:
    runs = entry.get("runs_ns") or []
    if not runs:
        return
    best = min(runs)
    entry["runs"] = len(runs)
    entry["best_ns"] = best
    entry[f"us_per_{per_what}"] = best / count / 1e3
    if per_what == "join":
        entry["joins_per_s"] = count / (best / 1e9) if best else math.inf
    if ref is not None:
        entry["reference"] = ref
        ref_runs = table[ref].get("runs_ns") or []
        if ref_runs and min(ref_runs) > 0:
            entry["ratio_of_best"] = best / min(ref_runs)
            ref_by_round: Dict[int, int] = {}      # two cases may feed one row: the first
            for r, ns in zip(table[ref].get("rounds") or [], ref_runs):
                ref_by_round.setdefault(r, ns)
            paired = sorted(ns / ref_by_round[r]
                            for r, ns in zip(entry.get("rounds") or [], runs)
                            if ref_by_round.get(r))
            if paired:
                entry["ratio"] = statistics.median(paired)
                entry["rounds_paired"] = len(paired)
            else:
                entry["ratio"] = entry["ratio_of_best"]


# -- 3: join delay -------------------------------------------------------------------

class _Sender(threading.Thread):
    """The C round-robin sender (GIL released), in chunks of CHUNK_MS so that
    it can stop once the drain is done; each chunk starts at the group after
    the last one sent, so the groups are visited in turn throughout."""

    CHUNK_MS = 250

    def __init__(self, fd: int, family: int, groups: List[str], port: int,
                 limit_s: float) -> None:
        super().__init__(name="mpoint-bench-sender", daemon=True)
        self.fd, self.family, self.groups, self.port = fd, family, groups, port
        self.limit_s = limit_s              # hard bound on the sending time
        self.stop = threading.Event()
        self.sent = 0
        self.elapsed_ns = 0
        self.chunks: List[Tuple[int, int, int]] = []     # (start ns, sent, elapsed ns)
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        from . import _core
        n, offset = len(self.groups), 0
        end = time.monotonic() + self.limit_s
        try:
            while not self.stop.is_set() and time.monotonic() < end:
                order = self.groups[offset:] + self.groups[:offset] if offset else self.groups
                t = time.perf_counter_ns()
                sent = _core.reference_send_round_robin(self.fd, self.family, order, self.port,
                                                        64, self.CHUNK_MS)
                elapsed = time.perf_counter_ns() - t
                self.elapsed_ns += elapsed
                self.sent += sent
                self.chunks.append((t, sent, elapsed))
                offset = (offset + sent) % n
        except BaseException as exc:       # reported by the main thread
            self.error = exc


def measure_join_delay(family: int, count: int) -> Dict[str, Any]:
    """GroupSet.join_many while a C round-robin sender sends to every group;
    drains until every group has had a datagram, or DELAY_DRAIN_S passed
    with no group new (the sender's period at 20,000 groups, each datagram
    delivered to 1,000 bound sockets, can be 6-22 s here), or
    DELAY_DRAIN_MAX_S in all."""
    from . import _core
    from . import socket as mp_socket
    from .groupset import GroupSet
    groups = make_groups(family, count)
    port = PORTS["delay"]
    tx = mp_socket(family)
    # Bound: warm-up + a generous join (1 ms per group, at most 60 s) + the drain.
    limit_s = DELAY_WARMUP_S + min(60.0, count * 1e-3) + DELAY_DRAIN_MAX_S + 1.0
    sender = _Sender(tx.fileno(), family, groups, port, limit_s)
    out: Dict[str, Any] = {"groups": count}
    gs = GroupSet(port, family=family)
    stats: Dict[Any, Any] = {}
    joined_at = 0
    try:
        sender.start()
        time.sleep(DELAY_WARMUP_S)
        t = time.perf_counter_ns()
        res = gs.join_many(groups)
        joined_at = time.perf_counter_ns()
        out["join_ns"] = joined_at - t
        out["joined"] = len(res.joined)
        batch = _core.RecvBatch(1024, 128)
        drain_start = last_new = time.monotonic()
        deadline = drain_start + DELAY_DRAIN_MAX_S
        next_check = 0.0
        seen = 0
        while True:                         # bounded by the deadline
            n = gs.recv_batch(batch, 0.2)
            now = time.monotonic()
            if n == 0 or now >= next_check:
                now_seen = sum(1 for st in gs.stats().values() if st.first_ns is not None)
                if now_seen >= count:
                    break
                if now_seen > seen:
                    seen, last_new = now_seen, now
                next_check = now + 0.25
            if now >= deadline or now - last_new >= DELAY_DRAIN_S or \
                    (n == 0 and not sender.is_alive()):
                break
        out["drain_ns"] = int((time.monotonic() - drain_start) * 1e9)
        stats = gs.stats()
    finally:
        sender.stop.set()
        sender.join(timeout=sender.CHUNK_MS / 1e3 + 5.0)
        gs.close()
        if not sender.is_alive():           # else it may still use the descriptor
            tx.close()
    if sender.is_alive():
        out["error"] = "the sender thread did not finish in time"
    elif sender.error is not None:
        out["error"] = f"sender: {sender.error}"
    delays = sorted(st.join_delay_ns for st in stats.values() if st.join_delay_ns is not None)
    out["groups_seen"] = len(delays)
    out["delays_ns"] = delays
    if delays:
        out["median_ns"] = _percentile(delays, 50)
        out["p99_ns"] = _percentile(delays, 99)
    out["sender_sent"] = sender.sent
    out["sender_ns"] = sender.elapsed_ns
    out["sender_chunks"] = sender.chunks
    if sender.sent:
        out["sender_period_overall_ns"] = int(count * sender.elapsed_ns / sender.sent)
    # The period that matters: once the groups are joined, each datagram is
    # delivered (and costs the kernel more than one nobody receives).
    after = [(n, ns) for start, n, ns in sender.chunks if start >= joined_at and n]
    if after:
        out["sender_period_ns"] = int(count * sum(ns for _, ns in after)
                                      / sum(n for n, _ in after))
    elif sender.sent:
        out["sender_period_ns"] = out["sender_period_overall_ns"]
    progress(f"{count:>6} {family_name(family)} join delay: median "
             f"{out.get('median_ns', 0) / 1e6:.2f} ms, p99 {out.get('p99_ns', 0) / 1e6:.2f} ms, "
             f"{len(delays)}/{count} groups saw a datagram; join_many "
             f"{out.get('join_ns', 0) / 1e6:.1f} ms under traffic")
    return out


def _percentile(ordered: List[int], pct: float) -> int:
    """Nearest-rank percentile of a sorted, non-empty list."""
    k = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[k]


# -- 4: receive rate -------------------------------------------------------------------

def _fill(family: int, groups: List[str], port: int) -> Tuple[int, int]:
    """RECV_PER_GROUP datagrams to each group (round-robin) from a plain socket
    -> (datagrams, ns the sends took: the kernel delivers during sendto)."""
    tx = _stdsocket.socket(family, _stdsocket.SOCK_DGRAM)
    try:
        tx.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_SNDBUF, 4 << 20)
        dests = [(g, port) for g in groups]
        payload = b"r" * 64
        sendto = tx.sendto
        t = time.perf_counter_ns()
        for _ in range(RECV_PER_GROUP):
            for d in dests:
                sendto(payload, d)
        t = time.perf_counter_ns() - t
    finally:
        tx.close()
    time.sleep(0.02)                        # loopback delivery is done by now
    return len(groups) * RECV_PER_GROUP, t


def recv_mpoint(family: int, groups: List[str], shared: bool = False
                ) -> Tuple[int, int, int, int]:
    """(ns, received, expected, fill ns) for GroupSet.recv_batch(batch, 0) loops."""
    from . import _core
    from .groupset import GroupSet
    gs = GroupSet(PORTS["recv_mp"], family=family, shared_receiver=shared)
    try:
        res = gs.join_many(groups)
        if res.failed:
            raise OSError(f"GroupSet joined {len(res.joined)} of {len(groups)}")
        batch = _core.RecvBatch(64, 2048)
        gs.recv_batch(batch, 0)             # nothing queued yet: just ready
        expected, fill_ns = _fill(family, groups, PORTS["recv_mp"])
        recv, got, idle = gs.recv_batch, 0, 0
        with _NoGC():
            t = time.perf_counter_ns()
            while got < expected and idle < 3:          # pre-filled: empty means done
                n = recv(batch, 0)
                got += n
                idle = 0 if n else idle + 1
            t = time.perf_counter_ns() - t
    finally:
        gs.close()
    return t, got, expected, fill_ns


def _receiver(family: int, port: int, every_group: bool) -> _stdsocket.socket:
    """A plain receiving socket: the port shared, IP_PKTINFO, timestamps;
    every group joined on the port, or (cross-talk off) only its own."""
    s = _stdsocket.socket(family, _stdsocket.SOCK_DGRAM)
    try:
        s.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
        if family == _stdsocket.AF_INET:
            s.setsockopt(_stdsocket.IPPROTO_IP, IP_MULTICAST_ALL, int(every_group))
            s.setsockopt(_stdsocket.IPPROTO_IP, IP_PKTINFO, 1)
        else:
            s.setsockopt(_stdsocket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, int(every_group))
            s.setsockopt(_stdsocket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        s.setsockopt(_stdsocket.SOL_SOCKET, SO_TIMESTAMPING, TIMESTAMPING_RX)
        if every_group:
            s.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_RCVBUF, 64 << 20)
        s.bind((_any(family), port))
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def recv_c(family: int, groups: List[str], shared: bool = False) -> Tuple[int, int, int, int]:
    """The same layout with plain sockets, drained by the C recvmmsg loop:
    20 groups per receiving socket, or (shared) the memberships on unbound
    sockets and one receiver for every group."""
    from . import _core
    level, option = _join_option(family)
    mreqs = std_mreqs(family, groups)
    port = PORTS["recv_c"]
    socks: List[_stdsocket.socket] = []
    try:
        if shared:
            socks.append(_receiver(family, port, True))
        for i in range(0, len(mreqs), PER):
            if shared:
                s = _stdsocket.socket(family, _stdsocket.SOCK_DGRAM)
                socks.append(s)
            else:
                s = _receiver(family, port, False)
                socks.append(s)
            for mreq in mreqs[i:i + PER]:
                s.setsockopt(level, option, mreq)
        expected, fill_ns = _fill(family, groups, port)
        readers = socks[:1] if shared else socks
        ns, got = _core.reference_drain([s.fileno() for s in readers], 64, 2048, 2)
    finally:
        for s in reversed(socks):       # newest first: the kernel's cheap end
            s.close()
    return ns, got, expected, fill_ns


def measure_recv(family: int, count: int, repeat: int) -> Dict[str, Any]:
    n = min(count, RECV_CAP)
    groups = make_groups(family, n)
    out: Dict[str, Any] = {"groups": n, "datagrams_per_group": RECV_PER_GROUP}
    cases: List[Tuple[str, Callable[[int, List[str]], Tuple[int, int, int, int]]]] = [
        (RECV_C, recv_c), (RECV_MP, recv_mpoint)]
    if sys.platform.startswith("linux"):          # IP_MULTICAST_ALL
        cases += [(RECV_C_SHARED, lambda f, g: recv_c(f, g, True)),
                  (RECV_MP_SHARED, lambda f, g: recv_mpoint(f, g, True))]
    for name, _ in cases:
        out[name] = {"runs": []}
    for _ in range(repeat):
        for name, fn in cases:
            try:
                ns, got, expected, fill_ns = fn(family, groups)
            except OSError as exc:
                out[name].setdefault("errors", []).append(str(exc))
                progress(f"{count:>6} {family_name(family)} {name}: failed: {exc}")
                continue
            out[name]["runs"].append({"ns": ns, "received": got, "expected": expected,
                                      "send_ns": fill_ns})
            per = ns / got if got else 0.0
            progress(f"{n:>6} {family_name(family)} {name} {per:.1f} ns/datagram "
                     f"({got}/{expected})")
    for name, _ in cases:
        good = [r for r in out[name]["runs"] if r["received"]]
        if good:
            best = min(good, key=lambda r: r["ns"] / r["received"])
            out[name]["ns_per_datagram"] = best["ns"] / best["received"]
            out[name]["received"] = best["received"]
            out[name]["expected"] = best["expected"]
            out[name]["send_ns_per_datagram"] = min(r["send_ns"] for r in good) / best["expected"]
    for name, ref in RECV_ROWS:
        if ref is None or name not in out or ref not in out:
            continue
        c_best = out[ref].get("ns_per_datagram")
        if c_best and "ns_per_datagram" in out[name]:
            out[name]["reference"] = ref
            out[name]["ratio"] = out[name]["ns_per_datagram"] / c_best
    return out


# -- report ------------------------------------------------------------------------------

def _fmt_ratio(entry: Dict[str, Any]) -> str:
    if "ratio" in entry:
        return f"{entry['ratio']:6.2f}x  {entry['reference']}"
    return "   ref" if "reference" not in entry else "     -"


def _row_line(name: str, entry: Dict[str, Any], key: str, with_rate: bool) -> str:
    if "skipped" in entry:
        return f"  {name:<38} skipped: {entry['skipped']}"
    if key not in entry:
        errs = entry.get("errors") or ["no result"]
        return f"  {name:<38} failed: {errs[0]}"
    rate = f"{entry['joins_per_s']:>11,.0f}" if with_rate else ""
    return f"  {name:<38} {entry[key]:9.2f} {rate}  {_fmt_ratio(entry)}"


def report(results: Dict[str, Any]) -> str:
    lines: List[str] = []
    fams = list(results["join"])
    lines += [
        "1. Join rate: us per join, joins/s (best run) and the ratio to the named C reference",
        "   (the median over rounds of each round's ratio; every case runs once a round).",
        "   C: setsockopt(MCAST_JOIN_GROUP) in a C loop, timed with making, binding",
        "   (IP_PKTINFO, cross-talk off) and epoll-registering its sockets; at 20 per socket",
        "   also with receive timestamps (SO_TIMESTAMPING), as a GroupSet's sockets have.",
        "",
    ]
    for fam in fams:
        for count, tables in results["join"][fam].items():
            lines.append(f"{f'{fam}, {int(count):,} groups':<40} {'us/join':>9} {'joins/s':>11}"
                         f"   ratio")
            for name, _ in JOIN_ROWS:
                lines.append(_row_line(name, tables[name], "us_per_join", True))
            gs = tables[MP_BATCH]
            if gs.get("joined"):
                lines.append(f"  ({MP_BATCH}: joined {min(gs['joined'])} of {count} on "
                             f"{max(gs.get('sockets') or [0])} sockets)")
            lines.append("")
    lines += [
        "   Notes: one-socket costs grow with the count (the kernel walks the socket's list",
        "   of memberships on each join).  \"C, 1 per socket\" makes each socket inside the",
        "   timed loop (and its mpoint row, socket()+join_leaf, does too); \"made beforehand\"",
        "   times only binding and joining sockets made first (SO_REUSEADDR, cross-talk off),",
        "   which is what \"mpoint join_leaf per call\" does on sockets made first.  Under",
        "   both, the kernel's per-join cost grows with the groups on the interface.  stdlib",
        "   rows time making and binding their sockets (SO_REUSEADDR) and setsockopt",
        "   (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP) in a Python loop.",
        "",
        "2. Leave and close: us per group (best run), ratio to the C reference (median over",
        "   rounds; newest first: the kernel's cheap end).  GroupSet rows repeat C's sequence on a new",
        "   set: join_many, leave_many in join order (the set leaves newest first), join_many",
        "   again, close.",
        "",
    ]
    for fam in fams:
        for count in results["leave"][fam]:
            lines.append(f"{f'{fam}, {int(count):,} groups: leave':<40} {'us/group':>9}    ratio")
            for name, _ in LEAVE_ROWS:
                lines.append(_row_line(name, results["leave"][fam][count][name],
                                       "us_per_group", False))
            lines.append(f"{fam}, {int(count):,} groups: close (leaves every group)")
            for name, _ in CLOSE_ROWS:
                lines.append(_row_line(name, results["close"][fam][count][name],
                                       "us_per_group", False))
            lines.append("")
    if results.get("join_delay"):
        lines += [
            "3. Join delay (RFC 3918: a group's first datagram minus its join) after",
            "   GroupSet.join_many, while a C sender sends 64 bytes to every group in turn (it",
            "   runs before, during and after the joins).  A group receives once per sender",
            "   period (measured after the joins: delivering to members costs the kernel more),",
            "   so joins that took no time would show median ~ period/2, p99 ~ period.",
            "   \"join ms\": how long join_many took with that traffic on the port.",
            "",
            f"  {'family':<6} {'groups':>7} {'median ms':>10} {'p99 ms':>9} {'saw data':>13}"
            f" {'period ms':>10} {'median/(period/2)':>18} {'join ms':>9}",
        ]
        for fam, by_count in results["join_delay"].items():
            for count, d in by_count.items():
                if "median_ns" not in d:
                    lines.append(f"  {fam:<6} {int(count):>7} no group saw a datagram "
                                 f"{d.get('error', '')}")
                    continue
                period = d.get("sender_period_ns")
                rel = f"{d['median_ns'] / (period / 2):18.2f}" if period else f"{'-':>18}"
                seen = f"{d['groups_seen']}/{int(count)}"
                lines.append(
                    f"  {fam:<6} {int(count):>7} {d['median_ns'] / 1e6:10.2f} "
                    f"{d['p99_ns'] / 1e6:9.2f} {seen:>13} {(period or 0) / 1e6:10.2f} {rel} "
                    f"{d.get('join_ns', 0) / 1e6:9.1f}"
                    + (f"  ({d['error']})" if "error" in d else ""))
        lines.append("")
    if results.get("recv"):
        lines += [
            f"4. Receive rate over the joined set: ns per datagram draining {RECV_PER_GROUP} queued",
            f"   datagrams per group (at most {RECV_CAP:,} groups, {PER} per socket, one port), ratio",
            "   to a C recvmmsg drain (64 per call) of plain sockets with the same layout.",
            "   \"send\": ns per sendto that queued them (Python; the kernel's delivery runs",
            "   inside it and tests every socket bound to the port: no ratio, for information).",
            "   A shared receiver (Linux) is the one socket bound to the port, so its send cost",
            "   stays flat; its one buffer (net.core.rmem_max) holds what it can of the burst.",
            "",
        ]
        for fam, by_count in results["recv"].items():
            for count, d in by_count.items():
                title = f"{fam}, {d['groups']:,} groups"
                lines.append(f"{title:<42} {'ns/datagram':>11} {'send':>7}    ratio")
                for name, _ in RECV_ROWS:
                    if name not in d:
                        continue
                    e = d[name]
                    if "ns_per_datagram" not in e:
                        lines.append(f"  {name:<40} failed: {(e.get('errors') or ['-'])[0]}")
                        continue
                    lost = "" if e["received"] == e["expected"] else \
                        f"  (received {e['received']} of {e['expected']})"
                    lines.append(f"  {name:<40} {e['ns_per_datagram']:11.1f} "
                                 f"{e['send_ns_per_datagram']:7.0f}  {_fmt_ratio(e)}{lost}")
                lines.append("")
    return "\n".join(lines)


def plot(results: Dict[str, Any], path: str) -> None:
    """joins/s against the group count, log-x, a subplot per family."""
    import importlib
    matplotlib: Any = importlib.import_module("matplotlib")   # optional: mpoint[plot]
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    fams = list(results["join"])
    fig, axes = plt.subplots(1, len(fams), figsize=(6.5 * len(fams), 4.8), squeeze=False)
    for ax, fam in zip(axes[0], fams):
        by_count = results["join"][fam]
        for name, _ in JOIN_ROWS:
            pts = [(int(c), t[name]["joins_per_s"]) for c, t in by_count.items()
                   if "joins_per_s" in t[name]]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=name,
                        linestyle="--" if name.startswith("C,") else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")              # C one socket and IPv6 span two decades
        ax.set_title(f"{fam}: joins per second")
        ax.set_xlabel("groups")
        ax.set_ylabel("joins/s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- command line ----------------------------------------------------------------------------

def _int_list(text: str, allowed: Optional[Sequence[int]] = None) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    for v in values:
        if allowed is not None and v not in allowed:
            raise argparse.ArgumentTypeError(f"{v} is not one of {list(allowed)}")
        if allowed is None and not 1 <= v <= MAX_COUNT:
            raise argparse.ArgumentTypeError(f"{v} is not in 1..{MAX_COUNT}")
    return list(dict.fromkeys(values))


def _repeat(text: str) -> int:
    v = int(text)
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError("--repeat must be in 1..100")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--counts", type=_int_list, default=None, metavar="N,N,...",
                        help="group counts (default: 100,1000,10000,20000)")
    parser.add_argument("--families", type=lambda t: _int_list(t, (4, 6)), default=[4, 6],
                        metavar="4,6", help="address families (default: 4,6)")
    parser.add_argument("--repeat", type=_repeat, default=None, metavar="N",
                        help="runs per case; the best is reported (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="counts 100,1000 and one run (unless given)")
    parser.add_argument("--json", metavar="FILE", help="write every result (raw ns) here")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot joins/s against the group count (needs matplotlib)")
    parser.add_argument("--no-delay", action="store_true", help="skip the join-delay part")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpoint bench",
                                     description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


# The kernel keeps each group left on its interface's list of recent leaves
# until its state-change reports are sent (IGMPv3, MLDv2: the robustness
# count of them, one per report interval, 1 s by default), and every join
# walks that list: a 20,000-group run just after another case left its
# 20,000 groups in another order costs 10-20x.  In the benchmark's
# namespace the reports go out every REPORT_INTERVAL_MS, and a run that is
# not warmed up waits SETTLE_S first.
REPORT_INTERVAL_MS = 10
SETTLE_S = 0.2
REPORT_SYSCTLS = ("/proc/sys/net/ipv4/conf/lo/igmpv3_unsolicited_report_interval",
                  "/proc/sys/net/ipv6/conf/lo/mldv2_unsolicited_report_interval")


class _ReportIntervals:
    """The private namespace's report intervals: quick for the join tables
    (join(), then restore() before the join-delay and receive parts, whose
    traffic would compete with reports sent that often)."""

    def __init__(self, iso: "_netns.Isolation") -> None:
        self.saved: Dict[str, str] = {}
        self.note = ""
        if os.readlink("/proc/self/ns/net") != iso.netns:
            self.note = "report intervals left as they are: not the private namespace"
            return
        for path in REPORT_SYSCTLS:
            try:
                with open(path) as f:
                    self.saved[path] = f.read().strip()
            except OSError as exc:
                self.note += f" {os.path.basename(path)}: {exc.strerror}"
        self.note = (f"state-change reports every {REPORT_INTERVAL_MS} ms on lo during the "
                     f"join tables (namespace-local); runs of more than {WARM_UP_BELOW:,} "
                     f"groups wait {SETTLE_S:.1f} s for them" + self.note)

    def _write(self, values: Dict[str, str]) -> None:
        for path, value in values.items():
            try:
                with open(path, "w") as f:
                    f.write(value)
            except OSError:
                pass                      # the note said what could be read

    def quick(self) -> None:
        self._write({path: str(REPORT_INTERVAL_MS) for path in self.saved})

    def restore(self) -> None:
        self._write(self.saved)


def _raise_igmp_limit(count: int) -> Optional[str]:
    """IPv4 one-socket cases need igmp_max_memberships >= count (namespace-local).
    Returns None when it is, else why not."""
    path = "/proc/sys/net/ipv4/igmp_max_memberships"
    try:
        with open(path) as f:
            value = int(f.read())
        if value >= count:
            return None
        iso = _netns.current()
        if iso is None or os.readlink("/proc/self/ns/net") != iso.netns:
            return f"igmp_max_memberships is {value} and this is not the private namespace"
        with open(path, "w") as f:
            f.write(str(count))
        with open(path) as f:
            value = int(f.read())
        return None if value >= count else f"igmp_max_memberships stays {value}"
    except (OSError, ValueError) as exc:
        return f"cannot raise igmp_max_memberships to {count}: {exc}"


def run(args: argparse.Namespace) -> int:
    if args.plot:                  # refuse before any work when the plot cannot be made
        # Found, not imported: importing it (numpy's BLAS) may start threads,
        # and the namespace can only be made by a single-threaded process.
        import importlib.util
        try:
            found = importlib.util.find_spec("matplotlib") is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            print("mpoint bench: --plot needs matplotlib, which is not installed "
                  "(pip install 'mpoint[plot]' or pip install matplotlib); "
                  "nothing was run", file=sys.stderr)
            return 2
    counts: List[int] = list(args.counts or (QUICK_COUNTS if args.quick else DEFAULT_COUNTS))
    repeat: int = args.repeat or (1 if args.quick else 3)
    prepared = _netns.for_benchmark("mpoint")
    if prepared is None:
        return 2
    iso, hard_limit = prepared
    families: List[int] = []
    notes: List[str] = []
    for f in args.families:
        if f == 6 and not iso.ipv6:
            notes.append("IPv6 skipped: the private namespace has no IPv6")
            continue
        families.append(_stdsocket.AF_INET if f == 4 else _stdsocket.AF_INET6)
    reports = _ReportIntervals(iso)
    notes.append(reports.note)
    print(f"private network namespace {iso.netns} (host: {iso.host_netns}); "
          f"python {sys.version.split()[0]}; {os.cpu_count()} cpu(s); "
          f"RLIMIT_NOFILE {hard_limit or 'unlimited'}; figures: best of up to {repeat} run(s), "
          f"{runs_for(100, repeat)} at 100 groups")
    for note in notes:
        print(note)
    print(flush=True)
    one_socket_skip = None
    if _stdsocket.AF_INET in families:
        one_socket_skip = _raise_igmp_limit(max(counts))
        if one_socket_skip:
            notes.append(one_socket_skip)
    results: Dict[str, Any] = {
        "meta": {"netns": iso.netns, "host_netns": iso.host_netns, "ipv6": iso.ipv6,
                 "python": sys.version.split()[0], "cpus": os.cpu_count(),
                 "rlimit_nofile": hard_limit, "counts": counts, "repeat": repeat,
                 "case_budget_s": CASE_BUDGET_S, "per_socket": PER, "notes": notes,
                 "case_seconds": {}},
        "join": {}, "leave": {}, "close": {}, "join_delay": {}, "recv": {},
    }
    started = time.monotonic()
    for family in families:
        fam = family_name(family)
        for key in ("join", "leave", "close", "join_delay", "recv"):
            results[key][fam] = {}
        for count in counts:
            limit = one_socket_skip if family == _stdsocket.AF_INET else None
            timings = results["meta"]["case_seconds"].setdefault(fam, {}).setdefault(
                str(count), {})
            reports.quick()
            try:
                tables = measure_joins(family, count, repeat, hard_limit, limit, timings)
            finally:
                reports.restore()
            for key in ("join", "leave", "close"):
                results[key][fam][str(count)] = tables[key]
            if not args.no_delay:
                try:
                    delay = measure_join_delay(family, count)
                except OSError as exc:
                    progress(f"{count:>6} {fam} join delay: failed: {exc}")
                    delay = {"groups": count, "groups_seen": 0, "error": str(exc)}
                results["join_delay"][fam][str(count)] = delay
            capped = min(count, RECV_CAP)
            if str(capped) not in results["recv"][fam]:     # larger counts: the same layout
                results["recv"][fam][str(capped)] = measure_recv(family, capped, repeat)
    if args.no_delay:
        del results["join_delay"]
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    print(report(results))
    print(f"({results['meta']['elapsed_s']} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        try:
            plot(results, args.plot)
        except ImportError as exc:
            print(f"mpoint bench: cannot plot: {exc}", file=sys.stderr)
            return 2
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
