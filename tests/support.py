"""Helpers shared by the tests (fixtures live in conftest.py)."""
from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sys
from typing import Any, Callable, Iterator, List, Optional

try:
    import resource
except ImportError:                  # Windows: no descriptor limit of this kind
    resource = None  # type: ignore[assignment]

import pytest


def _under_wine() -> bool:
    """Whether this Windows process runs under Wine (ntdll exports wine_get_version)."""
    if sys.platform != "win32":
        return False
    import ctypes
    return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")


UNDER_WINE = _under_wine()
# The scope every mpoint socket starts with in this session: None (the
# system's default) inside a private namespace, 0 in loopback-only mode
# (set by conftest.py).
SAFE_SCOPE: Optional[int] = None


def exit_code_in_child(child: Callable[[], int]) -> int:
    """Runs ``child()`` in a forked process and returns the child's exit
    code: what child returned, or 99 if it raised.  The child never returns
    into the caller's code (it leaves with os._exit), so a test's cleanup
    and pytest's own run only in the parent."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = child()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def needs_proc(path: str, linux_only: bool = False) -> str:
    """A Linux /proc path, or a skip where there is none.  Under Wine the
    sockets are Linux sockets and the run is inside its own namespace, so
    reading the kernel's network view (drive Z: maps /) is allowed unless
    ``linux_only``: sysctl writes from a Windows process (text mode, and not
    what Windows has) and the process's own entries (Wine's, not Python's)."""
    if not sys.platform.startswith("linux") and (linux_only or not UNDER_WINE):
        pytest.skip(f"{path} exists only on Linux")
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    return path

_groups = itertools.count(1)


def new_group(family: int, ssm: bool = False) -> str:
    """A fresh multicast group: 239/8 or 232/8 (SSM), ff15:: or ff35:: (SSM)."""
    n = next(_groups)
    if family == socket.AF_INET:
        return f"{232 if ssm else 239}.7.{n // 256}.{n % 256}"
    return f"{'ff35' if ssm else 'ff15'}::7:{n:x}"



# The veth pair mpa <-> mpb (conftest's ``link`` fixture): documentation addresses.
ADDR = {socket.AF_INET: ("198.51.100.1", "198.51.100.2"),
        socket.AF_INET6: ("2001:db8:1::1", "2001:db8:1::2")}

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


def drain(sock: socket.socket, timeout: float = 0.1, limit: int = 1000) -> List[bytes]:
    """Every datagram that arrives within ``timeout`` of the last one (bounded).
    Inside the namespace delivery happens during the sender's own system call
    (loopback and veth), so a short wait sees everything that was sent."""
    sock.settimeout(timeout)
    out: List[bytes] = []
    try:
        while len(out) < limit:
            out.append(sock.recv(65536))
    except socket.timeout:
        pass
    return out


def memberships(family: int) -> Iterator[str]:
    """Groups with a kernel membership in this namespace (/proc/net/igmp{,6}),
    as addresses; IGMP/MLD reports are sent exactly for these."""
    if family == socket.AF_INET:
        with open(needs_proc("/proc/net/igmp")) as f:
            for line in f:
                fields = line.split()
                if line.startswith("\t\t\t\t") and fields:
                    yield socket.inet_ntop(socket.AF_INET, bytes.fromhex(fields[0])[::-1])
    else:
        with open(needs_proc("/proc/net/igmp6")) as f:
            for line in f:
                yield socket.inet_ntop(socket.AF_INET6, bytes.fromhex(line.split()[2]))


def membership_devices(family: int, group: str) -> List[str]:
    """The interfaces on which ``group`` has a membership."""
    devices: List[str] = []
    if family == socket.AF_INET:
        dev = ""
        with open(needs_proc("/proc/net/igmp")) as f:
            for line in f:
                fields = line.split()
                if not line.startswith("\t") and len(fields) > 1 and fields[0].isdigit():
                    dev = fields[1]
                elif line.startswith("\t\t\t\t") and fields and socket.inet_ntop(
                        socket.AF_INET, bytes.fromhex(fields[0])[::-1]) == group:
                    devices.append(dev)
    else:
        packed = socket.inet_pton(socket.AF_INET6, group).hex()
        with open(needs_proc("/proc/net/igmp6")) as f:
            devices = [line.split()[1] for line in f if line.split()[2] == packed]
    return devices



def tx_packets(device: str) -> int:
    """Packets sent by ``device`` (/proc/net/dev shows this network namespace)."""
    with open(needs_proc("/proc/net/dev")) as f:
        for line in f:
            name, _, counters = line.partition(":")
            if name.strip() == device:
                return int(counters.split()[9])
    raise LookupError(device)


# A family that is not IP (AF_UNIX's number; Windows' socket module lacks the name).
NOT_IP = int(getattr(socket, "AF_UNIX", 1))


def loopback_index() -> int:
    """The loopback interface's index ("lo" on Linux; found by address elsewhere)."""
    if sys.platform.startswith("linux"):
        return socket.if_nametoindex("lo")
    from mpoint import _core
    return int(_core.interface_index("127.0.0.1"))


@contextlib.contextmanager
def file_limit(need: int, raise_soft: bool = True) -> Iterator[None]:
    """A block that may hold ``need`` descriptors: skips when RLIMIT_NOFILE's
    hard limit is lower, raises the soft one (unless ``raise_soft``: the code
    under test must) and restores it after.  Windows has no such limit."""
    if resource is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need:,}")
    if raise_soft and soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- hypothesis, when installed ------------------------------------------------------
# The property tests need hypothesis (the ``test`` extra); a run with pytest
# alone (.ci/run's wheel, sanitizer and kqueue stages) skips them and still
# runs every other test of their files.
try:
    import hypothesis
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st
except ImportError:
    hypothesis = None  # type: ignore[assignment]
    NO_HYPOTHESIS = "needs hypothesis (pip install -e '.[test]')"

    class _Inert:
        """Stands for hypothesis's strategies and settings at import time:
        every attribute, call and combination is itself."""

        def __getattr__(self, name: str) -> "_Inert":
            return self

        def __call__(self, *args: object, **kwargs: object) -> "_Inert":
            return self

        def __or__(self, other: object) -> "_Inert":
            return self

        __ror__ = __or__

    st = HealthCheck = _Inert()  # type: ignore[assignment]

    def assume(condition: object) -> bool:  # type: ignore[misc]
        return True

    def settings(*args: object, **kwargs: object) -> Callable[[Any], Any]:  # type: ignore[misc]
        return lambda fn: fn

    def given(*args: object, **kwargs: object) -> Callable[[Any], Any]:  # type: ignore[misc]
        def skipped(fn: Callable[..., Any]) -> Callable[[], None]:
            def test() -> None:
                pytest.skip(NO_HYPOTHESIS)
            test.__name__, test.__doc__ = fn.__name__, fn.__doc__
            return test
        return skipped
