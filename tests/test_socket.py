"""mpoint.socket(): WSASocket with multipoint flags, and the socket it returns."""
from __future__ import annotations

import asyncio
import os
import selectors
import socket
import sys

import pytest

import mpoint
import support
from mpoint import (JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY, WSA_FLAG_MULTIPOINT_C_LEAF,
                    WSA_FLAG_MULTIPOINT_C_ROOT, WSA_FLAG_MULTIPOINT_D_LEAF,
                    WSA_FLAG_MULTIPOINT_D_ROOT, Plane, errors)

C_LEAF, C_ROOT = WSA_FLAG_MULTIPOINT_C_LEAF, WSA_FLAG_MULTIPOINT_C_ROOT
D_LEAF, D_ROOT = WSA_FLAG_MULTIPOINT_D_LEAF, WSA_FLAG_MULTIPOINT_D_ROOT


def test_constants_have_winsock_values() -> None:
    assert (mpoint.JL_SENDER_ONLY, mpoint.JL_RECEIVER_ONLY, mpoint.JL_BOTH) == (1, 2, 4)
    assert (C_ROOT, C_LEAF, D_ROOT, D_LEAF) == (0x02, 0x04, 0x08, 0x10)
    assert mpoint.WSA_FLAG_OVERLAPPED == 0x01 and mpoint.WSA_FLAG_NO_HANDLE_INHERIT == 0x80
    assert isinstance(JL_BOTH, mpoint.JoinFlag) and isinstance(C_LEAF, mpoint.SocketFlag)


def test_default_socket(family: int) -> None:
    with mpoint.socket(family) as s:
        assert isinstance(s, socket.socket) and isinstance(s, mpoint.MultipointSocket)
        assert s.family == family and s.type == socket.SOCK_DGRAM
        # Windows' socket object reads proto from the provider's
        # WSAPROTOCOL_INFOW (Wine's says 0).
        assert s.proto == socket.IPPROTO_UDP or (sys.platform == "win32" and s.proto == 0)
        assert s.multipoint_flags == C_LEAF | D_LEAF
        assert s.control_plane is Plane.LEAF and s.data_plane is Plane.LEAF
        assert s.joined is None and s.join_flags is None
        assert not s.get_inheritable()
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        if family == socket.AF_INET6:
            assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def test_extra_winsock_flags_are_accepted() -> None:
    flags = C_LEAF | D_LEAF | mpoint.WSA_FLAG_OVERLAPPED | mpoint.WSA_FLAG_NO_HANDLE_INHERIT
    with mpoint.socket(flags=flags) as s:
        assert s.multipoint_flags == flags


@pytest.mark.parametrize("flags", [0, C_LEAF, D_LEAF, C_LEAF | C_ROOT | D_LEAF,
                                   C_LEAF | D_LEAF | D_ROOT, C_LEAF | D_LEAF | 0x100,
                                   -1, 2**64, C_ROOT | D_ROOT | C_LEAF])
def test_flags_need_one_control_and_one_data_role(flags: int) -> None:
    with pytest.raises(errors.WSAEINVAL):
        mpoint.socket(flags=flags)


@pytest.mark.parametrize("flags", [C_ROOT | D_LEAF, C_LEAF | D_ROOT, C_ROOT | D_ROOT])
def test_datagram_sockets_refuse_rooted_planes(flags: int) -> None:
    for make in (mpoint.socket, mpoint.MultipointSocket):     # the class itself says it too
        with pytest.raises(errors.WSAEOPNOTSUPP, match="SOCK_STREAM for a rooted") as info:
            make(flags=flags)
        assert info.value.filename == "WSASocket"


@pytest.mark.parametrize("family, type_, proto, exc", [
    (support.NOT_IP, socket.SOCK_DGRAM, 0, "WSAEAFNOSUPPORT"),
    (12345, socket.SOCK_DGRAM, 0, "WSAEAFNOSUPPORT"),
    (2**80, socket.SOCK_DGRAM, 0, "WSAEAFNOSUPPORT"),
    (socket.AF_INET, socket.SOCK_RAW, 0, "WSAESOCKTNOSUPPORT"),
    (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_TCP, "WSAEPROTONOSUPPORT"),
    (socket.AF_INET, socket.SOCK_DGRAM, -5, "WSAEPROTONOSUPPORT"),
])
def test_bad_socket_arguments(family: int, type_: int, proto: int, exc: str) -> None:
    with pytest.raises(errors.lookup(exc)):
        mpoint.socket(family, type_, proto)


@pytest.mark.parametrize("arg", ["2", 2.0, None, b"x"])
def test_socket_arguments_must_be_integers(arg: object) -> None:
    with pytest.raises(TypeError):
        mpoint.socket(arg)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mpoint.socket(flags=arg)  # type: ignore[arg-type]


def test_no_descriptor_leaks_on_errors() -> None:
    fds = support.needs_proc("/proc/self/fd", linux_only=True)
    before = len(os.listdir(fds))
    for _ in range(200):
        with pytest.raises(OSError):
            mpoint.socket(flags=C_ROOT | D_LEAF)
        with mpoint.socket() as s, pytest.raises(OSError):
            s.join_leaf(("192.0.2.1", 9))
    assert len(os.listdir(fds)) == before


def test_dup_keeps_the_class(group: str, port: int, family: int) -> None:
    with mpoint.socket(family) as s, s.dup() as d:
        assert isinstance(d, mpoint.MultipointSocket)
        assert d.control_plane is Plane.LEAF
        d.join_leaf((group, port))


# -- the standard library's tools work on it ---------------------------------

def test_settimeout_and_recvfrom(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as r:
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        r.settimeout(0.05)
        with pytest.raises(socket.timeout):
            r.recvfrom(10)


def test_selectors(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as r, mpoint.socket(family) as s, \
            selectors.DefaultSelector() as sel:
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        s.join_leaf((group, port), flags=JL_SENDER_ONLY)
        r.setblocking(False)
        sel.register(r, selectors.EVENT_READ)
        assert sel.select(0) == []
        s.send(b"ping")
        ready = sel.select(2)
        assert [key.fileobj for key, _ in ready] == [r]
        assert r.recv(10) == b"ping"


def test_asyncio_sock_recv_and_endpoint(family: int, group: str, port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        s = mpoint.socket(family).join_leaf((group, port), flags=JL_BOTH)
        r.setblocking(False)
        got: "asyncio.Queue[bytes]" = asyncio.Queue()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                got.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Proto, sock=s)
        try:
            s.send(b"to both")
            assert await asyncio.wait_for(loop.sock_recv(r, 100), 2) == b"to both"
            assert await asyncio.wait_for(got.get(), 2) == b"to both"   # loopback to itself
            if hasattr(loop, "sock_recvfrom"):                       # Python 3.11+
                s.send(b"again")
                data, addr = await asyncio.wait_for(loop.sock_recvfrom(r, 100), 2)
                assert data == b"again" and addr[1] == s.getsockname()[1]
        finally:
            transport.close()
            r.close()

    asyncio.run(main())


def test_closed_socket(family: int, group: str, port: int) -> None:
    s = mpoint.socket(family)
    s.close()
    with pytest.raises(errors.WSAENOTSOCK):
        s.join_leaf((group, port))
    with pytest.raises(errors.WSAENOTSOCK):
        s.multipoint_loopback
    with pytest.raises(errors.WSAENOTSOCK):
        s.multicast_scope = 3
