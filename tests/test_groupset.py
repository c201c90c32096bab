"""GroupSet: many memberships on one port, spread over sockets, with
per-group statistics."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from typing import Dict, Iterator, List

import pytest

import mpoint
import support
from mpoint import GroupSet, errors, sequence_header
from support import memberships

V4_LIMIT = "/proc/sys/net/ipv4/igmp_max_memberships"


def groups_v4(n: int, base: int = 0) -> List[str]:
    return [f"239.{40 + (base + i) // 62500}.{(base + i) // 250 % 250}.{(base + i) % 250 + 1}"
            for i in range(n)]


def groups_for(family: int, n: int, base: int = 0) -> List[str]:
    if family == socket.AF_INET:
        return groups_v4(n, base)
    return [f"ff15::4:{(base + i) // 65536:x}:{(base + i) % 65536:x}" for i in range(n)]


@contextmanager
def sysctl(path: str, value: str) -> Iterator[None]:
    """Sets a sysctl of the private namespace for the block."""
    with open(support.needs_proc(path, linux_only=True)) as f:
        saved = f.read()
    with open(path, "w") as f:
        f.write(value)
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(saved)


def receive_all(gs: GroupSet, expected: int, batch: mpoint.RecvBatch) -> List[tuple]:  # type: ignore[type-arg]
    got = []
    for _ in range(expected + 100):               # bounded
        n = gs.recv_batch(batch, 0.5)
        if n == 0:
            break
        got.extend((d.group, bytes(d.data), d.source) for d in batch)
        if len(got) >= expected:
            got.extend(drain_rest(gs, batch))
            break
    return got


def drain_rest(gs: GroupSet, batch: mpoint.RecvBatch) -> List[tuple]:  # type: ignore[type-arg]
    out = []
    while gs.recv_batch(batch, 0.05):
        out.extend((d.group, bytes(d.data), d.source) for d in batch)
    return out


LINUX = sys.platform.startswith("linux")


@pytest.fixture(params=["per-shard receivers", "shared receiver"])
def receiver(request: pytest.FixtureRequest) -> Dict[str, bool]:
    """GroupSet keyword arguments: the receive suite runs in both modes."""
    if request.param == "shared receiver" and not LINUX:
        pytest.skip("a shared receiver needs IP_MULTICAST_ALL (Linux)")
    return {"shared_receiver": request.param == "shared receiver"}


def extra_sockets(receiver: Dict[str, bool]) -> int:
    return 1 if receiver["shared_receiver"] else 0


# Windows: one membership per socket, so 1,000 groups (1,000 sockets); under
# Wine, whose sockets cross-talk, every socket gets every datagram, so one
# group in ten is sent to (the set's own filter must drop the copies).
WINDOWS = sys.platform == "win32"
MANY, EVERY = (1000, 10) if WINDOWS else (5000, 1)


def test_thousands_of_groups_each_receive_only_their_own(port: int, receiver: Dict[str, bool]
                                                        ) -> None:
    groups = groups_v4(MANY)
    per_socket = 1 if WINDOWS else 20
    outsider = "239.39.0.1"
    with GroupSet(port, **receiver) as gs, mpoint.socket() as tx:
        result = gs.join_many(groups)
        assert result.joined == groups and result.failed == {}
        assert len(gs) == MANY and gs.sockets == MANY // per_socket + extra_sockets(receiver)
        sent = groups[::EVERY]
        for g in sent:
            tx.sendto(g.encode(), (g, port))
        tx.sendto(b"not a member", (outsider, port))
        got = receive_all(gs, len(sent), mpoint.RecvBatch(256, 64))
        assert len(got) == len(sent)
        assert all(group == data.decode() for group, data, _ in got)   # no cross-talk
        assert sorted(group for group, _, _ in got) == sorted(sent)
        stats = gs.stats()
        assert all(stats[g].datagrams == 1 and stats[g].bytes == len(g) for g in sent)
        assert sum(stats[g].datagrams for g in groups) == len(sent)


def test_statistics_are_exact(family: int, port: int, receiver: Dict[str, bool]) -> None:
    group = groups_for(family, 1, base=7000)[0]
    sent = [s for s in range(100) if s not in (10, 20)]          # 2 lost
    sent.insert(sent.index(31), 30)                               # 30 twice
    i = sent.index(40)
    sent[i], sent[i + 1] = sent[i + 1], sent[i]                   # 41 before 40
    with GroupSet(port, family=family, **receiver) as gs, mpoint.socket(family) as tx:
        gs.join(group)
        before = gs.stats()[group]
        assert before.datagrams == 0 and before.first_ns is None and before.join_delay_ns is None
        for seq in sent:
            tx.sendto(sequence_header(seq) + b"payload", (group, port))
        tx.sendto(b"no header", (group, port))
        got = receive_all(gs, len(sent) + 1, mpoint.RecvBatch(64, 256))
        assert len(got) == len(sent) + 1
        st = gs.stats()[group]
    assert st.datagrams == 100 and st.bytes == 99 * 19 + 9
    assert st.sequenced == 99
    assert (st.gaps, st.duplicates, st.reordered) == (2, 1, 1)
    assert st.first_ns is not None and st.last_ns is not None and st.first_ns <= st.last_ns
    assert st.join_delay_ns is not None and 0 <= st.join_delay_ns < 10 * 10**9


def test_partial_failure_is_reported_per_group(port: int) -> None:
    good = groups_v4(3, base=9000)
    with GroupSet(port) as gs:
        gs.join(good[0])
        result = gs.join_many([good[1], "192.0.2.1", good[0], ("239.1.1.1", "239.2.2.2"),
                               "ff15::1", good[2]])
        assert result.joined == [good[1], good[2]]
        assert isinstance(result.failed["192.0.2.1"], errors.WSAEADDRNOTAVAIL)
        assert isinstance(result.failed[good[0]], errors.WSAEISCONN)
        assert isinstance(result.failed[("239.1.1.1", "239.2.2.2")], errors.WSAEADDRNOTAVAIL)
        assert isinstance(result.failed["ff15::1"], errors.WSAEAFNOSUPPORT)
        assert list(gs) == good and len(gs) == 3


CHILD = r'''
import json, resource, os, sys, mpoint
from mpoint import GroupSet
port = int(sys.argv[1])
groups = [f"239.60.{i // 250}.{i % 250 + 1}" for i in range(40)]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
BODY
'''


def run_child(body: str, port: int) -> Dict[str, object]:
    code = CHILD.replace("BODY", textwrap.dedent(body))
    proc = subprocess.run([sys.executable, "-c", code, str(port)], capture_output=True,
                          text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.skipif(support.resource is None, reason="RLIMIT_NOFILE is POSIX's")
def test_a_kernel_failure_part_way_leaves_the_set_consistent(port: int) -> None:
    # The child caps its descriptors so that only a few sockets fit.
    out = run_child("""
        tx = mpoint.socket()
        in_use = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 6, in_use + 6))
        gs = GroupSet(port, per_socket=4)
        r = gs.join_many(groups)
        for g in r.joined:
            tx.sendto(b"x", (g, port))
        b = mpoint.RecvBatch(64, 64)
        n = gs.recv_batch(b, 1)
        print(json.dumps({"joined": r.joined, "failed": {g: e.name for g, e in r.failed.items()},
                          "len": len(gs), "received": sorted(d.group for d in b), "n": n}))
    """, port)
    joined, failed = out["joined"], out["failed"]
    assert joined and failed and len(joined) + len(failed) == 40   # type: ignore[arg-type]
    assert joined == [f"239.60.0.{i + 1}" for i in range(len(joined))]   # type: ignore[arg-type]
    assert set(failed.values()) == {"WSAEMFILE"}                   # type: ignore[union-attr]
    assert out["len"] == len(joined) and out["received"] == sorted(joined)  # type: ignore[arg-type]


@pytest.mark.skipif(support.resource is None, reason="RLIMIT_NOFILE is POSIX's")
def test_raises_the_soft_file_limit_never_the_hard(port: int) -> None:
    out = run_child("""
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        gs = GroupSet(port, per_socket=1)
        many = [f"239.61.{i // 250}.{i % 250 + 1}" for i in range(500)]
        r = gs.join_many(many)
        print(json.dumps({"joined": len(r.joined), "sockets": gs.sockets,
                          "soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "hard": hard}))
    """, port)
    assert out["joined"] == 500 and out["sockets"] == 500
    assert 500 < out["soft"] <= out["hard"]                        # type: ignore[operator]


def test_adapts_to_a_lower_kernel_limit(port: int) -> None:
    groups = groups_v4(50, base=12000)
    with sysctl(V4_LIMIT, "5"), GroupSet(port, per_socket=20) as gs:
        result = gs.join_many(groups)
        assert result.failed == {} and len(gs) == 50 and gs.sockets == 10


def test_leave_and_rejoin(family: int, port: int) -> None:
    g1, g2 = groups_for(family, 2, base=13000)
    with GroupSet(port, family=family) as gs, mpoint.socket(family) as tx:
        assert gs.join_many([g1, g2]).failed == {}
        gs.leave(g1)
        assert list(gs) == [g2] and g1 not in set(memberships(family))
        with pytest.raises(errors.WSAENOTCONN):
            gs.leave(g1)
        tx.sendto(b"gone", (g1, port))
        tx.sendto(b"here", (g2, port))
        got = receive_all(gs, 1, mpoint.RecvBatch(8, 64))
        assert [(g, d) for g, d, _ in got] == [(g2, b"here")]
        gs.join(g1)                                    # a new membership, new counters
        tx.sendto(b"back", (g1, port))
        got = receive_all(gs, 1, mpoint.RecvBatch(8, 64))
        assert [(g, d) for g, d, _ in got] == [(g1, b"back")]
        assert gs.stats()[g1].datagrams == 1 and list(gs) == [g2, g1]


def test_leave_many_reports_what_it_left(port: int) -> None:
    groups = groups_v4(100, base=14000)
    with GroupSet(port) as gs:
        gs.join_many(groups)
        result = gs.leave_many(groups[:60] + ["239.39.9.9", groups[0]])
        assert result.left == groups[:60]
        assert set(result.failed) == {"239.39.9.9", groups[0]}
        assert all(isinstance(e, errors.WSAENOTCONN) for e in result.failed.values())
        assert list(gs) == groups[60:]
        assert not set(groups[:60]) & set(memberships(socket.AF_INET))


@pytest.mark.parametrize("order", ["join order", "newest first", "shuffled"])
def test_leave_many_in_any_order(port: int, order: str) -> None:
    # The set leaves newest first whatever the order given: a join-order list
    # is reversed, a newest-first one kept, any other sorted.
    groups = groups_v4(90, base=14500)
    gone = groups[10:70]
    if order == "newest first":
        gone = gone[::-1]
    elif order == "shuffled":
        gone = gone[1::2] + gone[::2]
    with GroupSet(port) as gs:
        gs.join_many(groups)
        result = gs.leave_many(gone)
        assert result.left == gone and not result.failed
        assert list(gs) == groups[:10] + groups[70:]
        assert not set(gone) & set(memberships(socket.AF_INET))
        assert set(groups[:10] + groups[70:]) <= set(memberships(socket.AF_INET))


def test_close_leaves_everything(port: int) -> None:
    groups = groups_v4(300, base=15000)
    gs = GroupSet(port)
    gs.join_many(groups)
    assert set(groups) <= set(memberships(socket.AF_INET))
    gs.close()
    assert not set(groups) & set(memberships(socket.AF_INET))
    with pytest.raises(errors.WSAENOTSOCK):
        len(gs)
    gs.close()                                         # twice is fine


@pytest.mark.real_windows("Wine passes an IPv4 source membership to Linux with source and interface swapped; IPv6 has no MCAST_JOIN_SOURCE_GROUP there")
def test_source_specific_members(family: int, port: int, receiver: Dict[str, bool]) -> None:
    group = groups_for(family, 1, base=16000)[0]
    with mpoint.socket(family) as tx:
        tx.connect((group, port))
        source = tx.getsockname()[0]
        other = "192.0.2.99" if family == socket.AF_INET else "2001:db8::99"
        with GroupSet(port, family=family, **receiver) as gs:
            assert gs.join_many([(group, source)]).failed == {}
            assert gs.join_many([(group, other)]).failed == {}
            tx.send(b"ssm")
            got = receive_all(gs, 1, mpoint.RecvBatch(8, 64))
            assert [(g, d) for g, d, _ in got] == [(group, b"ssm")]
            stats = gs.stats()
            assert stats[(group, source)].datagrams == 1
            assert stats[(group, other)].datagrams == 0


def test_twenty_thousand_groups_with_the_default_kernel_limit(family: int, port: int,
                                                             receiver: Dict[str, bool]) -> None:
    groups = groups_for(family, 20000, base=100000)
    with support.file_limit(1200, raise_soft=False), sysctl(V4_LIMIT, "20"), \
            GroupSet(port, family=family, **receiver) as gs, mpoint.socket(family) as tx:
        assert gs.join_many(groups).failed == {}
        assert len(gs) == 20000 and gs.sockets == 1000 + extra_sockets(receiver)
        for g in groups[::100]:
            tx.sendto(b"x", (g, port))
        got = receive_all(gs, 200, mpoint.RecvBatch(256, 64))
        assert sorted(g for g, _, _ in got) == sorted(groups[::100])
        assert len(gs.leave_many(groups).left) == 20000 and len(gs) == 0


def bound_to(port: int, family: int) -> int:
    """How many UDP sockets of the namespace are bound to port."""
    path = support.needs_proc("/proc/net/udp" if family == socket.AF_INET else "/proc/net/udp6")
    with open(path) as f:
        rows = f.read().splitlines()[1:]
    return sum(int(row.split()[1].rsplit(":", 1)[1], 16) == port for row in rows)


def test_shared_receiver_is_the_only_socket_on_the_port(family: int, port: int) -> None:
    # What makes the kernel's work per datagram independent of the set's
    # size: it tests one socket on the port, not one per 20 groups.
    if not LINUX:
        with pytest.raises(errors.WSAEOPNOTSUPP):
            GroupSet(port, family=family, shared_receiver=True)
        return
    groups = groups_for(family, 200, base=18000)
    with GroupSet(port, family=family, shared_receiver=True) as shared:
        shared.join_many(groups)
        assert shared.sockets == 11 and bound_to(port, family) == 1
    with GroupSet(port, family=family) as sharded:
        sharded.join_many(groups)
        assert sharded.sockets == 10 and bound_to(port, family) == 10


@pytest.mark.skipif(not LINUX, reason="a shared receiver needs IP_MULTICAST_ALL (Linux)")
def test_shared_receiver_drops_the_other_groups_on_its_port(family: int, port: int) -> None:
    # The receiver hears every group joined on the host at its port; the set
    # reports only its own members' datagrams.
    mine, theirs = groups_for(family, 2, base=18500)
    with GroupSet(port, family=family, shared_receiver=True) as gs, \
            mpoint.socket(family) as other, mpoint.socket(family) as tx:
        other.settimeout(5)
        other.join_leaf((theirs, port), flags=mpoint.JL_RECEIVER_ONLY)
        gs.join(mine)
        tx.sendto(b"theirs", (theirs, port))
        tx.sendto(b"mine", (mine, port))
        got = receive_all(gs, 1, mpoint.RecvBatch(8, 64))
        assert [(g, d) for g, d, _ in got] == [(mine, b"mine")]
        assert other.recv(64) == b"theirs"
        assert gs.stats()[mine].datagrams == 1


def test_bad_input(port: int) -> None:
    with pytest.raises(errors.WSAEADDRNOTAVAIL):
        GroupSet(0)
    with pytest.raises(errors.WSAEADDRNOTAVAIL):
        GroupSet(70000)
    with pytest.raises(TypeError):
        GroupSet("5000")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        GroupSet(port, per_socket=0)
    with pytest.raises(TypeError):
        GroupSet(port, shared_receiver="yes")  # type: ignore[arg-type]
    with pytest.raises(errors.WSAEAFNOSUPPORT):
        GroupSet(port, family=support.NOT_IP)
    with pytest.raises(errors.WSAEADDRNOTAVAIL):
        GroupSet(port, interface="nosuch0")
    with GroupSet(port) as gs:
        with pytest.raises(errors.WSAEINVAL):
            gs.join("239.1.1.1", flags=mpoint.JL_BOTH)
        with pytest.raises(TypeError):
            gs.join_many([5])                     # type: ignore[list-item]
        with pytest.raises(TypeError):
            gs.join_many([("239.1.1.1", "a", "b")])  # type: ignore[list-item]
        with pytest.raises(errors.WSAEINVAL):
            gs.recv_batch(mpoint.RecvBatch(metadata=False), 0)
        with pytest.raises(ValueError):
            gs.recv_batch(mpoint.RecvBatch(), -1)
        assert gs.recv_batch(mpoint.RecvBatch(), 0) == 0
        assert len(gs) == 0


def test_batch_that_shrinks_while_it_is_parsed(port: int) -> None:
    """A member's __repr__ (run for its error message) empties the batch part-way:
    the call fails cleanly and nothing is joined (the parse must index the list
    as it is, not as it was)."""
    batch: List[str] = []

    class Shrinking(str):
        def __repr__(self) -> str:
            batch.clear()
            return "Shrinking()"

    batch += [Shrinking("239.1.1.\u00e9")] + groups_v4(40, base=17100)
    with GroupSet(port) as gs:
        with pytest.raises(IndexError):
            gs.join_many(batch)
        assert len(gs) == 0 and batch == []
        assert gs.join_many(groups_v4(3, base=17100)).failed == {}



# -- per-OS limits and the destination-group filter (issue 15, macOS) ----------------

@pytest.mark.offline
def test_shards_stay_within_xnus_membership_cap() -> None:
    # XNU: IP_MAX_MEMBERSHIPS = IPV6_MAX_MEMBERSHIPS = 4095 per socket.
    from mpoint import groupset
    assert groupset._per_socket_max("darwin") == 4095
    for family in (socket.AF_INET, socket.AF_INET6):
        assert 1 <= groupset._kernel_per_socket(family, "darwin") <= 4095
    assert groupset._per_socket_max("linux") == 4096


def test_a_per_socket_above_the_kernels_cap_is_refused_on_macos(
        port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(ValueError, match="1..4095"):
        GroupSet(port, per_socket=4096)
    GroupSet(port, per_socket=4095).close()


IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)        # linux/in.h
IPV6_MULTICAST_ALL = getattr(socket, "IPV6_MULTICAST_ALL", 29)    # linux/in6.h


def sockets_on_port(port: int) -> List[socket.socket]:
    """Duplicates of this process's UDP sockets bound to port."""
    found = []
    for name in os.listdir(support.needs_proc("/proc/self/fd")):
        try:
            s = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        if s.type == socket.SOCK_DGRAM and s.getsockname()[1] == port:
            found.append(s)
        else:
            s.close()
    return found


@pytest.mark.skipif(not LINUX, reason="imitating a stack without per-socket filtering "
                                      "needs IP_MULTICAST_ALL (Linux)")
def test_a_shard_reports_only_its_groups_whatever_the_kernel_delivers(family: int,
                                                                      port: int) -> None:
    """macOS has no IP_MULTICAST_ALL: what mpoint guarantees there is
    GroupSet's own filter (README).  Here a shard is made to hear every
    group joined on its port, as IP_MULTICAST_ALL=1 does, and must still
    report only its own."""
    mine, other = support.new_group(family), support.new_group(family)
    level, opt = ((socket.IPPROTO_IP, IP_MULTICAST_ALL) if family == socket.AF_INET
                  else (socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL))
    with GroupSet(port, family=family) as gs, \
            mpoint.socket(family) as foreign, mpoint.socket(family) as tx, \
            socket.socket(family, socket.SOCK_DGRAM) as control:
        gs.join(mine)
        shards = sockets_on_port(port)
        assert len(shards) == 1
        with shards[0] as shard:
            shard.setsockopt(level, opt, 1)
        # A wildcard-bound socket with IP_MULTICAST_ALL on (Linux's default)
        # shows that the kernel delivers the other group to such a socket.
        control.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        control.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        foreign.join_leaf((other, port), flags=mpoint.JL_RECEIVER_ONLY)
        tx.sendto(b"other", (other, port))
        tx.sendto(b"mine", (mine, port))
        control.settimeout(2)
        assert control.recv(64) == b"other"
        got = receive_all(gs, 1, mpoint.RecvBatch(8, 64))
        assert got == [(mine, b"mine", got[0][2])]
        assert drain_rest(gs, mpoint.RecvBatch(8, 64)) == []
        assert gs.stats()[mine].datagrams == 1
