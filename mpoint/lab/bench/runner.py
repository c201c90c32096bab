"""Runs the benchmark's parts in rounds, every timed run in a fresh private
network namespace, and gathers the results (the JSON's shape).

The clean method: a join is slower when the interface still lists groups
left in the last second or so (IGMPv3/MLDv2 state-change reports still to
send; every join walks that list), so a case timed after another case's
leaves measures the kernel's leftovers.  Every timed run here -- mpoint, C
and stdlib alike -- starts in a namespace of its own (netns.renew()), which
no earlier run has touched; the old one goes with its sockets.  A run of at
most WARM_UP_BELOW groups follows an untimed run of the same case in a
throwaway namespace, which warms the caches and allocators without leaving
groups behind.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import socket as _stdsocket
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import netns
from . import joins
from .common import (DEFAULT_REPEAT, C_CLOSE_NEW, C_CLOSE_OLD, C_LEAF, C_ONE, C_ONE_PER, C_PER, CASE_BUDGET_S,
                     CLOSE_ROWS, DEFAULT_COUNTS, JOIN_ROWS, L_ONE_NEW, L_ONE_OLD, L_PER_NEW,
                     L_PER_OLD, LEAVE_ROWS, MP_BATCH, MP_CLOSE, MP_LEAF, MP_LEAVE, MP_SOCK_LEAF,
                     PER, PER_SOCKET_ROWS, QUICK_COUNTS, RECV_CAP, SHORT_RUNS, STD_ONE, STD_PER,
                     FD_SPARE, WARM_UP_BELOW, Sample, family_name, make_groups,
                     progress, QUICK_ROOTED_LEAVES, QUICK_ROOTED_CONCURRENCY,
                     QUICK_ROOTED_FANOUT, QUICK_DATA_SECONDS, ROOTED_LEAVES, ROOTED_CONCURRENCY, ROOTED_FANOUT,
                     DATA_SECONDS, DATAGRAM_SIZE, ROOTED_REPEAT)

# Inside a join case the C reference and the GroupSet both leave, join again
# and close: the state-change reports go out every REPORT_INTERVAL_MS in the
# join tables' namespaces (namespace-local), so a case's own later phases meet
# as few of its own leftovers as the kernel allows.  The join-delay and
# receive parts keep the default interval (their traffic would compete).
REPORT_INTERVAL_MS = 10
# The namespace left behind is torn down by a kernel worker that takes the
# rtnl lock, which every IPv4 join takes too: a run waits SETTLE_S first.
SETTLE_S = 0.05
REPORT_SYSCTLS = ("/proc/sys/net/ipv4/conf/lo/igmpv3_unsolicited_report_interval",
                  "/proc/sys/net/ipv6/conf/lo/mldv2_unsolicited_report_interval")


def fresh_kernel(quick_reports: bool) -> str:
    """A new private namespace for the next run; its id."""
    iso = netns.renew()
    time.sleep(SETTLE_S)
    if quick_reports:
        for path in REPORT_SYSCTLS:
            try:
                with open(path, "w") as f:
                    f.write(str(REPORT_INTERVAL_MS))
            except OSError:
                pass                      # the default interval: only slower phases
    return iso.netns


def measure_joins(family: int, count: int, repeat: int, hard_limit: Optional[int],
                  one_socket_skip: Optional[str], timings: Dict[str, float]
                  ) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Tables 1 and 2 for one family and count: {table: {row: entry}}.
    ``timings`` receives the seconds each case took, all runs together."""
    groups = make_groups(family, count)
    tables: Dict[str, Dict[str, Dict[str, Any]]] = {
        "join": {name: {"runs_ns": []} for name, _ in JOIN_ROWS},
        "leave": {name: {"runs_ns": []} for name, _ in LEAVE_ROWS},
        "close": {name: {"runs_ns": []} for name, _ in CLOSE_ROWS},
    }
    gs_info = tables["join"][MP_BATCH]
    runs: List[Tuple[str, Callable[[], List[Sample]], Tuple[str, ...]]] = [
        ("C one socket, newest", lambda: joins.c_joins(family, groups, 0, True),
         (C_ONE, L_ONE_NEW)),
        ("C one socket, oldest", lambda: joins.c_joins(family, groups, 0, False),
         (C_ONE, L_ONE_OLD)),
        ("C 20 per socket, newest", lambda: joins.c_joins(family, groups, PER, True),
         (C_PER, L_PER_NEW, C_CLOSE_NEW)),
        ("C 20 per socket, oldest", lambda: joins.c_joins(family, groups, PER, False),
         (C_PER, L_PER_OLD, C_CLOSE_OLD)),
        ("C 1 per socket, made in the loop", lambda: joins.c_leaf_joins(family, groups, True),
         (C_ONE_PER,)),
        ("C 1 per socket, made first", lambda: joins.c_leaf_joins(family, groups, False),
         (C_LEAF,)),
        ("GroupSet", lambda: joins.mp_groupset(family, groups, gs_info),
         (MP_BATCH, MP_LEAVE, MP_CLOSE)),
        ("join_leaf", lambda: joins.mp_join_leaf(family, groups, False), (MP_LEAF,)),
        ("socket()+join_leaf", lambda: joins.mp_join_leaf(family, groups, True),
         (MP_SOCK_LEAF,)),
        ("stdlib one socket", lambda: joins.std_setsockopt(family, groups, 0), (STD_ONE,)),
        ("stdlib 20 per socket", lambda: joins.std_setsockopt(family, groups, PER),
         (STD_PER,)),
    ]
    need = count + FD_SPARE
    skipped: Dict[str, str] = {}
    if hard_limit is not None and hard_limit < need:
        for row in PER_SOCKET_ROWS:
            skipped[row] = f"needs {need} descriptors (RLIMIT_NOFILE hard limit {hard_limit})"
    if one_socket_skip is not None:
        for row in (C_ONE, L_ONE_NEW, L_ONE_OLD, STD_ONE):
            skipped[row] = one_socket_skip
    spent: Dict[str, float] = {}
    tag = f"{count:>6} {family_name(family)}"
    # Rounds: every case runs once per round, so that a slow spell of the
    # machine falls on all of them alike, and a row's ratio is the median of
    # its ratios to the reference within each round.
    warm = count <= WARM_UP_BELOW
    for r in range(runs_for(count, repeat)):
        for key, run, rows in runs:
            if all(row in skipped for row in rows):
                continue
            if r and spent.get(key, 0.0) > CASE_BUDGET_S:
                continue                    # slow case: its first runs must do
            t = time.monotonic()
            try:
                if warm:
                    fresh_kernel(True)      # throwaway: warms caches, leaves no groups
                    run()
                fresh_kernel(True)
                gc.collect()                # before every case alike, outside its timing
                samples = run()
            except OSError as exc:
                progress(f"{tag} {key}: failed: {exc}")
                for row in rows:
                    for entries in tables.values():
                        if row in entries:
                            entries[row].setdefault("errors", []).append(str(exc))
                spent[key] = math.inf           # do not repeat a failing case
                continue
            spent[key] = spent.get(key, 0.0) + time.monotonic() - t
            for table, row, ns in samples:
                if row in skipped:
                    continue
                tables[table][row]["runs_ns"].append(ns)
                tables[table][row].setdefault("rounds", []).append(r)
                what = "us/join" if table == "join" else f"us/group ({table})"
                progress(f"{tag} {row} {ns / count / 1e3:.2f} {what}")
    timings.update({key: round(v, 3) for key, v in spent.items()})
    for kind, kind_rows in (("join", JOIN_ROWS), ("leave", LEAVE_ROWS), ("close", CLOSE_ROWS)):
        for name, ref in kind_rows:
            entry = tables[kind][name]
            if name in skipped:
                entry["skipped"] = skipped[name]
            _summarise(entry, count, ref, tables[kind],
                       per_what="join" if kind == "join" else "group")
    return tables


def runs_for(count: int, repeat: int) -> int:
    """Runs per case: ``repeat``, times up to SHORT_RUNS for counts whose runs
    last well under a millisecond or two (their best of 3 is still noise)."""
    return repeat * max(1, min(SHORT_RUNS, 2000 // max(1, count)))


def _summarise(entry: Dict[str, Any], count: int, ref: Optional[str],
               table: Dict[str, Dict[str, Any]], per_what: str) -> None:
    runs = entry.get("runs_ns") or []
    if not runs:
        return
    best = min(runs)
    entry["runs"] = len(runs)
    entry["best_ns"] = best
    entry[f"us_per_{per_what}"] = best / count / 1e3
    if per_what == "join":
        entry["joins_per_s"] = count / (best / 1e9) if best else math.inf
    if ref is not None:
        entry["reference"] = ref
        ref_runs = table[ref].get("runs_ns") or []
        if ref_runs and min(ref_runs) > 0:
            entry["ratio_of_best"] = best / min(ref_runs)
            ref_by_round: Dict[int, int] = {}      # two cases may feed one row: the first
            for r, ns in zip(table[ref].get("rounds") or [], ref_runs):
                ref_by_round.setdefault(r, ns)
            paired = sorted(ns / ref_by_round[r]
                            for r, ns in zip(entry.get("rounds") or [], runs)
                            if ref_by_round.get(r))
            if paired:
                entry["ratio"] = statistics.median(paired)
                entry["rounds_paired"] = len(paired)
            else:
                entry["ratio"] = entry["ratio_of_best"]


def _raise_igmp_limit(count: int) -> Optional[str]:
    """IPv4 one-socket cases need igmp_max_memberships >= count (each fresh
    namespace raises it; namespace-local).  None when it holds, else why not."""
    path = "/proc/sys/net/ipv4/igmp_max_memberships"
    try:
        with open(path) as f:
            value = int(f.read())
        return None if value >= count else f"igmp_max_memberships stays {value}"
    except (OSError, ValueError) as exc:
        return f"cannot read igmp_max_memberships: {exc}"


def rooted_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The rooted suite's sizes: the options given, else the defaults (or
    --quick's)."""
    quick = bool(args.quick)
    leaves: int = args.leaves or (QUICK_ROOTED_LEAVES if quick else ROOTED_LEAVES)
    concurrency = min(leaves, args.concurrency or (QUICK_ROOTED_CONCURRENCY if quick
                                                   else ROOTED_CONCURRENCY))
    return {
        "leaves": leaves, "concurrency": concurrency,
        "fanout": list(args.fanout or (QUICK_ROOTED_FANOUT if quick else ROOTED_FANOUT)),
        "transports": list(args.transports),
        "seconds": args.seconds or (QUICK_DATA_SECONDS if quick else DATA_SECONDS),
        "datagram_size": args.datagram_size or DATAGRAM_SIZE,
        "rounds": args.repeat or (1 if quick else ROOTED_REPEAT),
    }


def _matplotlib_found() -> bool:
    # Found, not imported: importing it (numpy's BLAS) may start threads,
    # and a namespace can only be made by a single-threaded process.
    import importlib.util
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def run(args: argparse.Namespace) -> int:
    """The whole benchmark for parsed options (cli.add_arguments)."""
    from . import delay, recv
    from .report import report
    if args.plot and not _matplotlib_found():   # refuse before any work
        print("mpoint bench: --plot needs matplotlib, which is not installed "
              "(pip install 'mpoint[plot]' or pip install matplotlib); "
              "nothing was run", file=sys.stderr)
        return 2
    suites: List[str] = list(getattr(args, "suite", None) or ["groups"])
    groups_suite = "groups" in suites
    if args.plot and not groups_suite:
        print("mpoint bench: --plot draws the groups suite's join rates; "
              "add --suite groups (nothing was run)", file=sys.stderr)
        return 2
    counts: List[int] = list(args.counts or (QUICK_COUNTS if args.quick else DEFAULT_COUNTS))
    repeat: int = args.repeat or (1 if args.quick else DEFAULT_REPEAT)
    prepared = netns.for_benchmark("mpoint")
    if prepared is None:
        return 2
    iso, hard_limit = prepared
    families: List[int] = []
    notes: List[str] = []
    for f in args.families if groups_suite else ():
        if f == 6 and not iso.ipv6:
            notes.append("IPv6 skipped: the private namespace has no IPv6")
            continue
        families.append(_stdsocket.AF_INET if f == 4 else _stdsocket.AF_INET6)
    if groups_suite:
        notes.append(f"every timed run in a fresh private namespace; state-change reports "
                     f"every {REPORT_INTERVAL_MS} ms on lo in the join tables' namespaces; runs "
                     f"of up to {WARM_UP_BELOW:,} groups follow an untimed run in a throwaway "
                     f"namespace")
    rooted_opts = rooted_options(args) if set(suites) & {"rooted-joins", "rooted-data"} else None
    if rooted_opts is not None:
        notes.append(f"rooted sessions: IPv4 on lo; every run a forked process in a fresh "
                     f"private namespace; {rooted_opts['rounds']} round(s)")
    figures = (f"figures: best of up to {repeat} run(s), {runs_for(100, repeat)} at 100 "
               f"groups" if groups_suite else "")
    print(f"private network namespace {iso.netns} (host: {iso.host_netns}); "
          f"python {sys.version.split()[0]}; {os.cpu_count()} cpu(s); "
          f"RLIMIT_NOFILE {hard_limit or 'unlimited'}; suites: {', '.join(suites)}"
          + (f"; {figures}" if figures else ""))
    for note in notes:
        print(note)
    print(flush=True)
    one_socket_skip = None
    if _stdsocket.AF_INET in families:
        one_socket_skip = _raise_igmp_limit(max(counts))
        if one_socket_skip:
            notes.append(one_socket_skip)
    results: Dict[str, Any] = {
        "meta": {"netns": iso.netns, "host_netns": iso.host_netns, "ipv6": iso.ipv6,
                 "python": sys.version.split()[0], "cpus": os.cpu_count(),
                 "rlimit_nofile": hard_limit, "suites": suites, "notes": notes,
                 "method": "fresh namespace per timed run"},
    }
    if groups_suite:
        results["meta"].update(counts=counts, repeat=repeat, case_budget_s=CASE_BUDGET_S,
                               per_socket=PER, case_seconds={})
        results.update({"join": {}, "leave": {}, "close": {}, "join_delay": {}, "recv": {}})
    if rooted_opts is not None:
        results["meta"]["rooted"] = rooted_opts
    started = time.monotonic()
    for family in families:
        fam = family_name(family)
        for key in ("join", "leave", "close", "join_delay", "recv"):
            results[key][fam] = {}
        for count in counts:
            limit = one_socket_skip if family == _stdsocket.AF_INET else None
            timings = results["meta"]["case_seconds"].setdefault(fam, {}).setdefault(
                str(count), {})
            tables = measure_joins(family, count, repeat, hard_limit, limit, timings)
            for key in ("join", "leave", "close"):
                results[key][fam][str(count)] = tables[key]
            if not args.no_delay:
                fresh_kernel(False)
                try:
                    result = delay.measure_join_delay(family, count)
                except OSError as exc:
                    progress(f"{count:>6} {fam} join delay: failed: {exc}")
                    result = {"groups": count, "groups_seen": 0, "error": str(exc)}
                results["join_delay"][fam][str(count)] = result
            capped = min(count, RECV_CAP)
            if str(capped) not in results["recv"][fam]:     # larger counts: the same layout
                results["recv"][fam][str(capped)] = recv.measure_recv(
                    family, capped, repeat, lambda: fresh_kernel(False))
    if rooted_opts is not None:
        from . import rooted
        # Forked children only: this process stays single-threaded (rooted.py).
        if "rooted-joins" in suites:
            results["rooted_joins"] = rooted.measure_joins(
                rooted_opts["leaves"], rooted_opts["concurrency"], rooted_opts["rounds"])
        if "rooted-data" in suites:
            results["rooted_data"] = rooted.measure_data(
                rooted_opts["fanout"], rooted_opts["transports"], rooted_opts["seconds"],
                rooted_opts["datagram_size"], rooted_opts["rounds"])
    if "send" in suites:
        from . import send
        results["send"] = send.measure(args.repeat or (1 if args.quick else 3), bool(args.quick),
                                       lambda: fresh_kernel(False))
    if args.no_delay and groups_suite:
        del results["join_delay"]
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    print(report(results))
    print(f"({results['meta']['elapsed_s']} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        from .plot import plot
        try:
            plot(results, args.plot)
        except ImportError as exc:
            print(f"mpoint bench: cannot plot: {exc}", file=sys.stderr)
            return 2
        print(f"plot: {args.plot}")
    return 0
