"""The join-delay part (RFC 3918): GroupSet.join_many while a C sender
sends to every group in turn; a group's first datagram minus its join."""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from mpoint import GroupSet, RecvBatch
from mpoint import socket as mp_socket

from .. import _reference
from .common import (DELAY_DRAIN_MAX_S, DELAY_DRAIN_S, DELAY_WARMUP_S, PORTS, percentile,
                     family_name, make_groups, progress)


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
        n, offset = len(self.groups), 0
        end = time.monotonic() + self.limit_s
        try:
            while not self.stop.is_set() and time.monotonic() < end:
                order = self.groups[offset:] + self.groups[:offset] if offset else self.groups
                t = time.perf_counter_ns()
                sent = _reference.reference_send_round_robin(self.fd, self.family, order, self.port,
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
        batch = RecvBatch(1024, 128)
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
        out["median_ns"] = percentile(delays, 50)
        out["p99_ns"] = percentile(delays, 99)
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
