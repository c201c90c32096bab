"""Per-OS decisions written portably (ext/os_rules.h), each OS's rule
checked from any OS; and the behaviour they exist for, checked on whatever OS
runs the suite (a macOS runner settles the macOS half: README, "What is
verified where")."""
from __future__ import annotations

import errno
import socket
import sys

import pytest

import mpoint
from mpoint import JL_BOTH, JL_SENDER_ONLY, _core
import support


# -- sharing a port (ext/port_sharing.c) ------------------------------------------

@pytest.mark.offline
def test_linux_shares_a_port_with_reuseaddr_only() -> None:
    # SO_REUSEPORT on Linux would spread unicast replies over the sockets.
    assert _core._port_sharing("linux") == {"SO_REUSEADDR"}


@pytest.mark.offline
def test_bsd_shares_a_wildcard_bound_port_with_reuseport_too() -> None:
    # XNU's SO_REUSEADDR shares a UDP port only among multicast-bound sockets.
    assert _core._port_sharing("bsd") == {"SO_REUSEADDR", "SO_REUSEPORT"}


@pytest.mark.skipif(sys.platform == "win32", reason="Winsock shares a port by SO_REUSEADDR alone")
def test_a_socket_carries_its_stacks_port_sharing_options() -> None:
    rule = "bsd" if sys.platform == "darwin" else "linux"
    with mpoint.socket() as s:
        got = {name for name in ("SO_REUSEADDR", "SO_REUSEPORT")
               if s.getsockopt(socket.SOL_SOCKET, getattr(socket, name)) != 0}
    assert got == _core._port_sharing(rule)


def test_two_wildcard_bound_receivers_share_a_port(family: int, group: str, port: int) -> None:
    """JL_BOTH binds the wildcard address: the case XNU's SO_REUSEADDR does
    not share (EADDRINUSE without SO_REUSEPORT)."""
    with mpoint.socket(family) as a, mpoint.socket(family) as b, mpoint.socket(family) as tx:
        a.join_leaf((group, port), flags=JL_BOTH)
        b.join_leaf((group, port), flags=JL_BOTH)
        tx.join_leaf((group, port), flags=JL_SENDER_ONLY)
        tx.send(b"both")
        for rx in (a, b):
            rx.settimeout(2)
            assert rx.recv(64) == b"both"


def test_two_group_sets_share_a_port(family: int, port: int) -> None:
    """Each GroupSet's shards bind the wildcard address of one port."""
    g1, g2 = support.new_group(family), support.new_group(family)
    with mpoint.GroupSet(port, family=family) as one, mpoint.GroupSet(port, family=family) as two, \
            mpoint.socket(family) as tx:
        one.join(g1)
        two.join(g2)
        tx.sendto(b"1", (g1, port))
        tx.sendto(b"2", (g2, port))
        batch = mpoint.RecvBatch(8, 64)
        assert one.recv_batch(batch, 2) == 1 and [bytes(d.data) for d in batch] == [b"1"]
        assert two.recv_batch(batch, 2) == 1 and [bytes(d.data) for d in batch] == [b"2"]


# -- the kqueue poller's decisions (ext/kqueue_rules.c) ----------------------------

PLANS = [
    (set(), {"in", "hup"}, [("read", "add")]),
    # FD_READ fired, nothing read yet: FD_CLOSE alone may fire, so data that
    # waits must not wake the poller (a level-triggered EVFILT_READ would).
    ({"in", "hup"}, {"hup"}, [("read", "delete"), ("read", "add-close-only")]),
    ({"hup"}, {"in", "hup"}, [("read", "delete"), ("read", "add")]),      # rearmed by a receive
    ({"hup"}, set(), [("read", "delete")]),
    (set(), {"hup"}, [("read", "add-close-only")]),
    ({"in"}, {"in", "hup"}, []),                       # both need the same level filter
    ({"in"}, {"in", "out"}, [("write", "add")]),
    ({"in", "out", "hup"}, {"hup"},
     [("read", "delete"), ("read", "add-close-only"), ("write", "delete")]),
    ({"in", "out"}, set(), [("read", "delete"), ("write", "delete")]),
]


@pytest.mark.offline
@pytest.mark.parametrize("before, after, changes", PLANS)
def test_kqueue_plan(before: set, after: set, changes: list) -> None:  # type: ignore[type-arg]
    assert _core._kqueue_plan(before, after) == changes


REPORTS = [
    # XNU puts the socket's error in EV_EOF's fflags (filt_soread / filt_sowrite).
    (dict(filter="read", eof=True, fflags=errno.ECONNRESET), {"in", "hup", "err"},
     errno.ECONNRESET),
    (dict(filter="read", eof=True), {"in", "hup"}, 0),
    (dict(filter="write", eof=True, fflags=errno.EPIPE), {"out", "err"}, errno.EPIPE),
    (dict(filter="write", eof=True), {"out"}, 0),
    # EV_ERROR is a change that failed, with its errno in data (kevent(2)).
    (dict(filter="read", ev_error=True, data=errno.EBADF), {"err"}, errno.EBADF),
    (dict(filter="read", data=64), {"in"}, 0),
    # Active, no flag, nothing to read: XNU's "temporary udp error": SO_ERROR says which.
    (dict(filter="read", data=0), {"in", "err"}, 0),
    (dict(filter="write", data=9216), {"out"}, 0),
]


@pytest.mark.offline
@pytest.mark.parametrize("event, what, code", REPORTS)
def test_kqueue_report(event: dict, what: set, code: int) -> None:  # type: ignore[type-arg]
    assert _core._kqueue_report(**event) == (what, code)

