"""Ctrl-C ends every blocking call within 100 ms, timeout=None included:
whether the kernel hands SIGINT to the waiting thread (its wait ends with
EINTR) or to another thread (Python's handler runs, sets its flag, and the
waiting thread must notice it by itself)."""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Callable, Iterator, List, Tuple

import pytest

import mpoint
from mpoint import FD, JL_RECEIVER_ONLY, JL_SENDER_ONLY, EventSet, RecvBatch
from support import new_group

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"),
                                reason="needs signal.pthread_kill to aim SIGINT at a thread")

BOUND = 0.1         # the promise
SLACK = 0.15        # scheduling on a loaded 2-core machine
WATCHDOG = 3.0      # a call that missed the signal is woken by a datagram then


CALLS = ["recv_batch", "GroupSet.recv_batch", "EventSet.wait"]


@contextlib.contextmanager
def blocking_call(name: str, family: int, port: int) -> Iterator[Tuple[Callable[[], object],
                                                                     Callable[[bytes], object]]]:
    """(the call, blocking with timeout=None; a way to wake it with a datagram)."""
    g = new_group(family)
    with mpoint.socket(family).join_leaf((g, port), flags=JL_SENDER_ONLY) as tx:
        if name == "GroupSet.recv_batch":
            with mpoint.GroupSet(port, family=family) as gs:
                gs.join(g)
                yield (lambda: gs.recv_batch(RecvBatch(4), None)), tx.send
            return
        with mpoint.socket(family).join_leaf((g, port), flags=JL_RECEIVER_ONLY) as rx:
            if name == "recv_batch":
                yield (lambda: rx.recv_batch(RecvBatch(4), None)), tx.send
                return
            with EventSet() as events:
                events.register(rx, FD.READ)
                yield (lambda: events.wait(None)), tx.send


@pytest.mark.parametrize("target", ["waiting thread", "another thread"])
@pytest.mark.parametrize("call", CALLS)
def test_ctrl_c_ends_the_call(family: int, port: int, call: str, target: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run only in the main thread")
    with blocking_call(call, family, port) as (run, wake):
        _interrupt(call, target, run, wake)


def _interrupt(name: str, target: str, run: Callable[[], object],
               wake: Callable[[bytes], object]) -> None:
    fired: List[float] = []
    main = threading.main_thread().ident
    stop = threading.Event()

    def interrupter() -> None:
        time.sleep(0.2)
        fired.append(time.monotonic())
        aim = main if target == "waiting thread" else threading.get_ident()
        signal.pthread_kill(aim, signal.SIGINT)      # type: ignore[arg-type]
        if not stop.wait(WATCHDOG):
            wake(b"watchdog")                         # the call missed it: end the test

    helper = threading.Thread(target=interrupter)
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run()
        ended = time.monotonic()
    finally:
        stop.set()
        helper.join()
    assert fired and ended - fired[0] < BOUND + SLACK, f"{name}: {ended - fired[0]:.3f} s"
