# Winsock's re-enabling functions, for MultipointSocket (multipoint_socket.py
# binds these as its methods): a receive call re-arms FD_READ, a send that
# would block re-arms FD_WRITE.  In C because they sit on every datagram's
# path: an unregistered socket pays one attribute test.
import socket as _stdsocket_mod

cdef object _std = _stdsocket_mod.socket
cdef object _std_recv = _std.recv
cdef object _std_recvfrom = _std.recvfrom
cdef object _std_recv_into = _std.recv_into
cdef object _std_recvfrom_into = _std.recvfrom_into
# Windows' socket module has no recvmsg/sendmsg: neither has MultipointSocket.
cdef object _std_recvmsg = getattr(_std, "recvmsg", None)
cdef object _std_recvmsg_into = getattr(_std, "recvmsg_into", None)
cdef object _std_send = _std.send
cdef object _std_sendto = _std.sendto
cdef object _std_sendmsg = getattr(_std, "sendmsg", None)


cdef inline int _rearm(object sock, unsigned int events) except -1:
    reg = sock._reg                      # (EventSet, slot) or None
    if reg is not None:
        mp_evset_rearm((<EventCore>(<tuple>reg)[0]).set, <unsigned int>(<tuple>reg)[1], events)
    return 0


def sock_recv(self, bufsize, flags=0):
    _rearm(self, MP_FD_READ)
    return _std_recv(self, bufsize, flags)


def sock_recvfrom(self, bufsize, flags=0):
    _rearm(self, MP_FD_READ)
    return _std_recvfrom(self, bufsize, flags)


def sock_recv_into(self, buffer, nbytes=0, flags=0):
    _rearm(self, MP_FD_READ)
    return _std_recv_into(self, buffer, nbytes, flags)


def sock_recvfrom_into(self, buffer, nbytes=0, flags=0):
    _rearm(self, MP_FD_READ)
    return _std_recvfrom_into(self, buffer, nbytes, flags)


def sock_recvmsg(self, *args):
    _rearm(self, MP_FD_READ)
    return _std_recvmsg(self, *args)


def sock_recvmsg_into(self, *args):
    _rearm(self, MP_FD_READ)
    return _std_recvmsg_into(self, *args)


def sock_send(self, data, flags=0):
    """Sends to the joined group when the socket joined as JL_BOTH (a
    receiving socket cannot be connected); otherwise socket.send."""
    dest = self._dest
    try:
        if dest is None:
            return _std_send(self, data, flags)
        return _std_sendto(self, data, flags, dest)
    except BlockingIOError:
        _rearm(self, MP_FD_WRITE)
        raise


def sock_sendto(self, data, *args):
    try:
        return _std_sendto(self, data, *args)
    except BlockingIOError:
        _rearm(self, MP_FD_WRITE)
        raise


def sock_sendmsg(self, *args):
    try:
        return _std_sendmsg(self, *args)
    except BlockingIOError:
        _rearm(self, MP_FD_WRITE)
        raise
