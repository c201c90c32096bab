# A MultipointSocket's multipoint state and the calls that read or change
# it.  Contract: the state lives in one SocketState, stored once in the
# facade's ``_mp`` slot (the only attribute of MultipointSocket this file
# reads); the facade shows it through read-only properties.  Every join --
# blocking or not, with or without an interface or a source -- goes through
# sock_join_leaf: arguments converted first (conversion may run caller code
# that closes the socket), then the descriptor read, then the state checked
# and changed, in one place.
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
cdef object _std_bind = _std.bind
cdef object _std_fileno = _std.fileno
cdef object _std_gettimeout = _std.gettimeout
cdef object _std_settimeout = _std.settimeout

import _socket as _csocket_mod
cdef object _csock_init = _csocket_mod.socket.__init__
cdef object _SOCK_DGRAM = _stdsocket_mod.SOCK_DGRAM
cdef object _IPPROTO_UDP = _stdsocket_mod.IPPROTO_UDP


# POSIX: CPython's socket.socket() makes the very socket mp_socket_open
# would, so init_socket lets it, and sets the socket up in C afterwards:
# an adopted descriptor would cost a getsockname in socket.socket's check.
cdef bint _SETUP_SUFFICES = mp_socket_setup_suffices()


def init_socket(sock, family, type, proto, flags):
    """Makes ``sock`` (a MultipointSocket, not yet initialised) a new
    multipoint socket: the arguments checked as WSASocket checks them, the
    descriptor (mp_socket_open, or socket.socket's own call where that is
    the same), socket.socket's own initialisation, mp_socket_setup, a fresh
    SocketState.  In C because one socket per group makes this a hot path."""
    cdef int args[3]
    cdef unsigned long f = 0
    cdef mp_sock_t s = MP_INVALID_SOCKET
    cdef int opened = 0
    _socket_check(family, type, proto, flags, args, &f)
    if _SETUP_SUFFICES:
        _csock_init(sock, args[0], _SOCK_DGRAM, _IPPROTO_UDP)
        if mp_socket_setup(<mp_sock_t>_std_fileno(sock), args[0]) < 0:
            try:
                _raise("WSASocket")
            finally:
                _csocket_mod.socket.close(sock)
    else:
        opened = mp_socket_open(args[0], args[1], args[2], f, &s)
        if opened < 0:
            _raise("WSASocket")
        fd = <long long>s
        try:
            # Windows' socket() cannot ask an unbound socket its family.
            _csock_init(sock, args[0], _SOCK_DGRAM, _IPPROTO_UDP, fd)
        except BaseException:
            _stdsocket_mod.close(fd)
            raise
    sock._io_refs = 0                 # what socket.socket.__init__ sets after it
    sock._closed = False
    sock._mp = SocketState(args[0], f, MP_BOUND_NO, opened == MP_SOCKET_PLAIN)


def new_socket(cls, family, type, proto, flags):
    """A new ``cls`` (MultipointSocket) made by init_socket, without the
    Python-level __init__ call."""
    sock = cls.__new__(cls)
    init_socket(sock, family, type, proto, flags)
    return sock


cdef inline SocketState _state(object sock):
    return <SocketState?>sock._mp


# A registration is (EventSet, slot): its C set and its slot.
cdef inline mp_evset_t *_reg_set(object reg):
    return (<EventCore>(<tuple>reg)[0]).set


cdef inline unsigned int _reg_slot(object reg):
    return <unsigned int>(<tuple>reg)[1]


cdef inline int _rearm(SocketState st, unsigned int events) except -1:
    reg = st.reg                         # (EventSet, slot) or None
    if reg is not None:
        mp_evset_rearm(_reg_set(reg), _reg_slot(reg), events)
    return 0


def sock_recv(self, bufsize, flags=0):
    _rearm(_state(self), MP_FD_READ)
    return _std_recv(self, bufsize, flags)


def sock_recvfrom(self, bufsize, flags=0):
    _rearm(_state(self), MP_FD_READ)
    return _std_recvfrom(self, bufsize, flags)


def sock_recv_into(self, buffer, nbytes=0, flags=0):
    _rearm(_state(self), MP_FD_READ)
    return _std_recv_into(self, buffer, nbytes, flags)


def sock_recvfrom_into(self, buffer, nbytes=0, flags=0):
    _rearm(_state(self), MP_FD_READ)
    return _std_recvfrom_into(self, buffer, nbytes, flags)


def sock_recvmsg(self, *args):
    _rearm(_state(self), MP_FD_READ)
    return _std_recvmsg(self, *args)


def sock_recvmsg_into(self, *args):
    _rearm(_state(self), MP_FD_READ)
    return _std_recvmsg_into(self, *args)


def sock_send(self, data, flags=0):
    """Sends to the joined group when the socket joined as JL_BOTH (a
    receiving socket cannot be connected); otherwise socket.send.  A
    shaped socket's datagram waits for its token bucket (ext/sendcalls.pxi)."""
    cdef SocketState st = _state(self)
    if st.shaped:
        return _shaped_send(self, st, data, flags)
    try:
        if st.dest is None:
            return _std_send(self, data, flags)
        return _std_sendto(self, data, flags, st.dest)
    except BlockingIOError:
        _rearm(st, MP_FD_WRITE)
        raise


def sock_sendto(self, data, *args):
    cdef SocketState st = _state(self)
    if st.shaped:
        return _shaped_sendto(self, st, data, args)
    try:
        return _std_sendto(self, data, *args)
    except BlockingIOError:
        _rearm(st, MP_FD_WRITE)
        raise


def sock_sendmsg(self, *args):
    cdef SocketState st = _state(self)
    if st.shaped:
        return _shaped_sendmsg(self, st, args)
    try:
        return _std_sendmsg(self, *args)
    except BlockingIOError:
        _rearm(st, MP_FD_WRITE)
        raise


def sock_bind(self, address):
    """socket.bind, remembered: a later join_leaf need not ask."""
    _std_bind(self, address)
    _state(self).bound = MP_BOUND_YES


def sock_recv_batch(self, RecvBatch batch not None, timeout=None):
    """Receives up to the batch's capacity of datagrams in one call into
    ``batch`` (reused; earlier contents are overwritten) and returns how
    many arrived: at least 1, or 0 when nothing arrived in time (``timeout``
    seconds; None: the socket's own timeout, so 0 at once on a non-blocking
    socket).  A receive call: it re-arms FD_READ.

    A metadata batch reports each datagram's group, interface and kernel
    receive time.  A receiving ``join_leaf`` asked the kernel for them
    before adding its membership; a socket that never joined as a receiver
    through mpoint asks at its first metadata call, and what was queued
    before then reports what the kernel recorded without being asked, the
    rest unknown (``ifindex`` 0, ``timestamp_ns`` None)."""
    cdef SocketState st = _state(self)
    cdef _wait_t w
    cdef long long fd
    cdef bint may_block
    # 1. The timeout converted (caller code: __float__, __index__, or a
    #    gettimeout override), before the descriptor is read.  The socket's
    #    own mode is socket.socket's: any timeout (0 included) means the
    #    system socket is non-blocking (win/batch.c needs to know).
    may_block = _std_gettimeout(self) is None
    _wait_start(&w, self.gettimeout() if timeout is None else timeout)
    # 2. The descriptor as it is now, held open by the busy count.
    fd = _std_fileno(self)
    if fd < 0 or st.closing:
        _fail("WSAENOTSOCK", "recv_batch", "the socket is closed")
    if batch.b.metadata and not st.metadata:
        enable_metadata(fd, st.family)
        st.metadata = True
    _rearm(st, MP_FD_READ)
    _claim(batch)
    batch.b.may_block = may_block
    st.busy += 1
    try:
        return _recv_loop(<mp_sock_t>fd, batch, &w, st, "recv_batch")
    finally:
        batch.busy = False
        _release(st)


cdef int _release(SocketState st) except -1:
    """A busy call leaves; the last one closes a descriptor that close()
    handed over meanwhile."""
    cdef long long fd
    st.busy -= 1
    if st.busy == 0 and st.deferred_fd >= 0:
        fd = st.deferred_fd
        st.deferred_fd = -1
        _csocket_mod.close(fd)
    return 0


def sock_check_idle(self, str call):
    """WSAEINPROGRESS while a blocking call holds the socket busy."""
    if _state(self).busy:
        _fail("WSAEINPROGRESS", call, "another thread blocks in recv_batch on this socket")


def sock_check_adopted(self):
    """A descriptor handed to MultipointSocket(fileno=...) must be a UDP
    socket of IPv4 or IPv6: refused otherwise (WSAESOCKTNOSUPPORT or
    WSAEAFNOSUPPORT), and left open, still the caller's."""
    family = self.family
    kind = self.getsockopt(_stdsocket_mod.SOL_SOCKET, _stdsocket_mod.SO_TYPE)
    if kind != _SOCK_DGRAM:
        code, detail = ("WSAESOCKTNOSUPPORT", f"descriptor of socket type {kind}: "
                        "a multipoint socket is UDP (SOCK_DGRAM)")
    elif family not in (_stdsocket_mod.AF_INET, _stdsocket_mod.AF_INET6):
        code, detail = ("WSAEAFNOSUPPORT", f"descriptor of family {family}: "
                        "a multipoint socket is AF_INET or AF_INET6")
    else:
        return
    _csocket_mod.socket.detach(self)
    _fail(code, "MultipointSocket", detail)


def sock_real_close(self):
    """MultipointSocket._real_close, the one place where socket.socket
    closes its descriptor: with a blocking call still on it (busy), the
    socket is closed at once (fileno() is -1, new calls fail) and marked
    closing, which ends that call within one wait slice; the descriptor
    itself is closed when the last such call leaves."""
    cdef SocketState st = _state(self)
    st.closing = True
    if st.qos_flow:                      # Windows: out of its qWAVE flow first
        mp_qos_forget(<mp_sock_t>_std_fileno(self), st.qos_flow)
        st.qos_flow = 0
    if st.busy:
        st.deferred_fd = _csocket_mod.socket.detach(self)
    else:
        _csocket_mod.socket.close(self)


# -- WSAJoinLeaf -------------------------------------------------------------

cdef unsigned int _join_role(object flags) except 0:
    """dwFlags as one JL_* role: an int (or an object with __index__) that is
    1, 2 or 4.  bool is refused: True would otherwise read as
    JL_SENDER_ONLY."""
    cdef long long v
    if isinstance(flags, bool):
        raise TypeError("flags must be JL_SENDER_ONLY, JL_RECEIVER_ONLY or JL_BOTH, not bool")
    v = _clamp(flags)
    if v != MP_JL_SENDER_ONLY and v != MP_JL_RECEIVER_ONLY and v != MP_JL_BOTH:
        _fail("WSAEINVAL", "WSAJoinLeaf",
              f"flags={v}: not JL_SENDER_ONLY (1), JL_RECEIVER_ONLY (2) or JL_BOTH (4)")
    return <unsigned int>v


cdef int _check_callee(object buf) except -1:
    """lpCalleeData must be a buffer mpoint can set the length of."""
    if isinstance(buf, bytearray):
        try:               # a resize fails while the buffer is exported
            buf.append(0)
        except BufferError:
            exported = True
        else:
            exported = False
            del buf[-1]
        if exported:
            _fail("WSAEFAULT", "WSAJoinLeaf", "callee_data cannot be resized while it is exported")
        return 0
    try:
        view = memoryview(buf)
    except TypeError:
        raise TypeError(f"callee_data must be a bytearray, not {type(buf).__name__}") from None
    if view.readonly:
        _fail("WSAEFAULT", "WSAJoinLeaf", "callee_data is read-only")
    raise TypeError(f"callee_data must be a bytearray (its length reports the data received), "
                    f"not {type(buf).__name__}")


cdef bytes _join_request(int family, object name, object flags, object interface,
                         object source, object caller_data, object sqos, object gqos,
                         mp_join_t *req):
    """The one parser of a join's arguments, into *req (zeroed first):
    name = (group, port[, flowinfo, scope_id]) as the socket module spells
    it, flags as one JL_* role, interface as _interface_arg reads it (an
    IPv6 group's nonzero scope_id names it when interface is None), source
    (text) for a source-specific join, and which of lpCallerData, lpSQOS and
    lpGQOS were given.  Converting may run caller code (__index__, ...), so
    it runs before the caller looks at any socket state.  Returns the bytes
    req.if_text points into."""
    memset(req, 0, sizeof(req[0]))
    req.flags = _join_role(flags)
    if caller_data is not None:
        req.caller_len = <size_t>memoryview(caller_data).nbytes
    req.has_sqos = sqos is not None
    req.has_gqos = gqos is not None
    _parse_address(family, name, &req.group, &req.group_len, "WSAJoinLeaf")
    if source is not None:
        _parse_address(family, (source, 0), &req.source, &req.source_len, "WSAJoinLeaf")
    if interface is None and family != _AF_INET and type(name) is tuple \
            and len(<tuple>name) == 4 and (<tuple>name)[3]:
        interface = (<tuple>name)[3]          # the zone of a scoped group
    return _interface_arg(interface, req)


cdef int _undo_and_raise(object qos, str call) except -1:
    """Raises the join's error (read first), after taking back the QoS a
    join applied before it failed."""
    cdef int code = mp_last_error()
    if qos is not None:
        qos.undo()
    return _raise_code(code, call)


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
    On a socket registered in an EventSet the join does not block: its
    outcome arrives as FD_CONNECT.
    """
    cdef SocketState st = _state(self)
    cdef mp_join_t req
    cdef int result = 0, how, family = st.family
    cdef object reg
    cdef mp_sock_t s
    # 1. Every argument converted (caller code may run here), QoS planned:
    #    a flowspec that cannot be honoured fails before anything changes.
    keep = _join_request(family, name, flags, interface, source, caller_data, sqos, gqos, &req)
    if callee_data is not None:
        _check_callee(callee_data)
    qos = None
    if sqos is not None or gqos is not None:
        from mpoint.qos_apply import prepare
        qos = prepare(self, req.flags, sqos, gqos)
    # 2. The descriptor and the state, as they are now.
    fd = _std_fileno(self)
    if fd < 0:
        _fail("WSAENOTSOCK", "WSAJoinLeaf", "the socket is closed")
    s = <mp_sock_t>fd
    reg = st.reg
    # "until the multipoint session join attempt completes all subsequent
    # calls to WSAJoinLeaf on the same socket will fail with WSAEALREADY"
    if reg is not None and mp_evset_posted(_reg_set(reg), _reg_slot(reg)) & MP_FD_CONNECT:
        _fail("WSAEALREADY", "WSAJoinLeaf", "a join is in progress: wait for its FD_CONNECT")
    if st.joined is not None:
        _fail("WSAEISCONN", "WSAJoinLeaf", f"already a member of {st.joined}")
    req.bound = st.bound
    req.plain = st.plain
    # 3. The QoS, the join, and their bookkeeping; a failed join takes the
    #    QoS back.
    if qos is not None:
        qos.apply(name)
    if reg is not None:
        how = mp_join_leaf_deferred(s, family, &req, &result)
        if how < 0:
            _undo_and_raise(qos, "WSAJoinLeaf")
        if mp_evset_post(_reg_set(reg), _reg_slot(reg), MP_FD_CONNECT, result) < 0:
            _undo_and_raise(qos, "FD_CONNECT")
        if result:
            if qos is not None:
                qos.undo()
            return self          # failed: FD_CONNECT says why; a retry is allowed
    else:
        how = mp_join_leaf(s, family, &req)
        if how < 0:
            _undo_and_raise(qos, "WSAJoinLeaf")
    if qos is not None:
        qos.commit()
    if callee_data is not None:
        del callee_data[:]            # lpCalleeData->len = 0: no data came back
    st.joined_as(name, req.flags, how)
    return self
