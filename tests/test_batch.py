"""Batch receive: RecvBatch, Datagram and MultipointSocket.recv_batch.

Inside the private namespace a datagram to a group is queued on every
receiver during the sender's own send() (loopback), so a receive right after
the sends sees all of them.
"""
from __future__ import annotations

import gc
import signal
import socket
import threading
import time
import tracemalloc
from typing import Callable, Iterator, List, Tuple

import pytest

import mpoint
import support
from mpoint import JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY, _core, errors
from mpoint._core import Datagram, RecvBatch
from support import new_group

Pair = Tuple[mpoint.MultipointSocket, mpoint.MultipointSocket]


def receiver(family: int, group: str, port: int) -> mpoint.MultipointSocket:
    return mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)


def plain_receiver(family: int, group: str, port: int) -> socket.socket:
    """A receiver joined without mpoint: the standard library's recipe, so
    nothing asked for metadata before its datagrams arrive."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    packed = socket.inet_pton(family, group)
    if family == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     packed + socket.inet_aton("0.0.0.0"))
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, packed + bytes(4))
    return s


@pytest.fixture
def pair(family: int, group: str, port: int) -> Iterator[Pair]:
    """A receiver and a sender of one fresh group.  The receiver's join
    turned its metadata on before its membership existed."""
    with receiver(family, group, port) as rx, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        yield rx, tx


def send_all(tx: socket.socket, payloads: List[bytes]) -> None:
    for p in payloads:
        tx.send(p)


# -- what a receive reports -----------------------------------------------------

def test_payloads_order_and_sources(pair: Pair) -> None:
    rx, tx = pair
    payloads = [b"", b"a", b"bb" * 100, bytes(range(256)) * 4, b"last"]
    send_all(tx, payloads)
    batch = RecvBatch(16, 2048)
    assert rx.recv_batch(batch, timeout=1) == len(payloads) == len(batch)
    assert [bytes(d.data) for d in batch] == payloads
    assert all(d.source == tx.getsockname() for d in batch)
    assert not any(d.truncated for d in batch)
    assert isinstance(batch[0], Datagram) and bytes(batch[-1].data) == b"last"


def test_source_matches_recvfrom(pair: Pair) -> None:
    rx, tx = pair
    send_all(tx, [b"one", b"two"])
    assert rx.recvfrom(100)[1] == tx.getsockname()
    batch = RecvBatch(4)
    assert rx.recv_batch(batch, timeout=1) == 1
    assert batch[0].source == tx.getsockname()


def test_metadata(pair: Pair, family: int, group: str) -> None:
    rx, tx = pair
    send_all(tx, [b"x%d" % i for i in range(8)])
    batch = RecvBatch(16)
    assert batch.metadata is True
    assert rx.recv_batch(batch, timeout=1) == 8
    lo = support.loopback_index()
    assert all(d.group == group and d.ifindex == lo for d in batch)
    assert "Datagram 2 bytes" in repr(batch[0]) and group in repr(batch[0])


@pytest.mark.real_windows("Wine does not implement SIO_TIMESTAMPING")
def test_kernel_timestamps(pair: Pair) -> None:
    rx, tx = pair
    before = time.time_ns()
    send_all(tx, [b"x%d" % i for i in range(8)])
    batch = RecvBatch(16)
    assert rx.recv_batch(batch, timeout=1) == 8
    stamps = [d.timestamp_ns for d in batch]
    assert stamps == sorted(stamps)
    assert before - 2 * 10**9 < stamps[0] and stamps[-1] < time.time_ns() + 2 * 10**9


@pytest.mark.real_windows("Wine's sockets are Linux sockets, which deliver a group to every socket on its port; Windows has no option to stop it")
def test_group_is_the_destination(family: int, port: int) -> None:
    """Two receivers of two groups on one port: each reports its own."""
    a, b = new_group(family), new_group(family)
    with receiver(family, a, port) as ra, receiver(family, b, port) as rb, \
            mpoint.socket(family).join_leaf((a, port), flags=JL_SENDER_ONLY) as ta, \
            mpoint.socket(family).join_leaf((b, port), flags=JL_SENDER_ONLY) as tb:
        ta.send(b"to a")
        tb.send(b"to b")
        batch = RecvBatch(4)
        assert ra.recv_batch(batch, timeout=1) == 1
        assert (bytes(batch[0].data), batch[0].group) == (b"to a", a)
        assert rb.recv_batch(batch, timeout=1) == 1
        assert (bytes(batch[0].data), batch[0].group) == (b"to b", b)


def test_jl_both_receives_its_own_datagram(family: int, group: str, port: int) -> None:
    with mpoint.socket(family).join_leaf((group, port), flags=JL_BOTH) as s:
        s.send(b"echo")
        batch = RecvBatch(2)
        assert s.recv_batch(batch, timeout=1) == 1
        d = batch[0]
        assert (bytes(d.data), d.group, d.source[1]) == (b"echo", group, s.getsockname()[1])


def test_metadata_of_datagrams_queued_before_the_first_receive(
        family: int, group: str, port: int) -> None:
    """Join, let a burst arrive, and only then make the first recv_batch:
    every datagram knows its group and interface, whichever role joined."""
    lo = support.loopback_index()
    with receiver(family, group, port) as rx, \
            mpoint.socket(family).join_leaf((group, port)) as both, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        send_all(tx, [b"q%d" % i for i in range(6)])
        time.sleep(0.1)
        for sock in (rx, both):
            batch = RecvBatch(16)
            assert sock.recv_batch(batch, timeout=1) == 6
            assert [(d.group, d.ifindex) for d in batch] == [(group, lo)] * 6


@pytest.mark.real_windows("Wine does not implement SIO_TIMESTAMPING")
def test_timestamps_of_datagrams_queued_before_the_first_receive(
        family: int, group: str, port: int) -> None:
    """The kernel's arrival time, not the time of the receive call that
    asked: stamps fall within the burst's sending, before the call."""
    with receiver(family, group, port) as rx, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        before = time.time_ns()
        send_all(tx, [b"t%d" % i for i in range(6)])
        after = time.time_ns()
        time.sleep(0.2)
        called = time.time_ns()
        batch = RecvBatch(16)
        assert rx.recv_batch(batch, timeout=1) == 6
        stamps = [d.timestamp_ns for d in batch]
        assert all(isinstance(t, int) for t in stamps), stamps
        # 1 ms of slack for the clocks' granularity; the call came 200 ms later.
        assert all(before - 10**6 <= t <= after + 10**6 for t in stamps), (before, stamps, after)
        assert max(stamps) < called - 100 * 10**6
        assert list(batch.timestamps) == stamps


def queued_burst(tx: socket.socket, tag: bytes, n: int) -> Tuple[int, int]:
    """Sends n datagrams and lets them wait 100 ms: (clock before the burst,
    clock when the wait ended), for the window a true kernel stamp lies in."""
    before = time.time_ns()
    send_all(tx, [tag + b"%d" % i for i in range(n)])
    time.sleep(0.1)
    return before, time.time_ns()


def test_groupset_metadata_before_the_first_receive(family: int, port: int) -> None:
    lo = support.loopback_index()
    g = new_group(family)
    with mpoint.GroupSet(port, family=family) as gs, \
            mpoint.socket(family).join_leaf((g, port), flags=JL_SENDER_ONLY) as tx:
        gs.join(g)
        before, called = queued_burst(tx, b"g", 4)
        batch = RecvBatch(8)
        assert gs.recv_batch(batch, timeout=1) == 4
        assert [(d.group, d.ifindex) for d in batch] == [(g, lo)] * 4
        assert all(d.timestamp_ns is None or before - 10**6 <= d.timestamp_ns < called
                   for d in batch)


def test_metadata_asked_late_is_unknown_not_made_up(family: int, group: str, port: int) -> None:
    """A socket joined without mpoint asks for metadata at its first
    recv_batch, after its datagrams arrived: each field is the true value
    or unknown (ifindex 0, timestamp None), never the time of the call."""
    lo = support.loopback_index()
    plain = plain_receiver(family, group, port)
    with mpoint.MultipointSocket(family, fileno=plain.detach()) as rx, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        before, called = queued_burst(tx, b"late", 4)
        batch = RecvBatch(8)
        assert rx.recv_batch(batch, timeout=1) == 4
        for d in batch:
            assert d.group == group and d.ifindex in (0, lo)
            assert d.timestamp_ns is None or before - 10**6 <= d.timestamp_ns < called, d
        # What arrives after the first call has it all.
        tx.send(b"now")
        assert rx.recv_batch(batch, timeout=1) == 1
        assert batch[0].ifindex == lo


def test_a_timeout_whose_float_closes_the_socket(pair: Pair, family: int) -> None:
    """The timeout is converted before the descriptor is read: a __float__
    that closes the socket and opens another (which may take its number)
    makes the call fail as closed, not receive from the newcomer."""
    rx, tx = pair
    opened: List[socket.socket] = []

    class Closing:
        def __float__(self) -> float:
            rx.close()
            opened.append(mpoint.socket(family))
            return 0.0
    try:
        with pytest.raises(errors.WSAENOTSOCK):
            rx.recv_batch(RecvBatch(4), Closing())  # type: ignore[arg-type]
    finally:
        for s in opened:
            s.close()


def test_without_metadata(pair: Pair) -> None:
    rx, tx = pair
    send_all(tx, [b"plain"])
    batch = RecvBatch(4, metadata=False)
    assert batch.metadata is False
    assert rx.recv_batch(batch, timeout=1) == 1
    d = batch[0]
    assert (bytes(d.data), d.source) == (b"plain", tx.getsockname())
    assert (d.group, d.ifindex, d.timestamp_ns) == (None, 0, None)
    assert list(batch.timestamps) == [0] and list(batch.ifindexes) == [0]


def test_metadata_does_not_go_stale(pair: Pair, family: int, group: str, port: int) -> None:
    """A slot reused for a datagram without metadata shows none, not the
    previous datagram's (the second receiver never turned metadata on)."""
    rx, tx = pair
    with plain_receiver(family, group, port) as plain:
        tx.send(b"both")
        batch = RecvBatch(4)
        assert rx.recv_batch(batch, timeout=1) == 1 and batch[0].group == group
        assert _core.recv_batch(plain.fileno(), batch, 1) == 1
        d = batch[0]
        assert (bytes(d.data), d.group, d.ifindex, d.timestamp_ns) == (b"both", None, 0, None)


def test_truncation(pair: Pair) -> None:
    rx, tx = pair
    big = bytes(range(256)) * 12        # 3072 bytes
    send_all(tx, [big, b"small"])
    batch = RecvBatch(4, 1000)
    assert rx.recv_batch(batch, timeout=1) == 2
    assert (batch[0].truncated, len(batch[0].data), bytes(batch[0].data)) == (True, 1000, big[:1000])
    assert (batch[1].truncated, bytes(batch[1].data)) == (False, b"small")
    assert list(batch.truncated) == [1, 0] and list(batch.sizes) == [1000, 5]


def test_largest_datagram(pair: Pair) -> None:
    rx, tx = pair
    payload = b"\x5a" * 60000
    send_all(tx, [payload])
    batch = RecvBatch(1, 65536)
    assert rx.recv_batch(batch, timeout=1) == 1
    assert bytes(batch[0].data) == payload and not batch[0].truncated


# -- how much one receive takes ------------------------------------------------

def test_takes_what_is_queued(pair: Pair) -> None:
    rx, tx = pair
    send_all(tx, [b"1", b"2", b"3"])
    batch = RecvBatch(64)
    assert rx.recv_batch(batch, timeout=1) == 3
    assert rx.recv_batch(batch, timeout=0) == 0 and len(batch) == 0


def test_more_queued_than_fits(pair: Pair) -> None:
    rx, tx = pair
    payloads = [b"%d" % i for i in range(10)]
    send_all(tx, payloads)
    batch = RecvBatch(4)
    got = []
    for expected in (4, 4, 2, 0):
        assert rx.recv_batch(batch, timeout=0) == expected
        got += [bytes(d.data) for d in batch]
    assert got == payloads


def test_more_than_one_recvmmsg_chunk(pair: Pair) -> None:
    """Linux's recvmmsg takes at most 1024 messages per call; a bigger batch
    still takes everything queued."""
    rx, tx = pair
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    payloads = [i.to_bytes(2, "big") for i in range(1500)]
    send_all(tx, payloads)
    batch = RecvBatch(2048, 16)
    queued = rx.recv_batch(batch, timeout=0)
    if queued <= 1024 and rx.recv_batch(RecvBatch(1), timeout=0) == 0:
        pytest.skip(f"the receive buffer ({rx.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)} "
                    f"bytes, net.core.rmem_max) held only {queued} datagrams")
    assert queued > 1024
    assert [bytes(d.data) for d in batch] == payloads[:queued]


def test_a_failed_receive_shows_nothing(pair: Pair) -> None:
    rx, tx = pair
    send_all(tx, [b"kept"])
    batch = RecvBatch(4)
    assert rx.recv_batch(batch, timeout=1) == 1 and len(batch) == 1
    with pytest.raises(errors.WSAENOTSOCK):
        _core.recv_batch(-1, batch, 0)
    assert len(batch) == 0 and list(batch) == [] and len(batch.sizes) == 0


# -- waiting -------------------------------------------------------------------

def elapsed(fn: Callable[..., int], *args: object) -> Tuple[int, float]:
    start = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - start


def test_nonblocking_socket_returns_at_once(pair: Pair) -> None:
    rx, _ = pair
    rx.setblocking(False)
    n, took = elapsed(rx.recv_batch, RecvBatch())
    assert n == 0 and took < 0.1


def test_timeout_zero_returns_at_once(pair: Pair) -> None:
    rx, _ = pair
    n, took = elapsed(rx.recv_batch, RecvBatch(), 0.0)
    assert n == 0 and took < 0.1


def test_timeout(pair: Pair) -> None:
    rx, _ = pair
    n, took = elapsed(rx.recv_batch, RecvBatch(), 0.2)
    assert n == 0 and 0.15 <= took < 2


def test_socket_timeout(pair: Pair) -> None:
    rx, tx = pair
    rx.settimeout(0.3)
    n, took = elapsed(rx.recv_batch, RecvBatch())
    assert n == 0 and 0.25 <= took < 2
    tx.send(b"now")
    n, took = elapsed(rx.recv_batch, RecvBatch())
    assert n == 1 and took < 0.25


def test_wait_releases_the_gil(pair: Pair) -> None:
    """Another thread sends while this one waits (forever, but bounded here
    by 5 s): only possible if the wait released the GIL."""
    rx, tx = pair
    timer = threading.Timer(0.2, tx.send, (b"from a thread",))
    timer.start()
    try:
        batch = RecvBatch()
        n, took = elapsed(rx.recv_batch, batch, 5)
    finally:
        timer.join()
    assert n == 1 and bytes(batch[0].data) == b"from a thread" and took < 4


class Alarm(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[None]:
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("no SIGALRM here (Windows)")
    previous = signal.getsignal(signal.SIGALRM)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_signal_handler_that_raises_interrupts(pair: Pair, alarm: None) -> None:
    rx, _ = pair
    assert rx.gettimeout() is None            # blocking: waits forever

    def handler(signum: int, frame: object) -> None:
        raise Alarm()

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    start = time.monotonic()
    with pytest.raises(Alarm):
        rx.recv_batch(RecvBatch())
    assert time.monotonic() - start < 2


def test_signal_handler_that_returns_resumes_the_wait(pair: Pair, alarm: None) -> None:
    """PEP 475: the wait goes on for the time that is left."""
    rx, _ = pair
    calls = []
    signal.signal(signal.SIGALRM, lambda signum, frame: calls.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    n, took = elapsed(rx.recv_batch, RecvBatch(), 0.5)
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert n == 0 and 0.45 <= took < 2 and len(calls) >= 2


def test_signal_handler_that_sends_is_followed_by_the_receive(pair: Pair, alarm: None) -> None:
    rx, tx = pair
    signal.signal(signal.SIGALRM, lambda signum, frame: tx.send(b"from the handler"))
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    batch = RecvBatch()
    assert rx.recv_batch(batch) == 1 and bytes(batch[0].data) == b"from the handler"


# -- errors --------------------------------------------------------------------

def test_closed_socket(family: int, group: str, port: int) -> None:
    for metadata in (True, False):
        s = receiver(family, group, port)
        s.close()
        with pytest.raises(errors.WSAENOTSOCK):
            s.recv_batch(RecvBatch(metadata=metadata))


def test_one_receive_per_batch_at_a_time(pair: Pair) -> None:
    rx, tx = pair
    batch = RecvBatch()
    results: List[int] = []
    waiter = threading.Thread(target=lambda: results.append(rx.recv_batch(batch, 5)))
    waiter.start()
    try:
        time.sleep(0.2)                        # the waiter is in its wait
        with pytest.raises(RuntimeError):
            rx.recv_batch(batch, 0)
        assert rx.recv_batch(RecvBatch(), 0) == 0   # another batch is fine
    finally:
        tx.send(b"release")
        waiter.join()
    assert results == [1] and bytes(batch[0].data) == b"release"


def test_enable_metadata_arguments(pair: Pair) -> None:
    rx, _ = pair
    with pytest.raises(errors.WSAEAFNOSUPPORT):
        _core.enable_metadata(rx.fileno(), support.NOT_IP)
    with pytest.raises(errors.WSAENOTSOCK):
        _core.enable_metadata(-1, rx.family)
    assert _core.enable_metadata(rx.fileno(), rx.family) is None     # again: harmless


@pytest.mark.offline
@pytest.mark.parametrize("bad", [0, -1, 65537, 2**70])
def test_bad_sizes(bad: int) -> None:
    with pytest.raises(errors.WSAEINVAL):
        RecvBatch(bad)
    with pytest.raises(errors.WSAEINVAL):
        RecvBatch(8, bad)


@pytest.mark.offline
def test_size_limits() -> None:
    assert (RecvBatch(1, 1).max_datagrams, RecvBatch(1, 1).max_size) == (1, 1)
    big = RecvBatch(65536, 1)
    assert (big.max_datagrams, big.max_size, len(memoryview(big))) == (65536, 1, 65536)
    assert RecvBatch(1, 65536).max_size == 65536


@pytest.mark.offline
@pytest.mark.parametrize("bad", ["64", 64.0, None, b"x", True])
def test_sizes_must_be_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        RecvBatch(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RecvBatch(8, bad)  # type: ignore[arg-type]


@pytest.mark.offline
def test_metadata_must_be_a_bool() -> None:
    with pytest.raises(TypeError):
        RecvBatch(metadata="yes")  # type: ignore[arg-type]


@pytest.mark.offline
def test_datagrams_come_from_a_batch() -> None:
    with pytest.raises(TypeError):
        Datagram()


def test_bad_timeouts(pair: Pair) -> None:
    rx, _ = pair
    for bad in (-1, -0.001, float("nan")):
        with pytest.raises(ValueError):
            rx.recv_batch(RecvBatch(), bad)
    for wrong in ("1", b"1", [1]):
        with pytest.raises(TypeError):
            rx.recv_batch(RecvBatch(), wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.recv_batch(rx.fileno(), None, 0)


# -- views of the batch ----------------------------------------------------------

@pytest.mark.offline
def test_empty_batch() -> None:
    batch = RecvBatch(8, 100)
    assert len(batch) == 0 and list(batch) == []
    with pytest.raises(IndexError):
        batch[0]
    with pytest.raises(IndexError):
        batch[-1]
    with pytest.raises(TypeError):
        batch["0"]  # type: ignore[index]
    assert "0/8 datagrams of up to 100 bytes" in repr(batch)


def test_indexing(pair: Pair) -> None:
    rx, tx = pair
    send_all(tx, [b"a", b"b", b"c"])
    batch = RecvBatch(8)
    assert rx.recv_batch(batch, timeout=1) == 3
    assert [bytes(batch[i].data) for i in (0, 2, -1, -3)] == [b"a", b"c", b"c", b"a"]
    for bad in (3, -4, 2**70, -2**70):
        with pytest.raises(IndexError):
            batch[bad]


def test_bulk_accessors(pair: Pair) -> None:
    rx, tx = pair
    send_all(tx, [b"x" * n for n in (1, 10, 100, 1500)])
    batch = RecvBatch(8, 1000)
    assert rx.recv_batch(batch, timeout=1) == 4
    datagrams = list(batch)
    columns = {"sizes": ("I", 4, [len(d.data) for d in datagrams]),
               "timestamps": ("q", 8, [d.timestamp_ns or 0 for d in datagrams]),
               "ifindexes": ("I", 4, [d.ifindex for d in datagrams]),
               "truncated": ("B", 1, [int(d.truncated) for d in datagrams])}
    for name, (fmt, itemsize, values) in columns.items():
        view = getattr(batch, name)
        assert (view.format, view.itemsize, view.readonly, len(view)) == (fmt, itemsize, True, 4)
        assert view.tolist() == values, name
    assert batch.sizes.tolist() == [1, 10, 100, 1000]
    with pytest.raises(TypeError):
        batch.sizes[0] = 5   # type: ignore[index]


def test_views_keep_the_batch_alive(pair: Pair) -> None:
    rx, tx = pair
    send_all(tx, [b"survivor", b"second"])
    batch = RecvBatch(4, 64)
    assert rx.recv_batch(batch, timeout=1) == 2
    whole, first, sizes = memoryview(batch), batch[0], batch.sizes
    assert (len(whole), whole.readonly) == (4 * 64, True)
    assert bytes(whole[64:64 + 6]) == b"second"
    del batch
    gc.collect()
    assert bytes(first.data) == b"survivor" and sizes.tolist() == [8, 6]
    assert bytes(whole[:8]) == b"survivor"


def test_next_receive_overwrites_the_data(pair: Pair) -> None:
    rx, tx = pair
    batch = RecvBatch(4, 64)
    tx.send(b"first")
    assert rx.recv_batch(batch, timeout=1) == 1
    d = batch[0]
    tx.send(b"SECOND")
    assert rx.recv_batch(batch, timeout=1) == 1
    assert bytes(d.data) == b"SECON"           # same slot, old length: documented


@pytest.mark.offline
def test_data_is_read_only() -> None:
    batch = RecvBatch(2, 8)
    with pytest.raises(TypeError):
        memoryview(batch)[0] = 1


# -- cost ------------------------------------------------------------------------

def test_no_allocation_per_datagram(pair: Pair) -> None:
    rx, tx = pair
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    payload = b"p" * 100
    batch = RecvBatch(32, 256)

    def rounds(n: int) -> None:
        for _ in range(n):
            for _ in range(32):
                tx.send(payload)
            assert rx.recv_batch(batch) == 32
            assert sum(batch.sizes) == 3200

    rounds(20)                                   # warm up caches and free lists
    tracemalloc.start()
    try:
        rounds(5)
        before = tracemalloc.get_traced_memory()[0]
        rounds(200)
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth < 16 * 1024, f"{growth} bytes kept over 6,400 datagrams"
