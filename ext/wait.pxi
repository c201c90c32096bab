# The one wait helper of every blocking call (recv_batch, EventSet.wait,
# GroupSet.recv_batch, and the rooted and QoS waits to come).
# Contract: a call turns its timeout into a _wait_t once (_wait_start: None
# waits forever; a negative or NaN number is ValueError, a bool TypeError),
# then loops: _wait_ms gives the next blocking C call its wait in ms (-1:
# forever), cut into slices of _WAIT_SLICE_MS where signals do not interrupt
# waits (Windows); the C call runs without the GIL; _wait_check then raises
# the call's error unless it was EINTR, and runs the signal handlers, whose
# exception ends the call (Ctrl-C within one slice).  A wait of 0 ms is the
# last the time allows.  The clock is monotonic.
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport ceil

from time import monotonic as _monotonic

ctypedef struct _wait_t:
    double deadline
    bint forever
    int ms                       # the wait last handed out


cdef int _wait_start(_wait_t *w, object timeout) except -1:
    cdef double secs
    w.ms = -1
    if timeout is None:
        w.forever = True
        return 0
    if isinstance(timeout, bool):
        raise TypeError("timeout must be None or a number of seconds, not bool")
    secs = timeout
    if not secs >= 0:            # negative, or NaN
        raise ValueError("timeout must be None or a non-negative number of seconds")
    w.forever = False
    w.deadline = _monotonic() + secs
    return 0


cdef int _wait_ms(_wait_t *w) except? -2:
    cdef double left
    cdef int ms = -1
    if not w.forever:
        left = w.deadline - _monotonic()
        ms = 0 if left <= 0 else <int>min(ceil(left * 1000.0), 2147483647.0)
    w.ms = _slice(ms)
    return w.ms


cdef int _wait_check(int failed, int err, str call) except -1:
    """After the blocking C call: its error raised unless it was EINTR, then
    the signal handlers run (a handler's exception propagates)."""
    if failed and not mp_error_is_interrupt(err):
        _raise_code(err, call)
    PyErr_CheckSignals()
    return 0
