"""MultipointSocket: a socket.socket that joins multipoint sessions.

The socket is created by the C core with WSASocket's multipoint flags and is
otherwise an ordinary ``socket.socket`` (recvfrom, settimeout, selectors and
asyncio's ``sock=`` all work).  ``join_leaf`` follows WSAJoinLeaf for a
non-rooted (c_leaf/d_leaf) IP multicast socket; see ../shared/spec.
"""
from __future__ import annotations

import socket as _stdsocket
from typing import TYPE_CHECKING, Any, Iterable, Optional, Tuple, Union

from . import _core
from .constants import JL_BOTH, JoinFlag, Plane, SocketFlag

if TYPE_CHECKING:
    from .qos import QOS

_BOUND_ASK = _core.BOUND_ASK

Address = Union[Tuple[str, int], Tuple[str, int, int], Tuple[str, int, int, int]]
Interface = Union[None, int, str]

_JOIN_METHODS = {_core.JOINED_BY_OPTION: "socket options", _core.JOINED_NATIVE: "WSAJoinLeaf",
                 _core.JOINED_PLAIN: "socket options (no multipoint provider)"}

DEFAULT_FLAGS = SocketFlag.WSA_FLAG_MULTIPOINT_C_LEAF | SocketFlag.WSA_FLAG_MULTIPOINT_D_LEAF


class MultipointSocket(_stdsocket.socket):
    """A multipoint UDP socket (IPv4 or IPv6).

    Created unbound and non-inheritable, with SO_REUSEADDR set (several
    receivers of a group may share its port) and, where the kernel has it,
    IP_MULTICAST_ALL/IPV6_MULTICAST_ALL off: it never receives groups that
    other sockets joined.
    """

    # The multipoint state lives in one _core.SocketState (ext/sockcalls.pxi),
    # the only thing the core reads from this object; properties show it.
    __slots__ = ("_mp",)

    def __init__(self, family: int = _stdsocket.AF_INET, type: int = _stdsocket.SOCK_DGRAM,
                 proto: int = 0, fileno: Optional[int] = None, *,
                 flags: int = DEFAULT_FLAGS) -> None:
        # Per-call cost matters here (one socket per group is a common
        # design): enum values are made when asked for, not per socket.
        if fileno is None:
            _core.init_socket(self, family, type, proto, flags)
        else:   # dup() and friends: an existing descriptor, default roles
            super().__init__(family, type, proto, fileno)
            self._mp = _core.SocketState(self.family, DEFAULT_FLAGS, _BOUND_ASK)
            _core.sock_check_adopted(self)

    # -- roles ------------------------------------------------------------
    @property
    def multipoint_flags(self) -> SocketFlag:
        """The WSASocket flags the socket was created with."""
        return SocketFlag(self._mp.flags)

    @property
    def control_plane(self) -> Plane:
        """ROOT for c_root, LEAF for c_leaf."""
        root = self._mp.flags & SocketFlag.WSA_FLAG_MULTIPOINT_C_ROOT
        return Plane.ROOT if root else Plane.LEAF

    @property
    def data_plane(self) -> Plane:
        """ROOT for d_root, LEAF for d_leaf."""
        root = self._mp.flags & SocketFlag.WSA_FLAG_MULTIPOINT_D_ROOT
        return Plane.ROOT if root else Plane.LEAF

    @property
    def joined(self) -> Optional[Address]:
        """The session (group, port) this socket joined, or None."""
        return self._mp.joined

    @property
    def join_flags(self) -> Optional[JoinFlag]:
        """The role the socket joined with (JL_*), or None."""
        role = self._mp.join_flags
        return JoinFlag(role) if role else None

    @property
    def join_method(self) -> Optional[str]:
        """How the last join was made: ``"WSAJoinLeaf"`` (Winsock's own call,
        which joins on the default interface without a source filter) or
        ``"socket options"`` (IP_ADD_MEMBERSHIP, MCAST_JOIN_*: every POSIX
        join, and on Windows a join with an interface or a source, or one
        whose provider's WSAJoinLeaf fails without an error, as Wine's
        does); ``"socket options (no multipoint provider)"`` on Windows for
        a socket made plain because a layered provider (VPN, antivirus)
        refused multipoint sockets with WSAESOCKTNOSUPPORT (``plain``);
        None before a join.  A native join that answered WSAEWOULDBLOCK (a
        non-blocking socket) counts as ``"WSAJoinLeaf"``: in progress, its
        outcome reported as FD_CONNECT where the socket is registered."""
        how = self._mp.join_method
        if how < 0:
            return None
        return _JOIN_METHODS[how]

    @property
    def plain(self) -> bool:
        """True for a socket made without WSASocket's multipoint flags
        because the provider has no multipoint support (Windows, layered
        providers: WSAESOCKTNOSUPPORT); it joins by socket options."""
        return bool(self._mp.plain)

    @property
    def option_method(self) -> Optional[str]:
        """How the last ``multipoint_loopback`` / ``multicast_scope`` set
        went: ``"ioctl"`` (SIO_MULTIPOINT_LOOPBACK / SIO_MULTICAST_SCOPE,
        Winsock's form) or ``"socket options"`` (IP_MULTICAST_LOOP/TTL,
        IPV6_MULTICAST_LOOP/HOPS: every POSIX set, and on Windows one whose
        provider refused the ioctl with any code); None before a set."""
        how = self._mp.option_method
        if how < 0:
            return None
        return "ioctl" if how == _core.SET_BY_IOCTL else "socket options"

    # -- WSAJoinLeaf, and the calls that read or keep the multipoint state --
    # All in C (ext/sockcalls.pxi): one socket per group makes join_leaf a
    # hot path, and the re-enabling calls (a receive re-arms FD_READ, a send
    # that would block re-arms FD_WRITE; see mpoint.events) sit on every
    # datagram's path.  send() also reaches a JL_BOTH group.
    if TYPE_CHECKING:
        def join_leaf(self, name: Address, caller_data: Optional[Any] = None,
                      callee_data: Optional[bytearray] = None, sqos: Optional[object] = None,
                      gqos: Optional[object] = None, flags: int = JL_BOTH, *,
                      interface: Interface = None,
                      source: Optional[str] = None) -> "MultipointSocket": ...

        def recv_batch(self, batch: "_core.RecvBatch",
                       timeout: Optional[float] = None) -> int: ...

        def send_batch(self, payloads: Iterable[Any], address: Optional[Address] = None) -> int:
            """Sends each payload (bytes-like, not copied) as one datagram,
            in order, in one call (sendmmsg on Linux), to ``address``: None
            sends to the JL_BOTH group, else to the connected peer.  Returns
            how many were sent; see ext/sendcalls.pxi for the full contract
            (errors after the first datagram, the token bucket, timeouts)."""
            ...
    else:
        join_leaf = _core.sock_join_leaf
        recv_batch = _core.sock_recv_batch
        send_batch = _core.sock_send_batch
        bind = _core.sock_bind
    recv = _core.sock_recv
    recvfrom = _core.sock_recvfrom
    recv_into = _core.sock_recv_into
    recvfrom_into = _core.sock_recvfrom_into
    send = _core.sock_send
    sendto = _core.sock_sendto
    if hasattr(_stdsocket.socket, "sendmsg"):      # not on Windows
        recvmsg = _core.sock_recvmsg
        recvmsg_into = _core.sock_recvmsg_into
        sendmsg = _core.sock_sendmsg

    def close(self) -> None:
        """Closes the socket, leaving its session and its EventSet first
        (the descriptor is closed even if leaving the set fails).  Its
        EventSet's ``wait`` running in another thread reports it at once as
        FD_CLOSE with WSAECONNABORTED (the set's wake-up).  A ``recv_batch``
        blocked on it in another thread ends within one wait slice (100 ms)
        with WSAENOTSOCK; its descriptor stays open until then, so its
        number cannot be reused under it."""
        reg = self._mp.reg
        try:
            if reg is not None:
                reg[0]._closing(self)
        finally:
            super().close()

    def _on_register(self) -> None:
        """EventSet.register's hook: a rooted socket posts what happened
        before it was registered (mpoint.rooted)."""

    def _real_close(self, _ss: Any = None) -> None:     # socket.socket's one closing call
        _core.sock_real_close(self)

    def detach(self) -> int:
        """socket.detach: leaves its EventSet and hands the descriptor over.
        Refused (WSAEINPROGRESS) while another thread blocks in
        ``recv_batch`` on it: that call still uses the descriptor."""
        _core.sock_check_idle(self, "detach")
        reg = self._mp.reg
        if reg is not None:
            reg[0].unregister(self)
        return super().detach()

    # -- SIO_SET_QOS / SIO_GET_QOS ---------------------------------------------
    def set_qos(self, qos: Any) -> None:
        """SIO_SET_QOS: applies ``qos`` (a mpoint.QOS, or the bytes of
        Winsock's QOS structure) to this socket as join_leaf's ``sqos``
        does: the sending flowspec shapes every send (token bucket) and
        marks the datagrams (DSCP, and on Linux socket priority and pacing);
        the receiving one sizes the receive buffer.  A request that cannot
        be honoured raises WSAEOPNOTSUPP naming the field, and changes
        nothing.  A change is reported as FD_QOS (docs/qos.md)."""
        from .qos_apply import set_qos
        set_qos(self, qos)

    def get_qos(self) -> "QOS":
        """SIO_GET_QOS: the QOS this socket applied (``QOS()`` if none)."""
        from .qos_apply import get_qos
        return get_qos(self)

    # -- SIO_MULTIPOINT_LOOPBACK / SIO_MULTICAST_SCOPE -----------------------
    @property
    def multipoint_loopback(self) -> bool:
        """Whether this socket's datagrams to a group are also delivered to
        receivers on this host (SIO_MULTIPOINT_LOOPBACK)."""
        return bool(_core.get_loopback(self.fileno(), self._mp.family))

    @multipoint_loopback.setter
    def multipoint_loopback(self, on: bool) -> None:
        if not isinstance(on, (bool, int)):
            raise TypeError(f"multipoint_loopback must be a bool, not {type(on).__name__}")
        _core.set_loopback(self.fileno(), self._mp.family, bool(on), self._mp)

    @property
    def multicast_scope(self) -> int:
        """The hop limit (IPv4 TTL, IPv6 hop limit) of this socket's multicast
        datagrams (SIO_MULTICAST_SCOPE): 1, the default, keeps them on the
        link; 0 asks that they stay on this host, which Linux 6.x does not
        enforce on the sending link."""
        return int(_core.get_scope(self.fileno(), self._mp.family))

    @multicast_scope.setter
    def multicast_scope(self, hops: int) -> None:
        if isinstance(hops, bool):
            raise TypeError("multicast_scope must be an int, not bool")
        _core.set_scope(self.fileno(), self._mp.family, hops, self._mp)


def socket(family: int = _stdsocket.AF_INET, type: int = _stdsocket.SOCK_DGRAM, proto: int = 0,
           flags: int = DEFAULT_FLAGS) -> MultipointSocket:
    """WSASocket(family, type, proto, NULL, 0, flags) for multipoint use.

    Exactly one control-plane flag (C_ROOT or C_LEAF) and one data-plane flag
    (D_ROOT or D_LEAF) are required, else WSAEINVAL.  ``SOCK_DGRAM`` (the
    default) is IP multicast, non-rooted: C_LEAF | D_LEAF only, rooted flags
    raise WSAEOPNOTSUPP.  ``SOCK_STREAM`` is mpoint's rooted protocol
    (mpoint.rooted.RootedSocket), where every combination works.
    """
    if type == _stdsocket.SOCK_STREAM and not isinstance(type, bool):
        from .rooted import RootedSocket
        return RootedSocket(family, type, proto, flags=flags)
    return _core.new_socket(MultipointSocket, family, type, proto, flags)  # type: ignore[no-any-return]
