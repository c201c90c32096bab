"""Batch send: MultipointSocket.send_batch (ext/sendcalls.pxi, ext/send.c).

Inside the private namespace a datagram to a group is queued on every
receiver during the sender's own system call (loopback), so a receive right
after send_batch sees all of them.  The receivers' buffers are raised so
that a few thousand small datagrams fit.
"""
from __future__ import annotations

import array
import gc
import shutil
import socket
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import mpoint
import support
from mpoint import FD, JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY, EventSet, _core, errors

Pair = Tuple[mpoint.MultipointSocket, mpoint.MultipointSocket]


def receiver(family: int, group: str, port: int) -> mpoint.MultipointSocket:
    rx = mpoint.socket(family)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    return rx.join_leaf((group, port), flags=JL_RECEIVER_ONLY)


@pytest.fixture
def pair(family: int, group: str, port: int) -> Iterator[Pair]:
    with receiver(family, group, port) as rx, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        yield rx, tx


def received(rx: socket.socket, limit: int = 10000) -> List[bytes]:
    return support.drain(rx, 0.1, limit)


# -- what arrives ------------------------------------------------------------------

def test_every_datagram_in_order_to_an_explicit_address(pair: Pair, group: str,
                                                        port: int) -> None:
    rx, tx = pair
    payloads = [b"%05d" % i + b"x" * (i % 50) for i in range(500)]
    assert tx.send_batch(payloads, (group, port)) == 500
    assert received(rx) == payloads


def test_the_joined_group_of_jl_both_by_default(family: int, group: str, port: int) -> None:
    with receiver(family, group, port) as rx, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_BOTH) as both:
        assert both.send_batch([b"one", b"two"]) == 2
        assert received(rx) == [b"one", b"two"]
        assert received(both) == [b"one", b"two"]        # a JL_BOTH socket hears its own


def test_the_connected_peer(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    tx.connect((group, port))
    assert tx.send_batch(iter([b"a", b"b", b"c"])) == 3
    assert received(rx) == [b"a", b"b", b"c"]


def test_no_destination_is_an_error(family: int) -> None:
    with mpoint.socket(family) as s:
        with pytest.raises(OSError) as info:
            s.send_batch([b"nowhere"])
        assert isinstance(info.value, errors.MultipointError)


def test_any_bytes_like_payload(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    ints = array.array("i", [1, 2, 3])
    big = bytearray(b"bytearray")
    payloads: List[Any] = [b"bytes", big, memoryview(b"view"), memoryview(b"xsliced")[1:],
                           ints, b""]
    assert tx.send_batch(payloads, (group, port)) == len(payloads)
    assert received(rx) == [b"bytes", b"bytearray", b"view", b"sliced", ints.tobytes(), b""]
    big.extend(b" grows")           # every view was released: it can resize again


def test_empty_is_zero(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    assert tx.send_batch([], (group, port)) == 0
    assert tx.send_batch(iter(()), (group, port)) == 0
    assert received(rx) == []


def test_more_than_one_sendmmsg_chunk(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    payloads = [i.to_bytes(4, "big") for i in range(3000)]      # chunks of 1024 on Linux
    assert tx.send_batch(payloads, (group, port)) == 3000
    assert received(rx, 5000) == payloads


def test_payloads_are_not_copied(pair: Pair, group: str, port: int) -> None:
    """One 60 kB buffer sent 2,000 times: 120 MB of datagrams, while the
    process grows by far less than a copy of them would need."""
    rx, tx = pair
    rx.close()                       # nobody listens: only the sender's cost
    chunk = memoryview(bytearray(60000))
    before = _rss_kb()
    assert tx.send_batch([chunk] * 2000, (group, port)) == 2000
    if before is not None:
        grown = _rss_kb() - before   # type: ignore[operator]
        assert grown < 60000, f"grew by {grown} kB"


def _rss_kb() -> Any:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# -- bad input: nothing is sent -------------------------------------------------------

def test_a_non_buffer_item_is_type_error_before_anything_is_sent(pair: Pair, group: str,
                                                                port: int) -> None:
    rx, tx = pair
    first = bytearray(b"first")
    with pytest.raises(TypeError, match="payload 1"):
        tx.send_batch([first, 42, b"third"], (group, port))
    with pytest.raises(TypeError):
        tx.send_batch(b"bytes, not a list of them", (group, port))   # items are ints
    with pytest.raises(TypeError):
        tx.send_batch(None, (group, port))              # type: ignore[arg-type]
    assert received(rx) == []
    first.extend(b" resizable")     # the views taken before the error were released


def test_an_oversize_datagram_is_wsaemsgsize_before_anything_is_sent(pair: Pair, group: str,
                                                                    port: int) -> None:
    rx, tx = pair
    limit = 65507 if tx.family == socket.AF_INET else 65527
    assert tx.send_batch([b"x" * limit], (group, port)) == 1
    received(rx)
    with pytest.raises(errors.WSAEMSGSIZE, match="datagram 1"):
        tx.send_batch([b"ok", b"x" * (limit + 1), b"ok"], (group, port))
    assert received(rx) == []


def test_bad_addresses(pair: Pair, group: str) -> None:
    _, tx = pair
    with pytest.raises(TypeError):
        tx.send_batch([b"x"], group)                   # type: ignore[arg-type]
    with pytest.raises(errors.WSAEFAULT):
        tx.send_batch([b"x"], (group, 70000))
    other = "::1" if tx.family == socket.AF_INET else "127.0.0.1"
    with pytest.raises(errors.WSAEAFNOSUPPORT):
        tx.send_batch([b"x"], (other, 9))


def test_closed_socket(family: int) -> None:
    s = mpoint.socket(family)
    s.close()
    with pytest.raises(errors.WSAENOTSOCK):
        s.send_batch([b"x"], (support.LOOPBACK[family], 9))
    with pytest.raises(errors.WSAENOTSOCK):
        s.send_batch([], (support.LOOPBACK[family], 9))


def test_iterator_that_closes_the_socket(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair

    def payloads() -> Iterator[bytes]:
        yield b"before"
        tx.close()
        yield b"after"

    with pytest.raises(errors.WSAENOTSOCK):
        tx.send_batch(payloads(), (group, port))
    assert received(rx) == []


def test_address_conversion_that_closes_the_socket(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair

    class Port:
        def __index__(self) -> int:
            tx.close()
            return port

    with pytest.raises(errors.WSAENOTSOCK):
        tx.send_batch([b"x"], (group, Port()))         # type: ignore[arg-type]
    assert received(rx) == []


@pytest.mark.skipif(sys.version_info < (3, 12), reason="__buffer__ is Python 3.12's (PEP 688)")
def test_buffer_that_closes_the_socket(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair

    class Hostile:
        def __buffer__(self, flags: int) -> memoryview:
            tx.close()
            return memoryview(b"hostile")

    with pytest.raises(errors.WSAENOTSOCK):
        tx.send_batch([b"x", Hostile()], (group, port))
    assert received(rx) == []


def test_no_leak_over_many_calls(pair: Pair, group: str, port: int) -> None:
    """The buffers and the views are freed on success and on failure."""
    rx, tx = pair
    rx.close()
    payloads = [bytearray(100) for _ in range(50)]
    bad = payloads[:10] + [object()]

    def rounds() -> None:
        for _ in range(200):
            tx.send_batch(payloads, (group, port))
            with pytest.raises(TypeError):
                tx.send_batch(bad, (group, port))

    rounds()
    gc.collect()
    import tracemalloc
    tracemalloc.start()
    try:
        rounds()
        gc.collect()
        first = tracemalloc.get_traced_memory()[0]
        rounds()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - first
    finally:
        tracemalloc.stop()
    assert grown < 20000, grown


# -- the kernel's would-block -----------------------------------------------------------

def test_a_full_send_buffer_returns_the_count_and_rearms_fd_write(
        evset: EventSet, port: int, link: Dict[str, int]) -> None:
    """A real kernel would-block (as tests/test_events.py makes one): a slow
    queue (tbf) on mpa holds the sender's buffer space.  A non-blocking
    send_batch returns what went, then raises WSAEWOULDBLOCK once nothing
    can, and FD_WRITE fires when the link drained."""
    tc = shutil.which("tc")
    if tc is None:
        pytest.skip("needs tc (iproute2) to slow the link down")
    subprocess.run([tc, "qdisc", "replace", "dev", "mpa", "root", "tbf", "rate", "1mbit",
                    "burst", "1600", "latency", "5s"], check=True)
    try:
        with mpoint.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            s.join_leaf(("239.5.0.2", port), flags=JL_SENDER_ONLY, interface="mpa")
            evset.register(s, FD.WRITE)
            assert {ne.sock: ne.events for ne in evset.wait(1)} == {s: FD.WRITE}
            n = s.send_batch([b"x" * 1400] * 100, ("239.5.0.2", port))
            assert 1 <= n < 100
            with pytest.raises(BlockingIOError) as info:
                s.send_batch([b"x" * 1400] * 100, ("239.5.0.2", port))
            assert isinstance(info.value, errors.WSAEWOULDBLOCK)
            assert {ne.sock: ne.events for ne in evset.wait(5)} == {s: FD.WRITE}
    finally:
        subprocess.run([tc, "qdisc", "del", "dev", "mpa", "root"], check=False)


@pytest.mark.offline
def test_the_stub_and_the_facade_agree() -> None:
    assert mpoint.MultipointSocket.send_batch is _core.sock_send_batch
