"""``python -m mpoint join GROUP[+N]``: joins the groups with a GroupSet and
shows, per group, what arrived: datagrams, rate, gaps, duplicates,
reordering (mpoint's sequence header, mpoint.groupset.sequence_header) and
the join delay (RFC 3918 section 4.1: first datagram minus join).

On a terminal a table refreshed in place (at most 5 times a second, 80
columns); in a pipe one summary line every few seconds; at the end the
final table, or with --json one JSON object.  Exit status: 0 when every
group received (and --count datagrams, when given), 1 when one did not,
2 for bad arguments."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, TextIO, Tuple

from . import args as _args
from .place import settle

DEFAULT_DURATION = 10.0       # neither --duration nor --count given
COUNT_ONLY_DURATION = 300.0   # --count without --duration: still bounded
REFRESH_S = 0.2               # the terminal table: at most 5 refreshes a second
PIPE_LINE_S = 3.0             # a pipe: one summary line this often
COUNT_CHECK_S = 0.02          # --count: the statistics read at most this often

HELP = ("join GROUP[+N] (N+1 consecutive groups) and count what arrives per group; "
        "on loopback inside a private network namespace unless --interface names one")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("group", metavar="GROUP[+N]",
                   help="a multicast group, +N for N more consecutive groups")
    p.add_argument("--source", help="a source-specific join (SSM) of this source")
    p.add_argument("--interface", help="join on this real interface (name or index); "
                                       "without it: a private network namespace")
    p.add_argument("--port", type=int, default=_args.DEFAULT_PORT,
                   help=f"UDP port (default {_args.DEFAULT_PORT})")
    p.add_argument("--duration", type=float,
                   help=f"stop after this many seconds (default {DEFAULT_DURATION:g}; "
                        f"{COUNT_ONLY_DURATION:g} with --count)")
    p.add_argument("--count", type=int,
                   help="stop once every group received this many datagrams")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object at the end instead of tables")


class Plan:
    """The checked arguments."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.family, self.groups = _args.groups(ns.group)
        self.source = _args.source(ns.source, self.family)
        self.ifindex = _args.interface(ns.interface)
        self.interface: Optional[str] = ns.interface
        self.port = _args.port(ns.port)
        _args.positive(ns.duration, "--duration")
        if ns.count is not None and ns.count < 1:
            raise _args.BadArgument(f"--count {ns.count}: must be >= 1")
        self.count: Optional[int] = ns.count
        self.duration: float = (ns.duration if ns.duration is not None else
                                COUNT_ONLY_DURATION if ns.count is not None else DEFAULT_DURATION)
        self.json: bool = ns.json


Row = Dict[str, Any]


def rows(stats: Dict[Any, Any], plan: Plan, prev: Optional[Dict[str, int]] = None,
         dt: float = 0.0) -> List[Row]:
    """One dict per group, in the order given.  ``rate``: datagrams/s between
    the first and the last datagram, or with ``prev`` (datagrams per group
    at the last refresh) over the last ``dt`` seconds."""
    out: List[Row] = []
    for g in plan.groups:
        st = stats[g if plan.source is None else (g, plan.source)]
        if prev is not None:
            rate = (st.datagrams - prev.get(g, 0)) / dt if dt > 0 else 0.0
        elif st.datagrams > 1 and st.last_ns > st.first_ns:
            rate = (st.datagrams - 1) * 1e9 / (st.last_ns - st.first_ns)
        else:
            rate = 0.0
        out.append({"group": g, "source": plan.source, "datagrams": st.datagrams,
                    "bytes": st.bytes, "rate": round(rate, 1), "sequenced": st.sequenced,
                    "gaps": st.gaps, "duplicates": st.duplicates, "reordered": st.reordered,
                    "join_delay_ms": (None if st.join_delay_ns is None
                                      else round(st.join_delay_ns / 1e6, 3))})
    return out


def table(rs: List[Row], height: Optional[int] = None) -> List[str]:
    """The table's lines, at most 80 columns; with ``height`` at most that
    many lines (the rest summed up in the last)."""
    w = min(28, max([5] + [len(r["group"]) for r in rs]))
    head = (f"{'GROUP':<{w}} {'DATAGRAMS':>10} {'RATE/s':>9} {'GAPS':>7} {'DUPS':>6} "
            f"{'REORD':>6} {'JOIN ms':>9}")
    lines = [head]
    shown = rs if height is None or len(rs) + 1 <= height else rs[:max(0, height - 2)]
    for r in shown:
        delay = "-" if r["join_delay_ms"] is None else f"{r['join_delay_ms']:.1f}"
        lines.append(f"{r['group'][:w]:<{w}} {r['datagrams']:>10} {r['rate']:>9.0f} "
                     f"{r['gaps']:>7} {r['duplicates']:>6} {r['reordered']:>6} {delay:>9}")
    if len(shown) < len(rs):
        rest = rs[len(shown):]
        lines.append(f"... {len(rest)} more groups: "
                     f"{sum(r['datagrams'] for r in rest)} datagrams, "
                     f"{sum(1 for r in rest if r['datagrams'])} receiving")
    return lines


def totals(rs: List[Row]) -> Row:
    return {"groups": len(rs), "receiving": sum(1 for r in rs if r["datagrams"]),
            **{k: sum(r[k] for r in rs) for k in ("datagrams", "bytes", "sequenced", "gaps",
                                                   "duplicates", "reordered")}}


def summary(rs: List[Row], elapsed: float) -> str:
    t = totals(rs)
    return (f"{elapsed:6.1f}s  {t['receiving']}/{t['groups']} groups receiving, "
            f"{t['datagrams']} datagrams, gaps {t['gaps']}, dups {t['duplicates']}, "
            f"reordered {t['reordered']}")


def done(stats: Dict[Any, Any], count: Optional[int]) -> bool:
    return count is not None and all(st.datagrams >= count for st in stats.values())


def receive(plan: Plan, out: TextIO) -> Tuple[List[Row], float]:
    """Joins, receives until the duration or the count, shows progress;
    returns the final rows and the seconds received."""
    from mpoint import GroupSet, RecvBatch
    tty = out.isatty() and not plan.json
    gs = GroupSet(plan.port, family=plan.family, interface=plan.ifindex)
    try:
        res = gs.join_many(plan.groups if plan.source is None
                           else [(g, plan.source) for g in plan.groups])
        if res.failed:
            member, exc = next(iter(res.failed.items()))
            raise _args.BadArgument(f"joining {member} failed: {exc} "
                                    f"({len(res.failed)} of {len(plan.groups)} failed)")
        batch = RecvBatch(64, 65536, metadata=True)
        start = time.monotonic()
        end = start + plan.duration
        next_show = end if plan.json else start + (REFRESH_S if tty else PIPE_LINE_S)
        shown_lines = 0
        prev: Dict[str, int] = {}
        prev_t = start
        next_check, unchecked = start, False     # --count: datagrams since the last check
        try:
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                wait = min(REFRESH_S, end - now, max(0.0, next_show - now))
                if unchecked:
                    wait = min(wait, max(0.0, next_check - now))
                got = gs.recv_batch(batch, wait)
                now = time.monotonic()
                unchecked = unchecked or got > 0
                if unchecked and plan.count is not None and now >= next_check:
                    if done(gs.stats(), plan.count):
                        break
                    unchecked, next_check = False, now + COUNT_CHECK_S
                if plan.json or now < next_show:
                    continue
                stats = gs.stats()
                if tty:
                    height = max(3, shutil.get_terminal_size().lines - 2)
                    rs = rows(stats, plan, prev, now - prev_t)
                    lines = table(rs, height) + [summary(rs, now - start)]
                    if shown_lines:
                        out.write(f"\r\x1b[{shown_lines}A")   # cursor up to the table's top
                    out.write("".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J")
                    shown_lines = len(lines)
                    prev = {r["group"]: r["datagrams"] for r in rs}
                    prev_t = now
                    next_show = now + REFRESH_S
                else:
                    out.write(summary(rows(stats, plan), now - start) + "\n")
                    next_show = now + PIPE_LINE_S
                out.flush()
        except KeyboardInterrupt:
            pass                                # Ctrl-C: the final table all the same
        elapsed = time.monotonic() - start
        if shown_lines:
            out.write(f"\r\x1b[{shown_lines}A\x1b[J")
        return rows(gs.stats(), plan), elapsed
    finally:
        gs.close()


def run(ns: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        plan = Plan(ns)
        settle("mpoint join", plan.interface)
        rs, elapsed = receive(plan, out)
    except _args.BadArgument as exc:
        print(f"mpoint join: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:                      # the port taken, an interface gone ...
        print(f"mpoint join: {exc}", file=sys.stderr)
        return 2
    need = plan.count or 1
    ok = all(r["datagrams"] >= need for r in rs)
    if plan.json:
        json.dump({"port": plan.port, "seconds": round(elapsed, 3), "count": plan.count,
                   "ok": ok, "groups": rs, "totals": totals(rs)}, out)
        out.write("\n")
    else:
        out.write("\n".join(table(rs) + [summary(rs, elapsed)]) + "\n")
    out.flush()
    return 0 if ok else 1
