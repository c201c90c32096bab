"""``python -m mpoint bench``'s options."""
from __future__ import annotations

import argparse
from typing import List, Optional, Sequence

from .common import MAX_COUNT, MAX_LEAVES, SUITE_ALIASES, SUITES, TRANSPORTS

DESCRIPTION = ("The high-rate join benchmark: join, leave and close rates, join delay and "
               "receive rate of mpoint against plain C loops and the standard library "
               "(suite \"groups\"); rooted sessions' leaf joins and data-plane throughput "
               "against plain standard-library programs (suite \"rooted\"); send_batch and the "
               "token bucket against a C sendmmsg loop (suite \"send\"); every timed run "
               "in a fresh private network namespace.")


def _int_list(text: str, allowed: Optional[Sequence[int]] = None) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    for v in values:
        if allowed is not None and v not in allowed:
            raise argparse.ArgumentTypeError(f"{v} is not one of {list(allowed)}")
        if allowed is None and not 1 <= v <= MAX_COUNT:
            raise argparse.ArgumentTypeError(f"{v} is not in 1..{MAX_COUNT}")
    return list(dict.fromkeys(values))


def _suites(text: str) -> List[str]:
    chosen: List[str] = []
    for name in (v.strip() for v in text.split(",") if v.strip()):
        if name in SUITE_ALIASES:
            chosen.extend(SUITE_ALIASES[name])
        elif name in SUITES:
            chosen.append(name)
        else:
            raise argparse.ArgumentTypeError(
                f"{name!r} is not a suite: {', '.join(SUITES + tuple(SUITE_ALIASES))}")
    if not chosen:
        raise argparse.ArgumentTypeError("empty list")
    return [name for name in SUITES if name in chosen]


def _transports(text: str) -> List[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    for v in values:
        if v not in TRANSPORTS:
            raise argparse.ArgumentTypeError(f"{v!r} is not one of {', '.join(TRANSPORTS)}")
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    return list(dict.fromkeys(values))


def _leaves(text: str) -> int:
    v = int(text)
    if not 1 <= v <= MAX_LEAVES:
        raise argparse.ArgumentTypeError(f"{v} is not in 1..{MAX_LEAVES}")
    return v


def _fanout(text: str) -> List[int]:
    values = _int_list(text)
    for v in values:
        if v > MAX_LEAVES:
            raise argparse.ArgumentTypeError(f"{v} is not in 1..{MAX_LEAVES}")
    return values


def _seconds(text: str) -> float:
    v = float(text)
    if not 0.01 <= v <= 10:
        raise argparse.ArgumentTypeError("--seconds must be in 0.01..10")
    return v


def _size(text: str) -> int:
    v = int(text)
    if not 1 <= v <= 8192:
        raise argparse.ArgumentTypeError("--datagram-size must be in 1..8192")
    return v


def _repeat(text: str) -> int:
    v = int(text)
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError("--repeat must be in 1..100")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--counts", type=_int_list, default=None, metavar="N,N,...",
                        help="group counts (default: 100,1000,10000,20000)")
    parser.add_argument("--families", type=lambda t: _int_list(t, (4, 6)), default=[4, 6],
                        metavar="4,6", help="address families (default: 4,6)")
    parser.add_argument("--repeat", type=_repeat, default=None, metavar="N",
                        help="runs per case; the best is reported (default 5; rooted "
                             "suites: rounds, default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="counts 100,1000 and one run (unless given)")
    parser.add_argument("--json", metavar="FILE", help="write every result (raw ns) here")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot joins/s against the group count (needs matplotlib)")
    parser.add_argument("--no-delay", action="store_true", help="skip the join-delay part")
    parser.add_argument("--suite", type=_suites, default=["groups"], metavar="NAME,...",
                        help="what to run: groups (join, leave and close rates, join delay, "
                             "receive rate), rooted-joins, rooted-data, rooted (both), send "
                             "(send_batch and the token bucket against C sendmmsg), all "
                             "(default: groups)")
    rooted = parser.add_argument_group("rooted sessions (--suite rooted)")
    rooted.add_argument("--leaves", type=_leaves, default=None, metavar="N",
                        help="leaves joining one root (default 200; --quick 50)")
    rooted.add_argument("--concurrency", type=_leaves, default=None, metavar="N",
                        help="joins at once, from threads or in flight (default 100; "
                             "--quick 25)")
    rooted.add_argument("--fanout", type=_fanout, default=None, metavar="N,N,...",
                        help="leaves of the data-plane cases (default 1,10,100; --quick 1,10)")
    rooted.add_argument("--transports", type=_transports, default=list(TRANSPORTS),
                        metavar="multicast,unicast", help="data planes (default: both)")
    rooted.add_argument("--seconds", type=_seconds, default=None, metavar="S",
                        help="how long the root sends in each data case (default 0.5; "
                             "--quick 0.2)")
    rooted.add_argument("--datagram-size", type=_size, default=None, metavar="BYTES",
                        help="data-plane datagram size (default 1024)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpoint bench",
                                     description=DESCRIPTION)
    add_arguments(parser)
    from .runner import run          # runner imports cli's neighbours, not cli
    return run(parser.parse_args(argv))
