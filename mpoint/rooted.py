"""Rooted multipoint sessions: WSAJoinLeaf's c_root / c_leaf control scheme
and d_root / d_leaf data planes, over mpoint's own protocol
(docs/rooted-protocol.md), the same on every platform.

A rooted socket is ``mpoint.socket(family, socket.SOCK_STREAM, flags=...)``
with C_ROOT or C_LEAF and D_ROOT or D_LEAF: its control connection is TCP,
its session's data travels as UDP datagrams (IP multicast, or unicast
fan-out as the fallback).  The spec's rules, as this module keeps them:

* A root ``bind``s and ``listen``s; a leaf's ``join_leaf(root_address,
  caller_data=..., callee_data=...)`` asks to join, the root gets FD_ACCEPT
  and answers with ``accept(condition)`` (WSAAccept: ``CF_ACCEPT``,
  ``CF_REJECT``, ``CF_DEFER`` or ``(CF_ACCEPT, callee_data)``).  A root's
  ``join_leaf(leaf_address)`` invites a leaf listening on its own c_leaf
  socket, which admits it the same way.  Every admitted leaf has a c_leaf
  socket at the root: closing it drops the leaf, and it reports FD_CLOSE
  when the leaf leaves; it may carry side traffic (``send``/``recv``).
* One join at a time per socket (WSAEALREADY), none once admitted
  (WSAEISCONN); rejected: WSAECONNREFUSED; no answer: WSAETIMEDOUT; no route:
  WSAENETUNREACH.  After any failure the socket is as new (a fresh
  descriptor, its EventSet registration kept), so the leaf may retry.
* Non-blocking (a timeout of 0, or registered in an EventSet): the join
  returns at once, and completes as FD_CONNECT with its error code.  A new
  c_leaf socket from ``accept`` or a root's ``join_leaf`` is registered in
  the root's EventSet for the root's events, as Winsock's are.
* ``send_data`` / ``recv_data`` are the data plane; ``data`` is its UDP
  socket (``recv_batch``, an EventSet of its own)."""
from __future__ import annotations

import _socket as _csocket
import enum
import ipaddress
import socket as _stdsocket
import threading
import time
from typing import (TYPE_CHECKING, Any, Callable, List, NamedTuple, Optional, Set, Tuple,
                    Type, TypeVar, Union)

from . import errors, rooted_data as data_mod, rooted_engine as engine_mod, rooted_wire as wire
from . import _core
from .constants import JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY, Plane, SocketFlag
from .multipoint_socket import MultipointSocket

if TYPE_CHECKING:
    from .events import EventSet

__all__ = ["CF_ACCEPT", "CF_REJECT", "CF_DEFER", "Verdict", "RootedSocket", "Session",
           "JOIN_TIMEOUT", "KEEPALIVE"]


class Verdict(enum.IntEnum):
    """What an accept condition answers (WSAAccept's CF_* values)."""
    CF_ACCEPT = 0
    CF_REJECT = 1
    CF_DEFER = 2


CF_ACCEPT, CF_REJECT, CF_DEFER = Verdict.CF_ACCEPT, Verdict.CF_REJECT, Verdict.CF_DEFER

JOIN_TIMEOUT = 10.0     # a blocking join with no socket timeout waits this long for its answer
KEEPALIVE = 2.0         # TCP keep-alive idle seconds; probes every KEEPALIVE/2, 3 of them

_C_ROOT = int(SocketFlag.WSA_FLAG_MULTIPOINT_C_ROOT)
_C_LEAF = int(SocketFlag.WSA_FLAG_MULTIPOINT_C_LEAF)
_D_ROOT = int(SocketFlag.WSA_FLAG_MULTIPOINT_D_ROOT)
_D_LEAF = int(SocketFlag.WSA_FLAG_MULTIPOINT_D_LEAF)
_OTHER = int(SocketFlag.WSA_FLAG_OVERLAPPED | SocketFlag.WSA_FLAG_NO_HANDLE_INHERIT)
_FD_ACCEPT, _FD_CONNECT = 0x008, 0x010
_FD_KERNEL = 0x001 | 0x002 | 0x020           # FD_READ, FD_WRITE, FD_CLOSE: from the poller
_LINGER_RESET = engine_mod.LINGER_RESET      # struct linger {1, 0}: a close resets
_LINGER_OFF = engine_mod.LINGER_OFF          # {0, 0}: an orderly close

Condition = Callable[[bytes, Optional[object], Optional[object]], Any]


class Session(NamedTuple):
    """A rooted session's data channel, as the root announces it."""
    transport: str          # "multicast" or "unicast"
    data_plane: Plane       # ROOT (d_root) or LEAF (d_leaf)
    group: Optional[str]    # the multicast group; None for unicast
    port: int               # the group's port; 0 for unicast
    root_port: int          # the root's UDP data port
    scope: int              # multicast TTL / hop limit

    @classmethod
    def _of(cls, s: wire.Session) -> "Session":
        return cls("multicast" if s.transport == wire.MULTICAST else "unicast",
                   Plane.ROOT if s.plane == wire.D_ROOT else Plane.LEAF,
                   s.group or None, s.group_port, s.root_port, s.scope)


def _fail(name: Union[int, str], call: str, detail: str) -> errors.MultipointError:
    return errors.from_code(name, call, detail)


def _as_mpoint(exc: OSError) -> errors.MultipointError:
    """An OSError from the socket module as the mpoint error of its code."""
    if isinstance(exc, errors.MultipointError):
        return exc
    return _fail(exc.errno or "WSAEINVAL", "WSAJoinLeaf", exc.strerror or str(exc))


def check_flags(flags: object) -> int:
    """WSASocket's rule for a rooted socket's flags: exactly one control
    flag and one data flag, nothing unknown; WSAEINVAL otherwise."""
    if isinstance(flags, bool) or not hasattr(flags, "__index__"):
        raise TypeError(f"flags must be an int, not {type(flags).__name__}")
    f = flags.__index__()
    control = f & (_C_ROOT | _C_LEAF)
    data = f & (_D_ROOT | _D_LEAF)
    if f < 0 or f & ~(_C_ROOT | _C_LEAF | _D_ROOT | _D_LEAF | _OTHER) or \
            control not in (_C_ROOT, _C_LEAF) or data not in (_D_ROOT, _D_LEAF):
        raise _fail("WSAEINVAL", "WSASocket",
                    f"flags={f:#x}: a multipoint socket needs exactly one of C_ROOT / C_LEAF "
                    "and one of D_ROOT / D_LEAF")
    return int(f)


def _keepalive(sock: _stdsocket.socket, idle: float) -> None:
    """TCP keep-alive: a silent peer is declared dead after about
    idle + 3 * idle/2 seconds (docs/rooted-protocol.md)."""
    sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_KEEPALIVE, 1)
    seconds = max(1, int(idle))
    interval = max(1, int(idle / 2))
    for name, value in (("TCP_KEEPIDLE", seconds), ("TCP_KEEPALIVE", seconds),
                        ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", 3)):
        opt = getattr(_stdsocket, name, None)
        if opt is not None:
            try:
                sock.setsockopt(_stdsocket.IPPROTO_TCP, opt, value)
            except OSError:
                pass                        # an option this system lacks the value for
    if hasattr(_stdsocket, "TCP_NODELAY"):
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)


def _user_bytes(data: object, what: str, call: str) -> bytes:
    if data is None:
        return b""
    try:
        raw = memoryview(data).tobytes()  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not "
                        f"{type(data).__name__}") from None
    if len(raw) > wire.MAX_USER_DATA:
        raise _fail("WSAEFAULT", call, f"{what} of {len(raw)} bytes: at most "
                    f"{wire.MAX_USER_DATA} travel with a rooted join")
    return raw


def _check_callee(buf: object) -> None:
    if buf is not None and not isinstance(buf, bytearray):
        raise TypeError(f"callee_data must be a bytearray (its length reports the data "
                        f"received), not {type(buf).__name__}")


def _their_qos(raw: bytes) -> Any:
    """A peer's QoS bytes for an accept condition: the QOS they encode (the
    8-byte-pointer layout, docs/rooted-protocol.md), else the bytes as they
    came; None when there are none."""
    if not raw:
        return None
    from .qos import QOS
    try:
        return QOS.from_bytes(raw, pointer_size=8)
    except (OSError, ValueError, TypeError):
        return raw


def _role(flags: object) -> int:
    if isinstance(flags, bool) or not hasattr(flags, "__index__"):
        raise TypeError("flags must be JL_SENDER_ONLY, JL_RECEIVER_ONLY or JL_BOTH")
    v = flags.__index__()
    if v not in (JL_SENDER_ONLY, JL_RECEIVER_ONLY, JL_BOTH):
        raise _fail("WSAEINVAL", "WSAJoinLeaf",
                    f"flags={v}: not JL_SENDER_ONLY (1), JL_RECEIVER_ONLY (2) or JL_BOTH (4)")
    return int(v)


def _numeric_peer(family: int, name: object) -> Tuple[Any, ...]:
    """(host, port[, flowinfo, scope_id]) of a root or a leaf: numeric, unicast."""
    if not isinstance(name, tuple) or len(name) < 2 or not isinstance(name[0], str):
        raise TypeError("name must be an address tuple (host, port)")
    host, port = name[0], name[1]
    if isinstance(port, bool) or not hasattr(port, "__index__"):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    port = port.__index__()
    if not 0 < port < 65536:
        raise _fail("WSAEFAULT", "WSAJoinLeaf", f"port {port} is out of range (1..65535)")
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        raise _fail("WSAEINVAL", "WSAJoinLeaf",
                    f"{host!r}: a numeric address is required") from None
    if (addr.version == 4) != (family == _stdsocket.AF_INET):
        raise _fail("WSAEAFNOSUPPORT", "WSAJoinLeaf", f"{host} is not of the socket's family")
    if addr.is_multicast:
        raise _fail("WSAEINVAL", "WSAJoinLeaf",
                    f"{host} is a group: a rooted join names its root's (or leaf's) unicast "
                    "address; join groups with a SOCK_DGRAM socket")
    return (host, port) + tuple(name[2:])


_A = TypeVar("_A", wire.Admit, wire.Accept)
_WSA_CODES = frozenset(row[1] for row in errors.TABLE)


def _answer(result: Union[wire.Message, engine_mod.DialError], kind: Type[_A], peer: str) -> _A:
    """A dial's outcome as the answer it should be, or the mpoint error."""
    if isinstance(result, engine_mod.DialError):
        raise _fail(result.code, "WSAJoinLeaf", result.detail)
    if isinstance(result, wire.Reject):
        # A peer's code is raised when Winsock has it (as a Winsock number);
        # anything else (0 included) is a refusal that names the code.
        if result.code in _WSA_CODES:
            raise _fail(result.code, "WSAJoinLeaf", f"the {peer} refused: {result.text}")
        raise _fail("WSAECONNREFUSED", "WSAJoinLeaf",
                    f"the {peer} refused with code {result.code}: {result.text}")
    if not isinstance(result, kind):
        raise _fail("WSAEINVAL", "WSAJoinLeaf", f"the {peer} answered "
                    f"{type(result).__name__.upper()}")
    return result


class _Queued:
    """A complete request waiting at a listening socket for accept()."""
    __slots__ = ("conn", "address", "request")

    def __init__(self, conn: _stdsocket.socket, address: Tuple[Any, ...],
                 request: wire.Request) -> None:
        self.conn, self.address, self.request = conn, address, request


class _State:
    """A rooted socket's protocol state (RootedSocket._rs), behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.phase = "idle"            # idle, joining, joined, listening, closed
        self.dial: Optional[engine_mod.Dial] = None
        self.listener: Optional[engine_mod.Listener] = None
        self.queue: List[_Queued] = []
        self.root_dial = False         # a root's join_leaf is outstanding
        self.pending: List[Tuple[int, int]] = []    # (event, code) for a later registration
        self.held_back = False      # poller events held back until a connection begins
        self.join_error: Optional[int] = None       # the last join's Winsock code; 0: admitted
        # the session
        self.session: Optional[wire.Session] = None
        self.interface: Any = None
        self.data: Optional[MultipointSocket] = None          # the data plane's receiver
        self.sender: Optional[MultipointSocket] = None        # a root's sender (may be data)
        self.root_peer: Optional[Tuple[Any, ...]] = None     # a leaf: the root's data address
        self.role: int = int(JL_BOTH)
        self.leaves: Set["RootedSocket"] = set()             # a root: its c_leaf sockets
        self.root: Optional["RootedSocket"] = None           # a root's c_leaf: its root
        self.peer_data: Optional[Tuple[Any, ...]] = None     # a root's c_leaf: leaf data address
        self.caller_data = b""                               # what the peer sent with its request
        self.keepalive = KEEPALIVE
        self.wanted: Tuple[Optional[str], Optional[int], str, int] = (None, None, "multicast", 1)


class RootedSocket(MultipointSocket):
    """A multipoint socket of mpoint's rooted protocol (SOCK_STREAM):
    c_root or c_leaf, d_root or d_leaf.  See the module's docstring."""

    __slots__ = ("_rs",)

    def __init__(self, family: int = _stdsocket.AF_INET, type: int = _stdsocket.SOCK_STREAM,
                 proto: int = 0, fileno: Optional[int] = None, *,
                 flags: int = _C_LEAF | _D_LEAF) -> None:
        if family not in (_stdsocket.AF_INET, _stdsocket.AF_INET6):
            raise _fail("WSAEAFNOSUPPORT", "WSASocket",
                        f"family {family}: a rooted socket is AF_INET or AF_INET6")
        if proto not in (0, _stdsocket.IPPROTO_TCP):
            raise _fail("WSAEPROTONOSUPPORT", "WSASocket",
                        f"protocol {proto}: a rooted socket's control connection is TCP")
        f = check_flags(flags)
        _stdsocket.socket.__init__(self, family, _stdsocket.SOCK_STREAM,
                                   _stdsocket.IPPROTO_TCP, fileno)
        self._mp = _core.SocketState(family, f, _core.BOUND_ASK)
        self._rs = _State()

    # -- what the socket is --------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return bool(self._mp.flags & _C_ROOT)

    @property
    def _wire_plane(self) -> int:
        """This socket's data plane as the protocol writes it."""
        return wire.D_ROOT if self._mp.flags & _D_ROOT else wire.D_LEAF

    @property
    def _leaf_flags(self) -> int:
        """The flags of a c_leaf socket in this socket's session."""
        return _C_LEAF | (self._mp.flags & (_D_ROOT | _D_LEAF))

    @property
    def phase(self) -> str:
        """"idle", "joining", "joined" (admitted; a root's c_leaf sockets are
        "joined"), "listening" or "closed"."""
        return self._rs.phase

    @property
    def join_error(self) -> Optional[int]:
        """The Winsock code of the last join's outcome (0: admitted), None
        before one ends; what FD_CONNECT reports."""
        return self._rs.join_error

    @property
    def session(self) -> Optional[Session]:
        """The data channel: a root's once it listens or invites; a leaf's
        once admitted."""
        s = self._rs.session
        return Session._of(s) if s is not None else None

    @property
    def data(self) -> Optional[MultipointSocket]:
        """The data plane's UDP socket (a root's, or an admitted leaf's)."""
        return self._rs.data

    # -- SIO_SET_QOS / SIO_GET_QOS: on the data channel, which carries the sends
    def set_qos(self, qos: Any) -> None:
        """Applies ``qos`` to the socket's data channel (a root's sender, a
        leaf's data socket): what send_data sends is shaped and marked.
        WSAENOTCONN before there is a channel (a leaf: give ``sqos`` to
        join_leaf)."""
        rs = self._rs
        target = rs.sender or rs.data
        if target is None:
            raise _fail("WSAENOTCONN", "SIO_SET_QOS", "no data channel yet: a leaf gives sqos "
                        "to join_leaf, a root calls listen or join_leaf first")
        from . import qos_apply
        qos_apply.set_qos(target, qos, JL_BOTH if self.is_root else (rs.role or JL_BOTH))

    def get_qos(self) -> Any:
        """The QOS the data channel applied (``QOS()`` when none)."""
        rs = self._rs
        target = rs.sender or rs.data
        if target is None:
            from .qos import QOS
            return QOS()
        return target.get_qos()

    @property
    def leaves(self) -> List["RootedSocket"]:
        """A root's c_leaf sockets, one per admitted leaf."""
        with self._rs.lock:
            return list(self._rs.leaves)

    @property
    def caller_data(self) -> bytes:
        """A root's c_leaf socket: the caller data its leaf sent."""
        return self._rs.caller_data

    # -- the session a root announces -------------------------------------------------
    def configure_session(self, group: Optional[str] = None, port: Optional[int] = None, *,
                          transport: str = "multicast", scope: int = 1,
                          interface: Any = None, keepalive: Optional[float] = None) -> None:
        """A root's data channel, before it listens or invites: ``group``
        and ``port`` (default: derived from the root's port), ``transport``
        "multicast" or "unicast" (one copy per leaf: networks without
        multicast), the multicast ``scope``, the ``interface`` for it, and the
        ``keepalive`` idle seconds of every control connection."""
        # Each argument converted once (conversion may run caller code),
        # before the socket's state is looked at.
        if isinstance(scope, bool) or not hasattr(scope, "__index__"):
            raise TypeError(f"scope must be an int, not {type(scope).__name__}")
        hops = scope.__index__()
        if not 0 <= hops <= 255:
            raise ValueError(f"scope must be 0..255, not {hops}")
        idle = None if keepalive is None else float(keepalive)
        if idle is not None and not 1 <= idle <= 7200:
            raise ValueError(f"keepalive must be 1..7200 seconds, not {idle}")
        number: Optional[int] = None
        if port is not None:
            if isinstance(port, bool) or not hasattr(port, "__index__"):
                raise TypeError(f"port must be an int, not {type(port).__name__}")
            number = port.__index__()
            if not 0 < number < 65536:
                raise _fail("WSAEFAULT", "configure_session", f"port {number} is out of range")
        if transport not in ("multicast", "unicast"):
            raise ValueError(f"transport must be 'multicast' or 'unicast', not {transport!r}")
        text: Optional[str] = None
        if group is not None:
            if not isinstance(group, str):
                raise TypeError(f"group must be a str, not {type(group).__name__}")
            text = str(group)
            try:
                g = ipaddress.ip_address(text)
            except ValueError:
                raise _fail("WSAEINVAL", "configure_session",
                            f"{text!r}: a numeric group address is required") from None
            if not g.is_multicast or (g.version == 4) != (self.family == _stdsocket.AF_INET):
                raise _fail("WSAEINVAL", "configure_session",
                            f"{text} is not a multicast group of the socket's family")
        rs = self._rs
        if not self.is_root:
            raise _fail("WSAEINVAL", "configure_session", "only a c_root socket announces one")
        with rs.lock:
            if rs.phase == "closed":
                raise _fail("WSAENOTSOCK", "configure_session", "the socket is closed")
            if rs.session is not None or rs.data is not None:
                raise _fail("WSAEISCONN", "configure_session", "the session is already open")
            rs.interface = interface
            if idle is not None:
                rs.keepalive = idle
            rs.wanted = (text, number, str(transport), hops)

    def _open_session(self) -> None:
        """A root's data channel and its announcement, made once."""
        rs = self._rs
        with rs.lock:
            if rs.session is None:
                rs.data, rs.sender, rs.session = data_mod.root_channel(
                    self.family, self._wire_plane, rs.wanted, rs.interface, self.getsockname()[1])

    # -- listen / accept ---------------------------------------------------------------
    def listen(self, backlog: int = 128) -> None:
        """A c_root listens for leaves' joins; a c_leaf for a root's invitations."""
        rs = self._rs
        with rs.lock:
            if rs.phase not in ("idle", "listening"):
                raise _fail("WSAEISCONN" if rs.phase == "joined" else "WSAEINVAL", "listen",
                            f"the socket is {rs.phase}")
            if rs.phase == "listening":
                return
            _stdsocket.socket.listen(self, backlog)
            if self.is_root:
                self._open_session()
            lst = engine_mod.Listener(self, wire.JOIN if self.is_root else wire.INVITE,
                                      self._queued)
            rs.listener, rs.phase = lst, "listening"
        engine_mod.engine().add_listener(lst)

    def _queued(self, conn: _stdsocket.socket, address: Tuple[Any, ...],
                request: wire.Request) -> None:
        """Engine thread: a complete request; FD_ACCEPT when the queue was empty."""
        rs = self._rs
        with rs.lock:
            if rs.phase != "listening":
                engine_mod.reset(conn)
                return
            rs.queue.append(_Queued(conn, address, request))
            rs.cond.notify_all()
            first = len(rs.queue) == 1
        if first:
            self._deliver(_FD_ACCEPT, 0)

    def accept(self, condition: Optional[Condition] = None) -> Tuple["RootedSocket", Any]:
        """WSAAccept: the next complete request, admitted if ``condition``
        (None: always) answers CF_ACCEPT or (CF_ACCEPT, callee_data).
        CF_REJECT: the peer learns WSAECONNREFUSED, and so does the caller;
        CF_DEFER: the request stays queued for the next accept, and the caller
        gets WSATRY_AGAIN.  Waits as the socket's timeout says (0: raises
        WSAEWOULDBLOCK at once when nothing is complete).  ``condition(caller_data,
        sqos, gqos)`` gets the peer's QoS as WSAAccept's lpSQOS / lpGQOS: a
        mpoint.QOS, the bytes as they came when they are not a QOS
        structure, or None when the peer sent none."""
        rs = self._rs
        timeout = self.gettimeout()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            item = self._take(deadline)
            req = item.request
            if not self._alive(item.conn):
                engine_mod.reset(item.conn)
                continue
            own = rs.session.plane if self.is_root else self._wire_plane  # type: ignore[union-attr]
            theirs = req.plane if self.is_root else req.session.plane  # type: ignore[union-attr]
            if own != theirs:
                self._refuse(item, wire.WSAEINVAL, "the session's data plane differs from "
                             "the joining socket's")
                continue
            callee: Union[bytes, bool, None] = b""
            if condition is not None:
                try:
                    verdict = condition(req.caller_data, _their_qos(req.sqos),
                                        _their_qos(req.gqos))
                    callee = self._verdict(verdict)
                except BaseException:
                    self._requeue(item)          # never lose a request to a bad condition
                    raise
                if callee is None:
                    self._requeue(item)
                    raise _fail("WSATRY_AGAIN", "WSAAccept", "the condition deferred the request "
                                "(CF_DEFER): it stays queued for the next accept")
                if callee is False:
                    self._refuse(item, wire.WSAECONNREFUSED, "the condition rejected the join")
                    self._repost()
                    raise _fail("WSAECONNREFUSED", "WSAAccept",
                                "the condition rejected the request (CF_REJECT)")
            if rs.phase != "listening":            # the condition closed this socket
                engine_mod.reset(item.conn)
                raise _fail("WSAENOTSOCK", "WSAAccept", "the socket was closed during accept")
            leaf = self._admit(item, callee if isinstance(callee, bytes) else b"")
            self._repost()
            if leaf is not None:
                return leaf, item.address

    @staticmethod
    def _verdict(verdict: Any) -> Union[bytes, bool, None]:
        """callee bytes for CF_ACCEPT, False for CF_REJECT, None for CF_DEFER."""
        data: object = b""
        if isinstance(verdict, tuple):
            if len(verdict) != 2:
                raise TypeError("a condition returns CF_* or (CF_ACCEPT, callee_data)")
            verdict, data = verdict
            if verdict != CF_ACCEPT:
                raise ValueError("only CF_ACCEPT carries callee data")
        if isinstance(verdict, bool) or verdict not in (CF_ACCEPT, CF_REJECT, CF_DEFER):
            raise ValueError(f"a condition returns CF_ACCEPT, CF_REJECT or CF_DEFER, "
                             f"not {verdict!r}")
        if verdict == CF_REJECT:
            return False
        if verdict == CF_DEFER:
            return None
        return _user_bytes(data, "callee_data", "WSAAccept")

    def _take(self, deadline: Optional[float]) -> _Queued:
        rs = self._rs
        with rs.lock:
            while True:
                if rs.phase == "closed":
                    raise _fail("WSAENOTSOCK", "WSAAccept", "the socket was closed")
                if rs.phase != "listening":
                    raise _fail("WSAEINVAL", "WSAAccept", "the socket is not listening")
                if rs.queue:
                    return rs.queue.pop(0)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    if deadline is not None and self.gettimeout() == 0:
                        raise _fail("WSAEWOULDBLOCK", "WSAAccept", "no complete join request")
                    raise _fail("WSAETIMEDOUT", "WSAAccept", "no join request in time")
                rs.cond.wait(0.1 if left is None else min(0.1, left))

    def _requeue(self, item: _Queued) -> None:
        with self._rs.lock:
            if self._rs.phase == "listening":
                self._rs.queue.insert(0, item)
                return
        engine_mod.reset(item.conn)

    def _repost(self) -> None:
        """FD_ACCEPT again while requests remain (Winsock re-enables it on accept)."""
        if self._rs.queue:
            self._deliver(_FD_ACCEPT, 0)

    @staticmethod
    def _alive(conn: _stdsocket.socket) -> bool:
        try:
            return conn.recv(1, _stdsocket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    @staticmethod
    def _refuse(item: _Queued, code: int, text: str) -> None:
        try:
            item.conn.send(wire.reject(code, text))
        except OSError:
            pass
        item.conn.close()

    def _admit(self, item: _Queued, callee: bytes) -> Optional["RootedSocket"]:
        """Answers ADMIT (a root) or ACCEPT (a leaf invited) and makes the
        c_leaf socket of the connection; None if the peer is gone."""
        rs, req = self._rs, item.request
        conn = item.conn
        leaf_data: Optional[MultipointSocket] = None
        try:
            if self.is_root:
                answer = wire.admit(rs.session, callee)         # type: ignore[arg-type]
            else:
                leaf_data = data_mod.leaf_channel(self.family, req.session,  # type: ignore[arg-type]
                                                  req.role, self._rs.interface)
                answer = wire.accept(leaf_data.getsockname()[1], callee)
            conn.settimeout(engine_mod.HANDSHAKE_TIMEOUT)
            conn.sendall(answer)
        except OSError:
            if leaf_data is not None:
                leaf_data.close()
            engine_mod.reset(conn)
            return None
        sock = self._connected(conn)
        s = sock._rs
        s.caller_data = req.caller_data
        if self.is_root:
            s.session, s.role, s.root = rs.session, req.role, self
            s.peer_data = (item.address[0], req.data_port)
            with rs.lock:
                closed = rs.phase == "closed"
                if not closed:
                    rs.leaves.add(sock)
            if closed:                             # closed by another thread meanwhile
                sock._reset()
                return None
        else:
            s.session, s.role, s.data = req.session, req.role, leaf_data
            s.root_peer = (item.address[0], req.session.root_port)   # type: ignore[union-attr]
        return sock

    def _connected(self, conn: _stdsocket.socket) -> "RootedSocket":
        """A c_leaf RootedSocket for an established control connection,
        registered like this socket (Winsock: accept's socket has the
        listening socket's WSAEventSelect events)."""
        flags = self._leaf_flags
        sock = RootedSocket(self.family, flags=flags, fileno=conn.detach())
        sock._rs.keepalive = self._rs.keepalive
        sock._session_up()
        sock.settimeout(self.gettimeout())
        self._inherit_registration(sock)
        return sock

    def _inherit_registration(self, sock: "RootedSocket") -> None:
        reg = self._mp.reg
        if reg is not None:
            evset: "EventSet" = reg[0]
            try:
                evset.register(sock, evset.interest(self))
            except (OSError, KeyError):
                pass                            # the set closed meanwhile

    # -- WSAJoinLeaf ---------------------------------------------------------------------
    def join_leaf(self, name: Any, caller_data: Optional[Any] = None,
                  callee_data: Optional[bytearray] = None, sqos: Optional[object] = None,
                  gqos: Optional[object] = None, flags: int = JL_BOTH, *,
                  interface: Any = None, source: Optional[str] = None) -> "RootedSocket":
        """A c_leaf joins the session of the root at ``name`` and returns
        itself; a c_root invites the leaf listening at ``name`` and returns
        the new c_leaf socket for it.  ``flags`` is the leaf's role;
        ``callee_data`` (a bytearray) receives the peer's answer data, its
        length set to what arrived (WSAEFAULT if its initial length is too
        small); ``interface`` is the data plane's multicast interface."""
        role = _role(flags)
        peer = _numeric_peer(self.family, name)
        caller = _user_bytes(caller_data, "caller_data", "WSAJoinLeaf")
        _check_callee(callee_data)
        qos = None
        if sqos is not None or gqos is not None:
            if self.is_root and sqos is not None:
                raise _fail("WSAEOPNOTSUPP", "WSAJoinLeaf",
                            "sqos on an invitation: the root's data channel serves every "
                            "leaf; set_qos on the root socket shapes it")
            from . import qos_apply
            qos = qos_apply.plan_request(role, sqos, gqos)     # WSAEOPNOTSUPP before dialling
        if source is not None:
            raise _fail("WSAEINVAL", "WSAJoinLeaf", "a rooted join takes no source filter")
        timeout = self.gettimeout()
        blocking = timeout != 0
        wait = JOIN_TIMEOUT if not timeout else timeout
        if self.is_root:
            return self._invite(peer, caller, callee_data, role, interface, blocking, wait)
        return self._join(peer, caller, callee_data, role, interface, blocking, wait, qos)

    def _join(self, peer: Tuple[Any, ...], caller: bytes, callee: Optional[bytearray],
              role: int, interface: Any, blocking: bool, wait: float,
              qos: Optional[Tuple[Any, Any]] = None) -> "RootedSocket":
        rs = self._rs
        with rs.lock:
            if rs.phase == "joining":
                raise _fail("WSAEALREADY", "WSAJoinLeaf", "a join is in progress: wait for "
                            "its FD_CONNECT")
            if rs.phase == "joined":
                raise _fail("WSAEISCONN", "WSAJoinLeaf", "already a member of the session")
            if rs.phase == "closed" or self.fileno() < 0:
                raise _fail("WSAENOTSOCK", "WSAJoinLeaf", "the socket is closed")
            if rs.phase != "idle":
                raise _fail("WSAEINVAL", "WSAJoinLeaf", f"the socket is {rs.phase}")
            rs.phase, rs.interface, rs.join_error = "joining", interface, None
            # The fallback's data port travels in the JOIN: bound before it.
            spare = MultipointSocket(self.family)
            spare.bind((data_mod.wildcard(self.family), 0))
            frame = wire.request(wire.JOIN, self._wire_plane, role, spare.getsockname()[1], caller,
                                 sqos=qos[0].to_bytes(pointer_size=8) if qos is not None
                                 else b"")
            dial = engine_mod.Dial(self, peer, frame, wait)
            rs.dial = dial

        def finish(result: Union[wire.Message, engine_mod.DialError]) -> Optional[Exception]:
            return self._joined(dial, result, spare, callee, role, peer, qos)

        if blocking:
            error = finish(dial.outcome())
            if error is not None:
                raise error
            return self
        dial.begin()
        self._release_held()
        engine_mod.engine().start_dial(dial, lambda result: self._completed(finish(result)))
        return self

    def _joined(self, dial: engine_mod.Dial, result: Union[wire.Message, engine_mod.DialError],
                spare: MultipointSocket, callee: Optional[bytearray], role: int,
                peer: Tuple[Any, ...], qos: Optional[Tuple[Any, Any]] = None
                ) -> Optional[Exception]:
        """A leaf's join ended: admitted (None) or the error, the socket renewed."""
        rs = self._rs
        error: Optional[errors.MultipointError] = None
        with rs.lock:
            rs.dial = None
            if rs.phase != "joining":          # closed meanwhile
                spare.close()
                return _fail("WSAENOTSOCK", "WSAJoinLeaf", "the socket was closed while joining")
            try:
                admit = _answer(result, wire.Admit, "root")
                self._fill_callee(callee, admit.callee_data)
                session = admit.session
                if session.transport == wire.UNICAST:
                    data = spare
                    data.connect((peer[0], session.root_port))    # hears only the root
                else:
                    spare.close()
                    data = data_mod.leaf_channel(self.family, session, role, rs.interface)
                rs.session, rs.data, rs.role = session, data, role
                rs.root_peer = (peer[0], session.root_port)
                if qos is not None:          # the leaf's sends shaped and marked
                    self._apply_qos(data, qos, session)
                self._session_up()
            except OSError as exc:
                spare.close()
                error = _as_mpoint(exc)
                rs.join_error = error.wsa_errno or 0
                rs.phase = "idle"
                self._renew()
        return error

    def _apply_qos(self, data: MultipointSocket, qos: Tuple[Any, Any],
                   session: wire.Session) -> None:
        """A leaf's lpSQOS on its data socket, which carries all it sends."""
        from . import qos_apply
        dest = (session.group, session.group_port) if session.transport == wire.MULTICAST \
            else self._rs.root_peer
        pending = qos_apply.Pending(data, *qos)
        pending.apply(dest)
        pending.commit()

    def _session_up(self) -> None:
        """An admitted control connection: keep-alive on, and a reset (linger
        0) if this process dies; the phase says joined."""
        _keepalive(self, self._rs.keepalive)
        self.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_LINGER, _LINGER_RESET)
        self._rs.phase, self._rs.join_error = "joined", 0

    @staticmethod
    def _fill_callee(buf: Optional[bytearray], data: bytes) -> None:
        if buf is None:
            return
        if len(data) > len(buf):
            raise _fail("WSAEFAULT", "WSAJoinLeaf", f"callee_data holds {len(buf)} bytes; "
                        f"the peer answered {len(data)}")
        buf[:] = data

    def _completed(self, error: Optional[Exception]) -> None:
        """Engine thread: a non-blocking join ended; FD_CONNECT says how."""
        code = 0 if error is None else (getattr(error, "wsa_errno", None) or 10053)
        self._deliver(_FD_CONNECT, code)

    def _renew(self) -> None:
        """A failed join leaves the socket as new: a fresh descriptor (a TCP
        socket cannot connect twice everywhere), the same timeout, and the
        same EventSet registration."""
        if self.fileno() < 0:
            return
        reg = self._mp.reg
        evset: Optional["EventSet"] = reg[0] if reg is not None else None
        events = evset.interest(self) if evset is not None else 0
        timeout = reg[2] if reg is not None else self.gettimeout()
        if evset is not None:
            evset.unregister(self)
        fresh = _stdsocket.socket(self.family, _stdsocket.SOCK_STREAM, _stdsocket.IPPROTO_TCP)
        fd = fresh.detach()
        family = self.family
        _csocket.socket.close(self)
        _csocket.socket.__init__(self, family, _stdsocket.SOCK_STREAM, _stdsocket.IPPROTO_TCP, fd)
        self.settimeout(timeout)
        if evset is not None:
            evset.register(self, events)

    # -- root-initiated ---------------------------------------------------------------
    def _invite(self, peer: Tuple[Any, ...], caller: bytes, callee: Optional[bytearray],
                role: int, interface: Any, blocking: bool, wait: float) -> "RootedSocket":
        rs = self._rs
        with rs.lock:
            if rs.phase == "closed":
                raise _fail("WSAENOTSOCK", "WSAJoinLeaf", "the socket is closed")
            if rs.root_dial:
                raise _fail("WSAEALREADY", "WSAJoinLeaf", "an invitation is in progress: "
                            "wait for its FD_CONNECT")
            if rs.interface is None:
                rs.interface = interface
            if self.getsockname()[1] == 0:
                _stdsocket.socket.bind(self, (data_mod.wildcard(self.family), 0))
            self._open_session()
            for leaf in rs.leaves:
                try:
                    if leaf.getpeername()[:2] == peer[:2]:
                        raise _fail("WSAEISCONN", "WSAJoinLeaf",
                                    f"{peer[0]} port {peer[1]} is already a leaf")
                except OSError as exc:
                    if isinstance(exc, errors.MultipointError):
                        raise
            rs.root_dial = True
        flags = self._leaf_flags
        leaf = RootedSocket(self.family, flags=flags)
        leaf.settimeout(self.gettimeout())
        frame = wire.request(wire.INVITE, self._wire_plane, role, 0, caller, session=rs.session)
        dial = engine_mod.Dial(leaf, peer, frame, wait)
        leaf._rs.phase, leaf._rs.dial, leaf._rs.keepalive = "joining", dial, rs.keepalive

        def finish(result: Union[wire.Message, engine_mod.DialError]) -> Optional[Exception]:
            # In progress until the new leaf is among the root's leaves: a
            # second invitation of the same peer is WSAEALREADY up to then,
            # WSAEISCONN after, never a second session.
            try:
                return leaf._invited(self, dial, result, callee, role, peer)
            finally:
                with rs.lock:
                    rs.root_dial = False

        if blocking:
            error = finish(dial.outcome())
            if error is not None:
                leaf.close()
                raise error
            return leaf
        dial.begin()
        self._inherit_registration(leaf)
        engine_mod.engine().start_dial(dial, lambda result: leaf._completed(finish(result)))
        return leaf

    def _invited(self, root: "RootedSocket", dial: engine_mod.Dial,
                 result: Union[wire.Message, engine_mod.DialError], callee: Optional[bytearray],
                 role: int, peer: Tuple[Any, ...]) -> Optional[Exception]:
        """The root's new c_leaf socket: its invitation ended."""
        rs = self._rs
        with rs.lock:
            rs.dial = None
            if rs.phase != "joining":
                return _fail("WSAENOTSOCK", "WSAJoinLeaf", "the socket was closed while inviting")
            try:
                accept = _answer(result, wire.Accept, "leaf")
                self._fill_callee(callee, accept.callee_data)
                rs.session, rs.role, rs.root = root._rs.session, role, root
                rs.peer_data = (peer[0], accept.data_port)
                self._session_up()
            except OSError as exc:
                error = _as_mpoint(exc)
                rs.join_error = error.wsa_errno or 0
                rs.phase = "idle"
                return error
        with root._rs.lock:
            if root._rs.phase == "closed":
                return _fail("WSAECONNABORTED", "WSAJoinLeaf", "the root closed meanwhile")
            root._rs.leaves.add(self)
        return None

    # -- events --------------------------------------------------------------------------
    def _deliver(self, event: int, code: int) -> None:
        """Posts ``event`` to the socket's EventSet, or keeps it for the next
        registration (Winsock records what happened before WSAEventSelect)."""
        with self._rs.lock:
            reg = self._mp.reg
            if reg is None:
                self._rs.pending.append((event, code))
                return
        try:
            reg[0]._post(reg[1], event, code)
        except OSError:
            pass                              # the set closed meanwhile

    def _on_register(self) -> None:
        """EventSet.register's hook: events that happened before it are
        posted now; and a socket that has no connection yet is watched
        for nothing the poller reports (FD_READ, FD_WRITE, FD_CLOSE) until
        its join begins: a TCP socket that never connected polls as hung
        up, which Winsock never reports."""
        with self._rs.lock:
            pending, self._rs.pending = self._rs.pending, []
            hide = self._rs.phase == "idle"
        if hide:
            self._hold_back()
        for event, code in pending:
            self._deliver(event, code)

    def _hold_back(self) -> None:
        reg = self._mp.reg
        if reg is None:
            return
        events = int(reg[0].interest(self))
        if events & _FD_KERNEL:
            reg[0]._modify(reg[1], events & ~_FD_KERNEL)
            self._rs.held_back = True

    def _release_held(self) -> None:
        reg = self._mp.reg
        if reg is not None and self._rs.held_back:
            self._rs.held_back = False
            reg[0]._modify(reg[1], int(reg[0].interest(self)))

    # -- the data plane (rooted_data.py) -------------------------------------------------
    def send_data(self, data: Any) -> int:
        """Sends one datagram on the session's data plane: from a root, to
        every leaf; from a leaf, to the root (d_root) or to every member
        (d_leaf).  A receiving-only leaf sends nothing (WSAENOTCONN)."""
        return data_mod.send(self, data)

    def recv_data(self, bufsize: int = 65536, timeout: Optional[float] = None
                  ) -> Tuple[bytes, Any]:
        """One datagram of the data plane and who sent it, waiting up to
        ``timeout`` seconds (None: forever; WSAETIMEDOUT when it passes, 0:
        WSAEWOULDBLOCK at once when none waits).  A root of a unicast d_leaf
        session relays what a leaf sent to every other leaf as it receives it."""
        return data_mod.recv(self, bufsize, timeout)

    # -- closing ------------------------------------------------------------------------
    def close(self) -> None:
        """A c_leaf leaves in order (its peer's FD_CLOSE has code 0); a root
        ends the session: every leaf's connection is reset (WSAECONNRESET),
        its c_leaf sockets closed, its data socket too.  A join or an
        accept waiting in another thread ends with WSAENOTSOCK."""
        rs = self._rs
        with rs.lock:
            phase, rs.phase = rs.phase, "closed"
            dial, rs.dial = rs.dial, None
            lst, rs.listener = rs.listener, None
            queue, rs.queue = rs.queue, []
            leaves, rs.leaves = list(rs.leaves), set()
            data, rs.data = rs.data, None
            sender, rs.sender = rs.sender, None
            root, rs.root = rs.root, None
            rs.cond.notify_all()
        if dial is not None:
            dial.cancelled = True
            engine_mod.engine().cancel_dial(dial)
        if lst is not None:
            engine_mod.engine().remove_listener(lst)
        for item in queue:
            engine_mod.reset(item.conn)
        for leaf in leaves:
            leaf._reset()
        if data is not None:
            data.close()
        if sender is not None and sender is not data:
            sender.close()
        if root is not None:
            with root._rs.lock:
                root._rs.leaves.discard(self)
        if phase == "joined" and self.fileno() >= 0:
            try:                                   # an orderly leave: FIN, not a reset
                self.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_LINGER, _LINGER_OFF)
            except OSError:
                pass
        super().close()

    def _reset(self) -> None:
        """The root went away: this c_leaf's connection is reset."""
        if self.fileno() >= 0:
            try:
                self.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass
        with self._rs.lock:
            self._rs.phase, self._rs.root = "closed", None
            self._rs.cond.notify_all()
        MultipointSocket.close(self)              # keeps the reset linger

    def __repr__(self) -> str:
        kind = ("c_root" if self.is_root else "c_leaf") + "/" + \
               ("d_root" if self._mp.flags & _D_ROOT else "d_leaf")
        return f"<mpoint.RootedSocket {kind} {self._rs.phase} fd={self.fileno()}>"
