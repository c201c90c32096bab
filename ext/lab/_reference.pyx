# cython: language_level=3
"""mpoint.lab._reference -- the plain C loops (reference.h) that the
benchmarks measure mpoint against; part of the lab, never imported by
``import mpoint``.  They hold the GIL where they measure C alone, so that
nothing else runs meanwhile.  Built from ext/lab/ and the library's C files
(the loops make sockets, bind and join them with the core's helpers), so a
wheel user can run the benchmarks without a compiler."""
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from core_api cimport *


cdef int _raise(str call) except -1:
    cdef int code = mp_last_error()
    from mpoint.errors import from_code
    raise from_code(code, call)


cdef mp_sock_t _handle(object fd) except? -1:
    cdef long long v = fd.__index__()
    if v < 0:
        return MP_INVALID_SOCKET
    return <mp_sock_t>v


cdef int _parse_group(int family, str host, int port, sockaddr_storage *out,
                      mp_socklen_t *out_len) except -1:
    cdef bytes raw = host.encode("ascii")
    if mp_parse_address(family, raw, port, 0, 0, out, out_len) < 0:
        _raise("reference")
    return 0


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


cdef extern from "reference.h" nogil:
    int mp_ref_joins(int family, unsigned short port, const mp_join_t *reqs, size_t n,
                     size_t per_socket, int newest_first, int timestamps, long long out[3])
    int mp_ref_leaf_joins(int family, unsigned short port, const mp_join_t *reqs, size_t n,
                          int made_in_loop, long long *out)
    long long mp_ref_send_round_robin(mp_sock_t s, const mp_join_t *groups, size_t n, int size,
                                      int duration_ms)


cdef mp_join_t *_group_array(int family, list groups, int port) except NULL:
    cdef Py_ssize_t i, n = len(groups)
    cdef mp_join_t *reqs = <mp_join_t *>malloc(max(1, n) * sizeof(mp_join_t))
    if reqs == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            memset(&reqs[i], 0, sizeof(mp_join_t))
            _parse_group(family, groups[i], port, &reqs[i].group, &reqs[i].group_len)
    except BaseException:
        free(reqs)
        raise
    return reqs


def reference_joins(int family, int port, list groups, size_t per_socket, bint newest_first,
                    bint timestamps=False):
    """C: join, leave, rejoin and close -> (join ns, leave ns, close ns)."""
    cdef long long out[3]
    cdef mp_join_t *reqs = _group_array(family, groups, port)
    cdef size_t n = len(groups)
    cdef int rc
    try:
        with nogil:
            rc = mp_ref_joins(family, <unsigned short>port, reqs, n, per_socket, newest_first,
                              timestamps, out)
    finally:
        free(reqs)
    if rc < 0:
        _raise("reference_joins")
    return out[0], out[1], out[2]


def reference_leaf_joins(int family, int port, list groups, bint made_in_loop=False):
    """C: one socket per group, made beforehand (or in the loop); metadata,
    bind to the group, join each -> ns."""
    cdef long long out = 0
    cdef mp_join_t *reqs = _group_array(family, groups, port)
    cdef size_t n = len(groups)
    cdef int rc
    try:
        with nogil:
            rc = mp_ref_leaf_joins(family, <unsigned short>port, reqs, n, made_in_loop, &out)
    finally:
        free(reqs)
    if rc < 0:
        _raise("reference_leaf_joins")
    return out


def reference_send_round_robin(fd, int family, list groups, int port, int size, int duration_ms):
    """C: send to every group in turn for duration_ms (GIL released) -> count."""
    cdef mp_join_t *reqs = _group_array(family, groups, port)
    cdef size_t n = len(groups)
    cdef mp_sock_t s = _handle(fd)
    cdef long long sent
    try:
        with nogil:
            sent = mp_ref_send_round_robin(s, reqs, n, size, duration_ms)
    finally:
        free(reqs)
    if sent < 0:
        _raise("reference_send_round_robin")
    return sent


cdef extern from "reference.h" nogil:
    long long mp_ref_send_batches(mp_sock_t s, const mp_join_t *dest, int size, int vlen,
                                  int duration_ms, long long *sent)


def reference_send_batches(fd, int family, str group, int port, int size, int vlen,
                           int duration_ms):
    """C: the same prebuilt batch of vlen datagrams sent again and again for
    duration_ms (sendmmsg on Linux; GIL released) -> (elapsed ns, sent)."""
    cdef mp_join_t dest
    cdef long long sent = 0, ns
    cdef mp_sock_t s = _handle(fd)
    memset(&dest, 0, sizeof(dest))
    _parse_group(family, group, port, &dest.group, &dest.group_len)
    with nogil:
        ns = mp_ref_send_batches(s, &dest, size, vlen, duration_ms, &sent)
    if ns < 0:
        _raise("reference_send_batches")
    return ns, sent
