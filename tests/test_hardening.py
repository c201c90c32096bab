"""Hostile callers and other threads (issue 14): a close wakes every waiter,
no call acts on a descriptor after its socket was closed, an EventSet is
freed by close() and inert in a forked child, and bad arguments get clear
mpoint errors.  Each test is a reproducer of a defect found by trying."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, List, Optional

import pytest

import mpoint
import support
from mpoint import FD, JL_RECEIVER_ONLY, JL_SENDER_ONLY, EventSet, RecvBatch, errors


PROMPT = 1.0        # the promise is one wait slice (100 ms); slack for a loaded machine


def started(thread: threading.Thread, settle: float = 0.3,
            holds: Optional[Callable[[], bool]] = None) -> None:
    """Starts a thread that is about to block and returns once it is there:
    when ``holds`` says so (polled, at most 10 s), else after ``settle``."""
    thread.start()
    if holds is None:
        time.sleep(settle)
        return
    deadline = time.monotonic() + 10.0
    while not holds():
        assert thread.is_alive() and time.monotonic() < deadline, "the call never began to wait"
        time.sleep(0.005)
    time.sleep(0.05)          # past the first instructions of the wait itself


class Outcome:
    """What a call run in a thread returned or raised, and when it ended."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.ended = 0.0
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.value = call()
        except BaseException as exc:      # reported to the test
            self.error = exc
        self.ended = time.monotonic()

    def join(self) -> None:
        self.thread.join(timeout=5.0)
        assert not self.thread.is_alive(), "the blocked call never ended"


# -- a close ends recv_batch; the descriptor is never someone else's --------------------

@pytest.mark.parametrize("timeout", [None, 30.0])
def test_close_ends_a_blocked_recv_batch(family: int, group: str, port: int,
                                         timeout: Optional[float]) -> None:
    rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    batch = RecvBatch(8)
    out = Outcome(lambda: rx.recv_batch(batch, timeout))
    started(out.thread, holds=lambda: batch.busy)
    closed_at = time.monotonic()
    rx.close()
    out.join()
    assert out.ended - closed_at < PROMPT
    assert isinstance(out.error, errors.WSAENOTSOCK), out.error
    assert "closed while receiving" in str(out.error)
    assert rx.fileno() == -1


def test_a_blocked_recv_batch_never_reads_the_next_socket(family: int, group: str,
                                                          port: int) -> None:
    """Closing a socket while recv_batch waits on it, then opening a new one:
    the new one cannot get the old number while the wait holds it, so the
    waiter never returns the new socket's datagram and the new socket gets
    it."""
    rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    old_fd = rx.fileno()
    waiting = RecvBatch(8)
    out = Outcome(lambda: rx.recv_batch(waiting, None))
    started(out.thread, holds=lambda: waiting.busy)
    rx.close()
    with mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY) as rx2, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        assert rx2.fileno() != old_fd          # still held by the waiter
        tx.send(b"for rx2")
        out.join()
        assert isinstance(out.error, errors.WSAENOTSOCK), (out.error, out.value)
        batch = RecvBatch(8)
        assert rx2.recv_batch(batch, 2.0) == 1
        assert bytes(batch[0].data) == b"for rx2"
    # Once the waiter left, the old descriptor is closed.
    with pytest.raises(OSError):
        os.fstat(old_fd) if sys.platform != "win32" else socket.socket(fileno=old_fd)


def test_detach_while_receiving_is_refused(family: int, group: str, port: int) -> None:
    rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    waiting = RecvBatch(8)
    out = Outcome(lambda: rx.recv_batch(waiting, None))
    started(out.thread, holds=lambda: waiting.busy)
    with pytest.raises(errors.WSAEINPROGRESS):
        rx.detach()
    rx.close()
    out.join()
    assert isinstance(out.error, errors.WSAENOTSOCK)


def test_close_during_recv_batch_many_times(family: int, group: str, port: int) -> None:
    """The race, repeated: close while the receive is at any point of its
    loop (before, during or after a wait slice)."""
    for i in range(60):
        rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        out = Outcome(lambda: rx.recv_batch(RecvBatch(4), None))
        out.thread.start()
        time.sleep((i % 7) * 0.002)
        rx.close()
        out.join()
        assert isinstance(out.error, errors.WSAENOTSOCK), (i, out.error, out.value)


# -- EventSet: a close wakes the waiter; close() frees; fork -----------------------------

@pytest.mark.parametrize("registered", [FD.READ, FD.READ | FD.CLOSE])
def test_closing_a_socket_wakes_its_waiting_set(evset: EventSet, family: int, group: str,
                                                port: int, registered: FD) -> None:
    rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    evset.register(rx, registered)
    out = Outcome(lambda: evset.wait(None))
    started(out.thread)
    closed_at = time.monotonic()
    rx.close()
    out.join()
    assert out.error is None, out.error
    assert out.ended - closed_at < PROMPT
    [ne] = out.value
    assert ne.sock is rx and ne.events == FD.CLOSE
    assert ne.errors[FD.CLOSE] == errors.WSAECONNABORTED.wsa_errno
    assert len(evset) == 0 and evset.wait(0) == []       # reported once, then gone


def test_closing_the_set_ends_its_wait(backend: str) -> None:
    evset = EventSet(backend)
    out = Outcome(lambda: evset.wait(None))
    started(out.thread)
    closed_at = time.monotonic()
    evset.close()
    out.join()
    assert out.ended - closed_at < PROMPT
    assert isinstance(out.error, errors.WSAENOTSOCK), out.error


@pytest.mark.offline
def test_a_closed_set_refuses_every_call(backend: str) -> None:
    evset = EventSet(backend)
    evset.close()
    evset.close()                                       # again: nothing
    for call in (lambda: evset.wait(0), lambda: evset.backend,
                 lambda: evset.register(mpoint.socket(), FD.READ)):
        with pytest.raises(errors.WSAENOTSOCK, match="closed"):
            call()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
@pytest.mark.offline
def test_closed_sets_keep_no_descriptor(backend: str) -> None:
    before = len(os.listdir("/proc/self/fd"))
    kept = []
    for _ in range(50):
        evset = EventSet(backend)
        evset.close()
        kept.append(evset)                               # still referenced
    assert len(os.listdir("/proc/self/fd")) <= before + 1


FORK_CHILD = r"""
import os, sys
from mpoint import EventSet
def child(evset, sock):
    try:
        evset.wait(0)
        return 10                     # a parent's set must refuse to wait here
    except RuntimeError:
        pass
    if not evset.inherited:
        return 11
    sock.close()                      # the child's copy; the parent's registration stays
    evset.close()
    return 0
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_child_never_changes_the_parents_set(family: int, group: str, port: int,
                                               backend: str) -> None:
    ns: dict = {}
    exec(FORK_CHILD, ns)
    evset = EventSet(backend)
    rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    evset.register(rx, FD.READ)
    with mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        assert support.exit_code_in_child(lambda: ns["child"](evset, rx)) == 0
        assert not evset.inherited and rx in evset
        tx.send(b"after the child")
        assert [(ne.sock, ne.events) for ne in evset.wait(2.0)] == [(rx, FD.READ)]
    rx.close()                                           # no ENOENT: still registered here
    evset.close()


# -- MultipointSocket.close always closes; smaller refusals -------------------------------

def test_close_closes_even_when_leaving_the_set_fails(evset: EventSet, family: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    sock = mpoint.socket(family)
    evset.register(sock, FD.READ)

    def broken(_sock: Any) -> None:
        raise OSError("leaving failed")

    monkeypatch.setattr(evset, "_closing", broken)
    with pytest.raises(OSError, match="leaving failed"):
        sock.close()
    assert sock.fileno() == -1


def test_register_a_closed_socket(evset: EventSet, family: int) -> None:
    sock = mpoint.socket(family)
    sock.close()
    with pytest.raises(errors.WSAENOTSOCK, match="closed"):
        evset.register(sock, FD.READ)


def test_a_tcp_descriptor_is_refused_and_left_open() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        fd = tcp.fileno()
        with pytest.raises(errors.WSAESOCKTNOSUPPORT, match="SOCK_DGRAM"):
            mpoint.MultipointSocket(socket.AF_INET, socket.SOCK_DGRAM, 0, fd)
        assert tcp.fileno() == fd                       # still open, still the caller's
        assert tcp.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM


@pytest.mark.offline
def test_batch_area_has_a_stated_limit() -> None:
    with pytest.raises(errors.WSAEINVAL, match="64 MiB"):
        RecvBatch(65536, 65536)
    with pytest.raises(errors.WSAEINVAL, match="64 MiB"):
        RecvBatch(2049, 32768)
    assert RecvBatch(2048, 64).max_datagrams == 2048


def test_bool_is_no_port(family: int, group: str) -> None:
    with mpoint.socket(family) as sock:
        with pytest.raises(TypeError, match="bool"):
            sock.join_leaf((group, True), flags=JL_RECEIVER_ONLY)


def test_bool_is_no_timeout(family: int, group: str, port: int) -> None:
    with mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY) as rx:
        with pytest.raises(TypeError, match="bool"):
            rx.recv_batch(RecvBatch(4), True)
    with EventSet() as evset, pytest.raises(TypeError, match="bool"):
        evset.wait(False)


@pytest.mark.offline
def test_import_mpoint_reaches_aio() -> None:
    code = "import mpoint; print(mpoint.aio.create_datagram_endpoint.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd="/")
    assert out.returncode == 0 and out.stdout.strip() == "create_datagram_endpoint", out.stderr


def test_aio_socket_closed_before_the_transport_starts(family: int, group: str,
                                                       port: int) -> None:
    """The protocol hears of it (error_received, connection_lost); nothing
    reaches the loop's exception handler."""
    seen: List[str] = []
    unhandled: List[Any] = []

    class Protocol(asyncio.DatagramProtocol):
        def error_received(self, exc: Exception) -> None:
            seen.append(f"error {type(exc).__name__}")

        def connection_lost(self, exc: Optional[Exception]) -> None:
            seen.append("lost")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: unhandled.append(ctx))
        sock = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        transport, _ = await mpoint.aio.create_datagram_endpoint(Protocol, sock=sock)
        sock.close()                                     # before the transport's start
        for _ in range(5):
            await asyncio.sleep(0.01)
        transport.close()

    asyncio.run(main())
    assert unhandled == []
    assert seen == ["error WSAENOTSOCK", "lost"], seen
