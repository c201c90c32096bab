"""The rooted protocol's background half: one daemon thread per process that
drives every handshake nobody is blocked on (docs/rooted-protocol.md).

* ``Dial``: the connecting side of a handshake (a leaf's JOIN, a root's
  INVITE): connect, send one frame, read one answer.  A blocking join runs it
  in the caller's thread (``Dial.run``); a non-blocking one hands it to the
  engine, which calls ``done(message_or_error)`` in its thread.
* ``Listener``: a listening socket's accepts and the incomplete requests on
  them, each bounded (``HANDSHAKE_TIMEOUT``, ``MAX_HANDSHAKES``, one frame of
  buffer); a complete request is handed to ``queued(conn, address, request)``.

Contract: the engine owns duplicates of the descriptors it polls, so a user
closing a socket (or its number being reused) never makes it poll or read
another socket; callbacks run in the engine thread, never with its lock
held.  Nothing here touches a socket's mpoint state: rooted.py does."""
from __future__ import annotations

import errno
import os
import selectors
import socket as _stdsocket
import struct
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union, cast

from . import rooted_wire as wire

HANDSHAKE_TIMEOUT = 5.0        # a listening side waits this long for a complete request
MAX_HANDSHAKES = 512           # incomplete requests per listening socket
_SLICE = 0.1                   # the longest a blocking dial waits between checks

# struct linger: two ints on POSIX, two u_shorts in Winsock.
_LINGER = struct.Struct("HH" if sys.platform == "win32" else "ii")
LINGER_RESET = _LINGER.pack(1, 0)
LINGER_OFF = _LINGER.pack(0, 0)

_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY, 10035}


class DialError(Exception):
    """A dial that failed: ``code`` is a Winsock name or a platform code."""

    def __init__(self, code: Union[int, str], detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def reset(sock: _stdsocket.socket) -> None:
    """Closes with a reset (SO_LINGER on, 0): the peer learns WSAECONNRESET."""
    try:
        sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_LINGER, LINGER_RESET)
    except OSError:
        pass
    sock.close()


def _dup(sock: _stdsocket.socket) -> _stdsocket.socket:
    """A non-blocking duplicate of ``sock``'s descriptor, for the engine."""
    fd = _stdsocket.dup(sock.fileno())
    copy = _stdsocket.socket(sock.family, _stdsocket.SOCK_STREAM, 0, fileno=fd)
    copy.setblocking(False)
    return copy


class Dial:
    """Connect to ``address``, send ``frame``, read one answer frame."""

    def __init__(self, sock: _stdsocket.socket, address: Tuple[object, ...], frame: bytes,
                 timeout: float) -> None:
        self.sock = _dup(sock)             # ours: closed when the dial ends
        self.address = address
        self.out = memoryview(frame)
        self.reader = wire.FrameReader()
        self.deadline = time.monotonic() + timeout
        self.state = "new"
        self.cancelled = False
        self.failed: Optional[DialError] = None
        self.done: Optional[Callable[[Union[wire.Message, DialError]], None]] = None

    def begin(self) -> None:
        """Starts the connect in the caller's thread (a non-blocking join
        has begun when join_leaf returns); a failure is kept for done()."""
        try:
            self.step()
        except DialError as exc:
            self.failed = exc

    def _start(self) -> None:
        err = self.sock.connect_ex(self.address)
        if err == 0:
            self.state = "send"
        elif err in _IN_PROGRESS:
            self.state = "connecting"
        else:
            raise DialError(err, f"connect to {self.address[0]} port {self.address[1]}")

    def wants(self) -> int:
        return selectors.EVENT_READ if self.state == "recv" else selectors.EVENT_WRITE

    def step(self) -> Optional[wire.Message]:
        """One step on readiness; the answer once complete."""
        if self.state == "new":
            self._start()
        if self.state == "connecting":
            err = self.sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_ERROR)
            if err:
                raise DialError(err, f"connect to {self.address[0]} port {self.address[1]}")
            try:
                self.sock.getpeername()
            except OSError:
                return None                   # not connected yet
            self.state = "send"
        if self.state == "send":
            try:
                sent = self.sock.send(self.out)
            except BlockingIOError:
                return None
            except OSError as exc:
                raise DialError(exc.errno or errno.ECONNRESET, "sending the request") from None
            self.out = self.out[sent:]
            if len(self.out) == 0:
                self.state = "recv"
            return None
        try:
            data = self.sock.recv(self.reader.need())
        except BlockingIOError:
            return None
        except OSError as exc:
            raise DialError(exc.errno or errno.ECONNRESET, "waiting for the answer") from None
        if not data:
            raise DialError("WSAECONNRESET", "the peer closed the connection without answering")
        try:
            self.reader.feed(data)
            if self.reader.done():
                return self.reader.message()
        except wire.ProtocolError as exc:
            raise DialError("WSAEINVAL", f"malformed answer: {exc.text}") from None
        return None

    def run(self) -> wire.Message:
        """The whole dial in the caller's thread, in slices of 100 ms (a
        cancel from another thread, or a signal, is seen between slices)."""
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(self.sock, self.wants())
                while True:
                    if self.cancelled:
                        raise DialError("WSAENOTSOCK", "the socket was closed while joining")
                    if self.state == "new" or sel.select(self._slice()):
                        answer = self.step()
                        if answer is not None:
                            return answer
                        sel.modify(self.sock, self.wants())
                    elif time.monotonic() >= self.deadline:
                        raise DialError("WSAETIMEDOUT", "no answer within the join timeout")
        finally:
            self.sock.close()

    def outcome(self) -> Union[wire.Message, DialError]:
        """``run``'s answer, or the DialError it raised (a blocking join)."""
        try:
            return self.run()
        except DialError as exc:
            return exc

    def _slice(self) -> float:
        return max(0.0, min(_SLICE, self.deadline - time.monotonic()))


class Listener:
    """A listening socket's incomplete requests, read by the engine."""

    def __init__(self, sock: _stdsocket.socket, expect: int,
                 queued: Callable[[_stdsocket.socket, Tuple[object, ...], wire.Request], None]
                 ) -> None:
        self.sock = _dup(sock)
        self.expect = expect                   # wire.JOIN (a root) or wire.INVITE (a leaf)
        self.queued = queued
        self.pending: Dict[_stdsocket.socket, Tuple[wire.FrameReader, float, Tuple[object, ...]]] = {}
        self.cancelled = False


class _Engine:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = _stdsocket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.calls: List[Callable[[], None]] = []
        self.dials: List[Dial] = []
        self.listeners: List[Listener] = []
        self.thread = threading.Thread(target=self._loop, name="mpoint-rooted", daemon=True)
        self.thread.start()

    def call(self, fn: Callable[[], None]) -> None:
        """Runs ``fn`` in the engine thread, soon."""
        with self.lock:
            self.calls.append(fn)
        try:
            self.wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass                               # a wake is already pending

    # -- the loop ------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            timeout = self._next_deadline()
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    try:
                        while self.wake_r.recv(512):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                else:
                    self._ready(key.data, key.fileobj)  # type: ignore[arg-type]
            with self.lock:
                calls, self.calls = self.calls, []
            for fn in calls:
                fn()
            self._expire()

    def _next_deadline(self) -> float:
        now = time.monotonic()
        soonest = now + 1.0
        for d in self.dials:
            soonest = min(soonest, d.deadline)
        for lst in self.listeners:
            for _, born, _ in lst.pending.values():
                soonest = min(soonest, born + HANDSHAKE_TIMEOUT)
        return max(0.0, soonest - now)

    def _expire(self) -> None:
        now = time.monotonic()
        for d in [d for d in self.dials if now >= d.deadline]:
            self._end_dial(d, DialError("WSAETIMEDOUT", "no answer within the join timeout"))
        for lst in self.listeners:
            for conn in [c for c, (_, born, _) in lst.pending.items()
                         if now >= born + HANDSHAKE_TIMEOUT]:
                self._drop(lst, conn, None)

    def _ready(self, owner: Union[Dial, Listener], fileobj: _stdsocket.socket) -> None:
        """One ready key of this round's poll.  A key that an earlier key
        of the same round made stale (a handshake evicted by an accept
        past MAX_HANDSHAKES: its socket already closed) is skipped."""
        if isinstance(owner, Dial):
            if owner not in self.dials:
                return
            try:
                answer = owner.step()
            except DialError as exc:
                self._end_dial(owner, exc)
                return
            if answer is not None:
                self._end_dial(owner, answer)
            else:
                self.sel.modify(owner.sock, owner.wants(), owner)
        elif fileobj is owner.sock:
            if owner in self.listeners:
                self._accept(owner)
        elif fileobj in owner.pending:
            self._read(owner, fileobj)

    # -- dials ---------------------------------------------------------------------
    def start_dial(self, dial: Dial, done: Callable[[Union[wire.Message, DialError]], None]
                   ) -> None:
        dial.done = done

        def begin() -> None:
            if dial.cancelled:
                self._finish(dial, DialError("WSAENOTSOCK", "closed while joining"))
                return
            if dial.failed is not None:
                self._finish(dial, dial.failed)
                return
            try:
                answer = dial.step()
            except DialError as exc:
                self._finish(dial, exc)
                return
            if answer is not None:
                self._finish(dial, answer)
                return
            self.dials.append(dial)
            self.sel.register(dial.sock, dial.wants(), dial)
        self.call(begin)

    def cancel_dial(self, dial: Dial) -> None:
        dial.cancelled = True

        def end() -> None:
            if dial in self.dials:
                self._end_dial(dial, DialError("WSAENOTSOCK", "closed while joining"))
        self.call(end)

    def _end_dial(self, dial: Dial, result: Union[wire.Message, DialError]) -> None:
        self.dials.remove(dial)
        self.sel.unregister(dial.sock)
        self._finish(dial, result)

    def _finish(self, dial: Dial, result: Union[wire.Message, DialError]) -> None:
        dial.sock.close()
        done, dial.done = dial.done, None
        if done is not None:
            _guarded(done, result)

    # -- listeners -----------------------------------------------------------------
    def add_listener(self, lst: Listener) -> None:
        def begin() -> None:
            if lst.cancelled:
                lst.sock.close()
                return
            self.listeners.append(lst)
            self.sel.register(lst.sock, selectors.EVENT_READ, lst)
        self.call(begin)

    def remove_listener(self, lst: Listener) -> None:
        lst.cancelled = True

        def end() -> None:
            if lst in self.listeners:
                self.listeners.remove(lst)
                self.sel.unregister(lst.sock)
                for conn in list(lst.pending):
                    self._drop(lst, conn, None)
                lst.sock.close()
        self.call(end)

    def _accept(self, lst: Listener) -> None:
        for _ in range(64):                     # then let the others run
            try:
                conn, address = lst.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return                          # the peer gave up meanwhile (ECONNABORTED)
            conn.setblocking(False)
            if len(lst.pending) >= MAX_HANDSHAKES:
                oldest = min(lst.pending, key=lambda c: lst.pending[c][1])
                self._drop(lst, oldest, None)
            lst.pending[conn] = (wire.FrameReader(), time.monotonic(), address)
            self.sel.register(conn, selectors.EVENT_READ, lst)

    def _read(self, lst: Listener, conn: _stdsocket.socket) -> None:
        reader, _, address = lst.pending[conn]
        try:
            data = conn.recv(reader.need())
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(lst, conn, None)
            return
        if not data:
            self._drop(lst, conn, None)
            return
        try:
            reader.feed(data)
            if not reader.done():
                return
            msg = reader.message()
            if not isinstance(msg, wire.Request) or msg.kind != lst.expect:
                raise wire.ProtocolError(wire.WSAEINVAL, f"a {type(msg).__name__.upper()} "
                                         f"where a {wire.TYPE_NAMES[lst.expect]} belongs")
        except wire.ProtocolError as exc:
            self._drop(lst, conn, exc)
            return
        del lst.pending[conn]
        self.sel.unregister(conn)
        _guarded(lst.queued, conn, address, msg)

    def _drop(self, lst: Listener, conn: _stdsocket.socket,
              why: Optional[wire.ProtocolError]) -> None:
        """Ends one handshake: a REJECT first when the peer speaks the
        protocol (``why.code``), then a reset."""
        lst.pending.pop(conn, None)
        try:
            self.sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        if why is not None and why.code is not None:
            try:
                conn.send(wire.reject(why.code, why.text))
            except OSError:
                pass
        reset(conn)


def _guarded(fn: Callable[..., None], *args: object) -> None:
    """A callback's failure is reported, and the engine keeps serving."""
    try:
        fn(*args)
    except Exception as exc:                         # noqa: BLE001 -- reported below
        hook_args = cast(Any, threading.ExceptHookArgs)     # a structseq: one tuple
        threading.excepthook(hook_args((type(exc), exc, exc.__traceback__,
                                        threading.current_thread())))


_engine: Optional[_Engine] = None
_engine_lock = threading.Lock()


def engine() -> _Engine:
    """The process's engine, started on first use (and again in a forked
    child, which inherits no thread)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def _forget_after_fork() -> None:
    global _engine, _engine_lock
    _engine = None
    _engine_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
