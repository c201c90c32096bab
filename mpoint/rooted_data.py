"""A rooted session's data plane (docs/rooted-protocol.md, "Roles and
transports"): the UDP sockets a root and a leaf use, and sending and
receiving on them.

Contract: the root's channel is made once, when it first listens or
invites; a leaf's when it is admitted.  ``d_root``: the root sends to the
group from a sender-only socket (which the kernel connects to the group)
and hears leaves on a socket of its own; leaves join receiving only and send
to the root.  ``d_leaf``: every member joins the group as sender and
receiver.  ``unicast``: one copy per leaf from the root, and leaves send to
the root, which relays in ``d_leaf``."""
from __future__ import annotations

import socket as _stdsocket
from typing import TYPE_CHECKING, Any, Optional, Tuple

from . import errors, rooted_wire as wire
from .constants import JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY
from .multipoint_socket import MultipointSocket

if TYPE_CHECKING:
    from .rooted import RootedSocket


def wildcard(family: int) -> str:
    """The family's any-address, to bind to."""
    return "0.0.0.0" if family == _stdsocket.AF_INET else "::"


def default_group(family: int, port: int) -> str:
    """The group a root announces when none was configured: one per root port."""
    if family == _stdsocket.AF_INET:
        return f"239.255.{port >> 8}.{port & 0xFF}"
    return f"ff15::4d52:{port:x}"


def root_channel(family: int, plane: int, wanted: Tuple[Optional[str], Optional[int], str, int],
                 interface: Any, own_port: int
                 ) -> Tuple[MultipointSocket, MultipointSocket, wire.Session]:
    """A root's (receiver, sender, announcement); the two sockets may be one."""
    group, port, transport, scope = wanted
    version = 4 if family == _stdsocket.AF_INET else 6
    data = MultipointSocket(family)
    sender: Optional[MultipointSocket] = None
    try:
        if transport == "unicast":
            data.bind((wildcard(family), 0))
            return data, data, wire.Session(wire.UNICAST, plane, version, scope, "", 0,
                                            data.getsockname()[1])
        group = group or default_group(family, own_port)
        port = port or own_port
        if plane == wire.D_ROOT:
            data.bind((wildcard(family), 0))
            root_port = data.getsockname()[1]
            sender = MultipointSocket(family)
            sender.join_leaf((group, port), flags=JL_SENDER_ONLY, interface=interface)
            sender.multicast_scope = scope
        else:
            data.join_leaf((group, port), flags=JL_BOTH, interface=interface)
            data.multicast_scope = scope
            root_port = port
        return data, sender or data, wire.Session(wire.MULTICAST, plane, version, scope,
                                                  group, port, root_port)
    except BaseException:
        data.close()
        if sender is not None:
            sender.close()
        raise


def leaf_channel(family: int, session: wire.Session, role: int, interface: Any
                 ) -> MultipointSocket:
    """An admitted leaf's data socket for ``session`` in its JL_* ``role``."""
    data = MultipointSocket(family)
    try:
        if session.transport == wire.UNICAST:
            data.bind((wildcard(family), 0))
        elif role == JL_SENDER_ONLY:
            if session.plane == wire.D_LEAF:
                data.join_leaf((session.group, session.group_port), flags=JL_SENDER_ONLY,
                               interface=interface)
                data.multicast_scope = session.scope
        else:
            join = JL_RECEIVER_ONLY if session.plane == wire.D_ROOT else role
            data.join_leaf((session.group, session.group_port), flags=join,
                           interface=interface)
            data.multicast_scope = session.scope
    except BaseException:
        data.close()
        raise
    return data


def _fail(call: str, detail: str) -> errors.MultipointError:
    return errors.from_code("WSAENOTCONN", call, detail)


def send(sock: "RootedSocket", data: Any) -> int:
    rs = sock._rs
    session, receiver, sender = rs.session, rs.data, rs.sender
    if session is None or receiver is None or rs.phase == "closed":
        raise _fail("send_data", "not in a session (no admission yet)")
    if sock.is_root:
        if sender is None:
            raise _fail("send_data", "the session is closed")
        if session.transport == wire.MULTICAST:
            return sender.sendto(data, (session.group, session.group_port))
        n = 0
        for leaf in sock.leaves:
            addr = leaf._rs.peer_data
            if addr is not None and leaf._rs.role != JL_SENDER_ONLY:
                n = sender.sendto(data, addr)
        return n if n else len(memoryview(data))
    if rs.role == JL_RECEIVER_ONLY:
        raise _fail("send_data", "joined as JL_RECEIVER_ONLY: this leaf does not send")
    if session.transport == wire.MULTICAST and session.plane == wire.D_LEAF:
        return receiver.sendto(data, (session.group, session.group_port))
    return receiver.sendto(data, rs.root_peer)


def recv(sock: "RootedSocket", bufsize: int, timeout: Optional[float]) -> Tuple[bytes, Any]:
    rs = sock._rs
    session, receiver = rs.session, rs.data
    if session is None or receiver is None or rs.phase == "closed":
        raise _fail("recv_data", "not in a session (no admission yet)")
    if not sock.is_root and rs.role == JL_SENDER_ONLY:
        raise _fail("recv_data", "joined as JL_SENDER_ONLY: this leaf does not receive")
    before = receiver.gettimeout()
    change = timeout != before          # the same timeout: no system call to set it
    if change:
        receiver.settimeout(timeout)
    try:
        data, addr = receiver.recvfrom(bufsize)
    except _stdsocket.timeout:
        raise errors.from_code("WSAETIMEDOUT", "recv_data", "no datagram in time") from None
    except BlockingIOError:
        raise errors.from_code("WSAEWOULDBLOCK", "recv_data", "no datagram waits") from None
    finally:
        if change:
            receiver.settimeout(before)
    if sock.is_root and session.transport == wire.UNICAST and session.plane == wire.D_LEAF:
        for leaf in sock.leaves:
            to = leaf._rs.peer_data
            if to is not None and to[:2] != addr[:2] and leaf._rs.role != JL_SENDER_ONLY:
                receiver.sendto(data, to)
    return data, addr
