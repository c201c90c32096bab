"""``python -m mpoint bench --suite rooted`` still runs (tiny sizes, in its
own nested namespace): every row is there, the counts add up and every run
had a namespace of its own; its options are checked; a case that overruns
is killed with its receivers.  No speed is asserted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mpoint.lab import netns as _netns
from mpoint.lab.bench import common as bench
from mpoint.lab.bench import main as bench_main

LEAVES, CONCURRENCY, FANOUT, SIZE = 12, 4, (1, 3), 1024


def test_rooted_bench_smoke(isolation: _netns.Isolation, tmp_path: Path) -> None:
    out = tmp_path / "rooted.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mpoint", "bench", "--suite", "rooted", "--leaves", str(LEAVES),
         "--concurrency", str(CONCURRENCY), "--fanout", ",".join(map(str, FANOUT)),
         "--seconds", "0.05", "--datagram-size", str(SIZE), "--repeat", "1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert "join" not in results and results["meta"]["suites"] == ["rooted-joins",
                                                                   "rooted-data"]
    namespaces, founds = [], []

    joins = results["rooted_joins"]
    assert joins["leaves"] == LEAVES and joins["concurrency"] == CONCURRENCY
    assert [name for name, _ in bench.ROOTED_JOIN_ROWS] == list(joins["rows"])
    for name, ref in bench.ROOTED_JOIN_ROWS:
        entry = joins["rows"][name]
        if name == bench.RJ_UVLOOP and "skipped" in entry:
            assert "uvloop" in entry["skipped"]
            continue
        assert "errors" not in entry, (name, entry)
        (run,) = entry["runs"]
        assert run["joined"] == run["accepted"] == run["root_leaves"] == LEAVES, (name, run)
        assert run["ns"] == entry["best_ns"] > 0
        assert entry["joins_per_s"] == pytest.approx(LEAVES / (run["ns"] / 1e9))
        if ref is not None:
            assert entry["reference"] == ref and entry["ratio"] > 0, (name, entry)
        namespaces.append(run["netns"])
        founds.append(run["found_at_start"])

    data = results["rooted_data"]
    assert data["datagram_size"] == SIZE
    for transport in bench.TRANSPORTS:
        assert sorted(data[transport]) == sorted(str(n) for n in FANOUT)
        for n in FANOUT:
            rows = data[transport][str(n)]
            assert [name for name, _ in bench.ROOTED_DATA_ROWS] == list(rows)
            for name, ref in bench.ROOTED_DATA_ROWS:
                entry = rows[name]
                assert "errors" not in entry, (transport, n, name, entry)
                (run,) = entry["runs"]
                where = (transport, n, name, run)
                assert run["leaves"] == n == len(run["per_leaf"]), where
                assert run["sent"] > 0 and run["expected"] == run["sent"] * n, where
                assert run["received"] == sum(run["per_leaf"]) > 0, where
                assert run["lost"] == run["expected"] - run["received"] >= 0, where
                assert run["bytes"] == run["received"] * SIZE, where      # whole datagrams
                assert entry["datagrams_per_s"] > 0 and entry["mb_per_s"] > 0, where
                assert 0 <= entry["loss"] <= 1, where
                if ref is not None:
                    assert entry["reference"] == ref and entry["ratio"] > 0, where
                namespaces.append(run["netns"])
                founds.append(run["found_at_start"])

    # every run in a namespace of its own: never the benchmark's, nothing left
    # in it by an earlier run (ids alone prove nothing: a freed namespace's
    # number goes to the next one)
    assert results["meta"]["netns"] not in namespaces
    assert isolation.netns not in namespaces
    for found in founds:
        assert found and set(found.values()) == {0}, founds

    text = proc.stdout
    start = text.index("5. Rooted sessions, joins")
    assert "6. Rooted sessions, data plane" in text
    for line in text[start:].splitlines():
        assert len(line) <= 80, line
    for name, _ in bench.ROOTED_JOIN_ROWS + bench.ROOTED_DATA_ROWS:
        assert name in text, name
    assert "multicast, 3 leaves" in text and "unicast, 1 leaf " in text
    assert " ... rooted joins " in proc.stderr and " ... rooted data " in proc.stderr


OVERRUN_CHILD = r"""
import json, os, socket, sys, time
from mpoint.lab import netns
from mpoint.lab.bench import rooted
iso = netns.isolate()
leftover = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)     # in this namespace only
leftover.bind(("127.0.0.1", 0))
ok = rooted.in_fresh_namespace(lambda: {"here": rooted.leftovers()})
failed = rooted.in_fresh_namespace(lambda: 1 / 0)

def stuck():
    pid = os.fork()
    if pid == 0:                     # a receiver that would outlive its case
        time.sleep(30)
        os._exit(0)
    with open(sys.argv[1], "w") as f:
        f.write(str(pid))
    time.sleep(30)
    return {}

def alive(pid):                      # a zombie (not reaped yet) is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

t = time.monotonic()
killed = rooted.in_fresh_namespace(stuck, limit_s=1.0)
took = time.monotonic() - t
with open(sys.argv[1]) as f:
    grandchild = int(f.read())
for _ in range(100):
    if not alive(grandchild):
        break
    time.sleep(0.02)
print(json.dumps({"ns": iso.netns, "parent_udp": rooted.leftovers()["udp"], "ok": ok,
                  "failed": failed, "killed": killed, "took": took,
                  "grandchild_alive": alive(grandchild)}))
"""


def test_a_case_runs_in_a_fresh_namespace_and_is_killed_on_overrun(
        isolation: _netns.Isolation, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", OVERRUN_CHILD, str(tmp_path / "pid")],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    assert res["ok"]["netns"] not in (res["ns"], isolation.netns), res
    assert res["parent_udp"] == 1 and res["ok"]["found_at_start"]["udp"] == 0, res
    assert set(res["ok"]["found_at_start"].values()) == {0}, res
    assert "ZeroDivisionError" in res["failed"]["error"], res
    assert res["killed"] == {"error": "killed after 1 s"}, res
    assert res["took"] < 10, res
    assert not res["grandchild_alive"], res         # the whole process group went


@pytest.mark.offline
def test_rooted_bench_options(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (["--suite", "nosuch"], ["--suite", ""], ["--fanout", "0"],
                ["--fanout", str(bench.MAX_LEAVES + 1)], ["--transports", "tcp"],
                ["--leaves", "0"], ["--seconds", "0"], ["--datagram-size", "0"]):
        with pytest.raises(SystemExit):
            bench_main(bad)
    from mpoint.lab.bench import cli, runner
    seen = {}

    def fake_run(args: object) -> int:
        seen["args"] = args
        return 0

    monkeypatch.setattr(runner, "run", fake_run)
    assert cli.main(["--suite", "rooted,groups", "--quick"]) == 0
    args = seen["args"]
    assert args.suite == ["groups", "rooted-joins", "rooted-data"]     # SUITES' order
    opts = runner.rooted_options(args)
    assert opts["leaves"] == bench.QUICK_ROOTED_LEAVES and opts["rounds"] == 1
    assert opts["fanout"] == list(bench.QUICK_ROOTED_FANOUT)
    assert cli.main(["--suite", "all", "--leaves", "10", "--concurrency", "50"]) == 0
    opts = runner.rooted_options(seen["args"])
    assert opts["concurrency"] == 10                  # never more than the leaves
    assert opts["transports"] == list(bench.TRANSPORTS)
