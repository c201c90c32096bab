"""The benchmarks still run (tiny counts), in their own private namespace."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mpoint.lab import netns as _netns

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_recv.py"


def test_bench_recv_smoke(isolation: _netns.Isolation, tmp_path: Path) -> None:
    if not BENCH.exists():
        pytest.skip("benchmarks/ is not beside tests/ here")
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--smoke", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for table in results["drain"].values():
        for name, row in table.items():
            if "skipped" not in row:
                assert row["ns_per_datagram"] > 0, name
                assert max(row["received"]) == row["sent"], name   # nothing lost
    assert results["wakeups"]["10"]["mpoint EventSet (epoll)"]["ns_per_wakeup"] > 0
    assert "Wake-ups" in proc.stdout and "mpoint recv_batch" in proc.stdout
