"""The public API every backend provides, and the stubs that describe it."""
from __future__ import annotations

import inspect
import os

import pytest

import mpoint
from mpoint import _core

pytestmark = pytest.mark.offline

PUBLIC = {
    "socket", "MultipointSocket", "MultipointError", "errors", "JoinFlag", "SocketFlag", "Plane",
    "JL_SENDER_ONLY", "JL_RECEIVER_ONLY", "JL_BOTH", "WSA_FLAG_MULTIPOINT_C_ROOT",
    "WSA_FLAG_MULTIPOINT_C_LEAF", "WSA_FLAG_MULTIPOINT_D_ROOT", "WSA_FLAG_MULTIPOINT_D_LEAF",
    "WSA_FLAG_OVERLAPPED", "WSA_FLAG_NO_HANDLE_INHERIT", "DEFAULT_FLAGS",
    "EventSet", "NetworkEvents", "FD", "FD_READ", "FD_WRITE", "FD_OOB", "FD_ACCEPT", "FD_CONNECT",
    "FD_CLOSE", "FD_QOS", "FD_GROUP_QOS", "FD_ROUTING_INTERFACE_CHANGE", "FD_ADDRESS_LIST_CHANGE",
    "RecvBatch", "Datagram",
    # issue 16's public contract: these names
    "FlowSpec", "QOS", "ServiceType", "QOS_NOT_SPECIFIED", "POSITIVE_INFINITY_RATE",
    "SERVICETYPE_NOTRAFFIC", "SERVICETYPE_BESTEFFORT", "SERVICETYPE_CONTROLLEDLOAD",
    "SERVICETYPE_GUARANTEED", "SERVICETYPE_NETWORK_UNAVAILABLE",
    "SERVICETYPE_GENERAL_INFORMATION", "SERVICETYPE_NOCHANGE", "SERVICETYPE_NONCONFORMING",
    "SERVICETYPE_NETWORK_CONTROL", "SERVICETYPE_QUALITATIVE", "SERVICE_NO_TRAFFIC_CONTROL",
    "SERVICE_NO_QOS_SIGNALING",
}
SOCKET_API = {"join_leaf", "multipoint_loopback", "multicast_scope", "multipoint_flags",
              "control_plane", "data_plane", "joined", "join_flags", "join_method", "send", "recv_batch",
              "send_batch", "set_qos", "get_qos"}
CORE_API = {"socket_open", "interface_index", "sock_join_leaf", "get_loopback", "set_loopback",
            "get_scope", "set_scope", "event_backends", "enable_metadata", "recv_batch",
            "sock_recv", "sock_send", "sock_bind",
            "sock_recv_batch"}
EVENTSET_API = {"register", "modify", "unregister", "wait", "close", "backend", "backends"}


def test_public_names() -> None:
    assert PUBLIC <= set(mpoint.__all__)
    for name in mpoint.__all__:
        assert hasattr(mpoint, name), name


def test_socket_api() -> None:
    for name in SOCKET_API:
        assert hasattr(mpoint.MultipointSocket, name), name
    params = inspect.signature(mpoint.MultipointSocket.join_leaf).parameters
    assert list(params)[:7] == ["self", "name", "caller_data", "callee_data", "sqos", "gqos",
                                "flags"]
    assert params["interface"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["source"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["flags"].default == mpoint.JL_BOTH


def test_event_set_api() -> None:
    for name in EVENTSET_API:
        assert hasattr(mpoint.EventSet, name), name
    assert list(inspect.signature(mpoint.EventSet.register).parameters) == ["self", "sock",
                                                                           "events"]
    ne = mpoint.NetworkEvents((1, mpoint.FD_READ, {}))
    assert isinstance(ne, tuple) and ne.sock == 1 and ne.events == mpoint.FD_READ
    batch = mpoint.RecvBatch()
    assert (batch.max_datagrams, batch.max_size, batch.metadata) == (64, 2048, True)


def test_core_api_and_its_stub() -> None:
    for name in CORE_API:
        assert callable(getattr(_core, name)), name
    stub = os.path.join(os.path.dirname(mpoint.__file__), "_core.pyi")
    with open(stub) as f:
        text = f.read()
    for name in CORE_API:
        assert f"def {name}(" in text, name
    for name in ("class RecvBatch", "class Datagram", "class EventCore", "class NetworkEvents",
                 "class SocketState"):
        assert name in text
    assert os.path.exists(os.path.join(os.path.dirname(mpoint.__file__), "py.typed"))


@pytest.mark.offline
def test_import_mpoint_loads_only_the_library() -> None:
    """The lab (benchmarks, namespace tooling, demo, C reference loops) is
    apart: a fresh interpreter's ``import mpoint`` loads none of it, and the
    library's _core carries no reference loop."""
    import subprocess
    import sys
    code = ("import sys, mpoint, mpoint._core as c; "
            "print(sorted(m for m in sys.modules if m.startswith('mpoint'))); "
            "print([n for n in dir(c) if n.startswith('reference')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd="/", check=True).stdout.splitlines()
    loaded = eval(out[0])
    assert loaded and not [m for m in loaded if m.startswith("mpoint.lab")], loaded
    assert "mpoint.groupset" in loaded                 # the library itself is there
    assert eval(out[1]) == []
    from mpoint.lab import _reference
    for name in ("reference_drain", "reference_wakeups", "reference_joins",
                 "reference_leaf_joins", "reference_send_round_robin"):
        assert callable(getattr(_reference, name)), name


@pytest.mark.offline
def test_every_package_of_the_source_tree_is_in_the_wheel() -> None:
    """pyproject.toml lists packages by hand: a new one left out installs
    from a checkout and is missing from the wheel (mpoint.lab.tools once)."""
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml")) as f:
        listed = set(re.findall(r'"(mpoint[\w.]*)"', re.search(
            r"^packages = \[(.*?)\]", f.read(), re.M | re.S).group(1)))  # type: ignore[union-attr]
    found = {os.path.relpath(d, root).replace(os.sep, ".")
             for d, _, files in os.walk(os.path.join(root, "mpoint")) if "__init__.py" in files}
    assert listed == found
