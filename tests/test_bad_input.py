"""join_leaf's arguments: each bad one gets the spec's code (or TypeError),
and a failed join leaves the socket unjoined and usable."""
from __future__ import annotations

import array
import socket
from typing import Any

import pytest

import mpoint
import support
from mpoint import JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY, errors
from support import drain, memberships

UNICAST = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}
ANY = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}
OTHER = {socket.AF_INET: "ff15::1", socket.AF_INET6: "239.1.2.3"}


_SAME = object()


def fails_cleanly(family: int, group: str, port: int, exc: Any, name: Any = _SAME,
                  **kw: Any) -> None:
    """The join raises ``exc``; afterwards the socket joins normally."""
    with mpoint.socket(family) as s:
        with pytest.raises(exc):
            s.join_leaf((group, port) if name is _SAME else name, **kw)
        assert s.joined is None
        if isinstance(exc, type) and issubclass(exc, errors.MultipointError):
            assert group not in set(memberships(family))
        s.join_leaf((group, port), flags=JL_BOTH)
        s.send(b"still works")
        assert drain(s) == [b"still works"]


def test_second_join_is_wsaeisconn(family: int, group: str, port: int) -> None:
    for first in (JL_SENDER_ONLY, JL_RECEIVER_ONLY, JL_BOTH):
        with mpoint.socket(family) as s:
            s.join_leaf((group, port), flags=first)
            with pytest.raises(errors.WSAEISCONN):
                s.join_leaf((group, port), flags=JL_BOTH)
            assert s.join_flags == first


@pytest.mark.parametrize("what", ["unicast", "wildcard", "port zero"])
def test_not_a_session_is_wsaeaddrnotavail(family: int, group: str, port: int, what: str) -> None:
    name = {"unicast": (UNICAST[family], port), "wildcard": (ANY[family], port),
            "port zero": (group, 0)}[what]
    fails_cleanly(family, group, port, errors.WSAEADDRNOTAVAIL, name)


def test_other_family_is_wsaeafnosupport(family: int, group: str, port: int) -> None:
    fails_cleanly(family, group, port, errors.WSAEAFNOSUPPORT,
                  (OTHER[family], port))


@pytest.mark.parametrize("name", [
    ("not-an-address", 5000), ("239.1.1.1.1", 5000), ("", 5000), ("239.1.1.1\0", 5000),
    ("ff15::1%lo", 5000), ("23\u0669.1.1.1", 5000), ("host",), (), ("239.1.1.1", 5000, 0, 0, 0),
    ("239.1.1.1", 70000), ("239.1.1.1", -1), ("239.1.1.1", 2**100),
])
def test_malformed_name_is_wsaefault(family: int, group: str, port: int, name: Any) -> None:
    if family == socket.AF_INET6 and name and name[0] == "239.1.1.1" and len(name) <= 4 \
            and 0 <= name[1] <= 65535:
        pytest.skip("a valid IPv4 address: family mismatch, tested separately")
    fails_cleanly(family, group, port, errors.WSAEFAULT, name)


def test_ipv4_name_with_ipv6_fields_is_wsaefault(group: str, port: int) -> None:
    fails_cleanly(socket.AF_INET, "239.7.200.1", port, errors.WSAEFAULT,
                  ("239.7.200.1", port, 0, 0))


@pytest.mark.parametrize("name", ["239.1.1.1", ["239.1.1.1", 5000], None, 5000,
                                  (239, 5000), ("239.1.1.1", "5000"), (b"239.1.1.1", 5000),
                                  ("239.1.1.1", 5000.0)])
def test_name_of_wrong_type_is_typeerror(family: int, group: str, port: int, name: Any) -> None:
    fails_cleanly(family, group, port, TypeError, name)


def test_ipv6_scope_id_chooses_the_interface(group: str, port: int) -> None:
    ff02 = "ff02::7:1"
    with mpoint.socket(socket.AF_INET6) as r:
        r.join_leaf((ff02, port, 0, support.loopback_index()), flags=JL_RECEIVER_ONLY)
        assert ff02 in set(memberships(socket.AF_INET6))


@pytest.mark.parametrize("flags", [0, 3, 5, 7, 8, -1, 2**40, 2**70])
def test_unknown_flags_are_wsaeinval(family: int, group: str, port: int, flags: int) -> None:
    fails_cleanly(family, group, port, errors.WSAEINVAL, flags=flags)


@pytest.mark.parametrize("flags", ["1", 1.0, None, True, False])
def test_flags_of_wrong_type(family: int, group: str, port: int, flags: Any) -> None:
    """bool is not a role: True would read as JL_SENDER_ONLY (1)."""
    fails_cleanly(family, group, port, TypeError, flags=flags)


def test_unknown_flags_say_which_roles_exist(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as s, pytest.raises(errors.WSAEINVAL) as info:
        s.join_leaf((group, port), flags=7)
    assert "flags=7" in str(info.value) and "JL_RECEIVER_ONLY (2)" in str(info.value)


def test_flags_by_index(family: int, group: str, port: int) -> None:
    class Role:
        def __index__(self) -> int:
            return int(JL_RECEIVER_ONLY)
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), flags=Role())  # type: ignore[arg-type]
        assert s.join_flags is JL_RECEIVER_ONLY


def test_join_on_a_closed_socket_says_it_is_closed(family: int, group: str, port: int) -> None:
    s = mpoint.socket(family)
    s.close()
    with pytest.raises(errors.WSAENOTSOCK, match="closed"):
        s.join_leaf((group, port))


def test_a_port_whose_index_closes_the_socket(family: int, group: str, port: int) -> None:
    """Conversion runs caller code first; the join then sees the socket as it
    is (closed), never a descriptor number that another socket now holds."""
    s = mpoint.socket(family)

    class Port:
        def __index__(self) -> int:
            s.close()
            return port
    with mpoint.socket(family) as other:       # may take the freed number
        with pytest.raises(errors.WSAENOTSOCK):
            s.join_leaf((group, Port()))  # type: ignore[arg-type]
        assert other.joined is None and group not in set(memberships(family))


def test_caller_data_is_not_supported(family: int, group: str, port: int) -> None:
    for data in (b"x", bytearray(b"hello"), memoryview(b"abc"), array.array("i", [1])):
        fails_cleanly(family, group, port, errors.WSAEPROTONOSUPPORT,
                      caller_data=data)


def test_empty_caller_data_is_no_data(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), caller_data=b"")
        assert s.joined == (group, port)


@pytest.mark.parametrize("data", [123, "text", object()])
def test_caller_data_of_wrong_type(family: int, group: str, port: int, data: Any) -> None:
    fails_cleanly(family, group, port, TypeError, caller_data=data)


def test_callee_data_is_set_to_nothing(family: int, group: str, port: int) -> None:
    callee = bytearray(b"capacity of the buffer")
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), callee_data=callee)
    assert callee == bytearray()          # lpCalleeData->len = 0: IP sends none back


def test_callee_data_untouched_when_the_join_fails(family: int, group: str, port: int) -> None:
    callee = bytearray(b"keep me")
    with mpoint.socket(family) as s:
        with pytest.raises(errors.WSAEADDRNOTAVAIL):
            s.join_leaf((UNICAST[family], port), callee_data=callee)
    assert callee == bytearray(b"keep me")


def test_read_only_callee_data_is_wsaefault(family: int, group: str, port: int) -> None:
    fails_cleanly(family, group, port, errors.WSAEFAULT,
                  callee_data=b"read only")


def test_exported_callee_data_is_wsaefault(family: int, group: str, port: int) -> None:
    callee = bytearray(b"exported")
    view = memoryview(callee)
    fails_cleanly(family, group, port, errors.WSAEFAULT,
                  callee_data=callee)
    view.release()
    assert callee == bytearray(b"exported")


@pytest.mark.parametrize("data", [memoryview(bytearray(4)), array.array("b", [1]), 5, "x"])
def test_callee_data_must_be_a_bytearray(family: int, group: str, port: int, data: Any) -> None:
    fails_cleanly(family, group, port, TypeError, callee_data=data)


@pytest.mark.parametrize("which", ["sqos", "gqos"])
@pytest.mark.parametrize("qos, exc", [(object(), TypeError), (0, TypeError), ({}, TypeError),
                                      (b"", errors.WSAEFAULT), (b"\0" * 79, errors.WSAEFAULT)])
def test_a_bad_qos_fails_cleanly(family: int, group: str, port: int, which: str, qos: Any,
                                 exc: Any) -> None:
    """lpSQOS / lpGQOS: a mpoint.QOS or the bytes of Winsock's QOS
    structure; a buffer too small is the spec's WSAEFAULT."""
    fails_cleanly(family, group, port, exc, **{which: qos})


@pytest.mark.parametrize("source, exc", [
    ("239.1.1.1", "mcast"), ("0.0.0.0", "WSAEADDRNOTAVAIL"), ("nonsense", "WSAEFAULT"),
    (5, TypeError), (b"192.0.2.1", TypeError),
])
def test_bad_source(family: int, group: str, port: int, source: Any, exc: Any) -> None:
    if source == "239.1.1.1":
        source = "ff15::9" if family == socket.AF_INET6 else source
        exc = "WSAEADDRNOTAVAIL"
    if source == "0.0.0.0" and family == socket.AF_INET6:
        source = "::"
    fails_cleanly(family, group, port, errors.lookup(exc) if isinstance(exc, str) else exc,
                  flags=JL_RECEIVER_ONLY, source=source)


def test_source_of_other_family(family: int, group: str, port: int) -> None:
    other = "192.0.2.1" if family == socket.AF_INET6 else "2001:db8::1"
    fails_cleanly(family, group, port, errors.WSAEAFNOSUPPORT,
                  flags=JL_RECEIVER_ONLY, source=other)


def test_source_needs_a_membership(family: int, group: str, port: int) -> None:
    fails_cleanly(family, group, port, errors.WSAEINVAL,
                  flags=JL_SENDER_ONLY, source=UNICAST[family])
