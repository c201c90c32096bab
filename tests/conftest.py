"""Test session guard: nothing here touches the host's network.

Before any test runs, the pytest process moves itself into a private network
namespace (mpoint._netns.isolate: a fresh user + network namespace with only
``lo``, configured for IPv4 and IPv6 multicast).  Every test needs that
isolation unless it is marked ``offline`` (it creates no socket); without
isolation such tests are skipped with the reason, never run on the host.
"""
from __future__ import annotations

import itertools
import socket
from typing import Dict, Optional

import pytest

from mpoint import _netns
from support import ADDR, new_group

FAMILIES = [pytest.param(socket.AF_INET, id="ipv4"), pytest.param(socket.AF_INET6, id="ipv6")]

_ISOLATION: Optional[_netns.Isolation] = None
_REASON = ""


def pytest_configure(config: pytest.Config) -> None:
    global _ISOLATION, _REASON
    config.addinivalue_line("markers", "offline: creates no socket; runs without isolation")
    try:
        _ISOLATION = _netns.require_isolation(many_groups=True)
    except _netns.IsolationError as exc:
        _REASON = f"no private network namespace: {exc}"


def pytest_report_header(config: pytest.Config) -> str:
    if _ISOLATION is None:
        return f"mpoint: network tests skipped ({_REASON})"
    return (f"mpoint: private network namespace {_ISOLATION.netns} "
            f"(host {_ISOLATION.host_netns}), interfaces {list(_ISOLATION.interfaces)}, "
            f"ipv6={_ISOLATION.ipv6}")


@pytest.fixture(autouse=True)
def _network_guard(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("offline") is None and _ISOLATION is None:
        pytest.skip(_REASON)


@pytest.fixture(scope="session")
def isolation() -> _netns.Isolation:
    assert _ISOLATION is not None
    return _ISOLATION


_ports = itertools.count(20000)


@pytest.fixture
def port() -> int:
    """A port no other test of this session uses."""
    return next(_ports)


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest, isolation: _netns.Isolation) -> int:
    if request.param == socket.AF_INET6 and not isolation.ipv6:
        pytest.skip("IPv6 is not available in the private namespace")
    return int(request.param)


@pytest.fixture
def group(family: int) -> str:
    return new_group(family)




@pytest.fixture(scope="session")
def link(isolation: _netns.Isolation) -> Dict[str, int]:
    """The veth pair mpa <-> mpb, a real link inside the private namespace
    (addresses: support.ADDR); returns name -> index."""
    v6 = ADDR[socket.AF_INET6] if isolation.ipv6 else (None, None)
    a, b = _netns.add_veth_pair("mpa", "mpb", *ADDR[socket.AF_INET], 24,
                                addr6_a=v6[0], addr6_b=v6[1])
    return {"mpa": a, "mpb": b}


