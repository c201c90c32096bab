"""The guard itself: the suite's network view is a private namespace."""
from __future__ import annotations

import os
import socket

import mpoint
from mpoint.lab import netns as _netns


def test_suite_runs_in_its_own_network_namespace(isolation: _netns.Isolation) -> None:
    here = os.readlink("/proc/self/ns/net")
    assert here == isolation.netns == os.environ[_netns.ENV_VAR]
    assert here != isolation.host_netns
    assert _netns.current() is isolation


def test_no_host_interface_is_visible(isolation: _netns.Isolation) -> None:
    # Only what the suite made itself: lo, and the veth pair of test_interface.
    names = {name for _, name in socket.if_nameindex()}
    assert names <= {"lo", "mpa", "mpb"}
    with open("/proc/net/dev") as f:
        devices = {line.split(":")[0].strip() for line in f if ":" in line}
    assert devices == names
    with open("/proc/net/route") as f:
        routes = [line.split()[0] for line in f][1:]
    assert set(routes) <= {"lo", "mpa", "mpb"}


def test_a_join_lands_in_the_private_namespace(isolation: _netns.Isolation) -> None:
    with mpoint.socket() as s:
        s.join_leaf(("239.255.77.1", 40001), flags=mpoint.JL_RECEIVER_ONLY)
        with open("/proc/net/igmp") as f:
            text = f.read()
    assert "014DFFEF" in text          # 239.255.77.1, little-endian hex
    devices = [line.split()[1] for line in text.splitlines()
               if line[:1].isdigit()]
    assert set(devices) <= {"lo", "mpa", "mpb"}
