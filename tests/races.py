"""The race suite: each close-while-blocked, close-during-batch and fork
case, repeated.

    python tests/races.py [--repeat N] [--only NAME,...]

Each case runs N times (default 1,000; .ci/run runs it under ASan/UBSan),
the close landing at a random point (0-3 ms after the call starts: before
its wait, inside it, or between two slices).  A run passes when every
blocked call ended within PROMPT_S of the close with the promised error
(or result) and nothing was received from, joined on or closed for a
socket other than its own.  Runs inside a private network namespace it
makes itself (mpoint.lab.netns).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional

PROMPT_S = 1.0          # the promise is one wait slice; slack for a loaded machine
PORT = 40200


class Waiter(threading.Thread):
    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.ended = 0.0

    def run(self) -> None:
        try:
            self.value = self.call()
        except BaseException as exc:
            self.error = exc
        self.ended = time.monotonic()


def blocked_then_closed(call: Callable[[], Any], close: Callable[[], None],
                        rng: random.Random) -> Waiter:
    w = Waiter(call)
    w.start()
    time.sleep(rng.random() * 0.003)
    closed = time.monotonic()
    close()
    w.join(timeout=5.0)
    if w.is_alive():
        raise AssertionError("the blocked call never ended")
    if w.ended - closed > PROMPT_S:
        raise AssertionError(f"ended {w.ended - closed:.3f} s after the close")
    return w


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1000)
    ap.add_argument("--only", default="")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    from mpoint.lab import netns
    try:
        netns.require_isolation(many_groups=True)
    except netns.IsolationError as exc:
        print(f"races: refusing to run: {exc}", file=sys.stderr)
        return 2
    import mpoint
    import support                        # tests/support.py: this script's directory
    from mpoint import FD, JL_RECEIVER_ONLY, EventSet, GroupSet, RecvBatch, errors

    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    group = "239.77.0.1"

    def recv_batch_close() -> None:
        rx = mpoint.socket().join_leaf((group, PORT), flags=JL_RECEIVER_ONLY)
        w = blocked_then_closed(lambda: rx.recv_batch(RecvBatch(4), None), rx.close, rng)
        assert isinstance(w.error, errors.WSAENOTSOCK), (w.error, w.value)

    def event_wait_socket_close() -> None:
        with EventSet() as evset:
            rx = mpoint.socket().join_leaf((group, PORT), flags=JL_RECEIVER_ONLY)
            evset.register(rx, FD.READ)
            w = blocked_then_closed(lambda: evset.wait(None), rx.close, rng)
            assert w.error is None, w.error
            assert [(ne.sock, ne.events) for ne in w.value] == [(rx, FD.CLOSE)], w.value
            assert len(evset) == 0

    def event_wait_set_close() -> None:
        evset = EventSet()
        w = blocked_then_closed(lambda: evset.wait(None), evset.close, rng)
        assert isinstance(w.error, errors.WSAENOTSOCK), (w.error, w.value)

    def groupset_recv_close() -> None:
        gs = GroupSet(PORT + 1)
        gs.join(group)
        w = blocked_then_closed(lambda: gs.recv_batch(RecvBatch(4), None), gs.close, rng)
        assert isinstance(w.error, errors.WSAENOTSOCK), (w.error, w.value)

    groups = [f"239.78.{i // 250}.{i % 250 + 1}" for i in range(2000)]

    def groupset_join_close() -> None:
        gs = GroupSet(PORT + 2)
        w = blocked_then_closed(lambda: gs.join_many(groups), gs.close, rng)
        # Done before the close, or stopped by it: joined ones, then refusals.
        assert w.error is None or isinstance(w.error, errors.WSAENOTSOCK), w.error
        with mpoint.socket().join_leaf(("239.78.0.1", PORT + 2), flags=JL_RECEIVER_ONLY):
            pass                         # the port and group are free again, the set gone

    def fork_with_a_registered_socket() -> None:
        evset = EventSet()
        rx = mpoint.socket().join_leaf((group, PORT + 3), flags=JL_RECEIVER_ONLY)
        evset.register(rx, FD.READ)
        def child() -> int:
            rx.close()
            evset.close()
            return 0

        assert support.exit_code_in_child(child) == 0
        with mpoint.socket().join_leaf((group, PORT + 3), flags=mpoint.JL_SENDER_ONLY) as tx:
            tx.send(b"x")
            assert [(ne.sock, ne.events) for ne in evset.wait(2.0)] == [(rx, FD.READ)]
        rx.close()
        evset.close()

    def fork_with_a_group_set() -> None:
        gs = GroupSet(PORT + 4, per_socket=4)
        gs.join_many(groups[:10])
        def child() -> int:
            try:
                gs.leave_many(groups[:10])
            except RuntimeError:
                gs.close()
                return 0
            return 1                      # a parent's set must refuse here

        assert support.exit_code_in_child(child) == 0
        with mpoint.socket().join_leaf((groups[9], PORT + 4), flags=mpoint.JL_SENDER_ONLY) as tx:
            tx.send(b"x")
            assert gs.recv_batch(RecvBatch(4, metadata=True), 2.0) == 1
        gs.close()

    cases: Dict[str, Callable[[], None]] = {
        "recv_batch, socket closed": recv_batch_close,
        "EventSet.wait, socket closed": event_wait_socket_close,
        "EventSet.wait, set closed": event_wait_set_close,
        "GroupSet.recv_batch, set closed": groupset_recv_close,
        "GroupSet.join_many of 2,000, set closed": groupset_join_close,
    }
    if hasattr(os, "fork"):
        cases["fork with a registered socket"] = fork_with_a_registered_socket
        cases["fork with a GroupSet"] = fork_with_a_group_set
    only = [c for c in args.only.split(",") if c]
    print(f"races: seed {seed}, {args.repeat} runs per case", flush=True)
    failed = 0
    for name, case in cases.items():
        if only and not any(o in name for o in only):
            continue
        t = time.monotonic()
        for i in range(args.repeat):
            try:
                case()
            except BaseException as exc:
                failed += 1
                print(f"races: {name}, run {i}: {type(exc).__name__}: {exc}", file=sys.stderr)
                break
        print(f"  {name:42s} {i + 1:6d} runs in {time.monotonic() - t:6.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
