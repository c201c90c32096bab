"""Receive benchmark: what one datagram and one wake-up cost, against the
standard library, asyncio, uvloop and plain C, in one run.

* Drain: each receiver empties socket buffers that were filled beforehand
  with a known number of datagrams (a live sender on 2 cores cannot outrun a
  decent receiver), for 1, 64 and 1,024 groups (one socket per group).
  Figure: ns per datagram, best of a few rounds, and its ratio to the C
  recvmmsg loop of the same run (with IP_PKTINFO for receivers that report
  the destination group).
* Wake-up: one socket of N (10, 1,000, 10,000) gets a datagram; the loop is
  send, wait, receive.  Figure: ns per wake-up and its ratio to C epoll_wait.

Runs inside a private network namespace it creates (mpoint.lab.netns); refuses
where it cannot.  Usage: python benchmarks/bench_recv.py [--quick] [--json F]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import select
import socket
import sys
import time
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple

from mpoint.lab import _reference
from mpoint.lab import netns as _netns

PAYLOAD = b"m" * 64
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)          # Linux; in the socket module since 3.12
PORT = 31000


def progress(msg: str) -> None:
    print(f"  ... {msg}", file=sys.stderr, flush=True)


# -- set-up ---------------------------------------------------------------------

def receivers(mpoint: Any, ngroups: int) -> Tuple[List[Any], Any, List[str]]:
    groups = [f"239.77.{i // 250}.{i % 250 + 1}" for i in range(ngroups)]
    socks = []
    for g in groups:
        s = mpoint.socket().join_leaf((g, PORT), flags=mpoint.JL_RECEIVER_ONLY)
        try:        # beyond net.core.rmem_max: needs root's CAP_NET_ADMIN
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        except PermissionError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        s.setblocking(False)
        socks.append(s)
    tx = mpoint.socket()
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    return socks, tx, groups


def fill(tx: Any, groups: List[str], total: int) -> None:
    dests = [(g, PORT) for g in groups]
    n = len(dests)
    sendto = tx.sendto
    for i in range(total):
        sendto(PAYLOAD, dests[i % n])


def plain(sock: Any) -> socket.socket:
    """The same descriptor as a standard-library socket (what users have)."""
    fam = sock.family
    return socket.socket(fam, socket.SOCK_DGRAM, 0, fileno=sock.detach())


# -- drain receivers: each takes the sockets and the expected count, returns (ns, count)

def c_drain(mode: int) -> Callable[..., Tuple[int, int]]:
    def run(mpoint: Any, socks: List[Any], expected: int) -> Tuple[int, int]:
        ns, got = _reference.reference_drain([s.fileno() for s in socks], 64, 2048, mode)
        return ns, got
    return run


def _drain_plain(socks: List[Any], reader: Callable[[socket.socket], Callable[[], Any]],
                 setup: Callable[[socket.socket], None] = lambda s: None) -> Tuple[int, int]:
    """Empties each socket with ``reader(sock)()`` until it would block."""
    ps = [plain(s) for s in socks]
    for s in ps:
        setup(s)
    got = 0
    t = time.perf_counter_ns()
    for s in ps:
        read_one = reader(s)
        try:
            while True:
                read_one()
                got += 1
        except BlockingIOError:
            pass
    t = time.perf_counter_ns() - t
    for s in ps:
        s.close()
    return t, got


def std_recvfrom(mpoint: Any, socks: List[Any], expected: int) -> Tuple[int, int]:
    return _drain_plain(socks, lambda s: partial(s.recvfrom, 2048))   # C-level call


def std_recv_into(mpoint: Any, socks: List[Any], expected: int) -> Tuple[int, int]:
    buf = bytearray(2048)
    return _drain_plain(socks, lambda s: partial(s.recv_into, buf))


def std_recvmsg_pktinfo(mpoint: Any, socks: List[Any], expected: int) -> Tuple[int, int]:
    groups = set()

    def reader(s: socket.socket) -> Callable[[], None]:
        def read_one() -> None:
            _, anc, _, _ = s.recvmsg(2048, 64)
            for _level, kind, data in anc:
                if kind == IP_PKTINFO:
                    groups.add(data[8:12])        # struct in_pktinfo.ipi_addr
        return read_one

    return _drain_plain(socks, reader,
                        lambda s: s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1))


def std_selectors(mpoint: Any, socks: List[Any], expected: int) -> Tuple[int, int]:
    ps = [plain(s) for s in socks]
    sel = selectors.DefaultSelector()
    for s in ps:
        sel.register(s, selectors.EVENT_READ)
    got = 0
    t = time.perf_counter_ns()
    while got < expected:
        ready = sel.select(1.0)
        if not ready:
            break
        for key, _ in ready:
            recv = key.fileobj.recv  # type: ignore[union-attr]
            try:
                while True:
                    recv(2048)
                    got += 1
            except BlockingIOError:
                pass
    t = time.perf_counter_ns() - t
    sel.close()
    for s in ps:
        s.close()
    return t, got


def asyncio_proto(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Callable[..., Any]:
    def run(mpoint: Any, socks: List[Any], expected: int, fill_now: Callable[[], None]
            ) -> Tuple[int, int]:
        loop = loop_factory()
        try:
            return loop.run_until_complete(_asyncio_drain(loop, socks, expected, fill_now))
        finally:
            loop.close()
    run.needs_fill = True  # type: ignore[attr-defined]
    return run


async def _asyncio_drain(loop: asyncio.AbstractEventLoop, socks: List[Any], expected: int,
                         fill_now: Callable[[], None]) -> Tuple[int, int]:
    done = loop.create_future()
    count = [0]

    class Counter(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            count[0] += 1
            if count[0] == expected and not done.done():
                done.set_result(None)

    transports = [(await loop.create_datagram_endpoint(Counter, sock=plain(s)))[0]
                  for s in socks]
    return await _timed_until(transports, done, fill_now, count)


async def _timed_until(transports: List[Any], done: "asyncio.Future[None]",
                       fill_now: Callable[[], None], count: List[int]) -> Tuple[int, int]:
    """Fills the buffers while the loop is not running, then times the loop
    until ``done`` (at most 30 s); closes the transports."""
    await asyncio.sleep(0)
    fill_now()
    t = time.perf_counter_ns()
    try:
        await asyncio.wait_for(done, 30)
    except asyncio.TimeoutError:
        pass
    t = time.perf_counter_ns() - t
    for tr in transports:
        tr.close()
    await asyncio.sleep(0)
    return t, count[0]


def mpoint_batch(metadata: bool) -> Callable[..., Tuple[int, int]]:
    def run(mpoint: Any, socks: List[Any], expected: int) -> Tuple[int, int]:
        batch = mpoint.RecvBatch(64, 2048, metadata=metadata)
        got = 0
        t = time.perf_counter_ns()
        for s in socks:
            recv_batch = s.recv_batch
            n = recv_batch(batch, 0)
            while n:
                got += n
                n = recv_batch(batch, 0)
        t = time.perf_counter_ns() - t
        return t, got
    return run


def mpoint_aio(bulk: bool) -> Callable[..., Any]:
    def run(mpoint: Any, socks: List[Any], expected: int, fill_now: Callable[[], None]
            ) -> Tuple[int, int]:
        return asyncio.run(_aio_drain(mpoint, socks, expected, fill_now, bulk))
    run.needs_fill = True  # type: ignore[attr-defined]
    return run


async def _aio_drain(mpoint: Any, socks: List[Any], expected: int,
                     fill_now: Callable[[], None], bulk: bool) -> Tuple[int, int]:
    from mpoint import aio
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = [0]

    class PerDatagram(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            count[0] += 1
            if count[0] == expected and not done.done():
                done.set_result(None)

    class Batches(asyncio.DatagramProtocol):
        def datagrams_received(self, batch: Any) -> None:
            count[0] += len(batch)
            if count[0] >= expected and not done.done():
                done.set_result(None)

    transports = [(await aio.create_datagram_endpoint(Batches if bulk else PerDatagram,
                                                      sock=s))[0] for s in socks]
    return await _timed_until(transports, done, fill_now, count)


def drain_cases() -> List[Tuple[str, Callable[..., Any], Optional[str]]]:
    """(name, receiver, reference name)."""
    cases: List[Tuple[str, Callable[..., Any], Optional[str]]] = [
        ("C recvmmsg", c_drain(0), None),
        ("C recvmmsg + IP_PKTINFO", c_drain(1), None),
        ("C recvmmsg + IP_PKTINFO + SO_TIMESTAMPING", c_drain(2), None),
        ("mpoint recv_batch", mpoint_batch(False), "C recvmmsg"),
        ("mpoint recv_batch, metadata", mpoint_batch(True),
         "C recvmmsg + IP_PKTINFO + SO_TIMESTAMPING"),
        ("stdlib recvfrom", std_recvfrom, "C recvmmsg"),
        ("stdlib recv_into", std_recv_into, "C recvmmsg"),
        ("stdlib recvmsg + IP_PKTINFO", std_recvmsg_pktinfo, "C recvmmsg + IP_PKTINFO"),
        ("stdlib selectors + recv", std_selectors, "C recvmmsg"),
        ("asyncio DatagramProtocol", asyncio_proto(asyncio.new_event_loop), "C recvmmsg"),
    ]
    try:
        import uvloop
        cases.append(("uvloop DatagramProtocol", asyncio_proto(uvloop.new_event_loop),
                      "C recvmmsg"))
    except ImportError:
        cases.append(("uvloop DatagramProtocol", None, None))  # type: ignore[arg-type]
    cases += [
        ("mpoint.aio, datagrams_received", mpoint_aio(True), "C recvmmsg + IP_PKTINFO + SO_TIMESTAMPING"),
        ("mpoint.aio, datagram_received", mpoint_aio(False), "C recvmmsg + IP_PKTINFO + SO_TIMESTAMPING"),
    ]
    return cases


def bench_drain(mpoint: Any, ngroups: int, total: int, rounds: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, run, _ in drain_cases():
        if run is None:
            out[name] = {"skipped": "uvloop is not installed"}
            continue
        best, counts = None, []
        for _ in range(rounds):
            socks, tx, groups = receivers(mpoint, ngroups)
            try:
                if getattr(run, "needs_fill", False):
                    ns, got = run(mpoint, socks, total, lambda: fill(tx, groups, total))
                else:
                    fill(tx, groups, total)
                    ns, got = run(mpoint, socks, total)
            finally:
                for s in socks:
                    s.close()
                tx.close()
            counts.append(got)
            if got:
                per = ns / got
                best = per if best is None else min(best, per)
        out[name] = {"ns_per_datagram": best, "received": counts, "sent": total}
        progress(f"{ngroups:>5} groups  {name:<42} {best or 0:8.1f} ns/datagram")
    return out


# -- wake-ups -------------------------------------------------------------------------

def wake_sockets(mpoint: Any, nidle: int) -> Tuple[Any, Any, List[Any]]:
    rx = mpoint.socket().join_leaf(("239.78.0.1", PORT + 1), flags=mpoint.JL_RECEIVER_ONLY)
    tx = mpoint.socket().join_leaf(("239.78.0.1", PORT + 1), flags=mpoint.JL_SENDER_ONLY)
    idle = [mpoint.socket() for _ in range(nidle)]
    for s in idle:
        s.bind(("127.0.0.1", 0))
    return tx, rx, idle


def wake_c(mpoint: Any, tx: Any, rx: Any, idle: List[Any], rounds: int) -> int:
    return int(_reference.reference_wakeups(tx.fileno(), rx.fileno(),
                                              [s.fileno() for s in idle], rounds))


def _rounds(send: Callable[[bytes], Any], wait: Callable[[], Any],
            recv: Callable[[int], Any], rounds: int) -> int:
    """ns for ``rounds`` x (send one datagram, wait for it, receive it)."""
    t = time.perf_counter_ns()
    for _ in range(rounds):
        send(b"x")
        wait()
        recv(64)
    return time.perf_counter_ns() - t


def wake_eventset(backend: str) -> Callable[..., int]:
    def run(mpoint: Any, tx: Any, rx: Any, idle: List[Any], rounds: int) -> int:
        es = mpoint.EventSet(backend)
        for s in idle:
            es.register(s, mpoint.FD_READ)
        es.register(rx, mpoint.FD_READ)
        t = _rounds(tx.send, es.wait, rx.recv, rounds)
        es.close()
        return t
    return run


def wake_select_epoll(mpoint: Any, tx: Any, rx: Any, idle: List[Any], rounds: int) -> int:
    ep = select.epoll()
    for s in idle:
        ep.register(s.fileno(), select.EPOLLIN)
    ep.register(rx.fileno(), select.EPOLLIN)
    prx = plain(rx)
    t = _rounds(tx.send, ep.poll, prx.recv, rounds)
    ep.close()
    prx.close()
    return t


def wake_selectors(mpoint: Any, tx: Any, rx: Any, idle: List[Any], rounds: int) -> int:
    sel = selectors.DefaultSelector()
    for s in idle:
        sel.register(s.fileno(), selectors.EVENT_READ)
    prx = plain(rx)
    sel.register(prx, selectors.EVENT_READ)
    t = _rounds(tx.send, sel.select, prx.recv, rounds)
    sel.close()
    prx.close()
    return t


def wake_loop(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Callable[..., int]:
    def run(mpoint: Any, tx: Any, rx: Any, idle: List[Any], rounds: int) -> int:
        loop = loop_factory()
        prx = plain(rx)
        prx.setblocking(False)
        done = loop.create_future()
        left = [rounds]
        send = tx.send

        def on_read() -> None:
            prx.recv(64)
            left[0] -= 1
            if left[0] == 0:
                done.set_result(None)
            else:
                send(b"x")

        for s in idle:
            loop.add_reader(s.fileno(), lambda: None)
        loop.add_reader(prx.fileno(), on_read)
        t = time.perf_counter_ns()
        send(b"x")
        loop.run_until_complete(done)
        t = time.perf_counter_ns() - t
        loop.remove_reader(prx.fileno())
        for s in idle:
            loop.remove_reader(s.fileno())
        loop.close()
        prx.close()
        return t
    return run


def wake_cases() -> List[Tuple[str, Optional[Callable[..., int]]]]:
    cases: List[Tuple[str, Optional[Callable[..., int]]]] = [
        ("C epoll_wait", wake_c),
        ("mpoint EventSet (epoll)", wake_eventset("epoll")),
        ("mpoint EventSet (poll)", wake_eventset("poll")),
        ("select.epoll", wake_select_epoll),
        ("selectors.DefaultSelector", wake_selectors),
        ("asyncio add_reader", wake_loop(asyncio.new_event_loop)),
    ]
    try:
        import uvloop
        cases.append(("uvloop add_reader", wake_loop(uvloop.new_event_loop)))
    except ImportError:
        cases.append(("uvloop add_reader", None))
    return cases


def bench_wakeups(mpoint: Any, nidle: int, rounds: int, repeats: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, run in wake_cases():
        if run is None:
            out[name] = {"skipped": "uvloop is not installed"}
            continue
        best = None
        # poll(2) is O(sockets) per wake-up: fewer rounds keep the run short.
        n = max(100, rounds * 10 // nidle) if "(poll)" in name and nidle >= 1000 else rounds
        for _ in range(repeats):
            tx, rx, idle = wake_sockets(mpoint, nidle)
            try:
                per = run(mpoint, tx, rx, idle, n) / n
            finally:
                for s in idle + [tx, rx]:
                    s.close()
            best = per if best is None else min(best, per)
        out[name] = {"ns_per_wakeup": best}
        progress(f"{nidle:>6} sockets  {name:<28} {best:8.1f} ns/wake-up")
    return out


# -- report ---------------------------------------------------------------------------

def report(results: Dict[str, Any]) -> str:
    lines = ["Drain (ns per datagram; ratio to the C reference of the same run)", ""]
    refs = {name: ref for name, _, ref in drain_cases()}
    for ngroups, table in results["drain"].items():
        lines.append(f"{ngroups} group(s), {next(iter(table.values()))['sent']} datagrams:")
        for name, row in table.items():
            if "skipped" in row:
                lines.append(f"  {name:<44} skipped: {row['skipped']}")
                continue
            ref = refs.get(name) or name
            ratio = row["ns_per_datagram"] / table[ref]["ns_per_datagram"]
            lost = "" if max(row["received"]) == row["sent"] else \
                f"  (received {max(row['received'])})"
            lines.append(f"  {name:<44} {row['ns_per_datagram']:8.1f}  {ratio:5.2f}x {ref}{lost}")
        lines.append("")
    lines += ["Wake-ups (ns per send + wait + receive; ratio to C epoll_wait)", ""]
    for nidle, table in results["wakeups"].items():
        lines.append(f"{nidle} idle socket(s) + 1 active:")
        c = table["C epoll_wait"]["ns_per_wakeup"]
        for name, row in table.items():
            if "skipped" in row:
                lines.append(f"  {name:<30} skipped: {row['skipped']}")
            else:
                lines.append(f"  {name:<30} {row['ns_per_wakeup']:8.1f}  "
                             f"{row['ns_per_wakeup'] / c:5.2f}x")
        lines.append("")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, every case")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny counts, few group counts: proves the benchmark still runs")
    ap.add_argument("--json", help="write the raw results to this file")
    args = ap.parse_args(argv)
    prepared = _netns.for_benchmark("bench_recv")
    if prepared is None:
        return 2
    iso, limit = prepared
    hard = limit if limit is not None else 1 << 30
    import mpoint

    total, rounds, wrounds, repeats = ((200, 1, 100, 1) if args.smoke else
                                       (2000, 1, 500, 1) if args.quick else
                                       (40000, 3, 20000, 3))
    group_counts = (1, 4) if args.smoke else (1, 64, 1024)
    idle_counts = [10] if args.smoke else [10, 1000] + ([10000] if hard >= 10100 else [])
    print(f"namespace {iso.netns}; python {sys.version.split()[0]}; "
          f"{os.cpu_count()} cpu(s)", file=sys.stderr)
    results: Dict[str, Any] = {"drain": {}, "wakeups": {}}
    for ngroups in group_counts:
        results["drain"][ngroups] = bench_drain(mpoint, ngroups, total, rounds)
    for nidle in idle_counts:
        results["wakeups"][nidle] = bench_wakeups(mpoint, nidle, wrounds, repeats)
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
