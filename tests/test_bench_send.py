"""``python -m mpoint bench --suite send --quick`` still runs (in its own
nested namespace): every row is there with a rate or a reason, the ratios
name their references, and each shaped-rate case reports an accuracy at or
below 1 (the token bucket never sends more than it allows).  No speed is
asserted: speed goals are the benchmark's, printed as ratios."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mpoint.lab import netns as _netns
from mpoint.lab.bench import send


def test_send_bench_smoke(isolation: _netns.Isolation, tmp_path: Path) -> None:
    out = tmp_path / "send.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mpoint", "bench", "--suite", "send", "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Send rate" in proc.stdout and "Shaped rate" in proc.stdout
    results = json.loads(out.read_text())["send"]
    assert list(results["throughput"]) == [str(s) for s in send.SIZES]
    for table in results["throughput"].values():
        assert list(table) == [name for name, _ in send.ROWS]
        for name, ref in send.ROWS:
            entry = table[name]
            if "skipped" in entry:
                assert name == send.UVLOOP
                continue
            assert entry["datagrams_per_s"] > 0, (name, entry)
            if ref is not None:
                assert entry["reference"] == ref and entry["ratio"] > 0
    assert len(results["rates"]) == len(send.RATES_MBIT)
    for r in results["rates"]:
        if "achieved" in r:
            # bytes - bucket <= rate * elapsed: never above the token rate
            assert 0.5 < r["accuracy"] <= 1.0 + 1400 / (r["token_rate"] * 0.3), r
        else:
            assert "skipped" in r or "errors" in r
