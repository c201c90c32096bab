"""``python -m mpoint bench``'s options."""
from __future__ import annotations

import argparse
from typing import List, Optional, Sequence

from .common import MAX_COUNT

DESCRIPTION = ("The high-rate join benchmark: join, leave and close rates, join delay and "
               "receive rate of mpoint against plain C loops and the standard library, every "
               "timed run in a fresh private network namespace.")


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
                        help="runs per case; the best is reported (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="counts 100,1000 and one run (unless given)")
    parser.add_argument("--json", metavar="FILE", help="write every result (raw ns) here")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot joins/s against the group count (needs matplotlib)")
    parser.add_argument("--no-delay", action="store_true", help="skip the join-delay part")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpoint bench",
                                     description=DESCRIPTION)
    add_arguments(parser)
    from .runner import run          # runner imports cli's neighbours, not cli
    return run(parser.parse_args(argv))
