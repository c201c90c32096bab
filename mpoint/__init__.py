"""mpoint: multipoint (IP multicast) sessions, modelled on Winsock 2's
WSAJoinLeaf.  ``mpoint.socket()`` makes a multipoint socket; its
``join_leaf()`` joins a session as sender, receiver or both."""
from __future__ import annotations

from typing import Any

from . import errors
from ._core import Datagram, RecvBatch
from .multipoint_socket import DEFAULT_FLAGS, MultipointSocket, socket
from .constants import (
    JL_BOTH,
    JL_RECEIVER_ONLY,
    JL_SENDER_ONLY,
    WSA_FLAG_MULTIPOINT_C_LEAF,
    WSA_FLAG_MULTIPOINT_C_ROOT,
    WSA_FLAG_MULTIPOINT_D_LEAF,
    WSA_FLAG_MULTIPOINT_D_ROOT,
    WSA_FLAG_NO_HANDLE_INHERIT,
    WSA_FLAG_OVERLAPPED,
    JoinFlag,
    Plane,
    SocketFlag,
)
from .errors import MultipointError
from .qos import (
    POSITIVE_INFINITY_RATE,
    QOS,
    QOS_NOT_SPECIFIED,
    SERVICE_NO_QOS_SIGNALING,
    SERVICE_NO_TRAFFIC_CONTROL,
    SERVICETYPE_BESTEFFORT,
    SERVICETYPE_CONTROLLEDLOAD,
    SERVICETYPE_GENERAL_INFORMATION,
    SERVICETYPE_GUARANTEED,
    SERVICETYPE_NETWORK_CONTROL,
    SERVICETYPE_NETWORK_UNAVAILABLE,
    SERVICETYPE_NOCHANGE,
    SERVICETYPE_NONCONFORMING,
    SERVICETYPE_NOTRAFFIC,
    SERVICETYPE_QUALITATIVE,
    FlowSpec,
    ServiceType,
)
from .rooted import CF_ACCEPT, CF_DEFER, CF_REJECT, RootedSocket, Verdict
from .groupset import GroupResult, GroupSet, GroupStats, sequence_header
from .events import (
    FD,
    FD_ACCEPT,
    FD_ADDRESS_LIST_CHANGE,
    FD_CLOSE,
    FD_CONNECT,
    FD_GROUP_QOS,
    FD_OOB,
    FD_QOS,
    FD_READ,
    FD_ROUTING_INTERFACE_CHANGE,
    FD_WRITE,
    EventSet,
    NetworkEvents,
)

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``mpoint.aio`` after a plain ``import mpoint`` (asyncio is imported
    only when it is first used)."""
    if name == "aio":
        import importlib
        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module 'mpoint' has no attribute {name!r}")

__all__ = [
    "DEFAULT_FLAGS", "JL_BOTH", "JL_RECEIVER_ONLY", "JL_SENDER_ONLY", "JoinFlag",
    "MultipointError", "MultipointSocket", "Plane", "SocketFlag",
    "WSA_FLAG_MULTIPOINT_C_LEAF", "WSA_FLAG_MULTIPOINT_C_ROOT", "WSA_FLAG_MULTIPOINT_D_LEAF",
    "WSA_FLAG_MULTIPOINT_D_ROOT", "WSA_FLAG_NO_HANDLE_INHERIT", "WSA_FLAG_OVERLAPPED",
    "errors", "socket", "RecvBatch", "Datagram",
    "GroupSet", "GroupResult", "GroupStats", "sequence_header",
    "EventSet", "NetworkEvents", "FD", "FD_READ", "FD_WRITE", "FD_OOB", "FD_ACCEPT", "FD_CONNECT",
    "RootedSocket", "Verdict", "CF_ACCEPT", "CF_REJECT", "CF_DEFER",
    "FD_CLOSE", "FD_QOS", "FD_GROUP_QOS", "FD_ROUTING_INTERFACE_CHANGE", "FD_ADDRESS_LIST_CHANGE",
    "FlowSpec", "QOS", "ServiceType", "QOS_NOT_SPECIFIED", "POSITIVE_INFINITY_RATE",
    "SERVICETYPE_NOTRAFFIC", "SERVICETYPE_BESTEFFORT", "SERVICETYPE_CONTROLLEDLOAD",
    "SERVICETYPE_GUARANTEED", "SERVICETYPE_NETWORK_UNAVAILABLE", "SERVICETYPE_GENERAL_INFORMATION",
    "SERVICETYPE_NOCHANGE", "SERVICETYPE_NONCONFORMING", "SERVICETYPE_NETWORK_CONTROL",
    "SERVICETYPE_QUALITATIVE", "SERVICE_NO_TRAFFIC_CONTROL", "SERVICE_NO_QOS_SIGNALING",
]
