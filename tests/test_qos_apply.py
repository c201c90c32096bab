"""QoS applied to sockets: join_leaf(sqos=..., gqos=...), set_qos / get_qos
(SIO_SET_QOS / SIO_GET_QOS), the marks a receiver sees, FD_QOS, and a
request that cannot be honoured changing nothing."""
from __future__ import annotations

import socket
import struct
import sys
from typing import Iterator, Optional

import pytest

import mpoint
from mpoint import _core, errors, qos_apply
from mpoint.qos import QOS, FlowSpec, ServiceType

LINUX = sys.platform.startswith("linux")
needs_recvmsg = pytest.mark.skipif(not hasattr(socket.socket, "recvmsg"),
                                   reason="no recvmsg here (Windows): the mark is not readable")
needs_linux = pytest.mark.skipif(not LINUX, reason="socket priority and pacing are Linux's")
MARKS = bool(_core.qos_supported() & _core.QOS_DSCP)
needs_marks = pytest.mark.skipif(not MARKS, reason="this system cannot mark DSCP (Windows "
                                 "without qWAVE, as under Wine, whose qwave.dll is a stub)")

SO_MAX_PACING_RATE = 47          # asm-generic/socket.h
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66)
IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)


def _controlled_load(**kw: int) -> QOS:
    return QOS(sending=FlowSpec(service_type=ServiceType.CONTROLLEDLOAD, **kw))


def _shaped() -> QOS:
    """A QOS every system applies: a token bucket, no service type to mark."""
    return QOS(sending=FlowSpec(token_rate=10_000_000, token_bucket_size=100_000))


def _tos(sock: socket.socket) -> int:
    """The socket's DS field (0 where the system marks through other means:
    Windows ignores IP_TOS, and Wine refuses to read it)."""
    if sys.platform == "win32":
        return 0
    if sock.family == socket.AF_INET:
        return sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)
    return sock.getsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS)


@pytest.fixture
def receiver(family: int, group: str, port: int) -> Iterator[mpoint.MultipointSocket]:
    r = mpoint.socket(family)
    r.join_leaf((group, port), flags=mpoint.JL_RECEIVER_ONLY)
    if hasattr(socket, "IP_RECVTOS"):
        if family == socket.AF_INET:
            r.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        else:
            r.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
    r.settimeout(2)
    yield r
    r.close()


def _mark_seen(r: socket.socket) -> Optional[int]:
    data, anc, _flags, _addr = r.recvmsg(2048, 256)
    for level, kind, value in anc:
        if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TOS),
                             (socket.IPPROTO_IPV6, IPV6_TCLASS)):
            return (value[0] if len(value) == 1 else struct.unpack("i", value[:4])[0]) >> 2
    return None


@needs_recvmsg
@needs_marks
@pytest.mark.parametrize("flags", [mpoint.JL_SENDER_ONLY, mpoint.JL_BOTH])
def test_a_receiver_sees_the_service_types_dscp(family: int, group: str, port: int,
                                                 receiver: socket.socket, flags: int) -> None:
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), sqos=_controlled_load(), flags=flags)
        s.sendto(b"marked", (group, port))
        assert _mark_seen(receiver) == 24          # ControlledLoad: CS3 (docs/qos.md)
        assert _tos(s) >> 2 == 24


@needs_recvmsg
def test_best_effort_leaves_the_mark_zero(family: int, group: str, port: int,
                                          receiver: socket.socket) -> None:
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), sqos=QOS(sending=FlowSpec(
            service_type=ServiceType.BESTEFFORT)), flags=mpoint.JL_SENDER_ONLY)
        s.sendto(b"plain", (group, port))
        assert _mark_seen(receiver) == 0


def test_a_request_that_cannot_be_honoured_changes_nothing(family: int, group: str,
                                                          port: int) -> None:
    promise = QOS(sending=FlowSpec(service_type=ServiceType.GUARANTEED, latency=1000))
    with mpoint.socket(family) as s:
        with pytest.raises(errors.WSAEOPNOTSUPP, match="latency"):
            s.join_leaf((group, port), sqos=promise, flags=mpoint.JL_SENDER_ONLY)
        assert s.joined is None and s.get_qos() == QOS() and _tos(s) == 0
        s.join_leaf((group, port), flags=mpoint.JL_SENDER_ONLY)     # the socket is as new


def test_each_role_ignores_the_other_directions_flowspec(family: int, group: str,
                                                        port: int) -> None:
    promise = FlowSpec(service_type=ServiceType.GUARANTEED, latency=1000)
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), sqos=QOS(receiving=promise), flags=mpoint.JL_SENDER_ONLY)
        assert s.joined is not None
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), sqos=QOS(sending=promise), flags=mpoint.JL_RECEIVER_ONLY)
        assert _tos(s) == 0
    with mpoint.socket(family) as s, pytest.raises(errors.WSAEOPNOTSUPP):
        s.join_leaf((group, port), sqos=QOS(receiving=promise), flags=mpoint.JL_RECEIVER_ONLY)


@needs_marks
def test_gqos_is_accepted_and_ignored(family: int, group: str, port: int) -> None:
    """mpoint creates no socket groups, so lpGQOS has nothing to apply to."""
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), gqos=_controlled_load(), flags=mpoint.JL_SENDER_ONLY)
        assert s.get_qos() == QOS() and _tos(s) == 0
    with mpoint.socket(family) as s, pytest.raises(TypeError):
        s.join_leaf((group, port), gqos=object(), flags=mpoint.JL_SENDER_ONLY)


def test_the_structures_bytes_are_accepted(family: int, group: str, port: int) -> None:
    qos = _shaped()
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), sqos=qos.to_bytes(), flags=mpoint.JL_SENDER_ONLY)
        assert s.get_qos() == qos
    with mpoint.socket(family) as s:
        with pytest.raises(errors.WSAEFAULT):
            s.join_leaf((group, port), sqos=qos.to_bytes()[:20], flags=mpoint.JL_SENDER_ONLY)
        assert s.joined is None


def test_a_failed_join_takes_its_qos_back(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as s:
        with pytest.raises(errors.WSAEADDRNOTAVAIL):
            s.join_leaf((group, port), sqos=_controlled_load() if MARKS else _shaped(),
                        flags=mpoint.JL_BOTH, interface="nosuch0")
        assert _tos(s) == 0 and s.get_qos() == QOS() and s.joined is None
        assert _core.sock_shaper(s) is None


@needs_marks
def test_set_qos_and_get_qos_round_trip(family: int, group: str, port: int) -> None:
    with mpoint.socket(family) as s:
        assert s.get_qos() == QOS()
        s.join_leaf((group, port), flags=mpoint.JL_SENDER_ONLY)
        qos = _controlled_load()
        s.set_qos(qos)
        assert s.get_qos() == qos and _tos(s) >> 2 == 24
        s.set_qos(QOS(sending=FlowSpec(service_type=ServiceType.BESTEFFORT)))
        assert _tos(s) == 0
        with pytest.raises(errors.WSAEOPNOTSUPP):
            s.set_qos(QOS(sending=FlowSpec(service_type=ServiceType.GUARANTEED, latency=5)))
        assert s.get_qos().sending == FlowSpec(service_type=ServiceType.BESTEFFORT)
    with pytest.raises(errors.WSAENOTSOCK):
        s.set_qos(qos)


def test_set_qos_reports_fd_qos_once_per_change(family: int, group: str, port: int,
                                               evset: mpoint.EventSet) -> None:
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), flags=mpoint.JL_SENDER_ONLY)
        evset.register(s, mpoint.FD_QOS)
        assert evset.wait(0) == []
        s.set_qos(_shaped())
        [ne] = evset.wait(0.5)
        assert ne.sock is s and ne.events == mpoint.FD_QOS and dict(ne.errors) == {
            mpoint.FD_QOS: 0}
        s.set_qos(_shaped())                           # the same: nothing changed
        assert evset.wait(0) == []
        evset.unregister(s)


@needs_linux
def test_linux_gets_priority_and_pacing(family: int, group: str, port: int) -> None:
    rate, peak = 125_000, 250_000                      # 1 and 2 Mbit/s
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), flags=mpoint.JL_SENDER_ONLY, sqos=_controlled_load(
            token_rate=rate, token_bucket_size=10_000, peak_bandwidth=peak))
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY) == 4   # 802.1p: CL
        # The kernel paces to the peak; the bucket bounds the average (docs/qos.md).
        assert s.getsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE) == peak
        s.set_qos(QOS(sending=FlowSpec(service_type=ServiceType.BESTEFFORT)))
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY) == 0
        # ~0: no limit (read back as a 32-bit int)
        assert s.getsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE) & 0xFFFFFFFF == 0xFFFFFFFF


def test_a_receiving_flowspec_makes_room_for_a_burst(family: int, group: str,
                                                    port: int) -> None:
    burst = 400_000
    with mpoint.socket(family) as s:
        before = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        s.join_leaf((group, port), flags=mpoint.JL_RECEIVER_ONLY, sqos=QOS(
            receiving=FlowSpec(service_type=ServiceType.CONTROLLEDLOAD, token_rate=1_000_000,
                               token_bucket_size=burst)))
        after = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert after > before and after >= burst


@pytest.mark.parametrize("how", ["send", "send_batch"])
def test_the_sending_flowspec_shapes_what_is_sent(family: int, group: str, port: int,
                                                  receiver: socket.socket, how: str) -> None:
    """TokenRate and TokenBucketSize through join_leaf: a full bucket goes
    out at once, the rest no faster than the rate (lower bound exact, the
    upper one loose for a loaded machine)."""
    import time
    rate, bucket, size, count = 200_000, 10_000, 1_000, 40
    with mpoint.socket(family) as s:
        s.join_leaf((group, port), flags=mpoint.JL_BOTH, sqos=QOS(sending=FlowSpec(
            token_rate=rate, token_bucket_size=bucket, max_sdu_size=size)))
        assert _core.sock_shaper(s) == (rate, bucket, 0, 0, size)
        payloads = [bytes([i]) * size for i in range(count)]
        start = time.monotonic()
        if how == "send":
            for p in payloads:
                s.send(p)
        else:
            assert s.send_batch(payloads) == count
        took = time.monotonic() - start
        floor = (count * size - bucket) / rate                     # 0.15 s
        assert floor * 0.97 <= took < floor + 1.0
        got = []
        receiver.settimeout(1)
        while len(got) < count:
            got.append(receiver.recv(2048))
        assert got == payloads
        with pytest.raises(errors.WSAEMSGSIZE):
            s.send(b"x" * (size + 1))


def test_a_closed_sockets_qos_is_refused_and_stays_readable(family: int, group: str,
                                                           port: int) -> None:
    s = mpoint.socket(family)
    qos = _shaped()
    s.join_leaf((group, port), sqos=qos, flags=mpoint.JL_SENDER_ONLY)
    s.close()
    assert s.get_qos() == qos
    with pytest.raises(errors.WSAENOTSOCK):
        s.set_qos(QOS())


def test_where_nothing_can_mark_a_service_type_is_refused_and_changes_nothing(
        family: int, group: str, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows without qWAVE (decided in portable code, so every platform
    tests it): a non-zero DSCP cannot be honoured; best effort needs none."""
    monkeypatch.setattr(qos_apply, "_SUPPORTED", _core.qos_supported() & ~_core.QOS_DSCP)
    with mpoint.socket(family) as s:
        with pytest.raises(errors.WSAEOPNOTSUPP, match="service_type.*qWAVE"):
            s.join_leaf((group, port), sqos=_controlled_load(token_rate=1_000_000),
                        flags=mpoint.JL_SENDER_ONLY)
        assert s.joined is None and _core.sock_shaper(s) is None
        s.join_leaf((group, port), flags=mpoint.JL_SENDER_ONLY, sqos=QOS(
            sending=FlowSpec(service_type=ServiceType.BESTEFFORT, token_rate=1_000_000)))
        assert s.get_qos().sending.service_type == ServiceType.BESTEFFORT
