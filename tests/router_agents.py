"""What the router tests run inside the lab's hosts.  Not imported by the tests:
its source is sent to a mpoint.lab.topology.Worker (``worker.call(AGENTS)``) and runs
in that worker's globals.  Every loop is bounded in count
and time.  Payloads: mpoint's sequence header (b"mpSQ" + 64-bit number,
mpoint.groupset.sequence_header) and the send time (a big-endian double)."""
import socket
import struct
import threading
import time

import mpoint
from mpoint.groupset import sequence_header

SOCKS = {}       # name -> socket
SENDERS = {}     # name -> (thread, stop event, state)


def _family(group):
    return socket.AF_INET6 if ":" in group else socket.AF_INET


def payload(seq):
    return sequence_header(seq) + struct.pack("!d", time.time())


def decode(data):
    seq = int.from_bytes(data[4:12], "big") if data[:4] == b"mpSQ" else -1
    sent = struct.unpack_from("!d", data, 12)[0] if len(data) >= 20 else 0.0
    return seq, sent


def sender_start(name, targets, period=0.005, scope=8, rounds=4000, flags=None, base=0):
    """Sends to every (group, port) in ``targets`` each ``period`` s, up to ``rounds``
    rounds or sender_stop(); one JL_SENDER_ONLY socket (or ``flags``) per group;
    sequence numbers from ``base``."""
    flags = mpoint.JL_SENDER_ONLY if flags is None else flags
    socks = []
    for group, port in targets:
        s = mpoint.socket(_family(group)).join_leaf((group, port), flags=flags)
        s.multicast_scope = scope
        socks.append((group, s))
    stop = threading.Event()
    state = {"sent": {g: 0 for g, _ in targets}, "first": None, "last": None}

    def run():
        for seq in range(rounds):
            if stop.is_set():
                break
            for group, s in socks:
                s.send(payload(base + seq))
                state["sent"][group] += 1
            now = time.time()
            state["first"] = state["first"] or now
            state["last"] = now
            stop.wait(period)
        for _, s in socks:
            s.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    SENDERS[name] = (thread, stop, state)
    return True


def sender_stop(name):
    thread, stop, state = SENDERS.pop(name)
    stop.set()
    thread.join(10.0)
    return state


def send_rounds(groups, port, rounds, scope=8, pause=0.001, burst=100):
    """``rounds`` rounds, each one datagram to every group (sequence number = the
    round), from one unjoined socket, paced ``pause`` s every ``burst`` datagrams
    (kernel backlog queues hold 1,000 frames); returns how many were sent."""
    family = _family(groups[0])
    sent = 0
    with mpoint.socket(family) as s:
        s.multicast_scope = scope
        for seq in range(rounds):
            for group in groups:
                s.sendto(payload(seq), (group, port))
                sent += 1
                if sent % burst == 0:
                    time.sleep(pause)
    return sent


def receiver_open(name, group, port, source=None, flags=None):
    """Joins; returns the wall-clock time just before join_leaf."""
    flags = mpoint.JL_RECEIVER_ONLY if flags is None else flags
    s = mpoint.socket(_family(group))
    t = time.time()
    s.join_leaf((group, port), flags=flags, source=source)
    SOCKS[name] = s
    return t


def receive(name, first_timeout=3.0, idle=0.3, most=100000, until=None):
    """[(seq, sent, received)] of what arrives: waits up to ``first_timeout`` for the
    first datagram, then until ``idle`` s pass without one (or ``until``, a wall
    clock time, or ``most`` datagrams)."""
    s = SOCKS[name]
    out = []
    timeout = first_timeout
    for _ in range(most):
        if until is not None:
            timeout = max(0.001, until - time.time())
        s.settimeout(timeout)
        try:
            data = s.recv(2048)
        except OSError:               # socket.timeout
            if until is None or time.time() >= until:
                break
            continue
        seq, sent = decode(data)
        out.append((seq, sent, time.time()))
        if until is None:
            timeout = idle
    return out


def close(name):
    """Closes (the spec's leave); returns the wall-clock time just before."""
    s = SOCKS.pop(name)
    t = time.time()
    s.close()
    return t


GS = {}


def groupset_start(port, members, expected_total, timeout):
    """Joins ``members`` (groups) on a GroupSet and receives in a thread until
    ``expected_total`` datagrams arrived (then drains briefly: duplicates would
    show) or ``timeout`` s; returns the failed joins."""
    from mpoint.groupset import GroupSet
    gs = GroupSet(port, family=_family(members[0]))
    result = gs.join_many(members)
    stop = threading.Event()

    def run():
        batch = mpoint.RecvBatch(256, 64)
        deadline = time.time() + timeout
        total = 0
        while time.time() < deadline and not stop.is_set():
            total += gs.recv_batch(batch, 0.1)
            if total >= expected_total:
                for _ in range(1000):
                    if not gs.recv_batch(batch, 0.2):
                        break
                break

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    GS.update(set=gs, thread=thread, stop=stop)
    return {str(k): repr(v) for k, v in result.failed.items()}


def groupset_finish(timeout):
    """Waits for the receiving thread; returns {group: GroupStats as a list}."""
    GS["thread"].join(timeout)
    GS["stop"].set()
    GS["thread"].join(5.0)
    gs = GS.pop("set")
    stats = {str(k): list(v) for k, v in gs.stats().items()}
    gs.close()
    return stats
