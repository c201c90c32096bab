"""The send path's token bucket (ext/shaper.c, ext/sendcalls.pxi).

First its arithmetic, through the test hook _core._shaper_simulate (times
given, nothing sent); then shaped sockets inside the private namespace:
the achieved rate against token_rate, the initial burst against the bucket,
max_sdu, a non-blocking socket's WSAEWOULDBLOCK and later FD_WRITE, and a
paced wait's answers to Ctrl+C, timeouts and a close from another thread.

Rate tolerance: over a bounded run the shaper can never send more than
bucket + rate * elapsed (exact arithmetic: asserted to the byte, plus one
datagram for the clock read between); it sends less only when its sleeps
overshoot by more than the bucket covers, so the lower bound is 5% below
token_rate, generous for a loaded 2-core machine.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from typing import Iterator, List, Tuple

import pytest

import mpoint
import support
from mpoint import FD, JL_RECEIVER_ONLY, JL_SENDER_ONLY, EventSet, _core, errors

S = 1_000_000_000          # ns
sim = _core._shaper_simulate


# -- the arithmetic ------------------------------------------------------------------

@pytest.mark.offline
def test_a_full_bucket_at_the_start_then_the_rate() -> None:
    # 1000 B/s into 10,000 bytes: ten 1000-byte datagrams at once, the 11th
    # needs 1000 more bytes: one second.
    assert sim(1000, 10000, 0, 0, 0, 5, [(5, 1000)] * 10 + [(5, 1000)]) == [0] * 10 + [S]
    # Half a second later half of it is there.
    assert sim(1000, 10000, 0, 0, 0, 0, [(0, 10000), (S // 2, 1000)]) == [0, S // 2]
    assert sim(1000, 10000, 0, 0, 0, 0, [(0, 10000), (S, 1000)]) == [0, 0]


@pytest.mark.offline
def test_the_bucket_holds_no_more_than_its_size() -> None:
    hour = 3600 * S
    assert sim(1000, 2000, 0, 0, 0, 0, [(hour, 2000), (hour, 1)]) == [0, S // 1000]


@pytest.mark.offline
def test_waits_round_up_and_never_drift() -> None:
    """3 B/s, 1-byte datagrams, each sent as soon as it conforms (the
    hook's greedy sender) after the 2-byte bucket's burst: the k-th leaves
    at exactly ceil(k * 1e9 / 3) ns, however many there were -- a rounding
    per step would add up.  (With a bucket of one datagram, what accrues
    within the nanosecond a wait is rounded up to overflows the full
    bucket and is lost, as the TSpec discards any excess.)  Then 1 Gbit/s
    with 1400-byte datagrams, a million of them (11.2 simulated seconds),
    ends exactly on time."""
    times = sim(3, 2, 0, 0, 0, 0, [(0, 1), (0, 1)] + [(None, 1)] * 30000)
    assert times[:2] == [0, 0]
    assert all(t == -(-k * S // 3) for k, t in enumerate(times[2:], 1))
    assert times[-1] == 10000 * S
    rate, n = 125_000_000, 1_000_000
    last = sim(rate, 2800, 0, 0, 0, 0, [(0, 2800)] + [(None, 1400)] * n)[-1]
    assert last == -(-n * 1400 * S // rate) == 11_200_000_000
    lossy = sim(3, 1, 0, 0, 0, 0, [(0, 1)] + [(None, 1)] * 3)
    assert lossy == [0, 333333334, 666666668, 1000000002]


@pytest.mark.offline
def test_no_overflow_at_the_largest_values_and_after_days() -> None:
    big = 2**32 - 1
    week = 7 * 24 * 3600 * S
    # 4 GB/s into a 4 GB bucket: emptied, a byte 1 ns later, full a week later.
    assert sim(big, big, 0, 0, 0, 0, [(0, big), (1, 1), (week, big)]) == [0, 0, 0]
    assert sim(big, big, big, 0, 0, 0, [(0, big), (0, 1), (week, big)]) == [0, 1, 0]
    out = sim(big, big, 0, 0, 0, 0, [(0, 2**31), (0, 2**31 - 1), (0, 1), (week, 2**31)])
    assert out == [0, 0, 1, 0]
    # 1 Gbit/s, 1400-byte datagrams, after ten hours: the wait is one datagram's time.
    rate = 125_000_000
    ten_hours = 10 * 3600 * S
    assert sim(rate, 1400, 0, 0, 0, 0, [(ten_hours, 1400), (ten_hours, 1400)]) == \
        [0, 1400 * S // rate]


@pytest.mark.offline
def test_minimum_policed_size_counts_small_datagrams_as_m() -> None:
    # m = 100: a 10-byte datagram costs 100 tokens.
    assert sim(100, 1000, 0, 100, 0, 0, [(0, 10)] * 10 + [(0, 10)]) == [0] * 10 + [S]
    assert sim(100, 1000, 0, 100, 0, 0, [(0, 500), (0, 500), (0, 150)]) == [0, 0, int(1.5 * S)]


@pytest.mark.offline
def test_max_sdu_refuses_larger_datagrams() -> None:
    assert sim(1000, 2000, 0, 0, 1500, 0, [(0, 1500), (0, 1501)]) == [0, -1]
    assert sim(0, 0, 0, 0, 1500, 0, [(0, 1500), (0, 1501)]) == [0, -1]
    # without max_sdu, a datagram larger than the bucket can never conform
    assert sim(1000, 2000, 0, 0, 0, 0, [(0, 2001)]) == [-1]


@pytest.mark.offline
def test_no_rate_limit() -> None:
    assert sim(0, 0, 0, 0, 0, 0, [(0, 65000)] * 100) == [0] * 100


@pytest.mark.offline
def test_peak_rate_spaces_datagrams() -> None:
    # Without max_sdu the peak bucket holds one datagram: each leaves
    # c / peak after the last emptied it (1000 bytes at 2000 B/s: 0.5 s).
    assert sim(1000, 10000, 2000, 0, 0, 0, [(0, 1000), (0, 1000)]) == [0, S // 2]
    assert sim(1000, 10000, 2000, 0, 0, 0, [(0, 1000), (S // 2, 1000)]) == [0, 0]
    # With max_sdu M the peak bucket is M deep: M bytes at once, then p.
    assert sim(1000, 10000, 2000, 0, 3000, 0, [(0, 1000)] * 3 + [(0, 1000)]) == \
        [0, 0, 0, S // 2]
    # The peak alone, without a token rate.
    assert sim(0, 0, 1000, 0, 0, 0, [(0, 500), (0, 500)]) == [0, S // 2]


@pytest.mark.offline
def test_refund_gives_back_what_was_taken() -> None:
    assert sim(1000, 1000, 0, 0, 0, 0, [(0, 1000), (0, -1000), (0, 1000), (0, 1)]) == \
        [0, 0, 0, S // 1000]


@pytest.mark.offline
def test_a_clock_that_goes_back_adds_nothing() -> None:
    assert sim(1000, 1000, 0, 0, 0, 10 * S, [(10 * S, 1000), (5 * S, 1000)]) == [0, S]


@pytest.mark.offline
@pytest.mark.parametrize("params", [
    (1000, 0, 0, 0, 0),          # a rate into a bucket that holds nothing
    (1000, 100, 0, 200, 0),      # the bucket below min_policed
    (1000, 100, 0, 0, 200),      # the bucket below max_sdu
    (1000, 2000, 500, 0, 0),     # peak below the token rate (RFC 2215)
    (0, 0, 0, 2000, 1000),       # min_policed above max_sdu (RFC 2210)
    (2**32, 2**32, 0, 0, 0),     # above FLOWSPEC's ULONG
    (-1, 100, 0, 0, 0),
])
def test_impossible_settings_are_wsaeinval(params: Tuple[int, ...]) -> None:
    with pytest.raises(errors.WSAEINVAL):
        sim(*params, 0, [])


# -- shaped sockets ----------------------------------------------------------------------

Pair = Tuple[mpoint.MultipointSocket, mpoint.MultipointSocket]


@pytest.fixture
def pair(family: int, group: str, port: int) -> Iterator[Pair]:
    rx = mpoint.socket(family)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    with rx.join_leaf((group, port), flags=JL_RECEIVER_ONLY) as rx, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        yield rx, tx


def test_set_read_and_clear(pair: Pair) -> None:
    _, tx = pair
    assert _core.sock_shaper(tx) is None and not tx._mp.shaped
    _core.sock_set_shaper(tx, 125000, 3000, 250000, 64, 1500)
    assert _core.sock_shaper(tx) == (125000, 3000, 250000, 64, 1500)
    assert _core.sock_shaper_tokens(tx) == 3000
    with pytest.raises(errors.WSAEINVAL):
        _core.sock_set_shaper(tx, 125000, 1000, 0, 0, 1500)
    assert _core.sock_shaper(tx) == (125000, 3000, 250000, 64, 1500)   # unchanged
    with pytest.raises(TypeError):
        _core.sock_set_shaper(tx, True, 3000)
    _core.sock_set_shaper(tx, None)
    assert _core.sock_shaper(tx) is None
    _core.sock_set_shaper(tx, 1000, 1000)
    _core.sock_clear_shaper(tx)
    assert _core.sock_shaper(tx) is None


RATE = 250_000             # 2 Mbit/s
SIZE = 1400
BUCKET = 8 * SIZE          # 45 ms of sleep overshoot covered


def _check_rate(sent_bytes: int, elapsed: float) -> None:
    assert sent_bytes <= BUCKET + RATE * elapsed + SIZE
    achieved = (sent_bytes - BUCKET) / elapsed
    assert achieved >= 0.95 * RATE, f"{achieved:.0f} B/s of {RATE}"


def test_send_achieves_the_token_rate(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    _core.sock_set_shaper(tx, RATE, BUCKET)
    payload = b"r" * SIZE
    sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < 1.0:
        sent += tx.send(payload)
    elapsed = time.perf_counter() - start
    _check_rate(sent, elapsed)
    assert len(support.drain(rx, 0.1, 10000)) == sent // SIZE


def test_sendto_and_sendmsg_are_shaped(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    _core.sock_set_shaper(tx, 10 * SIZE, SIZE)
    start = time.perf_counter()
    tx.sendto(b"s" * SIZE, (group, port))
    tx.sendto(b"s" * SIZE, 0, (group, port))      # waits 100 ms
    if hasattr(tx, "sendmsg"):
        tx.sendmsg([b"s" * 700, memoryview(b"s" * 700)], [], 0, (group, port))   # 100 ms more
    took = time.perf_counter() - start
    expected = 0.2 if hasattr(tx, "sendmsg") else 0.1
    assert expected * 0.95 <= took < expected + 0.15
    assert len(support.drain(rx)) == (3 if hasattr(tx, "sendmsg") else 2)


def test_send_batch_paces_at_the_token_rate(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    _core.sock_set_shaper(tx, RATE, BUCKET)
    n = (BUCKET + RATE) // SIZE                       # one second's worth after the burst
    start = time.perf_counter()
    assert tx.send_batch([b"b" * SIZE] * n, (group, port)) == n
    elapsed = time.perf_counter() - start
    _check_rate(n * SIZE, elapsed)
    assert elapsed >= (n * SIZE - BUCKET) / RATE * 0.999
    assert len(support.drain(rx, 0.1, 10000)) == n


def test_the_initial_burst_is_the_bucket(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    tx.setblocking(False)
    _core.sock_set_shaper(tx, 100, 10 * SIZE)          # 100 B/s: nothing accrues meanwhile
    assert tx.send_batch([b"x" * SIZE] * 30, (group, port)) == 10
    with pytest.raises(BlockingIOError) as info:
        tx.send_batch([b"x" * SIZE] * 30, (group, port))
    assert isinstance(info.value, errors.WSAEWOULDBLOCK)
    _core.sock_set_shaper(tx, 100, 10 * SIZE)           # full again
    sent = 0
    with pytest.raises(errors.WSAEWOULDBLOCK):
        for _ in range(30):
            tx.send(b"x" * SIZE)
            sent += 1
    assert sent == 10
    assert len(support.drain(rx)) == 20


def test_max_sdu_is_wsaemsgsize(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    _core.sock_set_shaper(tx, 0, 0, 0, 0, 1000)          # no rate limit, 1000 bytes at most
    assert tx.send(b"m" * 1000) == 1000
    with pytest.raises(errors.WSAEMSGSIZE, match="max_sdu"):
        tx.send(b"m" * 1001)
    with pytest.raises(errors.WSAEMSGSIZE, match="datagram 1"):
        tx.send_batch([b"ok", b"m" * 1001], (group, port))
    _core.sock_set_shaper(tx, 1000, 1000)                # a datagram larger than the bucket
    with pytest.raises(errors.WSAEMSGSIZE, match="bucket"):
        tx.sendto(b"m" * 1001, (group, port))
    assert support.drain(rx) == [b"m" * 1000]


def test_nonblocking_would_block_then_fd_write_when_the_tokens_return(
        evset: EventSet, pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    rate = 10 * SIZE                                     # one datagram per 100 ms
    _core.sock_set_shaper(tx, rate, SIZE)
    evset.register(tx, FD.WRITE)
    assert {ne.sock: ne.events for ne in evset.wait(1)} == {tx: FD.WRITE}   # after registering
    tx.send(b"w" * SIZE)                                # empties the bucket
    start = time.perf_counter()
    with pytest.raises(errors.WSAEWOULDBLOCK):
        tx.send(b"w" * SIZE)
    assert evset.wait(0.03) == []                       # not yet, and no spin
    events = evset.wait(2)
    took = time.perf_counter() - start
    assert {ne.sock: ne.events for ne in events} == {tx: FD.WRITE}
    assert dict(events[0].errors) == {FD.WRITE: 0}
    assert 0.095 <= took < 0.3, took
    assert tx.send(b"w" * SIZE) == SIZE                 # the tokens are back
    assert evset.wait(0.15) == []                       # a send that succeeds re-arms nothing
    # send_batch: the count before the bucket ran dry (it refilled
    # meanwhile: one datagram), then WSAEWOULDBLOCK, and FD_WRITE after both.
    assert tx.send_batch([b"w" * SIZE] * 3, (group, port)) == 1
    assert {ne.sock: ne.events for ne in evset.wait(2)} == {tx: FD.WRITE}
    assert tx.send_batch([b"w" * SIZE] * 3, (group, port)) == 1
    with pytest.raises(errors.WSAEWOULDBLOCK):
        tx.send_batch([b"w" * SIZE] * 3, (group, port))
    assert {ne.sock: ne.events for ne in evset.wait(2)} == {tx: FD.WRITE}
    evset.unregister(tx)
    assert len(support.drain(rx)) == 4


def test_a_removed_registration_forgets_its_due_time(evset: EventSet, pair: Pair) -> None:
    _, tx = pair
    _core.sock_set_shaper(tx, 10 * SIZE, SIZE)
    evset.register(tx, FD.WRITE)
    evset.wait(1)
    tx.send(b"w" * SIZE)
    with pytest.raises(errors.WSAEWOULDBLOCK):
        tx.send(b"w" * SIZE)
    evset.unregister(tx)
    with mpoint.socket(tx.family) as other:
        evset.register(other, FD.READ)                  # may reuse the slot
        assert evset.wait(0.2) == []


def test_a_timeout_bounds_the_wait(pair: Pair, group: str, port: int) -> None:
    _, tx = pair
    _core.sock_set_shaper(tx, SIZE, SIZE)               # one datagram per second
    tx.settimeout(0.2)
    tx.send(b"t" * SIZE)
    start = time.perf_counter()
    with pytest.raises(TimeoutError) as info:
        tx.send(b"t" * SIZE)
    assert isinstance(info.value, errors.WSAETIMEDOUT)
    assert 0.19 <= time.perf_counter() - start < 0.5
    start = time.perf_counter()
    with pytest.raises(errors.WSAETIMEDOUT):
        tx.send_batch([b"t" * SIZE], (group, port))
    assert 0.19 <= time.perf_counter() - start < 0.5
    _core.sock_set_shaper(tx, 10 * SIZE, SIZE)         # 100 ms per datagram
    start = time.perf_counter()
    assert tx.send_batch([b"t" * SIZE] * 10, (group, port)) in (2, 3)   # what fits in 0.2 s
    assert 0.19 <= time.perf_counter() - start < 0.5


class Alarm(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[None]:
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("no SIGALRM here (Windows)")
    previous = signal.getsignal(signal.SIGALRM)

    def handler(signum: int, frame: object) -> None:
        raise Alarm()

    signal.signal(signal.SIGALRM, handler)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_ctrl_c_ends_a_paced_send(pair: Pair, group: str, port: int, alarm: None) -> None:
    _, tx = pair
    _core.sock_set_shaper(tx, 100, SIZE)                # 14 s per datagram
    tx.send(b"k" * SIZE)
    for call in (lambda: tx.send(b"k" * SIZE),
                 lambda: tx.send_batch([b"k" * SIZE] * 2, (group, port))):
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        start = time.perf_counter()
        with pytest.raises(Alarm):
            call()
        assert time.perf_counter() - start < 0.5
    assert not tx._mp.closing and tx.send_batch([], (group, port)) == 0


def test_keyboard_interrupt_propagates(pair: Pair, alarm: None) -> None:
    _, tx = pair
    _core.sock_set_shaper(tx, 100, SIZE)
    tx.send(b"k" * SIZE)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    with pytest.raises(KeyboardInterrupt):
        tx.send(b"k" * SIZE)


@pytest.mark.parametrize("how", ["send", "send_batch"])
def test_ctrl_c_from_another_thread_ends_a_paced_send(pair: Pair, group: str, port: int,
                                                      how: str) -> None:
    """Ctrl+C as Windows delivers it too (no SIGALRM there): the signal
    arrives while the wait sleeps without the GIL, and the wait's next
    slice raises KeyboardInterrupt."""
    import _thread
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("KeyboardInterrupt goes to the main thread")
    _, tx = pair
    _core.sock_set_shaper(tx, 100, SIZE)
    tx.send(b"k" * SIZE)
    timer = threading.Timer(0.1, _thread.interrupt_main)
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            if how == "send":
                tx.send(b"k" * SIZE)
            else:
                tx.send_batch([b"k" * SIZE] * 2, (group, port))
    finally:
        timer.join()
    assert time.perf_counter() - start < 0.5
    fd = tx.fileno()
    tx.close()                    # nothing still holds it busy: closed at once, not deferred
    if sys.platform != "win32":
        with pytest.raises(OSError):
            os.fstat(fd)


@pytest.mark.parametrize("how", ["send", "send_batch"])
def test_a_close_from_another_thread_wakes_a_paced_send(pair: Pair, group: str, port: int,
                                                        how: str) -> None:
    _, tx = pair
    _core.sock_set_shaper(tx, 100, SIZE)
    tx.send(b"c" * SIZE)
    closed_at: List[float] = []

    def closer() -> None:
        time.sleep(0.2)
        closed_at.append(time.perf_counter())
        tx.close()

    t = threading.Thread(target=closer)
    t.start()
    try:
        with pytest.raises(errors.WSAENOTSOCK):
            if how == "send":
                tx.send(b"c" * SIZE)
            else:
                tx.send_batch([b"c" * SIZE] * 3, (group, port))
        woke = time.perf_counter()
    finally:
        t.join()
    assert woke - closed_at[0] < 0.1


def test_unshaped_sends_are_untouched(pair: Pair, group: str, port: int) -> None:
    rx, tx = pair
    _core.sock_set_shaper(tx, 100, SIZE)
    _core.sock_clear_shaper(tx)
    start = time.perf_counter()
    for _ in range(100):
        tx.send(b"u" * SIZE)
    assert tx.send_batch([b"u" * SIZE] * 100, (group, port)) == 100
    assert time.perf_counter() - start < 1
    assert len(support.drain(rx)) == 200
