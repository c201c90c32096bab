"""asyncio integration: non-blocking joins and a batch-fed datagram transport.

A ``MultipointSocket`` already works with asyncio's own tools
(``loop.create_datagram_endpoint(sock=...)``, ``loop.sock_recvfrom``).  This
module adds what asyncio lacks:

* ``await join_leaf(sock, ...)``: WSAJoinLeaf on a non-blocking socket,
  completing when its FD_CONNECT is reported (with its error, if any).
* ``await create_datagram_endpoint(factory, sock=...)``: a transport that
  drains the socket with ``recv_batch`` (many datagrams per system call,
  into memory allocated once) instead of one 256 KiB read per datagram.  The
  protocol gets ``datagrams_received(batch)`` once per batch when it defines
  it -- the batch is reused, so consume it before returning -- or else
  ``datagram_received(data, addr)`` per datagram, as asyncio's protocols do.
"""
from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any, Callable, Deque, Optional, Tuple

from . import _core, errors
from .events import FD, EventSet
from .multipoint_socket import MultipointSocket

__all__ = ["join_leaf", "create_datagram_endpoint", "BatchDatagramTransport"]

_BATCHES_PER_WAKEUP = 4     # drain up to this many full batches per readable callback


async def join_leaf(sock: MultipointSocket, *args: Any, **kwargs: Any) -> MultipointSocket:
    """``sock.join_leaf(*args, **kwargs)`` without blocking the event loop:
    the socket is made non-blocking, the join is started, and this returns
    once FD_CONNECT reports it -- raising the mpoint error it carries."""
    if sock._mp.reg is not None:
        raise errors.from_code("WSAEINVAL", "join_leaf",
                               "the socket is registered in an EventSet: wait for its "
                               "FD_CONNECT there")
    sock.setblocking(False)        # and it stays so: the completion set restores this
    with EventSet() as completion:
        completion.register(sock, FD.CONNECT)
        sock.join_leaf(*args, **kwargs)           # bad arguments raise here, at once
        await asyncio.sleep(0)                    # completion comes on a later wait
        [done] = completion.wait(0)
    code = done.errors[FD.CONNECT]
    if code:
        raise errors.from_code(code, "WSAJoinLeaf")
    return sock


class _Readiness:
    """Calls ``on_read`` / ``on_write`` in the loop when the socket becomes
    readable / writable again.  Selector loops do it with their own
    add_reader/add_writer.  Windows' default (proactor) loop has neither, so
    there a thread waits in an EventSet and hands each event to the loop;
    Winsock's re-enabling rules keep it from spinning: FD_READ comes back
    only after a receive (recv_batch), FD_WRITE only after a send that would
    block.  The thread waits in slices of 0.1 s to notice close()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: MultipointSocket,
                 on_read: Callable[[], None], on_write: Callable[[], None]) -> None:
        self._loop = loop
        self._fd = sock.fileno()
        self._on_write = on_write
        self._stop = threading.Event()
        try:
            loop.add_reader(self._fd, on_read)
            self.thread: Optional[threading.Thread] = None
        except NotImplementedError:
            evset = EventSet()
            evset.register(sock, FD.READ | FD.WRITE)
            self.thread = threading.Thread(target=self._run, args=(evset, on_read, on_write),
                                           name="mpoint.aio readiness", daemon=True)
            self.thread.start()

    def _run(self, evset: EventSet, on_read: Callable[[], None],
             on_write: Callable[[], None]) -> None:
        try:
            while not self._stop.is_set():
                for ne in evset.wait(0.1):
                    if ne.events & FD.READ:
                        self._loop.call_soon_threadsafe(on_read)
                    if ne.events & FD.WRITE:
                        self._loop.call_soon_threadsafe(on_write)
        except (RuntimeError, OSError):
            pass                           # the loop or the socket closed under us
        finally:
            evset.close()

    def want_write(self, on: bool) -> None:
        if self.thread is not None:
            return                         # FD_WRITE comes by itself after a blocked send
        if on:
            self._loop.add_writer(self._fd, self._on_write)
        else:
            self._loop.remove_writer(self._fd)

    def close(self) -> None:
        if self.thread is None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._stop.set()


class BatchDatagramTransport(asyncio.DatagramTransport):
    """A datagram transport fed by ``recv_batch``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: MultipointSocket,
                 protocol: asyncio.DatagramProtocol, batch: "_core.RecvBatch") -> None:
        super().__init__({"socket": sock})
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._batch = batch
        self._bulk: Optional[Callable[[Any], None]] = getattr(protocol, "datagrams_received",
                                                                None)
        self._outgoing: Deque[Tuple[bytes, Any]] = collections.deque()
        self._closing = False
        self._readiness: Optional[_Readiness] = None
        sock.setblocking(False)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start)

    def _start(self) -> None:
        if self._closing:
            return
        problem: Optional[OSError] = None
        if self._sock.fileno() != self._fd:        # closed (or detached) before the start
            problem = errors.from_code("WSAENOTSOCK", "create_datagram_endpoint",
                                       "the socket was closed before the transport started")
        else:
            try:
                self._readiness = _Readiness(self._loop, self._sock, self._on_readable,
                                             self._on_writable)
            except (OSError, ValueError) as exc:
                problem = exc if isinstance(exc, OSError) else errors.from_code(
                    "WSAENOTSOCK", "create_datagram_endpoint", str(exc))
        if problem is not None:
            # The protocol hears of it as of any transport's failure: no
            # exception escapes into the loop.
            self._closing = True
            self._outgoing.clear()
            self._protocol.error_received(problem)
            self._loop.call_soon(self._protocol.connection_lost, problem)

    # -- receiving --------------------------------------------------------
    def _on_readable(self) -> None:
        if self._closing:
            return
        batch, sock = self._batch, self._sock
        for _ in range(_BATCHES_PER_WAKEUP):
            try:
                n = sock.recv_batch(batch, 0)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            if n == 0:
                return
            if self._bulk is not None:
                self._bulk(batch)
            else:
                received = self._protocol.datagram_received
                for datagram in batch:
                    received(bytes(datagram.data), datagram.source)
            if n < batch.max_datagrams or self._closing:
                return

    # -- sending ------------------------------------------------------------
    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing:
            raise RuntimeError("the transport is closing")
        data = bytes(data)
        if not self._outgoing:
            try:
                self._send(data, addr)
                return
            except BlockingIOError:
                if self._readiness is not None:
                    self._readiness.want_write(True)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
        self._outgoing.append((data, addr))

    def _send(self, data: bytes, addr: Any) -> None:
        if addr is None:
            self._sock.send(data)
        else:
            self._sock.sendto(data, addr)

    def _on_writable(self) -> None:
        if not self._outgoing:
            return
        while self._outgoing:
            data, addr = self._outgoing[0]
            try:
                self._send(data, addr)
            except BlockingIOError:
                return
            except OSError as exc:
                self._protocol.error_received(exc)
            self._outgoing.popleft()
        if self._readiness is not None:
            self._readiness.want_write(False)
        if self._closing:
            self._finish()

    def get_write_buffer_size(self) -> int:
        return sum(len(d) for d, _ in self._outgoing)

    # -- closing ------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._readiness is not None and not self._outgoing:
            self._readiness.close()
        if not self._outgoing:
            self._finish()

    def abort(self) -> None:
        self._outgoing.clear()
        self._closing = False
        self.close()

    def _finish(self) -> None:
        if self._readiness is not None:
            self._readiness.close()
        self._loop.call_soon(self._protocol.connection_lost, None)
        self._loop.call_soon(self._sock.close)


async def create_datagram_endpoint(
        protocol_factory: Callable[[], asyncio.DatagramProtocol], *, sock: MultipointSocket,
        batch: "Optional[_core.RecvBatch]" = None,
) -> Tuple[BatchDatagramTransport, asyncio.DatagramProtocol]:
    """Like ``loop.create_datagram_endpoint(protocol_factory, sock=sock)``,
    with a batch-fed transport (``batch``: the RecvBatch to reuse; default
    64 datagrams of 2 KiB with metadata)."""
    if not isinstance(sock, MultipointSocket):
        raise TypeError(f"sock must be an mpoint socket, not {type(sock).__name__}")
    if sock.fileno() < 0:
        raise errors.from_code("WSAENOTSOCK", "create_datagram_endpoint", "the socket is closed")
    loop = asyncio.get_running_loop()
    protocol = protocol_factory()
    transport = BatchDatagramTransport(loop, sock, protocol,
                                       batch if batch is not None else _core.RecvBatch())
    return transport, protocol
