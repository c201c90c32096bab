"""Hard network-safety guard: run multicast code only in a private network namespace.

Contract: every test, demo or benchmark that sends or joins multicast first calls
``isolate()`` (or ``require_isolation()``).  It moves the *current, single-threaded*
process into a fresh Linux network namespace that the process created itself
(rootless via a user namespace, or as plain root), configures ``lo`` for IPv4/IPv6
multicast over rtnetlink (no external binaries), and returns an ``Isolation``
record.  It either succeeds completely or raises ``IsolationError``; it never
falls back to the host's interfaces.  Child processes inherit the namespace and
see its identity in the ``MPOINT_NETNS`` environment variable.
"""
from __future__ import annotations

import ctypes
import dataclasses
import errno
import ipaddress
import os
import socket
import struct
import sys
import threading
import time
from typing import Callable, Iterable, List, Optional, Tuple

__all__ = [
    "IsolationError",
    "Isolation",
    "isolate",
    "current",
    "require_isolation",
    "renew",
    "add_veth_pair",
]

ENV_VAR = "MPOINT_NETNS"

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h)
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
IFF_UP, IFF_MULTICAST = 0x1, 0x1000
IFLA_IFNAME, IFLA_LINKINFO = 3, 18
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_PREFSRC = 1, 4, 7
RT_TABLE_MAIN, RT_TABLE_LOCAL = 254, 255
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254
RTN_UNICAST, RTN_LOCAL = 1, 2

# Raised inside the namespace only: every net.* sysctl visible in a non-initial
# netns is per-netns (global ones are hidden there), so these never touch the host.
_MANY_GROUPS_SYSCTLS = (
    ("net.ipv4.igmp_max_memberships", "100000"),
    ("net.ipv4.igmp_max_msf", "10000"),
    ("net.core.optmem_max", "16777216"),
)

_DOC_NETS_V4 = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
_DOC_NET_V6 = ipaddress.IPv6Network("2001:db8::/32")


class IsolationError(RuntimeError):
    """Network isolation is impossible (or was lost); the message says why."""


@dataclasses.dataclass(frozen=True)
class Isolation:
    host_netns: str  # e.g. "net:[4026531840]", the namespace we left
    netns: str  # the private namespace we are in now
    user_namespace: bool  # True: rootless (CLONE_NEWUSER); False: plain root
    ipv6: bool  # ff00::/8 is routed locally via lo
    interfaces: Tuple[str, ...]  # interface names right after setup (just "lo")
    sysctls: Tuple[str, ...] = ()  # limits successfully raised inside the netns


_cache: Optional[Isolation] = None


def current() -> Optional[Isolation]:
    """The isolation this process performed, or None."""
    return _cache


def require_isolation(*, many_groups: bool = False, privileged: bool = False) -> Isolation:
    """``isolate()``, with a clear refusal on platforms without network namespaces."""
    if not sys.platform.startswith("linux"):
        raise IsolationError(
            "mpoint's network tools run only inside a private network namespace, "
            "which exists only on Linux; refusing to touch this host's interfaces"
        )
    return isolate(many_groups=many_groups, privileged=privileged)


def for_benchmark(tool: str) -> Optional[Tuple[Isolation, Optional[int]]]:
    """What both benchmarks need before they measure: a privileged private
    namespace (socket buffers beyond net.core.rmem_max) and the descriptor
    limit raised to the hard limit.  Returns (isolation, descriptor limit or
    None if unlimited), or None after printing why ``tool`` refuses to run."""
    try:
        iso = require_isolation(many_groups=True, privileged=True)
    except IsolationError as exc:
        print(f"{tool}: refusing to run: {exc}", file=sys.stderr)
        return None
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return iso, None if soft == resource.RLIM_INFINITY else soft


def isolate(*, many_groups: bool = False, privileged: bool = False) -> Isolation:
    """Move this process into a fresh, multicast-ready network namespace (idempotent).

    ``many_groups`` is accepted for callers that need thousands of memberships; the
    limits are raised unconditionally because it is cheap and namespace-local.
    ``privileged``: when running as root, make the network namespace alone and keep
    root's capabilities (benchmarks need them for socket buffers beyond
    ``net.core.rmem_max``); otherwise the rootless path is taken as usual.
    """
    global _cache
    if _cache is not None:
        _check_still_inside(_cache)
        return _cache
    if not sys.platform.startswith("linux"):
        raise IsolationError("network namespaces exist only on Linux")
    _check_single_threaded()
    host = _netns_id()
    user_namespace = _unshare_netns(plain_as_root=privileged and os.geteuid() == 0)
    netns = _netns_id()
    if netns == host:
        raise IsolationError(f"unshare() reported success but the netns is still {host}")
    os.environ[ENV_VAR] = netns
    ipv6 = _setup_loopback()
    raised = _raise_limits()
    names = tuple(name for _, name in socket.if_nameindex())
    _cache = Isolation(host, netns, user_namespace, ipv6, names, raised)
    return _cache


def renew() -> Isolation:
    """Replace the private namespace this process made by a fresh one, set up
    as ``isolate()`` sets one up: a kernel state that nothing run before has
    touched (the benchmarks time every case in one).  Only from inside the
    namespace ``isolate()`` made, single-threaded; the old namespace goes away
    once its last socket is closed.  The new one is made by the same
    unshare(CLONE_NEWNET), as a child of the same user namespace: it is never
    the host's."""
    global _cache
    if _cache is None:
        raise IsolationError("renew() needs isolate() first")
    _check_still_inside(_cache)
    # A thread just joined may still be leaving the kernel's task list.
    deadline = time.monotonic() + 1.0
    while (threading.active_count() == 1 and len(os.listdir("/proc/self/task")) > 1
           and time.monotonic() < deadline):
        time.sleep(0.005)
    _check_single_threaded()
    old = _cache.netns
    try:
        _unshare(CLONE_NEWNET)
    except OSError as exc:
        raise IsolationError(f"unshare(CLONE_NEWNET) for a fresh namespace: {exc}") from None
    netns = _netns_id()
    if netns in (old, _cache.host_netns):
        raise IsolationError(f"unshare() reported success but the netns is still {netns}")
    os.environ[ENV_VAR] = netns
    ipv6 = _setup_loopback()
    raised = _raise_limits()
    names = tuple(name for _, name in socket.if_nameindex())
    _cache = dataclasses.replace(_cache, netns=netns, ipv6=ipv6, interfaces=names,
                                 sysctls=raised)
    return _cache


# --- namespace creation ------------------------------------------------------


def _netns_id() -> str:
    return os.readlink("/proc/self/ns/net")


def _check_single_threaded() -> None:
    # CLONE_NEWNET alone moves only the calling thread; CLONE_NEWUSER needs one thread.
    tasks = len(os.listdir("/proc/self/task"))
    if threading.active_count() != 1 or tasks != 1:
        raise IsolationError(
            f"isolate() needs a single-threaded process (threading: "
            f"{threading.active_count()}, kernel tasks: {tasks}); call it before "
            "starting threads or thread pools"
        )


def _check_still_inside(iso: Isolation) -> None:
    if _netns_id() != iso.netns:
        raise IsolationError(f"this thread is outside the private namespace {iso.netns}")


def _unshare(flags: int) -> None:
    """unshare(2); raises OSError."""
    native: Optional[Callable[[int], None]] = getattr(os, "unshare", None)
    if native is not None:
        native(flags)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _unshare_netns(plain_as_root: bool = False) -> bool:
    """Enter a new netns; True if via a new user namespace (rootless path)."""
    uid, gid = os.getuid(), os.getgid()  # outer ids, needed for the maps
    try:
        if plain_as_root:
            raise OSError(errno.EPERM, "a plain network namespace was asked for")
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    except OSError as user_err:
        if user_err.errno not in (errno.EPERM, errno.EINVAL, errno.ENOSPC, errno.EUSERS):
            raise IsolationError(f"unshare(CLONE_NEWUSER|CLONE_NEWNET): {user_err}") from None
        if os.geteuid() != 0:
            raise IsolationError(
                f"cannot create a user+network namespace ({os.strerror(user_err.errno)}) "
                "and not root; user namespaces disabled? check sysctl "
                "kernel.unprivileged_userns_clone / user.max_user_namespaces / "
                "kernel.apparmor_restrict_unprivileged_userns"
            ) from None
        try:
            _unshare(CLONE_NEWNET)
        except OSError as net_err:
            raise IsolationError(
                f"unshare(CLONE_NEWUSER|CLONE_NEWNET): {os.strerror(user_err.errno)}; "
                f"unshare(CLONE_NEWNET) as root: {os.strerror(net_err.errno or 0)} "
                "(seccomp/container policy forbids namespaces?)"
            ) from None
        return False
    try:  # become root of the new user namespace, mapped to our outer ids
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    except OSError as exc:
        raise IsolationError(f"entered a user namespace but cannot map ids: {exc}") from None
    return True


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _raise_limits() -> Tuple[str, ...]:
    """Best effort; returns the sysctls that now hold the requested value."""
    done: List[str] = []
    for name, value in _MANY_GROUPS_SYSCTLS:
        path = "/proc/sys/" + name.replace(".", "/")
        try:
            _write(path, value)
            if _read(path) == value:
                done.append(name)
        except OSError:
            pass
    return tuple(done)


# --- rtnetlink ---------------------------------------------------------------


def _attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _ifname(name: str) -> bytes:
    return _attr(IFLA_IFNAME, name.encode() + b"\0")


def _ifinfomsg(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


class _NetlinkError(IsolationError):
    def __init__(self, what: str, err: int) -> None:
        super().__init__(f"rtnetlink {what}: {os.strerror(err)} (errno {err})")
        self.errno = err


class _Rtnl:
    """A NETLINK_ROUTE socket whose requests must each be ACKed with error 0."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.settimeout(5.0)
        self._sock.bind((0, 0))
        self._seq = 0

    def __enter__(self) -> "_Rtnl":
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def request(self, what: str, msg_type: int, flags: int, body: bytes) -> None:
        self._seq += 1
        flags |= NLM_F_REQUEST | NLM_F_ACK
        header = struct.pack("=IHHII", 16 + len(body), msg_type, flags, self._seq, 0)
        self._sock.send(header + body)
        err = self._wait_ack()
        if err:
            raise _NetlinkError(what, err)

    def _wait_ack(self) -> int:
        for _ in range(100):  # bounded: the kernel answers a request with one ACK
            data = self._sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, off)
                if kind == NLMSG_ERROR and seq == self._seq:
                    return -int(struct.unpack_from("=i", data, off + 16)[0])
                off += max(16, (length + 3) & ~3)
        raise IsolationError("rtnetlink: no ACK received")

    def set_up(self, index: int) -> None:
        """= ip link set <dev> up multicast on"""
        mask = IFF_UP | IFF_MULTICAST
        self.request(f"link {index} up", RTM_NEWLINK, 0, _ifinfomsg(index, mask, mask))

    def add_route(
        self, family: int, dst: str, dst_len: int, oif: int, table: int, scope: int, rtype: int,
        prefsrc: Optional[str] = None,
    ) -> None:
        rtmsg = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, table, RTPROT_BOOT, scope, rtype, 0)
        attrs = _attr(RTA_DST, socket.inet_pton(family, dst))
        attrs += _attr(RTA_OIF, struct.pack("=i", oif))
        if prefsrc is not None:
            attrs += _attr(RTA_PREFSRC, socket.inet_pton(family, prefsrc))
        what = f"route {dst}/{dst_len} table {table}"
        self.request(what, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, rtmsg + attrs)

    def add_address(self, index: int, addr: str, prefix: int) -> None:
        ip = ipaddress.ip_address(addr)
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        flags = IFA_F_NODAD if ip.version == 6 else 0
        ifaddrmsg = struct.pack("=BBBBI", family, prefix, flags, RT_SCOPE_UNIVERSE, index)
        attrs = _attr(IFA_LOCAL, ip.packed) + _attr(IFA_ADDRESS, ip.packed)
        what = f"address {addr}/{prefix}"
        self.request(what, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifaddrmsg + attrs)

    def add_veth(self, name_a: str, name_b: str) -> None:
        peer = _attr(VETH_INFO_PEER, _ifinfomsg() + _ifname(name_b))
        linkinfo = _attr(IFLA_INFO_KIND, b"veth\0") + _attr(IFLA_INFO_DATA, peer)
        body = _ifinfomsg() + _ifname(name_a) + _attr(IFLA_LINKINFO, linkinfo)
        self.request(f"veth {name_a}/{name_b}", RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def _ipv6_present() -> bool:
    if not os.path.exists("/proc/net/if_inet6"):
        return False
    disable = "/proc/sys/net/ipv6/conf/lo/disable_ipv6"
    try:  # our own namespace: enabling IPv6 on its lo affects nothing else
        if _read(disable) != "0":
            _write(disable, "0")
        return _read(disable) == "0"
    except OSError:
        return False


def _setup_loopback() -> bool:
    """lo up+multicast, 224.0.0.0/4 via lo, local ff00::/8 via lo; returns IPv6 success."""
    lo = socket.if_nametoindex("lo")
    with _Rtnl() as nl:
        nl.set_up(lo)
        # src 127.0.0.1: a link-scoped route would otherwise send from 0.0.0.0,
        # which no source-specific join can name.
        nl.add_route(socket.AF_INET, "224.0.0.0", 4, lo, RT_TABLE_MAIN, RT_SCOPE_LINK, RTN_UNICAST,
                     prefsrc="127.0.0.1")
        if not _ipv6_present():
            return False
        try:
            # A plain ff00::/8 route via lo drops packets; a *local* one delivers them.
            nl.add_route(socket.AF_INET6, "ff00::", 8, lo, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL)
        except _NetlinkError as exc:
            if exc.errno == errno.EAFNOSUPPORT:
                return False
            raise
    return True


# --- veth helper for tests ---------------------------------------------------


def _check_doc_v4(addr: str) -> None:
    ip = ipaddress.ip_address(addr)
    if not any(ip in net for net in _DOC_NETS_V4):
        raise ValueError(
            f"{addr} is not in a documentation range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)"
        )


def _check_doc_v6(addr: str) -> None:
    if ipaddress.ip_address(addr) not in _DOC_NET_V6:
        raise ValueError(f"{addr} is not in the documentation range 2001:db8::/32")


def _set_sysctls(settings: Iterable[Tuple[str, str]]) -> None:
    for path, value in settings:
        try:
            _write(path, value)
        except OSError as exc:
            raise IsolationError(f"cannot set {path}={value}: {exc}") from None


def add_veth_pair(
    name_a: str,
    name_b: str,
    addr_a: str,
    addr_b: str,
    prefix: int = 24,
    *,
    addr6_a: Optional[str] = None,
    addr6_b: Optional[str] = None,
    prefix6: int = 64,
) -> Tuple[int, int]:
    """Create veth ``name_a``<->``name_b`` in the private netns; returns their ifindexes.

    Both ends are up with multicast on and carry the given IPv4 documentation
    addresses (optionally 2001:db8::/32 IPv6 ones, DAD off).  Because both ends live
    in one namespace, each end accepts packets whose source is a local address
    (accept_local=1, rp_filter=0), so traffic sent out of a arrives at b and back.
    """
    iso = current()
    if iso is None:
        raise IsolationError("add_veth_pair() requires isolate() first")
    _check_still_inside(iso)
    for addr in (addr_a, addr_b):
        _check_doc_v4(addr)
    if not 0 < prefix <= 32 or not 0 < prefix6 <= 128:
        raise ValueError(f"bad prefix length {prefix} / {prefix6}")
    v6 = [a for a in (addr6_a, addr6_b) if a is not None]
    for addr in v6:
        _check_doc_v6(addr)
    if v6 and not iso.ipv6:
        raise IsolationError("IPv6 addresses requested but IPv6 is unavailable")

    with _Rtnl() as nl:
        nl.add_veth(name_a, name_b)
        index_a, index_b = socket.if_nametoindex(name_a), socket.if_nametoindex(name_b)
        settings = [("/proc/sys/net/ipv4/conf/all/rp_filter", "0")]
        for name in (name_a, name_b):
            conf4 = f"/proc/sys/net/ipv4/conf/{name}/"
            settings += [(conf4 + "rp_filter", "0"), (conf4 + "accept_local", "1")]
            if v6:
                settings.append((f"/proc/sys/net/ipv6/conf/{name}/accept_dad", "0"))
        _set_sysctls(settings)
        for index, addr, addr6 in ((index_a, addr_a, addr6_a), (index_b, addr_b, addr6_b)):
            nl.set_up(index)
            nl.add_address(index, addr, prefix)
            if addr6 is not None:
                nl.add_address(index, addr6, prefix6)
    _wait_carries(index_a, index_b)
    return index_a, index_b


# IEEE 802 "local experimental" EtherType: frames of this type mean nothing to any
# protocol stack, so probing with them changes no IP, IGMP or MLD state.
_PROBE_ETHERTYPE = 0x88B5
_LINK_WAIT_S = 2.0


def _wait_carries(index_a: int, index_b: int) -> None:
    """Return once a frame sent on each end arrives at the other; IsolationError after
    _LINK_WAIT_S.

    Both ends are up and running when rtnetlink ACKs, yet for about a millisecond
    afterwards a veth end can still drop what it sends (the kernel counts them as
    tx_dropped; seen on 6.18), which lost a test's whole datagram burst.  The probe
    uses raw frames so the wait leaves no trace above the link layer.
    """
    deadline = time.monotonic() + _LINK_WAIT_S
    for src, dst in ((index_a, index_b), (index_b, index_a)):
        proto = socket.htons(_PROBE_ETHERTYPE)
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, proto) as rx, \
                socket.socket(socket.AF_PACKET, socket.SOCK_RAW, proto) as tx:
            rx.bind((socket.if_indextoname(dst), _PROBE_ETHERTYPE))
            tag = os.urandom(8)
            frame = b"\xff" * 6 + b"\x02" + bytes(5) + struct.pack("!H", _PROBE_ETHERTYPE) + tag
            src_name = socket.if_indextoname(src)
            while not _probe_arrived(tx, rx, src_name, frame, tag):
                if time.monotonic() >= deadline:
                    raise IsolationError(
                        f"veth link {src}->{dst} carried no frame within {_LINK_WAIT_S} s")


def _probe_arrived(tx: socket.socket, rx: socket.socket, src: str, frame: bytes,
                   tag: bytes) -> bool:
    rx.settimeout(0.005)
    try:
        tx.sendto(frame, (src, _PROBE_ETHERTYPE))
    except OSError:  # e.g. ENETDOWN while an end is not up yet: not carried, retry
        time.sleep(0.005)
        return False
    for _ in range(16):  # bounded: only our probes have this EtherType on this link
        try:
            data = rx.recv(256)
        except socket.timeout:
            return False
        if data[14:22] == tag:
            return True
    return False
