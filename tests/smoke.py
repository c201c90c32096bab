"""One datagram to itself, before the suite: ``python tests/smoke.py``.

The Windows CI job runs this first so that a runner which cannot deliver
a datagram at all (a firewall rule missing, no multicast route) fails in
seconds with its cause named, instead of every test timing out.  It says
which way each Winsock decision went (``join_method``, ``option_method``,
``plain``), which is what a real Windows machine answers and Wine cannot.
Exits 0 and prints "smoke: ok ..." or exits 1 naming the cause."""
from __future__ import annotations

import socket
import sys
from typing import List

import mpoint

GROUP, PORT = "239.255.77.1", 47001
TIMEOUT = 5.0


def check(report: List[str]) -> str:
    """'' on success, else the cause.  Appends what it saw to report."""
    with mpoint.socket() as r:
        r.multipoint_loopback = True
        r.multicast_scope = 1
        r.join_leaf((GROUP, PORT))                 # JL_BOTH: sends and receives
        report.append(f"join_method={r.join_method!r} option_method={r.option_method!r} "
                      f"plain={r.plain}")
        r.settimeout(TIMEOUT)
        r.send(b"smoke")
        try:
            data = r.recv(64)
        except socket.timeout:
            data = b""
        if data == b"smoke":
            return ""
        # Not delivered: is it multicast, or every datagram to this process?
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            u.settimeout(TIMEOUT)
            u.sendto(b"uni", u.getsockname())
            try:
                unicast = u.recv(64) == b"uni"
            except socket.timeout:
                unicast = False
        if not unicast:
            return ("no datagram reaches this process, not even unicast on 127.0.0.1: "
                    "a firewall drops inbound UDP for this interpreter "
                    f"({sys.executable}); add an allow rule for it")
        return (f"unicast works but a multicast datagram to {GROUP}:{PORT} did not come "
                f"back within {TIMEOUT:.0f} s: no multicast route or interface, multicast "
                "loopback off, or a firewall rule for multicast")


def main() -> int:
    report: List[str] = []
    try:
        cause = check(report)
    except OSError as e:
        cause = f"{type(e).__name__}: {e} (winerror={getattr(e, 'winerror', None)})"
    detail = "; ".join(report)
    if cause:
        print(f"smoke: FAILED: {cause}" + (f" [{detail}]" if detail else ""), file=sys.stderr)
        return 1
    print(f"smoke: ok, one datagram to {GROUP}:{PORT} and back [{detail}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
