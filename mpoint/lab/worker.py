"""``python -m mpoint.lab.worker NETNS_ID``: a Python worker inside one host of the
router lab (mpoint.lab.topology.Worker drives it).

Protocol, one JSON object per line: it first writes ``{"ready": true, "netns": ID}``
(or refuses when its network namespace is not ``NETNS_ID``: the lab started it
somewhere else), then for each request ``{"code": SOURCE, "values": {...}}`` on
stdin it binds ``values`` as globals, runs SOURCE with ``exec`` in globals kept
between requests and answers ``{"ok": true, "result": <the global result>}`` or
``{"ok": false, "error": TRACEBACK}``.  It ends at the end of stdin.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Dict


def main(argv: list) -> int:  # type: ignore[type-arg]
    netns = os.readlink("/proc/self/ns/net")
    out = sys.stdout
    if len(argv) > 1 and argv[1] and argv[1] != netns:
        out.write(json.dumps({"ready": False, "error": f"in {netns}, not {argv[1]}"}) + "\n")
        return 2
    env: Dict[str, Any] = {"__name__": "__lab_worker__"}
    exec("import os, socket, struct, time, mpoint", env)
    out.write(json.dumps({"ready": True, "netns": netns}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        env.update(request.get("values", {}))
        env.pop("result", None)
        try:
            exec(request["code"], env)
            reply = {"ok": True, "result": env.get("result")}
            text = json.dumps(reply)
        except BaseException:                     # reported to the caller, never lost
            text = json.dumps({"ok": False, "error": traceback.format_exc()})
        out.write(text + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
