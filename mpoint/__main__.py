"""Command line: ``python -m mpoint demo``, ``python -m mpoint bench`` and
``python -m mpoint lab up|down|status``.

Every command that joins or sends multicast first moves the process into a
private network namespace (mpoint.lab.netns), or refuses with the reason.
``lab`` instead builds its own namespaces, one per host (mpoint.lab.topology).
The commands live in mpoint.lab: ``import mpoint`` loads none of it.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .lab import netns as _netns


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpoint",
                                     description="mpoint: multipoint (IP multicast) sessions")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a sender and receivers with each JL_* role, on "
                                       "loopback inside a private network namespace")
    demo.add_argument("--ipv4-only", action="store_true", help="skip the IPv6 round")
    from .lab import bench as bench_mod
    bench = sub.add_parser("bench", help="the high-rate join benchmark: join, leave and close "
                                         "rates, join delay and receive rate against C "
                                         "(--suite rooted: rooted sessions' joins and data "
                                         "plane), inside a private network namespace",
                           description=bench_mod.DESCRIPTION)
    bench_mod.add_arguments(bench)
    from .lab import labcli
    lab = sub.add_parser("lab", help="a real multicast network (receivers behind a snooping "
                                     "bridge, a router, a sender), each host in a network "
                                     "namespace of its own: up, down, status",
                         description=labcli.DESCRIPTION)
    labcli.add_arguments(lab)
    args = parser.parse_args(argv)

    if args.command == "bench":      # checks its options, then isolates itself
        return bench_mod.run(args)
    if args.command == "lab":        # makes its own namespaces, never uses this one
        return labcli.run(args)

    try:
        iso = _netns.require_isolation()
    except _netns.IsolationError as exc:
        print(f"mpoint: refusing to run: {exc}", file=sys.stderr)
        return 2
    print(f"private network namespace {iso.netns} (host: {iso.host_netns}); "
          f"interfaces: {', '.join(iso.interfaces)}")

    from .lab import demo as demo_mod
    import socket
    families = [socket.AF_INET] if args.ipv4_only or not iso.ipv6 else None
    return demo_mod.main(sys.stdout, families)


if __name__ == "__main__":
    sys.exit(main())
