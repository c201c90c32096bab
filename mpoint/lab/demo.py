"""``python -m mpoint demo``: every JL_* role on loopback, in a private
network namespace, printing what each leaf received.

Bounded: a fixed number of datagrams, and every receive waits at most
0.5 s.  The caller isolates first (mpoint.lab.netns); this module never does.
"""
from __future__ import annotations

import socket as _stdsocket
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

from mpoint import JL_BOTH, JL_RECEIVER_ONLY, JL_SENDER_ONLY, MultipointSocket
from mpoint import socket as mp_socket

PORT = 5000
GROUPS: Dict[int, Tuple[str, str, str]] = {_stdsocket.AF_INET: ("239.255.0.1", "239.255.0.2", "232.1.1.1"),
          _stdsocket.AF_INET6: ("ff15::1", "ff15::2", "ff35::1")}


def _receive_all(sock: MultipointSocket, limit: int = 16) -> List[bytes]:
    sock.settimeout(0.5)
    out: List[bytes] = []
    try:
        while len(out) < limit:
            out.append(sock.recv(2048))
            sock.settimeout(0.05)
    except _stdsocket.timeout:
        pass
    return out


def kernel_users(family: int, group: str) -> int:
    """How many sockets hold a membership of ``group`` (/proc/net/igmp{,6}'s
    Users column; Linux).  A JL_SENDER_ONLY leaf adds none."""
    if family == _stdsocket.AF_INET:
        wanted = _stdsocket.inet_aton(group)[::-1].hex().upper()
        with open("/proc/net/igmp") as f:
            rows = [line.split() for line in f if line.startswith("\t\t")]
        return sum(int(r[1]) for r in rows if r[0] == wanted)
    wanted = _stdsocket.inet_pton(family, group).hex()
    with open("/proc/net/igmp6") as f:
        return sum(int(r[3]) for r in (line.split() for line in f) if r[2] == wanted)


def run_family(family: int, out: TextIO) -> List[Tuple[str, List[bytes]]]:
    """One demo round for ``family``; returns (leaf, datagrams) per leaf."""
    group, other, ssm_group = GROUPS[family]
    name = "IPv4" if family == _stdsocket.AF_INET else "IPv6"
    print(f"\n{name}: session {group} port {PORT}", file=out)
    sender = mp_socket(family).join_leaf((group, PORT), flags=JL_SENDER_ONLY)
    ssm_sender = mp_socket(family).join_leaf((ssm_group, PORT), flags=JL_SENDER_ONLY)
    source = ssm_sender.getsockname()[0]
    leaves = [
        ("receiver-only", mp_socket(family).join_leaf((group, PORT), flags=JL_RECEIVER_ONLY)),
        ("both", mp_socket(family).join_leaf((group, PORT), flags=JL_BOTH)),
        (f"other group {other}", mp_socket(family).join_leaf((other, PORT),
                                                             flags=JL_RECEIVER_ONLY)),
        (f"source-specific {ssm_group} from {source}",
         mp_socket(family).join_leaf((ssm_group, PORT), flags=JL_RECEIVER_ONLY, source=source)),
    ]
    try:
        for i in range(3):
            sender.send(b"sender-only #%d" % i)
        dict(leaves)["both"].send(b"from the JL_BOTH leaf")
        ssm_sender.send(b"to the source-specific group")
        print(f"  sender-only leaf sent 3 datagrams from port {sender.getsockname()[1]}; "
              f"kernel memberships of {group}: {kernel_users(family, group)} "
              f"(receiver-only and both; the sender-only leaf adds none)", file=out)
        results = []
        for label, sock in leaves:
            got = _receive_all(sock)
            results.append((label, got))
            shown = ", ".join(d.decode() for d in got) or "nothing"
            print(f"  {label:<34} received {len(got)}: {shown}", file=out)
        print(f"  sender-only leaf received {len(_receive_all(sender))} (it is not a member)",
              file=out)
        return results
    finally:
        for _, sock in leaves:
            sock.close()
        sender.close()
        ssm_sender.close()


def main(out: TextIO, families: Optional[Sequence[int]] = None) -> int:
    for family in families or (_stdsocket.AF_INET, _stdsocket.AF_INET6):
        run_family(family, out)
    return 0
