"""mpoint.errors: one class per Winsock code, walked through the whole table."""
from __future__ import annotations

import errno
import pickle
import sys

import pytest

import mpoint
from mpoint import errors

pytestmark = pytest.mark.offline

# WSAJoinLeaf's error table (../shared/spec/WSAJoinLeaf.txt), every entry.
SPEC_CODES = {
    "WSANOTINITIALISED": 10093, "WSAENETDOWN": 10050, "WSAEADDRINUSE": 10048,
    "WSAEINTR": 10004, "WSAEINPROGRESS": 10036, "WSAEALREADY": 10037,
    "WSAEADDRNOTAVAIL": 10049, "WSAEAFNOSUPPORT": 10047, "WSAECONNREFUSED": 10061,
    "WSAEFAULT": 10014, "WSAEISCONN": 10056, "WSAENETUNREACH": 10051, "WSAENOBUFS": 10055,
    "WSAENOTSOCK": 10038, "WSAEOPNOTSUPP": 10045, "WSAEPROTONOSUPPORT": 10043,
    "WSAETIMEDOUT": 10060, "WSAEWOULDBLOCK": 10035,
}

# Python's own exception for each condition (PEP 3151).
BUILTIN = {
    "WSAECONNREFUSED": ConnectionRefusedError, "WSAETIMEDOUT": TimeoutError,
    "WSAEWOULDBLOCK": BlockingIOError, "WSAEALREADY": BlockingIOError,
    "WSAEINPROGRESS": BlockingIOError, "WSAEINTR": InterruptedError,
    "WSAECONNRESET": ConnectionResetError, "WSAECONNABORTED": ConnectionAbortedError,
    "WSAEACCES": PermissionError, "WSAESHUTDOWN": BrokenPipeError,
}

ROWS = [pytest.param(row, id=row[0]) for row in errors.TABLE]


def test_table_covers_the_spec() -> None:
    names = {row[0]: row[1] for row in errors.TABLE}
    for name, code in SPEC_CODES.items():
        assert names.get(name) == code, name


def test_table_has_no_duplicates() -> None:
    assert len({row[0] for row in errors.TABLE}) == len(errors.TABLE)
    assert len({row[1] for row in errors.TABLE}) == len(errors.TABLE)


@pytest.mark.parametrize("row", ROWS)
def test_every_class(row: tuple) -> None:  # type: ignore[type-arg]
    name, wsa, posix, base, meaning = row
    cls = getattr(errors, name)
    assert cls is errors.lookup(name) is errors.lookup(wsa)
    assert issubclass(cls, errors.MultipointError) and issubclass(cls, base)
    assert issubclass(cls, BUILTIN.get(name, OSError))
    assert cls.__module__ == "mpoint.errors" and cls.__name__ == name
    exc = errors.from_code(wsa, "WSAJoinLeaf")
    assert type(exc) is cls
    assert exc.wsa_errno == wsa and exc.name == name
    assert meaning in str(exc) and "WSAJoinLeaf" in str(exc)
    assert exc.filename == "WSAJoinLeaf"          # the failing call, as CPython names it
    if sys.platform == "win32":
        # CPython's PC/errmap.h: a Winsock code is its own errno, except these
        # six, which become the C runtime's numbers (as socket.error has them).
        platform = {10004: 4, 10009: 9, 10013: 13, 10014: 14, 10022: 22, 10024: 24}.get(wsa, wsa)
    else:
        platform = wsa if posix is None else getattr(errno, posix, wsa)
    assert exc.errno == platform
    if sys.platform == "win32":
        assert exc.winerror == wsa
    # the platform's own code finds the same class
    assert type(errors.from_code(platform)) is cls
    # raised and caught as the builtin, pickled intact
    with pytest.raises(BUILTIN.get(name, OSError)):
        raise exc
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is cls and copy.errno == exc.errno and str(copy) == str(exc)
    assert copy.filename == exc.filename


def test_spec_meanings_are_the_messages() -> None:
    assert str(errors.from_code("WSAECONNREFUSED")).endswith(
        "WSAECONNREFUSED: The attempt to join was forcefully rejected.")
    assert "already member of the multipoint session" in str(errors.from_code("WSAEISCONN"))


@pytest.mark.parametrize("posix, name", sorted(errors.ALIASES.items()))
def test_every_posix_code_maps_to_winsock(posix: str, name: str) -> None:
    if not hasattr(errno, posix) or sys.platform == "win32":
        pytest.skip(f"{posix} is not a POSIX errno here")
    exc = errors.from_code(getattr(errno, posix))
    assert exc.name == name and exc.errno == getattr(errno, posix)


def test_posix_codes_the_core_sets_are_all_mapped() -> None:
    # Every errno the C core can leave behind (ext/posix/errors.c and the
    # system calls it makes) has a Winsock class.
    for code in ("EFAULT", "EINVAL", "EALREADY", "ENOTSOCK", "EPROTONOSUPPORT",
                 "ESOCKTNOSUPPORT", "EOPNOTSUPP", "EAFNOSUPPORT", "EADDRNOTAVAIL", "EISCONN",
                 "EBADF", "ENODEV", "ENOBUFS", "ENOMEM", "EADDRINUSE", "EACCES", "EPERM",
                 "EMFILE", "ENFILE", "EINTR", "EAGAIN", "ENOPROTOOPT", "ENETUNREACH",
                 "ENOSPC", "EHOSTUNREACH", "ENETDOWN"):
        if hasattr(errno, code):
            assert errors.lookup(getattr(errno, code)) is not errors.MultipointError, code


def test_unknown_code_keeps_the_code() -> None:
    exc = errors.from_code(98765, "somecall")
    assert type(exc) is errors.MultipointError and isinstance(exc, OSError)
    assert exc.errno == 98765 and exc.wsa_errno is None and "somecall" in str(exc)


def test_detail_is_kept() -> None:
    exc = errors.from_code("WSAEOPNOTSUPP", "WSASocket", "rooted planes are not available yet")
    assert "rooted planes are not available yet" in str(exc)


def test_base_is_exported() -> None:
    assert mpoint.MultipointError is errors.MultipointError
    assert issubclass(errors.MultipointError, OSError)
