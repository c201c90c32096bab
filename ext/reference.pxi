# The C reference loops (reference.h), for benchmarks/.  They hold the GIL:
# they measure C alone, so nothing else should run meanwhile.
from libc.stdlib cimport malloc, free

cdef extern from "reference.h" nogil:
    long long mp_ref_drain(const mp_sock_t *socks, int nsocks, int vlen, int size,
                           int pktinfo, long long *received)
    long long mp_ref_wakeups(mp_sock_t tx, mp_sock_t rx, const mp_sock_t *idle, int nidle,
                             int rounds)


cdef mp_sock_t *_handles(list fds) except NULL:
    cdef mp_sock_t *out = <mp_sock_t *>malloc(max(1, len(fds)) * sizeof(mp_sock_t))
    if out == NULL:
        raise MemoryError()
    for i, fd in enumerate(fds):
        out[i] = _handle(fd)
    return out


def reference_drain(list fds, int vlen=64, int size=2048, int pktinfo=0):
    """C: drain every socket with recvmmsg -> (elapsed ns, datagrams)."""
    cdef long long received = 0, ns
    cdef mp_sock_t *socks = _handles(fds)
    try:
        ns = mp_ref_drain(socks, len(fds), vlen, size, pktinfo, &received)
    finally:
        free(socks)
    if ns < 0:
        _raise("reference_drain")
    return ns, received


def reference_wakeups(tx, rx, list idle, int rounds):
    """C: rounds x (send, epoll_wait, recv) -> elapsed ns."""
    cdef long long ns
    cdef mp_sock_t *socks = _handles(idle)
    try:
        ns = mp_ref_wakeups(_handle(tx), _handle(rx), socks, len(idle), rounds)
    finally:
        free(socks)
    if ns < 0:
        _raise("reference_wakeups")
    return ns
