"""Unit tests for mpoint.lab.netns.

Safety contract: every check that touches the network runs in a SUBPROCESS that first
calls ``isolate()``; the pytest process itself is never moved and never sends or
joins multicast.  The subprocess prints one JSON object of facts (or ``{"skip": why}``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("network namespaces (mpoint.lab.netns) exist only on Linux", allow_module_level=True)

import mpoint.lab.netns  # noqa: E402  (the installed module, loaded by file in children)

NETNS_PATH = Path(mpoint.lab.netns.__file__)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="network namespaces are Linux-only"
)

# Runs before each body inside the child.  ``ISOLATE`` is replaced per test so a
# body can prepare (e.g. drop privileges) before isolating.
PRELUDE = r'''
import ctypes, errno, importlib.util, json, os, socket, struct, sys, threading

# _netns is stdlib-only: load it by path so these tests do not depend on the
# package's compiled extension being built.
_spec = importlib.util.spec_from_file_location("_netns", NETNS_PATH)
_netns = importlib.util.module_from_spec(_spec)
sys.modules["_netns"] = _netns
_spec.loader.exec_module(_netns)

facts = {}
SIOCGIFFLAGS = 0x8913
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)

def do_isolate(**kw):
    try:
        return _netns.isolate(**kw)
    except _netns.IsolationError as exc:
        print(json.dumps({"skip": str(exc)}))
        sys.exit(0)

def if_flags(name):
    import fcntl
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", name.encode(), 0)
        return struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]

def recv_payload(sock, payload, timeout=2.0):
    """True if `payload` arrives within a bounded number of reads."""
    sock.settimeout(timeout)
    for _ in range(20):
        try:
            data, _ = sock.recvfrom(2048)
        except socket.timeout:
            return False
        if data == payload:
            return True
    return False

def v4_receiver(group, ifindex, port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)  # only groups joined on ifindex
    s.bind(("0.0.0.0", port))
    mreqn = socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    return s

def v4_send(group, port, if_addr, payload):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(if_addr))
        for _ in range(3):
            s.sendto(payload, (group, port))

def v6_receiver(group, ifindex):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", 0))
    mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    return s

def v6_send(group, port, ifindex, payload):
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, struct.pack("@I", ifindex))
        for _ in range(3):
            s.sendto(payload, (group, port))
'''


def run_isolated(body: str) -> Dict[str, Any]:
    """Run PRELUDE+body in a fresh interpreter; skip the test if isolation is impossible."""
    code = f"NETNS_PATH = {str(NETNS_PATH)!r}\n" + PRELUDE + textwrap.dedent(body)
    code += "\nprint(json.dumps(facts))\n"
    env = {k: v for k, v in os.environ.items() if k != "MPOINT_NETNS"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd="/", env=env, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, f"child failed:\n{proc.stdout}\n{proc.stderr}"
    result: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(f"isolation impossible: {result['skip']}")
    return result


def test_isolate_creates_private_loopback_only_namespace() -> None:
    facts = run_isolated(
        """
        before = os.readlink("/proc/self/ns/net")
        iso = do_isolate()
        facts.update(
            before=before, after=os.readlink("/proc/self/ns/net"), iso_host=iso.host_netns,
            iso_netns=iso.netns, env=os.environ.get("MPOINT_NETNS"),
            ifaces=[n for _, n in socket.if_nameindex()], iso_ifaces=list(iso.interfaces),
            lo_flags=if_flags("lo"), cached=_netns.isolate() is iso,
            current=_netns.current() is iso,
            same_ns_after_second=os.readlink("/proc/self/ns/net") == iso.netns,
            userns=iso.user_namespace, sysctls=list(iso.sysctls),
        )
        """
    )
    assert facts["before"] == facts["iso_host"] == os.readlink("/proc/self/ns/net")
    assert facts["after"] == facts["iso_netns"] == facts["env"]
    assert facts["after"] != facts["before"]
    assert facts["ifaces"] == facts["iso_ifaces"] == ["lo"]
    assert facts["lo_flags"] & 0x1, "lo not UP"
    assert facts["lo_flags"] & 0x1000, "lo not MULTICAST"
    assert facts["cached"] and facts["current"] and facts["same_ns_after_second"]


def test_ipv4_multicast_on_loopback() -> None:
    facts = run_isolated(
        """
        do_isolate()
        lo = socket.if_nametoindex("lo")
        rx = v4_receiver("239.1.2.3", lo)
        v4_send("239.1.2.3", rx.getsockname()[1], "127.0.0.1", b"hello-v4")
        facts["received"] = recv_payload(rx, b"hello-v4")
        """
    )
    assert facts["received"]


def test_ipv6_multicast_on_loopback() -> None:
    facts = run_isolated(
        """
        iso = do_isolate()
        facts["ipv6"] = iso.ipv6
        if iso.ipv6:
            lo = socket.if_nametoindex("lo")
            rx = v6_receiver("ff15::1:2", lo)
            v6_send("ff15::1:2", rx.getsockname()[1], lo, b"hello-v6")
            facts["received"] = recv_payload(rx, b"hello-v6")
        """
    )
    if not facts["ipv6"]:
        pytest.skip("IPv6 unavailable inside the namespace")
    assert facts["received"]


def test_veth_pair_ipv4_delivers_only_on_joined_interface() -> None:
    facts = run_isolated(
        """
        do_isolate()
        a, b = _netns.add_veth_pair("mpt0", "mpt1", "198.51.100.1", "198.51.100.2")
        lo = socket.if_nametoindex("lo")
        rx_b = v4_receiver("239.1.2.4", b)
        port = rx_b.getsockname()[1]
        rx_lo = v4_receiver("239.1.2.4", lo, port)
        v4_send("239.1.2.4", port, "198.51.100.1", b"over-veth")
        facts.update(
            indexes=[a, b], names=[socket.if_indextoname(a), socket.if_indextoname(b)],
            flags=[if_flags("mpt0"), if_flags("mpt1")],
            on_b=recv_payload(rx_b, b"over-veth"),
            on_lo=recv_payload(rx_lo, b"over-veth", timeout=0.5),
        )
        """
    )
    assert facts["names"] == ["mpt0", "mpt1"]
    assert all(f & 0x1 and f & 0x1000 for f in facts["flags"])
    assert facts["on_b"], "datagram sent via interface a did not reach the receiver joined on b"
    assert not facts["on_lo"], "datagram leaked to the receiver joined on lo"


def test_veth_pair_ipv6() -> None:
    facts = run_isolated(
        """
        iso = do_isolate()
        facts["ipv6"] = iso.ipv6
        if iso.ipv6:
            a, b = _netns.add_veth_pair("mpt0", "mpt1", "192.0.2.1", "192.0.2.2",
                                        addr6_a="2001:db8::1", addr6_b="2001:db8::2")
            rx = v6_receiver("ff15::1:3", b)
            v6_send("ff15::1:3", rx.getsockname()[1], a, b"v6-veth")
            facts["received"] = recv_payload(rx, b"v6-veth")
        """
    )
    if not facts["ipv6"]:
        pytest.skip("IPv6 unavailable inside the namespace")
    assert facts["received"]


def test_add_veth_pair_validates() -> None:
    facts = run_isolated(
        """
        try:
            _netns.add_veth_pair("mpt0", "mpt1", "198.51.100.1", "198.51.100.2")
        except _netns.IsolationError:
            facts["needs_isolation"] = True
        do_isolate()
        rejected = []
        for args, kw in [(("10.0.0.1", "198.51.100.2"), {}), (("198.51.100.1", "8.8.8.8"), {}),
                         (("192.0.2.1", "192.0.2.2"), {"addr6_a": "fd00::1"})]:
            try:
                _netns.add_veth_pair("mpt0", "mpt1", *args, **kw)
            except ValueError:
                rejected.append(True)
        facts["rejected"] = rejected
        facts["ifaces"] = [n for _, n in socket.if_nameindex()]
        """
    )
    assert facts.get("needs_isolation")
    assert facts["rejected"] == [True, True, True]
    assert facts["ifaces"] == ["lo"]


def test_link_wait_refuses_a_link_that_carries_nothing() -> None:
    """add_veth_pair returns only once frames cross both ways; a pair whose ends
    are down never does, and the bounded wait says so instead of hanging."""
    facts = run_isolated(
        """
        import time
        do_isolate()
        with _netns._Rtnl() as nl:
            nl.add_veth("mpt0", "mpt1")  # created down
        a, b = socket.if_nametoindex("mpt0"), socket.if_nametoindex("mpt1")
        start = time.monotonic()
        try:
            _netns._wait_carries(a, b)
        except _netns.IsolationError as exc:
            facts["error"] = str(exc)
        facts["waited"] = time.monotonic() - start
        """
    )
    assert "carried no frame" in facts["error"]
    assert facts["waited"] < 10


def test_refuses_multithreaded_process() -> None:
    facts = run_isolated(
        """
        stop = threading.Event()
        t = threading.Thread(target=stop.wait)
        t.start()
        before = os.readlink("/proc/self/ns/net")
        try:
            _netns.isolate()
            facts["refused"] = False
        except _netns.IsolationError as exc:
            facts["refused"], facts["reason"] = True, str(exc)
        facts["unchanged"] = os.readlink("/proc/self/ns/net") == before
        facts["current"] = _netns.current() is None
        stop.set()
        t.join()
        """
    )
    assert facts["refused"] and facts["unchanged"] and facts["current"]
    assert "single-threaded" in facts["reason"]


def test_require_isolation_refuses_non_linux() -> None:
    facts = run_isolated(
        """
        before = os.readlink("/proc/self/ns/net")
        sys.platform = "darwin"
        try:
            _netns.require_isolation()
        except _netns.IsolationError as exc:
            facts["reason"] = str(exc)
        facts["unchanged"] = os.readlink("/proc/self/ns/net") == before
        """
    )
    assert "only on Linux" in facts["reason"]
    assert facts["unchanged"]


def _uid_mapped(uid: int) -> bool:
    """Whether this user namespace has ``uid`` (the suite's own has only 0)."""
    with open("/proc/self/uid_map") as f:
        return any(int(inner) <= uid < int(inner) + int(count)
                   for inner, _, count in (line.split() for line in f))


@pytest.mark.skipif(os.geteuid() != 0 or not _uid_mapped(65534),
                    reason="needs real root with uid 65534 to drop to")
def test_rootless_path_when_dropping_root() -> None:
    facts = run_isolated(
        """
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: keep /proc/self/*_map ours
        iso = do_isolate()
        lo = socket.if_nametoindex("lo")
        rx = v4_receiver("239.1.2.5", lo)
        v4_send("239.1.2.5", rx.getsockname()[1], "127.0.0.1", b"rootless")
        received = recv_payload(rx, b"rootless")
        facts.update(userns=iso.user_namespace, uid=os.getuid(), received=received)
        """
    )
    assert facts["userns"] and facts["uid"] == 0 and facts["received"]


# Simulates "user namespaces disabled" without touching the host: inside a throwaway
# user namespace (where we are root) user.max_user_namespaces=0 is a per-userns limit.
NO_NESTED_USERNS = """
uid, gid = os.getuid(), os.getgid()
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:
    print(json.dumps({"skip": "cannot create a user namespace to simulate the fallback"}))
    sys.exit(0)
for path, value in (("/proc/self/setgroups", "deny"),
                    ("/proc/self/uid_map", f"0 {uid} 1"),
                    ("/proc/self/gid_map", f"0 {gid} 1"),
                    ("/proc/sys/user/max_user_namespaces", "0")):
    with open(path, "w") as f:
        f.write(value)
"""


def test_falls_back_to_plain_netns_as_root_when_userns_unavailable() -> None:
    facts = run_isolated(
        NO_NESTED_USERNS
        + """
iso = do_isolate()
lo = socket.if_nametoindex("lo")
rx = v4_receiver("239.1.2.6", lo)
v4_send("239.1.2.6", rx.getsockname()[1], "127.0.0.1", b"fallback")
received = recv_payload(rx, b"fallback")
facts.update(userns=iso.user_namespace, changed=iso.netns != iso.host_netns, received=received)
"""
    )
    assert facts["userns"] is False and facts["changed"] and facts["received"]


def test_non_root_without_userns_gets_clear_error() -> None:
    facts = run_isolated(
        NO_NESTED_USERNS
        + """
os.geteuid = lambda: 1000  # pretend to be unprivileged: no CLONE_NEWNET fallback allowed
before = os.readlink("/proc/self/ns/net")
try:
    _netns.isolate()
except _netns.IsolationError as exc:
    facts["reason"] = str(exc)
facts.update(unchanged=os.readlink("/proc/self/ns/net") == before, current=_netns.current() is None)
"""
    )
    assert "user.max_user_namespaces" in facts["reason"]
    assert facts["unchanged"] and facts["current"]



def test_renew_gives_a_fresh_multicast_ready_namespace() -> None:
    """renew(): refused before isolate(); then a namespace that is neither the
    host's nor the last one, set up as isolate() sets one up (lo up, IPv4 and
    IPv6 multicast delivered, limits raised), where a group still joined in
    the last one is not joined; refused while a second thread runs."""
    facts = run_isolated(
        """
        import time
        try:
            _netns.renew()
            facts["before_isolate"] = "allowed"
        except _netns.IsolationError as exc:
            facts["before_isolate"] = str(exc)
        iso = do_isolate()
        old = v4_receiver("239.7.7.7", socket.if_nametoindex("lo"))
        new = _netns.renew()
        here = os.readlink("/proc/self/ns/net")
        with open("/proc/net/igmp") as f:
            stale = "070707EF" in f.read()
        lo = socket.if_nametoindex("lo")
        rx = v4_receiver("239.7.7.8", lo)
        v4_send("239.7.7.8", rx.getsockname()[1], "127.0.0.1", b"renewed")
        v6 = None
        if new.ipv6:
            rx6 = v6_receiver("ff15::7:8", lo)
            v6_send("ff15::7:8", rx6.getsockname()[1], lo, b"renewed6")
            v6 = recv_payload(rx6, b"renewed6")
        t = threading.Thread(target=time.sleep, args=(0.5,))
        t.start()
        try:
            _netns.renew()
            facts["threaded"] = "allowed"
        except _netns.IsolationError as exc:
            facts["threaded"] = str(exc)
        t.join()
        facts.update(
            host=iso.host_netns, first=iso.netns, here=here, new=new.netns,
            env=os.environ.get("MPOINT_NETNS"), current=_netns.current() is new,
            host_kept=new.host_netns == iso.host_netns, stale=stale,
            v4=recv_payload(rx, b"renewed"), v6=v6, lo_flags=if_flags("lo"),
            sysctls=list(new.sysctls), ipv6=new.ipv6,
        )
        old.close()
        """
    )
    assert "isolate() first" in facts["before_isolate"]
    assert facts["here"] == facts["new"] == facts["env"]
    assert facts["new"] not in (facts["host"], facts["first"])
    assert facts["host"] == os.readlink("/proc/self/ns/net") and facts["host_kept"]
    assert facts["current"] and not facts["stale"]
    assert facts["lo_flags"] & 0x1 and facts["lo_flags"] & 0x1000
    assert facts["v4"] is True
    assert facts["v6"] is (True if facts["ipv6"] else None)
    assert "net.ipv4.igmp_max_memberships" in facts["sysctls"]
    assert "single-threaded" in facts["threaded"]
