"""Interface choice, loopback and scope on a real link: a veth pair inside the
private namespace (a: 198.51.100.1 / 2001:db8:1::1, b: .2 / ::2)."""
from __future__ import annotations

import socket
import sys
from typing import Dict, Tuple

import pytest

import mpoint
from mpoint import JL_RECEIVER_ONLY, JL_SENDER_ONLY, errors
from support import ADDR, drain, membership_devices, tx_packets


def ways_to_name(family: int, link: Dict[str, int], name: str) -> Tuple[object, ...]:
    address = ADDR[family][0 if name == "mpa" else 1]
    return (name, link[name], address)


@pytest.mark.parametrize("how", ["name", "index", "address"])
def test_join_on_chosen_interface(family: int, group: str, port: int,
                                  link: Dict[str, int], how: str) -> None:
    by = dict(zip(("name", "index", "address"), ways_to_name(family, link, "mpb")))
    with mpoint.socket(family) as r:
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY, interface=by[how])
        assert membership_devices(family, group) == ["mpb"]


def test_sender_interface_choice_reaches_that_link(family: int, group: str, port: int,
                                                   link: Dict[str, int]) -> None:
    with mpoint.socket(family) as on_b, mpoint.socket(family) as s:
        on_b.join_leaf((group, port), flags=JL_RECEIVER_ONLY, interface="mpb")
        s.join_leaf((group, port), flags=JL_SENDER_ONLY, interface="mpa")
        sent_before, lo_before = tx_packets("mpa"), tx_packets("lo")
        s.send(b"via mpa")
        on_b.settimeout(2)
        data, source = on_b.recvfrom(100)
        assert data == b"via mpa" and source[0] == ADDR[family][0]   # out of mpa, in at mpb
        assert tx_packets("mpa") == sent_before + 1
        assert tx_packets("lo") == lo_before


def test_loopback_off_keeps_datagrams_off_this_host(family: int, group: str, port: int,
                                                    link: Dict[str, int]) -> None:
    # A receiver on the sending interface hears the sender only through the
    # loopback copy; SIO_MULTIPOINT_LOOPBACK decides whether that copy exists.
    with mpoint.socket(family) as r, mpoint.socket(family) as s:
        r.join_leaf((group, port), flags=JL_RECEIVER_ONLY, interface="mpa")
        s.join_leaf((group, port), flags=JL_SENDER_ONLY, interface="mpa")
        assert s.multipoint_loopback is True
        s.send(b"seen")
        assert drain(r) == [b"seen"]
        s.multipoint_loopback = False
        assert s.multipoint_loopback is False
        s.send(b"hidden")
        assert drain(r) == []


def test_scope_is_the_hop_limit_on_the_wire(family: int, group: str, port: int,
                                            link: Dict[str, int]) -> None:
    if family == socket.AF_INET:
        level, option, ancillary = socket.IPPROTO_IP, 12, 2   # IP_RECVTTL, IP_TTL
    else:
        level, option = socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT
        ancillary = socket.IPV6_HOPLIMIT
    with mpoint.socket(family) as on_b, mpoint.socket(family) as s:
        on_b.join_leaf((group, port), flags=JL_RECEIVER_ONLY, interface="mpb")
        on_b.setsockopt(level, option, 1)
        on_b.settimeout(2)
        s.join_leaf((group, port), flags=JL_SENDER_ONLY, interface="mpa")
        for hops in (1, 7, 255):
            s.multicast_scope = hops
            s.send(b"x")
            # Room for the receiver's metadata messages too (pktinfo, timestamp).
            _, anc, _, _ = on_b.recvmsg(16, 256)
            got = [int.from_bytes(d[:4], sys.byteorder) for lvl, t, d in anc if t == ancillary]
            assert got == [hops]


@pytest.mark.parametrize("interface", ["nosuch0", 999999, "203.0.113.77", "2001:db8:ff::1",
                                       "239.1.1.1", "0.0.0.0", "", 0, -1, 2**40])
def test_unknown_interface(family: int, group: str, port: int, interface: object) -> None:
    with mpoint.socket(family) as r:
        with pytest.raises(errors.WSAEADDRNOTAVAIL):
            r.join_leaf((group, port), interface=interface)  # type: ignore[arg-type]
        assert r.joined is None and membership_devices(family, group) == []


@pytest.mark.parametrize("interface", [1.0, b"lo", True, ["lo"]])
def test_interface_wrong_type(group: str, family: int, port: int, interface: object) -> None:
    with mpoint.socket(family) as r:
        with pytest.raises(TypeError):
            r.join_leaf((group, port), interface=interface)  # type: ignore[arg-type]
