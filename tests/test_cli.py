"""``python -m mpoint demo``: isolates itself, shows every role, refuses
without isolation."""
from __future__ import annotations

import io
import socket
import subprocess
import sys

import pytest

from mpoint import __main__ as cli
from mpoint.lab import demo
from mpoint.lab import netns as _netns


def test_demo_in_process(isolation: _netns.Isolation) -> None:
    out = io.StringIO()
    results = dict(demo.run_family(socket.AF_INET, out))
    sent = {b"sender-only #0", b"sender-only #1", b"sender-only #2", b"from the JL_BOTH leaf"}
    assert set(results["receiver-only"]) == sent
    assert set(results["both"]) == sent
    assert results["other group 239.255.0.2"] == []
    [ssm] = [v for k, v in results.items() if k.startswith("source-specific")]
    assert ssm == [b"to the source-specific group"]
    assert "kernel memberships of 239.255.0.1: 2" in out.getvalue()


def test_demo_command_isolates_itself(isolation: _netns.Isolation) -> None:
    # The child makes its own namespace (nested in the suite's).
    proc = subprocess.run([sys.executable, "-m", "mpoint", "demo"], capture_output=True,
                          text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("private network namespace net:[")
    assert first.split()[3] != isolation.netns and f"(host: {isolation.netns})" in first
    assert proc.stdout.count("received 4:") == (4 if isolation.ipv6 else 2)


@pytest.mark.offline
def test_cli_refuses_without_isolation(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(**_: object) -> _netns.Isolation:
        raise _netns.IsolationError("user namespaces are disabled")
    monkeypatch.setattr(_netns, "require_isolation", refuse)
    monkeypatch.setattr(demo, "main", lambda *a: pytest.fail("demo ran without isolation"))
    assert cli.main(["demo"]) == 2
    assert "refusing to run: user namespaces are disabled" in capsys.readouterr().err
