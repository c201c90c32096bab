"""Fuzzing of every public parser, hostile objects included.

    python tests/fuzz.py [--cases N] [--seed S] [--only NAME,...]

Each parser gets N random cases (default 2,000; .ci/run runs it under
ASan/UBSan): join arguments, group lists, interfaces, batch sizes, socket
arguments, event-set calls and receive timeouts.  Arguments are drawn from
valid, boundary and hostile values: objects whose ``__index__``,
``__float__`` or ``__repr__`` close the socket or the set, or close the
socket and open another on the same descriptor number.  A case passes when
the call returns or raises one of the errors a caller is promised (an
``OSError`` -- mpoint's classes among them --, ``TypeError``,
``ValueError``, ``OverflowError``, ``RuntimeError`` for a busy or inherited
object, ``KeyError`` for an unknown registration); anything else
(``SystemError``, a crash, a sanitizer report) fails the run with the case
that did it.  Runs inside a private network namespace it makes itself
(mpoint.lab.netns): some cases really join.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import sys
import time
import traceback
from typing import Any, Callable, Dict, List

ALLOWED = (OSError, TypeError, ValueError, OverflowError, RuntimeError, KeyError)
PORT = 40123


class Hostile:
    """An integer (``__index__``), a float (``__float__``) and a text
    (``__repr__``/``__str__``) that first runs ``action``."""

    def __init__(self, value: Any, action: Callable[[], None]) -> None:
        self.value, self.action = value, action

    def __index__(self) -> int:
        self.action()
        return int(self.value)

    def __float__(self) -> float:
        self.action()
        return float(self.value)

    def __repr__(self) -> str:
        self.action()
        return f"Hostile({self.value!r})"

    __str__ = __repr__


class HostileStr(str):
    """A str whose repr runs ``action`` (a member a parser may format)."""

    action: Callable[[], None] = staticmethod(lambda: None)

    def __repr__(self) -> str:
        type(self).action()
        return str.__repr__(self)


class Fuzzer:
    def __init__(self, rng: random.Random) -> None:
        import mpoint
        self.mp = mpoint
        self.rng = rng
        self.families = [socket.AF_INET]
        if socket.has_ipv6:
            self.families.append(socket.AF_INET6)
        self.spares: List[Any] = []         # sockets opened by hostile actions

    # -- values ---------------------------------------------------------------------
    def group(self, family: int) -> str:
        r = self.rng.random()
        if family == socket.AF_INET:
            good = f"239.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        else:
            good = f"ff1{self.rng.choice('2458e')}::{self.rng.randrange(1, 65536):x}"
        if r < 0.6:
            return good
        return self.rng.choice([
            "", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "127.0.0.1", "::1", "1.2.3.4",
            "239.1.1.1\0", "bad\0nul", "ff15::1%lo", "é", "x" * 300, "239.1.1", "ff15:::1",
            "255.255.255.255", "::ffff:239.1.1.1", good.upper(), " " + good, good + " "])

    def integer(self) -> Any:
        return self.rng.choice([0, 1, 2, 3, 4, 5, -1, 65535, 65536, 2**31, 2**63, -2**63,
                                2**64, 10**30, True, False, 1.5, "1", None,
                                self.rng.randrange(-100, 70000)])

    def hostile(self, sock: Any = None, target: Any = None, value: Any = None) -> Any:
        """A hostile value (``value``, else a small one) whose action closes
        sock, or target, or reopens sock's descriptor number with a new
        socket."""
        def action() -> None:
            k = self.rng.randrange(4)
            if k == 0 and sock is not None:
                sock.close()
            elif k == 1 and target is not None:
                target.close()
            elif k == 2 and sock is not None:
                sock.close()
                self.spares.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        if value is None:
            value = self.rng.choice([0, 1, 2, 4, 0.01])
        return Hostile(value, action)

    def maybe_hostile(self, plain: Any, sock: Any = None, target: Any = None) -> Any:
        """plain, or now and then a hostile object that stands for it (an
        int or float plain keeps its value: a timeout stays short)."""
        if self.rng.random() >= 0.15:
            return plain
        numeric = isinstance(plain, (int, float)) and not isinstance(plain, bool) and \
            plain == plain and abs(plain) < 2**62
        return self.hostile(sock, target, plain if numeric else self.rng.choice([0, 0.01]))

    def tidy(self) -> None:
        for s in self.spares:
            s.close()
        self.spares.clear()

    # -- the parsers ---------------------------------------------------------------------
    def join_args(self) -> None:
        family = self.rng.choice(self.families)
        sock = self.mp.socket(family)
        try:
            host = self.group(family)
            port = self.maybe_hostile(self.rng.choice([PORT, PORT, self.integer()]), sock)
            name: Any = (host, port)
            if family == socket.AF_INET6 and self.rng.random() < 0.3:
                name = (host, port, self.maybe_hostile(self.integer(), sock),
                        self.maybe_hostile(self.rng.choice([0, 1, self.integer()]), sock))
            elif self.rng.random() < 0.1:
                name = self.rng.choice([host, [host, PORT], (host,), (host, PORT, 0, 0, 0), None])
            kwargs: Dict[str, Any] = {}
            flags = self.maybe_hostile(self.rng.choice([1, 2, 4, 2, self.integer()]), sock)
            kwargs["flags"] = flags
            if self.rng.random() < 0.4:
                kwargs["interface"] = self.maybe_hostile(self.rng.choice(
                    ["lo", 1, 0, -1, "nope", "127.0.0.1", "::1", "", "lo\0", True, 2**40,
                     None, "239.1.1.1"]), sock)
            if self.rng.random() < 0.3:
                kwargs["source"] = self.rng.choice(["127.0.0.1", "::1", "0.0.0.0", "239.1.1.1",
                                                    "", 5, None, "bad\0"])
            args: List[Any] = []
            if self.rng.random() < 0.3:
                args = [self.rng.choice([None, b"", b"x", bytearray(b"ab"), memoryview(b"q"), 3]),
                        self.rng.choice([None, bytearray(), bytearray(b"zz"), b"ro", 7]),
                        self.rng.choice([None, None, object()]),
                        self.rng.choice([None, None, object()])]
            sock.join_leaf(name, *args, **kwargs)
        finally:
            sock.close()
            self.tidy()

    def socket_args(self) -> None:
        args = [self.rng.choice([socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, 0, -1, 2**40,
                                 self.integer()]),
                self.rng.choice([socket.SOCK_DGRAM, socket.SOCK_STREAM, 0, -1, self.integer()]),
                self.rng.choice([0, socket.IPPROTO_UDP, socket.IPPROTO_TCP, -1, self.integer()])]
        flags = self.rng.choice([self.mp.DEFAULT_FLAGS, 0, 1, 2, 4, 8, 16, 0xFF, -1, 2**33,
                                 self.integer(), int(self.mp.DEFAULT_FLAGS) | 0x100])
        s = self.mp.socket(*args, flags=flags)
        s.close()

    def group_list(self) -> None:
        family = self.rng.choice(self.families)
        gs = self.mp.GroupSet(PORT + 1, family=family,
                              per_socket=self.rng.choice([1, 2, 20]))
        try:
            HostileStr.action = staticmethod(gs.close) if self.rng.random() < 0.3 \
                else staticmethod(lambda: None)
            members: List[Any] = []
            for _ in range(self.rng.randrange(0, 40)):
                r = self.rng.random()
                g = self.group(family)
                if r < 0.6:
                    members.append(g)
                elif r < 0.75:
                    members.append((g, self.rng.choice(["127.0.0.1", "::1", None, "bad", 4])))
                elif r < 0.85:
                    members.append(HostileStr(g + self.rng.choice(["", "\0"])))
                else:
                    members.append(self.rng.choice([None, 5, b"239.1.1.1", (g,), (g, None, 1),
                                                    [g], self.hostile(target=gs)]))
            op = self.rng.random()
            if op < 0.6:
                gs.join_many(members)
            elif op < 0.8:
                gs.join_many(members)
                gs.leave_many(members[: len(members) // 2])
            else:
                gs.join(self.rng.choice(members) if members else "239.9.9.9")
            if self.rng.random() < 0.3:
                gs.recv_batch(RecvBatch(4), self.maybe_hostile(0.0, target=gs))
            len(gs)
            gs.stats()
        finally:
            HostileStr.action = staticmethod(lambda: None)
            gs.close()

    def interfaces(self) -> None:
        value = self.rng.choice(["lo", "lo0", "", "\0", "127.0.0.1", "::1", "239.1.1.1",
                                 "fe80::1", "x" * 300, 0, 1, 2, -1, 2**32, 2**70, True, None,
                                 1.0, b"lo", "é"])
        self.mp._core.interface_index(value)

    def batch_sizes(self) -> None:
        a = self.maybe_hostile(self.integer())
        b = self.maybe_hostile(self.rng.choice([1, 64, 2048, 65536, 65537, self.integer()]))
        RecvBatch(a, b, self.rng.choice([True, False, 0, 1, None, "yes"]))

    def event_set(self) -> None:
        family = self.rng.choice(self.families)
        evset = self.mp.EventSet(self.rng.choice(self.mp.EventSet.backends()))
        socks = [self.mp.socket(family) for _ in range(self.rng.randrange(1, 4))]
        try:
            for _ in range(self.rng.randrange(1, 8)):
                s = self.rng.choice(socks)
                k = self.rng.randrange(7)
                if k == 0:
                    evset.register(s, self.maybe_hostile(self.rng.choice(
                        [1, 2, 0x3F, 0x3FF, 0x400, 0, -1, 2**40, self.integer()]), s, evset))
                elif k == 1:
                    evset.modify(s, self.maybe_hostile(self.rng.choice([1, 3, 0x400]), s, evset))
                elif k == 2:
                    evset.unregister(s)
                elif k == 3:
                    evset.wait(self.maybe_hostile(self.rng.choice([0, 0.001, 0.0, -1,
                                                                   float("nan")]), s, evset))
                elif k == 4:
                    s.close()
                elif k == 5:
                    s.join_leaf((self.group(family), PORT + 2),
                                flags=self.rng.choice([1, 2, 4]))
                else:
                    evset.close()
        finally:
            for s in socks:
                s.close()
            evset.close()
            self.tidy()

    def receive_timeouts(self) -> None:
        family = self.rng.choice(self.families)
        s = self.mp.socket(family)
        try:
            if self.rng.random() < 0.7:
                s.join_leaf((self.group(family), PORT + 3), flags=JL_RECEIVER_ONLY)
            t = self.maybe_hostile(self.rng.choice([0, 0.0, 0.001, -1, float("nan"), True, "1",
                                                    0.002]), s)
            s.recv_batch(RecvBatch(self.rng.choice([1, 4]),
                                   metadata=self.rng.random() < 0.5), t)
        finally:
            s.close()
            self.tidy()


JL_RECEIVER_ONLY = 2
RecvBatch: Any = None


def main() -> int:
    global RecvBatch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000, help="cases per parser (10**6: the long run)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", default="", help="comma-separated parser names")
    args = ap.parse_args()
    from mpoint.lab import netns
    try:
        netns.require_isolation(many_groups=True)
    except netns.IsolationError as exc:
        print(f"fuzz: refusing to run: {exc}", file=sys.stderr)
        return 2
    import mpoint
    RecvBatch = mpoint.RecvBatch
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    fuzzer = Fuzzer(rng)
    parsers = ["join_args", "socket_args", "group_list", "interfaces", "batch_sizes",
               "event_set", "receive_timeouts"]
    if args.only:
        parsers = [p for p in parsers if p in args.only.split(",")]
    print(f"fuzz: seed {seed}, {args.cases} cases per parser: {', '.join(parsers)}", flush=True)
    failures = 0
    for name in parsers:
        call = getattr(fuzzer, name)
        outcomes: Dict[str, int] = {}
        t = time.monotonic()
        for i in range(args.cases):
            try:
                call()
                outcomes["ok"] = outcomes.get("ok", 0) + 1
            except ALLOWED as exc:
                key = type(exc).__name__
                outcomes[key] = outcomes.get(key, 0) + 1
            except BaseException:
                failures += 1
                print(f"fuzz: {name} case {i} (seed {seed}) raised what no caller is promised:",
                      file=sys.stderr)
                traceback.print_exc()
                if failures >= 5:
                    return 1
        top = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1])[:6])
        print(f"  {name:16s} {args.cases} cases in {time.monotonic() - t:6.1f} s: {top}",
              flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
