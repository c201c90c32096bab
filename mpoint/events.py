"""EventSet: Winsock's WSAEventSelect model for many sockets, on every OS.

``register(sock, events)`` makes the socket non-blocking (as WSAEventSelect
does) until ``unregister`` gives it its mode back; a socket is in at most one
set at a time (Winsock ties it to one event object: a second registration
elsewhere raises WSAEINVAL instead of cancelling the first); and ``wait()`` returns what fired as ``NetworkEvents(sock, events,
errors)`` -- WSAEnumNetworkEvents' ``lNetworkEvents`` and ``iErrorCode[]``
(Winsock codes, 0 for success) -- with Winsock's re-enabling rules:

* ``FD_READ`` fires once, then again only after a receive call on the socket
  (``recv``, ``recvfrom``, ``recv_into``, ``recvmsg``, ``recv_batch``, ...);
  finding nothing to read after it is normal.
* ``FD_WRITE`` fires once after registration, then only after a send failed
  with WSAEWOULDBLOCK (``BlockingIOError``) and space freed.
* ``FD_CONNECT`` reports a non-blocking ``join_leaf`` on the next wait (or
  at once to a wait already running), with the join's error code; ``FD_CLOSE`` fires once (a receive side shut down).
* ``FD_ACCEPT`` fires on a listening rooted socket (mpoint.rooted) when a
  complete join request waits, then again after each ``accept`` while more
  wait.  ``FD_CLOSE`` of a rooted control connection carries the reset's
  code (WSAECONNRESET) when the peer vanished, 0 when it left in order.
* ``FD_OOB``, ``FD_QOS``, ``FD_GROUP_QOS``, ``FD_ROUTING_INTERFACE_CHANGE``
  and ``FD_ADDRESS_LIST_CHANGE`` may be registered but no POSIX backend
  produces them (UDP multicast has no out-of-band data and no QoS
  signalling).

Backends: ``epoll`` (Linux, the default there), ``kqueue`` (macOS), ``poll``
(everywhere; O(sockets) per wait).  ``wait`` releases the GIL while it
blocks; signals interrupt it as PEP 475 says.  A socket closed while
registered leaves the set first; a ``wait`` running meanwhile in another
thread reports it once as ``FD_CLOSE`` with WSAECONNABORTED, so a close
always wakes the waiter, at once.  One thread waits at a time; others may
register, unregister and close sockets meanwhile, and ``close()`` the set,
which ends a running ``wait`` with WSAENOTSOCK at once.  What mpoint posts
while a ``wait`` runs (FD_CONNECT, FD_ACCEPT, FD_QOS) and a shaped socket's
FD_WRITE due time wake it at once too, through the set's wake-up handle (an
eventfd, a self-pipe, an event object or a loopback socket: one or two more
descriptors per set, freed by ``close()``); a post with no wait running costs
no system call.  The wait still runs in 100 ms slices, so that signal
handlers (Ctrl+C) run between them; a wake-up ends a slice early.

Fork: a child process inherits no usable set.  For a set the parent made,
``register``, ``modify``, ``wait`` and ``backend`` changes raise
RuntimeError in the child (``inherited`` is True), and ``unregister``,
``close`` and closing the child's copies of its sockets change nothing in
the parent's set; make a new EventSet in the child.
"""
from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Dict, List, Mapping, NamedTuple, Optional

from . import _core, errors

if TYPE_CHECKING:
    from .multipoint_socket import MultipointSocket

__all__ = ["FD", "EventSet", "NetworkEvents", "FD_READ", "FD_WRITE", "FD_OOB", "FD_ACCEPT",
           "FD_CONNECT", "FD_CLOSE", "FD_QOS", "FD_GROUP_QOS", "FD_ROUTING_INTERFACE_CHANGE",
           "FD_ADDRESS_LIST_CHANGE"]


class FD(enum.IntFlag):
    """Winsock's network events (winsock2.h values)."""

    READ = 0x001
    WRITE = 0x002
    OOB = 0x004
    ACCEPT = 0x008
    CONNECT = 0x010
    CLOSE = 0x020
    QOS = 0x040
    GROUP_QOS = 0x080
    ROUTING_INTERFACE_CHANGE = 0x100
    ADDRESS_LIST_CHANGE = 0x200


FD_READ = FD.READ
FD_WRITE = FD.WRITE
FD_OOB = FD.OOB
FD_ACCEPT = FD.ACCEPT
FD_CONNECT = FD.CONNECT
FD_CLOSE = FD.CLOSE
FD_QOS = FD.QOS
FD_GROUP_QOS = FD.GROUP_QOS
FD_ROUTING_INTERFACE_CHANGE = FD.ROUTING_INTERFACE_CHANGE
FD_ADDRESS_LIST_CHANGE = FD.ADDRESS_LIST_CHANGE


if TYPE_CHECKING:
    class NetworkEvents(NamedTuple):
        """One socket's fired events and each one's error code (0: success)."""

        sock: "MultipointSocket"
        events: FD
        errors: Mapping[FD, int]
else:
    NetworkEvents = _core.NetworkEvents    # a struct sequence: a tuple built in C


_FD_CACHE = tuple(FD(i) for i in range(1024))   # no FD object built per wake-up


def _wsa_of(code: int) -> int:
    cls = errors.lookup(code)
    return cls.wsa_errno if cls.wsa_errno is not None else code


_core._configure_events(_FD_CACHE, _wsa_of)


class EventSet(_core.EventCore):
    """Sockets and the network events wanted from each (WSAEventSelect).
    ``wait(timeout=None)`` is the C core's own (see _core.EventCore.wait)."""

    def __init__(self, backend: Optional[str] = None) -> None:
        self._slots: Dict["MultipointSocket", int] = {}
        self._interest: Dict["MultipointSocket", int] = {}

    @staticmethod
    def backends() -> List[str]:
        """The backends this build has; the first is the default."""
        return list(_core.event_backends())

    def register(self, sock: "MultipointSocket", events: int) -> None:
        """WSAEventSelect(sock, events): watch ``sock`` for ``events`` (FD
        bits).  Makes the socket non-blocking until it is unregistered.

        One set per socket, on every platform.  Winsock ties a socket to
        one event object, so a second WSAEventSelect from another set (or
        from mpoint.aio's readiness thread) would silently cancel the
        first; mpoint refuses it instead: registering a socket that another
        set watches raises WSAEINVAL (``errors.WSAEINVAL``, an OSError) and
        changes neither set.  Unregister it there first.  Registering again
        in the same set is ``modify``."""
        from .multipoint_socket import MultipointSocket
        if not isinstance(sock, MultipointSocket):
            raise TypeError(f"EventSet takes mpoint sockets, not {type(sock).__name__}")
        self._check("register")
        if sock in self._slots:
            self.modify(sock, events)
            return
        fd = sock.fileno()
        if fd < 0:
            raise errors.from_code("WSAENOTSOCK", "WSAEventSelect", "the socket is closed")
        if sock._mp.reg is not None:
            raise errors.from_code("WSAEINVAL", "WSAEventSelect",
                                   "the socket is registered in another EventSet (Winsock "
                                   "allows one per socket): unregister it there first")
        before = sock.gettimeout()
        sock.setblocking(False)
        try:
            slot = self._add(sock, fd, events)
        except BaseException:
            sock.settimeout(before)
            raise
        self._slots[sock] = slot
        self._interest[sock] = int(events)
        sock._mp.reg = (self, slot, before)
        sock._on_register()

    def modify(self, sock: "MultipointSocket", events: int) -> None:
        """Changes the events watched; every event is recorded anew."""
        self._modify(self._slot(sock), events)
        self._interest[sock] = int(events)

    def interest(self, sock: "MultipointSocket") -> FD:
        """The events ``sock`` is registered for here (KeyError if it is not)."""
        self._slot(sock)
        return FD(self._interest[sock])

    def unregister(self, sock: "MultipointSocket") -> None:
        """Stops watching ``sock`` and gives it back the blocking mode (the
        timeout) it had when registered.  Winsock leaves a socket
        non-blocking after WSAEventSelect(s, NULL, 0); mpoint restores it
        (ioctlsocket FIONBIO 0 there, which succeeds once no event is
        selected), the same on every platform."""
        self._leave(sock, False)

    def _closing(self, sock: "MultipointSocket") -> None:
        """``sock`` is closing: it leaves the set, and a wait() running in
        another thread reports it once as FD_CLOSE (WSAECONNABORTED)."""
        self._leave(sock, True)

    def _leave(self, sock: "MultipointSocket", closing: bool) -> None:
        slot = self._slot(sock)
        reg = sock._mp.reg               # (set, slot, timeout) while registered here
        before = reg[2] if reg is not None else None
        del self._slots[sock]
        self._interest.pop(sock, None)
        sock._mp.reg = None
        self._remove(slot, closing)
        if not closing and sock.fileno() >= 0:
            sock.settimeout(before)      # after the poller let go of it (Windows)

    def close(self) -> None:
        """Every socket leaves the set, then the set's memory and descriptor
        are freed (at once, or by a wait() running in another thread, which
        the close wakes, as it ends with WSAENOTSOCK).  Every call afterwards raises
        WSAENOTSOCK; closing again does nothing."""
        try:
            for sock in list(self._slots):
                self._leave(sock, False)
        finally:
            self._close()

    def __enter__(self) -> "EventSet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, sock: object) -> bool:
        return sock in self._slots

    def _slot(self, sock: "MultipointSocket") -> int:
        try:
            return self._slots[sock]
        except (KeyError, TypeError):
            raise KeyError(f"{sock!r} is not registered in this EventSet") from None
