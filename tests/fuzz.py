"""Fuzzing of every public parser, hostile objects included.

    python tests/fuzz.py [--cases N] [--seed S] [--only NAME,...]

Each parser gets N random cases (default 2,000; .ci/run runs it under
ASan/UBSan): join arguments, group lists, interfaces, batch sizes, socket
arguments, event-set calls, receive timeouts, QoS structures and their
application (FlowSpec/QOS, from_bytes, the plan, join_leaf(sqos=...),
set_qos), batch send (payload lists, addresses, shaper settings) and rooted
sessions (join_leaf
of a c_leaf against a live root and of a root inviting a live leaf,
configure_session, accept(condition) with conditions that raise, return
junk or close the root).  Arguments are drawn from
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
import array
import os
import random
import socket
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

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


class HostileVerdict:
    """An accept condition's answer that first runs ``action`` whenever it
    is compared (then equals anything)."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action

    def __eq__(self, other: object) -> bool:
        self.action()
        return True

    __hash__ = object.__hash__


class ConditionRaised(Exception):
    """What a fuzzed accept condition raises: accept must let it through
    unchanged and keep the request queued."""


C_ROOT, C_LEAF, D_ROOT, D_LEAF = 0x2, 0x4, 0x8, 0x10


class Acceptor:
    """A root or a leaf answering every join (or invitation) in a thread:
    caller data starting with 0 is admitted with as much callee data as
    its second byte says (x 64), with 1 rejected, anything else admitted."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.failure: Optional[BaseException] = None     # what no caller is promised
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def condition(caller: bytes, sqos: object, gqos: object) -> Any:
        import mpoint
        if caller[:1] == b"\1":
            return mpoint.CF_REJECT
        if caller[:1] == b"\0" and len(caller) > 1:
            return (mpoint.CF_ACCEPT, b"c" * (caller[1] * 64))
        return mpoint.CF_ACCEPT

    def _run(self) -> None:
        while self.sock.phase == "listening":
            try:
                leaf, _ = self.sock.accept(self.condition)
            except OSError:
                continue
            except BaseException as exc:
                self.failure = exc
                return
            leaf.close()

    def stop(self) -> None:
        self.sock.close()
        self.thread.join(5.0)


class Fuzzer:
    def __init__(self, rng: random.Random) -> None:
        import mpoint
        self.mp = mpoint
        self.rng = rng
        self.families = [socket.AF_INET]
        if socket.has_ipv6:
            self.families.append(socket.AF_INET6)
        self.spares: List[Any] = []         # sockets opened by hostile actions
        self.server: Optional[Acceptor] = None      # a live root (rooted cases)
        self.invitee: Optional[Acceptor] = None     # a live leaf listening for invitations

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

    def qos_value(self) -> Any:
        """A QoS field: valid, boundary, or junk."""
        return self.rng.choice([0, 1, 1400, 65535, 10**6, 0xFFFFFFFE, 0xFFFFFFFF, 2**32, -1,
                                True, None, 1.5, "1", self.rng.randrange(0, 2**32),
                                self.rng.randrange(0, 20)])

    def flowspec(self) -> Any:
        mp = self.mp
        fields = ["token_rate", "token_bucket_size", "peak_bandwidth", "latency",
                  "delay_variation", "service_type", "max_sdu_size", "minimum_policed_size"]
        kwargs = {f: self.qos_value() for f in fields if self.rng.random() < 0.4}
        if self.rng.random() < 0.5:
            kwargs["service_type"] = self.rng.choice(list(mp.ServiceType)) | self.rng.choice(
                [0, 0, mp.SERVICE_NO_TRAFFIC_CONTROL, mp.SERVICE_NO_QOS_SIGNALING, 0x100])
        return mp.FlowSpec(**kwargs)

    def qos_request(self) -> Any:
        """A QOS, its bytes (whole, cut short, or garbage), or junk."""
        mp = self.mp
        r = self.rng.random()
        if r < 0.1:
            return self.rng.choice([object(), 0, "qos", {}, bytearray(self.rng.randrange(100))])
        try:
            q = mp.QOS(self.flowspec() if self.rng.random() < 0.7 else None,
                       self.flowspec() if self.rng.random() < 0.4 else None,
                       self.rng.choice([b"", b"", b"\x01" * self.rng.randrange(1, 40)]))
        except (ValueError, TypeError):
            q = mp.QOS()
        if r < 0.5:
            return q
        raw = bytearray(q.to_bytes(self.rng.choice([4, 8])))
        if self.rng.random() < 0.5:
            raw = raw[:self.rng.randrange(len(raw) + 1)]
        if self.rng.random() < 0.3 and raw:
            raw[self.rng.randrange(len(raw))] = self.rng.randrange(256)
        return self.rng.choice([bytes(raw), raw, memoryview(bytes(raw))])

    def qos(self) -> None:
        """FlowSpec / QOS construction and from_bytes, the plan, and
        join_leaf(sqos=, gqos=) and set_qos on live sockets (hostile ports
        and flags may close the socket during the join's conversions)."""
        mp = self.mp
        from mpoint import qos as qos_mod, qos_plan
        k = self.rng.randrange(4)
        if k == 0:
            data = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(120)))
            qos_mod.QOS.from_bytes(data, self.rng.choice([4, 8, 8]))
            return
        if k == 1:
            qos_plan.plan(self.qos_request(), self.rng.choice([1, 2, 4, 3, 0, -1]),
                          self.rng.choice(["linux", "darwin", "win32", "freebsd", sys.platform]))
            return
        family = self.rng.choice(self.families)
        sock = mp.socket(family)
        try:
            if k == 2:
                sock.join_leaf((self.group(family), self.maybe_hostile(PORT, sock)),
                               sqos=self.qos_request() if self.rng.random() < 0.8 else None,
                               gqos=self.qos_request() if self.rng.random() < 0.3 else None,
                               flags=self.maybe_hostile(self.rng.choice([1, 2, 4]), sock))
            else:
                if self.rng.random() < 0.5:
                    sock.join_leaf((self.group(family), PORT), flags=self.rng.choice([1, 4]))
                if self.rng.random() < 0.2:
                    sock.close()
                sock.set_qos(self.qos_request())
                sock.get_qos()
        finally:
            sock.close()
            self.tidy()

    def send_batch(self) -> None:
        """send_batch with payload lists of every kind (hostile iterables and
        buffers among them), addresses, and shaper settings; a non-blocking
        socket so that a shaped send never waits."""
        mp = self.mp
        family = self.rng.choice(self.families)
        sock = mp.socket(family)
        try:
            group = "239.9.9.9" if family == socket.AF_INET else "ff15::9:9"
            if self.rng.random() < 0.5:
                sock.join_leaf((group, PORT), flags=self.rng.choice([1, 4]))
            sock.setblocking(False)
            if self.rng.random() < 0.3:
                mp._core.sock_set_shaper(sock, *[self.maybe_hostile(self.rng.choice(
                    [0, 1, 1000, 10**6, 2**32, -1, None]), sock) for _ in range(5)])
            elif self.rng.random() < 0.4:       # a valid bucket, often run dry
                rate = self.rng.choice([1, 1000, 10**6, 10**9])
                mp._core.sock_set_shaper(sock, rate, self.rng.choice([70000, 10**6]),
                                         self.rng.choice([0, rate, 2 * rate]), 0, 0)

            def payload() -> Any:
                n = self.rng.choice([0, 1, 64, 1400, 1400, 65507, 65508, 70000])
                if self.rng.random() < 0.97:
                    return self.rng.choice([b"x" * n, bytearray(n), memoryview(b"y" * n),
                                            array.array("i", [1] * (n // 4))])
                return self.rng.choice(["text", 5, None])

            payloads: Any = [payload() for _ in range(self.rng.randrange(0, 12))]
            r = self.rng.random()
            if r < 0.1:
                payloads = iter(payloads)
            elif r < 0.2:
                def closing() -> Any:
                    yield b"first"
                    sock.close()
                    yield b"second"
                payloads = closing()
            elif r < 0.25:
                payloads = self.rng.choice([None, 3, b"flat", object()])
            address: Any = self.rng.choice([None, (group, PORT), (group, self.integer()),
                                            ("bad", PORT), (group,), "x",
                                            (group, self.maybe_hostile(PORT, sock))])
            sock.send_batch(payloads, address)
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

    # -- rooted sessions -------------------------------------------------------------
    def _live(self, which: str) -> Acceptor:
        """The live root (``server``) or invitee, made again after a
        hostile action closed it."""
        acc: Optional[Acceptor] = getattr(self, which)
        if acc is not None and acc.failure is not None:
            failure, acc.failure = acc.failure, None
            raise AssertionError(f"the live {which}'s accept raised {failure!r}") from failure
        if acc is None or acc.sock.phase != "listening":
            if acc is not None:
                acc.stop()
            flags = C_ROOT | D_ROOT if which == "server" else C_LEAF | D_ROOT
            sock = self.mp.socket(socket.AF_INET, socket.SOCK_STREAM, flags=flags)
            if which == "server":
                sock.configure_session(scope=0)
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            sock.settimeout(0.2)
            acc = Acceptor(sock)
            setattr(self, which, acc)
        return acc

    def stop_rooted(self) -> None:
        for acc in (self.server, self.invitee):
            if acc is not None:
                acc.stop()
        self.server = self.invitee = None

    def pick(self, valid: List[Any], junk: List[Any], p_valid: float = 0.8) -> Any:
        """Mostly one of ``valid`` (so that a case often gets far), else junk."""
        return self.rng.choice(valid if self.rng.random() < p_valid else junk)

    def rooted_flags(self) -> Any:
        return self.pick([C_LEAF | D_ROOT, C_LEAF | D_LEAF, C_ROOT | D_ROOT, C_ROOT | D_LEAF],
                         [C_ROOT | C_LEAF | D_ROOT, C_LEAF, D_ROOT, C_LEAF | D_ROOT | D_LEAF, 0,
                          -1, 2**40, C_LEAF | D_ROOT | 0x1000, True, None, 1.5,
                          self.hostile(), self.integer()])

    def rooted_join_args(self, sock: Any, port: int) -> List[Any]:
        """join_leaf arguments (positional, then keywords) aimed at ``port``."""
        r = self.rng
        host = self.pick(["127.0.0.1"], ["::1", "localhost", "239.1.2.3", "0.0.0.0", "",
                                         "127.0.0.2", "127.0.0.1%lo", "127.0.0.1\0", None,
                                         b"127.0.0.1", 5, "x" * 300, HostileStr("127.0.0.1")])
        p = self.maybe_hostile(self.pick([port], [0, -1, 65536, 2**70, "1", 1.5, None, True,
                                                  self.integer()]), sock)
        name: Any = (host, p)
        if r.random() < 0.1:
            name = r.choice([[host, p], (host,), (host, p, 0, 0), (p, host), host, None, ()])
        caller = self.pick([None, b"", b"\0", b"\0\x05", b"\0\xff", b"\1no", b"plain",
                            bytearray(b"\0\x01"), memoryview(b"\0\x02abcd")[::2],
                            array.array("b", [0, 3]), b"\0" * 16384],
                           [b"\0" * 16385, "text", 5, object(), [0, 1], self.hostile(sock)])
        callee = self.pick([None, bytearray(), bytearray(8), bytearray(70000)],
                           [b"ro", memoryview(bytearray(8)), [], 3, self.hostile(sock)])
        flags = self.maybe_hostile(self.pick([1, 2, 4], [0, 3, -1, 2**70, True, None, 1.0,
                                                          self.integer()]), sock)
        args: List[Any] = [name, caller, callee]
        if r.random() < 0.1:
            args += [r.choice([None, object(), b"x"]), r.choice([None, object()])]
        kwargs: Dict[str, Any] = {"flags": flags}
        if r.random() < 0.2:
            kwargs["interface"] = self.maybe_hostile(r.choice([None, "lo", 0, 1, -1, "nope",
                                                               "127.0.0.1", 2**40]), sock)
        if r.random() < 0.05:
            kwargs["source"] = r.choice(["127.0.0.1", 5, ""])
        return [args, kwargs]

    def rooted(self) -> None:
        """One of: a c_leaf joins the live root; the live root invites the
        live leaf; configure_session (then listen); accept(condition) on a
        fresh root with raw and mpoint clients queued."""
        k = self.rng.random()
        if k < 0.35:
            self.rooted_join()
        elif k < 0.5:
            self.rooted_invite()
        elif k < 0.7:
            self.rooted_configure()
        else:
            self.rooted_accept()

    def rooted_join(self) -> None:
        server = self._live("server")
        port = server.sock.getsockname()[1]
        family = socket.AF_INET if self.rng.random() < 0.9 else socket.AF_INET6
        leaf = self.mp.socket(family, socket.SOCK_STREAM, flags=self.rng.choice(
            [C_LEAF | D_ROOT] * 4 + [C_LEAF | D_LEAF]))
        try:
            # Blocking (0.3 s at most) or not (the engine joins; the close
            # below may cancel it midway).
            leaf.settimeout(self.rng.choice([0.3, 0.3, 0]))
            args, kwargs = self.rooted_join_args(leaf, port)
            leaf.join_leaf(*args, **kwargs)
            if self.rng.random() < 0.5 and leaf.phase == "joined":
                leaf.send_data(self.rng.choice([b"x", b"", memoryview(b"yz"), "s", 5]))
            if self.rng.random() < 0.3:
                leaf.join_leaf(*args, **kwargs)           # again: EALREADY, EISCONN, ...
        finally:
            leaf.close()
            self.tidy()

    def rooted_invite(self) -> None:
        server, invitee = self._live("server"), self._live("invitee")
        root = server.sock
        args, kwargs = self.rooted_join_args(root, invitee.sock.getsockname()[1])
        leaf = None
        try:
            leaf = root.join_leaf(*args, **kwargs)
        finally:
            if leaf is not None:
                leaf.close()
            self.tidy()

    def rooted_configure(self) -> None:
        r = self.rng
        family = r.choice(self.families)
        flags = self.rooted_flags() if r.random() < 0.3 else r.choice([C_ROOT | D_ROOT,
                                                                         C_ROOT | D_LEAF])
        sock = self.mp.socket(family, socket.SOCK_STREAM, flags=flags)
        try:
            kwargs: Dict[str, Any] = {}
            if r.random() < 0.6:
                kwargs["group"] = r.choice([None, self.group(family), self.group(family),
                                            "239.1.2.3", "ff15::1", 5, b"239.1.1.1",
                                            self.hostile(sock)])
            if r.random() < 0.6:
                kwargs["port"] = self.maybe_hostile(r.choice(
                    [None, 0, 1, 40000, 65535, 65536, -1, "5", 1.5, float("nan"),
                     self.integer()]), sock)
            if r.random() < 0.4:
                kwargs["transport"] = r.choice(["multicast", "unicast", "unicast", "", None, 5,
                                                "MULTICAST", self.hostile(sock)])
            kwargs["scope"] = self.maybe_hostile(self.pick(
                [0], [1, 255, 256, -1, True, None, "1", 1.5, float("nan"), 2**70]), sock)
            if r.random() < 0.4:
                kwargs["interface"] = self.maybe_hostile(r.choice(
                    [None, "lo", 0, 1, "nope", -1, "::1", 2**40]), sock)
            if r.random() < 0.4:
                kwargs["keepalive"] = self.maybe_hostile(r.choice(
                    [None, 1, 2.5, 7200, 0, 7201, float("nan"), float("inf"), "5", -1]), sock)
            args: List[Any] = [kwargs.pop("group")] if "group" in kwargs and r.random() < 0.3 \
                else []
            sock.configure_session(*args, **kwargs)
            if r.random() < 0.7:
                sock.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
                sock.listen(self.maybe_hostile(r.choice([1, 5, 0, -1, 128]), sock))
                if r.random() < 0.3:
                    sock.configure_session(scope=0)           # WSAEISCONN
                if r.random() < 0.5:
                    sock.send_data(r.choice([b"to all", b"", "text", 5]))
                if r.random() < 0.3:
                    sock.recv_data(r.choice([1, 0, -1, 65536]),
                                   self.maybe_hostile(r.choice([0.001, 0, -1]), sock)
                                   if r.random() < 0.5 else 0.001)
        finally:
            sock.close()
            self.tidy()

    def verdict(self, root: Any) -> Any:
        mp, r = self.mp, self.rng
        return r.choice([mp.CF_ACCEPT, mp.CF_REJECT, mp.CF_DEFER, 0, 1, 2, 3, -1, None, "x",
                         True, 1.0, (mp.CF_ACCEPT,), (mp.CF_ACCEPT, b"callee"),
                         (mp.CF_ACCEPT, b"x" * 16385), (mp.CF_REJECT, b""), (mp.CF_ACCEPT, "s"),
                         (mp.CF_ACCEPT, 5), (mp.CF_ACCEPT, memoryview(b"ab")),
                         (mp.CF_ACCEPT, bytearray(b"ba")), (1, 2, 3), [mp.CF_ACCEPT],
                         self.hostile(root, value=0), HostileVerdict(root.close),
                         HostileVerdict(lambda: None), (HostileVerdict(root.close), b"x"),
                         (mp.CF_ACCEPT, self.hostile(root))])

    def rooted_accept(self) -> None:
        r, mp = self.rng, self.mp
        root = mp.socket(socket.AF_INET, socket.SOCK_STREAM,
                         flags=r.choice([C_ROOT | D_ROOT, C_ROOT | D_LEAF]))
        clients: List[Any] = []
        leaves: List[Any] = []
        try:
            root.configure_session(scope=0, transport=r.choice(["multicast", "unicast"]))
            root.bind(("127.0.0.1", 0))
            if r.random() < 0.95:
                root.listen()
            address = root.getsockname()
            from mpoint import rooted_wire as wire
            tags = []
            for i in range(r.randrange(1, 4) if r.random() < 0.95 else 0):
                tag = b"client %d" % i
                if r.random() < 0.6:
                    c = socket.create_connection(address, timeout=2)
                    clients.append(c)
                    c.sendall(wire.request(wire.JOIN, r.choice([wire.D_ROOT, wire.D_LEAF]),
                                           r.choice([1, 2, 4]), 0, tag))
                    if r.random() < 0.1:
                        c.close()                       # gone before accept
                else:
                    leaf = mp.socket(socket.AF_INET, socket.SOCK_STREAM,
                                     flags=r.choice([C_LEAF | D_ROOT, C_LEAF | D_LEAF]))
                    leaves.append(leaf)
                    leaf.settimeout(0)                    # non-blocking: the engine joins
                    leaf.join_leaf(address, caller_data=tag)
                tags.append(tag)
            root.settimeout(self.maybe_hostile(r.choice([0, 0.01, 0.05]), root)
                            if r.random() < 0.3 else 0.05)
            offered: List[bytes] = []                 # what the condition was shown
            verdict = self.verdict(root)
            raised = ConditionRaised("from the condition")

            def condition(caller: bytes, sqos: object, gqos: object) -> Any:
                offered.append(caller)
                k = r.randrange(6)
                if k == 0:
                    raise raised
                if k == 1:
                    root.close()
                    return mp.CF_ACCEPT
                if k == 2:
                    root.close()
                    raise raised
                if k == 3:
                    return root.accept(lambda *a: mp.CF_ACCEPT)      # re-entered
                return verdict

            def junk(caller: bytes, sqos: object, gqos: object) -> Any:
                offered.append(caller)
                return verdict

            cond: Any = r.choice([condition] * 5 + [junk] * 3 + [None, lambda: mp.CF_ACCEPT, 5])
            try:
                got = root.accept(cond)
            except BaseException as exc:
                if isinstance(exc, ConditionRaised) and exc is not raised:
                    raise AssertionError("accept changed the condition's exception") from exc
                if offered and root.phase == "listening" and \
                        not isinstance(exc, mp.errors.WSAECONNREFUSED):
                    # Never lose a request to a bad condition: it is offered again.
                    root.settimeout(0.5)
                    try:
                        again, _ = root.accept()
                    except OSError as lost:
                        raise AssertionError(f"the request a failed condition saw is gone "
                                             f"({exc!r}): {lost!r}") from exc
                    again.close()
                    if again.caller_data != offered[-1]:
                        raise AssertionError(f"offered {offered[-1]!r} again, got "
                                             f"{again.caller_data!r}") from exc
                if isinstance(exc, ConditionRaised):
                    return
                raise
            leaf, addr = got
            if leaf.caller_data not in tags:
                raise AssertionError(f"accept returned {leaf.caller_data!r}")
            leaf.close()
        finally:
            root.close()
            for c in clients:
                c.close()
            for leaf in leaves:
                leaf.close()
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
               "event_set", "receive_timeouts", "rooted", "qos", "send_batch"]
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
        if name == "rooted":
            fuzzer.stop_rooted()
        top = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1])[:6])
        print(f"  {name:16s} {args.cases} cases in {time.monotonic() - t:6.1f} s: {top}",
              flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
