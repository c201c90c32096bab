"""``python -m mpoint lab up|down|status``: the router lab (mpoint.lab.topology) for a
person to use by hand.  ``up`` builds it and leaves it running (its record in
topology.state_dir), printing how to enter each host; ``down`` takes it away;
``status`` says what runs where.  Nothing is created in the host's network
namespace: every host is a namespace of its own."""
from __future__ import annotations

import argparse
import sys
from typing import TextIO

from . import topology

DESCRIPTION = ("A real multicast network on this machine, each host in a network namespace "
               "of its own: receivers rx1 and rx2 on subnet A behind a snooping bridge (swa), "
               "a router (rtr), a sender (tx) on subnet B.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--prefix", default="mpl",
                        help="names the namespaces PREFIX-rx1 ... (default mpl; up to 8 "
                             "letters or digits)")
    parser.add_argument("--family", choices=("both", "ipv4", "ipv6"), default="both",
                        help="what the router forwards (default both)")


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if not args.prefix.isalnum() or len(args.prefix) > 8:
        print("mpoint lab: --prefix: up to 8 letters or digits", file=sys.stderr)
        return 2
    try:
        if args.action == "up":
            lab = topology.Topology(args.prefix, ipv4=args.family != "ipv6",
                                    ipv6=args.family != "ipv4", persistent=True).up()
            print(f"router lab {args.prefix!r} up in {lab.timings['up_s']:.2f} s; "
                  f"forwarding B -> A: {lab.forwarding}", file=out)
            for name, host in lab.hosts.items():
                v6 = f" {host.addr6}" if host.addr6 else ""
                print(f"  {name:4} {host.ifname:6} {host.addr4}{v6}\n"
                      f"       enter: {lab.enter_command(name)}", file=out)
            print("multicast sent from tx needs a scope (TTL) above 1 to cross rtr; "
                  f"take it down with: python -m mpoint lab down --prefix {args.prefix}",
                  file=out)
            return 0
        lab = topology.Topology.load(args.prefix)
        if args.action == "status":
            for line in lab.status():
                print(line, file=out)
            return 0
        lab.down()
        print(f"router lab {args.prefix!r} down", file=out)
        return 0
    except topology.LabError as exc:
        print(f"mpoint lab: {exc}", file=sys.stderr)
        return 1
