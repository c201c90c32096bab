"""WSAJoinLeaf semantics for a non-rooted IP multicast socket (c_leaf/d_leaf)."""
from __future__ import annotations

import socket
import sys

import pytest

import mpoint
from mpoint import JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY, errors
import support
from support import drain, memberships, new_group


def receiver(family: int, group: str, port: int, **kw: object) -> mpoint.MultipointSocket:
    return mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY, **kw)  # type: ignore[arg-type]


def sender(family: int, group: str, port: int, **kw: object) -> mpoint.MultipointSocket:
    return mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY, **kw)  # type: ignore[arg-type]


# -- the three roles ---------------------------------------------------------

def test_join_returns_the_same_socket(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as s:
        assert s.join_leaf((group, port)) is s          # a c_leaf joins itself
        assert s.joined == (group, port) and s.join_flags is JL_BOTH


def test_join_method_before_and_after(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as s:
        assert s.join_method is None
        s.join_leaf((group, port), flags=JL_RECEIVER_ONLY, source=None)
        assert s.join_method in ("WSAJoinLeaf", "socket options")


def test_an_interface_joins_by_socket_options(family: int, group: str, port: int) -> None:
    """WSAJoinLeaf itself takes neither an interface nor a source filter."""
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), flags=JL_RECEIVER_ONLY, interface=support.loopback_index())
        assert s.join_method == "socket options"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX has no WSAJoinLeaf")
def test_posix_joins_by_socket_options(family: int, group: str, port: int) -> None:
    with receiver(family, group, port) as r:
        assert r.join_method == "socket options"


@pytest.mark.skipif(sys.platform != "win32", reason="Winsock's own WSAJoinLeaf exists only on Windows")
@pytest.mark.real_windows("WSAJoinLeaf is a stub that fails without an error code")
def test_windows_default_join_is_native(family: int, group: str, port: int) -> None:
    with receiver(family, group, port) as r:
        assert r.join_method == "WSAJoinLeaf"


def test_receiver_only_adds_membership_and_receives(family: int, group: str, port: int) -> None:
    with receiver(family, group, port) as r, sender(family, group, port) as s:
        assert group in set(memberships(family))
        s.send(b"one")
        s.send(b"two")
        assert drain(r) == [b"one", b"two"]
        with pytest.raises(OSError):
            r.getpeername()             # a receiving socket is never connected
        with pytest.raises(OSError):
            r.send(b"x")                # ... and has no default destination


def test_sender_only_adds_no_membership(family: int, group: str, port: int) -> None:
    before = set(memberships(family))
    with sender(family, group, port) as s:
        after = set(memberships(family))
        assert group not in after and after == before   # no IGMP/MLD report to send
        assert s.getpeername()[:2] == (group, port)     # the group is the default destination
        assert s.getsockname()[1] != 0                  # bound by the system


def test_sender_only_reaches_receivers(family: int, group: str, port: int) -> None:
    with receiver(family, group, port) as r1, receiver(family, group, port) as r2, \
            sender(family, group, port) as s:
        assert s.send(b"hello") == 5
        assert drain(r1) == [b"hello"]
        assert drain(r2) == [b"hello"]


def test_sender_only_receives_nothing_from_the_group(family: int, group: str, port: int) -> None:
    with sender(family, group, port) as s, mpoint.socket(family) as other:
        other.join_leaf((group, port), flags=JL_BOTH)
        other.send(b"to the group")
        assert drain(s) == []


def test_both_sends_and_receives_without_connecting(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as a, mpoint.socket(family) as b:
        a.join_leaf((group, port), flags=JL_BOTH)
        b.join_leaf((group, port), flags=JL_BOTH)
        assert group in set(memberships(family))
        with pytest.raises(OSError):
            a.getpeername()
        a.send(b"from a")
        b.send(b"from b")
        # loopback is on by default: each also hears itself
        assert sorted(drain(a)) == [b"from a", b"from b"]
        assert sorted(drain(b)) == [b"from a", b"from b"]


def test_unbound_receiver_is_bound_to_the_group_port(family: int, group: str, port: int) -> None:
    with receiver(family, group, port) as r:
        assert r.getsockname()[1] == port


@pytest.mark.real_windows("Windows refuses a bind to a multicast address: receivers take the wildcard one there")
def test_unbound_receiver_only_is_bound_to_its_group(family: int, group: str, port: int) -> None:
    """The bind rule: a JL_RECEIVER_ONLY socket the system binds takes the
    group's own address (the kernel then finds it by (group, port) however
    many sockets share the port), so unicast to its port does not reach it;
    JL_BOTH takes the wildcard address, where its peers' replies arrive."""
    with receiver(family, group, port) as r, sender(family, group, port) as s, \
            mpoint.socket(family).join_leaf((group, port), flags=JL_BOTH) as both, \
            socket.socket(family, socket.SOCK_DGRAM) as uni:
        assert r.getsockname()[:2] == (group, port)
        assert both.getsockname()[0] in ("0.0.0.0", "::")
        s.send(b"group")
        assert drain(r) == [b"group"] and drain(both) == [b"group"]
        loop = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        uni.sendto(b"unicast", (loop, port))
        assert drain(both) == [b"unicast"] and drain(r) == []


def test_socket_bound_behind_mpoints_back_keeps_its_address(
        family: int, group: str, port: int) -> None:
    """bind() through the standard library's own method, which mpoint does
    not see: the join still finds the socket bound and keeps its address."""
    with mpoint.socket(family) as r, sender(family, group, port) as s:
        socket.socket.bind(r, ("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        assert r.getsockname()[0] in ("0.0.0.0", "::") and r.getsockname()[1] == port
        s.send(b"x")
        assert drain(r) == [b"x"]


def test_prebound_socket_keeps_its_address(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as r, sender(family, group, port) as s:
        r.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        assert r.getsockname()[1] == port
        s.send(b"x")
        assert drain(r) == [b"x"]


def test_close_leaves_the_group(family: int, group: str, port: int) -> None:
    r = receiver(family, group, port)
    assert group in set(memberships(family))
    r.close()
    assert group not in set(memberships(family))


# -- source-specific joins ---------------------------------------------------

@pytest.mark.real_windows("Wine passes an IPv4 source membership to Linux with source and interface swapped; IPv6 has no MCAST_JOIN_SOURCE_GROUP there")
def test_source_specific_join_filters_by_source(family: int, port: int) -> None:
    group = new_group(family, ssm=True)
    elsewhere = "192.0.2.99" if family == socket.AF_INET else "2001:db8::99"
    with sender(family, group, port) as s:
        source = s.getsockname()[0]          # the address the system sends from
        with receiver(family, group, port, source=source) as wanted, \
                receiver(family, group, port, source=elsewhere) as unwanted:
            s.send(b"ssm")
            assert drain(wanted) == [b"ssm"]
            assert drain(unwanted) == []


@pytest.mark.real_windows("Wine passes an IPv4 source membership to Linux with source and interface swapped; IPv6 has no MCAST_JOIN_SOURCE_GROUP there")
def test_source_specific_join_on_an_asm_range(family: int, group: str, port: int) -> None:
    # SSM semantics hold for any group the kernel accepts an (S,G) join for.
    with sender(family, group, port) as s, \
            receiver(family, group, port, source=s.getsockname()[0]) as r:
        s.send(b"x")
        assert drain(r) == [b"x"]


# -- cross-talk ----------------------------------------------------------------

@pytest.mark.real_windows("Wine's sockets are Linux sockets, which deliver a group to every socket on its port; Windows has no option to stop it")
def test_no_cross_talk_between_groups_on_one_port(family: int, port: int) -> None:
    ga, gb = new_group(family), new_group(family)
    with receiver(family, ga, port) as ra, receiver(family, gb, port) as rb, \
            sender(family, ga, port) as sa, sender(family, gb, port) as sb:
        sa.send(b"to a")
        sb.send(b"to b")
        assert drain(ra) == [b"to a"]
        assert drain(rb) == [b"to b"]


def test_cross_talk_happens_without_mpoint(family: int, port: int) -> None:
    """The control for the test above: a plain socket on the port of a group
    that another socket joined receives it (Linux's IP_MULTICAST_ALL=1)."""
    ga = new_group(family)
    any_addr = "::" if family == socket.AF_INET6 else "0.0.0.0"
    with receiver(family, ga, port), sender(family, ga, port) as s, \
            socket.socket(family, socket.SOCK_DGRAM) as plain:
        plain.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            plain.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        plain.bind((any_addr, port))
        s.send(b"leak")
        if not drain(plain):
            pytest.skip("this kernel filters multicast per socket by default")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="IP_MULTICAST_ALL is Linux's")
def test_multicast_all_is_off(family: int) -> None:
    level, name = ((socket.IPPROTO_IP, 49) if family == socket.AF_INET
                   else (socket.IPPROTO_IPV6, 29))       # IP_MULTICAST_ALL, IPV6_MULTICAST_ALL
    with mpoint.socket(family) as s:
        assert s.getsockopt(level, name) == 0


# -- loopback and scope (their effect on the wire: test_interface.py) --------------

def test_scope_round_trips(family: int) -> None:
    with mpoint.socket(family) as s:
        assert s.multicast_scope == (1 if support.SAFE_SCOPE is None else support.SAFE_SCOPE)
        for hops in (0, 2, 32, 255):
            s.multicast_scope = hops
            assert s.multicast_scope == hops


@pytest.mark.parametrize("bad", [-1, 256, 10**30, -(10**30)])
def test_scope_out_of_range(family: int, bad: int) -> None:
    with mpoint.socket(family) as s:
        with pytest.raises(errors.WSAEINVAL):
            s.multicast_scope = bad
        assert s.multicast_scope == (1 if support.SAFE_SCOPE is None else support.SAFE_SCOPE)


@pytest.mark.parametrize("bad", ["3", 1.5, None, True])
def test_scope_wrong_type(bad: object) -> None:
    with mpoint.socket() as s:
        with pytest.raises(TypeError):
            s.multicast_scope = bad  # type: ignore[assignment]


def test_loopback_wrong_type() -> None:
    with mpoint.socket() as s:
        with pytest.raises(TypeError):
            s.multipoint_loopback = "yes"  # type: ignore[assignment]
