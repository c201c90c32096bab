"""What both tools accept: GROUP[+N], a source, an interface, a port.  Every
check raises BadArgument with one line for the user (exit status 2)."""
from __future__ import annotations

import ipaddress
import socket
from typing import List, Optional, Tuple, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# The most groups one GROUP+N names: enough for a GroupSet scale test, and a
# bound on what a typo can ask for.
MAX_EXTRA_GROUPS = 99_999
DEFAULT_PORT = 5001                 # iperf 2's default, so the tools meet it
_MULTICAST = {4: ipaddress.ip_network("224.0.0.0/4"), 6: ipaddress.ip_network("ff00::/8")}


class BadArgument(ValueError):
    """A bad command-line argument; str() is the one line to print."""


def groups(spec: str) -> Tuple[int, List[str]]:
    """GROUP[+N] -> (family, N+1 consecutive group addresses from GROUP).

    GROUP must be a multicast address (224.0.0.0/4, ff00::/8) and GROUP+N
    must stay inside that range."""
    text, plus, extra = spec.partition("+")
    try:
        first: IPAddress = ipaddress.ip_address(text.strip())
    except ValueError:
        raise BadArgument(f"{spec!r}: GROUP must be an IPv4 or IPv6 multicast address") from None
    if not first.is_multicast:
        raise BadArgument(f"{text}: not a multicast group (IPv4 224.0.0.0/4, IPv6 ff00::/8)")
    n = 0
    if plus:
        if not extra.isdigit():
            raise BadArgument(f"{spec!r}: +N must be a non-negative whole number")
        n = int(extra)
        if n > MAX_EXTRA_GROUPS:
            raise BadArgument(f"{spec!r}: at most +{MAX_EXTRA_GROUPS} groups")
    last_int = int(first) + n
    net = _MULTICAST[first.version]
    if last_int > int(net.broadcast_address):
        raise BadArgument(f"{spec!r}: +{n} runs past the end of multicast space "
                          f"({net.broadcast_address})")
    family = socket.AF_INET if first.version == 4 else socket.AF_INET6
    return family, [str(type(first)(int(first) + i)) for i in range(n + 1)]


def source(text: Optional[str], family: int) -> Optional[str]:
    """--source: a unicast address of the groups' family."""
    if text is None:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise BadArgument(f"--source {text!r}: not an IP address") from None
    if addr.is_multicast or addr.is_unspecified:
        raise BadArgument(f"--source {text}: must be a unicast address")
    if (addr.version == 4) != (family == socket.AF_INET):
        raise BadArgument(f"--source {text}: not of the groups' address family")
    return str(addr)


def interface(name: Optional[str]) -> Optional[int]:
    """--interface NAME or index -> its index (None: not named)."""
    if name is None:
        return None
    try:
        if name.isdigit():
            index = int(name)
            socket.if_indextoname(index)
            return index
        return socket.if_nametoindex(name)
    except (OSError, ValueError, OverflowError):
        raise BadArgument(f"--interface {name}: no such interface") from None


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise BadArgument(f"--port {value}: must be 1..65535")
    return value


def positive(value: Optional[float], option: str, *, zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not zero) or value != value):
        raise BadArgument(f"{option} {value}: must be {'>= 0' if zero else '> 0'}")
