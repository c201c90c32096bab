"""mpoint.aio: non-blocking joins under asyncio and the batch-fed transport."""
from __future__ import annotations

import asyncio
import socket
from typing import Any, List, Tuple

import pytest

import mpoint
import support
from mpoint import JL_RECEIVER_ONLY, JL_SENDER_ONLY, aio, errors


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_join_leaf_completes_on_fd_connect(family: int, group: str, port: int) -> None:
    async def main() -> None:
        r = mpoint.socket(family)
        s = mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY)
        with r, s:
            assert await aio.join_leaf(r, (group, port), flags=JL_RECEIVER_ONLY) is r
            assert r.joined == (group, port) and not r.getblocking()
            assert r._mp.reg is None                      # the completion set is gone
            s.send(b"hi")
            assert await asyncio.get_running_loop().sock_recv(r, 10) == b"hi"
    run(main())


def test_join_leaf_raises_the_fd_connect_error(port: int) -> None:
    limit = support.needs_proc("/proc/sys/net/ipv4/igmp_max_memberships", linux_only=True)

    async def main() -> None:
        with open(limit) as f:
            saved = f.read()
        with mpoint.socket() as r:
            with open(limit, "w") as f:
                f.write("0")
            try:
                with pytest.raises(errors.WSAENOBUFS):
                    await aio.join_leaf(r, ("239.6.0.1", port), flags=JL_RECEIVER_ONLY)
            finally:
                with open(limit, "w") as f:
                    f.write(saved)
            await aio.join_leaf(r, ("239.6.0.1", port), flags=JL_RECEIVER_ONLY)   # retry
            assert r.joined == ("239.6.0.1", port)
    run(main())


def test_join_leaf_bad_arguments_raise_at_once() -> None:
    async def main() -> None:
        with mpoint.socket() as r:
            with pytest.raises(errors.WSAEADDRNOTAVAIL):
                await aio.join_leaf(r, ("192.0.2.1", 5000))
            with mpoint.EventSet() as es:
                es.register(r, mpoint.FD_CONNECT)
                with pytest.raises(errors.WSAEINVAL):
                    await aio.join_leaf(r, ("239.6.0.2", 5000))
    run(main())


class Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: List[Tuple[bytes, Any]] = []
        self.done = asyncio.get_running_loop().create_future()
        self.lost: List[Any] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append((data, addr))
        if len(self.got) == 100 and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Any) -> None:
        self.lost.append(exc)


class CollectBatches(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.sizes: List[int] = []
        self.groups: List[Any] = []
        self.done = asyncio.get_running_loop().create_future()

    def datagrams_received(self, batch: Any) -> None:
        self.sizes.extend(batch.sizes)
        self.groups.extend(d.group for d in batch)
        if len(self.sizes) >= 100 and not self.done.done():
            self.done.set_result(None)


def test_transport_per_datagram(family: int, group: str, port: int) -> None:
    async def main() -> None:
        r = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        s = mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY)
        transport, proto = await aio.create_datagram_endpoint(Collect, sock=r)
        assert isinstance(proto, Collect)
        assert transport.get_extra_info("socket") is r
        await asyncio.sleep(0)
        for i in range(100):
            s.send(b"%03d" % i)
        await proto.done
        assert [d for d, _ in proto.got] == [b"%03d" % i for i in range(100)]
        assert {a[:2] for _, a in proto.got} == {s.getsockname()[:2]}
        transport.close()
        await asyncio.sleep(0.01)
        assert proto.lost == [None] and r.fileno() == -1
        s.close()
    run(main())


def test_transport_batches(family: int, group: str, port: int) -> None:
    async def main() -> None:
        r = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        s = mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY)
        transport, proto = await aio.create_datagram_endpoint(
            CollectBatches, sock=r, batch=mpoint.RecvBatch(16, 512))
        await asyncio.sleep(0)
        for i in range(100):
            s.send(b"x" * (i + 1))
        await proto.done
        assert proto.sizes == list(range(1, 101))
        assert set(proto.groups) == {group}
        transport.close()
        s.close()
    run(main())


def test_transport_sendto(family: int, group: str, port: int) -> None:
    async def main() -> None:
        rx = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
        both = mpoint.socket(family).join_leaf((group, port + 1000))
        transport, proto = await aio.create_datagram_endpoint(Collect, sock=both)
        transport.sendto(b"to the group")                 # JL_BOTH: the group by default
        transport.sendto(b"explicit", (group, port))
        loop = asyncio.get_running_loop()
        assert await loop.sock_recv(rx, 100) == b"explicit"
        await asyncio.sleep(0.05)
        assert proto.got and proto.got[0][0] == b"to the group"   # looped back to itself
        assert transport.get_write_buffer_size() == 0
        transport.close()
        with pytest.raises(RuntimeError):
            transport.sendto(b"late")
        rx.close()
    run(main())


def test_endpoint_wants_an_mpoint_socket() -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
            with pytest.raises(TypeError):
                await aio.create_datagram_endpoint(Collect, sock=plain)  # type: ignore[arg-type]
    run(main())
