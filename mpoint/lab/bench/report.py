"""The text report of a run's results (the JSON's shape)."""
from __future__ import annotations

from typing import Any, Dict, List

from .common import (CLOSE_ROWS, JOIN_ROWS, LEAVE_ROWS, MP_BATCH, PER, RECV_CAP,
                     RECV_PER_GROUP, RECV_ROWS, ROOTED_DATA_ROWS, ROOTED_JOIN_ROWS)
from .rooted import ANSWER, REQUEST


def _fmt_ratio(entry: Dict[str, Any]) -> str:
    if "ratio" in entry:
        return f"{entry['ratio']:6.2f}x  {entry['reference']}"
    return "   ref" if "reference" not in entry else "     -"


def _row_line(name: str, entry: Dict[str, Any], key: str, with_rate: bool) -> str:
    if "skipped" in entry:
        return f"  {name:<38} skipped: {entry['skipped']}"
    if key not in entry:
        errs = entry.get("errors") or ["no result"]
        return f"  {name:<38} failed: {errs[0]}"
    rate = f"{entry['joins_per_s']:>11,.0f}" if with_rate else ""
    return f"  {name:<38} {entry[key]:9.2f} {rate}  {_fmt_ratio(entry)}"


def report(results: Dict[str, Any]) -> str:
    lines: List[str] = []
    if "join" in results:
        _groups_report(results, lines)
    if results.get("rooted_joins"):
        lines += rooted_joins_report(results["rooted_joins"])
    if results.get("rooted_data"):
        lines += rooted_data_report(results["rooted_data"])
    if results.get("send"):
        from .send import report_lines
        lines += report_lines(results["send"])
    return "\n".join(lines)


def _groups_report(results: Dict[str, Any], lines: List[str]) -> None:
    fams = list(results["join"])
    lines += [
        "1. Join rate: us per join, joins/s (best run) and the ratio to the named C reference",
        "   (the median over rounds of each round's ratio; every case runs once a round).",
        "   C: setsockopt(MCAST_JOIN_GROUP) in a C loop, timed with making, binding",
        "   (IP_PKTINFO, cross-talk off) and epoll-registering its sockets; at 20 per socket",
        "   also with receive timestamps (SO_TIMESTAMPING), as a GroupSet's sockets have.",
        "",
    ]
    for fam in fams:
        for count, tables in results["join"][fam].items():
            lines.append(f"{f'{fam}, {int(count):,} groups':<40} {'us/join':>9} {'joins/s':>11}"
                         f"   ratio")
            for name, _ in JOIN_ROWS:
                lines.append(_row_line(name, tables[name], "us_per_join", True))
            gs = tables[MP_BATCH]
            if gs.get("joined"):
                lines.append(f"  ({MP_BATCH}: joined {min(gs['joined'])} of {count} on "
                             f"{max(gs.get('sockets') or [0])} sockets)")
            lines.append("")
    lines += [
        "   Notes: one-socket costs grow with the count (the kernel walks the socket's list",
        "   of memberships on each join).  The two \"1 per socket\" C rows do what join_leaf",
        "   does for a receiver-only join on an unbound socket made as mpoint.socket() makes",
        "   it (SO_REUSEADDR, IPv6-only, cross-talk off): pktinfo and timestamps, bind to the",
        "   group's address, the membership; \"made in the loop\" also makes each socket",
        "   inside the timed loop, as \"mpoint socket()+join_leaf\" does, \"made beforehand\"",
        "   makes them first, as \"mpoint join_leaf per call\" does.  stdlib rows time making",
        "   and binding their sockets (SO_REUSEADDR, the wildcard address) and setsockopt",
        "   (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP) in a Python loop.",
        "",
        "2. Leave and close: us per group (best run), ratio to the C reference (median over",
        "   rounds; newest first: the kernel's cheap end).  GroupSet rows repeat C's sequence on a new",
        "   set: join_many, leave_many in join order (the set leaves newest first), join_many",
        "   again, close.",
        "",
    ]
    for fam in fams:
        for count in results["leave"][fam]:
            lines.append(f"{f'{fam}, {int(count):,} groups: leave':<40} {'us/group':>9}    ratio")
            for name, _ in LEAVE_ROWS:
                lines.append(_row_line(name, results["leave"][fam][count][name],
                                       "us_per_group", False))
            lines.append(f"{fam}, {int(count):,} groups: close (leaves every group)")
            for name, _ in CLOSE_ROWS:
                lines.append(_row_line(name, results["close"][fam][count][name],
                                       "us_per_group", False))
            lines.append("")
    if results.get("join_delay"):
        lines += [
            "3. Join delay (RFC 3918: a group's first datagram minus its join) after",
            "   GroupSet.join_many, while a C sender sends 64 bytes to every group in turn (it",
            "   runs before, during and after the joins).  A group receives once per sender",
            "   period (measured after the joins: delivering to members costs the kernel more),",
            "   so joins that took no time would show median ~ period/2, p99 ~ period.",
            "   \"join ms\": how long join_many took with that traffic on the port.",
            "",
            f"  {'family':<6} {'groups':>7} {'median ms':>10} {'p99 ms':>9} {'saw data':>13}"
            f" {'period ms':>10} {'median/(period/2)':>18} {'join ms':>9}",
        ]
        for fam, by_count in results["join_delay"].items():
            for count, d in by_count.items():
                if "median_ns" not in d:
                    lines.append(f"  {fam:<6} {int(count):>7} no group saw a datagram "
                                 f"{d.get('error', '')}")
                    continue
                period = d.get("sender_period_ns")
                rel = f"{d['median_ns'] / (period / 2):18.2f}" if period else f"{'-':>18}"
                seen = f"{d['groups_seen']}/{int(count)}"
                lines.append(
                    f"  {fam:<6} {int(count):>7} {d['median_ns'] / 1e6:10.2f} "
                    f"{d['p99_ns'] / 1e6:9.2f} {seen:>13} {(period or 0) / 1e6:10.2f} {rel} "
                    f"{d.get('join_ns', 0) / 1e6:9.1f}"
                    + (f"  ({d['error']})" if "error" in d else ""))
        lines.append("")
    if results.get("recv"):
        lines += [
            f"4. Receive rate over the joined set: ns per datagram draining {RECV_PER_GROUP} queued",
            f"   datagrams per group (at most {RECV_CAP:,} groups, {PER} per socket, one port), ratio",
            "   to a C recvmmsg drain (64 per call) of plain sockets with the same layout.",
            "   \"send\": ns per sendto that queued them (Python; the kernel's delivery runs",
            "   inside it and tests every socket bound to the port: no ratio, for information).",
            "   A shared receiver (Linux) is the one socket bound to the port, so its send cost",
            "   stays flat; its one buffer (net.core.rmem_max) holds what it can of the burst.",
            "",
        ]
        for fam, by_count in results["recv"].items():
            for count, d in by_count.items():
                title = f"{fam}, {d['groups']:,} groups"
                lines.append(f"{title:<42} {'ns/datagram':>11} {'send':>7}    ratio")
                for name, _ in RECV_ROWS:
                    if name not in d:
                        continue
                    e = d[name]
                    if "ns_per_datagram" not in e:
                        lines.append(f"  {name:<40} failed: {(e.get('errors') or ['-'])[0]}")
                        continue
                    lost = "" if e["received"] == e["expected"] else \
                        f"  (received {e['received']} of {e['expected']})"
                    lines.append(f"  {name:<40} {e['ns_per_datagram']:11.1f} "
                                 f"{e['send_ns_per_datagram']:7.0f}  {_fmt_ratio(e)}{lost}")
                lines.append("")


def _short_ratio(entry: Dict[str, Any]) -> str:
    if "ratio" in entry:
        return f"{entry['ratio']:6.2f}x"
    return "    ref" if "reference" not in entry else "      -"


def _failed(name: str, entry: Dict[str, Any]) -> str:
    if "skipped" in entry:
        return f"  {name:<36} skipped: {entry['skipped']}"[:80]
    return f"  {name:<36} failed: {(entry.get('errors') or ['no result'])[0]}"[:80]


def rooted_joins_report(d: Dict[str, Any]) -> List[str]:
    n, c = d["leaves"], d["concurrency"]
    lines = [
        f"5. Rooted sessions, joins: {n:,} leaves join one root ({d['family']}, lo), which",
        "   accepts in its own thread.  ms from the first leaf's socket() to the last",
        "   admission (best run), joins/s, and the ratio of that time to the reference's",
        "   (median over rounds).  References: the same handshake in a plain program",
        f"   (socket + struct: connect, a {len(REQUEST)}-byte request, the root reads it and",
        f"   answers {len(ANSWER)} bytes).  Threads: {c} at once; non-blocking: {c} in flight.",
        "",
        f"  {f'{n:,} leaves':<36} {'ms':>9} {'joins/s':>10}  {'ratio':>7}",
    ]
    for name, ref in ROOTED_JOIN_ROWS:
        e = d["rows"][name]
        if "ms" not in e:
            lines.append(_failed(name, e))
            continue
        lines.append(f"  {name:<36} {e['ms']:9.1f} {e['joins_per_s']:10,.0f}  "
                     f"{_short_ratio(e)}")
    lines.append("")
    return lines


def rooted_data_report(d: Dict[str, Any]) -> List[str]:
    cpus = d.get("cpus")
    where = (f"the root on cpu {cpus[0]}, the leaves (one process) on cpu {cpus[1]}"
             if cpus else "the root's process, one for all leaves")
    lines = [
        f"6. Rooted sessions, data plane: the root sends {d['datagram_size']:,}-byte "
        f"datagrams for {d['seconds']} s",
        f"   to N leaves ({d['family']}, lo): {where}.",
        "   sent/s: the root's sends (one reaches every leaf); delivered/s and MB/s: what",
        "   all the leaves received, per second from the first send to the last datagram;",
        "   loss: what they missed.  Ratio: time per delivered datagram over the",
        "   reference's (median over rounds).  Reference: a plain socket's sendto",
        "   (unicast: one to each receiver), plain receivers drained with selectors +",
        "   recvfrom.  mpoint's leaves are drained with recv_batch, or recv_data.",
        "",
    ]
    for transport in ("multicast", "unicast"):
        for n, rows in (d.get(transport) or {}).items():
            title = f"{transport}, {int(n):,} " + ("leaf" if int(n) == 1 else "leaves")
            lines.append(f"  {title:<30} {'sent/s':>9} {'delivered/s':>11} {'MB/s':>7} "
                         f"{'loss':>6} {'ratio':>7}")
            for name, _ in ROOTED_DATA_ROWS:
                e = rows[name]
                if "datagrams_per_s" not in e:
                    lines.append(_failed(name, e))
                    continue
                lines.append(f"  {name:<30} {e['sent_per_s']:9,.0f} {e['datagrams_per_s']:11,.0f}"
                             f" {e['mb_per_s']:7.1f} {e['loss'] * 100:5.1f}% {_short_ratio(e)}")
            lines.append("")
    return lines
