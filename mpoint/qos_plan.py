"""What mpoint applies for a QOS request: the portable decision.

:func:`plan` turns a :class:`~mpoint.qos.QOS` and a socket's WSAJoinLeaf
role (``JL_SENDER_ONLY``, ``JL_RECEIVER_ONLY``, ``JL_BOTH``) into a
:class:`QosPlan`: the token bucket for the send path, the DSCP mark, the
Linux socket priority and pacing rate, the receive buffer, and notes on what
was ignored.  It touches no socket; the socket layer applies the plan.  Parts
of a request no platform can honour raise ``WSAEOPNOTSUPP`` naming the field,
as WSAJoinLeaf's spec requires ("The flow specifications specified in lpSQOS
and lpGQOS cannot be satisfied"); impossible values raise ValueError and
requests that are not requests (reports) ``WSAEINVAL``.  docs/qos.md explains
every rule.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Tuple

from . import errors
from .qos import (
    POSITIVE_INFINITY_RATE,
    QOS,
    QOS_NOT_SPECIFIED,
    FlowSpec,
    Record,
    ServiceType,
)

__all__ = ["QosPlan", "plan", "DSCP", "PRIORITY", "DATAGRAM_OVERHEAD", "DEFAULT_DATAGRAM",
           "LARGEST_DATAGRAM", "RCVBUF_MAX"]

# WSAJoinLeaf's dwFlags (winsock2.h), as mpoint.constants.JoinFlag has them.
JL_SENDER_ONLY, JL_RECEIVER_ONLY, JL_BOTH = 0x01, 0x02, 0x04

# ServiceType -> DSCP: the QoS Packet Scheduler's defaults for conforming
# packets, from Microsoft's QOS_DS_CLASS page (qosobjs.h, "The following
# settings are chosen (by default) when the QOS_DS_CLASS traffic control object
# is not used": 0 BestEffort and Qualitative, 0x18 ControlledLoad, 0x28
# Guaranteed, 0x30 NetworkControl, 0x00 non-conformant traffic;
# learn.microsoft.com/windows/win32/api/qosobjs/ns-qosobjs-qos_ds_class), the
# same as Windows' QOS.admx policy texts ("DSCP value of conforming packets":
# 24 (0x18) controlled load, 40 (0x28) guaranteed).
DSCP: Dict[ServiceType, int] = {
    ServiceType.BESTEFFORT: 0,
    ServiceType.QUALITATIVE: 0,
    ServiceType.CONTROLLEDLOAD: 0x18,     # 24, CS3
    ServiceType.GUARANTEED: 0x28,         # 40, CS5
    ServiceType.NETWORK_CONTROL: 0x30,    # 48, CS6
    ServiceType.NONCONFORMING: 0,
}

# ServiceType -> 802.1p user priority (Linux: SO_PRIORITY): the classic QoS
# Packet Scheduler defaults ("Layer-2 priority value" policies of Windows
# XP / Server 2003: best effort 0, controlled load 4, guaranteed 5, network
# control 7, qualitative 0, non-conforming packets 1 — XP SP1's system.adm
# help gives 1 and 0 for the last two; Windows Server 2003's "How QoS works"
# the others).  Microsoft's QOS_TRAFFIC_CLASS page says these are "the
# standard Intserv mapping of ServiceType to 802.1 TrafficClass"; they match
# IEEE 802.1Q's traffic types (1 background, 4 controlled load, 5 video,
# 7 network control).  Later QOS.admx texts give 0 for every Layer-2 default
# (Windows no longer tags 802.1p by default); docs/qos.md records both.
PRIORITY: Dict[ServiceType, int] = {
    ServiceType.BESTEFFORT: 0,
    ServiceType.QUALITATIVE: 0,
    ServiceType.CONTROLLEDLOAD: 4,
    ServiceType.GUARANTEED: 5,
    ServiceType.NETWORK_CONTROL: 7,
    ServiceType.NONCONFORMING: 1,
}

LARGEST_DATAGRAM = 65535
"""Bucket of a sending flowspec with a TokenRate but no TokenBucketSize and
no MaxSduSize: one largest UDP datagram, so every datagram can conform."""
DATAGRAM_OVERHEAD = 1024
"""Bytes a kernel charges a receive buffer per datagram beyond its payload
(Linux: the sk_buff and its shared info, about 576 bytes, rounded up for the
allocator; other kernels charge less)."""
DEFAULT_DATAGRAM = 1472
"""Datagram size assumed for a burst when neither MinimumPolicedSize nor
MaxSduSize says: a full Ethernet frame's UDP/IPv4 payload."""
RCVBUF_MAX = 2**31 - 1
"""SO_RCVBUF is a C int."""

_DSCP_PLATFORMS = ("linux", "darwin", "win32")
_LINUX_ONLY = ("linux",)


class QosPlan(Record):
    """What to apply on one socket.

    ``shaper``: None or ``(token_rate, bucket, peak, min_policed, max_sdu)``
    for the send path's token bucket (bytes per second and bytes; 0 means no
    limit for that component).  ``dscp``: None (leave the mark alone) or
    0..63 for IP_TOS / IPV6_TCLASS (shifted left by 2: ECN bits stay 0).
    ``priority``: None or 0..7 for SO_PRIORITY (Linux only; set it after the
    DSCP, which on Linux resets the priority).  ``pacing_rate``: None or
    bytes per second for SO_MAX_PACING_RATE (Linux only).  ``rcvbuf``: None
    or the SO_RCVBUF value to pass to setsockopt so that a full burst fits
    (on Linux already halved: the kernel doubles it); apply only if larger
    than the current buffer.  ``ignored``: notes on what was not applied and
    why.  ``qos``: the request with SERVICETYPE_NOCHANGE resolved, which
    get_qos returns and a later plan's ``current`` is."""

    __slots__ = ("qos", "shaper", "dscp", "priority", "pacing_rate", "rcvbuf", "ignored")
    _fields = __slots__
    qos: QOS
    shaper: Optional[Tuple[int, int, int, int, int]]
    dscp: Optional[int]
    priority: Optional[int]
    pacing_rate: Optional[int]
    rcvbuf: Optional[int]
    ignored: Tuple[str, ...]

    def __init__(self, qos: Optional[QOS] = None, *,
                 shaper: Optional[Tuple[int, int, int, int, int]] = None,
                 dscp: Optional[int] = None, priority: Optional[int] = None,
                 pacing_rate: Optional[int] = None, rcvbuf: Optional[int] = None,
                 ignored: Tuple[str, ...] = ()) -> None:
        self._set("qos", qos if qos is not None else QOS())
        self._set("shaper", shaper)
        self._set("dscp", dscp)
        self._set("priority", priority)
        self._set("pacing_rate", pacing_rate)
        self._set("rcvbuf", rcvbuf)
        self._set("ignored", tuple(ignored))


def _unsupported(field: str, why: str) -> errors.MultipointError:
    return errors.from_code("WSAEOPNOTSUPP", "QOS", f"{field}: {why}")


def _limit(value: int) -> int:
    """A rate or size as the shaper takes it: 0 for no limit."""
    return 0 if value in (QOS_NOT_SPECIFIED, POSITIVE_INFINITY_RATE) else value


def _bounded(value: int) -> bool:
    return value not in (QOS_NOT_SPECIFIED, POSITIVE_INFINITY_RATE)


def _check_request(direction: str, spec: FlowSpec) -> None:
    """What no platform can honour, and what is not a request."""
    service = spec.service
    if service in (ServiceType.NETWORK_UNAVAILABLE, ServiceType.GENERAL_INFORMATION):
        raise errors.from_code(
            "WSAEINVAL", "QOS", f"{direction}.service_type: SERVICETYPE_{service.name} is "
            "what a provider reports, not a request")
    if service is ServiceType.GUARANTEED:
        for name in ("latency", "delay_variation"):
            if _bounded(getattr(spec, name)):
                raise _unsupported(f"{direction}.{name}",
                                   f"SERVICETYPE_GUARANTEED with a bounded {name} "
                                   f"({getattr(spec, name)} us): no best-effort network "
                                   "can promise it")


def _latency_notes(direction: str, spec: FlowSpec, notes: List[str]) -> None:
    if spec.service is not ServiceType.GUARANTEED:
        for name in ("latency", "delay_variation"):
            if _bounded(getattr(spec, name)):
                notes.append(f"{direction}.{name}: only SERVICETYPE_GUARANTEED bounds it; "
                             "not applied")


def _sending(spec: FlowSpec, platform: str, plan_fields: Dict[str, Any],
             notes: List[str]) -> None:
    if spec.service is ServiceType.NOTRAFFIC:
        notes.append("sending flowspec: SERVICETYPE_NOTRAFFIC, nothing applied")
        return
    if spec.no_traffic_control:
        notes.append("sending flowspec: SERVICE_NO_TRAFFIC_CONTROL, no shaping or marking")
        return
    for name in ("token_rate", "peak_bandwidth"):
        if getattr(spec, name) == 0:
            raise ValueError(f"sending.{name} is 0: nothing could ever be sent "
                             "(SERVICETYPE_NOTRAFFIC says there is no traffic)")
    rate, peak = _limit(spec.token_rate), _limit(spec.peak_bandwidth)
    max_sdu, min_policed = _limit(spec.max_sdu_size), _limit(spec.minimum_policed_size)
    bucket = _limit(spec.token_bucket_size)
    if rate:
        if not bucket:
            bucket = max_sdu or LARGEST_DATAGRAM
        elif max_sdu and bucket < max_sdu:
            raise ValueError(f"sending.token_bucket_size ({bucket}) is below max_sdu_size "
                             f"({max_sdu}): a datagram that size could never conform")
    elif bucket:
        notes.append("sending.token_bucket_size: no token_rate to fill it; not applied")
        bucket = 0
    if rate or peak or min_policed or max_sdu:
        plan_fields["shaper"] = (rate, bucket, peak, min_policed, max_sdu)
    if platform in _LINUX_ONLY and peak:
        # The kernel paces to the peak: pacing at the token rate would
        # smooth away the bursts the bucket allows; the bucket itself
        # bounds the average.  No peak, no pacing.
        plan_fields["pacing_rate"] = peak
    service = spec.service
    if service is None:
        return
    dscp = DSCP[service]
    if platform in _DSCP_PLATFORMS:
        plan_fields["dscp"] = dscp
    elif dscp:
        raise _unsupported("sending.service_type",
                           f"SERVICETYPE_{service.name} is marked as DSCP {dscp}, which "
                           f"mpoint cannot set on {platform}")
    if platform in _LINUX_ONLY:
        plan_fields["priority"] = PRIORITY[service]


def _receiving(spec: FlowSpec, platform: str, plan_fields: Dict[str, Any],
               notes: List[str]) -> None:
    if spec.service is ServiceType.NOTRAFFIC:
        notes.append("receiving flowspec: SERVICETYPE_NOTRAFFIC, nothing applied")
        return
    bucket = _limit(spec.token_bucket_size)
    if not bucket:
        notes.append("receiving flowspec: no token_bucket_size, receive buffer left as it is")
        return
    unit = _limit(spec.minimum_policed_size) or _limit(spec.max_sdu_size) or DEFAULT_DATAGRAM
    datagrams = -(-bucket // unit)
    need = bucket + datagrams * DATAGRAM_OVERHEAD
    value = -(-need // 2) if platform in _LINUX_ONLY else need
    if value > RCVBUF_MAX:
        raise _unsupported("receiving.token_bucket_size",
                           f"a burst of {bucket} bytes needs a {need}-byte receive buffer, "
                           "more than a socket can have")
    plan_fields["rcvbuf"] = value
    notes.append("receiving flowspec: only the receive buffer is sized; the rates and the "
                 "service type describe the sender's traffic")


def _resolve(direction: str, spec: Optional[FlowSpec], current: Optional[QosPlan],
             notes: List[str]) -> Optional[FlowSpec]:
    """SERVICETYPE_NOCHANGE: keep the direction's current flowspec."""
    if spec is None or spec.service is not ServiceType.NOCHANGE:
        return spec
    kept = getattr(current.qos, direction) if current is not None else None
    notes.append(f"{direction} flowspec: SERVICETYPE_NOCHANGE, "
                 + ("the current one kept" if kept is not None else "there is none to keep"))
    return kept


def plan(qos: Optional[QOS], role: int, platform: str = sys.platform, *,
         current: Optional[QosPlan] = None, gqos: Optional[QOS] = None) -> QosPlan:
    """The plan for ``qos`` on a socket whose WSAJoinLeaf role is ``role``.

    ``current`` is the socket's plan in force (for SERVICETYPE_NOCHANGE);
    ``gqos`` the group QOS, validated and ignored (mpoint creates no socket
    groups).  A sender-only socket ignores the receiving flowspec and a
    receiver-only socket the sending one, as the spec says.  Raises
    WSAEOPNOTSUPP (naming the field) for what cannot be honoured, WSAEINVAL
    for a service type that is a provider's report, ValueError for
    impossible values, TypeError for wrong types."""
    if qos is not None and not isinstance(qos, QOS):
        raise TypeError(f"qos must be a mpoint.QOS or None, not {type(qos).__name__}")
    if gqos is not None and not isinstance(gqos, QOS):
        raise TypeError(f"gqos must be a mpoint.QOS or None, not {type(gqos).__name__}")
    if current is not None and not isinstance(current, QosPlan):
        raise TypeError(f"current must be a QosPlan or None, not {type(current).__name__}")
    if isinstance(role, bool) or not isinstance(role, int):
        raise TypeError(f"role must be a JL_* flag, not {type(role).__name__}")
    if role not in (JL_SENDER_ONLY, JL_RECEIVER_ONLY, JL_BOTH):
        raise ValueError(f"role must be JL_SENDER_ONLY, JL_RECEIVER_ONLY or JL_BOTH, not {role}")
    if not isinstance(platform, str):
        raise TypeError(f"platform must be a str, not {type(platform).__name__}")
    notes: List[str] = []
    request = qos if qos is not None else QOS()
    sending = _resolve("sending", request.sending, current, notes)
    receiving = _resolve("receiving", request.receiving, current, notes)
    effective = QOS(sending, receiving, request.provider_specific)
    if effective.provider_specific:
        # Windows' GQoS providers, which read these objects, are gone since
        # Vista, and qWAVE takes none: nothing on any platform honours them.
        raise _unsupported("provider_specific",
                           f"{len(effective.provider_specific)} provider-specific bytes "
                           f"that no provider on {platform} interprets")
    if gqos is not None and gqos != QOS():
        notes.append("gqos: mpoint creates no socket groups, so the group QOS is ignored")
    fields: Dict[str, Any] = {}
    for direction, spec, wanted in (("sending", sending, role != JL_RECEIVER_ONLY),
                                    ("receiving", receiving, role != JL_SENDER_ONLY)):
        if spec is None:
            continue
        if not wanted:
            other = "receiver" if direction == "sending" else "sender"
            notes.append(f"{direction} flowspec: {other}-only socket")
            continue
        _check_request(direction, spec)
        _latency_notes(direction, spec, notes)
        (_sending if direction == "sending" else _receiving)(spec, platform, fields, notes)
    return QosPlan(qos=effective, ignored=tuple(notes), **fields)
