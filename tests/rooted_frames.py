"""Rooted-protocol frames for the tests (test_rooted_wire, test_rooted_hostile):
builders that write any byte sequence, malformed ones included (the
encoder never writes those), and hypothesis strategies for valid messages
and for garbage."""
from __future__ import annotations

import ipaddress
import struct
from typing import Any, Optional, Tuple

from mpoint import rooted_wire as wire
from mpoint.rooted_wire import (ACCEPT, ADMIT, D_LEAF, D_ROOT, INVITE, JOIN, MAX_QOS,
                                MAX_USER_DATA, MULTICAST, REJECT, UNICAST)
from support import st

WSAEINVAL, WSAEMSGSIZE, WSAECONNREFUSED, WSAVERNOTSUPPORTED = 10022, 10040, 10061, 10092
CODES = {None, WSAEINVAL, WSAEMSGSIZE, WSAVERNOTSUPPORTED}     # what a malformed frame gets


def frame(kind: int, payload: bytes, magic: bytes = b"MR", version: int = 1,
          length: Optional[int] = None) -> bytes:
    return struct.pack(">2sBBI", magic, version, kind,
                       len(payload) if length is None else length) + payload


def request_block(version: int = 1, plane: int = D_ROOT, role: int = 4, port: int = 0,
                  caller: bytes = b"", sqos: bytes = b"", gqos: bytes = b"",
                  c: Optional[int] = None, s: Optional[int] = None, g: Optional[int] = None,
                  reserved: int = 0) -> bytes:
    return struct.pack(">BBBBHHHH", version, plane, role, reserved, port,
                       len(caller) if c is None else c, len(sqos) if s is None else s,
                       len(gqos) if g is None else g) + caller + sqos + gqos


def session_block(transport: int = MULTICAST, plane: int = D_ROOT, family: int = 4,
                  scope: int = 1, group: bytes = bytes([239, 1, 2, 3]), gport: int = 4000,
                  rport: int = 4001) -> bytes:
    return struct.pack(">BBBB16sHH", transport, plane, family, scope, group.ljust(16, b"\0"),
                       gport, rport)


def admit_payload(session: bytes = b"", callee: bytes = b"", n: Optional[int] = None) -> bytes:
    return (struct.pack(">BB", 1, 0) + (session or session_block())
            + struct.pack(">H", len(callee) if n is None else n) + callee)


def accept_payload(callee: bytes = b"", n: Optional[int] = None, port: int = 4002) -> bytes:
    return struct.pack(">BBHH", 1, 0, port, len(callee) if n is None else n) + callee


def reject_payload(text: bytes = b"no", n: Optional[int] = None, code: int = 10061) -> bytes:
    return struct.pack(">IH", code, len(text) if n is None else n) + text



def multicast_v6(last: int = 1) -> bytes:
    return bytes([0xFF, 0x15]) + bytes(13) + bytes([last])


GOOD_JOIN = frame(JOIN, request_block(caller=b"abc"))


# -- strategies ---------------------------------------------------------------------

ports = st.integers(0, 65535)
user = st.one_of(st.binary(max_size=40),
                 st.integers(0, MAX_USER_DATA).map(lambda n: b"u" * n))
qos = st.one_of(st.binary(max_size=20), st.sampled_from([b"q" * MAX_QOS]))
v4_groups = st.integers(224 << 24, (240 << 24) - 1).map(
    lambda n: str(ipaddress.IPv4Address(n)))
v6_groups = st.integers(0xFF << 120, 2**128 - 1).map(
    lambda n: str(ipaddress.IPv6Address(n)))
sessions = st.one_of(
    st.builds(wire.Session, st.just(MULTICAST), st.sampled_from([D_ROOT, D_LEAF]), st.just(4),
              st.integers(0, 255), v4_groups, st.integers(1, 65535), st.integers(1, 65535)),
    st.builds(wire.Session, st.just(MULTICAST), st.sampled_from([D_ROOT, D_LEAF]), st.just(6),
              st.integers(0, 255), v6_groups, st.integers(1, 65535), st.integers(1, 65535)),
    st.builds(wire.Session, st.just(UNICAST), st.sampled_from([D_ROOT, D_LEAF]),
              st.sampled_from([4, 6]), st.integers(0, 255), st.just(""), st.just(0),
              st.integers(1, 65535)))
planes, roles = st.sampled_from([D_ROOT, D_LEAF]), st.sampled_from([1, 2, 4])


@st.composite
def messages(draw: Any) -> Tuple[bytes, wire.Message]:
    kind = draw(st.sampled_from([JOIN, INVITE, ADMIT, ACCEPT, REJECT]))
    if kind in (JOIN, INVITE):
        session = draw(sessions) if kind == INVITE else None
        plane, role = draw(planes), draw(roles)
        port = draw(ports) if kind == JOIN else 0
        caller, sqos, gqos = draw(user), draw(qos), draw(qos)
        return (wire.request(kind, plane, role, port, caller, sqos, gqos, session),
                wire.Request(kind, 1, plane, role, port, caller, sqos, gqos, session))
    if kind == ADMIT:
        session, callee = draw(sessions), draw(user)
        return wire.admit(session, callee), wire.Admit(1, session, callee)
    if kind == ACCEPT:
        port, callee = draw(ports), draw(user)
        return wire.accept(port, callee), wire.Accept(1, port, callee)
    code = draw(st.integers(0, 2**32 - 1))
    text = draw(st.text(max_size=80))
    return wire.reject(code, text), wire.Reject(code, text)


header_prefixed = st.builds(
    lambda kind, n, body: struct.pack(">2sBBI", b"MR", 1, kind, n) + body,
    st.integers(0, 7), st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
    st.binary(max_size=120))


@st.composite
def mutated(draw: Any) -> bytes:
    """A valid frame with a few bytes changed, cut or appended."""
    data = bytearray(draw(messages())[0])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))):]
    return bytes(data) + draw(st.binary(max_size=8))


arbitrary = st.one_of(st.binary(max_size=300), header_prefixed, mutated())
