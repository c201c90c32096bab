"""Winsock error classes for mpoint, written as one table.

Every failure the C core reports arrives as a platform code (``errno`` on
POSIX, ``WSAGetLastError()`` on Windows) and becomes, through
:func:`from_code`, an instance of one class per Winsock code.  Each class
subclasses :class:`MultipointError` *and* the builtin :class:`OSError`
subclass Python itself raises for that condition, so both
``except mpoint.errors.WSAECONNREFUSED`` and ``except ConnectionRefusedError``
work.  Instances carry ``.errno`` (the platform's code), ``.wsa_errno`` (the
Winsock number), ``.name`` (``"WSAECONNREFUSED"``) and, on Windows,
``.winerror``; the message is the WSAJoinLeaf specification's meaning.
"""
from __future__ import annotations

import errno as _errno
import sys
from typing import Dict, Optional, Tuple, Type

__all__ = ["MultipointError", "from_code", "lookup", "TABLE", "ALIASES"]


class MultipointError(OSError):
    """Base of every mpoint error.  ``wsa_errno`` is None for a platform code
    that has no Winsock counterpart (never expected; kept so nothing is lost)."""

    wsa_errno: Optional[int] = None
    name: str = "UNKNOWN"
    meaning: str = "Unknown error."

    def __reduce__(self) -> Tuple[object, ...]:
        # args holds (errno, strerror) only: the call (filename) and the
        # Winsock code (winerror) travel too.
        if self.filename is None and getattr(self, "winerror", None) is None:
            return (type(self), self.args)
        return (type(self), (self.errno, self.strerror, self.filename,
                             getattr(self, "winerror", None)))


# name, Winsock code, POSIX errno name (None: none exists), builtin base,
# meaning.  Meanings of the codes in WSAJoinLeaf's error table are the spec's.
TABLE: Tuple[Tuple[str, int, Optional[str], Type[OSError], str], ...] = (
    ("WSAEINTR", 10004, "EINTR", InterruptedError,
     "The (blocking) call was canceled through WSACancelBlockingCall."),
    ("WSAEBADF", 10009, None, OSError,
     "The file handle supplied is not valid."),
    ("WSAEACCES", 10013, "EACCES", PermissionError,
     "An attempt was made to access a socket in a way forbidden by its access permissions."),
    ("WSAEFAULT", 10014, "EFAULT", OSError,
     "The name or the namelen argument is not a valid part of the user address space, "
     "the namelen argument is too small, the buffer length for lpCalleeData, lpSQOS, and "
     "lpGQOS are too small, or the buffer length for lpCallerData is too large."),
    ("WSAEINVAL", 10022, "EINVAL", OSError,
     "An invalid argument was supplied."),
    ("WSAEMFILE", 10024, "EMFILE", OSError,
     "Too many open sockets."),
    ("WSAEWOULDBLOCK", 10035, "EWOULDBLOCK", BlockingIOError,
     "The socket is marked as nonblocking and the multipoint session join operation "
     "cannot be completed immediately."),
    ("WSAEINPROGRESS", 10036, "EINPROGRESS", BlockingIOError,
     "A blocking Windows Sockets 1.1 call is in progress, or the service provider is "
     "still processing a callback function."),
    ("WSAEALREADY", 10037, "EALREADY", BlockingIOError,
     "A nonblocking WSAJoinLeaf call is in progress on the specified socket."),
    ("WSAENOTSOCK", 10038, "ENOTSOCK", OSError,
     "The descriptor is not a socket."),
    ("WSAEDESTADDRREQ", 10039, "EDESTADDRREQ", OSError,
     "A required address was omitted from an operation on a socket."),
    ("WSAEMSGSIZE", 10040, "EMSGSIZE", OSError,
     "A message sent on a datagram socket was larger than the internal message buffer."),
    ("WSAEPROTOTYPE", 10041, "EPROTOTYPE", OSError,
     "A protocol was specified that does not support the semantics of the socket type."),
    ("WSAENOPROTOOPT", 10042, "ENOPROTOOPT", OSError,
     "An unknown, invalid, or unsupported option or level was specified."),
    ("WSAEPROTONOSUPPORT", 10043, "EPROTONOSUPPORT", OSError,
     "The lpCallerData augment is not supported by the service provider."),
    ("WSAESOCKTNOSUPPORT", 10044, "ESOCKTNOSUPPORT", OSError,
     "The support for the specified socket type does not exist in this address family."),
    ("WSAEOPNOTSUPP", 10045, "EOPNOTSUPP", OSError,
     "The flow specifications specified in lpSQOS and lpGQOS cannot be satisfied."),
    ("WSAEPFNOSUPPORT", 10046, "EPFNOSUPPORT", OSError,
     "The protocol family has not been configured into the system."),
    ("WSAEAFNOSUPPORT", 10047, "EAFNOSUPPORT", OSError,
     "Addresses in the specified family cannot be used with this socket."),
    ("WSAEADDRINUSE", 10048, "EADDRINUSE", OSError,
     "The specified address is already in use."),
    ("WSAEADDRNOTAVAIL", 10049, "EADDRNOTAVAIL", OSError,
     "The specified address is not available from the local machine."),
    ("WSAENETDOWN", 10050, "ENETDOWN", OSError,
     "The network subsystem has failed."),
    ("WSAENETUNREACH", 10051, "ENETUNREACH", OSError,
     "The network cannot be reached from this host at this time."),
    ("WSAENETRESET", 10052, "ENETRESET", OSError,
     "The connection has been broken due to keep-alive activity detecting a failure."),
    ("WSAECONNABORTED", 10053, "ECONNABORTED", ConnectionAbortedError,
     "An established connection was aborted by the software in your host machine."),
    ("WSAECONNRESET", 10054, "ECONNRESET", ConnectionResetError,
     "An existing connection was forcibly closed by the remote host."),
    ("WSAENOBUFS", 10055, "ENOBUFS", OSError,
     "No buffer space is available. The socket cannot be joined."),
    ("WSAEISCONN", 10056, "EISCONN", OSError,
     "The socket is already member of the multipoint session."),
    ("WSAENOTCONN", 10057, "ENOTCONN", OSError,
     "The socket is not connected and no address was supplied."),
    ("WSAESHUTDOWN", 10058, "ESHUTDOWN", BrokenPipeError,
     "The socket had already been shut down in that direction."),
    ("WSAETIMEDOUT", 10060, "ETIMEDOUT", TimeoutError,
     "Attempt to join timed out without establishing a multipoint session."),
    ("WSAECONNREFUSED", 10061, "ECONNREFUSED", ConnectionRefusedError,
     "The attempt to join was forcefully rejected."),
    ("WSAEHOSTDOWN", 10064, "EHOSTDOWN", OSError,
     "A socket operation failed because the destination host was down."),
    ("WSAEHOSTUNREACH", 10065, "EHOSTUNREACH", OSError,
     "A socket operation was attempted to an unreachable host."),
    ("WSASYSNOTREADY", 10091, None, OSError,
     "The underlying network subsystem is not ready for network communication."),
    ("WSAVERNOTSUPPORTED", 10092, None, OSError,
     "The Windows Sockets version requested is not supported."),
    ("WSANOTINITIALISED", 10093, None, OSError,
     "A successful WSAStartup must occur before using this function."),
    ("WSATRY_AGAIN", 11002, None, OSError,
     "The accept condition deferred the connection request (CF_DEFER); it stays pending."),
)

# Other POSIX codes the core can return, and the Winsock code each stands for.
ALIASES: Dict[str, str] = {
    "EAGAIN": "WSAEWOULDBLOCK",
    "EBADF": "WSAENOTSOCK",        # a closed descriptor: Windows says "not a socket"
    "ENODEV": "WSAEADDRNOTAVAIL",  # no such interface
    "ENXIO": "WSAEADDRNOTAVAIL",
    "ENOMEM": "WSAENOBUFS",
    "EPERM": "WSAEACCES",
    "ENFILE": "WSAEMFILE",
    "ENOTSUP": "WSAEOPNOTSUPP",
    "EPIPE": "WSAESHUTDOWN",
    "ENOSPC": "WSAENOBUFS",        # Linux: per-socket source filter full
    "EOVERFLOW": "WSAEFAULT",
}

_WINDOWS = sys.platform == "win32"
_BY_NAME: Dict[str, Type[MultipointError]] = {}
_BY_CODE: Dict[int, Type[MultipointError]] = {}
_PLATFORM_CODE: Dict[str, int] = {}


def _platform_errno(posix_name: Optional[str], wsa: int) -> int:
    """The .errno an OSError carries for this condition here.  On Windows it
    is what CPython derives from the Winsock code (PC/errmap.h: the code
    itself, or the C runtime's number for a few such as WSAEINVAL -> EINVAL),
    as its socket module reports it."""
    if _WINDOWS:
        return OSError(0, "", None, wsa).errno or wsa
    if posix_name is None:
        return wsa
    return int(getattr(_errno, posix_name, wsa))


def _make(name: str, wsa: int, base: Type[OSError], meaning: str) -> Type[MultipointError]:
    bases: Tuple[type, ...] = (MultipointError,) if base is OSError else (MultipointError, base)
    cls = type(name, bases, {
        "__module__": __name__,
        "__doc__": f"{name} ({wsa}): {meaning}",
        "wsa_errno": wsa, "name": name, "meaning": meaning,
    })
    return cls


for _name, _wsa, _posix, _base, _meaning in TABLE:
    _cls = _make(_name, _wsa, _base, _meaning)
    _BY_NAME[_name] = _cls
    _PLATFORM_CODE[_name] = _platform_errno(_posix, _wsa)
    _BY_CODE[_wsa] = _cls
    _BY_CODE.setdefault(_PLATFORM_CODE[_name], _cls)
    globals()[_name] = _cls
    __all__.append(_name)
for _posix, _name in ALIASES.items():
    if hasattr(_errno, _posix):
        _BY_CODE.setdefault(int(getattr(_errno, _posix)), _BY_NAME[_name])


def __getattr__(name: str) -> Type[MultipointError]:
    """Only reached for names the table does not define; it also tells type
    checkers that the generated classes (errors.WSAE...) are error classes."""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lookup(code_or_name: "int | str") -> Type[MultipointError]:
    """The class for a platform code, a Winsock code or a Winsock name."""
    if isinstance(code_or_name, str):
        return _BY_NAME[code_or_name]
    return _BY_CODE.get(code_or_name, MultipointError)


def from_code(code: "int | str", call: Optional[str] = None,
              detail: Optional[str] = None) -> MultipointError:
    """The exception for a platform code (errno / WSAGetLastError()), a
    Winsock code or a Winsock name; ``call`` names the failing operation
    (the exception's ``filename``), ``detail`` says more (in its message)."""
    cls = lookup(code)
    if isinstance(code, str) or code == cls.wsa_errno:
        # Named by Winsock: report the platform's own code for it.
        code = _PLATFORM_CODE.get(cls.name, cls.wsa_errno or 0)
    message = f"{cls.name}: {cls.meaning}" if cls.wsa_errno else _strerror(code)
    if detail:
        message = f"{message} ({detail})"
    # The failing call goes where CPython's socket errors name theirs: the
    # filename slot (str(exc) ends with ": 'WSAJoinLeaf'").
    if _WINDOWS and cls.wsa_errno is not None:
        return cls(code, message, call, cls.wsa_errno)
    return cls(code, message, call)


def _strerror(code: int) -> str:
    import os
    try:
        return os.strerror(code)
    except ValueError:
        return f"Unknown error {code}"
