/* reference.h -- plain C loops that the benchmarks measure mpoint against.
 *
 * Built into the extension so that a wheel user can run the benchmarks
 * without a compiler.  They are what a careful C programmer would write:
 * no Python, no allocation in the loop.  Each returns the elapsed
 * nanoseconds (CLOCK_MONOTONIC) or -1 with the platform error set. */
#ifndef MP_REFERENCE_H
#define MP_REFERENCE_H

#include "mpoint.h"

/* Drains every socket in socks (non-blocking) with recvmmsg, vlen datagrams
 * of size bytes per call; pktinfo 1 asks for and reads IP_PKTINFO /
 * IPV6_PKTINFO, 2 also SO_TIMESTAMPNS; stops when all are empty.
 * *received: datagrams read. */
long long mp_ref_drain(const mp_sock_t *socks, int nsocks, int vlen, int size, int pktinfo,
                       long long *received);

/* rounds x (send one datagram on tx; epoll_wait on an epoll set holding
 * idle[] and rx; recv it from rx).  One round is one wake-up. */
long long mp_ref_wakeups(mp_sock_t tx, mp_sock_t rx, const mp_sock_t *idle, int nidle,
                         int rounds);

#endif /* MP_REFERENCE_H */
