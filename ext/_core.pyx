# cython: language_level=3
"""mpoint._core -- the thin binding of the portable C core (mpoint.h).

Contract: argument types are converted here, values are judged in C
(common.c).  Every failure leaves a platform code behind (errno or
WSAGetLastError()); ``_raise`` turns it into the matching ``mpoint.errors``
class.  Python objects never cross into the platform files.
"""
from libc.limits cimport LLONG_MAX, LLONG_MIN
from core_api cimport *
from libc.string cimport memset, strlen

cdef extern from "Python.h":
    object PyNumber_Index(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1
    bint PyUnicode_IS_ASCII(object o)
    const char *PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t *size) except NULL

from socket import AF_INET as _AF_INET

# Every blocking wait runs in slices of this many ms, and the signal
# handlers run between them (wait.pxi): Winsock's waits are not interrupted
# by signals at all, and on POSIX a signal that the kernel hands to another
# thread interrupts nothing in the waiting one.  So Ctrl+C ends any wait
# within one slice.
cdef int _WAIT_SLICE_MS = 100


cdef inline int _slice(int ms) noexcept:
    """ms, shortened to one wait slice."""
    if ms < 0 or ms > _WAIT_SLICE_MS:
        return _WAIT_SLICE_MS
    return ms

JL_SENDER_ONLY = MP_JL_SENDER_ONLY
JL_RECEIVER_ONLY = MP_JL_RECEIVER_ONLY
JL_BOTH = MP_JL_BOTH
WSA_FLAG_OVERLAPPED = MP_WSA_FLAG_OVERLAPPED
WSA_FLAG_MULTIPOINT_C_ROOT = MP_WSA_FLAG_MULTIPOINT_C_ROOT
WSA_FLAG_MULTIPOINT_C_LEAF = MP_WSA_FLAG_MULTIPOINT_C_LEAF
WSA_FLAG_MULTIPOINT_D_ROOT = MP_WSA_FLAG_MULTIPOINT_D_ROOT
WSA_FLAG_MULTIPOINT_D_LEAF = MP_WSA_FLAG_MULTIPOINT_D_LEAF
WSA_FLAG_NO_HANDLE_INHERIT = MP_WSA_FLAG_NO_HANDLE_INHERIT


cdef int _raise(str call) except -1:
    """Raises the mpoint exception for the platform's last error code."""
    return _raise_code(mp_last_error(), call)


cdef int _raise_code(int code, str call) except -1:
    """_raise for a code read earlier (before calls that may overwrite it)."""
    from mpoint.errors import from_code   # the table lives in Python
    raise from_code(code, call)


cdef int _fail(str name, str call, str detail) except -1:
    """Raises the mpoint exception for Winsock code ``name``, saying what
    went wrong in the caller's terms."""
    from mpoint.errors import from_code
    raise from_code(name, call, detail)


cdef long long _clamp(object value) except? -1:
    """An integer argument, clamped into long long: C rejects what is out of
    its range with the spec's code, so huge values need no second check.
    Integers only, as operator.index takes them (not floats)."""
    cdef int overflow = 0
    cdef long long v
    if type(value) is not int:
        value = PyNumber_Index(value)
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow > 0:
        return LLONG_MAX
    if overflow < 0:
        return LLONG_MIN
    return v


cdef mp_sock_t _handle(object fd) except? -1:
    cdef long long v = _clamp(fd)
    if v < 0:
        return MP_INVALID_SOCKET     # a closed socket: WSAENOTSOCK from C
    return <mp_sock_t>v


cdef const char *_host_text(object value) except? NULL:
    """A host str as C text without a copy; NULL (not an exception) when it
    cannot be a numeric address (not ASCII, or a NUL inside), which C
    reports as malformed."""
    cdef Py_ssize_t size
    cdef const char *text
    if not isinstance(value, str):
        raise TypeError(f"host must be str, not {type(value).__name__}")
    if not PyUnicode_IS_ASCII(value):
        return NULL
    text = PyUnicode_AsUTF8AndSize(value, &size)
    return text if <size_t>size == strlen(text) else NULL


cdef bytes _text(object value, str what):
    """A str argument as bytes for C; None stands for 'malformed'."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if not (<str>value).isascii() or "\0" in <str>value:
        return None
    return (<str>value).encode("ascii")


cdef int _parse_address(int family, object addr, sockaddr_storage *out,
                        mp_socklen_t *out_len, str call) except -1:
    """(host, port) for AF_INET, (host, port[, flowinfo[, scope_id]]) for
    AF_INET6, as the socket module spells addresses.  A tuple of another
    length is a name of the wrong length: WSAEFAULT from C."""
    cdef const char *host = NULL
    cdef const char *text = NULL
    cdef long long port = 0, flowinfo = 0, scope_id = 0
    cdef Py_ssize_t n
    if not isinstance(addr, tuple):
        raise TypeError(f"an address must be a tuple (host, port), not {type(addr).__name__}")
    n = len(<tuple>addr)
    if n >= 2:
        text = _host_text((<tuple>addr)[0])
        if isinstance((<tuple>addr)[1], bool):
            raise TypeError("a port must be an int, not bool")
        port = _clamp((<tuple>addr)[1])
    if n >= 3:
        flowinfo = _clamp((<tuple>addr)[2])
    if n >= 4:
        scope_id = _clamp((<tuple>addr)[3])
    if n == 2 or (family != _AF_INET and 2 < n <= 4):
        host = text
    if flowinfo < 0 or scope_id < 0:
        host = NULL
    if mp_parse_address(family, host, port, <unsigned long>flowinfo,
                        <unsigned long>scope_id, out, out_len) < 0:
        _raise(call)
    return 0


cdef int _socket_check(object family, object type, object proto, object flags,
                       int args[3], unsigned long *flags_out) except -1:
    """WSASocket's arguments converted, then checked in C (mp_socket_check);
    family, type and proto as C reads them into args, flags into *flags_out."""
    cdef long long f = _clamp(flags)
    if f < 0 or f > 0xFFFFFFFF:
        f = 0xFFFFFFFF                       # unknown bits: WSAEINVAL from C
    cdef long long fam = _clamp(family), typ = _clamp(type), pro = _clamp(proto)
    if not (-1 <= fam <= 0xFFFF):
        fam = -1
    if not (-1 <= typ <= 0xFFFF):
        typ = -1
    if not (-1 <= pro <= 0xFFFF):
        pro = -1
    if mp_socket_check(<int>fam, <int>typ, <int>pro, <unsigned long>f) < 0:
        from mpoint.errors import lookup
        if f & (MP_WSA_FLAG_MULTIPOINT_C_ROOT | MP_WSA_FLAG_MULTIPOINT_D_ROOT) and \
                lookup(mp_last_error()).name == "WSAEOPNOTSUPP":
            _fail("WSAEOPNOTSUPP", "WSASocket",
                  "IP multicast (SOCK_DGRAM) is non-rooted: use C_LEAF | D_LEAF, or "
                  "SOCK_STREAM for a rooted session (C_ROOT, D_ROOT: mpoint.rooted)")
        _raise("WSASocket")
    args[0], args[1], args[2] = <int>fam, <int>typ, <int>pro
    flags_out[0] = <unsigned long>f
    return 0


def socket_open(family, type, proto, flags):
    """WSASocket(family, type, proto, NULL, 0, flags) -> a new descriptor."""
    cdef mp_sock_t s = MP_INVALID_SOCKET
    cdef int args[3]
    cdef unsigned long f = 0
    _socket_check(family, type, proto, flags, args, &f)
    if mp_socket_open(args[0], args[1], args[2], f, &s) < 0:
        _raise("WSASocket")
    return <long long>s         # a plain socket (MP_SOCKET_PLAIN) is a socket too


cdef bytes _interface_arg(object interface, mp_join_t *req):
    """The one reading of an ``interface`` argument (join_leaf, GroupSet):
    None (the system's choice), an index, or a name or address as text, into
    req's if_text / if_index / if_given; returns the bytes if_text points
    into (keep them alive).  bool is refused: True would read as index 1."""
    cdef bytes raw = None
    if interface is None:
        return None
    if isinstance(interface, bool):
        raise TypeError("interface must be an index, a name or an address, not bool")
    if isinstance(interface, str):
        raw = _text(interface, "interface")
        if raw is None:
            raw = b""                      # malformed: no such interface, from C
        req.if_text = raw
    else:
        req.if_index = _clamp(interface)
        req.if_given = 1
    return raw


def interface_index(interface):
    """An interface given by index, name or address -> its index (0: any)."""
    cdef unsigned int out = 0
    cdef mp_join_t req
    memset(&req, 0, sizeof(req))
    keep = _interface_arg(interface, &req)
    if req.if_text != NULL:
        if mp_interface_by_string(req.if_text, &out) < 0:
            _raise("interface")
    elif req.if_given and mp_interface_by_index(req.if_index, &out) < 0:
        _raise("interface")
    return out


def get_loopback(fd, int family):
    cdef int on = 0
    if mp_get_loopback(_handle(fd), family, &on) < 0:
        _raise("SIO_MULTIPOINT_LOOPBACK")
    return on != 0


def set_loopback(fd, int family, bint on, state=None):
    """Sets SIO_MULTIPOINT_LOOPBACK; returns how (MP_SET_BY_*), which is
    also recorded in ``state`` (a SocketState: its option_method)."""
    cdef int how = mp_set_loopback(_handle(fd), family, on)
    if how < 0:
        _raise("SIO_MULTIPOINT_LOOPBACK")
    if state is not None:
        (<SocketState?>state).option_method = how
    return how


def get_scope(fd, int family):
    cdef int hops = 0
    if mp_get_scope(_handle(fd), family, &hops) < 0:
        _raise("SIO_MULTICAST_SCOPE")
    return hops


def set_scope(fd, int family, hops, state=None):
    """Sets SIO_MULTICAST_SCOPE; returns and records how, as set_loopback."""
    cdef int how = mp_set_scope(_handle(fd), family, _clamp(hops))
    if how < 0:
        _raise("SIO_MULTICAST_SCOPE")
    if state is not None:
        (<SocketState?>state).option_method = how
    return how


include "wait.pxi"
include "state.pxi"
include "batch.pxi"
include "events.pxi"
include "sockcalls.pxi"
include "qos.pxi"
include "sendcalls.pxi"
include "groupset.pxi"
include "os_rules.pxi"
include "decide.pxi"
