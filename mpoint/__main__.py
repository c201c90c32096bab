"""Command line: ``python -m mpoint demo``, ``python -m mpoint bench``,
``python -m mpoint lab up|down|status``, and the everyday tools
``python -m mpoint join GROUP[+N]`` and ``python -m mpoint send GROUP[+N]``
(mpoint.lab.tools).

Every command that joins or sends multicast first moves the process into a
private network namespace (mpoint.lab.netns), or refuses with the reason;
``join`` and ``send`` use a real interface only when ``--interface`` names one.
``lab`` instead builds its own namespaces, one per host (mpoint.lab.topology).
The commands live in mpoint.lab: ``import mpoint`` loads none of it.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, NoReturn, Optional, TextIO

from .lab import netns as _netns


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit status 2 (not the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def main(argv: Optional[List[str]] = None, out: Optional[TextIO] = None) -> int:
    """Runs one command; ``out`` (default sys.stdout) takes join's and send's
    reports, so two of them can run side by side in one process."""
    parser = _Parser(prog="python -m mpoint",
                     description="mpoint: multipoint (IP multicast) sessions")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    from .lab.tools import joincli, sendcli
    join = sub.add_parser("join", help=joincli.HELP, description=joincli.__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    joincli.add_arguments(join)
    send = sub.add_parser("send", help=sendcli.HELP, description=sendcli.__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    sendcli.add_arguments(send)
    args = parser.parse_args(argv)

    if args.command == "join":       # check their arguments, then isolate unless --interface
        return joincli.run(args, out or sys.stdout)
    if args.command == "send":
        return sendcli.run(args, out or sys.stdout)

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
