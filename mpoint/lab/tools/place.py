"""Where the tools run: on a real interface only when the user named one
(--interface), else inside a private network namespace (mpoint.lab.netns),
or nowhere."""
from __future__ import annotations

import sys
from typing import Optional

from .. import netns
from .args import BadArgument


def settle(tool: str, interface: Optional[str]) -> None:
    """Isolates this process unless ``interface`` was named, saying so on
    stderr; raises BadArgument (exit 2) when isolation is impossible.  In a
    process already isolated (the test suite) it stays in that namespace:
    require_isolation is idempotent and never leaves a private namespace."""
    if interface is not None:
        print(f"{tool}: on the real interface {interface}, as asked", file=sys.stderr)
        return
    try:
        iso = netns.require_isolation()
    except netns.IsolationError as exc:
        raise BadArgument(f"refusing to run without --interface: {exc}") from None
    print(f"{tool}: in a private network namespace {iso.netns} (loopback only; "
          "name --interface to use a real one)", file=sys.stderr)
