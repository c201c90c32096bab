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


def sock_join_leaf(self, name, caller_data=None, callee_data=None, sqos=None, gqos=None,
                   flags=MP_JL_BOTH, *, interface=None, source=None):
    """Joins the multipoint session ``name`` = (group, port) and returns
    this socket (a c_leaf joins itself, as the spec says).

    JL_RECEIVER_ONLY and JL_BOTH add a membership on ``interface``
    (index, name or address; None: the system's choice), source-specific
    when ``source`` is given.  JL_SENDER_ONLY and JL_BOTH make the group
    the destination of ``send()``; JL_SENDER_ONLY adds no membership.
    ``callee_data``, a bytearray, is resized to what the peer sent back:
    nothing, on IP multicast.  Closing the socket leaves the session.
    """
    # MultipointSocket.join_leaf.  The common call (no caller or callee
    # data, no interface, not registered, not joined yet) is made here in
    # one step; every other goes to MultipointSocket._join_leaf.
    cdef int family
    if (caller_data is not None or callee_data is not None or interface is not None
            or self._reg is not None or self._joined is not None):
        return self._join_leaf(name, caller_data, callee_data, sqos, gqos, flags,
                               interface=interface, source=source)
    family = self._af
    if family != _AF_INET and type(name) is tuple and len(<tuple>name) == 4:
        return self._join_leaf(name, caller_data, callee_data, sqos, gqos, flags,
                               interface=interface, source=source)   # a scoped group
    native = _join_leaf(self.fileno(), family, name, 0, sqos is not None, gqos is not None,
                        flags, 0, source, False)
    self._joined = name
    self._join_flags = flags              # valid: C checked it
    self._join_method = native
    if flags != MP_JL_SENDER_ONLY:
        self._meta = True                 # C asked for it before the membership
    if flags == MP_JL_BOTH:
        self._dest = name
    return self
