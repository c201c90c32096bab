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

from mpoint import _netns, bench

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
    monkeypatch.setattr(bench, "measure_joins",
                        lambda *a: pytest.fail("bench measured although it could not plot"))
    monkeypatch.chdir(tmp_path)
    assert bench.main(["--plot", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "nothing was run" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.offline
def test_bench_refuses_without_isolation(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(**_: object) -> _netns.Isolation:
        raise _netns.IsolationError("user namespaces are disabled")

    monkeypatch.setattr(_netns, "require_isolation", refuse)
    monkeypatch.setattr(bench, "measure_joins",
                        lambda *a: pytest.fail("bench ran without isolation"))
    from mpoint import __main__ as cli
    assert cli.main(["bench", "--quick"]) == 2
    assert "refusing to run: user namespaces are disabled" in capsys.readouterr().err


@pytest.mark.offline
def test_bench_options() -> None:
    with pytest.raises(SystemExit):
        bench.main(["--families", "5"])
    with pytest.raises(SystemExit):
        bench.main(["--counts", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--repeat", "0"])


def test_long_runs_warm_only_the_sharded_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above WARM_UP_BELOW groups each sharded case (20 per socket, GroupSet) still
    runs untimed before its timed run, so that it follows itself; the slow
    one-socket and one-per-socket cases run once."""
    calls: List[str] = []

    def record(name: str) -> Callable[..., List[bench.Sample]]:
        def run(*args: object, **kw: object) -> List[bench.Sample]:
            calls.append(name if name != "c" else f"c{args[2]}")
            return []
        return run

    for fn in ("c_joins", "c_leaf_joins", "mp_groupset", "mp_join_leaf", "std_setsockopt"):
        monkeypatch.setattr(bench, fn, record("c" if fn == "c_joins" else fn))
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    count = bench.WARM_UP_BELOW + 1
    assert bench.runs_for(count, 1) == 1
    bench.measure_joins(socket.AF_INET, count, 1, None, None, {})
    per_case = {name: calls.count(name) for name in set(calls)}
    assert per_case == {
        f"c{bench.PER}": 4,                   # newest and oldest, each warmed
        "mp_groupset": 2, "std_setsockopt": 3,  # stdlib: one socket once, 20 per socket twice
        "c0": 2, "c1": 1, "c_leaf_joins": 1, "mp_join_leaf": 2,
    }
