"""No descriptor or memory growth over many joins, failures included
(psutil's test_memleaks approach: warm up, repeat, compare)."""
from __future__ import annotations

import os
import socket
import sys

import pytest

import mpoint
from mpoint import JL_RECEIVER_ONLY, JL_SENDER_ONLY


if not sys.platform.startswith("linux"):
    pytest.skip("measures descriptors and memory through Linux's /proc/self",
                allow_module_level=True)

# ASan keeps freed memory in quarantine: RSS says nothing about leaks there
# (sanitizers.md: measure leaks with repeated calls, in the normal build).
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def cycle(family: int, i: int) -> None:
    group = f"239.8.{i // 250 % 250}.{i % 250 + 1}" if family == socket.AF_INET \
        else f"ff15::8:{i:x}"
    with mpoint.socket(family) as r, mpoint.socket(family) as s:
        r.join_leaf((group, 30000), flags=JL_RECEIVER_ONLY, interface="lo",
                    callee_data=bytearray(8))
        s.join_leaf((group, 30000), flags=JL_SENDER_ONLY)
        for bad in (("192.0.2.1", 1), ("nonsense", 1)):
            try:
                s.join_leaf(bad)
            except OSError:
                pass
        s.multicast_scope = 3
        assert s.multipoint_loopback


def test_no_growth(family: int) -> None:
    for i in range(300):                      # warm-up: caches, free lists
        cycle(family, i)
    fds, rss = len(os.listdir("/proc/self/fd")), rss_kib()
    for i in range(3000):
        cycle(family, i)
    assert len(os.listdir("/proc/self/fd")) == fds
    assert UNDER_ASAN or rss_kib() - rss < 1024, "more than 1 MiB of growth over 3,000 cycles"


def test_event_set_and_batch_loop_does_not_grow(family: int, group: str, port: int) -> None:
    """100,000 iterations of the steady loop (send, wait, recv_batch) and of
    register/unregister: no descriptors, no memory."""
    r = mpoint.socket(family).join_leaf((group, port), flags=JL_RECEIVER_ONLY)
    s = mpoint.socket(family).join_leaf((group, port), flags=JL_SENDER_ONLY)
    batch = mpoint.RecvBatch(8, 256)
    with r, s, mpoint.EventSet() as es:
        es.register(r, mpoint.FD_READ)

        def step() -> None:
            s.send(b"x")
            es.wait(1)
            assert r.recv_batch(batch, 0) == 1

        for _ in range(2000):
            step()
        fds, rss = len(os.listdir("/proc/self/fd")), rss_kib()
        for _ in range(100_000):
            step()
        with mpoint.socket(family) as other:
            for _ in range(20_000):
                es.register(other, mpoint.FD_READ | mpoint.FD_WRITE)
                es.wait(0)
                es.unregister(other)
        assert len(os.listdir("/proc/self/fd")) == fds
        assert UNDER_ASAN or rss_kib() - rss < 2048, "more than 2 MiB of growth"
