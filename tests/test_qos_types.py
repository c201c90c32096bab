"""The QoS types (mpoint.qos): Winsock's values, the exact byte layout of
FLOWSPEC and QOS, validation; and the portable plan (mpoint.qos_plan): what
each request applies per role and platform, and what raises.  No socket."""
from __future__ import annotations

import pickle
import struct

import pytest

import mpoint
from mpoint import errors, qos, qos_plan
from mpoint.qos import (
    POSITIVE_INFINITY_RATE,
    QOS,
    QOS_NOT_SPECIFIED,
    SERVICE_NO_QOS_SIGNALING,
    SERVICE_NO_TRAFFIC_CONTROL,
    FlowSpec,
    ServiceType,
)
from mpoint.qos_plan import QosPlan, plan
from support import given, settings, st

pytestmark = pytest.mark.offline
S, R, B = int(mpoint.JL_SENDER_ONLY), int(mpoint.JL_RECEIVER_ONLY), int(mpoint.JL_BOTH)


# -- constants ---------------------------------------------------------------------------
def test_winsock_values() -> None:
    # qos.h's numbers (the Wine layout check compares them with the header too).
    assert (QOS_NOT_SPECIFIED, POSITIVE_INFINITY_RATE) == (0xFFFFFFFF, 0xFFFFFFFE)
    assert {m.name: int(m) for m in ServiceType} == {
        "NOTRAFFIC": 0, "BESTEFFORT": 1, "CONTROLLEDLOAD": 2, "GUARANTEED": 3,
        "NETWORK_UNAVAILABLE": 4, "GENERAL_INFORMATION": 5, "NOCHANGE": 6,
        "NONCONFORMING": 9, "NETWORK_CONTROL": 10, "QUALITATIVE": 13}
    assert (SERVICE_NO_TRAFFIC_CONTROL, SERVICE_NO_QOS_SIGNALING) == (0x81000000, 0x40000000)
    for member in ServiceType:
        assert getattr(mpoint, f"SERVICETYPE_{member.name}") is member
        assert getattr(qos, f"SERVICETYPE_{member.name}") is member
    for name in ("FlowSpec", "QOS", "ServiceType", "QOS_NOT_SPECIFIED", "POSITIVE_INFINITY_RATE",
                 "SERVICE_NO_TRAFFIC_CONTROL", "SERVICE_NO_QOS_SIGNALING"):
        assert name in mpoint.__all__ and getattr(mpoint, name) is getattr(qos, name)
    # The plan's role numbers are WSAJoinLeaf's, as mpoint has them.
    assert (qos_plan.JL_SENDER_ONLY, qos_plan.JL_RECEIVER_ONLY, qos_plan.JL_BOTH) == (S, R, B)


# -- FlowSpec ----------------------------------------------------------------------------
def test_flowspec_defaults_and_immutability() -> None:
    spec = FlowSpec()
    assert all(getattr(spec, name) == QOS_NOT_SPECIFIED for name, _ in qos.FIELDS)
    assert spec.unspecified and spec.service is None
    assert [name for name, _ in qos.FIELDS] == [
        "token_rate", "token_bucket_size", "peak_bandwidth", "latency", "delay_variation",
        "service_type", "max_sdu_size", "minimum_policed_size"]
    with pytest.raises(AttributeError):
        spec.token_rate = 5  # type: ignore[misc]
    assert hash(FlowSpec(1)) == hash(FlowSpec(1)) and FlowSpec(1) != FlowSpec(2)


def test_flowspec_positional_order() -> None:
    spec = FlowSpec(1, 2, 3, 4, 5, 1, 7, 6)
    assert (spec.token_rate, spec.token_bucket_size, spec.peak_bandwidth, spec.latency,
            spec.delay_variation, spec.service_type, spec.max_sdu_size,
            spec.minimum_policed_size) == (1, 2, 3, 4, 5, 1, 7, 6)
    assert spec.to_bytes() == struct.pack("<8I", 1, 2, 3, 4, 5, 1, 7, 6)


class Index:
    def __index__(self) -> int:
        return 1000


def test_flowspec_types() -> None:
    assert FlowSpec(token_rate=Index()).token_rate == 1000       # type: ignore[arg-type]
    assert type(FlowSpec(service_type=ServiceType.GUARANTEED).service_type) is int
    for bad in (True, False, 1.0, "1", None, b"1"):
        with pytest.raises(TypeError, match="token_rate"):
            FlowSpec(token_rate=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="max_sdu_size"):
            FlowSpec(max_sdu_size=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [name for name, _ in qos.FIELDS if name != "service_type"])
@pytest.mark.parametrize("value", [-1, 2**32, 2**64])
def test_flowspec_range(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=name):
        FlowSpec(**{name: value})
    assert getattr(FlowSpec(**{name: 0}), name) == 0


def test_flowspec_impossible_values() -> None:
    with pytest.raises(ValueError, match="peak_bandwidth .* below token_rate"):
        FlowSpec(token_rate=1000, peak_bandwidth=999)
    with pytest.raises(ValueError, match="POSITIVE_INFINITY_RATE"):
        FlowSpec(token_rate=POSITIVE_INFINITY_RATE, peak_bandwidth=10**6)
    with pytest.raises(ValueError, match="minimum_policed_size .* above max_sdu_size"):
        FlowSpec(max_sdu_size=100, minimum_policed_size=101)
    # Equal, unbounded or one-sided is fine.
    FlowSpec(token_rate=1000, peak_bandwidth=1000)
    FlowSpec(token_rate=1000, peak_bandwidth=POSITIVE_INFINITY_RATE)
    FlowSpec(peak_bandwidth=5)
    FlowSpec(max_sdu_size=100, minimum_policed_size=100)


def test_service_types() -> None:
    for member in ServiceType:
        for bits in (0, SERVICE_NO_TRAFFIC_CONTROL, SERVICE_NO_QOS_SIGNALING,
                     SERVICE_NO_TRAFFIC_CONTROL | SERVICE_NO_QOS_SIGNALING):
            spec = FlowSpec(service_type=member | bits)
            assert spec.service is member
            assert spec.no_traffic_control == bool(bits & SERVICE_NO_TRAFFIC_CONTROL)
            assert spec.no_qos_signaling == bool(bits & SERVICE_NO_QOS_SIGNALING)
    for bad in (7, 8, 11, 12, 14, 0x100, 0x80000001, 0x01000001, 0x80010000, 0xFFFFFFFE):
        with pytest.raises(ValueError, match="service_type"):
            FlowSpec(service_type=bad)


def test_flowspec_from_bytes() -> None:
    spec = FlowSpec(125000, 3000, 250000, QOS_NOT_SPECIFIED, QOS_NOT_SPECIFIED, 2, 1400, 64)
    data = spec.to_bytes()
    assert len(data) == qos.FLOWSPEC_SIZE == 32
    assert FlowSpec.from_bytes(data) == spec
    assert FlowSpec.from_bytes(bytearray(data) + b"more") == spec
    assert FlowSpec.from_bytes(memoryview(data)) == spec
    for short in range(32):
        with pytest.raises(errors.WSAEFAULT, match="FLOWSPEC"):
            FlowSpec.from_bytes(data[:short])
    with pytest.raises(TypeError):
        FlowSpec.from_bytes("x" * 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="peak_bandwidth"):      # validated on the way in
        FlowSpec.from_bytes(struct.pack("<8I", 10, 0, 5, 0, 0, 1, 0, 0))


# -- QOS ---------------------------------------------------------------------------------
SEND = FlowSpec(token_rate=125000, token_bucket_size=6000, peak_bandwidth=250000,
                service_type=ServiceType.CONTROLLEDLOAD, max_sdu_size=1400,
                minimum_policed_size=64)
RECV = FlowSpec(token_rate=125000, token_bucket_size=60000, service_type=ServiceType.BESTEFFORT)


def test_qos_fields() -> None:
    q = QOS()
    assert (q.sending, q.receiving, q.provider_specific) == (None, None, b"")
    assert QOS(FlowSpec(), FlowSpec()) == QOS()           # all-unspecified is none
    q = QOS(SEND, provider_specific=bytearray(b"ab"))
    assert q.provider_specific == b"ab" and type(q.provider_specific) is bytes
    with pytest.raises(TypeError, match="sending"):
        QOS(sending=(1, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="receiving"):
        QOS(receiving=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        QOS(provider_specific="text")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        q.sending = None  # type: ignore[misc]


@pytest.mark.parametrize("pointer_size,size,buf", [(8, 80, 72), (4, 72, 68)])
def test_qos_layout(pointer_size: int, size: int, buf: int) -> None:
    assert qos.qos_size(pointer_size) == size
    lay = qos.layout(pointer_size)
    assert lay["QOS"] == (0, size)
    assert lay["QOS.SendingFlowspec"] == (0, 32) and lay["QOS.ReceivingFlowspec"] == (32, 32)
    assert lay["QOS.ProviderSpecific.len"] == (64, 4)
    assert lay["QOS.ProviderSpecific.buf"] == (buf, pointer_size)
    assert [lay[f"FLOWSPEC.{w}"] for _, w in qos.FIELDS] == [(4 * i, 4) for i in range(8)]
    data = QOS(SEND, RECV, b"tail!").to_bytes(pointer_size)
    assert len(data) == size + 5 and data[size:] == b"tail!"
    assert data[0:32] == SEND.to_bytes() and data[32:64] == RECV.to_bytes()
    assert struct.unpack_from("<I", data, 64)[0] == 5
    assert data[buf:buf + pointer_size] == bytes(pointer_size)     # the pointer: written as 0
    assert data[64 + 4:buf] == bytes(buf - 68)                     # padding is zero
    assert qos.layout() == qos.layout(qos.POINTER_SIZE)
    # The packer puts the pointer where layout() (checked against the headers) says.
    marked = qos._QOS[pointer_size].pack(*([0] * 17), 2**(8 * pointer_size) - 1)
    assert marked.index(b"\xff") == buf and marked.count(b"\xff") == pointer_size
    assert QOS().to_bytes() == QOS().to_bytes(struct.calcsize("P"))


@pytest.mark.parametrize("pointer_size", [4, 8])
def test_qos_round_trip_and_short_buffers(pointer_size: int) -> None:
    size = qos.qos_size(pointer_size)
    for q in (QOS(), QOS(SEND), QOS(receiving=RECV), QOS(SEND, RECV, b"\x00\x01" * 40)):
        data = q.to_bytes(pointer_size)
        assert QOS.from_bytes(data, pointer_size) == q
        assert QOS.from_bytes(bytearray(data) + b"junk", pointer_size) == q
        for short in range(len(data)):
            with pytest.raises(errors.WSAEFAULT):
                QOS.from_bytes(data[:short], pointer_size)
    empty = QOS().to_bytes(pointer_size)
    assert empty == bytes.fromhex("ff" * 64) + bytes(size - 64)
    # A provider length past the end of the buffer, and the pointer ignored.
    lying = bytearray(empty)
    struct.pack_into("<I", lying, 64, 10)
    with pytest.raises(errors.WSAEFAULT, match="ProviderSpecific.len says 10"):
        QOS.from_bytes(bytes(lying) + b"123456789", pointer_size)
    struct.pack_into("<I", lying, 64, 0xFFFFFFFF)
    with pytest.raises(errors.WSAEFAULT):
        QOS.from_bytes(lying, pointer_size)
    pointer = bytearray(QOS(provider_specific=b"xy").to_bytes(pointer_size))
    pointer[size - pointer_size:size] = b"\xab" * pointer_size
    assert QOS.from_bytes(pointer, pointer_size).provider_specific == b"xy"


def test_qos_errors_are_mpoint_errors() -> None:
    with pytest.raises(errors.WSAEFAULT) as info:
        QOS.from_bytes(b"\x00" * 10, 8)
    assert isinstance(info.value, mpoint.MultipointError) and info.value.wsa_errno == 10014
    assert "QOS structure (80 bytes" in str(info.value)
    for bad in (0, 2, 16, True, "8"):
        with pytest.raises((TypeError, ValueError)):
            QOS().to_bytes(bad)  # type: ignore[arg-type]
        with pytest.raises((TypeError, ValueError)):
            QOS.from_bytes(bytes(80), bad)  # type: ignore[arg-type]


def test_constants_table() -> None:
    table = qos.constants()
    assert table["SERVICETYPE_QUALITATIVE"] == 13 and len(table) == 14


# -- property tests ----------------------------------------------------------------------
ulong = st.integers(0, 0xFFFFFFFF)
service = st.sampled_from(list(ServiceType)).flatmap(
    lambda base: st.sampled_from([0, SERVICE_NO_TRAFFIC_CONTROL, SERVICE_NO_QOS_SIGNALING])
    .map(lambda bits: int(base) | bits)) | st.just(QOS_NOT_SPECIFIED)


@st.composite
def flowspecs(draw):  # type: ignore[no-untyped-def]
    rate = draw(ulong)
    peak = draw(ulong)
    if rate != QOS_NOT_SPECIFIED and peak < POSITIVE_INFINITY_RATE and peak < rate:
        rate, peak = peak, rate
        if peak < rate:  # rate was a sentinel
            peak = QOS_NOT_SPECIFIED
    sdu, policed = sorted((draw(ulong), draw(ulong)), reverse=True)
    return FlowSpec(rate, draw(ulong), peak, draw(ulong), draw(ulong), draw(service), sdu,
                    policed)


@settings(max_examples=300, deadline=None)
@given(flowspecs(), flowspecs(), st.binary(max_size=64), st.sampled_from([4, 8]))
def test_round_trip_property(send: FlowSpec, recv: FlowSpec, tail: bytes,
                             pointer_size: int) -> None:
    q = QOS(send, recv, tail)
    data = q.to_bytes(pointer_size)
    assert len(data) == qos.qos_size(pointer_size) + len(tail)
    assert QOS.from_bytes(data, pointer_size) == q
    assert FlowSpec.from_bytes(send.to_bytes()) == send


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([4, 8]))
def test_from_bytes_never_crashes(data: bytes, pointer_size: int) -> None:
    try:
        q = QOS.from_bytes(data, pointer_size)
    except (errors.WSAEFAULT, ValueError):
        return
    assert QOS.from_bytes(q.to_bytes(pointer_size), pointer_size) == q


@settings(max_examples=300, deadline=None)
@given(flowspecs(), flowspecs(), st.sampled_from([S, R, B]),
       st.sampled_from(["linux", "darwin", "win32", "freebsd13"]))
def test_plan_property(send: FlowSpec, recv: FlowSpec, role: int, platform: str) -> None:
    """Every plan either raises one of the documented errors or is in range."""
    try:
        p = plan(QOS(send, recv), role, platform)
    except (errors.WSAEOPNOTSUPP, errors.WSAEINVAL, ValueError):
        return
    if p.shaper is not None:
        assert all(0 <= x < POSITIVE_INFINITY_RATE for x in p.shaper) and any(p.shaper)
        if p.shaper[0]:
            assert p.shaper[1] > 0
    assert p.dscp is None or 0 <= p.dscp <= 63
    assert p.priority is None or (0 <= p.priority <= 7 and platform == "linux")
    assert p.pacing_rate is None or platform == "linux"
    assert p.rcvbuf is None or 0 < p.rcvbuf <= qos_plan.RCVBUF_MAX
    if role == R:
        assert p.shaper is None and p.dscp is None
    if role == S:
        assert p.rcvbuf is None


# -- the plan ----------------------------------------------------------------------------
def test_plan_nothing() -> None:
    for role in (S, R, B):
        for request in (None, QOS()):
            assert plan(request, role, "linux") == QosPlan()


def test_plan_sending_linux() -> None:
    p = plan(QOS(SEND), S, "linux")
    assert p.shaper == (125000, 6000, 250000, 64, 1400)
    assert (p.dscp, p.priority, p.pacing_rate, p.rcvbuf) == (24, 4, 250000, None)
    assert p.qos == QOS(SEND) and p.ignored == ()


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_plan_sending_elsewhere(platform: str) -> None:
    p = plan(QOS(SEND), B, platform)
    assert p.shaper == (125000, 6000, 250000, 64, 1400)
    assert (p.dscp, p.priority, p.pacing_rate) == (24, None, None)


def test_plan_shaper_defaults() -> None:
    # Sentinels become 0 ("no limit"); a rate without a bucket gets one datagram's worth.
    assert plan(QOS(FlowSpec(token_rate=1000)), S, "linux").shaper == (1000, 65535, 0, 0, 0)
    assert plan(QOS(FlowSpec(token_rate=1000, max_sdu_size=500)), S,
                "linux").shaper == (1000, 500, 0, 0, 500)
    p = plan(QOS(FlowSpec(token_rate=POSITIVE_INFINITY_RATE, token_bucket_size=9000)), S, "linux")
    assert p.shaper is None and any("token_bucket_size" in n for n in p.ignored)
    assert plan(QOS(FlowSpec(max_sdu_size=1200)), S, "linux").shaper == (0, 0, 0, 0, 1200)
    p = plan(QOS(FlowSpec(peak_bandwidth=10**6)), S, "linux")
    assert p.shaper == (0, 0, 10**6, 0, 0) and p.pacing_rate == 10**6
    assert plan(QOS(FlowSpec(token_rate=1000)), S, "linux").pacing_rate is None
    assert plan(QOS(FlowSpec(service_type=1)), S, "linux").shaper is None
    with pytest.raises(ValueError, match="token_bucket_size .* below max_sdu_size"):
        plan(QOS(FlowSpec(token_rate=1000, token_bucket_size=100, max_sdu_size=200)), S, "linux")
    for name in ("token_rate", "peak_bandwidth"):
        with pytest.raises(ValueError, match=f"sending.{name} is 0"):
            plan(QOS(FlowSpec(**{name: 0})), S, "linux")


@pytest.mark.parametrize("service,dscp,priority", [
    (ServiceType.BESTEFFORT, 0, 0), (ServiceType.CONTROLLEDLOAD, 24, 4),
    (ServiceType.GUARANTEED, 40, 5), (ServiceType.NETWORK_CONTROL, 48, 7),
    (ServiceType.NONCONFORMING, 0, 1), (ServiceType.QUALITATIVE, 0, 0)])
def test_dscp_and_priority_table(service: ServiceType, dscp: int, priority: int) -> None:
    p = plan(QOS(FlowSpec(service_type=service)), S, "linux")
    assert (p.dscp, p.priority) == (dscp, priority)
    p = plan(QOS(FlowSpec(service_type=service | SERVICE_NO_QOS_SIGNALING)), S, "darwin")
    assert (p.dscp, p.priority) == (dscp, None)


def test_no_traffic_control_and_notraffic() -> None:
    spec = FlowSpec(token_rate=1000, service_type=ServiceType.GUARANTEED
                    | SERVICE_NO_TRAFFIC_CONTROL)
    p = plan(QOS(spec), S, "linux")
    assert (p.shaper, p.dscp, p.priority, p.pacing_rate) == (None, None, None, None)
    assert any("SERVICE_NO_TRAFFIC_CONTROL" in n for n in p.ignored)
    p = plan(QOS(FlowSpec(token_rate=1000, service_type=0)), S, "linux")
    assert (p.shaper, p.dscp) == (None, None) and any("NOTRAFFIC" in n for n in p.ignored)


def test_roles_ignore_the_other_direction() -> None:
    p = plan(QOS(SEND, RECV), S, "linux")
    assert p.shaper is not None and p.rcvbuf is None
    assert "receiving flowspec: sender-only socket" in p.ignored
    p = plan(QOS(SEND, RECV), R, "linux")
    assert p.shaper is None and p.dscp is None and p.rcvbuf is not None
    assert "sending flowspec: receiver-only socket" in p.ignored
    p = plan(QOS(SEND, RECV), B, "linux")
    assert p.shaper is not None and p.rcvbuf is not None
    assert not any("-only socket" in n for n in p.ignored)
    # An ignored direction is not checked either (the spec: it is ignored).
    bad = FlowSpec(latency=10, service_type=ServiceType.GUARANTEED)
    assert plan(QOS(bad), R, "linux").shaper is None
    assert plan(QOS(receiving=bad), S, "linux").rcvbuf is None
    for role in (0, 3, 8, -1):
        with pytest.raises(ValueError, match="role"):
            plan(QOS(), role, "linux")
    with pytest.raises(TypeError):
        plan(QOS(), True, "linux")
    assert plan(QOS(SEND), mpoint.JL_SENDER_ONLY, "linux").shaper is not None


def test_receive_buffer_rule() -> None:
    # bucket + one kernel overhead per datagram of the burst; Linux halves (it doubles).
    spec = FlowSpec(token_bucket_size=60000, minimum_policed_size=100, max_sdu_size=1500)
    need = 60000 + 600 * qos_plan.DATAGRAM_OVERHEAD
    assert plan(QOS(receiving=spec), R, "darwin").rcvbuf == need
    assert plan(QOS(receiving=spec), R, "linux").rcvbuf == need // 2
    spec = FlowSpec(token_bucket_size=3000, max_sdu_size=1400)          # 3 datagrams
    assert plan(QOS(receiving=spec), R, "win32").rcvbuf == 3000 + 3 * qos_plan.DATAGRAM_OVERHEAD
    spec = FlowSpec(token_bucket_size=14720)                            # 10 full frames
    assert plan(QOS(receiving=spec), R, "win32").rcvbuf == 14720 + 10 * 1024
    p = plan(QOS(receiving=FlowSpec(token_rate=5000)), R, "linux")
    assert p.rcvbuf is None and any("receive buffer left" in n for n in p.ignored)
    with pytest.raises(errors.WSAEOPNOTSUPP, match="receiving.token_bucket_size"):
        plan(QOS(receiving=FlowSpec(token_bucket_size=0xFFFFFFF0, minimum_policed_size=1)),
             R, "linux")


@pytest.mark.parametrize("direction,role", [("sending", S), ("receiving", R)])
@pytest.mark.parametrize("name", ["latency", "delay_variation"])
def test_guaranteed_with_a_bound(direction: str, role: int, name: str) -> None:
    spec = FlowSpec(**{name: 5000, "service_type": ServiceType.GUARANTEED})
    with pytest.raises(errors.WSAEOPNOTSUPP) as info:
        plan(QOS(**{direction: spec}), role, "linux")
    assert f"{direction}.{name}" in str(info.value) and "GUARANTEED" in str(info.value)
    assert isinstance(info.value, OSError) and info.value.wsa_errno == 10045
    # Unbounded is fine, and other service types only note the bound.
    plan(QOS(**{direction: FlowSpec(service_type=ServiceType.GUARANTEED)}), role, "linux")
    p = plan(QOS(**{direction: FlowSpec(**{name: 5000, "service_type": 2})}), role, "linux")
    assert any(f"{direction}.{name}" in n for n in p.ignored)


@pytest.mark.parametrize("service", [ServiceType.NETWORK_UNAVAILABLE,
                                     ServiceType.GENERAL_INFORMATION])
def test_reports_are_not_requests(service: ServiceType) -> None:
    with pytest.raises(errors.WSAEINVAL, match=f"sending.service_type: SERVICETYPE_{service.name}"):
        plan(QOS(FlowSpec(service_type=service)), S, "linux")


def test_provider_specific_bytes_are_not_honoured_anywhere() -> None:
    """No provider interprets them any more (GQoS is gone; qWAVE takes
    none), so the spec's WSAEOPNOTSUPP, on Windows too."""
    for platform in ("linux", "darwin", "freebsd13", "win32"):
        with pytest.raises(errors.WSAEOPNOTSUPP, match="provider_specific"):
            plan(QOS(provider_specific=b"\x01"), B, platform)
    assert plan(QOS(provider_specific=b""), B, "win32").qos == QOS()


def test_dscp_where_it_cannot_be_set() -> None:
    with pytest.raises(errors.WSAEOPNOTSUPP, match="sending.service_type"):
        plan(QOS(FlowSpec(service_type=ServiceType.CONTROLLEDLOAD)), S, "freebsd13")
    p = plan(QOS(FlowSpec(token_rate=1000, service_type=ServiceType.BESTEFFORT)), S, "freebsd13")
    assert p.dscp is None and p.shaper is not None


def test_nochange_keeps_the_current_flowspec() -> None:
    current = plan(QOS(SEND, RECV), B, "linux")
    keep = FlowSpec(token_rate=1, service_type=ServiceType.NOCHANGE)
    p = plan(QOS(keep, FlowSpec(token_bucket_size=3000)), B, "linux", current=current)
    assert p.qos == QOS(SEND, FlowSpec(token_bucket_size=3000))
    assert p.shaper == current.shaper and p.dscp == 24 and p.rcvbuf != current.rcvbuf
    assert any("NOCHANGE, the current one kept" in n for n in p.ignored)
    p = plan(QOS(SEND, FlowSpec(service_type=ServiceType.NOCHANGE)), B, "linux", current=current)
    assert p._values()[:-1] == current._values()[:-1]
    # Without a current plan there is nothing to keep.
    p = plan(QOS(keep), B, "linux")
    assert p.qos == QOS() and p.shaper is None
    assert any("none to keep" in n for n in p.ignored)
    # None is not NOCHANGE: it clears the direction.
    assert plan(QOS(SEND), B, "linux", current=current).rcvbuf is None


def test_gqos_is_validated_and_ignored() -> None:
    group = QOS(FlowSpec(token_rate=1000, service_type=ServiceType.GUARANTEED, latency=1))
    p = plan(QOS(SEND), S, "linux", gqos=group)
    assert p.shaper == plan(QOS(SEND), S, "linux").shaper
    assert any(n.startswith("gqos: mpoint creates no socket groups") for n in p.ignored)
    assert plan(None, S, "linux", gqos=QOS()).ignored == ()
    with pytest.raises(TypeError, match="gqos"):
        plan(None, S, "linux", gqos=b"\x00" * 80)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="qos"):
        plan(SEND, S, "linux")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="current"):
        plan(None, S, "linux", current=QOS())  # type: ignore[arg-type]


def test_plan_is_frozen() -> None:
    p = plan(QOS(SEND, RECV), B, "linux")
    assert pickle.loads(pickle.dumps(p)) == p and "QosPlan(qos=QOS(sending=FlowSpec(" in repr(p)
    assert pickle.loads(pickle.dumps(SEND)) == SEND and p != SEND
    with pytest.raises(AttributeError):
        del p.dscp
    with pytest.raises(AttributeError):
        p.dscp = 1  # type: ignore[misc]
    assert hash(p) == hash(plan(QOS(SEND, RECV), B, "linux"))
