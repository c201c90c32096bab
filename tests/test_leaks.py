"""No descriptor or memory growth over many joins, failures included
(psutil's test_memleaks approach: warm up, repeat, compare)."""
from __future__ import annotations

import os
import socket

import mpoint
from mpoint import JL_RECEIVER_ONLY, JL_SENDER_ONLY


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
    assert rss_kib() - rss < 1024, "more than 1 MiB of growth over 3,000 cycles"
