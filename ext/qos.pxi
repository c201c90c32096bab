# QoS applied to a socket: the binding of mp_qos_apply (mpoint.h, qos.c)
# and the socket's record of what was applied.  Contract: the decision
# (which flowspec field becomes which mark, what raises WSAEOPNOTSUPP) is
# made before, in mpoint/qos_plan.py; these calls convert their arguments
# first, then read the descriptor, then change the socket.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "mpoint.h" nogil:
    cdef struct sockaddr:
        pass
    ctypedef struct mp_qos_kernel_t:
        int dscp
        int priority
        uint64_t pacing
        uint64_t rcvbuf
        const sockaddr *dest
        mp_socklen_t dest_len
        uint32_t flow
    unsigned int MP_QOS_DSCP, MP_QOS_PRIORITY, MP_QOS_PACING, MP_QOS_RCVBUF
    unsigned int mp_qos_supported()
    int mp_qos_apply(mp_sock_t s, int family, mp_qos_kernel_t *k)
    void mp_qos_forget(mp_sock_t s, uint32_t flow)
    int MP_FD_QOS

QOS_DSCP = MP_QOS_DSCP
QOS_PRIORITY = MP_QOS_PRIORITY
QOS_PACING = MP_QOS_PACING
QOS_RCVBUF = MP_QOS_RCVBUF


def qos_supported():
    """The QOS_* marks this platform applies (Windows: DSCP only where
    qWAVE is present)."""
    return mp_qos_supported()


cdef uint64_t _u64(object v, str what) except? 0:
    cdef long long n
    if isinstance(v, bool):
        raise TypeError(f"{what} must be an int, not bool")
    n = _clamp(v)
    if n < 0:
        _fail("WSAEINVAL", "SIO_SET_QOS", f"{what}={n} is negative")
    return <uint64_t>n


cdef int _mark(object v, int top, str what) except -2:
    """A mark for mp_qos_kernel_t: -1 for None, else 0..top (C refuses
    anything else with WSAEINVAL, so an out-of-range value reads as top+1)."""
    cdef long long n
    if v is None:
        return -1
    if isinstance(v, bool):
        raise TypeError(f"{what} must be an int, not bool")
    n = _clamp(v)
    return <int>n if 0 <= n <= top else top + 1


def sock_apply_qos(self, dscp, priority, pacing, rcvbuf, dest):
    """Asks the kernel for a plan's marks: dscp (0..63) and priority (0..7)
    or None to leave them; pacing (bytes/s; -1: no limit) and rcvbuf
    (bytes) or None to leave them; dest, the (group, port) a Windows qWAVE
    flow is towards (None before a join).  WSAEOPNOTSUPP names nothing:
    the plan has checked qos_supported() before."""
    cdef SocketState st = _state(self)
    cdef mp_qos_kernel_t k
    cdef sockaddr_storage d
    cdef mp_socklen_t dlen = 0
    cdef long long fd
    memset(&k, 0, sizeof(k))
    k.dscp = _mark(dscp, 63, "dscp")
    k.priority = _mark(priority, 7, "priority")
    if pacing is not None:
        k.pacing = <uint64_t>-1 if pacing == -1 else _u64(pacing, "pacing")
    if rcvbuf is not None:
        k.rcvbuf = _u64(rcvbuf, "rcvbuf")
    if dest is not None:
        _parse_address(st.family, dest, &d, &dlen, "SIO_SET_QOS")
        k.dest = <const sockaddr *>&d
        k.dest_len = dlen
    fd = _std_fileno(self)
    if fd < 0 or st.closing:
        _fail("WSAENOTSOCK", "SIO_SET_QOS", "the socket is closed")
    k.flow = st.qos_flow
    if mp_qos_apply(<mp_sock_t>fd, st.family, &k) < 0:
        _raise("SIO_SET_QOS")
    st.qos_flow = k.flow


def sock_post_qos(self):
    """FD_QOS for the socket's EventSet, if it has one: the applied QoS
    changed (WSAEventSelect's FD_QOS)."""
    reg = _state(self).reg
    if reg is not None and mp_evset_post(_reg_set(reg), _reg_slot(reg), MP_FD_QOS, 0) < 0:
        _raise("FD_QOS")
