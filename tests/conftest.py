"""Test session guard: nothing here touches the host's network.

Two network modes, chosen once per session:

* Linux: before any test runs, the pytest process moves itself into a
  private network namespace (mpoint.lab.netns.isolate: a fresh user + network
  namespace with only ``lo``, configured for IPv4 and IPv6 multicast).
  Without that isolation every network test is skipped with the reason,
  never run on the host.
* Other platforms (Windows, macOS), which have no network namespaces:
  loopback only, multicast scope 0.  Every mpoint socket the suite creates
  gets scope 0 before it can send, so no datagram leaves the host; tests
  that need a namespace (veth links, /proc, sysctls) skip with the reason.
  Under Wine, .ci/windows/test wraps the whole run in a private namespace
  as well.

Tests marked ``offline`` create no socket and run in every mode.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import socket
import sys
from typing import Dict, Iterator, Optional

import pytest

import support
from mpoint import EventSet, _core
from mpoint.lab import netns as _netns
from mpoint.multipoint_socket import MultipointSocket
from support import ADDR, new_group

FAMILIES = [pytest.param(socket.AF_INET, id="ipv4"), pytest.param(socket.AF_INET6, id="ipv6")]


@dataclasses.dataclass(frozen=True)
class Network:
    """Where this session's sockets live."""
    namespace: Optional[_netns.Isolation]   # Linux: the private namespace
    ipv6: bool

    @property
    def loopback_only(self) -> bool:
        return self.namespace is None


_NETWORK: Optional[Network] = None
_REASON = ""
NEEDS_NAMESPACE = "needs a Linux network namespace (veth links, /proc, sysctls)"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _scope_zero_sockets() -> None:
    """Loopback-only mode: every MultipointSocket starts with scope 0."""
    original = MultipointSocket.__init__

    def init(self: MultipointSocket, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _core.set_scope(self.fileno(), int(self.family), 0)

    MultipointSocket.__init__ = init  # type: ignore[method-assign]
    make = _core.new_socket       # mpoint.socket()'s path: no __init__ call

    def new_socket(*args: object) -> object:
        sock = make(*args)
        _core.set_scope(sock.fileno(), int(sock.family), 0)
        return sock

    _core.new_socket = new_socket  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    global _NETWORK, _REASON
    config.addinivalue_line("markers", "offline: creates no socket; runs without isolation")
    config.addinivalue_line(
        "markers", "router: builds the router lab (tests/test_router.py, about a minute); "
        "-m 'not router' leaves it out")
    config.addinivalue_line(
        "markers", "real_windows(reason): what only real Windows shows; expected to fail "
        "under Wine (strict), unmarked elsewhere")
    if not sys.platform.startswith("linux"):
        _scope_zero_sockets()
        support.SAFE_SCOPE = 0
        _NETWORK = Network(None, _ipv6_loopback())
        return
    # MPOINT_PRIVILEGED_NETNS=1 (the router stage, .ci/router/test): as root, a plain
    # network namespace that keeps root's capabilities, as the benchmarks use; FRR's
    # daemons (tests/test_router.py, where the kernel routes multicast) need setgroups(2).
    privileged = os.environ.get("MPOINT_PRIVILEGED_NETNS") == "1"
    try:
        namespace = _netns.require_isolation(many_groups=True, privileged=privileged)
    except _netns.IsolationError as exc:
        _REASON = f"no private network namespace: {exc}"
        return
    _NETWORK = Network(namespace, namespace.ipv6)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:  # type: ignore[type-arg]
    for item in items:
        marker = item.get_closest_marker("real_windows")
        if marker is not None and support.UNDER_WINE:
            reason = marker.args[0] if marker.args else "needs real Windows"
            item.add_marker(pytest.mark.xfail(reason=f"Wine: {reason}", strict=True))


def pytest_report_header(config: pytest.Config) -> str:
    if _NETWORK is None:
        return f"mpoint: network tests skipped ({_REASON})"
    ns = _NETWORK.namespace
    if ns is None:
        wine = " under Wine" if support.UNDER_WINE else ""
        return f"mpoint: loopback only, scope 0{wine}, ipv6={_NETWORK.ipv6}"
    return (f"mpoint: private network namespace {ns.netns} "
            f"(host {ns.host_netns}), interfaces {list(ns.interfaces)}, ipv6={ns.ipv6}")


@pytest.fixture(autouse=True)
def _network_guard(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("offline") is None and _NETWORK is None:
        pytest.skip(_REASON)


@pytest.fixture(scope="session")
def network() -> Network:
    assert _NETWORK is not None
    return _NETWORK


@pytest.fixture(scope="session")
def isolation(network: Network) -> _netns.Isolation:
    """The private namespace; tests that need one skip elsewhere."""
    if network.namespace is None:
        pytest.skip(NEEDS_NAMESPACE)
    return network.namespace


_ports = itertools.count(20000)


@pytest.fixture
def port() -> int:
    """A port no other test of this session uses."""
    return next(_ports)


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest, network: Network) -> int:
    if request.param == socket.AF_INET6 and not network.ipv6:
        pytest.skip("IPv6 multicast is not available here")
    return int(request.param)


@pytest.fixture
def group(family: int) -> str:
    return new_group(family)




@pytest.fixture(params=EventSet.backends())
def backend(request: pytest.FixtureRequest) -> str:
    """Each event-set backend of this build."""
    return str(request.param)


@pytest.fixture
def evset(backend: str) -> Iterator[EventSet]:
    with EventSet(backend) as es:
        assert es.backend == backend
        yield es


@pytest.fixture(scope="session")
def link(isolation: _netns.Isolation) -> Dict[str, int]:
    """The veth pair mpa <-> mpb, a real link inside the private namespace
    (addresses: support.ADDR); returns name -> index."""
    v6 = ADDR[socket.AF_INET6] if isolation.ipv6 else (None, None)
    a, b = _netns.add_veth_pair("mpa", "mpb", *ADDR[socket.AF_INET], 24,
                                addr6_a=v6[0], addr6_b=v6[1])
    return {"mpa": a, "mpb": b}


