"""Winsock 2's quality-of-service types: ``FLOWSPEC`` and ``QOS``.

WSAJoinLeaf's ``lpSQOS`` and ``lpGQOS`` point to a ``QOS`` structure: one
``FLOWSPEC`` per direction plus provider-specific bytes (qos.h, winsock2.h).
:class:`FlowSpec` and :class:`QOS` hold the same values, validated, with
Winsock's units (bytes per second, bytes, microseconds), and convert to and
from the exact bytes of the Windows structures (:meth:`QOS.to_bytes`,
:meth:`QOS.from_bytes`).  What mpoint applies for a request, and what it
refuses with ``WSAEOPNOTSUPP``, is :mod:`mpoint.qos_plan`'s; docs/qos.md
has the whole story.

=========================  ======================  ==========================
field                      Winsock name            unit
=========================  ======================  ==========================
``token_rate``             ``TokenRate``           bytes per second
``token_bucket_size``      ``TokenBucketSize``     bytes
``peak_bandwidth``         ``PeakBandwidth``       bytes per second
``latency``                ``Latency``             microseconds
``delay_variation``        ``DelayVariation``      microseconds
``service_type``           ``ServiceType``         ``SERVICETYPE_*``, may be
                                                   OR-ed with ``SERVICE_NO_*``
``max_sdu_size``           ``MaxSduSize``          bytes
``minimum_policed_size``   ``MinimumPolicedSize``  bytes
``QOS.sending``            ``SendingFlowspec``     FlowSpec (None: none)
``QOS.receiving``          ``ReceivingFlowspec``   FlowSpec (None: none)
``QOS.provider_specific``  ``ProviderSpecific``    bytes (a WSABUF there)
=========================  ======================  ==========================

Every field is an unsigned 32-bit ``ULONG`` and defaults to
``QOS_NOT_SPECIFIED``; rates may also be ``POSITIVE_INFINITY_RATE``.
"""
from __future__ import annotations

import enum
import operator
import struct
from typing import Any, Dict, Optional, Tuple

from . import errors

__all__ = [
    "FlowSpec", "QOS", "ServiceType", "QOS_NOT_SPECIFIED", "POSITIVE_INFINITY_RATE",
    "SERVICETYPE_NOTRAFFIC", "SERVICETYPE_BESTEFFORT", "SERVICETYPE_CONTROLLEDLOAD",
    "SERVICETYPE_GUARANTEED", "SERVICETYPE_NETWORK_UNAVAILABLE",
    "SERVICETYPE_GENERAL_INFORMATION", "SERVICETYPE_NOCHANGE", "SERVICETYPE_NONCONFORMING",
    "SERVICETYPE_NETWORK_CONTROL", "SERVICETYPE_QUALITATIVE",
    "SERVICE_NO_TRAFFIC_CONTROL", "SERVICE_NO_QOS_SIGNALING",
    "Record", "POINTER_SIZE", "FLOWSPEC_SIZE", "qos_size", "layout", "constants",
]

# qos.h (mingw-w64-headers/include/qos.h; Microsoft's FLOWSPEC page,
# learn.microsoft.com/windows/win32/api/qos/ns-qos-flowspec).
QOS_NOT_SPECIFIED = 0xFFFFFFFF
"""The field is not specified: the provider's default applies."""
POSITIVE_INFINITY_RATE = 0xFFFFFFFE
"""A rate with no limit (``TokenRate``, ``PeakBandwidth``)."""
ULONG_MAX = 0xFFFFFFFF


class ServiceType(enum.IntEnum):
    """qos.h's ``SERVICETYPE_*``: the level of service a flowspec asks for.
    ``NETWORK_UNAVAILABLE`` and ``GENERAL_INFORMATION`` are what a provider
    reports, ``NOCHANGE`` asks to keep a direction's current flowspec."""

    NOTRAFFIC = 0x00000000
    BESTEFFORT = 0x00000001
    CONTROLLEDLOAD = 0x00000002
    GUARANTEED = 0x00000003
    NETWORK_UNAVAILABLE = 0x00000004
    GENERAL_INFORMATION = 0x00000005
    NOCHANGE = 0x00000006
    NONCONFORMING = 0x00000009
    NETWORK_CONTROL = 0x0000000A
    QUALITATIVE = 0x0000000D


SERVICETYPE_NOTRAFFIC = ServiceType.NOTRAFFIC
SERVICETYPE_BESTEFFORT = ServiceType.BESTEFFORT
SERVICETYPE_CONTROLLEDLOAD = ServiceType.CONTROLLEDLOAD
SERVICETYPE_GUARANTEED = ServiceType.GUARANTEED
SERVICETYPE_NETWORK_UNAVAILABLE = ServiceType.NETWORK_UNAVAILABLE
SERVICETYPE_GENERAL_INFORMATION = ServiceType.GENERAL_INFORMATION
SERVICETYPE_NOCHANGE = ServiceType.NOCHANGE
SERVICETYPE_NONCONFORMING = ServiceType.NONCONFORMING
SERVICETYPE_NETWORK_CONTROL = ServiceType.NETWORK_CONTROL
SERVICETYPE_QUALITATIVE = ServiceType.QUALITATIVE

# Modifier bits OR-ed into ServiceType (qos.h).  SERVICE_NO_TRAFFIC_CONTROL
# asks for no traffic control (no shaping, no marking) of the flow;
# SERVICE_NO_QOS_SIGNALING for no RSVP signalling (mpoint never signals).
SERVICE_NO_TRAFFIC_CONTROL = 0x81000000
SERVICE_NO_QOS_SIGNALING = 0x40000000
_MODIFIERS = SERVICE_NO_TRAFFIC_CONTROL | SERVICE_NO_QOS_SIGNALING

# Windows' structures are little-endian on every architecture it runs on.
POINTER_SIZE = struct.calcsize("P")
"""This interpreter's pointer size: the default layout of :meth:`QOS.to_bytes`."""
_FLOWSPEC = struct.Struct("<8I")
FLOWSPEC_SIZE = _FLOWSPEC.size            # 32: eight ULONGs, no padding
# QOS = { FLOWSPEC SendingFlowspec; FLOWSPEC ReceivingFlowspec; WSABUF ProviderSpecific; }
# WSABUF = { ULONG len; CHAR *buf; }: with 8-byte pointers buf is aligned
# to 8, so 4 bytes of padding follow len.
_QOS = {8: struct.Struct("<8I8II4xQ"), 4: struct.Struct("<8I8III")}

FIELDS: Tuple[Tuple[str, str], ...] = (
    ("token_rate", "TokenRate"),
    ("token_bucket_size", "TokenBucketSize"),
    ("peak_bandwidth", "PeakBandwidth"),
    ("latency", "Latency"),
    ("delay_variation", "DelayVariation"),
    ("service_type", "ServiceType"),
    ("max_sdu_size", "MaxSduSize"),
    ("minimum_policed_size", "MinimumPolicedSize"),
)
"""FlowSpec's fields in FLOWSPEC's order, each with its Winsock name."""


class Record:
    """An immutable value with named fields (a frozen dataclass without
    importing dataclasses, to keep ``import mpoint`` cheap): equality, hash,
    repr and pickling over ``_fields``; assignment raises AttributeError."""

    __slots__: Tuple[str, ...] = ()
    _fields: Tuple[str, ...] = ()

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + self._values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (type(self), self._values()))


def _rebuild(cls: "type[Record]", values: Tuple[Any, ...]) -> Record:
    """Unpickles a Record (its values were valid when it was pickled)."""
    record = object.__new__(cls)
    for name, value in zip(cls._fields, values):
        record._set(name, value)
    return record


def _ulong(name: str, value: object) -> int:
    """``value`` as a ULONG; TypeError for a non-integer (bool included),
    ValueError outside 0..0xFFFFFFFF."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None
    if not 0 <= number <= ULONG_MAX:
        raise ValueError(f"{name} must be 0..0xFFFFFFFF (a ULONG), not {number}")
    return number


def _bounded(value: int) -> bool:
    """A rate or size that states a limit (neither sentinel)."""
    return value < POSITIVE_INFINITY_RATE


def split_service_type(value: int) -> Tuple[Optional[ServiceType], int]:
    """``(base, modifier bits)`` of a valid ServiceType; base is None for
    ``QOS_NOT_SPECIFIED`` (no service type asked for)."""
    if value == QOS_NOT_SPECIFIED:
        return None, 0
    return ServiceType(value & ~_MODIFIERS), value & _MODIFIERS


def _check_service_type(value: int) -> None:
    if value == QOS_NOT_SPECIFIED:
        return
    base = value & ~_MODIFIERS
    if (value & SERVICE_NO_TRAFFIC_CONTROL
            and value & SERVICE_NO_TRAFFIC_CONTROL != SERVICE_NO_TRAFFIC_CONTROL):
        raise ValueError(f"service_type {value:#010x}: SERVICE_NO_TRAFFIC_CONTROL is the two "
                         "bits 0x81000000, set together or not at all")
    if base not in ServiceType._value2member_map_:
        raise ValueError(f"service_type {value:#010x} is not a SERVICETYPE_* value "
                         "(optionally OR-ed with SERVICE_NO_TRAFFIC_CONTROL or "
                         "SERVICE_NO_QOS_SIGNALING) nor QOS_NOT_SPECIFIED")


class FlowSpec(Record):
    """Winsock's ``FLOWSPEC``: one direction's traffic description.

    Every field is a ULONG (0..0xFFFFFFFF) defaulting to
    ``QOS_NOT_SPECIFIED``; see the module's table for Winsock names and
    units.  Raises TypeError for a non-integer (bool included) and
    ValueError for a value out of range, an unknown service type, a bounded
    ``peak_bandwidth`` below ``token_rate`` or a ``minimum_policed_size``
    above ``max_sdu_size``.  Immutable and hashable."""

    __slots__ = ("token_rate", "token_bucket_size", "peak_bandwidth", "latency",
                 "delay_variation", "service_type", "max_sdu_size", "minimum_policed_size")
    _fields = __slots__
    token_rate: int
    token_bucket_size: int
    peak_bandwidth: int
    latency: int
    delay_variation: int
    service_type: int
    max_sdu_size: int
    minimum_policed_size: int

    def __init__(self, token_rate: int = QOS_NOT_SPECIFIED,
                 token_bucket_size: int = QOS_NOT_SPECIFIED,
                 peak_bandwidth: int = QOS_NOT_SPECIFIED, latency: int = QOS_NOT_SPECIFIED,
                 delay_variation: int = QOS_NOT_SPECIFIED,
                 service_type: int = QOS_NOT_SPECIFIED,
                 max_sdu_size: int = QOS_NOT_SPECIFIED,
                 minimum_policed_size: int = QOS_NOT_SPECIFIED) -> None:
        given = (token_rate, token_bucket_size, peak_bandwidth, latency, delay_variation,
                 service_type, max_sdu_size, minimum_policed_size)
        for name, value in zip(self._fields, given):
            self._set(name, _ulong(name, value))
        _check_service_type(self.service_type)
        # A rate of POSITIVE_INFINITY_RATE exceeds every bounded peak.
        if (self.token_rate != QOS_NOT_SPECIFIED and _bounded(self.peak_bandwidth)
                and self.peak_bandwidth < self.token_rate):
            rate = ("POSITIVE_INFINITY_RATE" if self.token_rate == POSITIVE_INFINITY_RATE
                    else str(self.token_rate))
            raise ValueError(f"peak_bandwidth ({self.peak_bandwidth}) is below token_rate "
                             f"({rate})")
        if (_bounded(self.max_sdu_size) and _bounded(self.minimum_policed_size)
                and self.minimum_policed_size > self.max_sdu_size):
            raise ValueError(f"minimum_policed_size ({self.minimum_policed_size}) is above "
                             f"max_sdu_size ({self.max_sdu_size})")

    @property
    def service(self) -> Optional[ServiceType]:
        """The ServiceType without modifier bits (None: not specified)."""
        return split_service_type(self.service_type)[0]

    @property
    def no_traffic_control(self) -> bool:
        """SERVICE_NO_TRAFFIC_CONTROL is set."""
        return (self.service_type != QOS_NOT_SPECIFIED
                and self.service_type & SERVICE_NO_TRAFFIC_CONTROL == SERVICE_NO_TRAFFIC_CONTROL)

    @property
    def no_qos_signaling(self) -> bool:
        """SERVICE_NO_QOS_SIGNALING is set."""
        return self.service_type != QOS_NOT_SPECIFIED and bool(
            self.service_type & SERVICE_NO_QOS_SIGNALING)

    @property
    def unspecified(self) -> bool:
        """Every field is QOS_NOT_SPECIFIED (the same as no flowspec)."""
        return self == _UNSPECIFIED

    def to_bytes(self) -> bytes:
        """The 32-byte ``FLOWSPEC`` (eight little-endian ULONGs)."""
        return _FLOWSPEC.pack(*(getattr(self, name) for name, _ in FIELDS))

    @classmethod
    def from_bytes(cls, data: "bytes | bytearray | memoryview") -> "FlowSpec":
        """A FlowSpec from the first 32 bytes of ``data`` (later bytes are
        not read); WSAEFAULT when ``data`` is shorter."""
        view = _view(data)
        if len(view) < FLOWSPEC_SIZE:
            raise errors.from_code("WSAEFAULT", "FlowSpec.from_bytes",
                                   f"{len(view)} bytes is shorter than a FLOWSPEC "
                                   f"({FLOWSPEC_SIZE} bytes)")
        return cls(*_FLOWSPEC.unpack_from(view, 0))


_UNSPECIFIED = FlowSpec()


def _view(data: object) -> memoryview:
    if isinstance(data, str):
        raise TypeError("data must be a bytes-like object, not str")
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"data must be a bytes-like object, not {type(data).__name__}") from None
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _pointer_size(pointer_size: object) -> int:
    if isinstance(pointer_size, bool) or not isinstance(pointer_size, int):
        raise TypeError(f"pointer_size must be 4 or 8, not {type(pointer_size).__name__}")
    if pointer_size not in _QOS:
        raise ValueError(f"pointer_size must be 4 or 8, not {pointer_size}")
    return pointer_size


def qos_size(pointer_size: int = POINTER_SIZE) -> int:
    """sizeof(QOS) for a pointer size: 80 with 8-byte pointers, 72 with 4."""
    return _QOS[_pointer_size(pointer_size)].size


def _flowspec_or_none(name: str, value: object) -> Optional[FlowSpec]:
    if value is None:
        return None
    if not isinstance(value, FlowSpec):
        raise TypeError(f"{name} must be a FlowSpec or None, not {type(value).__name__}")
    return None if value.unspecified else value


class QOS(Record):
    """Winsock's ``QOS``: the sending and receiving flowspecs and the
    provider-specific bytes.

    A flowspec of None and one whose every field is QOS_NOT_SPECIFIED mean
    the same (nothing asked for that direction) and are stored as None.
    ``provider_specific`` takes any bytes-like object and is kept as bytes.
    Immutable and hashable."""

    __slots__ = ("sending", "receiving", "provider_specific")
    _fields = __slots__
    sending: Optional[FlowSpec]
    receiving: Optional[FlowSpec]
    provider_specific: bytes

    def __init__(self, sending: Optional[FlowSpec] = None, receiving: Optional[FlowSpec] = None,
                 provider_specific: "bytes | bytearray | memoryview" = b"") -> None:
        self._set("sending", _flowspec_or_none("sending", sending))
        self._set("receiving", _flowspec_or_none("receiving", receiving))
        tail = bytes(_view(provider_specific))
        if len(tail) > ULONG_MAX:
            raise ValueError("provider_specific is longer than a ULONG length can say")
        self._set("provider_specific", tail)

    def to_bytes(self, pointer_size: int = POINTER_SIZE) -> bytes:
        """The ``QOS`` structure followed by the provider-specific bytes, as
        a SIO_SET_QOS caller lays out its buffer.  ``ProviderSpecific.len``
        is the tail's length and ``ProviderSpecific.buf`` is written as 0:
        the Windows backend points it at the tail before passing the buffer
        on (a pointer means nothing in bytes)."""
        layout = _QOS[_pointer_size(pointer_size)]
        sending = (self.sending or _UNSPECIFIED).to_bytes()
        receiving = (self.receiving or _UNSPECIFIED).to_bytes()
        head = layout.pack(*_FLOWSPEC.unpack(sending), *_FLOWSPEC.unpack(receiving),
                           len(self.provider_specific), 0)
        return head + self.provider_specific

    @classmethod
    def from_bytes(cls, data: "bytes | bytearray | memoryview",
                   pointer_size: int = POINTER_SIZE) -> "QOS":
        """A QOS from a ``QOS`` structure followed by its provider-specific
        bytes.  ``ProviderSpecific.buf`` is ignored (the tail is taken to
        follow the structure); bytes after the tail are not read.  WSAEFAULT
        when ``data`` is shorter than the structure or than the
        provider-specific length it declares (the spec's "buffer length for
        lpSQOS ... too small")."""
        layout = _QOS[_pointer_size(pointer_size)]
        view = _view(data)
        if len(view) < layout.size:
            raise errors.from_code("WSAEFAULT", "QOS.from_bytes",
                                   f"{len(view)} bytes is shorter than a QOS structure "
                                   f"({layout.size} bytes with {pointer_size}-byte pointers)")
        values = layout.unpack_from(view, 0)
        length = values[16]
        if len(view) - layout.size < length:
            raise errors.from_code("WSAEFAULT", "QOS.from_bytes",
                                   f"ProviderSpecific.len says {length} bytes but only "
                                   f"{len(view) - layout.size} follow the QOS structure")
        return cls(FlowSpec(*values[0:8]), FlowSpec(*values[8:16]),
                   bytes(view[layout.size:layout.size + length]))


def layout(pointer_size: int = POINTER_SIZE) -> Dict[str, Tuple[int, int]]:
    """Offsets and sizes of the Windows structures as this module writes
    them: ``{"FLOWSPEC": (0, 32), "FLOWSPEC.TokenRate": (0, 4), ...,
    "QOS": (0, 80), "QOS.SendingFlowspec": (0, 32), ...,
    "QOS.ProviderSpecific.buf": (72, 8)}`` (offset, size).  The layout
    check (.ci/windows/check-qos-layout) compares it with the real headers."""
    size = _pointer_size(pointer_size)
    out: Dict[str, Tuple[int, int]] = {"FLOWSPEC": (0, FLOWSPEC_SIZE)}
    for index, (_, winsock) in enumerate(FIELDS):
        out[f"FLOWSPEC.{winsock}"] = (4 * index, 4)
    out["QOS"] = (0, _QOS[size].size)
    out["QOS.SendingFlowspec"] = (0, FLOWSPEC_SIZE)
    out["QOS.ReceivingFlowspec"] = (FLOWSPEC_SIZE, FLOWSPEC_SIZE)
    out["QOS.ProviderSpecific"] = (2 * FLOWSPEC_SIZE, 8 if size == 4 else 16)
    out["QOS.ProviderSpecific.len"] = (2 * FLOWSPEC_SIZE, 4)
    out["QOS.ProviderSpecific.buf"] = (2 * FLOWSPEC_SIZE + size, size)
    return out


def constants() -> Dict[str, int]:
    """Every qos.h constant this module defines, by its C name."""
    out = {"QOS_NOT_SPECIFIED": QOS_NOT_SPECIFIED,
           "POSITIVE_INFINITY_RATE": POSITIVE_INFINITY_RATE,
           "SERVICE_NO_TRAFFIC_CONTROL": SERVICE_NO_TRAFFIC_CONTROL,
           "SERVICE_NO_QOS_SIGNALING": SERVICE_NO_QOS_SIGNALING}
    out.update({f"SERVICETYPE_{member.name}": int(member) for member in ServiceType})
    return out

