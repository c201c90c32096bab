"""The receive-rate part: ns per datagram draining a joined set, mpoint's
GroupSet.recv_batch against a C recvmmsg drain of the same socket layout."""
from __future__ import annotations

import sys
import socket as _stdsocket
import time
from typing import Any, Callable, Dict, List, Tuple

import mpoint
from mpoint import GroupSet, RecvBatch

from .. import _reference
from .common import (IP_MULTICAST_ALL, IP_PKTINFO, IPV6_MULTICAST_ALL, IPV6_RECVPKTINFO, PER,
                     PORTS, RECV_C, RECV_C_SHARED, RECV_CAP, RECV_MP, RECV_MP_SHARED,
                     RECV_PER_GROUP, RECV_ROWS, SO_TIMESTAMPING, TIMESTAMPING_RX, NoGC, any_address,
                     join_option, family_name, make_groups, progress, std_mreqs)


def _fill(family: int, groups: List[str], port: int) -> Tuple[int, int]:
    """RECV_PER_GROUP datagrams to each group, one send_batch per group,
    from an mpoint sender -> (datagrams, ns the sends took: the kernel
    delivers during the send)."""
    tx = mpoint.socket(family)
    try:
        tx.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_SNDBUF, 4 << 20)
        dests = [(g, port) for g in groups]
        payloads = [b"r" * 64] * RECV_PER_GROUP
        send_batch = tx.send_batch
        sent = 0
        t = time.perf_counter_ns()
        for d in dests:
            sent += send_batch(payloads, d)
        t = time.perf_counter_ns() - t
    finally:
        tx.close()
    time.sleep(0.02)                        # loopback delivery is done by now
    return sent, t


def recv_mpoint(family: int, groups: List[str], shared: bool = False
                ) -> Tuple[int, int, int, int]:
    """(ns, received, expected, fill ns) for GroupSet.recv_batch(batch, 0) loops."""
    gs = GroupSet(PORTS["recv_mp"], family=family, shared_receiver=shared)
    try:
        res = gs.join_many(groups)
        if res.failed:
            raise OSError(f"GroupSet joined {len(res.joined)} of {len(groups)}")
        batch = RecvBatch(64, 2048)
        gs.recv_batch(batch, 0)             # nothing queued yet: just ready
        expected, fill_ns = _fill(family, groups, PORTS["recv_mp"])
        recv, got, idle = gs.recv_batch, 0, 0
        with NoGC():
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
        s.bind((any_address(family), port))
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def recv_c(family: int, groups: List[str], shared: bool = False) -> Tuple[int, int, int, int]:
    """The same layout with plain sockets, drained by the C recvmmsg loop:
    20 groups per receiving socket, or (shared) the memberships on unbound
    sockets and one receiver for every group."""
    level, option = join_option(family)
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
        ns, got = _reference.reference_drain([s.fileno() for s in readers], 64, 2048, 2)
    finally:
        for s in reversed(socks):       # newest first: the kernel's cheap end
            s.close()
    return ns, got, expected, fill_ns


def measure_recv(family: int, count: int, repeat: int,
                 fresh: Callable[[], object] = lambda: None) -> Dict[str, Any]:
    """Each case's runs, in rounds; ``fresh()`` before each run gives it a
    kernel state of its own (runner.fresh_kernel)."""
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
                fresh()
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
