"""GroupSet: thousands of receive-only memberships on one port.

Linux caps memberships per socket (``net.ipv4.igmp_max_memberships``,
default 20) and a join's cost grows with the memberships already on its
socket; open-file limits stop one-socket-per-group designs.  A GroupSet
spreads its memberships over as many sockets as it needs, a few per socket
(the group of each datagram is read from its destination address), raises
the soft file limit when it must (never above the hard limit), keeps
cross-talk off, and watches all its sockets with one event set.  Joins and
leaves are C loops with the GIL released; leaves and close go newest first,
the kernel's cheap end.  Every membership keeps statistics (``stats()``).
"""
from __future__ import annotations

import math
import os
import socket as _stdsocket
import sys
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

from . import _core, errors
from .constants import JL_RECEIVER_ONLY

__all__ = ["GroupSet", "GroupResult", "GroupStats", "Member"]

# A membership: a group, or (group, source) for a source-specific one.
Member = Union[str, Tuple[str, Optional[str]]]

DEFAULT_PER_SOCKET = 20     # keeps the kernel's per-socket list walks short
# The most memberships one socket may hold, per OS: per_socket's upper bound.
# XNU: IP_MAX_MEMBERSHIPS and IPV6_MAX_MEMBERSHIPS, 4095 (netinet/in.h,
# netinet6/in6.h); a join past it fails with ETOOMANYREFS.
_PER_SOCKET_MAX = {"darwin": 4095}
_PER_SOCKET_MAX_ELSEWHERE = 4096
# How many new sockets the soft descriptor limit had plenty of room for when
# last read (GroupSet._raise_file_limit): smaller batches skip the check.
_fd_plenty = 0


class GroupResult(NamedTuple):
    """What a batch join or leave did: the members it did (in order) and,
    for each it could not, the mpoint exception that says why."""

    done: List[Member]
    failed: Dict[Member, OSError]

    @property
    def joined(self) -> List[Member]:
        return self.done

    @property
    def left(self) -> List[Member]:
        return self.done


class GroupStats(NamedTuple):
    """One membership's counters.  Times are ns since the epoch (the clock
    of the kernel's receive timestamps); ``join_delay_ns`` is RFC 3918's
    group join delay: first datagram minus join, None before the first.
    Sequence counts come from payloads that start with mpoint's header
    (b"mpSQ" + 64-bit big-endian number; ``sequence_header``)."""

    datagrams: int
    bytes: int
    joined_ns: int
    first_ns: Optional[int]
    last_ns: Optional[int]
    join_delay_ns: Optional[int]
    sequenced: int
    gaps: int
    duplicates: int
    reordered: int


def sequence_header(seq: int) -> bytes:
    """The 12-byte header that makes a GroupSet count gaps, duplicates and
    reordering; put it at the start of each datagram's payload."""
    return b"mpSQ" + seq.to_bytes(8, "big")


def _per_socket_max(platform: str) -> int:
    """The largest per_socket a GroupSet accepts on ``platform``."""
    return _PER_SOCKET_MAX.get(platform, _PER_SOCKET_MAX_ELSEWHERE)


def _kernel_per_socket(family: int, platform: str = sys.platform) -> int:
    """How many memberships one socket holds by default on ``platform``:
    never more than the kernel's limit (_per_socket_max)."""
    if platform == "win32":
        return 1                              # WSAJoinLeaf: one group per socket
    if platform.startswith("linux") and family == _stdsocket.AF_INET:
        try:
            with open("/proc/sys/net/ipv4/igmp_max_memberships") as f:
                return max(1, min(DEFAULT_PER_SOCKET, int(f.read())))
        except (OSError, ValueError):
            pass
    return min(DEFAULT_PER_SOCKET, _per_socket_max(platform))


def _key(group: str, source: Optional[str]) -> Member:
    return group if source is None else (group, source)


class GroupSet:
    """Receive-only memberships of many groups on ``port`` and one
    ``interface`` (index, name or address; None: the system's choice).

    ``per_socket``: memberships per socket (default 20, less where Linux's
    igmp_max_memberships is lower; 1 on Windows); at most 4095 on macOS
    (XNU's IP_MAX_MEMBERSHIPS), 4096 elsewhere.  Each datagram's destination
    group is checked in C: a shard reports only its own groups' datagrams,
    whatever the kernel delivers to it.

    ``shared_receiver=True`` (Linux): the sockets holding the memberships
    stay unbound and one more socket receives every group for them.  The
    kernel's work per datagram then stays the same however many sockets the
    set holds (with one socket per 20 groups bound to the port it tests
    every one of them: at 10,000 groups that costs tens of microseconds per
    datagram).  The price: one receive buffer (as large as
    net.core.rmem_max allows) absorbs bursts for the whole set.  Elsewhere
    WSAEOPNOTSUPP: without IP_MULTICAST_ALL no socket can be told to hear
    every group on its port."""

    def __init__(self, port: int, *, family: int = _stdsocket.AF_INET,
                 interface: Union[None, int, str] = None,
                 per_socket: Optional[int] = None, shared_receiver: bool = False) -> None:
        if family not in (_stdsocket.AF_INET, _stdsocket.AF_INET6):
            raise errors.from_code("WSAEAFNOSUPPORT", "GroupSet")
        most = _per_socket_max(sys.platform)
        if per_socket is None:
            per_socket = _kernel_per_socket(family)
        elif isinstance(per_socket, bool) or not isinstance(per_socket, int) \
                or not 1 <= per_socket <= most:
            raise ValueError(f"per_socket must be an int in 1..{most} here")
        if not isinstance(shared_receiver, bool):
            raise TypeError("shared_receiver must be a bool")
        self._per_socket = per_socket
        self._core: Any = _core.GroupSetCore(int(family), port, _core.interface_index(interface),
                                             per_socket, bool(shared_receiver))
        self.shared_receiver = bool(shared_receiver)
        self.family = family
        self.port = int(port)

    # -- joining and leaving --------------------------------------------------
    def join(self, group: str, source: Optional[str] = None,
             flags: int = JL_RECEIVER_ONLY) -> None:
        """Joins one group (source-specific with ``source``); raises its error."""
        if flags != JL_RECEIVER_ONLY:
            raise errors.from_code("WSAEINVAL", "GroupSet.join",
                                   "a group set only receives: flags must be JL_RECEIVER_ONLY")
        result = self.join_many([_key(group, source)])
        if result.failed:
            raise next(iter(result.failed.values()))

    def join_many(self, groups: Iterable[Member]) -> GroupResult:
        """Joins every member; a failure part-way leaves the others joined
        and is reported per member (the set stays consistent)."""
        members = groups if isinstance(groups, list) else list(groups)
        self._raise_file_limit(len(members))
        keys, codes = self._core.join(members)
        return self._result(keys, codes, "GroupSet.join_many")

    def leave(self, group: str, source: Optional[str] = None) -> None:
        """Leaves one membership; WSAENOTCONN if it is not one."""
        result = self.leave_many([_key(group, source)])
        if result.failed:
            raise next(iter(result.failed.values()))

    def leave_many(self, groups: Iterable[Member]) -> GroupResult:
        """Leaves every member given, newest membership first."""
        members = groups if isinstance(groups, list) else list(groups)
        keys, codes = self._core.leave(members)
        return self._result(keys, codes, "GroupSet.leave_many")

    def _result(self, keys: List[Member], codes: Optional[List[Any]], call: str) -> GroupResult:
        if codes is None:                                # every one succeeded
            return GroupResult(keys, {})
        done: List[Member] = []
        failed: Dict[Member, OSError] = {}
        # Members a close() from another thread stopped the batch before.
        stopped = errors.lookup("WSAENOTSOCK") if self._core.closed else None
        for key, code in zip(keys, codes):
            if code == 0:
                done.append(key)
            elif isinstance(code, OSError):
                failed[key] = code
            elif stopped is not None and errors.lookup(code) is stopped:
                failed[key] = errors.from_code(code, call, f"{key}: the set was closed")
            else:
                failed[key] = errors.from_code(code, call, f"{key}")
        return GroupResult(done, failed)

    def _raise_file_limit(self, adding: int) -> None:
        """Makes room for the sockets ``adding`` more members may need."""
        global _fd_plenty
        if adding // self._per_socket + 2 <= _fd_plenty:
            return                    # the soft limit had room for more, last time
        try:
            import resource
        except ImportError:           # Windows: no descriptor limit of this kind
            _fd_plenty = sys.maxsize
            return
        sockets = math.ceil((len(self) + adding) / self._per_socket) - self.sockets + 1
        if sockets <= 0:
            return
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY or sockets + 64 < soft // 2:
            # Plenty: skip counting descriptors, now and for batches this size.
            _fd_plenty = sys.maxsize if soft == resource.RLIM_INFINITY else soft // 2 - 64
            return
        try:
            in_use = len(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd")
                                    else "/dev/fd"))
        except OSError:
            in_use = soft
        need = in_use + sockets + 16
        if soft != resource.RLIM_INFINITY and need > soft:
            target = need if hard == resource.RLIM_INFINITY else min(need, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))

    # -- receiving ---------------------------------------------------------------
    def recv_batch(self, batch: "_core.RecvBatch", timeout: Optional[float] = None) -> int:
        """Receives from every member with data into ``batch`` (a metadata
        batch: each datagram's ``.group`` says which member it came to) and
        counts each in that member's statistics.  Returns how many arrived:
        0 when none did within ``timeout`` seconds (None: wait forever)."""
        return int(self._core.recv(batch, timeout))

    def stats(self) -> Dict[Member, GroupStats]:
        """A snapshot of every membership's counters; receiving goes on."""
        out: Dict[Member, GroupStats] = {}
        for group, source, raw in self._core.members():
            datagrams, nbytes, joined, first, last, sequenced, gaps, dups, reord = raw
            out[_key(group, source)] = GroupStats(
                datagrams, nbytes, joined, first or None, last or None,
                first - joined if first else None, sequenced, gaps, dups, reord)
        return out

    # -- the set ---------------------------------------------------------------------
    @property
    def sockets(self) -> int:
        """How many sockets hold the memberships."""
        return int(self._core.sockets())

    @property
    def inherited(self) -> bool:
        """True in a forked child for a set its parent made: there every
        call but close() raises RuntimeError (the sockets and memberships
        are the parent's), and close() changes nothing in the parent."""
        return bool(self._core.inherited)

    def __len__(self) -> int:
        return int(self._core.size())

    def __iter__(self) -> Iterator[Member]:
        """The members, oldest first."""
        return iter([_key(g, s) for g, s, _ in self._core.members()])

    def __contains__(self, member: object) -> bool:
        try:
            return member in set(self)
        except TypeError:
            return False

    def close(self) -> None:
        """Leaves every group (newest first) and closes the sockets; twice is
        fine.  Any thread may close the set while another uses it: close()
        returns at once, every later call raises WSAENOTSOCK, a
        ``recv_batch`` in progress ends within 100 ms (``timeout=None``
        too) with WSAENOTSOCK, a ``join_many``/``leave_many`` in progress
        stops before its next member and reports it and the rest failed
        with WSAENOTSOCK; the groups are left and the sockets closed when
        the last such call returns."""
        self._core.close()

    def __enter__(self) -> "GroupSet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        try:
            return f"<GroupSet port={self.port} members={len(self)} sockets={self.sockets}>"
        except OSError:
            return f"<GroupSet port={self.port} closed>"
        except RuntimeError:
            return f"<GroupSet port={self.port} inherited>"
