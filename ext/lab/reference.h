/* reference.h -- plain C loops that the benchmarks measure mpoint against.
 *
 * Built into the lab's extension (mpoint.lab._reference, with the core's C
 * files), never into mpoint._core, so that a wheel user can run the
 * benchmarks without a compiler.  They are what a careful C programmer would write:
 * no Python, no allocation in the loop.  Each returns the elapsed
 * nanoseconds (CLOCK_MONOTONIC) or -1 with the platform error set. */
#ifndef MP_REFERENCE_H
#define MP_REFERENCE_H

#include "mpoint.h"

/* Drains every socket in socks (non-blocking) with recvmmsg, vlen datagrams
 * of size bytes per call; pktinfo 1 asks for and reads IP_PKTINFO /
 * IPV6_PKTINFO, 2 also receive timestamps as a metadata batch asks for them
 * (mp__os_batch_timestamps_on: SO_TIMESTAMPING on Linux); stops when all are empty.
 * *received: datagrams read. */
long long mp_ref_drain(const mp_sock_t *socks, int nsocks, int vlen, int size, int pktinfo,
                       long long *received);

/* rounds x (send one datagram on tx; epoll_wait on an epoll set holding
 * idle[] and rx; recv it from rx).  One round is one wake-up. */
long long mp_ref_wakeups(mp_sock_t tx, mp_sock_t rx, const mp_sock_t *idle, int nidle,
                         int rounds);

#endif /* MP_REFERENCE_H */

/* ---- joins (posix/reference_joins.c, win/reference_joins.c) ----------------------------------
 * Makes the sockets (bound to port, cross-talk off, IP_PKTINFO, and with
 * timestamps the batch receive's own: a GroupSet shard's layout) and joins reqs[0..n)
 * with MCAST_JOIN_GROUP, per_socket memberships per socket (0 or n or more:
 * one socket); then leaves them (newest_first or oldest
 * first), then joins again and closes the sockets (newest socket first or
 * oldest first).  Elapsed ns of each phase in out[0..3): join, leave, close.
 * -1 with the platform error if a call failed.  (Linux keeps receive
 * timestamps behind a global switch that the first socket asking for them
 * turns on -- about 100 us here -- and the last one's close turns off.) */
int mp_ref_joins(int family, unsigned short port, const mp_join_t *reqs, size_t n,
                 size_t per_socket, int newest_first, int timestamps, long long out[3]);

/* The per-call join of a one-socket-per-group design, as C does it: makes
 * n sockets as mpoint.socket() makes them (SO_REUSEADDR, IPv6-only,
 * cross-talk off), then, as join_leaf does for a receiver-only join, asks
 * each for pktinfo and timestamps, binds it to its group's address and port,
 * and joins reqs[i] on it (timed: *out, ns), then closes them newest first.
 * made_in_loop: each socket is made inside the timed loop, just before its
 * join (mpoint.socket().join_leaf(...)); else all before the clock starts.
 * -1 with the platform error if a call failed. */
int mp_ref_leaf_joins(int family, unsigned short port, const mp_join_t *reqs, size_t n,
                      int made_in_loop, long long *out);

/* Sends one datagram of size bytes to each of groups[0..n) in turn from s,
 * for duration_ms; returns datagrams sent or -1. */
long long mp_ref_send_round_robin(mp_sock_t s, const mp_join_t *groups, size_t n, int size,
                                  int duration_ms);

/* ---- batch send (reference_linux.c, reference_darwin.c, win/reference.c) ----
 * Sends datagrams of size bytes (1..65507) from s to dest (a parsed address:
 * mp_join_t.group / group_len) in batches of vlen (1..1024), as a C program
 * would: one prebuilt batch -- sendmmsg(2) on Linux, a sendmsg loop on macOS,
 * a WSASendTo loop on Windows -- sent again and again until duration_ms
 * passed (the clock read once per batch).  Returns the elapsed ns, *sent the
 * datagrams the system took; -1 with the platform error on a failure other
 * than a full queue (ENOBUFS / EAGAIN: not counted). */
long long mp_ref_send_batches(mp_sock_t s, const mp_join_t *dest, int size, int vlen,
                              int duration_ms, long long *sent);
