"""The join, leave and close cases: each makes its sockets, times its
phases and closes everything it made, in whatever namespace it is run in
(runner.py gives each run a fresh one).  Each returns its samples."""
from __future__ import annotations

import socket as _stdsocket
import time
from typing import Any, Dict, List

from mpoint import JL_RECEIVER_ONLY, GroupSet
from mpoint import socket as mp_socket

from .. import _reference
from .common import (C_LEAF, C_ONE, C_ONE_PER, C_PER, MP_BATCH, MP_CLOSE, MP_LEAF, MP_LEAVE,
                     MP_SOCK_LEAF, PER, PORTS, STD_ONE, STD_PER, Sample, NoGC, any_address,
                     join_option, std_mreqs)


def c_joins(family: int, groups: List[str], per: int, newest: bool) -> List[Sample]:
    """reference_joins: make sockets + join (timed), leave, rejoin, close."""
    # The sharded C layout is a GroupSet shard's, receive timestamps included.
    join, leave, close = _reference.reference_joins(family, PORTS["join"], groups, per, newest,
                                               per == PER)
    order = "newest" if newest else "oldest"
    if per == 0:
        return [("join", C_ONE, join), ("leave", f"C one socket, {order} first", leave)]
    return [("join", C_PER, join), ("leave", f"C 20 per socket, {order} first", leave),
            ("close", f"C 20 per socket, {order} socket first", close)]


def c_leaf_joins(family: int, groups: List[str], in_loop: bool) -> List[Sample]:
    """reference_leaf_joins: metadata options + bind to the group + join on
    each socket of one per group (timed) -- what join_leaf does per
    receiver-only call on an unbound socket; the sockets made first (not
    timed), or ``in_loop`` each just before its join (timed), as
    mpoint.socket().join_leaf(...) does."""
    row = C_ONE_PER if in_loop else C_LEAF
    return [("join", row, _reference.reference_leaf_joins(family, PORTS["leaf"], groups,
                                                          in_loop))]


def mp_groupset(family: int, groups: List[str], info: Dict[str, Any]) -> List[Sample]:
    """The C reference's sequence on a new GroupSet: join_many (timed),
    leave_many in join order (timed), join_many again, close (timed)."""
    gs = GroupSet(PORTS["join"], family=family)
    try:
        with NoGC():
            t0 = time.perf_counter_ns()
            res = gs.join_many(groups)
            t1 = time.perf_counter_ns()
        info.setdefault("joined", []).append(len(res.joined))
        info.setdefault("failed", []).append(len(res.failed))
        info.setdefault("sockets", []).append(gs.sockets)
        if res.failed:
            first = next(iter(res.failed.items()))
            info.setdefault("errors", []).append(f"{len(res.failed)} failed, e.g. {first}")
        with NoGC():
            t2 = time.perf_counter_ns()
            gone = gs.leave_many(groups)
            t3 = time.perf_counter_ns()
        info.setdefault("left", []).append(len(gone.left))
        again = gs.join_many(groups)
        info.setdefault("rejoined", []).append(len(again.joined))
        with NoGC():
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
    port, flags = PORTS["leaf"], JL_RECEIVER_ONLY
    socks: List[Any] = []
    try:
        if create:
            append = socks.append
            with NoGC():
                t = time.perf_counter_ns()
                for g in groups:
                    append(mp_socket(family).join_leaf((g, port), flags=flags))
                t = time.perf_counter_ns() - t
            return [("join", MP_SOCK_LEAF, t)]
        socks.extend(mp_socket(family) for _ in groups)
        with NoGC():
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
    level, option = join_option(family)
    per = per or max(1, len(mreqs))
    shards = [mreqs[i:i + per] for i in range(0, len(mreqs), per)]
    addr = (any_address(family), PORTS["std"])
    socks: List[_stdsocket.socket] = []
    try:
        with NoGC():
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
