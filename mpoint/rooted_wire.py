"""The rooted protocol's messages (docs/rooted-protocol.md): encoding, and
one incremental parser that never reads past the frame it needs and never
holds more than one frame's bytes.

Contract: ``FrameReader.need()`` says how many more bytes the current frame
needs (so a caller reading a stream never consumes side traffic that follows
a handshake), ``feed()`` takes at most that many, and ``message()`` returns
the decoded message once a frame is complete.  Every malformed input raises
``ProtocolError`` with the Winsock code the other side is told in a REJECT
(None: not an mpoint peer, reset without an answer)."""
from __future__ import annotations

import ipaddress
import struct
from typing import Any, NamedTuple, Optional, Tuple, Union

MAGIC = b"MR"
FRAMING_VERSION = 1
PROTOCOL_VERSION = 1
MAX_USER_DATA = 16384
MAX_QOS = 1024
MAX_TEXT = 256
MAX_PAYLOAD = 19456

JOIN, INVITE, ADMIT, ACCEPT, REJECT = 1, 2, 3, 4, 5
TYPE_NAMES = {JOIN: "JOIN", INVITE: "INVITE", ADMIT: "ADMIT", ACCEPT: "ACCEPT", REJECT: "REJECT"}

D_ROOT, D_LEAF = 1, 2                     # data plane values on the wire
MULTICAST, UNICAST = 1, 2                 # transport values on the wire
_ROLES = (1, 2, 4)                        # JL_SENDER_ONLY, JL_RECEIVER_ONLY, JL_BOTH

# Winsock codes told to the peer (mpoint.errors has the classes).
WSAEINVAL, WSAEMSGSIZE, WSAECONNREFUSED, WSAVERNOTSUPPORTED = 10022, 10040, 10061, 10092

_HEADER = struct.Struct(">2sBBI")
HEADER_SIZE = _HEADER.size
_REQUEST = struct.Struct(">BBBBHHHH")     # version, plane, role, 0, data port, c, s, g
_SESSION = struct.Struct(">BBBB16sHH")    # transport, plane, family, scope, group, gport, rport
_ADMIT = struct.Struct(">BB")             # version, 0 (then session block, callee)
_ACCEPT = struct.Struct(">BBH")           # version, 0, data port (then callee)
_LEN = struct.Struct(">H")
_REJECT = struct.Struct(">IH")


class ProtocolError(Exception):
    """A malformed message: ``code`` is the Winsock code for the REJECT
    (None: not an mpoint peer)."""

    def __init__(self, code: Optional[int], text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class Session(NamedTuple):
    """The data channel a root announces (the session block)."""
    transport: int            # MULTICAST or UNICAST
    plane: int                # D_ROOT or D_LEAF
    family: int               # 4 or 6
    scope: int                # TTL / hop limit
    group: str                # "" for unicast
    group_port: int
    root_port: int            # the root's UDP data port


class Request(NamedTuple):
    """JOIN (leaf-initiated) or INVITE (root-initiated, with ``session``)."""
    kind: int
    version: int
    plane: int
    role: int
    data_port: int
    caller_data: bytes
    sqos: bytes
    gqos: bytes
    session: Optional[Session]


class Admit(NamedTuple):
    version: int
    session: Session
    callee_data: bytes


class Accept(NamedTuple):
    version: int
    data_port: int
    callee_data: bytes


class Reject(NamedTuple):
    code: int
    text: str


Message = Union[Request, Admit, Accept, Reject]


# -- encoding -----------------------------------------------------------------------

def _frame(kind: int, payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, FRAMING_VERSION, kind, len(payload)) + payload


def _session_bytes(s: Session) -> bytes:
    packed = ipaddress.ip_address(s.group).packed if s.group else b""
    return _SESSION.pack(s.transport, s.plane, s.family, s.scope, packed.ljust(16, b"\0"),
                         s.group_port, s.root_port)


def request(kind: int, plane: int, role: int, data_port: int, caller_data: bytes,
            sqos: bytes = b"", gqos: bytes = b"", session: Optional[Session] = None) -> bytes:
    """A JOIN, or an INVITE when ``session`` is given.  Sizes are the
    caller's to check (rooted.py raises WSAEFAULT before calling)."""
    payload = _REQUEST.pack(PROTOCOL_VERSION, plane, role, 0, data_port,
                            len(caller_data), len(sqos), len(gqos)) + caller_data + sqos + gqos
    if session is not None:
        payload += _session_bytes(session)
    return _frame(INVITE if session is not None else JOIN, payload)


def admit(session: Session, callee_data: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    return _frame(ADMIT, _ADMIT.pack(version, 0) + _session_bytes(session)
                  + _LEN.pack(len(callee_data)) + callee_data)


def accept(data_port: int, callee_data: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    return _frame(ACCEPT, _ACCEPT.pack(version, 0, data_port)
                  + _LEN.pack(len(callee_data)) + callee_data)


def reject(code: int, text: str) -> bytes:
    raw = text.encode("utf-8", "replace")[:MAX_TEXT]
    raw = raw.decode("utf-8", "ignore").encode("utf-8")      # never a cut character
    return _frame(REJECT, _REJECT.pack(code, len(raw)) + raw)


# -- decoding -----------------------------------------------------------------------

class _Cursor:
    """Reads fields from one payload; running short is malformed."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ProtocolError(WSAEINVAL, "a field runs past the end of the payload")
        piece = self.data[self.at:self.at + n]
        self.at += n
        return piece

    def unpack(self, fmt: struct.Struct) -> Tuple[Any, ...]:
        return fmt.unpack(self.take(fmt.size))

    def end(self) -> None:
        if self.at != len(self.data):
            raise ProtocolError(WSAEINVAL, f"{len(self.data) - self.at} bytes after the last field")


def _check(ok: bool, code: int, text: str) -> None:
    if not ok:
        raise ProtocolError(code, text)


def _user(cur: _Cursor, n: int, limit: int, what: str) -> bytes:
    _check(n <= limit, WSAEMSGSIZE, f"{what} of {n} bytes (at most {limit})")
    return cur.take(n)


def _session(cur: _Cursor) -> Session:
    transport, plane, family, scope, raw, gport, rport = _SESSION.unpack(cur.take(_SESSION.size))
    _check(transport in (MULTICAST, UNICAST), WSAEINVAL, f"transport {transport}")
    _check(plane in (D_ROOT, D_LEAF), WSAEINVAL, f"data plane {plane}")
    _check(family in (4, 6), WSAEINVAL, f"address family {family}")
    group = ""
    if transport == MULTICAST:
        addr = ipaddress.ip_address(raw[:4] if family == 4 else raw)
        _check(addr.is_multicast, WSAEINVAL, f"group {addr} is not multicast")
        _check(gport != 0, WSAEINVAL, "group port 0")
        group = str(addr)
    _check(rport != 0, WSAEINVAL, "root data port 0")
    return Session(transport, plane, family, scope, group, gport, rport)


def _request(kind: int, cur: _Cursor) -> Request:
    version, plane, role, _, port, c, s, g = cur.unpack(_REQUEST)
    _check(version >= 1, WSAVERNOTSUPPORTED, "protocol version 0")
    _check(plane in (D_ROOT, D_LEAF), WSAEINVAL, f"data plane {plane}")
    _check(role in _ROLES, WSAEINVAL, f"role {role}")
    caller = _user(cur, c, MAX_USER_DATA, "caller data")
    sqos = _user(cur, s, MAX_QOS, "sending QoS")
    gqos = _user(cur, g, MAX_QOS, "group QoS")
    session = _session(cur) if kind == INVITE else None
    return Request(kind, version, plane, role, port, caller, sqos, gqos, session)


def decode(kind: int, payload: bytes) -> Message:
    """One complete payload of type ``kind`` as a message."""
    cur = _Cursor(payload)
    msg: Message
    if kind in (JOIN, INVITE):
        msg = _request(kind, cur)
    elif kind == ADMIT:
        version, _ = cur.unpack(_ADMIT)
        session = _session(cur)
        (n,) = cur.unpack(_LEN)
        msg = Admit(version, session, _user(cur, n, MAX_USER_DATA, "callee data"))
    elif kind == ACCEPT:
        version, _, port = cur.unpack(_ACCEPT)
        (n,) = cur.unpack(_LEN)
        msg = Accept(version, port, _user(cur, n, MAX_USER_DATA, "callee data"))
    elif kind == REJECT:
        code, n = cur.unpack(_REJECT)
        raw = _user(cur, n, MAX_TEXT, "reject text")
        msg = Reject(code, raw.decode("utf-8", "replace"))
    else:
        raise ProtocolError(WSAEINVAL, f"unknown message type {kind}")
    cur.end()
    return msg


class FrameReader:
    """One frame at a time from a byte stream; at most HEADER_SIZE +
    MAX_PAYLOAD bytes held.  The header is checked as soon as it is
    complete, before any of the payload is accepted."""

    __slots__ = ("_buf", "_kind", "_length")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._kind = 0
        self._length = -1          # payload length, once the header is read

    def need(self) -> int:
        """Bytes the current frame still needs (never 0 before message())."""
        if self._length < 0:
            return HEADER_SIZE - len(self._buf)
        return self._length - len(self._buf)

    def feed(self, data: bytes) -> None:
        """Takes ``data`` (at most ``need()`` bytes)."""
        if len(data) > self.need():
            raise ValueError("fed past the current frame")
        self._buf += data
        if self._length < 0 and len(self._buf) == HEADER_SIZE:
            magic, version, kind, length = _HEADER.unpack(bytes(self._buf))
            if magic != MAGIC:
                raise ProtocolError(None, "not an mpoint rooted peer (bad magic)")
            _check(version == FRAMING_VERSION, WSAVERNOTSUPPORTED,
                   f"framing version {version} (this side speaks {FRAMING_VERSION})")
            _check(kind in TYPE_NAMES, WSAEINVAL, f"unknown message type {kind}")
            _check(length <= MAX_PAYLOAD, WSAEMSGSIZE,
                   f"payload of {length} bytes (at most {MAX_PAYLOAD})")
            self._kind, self._length = kind, length
            self._buf.clear()

    def done(self) -> bool:
        return self._length >= 0 and len(self._buf) == self._length

    def message(self) -> Message:
        """The complete frame's message; the reader is then ready for the next."""
        if not self.done():
            raise ValueError("the frame is not complete")
        kind, payload = self._kind, bytes(self._buf)
        self._buf.clear()
        self._kind, self._length = 0, -1
        return decode(kind, payload)


def parse(data: bytes) -> Tuple[Message, int]:
    """The first message of ``data`` and the bytes it used (tests, tools).
    ProtocolError if malformed, ValueError if incomplete."""
    reader = FrameReader()
    used = 0
    while not reader.done():
        n = reader.need()
        chunk = data[used:used + n]
        if not chunk:
            raise ValueError("incomplete frame")
        reader.feed(chunk)
        used += len(chunk)
    return reader.message(), used
