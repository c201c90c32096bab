"""Rooted sessions (issue 10): WSAJoinLeaf's c_root / c_leaf control scheme
over mpoint's protocol (docs/rooted-protocol.md), and the d_root / d_leaf
data planes over multicast or the unicast fallback."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import mpoint
from mpoint import (CF_ACCEPT, CF_DEFER, CF_REJECT, FD, JL_BOTH, JL_RECEIVER_ONLY,
                    JL_SENDER_ONLY, EventSet, Plane, RecvBatch, RootedSocket, errors)
from mpoint import rooted
from mpoint.qos import QOS, FlowSpec, ServiceType
from support import LOOPBACK

C_ROOT, C_LEAF = mpoint.WSA_FLAG_MULTIPOINT_C_ROOT, mpoint.WSA_FLAG_MULTIPOINT_C_LEAF
D_ROOT, D_LEAF = mpoint.WSA_FLAG_MULTIPOINT_D_ROOT, mpoint.WSA_FLAG_MULTIPOINT_D_LEAF
STREAM = socket.SOCK_STREAM
SECRET = b"open sesame"


def shared_secret(caller: bytes, sqos: object, gqos: object) -> Any:
    """The admission the issue asks for: the right secret, and a welcome."""
    return (CF_ACCEPT, b"welcome") if caller == SECRET else CF_REJECT


class Root:
    """A listening root and an acceptor thread that admits ``count`` leaves."""

    def __init__(self, family: int, plane: int, scope: int, group: Optional[str],
                 port: Optional[int], transport: str = "multicast") -> None:
        self.sock = mpoint.socket(family, STREAM, flags=C_ROOT | plane)
        self.sock.configure_session(group, port, transport=transport, scope=scope)
        self.sock.bind((LOOPBACK[family], 0))
        self.sock.listen()
        self.address = self.sock.getsockname()
        self.accepted: List[RootedSocket] = []
        self.errors: List[BaseException] = []
        self.thread: Optional[threading.Thread] = None

    def admit(self, count: int, condition: Optional[Callable[..., Any]] = None) -> "Root":
        def run() -> None:
            for _ in range(count):
                try:
                    sock, _ = self.sock.accept(condition)
                    self.accepted.append(sock)
                except OSError as exc:
                    self.errors.append(exc)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def wait(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the root's acceptor never finished"


@pytest.fixture
def scope(network: Any) -> int:
    return 0 if network.loopback_only else 1


@pytest.fixture
def make_root(family: int, group: str, port: int, scope: int) -> Iterator[Callable[..., Root]]:
    made: List[Root] = []

    def make(plane: int = D_ROOT, transport: str = "multicast") -> Root:
        r = Root(family, plane, scope, group, port, transport)
        made.append(r)
        return r
    yield make
    for r in made:
        r.sock.close()
    _seen.clear()


def leaf_socket(family: int, plane: int = D_ROOT) -> RootedSocket:
    sock = mpoint.socket(family, STREAM, flags=C_LEAF | plane)
    assert isinstance(sock, RootedSocket)
    return sock


def shim_hides_the_reset(request: pytest.FixtureRequest, evset: EventSet) -> None:
    """The kqueue shim (tests/kqueue_shim/README.md) leaves EV_EOF's fflags 0,
    where XNU puts the socket's error: a reset's FD_CLOSE code cannot show
    through it, so these tests are expected to fail there (strictly)."""
    if evset.backend == "kqueue" and os.environ.get("MPOINT_KQUEUE_SHIM"):
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="kqueue shim: EV_EOF's fflags is always 0"))


_seen: Dict[int, List[Any]] = {}


def wait_for(evset: EventSet, sock: Any, event: FD, timeout: float = 5.0) -> int:
    """The code of ``event`` on ``sock`` from the set, waiting up to timeout;
    what fired for other sockets meanwhile is kept for their turn."""
    backlog = _seen.setdefault(id(evset), [])
    deadline = time.monotonic() + timeout
    while True:
        for ne in backlog:
            if ne.sock is sock and ne.events & event:
                backlog.remove(ne)
                return int(ne.errors[event])
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {event!r} for {sock!r} within {timeout} s")
        backlog.extend(evset.wait(0.2))


# -- the sockets ---------------------------------------------------------------------

@pytest.mark.offline
@pytest.mark.parametrize("flags", [C_ROOT | D_ROOT, C_ROOT | D_LEAF, C_LEAF | D_ROOT,
                                   C_LEAF | D_LEAF])
def test_every_plane_combination_makes_a_rooted_socket(flags: int) -> None:
    with mpoint.socket(socket.AF_INET, STREAM, flags=flags) as sock:
        assert isinstance(sock, RootedSocket) and sock.type == STREAM
        assert sock.control_plane == (Plane.ROOT if flags & C_ROOT else Plane.LEAF)
        assert sock.data_plane == (Plane.ROOT if flags & D_ROOT else Plane.LEAF)
        assert sock.phase == "idle" and sock.session is None and sock.join_error is None


@pytest.mark.offline
@pytest.mark.parametrize("flags", [0, C_ROOT, C_ROOT | C_LEAF | D_ROOT, C_LEAF | D_ROOT | D_LEAF,
                                   C_LEAF | D_LEAF | 0x100])
def test_bad_rooted_flags_are_wsaeinval(flags: int) -> None:
    with pytest.raises(errors.WSAEINVAL, match="exactly one"):
        mpoint.socket(socket.AF_INET, STREAM, flags=flags)


@pytest.mark.offline
def test_a_rooted_socket_is_ip() -> None:
    with pytest.raises(errors.WSAEAFNOSUPPORT):
        mpoint.socket(getattr(socket, "AF_UNIX", 1), STREAM, flags=C_LEAF | D_LEAF)
    with pytest.raises(errors.WSAEPROTONOSUPPORT):
        mpoint.socket(socket.AF_INET, STREAM, socket.IPPROTO_UDP, flags=C_LEAF | D_LEAF)


@pytest.mark.offline
def test_datagram_sockets_stay_non_rooted_and_say_where_rooted_is() -> None:
    with pytest.raises(errors.WSAEOPNOTSUPP, match="SOCK_STREAM"):
        mpoint.socket(flags=C_ROOT | D_ROOT)


@pytest.mark.offline
def test_join_arguments_are_checked_before_anything_happens() -> None:
    with leaf_socket(socket.AF_INET) as leaf:
        with pytest.raises(errors.WSAEFAULT, match="caller_data"):
            leaf.join_leaf(("127.0.0.1", 9), caller_data=b"x" * (rooted.wire.MAX_USER_DATA + 1))
        with pytest.raises(errors.WSAEINVAL, match="numeric"):
            leaf.join_leaf(("localhost", 9))
        with pytest.raises(errors.WSAEINVAL, match="is a group"):
            leaf.join_leaf(("239.1.2.3", 9))
        with pytest.raises(errors.WSAEFAULT, match="out of range"):
            leaf.join_leaf(("127.0.0.1", 70000))
        with pytest.raises(errors.WSAEFAULT):                   # too small for a QOS
            leaf.join_leaf(("127.0.0.1", 9), sqos=b"")
        with pytest.raises(errors.WSAEOPNOTSUPP, match="latency"):
            leaf.join_leaf(("127.0.0.1", 9), sqos=QOS(sending=FlowSpec(
                service_type=ServiceType.GUARANTEED, latency=10)))
        with pytest.raises(TypeError, match="bytearray"):
            leaf.join_leaf(("127.0.0.1", 9), callee_data=b"")    # type: ignore[arg-type]
        with pytest.raises(errors.WSAEINVAL):
            leaf.join_leaf(("127.0.0.1", 9), flags=3)
        assert leaf.phase == "idle"


# -- leaf-initiated joins --------------------------------------------------------------

def test_leaf_joins_with_caller_data_and_gets_callee_data(make_root: Callable[..., Root],
                                                          family: int) -> None:
    root = make_root().admit(1, shared_secret)
    callee = bytearray(32)
    with leaf_socket(family) as leaf:
        assert leaf.join_leaf(root.address, caller_data=SECRET, callee_data=callee,
                              flags=JL_RECEIVER_ONLY) is leaf
        root.wait()
        assert bytes(callee) == b"welcome"                   # len set to what arrived
        assert leaf.phase == "joined" and leaf.join_error == 0
        assert leaf.session == root.sock.session
        [peer] = root.accepted
        assert peer.caller_data == SECRET and peer.phase == "joined"
        assert root.sock.leaves == [peer]
        assert peer.getpeername() == leaf.getsockname()


@pytest.mark.parametrize("transport", ["multicast", "unicast"])
def test_a_leafs_sqos_shapes_and_marks_its_data_socket(make_root: Callable[..., Root],
                                                       family: int, transport: str) -> None:
    """lpSQOS on a c_leaf's join: carried in the JOIN, applied to the data
    socket that carries what the leaf sends (docs/qos.md)."""
    root = make_root(transport=transport).admit(1)
    marks = bool(mpoint._core.qos_supported() & mpoint._core.QOS_DSCP)
    qos = QOS(sending=FlowSpec(service_type=ServiceType.CONTROLLEDLOAD if marks
                               else ServiceType.BESTEFFORT, token_rate=100_000,
                               token_bucket_size=4_000, max_sdu_size=2_000))
    with leaf_socket(family) as leaf:
        leaf.join_leaf(root.address, sqos=qos, flags=JL_BOTH)
        root.wait()
        assert leaf.get_qos() == qos
        data = leaf.data
        assert data is not None and data.get_qos() == qos
        level, opt = ((socket.IPPROTO_IP, socket.IP_TOS) if family == socket.AF_INET
                      else (socket.IPPROTO_IPV6, getattr(socket, "IPV6_TCLASS", 67)))
        if marks and sys.platform != "win32":
            assert data.getsockopt(level, opt) >> 2 == 24
        with pytest.raises(errors.WSAEMSGSIZE):
            leaf.send_data(b"x" * 2_001)
        leaf.set_qos(QOS())
        assert leaf.get_qos() == QOS()


def test_the_roots_condition_sees_the_leafs_qos(make_root: Callable[..., Root],
                                                family: int) -> None:
    """WSAAccept's lpSQOS: the condition gets the leaf's QOS (and None when
    it sent none), and may refuse a flowspec the root will not carry."""
    seen: List[Any] = []

    def condition(caller: bytes, sqos: object, gqos: object) -> Any:
        seen.append((sqos, gqos))
        too_fast = isinstance(sqos, QOS) and sqos.sending is not None and \
            sqos.sending.token_rate > 1_000_000
        return CF_REJECT if too_fast else CF_ACCEPT
    root = make_root().admit(3, condition)
    modest = QOS(sending=FlowSpec(token_rate=100_000, token_bucket_size=10_000))
    greedy = QOS(sending=FlowSpec(token_rate=10_000_000, token_bucket_size=100_000))
    with leaf_socket(family) as a, leaf_socket(family) as b, leaf_socket(family) as c:
        a.join_leaf(root.address, sqos=modest)
        with pytest.raises(errors.WSAECONNREFUSED):
            b.join_leaf(root.address, sqos=greedy)
        c.join_leaf(root.address)
        root.wait()
    assert seen == [(modest, None), (greedy, None), (None, None)]


def test_the_wrong_secret_is_refused_and_the_leaf_may_retry(make_root: Callable[..., Root],
                                                            family: int) -> None:
    root = make_root().admit(2, shared_secret)
    with leaf_socket(family) as leaf:
        with pytest.raises(errors.WSAECONNREFUSED, match="refused"):
            leaf.join_leaf(root.address, caller_data=b"guess")
        assert leaf.phase == "idle" and leaf.join_error == errors.WSAECONNREFUSED.wsa_errno
        leaf.join_leaf(root.address, caller_data=SECRET)     # the same socket, again
        root.wait()
        assert leaf.phase == "joined"
    assert [type(e) for e in root.errors] == [errors.WSAECONNREFUSED]
    assert len(root.accepted) == 1


def test_a_too_small_callee_buffer_is_wsaefault_not_a_truncation(
        make_root: Callable[..., Root], family: int) -> None:
    root = make_root().admit(1, lambda c, s, g: (CF_ACCEPT, b"0123456789"))
    callee = bytearray(4)
    with leaf_socket(family) as leaf:
        with pytest.raises(errors.WSAEFAULT, match="holds 4 bytes"):
            leaf.join_leaf(root.address, callee_data=callee)
        assert callee == bytearray(4) and leaf.phase == "idle"
        root.wait()
        [peer] = root.accepted
        peer.settimeout(5)
        with pytest.raises(OSError):           # the leaf reset the connection
            if peer.recv(1) == b"":
                raise ConnectionResetError


def test_no_callee_data_sets_the_length_to_zero(make_root: Callable[..., Root],
                                                family: int) -> None:
    root = make_root().admit(1)
    callee = bytearray(b"stale")
    with leaf_socket(family) as leaf:
        leaf.join_leaf(root.address, callee_data=callee)
        root.wait()
        assert callee == bytearray()


def test_a_member_joins_once(make_root: Callable[..., Root], family: int) -> None:
    root = make_root().admit(1)
    with leaf_socket(family) as leaf:
        leaf.join_leaf(root.address)
        root.wait()
        with pytest.raises(errors.WSAEISCONN):
            leaf.join_leaf(root.address)


def test_no_answer_is_wsaetimedout_and_a_retry_is_admitted(make_root: Callable[..., Root],
                                                          family: int) -> None:
    root = make_root()
    with leaf_socket(family) as leaf:
        leaf.settimeout(0.5)
        began = time.monotonic()
        with pytest.raises(errors.WSAETIMEDOUT):
            leaf.join_leaf(root.address)
        assert 0.4 < time.monotonic() - began < 3.0
        leaf.settimeout(10)
        root.admit(1)          # the timed-out request is skipped: its leaf has gone
        leaf.join_leaf(root.address)
        root.wait()
        assert leaf.phase == "joined" and len(root.accepted) == 1 and not root.errors


def test_a_deferred_request_is_offered_again(make_root: Callable[..., Root],
                                             family: int) -> None:
    root = make_root()
    seen: List[bytes] = []
    with leaf_socket(family) as leaf:
        t = threading.Thread(target=lambda: leaf.join_leaf(root.address, caller_data=b"me"))
        t.start()
        root.sock.settimeout(5)

        def defer(caller: bytes, sqos: object, gqos: object) -> Any:
            seen.append(caller)
            return CF_DEFER
        with pytest.raises(errors.WSATRY_AGAIN):
            root.sock.accept(defer)
        peer, address = root.sock.accept(lambda c, s, g: seen.append(c) or CF_ACCEPT)
        t.join(5)
        assert seen == [b"me", b"me"] and leaf.phase == "joined"
        assert address[:2] == leaf.getsockname()[:2]
        peer.close()


def test_a_condition_that_raises_loses_no_request(make_root: Callable[..., Root],
                                                  family: int) -> None:
    root = make_root()
    root.sock.settimeout(5)
    with leaf_socket(family) as leaf:
        t = threading.Thread(target=lambda: leaf.join_leaf(root.address))
        t.start()

        def broken(*args: object) -> Any:
            raise KeyError("oops")
        with pytest.raises(KeyError):
            root.sock.accept(broken)
        with pytest.raises(ValueError):
            root.sock.accept(lambda *a: 7)
        root.sock.accept()[0].close()
        t.join(5)
        assert leaf.phase == "joined"


def test_a_condition_that_closes_the_root_admits_nobody(make_root: Callable[..., Root],
                                                        family: int) -> None:
    root = make_root()
    root.sock.settimeout(5)
    with leaf_socket(family) as leaf:
        leaf.settimeout(5)
        failed: List[BaseException] = []

        def join() -> None:
            try:
                leaf.join_leaf(root.address)
            except OSError as exc:
                failed.append(exc)
        t = threading.Thread(target=join)
        t.start()

        def closing(*args: object) -> Any:
            root.sock.close()
            return CF_ACCEPT
        with pytest.raises(errors.WSAENOTSOCK, match="closed during accept"):
            root.sock.accept(closing)
        t.join(10)
        assert leaf.phase == "idle" and isinstance(failed[0], ConnectionError)
        assert root.sock.leaves == []


def test_nobody_listening_is_wsaeconnrefused(family: int, port: int) -> None:
    with leaf_socket(family) as leaf:
        with pytest.raises(errors.WSAECONNREFUSED):
            leaf.join_leaf((LOOPBACK[family], port))
        assert leaf.phase == "idle"


def test_no_route_is_wsaenetunreach(isolation: Any) -> None:
    with leaf_socket(socket.AF_INET) as leaf:
        with pytest.raises(errors.WSAENETUNREACH):
            leaf.join_leaf(("203.0.113.9", 5000))       # the namespace has only lo


def test_a_data_plane_mismatch_is_refused(make_root: Callable[..., Root], family: int) -> None:
    root = make_root(D_ROOT)
    root.sock.settimeout(0.5)
    with leaf_socket(family, D_LEAF) as leaf:
        t = threading.Thread(target=lambda: pytest.raises(errors.WSAETIMEDOUT,
                                                          root.sock.accept))
        t.start()
        with pytest.raises(errors.WSAEINVAL, match="data plane"):
            leaf.join_leaf(root.address)
        t.join(5)


def test_a_non_blocking_accept_with_nothing_waiting(make_root: Callable[..., Root]) -> None:
    root = make_root()
    root.sock.setblocking(False)
    with pytest.raises(errors.WSAEWOULDBLOCK):
        root.sock.accept()


# -- non-blocking joins and events ----------------------------------------------------------

def test_a_non_blocking_join_completes_as_fd_connect(make_root: Callable[..., Root],
                                                     family: int, evset: EventSet) -> None:
    root = make_root()
    evset.register(root.sock, FD.ACCEPT)
    with leaf_socket(family) as leaf:
        evset.register(leaf, FD.CONNECT | FD.READ | FD.CLOSE)
        assert evset.wait(0.2) == []              # no FD_CLOSE for a socket not yet joining
        callee = bytearray(16)
        assert leaf.join_leaf(root.address, callee_data=callee) is leaf
        with pytest.raises(errors.WSAEALREADY):
            leaf.join_leaf(root.address)
        assert wait_for(evset, root.sock, FD.ACCEPT) == 0
        peer, _ = root.sock.accept(lambda c, s, g: (CF_ACCEPT, b"hi"))
        assert peer in evset and evset.interest(peer) == FD.ACCEPT   # Winsock: inherited
        assert wait_for(evset, leaf, FD.CONNECT) == 0
        assert leaf.phase == "joined" and callee == bytearray(b"hi")
        evset.modify(peer, FD.CLOSE)
        leaf.close()                                 # in order: code 0
        assert wait_for(evset, peer, FD.CLOSE) == 0
        peer.close()


def test_a_failed_non_blocking_join_reports_its_code_and_may_retry(
        make_root: Callable[..., Root], family: int, evset: EventSet, port: int) -> None:
    with leaf_socket(family) as leaf:
        evset.register(leaf, FD.CONNECT | FD.CLOSE)
        leaf.join_leaf((LOOPBACK[family], port))      # nobody there
        assert wait_for(evset, leaf, FD.CONNECT) == errors.WSAECONNREFUSED.wsa_errno
        assert leaf.phase == "idle" and leaf in evset
        assert all(not ne.events & FD.CLOSE for ne in evset.wait(0.2))   # renewed, quiet
        root = make_root().admit(1)
        leaf.join_leaf(root.address)
        assert wait_for(evset, leaf, FD.CONNECT) == 0
        root.wait()
        assert leaf.phase == "joined"


def test_fd_connect_before_registration_is_reported_by_it(make_root: Callable[..., Root],
                                                          family: int, evset: EventSet) -> None:
    root = make_root().admit(1)
    with leaf_socket(family) as leaf:
        leaf.setblocking(False)
        leaf.join_leaf(root.address)
        root.wait()
        deadline = time.monotonic() + 5
        while leaf.phase == "joining" and time.monotonic() < deadline:
            time.sleep(0.01)
        evset.register(leaf, FD.CONNECT)
        assert wait_for(evset, leaf, FD.CONNECT) == 0


# -- leaving, dropping and crashing --------------------------------------------------------

def test_the_root_dropping_a_leaf_gives_it_fd_close(make_root: Callable[..., Root],
                                                    family: int, evset: EventSet) -> None:
    root = make_root().admit(1)
    with leaf_socket(family) as leaf:
        leaf.join_leaf(root.address)
        root.wait()
        evset.register(leaf, FD.CLOSE)
        root.accepted[0].close()
        assert wait_for(evset, leaf, FD.CLOSE) == 0
        assert root.sock.leaves == []


@pytest.mark.real_windows("Wine closes in order despite SO_LINGER {1, 0} (Winsock's hard close)")
def test_the_root_going_away_resets_the_connection(make_root: Callable[..., Root],
                                                   family: int) -> None:
    root = make_root().admit(1)
    with leaf_socket(family) as leaf:
        leaf.join_leaf(root.address)
        root.wait()
        root.sock.close()
        leaf.settimeout(5)
        with pytest.raises(ConnectionResetError):
            leaf.recv(16)


@pytest.mark.real_windows("Wine closes in order despite SO_LINGER {1, 0} (Winsock's hard close)")
def test_the_root_going_away_resets_every_leaf(make_root: Callable[..., Root], family: int,
                                               evset: EventSet,
                                               request: pytest.FixtureRequest) -> None:
    shim_hides_the_reset(request, evset)
    root = make_root().admit(3)
    leaves = [leaf_socket(family) for _ in range(3)]
    for leaf in leaves:
        leaf.join_leaf(root.address)
    root.wait()
    for leaf in leaves:
        evset.register(leaf, FD.CLOSE)
    root.sock.close()
    codes = {wait_for(evset, leaf, FD.CLOSE) for leaf in leaves}
    assert codes <= {errors.WSAECONNRESET.wsa_errno, errors.WSAECONNABORTED.wsa_errno}
    assert all(p.fileno() == -1 for p in root.accepted)
    for leaf in leaves:
        leaf.close()


CHILD_LEAF = r"""
import socket, sys, time, mpoint
leaf = mpoint.socket(int(sys.argv[1]), socket.SOCK_STREAM, flags=0x4 | 0x8)
leaf.join_leaf((sys.argv[2], int(sys.argv[3])))
print("joined", flush=True)
time.sleep(60)
"""

CHILD_ROOT = r"""
import socket, sys, time, mpoint
root = mpoint.socket(int(sys.argv[1]), socket.SOCK_STREAM, flags=0x2 | 0x8)
root.configure_session(scope=0)
root.bind((sys.argv[2], 0)); root.listen()
print(root.getsockname()[1], flush=True)
root.accept()
print("admitted", flush=True)
time.sleep(60)
"""


def _child(code: str, *args: object) -> "subprocess.Popen[str]":
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_leaf_is_fd_close_with_wsaeconnreset(make_root: Callable[..., Root],
                                                      family: int, evset: EventSet,
                                                      request: pytest.FixtureRequest) -> None:
    shim_hides_the_reset(request, evset)
    root = make_root().admit(1)
    child = _child(CHILD_LEAF, family, root.address[0], root.address[1])
    try:
        assert child.stdout is not None and child.stdout.readline() == "joined\n"
        root.wait()
        [peer] = root.accepted
        evset.register(peer, FD.CLOSE)
        child.send_signal(signal.SIGKILL)
        began = time.monotonic()
        assert wait_for(evset, peer, FD.CLOSE) == errors.WSAECONNRESET.wsa_errno
        assert time.monotonic() - began < rooted.KEEPALIVE * 2.5
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_root_is_fd_close_with_wsaeconnreset(family: int, evset: EventSet,
                                                      request: pytest.FixtureRequest) -> None:
    shim_hides_the_reset(request, evset)
    child = _child(CHILD_ROOT, family, LOOPBACK[family])
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with leaf_socket(family) as leaf:
            leaf.join_leaf((LOOPBACK[family], port))
            assert child.stdout.readline() == "admitted\n"
            evset.register(leaf, FD.CLOSE)
            child.send_signal(signal.SIGKILL)
            assert wait_for(evset, leaf, FD.CLOSE) == errors.WSAECONNRESET.wsa_errno
    finally:
        child.kill()
        child.wait()


def test_closing_ends_a_blocked_accept_and_a_blocked_join(make_root: Callable[..., Root],
                                                          family: int) -> None:
    root = make_root()
    caught: List[BaseException] = []

    def accept() -> None:
        try:
            root.sock.accept()
        except OSError as exc:
            caught.append(exc)
    t = threading.Thread(target=accept)
    t.start()
    time.sleep(0.2)
    root.sock.close()
    t.join(1.0)
    assert not t.is_alive() and isinstance(caught[0], errors.WSAENOTSOCK)

    other = make_root()                    # never answers
    leaf = leaf_socket(family)

    def join() -> None:
        try:
            leaf.join_leaf(other.address)
        except OSError as exc:
            caught.append(exc)
    t = threading.Thread(target=join)
    t.start()
    time.sleep(0.3)
    leaf.close()
    t.join(1.0)
    assert not t.is_alive() and isinstance(caught[1], errors.WSAENOTSOCK)


def test_side_traffic_between_the_root_and_one_leaf(make_root: Callable[..., Root],
                                                    family: int) -> None:
    root = make_root().admit(1)
    with leaf_socket(family) as leaf:
        leaf.join_leaf(root.address)
        root.wait()
        peer = root.accepted[0]
        peer.settimeout(5)
        leaf.settimeout(5)
        peer.sendall(b"to you only")
        assert leaf.recv(64) == b"to you only"
        leaf.sendall(b"back")
        assert peer.recv(64) == b"back"


# -- root-initiated joins ------------------------------------------------------------------

def test_a_root_invites_a_listening_leaf(make_root: Callable[..., Root], family: int) -> None:
    root = make_root()
    with leaf_socket(family) as listener:
        listener.bind((LOOPBACK[family], 0))
        listener.listen()
        got: List[Any] = []
        t = threading.Thread(target=lambda: got.append(
            listener.accept(lambda c, s, g: (CF_ACCEPT, b"yes " + c))))
        t.start()
        callee = bytearray(32)
        peer = root.sock.join_leaf(listener.getsockname(), caller_data=b"come",
                                   callee_data=callee, flags=JL_RECEIVER_ONLY)
        t.join(5)
        assert isinstance(peer, RootedSocket) and peer is not root.sock
        assert peer.phase == "joined" and callee == bytearray(b"yes come")
        assert root.sock.leaves == [peer]
        [(leaf, address)] = got
        assert leaf.phase == "joined" and leaf.caller_data == b"come"
        assert leaf.session == root.sock.session
        with pytest.raises(errors.WSAEISCONN):
            root.sock.join_leaf(listener.getsockname())
        root.sock.send_data(b"to the invited")
        assert leaf.recv_data(timeout=5)[0] == b"to the invited"
        leaf.close()


def test_an_invitation_refused_is_wsaeconnrefused(make_root: Callable[..., Root],
                                                  family: int) -> None:
    root = make_root()
    with leaf_socket(family) as listener:
        listener.bind((LOOPBACK[family], 0))
        listener.listen()
        t = threading.Thread(target=lambda: pytest.raises(
            errors.WSAECONNREFUSED, listener.accept, lambda c, s, g: CF_REJECT))
        t.start()
        with pytest.raises(errors.WSAECONNREFUSED):
            root.sock.join_leaf(listener.getsockname())
        t.join(5)
        assert root.sock.leaves == []


def test_a_non_blocking_invitation_completes_as_fd_connect(make_root: Callable[..., Root],
                                                           family: int, evset: EventSet) -> None:
    root = make_root()
    evset.register(root.sock, FD.ACCEPT | FD.CONNECT)
    with leaf_socket(family) as listener:
        listener.bind((LOOPBACK[family], 0))
        listener.listen()
        invited: List[Any] = []             # the leaf side kept open (a dropped one resets)
        t = threading.Thread(target=lambda: invited.append(listener.accept()))
        t.start()
        peer = root.sock.join_leaf(listener.getsockname())
        assert peer in evset and peer.phase in ("joining", "joined")
        # Inviting the same leaf again: WSAEALREADY while the invitation is in
        # progress, WSAEISCONN once it completed (which may happen meanwhile).
        with pytest.raises((errors.WSAEALREADY, errors.WSAEISCONN)) as again:
            root.sock.join_leaf(listener.getsockname())
        if isinstance(again.value, errors.WSAEISCONN):
            assert peer.phase == "joined"
        assert wait_for(evset, peer, FD.CONNECT) == 0
        t.join(5)
        assert peer.phase == "joined" and root.sock.leaves == [peer]
        with pytest.raises(errors.WSAEISCONN):
            root.sock.join_leaf(listener.getsockname())
        for leaf, _ in invited:
            leaf.close()


# -- the data plane -----------------------------------------------------------------------

def _join_all(root: Root, family: int, plane: int, roles: List[int]) -> List[RootedSocket]:
    root.admit(len(roles))
    leaves = []
    for role in roles:
        leaf = leaf_socket(family, plane)
        leaf.join_leaf(root.address, flags=role)
        leaves.append(leaf)
    root.wait()
    return leaves


def _silent(leaf: RootedSocket) -> bool:
    try:
        leaf.recv_data(timeout=0.2)
    except errors.WSAETIMEDOUT:
        return True
    return False


@pytest.mark.parametrize("transport", ["multicast", "unicast"])
def test_d_root_data_reaches_every_leaf_and_leaves_reach_only_the_root(
        make_root: Callable[..., Root], family: int, transport: str) -> None:
    root = make_root(D_ROOT, transport)
    leaves = _join_all(root, family, D_ROOT, [JL_RECEIVER_ONLY, JL_BOTH, JL_BOTH])
    try:
        for i in range(3):
            root.sock.send_data(b"from the root %d" % i)
        for leaf in leaves:
            assert [leaf.recv_data(timeout=5)[0] for _ in range(3)] == \
                [b"from the root %d" % i for i in range(3)]
        leaves[1].send_data(b"from leaf 1")
        assert root.sock.recv_data(timeout=5)[0] == b"from leaf 1"
        assert _silent(leaves[0]) and _silent(leaves[2])
        with pytest.raises(errors.WSAENOTCONN, match="RECEIVER_ONLY"):
            leaves[0].send_data(b"no")
    finally:
        for leaf in leaves:
            leaf.close()


@pytest.mark.parametrize("transport", ["multicast", "unicast"])
def test_d_leaf_data_from_any_member_reaches_all(make_root: Callable[..., Root], family: int,
                                                 transport: str) -> None:
    root = make_root(D_LEAF, transport)
    leaves = _join_all(root, family, D_LEAF, [JL_BOTH, JL_BOTH, JL_RECEIVER_ONLY])
    try:
        leaves[0].send_data(b"from leaf 0")
        assert root.sock.recv_data(timeout=5)[0] == b"from leaf 0"   # (relays, unicast)
        for leaf in leaves[1:]:
            assert leaf.recv_data(timeout=5)[0] == b"from leaf 0"
        root.sock.send_data(b"from the root")
        for leaf in leaves:
            got = [leaf.recv_data(timeout=5)[0] for _ in range(1 if leaf is not leaves[0]
                                                                or transport == "unicast"
                                                                else 2)]
            assert got[-1] == b"from the root"
    finally:
        for leaf in leaves:
            leaf.close()


def test_recv_data_without_waiting_is_wsaewouldblock(make_root: Callable[..., Root],
                                                     family: int) -> None:
    root = make_root()
    [leaf] = _join_all(root, family, D_ROOT, [JL_RECEIVER_ONLY])
    with leaf:
        with pytest.raises(errors.WSAEWOULDBLOCK):
            leaf.recv_data(timeout=0)
        with pytest.raises(errors.WSAETIMEDOUT):
            leaf.recv_data(timeout=0.05)


def test_the_leaf_data_socket_batches(make_root: Callable[..., Root], family: int) -> None:
    root = make_root()
    [leaf] = _join_all(root, family, D_ROOT, [JL_RECEIVER_ONLY])
    with leaf:
        for i in range(5):
            root.sock.send_data(b"%d" % i)
        batch = RecvBatch(8)
        got: List[bytes] = []
        deadline = time.monotonic() + 5
        while len(got) < 5 and time.monotonic() < deadline:
            assert leaf.data is not None
            n = leaf.data.recv_batch(batch, 1.0)
            got += [bytes(batch[i].data) for i in range(n)]
        assert got == [b"%d" % i for i in range(5)]


def test_recv_data_leaves_the_data_socket_timeout_as_it_was(make_root: Callable[..., Root],
                                                             family: int) -> None:
    root = make_root()
    [leaf] = _join_all(root, family, D_ROOT, [JL_RECEIVER_ONLY])
    with leaf:
        assert leaf.data is not None
        for before, timeout in ((None, 5.0), (2.0, 2.0), (0.0, 0), (3.0, None)):
            leaf.data.settimeout(before)
            root.sock.send_data(b"t")
            if timeout == 0:
                time.sleep(0.05)              # loopback: delivered by now
            assert leaf.recv_data(timeout=timeout)[0] == b"t"
            assert leaf.data.gettimeout() == before, (before, timeout)
        leaf.data.settimeout(1.0)
        with pytest.raises(errors.WSAETIMEDOUT):
            leaf.recv_data(timeout=0.05)
        assert leaf.data.gettimeout() == 1.0


def test_a_hundred_leaves_join_one_root_at_once(make_root: Callable[..., Root],
                                                family: int) -> None:
    root = make_root().admit(100, shared_secret)
    leaves = [leaf_socket(family) for _ in range(100)]
    outcome: List[Optional[BaseException]] = [None] * 100

    def join(i: int) -> None:
        try:
            leaves[i].settimeout(30)
            leaves[i].join_leaf(root.address, caller_data=SECRET if i % 10 else b"wrong",
                                flags=JL_RECEIVER_ONLY)
        except OSError as exc:
            outcome[i] = exc
    threads = [threading.Thread(target=join, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    root.wait()
    try:
        refused = [i for i, e in enumerate(outcome) if e is not None]
        assert refused == list(range(0, 100, 10))
        assert all(isinstance(outcome[i], errors.WSAECONNREFUSED) for i in refused)
        assert len(root.accepted) == 90 and len(root.sock.leaves) == 90
        assert len(root.errors) == 10
        root.sock.send_data(b"to all ninety")
        for i, leaf in enumerate(leaves):
            if i % 10:
                assert leaf.recv_data(timeout=5)[0] == b"to all ninety"
    finally:
        for leaf in leaves:
            leaf.close()
