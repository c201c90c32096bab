"""EventSet: Winsock's WSAEventSelect semantics, one suite for every backend."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import pytest

import mpoint
from mpoint import FD, JL_RECEIVER_ONLY, JL_SENDER_ONLY, EventSet, errors
import support
from support import new_group


def pair(family: int, group: str, port: int) -> Any:
    r = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    s = mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY)
    return r, s


def fired(result: List[Any]) -> dict:  # type: ignore[type-arg]
    return {ne.sock: ne.events for ne in result}


# -- constants and set-up --------------------------------------------------------

@pytest.mark.offline
def test_fd_values_are_winsocks() -> None:
    assert [int(f) for f in FD] == [1 << i for i in range(10)]
    assert mpoint.FD_READ is FD.READ and mpoint.FD_ADDRESS_LIST_CHANGE == 0x200
    assert mpoint.FD_CONNECT == 0x10 and mpoint.FD_CLOSE == 0x20


def test_backends() -> None:
    names = EventSet.backends()
    best = {"linux": "epoll", "darwin": "kqueue", "win32": "wsaevent"}.get(sys.platform)
    if os.environ.get("MPOINT_KQUEUE_SHIM"):      # the kqueue shim build lists it first
        best = "kqueue"
    if best is not None:
        assert names[0] == best and EventSet().backend == best
    assert ("wsapoll" if sys.platform == "win32" else "poll") in names
    with pytest.raises(errors.WSAEINVAL):
        EventSet("nosuchpoller")
    with pytest.raises(TypeError):
        EventSet(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [None, 2.5, 0.0])
def test_register_makes_the_socket_nonblocking_until_unregistered(
        evset: EventSet, timeout: Optional[float]) -> None:
    # Winsock leaves a socket non-blocking after WSAEventSelect(s, NULL, 0);
    # mpoint gives back the mode it had (FIONBIO 0 on Windows), everywhere.
    with mpoint.socket() as s:
        s.settimeout(timeout)
        evset.register(s, FD.READ)
        assert not s.getblocking() and s in evset and len(evset) == 1
        evset.unregister(s)
        assert s.gettimeout() == timeout and s not in evset
        if timeout is None:                 # really blocking again: waits for a datagram
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.2)
            with pytest.raises(socket.timeout):
                s.recv(10)


@pytest.mark.parametrize("events", [0x400, -1, 2**40])
def test_unknown_event_bits(evset: EventSet, events: int) -> None:
    with mpoint.socket() as s:
        with pytest.raises(errors.WSAEINVAL):
            evset.register(s, events)
        assert s not in evset


def test_bad_arguments(evset: EventSet) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        with pytest.raises(TypeError):
            evset.register(plain, FD.READ)  # type: ignore[arg-type]
    with mpoint.socket() as s:
        with pytest.raises(KeyError):
            evset.unregister(s)
        with pytest.raises(KeyError):
            evset.modify(s, FD.READ)
        with pytest.raises(TypeError):
            evset.register(s, "READ")  # type: ignore[arg-type]
    for bad in (-1, float("-inf")):
        with pytest.raises(ValueError):
            evset.wait(bad)
    with pytest.raises(TypeError):
        evset.wait("1")  # type: ignore[arg-type]


# -- FD_READ -------------------------------------------------------------------------

def test_read_fires_once_until_a_receive(evset: EventSet, family: int, group: str,
                                          port: int) -> None:
    r, s = pair(family, group, port)
    with r, s:
        evset.register(r, FD.READ)
        assert evset.wait(0) == []
        for i in range(3):
            s.send(b"%d" % i)
        [ne] = evset.wait(1)
        assert ne.sock is r and ne.events == FD.READ and dict(ne.errors) == {FD.READ: 0}
        # Not re-enabled yet: nothing fires, and wait really blocks (no spin).
        start = time.monotonic()
        assert evset.wait(0.2) == []
        assert time.monotonic() - start >= 0.15
        assert r.recv(10) == b"0"              # re-enables FD_READ; 2 still queued
        assert fired(evset.wait(1)) == {r: FD.READ}
        assert r.recvfrom(10)[0] == b"1"
        assert fired(evset.wait(1)) == {r: FD.READ}
        buf = bytearray(10)
        assert r.recv_into(buf) == 1 and buf[:1] == b"2"
        assert evset.wait(0.05) == []          # drained: nothing more


def test_wakeup_with_nothing_to_read_is_normal(evset: EventSet, family: int, group: str,
                                                port: int) -> None:
    r, s = pair(family, group, port)
    with r, s:
        evset.register(r, FD.READ)
        s.send(b"x")
        assert fired(evset.wait(1)) == {r: FD.READ}
        assert r.recv(10) == b"x"
        with pytest.raises(BlockingIOError):
            r.recv(10)                          # still a receive call: re-enables
        assert evset.wait(0.05) == []
        s.send(b"y")
        assert fired(evset.wait(1)) == {r: FD.READ}


def test_every_receive_call_rearms(evset: EventSet, family: int, group: str, port: int) -> None:
    r, s = pair(family, group, port)
    calls = [lambda: r.recv(10), lambda: r.recvfrom(10), lambda: r.recv_into(bytearray(10)),
             lambda: r.recvfrom_into(bytearray(10))]
    if hasattr(socket.socket, "recvmsg"):                 # not on Windows
        calls += [lambda: r.recvmsg(10), lambda: r.recvmsg_into([bytearray(10)])]
    with r, s:
        evset.register(r, FD.READ)
        for call in calls:
            s.send(b"a")
            s.send(b"b")
            assert fired(evset.wait(1)) == {r: FD.READ}
            assert evset.wait(0) == []
            call()
            assert fired(evset.wait(1)) == {r: FD.READ}, call
            call()


# -- FD_WRITE ------------------------------------------------------------------------

def test_write_fires_once_after_registration(evset: EventSet) -> None:
    with mpoint.socket() as s:
        evset.register(s, FD.WRITE | FD.READ)
        assert fired(evset.wait(1)) == {s: FD.WRITE}
        assert evset.wait(0.05) == []
        evset.modify(s, FD.WRITE)               # a new WSAEventSelect records it anew
        assert fired(evset.wait(1)) == {s: FD.WRITE}
        assert evset.wait(0.05) == []
        evset.modify(s, FD.WRITE)               # the same events, right after firing:
        assert fired(evset.wait(1)) == {s: FD.WRITE}   # recorded anew all the same
        evset.modify(s, FD.WRITE)
        assert fired(evset.wait(1)) == {s: FD.WRITE}


def test_write_rearms_after_a_send_would_block(evset: EventSet, group: str, port: int,
                                               link: Dict[str, int]) -> None:
    """A real WSAEWOULDBLOCK: a slow queue (tbf) on mpa holds the sender's
    buffer space until the link drains it."""
    tc = shutil.which("tc")
    if tc is None:
        pytest.skip("needs tc (iproute2) to slow the link down")
    subprocess.run([tc, "qdisc", "replace", "dev", "mpa", "root", "tbf", "rate", "1mbit",
                    "burst", "1600", "latency", "5s"], check=True)
    try:
        with mpoint.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            s.join_leaf(("239.5.0.1", port), flags=JL_SENDER_ONLY, interface="mpa")
            evset.register(s, FD.WRITE)
            assert fired(evset.wait(1)) == {s: FD.WRITE}
            s.send(b"fine")                      # a send that succeeds re-arms nothing
            assert evset.wait(0.05) == []
            with pytest.raises(BlockingIOError):
                for _ in range(1000):
                    s.send(b"x" * 1400)
            assert fired(evset.wait(5)) == {s: FD.WRITE}     # space freed
            assert evset.wait(0.05) == []
    finally:
        subprocess.run([tc, "qdisc", "del", "dev", "mpa", "root"], check=False)


# -- FD_CONNECT: non-blocking joins ----------------------------------------------------

def test_nonblocking_join_completes_as_fd_connect(evset: EventSet, family: int, group: str,
                                                  port: int) -> None:
    with mpoint.socket(family) as r, mpoint.socket(family) as s:
        evset.register(r, FD.CONNECT | FD.READ)
        assert r.join_leaf((group, port), flags=JL_RECEIVER_ONLY) is r
        with pytest.raises(errors.WSAEALREADY):         # one join outstanding at a time
            r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        [ne] = evset.wait(1)
        assert ne.sock is r and ne.events == FD.CONNECT and dict(ne.errors) == {FD.CONNECT: 0}
        with pytest.raises(errors.WSAEISCONN):
            r.join_leaf((group, port))
        s.join_leaf((group, port), flags=JL_SENDER_ONLY)
        s.send(b"joined")
        assert fired(evset.wait(1)) == {r: FD.READ}
        assert r.recv(10) == b"joined"


def test_failed_nonblocking_join_reports_and_allows_retry(evset: EventSet, port: int) -> None:
    limit = support.needs_proc("/proc/sys/net/ipv4/igmp_max_memberships", linux_only=True)
    with open(limit) as f:
        saved = f.read()
    group = new_group(socket.AF_INET)
    with mpoint.socket() as r:
        evset.register(r, FD.CONNECT)
        try:
            with open(limit, "w") as f:
                f.write("0")                    # this namespace only
            r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        finally:
            with open(limit, "w") as f:
                f.write(saved)
        [ne] = evset.wait(1)
        assert ne.events == FD.CONNECT
        assert ne.errors[FD.CONNECT] == errors.WSAENOBUFS.wsa_errno
        assert r.joined is None
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)    # a retry is allowed
        [ne] = evset.wait(1)
        assert ne.errors[FD.CONNECT] == 0 and r.joined == (group, port)


def test_bad_arguments_fail_at_once_even_when_nonblocking(evset: EventSet) -> None:
    with mpoint.socket() as r:
        evset.register(r, FD.CONNECT)
        with pytest.raises(errors.WSAEADDRNOTAVAIL):
            r.join_leaf(("192.0.2.1", 5000))
        assert evset.wait(0.05) == []


def test_fd_connect_not_registered_is_not_reported(evset: EventSet, group: str, port: int,
                                                   family: int) -> None:
    with mpoint.socket(family) as r:
        evset.register(r, FD.READ)
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        assert evset.wait(0.05) == []
        assert r.joined == (group, port)


# -- FD_CLOSE --------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32",
                    reason="Winsock posts FD_CLOSE only for connection-oriented sockets")
def test_close_fires_once_when_the_read_side_shuts(evset: EventSet, group: str, port: int,
                                                   family: int) -> None:
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), flags=JL_SENDER_ONLY)     # connected: shutdown applies
        evset.register(s, FD.CLOSE)
        assert evset.wait(0.05) == []
        s.shutdown(socket.SHUT_RD)
        assert fired(evset.wait(1)) == {s: FD.CLOSE}
        assert evset.wait(0.05) == []


def test_a_close_only_watch_does_not_wake_for_waiting_data(evset: EventSet, group: str,
                                                           port: int, family: int) -> None:
    """Once FD_READ fired and nothing has read, only FD_CLOSE may fire: the
    datagram still queued must not wake the poller (a level-triggered
    readability filter would return at once, and wait would spin until its
    timeout)."""
    r, s = pair(family, group, port)
    with r, s:
        evset.register(r, FD.READ | FD.CLOSE)
        s.send(b"waits")
        assert fired(evset.wait(1)) == {r: FD.READ}
        cpu = time.thread_time()
        assert evset.wait(0.5) == []
        used = time.thread_time() - cpu
        assert used < 0.05, f"wait(0.5) on a close-only watch used {used:.3f} s of CPU"
        assert r.recv(64) == b"waits"           # a receive call re-enables FD_READ
        s.send(b"next")
        assert fired(evset.wait(1)) == {r: FD.READ}


@pytest.mark.skipif(sys.platform == "win32",
                    reason="Winsock reports a port-unreachable as WSAECONNRESET from the next "
                           "receive (SIO_UDP_CONNRESET), the Windows half of issue 15")
def test_a_socket_error_is_fd_reads_error_code(evset: EventSet) -> None:
    """A datagram to a closed port of this host comes back as ICMP port
    unreachable; a connected socket holds ECONNREFUSED (kqueue: no flag,
    nothing to read), and FD_READ reports it as its error code."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()
    with mpoint.socket() as s:
        s.connect(dead)
        evset.register(s, FD.READ)
        s.send(b"anyone?")
        got = evset.wait(2)
        assert fired(got) == {s: FD.READ}
        assert got[0].errors[FD.READ] == errors.WSAECONNREFUSED.wsa_errno


# -- many sockets, fairness, threads, signals -------------------------------------------

def test_no_starvation(evset: EventSet, family: int, port: int) -> None:
    # A port each: the point is fairness, whatever the stack's cross-talk.
    socks = [pair(family, new_group(family), port + 500 * i) for i in range(40)]
    try:
        for r, _ in socks:
            evset.register(r, FD.READ)
        busy_r, busy_s = socks[0]
        for _ in range(200):
            busy_s.send(b"busy")
        for _, s in socks[1:]:
            s.send(b"quiet")
        seen = fired(evset.wait(1))
        assert set(seen) == {r for r, _ in socks}       # every ready socket, once
        for r, _ in socks:
            r.recv(10)
        for _ in range(3):
            busy_s.send(b"more")
        assert set(fired(evset.wait(1))) == {busy_r}
    finally:
        for r, s in socks:
            r.close()
            s.close()


def test_wait_releases_the_gil(evset: EventSet) -> None:
    count = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    with mpoint.socket() as s:
        evset.register(s, FD.READ)
        t = threading.Thread(target=spin)
        t.start()
        try:
            time.sleep(0.05)
            before = count
            assert evset.wait(0.3) == []
            progressed = count - before
        finally:
            stop.set()
            t.join()
    assert progressed > 10000


def test_one_waiter_at_a_time(evset: EventSet) -> None:
    errors_seen: List[BaseException] = []
    with mpoint.socket() as s:
        evset.register(s, FD.READ)
        t = threading.Thread(target=lambda: evset.wait(0.5))
        t.start()
        time.sleep(0.1)
        try:
            evset.wait(0)
        except RuntimeError as exc:
            errors_seen.append(exc)
        t.join()
    assert errors_seen


def test_register_while_another_thread_waits(evset: EventSet, family: int, group: str,
                                             port: int) -> None:
    r, s = pair(family, group, port)
    result: List[Any] = []
    with r, s:
        t = threading.Thread(target=lambda: result.extend(evset.wait(2)))
        t.start()
        time.sleep(0.1)
        evset.register(r, FD.READ)
        s.send(b"x")
        t.join()
    assert [ne.sock for ne in result] in ([r], [])    # epoll sees it at once, poll next wait


class Interrupt(Exception):
    pass


NO_ALARM = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="no SIGALRM here (Windows)")


@NO_ALARM
def test_signal_handler_exception_interrupts_wait(evset: EventSet) -> None:
    def handler(signum: int, frame: Any) -> None:
        raise Interrupt()

    old = signal.signal(signal.SIGALRM, handler)
    try:
        with mpoint.socket() as s:
            evset.register(s, FD.READ)
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            start = time.monotonic()
            with pytest.raises(Interrupt):
                evset.wait(None)
            assert time.monotonic() - start < 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@NO_ALARM
def test_signal_without_exception_keeps_waiting(evset: EventSet) -> None:
    hits = []
    old = signal.signal(signal.SIGALRM, lambda *a: hits.append(1))
    try:
        with mpoint.socket() as s:
            evset.register(s, FD.READ)
            signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
            start = time.monotonic()
            assert evset.wait(0.4) == []
            elapsed = time.monotonic() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(hits) >= 3 and 0.35 <= elapsed < 2      # PEP 475: retried with the rest


# -- closing while registered -------------------------------------------------------------

def test_closing_a_registered_socket(evset: EventSet, family: int, group: str,
                                     port: int) -> None:
    r, s = pair(family, group, port)
    with s:
        evset.register(r, FD.READ)
        s.send(b"pending")
        fd = r.fileno()
        r.close()                                   # leaves the set first
        assert r not in evset and len(evset) == 0
        assert evset.wait(0.05) == []
        # A new socket on the same descriptor number is a new registration.
        r2 = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        with r2:
            assert r2.fileno() == fd
            evset.register(r2, FD.READ)
            assert evset.wait(0.05) == []           # no stale event from the old one
            s.send(b"new")
            assert fired(evset.wait(1)) == {r2: FD.READ}


def test_a_second_set_is_refused(evset: EventSet, backend: str) -> None:
    # Winsock ties a socket to one event object: a second WSAEventSelect
    # would silently cancel the first set's.  mpoint refuses it, everywhere.
    with mpoint.socket() as s, EventSet(backend) as other:
        evset.register(s, FD.WRITE)
        with pytest.raises(errors.WSAEINVAL, match="another EventSet"):
            other.register(s, FD.WRITE)
        assert s in evset and s not in other and len(other) == 0
        assert other.wait(0.05) == []
        assert fired(evset.wait(1)) == {s: FD.WRITE}     # the first still works
        evset.unregister(s)
        other.register(s, FD.WRITE)                      # free again: allowed
        assert fired(other.wait(1)) == {s: FD.WRITE}


def test_a_set_and_the_aio_readiness_thread_exclude_each_other(evset: EventSet) -> None:
    # mpoint.aio's readiness thread (Windows' proactor loop) registers in a
    # set of its own: a socket the user registered is refused there.
    from mpoint import aio

    class Proactorish(asyncio.SelectorEventLoop):
        def add_reader(self, *args: Any) -> None:       # as the proactor loop
            raise NotImplementedError

    loop = Proactorish()
    try:
        with mpoint.socket() as s:
            evset.register(s, FD.READ)
            with pytest.raises(errors.WSAEINVAL):
                aio._Readiness(loop, s, lambda: None, lambda: None)
            assert s in evset
    finally:
        loop.close()


def test_ten_thousand_sockets(evset: EventSet, port: int) -> None:
    group = new_group(socket.AF_INET)
    idle: List[mpoint.MultipointSocket] = []
    with support.file_limit(10100):
        try:
            for _ in range(10000):
                sock = mpoint.socket()
                idle.append(sock)
                evset.register(sock, FD.READ)
            r, s = pair(socket.AF_INET, group, port)
            with r, s:
                evset.register(r, FD.READ)
                assert len(evset) == 10001
                for i in range(3):
                    s.send(b"x")
                    assert fired(evset.wait(1)) == {r: FD.READ}
                    r.recv(10)
                assert evset.wait(0) == []
        finally:
            for sock in idle:
                sock.close()
