"""A running EventSet.wait wakes at once (ext/poller.h, "Wake-up"): for an
event the library posts (a non-blocking join's FD_CONNECT), a registered
socket's close (FD_CLOSE, WSAECONNABORTED), the set's own close
(WSAENOTSOCK) and a due time set while it waits (a shaped socket's FD_WRITE),
on every backend; and a wait with nothing to report still blocks for its
timeout.

Each event happens WAIT_SLICE * 2 + OFFSET into the wait, so a wait that only
looked between its 100 ms slices would report it about 95 ms late: more than
LATE, the bound asserted (loose for a loaded machine)."""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any, List, Optional

import pytest

import mpoint
from mpoint import FD, JL_RECEIVER_ONLY, JL_SENDER_ONLY, EventSet, _core, errors
from mpoint.qos import QOS, FlowSpec
import support

WAIT_SLICE = 0.1        # ext/_core.pyx _WAIT_SLICE_MS
OFFSET = 0.005
LATE = 0.08


class Waiter:
    """evset.wait(timeout) in a thread: what it returned or raised, when it
    began (just before the call) and when it ended."""

    def __init__(self, evset: EventSet, timeout: float = 5.0) -> None:
        self.value: Optional[List[Any]] = None
        self.error: Optional[BaseException] = None
        self.began = self.ended = 0.0
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(evset, timeout), daemon=True)
        self.thread.start()
        assert self._ready.wait(10)

    def _run(self, evset: EventSet, timeout: float) -> None:
        self.began = time.monotonic()
        self._ready.set()
        try:
            self.value = evset.wait(timeout)
        except BaseException as exc:        # reported to the test
            self.error = exc
        self.ended = time.monotonic()

    def at_mid_slice(self) -> float:
        """Sleeps until the wait is OFFSET into its third slice; the time then."""
        time.sleep(max(0.0, self.began + 2 * WAIT_SLICE + OFFSET - time.monotonic()))
        return time.monotonic()

    def join(self) -> None:
        self.thread.join(10)
        assert not self.thread.is_alive(), "the wait never ended"


def fired(result: Optional[List[Any]]) -> dict:  # type: ignore[type-arg]
    assert result is not None
    return {ne.sock: ne.events for ne in result}


def test_a_nonblocking_join_wakes_the_wait(evset: EventSet, family: int, group: str,
                                           port: int) -> None:
    with mpoint.socket(family) as r:
        evset.register(r, FD.CONNECT)
        w = Waiter(evset)
        at = w.at_mid_slice()
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)      # posts FD_CONNECT
        w.join()
        assert w.error is None, w.error
        assert fired(w.value) == {r: FD.CONNECT}
        assert w.ended - at < LATE, w.ended - at


def test_closing_a_registered_socket_wakes_the_wait(evset: EventSet, family: int,
                                                    group: str, port: int) -> None:
    rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    evset.register(rx, FD.READ)
    w = Waiter(evset)
    at = w.at_mid_slice()
    rx.close()
    w.join()
    assert w.error is None, w.error
    assert fired(w.value) == {rx: FD.CLOSE}
    assert w.value is not None and w.value[0].errors[FD.CLOSE] == errors.WSAECONNABORTED.wsa_errno
    assert w.ended - at < LATE, w.ended - at


@pytest.mark.offline
def test_closing_the_set_wakes_the_wait(backend: str) -> None:
    evset = EventSet(backend)
    w = Waiter(evset)
    at = w.at_mid_slice()
    evset.close()
    w.join()
    assert isinstance(w.error, errors.WSAENOTSOCK), w.error
    assert w.ended - at < LATE, w.ended - at


def test_a_due_time_set_while_waiting_wakes_the_wait(evset: EventSet, family: int,
                                                     group: str, port: int) -> None:
    size = 1000
    with mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY) as rx, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY) as tx:
        _core.sock_set_shaper(tx, 100 * size, size)          # one datagram per 10 ms
        evset.register(tx, FD.WRITE)
        assert fired(evset.wait(1)) == {tx: FD.WRITE}        # after registering
        w = Waiter(evset)
        at = w.at_mid_slice()
        tx.send(b"d" * size)                                 # empties the bucket
        with pytest.raises(errors.WSAEWOULDBLOCK):           # FD_WRITE due in ~10 ms
            tx.send(b"d" * size)
        w.join()
        assert w.error is None, w.error
        assert fired(w.value) == {tx: FD.WRITE}
        assert w.ended - at < LATE, w.ended - at
        evset.unregister(tx)
        assert len(support.drain(rx)) == 1


def test_fd_qos_from_set_qos_wakes_the_wait(evset: EventSet, family: int, group: str,
                                            port: int) -> None:
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), flags=JL_SENDER_ONLY)
        evset.register(s, FD.QOS)
        w = Waiter(evset)
        at = w.at_mid_slice()
        s.set_qos(QOS(sending=FlowSpec(token_rate=10_000_000, token_bucket_size=100_000)))
        w.join()
        assert w.error is None, w.error
        assert fired(w.value) == {s: FD.QOS}
        assert w.ended - at < LATE, w.ended - at


def test_fd_accept_from_the_rooted_thread_wakes_the_wait(evset: EventSet, family: int,
                                                         group: str, port: int,
                                                         network: Any) -> None:
    c_root, c_leaf = mpoint.WSA_FLAG_MULTIPOINT_C_ROOT, mpoint.WSA_FLAG_MULTIPOINT_C_LEAF
    d_root = mpoint.WSA_FLAG_MULTIPOINT_D_ROOT
    scope = 0 if network.loopback_only else 1
    with mpoint.socket(family, socket.SOCK_STREAM, flags=c_root | d_root) as root, \
            mpoint.socket(family, socket.SOCK_STREAM, flags=c_leaf | d_root) as leaf:
        root.configure_session(group, port, scope=scope)
        root.bind((support.LOOPBACK[family], 0))
        root.listen()
        evset.register(root, FD.ACCEPT)
        w = Waiter(evset)
        at = w.at_mid_slice()
        leaf.setblocking(False)
        leaf.join_leaf(root.getsockname())       # the root's protocol thread posts FD_ACCEPT
        w.join()
        assert w.error is None, w.error
        assert fired(w.value) == {root: FD.ACCEPT}
        assert w.ended - at < LATE, w.ended - at


@pytest.mark.parametrize("timeout", [0.3, 0.05])
def test_an_idle_wait_blocks_for_its_timeout(evset: EventSet, timeout: float) -> None:
    with mpoint.socket() as s:
        s.bind(("127.0.0.1", 0))
        evset.register(s, FD.READ)
        start = time.monotonic()
        cpu = time.thread_time()
        assert evset.wait(timeout) == []
        took, spent = time.monotonic() - start, time.thread_time() - cpu
    assert took >= 0.9 * timeout, took
    assert spent < 0.5 * timeout, spent                      # slept, not spun


def test_a_post_without_a_waiter_leaves_no_wakeup_behind(evset: EventSet, family: int,
                                                         group: str, port: int) -> None:
    with mpoint.socket(family) as r:
        evset.register(r, FD.CONNECT)
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)     # no wait running
        assert fired(evset.wait(1)) == {r: FD.CONNECT}
        start = time.monotonic()
        assert evset.wait(0.25) == []                          # blocks its whole timeout
        assert time.monotonic() - start >= 0.225
    # A woken wait's next wait blocks too: the handle was drained.
    w = Waiter(evset, 5.0)
    w.at_mid_slice()
    evset.close()
    w.join()
    assert isinstance(w.error, errors.WSAENOTSOCK), w.error


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_childs_close_leaves_the_parents_wakeup_working(backend: str, family: int,
                                                          group: str, port: int) -> None:
    evset = EventSet(backend)
    rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    evset.register(rx, FD.READ)

    def child() -> int:
        evset.close()                   # forgets the child's copies only
        return 0

    assert support.exit_code_in_child(child) == 0
    w = Waiter(evset)
    at = w.at_mid_slice()
    rx.close()
    w.join()
    assert w.error is None, w.error
    assert fired(w.value) == {rx: FD.CLOSE}
    assert w.ended - at < LATE, w.ended - at
    evset.close()


@pytest.mark.skipif(sys.platform == "win32" or not os.path.isdir("/proc/self/fd"),
                    reason="counts this process's descriptors in /proc/self/fd")
@pytest.mark.offline
def test_a_set_and_its_wakeup_handle_are_freed_by_close(backend: str) -> None:
    before = len(os.listdir("/proc/self/fd"))
    sets = [EventSet(backend) for _ in range(20)]
    held = len(os.listdir("/proc/self/fd")) - before
    # The poller's own descriptor and the wake-up handle: an eventfd (1) or a pipe (2).
    assert 20 <= held <= 3 * 20 + 1
    for es in sets:
        es.close()
    assert len(os.listdir("/proc/self/fd")) <= before + 1

