"""``python -m mpoint bench`` still runs (tiny counts, in its own nested
namespace), and refuses --plot without matplotlib before doing anything."""
from __future__ import annotations

import builtins
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, List

import pytest

from mpoint.lab import netns as _netns
from mpoint.lab.bench import common as bench
from mpoint.lab.bench import main as bench_main
from mpoint.lab.bench import runner

HEADERS = ("1. Join rate", "2. Leave and close", "3. Join delay", "4. Receive rate")


def test_bench_smoke(isolation: _netns.Isolation, tmp_path: Path) -> None:
    out = tmp_path / "joins.json"
    proc = subprocess.run([sys.executable, "-m", "mpoint", "bench", "--counts", "100,200",
                           "--repeat", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    families = ["IPv4", "IPv6"] if isolation.ipv6 else ["IPv4"]
    assert sorted(results["join"]) == sorted(families)
    for fam in families:
        for count in ("100", "200"):
            table = results["join"][fam][count]
            for name, entry in table.items():
                if "skipped" in entry:
                    continue
                assert entry["best_ns"] > 0, (fam, count, name, entry)
                assert entry["us_per_join"] > 0 and entry["joins_per_s"] > 0, name
            gs = table[bench.MP_BATCH]
            assert gs["joined"] and set(gs["joined"]) == {int(count)}, gs   # every run, all
            assert set(gs["failed"]) == {0}, gs
            for kind in ("leave", "close"):
                for name, entry in results[kind][fam][count].items():
                    assert entry["best_ns"] > 0, (kind, fam, count, name)
            delay = results["join_delay"][fam][count]
            assert delay["groups_seen"] >= 1, delay
            assert delay["sender_sent"] > 0 and "error" not in delay, delay
            recv = results["recv"][fam][count]
            assert recv[bench.RECV_MP]["ns_per_datagram"] > 0, recv
            assert recv[bench.RECV_MP_SHARED]["ns_per_datagram"] > 0, recv
            assert recv[bench.RECV_MP_SHARED]["ratio"] > 0, recv
    for header in HEADERS:
        assert header in proc.stdout, header
    for name in (bench.C_PER, bench.C_LEAF, bench.MP_BATCH, bench.MP_LEAF, bench.STD_ONE,
                 bench.MP_LEAVE, bench.MP_CLOSE, bench.RECV_MP, bench.RECV_MP_SHARED):
        assert name in proc.stdout, name
    assert " ... " in proc.stderr and "us/join" in proc.stderr      # progress lines


@pytest.mark.offline
def test_plot_without_matplotlib_refuses_first(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # type: ignore[arg-type]

    def isolate(**_: object) -> _netns.Isolation:
        pytest.fail("bench isolated itself although it could not plot")

    monkeypatch.setattr(_netns, "require_isolation", isolate)
    monkeypatch.setattr(runner, "measure_joins",
                        lambda *a: pytest.fail("bench measured although it could not plot"))
    monkeypatch.chdir(tmp_path)
    assert bench_main(["--plot", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "nothing was run" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.offline
def test_bench_refuses_without_isolation(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(**_: object) -> _netns.Isolation:
        raise _netns.IsolationError("user namespaces are disabled")

    monkeypatch.setattr(_netns, "require_isolation", refuse)
    monkeypatch.setattr(runner, "measure_joins",
                        lambda *a: pytest.fail("bench ran without isolation"))
    from mpoint import __main__ as cli
    assert cli.main(["bench", "--quick"]) == 2
    assert "refusing to run: user namespaces are disabled" in capsys.readouterr().err


@pytest.mark.offline
def test_bench_options() -> None:
    with pytest.raises(SystemExit):
        bench_main(["--families", "5"])
    with pytest.raises(SystemExit):
        bench_main(["--counts", "0"])
    with pytest.raises(SystemExit):
        bench_main(["--repeat", "0"])


CLEAN_KERNEL_CHILD = r"""
import json, os, socket, sys
from mpoint.lab import netns
from mpoint.lab.bench import joins, runner
netns.isolate()
calls = []

ALL_HOSTS = {"010000E0", "ff020000000000000000000000000001",
             "ff010000000000000000000000000001"}
kept = []

def groups_joined():
    # /proc/net/igmp and igmp6: the memberships of this namespace, beyond the all-hosts ones
    with open("/proc/net/igmp") as f:
        v4 = [line.split()[0] for line in f if line.startswith("\t\t\t\t")]
    with open("/proc/net/igmp6") as f:
        v6 = [line.split()[2] for line in f]
    return len(set(v4 + v6) - ALL_HOSTS)

def record(name):
    def run(*args, **kw):
        netns_id = os.readlink("/proc/self/ns/net")
        before = groups_joined()
        # leave state behind, more than a real case would: one group left, one still joined
        for keep in (False, True):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         socket.inet_aton(f"239.1.2.{3 + keep}") + socket.inet_aton("127.0.0.1"))
            kept.append(s) if keep else s.close()
        assert groups_joined() == 1
        calls.append((name, netns_id, before))
        return []
    return run

for fn in ("c_joins", "c_leaf_joins", "mp_groupset", "mp_join_leaf", "std_setsockopt"):
    setattr(joins, fn, record(fn))
runner.measure_joins(socket.AF_INET, int(sys.argv[1]), 1, None, None, {})
print(json.dumps(calls))
"""


@pytest.mark.parametrize("count", [bench.WARM_UP_BELOW, bench.WARM_UP_BELOW + 1])
def test_every_run_gets_a_fresh_namespace(isolation: _netns.Isolation, count: int) -> None:
    """The clean method: each run of each case (warm-up runs too) starts in a
    namespace no earlier run used, with no group joined; short runs are
    warmed (twice as many runs), long ones not."""
    proc = subprocess.run([sys.executable, "-c", CLEAN_KERNEL_CHILD, str(count)],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = json.loads(proc.stdout)
    cases = 11
    assert len(calls) == cases * (2 if count <= bench.WARM_UP_BELOW else 1)
    namespaces = [ns for _, ns, _ in calls]
    assert len(set(namespaces)) == len(namespaces), namespaces
    assert isolation.netns not in namespaces            # never the suite's own
    assert all(before == 0 for _, _, before in calls), calls
