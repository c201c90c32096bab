"""The send suite (``python -m mpoint bench --suite send``): datagrams per
second from one sender, and the token bucket's cost and accuracy.

Every case runs in a fresh private namespace (runner.fresh_kernel, so no
case meets another's kernel state) and sends to one IPv4 group on ``lo``
with no receiver: what is timed is the send path alone -- the system call,
the UDP/IP stack and the loopback device, which drops each datagram at
its input as no socket is a member -- the same for every row.  A draining
receiver would add its own receive cost, and its queue's drops, to each
row alike.

Rows (64- and 1,400-byte payloads):
  C sendmmsg                one socket, a prebuilt mmsghdr array of 1,024
                            entries over one payload, sent again and again
                            (ext/lab: reference_send_batches); the reference
  mpoint send_batch         the same batch as a list of 1,024 references to
                            one bytes object, per call
  mpoint send_batch shaped  the same with a token bucket far above what is
                            reached (4 GB/s into a 4 GB bucket): its cost
  stdlib sendto loop        socket.sendto per datagram
  mpoint send loop          MultipointSocket.send per datagram (JL_BOTH-style
                            default destination: the connected group), and
                            the same shaped far above what is reached
  asyncio sendto            DatagramTransport.sendto per datagram
  uvloop sendto             the same on uvloop's loop (skipped if absent)
Each row is the best of --repeat rounds (cases interleaved per round).

Shaped-rate accuracy: send_batch on a blocking socket shaped at 1, 10, 100
Mbit/s and 1 Gbit/s (where the unshaped rate reaches 1.05 times it),
1,400-byte datagrams, for a bounded time; the achieved rate is (bytes sent
- the bucket's initial burst) / elapsed, against token_rate.  The bucket is
5 ms of the rate (at least four datagrams), which covers the sleeps'
overshoot.
"""
from __future__ import annotations

import asyncio
import socket as _stdsocket
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import mpoint
from mpoint import JL_SENDER_ONLY, _core

from .. import _reference
from .common import NoGC, progress

GROUP = "239.77.0.1"
PORT = 32110
SIZES = (64, 1400)
BATCH = 1024
SECONDS, QUICK_SECONDS = 0.3, 0.1            # each throughput run
RATE_SECONDS, QUICK_RATE_SECONDS = 1.0, 0.3  # each shaped-rate run
RATES_MBIT = (1, 10, 100, 1000)
SHAPER_MAX = 2**32 - 1                       # FLOWSPEC's ULONG: 4 GB/s, never reached here

C_REF = "C sendmmsg"
MP_BATCH = "mpoint send_batch"
MP_SHAPED = "mpoint send_batch, shaped (not reached)"
STD = "stdlib sendto loop"
MP_SEND = "mpoint send loop"
MP_SEND_SHAPED = "mpoint send loop, shaped (not reached)"
ASYNCIO = "asyncio DatagramTransport.sendto"
UVLOOP = "uvloop DatagramTransport.sendto"
ROWS: Tuple[Tuple[str, Optional[str]], ...] = (
    (C_REF, None), (MP_BATCH, C_REF), (MP_SHAPED, MP_BATCH), (STD, C_REF), (MP_SEND, STD),
    (MP_SEND_SHAPED, MP_SEND), (ASYNCIO, C_REF), (UVLOOP, C_REF))

Run = Tuple[int, int]          # (datagrams sent, elapsed ns)


def _plain() -> _stdsocket.socket:
    s = _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_DGRAM)
    s.setsockopt(_stdsocket.IPPROTO_IP, _stdsocket.IP_MULTICAST_IF,
                 _stdsocket.inet_aton("127.0.0.1"))
    return s


def _sender() -> mpoint.MultipointSocket:
    s = mpoint.socket()
    s.setsockopt(_stdsocket.IPPROTO_IP, _stdsocket.IP_MULTICAST_IF,
                 _stdsocket.inet_aton("127.0.0.1"))
    return s.join_leaf((GROUP, PORT), flags=JL_SENDER_ONLY)


def c_sendmmsg(size: int, seconds: float) -> Run:
    with _plain() as s:
        ns, sent = _reference.reference_send_batches(s.fileno(), _stdsocket.AF_INET, GROUP,
                                                     PORT, size, BATCH, int(seconds * 1000))
    return sent, ns


def mp_send_batch(size: int, seconds: float, shaped: bool = False) -> Run:
    with _sender() as s:
        if shaped:
            _core.sock_set_shaper(s, SHAPER_MAX, SHAPER_MAX)
        payloads = [b"s" * size] * BATCH
        dest = (GROUP, PORT)
        send_batch = s.send_batch
        sent = 0
        with NoGC():
            start = time.perf_counter_ns()
            end = start + int(seconds * 1e9)
            now = start
            while now < end:
                sent += send_batch(payloads, dest)
                now = time.perf_counter_ns()
    return sent, now - start


def std_sendto(size: int, seconds: float) -> Run:
    with _plain() as s:
        payload = b"s" * size
        dest = (GROUP, PORT)
        sendto = s.sendto
        sent = 0
        with NoGC():
            start = time.perf_counter_ns()
            end = start + int(seconds * 1e9)
            now = start
            while now < end:
                for _ in range(BATCH):
                    sendto(payload, dest)
                sent += BATCH
                now = time.perf_counter_ns()
    return sent, now - start


def mp_send(size: int, seconds: float, shaped: bool = False) -> Run:
    with _sender() as s:
        s.connect((GROUP, PORT))
        if shaped:
            _core.sock_set_shaper(s, SHAPER_MAX, SHAPER_MAX)
        payload = b"s" * size
        send = s.send
        sent = 0
        with NoGC():
            start = time.perf_counter_ns()
            end = start + int(seconds * 1e9)
            now = start
            while now < end:
                for _ in range(BATCH):
                    send(payload)
                sent += BATCH
                now = time.perf_counter_ns()
    return sent, now - start


def _loop_sendto(new_loop: Callable[[], asyncio.AbstractEventLoop], size: int,
                 seconds: float) -> Run:
    loop = new_loop()
    s = _plain()
    try:
        async def run() -> Run:
            made = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=s)
            transport: Any = made[0]          # the concrete transport: its buffer size too
            try:
                payload = b"s" * size
                dest = (GROUP, PORT)
                sendto = transport.sendto
                sent = 0
                with NoGC():
                    start = time.perf_counter_ns()
                    end = start + int(seconds * 1e9)
                    now = start
                    while now < end:
                        for _ in range(BATCH):
                            sendto(payload, dest)
                        sent += BATCH
                        now = time.perf_counter_ns()
                        # Whatever the transport buffered is not sent yet.
                        if transport.get_write_buffer_size():
                            await asyncio.sleep(0)
                return sent, now - start
            finally:
                transport.close()
        return loop.run_until_complete(run())
    finally:
        s.close()
        loop.close()


def asyncio_sendto(size: int, seconds: float) -> Run:
    return _loop_sendto(asyncio.new_event_loop, size, seconds)


def _uvloop() -> Optional[Any]:
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return uvloop


def uvloop_sendto(size: int, seconds: float) -> Run:
    uv = _uvloop()
    assert uv is not None
    return _loop_sendto(uv.new_event_loop, size, seconds)


def shaped_rate(rate: int, seconds: float) -> Dict[str, Any]:
    """send_batch at token_rate ``rate`` bytes/s for about ``seconds``."""
    size = 1400
    bucket = max(4 * size, rate // 200)
    per_call = max(1, min(256, int(rate * 0.02) // size))     # about 20 ms of sending
    payloads = [b"r" * size] * per_call
    with _sender() as s:
        _core.sock_set_shaper(s, rate, bucket)
        send_batch = s.send_batch
        dest = (GROUP, PORT)
        sent = 0
        start = time.perf_counter_ns()
        end = start + int(seconds * 1e9)
        now = start
        while now < end:
            sent += send_batch(payloads, dest)
            now = time.perf_counter_ns()
    elapsed = now - start
    sent_bytes = sent * size
    achieved = (sent_bytes - bucket) * 1e9 / elapsed
    return {"token_rate": rate, "bucket": bucket, "datagrams": sent, "elapsed_ns": elapsed,
            "achieved": achieved, "accuracy": achieved / rate}


def measure(repeat: int, quick: bool, fresh: Callable[[], object]) -> Dict[str, Any]:
    """Every case, ``repeat`` rounds; ``fresh()`` before each run."""
    seconds = QUICK_SECONDS if quick else SECONDS
    cases: List[Tuple[str, Callable[[int, float], Run]]] = [
        (C_REF, c_sendmmsg), (MP_BATCH, mp_send_batch),
        (MP_SHAPED, lambda size, secs: mp_send_batch(size, secs, True)),
        (STD, std_sendto), (MP_SEND, mp_send),
        (MP_SEND_SHAPED, lambda size, secs: mp_send(size, secs, True)),
        (ASYNCIO, asyncio_sendto)]
    skipped: Dict[str, str] = {}
    if _uvloop() is None:
        skipped[UVLOOP] = "uvloop is not installed"
    else:
        cases.append((UVLOOP, uvloop_sendto))
    out: Dict[str, Any] = {"seconds": seconds, "batch": BATCH, "group": GROUP,
                           "throughput": {}, "rates": []}
    for size in SIZES:
        table: Dict[str, Dict[str, Any]] = {name: {"runs": []} for name, _ in ROWS}
        for name, why in skipped.items():
            table[name]["skipped"] = why
        for _ in range(repeat):
            for name, fn in cases:
                try:
                    fresh()
                    sent, ns = fn(size, seconds)
                except OSError as exc:
                    table[name].setdefault("errors", []).append(str(exc))
                    progress(f"send {size} B {name}: failed: {exc}")
                    continue
                table[name]["runs"].append({"datagrams": sent, "ns": ns})
                progress(f"send {size:>5} B {name}: {sent * 1e9 / ns:,.0f} datagrams/s")
        for name, entry in table.items():
            if entry["runs"]:
                entry["datagrams_per_s"] = max(r["datagrams"] * 1e9 / r["ns"]
                                               for r in entry["runs"])
        for name, ref in ROWS:
            entry = table[name]
            if ref is not None and "datagrams_per_s" in entry and \
                    table[ref].get("datagrams_per_s"):
                entry["reference"] = ref
                entry["ratio"] = entry["datagrams_per_s"] / table[ref]["datagrams_per_s"]
        out["throughput"][str(size)] = table
    reach = out["throughput"]["1400"][MP_BATCH].get("datagrams_per_s", 0.0) * 1400
    rate_seconds = QUICK_RATE_SECONDS if quick else RATE_SECONDS
    for mbit in RATES_MBIT:
        rate = mbit * 125_000
        if reach < 1.05 * rate:
            out["rates"].append({"token_rate": rate, "skipped":
                                 f"the machine reaches {reach * 8 / 1e6:,.0f} Mbit/s unshaped"})
            continue
        try:
            fresh()
            result = shaped_rate(rate, rate_seconds)
        except OSError as exc:
            out["rates"].append({"token_rate": rate, "errors": [str(exc)]})
            continue
        out["rates"].append(result)
        progress(f"shaped {mbit} Mbit/s: {result['accuracy']:.4f} of token_rate")
    return out


def report_lines(d: Dict[str, Any]) -> List[str]:
    lines = ["", f"Send rate: one sender to {d['group']} on lo, no receiver, "
             f"{d['seconds']} s per run, batches of {d['batch']}"]
    for size, table in d["throughput"].items():
        lines.append(f"  {size}-byte payloads{'':<26} datagrams/s   ratio")
        for name, _ in ROWS:
            entry = table[name]
            if "skipped" in entry:
                lines.append(f"    {name:<40} skipped: {entry['skipped']}")
            elif "datagrams_per_s" not in entry:
                errs = entry.get("errors") or ["no result"]
                lines.append(f"    {name:<40} failed: {errs[0]}")
            else:
                ratio = (f"{entry['ratio']:6.3f}x {entry['reference']}" if "ratio" in entry
                         else "   ref")
                lines.append(f"    {name:<40} {entry['datagrams_per_s']:>12,.0f}  {ratio}")
    lines.append("  Shaped rate (send_batch, 1,400-byte datagrams, blocking)")
    lines.append(f"    {'token_rate':<14} {'bucket':>9} {'achieved':>14}  achieved/token_rate")
    for r in d["rates"]:
        mbit = f"{r['token_rate'] * 8 / 1e6:,.0f} Mbit/s"
        if "achieved" in r:
            lines.append(f"    {mbit:<14} {r['bucket']:>9,} {r['achieved'] * 8 / 1e6:>9,.3f} Mbit/s"
                         f"  {r['accuracy']:.4f}")
        else:
            why = r.get("skipped") or (r.get("errors") or ["no result"])[0]
            lines.append(f"    {mbit:<14} skipped: {why}")
    return lines
