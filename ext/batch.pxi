# Batch receive: the binding of mpoint.h's "batch receive" (batch.c).
# Contract: a RecvBatch owns its C memory for its whole life, so every view
# of it (memoryview(batch), Datagram.data, the bulk accessors) holds the
# batch and never dangles; a receive overwrites what the views show.
# recv_batch releases the GIL around the receive and the wait only, and
# retries EINTR with the remaining time unless a signal handler raised
# (PEP 475).  Nothing here allocates per datagram except batch[i].
from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES, PyBUF_WRITABLE
from cpython.buffer cimport PyBuffer_FillInfo
from libc.stdint cimport int64_t, uint8_t, uint32_t

cdef extern from "mpoint.h" nogil:
    ctypedef struct mp_batch_t:
        size_t max_datagrams
        size_t max_size
        int metadata
        size_t count
        unsigned char *data
        uint32_t *sizes
        uint8_t *truncated
        int64_t *timestamps
        uint32_t *ifindex
        sockaddr_storage *sources
        sockaddr_storage *groups
        int may_block
    size_t MP_BATCH_MAX_AREA
    int mp_batch_new(size_t max_datagrams, size_t max_size, int metadata, mp_batch_t **out)
    void mp_batch_free(mp_batch_t *batch)
    int mp_enable_metadata(mp_sock_t s, int family)
    int mp_recv_batch(mp_sock_t s, mp_batch_t *batch)
    int mp_wait_readable(mp_sock_t s, int timeout_ms)

    # The socket headers' address structures: only the fields read here.
    ctypedef struct _b_in_addr "struct in_addr":
        pass
    ctypedef struct _b_in6_addr "struct in6_addr":
        pass
    ctypedef struct _b_sockaddr "struct sockaddr":
        int sa_family
    ctypedef struct _b_sockaddr_in "struct sockaddr_in":
        unsigned short sin_port
        _b_in_addr sin_addr
    ctypedef struct _b_sockaddr_in6 "struct sockaddr_in6":
        unsigned short sin6_port
        unsigned int sin6_flowinfo
        _b_in6_addr sin6_addr
        unsigned int sin6_scope_id
    enum:
        _B_AF_INET "AF_INET"
        _B_AF_INET6 "AF_INET6"
    unsigned short _b_ntohs "ntohs"(unsigned short)
    unsigned int _b_ntohl "ntohl"(unsigned int)
    const char *_b_inet_ntop "inet_ntop"(int family, const void *src, char *dst, size_t size)


cdef object _host(const sockaddr_storage *ss):
    """The numeric host of an AF_INET or AF_INET6 address; None otherwise
    (a group the kernel did not report)."""
    cdef char text[64]             # > INET6_ADDRSTRLEN
    cdef const void *addr
    cdef int family = (<const _b_sockaddr *>ss).sa_family
    if family == _B_AF_INET:
        addr = &(<const _b_sockaddr_in *>ss).sin_addr
    elif family == _B_AF_INET6:
        addr = &(<const _b_sockaddr_in6 *>ss).sin6_addr
    else:
        return None
    if _b_inet_ntop(family, addr, text, sizeof(text)) == NULL:
        return None
    return text.decode("ascii")


cdef object _address(const sockaddr_storage *ss):
    """An address as the socket module spells it: (host, port) for AF_INET,
    (host, port, flowinfo, scope_id) for AF_INET6."""
    cdef const _b_sockaddr_in *sin = <const _b_sockaddr_in *>ss
    cdef const _b_sockaddr_in6 *sin6 = <const _b_sockaddr_in6 *>ss
    family = (<const _b_sockaddr *>ss).sa_family
    if family == _B_AF_INET:
        return (_host(ss), _b_ntohs(sin.sin_port))
    if family == _B_AF_INET6:
        return (_host(ss), _b_ntohs(sin6.sin6_port), _b_ntohl(sin6.sin6_flowinfo),
                sin6.sin6_scope_id)
    return None


cdef size_t _batch_size(object value, str what) except? 0:
    """A size argument for C, which rejects 0 and anything above its limit
    (65536) with WSAEINVAL; values too big for a 32-bit size_t become 0."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    cdef long long v = _clamp(value)
    return <size_t>v if 0 < v <= 0x7FFFFFFF else 0


cdef class Datagram:
    """One datagram of a RecvBatch (``batch[i]``).

    ``data`` is a read-only memoryview into the batch's memory, not a copy:
    it keeps the batch alive, and the next receive into the same batch
    overwrites it (copy it with ``bytes(d.data)`` to keep it).  The other
    attributes are copied when the Datagram is made.  ``source`` is the
    sender as the socket module spells addresses; ``group`` the destination
    address (the group), ``ifindex`` the arriving interface and
    ``timestamp_ns`` the kernel's receive time (ns since the epoch).  Each is
    what the kernel recorded when the datagram arrived, or unknown -- group
    None, ifindex 0, timestamp_ns None -- never a substitute: a batch made
    with ``metadata=False``, a datagram queued before its socket asked for
    metadata (mpoint's joins ask before the membership exists), a platform
    without the option."""
    cdef readonly object data
    cdef readonly object source
    cdef readonly object group
    cdef readonly uint32_t ifindex
    cdef int64_t _timestamp
    cdef readonly bint truncated

    @property
    def timestamp_ns(self):
        """The kernel's receive time in ns since the epoch; None: unknown."""
        return None if self._timestamp == 0 else self._timestamp

    def __init__(self):
        raise TypeError("Datagram objects come from a RecvBatch (batch[i])")

    def __repr__(self):
        return (f"<Datagram {len(self.data)} bytes{' (truncated)' if self.truncated else ''} "
                f"from {self.source!r} to {self.group!r}, ifindex={self.ifindex}, "
                f"timestamp_ns={self.timestamp_ns}>")


cdef class _BatchColumn:
    """A read-only buffer over one of a batch's C arrays: the first
    len(batch) items at the time it was made, in struct format ``fmt``.  It
    holds the batch, so the array outlives every view of it."""
    cdef RecvBatch batch
    cdef void *items
    cdef const char *fmt
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]

    def __getbuffer__(self, Py_buffer *view, int flags):
        if flags & PyBUF_WRITABLE:
            raise BufferError("RecvBatch arrays are read-only")
        view.buf = self.items
        view.obj = self
        view.len = self.shape[0] * self.strides[0]
        view.readonly = 1
        view.itemsize = self.strides[0]
        view.format = <char *>self.fmt if flags & PyBUF_FORMAT else NULL
        view.ndim = 1
        view.shape = self.shape if flags & PyBUF_ND else NULL
        view.strides = self.strides if (flags & PyBUF_STRIDES) == PyBUF_STRIDES else NULL
        view.suboffsets = NULL
        view.internal = NULL


cdef object _column(RecvBatch batch, void *items, Py_ssize_t itemsize, const char *fmt):
    cdef _BatchColumn col = _BatchColumn.__new__(_BatchColumn)
    col.batch = batch
    col.items = items
    col.fmt = fmt
    col.shape[0] = <Py_ssize_t>batch.b.count
    col.strides[0] = itemsize
    return memoryview(col)


cdef class RecvBatch:
    """Memory for up to ``max_datagrams`` datagrams of up to ``max_size``
    bytes each (1..65536, else WSAEINVAL), filled by one ``recv_batch``
    call and reused by the next.  With ``metadata`` each datagram carries
    its destination group, arriving interface and receive timestamp.

    ``len(batch)`` is the number of datagrams the last receive kept;
    ``batch[i]`` (negative i counts from the end) and iteration give
    Datagram objects.  ``memoryview(batch)`` is the whole data area
    (datagram i at ``i * max_size``); ``sizes`` (uint32), ``timestamps``
    (int64; 0 where unknown), ``ifindexes`` (uint32; 0 where unknown) and
    ``truncated`` (uint8) are
    memoryviews of ``len(batch)`` items, made without any per-datagram
    object.  All views show what the latest receive wrote.  One receive
    into a batch at a time."""
    cdef mp_batch_t *b
    # True while a receive writes into the batch (one at a time); a receive
    # takes the batch and its socket's busy count with no thread in between.
    cdef readonly bint busy

    def __cinit__(self, max_datagrams=64, max_size=2048, metadata=True):
        cdef size_t n = _batch_size(max_datagrams, "max_datagrams")
        cdef size_t size = _batch_size(max_size, "max_size")
        if not isinstance(metadata, int):
            raise TypeError(f"metadata must be a bool, not {type(metadata).__name__}")
        if mp_batch_new(n, size, 1 if metadata else 0, &self.b) < 0:
            from mpoint.errors import lookup
            if lookup(mp_last_error()).name == "WSAEINVAL":
                _fail("WSAEINVAL", "RecvBatch",
                      f"max_datagrams={max_datagrams!r}, max_size={max_size!r}: each 1..65536, "
                      f"and their product (the data area) at most {MP_BATCH_MAX_AREA >> 20} MiB")
            _raise("RecvBatch")

    def __dealloc__(self):
        mp_batch_free(self.b)

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.b.data,
                          <Py_ssize_t>(self.b.max_datagrams * self.b.max_size), 1, flags)

    @property
    def max_datagrams(self):
        return self.b.max_datagrams

    @property
    def max_size(self):
        return self.b.max_size

    @property
    def metadata(self):
        return self.b.metadata != 0

    @property
    def sizes(self):
        return _column(self, self.b.sizes, sizeof(uint32_t), b"I")

    @property
    def timestamps(self):
        return _column(self, self.b.timestamps, sizeof(int64_t), b"q")

    @property
    def ifindexes(self):
        return _column(self, self.b.ifindex, sizeof(uint32_t), b"I")

    @property
    def truncated(self):
        return _column(self, self.b.truncated, sizeof(uint8_t), b"B")

    def __len__(self):
        return self.b.count

    def __getitem__(self, i):
        cdef long long n = <long long>self.b.count
        cdef long long k = _clamp(i)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("RecvBatch index out of range")
        return self._datagram(<size_t>k)

    def __iter__(self):
        for k in range(self.b.count):
            yield self._datagram(k)

    def __repr__(self):
        return (f"<RecvBatch {self.b.count}/{self.b.max_datagrams} datagrams of up to "
                f"{self.b.max_size} bytes, metadata={self.metadata}>")

    cdef Datagram _datagram(self, size_t i):
        cdef Datagram d = Datagram.__new__(Datagram)
        cdef size_t start = i * self.b.max_size
        d.data = memoryview(self)[start:start + self.b.sizes[i]]
        d.source = _address(&self.b.sources[i])
        d.group = _host(&self.b.groups[i])
        d.ifindex = self.b.ifindex[i]
        d._timestamp = self.b.timestamps[i]
        d.truncated = self.b.truncated[i] != 0
        return d


def enable_metadata(fd, int family):
    """Asks the kernel for what a metadata batch reports (IP_PKTINFO or
    IPV6_RECVPKTINFO, receive timestamps), for datagrams arriving from now
    on; once per socket."""
    if mp_enable_metadata(_handle(fd), family) < 0:
        _raise("enable_metadata")


cdef int _claim(RecvBatch batch) except -1:
    """Marks batch busy: one receive into a batch at a time (the receive
    loop's caller clears it)."""
    if batch.busy:
        raise RuntimeError("another recv_batch call is receiving into this RecvBatch")
    batch.busy = True
    return 0


cdef int _recv_loop(mp_sock_t s, RecvBatch batch, _wait_t *w, SocketState st,
                    str call) except -1:
    """Receives into batch (claimed by the caller: _claim) until a datagram
    arrives or the time is up -> datagrams received.  With st, the socket's
    state: its close ends the wait between two slices (WSAENOTSOCK), and
    the caller holds st busy, so the descriptor s stays open until then."""
    cdef int n, err, ms
    while True:
        with nogil:
            n = mp_recv_batch(s, batch.b)
            err = mp_last_error()
        if n >= 0:
            return n
        if not mp_error_is_would_block(err):
            _wait_check(1, err, call)
            continue                # EINTR: receive again
        # Handlers of signals that came while this thread held the GIL
        # run now, not after a wait they would otherwise not interrupt.
        PyErr_CheckSignals()
        ms = _wait_ms(w)
        if ms == 0:
            return 0                # the time is up
        with nogil:
            n = mp_wait_readable(s, ms)
            err = mp_last_error()
        _wait_check(n < 0, err, call)
        if st is not None and st.closing:
            _fail("WSAENOTSOCK", call, "the socket was closed while receiving")


def recv_batch(fd, RecvBatch batch not None, timeout):
    """Receives what is queued on ``fd`` into ``batch`` (up to its
    max_datagrams) and returns how many datagrams arrived: at least 1, or 0
    if none did within ``timeout`` seconds (None: wait for the first
    datagram however long it takes; 0: do not wait).  Negative: ValueError.
    The caller keeps fd open meanwhile (MultipointSocket.recv_batch holds
    its socket busy)."""
    cdef _wait_t w
    _wait_start(&w, timeout)
    cdef mp_sock_t s = _handle(fd)
    _claim(batch)
    batch.b.may_block = 1             # a bare descriptor's mode is unknown
    try:
        return _recv_loop(s, batch, &w, None, "recv_batch")
    finally:
        batch.busy = False
