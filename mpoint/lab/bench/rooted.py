"""The rooted-session parts (mpoint.rooted, docs/rooted-protocol.md):
leaf joins per second against one root, and the data plane's throughput
from the root to 1, 10 and 100 leaves, each against a plain program of the
same shape written with the standard library only, measured in one run.

1. Joins (``measure_joins``): N leaves (200) join one root that accepts in
   its own thread (``root.accept()`` in a loop), IPv4 on loopback:
   one blocking ``join_leaf`` after another (a multicast session, and a
   unicast one); N from ``--concurrency`` threads at once (each joins its
   share, one after another); and non-blocking joins, ``--concurrency`` in
   flight, driven by one ``EventSet`` waiting for FD_CONNECT.  Reference:
   the same handshake as a user's plain program writes it (socket +
   struct): the leaf connects and sends a 21-byte request (a JOIN's size),
   the root's thread accepts, reads it and answers 36 bytes (an ADMIT's
   size), the leaf reads the answer -- one after another, from threads, and
   non-blocking with ``selectors``; and asyncio's ``open_connection`` (and
   uvloop's, where it is installed) against the same root thread.  Figure:
   the time from the first leaf's ``socket()`` to the last admission (the
   root's accept thread done too); joins/s; and the ratio of that time to
   its reference's.
2. Data plane (``measure_data``): a root with N admitted leaves (1, 10,
   100), ``transport`` "multicast" or "unicast" (one copy per leaf, sent by
   ``send_data``), sends datagrams of ``--datagram-size`` bytes (1,024) as
   fast as it can for ``--seconds`` (0.5 s; at most DATA_MAX_SENDS).  Every
   leaf's datagrams are counted; loss is what the leaves should have had
   (sent x leaves) and did not get.  Figures: the root's sends/s, the
   datagrams and MB delivered per second (all leaves together, from the
   first send to the last datagram received), loss, and the ratio of the
   time per delivered datagram to the reference's; the JSON also has each
   run's per-leaf counts and how often the receivers woke.  Reference: a plain
   socket's ``sendto`` to the group (unicast: one ``sendto`` to each
   receiver in a loop) and as many plain receivers (``SO_REUSEADDR``, bound
   to the group and port, ``IP_ADD_MEMBERSHIP``; unicast: bound to
   127.0.0.1) drained with ``selectors`` + ``recvfrom``.  mpoint's leaves are
   drained two ways: ``leaf.data.recv_batch`` on an ``EventSet`` of the
   leaves' data sockets, and ``leaf.recv_data`` (one datagram a call) on the
   same set.

Processes, and why: the sender (the root, or the plain sender) is one
process and every receiver of a case lives in one other process, pinned to
the second core (the sender to the first) when there are two.  Receivers
as threads beside the sender would share its interpreter lock: the
sending loop and the draining loops would take turns on one core, and the
figures would measure the lock's hand-overs (its 5 ms switch interval)
instead of the data plane.  One process per receiver (100 on 2 cores)
would measure the scheduler's context switches.  Two processes on two
cores is the layout each side's work fits: the sender's core also runs the
kernel's loopback delivery (the fan-out of a multicast datagram to every
member's socket happens inside its ``sendto``), the receiver's core drains
every leaf's socket.  Both sides of the reference run the same layout, with
the same receive buffers (RCVBUF bytes per socket).  The joins run in one
process (the leaves in the main thread or its threads, the root's accept
loop and mpoint's protocol thread beside them), mpoint and reference alike.

Every case's run is a child process forked from the benchmark (which stays
single-threaded: mpoint's protocol thread never ends, and a namespace can
only be made by a single-threaded process) that first moves into a fresh
private network namespace (``netns.renew``): no case meets the sockets,
memberships or TIME_WAIT connections another left; each run records its
namespace.  A run that takes longer than CASE_LIMIT_S is killed with its
receivers (a process group of its own) and reported as failed.  Cases run
in rounds (each once per round); a ratio is the median over rounds of the
row's run over its reference's run of the same round, the other figures
are the best run's.  The collector is off in every timed loop.
"""
from __future__ import annotations

import asyncio
import importlib
import functools
import json
import os
import select
import selectors
import signal
import socket as _stdsocket
import statistics
import struct
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .. import netns
from .common import (CASE_LIMIT_S, DATA_MAX_SENDS, RCVBUF, ROOTED_DATA_ROWS, ROOTED_JOIN_ROWS,
                     RD_MP_BATCH, RD_MP_DATA, RD_STD, RJ_ASYNCIO, RJ_MP_EVSET, RJ_MP_SEQ,
                     RJ_MP_SEQ_UNI, RJ_MP_THREADS, RJ_STD_SEL, RJ_STD_SEQ, RJ_STD_THREADS,
                     RJ_UVLOOP, NoGC, progress)

C_ROOT, C_LEAF, D_ROOT = 0x2, 0x4, 0x8
LOOPBACK = "127.0.0.1"
REF_GROUP, REF_PORT = "239.255.77.1", 32110      # the plain multicast reference's channel
SO_RCVBUFFORCE = getattr(_stdsocket, "SO_RCVBUFFORCE", 33)
SEND_CHECK = 64           # sends between two looks at the clock
IDLE_WAIT_S = 0.02        # a receiver looks at its control pipe after this long with no datagram
SETUP_LIMIT_S = 20.0      # joins and sockets of one data case
JSON = Dict[str, Any]

# -- the plain handshake: what a user's program writes with socket + struct --------
_HDR = struct.Struct("!2sBBI")                          # magic, version, type, length
_REQ_BODY = struct.Struct("!BBBBHHHH")                  # a JOIN's request block
_ANS_BODY = struct.Struct("!BBBBBB16sHHH")               # an ADMIT: version, session, callee
REQUEST = _HDR.pack(b"MR", 1, 1, _REQ_BODY.size + 1) + _REQ_BODY.pack(1, 1, 2, 0, 0, 1, 0,
                                                                       0) + b"x"
ANSWER = _HDR.pack(b"MR", 1, 3, _ANS_BODY.size) + _ANS_BODY.pack(
    1, 0, 1, 1, 4, 1, _stdsocket.inet_aton(REF_GROUP) + bytes(12), REF_PORT, REF_PORT, 0)


def _recv_exactly(sock: _stdsocket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("the peer closed the connection")
        data += chunk
    return data


def _plain_root(lst: _stdsocket.socket, n: int, conns: List[_stdsocket.socket],
                errors: List[str]) -> None:
    """The reference root's thread: accept, read the request, answer."""
    try:
        for _ in range(n):
            conn, _ = lst.accept()
            conns.append(conn)
            magic, _, _, length = _HDR.unpack(_recv_exactly(conn, _HDR.size))
            _recv_exactly(conn, length)
            conn.sendall(ANSWER)
    except OSError as exc:
        errors.append(f"root: {exc}")


def _plain_join(addr: Tuple[str, int]) -> _stdsocket.socket:
    s = _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_STREAM)
    s.connect(addr)
    s.sendall(REQUEST)
    _, _, _, length = _HDR.unpack(_recv_exactly(s, _HDR.size))
    _recv_exactly(s, length)
    return s


# -- one case's run in a fresh namespace ------------------------------------------

def in_fresh_namespace(fn: Callable[[], JSON], limit_s: float = CASE_LIMIT_S) -> JSON:
    """``fn()`` in a forked child that first moves into a fresh private
    namespace; its JSON result (with the namespace), or {"error": why}.
    The child leads a process group of its own: on overrun the group
    (its receivers too) is killed."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child
        code = 0
        try:
            os.close(r)
            os.setpgid(0, 0)
            iso = netns.renew()
            found = leftovers()
            out = fn()
            out["netns"], out["found_at_start"] = iso.netns, found
        except BaseException as exc:               # reported to the parent
            out, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        try:
            data = json.dumps(out).encode()
            while data:
                data = data[os.write(w, data):]
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)                       # both sides: no race with a kill
    except OSError:
        pass                                       # the child did it (and may have exec'd)
    os.close(w)
    chunks: List[bytes] = []
    deadline = time.monotonic() + limit_s
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], left)
            if ready:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(r)
        if timed_out:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        os.waitpid(pid, 0)
    if timed_out:
        return {"error": f"killed after {limit_s:.0f} s"}
    try:
        result: JSON = json.loads(b"".join(chunks) or b"{}")
    except ValueError as exc:
        return {"error": f"unreadable result: {exc}"}
    if not result:
        return {"error": "the case's process ended without a result"}
    return result


def leftovers() -> Dict[str, int]:
    """What this namespace holds besides the all-hosts memberships: its
    sockets (TCP, TIME_WAIT included; UDP) and multicast groups -- none in
    a fresh one.  (Namespace ids are no proof: a freed namespace's number is
    given to the next.)"""
    found: Dict[str, int] = {}
    for name in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{name}") as f:
                found[name] = sum(1 for _ in f) - 1         # a header line
        except OSError:
            pass
    try:
        with open("/proc/net/igmp") as f:
            found["igmp"] = sum(1 for line in f if line.startswith("\t\t\t\t")
                                and not line.split()[0].upper() == "010000E0")
    except OSError:
        pass
    return found


# -- 1. joins ---------------------------------------------------------------------------

def _mp_root(transport: str, backlog: int) -> Any:
    import mpoint
    root: Any = mpoint.socket(_stdsocket.AF_INET, _stdsocket.SOCK_STREAM, flags=C_ROOT | D_ROOT)
    root.configure_session(transport=transport)
    root.bind((LOOPBACK, 0))
    root.listen(backlog)
    return root


def _mp_leaf() -> Any:
    import mpoint
    return mpoint.socket(_stdsocket.AF_INET, _stdsocket.SOCK_STREAM, flags=C_LEAF | D_ROOT)


def mp_joins(n: int, mode: str, transport: str = "multicast", concurrency: int = 100,
             limit_s: float = 30.0) -> JSON:
    """N mpoint leaves join one mpoint root: ``mode`` "seq" (one blocking
    join after another), "threads" (``concurrency`` threads, each joining
    its share) or "eventset" (non-blocking, ``concurrency`` in flight,
    FD_CONNECT from one EventSet)."""
    import mpoint
    from mpoint import FD_CONNECT, EventSet
    root = _mp_root(transport, max(128, concurrency))
    addr = root.getsockname()
    root.settimeout(limit_s)
    accepted: List[Any] = []
    errors: List[str] = []

    def accept_all() -> None:
        try:
            for _ in range(n):
                accepted.append(root.accept()[0])
        except OSError as exc:
            errors.append(f"accept: {exc}")

    root_thread = threading.Thread(target=accept_all, name="bench-root", daemon=True)
    root_thread.start()
    leaves: List[Any] = []
    failed: Dict[str, int] = {}
    role = mpoint.JL_RECEIVER_ONLY
    es: Optional[Any] = None
    try:
        if mode == "seq":
            with NoGC():
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    leaves.append(_mp_leaf().join_leaf(addr, caller_data=b"x", flags=role))
                root_thread.join(limit_s)
                t1 = time.perf_counter_ns()
        elif mode == "threads":
            start = threading.Barrier(concurrency + 1, timeout=limit_s)

            def joiner(count: int) -> None:
                try:
                    start.wait()
                    for _ in range(count):
                        leaves.append(_mp_leaf().join_leaf(addr, caller_data=b"x", flags=role))
                except (OSError, threading.BrokenBarrierError) as exc:
                    errors.append(f"join: {exc}")

            shares = [n // concurrency + (i < n % concurrency) for i in range(concurrency)]
            threads = [threading.Thread(target=joiner, args=(k,), daemon=True) for k in shares]
            for t in threads:
                t.start()
            with NoGC():
                start.wait()
                t0 = time.perf_counter_ns()
                for t in threads:
                    t.join(limit_s)
                root_thread.join(limit_s)
                t1 = time.perf_counter_ns()
        elif mode == "eventset":
            es = EventSet()
            started = done = 0
            deadline = time.monotonic() + limit_s
            with NoGC():
                t0 = time.perf_counter_ns()
                while done < n and time.monotonic() < deadline:
                    while started - done < concurrency and started < n:
                        leaf = _mp_leaf()
                        es.register(leaf, FD_CONNECT)
                        leaf.join_leaf(addr, caller_data=b"x", flags=role)   # returns at once
                        leaves.append(leaf)
                        started += 1
                    for ev in es.wait(1.0):
                        if ev.events & FD_CONNECT:
                            done += 1
                            code = ev.errors[FD_CONNECT]
                            if code:
                                failed[str(code)] = failed.get(str(code), 0) + 1
                root_thread.join(limit_s)
                t1 = time.perf_counter_ns()
        else:
            raise ValueError(f"unknown mode {mode!r}")
        joined = sum(1 for leaf in leaves if leaf.phase == "joined")
        at_root = len(root.leaves)
    finally:
        if es is not None:
            es.close()
        for leaf in leaves:
            leaf.close()
        for c in accepted:
            c.close()
        root.close()
    out: JSON = {"ns": t1 - t0, "joined": joined, "accepted": len(accepted),
                 "root_leaves": at_root}
    if failed:
        out["failed_codes"] = failed
    if errors:
        out["errors"] = errors[:5]
    return out


def plain_joins(n: int, mode: str, concurrency: int = 100, limit_s: float = 30.0) -> JSON:
    """The reference: the plain handshake, ``mode`` "seq", "threads",
    "selectors", "asyncio" or "uvloop", against a plain root thread."""
    lst = _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_STREAM)
    lst.bind((LOOPBACK, 0))
    lst.listen(max(128, concurrency))
    addr = lst.getsockname()
    conns: List[_stdsocket.socket] = []
    errors: List[str] = []
    root_thread = threading.Thread(target=_plain_root, args=(lst, n, conns, errors),
                                   name="bench-root", daemon=True)
    root_thread.start()
    leaves: List[Any] = []
    try:
        if mode == "seq":
            with NoGC():
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    leaves.append(_plain_join(addr))
                root_thread.join(limit_s)
                t1 = time.perf_counter_ns()
        elif mode == "threads":
            start = threading.Barrier(concurrency + 1, timeout=limit_s)

            def joiner(count: int) -> None:
                try:
                    start.wait()
                    for _ in range(count):
                        leaves.append(_plain_join(addr))
                except (OSError, threading.BrokenBarrierError) as exc:
                    errors.append(f"join: {exc}")

            shares = [n // concurrency + (i < n % concurrency) for i in range(concurrency)]
            threads = [threading.Thread(target=joiner, args=(k,), daemon=True) for k in shares]
            for t in threads:
                t.start()
            with NoGC():
                start.wait()
                t0 = time.perf_counter_ns()
                for t in threads:
                    t.join(limit_s)
                root_thread.join(limit_s)
                t1 = time.perf_counter_ns()
        elif mode == "selectors":
            with NoGC():
                t0 = time.perf_counter_ns()
                leaves.extend(_selector_joins(addr, n, concurrency, limit_s, errors))
                root_thread.join(limit_s)
                t1 = time.perf_counter_ns()
        elif mode in ("asyncio", "uvloop"):
            loop: asyncio.AbstractEventLoop
            if mode == "uvloop":
                uvloop = importlib.import_module("uvloop")
                loop = uvloop.new_event_loop()
            else:
                loop = asyncio.new_event_loop()
            try:
                with NoGC():
                    t0 = time.perf_counter_ns()
                    writers = loop.run_until_complete(
                        asyncio.wait_for(_asyncio_joins(addr, n, concurrency), limit_s))
                    root_thread.join(limit_s)
                    t1 = time.perf_counter_ns()
                leaves.extend(writers)
                for w in writers:
                    w.close()
                loop.run_until_complete(asyncio.sleep(0))     # the transports close
            finally:
                loop.close()
        else:
            raise ValueError(f"unknown mode {mode!r}")
        joined = len(leaves)
    finally:
        for s in leaves:
            if isinstance(s, _stdsocket.socket):
                s.close()
        for c in conns:
            c.close()
        lst.close()
    out: JSON = {"ns": t1 - t0, "joined": joined, "accepted": len(conns), "root_leaves": len(conns)}
    if errors:
        out["errors"] = errors[:5]
    return out


def _selector_joins(addr: Tuple[str, int], n: int, window: int, limit_s: float,
                    errors: List[str]) -> List[_stdsocket.socket]:
    """Non-blocking plain leaves, ``window`` in flight, one selector:
    connect, (writable) send the request, (readable) read the answer."""
    sel = selectors.DefaultSelector()
    done: List[_stdsocket.socket] = []
    started = finished = 0
    deadline = time.monotonic() + limit_s
    try:
        while finished < n and time.monotonic() < deadline:
            while started - finished < window and started < n:
                s = _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex(addr)
                sel.register(s, selectors.EVENT_WRITE, [b""])
                started += 1
            for key, _ in sel.select(1.0):
                s = key.fileobj                          # type: ignore[assignment]
                buf: List[bytes] = key.data
                try:
                    if key.events == selectors.EVENT_WRITE:
                        s.send(REQUEST)                  # 21 bytes: all or an error
                        sel.modify(s, selectors.EVENT_READ, buf)
                        continue
                    chunk = s.recv(len(ANSWER) - len(buf[0]))
                    if not chunk:
                        raise ConnectionResetError("the root closed the connection")
                    buf[0] += chunk
                    if len(buf[0]) < len(ANSWER):
                        continue
                    sel.unregister(s)
                    done.append(s)
                except OSError as exc:
                    sel.unregister(s)
                    s.close()
                    errors.append(f"join: {exc}")
                finished += 1
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()                          # type: ignore[union-attr]
        sel.close()
    return done


async def _asyncio_joins(addr: Tuple[str, int], n: int, window: int) -> List[Any]:
    gate = asyncio.Semaphore(window)

    async def leaf() -> Any:
        async with gate:
            reader, writer = await asyncio.open_connection(addr[0], addr[1])
            writer.write(REQUEST)
            _, _, _, length = _HDR.unpack(await reader.readexactly(_HDR.size))
            await reader.readexactly(length)
            return writer

    return list(await asyncio.gather(*(leaf() for _ in range(n))))


def uvloop_missing() -> Optional[Tuple[str, str]]:
    """Why the uvloop row is skipped (short, and in detail), or None."""
    try:
        importlib.import_module("uvloop")
    except ImportError as exc:
        return "uvloop is not installed", str(exc)
    return None


def join_cases(n: int, concurrency: int) -> List[Tuple[str, Callable[[], JSON]]]:
    c = concurrency
    return [
        (RJ_STD_SEQ, lambda: plain_joins(n, "seq", c)),
        (RJ_MP_SEQ, lambda: mp_joins(n, "seq", "multicast", c)),
        (RJ_MP_SEQ_UNI, lambda: mp_joins(n, "seq", "unicast", c)),
        (RJ_STD_THREADS, lambda: plain_joins(n, "threads", c)),
        (RJ_MP_THREADS, lambda: mp_joins(n, "threads", "multicast", c)),
        (RJ_STD_SEL, lambda: plain_joins(n, "selectors", c)),
        (RJ_MP_EVSET, lambda: mp_joins(n, "eventset", "multicast", c)),
        (RJ_ASYNCIO, lambda: plain_joins(n, "asyncio", c)),
        (RJ_UVLOOP, lambda: plain_joins(n, "uvloop", c)),
    ]


def measure_joins(n: int, concurrency: int, rounds: int) -> JSON:
    """Every join case in every round, each run in a fresh namespace."""
    rows: Dict[str, JSON] = {name: {"runs": []} for name, _ in ROOTED_JOIN_ROWS}
    why = uvloop_missing()
    if why:
        rows[RJ_UVLOOP]["skipped"] = why[0]
        progress(f"rooted joins: {RJ_UVLOOP} skipped: {why[0]} ({why[1]})")
    for r in range(rounds):
        for name, fn in join_cases(n, concurrency):
            if "skipped" in rows[name]:
                continue
            res = in_fresh_namespace(fn)
            res["round"] = r
            if "error" not in res and (res["joined"] != n or res["accepted"] != n):
                res["error"] = (f"{res['joined']} of {n} leaves joined, {res['accepted']} "
                                f"accepted: {(res.get('errors') or ['-'])[0]}")
            if "error" in res:
                rows[name].setdefault("errors", []).append(res["error"])
                progress(f"rooted joins {name}: failed: {res['error']}")
                continue
            rows[name]["runs"].append(res)
            progress(f"rooted joins {name}: {res['ns'] / 1e6:.1f} ms, "
                     f"{n / (res['ns'] / 1e9):,.0f} joins/s")
    for name, ref in ROOTED_JOIN_ROWS:
        entry = rows[name]
        runs = entry["runs"]
        if not runs:
            continue
        best = min(x["ns"] for x in runs)
        entry.update(best_ns=best, ms=best / 1e6, us_per_join=best / n / 1e3,
                     joins_per_s=n / (best / 1e9))
        if ref is not None:
            _ratio(entry, ref, rows[ref], lambda x: float(x["ns"]))
    return {"leaves": n, "concurrency": concurrency, "family": "IPv4", "rows": rows}


def _ratio(entry: JSON, ref_name: str, ref: JSON, cost: Callable[[JSON], float]) -> None:
    """entry["ratio"]: the median over rounds of the row's cost over its
    reference's in the same round (``cost``: time per unit of work)."""
    entry["reference"] = ref_name
    by_round = {x["round"]: cost(x) for x in ref.get("runs") or [] if cost(x) > 0}
    paired = sorted(cost(x) / by_round[x["round"]] for x in entry["runs"]
                    if x["round"] in by_round and cost(x) > 0)
    if paired:
        entry["ratio"] = statistics.median(paired)
        entry["rounds_paired"] = len(paired)


# -- 2. the data plane ---------------------------------------------------------------------

def _send_msg(fd: int, obj: JSON) -> None:
    data = json.dumps(obj).encode() + b"\n"
    while data:
        data = data[os.write(fd, data):]


class _Lines:
    """JSON lines from a pipe, each read with a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, b""

    def get(self, timeout: float) -> JSON:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError(f"no message within {timeout:.0f} s")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("the other process ended")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg: JSON = json.loads(line)
        return msg

    def poll(self) -> Optional[JSON]:
        """A message if one is complete now, {"eof": True} once the other
        end closed, else None (never waits)."""
        if b"\n" not in self.buf and select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return {"eof": True}
            self.buf += chunk
        return self.get(0) if b"\n" in self.buf else None


def _buffer(sock: _stdsocket.socket) -> None:
    """RCVBUF bytes of receive buffer, for mpoint and plain receivers alike."""
    try:
        sock.setsockopt(_stdsocket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except PermissionError:
        sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_RCVBUF, RCVBUF)


def _pin(cpu: Optional[int]) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def cpus_for_data() -> Optional[Tuple[int, int]]:
    """(sender's cpu, receivers' cpu) when there are two, else None."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def _receiver(kind: str, transport: str, n: int, ctl: _Lines, out: int, cpu: Optional[int],
              limit_s: float) -> JSON:
    """The receiving process: n leaves (or plain receivers), then drain until
    the sender says it is done and nothing more arrives."""
    _pin(cpu)
    setup = ctl.get(SETUP_LIMIT_S)
    keep: List[Any] = []
    if kind == "plain":
        socks: List[Any] = []
        for _ in range(n):
            s = _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_DGRAM)
            socks.append(s)
            _buffer(s)
            if transport == "multicast":
                s.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
                s.bind((setup["group"], setup["port"]))
                s.setsockopt(_stdsocket.IPPROTO_IP, _stdsocket.IP_ADD_MEMBERSHIP,
                             _stdsocket.inet_aton(setup["group"]) +
                             _stdsocket.inet_aton("0.0.0.0"))
            else:
                s.bind((LOOPBACK, 0))
            s.setblocking(False)
        _send_msg(out, {"ready": True, "ports": [s.getsockname()[1] for s in socks]})
        counts, nbytes, first, last, wakeups = _drain_plain(socks, ctl, limit_s)
        keep = socks
    else:
        import mpoint
        leaves = []
        root = tuple(setup["root"])
        for _ in range(n):
            leaves.append(_mp_leaf().join_leaf(root, caller_data=b"x",
                                               flags=mpoint.JL_RECEIVER_ONLY))
        for leaf in leaves:
            _buffer(leaf.data)
        _send_msg(out, {"ready": True})
        counts, nbytes, first, last, wakeups = _drain_mpoint(leaves, kind, ctl, limit_s)
        keep = leaves
    for s in keep:
        s.close()
    return {"counts": counts, "bytes": nbytes, "first_ns": first, "last_ns": last,
            "wakeups": wakeups}


def _drain_plain(socks: List[_stdsocket.socket], ctl: _Lines, limit_s: float
                 ) -> Tuple[List[int], List[int], int, int, int]:
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    counts, nbytes = [0] * len(socks), [0] * len(socks)
    first = last = wakeups = 0
    done = False
    deadline = time.monotonic() + limit_s
    now = time.monotonic_ns
    with NoGC():
        while True:
            ready = sel.select(IDLE_WAIT_S)
            if not ready:
                if done or time.monotonic() >= deadline:
                    break
                done = ctl.poll() is not None
                continue
            for key, _ in ready:
                i, recvfrom = key.data, key.fileobj.recvfrom       # type: ignore[union-attr]
                k = b = 0
                try:
                    while True:
                        data, _ = recvfrom(65536)
                        k += 1
                        b += len(data)
                except BlockingIOError:
                    pass
                counts[i] += k
                nbytes[i] += b
            last = now()
            first = first or last
            wakeups += 1
    sel.close()
    return counts, nbytes, first, last, wakeups


def _drain_mpoint(leaves: List[Any], kind: str, ctl: _Lines, limit_s: float
                  ) -> Tuple[List[int], List[int], int, int, int]:
    from mpoint import FD_READ, EventSet, RecvBatch
    es = EventSet()
    index: Dict[Any, int] = {}
    for i, leaf in enumerate(leaves):
        es.register(leaf.data, FD_READ)
        index[leaf.data] = i
    by_data = {leaf.data: leaf for leaf in leaves}
    counts, nbytes = [0] * len(leaves), [0] * len(leaves)
    first = last = wakeups = 0
    done = False
    batch = RecvBatch(64, 2048)
    deadline = time.monotonic() + limit_s
    now = time.monotonic_ns
    with NoGC():
        while True:
            ready = es.wait(IDLE_WAIT_S)
            if not ready:
                if done or time.monotonic() >= deadline:
                    break
                done = ctl.poll() is not None
                continue
            for ev in ready:
                sock = ev.sock
                i = index[sock]
                k = b = 0
                if kind == "recv_batch":
                    recv = sock.recv_batch
                    while True:
                        got = recv(batch, 0)
                        if not got:
                            break
                        k += got
                        b += sum(batch.sizes)
                else:
                    recv_data = by_data[sock].recv_data
                    try:
                        while True:
                            data, _ = recv_data(65536, 0)
                            k += 1
                            b += len(data)
                    except BlockingIOError:
                        pass
                counts[i] += k
                nbytes[i] += b
            last = now()
            first = first or last
            wakeups += 1
    es.close()
    return counts, nbytes, first, last, wakeups


def data_case(kind: str, transport: str, n: int, seconds: float, size: int,
              cpus: Optional[Tuple[int, int]], max_sends: int = DATA_MAX_SENDS) -> JSON:
    """One run: ``kind`` "plain" (the reference), "recv_batch" or
    "recv_data" (mpoint's root and leaves, drained that way).  Forks the
    receiving process first (this one is still single-threaded), then
    sets up the sender and sends for ``seconds``."""
    limit_s = SETUP_LIMIT_S + seconds + 5.0
    ctl_r, ctl_w = os.pipe()           # sender -> receiver
    res_r, res_w = os.pipe()           # receiver -> sender
    pid = os.fork()
    if pid == 0:                        # the receiving process
        code = 0
        try:
            os.close(ctl_w)
            os.close(res_r)
            out = _receiver(kind, transport, n, _Lines(ctl_r), res_w,
                            cpus[1] if cpus else None, limit_s)
        except BaseException as exc:    # reported to the sender
            out, code = {"error": f"receiver: {type(exc).__name__}: {exc}"}, 1
        try:
            _send_msg(res_w, out)
        finally:
            os._exit(code)
    os.close(ctl_r)
    os.close(res_w)
    _pin(cpus[0] if cpus else None)
    replies = _Lines(res_r)
    payload = b"\x00" * size
    closers: List[Any] = []
    accepted: List[Any] = []
    try:
        if kind == "plain":
            tx = _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_DGRAM)
            closers.append(tx)
            _send_msg(ctl_w, {"group": REF_GROUP, "port": REF_PORT})
            ready = replies.get(SETUP_LIMIT_S)
            if "error" in ready:
                raise RuntimeError(ready["error"])
            if transport == "multicast":
                dest = (REF_GROUP, REF_PORT)
                sendto = tx.sendto

                def send(data: bytes) -> None:
                    sendto(data, dest)
            else:
                dests = [(LOOPBACK, p) for p in ready["ports"]]
                sendto = tx.sendto

                def send(data: bytes) -> None:
                    for d in dests:
                        sendto(data, d)
        else:
            root = _mp_root(transport, 128)
            closers.append(root)
            root.settimeout(SETUP_LIMIT_S)
            accept_errors: List[str] = []

            def accept_all() -> None:
                try:
                    for _ in range(n):
                        accepted.append(root.accept()[0])
                except OSError as exc:
                    accept_errors.append(str(exc))

            t = threading.Thread(target=accept_all, name="bench-root", daemon=True)
            t.start()
            _send_msg(ctl_w, {"root": list(root.getsockname())})
            ready = replies.get(SETUP_LIMIT_S)
            if "error" in ready:
                raise RuntimeError(ready["error"])
            t.join(SETUP_LIMIT_S)
            if len(accepted) != n:
                raise RuntimeError(f"the root accepted {len(accepted)} of {n} leaves: "
                                   f"{(accept_errors or ['-'])[0]}")
            send = root.send_data
        sent = send_errors = 0
        with NoGC():
            t0 = time.monotonic_ns()
            end = t0 + int(seconds * 1e9)
            while sent < max_sends:
                for _ in range(SEND_CHECK):
                    try:
                        send(payload)
                    except OSError:
                        send_errors += 1
                sent += SEND_CHECK
                if time.monotonic_ns() >= end:
                    break
            t1 = time.monotonic_ns()
        sent -= send_errors
        _send_msg(ctl_w, {"done": sent})
        got = replies.get(limit_s)
    finally:
        os.close(ctl_w)
        for c in accepted:
            c.close()
        for c in closers:
            c.close()
        try:
            os.waitpid(pid, 0)
        finally:
            os.close(res_r)
    if "error" in got:
        raise RuntimeError(got["error"])
    counts: List[int] = got["counts"]
    received = sum(counts)
    expected = sent * n
    span = max(1, got["last_ns"] - t0)
    return {"sent": sent, "send_errors": send_errors, "send_ns": t1 - t0, "leaves": n,
            "expected": expected, "received": received, "lost": expected - received,
            "bytes": sum(got["bytes"]), "span_ns": span, "per_leaf": counts,
            "receiver_wakeups": got["wakeups"],
            "cpus": list(cpus) if cpus else None}


def data_cases() -> List[Tuple[str, str]]:
    return [(RD_STD, "plain"), (RD_MP_BATCH, "recv_batch"), (RD_MP_DATA, "recv_data")]


def measure_data(fanouts: Sequence[int], transports: Sequence[str], seconds: float, size: int,
                 rounds: int) -> JSON:
    """Every data case for every transport and leaf count, in rounds."""
    cpus = cpus_for_data()
    out: JSON = {"datagram_size": size, "seconds": seconds, "rcvbuf": RCVBUF,
                 "cpus": list(cpus) if cpus else None, "family": "IPv4"}
    for transport in transports:
        out[transport] = {str(n): {name: {"runs": []} for name, _ in ROOTED_DATA_ROWS}
                          for n in fanouts}
    for r in range(rounds):
        for transport in transports:
            for n in fanouts:
                rows = out[transport][str(n)]
                for name, kind in data_cases():
                    res = in_fresh_namespace(functools.partial(
                        data_case, kind, transport, n, seconds, size, cpus))
                    res["round"] = r
                    if "error" in res:
                        rows[name].setdefault("errors", []).append(res["error"])
                        progress(f"rooted data {transport} {n:>3} {name}: failed: "
                                 f"{res['error']}")
                        continue
                    rows[name]["runs"].append(res)
                    progress(f"rooted data {transport} {n:>3} {name}: "
                             f"{res['received'] / (res['span_ns'] / 1e9):,.0f} datagrams/s "
                             f"delivered, {res['lost']} of {res['expected']} lost")
    for transport in transports:
        for n in fanouts:
            rows = out[transport][str(n)]
            for name, ref in ROOTED_DATA_ROWS:
                entry = rows[name]
                runs = [x for x in entry["runs"] if x["received"]]
                if not runs:
                    continue
                best = max(runs, key=_delivered_per_s)
                entry.update(
                    datagrams_per_s=_delivered_per_s(best),
                    mb_per_s=best["bytes"] / (best["span_ns"] / 1e9) / 1e6,
                    sent_per_s=best["sent"] / (best["send_ns"] / 1e9),
                    loss=best["lost"] / best["expected"] if best["expected"] else 0.0,
                    received=best["received"], expected=best["expected"],
                    per_leaf_min=min(best["per_leaf"]), per_leaf_max=max(best["per_leaf"]),
                    wakeups_per_send=best["receiver_wakeups"] / best["sent"])
                if ref is not None:
                    _ratio(entry, ref, rows[ref], _ns_per_delivered)
    return out


def _delivered_per_s(run: JSON) -> float:
    return float(run["received"]) / (float(run["span_ns"]) / 1e9)


def _ns_per_delivered(run: JSON) -> float:
    return float(run["span_ns"]) / float(run["received"]) if run["received"] else 0.0
