# The send path: a socket's token bucket (shaper.c) and batch send
# (send.c).  Contract:
#  - An unshaped socket's send/sendto/sendmsg stay socket.socket's own
#    (ext/sockcalls.pxi); a shaped one's go through _shaped_call, which
#    converts the data first (caller code may run); a datagram that
#    conforms goes straight out, one that does not holds the socket busy
#    while it waits for tokens (_shaped_wait): with the GIL released, in slices of
#    _SHAPER_SLICE_NS, the signal handlers run between slices (Ctrl+C), a
#    close from another thread ends the wait at the next slice
#    (WSAENOTSOCK).  Blocking socket (timeout None): waits as long as the
#    tokens take.  Timeout > 0: waits at most that, then WSAETIMEDOUT (a
#    TimeoutError, as socket.socket raises).  Non-blocking (timeout 0):
#    WSAEWOULDBLOCK at once, and FD_WRITE from its EventSet when the
#    tokens are back (mp_evset_post_at).
#  - The tokens are debited under the GIL (so set_shaper from another
#    thread never races the arithmetic) just before the system call, and
#    given back for what the system did not send.
#  - send_batch converts every payload (PyObject_GetBuffer, no copy) and
#    the address before it takes the busy count and reads the descriptor.
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.stdint cimport uint64_t, UINT64_MAX

cdef extern from "mpoint.h" nogil:
    unsigned long long MP_SHAPER_MAX
    unsigned int MP_UDP_MAX_IPV4, MP_UDP_MAX_IPV6
    int mp_shaper_set(mp_shaper_t *sh, uint64_t token_rate, uint64_t bucket, uint64_t peak,
                      uint64_t min_policed, uint64_t max_sdu, uint64_t now_ns)
    int mp_shaper_check(const mp_shaper_t *sh, size_t len)
    uint64_t mp_shaper_take(mp_shaper_t *sh, size_t len, uint64_t now_ns)
    void mp_shaper_refund(mp_shaper_t *sh, size_t len)
    uint64_t mp_monotonic_ns()
    int mp_sleep_ns(uint64_t ns)
    ctypedef struct mp_sendbuf_t:
        const void *base
        size_t len
    long mp_send_batch(mp_sock_t s, int family, const mp_sendbuf_t *bufs, size_t n,
                       const sockaddr_storage *to, mp_socklen_t tolen, size_t *bad)
    int mp_wait_writable(mp_sock_t s, int timeout_ms)
    int mp_evset_post_at(mp_evset_t *set, unsigned int slot, unsigned int event,
                         uint64_t due_ns)

# A wait for tokens sleeps at most this long at a time: a close from
# another thread ends it within 20 ms, and Ctrl+C too.
cdef uint64_t _SHAPER_SLICE_NS = 20000000


# -- the shaper's settings ------------------------------------------------------

cdef uint64_t _shaper_value(object value, str what) except? 0xFFFFFFFFFFFFFFFF:
    """A shaper parameter (an int, as operator.index takes it; None: 0).
    Out of 0..MP_SHAPER_MAX (negative included) comes back above it, for C
    to refuse with WSAEINVAL."""
    cdef long long v
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    v = _clamp(value)
    if v < 0 or <unsigned long long>v > MP_SHAPER_MAX:
        return MP_SHAPER_MAX + 1
    return <uint64_t>v


def sock_set_shaper(self, token_rate, bucket=None, peak=None, min_policed=None, max_sdu=None):
    """Shapes what this socket sends with a token bucket (IntServ's TSpec,
    mpoint.h): ``token_rate`` bytes/s (0: no rate limit) into a ``bucket``
    of that many bytes, full now; ``peak`` bytes/s (0 or None: none);
    datagrams below ``min_policed`` bytes count as that many;
    ``max_sdu`` bytes at most per datagram (0 or None: no limit; larger
    sends raise WSAEMSGSIZE).  ``token_rate`` None turns shaping off (as
    sock_clear_shaper).  A new setting starts with full buckets.
    WSAEINVAL (the setting unchanged) for a value outside 0..2**32-1 or a
    bucket no datagram could pass (mp_shaper_set)."""
    cdef SocketState st = _state(self)
    cdef mp_shaper_t sh
    cdef uint64_t r, b, p, m, big
    if token_rate is None:
        st.shaped = False
        return
    r = _shaper_value(token_rate, "token_rate")
    b = _shaper_value(bucket, "bucket")
    p = _shaper_value(peak, "peak")
    m = _shaper_value(min_policed, "min_policed")
    big = _shaper_value(max_sdu, "max_sdu")
    if mp_shaper_set(&sh, r, b, p, m, big, mp_monotonic_ns()) < 0:
        _fail("WSAEINVAL", "set_shaper",
              f"token_rate={token_rate!r}, bucket={bucket!r}, peak={peak!r}, "
              f"min_policed={min_policed!r}, max_sdu={max_sdu!r}: each 0..{MP_SHAPER_MAX}; "
              "with a token rate, a bucket of at least max(1, min_policed, max_sdu) bytes; "
              "a peak of at least the token rate; min_policed at most max_sdu")
    st.shaper = sh
    st.shaped = True


def sock_clear_shaper(self):
    """Turns the socket's token bucket off: sends go straight out again."""
    _state(self).shaped = False


def sock_shaper(self):
    """(token_rate, bucket, peak, min_policed, max_sdu) as set, or None."""
    cdef SocketState st = _state(self)
    if not st.shaped:
        return None
    return (st.shaper.token_rate, st.shaper.bucket, st.shaper.peak, st.shaper.min_policed,
            st.shaper.max_sdu)


def sock_shaper_tokens(self):
    """The token bucket's content now, in bytes (whole bytes, rounded
    down), or None when the socket is not shaped: for tests and
    diagnostics.  Reading it refills nothing."""
    cdef SocketState st = _state(self)
    if not st.shaped:
        return None
    return st.shaper.tokens // 1000000000


def _shaper_simulate(token_rate, bucket, peak, min_policed, max_sdu, start_ns, steps):
    """Test hook, not API: a shaper set at ``start_ns``, then for each
    (now_ns, size) of ``steps`` the result of mp_shaper_take (0: debited;
    else ns to wait; -1 for "never", UINT64_MAX); for (now_ns, -size) a
    refund of size (result 0); for (None, size) a greedy sender: the size
    taken at the earliest time it conforms, from the previous step's time
    on, and that time is the result.  WSAEINVAL as sock_set_shaper."""
    cdef mp_shaper_t sh
    cdef uint64_t w, now = 0
    cdef long long size
    if mp_shaper_set(&sh, _shaper_value(token_rate, "token_rate"), _shaper_value(bucket, "bucket"),
                     _shaper_value(peak, "peak"), _shaper_value(min_policed, "min_policed"),
                     _shaper_value(max_sdu, "max_sdu"), <uint64_t>_clamp(start_ns)) < 0:
        _raise("set_shaper")
    now = sh.last_ns
    out = []
    for now_ns, sz in steps:
        size = _clamp(sz)
        if now_ns is None:
            while True:
                w = mp_shaper_take(&sh, <size_t>size, now)
                if w == 0 or w == UINT64_MAX:
                    break
                now += w
            out.append(-1 if w == UINT64_MAX else now)
            continue
        now = <uint64_t>_clamp(now_ns)
        if size < 0:
            mp_shaper_refund(&sh, <size_t>(-size))
            out.append(0)
            continue
        w = mp_shaper_take(&sh, <size_t>size, now)
        out.append(-1 if w == UINT64_MAX else w)
    return out


# -- waiting for tokens -------------------------------------------------------------

cdef int _too_big(SocketState st, Py_ssize_t nbytes, str call, object which) except -1:
    """WSAEMSGSIZE unless a datagram of nbytes can ever pass the shaper."""
    if mp_shaper_check(&st.shaper, <size_t>nbytes) == 0:
        return 0
    what = "a datagram" if which is None else f"datagram {which}"
    if st.shaper.max_sdu and <unsigned long long>nbytes > st.shaper.max_sdu:
        _fail("WSAEMSGSIZE", call,
              f"{what} of {nbytes} bytes is larger than the flow's max_sdu "
              f"({st.shaper.max_sdu} bytes)")
    _fail("WSAEMSGSIZE", call,
          f"{what} of {nbytes} bytes (counted as at least {st.shaper.min_policed}) can never "
          f"fit the token bucket of {st.shaper.bucket} bytes")


cdef int _post_write_at(SocketState st, uint64_t wait_ns) except -1:
    """A shaped non-blocking send would block: its EventSet reports FD_WRITE
    when the tokens are back (no poller re-arm: the kernel could send now,
    and FD_WRITE at once would only meet the empty bucket again)."""
    reg = st.reg
    if reg is not None:
        mp_evset_post_at(_reg_set(reg), _reg_slot(reg), MP_FD_WRITE,
                         mp_monotonic_ns() + wait_ns)
    return 0


cdef int _pace(SocketState st, _wait_t *w, uint64_t wait_ns, str call) except -1:
    """Sleeps toward the tokens' return, one slice at most, without the GIL;
    then the signal handlers run (their exception propagates) and a close
    meanwhile raises WSAENOTSOCK.  1: the caller's timeout had passed
    already (nothing slept), else 0."""
    cdef uint64_t ns = wait_ns if wait_ns < _SHAPER_SLICE_NS else _SHAPER_SLICE_NS
    cdef double left
    cdef int rc, err
    if not w.forever:
        left = w.deadline - _monotonic()
        if left <= 0:
            return 1
        if left * 1e9 < <double>ns:
            ns = <uint64_t>(left * 1e9) + 1
    with nogil:
        rc = mp_sleep_ns(ns)
        err = mp_last_error()
    _wait_check(rc < 0, err, call)
    if st.closing:
        _fail("WSAENOTSOCK", call, "the socket was closed while waiting for tokens")
    return 0


cdef object _shaped_call(object self, SocketState st, object send, tuple args,
                         Py_ssize_t nbytes, str call):
    """send(self, *args) for a datagram of nbytes (args converted already)
    once the socket's token bucket lets it pass; see the file's contract.
    A datagram that conforms at once goes straight out (no caller code can
    run between the debit and the send); one that must wait takes the
    socket's busy count while it waits (_shaped_wait)."""
    cdef uint64_t wait
    cdef bint debited = True
    if mp_shaper_check(&st.shaper, <size_t>nbytes) != 0:
        _too_big(st, nbytes, call, None)
    if st.closing:
        _fail("WSAENOTSOCK", call, "the socket is closed")
    wait = mp_shaper_take(&st.shaper, <size_t>nbytes, mp_monotonic_ns())
    if wait != 0:
        debited = _shaped_wait(self, st, nbytes, wait, call)
    try:
        return send(self, *args)
    except BaseException as exc:
        if debited and st.shaped:
            mp_shaper_refund(&st.shaper, <size_t>nbytes)
        if isinstance(exc, BlockingIOError):
            _rearm(st, MP_FD_WRITE)     # the kernel's would-block: Winsock's rule
        raise


cdef bint _shaped_wait(object self, SocketState st, Py_ssize_t nbytes, uint64_t wait,
                       str call) except -1:
    """The wait of a datagram that does not conform yet (wait ns, as the
    shaper said): WSAEWOULDBLOCK (and FD_WRITE due) on a non-blocking
    socket; else paced, the socket held busy, until the datagram is
    debited (1) or the shaper was turned off meanwhile (0); WSAETIMEDOUT
    after the socket's timeout, WSAENOTSOCK after a close."""
    cdef _wait_t w
    timeout = _std_gettimeout(self)
    if timeout == 0:
        _post_write_at(st, wait)
        _fail("WSAEWOULDBLOCK", call,
              f"the token bucket holds too few tokens for {nbytes} bytes; "
              f"FD_WRITE in {wait / 1e6:.3f} ms")
    _wait_start(&w, timeout)
    st.busy += 1
    try:
        while True:
            if wait == UINT64_MAX:          # the shaper was set anew meanwhile
                _too_big(st, nbytes, call, None)
            if _pace(st, &w, wait, call):
                _fail("WSAETIMEDOUT", call, "timed out waiting for the token bucket")
            if not st.shaped:
                return 0
            wait = mp_shaper_take(&st.shaper, <size_t>nbytes, mp_monotonic_ns())
            if wait == 0:
                return 1
    finally:
        _release(st)


cdef object _shaped_send(object self, SocketState st, object data, object flags):
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)       # its size, and held: no resize
    try:
        if st.dest is None:
            return _shaped_call(self, st, _std_send, (data, flags), view.len, "send")
        return _shaped_call(self, st, _std_sendto, (data, flags, st.dest), view.len, "send")
    finally:
        PyBuffer_Release(&view)


cdef object _shaped_sendto(object self, SocketState st, object data, tuple args):
    cdef Py_buffer view
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        return _shaped_call(self, st, _std_sendto, (data,) + args, view.len, "sendto")
    finally:
        PyBuffer_Release(&view)


cdef object _shaped_sendmsg(object self, SocketState st, tuple args):
    """sendmsg(buffers[, ancdata[, flags[, address]]]): the buffers
    iterated once, as views, and their total is the datagram's size."""
    cdef Py_ssize_t total = 0
    if not args:
        raise TypeError("sendmsg() takes at least 1 argument (0 given)")
    views = [memoryview(b) for b in args[0]]
    for v in views:
        total += v.nbytes
    return _shaped_call(self, st, _std_sendmsg, (views,) + args[1:], total, "sendmsg")


# -- batch send ------------------------------------------------------------------

def sock_send_batch(self, payloads, address=None):
    """Sends each of ``payloads`` (an iterable of bytes-like objects, not
    copied) as one datagram, in order, to ``address`` -- None: the group
    of a JL_BOTH join, else the connected peer -- and returns how many were
    sent: ``sendmmsg`` on Linux, a C loop elsewhere, the GIL released.

    Every payload and the address are converted before anything is sent:
    an item that is not bytes-like raises TypeError, one longer than the
    UDP maximum (65,507 bytes over IPv4, 65,527 over IPv6) or than a
    shaped socket's max_sdu raises WSAEMSGSIZE, and nothing goes out.  An
    error on the first datagram raises; one after some were sent ends the
    call, which returns the count (the error shows again on the next send).
    No payloads: 0.

    A full send buffer, or a shaped socket's empty token bucket: a blocking
    socket waits (paced: it sends what conforms, waits, goes on); one with a
    timeout waits at most that long for the whole call, then returns the
    count, or raises WSAETIMEDOUT if it is 0; a non-blocking one returns
    the count sent so far, raising WSAEWOULDBLOCK only if it is 0, and its
    EventSet reports FD_WRITE when it can send again.  A close from another
    thread ends a wait within one slice: the count, or WSAENOTSOCK if 0."""
    cdef SocketState st = _state(self)
    cdef tuple items = tuple(payloads)
    cdef Py_ssize_t n = len(items), i, held = 0
    cdef Py_buffer *views = NULL
    cdef mp_sendbuf_t *bufs = NULL
    cdef sockaddr_storage to
    cdef mp_socklen_t tolen = 0
    cdef _wait_t w
    cdef long long fd
    views = <Py_buffer *>PyMem_Calloc(n if n > 0 else 1, sizeof(Py_buffer))
    bufs = <mp_sendbuf_t *>PyMem_Calloc(n if n > 0 else 1, sizeof(mp_sendbuf_t))
    if views == NULL or bufs == NULL:
        PyMem_Free(views)
        PyMem_Free(bufs)
        raise MemoryError()
    try:
        # 1. Everything converted (caller code may run: __buffer__, __index__).
        for i in range(n):
            try:
                PyObject_GetBuffer(items[i], &views[i], PyBUF_SIMPLE)
            except TypeError:
                raise TypeError(f"send_batch: payload {i} must be a bytes-like object, "
                                f"not {type(items[i]).__name__}") from None
            held = i + 1
            bufs[i].base = views[i].buf
            bufs[i].len = <size_t>views[i].len
        dest = st.dest if address is None else address
        if dest is not None:
            _parse_address(st.family, dest, &to, &tolen, "send_batch")
        timeout = self.gettimeout()
        _wait_start(&w, timeout)
        # 2. Sizes: the UDP maximum, and what the shaper can ever pass.
        limit = MP_UDP_MAX_IPV4 if st.family == _AF_INET else MP_UDP_MAX_IPV6
        for i in range(n):
            if bufs[i].len > limit:
                _fail("WSAEMSGSIZE", "send_batch",
                      f"datagram {i} of {bufs[i].len} bytes exceeds the UDP maximum of "
                      f"{limit} bytes")
            if st.shaped:
                _too_big(st, <Py_ssize_t>bufs[i].len, "send_batch", i)
        # 3. The descriptor, held open by the busy count.
        st.busy += 1
        try:
            fd = _std_fileno(self)
            if fd < 0 or st.closing:
                _fail("WSAENOTSOCK", "send_batch", "the socket is closed")
            if n == 0:
                return 0
            return _send_loop(<mp_sock_t>fd, st, bufs, n, &to if dest is not None else NULL,
                              tolen, &w, timeout == 0)
        finally:
            _release(st)
    finally:
        for i in range(held):
            PyBuffer_Release(&views[i])
        PyMem_Free(views)
        PyMem_Free(bufs)


cdef Py_ssize_t _send_loop(mp_sock_t s, SocketState st, mp_sendbuf_t *bufs, Py_ssize_t n,
                           sockaddr_storage *to, mp_socklen_t tolen, _wait_t *w,
                           bint nonblocking) except -1:
    """Sends bufs[0..n) as the shaper and the kernel allow -> count sent
    (see sock_send_batch)."""
    cdef Py_ssize_t done = 0, k, j
    cdef long sent
    cdef uint64_t wait, now
    cdef size_t bad = 0
    cdef int err = 0, ms, rc
    cdef int family = st.family
    while done < n:
        if st.closing:
            if done:
                return done
            _fail("WSAENOTSOCK", "send_batch", "the socket was closed while sending")
        # What conforms now, debited under the GIL.
        wait = 0
        k = n - done
        if st.shaped:
            now = mp_monotonic_ns()
            k = 0
            while done + k < n:
                wait = mp_shaper_take(&st.shaper, bufs[done + k].len, now)
                if wait:
                    break
                k += 1
            if wait == UINT64_MAX:              # set anew meanwhile
                _too_big(st, <Py_ssize_t>bufs[done + k].len, "send_batch", done + k)
        if k > 0:
            with nogil:
                sent = mp_send_batch(s, family, bufs + done, <size_t>k, to, tolen, &bad)
                err = mp_last_error()
            if st.shaped:                       # tokens back for what did not go
                for j in range(done + (sent if sent > 0 else 0), done + k):
                    mp_shaper_refund(&st.shaper, bufs[j].len)
            if sent > 0:
                done += sent
                if sent < k:
                    continue        # stopped by an error: the next try meets it
            else:
                if mp_error_is_interrupt(err):
                    PyErr_CheckSignals()
                    continue
                if not mp_error_is_would_block(err):
                    if done:
                        return done
                    _raise_code(err, "send_batch")
                # The kernel's buffer is full: as a send that would block.
                _rearm(st, MP_FD_WRITE)
                if nonblocking:
                    if done:
                        return done
                    _raise_code(err, "send_batch")
                PyErr_CheckSignals()
                ms = _wait_ms(w)
                if ms == 0:
                    if done:
                        return done
                    _fail("WSAETIMEDOUT", "send_batch", "timed out waiting to send")
                with nogil:
                    rc = mp_wait_writable(s, ms)
                    err = mp_last_error()
                _wait_check(rc < 0, err, "send_batch")
                continue
        if done == n or wait == 0:
            continue
        # The token bucket ran dry.
        if nonblocking:
            _post_write_at(st, wait)
            if done:
                return done
            _fail("WSAEWOULDBLOCK", "send_batch",
                  f"the token bucket is empty; FD_WRITE in {wait / 1e6:.3f} ms")
        try:
            timed_out = _pace(st, w, wait, "send_batch")
        except OSError:
            if done:                            # closed meanwhile: the count
                return done
            raise
        if timed_out:
            if done:
                return done
            _fail("WSAETIMEDOUT", "send_batch", "timed out waiting for the token bucket")
    return done
