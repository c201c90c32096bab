# Network events: the binding of mpoint.h's event set (events.c).
# Contract: wait() releases the GIL only around the poller's blocking call;
# EINTR is retried with the remaining time unless a signal handler raised
# (PEP 475).  Results are built here, in one pass, to keep a wake-up cheap.
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport ceil

cdef extern from "mpoint.h" nogil:
    ctypedef struct mp_evset_t:
        pass
    ctypedef struct mp_netevents_t:
        unsigned int slot
        unsigned int events
        int errors[10]
    int MP_FD_ALL_EVENTS, MP_FD_READ, MP_FD_WRITE, MP_FD_CONNECT
    int mp_error_is_interrupt(int code)
    int mp_error_is_would_block(int code)
    const char *mp_evset_backend(int i)
    int mp_evset_open(const char *backend, mp_evset_t **out)
    const char *mp_evset_backend_name(const mp_evset_t *set)
    void mp_evset_close(mp_evset_t *set)
    int mp_evset_add(mp_evset_t *set, mp_sock_t s, unsigned int events, unsigned int *slot)
    int mp_evset_modify(mp_evset_t *set, unsigned int slot, unsigned int events)
    int mp_evset_remove(mp_evset_t *set, unsigned int slot)
    void mp_evset_rearm(mp_evset_t *set, unsigned int slot, unsigned int events)
    int mp_evset_post(mp_evset_t *set, unsigned int slot, unsigned int event, int error)
    unsigned int mp_evset_posted(const mp_evset_t *set, unsigned int slot)
    int mp_evset_prepare(mp_evset_t *set, int *timeout_ms)
    int mp_evset_poll(mp_evset_t *set, int timeout_ms)
    int mp_evset_collect(mp_evset_t *set, int nready, const mp_netevents_t **out)

from time import monotonic as _monotonic


def event_backends():
    """The pollers this build has, best (the default) first."""
    out = []
    cdef int i = 0
    while mp_evset_backend(i) != NULL:
        out.append(mp_evset_backend(i).decode())
        i += 1
    return out


cdef unsigned int _events(object events) except? 0xFFFFFFFF:
    cdef long long v = _clamp(events)
    if v < 0 or v > 0xFFFFFFFF:
        return 0xFFFFFFFF              # unknown bits: WSAEINVAL from C
    return <unsigned int>v


cdef class EventCore:
    """The C event set.  Sockets are named by slot; ``socks[slot]`` is the
    Python object reported for it.  One wait() at a time."""
    cdef mp_evset_t *set
    cdef list socks
    cdef bint waiting
    cdef object fd_cache, errors_cache, make_result, wsa_of

    def __cinit__(self, backend, fd_cache, make_result, wsa_of):
        cdef bytes name = None
        cdef const char *cname = NULL
        if backend is not None:
            name = _text(backend, "backend")
            cname = b"?" if name is None else name     # "?": no such backend
        if mp_evset_open(cname, &self.set) < 0:
            _raise("EventSet")
        self.socks = []
        self.fd_cache = fd_cache            # FD(i) for every i, prebuilt
        self.errors_cache = {}              # events -> read-only {FD: 0}
        self.make_result = make_result      # NetworkEvents._make
        self.wsa_of = wsa_of                # platform code -> Winsock code

    def __dealloc__(self):
        mp_evset_close(self.set)

    @property
    def backend(self):
        return mp_evset_backend_name(self.set).decode()

    def add(self, sock, fd, events):
        cdef unsigned int slot
        if mp_evset_add(self.set, _handle(fd), _events(events), &slot) < 0:
            _raise("WSAEventSelect")
        while len(self.socks) <= slot:
            self.socks.append(None)
        self.socks[slot] = sock
        return slot

    def modify(self, unsigned int slot, events):
        if mp_evset_modify(self.set, slot, _events(events)) < 0:
            _raise("WSAEventSelect")

    def remove(self, unsigned int slot):
        self.socks[slot] = None
        if mp_evset_remove(self.set, slot) < 0:
            _raise("WSAEventSelect")

    cpdef rearm(self, unsigned int slot, unsigned int events):
        mp_evset_rearm(self.set, slot, events)

    def post(self, unsigned int slot, unsigned int event, int error):
        if mp_evset_post(self.set, slot, event, error) < 0:
            _raise("FD_CONNECT")

    def posted(self, unsigned int slot):
        return mp_evset_posted(self.set, slot)

    def wait(self, timeout):
        cdef double deadline = 0.0, left
        cdef int ms, n, i, b
        cdef const mp_netevents_t *out
        cdef bint forever = timeout is None
        cdef list result
        if not forever:
            left = timeout
            if left < 0:
                raise ValueError("timeout must be non-negative or None")
            deadline = _monotonic() + left
        if self.waiting:
            raise RuntimeError("EventSet.wait() is already running in another thread")
        self.waiting = True
        try:
            while True:
                if forever:
                    ms = -1
                else:
                    left = deadline - _monotonic()
                    ms = 0 if left <= 0 else <int>min(ceil(left * 1000.0), 2147483647.0)
                mp_evset_prepare(self.set, &ms)
                with nogil:
                    n = mp_evset_poll(self.set, ms)
                if n < 0:
                    if not mp_error_is_interrupt(mp_last_error()):
                        _raise("wait")
                    PyErr_CheckSignals()        # a handler's exception propagates
                    n = 0
                n = mp_evset_collect(self.set, n, &out)
                if n > 0 or ms == 0:
                    break
                # Woken with nothing to report (a disarmed event, an interrupt):
                # wait again for the rest of the time.
            result = []
            for i in range(n):
                result.append(self._result(&out[i]))
            return result
        finally:
            self.waiting = False

    cdef object _result(self, const mp_netevents_t *o):
        cdef int b
        cdef bint clean = True
        for b in range(10):
            if o.errors[b] != 0:
                clean = False
        events = self.fd_cache[o.events]
        if clean:
            errs = self.errors_cache.get(o.events)
            if errs is None:
                errs = _freeze({fd: 0 for fd in _bits(self.fd_cache, o.events)})
                self.errors_cache[o.events] = errs
        else:
            errs = _freeze({fd: (self.wsa_of(o.errors[b]) if o.errors[b] else 0)
                            for b, fd in _indexed_bits(self.fd_cache, o.events)})
        return self.make_result((self.socks[o.slot], events, errs))


from types import MappingProxyType as _freeze


def _bits(fd_cache, unsigned int events):
    return [fd_cache[1 << b] for b in range(10) if events & (1 << b)]


def _indexed_bits(fd_cache, unsigned int events):
    return [(b, fd_cache[1 << b]) for b in range(10) if events & (1 << b)]
