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
}
SOCKET_API = {"join_leaf", "multipoint_loopback", "multicast_scope", "multipoint_flags",
              "control_plane", "data_plane", "joined", "join_flags", "send"}
CORE_API = {"socket_open", "interface_index", "join_leaf", "get_loopback", "set_loopback",
            "get_scope", "set_scope"}


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


def test_core_api_and_its_stub() -> None:
    for name in CORE_API:
        assert callable(getattr(_core, name)), name
    stub = os.path.join(os.path.dirname(mpoint.__file__), "_core.pyi")
    with open(stub) as f:
        text = f.read()
    for name in CORE_API:
        assert f"def {name}(" in text, name
    assert os.path.exists(os.path.join(os.path.dirname(mpoint.__file__), "py.typed"))
