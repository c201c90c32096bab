"""MultipointSocket: a socket.socket that joins multipoint sessions.

The socket is created by the C core with WSASocket's multipoint flags and is
otherwise an ordinary ``socket.socket`` (recvfrom, settimeout, selectors and
asyncio's ``sock=`` all work).  ``join_leaf`` follows WSAJoinLeaf for a
non-rooted (c_leaf/d_leaf) IP multicast socket; see ../shared/spec.
"""
from __future__ import annotations

import socket as _stdsocket
from typing import TYPE_CHECKING, Any, Optional, Tuple, Union

from . import _core, errors
from .constants import JL_BOTH, JL_SENDER_ONLY, JoinFlag, Plane, SocketFlag

_FD_READ, _FD_CONNECT = 0x01, 0x10

Address = Union[Tuple[str, int], Tuple[str, int, int], Tuple[str, int, int, int]]
Interface = Union[None, int, str]

DEFAULT_FLAGS = SocketFlag.WSA_FLAG_MULTIPOINT_C_LEAF | SocketFlag.WSA_FLAG_MULTIPOINT_D_LEAF


class MultipointSocket(_stdsocket.socket):
    """A multipoint UDP socket (IPv4 or IPv6).

    Created unbound and non-inheritable, with SO_REUSEADDR set (several
    receivers of a group may share its port) and, where the kernel has it,
    IP_MULTICAST_ALL/IPV6_MULTICAST_ALL off: it never receives groups that
    other sockets joined.
    """

    __slots__ = ("_mp_flags", "_af", "_joined", "_join_flags", "_join_method", "_dest", "_meta", "_reg")

    def __init__(self, family: int = _stdsocket.AF_INET, type: int = _stdsocket.SOCK_DGRAM,
                 proto: int = 0, fileno: Optional[int] = None, *,
                 flags: int = DEFAULT_FLAGS) -> None:
        # Per-call cost matters here (one socket per group is a common
        # design): enum values are made when asked for, not per socket.
        if fileno is None:
            fileno = _core.socket_open(family, type, proto, flags)
            try:
                # Windows' socket() cannot ask an unbound socket its family.
                _stdsocket.socket.__init__(self, family, _stdsocket.SOCK_DGRAM,
                                           _stdsocket.IPPROTO_UDP, fileno)
            except BaseException:
                _stdsocket.close(fileno)
                raise
            self._af = int(family)
        else:   # dup() and friends: an existing descriptor, default roles
            super().__init__(family, type, proto, fileno)
            flags = DEFAULT_FLAGS
            self._af = int(self.family)
        self._mp_flags = int(flags)
        self._joined: Optional[Address] = None
        self._join_flags: Optional[int] = None
        self._join_method: Optional[bool] = None     # True: WSAJoinLeaf
        self._dest: Optional[Address] = None
        self._meta = False          # metadata socket options enabled (join or recv_batch)
        self._reg: Any = None       # the EventSet registration, if registered

    # -- roles ------------------------------------------------------------
    @property
    def multipoint_flags(self) -> SocketFlag:
        """The WSASocket flags the socket was created with."""
        return SocketFlag(self._mp_flags)

    @property
    def control_plane(self) -> Plane:
        """ROOT for c_root, LEAF for c_leaf."""
        root = self._mp_flags & SocketFlag.WSA_FLAG_MULTIPOINT_C_ROOT
        return Plane.ROOT if root else Plane.LEAF

    @property
    def data_plane(self) -> Plane:
        """ROOT for d_root, LEAF for d_leaf."""
        root = self._mp_flags & SocketFlag.WSA_FLAG_MULTIPOINT_D_ROOT
        return Plane.ROOT if root else Plane.LEAF

    @property
    def joined(self) -> Optional[Address]:
        """The session (group, port) this socket joined, or None."""
        return self._joined

    @property
    def join_flags(self) -> Optional[JoinFlag]:
        """The role the socket joined with (JL_*), or None."""
        return None if self._join_flags is None else JoinFlag(self._join_flags)

    @property
    def join_method(self) -> Optional[str]:
        """How the last join was made: ``"WSAJoinLeaf"`` (Winsock's own call,
        which joins on the default interface without a source filter) or
        ``"socket options"`` (IP_ADD_MEMBERSHIP, MCAST_JOIN_*: every POSIX
        join, and on Windows a join with an interface or a source, or one
        whose provider's WSAJoinLeaf fails without an error, as Wine's
        does); None before a join."""
        if self._join_method is None:
            return None
        return "WSAJoinLeaf" if self._join_method else "socket options"

    # -- WSAJoinLeaf --------------------------------------------------------
    # join_leaf is _core.sock_join_leaf: the common call in C (one socket per
    # group makes it a hot path), everything else here.
    if TYPE_CHECKING:
        def join_leaf(self, name: Address, caller_data: Optional[Any] = None,
                      callee_data: Optional[bytearray] = None, sqos: Optional[object] = None,
                      gqos: Optional[object] = None, flags: int = JL_BOTH, *,
                      interface: Interface = None,
                      source: Optional[str] = None) -> "MultipointSocket": ...
    else:
        join_leaf = _core.sock_join_leaf

    def _join_leaf(self, name: Address, caller_data: Optional[Any] = None,
                  callee_data: Optional[bytearray] = None, sqos: Optional[object] = None,
                  gqos: Optional[object] = None, flags: int = JL_BOTH, *,
                  interface: Interface = None, source: Optional[str] = None) -> "MultipointSocket":
        """join_leaf, every case (see _core.sock_join_leaf for the common one)."""
        reg = self._reg
        # "until the multipoint session join attempt completes all subsequent
        # calls to WSAJoinLeaf on the same socket will fail with WSAEALREADY"
        if reg is not None and reg[0]._posted(reg[1]) & _FD_CONNECT:
            raise errors.from_code("WSAEALREADY", "WSAJoinLeaf",
                                   "a join is in progress: wait for its FD_CONNECT")
        if self._joined is not None:
            raise errors.from_code("WSAEISCONN", "WSAJoinLeaf",
                                   f"already a member of {self._joined}")
        caller_len = 0 if caller_data is None else memoryview(caller_data).nbytes
        if callee_data is not None:
            _check_callee(callee_data)
        if interface is None and self._af == _stdsocket.AF_INET6 \
                and isinstance(name, tuple) and len(name) == 4:
            interface = name[3] or None      # the zone of a scoped group
        ifindex = 0 if interface is None else _core.interface_index(interface)
        if reg is not None:
            # Non-blocking (registered): the outcome arrives as FD_CONNECT on
            # the next wait.
            result, native = _core.join_leaf(self.fileno(), self._af, name, caller_len,
                                             sqos is not None, gqos is not None, flags,
                                             ifindex, source, True)
            reg[0]._post(reg[1], _FD_CONNECT, result)
            if result:
                return self          # failed: FD_CONNECT says why; a retry is allowed
        else:
            native = _core.join_leaf(self.fileno(), self._af, name, caller_len,
                                     sqos is not None, gqos is not None, flags, ifindex, source)
        if callee_data is not None:
            del callee_data[:]            # lpCalleeData->len = 0: no data came back
        self._joined = name
        self._join_flags = flags              # valid: C checked it
        self._join_method = native
        if flags != JL_SENDER_ONLY:
            self._meta = True                 # C asked for it before the membership
        if flags == JL_BOTH:
            self._dest = name
        return self

    # -- Winsock's re-enabling functions ---------------------------------
    # A receive call re-arms FD_READ, a send that would block re-arms
    # FD_WRITE (see mpoint.events).  Written in C (ext/sockcalls.pxi): they
    # are on every datagram's path.  send() also reaches a JL_BOTH group.
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
        """Closes the socket, leaving its session and its EventSet first."""
        if self._reg is not None:
            self._reg[0].unregister(self)
        super().close()

    def detach(self) -> int:
        if self._reg is not None:
            self._reg[0].unregister(self)
        return super().detach()

    # -- batch receive -----------------------------------------------------
    def recv_batch(self, batch: "_core.RecvBatch", timeout: Optional[float] = None) -> int:
        """Receives up to ``len(batch)``'s capacity of datagrams in one call
        into ``batch`` (reused; earlier contents are overwritten) and returns
        how many arrived: at least 1, or 0 when nothing arrived in time
        (``timeout`` seconds; None: the socket's own timeout, so 0 at once on
        a non-blocking socket).  A receive call: it re-arms FD_READ.

        A metadata batch reports each datagram's group, interface and kernel
        receive time.  A receiving ``join_leaf`` asked the kernel for them
        before adding its membership; a socket that never joined as a
        receiver through mpoint asks at its first metadata call, and what
        was queued before then reports what the kernel recorded without
        being asked, the rest unknown (``ifindex`` 0, ``timestamp_ns`` None)."""
        if batch.metadata and not self._meta:
            _core.enable_metadata(self.fileno(), self._af)
            self._meta = True
        if self._reg is not None:
            self._reg[0]._rearm(self._reg[1], _FD_READ)
        return _core.recv_batch(self.fileno(), batch,
                                self.gettimeout() if timeout is None else timeout)

    # -- SIO_MULTIPOINT_LOOPBACK / SIO_MULTICAST_SCOPE -----------------------
    @property
    def multipoint_loopback(self) -> bool:
        """Whether this socket's datagrams to a group are also delivered to
        receivers on this host (SIO_MULTIPOINT_LOOPBACK)."""
        return bool(_core.get_loopback(self.fileno(), self._af))

    @multipoint_loopback.setter
    def multipoint_loopback(self, on: bool) -> None:
        if not isinstance(on, (bool, int)):
            raise TypeError(f"multipoint_loopback must be a bool, not {type(on).__name__}")
        _core.set_loopback(self.fileno(), self._af, bool(on))

    @property
    def multicast_scope(self) -> int:
        """The hop limit (IPv4 TTL, IPv6 hop limit) of this socket's multicast
        datagrams (SIO_MULTICAST_SCOPE): 1, the default, keeps them on the
        link; 0 asks that they stay on this host, which Linux 6.x does not
        enforce on the sending link."""
        return int(_core.get_scope(self.fileno(), self._af))

    @multicast_scope.setter
    def multicast_scope(self, hops: int) -> None:
        if isinstance(hops, bool):
            raise TypeError("multicast_scope must be an int, not bool")
        _core.set_scope(self.fileno(), self._af, hops)


def _check_callee(buf: object) -> None:
    """lpCalleeData must be a buffer mpoint can set the length of."""
    if isinstance(buf, bytearray):
        try:               # a resize fails while the buffer is exported
            buf.append(0)
        except BufferError:
            raise errors.from_code("WSAEFAULT", "WSAJoinLeaf",
                                   "callee_data cannot be resized while it is exported") from None
        del buf[-1]
        return
    try:
        view = memoryview(buf)   # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"callee_data must be a bytearray, not {type(buf).__name__}") from None
    if view.readonly:
        raise errors.from_code("WSAEFAULT", "WSAJoinLeaf", "callee_data is read-only")
    raise TypeError(f"callee_data must be a bytearray (its length reports the data received), "
                    f"not {type(buf).__name__}")


def socket(family: int = _stdsocket.AF_INET, type: int = _stdsocket.SOCK_DGRAM, proto: int = 0,
           flags: int = DEFAULT_FLAGS) -> MultipointSocket:
    """WSASocket(family, type, proto, NULL, 0, flags) for multipoint use.

    Exactly one control-plane flag (C_ROOT or C_LEAF) and one data-plane flag
    (D_ROOT or D_LEAF) are required, else WSAEINVAL.  Rooted planes raise
    WSAEOPNOTSUPP: they are not available yet.
    """
    try:
        return MultipointSocket(family, type, proto, flags=flags)
    except errors.WSAEOPNOTSUPP as exc:
        raise errors.from_code("WSAEOPNOTSUPP", "WSASocket",
                               "rooted control/data planes (C_ROOT, D_ROOT) are not "
                               "available yet; IP multicast is non-rooted: use C_LEAF | D_LEAF"
                               ) from exc
