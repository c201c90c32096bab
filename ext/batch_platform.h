/* batch_platform.h -- the seam between batch.c and the platform's batch
 * receive (posix/batch.c with posix/batch_linux.c or posix/batch_darwin.c;
 * win/batch.c on Windows).
 *
 * batch.c validates every argument, then calls exactly one of these; they
 * follow mpoint.h's error contract (-1 with the platform's code left set).
 */
#ifndef MP_BATCH_PLATFORM_H
#define MP_BATCH_PLATFORM_H

#include "mpoint.h"

/* The platform's scratch for batch, stored in batch->platform (NULL if it
 * needs none).  new fails only when out of memory, leaving batch->platform
 * NULL; free accepts a batch whose new failed or never ran. */
int mp__batch_platform_new(mp_batch_t *batch);
void mp__batch_platform_free(mp_batch_t *batch);

int mp__batch_enable_metadata(mp_sock_t s, int family);
/* Appends what is queued after the batch->count datagrams already held,
 * up to max_datagrams; returns how many it added (>= 1) and updates count,
 * or -1 (would block: nothing added).  Never blocks. */
int mp__batch_recv(mp_sock_t s, mp_batch_t *batch);
int mp__batch_wait_readable(mp_sock_t s, int timeout_ms);

/* ---- POSIX only: posix/batch.c and the per-OS posix/batch_<os>.c -------
 * (win/batch.c needs none of it: WSARecvMsg's WSAMSG and control data are
 * read in that one file.) */
#ifndef _WIN32
struct msghdr;
struct cmsghdr;

/* posix/batch.c: records datagram i from what recvmsg(2) left in msg (its
 * name is batch->sources + i and its iovec datagram i's slot): len payload
 * bytes received, truncation, the sender, and the metadata carried by the
 * control messages (group and interface, timestamp). */
void mp__batch_keep(mp_batch_t *batch, size_t i, size_t len, struct msghdr *msg);

/* per-OS: asks for kernel receive timestamps on fd (0, or -1 with errno);
 * the timestamp in control message c (level SOL_SOCKET) as ns since the
 * epoch, 0 when c is another message. */
int mp__os_batch_timestamps_on(int fd);
int64_t mp__os_batch_timestamp(const struct cmsghdr *c);

/* Room for one datagram's control messages: a pktinfo of either family and
 * a timestamp (the largest form: SO_TIMESTAMPING's three timespecs), plus
 * room for others the socket's owner may have asked for (SO_TIMESTAMPNS, a
 * hop limit, ...).  A multiple of the cmsg alignment, so an array of rooms
 * keeps every room aligned. */
#define MP_BATCH_CMSG_ROOM \
    (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(3 * sizeof(struct timespec)) + 128)

#endif /* !_WIN32 */

#endif /* MP_BATCH_PLATFORM_H */
