# Network events: the binding of mpoint.h's event set (events.c).
# Contract: wait() releases the GIL only around the poller's blocking call;
# EINTR is retried with the remaining time unless a signal handler raised
# (PEP 475).  Results are built here, in one pass, to keep a wake-up cheap.

cdef extern from "mpoint.h" nogil:
    ctypedef struct mp_evset_t:
        pass
    ctypedef struct mp_netevents_t:
        unsigned int slot
        unsigned int events
        int errors[10]
    int MP_FD_ALL_EVENTS, MP_FD_READ, MP_FD_WRITE, MP_FD_CONNECT
    const char *mp_evset_backend(int i)
    int mp_evset_open(const char *backend, mp_evset_t **out)
    const char *mp_evset_backend_name(const mp_evset_t *set)
    void mp_evset_close(mp_evset_t *set)
    void mp_evset_wake(mp_evset_t *set)
    void mp_evset_forget(mp_evset_t *set)
    int mp_evset_add(mp_evset_t *set, mp_sock_t s, unsigned int events, unsigned int *slot)
    int mp_evset_modify(mp_evset_t *set, unsigned int slot, unsigned int events)
    int mp_evset_remove(mp_evset_t *set, unsigned int slot)
    int mp_evset_drop(mp_evset_t *set, unsigned int slot)
    void mp_evset_rearm(mp_evset_t *set, unsigned int slot, unsigned int events)
    int mp_evset_post(mp_evset_t *set, unsigned int slot, unsigned int event, int error)
    unsigned int mp_evset_posted(const mp_evset_t *set, unsigned int slot)
    int mp_evset_prepare(mp_evset_t *set, int *timeout_ms)
    int mp_evset_poll(mp_evset_t *set, int timeout_ms)
    int mp_evset_collect(mp_evset_t *set, int nready, const mp_netevents_t **out)
    void mp_evset_end_wait(mp_evset_t *set)


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


from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF

cdef extern from "Python.h":
    ctypedef struct PyStructSequence_Field:
        const char *name
        const char *doc
    ctypedef struct PyStructSequence_Desc:
        const char *name
        const char *doc
        PyStructSequence_Field *fields
        int n_in_sequence
    ctypedef struct PyTypeObject:
        pass
    PyTypeObject *PyStructSequence_NewType(PyStructSequence_Desc *desc) except NULL
    PyObject *PyStructSequence_New(PyTypeObject *type) except NULL
    void PyStructSequence_SetItem(PyObject *p, Py_ssize_t pos, PyObject *o)

cdef PyStructSequence_Field _ne_fields[4]
_ne_fields[0].name = "sock"
_ne_fields[0].doc = "the socket"
_ne_fields[1].name = "events"
_ne_fields[1].doc = "the FD_* events that fired (lNetworkEvents)"
_ne_fields[2].name = "errors"
_ne_fields[2].doc = "each fired event's Winsock error code, 0 for success (iErrorCode[])"
_ne_fields[3].name = NULL
_ne_fields[3].doc = NULL
cdef PyStructSequence_Desc _ne_desc
_ne_desc.name = "mpoint.NetworkEvents"
_ne_desc.doc = "NetworkEvents(sock, events, errors): what WSAEnumNetworkEvents reports."
_ne_desc.fields = _ne_fields
_ne_desc.n_in_sequence = 3
# A struct sequence: a real tuple with named fields, built in C per event.
NetworkEvents = <object>PyStructSequence_NewType(&_ne_desc)
Py_DECREF(NetworkEvents)      # the cast above took its own reference

cdef object _fd_cache = None      # FD(i) for every i, prebuilt by mpoint.events
cdef object _wsa_of = None        # platform code -> Winsock code


def _configure_events(fd_cache, wsa_of):
    global _fd_cache, _wsa_of
    _fd_cache = fd_cache
    _wsa_of = wsa_of


cdef inline void _set(PyObject *t, Py_ssize_t i, object value):
    Py_INCREF(value)                  # SetItem steals a reference
    PyStructSequence_SetItem(t, i, <PyObject *>value)


# Fork: a child inherits the parent's epoll set (its interest list is
# shared, so a child's removal would remove the parent's registration too)
# and no kqueue at all.  Every set remembers the process generation it was
# made in; in a child it is inert (ext/events.pxi, EventCore._live).
cdef unsigned long _fork_generation = 0


def _after_fork_in_child():
    global _fork_generation
    _fork_generation += 1


import os as _os
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork_in_child)


cdef class EventCore:
    """The C event set (events.c).  mpoint.EventSet subclasses it; sockets
    are named by slot and ``_socks[slot]`` is the object reported for it.

    Lifetime: close() frees the C set and its descriptors at once, or, while
    wait() runs in another thread, marks the set closed and wakes the wait
    (mp_evset_wake), which frees it as it leaves, at once; every call after
    close() raises WSAENOTSOCK.  In a child process the set is the parent's: every
    call that would touch the kernel's registrations raises, and close()
    only lets go of the child's copy of the descriptor."""
    cdef mp_evset_t *set
    cdef list _socks
    cdef bint waiting
    cdef bint closed
    cdef unsigned long generation
    cdef set _dropped                # slots of sockets closed during a wait
    cdef dict errors_cache

    def __cinit__(self, backend=None, *args, **kwargs):
        cdef bytes name = None
        cdef const char *cname = NULL
        if backend is not None:
            name = _text(backend, "backend")
            cname = b"?" if name is None else name     # "?": no such backend
        if mp_evset_open(cname, &self.set) < 0:
            _raise("EventSet")
        self._socks = []
        self._dropped = set()
        self.errors_cache = {}
        self.generation = _fork_generation

    def __dealloc__(self):
        self._free()

    cdef inline bint _foreign(self):
        """Made by the parent of this (forked) process."""
        return self.generation != _fork_generation

    cdef void _free(self):
        cdef mp_evset_t *gone = self.set
        self.set = NULL
        if self._foreign():
            mp_evset_forget(gone)
        else:
            mp_evset_close(gone)

    cdef int _live(self, str call) except -1:
        """Raises unless the set is open and this process's own."""
        if self.closed:
            _fail("WSAENOTSOCK", call, "the EventSet is closed")
        if self._foreign():
            raise RuntimeError(f"EventSet.{call}: this set belongs to the parent process "
                               "(it was inherited by fork); make a new EventSet here")
        return 0

    @property
    def inherited(self):
        """True in a child process for a set its parent made."""
        return self._foreign()

    @property
    def backend(self):
        """The poller behind this set: "epoll", "kqueue" or "poll"."""
        if self.closed:
            _fail("WSAENOTSOCK", "backend", "the EventSet is closed")
        return mp_evset_backend_name(self.set).decode()

    def _add(self, sock, fd, events):
        cdef unsigned int slot
        cdef unsigned int ev = _events(events)
        cdef mp_sock_t s = _handle(fd)
        self._live("register")
        if mp_evset_add(self.set, s, ev, &slot) < 0:
            _raise("WSAEventSelect")
        while len(self._socks) <= slot:
            self._socks.append(None)
        self._socks[slot] = sock
        return slot

    def _modify(self, unsigned int slot, events):
        cdef unsigned int ev = _events(events)
        self._live("modify")
        if mp_evset_modify(self.set, slot, ev) < 0:
            _raise("WSAEventSelect")

    def _remove(self, unsigned int slot, bint closing=False):
        """Ends a registration.  closing: its socket is about to close; a
        wait() running in another thread then reports it as FD_CLOSE."""
        if self.closed or self._foreign():
            self._socks[slot] = None      # the kernel's list is not ours to change
            return
        if closing and self.waiting:
            if mp_evset_drop(self.set, slot) < 0:
                _raise("WSAEventSelect")
            self._dropped.add(slot)       # _socks[slot] stays until reported
            return
        self._socks[slot] = None
        # The registration is gone even when the poller complains: a socket
        # closed behind the set's back has already left the kernel's list.
        mp_evset_remove(self.set, slot)

    def _close(self):
        """The set's end (EventSet.close, after every socket left it)."""
        if self.closed:
            return
        self.closed = True
        if not self.waiting:
            self._free()
        elif not self._foreign():
            # The wait checks `closed` after its poll; waking a foreign
            # set's poll would wake the parent's (a shared descriptor).
            mp_evset_wake(self.set)

    def _post(self, unsigned int slot, unsigned int event, int error):
        self._live("post")
        if mp_evset_post(self.set, slot, event, error) < 0:
            _raise("FD_CONNECT")

    def _rearm(self, unsigned int slot, unsigned int events):
        if not self.closed:                 # closed: the set may be freed already
            mp_evset_rearm(self.set, slot, events)

    def _check(self, str call):
        self._live(call)

    def _posted(self, unsigned int slot):
        if self.closed:
            return 0
        return mp_evset_posted(self.set, slot)

    def wait(self, timeout=None):
        """Blocks until an event fires or ``timeout`` seconds pass (None:
        forever) and returns [NetworkEvents(sock, events, errors), ...], each
        ready socket at most once.  A registered socket closed meanwhile (by
        another thread) is reported as FD_CLOSE with WSAECONNABORTED; the set
        closed meanwhile ends the wait with WSAENOTSOCK; both, and a post or
        due time meanwhile, wake the poll at once (mp_evset_wake), while
        signals are still seen between 100 ms slices."""
        cdef _wait_t w
        cdef int ms, n, i
        cdef const mp_netevents_t *out
        cdef list result
        _wait_start(&w, timeout)
        self._live("wait")
        if self.waiting:
            raise RuntimeError("EventSet.wait() is already running in another thread")
        self.waiting = True
        try:
            while True:
                ms = _wait_ms(&w)
                mp_evset_prepare(self.set, &ms)
                # Closed before prepare marked the set waiting (a signal
                # handler of the last slice, say) went unwoken: seen here.
                # From here to the poll the GIL is held, so a close after
                # this check wakes the poll.
                if self.closed:
                    _fail("WSAENOTSOCK", "wait", "the EventSet was closed while waiting")
                with nogil:
                    n = mp_evset_poll(self.set, ms)
                if self.closed:
                    _fail("WSAENOTSOCK", "wait", "the EventSet was closed while waiting")
                if n < 0:
                    _wait_check(1, mp_last_error(), "wait")
                    n = 0
                n = mp_evset_collect(self.set, n, &out)
                if n > 0 or ms == 0:
                    break
                PyErr_CheckSignals()            # between slices (Windows)
                # Woken with nothing to report (a disarmed event, a signal):
                # wait again for the rest of the time.
            result = []
            for i in range(n):
                result.append(self._result(&out[i]))
            if self._dropped:                 # reported now: the collect removed them
                for i in range(n):
                    if out[i].slot in self._dropped:
                        self._dropped.discard(out[i].slot)
                        self._socks[out[i].slot] = None
            return result
        finally:
            self.waiting = False
            if self.closed and self.set != NULL:
                self._free()
            elif self.set != NULL:
                mp_evset_end_wait(self.set)     # left without a collect: no waiter now

    cdef object _result(self, const mp_netevents_t *o):
        cdef int b
        cdef bint clean = True
        cdef PyObject *t
        for b in range(10):
            if o.errors[b] != 0:
                clean = False
        if clean:
            errs = self.errors_cache.get(o.events)
            if errs is None:
                errs = _freeze({fd: 0 for fd in _bits(_fd_cache, o.events)})
                self.errors_cache[o.events] = errs
        else:
            errs = _freeze({fd: (_wsa_of(o.errors[b]) if o.errors[b] else 0)
                            for b, fd in _indexed_bits(_fd_cache, o.events)})
        t = PyStructSequence_New(<PyTypeObject *>NetworkEvents)
        _set(t, 0, self._socks[o.slot])
        _set(t, 1, _fd_cache[o.events])
        _set(t, 2, errs)
        result = <object>t
        Py_DECREF(result)               # <object> took a reference of its own
        return result


from types import MappingProxyType as _freeze


def _bits(fd_cache, unsigned int events):
    return [fd_cache[1 << b] for b in range(10) if events & (1 << b)]


def _indexed_bits(fd_cache, unsigned int events):
    return [(b, fd_cache[1 << b]) for b in range(10) if events & (1 << b)]
