"""Hostile peers against a live root (docs/rooted-protocol.md, "Malformed and
hostile input"): raw TCP clients send malformed, truncated and oversized
frames and garbage; each test asserts what the client receives (a REJECT
with the documented code, then the end of the connection; or a reset and
nothing for a client that is not an mpoint peer), and that a well-behaved
leaf still joins after it: the root stays up and serves the others.  Then
the limits: slow clients are reset after the handshake time, the
handshakes in progress are bounded, no descriptor is left behind, and
bytes after a JOIN are side traffic for the root's c_leaf socket."""
from __future__ import annotations

import os
import socket
import struct
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

import mpoint
import support
from mpoint import CF_ACCEPT, CF_DEFER, CF_REJECT, errors
from mpoint import rooted_engine as engine_mod
from mpoint import rooted_wire as wire
from mpoint.rooted_wire import (D_LEAF, D_ROOT, HEADER_SIZE, INVITE, JOIN, MAX_PAYLOAD, MAX_QOS,
                                MAX_USER_DATA)
from rooted_frames import (CODES, GOOD_JOIN, WSAECONNREFUSED, WSAEINVAL, WSAEMSGSIZE,
                           WSAVERNOTSUPPORTED, arbitrary, frame, messages, request_block,
                           session_block)
from support import HealthCheck, assume, given, settings, st

C_ROOT = int(mpoint.WSA_FLAG_MULTIPOINT_C_ROOT)
C_LEAF = int(mpoint.WSA_FLAG_MULTIPOINT_C_LEAF)
F_D_ROOT = int(mpoint.WSA_FLAG_MULTIPOINT_D_ROOT)
HOST = "127.0.0.1"
WAIT = 5.0                 # the longest any single step may take on a loaded machine

LIVE = dict(deadline=None, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# -- the root and its clients --------------------------------------------------------

def new_root(flags: int = C_ROOT | F_D_ROOT) -> mpoint.RootedSocket:
    root = mpoint.socket(socket.AF_INET, socket.SOCK_STREAM, flags=flags)
    try:
        root.configure_session(scope=0)       # loopback: no datagram leaves the host
        root.bind((HOST, 0))
        root.listen()
        root.settimeout(WAIT)
    except BaseException:
        root.close()
        raise
    return root


@pytest.fixture
def root(network: Any) -> Iterator[mpoint.RootedSocket]:
    r = new_root()
    yield r
    r.close()


def pending(sock: mpoint.RootedSocket) -> int:
    """Handshakes in progress at a listening socket (the engine's dict:
    mutated in the engine thread, its length read here)."""
    lst = sock._rs.listener
    assert lst is not None
    return len(lst.pending)


def wait_until(what: Callable[[], bool], timeout: float = WAIT, why: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, why or "the condition never held"
        time.sleep(0.005)


def connect(sock: mpoint.RootedSocket) -> socket.socket:
    return socket.create_connection(sock.getsockname()[:2], timeout=WAIT)


def finish(conn: socket.socket, timeout: float = WAIT) -> Tuple[bytes, str]:
    """Everything the peer sends until the connection ends, and how it
    ended: "reset", "eof" or "open" (nothing happened within ``timeout``)."""
    conn.settimeout(timeout)
    got = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return got, "reset"
        except socket.timeout:
            return got, "open"
        if not chunk:
            return got, "eof"
        got += chunk


def send_raw(sock: mpoint.RootedSocket, data: bytes, close_write: bool = False,
             timeout: float = WAIT) -> Tuple[bytes, str]:
    """A raw TCP client: connects, sends ``data`` (the root may reset it
    meanwhile: the send or the shutdown then fails, and a reset it reports
    is the reset), optionally ends its side, and returns what came back."""
    with connect(sock) as conn:
        reset = False
        try:
            conn.sendall(data)
            if close_write:
                conn.shutdown(socket.SHUT_WR)
        except ConnectionResetError:
            reset = True
        except OSError:                 # EPIPE, ENOTCONN: the root ended it first
            pass
        got, end = finish(conn, timeout)
        return got, "reset" if reset and end == "eof" else end


def assert_rejected(answer: Tuple[bytes, str], code: int) -> wire.Reject:
    """One REJECT frame with ``code``, nothing after it, then the end."""
    got, end = answer
    assert end in ("reset", "eof"), (got, end)
    msg, used = wire.parse(got)
    assert isinstance(msg, wire.Reject), msg
    assert msg.code == code, msg
    assert used == len(got), f"{len(got) - used} bytes after the REJECT"
    return msg


# Wine closes in order despite SO_LINGER {1, 0} (README, "What is verified where").
RESET = ("reset", "eof") if support.UNDER_WINE else ("reset",)


def assert_reset_unanswered(answer: Tuple[bytes, str]) -> None:
    assert answer[0] == b"" and answer[1] in RESET, answer


class Acceptor:
    """``root.accept(condition)`` in a thread: its result or error."""

    def __init__(self, sock: mpoint.RootedSocket, condition: Any = None) -> None:
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, args=(sock, condition), daemon=True)
        self.thread.start()

    def _run(self, sock: mpoint.RootedSocket, condition: Any) -> None:
        try:
            self.result = sock.accept(condition)
        except BaseException as exc:            # reported to the test
            self.error = exc

    def join(self) -> Any:
        self.thread.join(WAIT * 2)
        assert not self.thread.is_alive(), "accept never returned"
        if self.error is not None:
            raise self.error
        return self.result


_tags = iter(range(10**9))


def well_behaved_leaf_joins(sock: mpoint.RootedSocket) -> None:
    """A good leaf joins (join_leaf against accept in a thread), gets its
    callee data and a c_leaf socket at the root: the root serves."""
    tag = b"good %d" % next(_tags)
    acceptor = Acceptor(sock, lambda caller, sqos, gqos: (CF_ACCEPT, b"welcome " + caller))
    leaf = mpoint.socket(socket.AF_INET, socket.SOCK_STREAM, flags=C_LEAF | F_D_ROOT)
    try:
        leaf.settimeout(WAIT)
        callee = bytearray(64)
        leaf.join_leaf(sock.getsockname()[:2], caller_data=tag, callee_data=callee)
        c_leaf, address = acceptor.join()
        try:
            assert bytes(callee) == b"welcome " + tag
            assert leaf.phase == "joined" and c_leaf.phase == "joined"
            assert c_leaf.caller_data == tag
            assert address[:2] == leaf.getsockname()[:2]
        finally:
            c_leaf.close()
    finally:
        leaf.close()
        acceptor.thread.join(WAIT)


def engine_alive() -> bool:
    e = engine_mod._engine
    return e is not None and e.thread.is_alive()


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- the table, row by row, each followed by a good leaf -------------------------------

def test_wrong_magic_is_reset_without_an_answer(root: mpoint.RootedSocket) -> None:
    for data in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01",
                 b"XX" + GOOD_JOIN[2:], b"\0" * 64):
        assert_reset_unanswered(send_raw(root, data))
        well_behaved_leaf_joins(root)


ROWS = {
    "framing-version-2": (frame(JOIN, request_block(), version=2), WSAVERNOTSUPPORTED),
    "framing-version-0": (frame(JOIN, b"", version=0, length=2**32 - 1), WSAVERNOTSUPPORTED),
    "type-0": (frame(0, request_block()), WSAEINVAL),
    "type-9": (frame(9, b""), WSAEINVAL),
    "unexpected-invite": (frame(INVITE, request_block() + session_block()), WSAEINVAL),
    "unexpected-admit": (wire.admit(wire.Session(1, 1, 4, 1, "239.1.2.3", 5, 6), b"x"),
                         WSAEINVAL),
    "unexpected-accept": (wire.accept(5, b""), WSAEINVAL),
    "unexpected-reject": (wire.reject(10061, "no"), WSAEINVAL),
    "length-above-max": (frame(JOIN, b"", length=MAX_PAYLOAD + 1), WSAEMSGSIZE),
    "length-4GiB": (frame(JOIN, b"\0" * 100, length=2**32 - 1), WSAEMSGSIZE),
    "caller-data-above-max": (frame(JOIN, request_block(caller=b"c" * (MAX_USER_DATA + 1))),
                              WSAEMSGSIZE),
    "sqos-above-max": (frame(JOIN, request_block(sqos=b"s" * (MAX_QOS + 1))), WSAEMSGSIZE),
    "gqos-announced-above-max": (frame(JOIN, request_block(g=65535)), WSAEMSGSIZE),
    "lengths-short": (frame(JOIN, request_block(caller=b"abc", c=4)), WSAEINVAL),
    "lengths-long": (frame(JOIN, request_block(caller=b"abc") + b"\0"), WSAEINVAL),
    "payload-empty": (frame(JOIN, b""), WSAEINVAL),
    "role-3": (frame(JOIN, request_block(role=3)), WSAEINVAL),
    "plane-0": (frame(JOIN, request_block(plane=0)), WSAEINVAL),
    "protocol-version-0": (frame(JOIN, request_block(version=0)), WSAVERNOTSUPPORTED),
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_each_row_is_rejected_with_its_code(root: mpoint.RootedSocket, name: str) -> None:
    data, code = ROWS[name]
    assert_rejected(send_raw(root, data), code)
    well_behaved_leaf_joins(root)


def test_an_oversized_frame_sent_whole_is_rejected_from_its_header(
        root: mpoint.RootedSocket) -> None:
    """A client that sends all of a 1 MiB "frame": the root reads its header,
    answers WSAEMSGSIZE and ends the connection, never buffering the rest."""
    assert_rejected(send_raw(root, frame(JOIN, b"\xee" * 2**20)), WSAEMSGSIZE)
    assert pending(root) == 0
    well_behaved_leaf_joins(root)


def test_a_truncated_frame_then_close_is_reset(root: mpoint.RootedSocket) -> None:
    for cut in (0, 1, 7, 8, HEADER_SIZE + 5, len(GOOD_JOIN) - 1):
        assert_reset_unanswered(send_raw(root, GOOD_JOIN[:cut], close_write=True))
    well_behaved_leaf_joins(root)


def test_an_unexpected_type_at_a_leaf_listening_for_invitations(network: Any) -> None:
    """A c_leaf listens for INVITE: a JOIN (or an ADMIT) there is REJECT
    WSAEINVAL; the root's invitation is served after it."""
    leaf = mpoint.socket(socket.AF_INET, socket.SOCK_STREAM, flags=C_LEAF | F_D_ROOT)
    inviter = new_root()
    try:
        leaf.bind((HOST, 0))
        leaf.listen()
        leaf.settimeout(WAIT)
        assert_rejected(send_raw(leaf, GOOD_JOIN), WSAEINVAL)
        assert_rejected(send_raw(leaf, wire.accept(5, b"")), WSAEINVAL)
        acceptor = Acceptor(leaf, lambda c, s, g: (CF_ACCEPT, b"yes " + c))
        callee = bytearray(32)
        c_leaf = inviter.join_leaf(leaf.getsockname(), caller_data=b"root", callee_data=callee)
        try:
            leaf_side, _ = acceptor.join()
            assert bytes(callee) == b"yes root" and c_leaf.phase == "joined"
            assert leaf_side.caller_data == b"root"
            leaf_side.close()
        finally:
            c_leaf.close()
    finally:
        inviter.close()
        leaf.close()


def test_a_newer_leaf_is_admitted_at_version_1(root: mpoint.RootedSocket) -> None:
    """A JOIN naming protocol version 9 is answered ADMIT with version 1
    (the lower of the two), the root's session in it."""
    with connect(root) as conn:
        acceptor = Acceptor(root)
        conn.sendall(frame(JOIN, request_block(version=9, caller=b"v9", port=1234)))
        c_leaf, _ = acceptor.join()
        try:
            reader = wire.FrameReader()
            conn.settimeout(WAIT)
            while not reader.done():
                reader.feed(conn.recv(reader.need()))
            msg = reader.message()
            assert isinstance(msg, wire.Admit) and msg.version == 1 and msg.callee_data == b""
            assert root.session is not None and msg.session.root_port == root.session.root_port
            assert c_leaf.caller_data == b"v9"
        finally:
            c_leaf.close()
    well_behaved_leaf_joins(root)


def test_the_wrong_data_plane_and_a_rejecting_condition(root: mpoint.RootedSocket) -> None:
    """Complete, well-formed JOINs that the root refuses: a d_leaf JOIN at
    a d_root session (REJECT WSAEINVAL, never offered to the condition) and
    one the condition rejects (REJECT WSAECONNREFUSED)."""
    offered: List[bytes] = []

    def condition(caller: bytes, sqos: object, gqos: object) -> Any:
        offered.append(caller)
        return CF_REJECT if caller == b"refuse me" else CF_ACCEPT

    acceptor = Acceptor(root, condition)
    assert_rejected(send_raw(root, frame(JOIN, request_block(plane=D_LEAF, caller=b"leafy"))),
                    WSAEINVAL)
    assert_rejected(send_raw(root, frame(JOIN, request_block(caller=b"refuse me"))),
                    WSAECONNREFUSED)
    with pytest.raises(errors.WSAECONNREFUSED):
        acceptor.join()
    assert offered == [b"refuse me"]
    well_behaved_leaf_joins(root)


def test_a_deferred_join_whose_leaf_left_is_dropped(root: mpoint.RootedSocket) -> None:
    """CF_DEFER keeps a request queued; if its client has gone by the next
    accept, that accept skips it and serves the next leaf."""
    with connect(root) as conn:
        conn.sendall(frame(JOIN, request_block(caller=b"later")))
        with pytest.raises(errors.WSATRY_AGAIN):
            root.accept(lambda c, s, g: CF_DEFER)
    well_behaved_leaf_joins(root)


# -- hypothesis: hostile clients, each followed by a good leaf -----------------------

@settings(max_examples=100, **LIVE)
@given(st.binary(min_size=2, max_size=2).filter(lambda m: m != b"MR"), st.binary(max_size=200))
def test_any_wrong_magic(root: mpoint.RootedSocket, magic: bytes, rest: bytes) -> None:
    data = magic + rest
    answer = send_raw(root, data, close_write=True)
    assert_reset_unanswered(answer)
    well_behaved_leaf_joins(root)


headers = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**32 - 1))


@settings(max_examples=150, **LIVE)
@given(headers, st.binary(max_size=300))
def test_any_bad_header(root: mpoint.RootedSocket, header: Tuple[int, int, int],
                        body: bytes) -> None:
    """A wrong framing version, type or length: the first wrong field of
    the header decides the code."""
    version, kind, length = header
    assume(version != 1 or kind not in range(1, 6) or length > MAX_PAYLOAD)
    code = WSAVERNOTSUPPORTED if version != 1 else \
        WSAEINVAL if kind not in range(1, 6) else WSAEMSGSIZE
    data = struct.pack(">2sBBI", b"MR", version, kind, length) + body
    assert_rejected(send_raw(root, data), code)
    well_behaved_leaf_joins(root)


@settings(max_examples=100, **LIVE)
@given(messages().filter(lambda m: m[0][3] != JOIN))
def test_any_message_a_root_does_not_expect(root: mpoint.RootedSocket,
                                            case: Tuple[bytes, wire.Message]) -> None:
    """A well-formed INVITE, ADMIT, ACCEPT or REJECT sent to a root."""
    assert_rejected(send_raw(root, case[0]), WSAEINVAL)
    well_behaved_leaf_joins(root)


@settings(max_examples=60, **LIVE)
@given(st.sampled_from(["c", "s", "g"]), st.integers(1, 65535 - MAX_QOS), st.booleans())
def test_any_oversized_field(root: mpoint.RootedSocket, field: str, excess: int,
                             with_bytes: bool) -> None:
    """Caller data above MAX_USER_DATA or QoS above MAX_QOS, its bytes sent
    (as far as the payload limit allows) or only announced."""
    limit = MAX_USER_DATA if field == "c" else MAX_QOS
    n = min(limit + excess, 65535)
    body = b"\xab" * min(n, MAX_PAYLOAD - 12) if with_bytes else b""
    assert_rejected(send_raw(root, frame(JOIN, request_block(**{field: n}) + body)),
                    WSAEMSGSIZE)
    well_behaved_leaf_joins(root)


@settings(max_examples=100, **LIVE)
@given(st.binary(max_size=40), st.binary(max_size=8), st.integers(-60, 60).filter(bool))
def test_any_length_that_does_not_add_up(root: mpoint.RootedSocket, caller: bytes,
                                         sqos: bytes, delta: int) -> None:
    """A JOIN whose payload is ``delta`` bytes longer or shorter than its
    fields say (the frame's length field matching what is sent)."""
    payload = request_block(caller=caller, sqos=sqos)
    payload = payload + b"\0" * delta if delta > 0 else payload[:delta]
    assert_rejected(send_raw(root, frame(JOIN, payload)), WSAEINVAL)
    well_behaved_leaf_joins(root)


@settings(max_examples=100, **LIVE)
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=30))
def test_any_unknown_role_or_plane(root: mpoint.RootedSocket, role: int, plane: int,
                                   caller: bytes) -> None:
    assume(role not in (1, 2, 4) or plane not in (D_ROOT, D_LEAF))
    assert_rejected(send_raw(root, frame(JOIN, request_block(role=role, plane=plane,
                                                             caller=caller))), WSAEINVAL)
    well_behaved_leaf_joins(root)


@settings(max_examples=60, **LIVE)
@given(st.integers(0, len(GOOD_JOIN) - 1))
def test_any_truncation_then_close(root: mpoint.RootedSocket, cut: int) -> None:
    assert_reset_unanswered(send_raw(root, GOOD_JOIN[:cut], close_write=True))
    well_behaved_leaf_joins(root)


@settings(max_examples=6, **LIVE)
@given(st.integers(0, len(GOOD_JOIN) - 1))
def test_any_truncation_then_silence(root: mpoint.RootedSocket, cut: int) -> None:
    """Fewer bytes than announced, and the client waits: reset when the
    handshake time has passed (0.3 s here), not before."""
    saved = engine_mod.HANDSHAKE_TIMEOUT
    engine_mod.HANDSHAKE_TIMEOUT = 0.3
    try:
        with connect(root) as conn:
            began = time.monotonic()
            conn.sendall(GOOD_JOIN[:cut])
            answer = finish(conn)
            took = time.monotonic() - began
        assert_reset_unanswered(answer)
        assert 0.25 <= took < 0.3 + WAIT, took
        well_behaved_leaf_joins(root)
    finally:
        engine_mod.HANDSHAKE_TIMEOUT = saved


def expected_answer(data: bytes) -> Any:
    """What the root answers ``data`` with, by the wire format's rules."""
    try:
        msg, _ = wire.parse(data)
    except wire.ProtocolError as exc:
        return exc.code                            # None: reset, no answer
    except ValueError:
        return "incomplete"
    if isinstance(msg, wire.Request) and msg.kind == JOIN:
        return "join"
    return WSAEINVAL                               # a message a root does not expect


@settings(max_examples=300, **LIVE)
@given(arbitrary)
def test_any_garbage(root: mpoint.RootedSocket, data: bytes) -> None:
    """Bytes of any kind, then the client ends its side: a REJECT with the
    wire format's code, or a reset without an answer."""
    expected = expected_answer(data)
    assume(expected != "join")
    answer = send_raw(root, data, close_write=True)
    if expected in (None, "incomplete"):
        assert_reset_unanswered(answer)
    else:
        assert expected in CODES
        assert_rejected(answer, expected)
    wait_until(lambda: pending(root) == 0)
    well_behaved_leaf_joins(root)


# -- the limits ------------------------------------------------------------------------

def test_slow_loris(root: mpoint.RootedSocket, monkeypatch: pytest.MonkeyPatch) -> None:
    """50 clients send half a header and stall: a good leaf joins
    meanwhile, and each stalled client is reset once the handshake time
    (2 s here) has passed since it connected."""
    timeout = 2.0
    monkeypatch.setattr(engine_mod, "HANDSHAKE_TIMEOUT", timeout)
    stalled: List[Tuple[socket.socket, float]] = []
    try:
        for _ in range(50):
            conn = connect(root)
            stalled.append((conn, time.monotonic()))
            conn.sendall(GOOD_JOIN[:HEADER_SIZE // 2])
        wait_until(lambda: pending(root) == 50, why="the engine never held the 50")
        well_behaved_leaf_joins(root)
        assert pending(root) == 50               # none was reset to make room
        for conn, _ in stalled:
            conn.setblocking(False)
            with pytest.raises(BlockingIOError):
                conn.recv(1)                     # open, nothing sent to it
        for conn, began in stalled:
            answer = finish(conn, began + timeout + WAIT - time.monotonic())
            assert_reset_unanswered(answer)
            assert time.monotonic() - began >= timeout - 0.05
        wait_until(lambda: pending(root) == 0)
        well_behaved_leaf_joins(root)
    finally:
        for conn, _ in stalled:
            conn.close()


def test_handshakes_in_progress_are_bounded(root: mpoint.RootedSocket,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_HANDSHAKES 8: 20 stalled clients leave 8 in progress, the 12
    oldest reset; a good leaf still joins."""
    monkeypatch.setattr(engine_mod, "MAX_HANDSHAKES", 8)
    monkeypatch.setattr(engine_mod, "HANDSHAKE_TIMEOUT", 60.0)   # no expiry in this test
    conns: List[socket.socket] = []
    try:
        for i in range(20):
            conns.append(connect(root))
            conns[-1].sendall(b"MR\x01")
            wait_until(lambda: pending(root) == min(i + 1, 8), why=f"client {i}")
            assert pending(root) <= 8
        for conn in conns[:12]:
            assert_reset_unanswered(finish(conn))
        for conn in conns[12:]:
            conn.setblocking(False)
            with pytest.raises(BlockingIOError):
                conn.recv(1)
        assert pending(root) <= 8            # the bound (once 7 under load in CI: see the note)
        well_behaved_leaf_joins(root)            # its connection made room too
        assert pending(root) == 7
        assert_reset_unanswered(finish(conns[12]))   # the oldest of those left
    finally:
        for conn in conns:
            conn.close()


def test_an_evicted_handshake_ready_in_the_same_round(root: mpoint.RootedSocket,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest handshake's bytes and a new connection that evicts it
    arrive while the engine is busy, so one poll reports both: the engine
    must not read the evicted connection (it used to die of a KeyError,
    and every rooted socket of the process stopped answering)."""
    monkeypatch.setattr(engine_mod, "MAX_HANDSHAKES", 1)
    with connect(root) as old:
        old.sendall(b"MR\x01")
        wait_until(lambda: pending(root) == 1)
        busy = threading.Event()
        engine_mod.engine().call(lambda: (busy.set(), time.sleep(0.3)))
        assert busy.wait(WAIT)
        with connect(root) as new:              # the listener is ready first,
            time.sleep(0.02)
            old.sendall(b"\x01")                # then the evicted one
            assert_reset_unanswered(finish(old))
            wait_until(lambda: pending(root) == 1)
            assert engine_alive()
            new.sendall(GOOD_JOIN)
            acceptor = Acceptor(root)
            c_leaf, _ = acceptor.join()
            c_leaf.close()
    assert engine_alive()
    well_behaved_leaf_joins(root)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_hostile_clients_leave_no_descriptor(root: mpoint.RootedSocket,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "HANDSHAKE_TIMEOUT", 0.3)
    well_behaved_leaf_joins(root)                # warm-up: engine, caches
    before = fd_count()
    for _ in range(3):
        for name in sorted(ROWS):
            send_raw(root, ROWS[name][0])
        send_raw(root, b"GET / HTTP/1.0\r\n\r\n")
        send_raw(root, GOOD_JOIN[:5], close_write=True)
        send_raw(root, frame(JOIN, b"\0" * 2**18))
        stalled = [connect(root) for _ in range(10)]
        for conn in stalled:
            conn.sendall(b"MR")
        for conn in stalled:
            assert_reset_unanswered(finish(conn))
            conn.close()
        refused = Acceptor(root, lambda c, s, g: CF_REJECT)
        assert_rejected(send_raw(root, GOOD_JOIN), WSAECONNREFUSED)
        with pytest.raises(errors.WSAECONNREFUSED):
            refused.join()
        with connect(root) as conn:              # deferred, then gone
            conn.sendall(GOOD_JOIN)
            with pytest.raises(errors.WSATRY_AGAIN):
                root.accept(lambda c, s, g: CF_DEFER)
        well_behaved_leaf_joins(root)
    wait_until(lambda: pending(root) == 0 and fd_count() <= before,
               why=f"{fd_count() - before} descriptors more than before")
    # And a root closed with handshakes in progress leaves nothing either.
    other = new_root()
    stalled = [connect(other) for _ in range(5)]
    for conn in stalled:
        conn.sendall(b"M")
    wait_until(lambda: pending(other) == 5)
    other.close()
    for conn in stalled:
        assert_reset_unanswered(finish(conn))
        conn.close()
    wait_until(lambda: fd_count() <= before,
               why=f"{fd_count() - before} descriptors more than before the second root")


# -- side traffic ------------------------------------------------------------------------

def read_exactly(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(WAIT)
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        assert chunk, f"closed after {got!r}"
        got += chunk
    return got


@pytest.mark.parametrize("side", [b"hello root", b"MR\x01\x01\x00\x00\x00\x00",
                                  GOOD_JOIN, b"\xff" * 5000])
def test_bytes_after_a_join_are_side_traffic(root: mpoint.RootedSocket, side: bytes) -> None:
    """A JOIN and more bytes in the same segment: the engine takes only the
    JOIN; the rest (frame-like or not) is read from the c_leaf socket that
    accept returns, and the client's stream carries the ADMIT, then what
    the root's application sends."""
    with connect(root) as conn:
        conn.sendall(frame(JOIN, request_block(caller=b"chatty", port=999)) + side)
        acceptor = Acceptor(root)
        c_leaf, _ = acceptor.join()
        try:
            assert c_leaf.caller_data == b"chatty"
            assert read_exactly(c_leaf, len(side)) == side
            c_leaf.sendall(b"and back")
            reader = wire.FrameReader()
            conn.settimeout(WAIT)
            while not reader.done():
                reader.feed(conn.recv(reader.need()))
            assert isinstance(reader.message(), wire.Admit)
            assert read_exactly(conn, 8) == b"and back"
        finally:
            c_leaf.close()
    well_behaved_leaf_joins(root)


def test_a_leafs_side_traffic_after_join_leaf(root: mpoint.RootedSocket) -> None:
    acceptor = Acceptor(root)
    leaf = mpoint.socket(socket.AF_INET, socket.SOCK_STREAM, flags=C_LEAF | F_D_ROOT)
    try:
        leaf.settimeout(WAIT)
        leaf.join_leaf(root.getsockname()[:2], caller_data=b"x")
        leaf.sendall(b"side chat")
        c_leaf, _ = acceptor.join()
        try:
            assert read_exactly(c_leaf, 9) == b"side chat"
            c_leaf.sendall(b"reply")
            assert read_exactly(leaf, 5) == b"reply"
        finally:
            c_leaf.close()
    finally:
        leaf.close()


# -- hostile roots: what a joining leaf is told -------------------------------------------

class FakeRoot:
    """A TCP server that reads one JOIN and answers ``answer`` (sent
    ``pace`` seconds a byte when given), then closes."""

    def __init__(self, answer: bytes, pace: float = 0.0) -> None:
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.bind((HOST, 0))
        self.srv.listen()
        self.srv.settimeout(WAIT)
        self.address = self.srv.getsockname()
        self.request: Optional[wire.Message] = None
        self.thread = threading.Thread(target=self._run, args=(answer, pace), daemon=True)
        self.thread.start()

    def _run(self, answer: bytes, pace: float) -> None:
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        with conn:
            try:
                conn.settimeout(WAIT)
                reader = wire.FrameReader()
                while not reader.done():
                    reader.feed(conn.recv(reader.need()))
                self.request = reader.message()
                if not pace:
                    conn.sendall(answer)
                    return
                for i in range(len(answer)):
                    conn.sendall(answer[i:i + 1])
                    time.sleep(pace)
            except OSError:
                pass                             # the leaf gave up

    def close(self) -> None:
        self.srv.close()
        self.thread.join(WAIT)


def new_leaf(timeout: float = WAIT) -> mpoint.RootedSocket:
    leaf = mpoint.socket(socket.AF_INET, socket.SOCK_STREAM, flags=C_LEAF | F_D_ROOT)
    leaf.settimeout(timeout)
    return leaf


def rejoins(leaf: mpoint.RootedSocket, root: mpoint.RootedSocket) -> None:
    """After a failed join the socket is as new: it joins a real root."""
    assert leaf.phase == "idle"
    acceptor = Acceptor(root)
    leaf.join_leaf(root.getsockname()[:2], caller_data=b"again")
    c_leaf, _ = acceptor.join()
    c_leaf.close()
    assert leaf.phase == "joined" and leaf.join_error == 0


@pytest.mark.parametrize("answer, code", [
    (b"XXXXXXXXXXXX", errors.WSAEINVAL),                    # not an mpoint peer
    (frame(5, b"\0\0"), errors.WSAEINVAL),                     # malformed REJECT
    (frame(JOIN, b"", length=MAX_PAYLOAD + 1), errors.WSAEINVAL),     # oversized
    (wire.accept(5, b""), errors.WSAEINVAL),                 # not an answer to a JOIN
    (wire.request(JOIN, D_ROOT, 4, 5, b""), errors.WSAEINVAL),
    (wire.reject(10061, "no"), errors.WSAECONNREFUSED),
    (wire.admit(wire.Session(1, D_ROOT, 4, 0, "239.1.2.3", 5, 6), b"x" * 100),
     errors.WSAEFAULT),                                      # more callee data than room
    (b"", errors.WSAECONNRESET),                             # closed without a word
], ids=["garbage", "malformed", "oversized", "accept", "join", "reject", "callee-too-long",
        "silent-close"])
def test_a_hostile_roots_answer(root: mpoint.RootedSocket, answer: bytes, code: type) -> None:
    fake = FakeRoot(answer)
    leaf = new_leaf()
    try:
        with pytest.raises(code):
            leaf.join_leaf(fake.address, caller_data=b"hi", callee_data=bytearray(8))
        assert isinstance(fake.request, wire.Request) and fake.request.caller_data == b"hi"
        assert leaf.join_error == code.wsa_errno            # type: ignore[attr-defined]
        rejoins(leaf, root)
    finally:
        leaf.close()
        fake.close()


def test_a_trickling_root_cannot_hold_a_join_past_its_timeout(
        root: mpoint.RootedSocket) -> None:
    """An answer sent a byte every 20 ms (5 s in all): the join still ends
    when its 0.5 s timeout passes."""
    fake = FakeRoot(wire.reject(10061, "x" * 250), pace=0.02)
    leaf = new_leaf(0.5)
    try:
        began = time.monotonic()
        with pytest.raises(errors.WSAETIMEDOUT):
            leaf.join_leaf(fake.address)
        assert time.monotonic() - began < 0.5 + 1.0
        rejoins(leaf, root)
    finally:
        leaf.close()
        fake.close()


@pytest.mark.parametrize("code", [0, 12345, 2**32 - 1])
def test_a_reject_with_a_code_winsock_does_not_have(root: mpoint.RootedSocket,
                                                    code: int) -> None:
    """The leaf fails with an mpoint error whose join_error is not 0 and
    can join again."""
    fake = FakeRoot(wire.reject(code, "odd"))
    leaf = new_leaf()
    try:
        with pytest.raises(errors.MultipointError):
            leaf.join_leaf(fake.address)
        assert leaf.join_error not in (None, 0)
        rejoins(leaf, root)
    finally:
        leaf.close()
        fake.close()


def test_a_condition_that_closes_its_root(root: mpoint.RootedSocket) -> None:
    """accept ends with WSAENOTSOCK, and the leaf is not admitted."""
    with connect(root) as conn:
        conn.sendall(GOOD_JOIN)

        def condition(caller: bytes, sqos: object, gqos: object) -> Any:
            root.close()
            return CF_ACCEPT

        with pytest.raises(errors.WSAENOTSOCK):
            root.accept(condition)
        got, end = finish(conn)
        assert end in ("reset", "eof") and not isinstance(
            wire.parse(got)[0] if got else None, wire.Admit)
