"""``python -m mpoint bench``: the high-rate join benchmark.

What joining, leaving and closing thousands of groups costs with mpoint,
against plain C loops (``mpoint.lab._reference``) and the standard library,
measured in one run:

1. Join rate: us per join and joins/s for 100 ... 20,000 groups, with the
   ratio to a named C reference (setsockopt(MCAST_JOIN_GROUP) in a C loop;
   the C figures include making, binding and registering their sockets).
2. Leave and close: us per group, newest first and oldest first.  The
   GroupSet repeats the C reference's sequence on a new set: join_many,
   leave_many, join_many again, close (each phase timed alone).
3. Join delay (RFC 3918): while a C sender sends to every group in turn
   (in 250 ms chunks, until the drain is done), ``GroupSet.join_many``
   joins them all; first datagram minus join, per group.
4. Receive rate over the joined set: ns per datagram against a C recvmmsg
   drain of the same socket layout.

Those four are the suite "groups" (the default).  ``--suite rooted`` runs
the rooted-session parts instead (or as well: ``--suite all``):

5. Rooted joins: leaves joining one root per second -- one after another,
   from threads, non-blocking on one EventSet -- against the same
   handshake in a plain standard-library program (and asyncio, uvloop).
6. Rooted data plane: datagrams and MB per second from a root to 1, 10
   and 100 leaves, multicast and the unicast fan-out, with loss, against a
   plain sender and plain receivers.  rooted.py says how and why (each run
   a forked process in a fresh namespace; receivers in one process on the
   second core).

Every timed run starts in a fresh private network namespace (runner.py
says why).  Every time is the best of ``--repeat`` runs.  Cases run in
rounds (each case once per round); a ratio is the median over the rounds of
the row's run divided by its reference's run of the same round, so that a
slow spell of the machine, which moves both, does not move the ratio.
Counts up to 1,000 get up to SHORT_RUNS times more runs (a 100-group join
lasts ~0.3 ms: its best of 3 is noise); a case that has used CASE_BUDGET_S
seconds stops repeating early.  The JSON has every run, its round, and how
long each case took.  The garbage collector is off while a Python loop is
timed, as in ``timeit``.

The command moves itself into a private network namespace first
(mpoint.lab.netns) and refuses, with exit code 2 and the reason, where it
cannot; everything runs in this process and its threads.

Modules: common (sizes, row names, groups), joins, delay and recv (the
cases), rooted (the rooted-session cases, and their process layout),
runner (rounds, namespaces, results), report, plot, cli.
"""
from .cli import DESCRIPTION, add_arguments, main
from .runner import run

__all__ = ["DESCRIPTION", "add_arguments", "main", "run"]
