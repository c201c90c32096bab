"""``python -m mpoint join`` and ``python -m mpoint send`` against each other,
in-process in the suite's private namespace (a subprocess would isolate
itself into a namespace of its own, away from its peer), and their refusals."""
from __future__ import annotations

import io
import ipaddress
import json
import re
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional

import pytest

import mpoint
from mpoint import __main__ as cli
from mpoint.lab import netns as _netns
from mpoint.lab.tools import joincli, sendcli

PORTS = iter(range(47301, 47400))


def _memberships(family: int) -> List[str]:
    """The groups this namespace holds memberships of (/proc is per-netns)."""
    if family == socket.AF_INET:
        with open("/proc/net/igmp") as f:
            return [str(ipaddress.IPv4Address(bytes.fromhex(line.split()[0])[::-1]))
                    for line in f if line.startswith("\t\t\t\t")]
    with open("/proc/net/igmp6") as f:
        return [str(ipaddress.IPv6Address(bytes.fromhex(line.split()[2]))) for line in f]


class _Join:
    """``join ARGS`` in a thread; ready once its groups are joined."""

    def __init__(self, argv: List[str], groups: List[str], family: int,
                 out: Optional[io.StringIO] = None) -> None:
        self.out = out if out is not None else io.StringIO()
        self.rc: Optional[int] = None
        self._t = threading.Thread(target=self._run, args=(argv,), daemon=True)
        self._t.start()
        deadline = time.monotonic() + 10
        while not set(groups) <= set(_memberships(family)):
            assert self._t.is_alive() and time.monotonic() < deadline, "join never joined"
            time.sleep(0.01)

    def _run(self, argv: List[str]) -> None:
        self.rc = cli.main(["join"] + argv, self.out)

    def wait(self) -> int:
        self._t.join(30)
        assert self.rc is not None, "join did not end"
        return self.rc


def _v6(isolation: _netns.Isolation) -> None:
    if not isolation.ipv6:
        pytest.skip("no IPv6 multicast in this namespace")


CASES = [pytest.param(socket.AF_INET, "239.7.1.1", id="ipv4"),
         pytest.param(socket.AF_INET6, "ff3e::7:1", id="ipv6")]


@pytest.mark.parametrize("family,first", CASES)
def test_send_to_join_exact_counts(isolation: _netns.Isolation, family: int,
                                   first: str) -> None:
    if family == socket.AF_INET6:
        _v6(isolation)
    port = str(next(PORTS))
    groups = [str(ipaddress.ip_address(first) + i) for i in range(4)]
    j = _Join([f"{first}+3", "--port", port, "--count", "300", "--duration", "20", "--json"],
              groups, family)
    out = io.StringIO()
    assert cli.main(["send", f"{first}+3", "--port", port, "--count", "300",
                     "--rate", "3000", "--size", "200"], out) == 0
    assert j.wait() == 0
    assert "sent 1200 datagrams of 200 bytes to 4 groups" in out.getvalue()
    report = json.loads(j.out.getvalue())
    assert report["ok"] is True and report["count"] == 300
    assert report["seconds"] < 15                  # ended at the count, not the 20 s duration
    assert [g["group"] for g in report["groups"]] == groups
    for g in report["groups"]:
        assert (g["datagrams"], g["sequenced"], g["bytes"]) == (300, 300, 300 * 200), g
        assert (g["gaps"], g["duplicates"], g["reordered"]) == (0, 0, 0), g
        assert g["join_delay_ms"] > 0 and g["source"] is None
    assert report["totals"] == {"groups": 4, "receiving": 4, "datagrams": 1200,
                                "bytes": 240000, "sequenced": 1200, "gaps": 0,
                                "duplicates": 0, "reordered": 0}


def test_rate_is_the_token_buckets(isolation: _netns.Isolation) -> None:
    port = str(next(PORTS))
    j = _Join(["239.7.2.1+1", "--port", port, "--duration", "3", "--json"],
              ["239.7.2.1", "239.7.2.2"], socket.AF_INET)
    # 160 kbit/s of 100-byte payloads over 2 groups: 100 datagrams/s per group.
    assert cli.main(["send", "239.7.2.1+1", "--port", port, "--rate", "160k", "--size", "100",
                     "--duration", "1.5"], io.StringIO()) == 0
    assert j.wait() == 0
    for g in json.loads(j.out.getvalue())["groups"]:
        assert 75 <= g["rate"] <= 125, g                 # loose: a shared machine
        assert 110 <= g["datagrams"] <= 175 and g["gaps"] == 0, g


def test_gaps_duplicates_reordering(isolation: _netns.Isolation) -> None:
    port = next(PORTS)
    j = _Join(["239.7.3.1", "--port", str(port), "--count", "6", "--duration", "10", "--json"],
              ["239.7.3.1"], socket.AF_INET)
    with mpoint.socket(socket.AF_INET) as tx:     # sequence 2 lost, 5 twice, 3 late
        for seq in (0, 1, 4, 5, 5, 3):
            tx.sendto(mpoint.sequence_header(seq) + b"x" * 20, ("239.7.3.1", port))
    assert j.wait() == 0
    [g] = json.loads(j.out.getvalue())["groups"]
    assert (g["datagrams"], g["gaps"], g["duplicates"], g["reordered"]) == (6, 1, 1, 1)


@pytest.mark.parametrize("source,received", [("127.0.0.1", 30), ("192.0.2.7", 0)],
                         ids=["its-source", "wrong-source"])
def test_source_specific_join(isolation: _netns.Isolation, source: str, received: int) -> None:
    port = str(next(PORTS))
    j = _Join(["232.7.8.1", "--source", source, "--port", port, "--duration", "1.5",
               "--json"], ["232.7.8.1"], socket.AF_INET)
    assert cli.main(["send", "232.7.8.1", "--port", port, "--count", "30", "--rate", "100"],
                    io.StringIO()) == 0
    assert j.wait() == (0 if received else 1)
    [g] = json.loads(j.out.getvalue())["groups"]
    assert (g["group"], g["source"], g["datagrams"]) == ("232.7.8.1", source, received)


def test_exit_1_when_a_group_receives_nothing(isolation: _netns.Isolation) -> None:
    port = next(PORTS)
    j = _Join(["239.7.4.1+1", "--port", str(port), "--duration", "1"],
              ["239.7.4.1", "239.7.4.2"], socket.AF_INET)
    with mpoint.socket(socket.AF_INET) as tx:
        tx.sendto(mpoint.sequence_header(0), ("239.7.4.1", port))
    assert j.wait() == 1
    lines = j.out.getvalue().splitlines()
    assert lines[0].split() == ["GROUP", "DATAGRAMS", "RATE/s", "GAPS", "DUPS", "REORD",
                                "JOIN", "ms"]
    assert lines[1].split()[:2] == ["239.7.4.1", "1"]
    assert lines[2].split()[:2] == ["239.7.4.2", "0"] and lines[2].split()[-1] == "-"
    assert "1/2 groups receiving, 1 datagrams" in lines[3]


def test_count_not_reached_is_exit_1(isolation: _netns.Isolation) -> None:
    port = str(next(PORTS))
    j = _Join(["239.7.5.1", "--port", port, "--count", "50", "--duration", "1.5"],
              ["239.7.5.1"], socket.AF_INET)
    assert cli.main(["send", "239.7.5.1", "--port", port, "--count", "20", "--rate", "0"],
                    io.StringIO()) == 0
    assert j.wait() == 1


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_table_refreshes_in_place_within_80_columns(
        isolation: _netns.Isolation) -> None:
    port = str(next(PORTS))
    tty = _Terminal()
    j = _Join(["ff3e::7:6+2" if isolation.ipv6 else "239.7.6.1+2", "--port", port,
               "--duration", "1.2"],
              [str(ipaddress.ip_address("ff3e::7:6" if isolation.ipv6 else "239.7.6.1") + i)
               for i in range(3)],
              socket.AF_INET6 if isolation.ipv6 else socket.AF_INET, tty)
    assert cli.main(["send", ("ff3e::7:6" if isolation.ipv6 else "239.7.6.1") + "+2",
                     "--port", port, "--rate", "200", "--duration", "0.8", "--size", "64"],
                    io.StringIO()) == 0
    assert j.wait() == 0
    text = tty.getvalue()
    ups = re.findall(r"\r\x1b\[(\d+)A", text)
    assert 3 <= len(ups) <= 8, ups                   # ~5 refreshes a second, in place
    assert all(int(n) == 5 for n in ups)             # header, 3 groups, summary
    plain = re.sub(r"\x1b\[\d*[A-Za-z]", "", text)
    assert plain and all(len(line) <= 80 for line in plain.splitlines())


def test_pipe_gets_a_summary_line_every_few_seconds(isolation: _netns.Isolation,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(joincli, "PIPE_LINE_S", 0.3)
    j = _Join(["239.7.7.1", "--port", str(next(PORTS)), "--duration", "1"],
              ["239.7.7.1"], socket.AF_INET)
    assert j.wait() == 1
    text = j.out.getvalue()
    assert "\x1b" not in text
    assert 2 <= len(re.findall(r"s  0/1 groups receiving", text)) <= 5


@pytest.mark.offline
def test_iperf2_format_header() -> None:
    make = sendcli.payload_maker("iperf2", 40)
    data = make(7, False)
    assert len(data) == 40 and data[:4] == (7).to_bytes(4, "big") and data[12:] == bytes(28)
    assert abs(int.from_bytes(data[4:8], "big") - time.time()) < 5
    fin = make(300, True)
    assert int.from_bytes(fin[:4], "big", signed=True) == -300
    assert fin[12:16] == b"\xff\xff\xff\xff"             # id2: the negated id's upper half


@pytest.mark.offline
@pytest.mark.parametrize("rate,groups,size,expected", [
    ("100", 4, 1000, 400_000.0), ("10M", 4, 1000, 1_250_000.0), ("500k", 1, 10, 62_500.0),
    ("1Gbps", 2, 10, 125_000_000.0), ("0", 3, 100, 0.0)])
def test_rate_units(rate: str, groups: int, size: int, expected: float) -> None:
    assert sendcli.parse_rate(rate, groups, size) == expected


BAD = [
    (["join", "10.1.2.3"], "not a multicast group"),
    (["send", "192.0.2.1"], "not a multicast group"),
    (["join", "239.1.1.1", "--interface", "nosuch0"], "no such interface"),
    (["send", "239.1.1.1", "--interface", "nosuch0"], "no such interface"),
    (["join", "239.255.255.255+1"], "past the end of multicast space"),
    (["send", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0+99"], "past the end of multicast space"),
    (["join", "239.1.1.1+x"], "+N must be"),
    (["send", "239.1.1.1", "--rate", "-5"], "--rate"),
    (["send", "239.1.1.1", "--rate", "fast"], "--rate"),
    (["send", "239.1.1.1", "--size", "65508"], "--size 65508"),
    (["send", "ff3e::1", "--size", "65528"], "--size 65528"),
    (["send", "239.1.1.1", "--size", "8"], "--size 8"),
    (["send", "239.1.1.1", "--format", "iperf2", "--size", "20"], "--size 20"),
    (["send", "239.1.1.1", "--ttl", "256"], "--ttl"),
    (["join", "239.1.1.1", "--source", "239.1.1.2"], "unicast"),
    (["join", "ff3e::1", "--source", "192.0.2.1"], "address family"),
    (["join", "239.1.1.1", "--port", "0"], "--port"),
    (["join", "239.1.1.1", "--count", "0"], "--count"),
    (["join", "239.1.1.1", "--duration", "-1"], "--duration"),
    (["send", "239.1.1.1", "--count", "-1"], "--count"),
    (["join", "239.1.1.1", "--bogus"], "unrecognized arguments"),
    (["send", "239.1.1.1", "--size", "big"], "invalid int value"),
]


@pytest.mark.offline
@pytest.mark.parametrize("argv,says", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_one_line_exit_2(argv: List[str], says: str) -> None:
    # A child process: argparse's exits and any traceback show as they would.
    proc = subprocess.run([sys.executable, "-m", "mpoint"] + argv, capture_output=True,
                          text=True, timeout=60, cwd="/")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    assert lines[0].startswith(("mpoint join: ", "mpoint send: ", "python -m mpoint"))


@pytest.mark.offline
@pytest.mark.parametrize("tool", ["join", "send"])
def test_refuses_without_isolation(tool: str, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(**_: object) -> _netns.Isolation:
        raise _netns.IsolationError("user namespaces are disabled")
    monkeypatch.setattr(_netns, "require_isolation", refuse)
    import mpoint.groupset
    monkeypatch.setattr(mpoint.groupset.GroupSet, "__init__",
                        lambda *a, **k: pytest.fail("joined without isolation"))
    monkeypatch.setattr(sendcli, "open_socket", lambda *a: pytest.fail("sent unisolated"))
    assert cli.main([tool, "239.1.1.1"], io.StringIO()) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"mpoint {tool}: refusing to run without --interface: "
                   "user namespaces are disabled"]




def test_iperf2_format_on_the_wire(isolation: _netns.Isolation) -> None:
    port = next(PORTS)
    ids: List[int] = []
    with mpoint.GroupSet(port) as gs:
        gs.join("239.7.9.1")
        assert cli.main(["send", "239.7.9.1", "--port", str(port), "--count", "25",
                         "--rate", "0", "--size", "100", "--format", "iperf2"],
                        io.StringIO()) == 0
        batch = mpoint.RecvBatch(64, 2048)
        deadline = time.monotonic() + 5
        while len(ids) < 26 and time.monotonic() < deadline:
            gs.recv_batch(batch, 0.2)
            for d in batch:
                data = bytes(d.data)
                assert len(data) == 100
                ids.append(int.from_bytes(data[:4], "big", signed=True))
        gs.recv_batch(batch, 0.2)
        assert len(batch) == 0                              # one FIN, nothing after it
        stats = gs.stats()["239.7.9.1"]
    assert ids == list(range(25)) + [-25]
    assert stats.sequenced == 0                             # not mpoint's header
